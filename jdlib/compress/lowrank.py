"""Low-rank approximation: each block linear weight replaced by its truncated SVD (Eckart-Young)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .calibrate import compress_blocks


@dataclass
class LowRankReport:
    rank: int | None
    energy: float | None
    params_ratio: float  # parameters of the factored form over the dense ones, all layers
    per_layer: dict[str, int] = field(repr=False, default_factory=dict)  # realised rank
    block_errors: list[float] = field(default_factory=list)
    block_seconds: list[float] = field(repr=False, default_factory=list)
    wall_time_s: float = 0.0


def truncated_svd(weight: torch.Tensor, rank: int | None = None, energy: float | None = None) -> tuple[torch.Tensor, int]:
    """The best approximation of `weight` of rank `rank`, or of the least rank keeping `energy` of
    the squared singular values; and its realised rank (singular values above numerical noise)."""
    u, s, vh = torch.linalg.svd(weight.detach().float(), full_matrices=False)
    if rank is None:
        kept = s.square().cumsum(0) / s.square().sum()
        rank = int(torch.searchsorted(kept, torch.tensor(energy, device=kept.device))) + 1
    rank = min(rank, s.numel())
    tolerance = s.max() * max(weight.shape) * torch.finfo(s.dtype).eps
    return (u[:, :rank] * s[:rank]) @ vh[:rank], int((s[:rank] > tolerance).sum())


def low_rank(
    model: nn.Module,
    rank: int | None = None,
    energy: float | None = None,
    calibration: torch.Tensor | None = None,
    *,
    batch_size: int = 1,
) -> LowRankReport:
    """Replace every block linear weight of `model` in place by its truncated SVD.

    Give exactly one of `rank` (kept singular values per matrix) or `energy` (fraction of the
    squared singular values kept per matrix). `calibration`, when given, measures block errors.
    """
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank (an integer >= 1) or energy (a fraction in (0, 1])")
    if rank is not None and (not isinstance(rank, int) or isinstance(rank, bool) or rank < 1):
        raise ValueError(f"rank={rank!r} is not valid: use an integer >= 1")
    if energy is not None and not 0.0 < energy <= 1.0:
        raise ValueError(f"energy={energy!r} is not valid: use a fraction in (0, 1]")
    start = time.perf_counter()
    per_layer: dict[str, int] = {}
    kept_params = dense_params = 0

    def compress(prefix: str, linears: dict[str, nn.Linear], stats: dict) -> None:
        nonlocal kept_params, dense_params
        for name, linear in linears.items():
            approx, realised = truncated_svd(linear.weight, rank, energy)
            linear.weight.copy_(approx)
            per_layer[f"{prefix}.{name}.weight"] = realised
            rows, cols = linear.weight.shape
            kept_params += realised * (rows + cols)
            dense_params += rows * cols

    result = compress_blocks(model, compress, calibration, batch_size=batch_size)
    return LowRankReport(
        rank, energy, kept_params / dense_params, per_layer,
        result.block_errors, result.block_seconds, time.perf_counter() - start,
    )
