"""Plug-ins that are wrong in one way each, for the tests of their errors."""
from __future__ import annotations

import torch

NOT_A_FUNCTION = 0.5


def wrong_shape(weights, sparsity):
    return {name: torch.ones(w.shape[0], dtype=torch.bool) for name, w in weights.items()}


def wrong_dtype(weights, sparsity):
    return {name: torch.ones_like(w, dtype=torch.int64) for name, w in weights.items()}


def wrong_sparsity(weights, sparsity):
    return {name: torch.ones_like(w, dtype=torch.bool) for name, w in weights.items()}


def missing_name(weights, sparsity):
    return dict(list({name: torch.ones_like(w, dtype=torch.bool) for name, w in weights.items()}.items())[1:])


def ignores_pattern(weights, sparsity):
    """Prunes the first half of each row: the right sparsity for 2:4, but not 2 of every 4."""
    return {name: torch.arange(w.shape[1]).expand_as(w) >= w.shape[1] // 2 for name, w in weights.items()}


def raises(weights, sparsity):
    raise RuntimeError("no pruning today")


def wrong_signature(weights):
    return weights
