"""Multiple choice by a decoder's log-likelihood of each option, as lm-evaluation-harness does.

Conventions (lm-evaluation-harness, `loglikelihood` requests):

- a request is (context, continuation) with continuation = target delimiter (" ") + option;
  trailing spaces of the context move to the continuation, the continuation's tokens are
  those of tokenize(context + continuation) after the first len(tokenize(context)) tokens,
  and the model reads context tokens followed by continuation tokens;
- acc: the option with the highest summed log-likelihood of its continuation tokens;
- acc_norm: the highest summed log-likelihood divided by the option's length in characters.

One departure, stated: the sequence starts with the tokenizer's BOS token (the harness adds
none for most causal models and uses the end-of-text token only for an empty context). Llama
models are trained with BOS first, and a BOS lets an empty context (zero-shot, closed book)
be scored like any other.

The shared prefix is computed once per example: one forward pass over the context with the
key/value cache on, the cache repeated for the k options, and one batched forward pass over
the k continuations (right-padded; a pad never precedes a real token, so causal attention
makes padding harmless). Continuations already scored for the same context are remembered.
"""
from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..models import LoadedModel

TARGET_DELIMITER = " "


@dataclass
class ChoiceItem:
    """One multiple-choice question: a context (few-shot demonstrations + question) and options."""

    context: str
    options: list[str]
    gold: int


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """The harness's split of (context, continuation) into token ids (no special tokens)."""
    spaces = len(context) - len(context.rstrip(" "))
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"] if context else []
    return ctx, whole[len(ctx):]


def _prefix(tokenizer) -> list[int]:
    return [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []


def _cache_of(out):
    for name in ("cache", "past_key_values"):
        cache = getattr(out, name, None)
        if cache is not None:
            return cache
    raise RuntimeError("the model returned no key/value cache")


class LoglikScorer:
    """Summed log-likelihoods of continuations given a context, for the weights the model holds."""

    def __init__(self, loaded: LoadedModel, max_length: int = 2048, batch_size: int = 32):
        if loaded.kind != "decoder":
            raise ValueError(f"log-likelihood scoring needs a decoder; {loaded.name} is an {loaded.kind}")
        self.loaded = loaded
        self.max_length = max_length
        self.batch_size = batch_size
        self.memo: dict[tuple[str, str], float] = {}
        self.forward_passes = 0

    @torch.no_grad()
    def _score(self, context: str, continuations: list[str]) -> list[float]:
        model, tok = self.loaded.model, self.loaded.tokenizer
        model.eval()
        device = next(model.parameters()).device
        pairs = [encode_pair(tok, context, c) for c in continuations]
        if any(not cont for _, cont in pairs):
            raise ValueError(f"an option of {continuations!r} has no tokens after the context")
        ctx = _prefix(tok) + pairs[0][0]
        if any(p[0] != pairs[0][0] for p in pairs):  # encode_pair's context tokens never depend on the option
            raise AssertionError("context tokens differ between options")
        longest = max(len(cont) for _, cont in pairs)
        if len(ctx) + longest > self.max_length:  # keep the end of the context, as the harness does
            ctx = ctx[len(ctx) + longest - self.max_length:]
        out = model(input_ids=torch.tensor([ctx], device=device), use_cache=True)
        first = torch.log_softmax(out.logits[0, -1].float(), -1)  # predicts each continuation's first token
        cache = _cache_of(out)
        self.forward_passes += 1
        scores = []
        for start in range(0, len(pairs), self.batch_size):
            chunk = [cont for _, cont in pairs[start:start + self.batch_size]]
            # the forward pass extends the cache in place: with several chunks each needs its own copy
            chunk_cache = copy.deepcopy(cache) if len(pairs) > self.batch_size else cache
            chunk_cache.batch_repeat_interleave(len(chunk))
            width = max(len(c) for c in chunk)
            ids = torch.full((len(chunk), width), tok.pad_token_id or 0, dtype=torch.long, device=device)
            mask = torch.zeros((len(chunk), len(ctx) + width), dtype=torch.long, device=device)
            mask[:, :len(ctx)] = 1
            for i, c in enumerate(chunk):
                ids[i, :len(c)] = torch.tensor(c, device=device)
                mask[i, len(ctx):len(ctx) + len(c)] = 1
            logits = model(input_ids=ids, attention_mask=mask, **{_cache_kwarg(model): chunk_cache}).logits.float()
            self.forward_passes += 1
            logprobs = torch.log_softmax(logits, -1)
            for i, c in enumerate(chunk):
                rest = torch.tensor(c[1:], device=device)
                total = first[c[0]] + logprobs[i, torch.arange(len(c) - 1, device=device), rest].sum()
                scores.append(float(total))
        return scores

    def loglikelihoods(self, context: str, options: Sequence[str]) -> list[float]:
        """The summed log-likelihood of " " + option after `context`, per option."""
        continuations = [TARGET_DELIMITER + o for o in options]
        missing = list(dict.fromkeys(c for c in continuations if (context, c) not in self.memo))
        if missing:
            self.memo.update(zip(((context, c) for c in missing), self._score(context, missing)))
        return [self.memo[(context, c)] for c in continuations]

    def choose(self, items: Sequence[ChoiceItem]) -> dict[str, object]:
        """acc and acc_norm over `items`, with the per-item predictions."""
        acc, acc_norm = [], []
        for item in items:
            ll = np.array(self.loglikelihoods(item.context, item.options))
            lengths = np.array([float(len(o)) for o in item.options])
            acc.append(int(ll.argmax()))
            acc_norm.append(int((ll / lengths).argmax()))
        gold = np.array([item.gold for item in items])
        return {"acc": float((np.array(acc) == gold).mean()), "acc_norm": float((np.array(acc_norm) == gold).mean()),
                "predictions": acc, "predictions_norm": acc_norm}


def _cache_kwarg(model) -> str:
    """transformers 5 calls the cache argument `cache` (older releases: `past_key_values`)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"
