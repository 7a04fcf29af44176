"""Prunable scope, mask containers and the selection rules every pruning method shares.

A mask maps a parameter name to a boolean tensor of the weight's shape: True keeps the
weight, False prunes it. Scores are "importance": the lowest-scored weights are pruned.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn



def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks: the largest ModuleList whose children share one class."""
    best, best_size = None, 0
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            if len({type(child) for child in module}) != 1:
                continue
            size = sum(p.numel() for p in module.parameters())
            if size > best_size:
                best, best_size = module, size
    if best is None:
        raise ValueError(
            f"cannot find transformer blocks in {type(model).__name__}: expected an "
            "nn.ModuleList of identical blocks (BERT-family encoder.layer, Llama-family model.layers)"
        )
    return best


def block_linears(block: nn.Module) -> dict[str, nn.Linear]:
    """The linear layers of one block, by their name inside the block."""
    return {name: m for name, m in block.named_modules() if isinstance(m, nn.Linear)}


def prunable_weights(model: nn.Module) -> dict[str, nn.Parameter]:
    """Every 2-D linear weight inside the transformer blocks, by full parameter name.

    Embeddings, norms, biases, the pooler and task heads live outside the blocks or are not
    2-D linear weights, so they are never pruned (the official code pruned the randomly
    initialised classifier by accident).
    """
    module_names = {id(m): n for n, m in model.named_modules()}
    return {
        f"{module_names[id(block)]}.{name}.weight": linear.weight
        for block in find_blocks(model)
        for name, linear in block_linears(block).items()
    }


def parse_pattern(pattern: str) -> tuple[int, int] | None:
    """None for "unstructured", (kept, group) for an N:M pattern written kept:group."""
    if pattern == "unstructured":
        return None
    parts = pattern.split(":") if isinstance(pattern, str) else []
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        n, m = int(parts[0]), int(parts[1])
        if 0 < n < m:
            return n, m
    raise ValueError(
        f"pattern={pattern!r} is not valid: use 'unstructured' or 'N:M' written kept:group "
        "with 0 < N < M, for example '2:4' or '7:8'"
    )


def pattern_sparsity(pattern: str, sparsity: float | None = None) -> float:
    """The sparsity a pattern implies: 1 - N/M for N:M, else the given level."""
    nm = parse_pattern(pattern)
    return 1.0 - nm[0] / nm[1] if nm else float(sparsity)


@dataclass
class Masks:
    """Keep-masks by parameter name, with what a reader wants to know about them."""

    keep: dict[str, torch.Tensor] = field(default_factory=dict)

    def apply(self, model: nn.Module) -> None:
        """Zero every pruned weight of `model` in place."""
        params = dict(model.named_parameters())
        with torch.no_grad():
            for name, keep in self.keep.items():
                params[name].mul_(keep.to(params[name].device, params[name].dtype))

    @property
    def sparsity(self) -> float:
        total = sum(k.numel() for k in self.keep.values())
        pruned = sum(int((~k).sum()) for k in self.keep.values())
        return pruned / total if total else 0.0

    def per_layer(self) -> dict[str, float]:
        return {n: float((~k).sum()) / k.numel() for n, k in self.keep.items()}

    def __len__(self) -> int:
        return len(self.keep)


