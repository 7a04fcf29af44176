"""Magnitude pruning: the importance of a weight is its absolute value."""
from __future__ import annotations

import torch
from torch import nn

from .masks import GlobalRanking, parse_pattern, prunable_weights, select


def magnitude_scores(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: w.detach().abs() for name, w in prunable_weights(model).items()}


def magnitude_ranking(model: nn.Module) -> GlobalRanking:
    """The global ranking of the model's prunable weights; compute once, reuse per sparsity."""
    return GlobalRanking(magnitude_scores(model))


def magnitude_masks(
    model: nn.Module,
    sparsity: float,
    pattern: str = "unstructured",
    scope: str = "global",
    ranking: GlobalRanking | None = None,
) -> dict[str, torch.Tensor]:
    """Keep-masks of the largest weights: one threshold over all of them (global unstructured), else
    per matrix, row or N:M group."""
    if ranking is not None or (scope == "global" and parse_pattern(pattern) is None):
        return select(magnitude_scores(model) if ranking is None else ranking.scores, sparsity, pattern, scope, ranking)
    # Each matrix is selected on its own: its scores are made and freed in turn, so no second copy of
    # the model is held (13 GB more at Vicuna-13B's fp16 weights).
    return {name: select({name: w.detach().abs()}, sparsity, pattern, scope)[name]
            for name, w in prunable_weights(model).items()}
