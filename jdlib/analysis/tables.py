"""Tables for the book's pages: narrow enough for the text column, rounded and labelled.

A page shows what a reader needs (an estimate with its interval in one column, short task names,
columns that hold one value moved into the caption); the wide tables stay whole behind a toggle.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

TASK_PREFIX = "bigbench/"


def short_task(name) -> str:
    """A task as a page names it: without the `bigbench/` its BIG-bench tasks all share."""
    return name.removeprefix(TASK_PREFIX) if isinstance(name, str) else name


def interval_text(estimate: float, low: float, high: float, digits: int = 3, signed: bool = True) -> str:
    """"+0.123 [+0.100, +0.150]", the estimate alone where there is no interval, or "none"."""
    spec = f"{'+' if signed else ''}.{digits}f"
    if estimate is None or np.isnan(estimate):
        return "none"
    if low is None or high is None or np.isnan(low) or np.isnan(high):
        return f"{estimate:{spec}} (no interval)"
    return f"{estimate:{spec}} [{low:{spec}}, {high:{spec}}]"


def with_interval(frame: pd.DataFrame, estimate: str = "estimate", low: str = "low", high: str = "high",
                  name: str = "estimate [95% CI]", digits: int = 3, signed: bool = True) -> pd.DataFrame:
    """`frame` with its estimate, low and high columns joined into one text column `name`, where the estimate was."""
    out = frame.copy()
    text = [interval_text(e, lo, hi, digits, signed) for e, lo, hi in zip(out[estimate], out[low], out[high])]
    at = list(out.columns).index(estimate)
    out = out.drop(columns=[estimate, low, high])
    out.insert(at, name, text)
    return out


def page(frame: pd.DataFrame, caption: str, digits: int = 3, index: bool = False,
         keep: tuple[str, ...] = ("verdict",)) -> Styler:
    """`frame` as a page shows it: task names short, a column that holds one value (over two rows or
    more, and not in `keep`) named in the caption instead, numbers to `digits` decimals, the index
    hidden unless `index`."""
    out = frame.copy()
    if "task" in out:
        out["task"] = out["task"].map(short_task)
    constant = [c for c in out.columns if len(out) > 1 and c not in keep and out[c].map(repr).nunique() == 1]
    if constant and len(constant) < len(out.columns):
        named = [c for c in constant if out[c].notna().all()]  # a column with no value at all just goes
        if named:
            fixed = "; ".join(f"{c}: {_value(out[c].iloc[0], digits)}" for c in named)
            caption = f"{caption} (all rows: {fixed})"
        out = out.drop(columns=constant)
    styler = out.style.set_caption(caption).format(precision=digits, na_rep="–")
    return styler if index else styler.hide(axis="index")


def estimates(frame: pd.DataFrame, caption: str, estimate: str = "mean", digits: int = 3,
              name: str | None = None) -> Styler:
    """A table of estimates with 95% intervals (columns `estimate` and `<estimate>_low`/`_high`, or low
    and high) as a page shows it, each interval in one column beside its estimate (`with_interval`)."""
    low, high = ((f"{estimate}_low", f"{estimate}_high") if f"{estimate}_low" in frame else ("low", "high"))
    name = name or f"{estimate} [95% CI]"
    return page(with_interval(frame, estimate, low, high, name=name, digits=digits), caption, digits)


def barriers(c5) -> Styler:
    """C5's table (`claims.c5_basin`): the loss barrier per task, level and sparsity with its interval."""
    return estimates(c5["table"], "The loss barrier per task, fraction and sparsity, mean over seeds", digits=4,
                     name="barrier [95% CI]")


def c3_parts(c3) -> Styler:
    """C3's parts (`claims.c3_quantization`), each with its interval and verdict."""
    parts = c3["parts"].assign(**{"rho: pruning / quantizer": [
        f"{_value(p, 2)} / {_value(q, 2)}" for p, q in zip(c3["parts"]["rho_pruning"], c3["parts"]["rho_quantizer"])]})
    return estimates(parts.drop(columns=["rho_pruning", "rho_quantizer"]),
                     "C3's parts: within-level Spearman(compression, drop), magnitude pruning minus each quantizer, "
                     "paired over levels, tasks and seeds")


def c2_comparisons(parts: dict) -> Styler:
    """C2's comparisons at every level (`claims.c2_irreversibility` results, by the name of their part:
    within a task, across tasks), each paired difference of accuracy with its interval."""
    frames = [with_interval(result["table"], "mean", name="mean [95% CI]")
              .rename(columns={result["level"]: "level"}).assign(part=part) for part, result in parts.items()]
    table = pd.concat(frames, ignore_index=True)
    return page(table[["part", "level", "comparison", "mean [95% CI]", "pairs", "verdict"]],
                "C2: paired differences of accuracy at each level (the verdict reads the hardest and the easiest)")


def human_gaps(across: pd.DataFrame) -> Styler:
    """The human-model gap per task (rows of an across-task sweep: human, dense_score, gap), smallest first."""
    table = across.groupby("task")[["human", "dense_score", "gap"]].first().sort_values("gap").reset_index()
    return page(table, "The human-model gap per task: (human - dense model) / human x 100, smallest first", digits=1)


def spearman_per_level(analysis: dict, knobs) -> list[Styler]:
    """The paper's table per knob of the compression chapter (`compression.analyse`): Spearman(drop,
    log2 compression ratio) per level (columns) and method, seeds pooled, labelled with its knob."""
    from .compression import spearman_wide
    from .sentences import level_label

    return [page(spearman_wide(analysis[knob]["table"], knob).rename(columns=level_label).reset_index(),
                 f"The {knob} knob: Spearman(drop, log2 compression ratio) per {knob} level (columns) and method",
                 digits=2) for knob in knobs]


def _value(value, digits: int) -> str:
    """A value as a table cell or caption gives it: a float to `digits` significant digits, a missing one as "–"."""
    if isinstance(value, (float, np.floating)):
        return "–" if np.isnan(value) else f"{value:.{digits}g}"
    return str(value)


def summary(frame: pd.DataFrame, by: list[str], value: str, caption: str, digits: int = 3) -> Styler:
    """What a sweep ran, in a few rows: per group of `by`, the number of cells and the mean, lowest and
    highest `value`. The rows themselves stay behind the sweep cell's toggle."""
    groups = frame.groupby(by, dropna=False, sort=True)[value]
    table = groups.agg(cells="size", mean="mean", lowest="min", highest="max").reset_index()
    table = table.rename(columns={"mean": f"mean {value}", "lowest": f"lowest {value}",
                                  "highest": f"highest {value}"})
    return page(table, caption, digits)
