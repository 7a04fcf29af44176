"""Compression of the prunable weights: pruning (magnitude, calibration-based methods and the
random/large controls), quantization, low rank."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .calibrate import calibration_from_c4, calibration_from_texts, check_calibration, compress_blocks
from .controls import large_masks, random_masks
from .lowrank import LowRankReport, low_rank
from .magnitude import magnitude_masks, magnitude_ranking
from .masks import GlobalRanking, Masks, parse_pattern, pattern_sparsity, prunable_weights
from .plugins import FORM, is_plugin, load_plugin, prune_with_plugin
from .quantize import QUANT_METHODS, QuantReport, quantize
from .sparsegpt import prune_sparsegpt
from .wanda import prune_wanda



@dataclass(frozen=True)
class Method:
    """A compression method: its family, whether it needs calibration data, whether its result
    depends on a seed (the cell's), and whether it is a control (claim S1 only, never C1/C3/C4)."""

    name: str
    family: str  # "pruning", "quantization" or "low rank"
    calibrated: bool
    seeded: bool = False
    # A control prunes weights the hypothesis is not about (random or large ones): it tests the
    # hypothesis's specificity (S1) and never enters the claims about small weights (C1, C3, C4).
    control: bool = False


# The one table of methods: everything else reads its names and properties from here.
METHODS = {m.name: m for m in (Method("magnitude", "pruning", False), Method("wanda", "pruning", True),
                               Method("sparsegpt", "pruning", True),
                               Method("random", "pruning", False, seeded=True, control=True),
                               Method("large", "pruning", False, control=True), Method("rtn", "quantization", False),
                               Method("gptq", "quantization", True), Method("svd", "low rank", False))}
PRUNE_METHODS = tuple(n for n, m in METHODS.items() if m.family == "pruning")
LOW_RANK_METHODS = tuple(n for n, m in METHODS.items() if m.family == "low rank")
CALIBRATED = tuple(n for n, m in METHODS.items() if m.calibrated)
SEEDED = tuple(n for n, m in METHODS.items() if m.seeded)
CONTROLS = tuple(n for n, m in METHODS.items() if m.control)
CLAIMED_PRUNE_METHODS = tuple(n for n in PRUNE_METHODS if n not in CONTROLS)  # what C1, C3, C4 may pool
# Calibrated methods prune block after block, so no threshold spans the model: the default
# scope "global" stands for each method's own comparison group.
OWN_SCOPE = {"wanda": "row", "sparsegpt": "layer"}
NO_METHOD = Method("none", "none", False)  # the dense cells' method: nothing is compressed


def method_of(name: str) -> Method:
    """A method's entry: a built-in's from METHODS; a plug-in's ("package.module:function", see `plugins`)
    pruning, calibrated and seeded as its signature declares; NO_METHOD for the dense cells' "none"."""
    if is_plugin(name):
        plugin = load_plugin(name)
        return Method(name, "pruning", plugin.calibrated, plugin.seeded)
    if name == NO_METHOD.name:
        return NO_METHOD
    if name not in METHODS:
        raise ValueError(f"method={name!r} is not valid: use one of {', '.join(METHODS)} or a plug-in written {FORM}")
    return METHODS[name]


def claimed(method: str) -> bool:
    """Whether C1, C3 and C4 pool a method's rows: a pruning method of the table that is no control, or a plug-in."""
    return method in CLAIMED_PRUNE_METHODS or is_plugin(method)


@dataclass
class PruneReport:
    method: str
    pattern: str
    scope: str
    target_sparsity: float
    realised_sparsity: float
    per_layer: dict[str, float] = field(repr=False, default_factory=dict)
    wall_time_s: float = 0.0
    block_errors: list[float] = field(default_factory=list)  # ||Y - Y_dense|| / ||Y_dense|| per block
    block_seconds: list[float] = field(repr=False, default_factory=list)


def prune(
    model: nn.Module,
    method: str = "magnitude",
    sparsity: float = 0.5,
    pattern: str = "unstructured",
    scope: str = "global",
    calibration: torch.Tensor | None = None,
    ranking: GlobalRanking | None = None,
    seed: int = 0,
) -> tuple[Masks, PruneReport]:
    """Prune `model` in place; return the keep-masks and a report of the realised sparsity.

    `ranking` (from `magnitude_ranking`) lets a sweep rank the pre-trained weights once and
    derive every sparsity level from it (magnitude and large). Wanda and SparseGPT need
    `calibration` (token ids, n_samples x seq_len); the others use it only to measure the block
    errors. For Wanda and SparseGPT `scope` "global" means the method's own comparison group:
    Wanda's output row, SparseGPT's matrix (chosen per 128-column block); Wanda also takes "layer".
    The report says which was used. The controls: "random" prunes uniformly random weights drawn
    with `seed` (the only method that reads it), "large" the largest-magnitude weights; both
    realise magnitude's sparsity exactly. A plug-in ("package.module:function", see `plugins`) prunes as
    it chooses (the report's scope says "plug-in"), given `pattern`, `seed` and `calibration` if it asks.
    """
    if method not in PRUNE_METHODS and not is_plugin(method):
        raise ValueError(f"method={method!r} is not valid: use one of {', '.join(PRUNE_METHODS)} or a plug-in "
                         f"written {FORM}")
    target = pattern_sparsity(pattern, sparsity)
    if not 0.0 <= target < 1.0:
        raise ValueError(f"sparsity={sparsity!r} is not valid: use a number in [0, 1)")
    if method_of(method).calibrated and calibration is None:
        raise ValueError(
            f"method={method!r} needs calibration: pass calibration=a LongTensor of token ids "
            "(n_samples x seq_len), for example from jdlib.compress.calibration_from_texts"
        )
    if method in OWN_SCOPE:
        scope = OWN_SCOPE[method] if scope == "global" else scope
        if method == "sparsegpt" and scope != "layer":
            raise ValueError(f"scope={scope!r} is not valid for sparsegpt: use 'global' or 'layer' (the same)")
    if calibration is not None:
        check_calibration(calibration)
    start = time.perf_counter()
    if is_plugin(method):
        keep, result = prune_with_plugin(model, load_plugin(method), target, pattern, seed, calibration)
        scope = "plug-in"
    elif method == "wanda":
        keep, result = prune_wanda(model, calibration, target, pattern, scope)
    elif method == "sparsegpt":
        keep, result = prune_sparsegpt(model, calibration, target, pattern)
    else:
        if method == "random":
            keep = random_masks(model, target, pattern, scope, seed)
        elif method == "large":
            keep = large_masks(model, target, pattern, scope, ranking)
        else:
            keep = magnitude_masks(model, target, pattern, scope, ranking)

        def apply(prefix: str, linears: dict[str, nn.Linear], stats: dict) -> None:
            for name, linear in linears.items():
                linear.weight.masked_fill_(~keep[f"{prefix}.{name}.weight"].to(linear.weight.device), 0)

        result = compress_blocks(model, apply, calibration)
    masks = Masks(keep)
    report = PruneReport(
        method, pattern, scope, target, masks.sparsity, masks.per_layer(), time.perf_counter() - start,
        result.block_errors, result.block_seconds,
    )
    return masks, report


__all__ = [
    "prune", "PruneReport", "Masks", "magnitude_ranking", "prunable_weights", "parse_pattern", "PRUNE_METHODS",
    "CLAIMED_PRUNE_METHODS", "CONTROLS", "SEEDED", "claimed", "method_of", "quantize", "QuantReport",
    "QUANT_METHODS", "low_rank", "LowRankReport", "calibration_from_texts", "calibration_from_c4",
]