def holds_nm(keep: torch.Tensor, n: int, m: int) -> bool:
    """True when every group of m consecutive input weights keeps exactly n."""
    rows, cols = keep.shape
    return bool((keep.reshape(rows, cols // m, m).sum(-1) == n).all())


def _bits(scores: torch.Tensor) -> torch.Tensor:
    """The float32 bit pattern as int32: for non-negative floats, ordered like the floats."""
    return scores.detach().float().contiguous().view(torch.int32)


class GlobalRanking:
    """One ranking of scores across many tensors, for any sparsity, without concatenating them.

    The k-th smallest score is found by radix selection on the float32 bit pattern: a
    histogram of the high 16 bits over every tensor (computed once, shared by every sparsity
    level), then, per level, a histogram of the low 16 bits of the scores in the chosen bin.
    Exact; peak extra memory is one tensor's temporaries, where concatenating needs a copy of
    every score plus the selection's workspace.
    """

    def __init__(self, scores: dict[str, torch.Tensor]):
        self.scores = scores
        self.total = sum(s.numel() for s in scores.values())
        device = next(iter(scores.values())).device
        self.high_counts = torch.zeros(1 << 15, dtype=torch.int64, device=device)
        for s in scores.values():
            high = _bits(s) >> 16
            if (high < 0).any():
                raise ValueError("global ranking needs non-negative scores")
            self.high_counts += torch.bincount(high.flatten(), minlength=1 << 15)
        self.high_cumulative = self.high_counts.cumsum(0)

    def kth_smallest(self, k: int) -> torch.Tensor:
        """The k-th smallest score (1-based) over all tensors."""
        if not 1 <= k <= self.total:
            raise ValueError(f"k={k} is outside 1..{self.total}")
        target = torch.tensor([k], device=self.high_cumulative.device)
        high = int(torch.searchsorted(self.high_cumulative, target))
        rank = k - (int(self.high_cumulative[high - 1]) if high else 0)
        low_counts = torch.zeros(1 << 16, dtype=torch.int64, device=self.high_counts.device)
        for s in self.scores.values():
            bits = _bits(s).flatten()
            low_counts += torch.bincount(bits[(bits >> 16) == high] & 0xFFFF, minlength=1 << 16)
        low = int(torch.searchsorted(low_counts.cumsum(0), torch.tensor([rank], device=low_counts.device)))
        return torch.tensor((high << 16) | low, dtype=torch.int32).view(torch.float32)

    def _count_below(self, threshold: torch.Tensor) -> int:
        return sum(int((s.float() < threshold.to(s.device)).sum()) for s in self.scores.values())

    def masks(self, sparsity: float) -> dict[str, torch.Tensor]:
        k = round(sparsity * self.total)
        if k == 0:
            return {n: torch.ones_like(s, dtype=torch.bool) for n, s in self.scores.items()}
        threshold = self.kth_smallest(k)
        ties_to_prune = k - self._count_below(threshold)
        keep = {}
        for name, s in self.scores.items():
            t = threshold.to(s.device)
            scores = s.float()
            keep_flat = (scores > t).flatten()
            # Scores equal to the threshold: prune the first ones in a fixed order so the
            # realised sparsity is exactly k / total; keep the rest.
            tie_idx = (scores.flatten() == t).nonzero().flatten()
            pruned_here = min(ties_to_prune, tie_idx.numel())
            keep_flat[tie_idx[pruned_here:]] = True
            ties_to_prune -= pruned_here
            keep[name] = keep_flat.view_as(s)
        return keep


def select_per_matrix(scores: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Prune the same fraction of every matrix (the LLM code's layer-wise scope)."""
    keep = {}
    for name, s in scores.items():
        flat = s.flatten()
        k = round(sparsity * flat.numel())
        mask = torch.ones_like(flat, dtype=torch.bool)
        mask[flat.float().sort(stable=True).indices[:k]] = False
        keep[name] = mask.view_as(s)
    return keep


def select_per_row(scores: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """Prune the same fraction of every output row (Wanda's comparison group)."""
    keep = {}
    for name, s in scores.items():
        k = round(sparsity * s.shape[1])
        mask = torch.ones_like(s, dtype=torch.bool)
        mask.scatter_(1, s.float().sort(dim=1, stable=True).indices[:, :k], False)
        keep[name] = mask
    return keep


def select_nm(scores: dict[str, torch.Tensor], n: int, m: int) -> dict[str, torch.Tensor]:
    """Keep the n highest scores of every m consecutive weights along the input dimension."""
    keep = {}
    for name, s in scores.items():
        rows, cols = s.shape
        if cols % m:
            raise ValueError(f"{name}: input dimension {cols} is not divisible by M={m} for {n}:{m}")
        groups = s.float().reshape(rows, cols // m, m)
        mask = torch.zeros_like(groups, dtype=torch.bool)
        mask.scatter_(2, groups.topk(n, dim=2).indices, True)
        keep[name] = mask.reshape(rows, cols)
    return keep


SCOPES = ("global", "layer", "row")


def select(
    scores: dict[str, torch.Tensor],
    sparsity: float,
    pattern: str = "unstructured",
    scope: str = "global",
    ranking: GlobalRanking | None = None,
) -> dict[str, torch.Tensor]:
    """Keep-masks from importance scores under a pattern and scope."""
    nm = parse_pattern(pattern)
    if nm:
        return select_nm(scores, *nm)
    if scope == "global":
        return (ranking or GlobalRanking(scores)).masks(sparsity)
    if scope == "layer":
        return select_per_matrix(scores, sparsity)
    if scope == "row":
        return select_per_row(scores, sparsity)
    raise ValueError(f"scope={scope!r} is not valid: use one of {', '.join(SCOPES)}")
