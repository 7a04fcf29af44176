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

from functools import partial

import dataclasses
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
import numpy as np
import pandas as pd

from ..compress import PRUNE_METHODS, QUANT_METHODS
from ..compress.masks import parse_pattern, prunable_weights
from ..config import ConfigError
from ..plots import subplots
from ..results import ResultsStore
from ..stats import difficulty_trend, normalise
from ..grid import run_grid
from . import setting2, setting3
from .compressed import LOW_RANK
from .finetuning import transfer_cells
from .nofinetune import NO_TRANSFER, NoFinetuneConfig, ScoringRunner, check_levels, state_of

KNOBS = {"options": setting2, "context": setting3}  # the level column -> the setting that scores it
BASE_BITS = 32  # the original weights: fp32 (the paper's fp16 models would halve every ratio)
RATIO, LOG_RATIO = "compression_ratio", "log2_ratio"
FAMILIES = ("pruning", "quantization", "low rank")


@dataclass
class CompressionConfig(NoFinetuneConfig):
    """Setting 2's and Setting 3's knobs, each on its own tasks, and the compressors' grids.

    `tasks` is not used: `options_tasks` get the option count, `context_tasks` the context
    length (either may be empty). `method`, `pattern`, `sparsities` are the pruning grid;
    `quantizers` x `bits` (with `group_size`) the quantization grid; `rank_fractions` the SVD
    grid (kept singular values per matrix as a fraction of the full rank).
    """

    options_tasks: list[str] = field(default_factory=list)
    context_tasks: list[str] = field(default_factory=list)
    options: list[int] = field(default_factory=lambda: [2, 4, 8])
    context: list[float] = field(default_factory=lambda: [0, 20, 100])
    demonstrations: int = 0
    candidates: int = 10
    max_context_words: int | None = None
    quantizers: list[str] = field(default_factory=lambda: ["rtn", "gptq"])
    bits: list[int] = field(default_factory=lambda: [8, 4, 3, 2])
    group_size: int | None = None
    rank_fractions: list[float] = field(default_factory=lambda: [0.5, 0.25, 0.125])

    LIST_FIELDS = NoFinetuneConfig.LIST_FIELDS + ("options_tasks", "context_tasks", "options", "context",
                                                  "quantizers", "bits", "rank_fractions")

    def knob_config(self, knob: str):
        """The Setting 2 or 3 config of one knob (its tasks, its levels), validated."""
        cls = setting2.Setting2Config if knob == "options" else setting3.Setting3Config
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in dataclasses.asdict(self).items() if k in names}
        return cls(**{**values, "tasks": getattr(self, f"{knob}_tasks")})

    def knobs(self) -> list[str]:
        return [k for k in KNOBS if getattr(self, f"{k}_tasks")]

    def validate(self) -> None:
        if self.tasks:
            raise ConfigError("tasks is not used by the compression setting: give options_tasks (option count) "
                              "and/or context_tasks (context length)")
        if not self.knobs():
            raise ConfigError("options_tasks and context_tasks are both empty: give tasks to at least one knob")
        for knob in self.knobs():
            self.knob_config(knob).validate()
        for q in self.quantizers:
            if q not in QUANT_METHODS:
                raise ConfigError(f"quantizers: {q!r} is not valid: use one of {', '.join(QUANT_METHODS)}")
        if self.quantizers:
            check_levels("bits", self.bits, lambda b: isinstance(b, int) and 2 <= b <= 8, "integers from 2 to 8")
        if self.group_size is not None and (not isinstance(self.group_size, int) or self.group_size < 1):
            raise ConfigError(f"group_size={self.group_size!r} is not valid: use a positive integer or null (per row)")
        for f in self.rank_fractions:
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
                raise ConfigError(f"rank_fractions: {f!r} is not valid: use fractions in (0, 1] of the full rank")


