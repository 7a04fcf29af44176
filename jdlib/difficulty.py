"""The difficulty knobs of the paper's settings."""
from __future__ import annotations

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
