"""Wanda (Sun et al., 2024): the importance of a weight is |W_ij| x ||X_j||_2 over the calibration tokens."""
from __future__ import annotations

import torch
from torch import nn

from .calibrate import LayerwiseResult, run_layerwise
from .masks import select

SCOPES = ("row", "layer")  # Wanda compares weights per output row; per matrix is its ablation


class InputNorm:
    """Sum over all calibration tokens of each input feature's square, in fp32."""

    def __init__(self, linear: nn.Linear):
        self.squares = torch.zeros(linear.in_features, dtype=torch.float32, device=linear.weight.device)

    def add(self, x: torch.Tensor) -> None:
        self.squares += x.reshape(-1, x.shape[-1]).float().square().sum(0)

    @property
    def norm(self) -> torch.Tensor:
        return self.squares.sqrt()


def prune_wanda(
    model: nn.Module,
    calibration: torch.Tensor,
    sparsity: float,
    pattern: str = "unstructured",
    scope: str = "row",
    share_inputs: bool = True,
    batch_size: int = 1,
) -> tuple[dict[str, torch.Tensor], LayerwiseResult]:
    """Prune every block linear in place, layer by layer; return keep-masks by parameter name."""
    if scope not in SCOPES:
        raise ValueError(f"scope={scope!r} is not valid for wanda: use one of {', '.join(SCOPES)}")
    keep: dict[str, torch.Tensor] = {}

    def compress(prefix: str, linears: dict[str, nn.Linear], stats: dict[str, InputNorm]) -> None:
        for name, linear in linears.items():
            scores = linear.weight.detach().abs().float() * stats[name].norm
            mask = select({name: scores}, sparsity, pattern, scope)[name]
            linear.weight.masked_fill_(~mask, 0)
            keep[f"{prefix}.{name}.weight"] = mask

    return keep, run_layerwise(model, calibration, compress, InputNorm, share_inputs, batch_size)
