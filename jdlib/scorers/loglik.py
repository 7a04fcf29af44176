"""Multiple choice by a decoder's log-likelihood of each option, as lm-evaluation-harness scores it.

The reference is lm-evaluation-harness 0.4.13 (a dev dependency; tests/test_harness_agreement.py
and bench/loglik_vs_harness.py compare the two on the same model): a `loglikelihood` request is
(context, continuation), with continuation = target delimiter (" ") + option, and its tokens are
split as `HFLM` splits them for a causal model:

- trailing whitespace of the context moves to the continuation;
- the context's tokens are tokenizer.encode(context) with the tokenizer's own special tokens
  (a Llama tokenizer puts BOS first, GPT-2's puts nothing), the continuation's are those of
  tokenizer.encode(context + continuation) after the context's;
- an empty context is the tokenizer's BOS token (EOS when it has none);
- a sequence longer than max_length + 1 tokens loses tokens from the left (the model reads all
  but the last token).

acc picks the option with the highest summed log-likelihood of its continuation tokens,
acc_norm the highest summed log-likelihood divided by the option's length in characters.

The computation differs from the harness's, not its result: a context shared by several
options (a question's k options, or a few-shot prefix) is read once. A batch of contexts
(right-padded) runs without its last token and keeps its key/value cache; the cache rows are
repeated per continuation, and one batched pass reads each context's last token followed by
all but the last continuation token, at the positions that follow its own context. The harness
reads context + continuation in full for every option.
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..models import LoadedModel, fitting_batch

TARGET_DELIMITER = " "


@dataclass
class ChoiceItem:
    """One multiple-choice question: a context (few-shot demonstrations + question) and options."""

    context: str
    options: list[str]
    gold: int


def prefix_token_id(tokenizer) -> int:
    """The token that stands for an empty context: BOS, or EOS when the tokenizer has no BOS."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_text(tokenizer, text: str) -> list[int]:
    """The text's token ids as the harness encodes a context: with the tokenizer's own special tokens,
    none when the text already starts with the BOS string."""
    specials = not (tokenizer.bos_token and text.startswith(tokenizer.bos_token))
    return tokenizer.encode(text, add_special_tokens=specials)


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """The harness's token ids of (context, continuation); the model reads them concatenated."""
    if context == "":
        cont = tokenizer.encode(continuation, add_special_tokens=False)
        prefix = prefix_token_id(tokenizer)
        return (cont[:1], cont[1:]) if cont[:1] == [prefix] else ([prefix], cont)
    spaces = len(context) - len(context.rstrip())
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    whole = encode_text(tokenizer, context + continuation)
    ctx = encode_text(tokenizer, context)
    # A whitespace-only context leaves no tokens with a tokenizer that adds no BOS, where the
    # harness stops on an assertion; the empty context's prefix token stands in for it.
    return (ctx or [prefix_token_id(tokenizer)]), whole[len(ctx):]


def check_tokenizer(tokenizer) -> None:
    """Special tokens, if any, come only before the text (the context/continuation split, and a
    generation prompt cut from the left, need it)."""
    plain = tokenizer.encode("a b", add_special_tokens=False)
    full = tokenizer.encode("a b")
    if full[len(full) - len(plain):] != plain:
        raise ValueError(f"the tokenizer {type(tokenizer).__name__} adds special tokens after the text "
                         f"({full} for {plain}): the continuation's tokens cannot be split from the context's")


def _cache_of(out):
    for name in ("cache", "past_key_values"):
        cache = getattr(out, name, None)
        if cache is not None:
            return cache
    raise RuntimeError("the model returned no key/value cache")


