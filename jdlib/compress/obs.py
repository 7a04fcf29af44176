"""The Optimal Brain Surgeon column sweep that SparseGPT and GPTQ share (Frantar and Alistarh).

Both methods walk a weight matrix column by column: a rule gives each column its new values
(pruned or quantized), and the error is spread over the columns not yet visited through the
upper Cholesky factor of the inverse Hessian, lazily per block of columns as in the
reference implementations.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

BLOCK_COLUMNS = 128
DAMPING = 0.01
DAMPING_TRIES = 4

# (first column of the block, column inside the block, the block's current weights,
#  diagonal of the block's inverse-Hessian factor) -> the column's new values
ColumnRule = Callable[[int, int, torch.Tensor, torch.Tensor], torch.Tensor]


def aligned_block_columns(unit: int) -> int:
    """A column block size near BLOCK_COLUMNS that is a multiple of `unit` (an N:M group or a quantization group)."""
    return unit * max(1, BLOCK_COLUMNS // unit)


def inverse_cholesky(hessian: torch.Tensor, damping: float = DAMPING) -> torch.Tensor:
    """Upper Cholesky factor of (H + lambda I)^-1, lambda = damping x mean diagonal of H.

    When H + lambda I is not numerically positive definite, lambda grows tenfold and the
    factorization is retried.
    """
    mean_diag = hessian.diagonal().mean()
    for attempt in range(DAMPING_TRIES):
        scale = damping * 10**attempt
        damped = hessian.clone()
        damped.diagonal().add_(scale * mean_diag)
        lower, info = torch.linalg.cholesky_ex(damped)
        if int(info) == 0:
            upper, info = torch.linalg.cholesky_ex(torch.cholesky_inverse(lower), upper=True)
            if int(info) == 0:
                if attempt:
                    warnings.warn(f"Hessian not positive definite with damping {damping}; used {scale:g}")
                return upper
    raise torch.linalg.LinAlgError(
        f"the Hessian is not positive definite even with damping {scale:g} x its mean diagonal "
        "(non-finite calibration activations?)"
    )


@dataclass
class InverseHessian:
    """What a sweep needs from a Hessian: dead inputs, the column order, and the inverse factor."""

    dead: torch.Tensor  # inputs that were always zero on the calibration data
    perm: torch.Tensor | None  # column order of the sweep (act-order), None for the natural one
    upper: torch.Tensor  # upper Cholesky factor of the damped inverse, in sweep order


class Hessian:
    """H = 2/n X X^T over n calibration sequences, a running mean in fp32 (the reference form).

    Its inverse factor is computed once and shared by all linears fed the same input.
    """

    def __init__(self, linear: nn.Linear):
        columns = linear.in_features
        self.matrix = torch.zeros(columns, columns, dtype=torch.float32, device=linear.weight.device)
        self.samples = 0
        self._inverse: dict[bool, InverseHessian] = {}

    def add(self, x: torch.Tensor) -> None:
        batch = x.shape[0] if x.dim() > 2 else 1
        x = x.reshape(-1, x.shape[-1]).float()
        self.matrix *= self.samples / (self.samples + batch)
        self.samples += batch
        x = x * math.sqrt(2 / self.samples)
        self.matrix.addmm_(x.T, x)

    def inverse(self, act_order: bool = False) -> InverseHessian:
        """The inverse factor; with `act_order`, columns sweep in order of decreasing H_jj (GPTQ)."""
        if act_order not in self._inverse:
            h = self.matrix.clone()
            dead = h.diagonal() == 0
            h.diagonal()[dead] = 1
            perm = torch.argsort(h.diagonal(), descending=True) if act_order else None
            if perm is not None:
                h = h[perm][:, perm]
            self._inverse[act_order] = InverseHessian(dead, perm, inverse_cholesky(h))
        return self._inverse[act_order]


def obs_sweep(weight: torch.Tensor, inverse: InverseHessian, rule: ColumnRule, block_columns: int) -> torch.Tensor:
    """The weight after the sweep: fp32, in the original column order.

    Each column takes the values `rule` gives it exactly (a pruned weight ends exactly zero);
    only the columns after it absorb its error.
    """
    w = weight.detach().float().clone()
    w[:, inverse.dead] = 0
    if inverse.perm is not None:
        w = w[:, inverse.perm]
    hinv = inverse.upper
    columns = w.shape[1]
    for i1 in range(0, columns, block_columns):
        i2 = min(i1 + block_columns, columns)
        w1 = w[:, i1:i2]
        hinv1 = hinv[i1:i2, i1:i2]
        d = hinv1.diagonal()
        q1, err1 = torch.empty_like(w1), torch.empty_like(w1)
        for i in range(i2 - i1):
            q = rule(i1, i, w1, d)
            err = (w1[:, i] - q) / d[i]
            w1[:, i:].addr_(err, hinv1[i, i:], alpha=-1)
            q1[:, i], err1[:, i] = q, err
        w1.copy_(q1)
        w[:, i2:].addmm_(err1, hinv[i1:i2, i2:], alpha=-1)
    if inverse.perm is not None:
        w = w[:, torch.argsort(inverse.perm)]
    return w
