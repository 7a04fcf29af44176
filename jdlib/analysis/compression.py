"""The compression chapter's analysis (claim C3, and C4's methods): the rows of each knob
normalised against the dense model on the common compression axis, the per-level trend table
(the paper's Spearman table) and the difficulty trend of each compressor."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..compress import METHODS
from ..settings.compression import KNOBS, RATIO
from .stats import difficulty_trend, normalise, spearman, trend_table

LOG_RATIO = "log2_ratio"
FAMILIES = ("pruning", "quantization", "low rank")


def compressor_of(method: str, pattern_family: str = "unstructured") -> str:
    """The compressor of a curve: pruning (unstructured), pruning N:M, quantization or low rank
    (the method's family in compress.METHODS; the dense anchors count as pruning)."""
    family = METHODS[method].family if method in METHODS else "pruning"
    return "pruning N:M" if family == "pruning" and pattern_family == "N:M" else family


def normalised(results: pd.DataFrame, knob: str) -> pd.DataFrame:
    """One knob's rows normalised against the dense model (stats.normalise), with the compression
    axis (RATIO, LOG_RATIO; 1 and 0 at the dense anchors) and `compressor` (pruning, pruning N:M,
    quantization, low rank; `compressor_of`). `family` stays the sparsity pattern family of stats.
    """
    rows = results[results["knob"] == knob]
    norm = normalise(rows, level=knob)
    norm[RATIO] = norm[RATIO].where(norm["pattern"] != "dense", 1.0) if RATIO in norm else 1.0
    norm[LOG_RATIO] = np.log2(norm[RATIO].astype(float))
    norm["compressor"] = [compressor_of(m, f) for m, f in zip(norm["method"], norm["family"])]
    return norm


def within_level(norm: pd.DataFrame, level: str) -> pd.DataFrame:
    """The paper's C3 statistic seed by seed: per task, method, level and seed, the Spearman correlation
    between compression strength (LOG_RATIO) and the drop over the unstructured curve (the dense model
    at ratio 1 included)."""
    rows = []
    curves = norm[norm["family"] != "N:M"]
    for (task, method, value, seed), g in curves.groupby(["task", "method", level, "seed"], sort=True):
        rho = spearman(g[LOG_RATIO], g["drop"])[0]
        rows.append({"task": task, "method": method, "level": value, "seed": seed, "spearman": rho})
    return pd.DataFrame(rows, columns=["task", "method", "level", "seed", "spearman"])


def within_table(within: pd.DataFrame) -> pd.DataFrame:
    """C3's statistic as the paper tabulates it: the within-level Spearman correlation between compression
    strength and drop, mean over tasks and seeds, a row per knob and level (the paper's order, hardest
    last) and a column per method."""
    table = within.pivot_table(index=["knob", "level"], columns="method", values="spearman", aggfunc="mean")
    order = {knob: KNOBS[knob].ORDER for knob in table.index.get_level_values("knob").unique()}
    table = table.reset_index()
    table["rank"] = [order[k](v) for k, v in zip(table["knob"], table["level"])]
    table = table.sort_values(["knob", "rank"]).drop(columns="rank").set_index(["knob", "level"])
    table.columns.name = None
    return table


def spearman_wide(table: pd.DataFrame, level: str) -> pd.DataFrame:
    """The paper's table: Spearman(drop, compression) per method (rows) and level (columns)."""
    return table.pivot_table(index=["task", "family", "method"], columns=level, values="spearman")


def axis_table(results: pd.DataFrame) -> pd.DataFrame:
    """The compression axis of the cells run: each compressor setting and its ratio (and log2)."""
    rows = results[results["transfer"] != "dense"]
    cols = [c for c in ("method", "pattern", "sparsity", "bits", "rank_fraction") if c in rows]
    out = rows.groupby(cols, dropna=False)[RATIO].first().reset_index()
    out[LOG_RATIO] = np.log2(out[RATIO].astype(float))
    return out.sort_values(["method", RATIO]).reset_index(drop=True)


def within(results: pd.DataFrame, knobs) -> pd.DataFrame:
    """C3's statistic alone (what `analyse` gives as "within"), without the bootstrap of the trends."""
    return pd.concat([within_level(normalised(results, knob), knob).assign(knob=knob) for knob in knobs],
                     ignore_index=True)


def analyse(results: pd.DataFrame, knobs, n_boot: int = 1000) -> dict:
    """Per knob: the normalised rows, the per-level trend table (Spearman and Theil-Sen against
    LOG_RATIO), the difficulty trend (with its bootstrap CI over seeds) and the within-level
    Spearman correlations seed by seed (C3's statistic; `knob` added to each); and all knobs'
    trends, tables and within-level correlations stacked."""
    out = {}
    for knob in knobs:
        difficulty = KNOBS[knob].ORDER
        norm = normalised(results, knob)
        out[knob] = {"norm": norm, "table": trend_table(norm, knob, x=LOG_RATIO),
                     "trend": difficulty_trend(norm, knob, difficulty, x=LOG_RATIO, n_boot=n_boot).assign(knob=knob),
                     "within": within_level(norm, knob).assign(knob=knob)}
    out["trend"] = pd.concat([out[k]["trend"] for k in knobs], ignore_index=True)
    out["within"] = pd.concat([out[k]["within"] for k in knobs], ignore_index=True)
    out["table"] = pd.concat([out[k]["table"].assign(knob=k) for k in knobs], ignore_index=True)
    return out


def findings(analysis: dict, prefix: str = "compression") -> dict[str, object]:
    """Glue-ready numbers: the mean per-level Spearman (drop vs compression) per compressor family."""
    table = analysis["table"]
    fam = table["method"].map(lambda m: METHODS[m].family if m in METHODS else "pruning")
    out = {}
    for name in FAMILIES:
        values = table.loc[fam == name, "spearman"]
        key = name.replace(" ", "_")
        out[f"{prefix}_spearman_{key}"] = float(np.nanmean(values)) if values.notna().any() else float("nan")
        out[f"{prefix}_spearman_{key}_min"] = float(np.nanmin(values)) if values.notna().any() else float("nan")
        out[f"{prefix}_spearman_{key}_max"] = float(np.nanmax(values)) if values.notna().any() else float("nan")
    out[f"{prefix}_cells"] = int(sum(len(analysis[k]["norm"]) for k in KNOBS if k in analysis))
    return out