def compressions(config: CompressionConfig) -> list[dict]:
    """The quantized and low-rank variants (the pruning ones come from `transfer_cells`)."""
    quant = [{"transfer": NO_TRANSFER, "method": q, "pattern": "unstructured", "sparsity": 0.0, "bits": b,
              "group_size": config.group_size} for q in config.quantizers for b in config.bits]
    svd = [{"transfer": NO_TRANSFER, "method": LOW_RANK, "pattern": "unstructured", "sparsity": 0.0,
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


def family_of(method: str, pattern: str = "unstructured") -> str:
    if method in QUANT_METHODS:
        return "quantization"
    if method == LOW_RANK:
        return "low rank"
    return "pruning N:M" if pattern == "N:M" or (pattern not in ("unstructured", "dense", "N:M")
                                                 and parse_pattern(pattern)) else "pruning"


def score(runner, cell: dict) -> dict:
    """Setting 2's or Setting 3's score of the cell, and its compression ratio."""
    metrics = KNOBS[cell["knob"]].score(runner, cell)
    metrics[RATIO] = compression_ratio(cell, layer_shapes(runner.loaded.model))
    return metrics


def run(config: CompressionConfig, progress: bool = True) -> pd.DataFrame:
    return run_grid(config.setting, cells(config), partial(ScoringRunner, config, score), ResultsStore(config.store_path),
                    progress)


# --- analysis --------------------------------------------------------------------------

def normalised(results: pd.DataFrame, knob: str) -> pd.DataFrame:
    """One knob's rows normalised against the dense model (stats.normalise), with the compression
    axis (RATIO, LOG_RATIO; 1 and 0 at the dense anchors) and `compressor` (pruning, pruning N:M,
    quantization, low rank). `family` keeps stats' meaning for pruning (unstructured, N:M) and is
    the compressor for the others, so every method is its own curve."""
    rows = results[results["knob"] == knob]
    norm = normalise(rows, level=knob)
    norm[RATIO] = norm[RATIO].where(norm["pattern"] != "dense", 1.0) if RATIO in norm else 1.0
    norm[LOG_RATIO] = np.log2(norm[RATIO].astype(float))
    norm["compressor"] = [family_of(m, "N:M" if f == "N:M" else "unstructured")
                          for m, f in zip(norm["method"], norm["family"])]
    other = ~norm["method"].isin(PRUNE_METHODS)
    norm.loc[other, "family"] = norm.loc[other, "compressor"]
    return norm


def seed_trends(norm: pd.DataFrame, level: str, difficulty, x: str = LOG_RATIO) -> pd.DataFrame:
    """stats.difficulty_trend's rho (difficulty vs Theil-Sen slope) seed by seed: the paired units
    of the C3 comparison."""
    parts = [difficulty_trend(g, level, difficulty, x=x).assign(seed=s) for s, g in norm.groupby("seed")]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def spearman_wide(table: pd.DataFrame, level: str) -> pd.DataFrame:
    """The paper's table: Spearman(drop, compression) per method (rows) and level (columns)."""
    return table.pivot_table(index=["task", "family", "method"], columns=level, values="spearman")


METHOD_STYLES = {"magnitude": "o-", "sparsegpt": "s--", "wanda": "^:", "rtn": "o-", "gptq": "s--", "svd": "o-"}


def figure(norm: pd.DataFrame, level: str, difficulty, level_label: str | None = None) -> plt.Figure:
    """A panel per task (rows) and compressor family (columns; a line style per method), a line
    per difficulty level (light: easy, dark: hard), normalised performance against the
    compression ratio (log scale); the band spans the seeds. One legend below the panels keys
    the colours (levels) and the line styles (methods)."""
    tasks = list(dict.fromkeys(norm["task"]))
    fams = [f for f in ("pruning", "pruning N:M", "quantization", "low rank") if f in set(norm["compressor"])]
    fig, axes = subplots(len(tasks), len(fams), figsize=(3.6 * len(fams), 3.2 * len(tasks)), squeeze=False,
                         sharey=True)
    levels = sorted(norm[level].unique(), key=difficulty)
    colours = plt.cm.viridis_r(np.linspace(0.15, 0.95, max(len(levels), 2)))
    for r, task in enumerate(tasks):
        for c, fam in enumerate(fams):
            ax = axes[r, c]
            panel = norm[(norm["task"] == task) & (norm["compressor"] == fam)]
            methods = sorted(panel["method"].unique())
            for method in methods:
                for colour, value in zip(colours, levels):
                    curve = panel[(panel["method"] == method) & (panel[level] == value)].groupby(RATIO)["normalised"]
                    curve = curve.agg(["mean", "min", "max"])
                    if curve.empty:
                        continue
                    ax.plot(curve.index, curve["mean"], METHOD_STYLES.get(method, "o-"), color=colour, ms=3)
                    ax.fill_between(curve.index, curve["min"], curve["max"], color=colour, alpha=0.12)
            ax.set_xscale("log", base=2)
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
            ax.set_title(f"{task.split('/')[-1]}: {fam}" + (f"\n({', '.join(methods)})" if methods else ""), fontsize=9)
            ax.set_xlabel("compression ratio (fp32 bits / compressed)")
            if c == 0:
                ax.set_ylabel("normalised performance")
            ax.grid(alpha=0.3)
    present = [m for m in METHOD_STYLES if m in set(norm["method"])]
    handles = [Line2D([], [], color=colour, lw=2, label=f"{level_label or level} {value:g}")
               for colour, value in zip(colours, levels)]
    handles += [Line2D([], [], color="black", ls=METHOD_STYLES[m][1:], marker=METHOD_STYLES[m][0], ms=4, label=m)
                for m in present]
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(handles), 8),
               fontsize=8, frameon=False)
    return fig


