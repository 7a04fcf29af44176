"""The difficulty knobs of the paper's settings."""
from __future__ import annotations

import random
from collections.abc import Sequence

import datasets


def subsample(dataset: datasets.Dataset, fraction: float, seed: int = 0) -> datasets.Dataset:
    """A seeded random `fraction` of `dataset` (never a prefix): Setting 1's data adequacy."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction={fraction!r} is not valid: use a number in (0, 1]")
    n = max(1, round(fraction * len(dataset)))
    return dataset.shuffle(seed=seed).select(range(n))


def human_model_gap(human: float, model: float) -> float:
    """(human - model) / human x 100: Setting 5's difficulty, larger is harder."""
    return (human - model) / human * 100.0


def reduce_options(example: dict, n: int, rng: random.Random) -> dict:
    """Setting 2's option count: the example with its gold option and n - 1 distractors
    sampled by `rng`, kept in their original relative order; `label` points at the gold."""
    options, gold = list(example["options"]), example["label"]
    if not 1 <= n <= len(options):
        raise ValueError(f"n={n!r} options is not valid for an example with {len(options)}: use 1..{len(options)}")
    distractors = rng.sample([i for i in range(len(options)) if i != gold], n - 1)
    kept = sorted([gold, *distractors])
    return {**example, "options": [options[i] for i in kept], "label": kept.index(gold)}


def answer_span(context: str, answer: str) -> tuple[int, int] | None:
    """The (start, end) word indices of the first occurrence of `answer` in `context`, or None.

    Words are split on whitespace. The answer matches case-insensitively and regardless of
    whitespace, so "200,000" is found in "200 , 000" and "Earth's" in "Earth ' s" (tokenised
    contexts such as SQuAD's); the span covers every word the match touches.
    """
    needle = "".join(answer.split()).lower()
    if not needle:
        return None
    chars, owner = [], []  # the context's non-space characters and the word each belongs to
    for index, word in enumerate(context.split()):
        chars.append(word.lower())
        owner.extend([index] * len(word))
    found = "".join(chars).find(needle)
    if found < 0:
        return None
    return owner[found], owner[found + len(needle) - 1] + 1


def context_window(context: str, answer: str, percent: float) -> str:
    """Setting 3's context length: `percent`% of the context's words in a window around the answer.

    The window holds round(percent / 100 x words) words (never fewer than the answer's), centred
    on the answer's first occurrence and shifted to stay inside the context; 0 gives the empty
    string (closed book), 100 the whole context. The answer must occur in the context.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"percent={percent!r} is not valid: use a number in [0, 100]")
    if percent == 0:
        return ""
    span = answer_span(context, answer)
    if span is None:
        raise ValueError(f"the answer {answer!r} does not occur in the context")
    words = context.split()
    size = max(span[1] - span[0], round(percent / 100 * len(words)))
    start = span[0] - (size - (span[1] - span[0])) // 2
    start = min(max(0, start), len(words) - size)
    return " ".join(words[start:start + size])


def few_shot(pool, k: int, seed: int, per_class: bool = True, label: str = "label",
             exclude: Sequence[int] = ()) -> list[dict]:
    """Setting 4's demonstrations: k per class (or k in all) drawn from `pool` with `seed`.

    `pool` is a sequence of examples (a `datasets.Dataset` or a list of dicts); `exclude` lists
    pool indices that may not be drawn. The draws are nested: for one seed, the demonstrations
    for k include those for every smaller k, so levels differ only in how many there are. They
    come back in a seeded random order, classes interleaved; a class with fewer than k
    examples gives all it has.
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"k={k!r} is not valid: use a non-negative integer")
    banned = set(exclude)
    indices = [i for i in range(len(pool)) if i not in banned]
    rng = random.Random(seed)
    if per_class:
        labels = list(pool[label]) if hasattr(pool, "column_names") else [pool[i][label] for i in range(len(pool))]
        by_class: dict[object, list[int]] = {}
        for i in indices:
            by_class.setdefault(labels[i], []).append(i)
        chosen = []
        for c in sorted(by_class):
            rng.shuffle(by_class[c])
            chosen += by_class[c][:k]
    else:
        rng.shuffle(indices)
        chosen = indices[:k]
    random.Random(seed + 1).shuffle(chosen)
    return [pool[i] for i in chosen]
