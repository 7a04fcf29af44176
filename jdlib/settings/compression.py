"""Compression beyond pruning (claim C3, and C4's patterns and methods): magnitude (or Wanda,
SparseGPT) pruning, round-to-nearest and GPTQ quantization and truncated-SVD low rank, on the
same difficulty spectra as Settings 2 (option count) and 3 (context length), scored the way
those settings score them (the pre-trained model, no fine-tuning; their `score` functions).

One sweep runs both knobs: a cell of the option count carries `options` (and the Setting 2
fields), one of the context length `context` (and the Setting 3 fields). A compressed cell is
`transfer` "none" with `method` in magnitude | wanda | sparsegpt (its `pattern` and `sparsity`),
rtn | gptq (`bits`, `group_size`; pattern "unstructured", sparsity 0) or svd (`rank_fraction`
of the full rank of the block linears; pattern "unstructured", sparsity 0).

The common axis is the compression ratio of the block linear weights, original storage over
compressed, with fp32 weights as the original: 1 / (1 - sparsity) for pruning (the kept
weights' count; indices not counted), 32 / b for b-bit quantization (the per-row scale and
zero not counted), mn / (r (m + n)) summed over the block linears for rank-r SVD. The
statistics use log2 of it (`LOG_RATIO`), a monotone map of each family's own strength, so a
Spearman correlation within a family is the same as against sparsity, bits or rank.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial

import pandas as pd

from ..compress import CONTROLS, LOW_RANK_METHODS, QUANT_METHODS
from ..compress.masks import parse_pattern, prunable_weights
from ..config import ConfigError, param
from . import setting2, setting3
from .finetuning import transfer_cells
from .nofinetune import NO_FINETUNING, NoFinetuneConfig, ScoringRunner, state_of
from .spec import Part, Setting

KNOBS = {"options": setting2, "context": setting3}  # the level column -> the setting that scores it
BASE_BITS = 32  # the original weights: fp32 (the paper's fp16 models would halve every ratio)
RATIO = "compression_ratio"
LOW_RANK = LOW_RANK_METHODS[0]


@dataclass
class CompressionConfig(NoFinetuneConfig):
    """Setting 2's and Setting 3's knobs, each on its own tasks, and the compressors' grids.

    `tasks` is not used: `options_tasks` get the option count, `context_tasks` the context
    length (either may be empty). `method`, `pattern`, `sparsities` are the pruning grid;
    `quantizers` x `bits` (with `group_size`) the quantization grid; `rank_fractions` the SVD
    grid (kept singular values per matrix as a fraction of the full rank); `controls` the control
    pruning methods of a grid apart (`controls_grid`), read by claim S1 only.
    """

    tasks: list[str] = param([], str, "[] (the compression setting takes options_tasks and context_tasks)",
                             many=True, empty=True, choices=("",), role="grid")
    options_tasks: list[str] = param([], str, "task names (the option count), or []", many=True, empty=True,
                                     role="grid")
    context_tasks: list[str] = param([], str, "task names (the context length), or []", many=True, empty=True,
                                     role="grid")
    options: list[int] = param([2, 4, 8], int, "integers of at least 2", many=True, low=2, role="grid")
    context: list[float] = param([0, 20, 100], float, "percentages in [0, 100] (0: closed book)", many=True, low=0,
                                 high=100, role="grid")
    demonstrations: int = param(0, int, low=0)
    candidates: int = param(10, int, low=2)
    max_context_words: int | None = param(None, int, "a positive integer or null (the whole passage)", low=0,
                                          strict_low=True, nullable=True)
    quantizers: list[str] = param(list(QUANT_METHODS), str, many=True, empty=True, choices=QUANT_METHODS, role="grid")
    bits: list[int] = param([8, 4, 3, 2], int, "integers from 2 to 8", many=True, low=2, high=8, role="grid")
    group_size: int | None = param(None, int, "a positive integer or null (per row)", low=0, strict_low=True,
                                   nullable=True)
    rank_fractions: list[float] = param([0.5, 0.25, 0.125], float, "fractions in (0, 1] of the full rank", many=True,
                                        empty=True, low=0, high=1, strict_low=True, role="grid")
    # The controls' grid is apart from the chapter's: a store may hold the chapter's grid whole before the
    # controls are run, and the chapter and C3/C4 read it then (S1 alone waits for the controls).
    controls: list[str] = param([], str, "control pruning methods (random, large), or []", many=True, empty=True,
                                choices=CONTROLS, role="grid")

    def knob_config(self, knob: str):
        """The Setting 2 or 3 config of one knob (its tasks, its levels), validated."""
        cls = setting2.Setting2Config if knob == "options" else setting3.Setting3Config
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        return cls(**{**values, "tasks": getattr(self, f"{knob}_tasks")})

    def controls_grid(self) -> "CompressionConfig | None":
        """The controls' grid (claim S1): each control pruning method at the pruning grid's unstructured
        sparsities, on both knobs, beside the same dense cells; None without controls."""
        if not self.controls:
            return None
        return dataclasses.replace(self, method=list(self.controls), pattern=["unstructured"], quantizers=[],
                                   rank_fractions=[], controls=[])

    def knobs(self) -> list[str]:
        return [k for k in KNOBS if getattr(self, f"{k}_tasks")]

    def validate(self) -> None:
        super().validate()
        if not self.knobs():
            raise ConfigError("options_tasks and context_tasks are both empty: give tasks to at least one knob")
        for knob in self.knobs():
            self.knob_config(knob).validate()


def compressions(config: CompressionConfig) -> list[dict]:
    """The quantized and low-rank variants (the pruning ones come from `transfer_cells`)."""
    quant = [{"transfer": NO_FINETUNING, "method": q, "pattern": "unstructured", "sparsity": 0.0, "bits": b,
              "group_size": config.group_size} for q in config.quantizers for b in config.bits]
    svd = [{"transfer": NO_FINETUNING, "method": LOW_RANK, "pattern": "unstructured", "sparsity": 0.0,
            "rank_fraction": float(f)} for f in config.rank_fractions]
    return quant + svd


def cells(config: CompressionConfig) -> list[dict]:
    """Per knob: task x level x seed x (dense + pruning grid + quantization grid + SVD grid), grouped
    by compressed state. Pruning cells are Setting 2's/3's cells with `knob` added."""
    out = []
    for knob in config.knobs():
        sub = config.knob_config(knob)
        pruning = transfer_cells(sub)
        extra = [{**sub.cell_common(), "task": t, "seed": s, **v}
                 for t in sub.tasks for s in sub.seeds for v in compressions(config)]
        out += [{**c, "knob": knob, knob: v} for v in getattr(config, knob) for c in pruning + extra]
    return sorted(out, key=lambda c: (c["transfer"] != "dense", *map(str, state_of(c)), c["task"], c["knob"]))


def layer_shapes(model) -> list[tuple[int, int]]:
    return [tuple(w.shape) for w in prunable_weights(model).values()]


def compression_ratio(cell: dict, shapes: list[tuple[int, int]], base_bits: int = BASE_BITS) -> float:
    """Original over compressed storage of the block linear weights (see the module's docstring)."""
    method = cell["method"]
    if cell["transfer"] == "dense" or method == "none":
        return 1.0
    if method in QUANT_METHODS:
        return base_bits / cell["bits"]
    if method == LOW_RANK:
        full = max(min(s) for s in shapes)
        rank = max(1, round(cell["rank_fraction"] * full))
        return sum(m * n for m, n in shapes) / sum(min(rank, m, n) * (m + n) for m, n in shapes)
    nm = parse_pattern(cell["pattern"])
    sparsity = 1.0 - nm[0] / nm[1] if nm else float(cell["sparsity"])
    return 1.0 / (1.0 - sparsity)


def score(runner, cell: dict) -> dict:
    """Setting 2's or Setting 3's score of the cell, and its compression ratio."""
    metrics = KNOBS[cell["knob"]].score(runner, cell)
    metrics[RATIO] = compression_ratio(cell, layer_shapes(runner.loaded.model))
    return metrics


def chance(rows: pd.DataFrame) -> pd.Series:
    """Each row's chance level as the setting of its knob has it."""
    return pd.concat([KNOBS[knob].chance(part) for knob, part in rows.groupby("knob")]).reindex(rows.index)


SETTING = Setting(
    name="compression", title="Pruning, quantization and low rank", config=CompressionConfig, level="knob",
    order=None, kind="score", parts=lambda config: [Part("compression", cells(config))],
    make_runner=lambda config: partial(ScoringRunner, config, score), in_c1=False, chance=chance)
