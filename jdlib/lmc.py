"""Linear mode connectivity between two fine-tuned solutions of the same task.

theta(alpha) = (1 - alpha) theta_a + alpha theta_b over every parameter (the task head included:
both solutions start from the same head initialisation); buffers are taken from one model
(the dense solution, `a`). The loss barrier of a curve is the largest excess of the loss over
the straight line between its endpoint losses,

    barrier = max_alpha [ L(alpha) - ((1 - alpha) L(0) + alpha L(1)) ],

zero when the path never rises above that line, positive when the two solutions sit in basins
separated by a ridge (Frankle et al. 2020; Neyshabur et al. 2020).
"""
from __future__ import annotations

import datasets
import numpy as np
import pandas as pd
import torch
from torch import nn

from .evaluate import evaluate
from .models import LoadedModel


def parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every parameter of `model`."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every buffer of `model` (position ids, running statistics, ...)."""
    return {n: b.detach().clone() for n, b in model.named_buffers()}


@torch.no_grad()
def interpolate(model: nn.Module, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], alpha: float,
                buffers: dict[str, torch.Tensor] | None = None) -> None:
    """Set the parameters of `model` to (1 - alpha) a + alpha b in place; buffers to `buffers` if given.

    `torch.lerp` computes a + alpha (b - a) for alpha < 0.5 and b - (b - a)(1 - alpha) above, so
    alpha = 0 gives `a` and alpha = 1 gives `b` bit for bit, and two identical models interpolate
    to themselves exactly.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha!r} is not valid: use a number in [0, 1]")
    params = dict(model.named_parameters())
    if set(a) != set(params) or set(b) != set(params):
        missing = sorted((set(params) ^ set(a)) | (set(params) ^ set(b)))
        raise ValueError(f"the two solutions do not have the model's parameters (differ in {missing[:3]}...)")
    for name, p in params.items():
        p.copy_(torch.lerp(a[name].to(p.device), b[name].to(p.device), float(alpha)))
    if buffers is not None:
        own = dict(model.named_buffers())
        for name, value in buffers.items():
            own[name].copy_(value)


def interpolation_curve(loaded: LoadedModel, a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                        dataset: datasets.Dataset, alphas: list[float], max_length: int = 128,
                        buffers: dict[str, torch.Tensor] | None = None) -> dict[str, list[float]]:
    """Validation loss and accuracy of `loaded.model` at each alpha on the path from `a` to `b`.

    Leaves the model at the last alpha of the grid.
    """
    losses, accuracies = [], []
    for alpha in alphas:
        interpolate(loaded.model, a, b, alpha, buffers)
        metrics = evaluate(loaded, dataset, max_length=max_length)
        losses.append(metrics["loss"])
        accuracies.append(metrics["accuracy"])
    return {"losses": losses, "accuracies": accuracies}


def barrier(alphas, values, higher_is_worse: bool = True) -> float:
    """max over alpha of (value - the straight line between the endpoint values); needs alpha 0 and 1.

    For a loss (`higher_is_worse`) this is the loss barrier; for an accuracy pass
    `higher_is_worse=False` to get the accuracy barrier (the largest dip below the line).
    """
    alphas = np.asarray(alphas, dtype=float)
    values = np.asarray(values, dtype=float)
    if alphas.shape != values.shape or alphas.ndim != 1:
        raise ValueError("alphas and values must be 1-D and of the same length")
    if not (np.isclose(alphas, 0.0).any() and np.isclose(alphas, 1.0).any()):
        raise ValueError("a barrier needs the endpoints: alphas must include 0 and 1")
    v0 = values[np.isclose(alphas, 0.0)][0]
    v1 = values[np.isclose(alphas, 1.0)][0]
    excess = values - (v0 + alphas * (v1 - v0))  # exact where the endpoints are equal
    return float(np.max(excess if higher_is_worse else -excess)) + 0.0  # + 0.0: no "-0.0"


def curves(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and alpha (long format) from rows that carry `alphas`, `losses`, `accuracies` lists."""
    keep = [c for c in frame.columns if c not in ("alphas", "losses", "accuracies")]
    rows = []
    for _, row in frame.iterrows():
        for alpha, loss, acc in zip(row["alphas"], row["losses"], row["accuracies"]):
            rows.append({**{c: row[c] for c in keep}, "alpha": float(alpha), "path_loss": float(loss),
                         "path_accuracy": float(acc)})
    return pd.DataFrame(rows)
