"""Layer-by-layer calibration: capture the first block's inputs, then compress block by block.

The runner holds one block's activations at a time: the calibration inputs of the current
block (already passed through the compressed blocks before it, as SparseGPT and Wanda do) and
the dense block's outputs on them, from which each block's relative output error is measured.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from .masks import block_linears, find_blocks

C4_SHARD = "en/c4-train.00000-of-01024.json.gz"


class Statistic(Protocol):
    """What a method accumulates from the calibration inputs of one linear layer."""

    def add(self, x: torch.Tensor) -> None: ...


# (block name, its linears by name inside the block, statistic by linear name) -> None
CompressBlock = Callable[[str, dict[str, nn.Linear], dict[str, Any]], None]


@dataclass
class LayerwiseResult:
    """Per block: relative output error on the calibration data, and seconds spent."""

    block_errors: list[float] = field(default_factory=list)
    block_seconds: list[float] = field(default_factory=list)


def check_calibration(calibration: object) -> None:
    """Raise a clear ValueError unless `calibration` is a 2-D integer tensor of token ids."""
    if calibration is None:
        raise ValueError(
            "calibration is required: pass calibration=a LongTensor of token ids (n_samples x seq_len), "
            "for example from jdlib.compress.calibration_from_texts or calibration_from_c4"
        )
    if (
        not torch.is_tensor(calibration)
        or calibration.dim() != 2
        or calibration.dtype.is_floating_point
        or calibration.dtype.is_complex
        or calibration.dtype == torch.bool
        or calibration.numel() == 0
    ):
        desc = f"a tensor of shape {tuple(calibration.shape)} and dtype {calibration.dtype}" if torch.is_tensor(
            calibration
        ) else type(calibration).__name__
        raise ValueError(
            f"calibration must be a non-empty LongTensor of token ids (n_samples x seq_len), got {desc}"
        )


class _Captured(Exception):
    """Raised by the capture pre-hook once it has the first block's inputs: the blocks need not run."""


