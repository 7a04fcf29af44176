"""SparseGPT (Frantar and Alistarh, 2023): prune with an OBS update of the remaining weights."""
from __future__ import annotations

import torch
from torch import nn

from .calibrate import LayerwiseResult, run_layerwise
from .masks import parse_pattern, select_nm
from .obs import Hessian, aligned_block_columns, obs_sweep


class _PruneRule:
    """SparseGPT's mask choice by w^2 / [H^-1]_jj^2, made on the current (updated) weights.

    Unstructured: the lowest scores of each column block, adaptively as the reference does,
    with a running count so the matrix loses exactly round(sparsity x its size) weights.
    N:M: per group of M columns, when the sweep reaches the group.
    """

    def __init__(self, weight: torch.Tensor, sparsity: float, nm: tuple[int, int] | None):
        self.keep = torch.ones_like(weight, dtype=torch.bool)
        self.sparsity, self.nm, self.pruned = sparsity, nm, 0

    def __call__(self, i1: int, i: int, w1: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        if self.nm is None and i == 0:
            end = i1 + w1.shape[1]
            k = round(self.sparsity * w1.shape[0] * end) - self.pruned
            scores = (w1.square() / d.square()).flatten()
            block = torch.ones_like(scores, dtype=torch.bool)
            block[scores.sort(stable=True).indices[:k]] = False
            self.keep[:, i1:end] = block.view_as(w1)
            self.pruned += k
        elif self.nm is not None and i % self.nm[1] == 0:
            n, m = self.nm
            scores = w1[:, i : i + m].square() / d[i : i + m].square()
            self.keep[:, i1 + i : i1 + i + m] = select_nm({"group": scores}, n, m)["group"]
        return torch.where(self.keep[:, i1 + i], w1[:, i], 0.0)


def sparsegpt_linear(linear: nn.Linear, hessian: Hessian, sparsity: float, pattern: str = "unstructured") -> torch.Tensor:
    """Prune `linear` in place; return its keep-mask."""
    nm = parse_pattern(pattern)
    if nm and linear.in_features % nm[1]:
        raise ValueError(f"input dimension {linear.in_features} is not divisible by M={nm[1]} for {pattern}")
    rule = _PruneRule(linear.weight, sparsity, nm)
    linear.weight.copy_(obs_sweep(linear.weight, hessian.inverse(), rule, aligned_block_columns(nm[1] if nm else 1)))
    return rule.keep


def prune_sparsegpt(
    model: nn.Module,
    calibration: torch.Tensor,
    sparsity: float,
    pattern: str = "unstructured",
    share_inputs: bool = True,
    batch_size: int = 1,
) -> tuple[dict[str, torch.Tensor], LayerwiseResult]:
    """Prune every block linear in place, layer by layer; return keep-masks by parameter name."""
    parse_pattern(pattern)
    keep: dict[str, torch.Tensor] = {}

    def compress(prefix: str, linears: dict[str, nn.Linear], stats: dict[str, Hessian]) -> None:
        for name, linear in linears.items():
            keep[f"{prefix}.{name}.weight"] = sparsegpt_linear(linear, stats[name], sparsity, pattern)

    return keep, run_layerwise(model, calibration, compress, Hessian, share_inputs, batch_size)
