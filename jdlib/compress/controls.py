"""Control pruning at matched sparsity: does the loss come from removing small weights, or any?

`random` prunes uniformly random weights (seeded); `large` prunes the largest-magnitude weights, a
stress control meant for low sparsities. Both take magnitude pruning's scopes and patterns and
realise exactly its number of pruned weights, so a comparison at one sparsity is matched.
"""
from __future__ import annotations

import torch
from torch import nn

from .magnitude import magnitude_masks
from .masks import GlobalRanking, parse_pattern, prunable_weights, select


def random_masks(model: nn.Module, sparsity: float, pattern: str = "unstructured", scope: str = "global",
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """Keep-masks of uniformly random weights: each weight's score is drawn from one CPU generator
    seeded with `seed` (the same masks on every device), in the order of `prunable_weights`, and the
    lowest scores are pruned under the scope or N:M pattern. For one seed the masks are nested in
    sparsity, as magnitude pruning's are."""
    generator = torch.Generator().manual_seed(seed)
    weights = prunable_weights(model)

    def scores(w: torch.Tensor) -> torch.Tensor:
        return torch.rand(w.shape, generator=generator).to(w.device)

    if scope == "global" and parse_pattern(pattern) is None:
        return select({name: scores(w) for name, w in weights.items()}, sparsity, pattern, scope)
    return {name: select({name: scores(w)}, sparsity, pattern, scope)[name] for name, w in weights.items()}


def _kept_fraction(count: int, sparsity: float) -> float:
    """The sparsity at which magnitude pruning prunes exactly the weights a `sparsity` level keeps."""
    return (count - round(sparsity * count)) / count


def large_masks(model: nn.Module, sparsity: float, pattern: str = "unstructured", scope: str = "global",
                ranking: GlobalRanking | None = None) -> dict[str, torch.Tensor]:
    """Keep-masks that prune the largest-magnitude weights: the complement of magnitude pruning's
    masks at the complementary level (N:M keeps the N smallest of every M), so the number pruned
    is exactly magnitude's at `sparsity`. `ranking` is the magnitude ranking (global scope)."""
    nm = parse_pattern(pattern)
    if nm:
        n, m = nm
        return {name: ~keep for name, keep in magnitude_masks(model, 0.0, f"{m - n}:{m}", scope).items()}
    weights = prunable_weights(model)
    if scope == "global":
        total = sum(w.numel() for w in weights.values())
        keep = magnitude_masks(model, _kept_fraction(total, sparsity), pattern, scope, ranking)
        return {name: ~k for name, k in keep.items()}
    # one level per comparison group: the matrix ("layer") or its output row ("row"; select checks the scope)
    group = (lambda w: w.numel()) if scope == "layer" else (lambda w: w.shape[1])
    return {name: ~select({name: w.detach().abs()}, _kept_fraction(group(w), sparsity), pattern, scope)[name]
            for name, w in weights.items()}