@dataclass
class BlockInputs:
    """The first block's inputs per calibration batch, and the other arguments the blocks get.

    The other arguments (attention mask, position embeddings, cache settings, ...) depend only
    on the batch shape, since calibration windows have no padding, so they are kept once per
    batch size and replayed for every block.
    """

    hidden: list[torch.Tensor] = field(default_factory=list)
    args: dict[int, tuple] = field(default_factory=dict)
    kwargs: dict[int, dict[str, Any]] = field(default_factory=dict)

    def call(self, block: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """The hidden states `block` outputs on `hidden`, given the arguments the model gave the first block."""
        size = hidden.shape[0]
        out = block(hidden, *self.args[size], **self.kwargs[size])
        # BERT's and Llama's blocks return the tensor, MPNet's a tuple led by it (then its attentions)
        return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def capture_block_inputs(model: nn.Module, calibration: torch.Tensor, batch_size: int = 1) -> BlockInputs:
    """The first block's inputs for each calibration batch, captured by a forward pre-hook.

    The hook stops the forward by raising once it has what it needs, so only the embedding
    part of the model runs: a pre-hook cannot skip its module, and letting every block and the
    head run would cost a full dense forward per batch.
    """
    check_calibration(calibration)
    first = find_blocks(model)[0]
    captured = BlockInputs()

    def hook(module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        hidden = args[0]
        captured.hidden.append(hidden)
        captured.args.setdefault(hidden.shape[0], args[1:])
        captured.kwargs.setdefault(hidden.shape[0], dict(kwargs))
        raise _Captured

    device = model.get_input_embeddings().weight.device
    handle = first.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for batch in calibration.split(batch_size):
            try:
                model(input_ids=batch.to(device), use_cache=False)
            except _Captured:
                continue
            raise RuntimeError(f"{type(model).__name__} finished a forward without calling its first block")
    finally:
        handle.remove()
    return captured


class _InputStatistics:
    """Forward hooks that feed each distinct input of a block's linears to one statistic.

    Linears that receive the same tensor object in one block call (q, k, v; gate, up) share
    one statistic, accumulated once. The tensors are held until the call ends so the identity
    check cannot be fooled by a freed tensor's id being reused.
    """

    def __init__(self, linears: dict[str, nn.Linear], statistic: Callable[[nn.Linear], Statistic], share: bool):
        self.by_linear: dict[str, Statistic] = {}
        self._statistic, self._share = statistic, share
        self._seen: list[tuple[torch.Tensor, Statistic]] = []
        self._handles = [m.register_forward_hook(self._hook(name)) for name, m in linears.items()]

    def _hook(self, name: str):
        def hook(module: nn.Linear, args: tuple, output: torch.Tensor) -> None:
            x = args[0]
            if self._share:
                shared = next((stat for seen, stat in self._seen if seen is x), None)
                if shared is not None:
                    self.by_linear.setdefault(name, shared)
                    return
            stat = self.by_linear.get(name)
            if stat is None:
                stat = self.by_linear[name] = self._statistic(module)
            stat.add(x)
            if self._share:
                self._seen.append((x, stat))

        return hook

    def end_call(self) -> None:
        self._seen.clear()

    def remove(self) -> None:
        self.end_call()
        for handle in self._handles:
            handle.remove()


def run_layerwise(
    model: nn.Module,
    calibration: torch.Tensor,
    compress_block: CompressBlock,
    statistic: Callable[[nn.Linear], Statistic] | None = None,
    share_inputs: bool = True,
    batch_size: int = 1,
) -> LayerwiseResult:
    """Compress the blocks in order, each seeing the outputs of the compressed blocks before it.

    For each block: run it dense on its calibration inputs (collecting `statistic` for its
    linears when given), call `compress_block`, run it again to get the inputs of the next
    block, and record ||Y_compressed - Y_dense|| / ||Y_dense|| over the calibration data.
    `share_inputs=False` gives every linear its own statistic (the baseline the bench times).
    """
    blocks = find_blocks(model)
    names = {id(m): n for n, m in model.named_modules()}
    was_training = model.training
    model.eval()
    result = LayerwiseResult()
    try:
        with torch.no_grad():
            inputs = capture_block_inputs(model, calibration, batch_size)
            for block in blocks:
                start = time.perf_counter()
                linears = block_linears(block)
                hooks = _InputStatistics(linears, statistic, share_inputs) if statistic else None
                dense = []
                try:
                    for x in inputs.hidden:
                        dense.append(inputs.call(block, x))
                        if hooks:
                            hooks.end_call()
                finally:
                    if hooks:
                        hooks.remove()
                compress_block(names[id(block)], linears, hooks.by_linear if hooks else {})
                del hooks  # frees the statistics (Hessians) before the re-run
                diff = norm = 0.0
                for i, (x, y) in enumerate(zip(inputs.hidden, dense)):
                    out = inputs.call(block, x)
                    diff += (out.float() - y.float()).square().sum()
                    norm += y.float().square().sum()
                    inputs.hidden[i] = out
                del dense
                result.block_errors.append(math.sqrt(float(diff) / float(norm)) if float(norm) else 0.0)
                result.block_seconds.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return result


def compress_blocks(
    model: nn.Module,
    compress_block: CompressBlock,
    calibration: torch.Tensor | None = None,
    statistic: Callable[[nn.Linear], Statistic] | None = None,
    share_inputs: bool = True,
    batch_size: int = 1,
) -> LayerwiseResult:
    """Layer by layer on `calibration` when given (measuring block errors); else block by block directly."""
    if calibration is not None or statistic is not None:
        return run_layerwise(model, calibration, compress_block, statistic, share_inputs, batch_size)
    names = {id(m): n for n, m in model.named_modules()}
    result = LayerwiseResult()
    with torch.no_grad():
        for block in find_blocks(model):
            start = time.perf_counter()
            compress_block(names[id(block)], block_linears(block), {})
            result.block_seconds.append(time.perf_counter() - start)
    return result


def _windows(
    n_docs: int, tokens_of: Callable[[int], Sequence[int]], n_samples: int, seq_len: int, seed: int
) -> torch.Tensor:
    """n_samples windows of seq_len tokens, each at a seeded random place of a random document.

    Documents shorter than seq_len are redrawn, as the wanda repo samples C4.
    """
    if n_samples < 1 or seq_len < 1:
        raise ValueError(f"n_samples={n_samples} and seq_len={seq_len} must both be at least 1")
    rng = random.Random(seed)
    rows: list[Sequence[int]] = []
    while len(rows) < n_samples:
        ids = tokens_of(rng.randrange(n_docs))
        if len(ids) >= seq_len:
            start = rng.randint(0, len(ids) - seq_len)
            rows.append(ids[start : start + seq_len])
    return torch.tensor(rows, dtype=torch.long)


def calibration_from_texts(
    tokenizer: Any, texts: Iterable[str], n_samples: int, seq_len: int, seed: int = 0
) -> torch.Tensor:
    """Calibration token ids (n_samples x seq_len): seeded windows of one stream of the tokenized texts.

    Each text is tokenized on its own (with the tokenizer's special tokens, as a C4 document is)
    and the token lists are concatenated, so windows may span texts.
    """
    ids = [token for text_ids in tokenizer(list(texts))["input_ids"] for token in text_ids]
    if len(ids) < seq_len:
        raise ValueError(
            f"the texts give {len(ids)} tokens, fewer than seq_len={seq_len}: pass more texts or a shorter seq_len"
        )
    return _windows(1, lambda _: ids, n_samples, seq_len, seed)


def calibration_from_c4(tokenizer: Any, n_samples: int = 128, seq_len: int = 2048, seed: int = 0) -> torch.Tensor:
    """Calibration token ids from the first shard of C4's training split, sampled as the wanda repo does."""
    try:
        from datasets import load_dataset

        docs = load_dataset("allenai/c4", data_files=C4_SHARD, split="train")
    except Exception as err:  # any failure to reach or read the hub means the same thing to the user
        raise RuntimeError(
            f"calibration_from_c4 could not load {C4_SHARD} of allenai/c4 from the Hugging Face hub "
            f"({type(err).__name__}: {err}). It needs internet or a cached copy of that shard; "
            "offline, build calibration with calibration_from_texts."
        ) from err
    return _windows(len(docs), lambda i: tokenizer(docs[i]["text"])["input_ids"], n_samples, seq_len, seed)


CALIBRATION_SOURCES = ("task", "c4")


def calibration_for(source: str, tokenizer: Any, texts: Sequence[str], n_samples: int, seq_len: int,
                    seed: int = 0) -> torch.Tensor:
    """Calibration token ids from `source`: "task" (the given texts, the embedded scale) or "c4" (the paper's)."""
    if source == "c4":
        return calibration_from_c4(tokenizer, n_samples, seq_len, seed)
    if source == "task":
        return calibration_from_texts(tokenizer, texts, n_samples, seq_len, seed)
    raise ValueError(f"calibration={source!r} is not valid: use one of {', '.join(CALIBRATION_SOURCES)}")
