"""Toy plug-in pruning methods: jdlib runs them as method "mypkg.prune:halve" and "mypkg.prune:wanda_rows"."""
from __future__ import annotations

import torch


def halve(weights: dict[str, torch.Tensor], sparsity: float, *, pattern: str = "unstructured") -> dict:
    """Keep the largest-magnitude weights of each row (half of it at sparsity 0.5), or the N largest of every M."""
    masks = {}
    for name, w in weights.items():
        n, m = map(int, pattern.split(":")) if ":" in pattern else (round((1 - sparsity) * w.shape[1]), w.shape[1])
        groups = w.abs().reshape(w.shape[0], -1, m)
        keep = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, groups.topk(n, dim=-1).indices, True)
        masks[name] = keep.reshape(w.shape)
    return masks


def wanda_rows(weights: dict[str, torch.Tensor], sparsity: float, *,
               calibration: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Wanda as a calibrated plug-in: per row, prune the lowest |W_ij| x ||X_j||; returns the new weights."""
    pruned = {}
    for name, w in weights.items():
        scores = w.abs().float() * calibration[name].diagonal().sqrt()
        lowest = scores.sort(dim=1, stable=True).indices[:, :round(sparsity * w.shape[1])]
        pruned[name] = w.scatter(1, lowest, 0.0)
    return pruned