def _cache_kwarg(model) -> str:
    """transformers 5 calls the cache argument `cache` (older releases: `past_key_values`)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


class LoglikScorer:
    """Summed log-likelihoods of continuations given a context, for the weights the model holds.

    `batch_size` is the number of continuations read in one forward pass, or (None) as many as
    the device's free memory holds (`models.fitting_batch` for the batch's longest context and
    continuation, with their key/value cache); `max_length` the model's window, as the harness's
    `max_length`.
    """

    def __init__(self, loaded: LoadedModel, max_length: int = 2048, batch_size: int | None = 32):
        if loaded.kind != "decoder":
            raise ValueError(f"log-likelihood scoring needs a decoder; {loaded.name} is an {loaded.kind}")
        if max_length < 1 or (batch_size is not None and batch_size < 1):
            raise ValueError(f"max_length={max_length} and batch_size={batch_size} must be at least 1")
        check_tokenizer(loaded.tokenizer)
        self.loaded = loaded
        self.max_length = max_length
        self.batch_size = batch_size
        self.memo: dict[tuple[str, str], float] = {}
        self.forward_passes = 0

    def score(self, requests: Sequence[tuple[str, str]]) -> list[float]:
        """The summed log-likelihood of each (context, continuation), as the harness's `loglikelihood`."""
        missing = list(dict.fromkeys(r for r in requests if r not in self.memo))
        if missing:
            tokens = [self._truncate(*encode_pair(self.loaded.tokenizer, c, x), (c, x)) for c, x in missing]
            self.memo.update(zip(missing, self._score_tokens(tokens)))
        return [self.memo[r] for r in requests]

    def loglikelihoods(self, context: str, options: Sequence[str]) -> list[float]:
        """The summed log-likelihood of " " + option after `context`, per option."""
        return self.score([(context, TARGET_DELIMITER + o) for o in options])

    def choose(self, items: Sequence[ChoiceItem]) -> dict[str, object]:
        """acc and acc_norm over `items`, with the per-item predictions (all items scored in shared batches)."""
        flat = self.score([(item.context, TARGET_DELIMITER + o) for item in items for o in item.options])
        acc, acc_norm, start = [], [], 0
        for item in items:
            ll = np.array(flat[start:start + len(item.options)])
            start += len(item.options)
            acc.append(int(ll.argmax()))
            acc_norm.append(int((ll / np.array([float(len(o)) for o in item.options])).argmax()))
        gold = np.array([item.gold for item in items])
        return {"acc": float((np.array(acc) == gold).mean()), "acc_norm": float((np.array(acc_norm) == gold).mean()),
                "predictions": acc, "predictions_norm": acc_norm}

    def _truncate(self, ctx: list[int], cont: list[int], request: tuple[str, str]) -> tuple[tuple[int, ...], list[int]]:
        if not cont:
            raise ValueError(f"the continuation of {request!r} has no tokens after the context")
        if len(cont) > self.max_length:
            raise ValueError(f"the continuation of {request!r} has {len(cont)} tokens, more than "
                             f"max_length={self.max_length}")
        extra = len(ctx) + len(cont) - (self.max_length + 1)  # the harness keeps the last max_length + 1
        return tuple(ctx[max(extra, 0):]), cont

    @torch.no_grad()
    def _score_tokens(self, requests: list[tuple[tuple[int, ...], list[int]]]) -> list[float]:
        contexts: dict[tuple[int, ...], list[int]] = {}
        for i, (ctx, _) in enumerate(requests):
            contexts.setdefault(ctx, []).append(i)
        # longest contexts first, as the harness orders its batches: little padding, and memory
        # errors show at once; a batch's first context is its longest, and sizes it
        longest_continuation = max(len(cont) for _, cont in requests)
        batches: list[tuple[int, list[tuple[int, ...]]]] = []
        rows = 0
        for ctx in sorted(contexts, key=lambda c: (-len(c), c)):
            if not batches or rows + len(contexts[ctx]) > batches[-1][0]:
                size = self.batch_size or fitting_batch(self.loaded.model, len(ctx) + longest_continuation)
                batches.append((size, []))
                rows = 0
            batches[-1][1].append(ctx)
            rows += len(contexts[ctx])
        scores = [0.0] * len(requests)
        for size, batch in batches:
            self._score_batch([(c, [(i, requests[i][1]) for i in contexts[c]]) for c in batch], scores, size)
        return scores

    def _score_batch(self, batch: list[tuple[tuple[int, ...], list[tuple[int, list[int]]]]], scores: list[float],
                     size: int) -> None:
        """One pass over the contexts (all but their last token), then passes of `size` continuations."""
        model, pad = self.loaded.model, self.loaded.tokenizer.pad_token_id or 0
        model.eval()
        device = next(model.parameters()).device
        width = max(len(ctx) for ctx, _ in batch) - 1
        ctx_mask = torch.zeros((len(batch), width), dtype=torch.long)
        cache = None
        if width:
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            for b, (ctx, _) in enumerate(batch):
                ids[b, :len(ctx) - 1] = torch.tensor(ctx[:-1])
                ctx_mask[b, :len(ctx) - 1] = 1
            # a one-token context has nothing to cache: its row reads one masked-in pad, so that no
            # attention row is empty, and the continuation pass masks it out
            read = ctx_mask.clone()
            read[:, 0] = 1
            out = model(input_ids=ids.to(device), attention_mask=read.to(device),
                        position_ids=torch.arange(width).expand(len(batch), -1).to(device), use_cache=True,
                        **self._only_last_logits(model))
            cache = _cache_of(out)
            self.forward_passes += 1
        rows = [(b, i, cont) for b, (_, conts) in enumerate(batch) for i, cont in conts]
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            # the pass extends the cache in place: when the rows need several passes (one context
            # with more continuations than size), each gets a copy
            chunk_cache = copy.deepcopy(cache) if cache is not None and len(rows) > size else cache
            if chunk_cache is not None:
                chunk_cache.batch_select_indices(torch.tensor([b for b, _, _ in chunk], device=device))
            length = max(len(cont) for _, _, cont in chunk)
            ids = torch.full((len(chunk), length), pad, dtype=torch.long)
            targets = torch.zeros((len(chunk), length), dtype=torch.long)
            mask = torch.zeros((len(chunk), width + length), dtype=torch.long)
            positions = torch.zeros((len(chunk), length), dtype=torch.long)
            for r, (b, _, cont) in enumerate(chunk):
                ctx = batch[b][0]
                ids[r, :len(cont)] = torch.tensor([ctx[-1]] + cont[:-1])
                targets[r, :len(cont)] = torch.tensor(cont)
                mask[r, :width] = ctx_mask[b]
                mask[r, width:width + len(cont)] = 1
                positions[r] = torch.arange(len(ctx) - 1, len(ctx) - 1 + length)
            extra = {_cache_kwarg(model): chunk_cache} if chunk_cache is not None else {}
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                           **extra).logits
            self.forward_passes += 1
            picked = torch.log_softmax(logits.float(), -1).gather(-1, targets.to(device)[..., None])[..., 0]
            sums = (picked * mask[:, width:].to(device)).sum(-1).tolist()
            for (_, i, _), total in zip(chunk, sums):
                scores[i] = total

    @staticmethod
    def _only_last_logits(model) -> dict:
        """The context pass needs no logits: ask for one position where the model allows it."""
        return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
