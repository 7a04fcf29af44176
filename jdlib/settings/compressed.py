"""Compressed versions of one model's pre-trained weights, made once per setting of the
compressor and cached, shared by the fine-tuning and the no-fine-tuning runners."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np
import torch
from torch import nn

from ..compress import (CALIBRATED, LOW_RANK_METHODS, QUANT_METHODS, LowRankReport, QuantReport, low_rank,
                        magnitude_ranking, method_of, prune, quantize)
from ..compress.masks import Masks, prunable_weights

LOW_RANK = LOW_RANK_METHODS[0]  # the method name of the truncated-SVD cells (the compression setting)


def summarise(report) -> dict[str, float]:
    """What a cell records of its compression (a prune, quantize or low_rank report): the mean
    relative output error of the blocks on the calibration data (calibrated methods), and the
    realised bits or parameter ratio (quantization, low rank). The seconds it took are provenance
    (`CompressedWeights.timing`), not a metric."""
    summary = {}
    if report.block_errors:
        summary["block_error"] = float(np.mean(report.block_errors))
    for name in ("realised_bits", "params_ratio"):
        if hasattr(report, name):
            summary[name] = float(getattr(report, name))
    return summary


class CompressedWeights:
    """Compressed pre-trained weights of `model`, cached per (method, pattern, sparsity[, extra][, seed]).

    `apply` must be called while the model holds its pre-trained weights (restore them first):
    the first call for a key compresses the model in place and keeps a copy of the compressed
    weights; later calls copy that back. The magnitude ranking of the pre-trained weights is
    computed once and every global unstructured magnitude (or large) level is derived from it (the
    other scopes and N:M select within each matrix or group and need no ranking). `max_cached` bounds
    how many compressed copies are kept (None: all; 0: none, for a model too large to copy,
    whose cells are then run grouped by compression). `summary` is what the compression of the
    state last put in reported (see `summarise`); `timing` what it cost this call: the seconds
    of a compression made now, or a copy from the cache (so the rows' seconds add up to the
    time a sweep spent compressing).
    """

    def __init__(self, model: nn.Module, scope: str, max_cached: int | None = None):
        self.model = model
        self.scope = scope
        self.max_cached = max_cached
        self.ranking = None
        self.cache: OrderedDict[tuple, tuple[Masks, dict[str, torch.Tensor], dict[str, float]]] = OrderedDict()
        self.summary: dict[str, float] = {}
        self.timing: dict[str, object] = {}

    def apply(self, method: str, pattern: str, sparsity: float, calibration: Callable[[], torch.Tensor] | None = None,
              extra: tuple[Hashable, ...] = (), options: dict | None = None, seed: int = 0) -> Masks:
        """Put the compressed weights into the model and return their masks.

        `calibration` makes the calibration token ids for Wanda and SparseGPT (called only
        when they compress); `extra` adds what else the result depends on (the calibration
        data's source, say) to the cache key. `seed` draws a seeded method's weights (random
        pruning: the cell's seed) and then enters the key; the other methods ignore it.

        `method` may also be a quantizer ("rtn", "gptq": `options` bits, group_size) or "svd"
        (`options` rank, rank_fraction of the full rank, or energy): the weights are then quantized or replaced by their
        truncated SVD, and the masks mark the weights that came out exactly zero. `extra` must
        then carry the options too (the cache key is made of method, pattern, sparsity, extra).
        """
        entry = method_of(method)
        key = (method, pattern, sparsity, *extra, *((seed,) if entry.seeded else ()))
        if key not in self.cache:
            ranked = method in ("magnitude", "large") and self.scope == "global" and pattern == "unstructured"
            if ranked and self.ranking is None:
                self.ranking = magnitude_ranking(self.model)
            if entry.calibrated and calibration is None:
                raise ValueError(f"method={method!r} needs calibration data")
            if method in QUANT_METHODS or method == LOW_RANK:
                masks, report = self._quantize_or_factor(method, calibration, **(options or {}))
            else:
                masks, report = prune(self.model, method=method, sparsity=sparsity, pattern=pattern,
                                      scope=self.scope, calibration=calibration() if entry.calibrated else None,
                                      ranking=self.ranking if ranked else None, seed=seed)
            self.summary = summarise(report)
            self.timing = {"compress_seconds": round(report.wall_time_s, 3), "compression_cached": False}
            if self.max_cached != 0:
                params = dict(self.model.named_parameters())
                self.cache[key] = (masks, {n: params[n].detach().clone() for n in masks.keep}, self.summary)
                while self.max_cached is not None and len(self.cache) > self.max_cached:
                    self.cache.popitem(last=False)
            return masks
        self.cache.move_to_end(key)
        masks, weights, self.summary = self.cache[key]
        self.timing = {"compress_seconds": 0.0, "compression_cached": True}
        with torch.no_grad():
            params = dict(self.model.named_parameters())
            for name, w in weights.items():
                params[name].copy_(w)
        return masks

    def _quantize_or_factor(self, method: str, calibration: Callable[[], torch.Tensor] | None,
                            **options) -> tuple[Masks, QuantReport | LowRankReport]:
        if method == LOW_RANK:
            rank = options.get("rank")
            if options.get("rank_fraction") is not None:  # of the full rank of the block linears
                full = max(min(w.shape) for w in prunable_weights(self.model).values())
                rank = max(1, round(options["rank_fraction"] * full))
            report = low_rank(self.model, rank=rank, energy=options.get("energy"))
        else:
            report = quantize(self.model, method=method, bits=options["bits"], group_size=options.get("group_size"),
                              calibration=calibration() if method in CALIBRATED else None)
        return Masks({n: (w != 0).detach().clone() for n, w in prunable_weights(self.model).items()}), report
