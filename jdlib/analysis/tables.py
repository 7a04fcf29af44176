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


COMPARISON_COLUMNS = ("setting", "knob", "contrast", "part", "quantizer", "control", "match", "task", "family", "method",
                      "statistic", "comparison",
                      "easy", "hard", "estimate", "low", "high", "verdict", "testable_reason")


def comparisons(table: pd.DataFrame, caption: str, digits: int = 3) -> Styler:
    """A claim's comparisons (its `units`, or C1's and C4's table) as a page shows them: who is compared,
    the statistic, the estimate with its interval in one column, the verdict and why the comparison is
    testable or not; a task by its last name (`99_distractors`, the setting names the rest). The other
    columns (slopes per level, violations) stay in the whole table behind a toggle."""
    if table is None:  # a claim that was not run has no comparisons
        table = pd.DataFrame(columns=["verdict"])
    out = table[[c for c in COMPARISON_COLUMNS if c in table]].rename(columns={"testable_reason": "testable"})
    if "task" in out:
        out["task"] = out["task"].map(lambda t: t.split("/")[-1] if isinstance(t, str) else t)
    if "testable" in out:  # the reason's head; the levels below the floor stand in the gate table
        out["testable"] = out["testable"].map(lambda r: r.split("; ")[0] if isinstance(r, str) else r)
    if "estimate" in out:
        out = with_interval(out, name="estimate [95% CI]", digits=digits)
    return page(out, caption, digits)


def claim_summary(summary: pd.DataFrame) -> Styler:
    """The claim-per-row summary (`verdicts.summary`) without its sentences (each claim's section gives its
    evidence and what is not testable): claim, verdict, pooled estimate, counts, floor-corrected verdict."""
    return page(summary.drop(columns=["not testable", "evidence"], errors="ignore"),
                "Each claim's verdict, pooled estimate and comparisons; the sections below give the evidence",
                keep=("verdict", "floor-corrected"))


def gates(table: pd.DataFrame) -> Styler:
    """The learnability gate per setting, task and level (`verdicts.gates_table`): the dense accuracy with
    its interval in one column beside the floor, chance and majority-class rates ("–" where there is none)."""
    caption = "The gate: the dense model's accuracy per level against the task's floor"
    if table.empty:
        return page(table, caption)
    out = with_interval(table, "dense", name="dense [95% CI]", signed=False)
    out["testable"] = out["testable"].map({True: "yes", False: "no"})
    out["chance / majority"] = [f"{_rate(c)} / {_rate(m)}" for c, m in zip(out["chance"], out["majority"])]
    at = list(out.columns).index("chance")
    out = out.drop(columns=["chance", "majority"])
    out.insert(at, "chance / majority", out.pop("chance / majority"))
    return page(out, caption, keep=("testable",))


def _rate(value) -> str:
    """A rate as the gate table gives it: three decimals, or "–" where there is none."""
    return "–" if value is None or pd.isna(value) else f"{value:.3f}"


def pooled(by_setting: pd.DataFrame, caption: str, digits: int = 4) -> Styler:
    """Pooled verdicts per setting or group (C1's `by_setting`, `verdicts.setting_table`; C4's table by
    family and method): the pooled estimate with its interval, the
    between-study spread where there are studies to spread, the counts of verdicts in one column, and
    the comparisons that fail after Holm's adjustment where any do."""
    out = with_interval(by_setting, name="estimate [95% CI]", digits=digits)
    counts = [c for c in ("holds", "fails", "inconclusive", "not_testable") if c in out]
    out["holds / fails / inconclusive / not testable"] = [
        " / ".join(str(int(r[c])) for c in counts) for _, r in out[counts].iterrows()]
    out = out.drop(columns=counts)
    empty = [c for c in out.columns if out[c].map(lambda v: v is None or v == "" or (isinstance(v, float)
                                                                                    and np.isnan(v))).all()]
    return page(out.drop(columns=empty), caption, digits)


def scores(scores: pd.DataFrame, comparisons: pd.DataFrame) -> Styler:
    """The Junk-DNA score per method (`score.method_scores`, lowest first): the pooled score with its interval,
    each testable comparison's beside it (a column per `where`: setting or knob and task), and what the interval shows."""
    testable = comparisons[comparisons["testable"].astype(bool)]
    per_task = testable.assign(text=[interval_text(e, lo, hi) for e, lo, hi in
                                     zip(testable["estimate"], testable["low"], testable["high"])])
    wide = per_task.pivot_table(index="method", columns="where", values="text", aggfunc="first").fillna("–")
    table = with_interval(scores, name="pooled score [95% CI]")
    table = table[["method", "pooled score [95% CI]", "n_tasks", "reading"]].rename(columns={"n_tasks": "tasks"})
    return page(table.merge(wide.reset_index(), on="method", how="left"),
                "Junk-DNA score per method, lowest first: the area between the hardest and the easiest testable "
                "level's normalised-drop curves, pooled over tasks, then each task's own", keep=("reading",))
