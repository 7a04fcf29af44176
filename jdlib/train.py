"""Fine-tuning with a task head, under a transfer mode (the paper's recipe by default).

A split is tokenised once into padded tensors (`Encoded`). On the CPU each batch is cut to its
longest item, as a padding collator does. On a CUDA device a MiniLM-sized step at batch 32 is
bound by kernel launches, not arithmetic, so there the data stays on the device, every batch has
one shape (the split padded to its longest item; the last batch filled with ignored rows), and
the whole step (forward under bf16 autocast, backward, the transfer mode's masking, fused AdamW)
is captured once as a CUDA graph and replayed; losses stay on the device until the end.

The head follows the task's kind, on one path: a classification split (`text`, `label`) is one
sequence per item; a multiple-choice split (`text`, `options`, `label`) is one (text, option)
pair per option, as transformers' `AutoModelForMultipleChoice` takes them ([questions, options,
length] inputs, one logit per option, cross-entropy over a question's options).
"""
from __future__ import annotations

import math
import random
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from .compress.masks import Masks
from .models import LoadedModel
from .transfer import Transfer

IGNORE = -100  # the label a classification loss skips: fills the last fixed-shape batch
PRECISIONS = ("fp32", "bf16")
# The fine-tuning computation's version, part of every fine-tuning cell's key: bump it whenever the
# same cell would train differently (recipe, data order, tokenising, head), so rows of code that
# computes differently are never read as one grid. 2: a fixed number of updates (`steps`), data cycled
# in fresh permutations; deterministic algorithms on CUDA.
RECIPE = 2


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def deterministic(enabled: bool = True) -> Iterator[None]:
    """Run the block with PyTorch's deterministic algorithms (the same key, the same metrics on a GPU).

    cuBLAS needs CUBLAS_WORKSPACE_CONFIG before its first call; jdlib sets it on import (see
    jdlib/__init__.py) unless the user has. The previous mode is restored on exit.
    """
    before = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(enabled)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=warn_only)


def update_count(examples: int, batch_size: int, epochs: int | None, steps: int | None) -> int:
    """The optimizer updates of a run: `steps` when set (the same at every data fraction), else `epochs`
    passes over the data (3, the paper's, when neither is set)."""
    if epochs is not None and steps is not None:
        raise ValueError(f"epochs={epochs!r} and steps={steps!r}: set one of them (the other None)")
    return steps if steps is not None else (epochs or 3) * math.ceil(examples / batch_size)


@dataclass
class Encoded:
    """A tokenised split: every model input padded to the split's longest item (a multiple of 8)."""

    inputs: dict[str, torch.Tensor]  # [n, length] each (multiple choice: [n, options, length]): input_ids, ...
    labels: torch.Tensor  # [n]: the class, or the gold option
    lengths: torch.Tensor  # [n] tokens of each item (multiple choice: of its longest option)
    left_padded: bool

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def length(self) -> int:
        return next(iter(self.inputs.values())).shape[-1]

    @property
    def options(self) -> int:
        """Sequences per item: the options of a multiple-choice question, 1 for classification."""
        shape = next(iter(self.inputs.values())).shape
        return shape[1] if len(shape) == 3 else 1

    def to(self, device: torch.device | str) -> Encoded:
        return Encoded({k: v.to(device) for k, v in self.inputs.items()}, self.labels.to(device),
                       self.lengths.to(device), self.left_padded)

    def batch(self, index: torch.Tensor, trim: bool = False) -> dict[str, torch.Tensor]:
        """The items at `index`; `trim` cuts the padding to the batch's longest item (CPU only: it reads a value)."""
        columns = slice(None)
        if trim:
            longest = int(self.lengths[index].max())
            columns = slice(self.length - longest, None) if self.left_padded else slice(None, longest)
        return {**{k: v[index, ..., columns] for k, v in self.inputs.items()}, "labels": self.labels[index]}


_ENCODED: OrderedDict[str, Encoded] = OrderedDict()
_ENCODED_KEEP = 8  # a sweep's cells reuse the same few splits (a task's validation, a fraction's subset)


