"""Simulated weight quantization of the block linears: round-to-nearest and GPTQ (Frantar et al., 2023).

Weights stay floating point but take values on an asymmetric min-max grid per output row, or
per group of `group_size` input columns. The grid always contains zero, so weights already
exactly zero (pruned) stay exactly zero.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .calibrate import compress_blocks
from .obs import Hessian, aligned_block_columns, obs_sweep

QUANT_METHODS = ("rtn", "gptq")
BITS = range(2, 9)


@dataclass
class Grid:
    """x ~ scale * (code - zero) with integer codes in 0..2^bits - 1, one scale and zero per row."""

    scale: torch.Tensor
    zero: torch.Tensor
    maxq: int

    @classmethod
    def fit(cls, w: torch.Tensor, bits: int) -> Grid:
        """The min-max grid of each row of `w`, widened to contain zero (the GPTQ quantizer)."""
        maxq = 2**bits - 1
        low = w.min(dim=1, keepdim=True).values.clamp(max=0)
        high = w.max(dim=1, keepdim=True).values.clamp(min=0)
        empty = (low == 0) & (high == 0)
        low, high = low.masked_fill(empty, -1), high.masked_fill(empty, 1)
        scale = (high - low) / maxq
        return cls(scale, torch.round(-low / scale), maxq)

    def round(self, w: torch.Tensor) -> torch.Tensor:
        codes = torch.clamp(torch.round(w / self.scale) + self.zero, 0, self.maxq)
        return self.scale * (codes - self.zero)


def round_to_nearest(weight: torch.Tensor, bits: int, group_size: int | None = None) -> torch.Tensor:
    """Each row (or group of columns) rounded to its own grid, in fp32."""
    w = weight.detach().float()
    group = group_size or w.shape[1]
    out = torch.empty_like(w)
    for j in range(0, w.shape[1], group):
        out[:, j : j + group] = Grid.fit(w[:, j : j + group], bits).round(w[:, j : j + group])
    return out


def realised_bits(weight: torch.Tensor, group_size: int | None = None) -> float:
    """log2 of the most distinct values in one row of one quantization group (columns in grid order)."""
    group = group_size or weight.shape[1]
    most = 1
    for j in range(0, weight.shape[1], group):
        values = weight[:, j : j + group].sort(dim=1).values
        most = max(most, 1 + int((values[:, 1:] != values[:, :-1]).sum(dim=1).max()))
    return math.log2(most)


class _QuantRule:
    """GPTQ's column values: the grid of the row (or of the group, fitted when the sweep reaches it,
    on the weights updated so far), with weights that were exactly zero kept at zero."""

    def __init__(self, weight: torch.Tensor, bits: int, group_size: int | None, zero: torch.Tensor):
        self.bits, self.group_size, self.zero = bits, group_size, zero
        self.grid = None if group_size else Grid.fit(weight.detach().float(), bits)

    def __call__(self, i1: int, i: int, w1: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        if self.group_size and (i1 + i) % self.group_size == 0:
            self.grid = Grid.fit(w1[:, i : i + self.group_size], self.bits)
        return self.grid.round(w1[:, i : i + 1])[:, 0].masked_fill(self.zero[:, i1 + i], 0)


def gptq_linear(
    linear: nn.Linear, hessian: Hessian, bits: int, group_size: int | None = None, act_order: bool = False
) -> float:
    """Quantize `linear` in place with GPTQ; return its realised bits."""
    inverse = hessian.inverse(act_order)
    zero = linear.weight == 0
    if inverse.perm is not None:
        zero = zero[:, inverse.perm]
    rule = _QuantRule(linear.weight, bits, group_size, zero)
    # Column blocks hold whole groups, so each group's grid is fitted on fully updated weights.
    w = obs_sweep(linear.weight, inverse, rule, aligned_block_columns(group_size or 1))
    linear.weight.copy_(w)
    return realised_bits(linear.weight if inverse.perm is None else linear.weight[:, inverse.perm], group_size)


@dataclass
class QuantReport:
    method: str
    bits: int
    group_size: int | None
    act_order: bool
    realised_bits: float
    per_layer: dict[str, float] = field(repr=False, default_factory=dict)
    block_errors: list[float] = field(default_factory=list)
    block_seconds: list[float] = field(repr=False, default_factory=list)
    wall_time_s: float = 0.0


def quantize(
    model: nn.Module,
    method: str = "rtn",
    bits: int = 4,
    group_size: int | None = None,
    calibration: torch.Tensor | None = None,
    act_order: bool = False,
    *,
    share_inputs: bool = True,
    batch_size: int = 1,
) -> QuantReport:
    """Quantize the block linear weights of `model` in place (simulated) and report realised bits.

    GPTQ needs `calibration`; round-to-nearest uses it only to measure the block errors.
    `share_inputs=False` computes one Hessian per linear instead of one per distinct input.
    """
    if method not in QUANT_METHODS:
        raise ValueError(f"method={method!r} is not valid: use one of {', '.join(QUANT_METHODS)}")
    if not isinstance(bits, int) or isinstance(bits, bool) or bits not in BITS:
        raise ValueError(f"bits={bits!r} is not valid: use an integer from 2 to 8")
    if group_size is not None and (not isinstance(group_size, int) or group_size < 1):
        raise ValueError(f"group_size={group_size!r} is not valid: use None (per row) or a positive integer")
    if act_order and method != "gptq":
        raise ValueError("act_order=True is a GPTQ option: use it with method='gptq'")
    if method == "gptq" and calibration is None:
        raise ValueError(
            "method='gptq' needs calibration: pass calibration=a LongTensor of token ids (n_samples x seq_len)"
        )
    start = time.perf_counter()
    per_layer: dict[str, float] = {}

    def compress(prefix: str, linears: dict[str, nn.Linear], stats: dict[str, Hessian]) -> None:
        for name, linear in linears.items():
            if method == "gptq":
                per_layer[f"{prefix}.{name}.weight"] = gptq_linear(linear, stats[name], bits, group_size, act_order)
            else:
                linear.weight.copy_(round_to_nearest(linear.weight, bits, group_size))
                per_layer[f"{prefix}.{name}.weight"] = realised_bits(linear.weight, group_size)

    statistic = Hessian if method == "gptq" else None
    result = compress_blocks(model, compress, calibration, statistic, share_inputs, batch_size)
    return QuantReport(
        method, bits, group_size, act_order, max(per_layer.values()), per_layer,
        result.block_errors, result.block_seconds, time.perf_counter() - start,
    )