def axis_table(results: pd.DataFrame) -> pd.DataFrame:
    """The compression axis of the cells run: each compressor setting and its ratio (and log2)."""
    rows = results[results["transfer"] != "dense"]
    cols = [c for c in ("method", "pattern", "sparsity", "bits", "rank_fraction") if c in rows]
    out = rows.groupby(cols, dropna=False)[RATIO].first().reset_index()
    out[LOG_RATIO] = np.log2(out[RATIO].astype(float))
    return out.sort_values(["method", RATIO]).reset_index(drop=True)


def analyse(results: pd.DataFrame, knobs, n_boot: int = 1000) -> dict:
    """Per knob: the normalised rows, the per-level trend table (Spearman and Theil-Sen against
    LOG_RATIO), the difficulty trend (with its bootstrap CI over seeds) and the seed-by-seed rhos
    (`knob` added to each); and all knobs' trends and rhos stacked."""
    from ..stats import trend_table

    out = {}
    for knob in knobs:
        difficulty = KNOBS[knob].difficulty
        norm = normalised(results, knob)
        out[knob] = {"norm": norm, "table": trend_table(norm, knob, x=LOG_RATIO),
                     "trend": difficulty_trend(norm, knob, difficulty, x=LOG_RATIO, n_boot=n_boot).assign(knob=knob),
                     "rhos": seed_trends(norm, knob, difficulty).assign(knob=knob)}
    out["trend"] = pd.concat([out[k]["trend"] for k in knobs], ignore_index=True)
    out["rhos"] = pd.concat([out[k]["rhos"] for k in knobs], ignore_index=True)
    out["table"] = pd.concat([out[k]["table"].assign(knob=k) for k in knobs], ignore_index=True)
    return out


def findings(analysis: dict, prefix: str = "compression") -> dict[str, object]:
    """Glue-ready numbers: the mean per-level Spearman (drop vs compression) per compressor family."""
    table = analysis["table"]
    fam = table["family"].map(lambda f: "pruning" if f in ("unstructured", "N:M") else f)
    out = {}
    for name in FAMILIES:
        values = table.loc[fam == name, "spearman"]
        key = name.replace(" ", "_")
        out[f"{prefix}_spearman_{key}"] = float(np.nanmean(values)) if values.notna().any() else float("nan")
        out[f"{prefix}_spearman_{key}_min"] = float(np.nanmin(values)) if values.notna().any() else float("nan")
        out[f"{prefix}_spearman_{key}_max"] = float(np.nanmax(values)) if values.notna().any() else float("nan")
    out[f"{prefix}_cells"] = int(sum(len(analysis[k]["norm"]) for k in KNOBS if k in analysis))
    return out