def encode(loaded: LoadedModel, dataset: datasets.Dataset, max_length: int) -> Encoded:
    """Tokenise the `text` (and `text_pair`, unless it is all None) column, truncated to `max_length`; keep `label`.

    A split with an `options` column is multiple choice: each question's text is paired with each
    of its options (the same number for every question), truncated together to `max_length`.
    """
    tok = loaded.tokenizer
    choice = "options" in dataset.column_names
    check_head(loaded, choice)
    ident = f"{dataset._fingerprint}|{type(tok).__name__}|{tok.name_or_path}|{len(tok)}|{max_length}"
    if ident in _ENCODED:
        _ENCODED.move_to_end(ident)
        return _ENCODED[ident]
    columns = dataset[:]
    # GLUE's one-sentence tasks carry a text_pair column of None (jdlib.data.hub)
    pair = any(p is not None for p in columns.get("text_pair", ()))
    first, second = columns["text"], columns["text_pair"] if pair else None
    if choice:
        options = option_count(columns["options"])
        first = [text for text in first for _ in range(options)]
        second = [option for row in columns["options"] for option in row]
    # NumPy arrays, then tensors sharing their memory: building tensors from the lists directly
    # took longer than the tokenising.
    enc = tok(first, second, truncation=True, max_length=max_length, padding="longest", pad_to_multiple_of=8,
              return_tensors="np")
    inputs = {k: torch.from_numpy(v).long() for k, v in enc.items() if k in tok.model_input_names}
    lengths = torch.from_numpy(enc["attention_mask"]).sum(1)
    if choice:
        inputs = {k: v.view(len(dataset), options, -1) for k, v in inputs.items()}
        lengths = lengths.view(len(dataset), options).amax(1)
    encoded = Encoded(inputs, torch.tensor(columns["label"], dtype=torch.long), lengths, tok.padding_side == "left")
    _ENCODED[ident] = encoded
    if len(_ENCODED) > _ENCODED_KEEP:
        _ENCODED.popitem(last=False)
    return encoded


def check_head(loaded: LoadedModel, choice: bool) -> None:
    """Raise a ValueError unless the model's head fits the split: multiple choice for one with options."""
    if choice != (loaded.head == "multiple_choice"):
        split = "a multiple-choice split (an options column)" if choice else "a classification split (no options)"
        wanted = "multiple_choice" if choice else "classification"
        raise ValueError(f"{split} needs a model loaded with head={wanted!r}; {loaded.name} has head={loaded.head!r}")


def option_count(options: list[list[str]]) -> int:
    """The number of options every question offers; a ValueError if they differ."""
    counts = sorted({len(row) for row in options})
    if len(counts) != 1 or counts[0] < 2:
        raise ValueError(f"options: multiple-choice fine-tuning needs the same number (2 or more) of options for "
                         f"every question; this split has {', '.join(map(str, counts)) or 'no questions'}")
    return counts[0]


def init_head(loaded: LoadedModel, seed: int) -> None:
    """Re-initialise the task head (everything outside the pre-trained base model) for `seed`."""
    model = loaded.model
    prefix = model.base_model_prefix
    std = getattr(model.config, "initializer_range", 0.02)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and not name.startswith(prefix):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if module.bias is not None:
                    module.bias.zero_()


