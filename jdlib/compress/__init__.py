"""Compression of the prunable weights: pruning (magnitude, and calibration-based methods)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .magnitude import magnitude_masks, magnitude_ranking
from .masks import GlobalRanking, Masks, parse_pattern, pattern_sparsity, prunable_weights

PRUNE_METHODS = ("magnitude",)


@dataclass
class PruneReport:
    method: str
    pattern: str
    scope: str
    target_sparsity: float
    realised_sparsity: float
    per_layer: dict[str, float] = field(repr=False, default_factory=dict)
    wall_time_s: float = 0.0


def prune(
    model: nn.Module,
    method: str = "magnitude",
    sparsity: float = 0.5,
    pattern: str = "unstructured",
    scope: str = "global",
    calibration: torch.Tensor | None = None,
    ranking: GlobalRanking | None = None,
) -> tuple[Masks, PruneReport]:
    """Prune `model` in place; return the keep-masks and a report of the realised sparsity.

    `ranking` (from `magnitude_ranking`) lets a sweep rank the pre-trained weights once and
    derive every sparsity level from it.
    """
    if method not in PRUNE_METHODS:
        raise ValueError(f"method={method!r} is not valid: use one of {', '.join(PRUNE_METHODS)}")
    target = pattern_sparsity(pattern, sparsity)
    if not 0.0 <= target < 1.0:
        raise ValueError(f"sparsity={sparsity!r} is not valid: use a number in [0, 1)")
    start = time.perf_counter()
    masks = Masks(magnitude_masks(model, target, pattern, scope, ranking))
    masks.apply(model)
    report = PruneReport(
        method, pattern, scope, target, masks.sparsity, masks.per_layer(), time.perf_counter() - start
    )
    return masks, report


__all__ = ["prune", "PruneReport", "Masks", "magnitude_ranking", "prunable_weights", "parse_pattern"]
