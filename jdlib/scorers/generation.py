"""Open-ended answers: greedy generation, scored by exact match, lenient containment and F1.

- exact match (strict): the normalised prediction equals a normalised gold alias; the
  normalisation is SQuAD's (lowercase, strip punctuation, the articles a/an/the and extra
  whitespace);
- lenient: a normalised gold alias is contained in the normalised prediction (the paper's
  lenient exact match, for answers a chat model wraps in a sentence);
- F1: SQuAD's token F1, the maximum over the gold aliases.
"""
from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence

import torch

from ..models import LoadedModel, fitting_batch
from .loglik import check_tokenizer, encode_text

STOP = ("\n",)  # generation ends at the first newline, as lm-evaluation-harness's QA tasks do


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(a) for a in answers))


def lenient_match(prediction: str, answers: Sequence[str]) -> float:
    """The paper's lenient match (open_closed_book/trivia_vicuna.py): after its normalisation, the
    prediction is in a gold answer or a gold answer is in the prediction. One difference: an empty
    prediction matches nothing here, where the official `"" in gold` counts it correct."""
    pred = lenient_normalize(prediction)
    return float(bool(pred) and any(gold and (gold in pred or pred in gold) for gold in map(lenient_normalize, answers)))


LENIENT_PUNCTUATION = set(string.punctuation + "\u2018\u2019\u00b4`")


def lenient_normalize(text: str) -> str:
    """The official script's normalisation: underscores and punctuation become spaces (SQuAD's
    deletes punctuation), lower case, articles dropped, whitespace collapsed."""
    text = text.replace("_", " ").lower()
    text = "".join(" " if ch in LENIENT_PUNCTUATION else ch for ch in text)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    pred = normalize_answer(prediction).split()
    best = 0.0
    for answer in answers:
        gold = normalize_answer(answer).split()
        if not pred or not gold:
            best = max(best, float(pred == gold))
            continue
        common = sum((collections.Counter(pred) & collections.Counter(gold)).values())
        if common:
            precision, recall = common / len(pred), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def answer_outcomes(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, list[float]]:
    """Per question: exact match (strict), lenient match and F1."""
    n = len(predictions)
    if n != len(answers) or n == 0:
        raise ValueError(f"{n} predictions for {len(answers)} answer lists")
    return {"exact_match": list(map(exact_match, predictions, answers)),
            "exact_match_lenient": list(map(lenient_match, predictions, answers)),
            "f1": list(map(f1_score, predictions, answers))}


def answer_metrics(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match (strict), lenient match and F1 over examples."""
    return {name: sum(values) / len(values) for name, values in answer_outcomes(predictions, answers).items()}


ANSWER_METRICS = ("exact_match", "exact_match_lenient", "f1")


class Generator:
    """Greedy answers of a decoder for the weights it holds, each distinct prompt generated once.

    A prompt's tokens carry the tokenizer's own special tokens, as lm-evaluation-harness encodes a
    generation context (a Llama tokenizer's BOS first, nothing for GPT-2's). Prompts run longest
    first, `batch_size` at a time, or (None) as many as the device's free memory holds with their
    key/value cache (`models.fitting_batch`), so short prompts go in large batches. A prompt
    longer than `max_length - max_new_tokens` tokens keeps its leading special tokens (the BOS)
    and its end (the question), losing the start of its context.
    """

    def __init__(self, loaded: LoadedModel, max_new_tokens: int = 16, batch_size: int | None = 16,
                 max_length: int = 2048, stop: Sequence[str] = STOP):
        if loaded.kind != "decoder":
            raise ValueError(f"generation needs a decoder; {loaded.name} is an {loaded.kind}")
        if max_length < max_new_tokens + 2:
            raise ValueError(f"max_length={max_length} leaves no room for a prompt before max_new_tokens="
                             f"{max_new_tokens}: use max_length >= max_new_tokens + 2")
        check_tokenizer(loaded.tokenizer)
        self.loaded = loaded
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_length = max_length
        self.stop = tuple(stop)
        self.memo: dict[str, str] = {}

    def _cut(self, text: str) -> str:
        for s in self.stop:
            text = text.split(s)[0]
        return text.strip()

    def _prompt_ids(self, prompt: str) -> list[int]:
        tok = self.loaded.tokenizer
        ids = encode_text(tok, prompt)
        lead = len(ids) - len(tok.encode(prompt, add_special_tokens=False))  # the tokenizer's own, before the text
        budget = max(0, self.max_length - self.max_new_tokens - lead)
        return ids[:lead] + ids[max(lead, len(ids) - budget):]

    @torch.no_grad()
    def _generate(self, prompts: list[str]) -> list[str]:
        model, tok = self.loaded.model, self.loaded.tokenizer
        model.eval()
        device = next(model.parameters()).device
        encoded = [self._prompt_ids(p) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))
        answers: dict[int, str] = {}
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        start = 0
        while start < len(order):
            size = self.batch_size or fitting_batch(model, len(encoded[order[start]]) + self.max_new_tokens)
            idx = order[start:start + size]
            start += len(idx)
            width = len(encoded[idx[0]])
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):  # left padding: every prompt ends where generation starts
                ids[row, width - len(encoded[i]):] = torch.tensor(encoded[i])
                mask[row, width - len(encoded[i]):] = 1
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                                 max_new_tokens=self.max_new_tokens, pad_token_id=pad,
                                 eos_token_id=tok.eos_token_id)
            for row, i in enumerate(idx):
                answers[i] = self._cut(tok.decode(out[row, width:], skip_special_tokens=True))
        return [answers[i] for i in range(len(prompts))]

    def __call__(self, prompts: Sequence[str]) -> list[str]:
        missing = list(dict.fromkeys(p for p in prompts if p not in self.memo))
        if missing:
            self.memo.update(zip(missing, self._generate(missing)))
        return [self.memo[p] for p in prompts]