def fill_last_batch(order: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An epoch's item order as [steps, batch_size] indices, and which of them are real items.

    The last batch is filled with items from the epoch's start (repeated, for a split smaller than a
    batch), marked not real: their label is ignored, so its loss is the mean over its real items,
    as the unfilled batch's would be.
    """
    n = len(order)
    steps = math.ceil(n / batch_size)
    index = order.repeat(math.ceil(steps * batch_size / n))[:steps * batch_size]
    real = torch.arange(len(index)) < n
    return index.view(steps, batch_size), real.view(steps, batch_size)


def finetune(
    loaded: LoadedModel,
    train: datasets.Dataset,
    transfer: str = "dense",
    masks: Masks | None = None,
    epochs: int | None = None,
    batch_size: int = 32,
    lr: float = 2e-5,
    max_length: int = 128,
    seed: int = 42,
    warmup_ratio: float = 0.06,
    weight_decay: float = 0.0,
    progress: bool = True,
    *,
    precision: str | None = None,
    fixed_shape: bool | None = None,
    cuda_graph: bool | None = None,
    compile: bool = False,
    steps: int | None = None,
    deterministic_algorithms: bool = True,
) -> list[float]:
    """Fine-tune `loaded.model` in place on `train` (AdamW, linear decay with warm-up); return the step losses.

    The run lasts `epochs` passes over `train` (3 unless set), or, with `steps` set instead, exactly
    `steps` optimizer updates whatever the size of `train`: the data is cycled, each pass in a fresh
    seeded order, so a small data fraction is less data, not less training.
    A classification model trains on columns text (text_pair), label; a multiple-choice model on
    text, options, label, `batch_size` questions (each with all its options) a step.
    Trains on the model's device, and the defaults follow it: on CUDA, bf16 autocast
    (`precision="bf16"`; the weights and the optimizer state stay fp32), fixed-shape batches and
    a CUDA graph of the step; on the CPU, fp32 and each batch cut to its longest item. `compile`
    runs the model through `torch.compile` (CUDA only: a slow first call, faster steps after).
    On CUDA, `deterministic_algorithms` (the default) makes a rerun bit-identical on the same device.
    """
    model = loaded.model
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    precision = precision or ("bf16" if cuda else "fp32")
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not valid: use one of {', '.join(PRECISIONS)}")
    fixed_shape = cuda if fixed_shape is None else fixed_shape
    cuda_graph = cuda if cuda_graph is None else cuda_graph
    if cuda_graph and not (cuda and fixed_shape):
        raise ValueError("cuda_graph=True needs the model on a CUDA device and fixed_shape=True")
    if compile and not cuda:
        raise ValueError("compile=True needs the model on a CUDA device")

    with deterministic(cuda and deterministic_algorithms):
        seed_everything(seed)
        enforcer = Transfer(model, masks, transfer)
        data = encode(loaded, train, max_length).to(device)
        generator = torch.Generator().manual_seed(seed)
        total = update_count(len(data), batch_size, epochs, steps)
        if cuda_graph:
            # A tensor learning rate: the captured optimizer step reads the schedule's current value.
            optimizer = torch.optim.AdamW(model.parameters(), lr=torch.tensor(lr, device=device),
                                          weight_decay=weight_decay, fused=True, capturable=True)
        else:
            optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                                          **({"fused": True} if cuda else {}))
        scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(warmup_ratio * total), total)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=False)
        forward = torch.compile(model) if compile else model

        def eager_step(batch: dict[str, torch.Tensor]) -> torch.Tensor:
            with autocast:
                loss = forward(**batch).loss
            loss.backward()
            enforcer.before_step()
            optimizer.step()
            enforcer.after_step()
            return loss.detach()

        model.train()
        graphed = None
        if cuda_graph:
            try:
                graphed = GraphedStep(eager_step, data, batch_size, optimizer)
            except RuntimeError as err:  # an op that cannot be captured: the same steps, launched one by one
                warnings.warn(f"fine-tuning without a CUDA graph: capturing the step failed ({err})", stacklevel=2)
        losses = torch.empty(total, device=device)
        bar = tqdm(total=total, desc=f"fine-tune ({transfer})", disable=not progress, leave=False)
        done = 0
        while done < total:
            order = torch.randperm(len(data), generator=generator)
            if fixed_shape:
                index, real = (t.to(device) for t in fill_last_batch(order, batch_size))
                batches = zip(index, real)
            else:
                batches = ((i, None) for i in order.split(batch_size))
            for index, real in batches:
                if done == total:
                    break
                if graphed is not None:
                    loss = graphed(index, real)
                else:
                    batch = data.batch(index, trim=not fixed_shape)
                    if real is not None:
                        batch["labels"] = torch.where(real, batch["labels"], IGNORE)
                    loss = eager_step(batch)
                    optimizer.zero_grad()
                losses[done].copy_(loss)
                scheduler.step()
                done += 1
                bar.update()
        bar.close()
        optimizer.zero_grad(set_to_none=True)
        model.eval()
        return losses.tolist()


class GraphedStep:
    """One optimisation step captured as a CUDA graph; calling it with a batch's indices replays it.

    The graph gathers the batch from the device-resident split itself. The warm-up that capture
    needs runs at learning rate zero and the optimizer state is zeroed after it, so the first
    real step starts from the weights and state it would start from without a graph.
    """

    def __init__(self, step: Callable[[dict[str, torch.Tensor]], torch.Tensor], data: Encoded, batch_size: int,
                 optimizer: torch.optim.Optimizer):
        device = data.labels.device
        self.index = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.real = torch.ones(batch_size, dtype=torch.bool, device=device)
        (self.group,) = optimizer.param_groups
        self.lr = self.group["lr"]

        def body() -> torch.Tensor:
            batch = data.batch(self.index)
            batch["labels"] = torch.where(self.real, batch["labels"], IGNORE)
            return step(batch)

        scheduled = self.lr.clone()
        try:
            self.lr.zero_()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    optimizer.zero_grad(set_to_none=True)
                    body()
            torch.cuda.current_stream().wait_stream(side)
            with torch.no_grad():
                for state in optimizer.state.values():
                    for value in state.values():
                        value.zero_()
            optimizer.zero_grad(set_to_none=True)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph, capture_error_mode="thread_local"):
                self.loss = body()
        except RuntimeError:
            optimizer.zero_grad(set_to_none=True)
            raise
        finally:
            self.lr.copy_(scheduled)

    def __call__(self, index: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Run the step on the items at `index` (`real` False for filler items); return its loss, on the device."""
        self.index.copy_(index)
        self.real.copy_(real)
        if self.group["lr"] is not self.lr:  # a scheduler that replaced the tensor instead of filling it
            self.lr.fill_(float(self.group["lr"]))
            self.group["lr"] = self.lr
        self.graph.replay()
        return self.loss
