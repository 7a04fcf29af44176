"""The Junk-DNA score of a pruning method: how much more its pruning costs the hardest task than the easiest.

Per comparison (a setting, or a knob of the compression grid, with a task, method and transfer mode, as C1
names them), the score is the area between two normalised-drop curves, (dense - pruned) / dense against
sparsity, the drop averaged over seeds: the hardest testable level's curve minus the easiest's (testable:
the dense model passes the learnability gate there, `floor`). The area runs over the sparsities both levels
were pruned at, from the dense model (0, drop 0) to the largest, by trapezoids. Divided by that range it is
the mean extra drop of the hard level; 0 means pruning costs hard and easy alike, a positive score is the
Junk-DNA pattern. Only unstructured curves count: an N:M family has one to three sparsities (2:4 and 4:8
are both 50%), too few for an area.

Its interval is C1's (`intervals.outcome_grid`, `intervals.METHOD`: seeds and per-question outcomes), and the
comparisons of a method are pooled by C1's rule (`pooling.pool`: the comparisons of one task and setting are
one study, random effects over studies). Settings whose levels are tasks (Setting 5) are left out: their
easy and hard curves come from different dense models and questions, not one pairing. Quantizers and low rank
get no score: their strength is bits or rank, not sparsity, so their areas would be in other units (C3
compares them with pruning by rank correlation instead).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

from .. import plots
from ..settings import SETTINGS
from ..settings.compression import KNOBS
from . import intervals, pooling
from .intervals import outcome_grid
from .compression import compressor_of
from .floor import gate_reason, level_gates
from .sentences import json_value, level_label
from . import tables
from .tables import interval_text

PATTERN = "unstructured"
GROUP = ["task", "method", "transfer"]
STATISTIC = "score"
COLUMNS = ["setting", "knob", *GROUP, "easiest", "hardest", "sparsities", "estimate", "low", "high", "se", "df",
           "easiest_area", "hardest_area", "interval", "study", "testable", "testable_reason"]


def area_between(acc: np.ndarray, conditions: pd.DataFrame) -> dict[str, np.ndarray]:
    """The hardest level's area under its drop curve minus the easiest's (`score`), and each area, from
    acc[..., seed, condition] of two levels that share their sparsities (the dense one at 0)."""
    drop, xs = intervals.drops(acc, conditions)  # [..., seed, level, sparsity]
    area = np.trapezoid(drop.mean(axis=-3, dtype=float), xs, axis=-1)
    return {STATISTIC: area[..., -1] - area[..., 0], "easiest": area[..., 0], "hardest": area[..., -1]}


def comparisons(setting: str, rows: pd.DataFrame, study: str | None = None) -> pd.DataFrame:
    """One row per comparison (task, pruning method, transfer) of a within-task setting's rows: the score
    with its interval and standard error, the two levels and the sparsities it reads, and whether it is
    testable (two levels pass the gate) and why. `study` names the setting whose tasks' dense models the
    rows share (default `setting`; the compression grid's knobs share their settings')."""
    spec = SETTINGS[setting]
    gates = level_gates(setting, rows)
    pruned = (rows["pattern"] == PATTERN) & (rows["method"].map(compressor_of) == "pruning")
    dense, curves = rows[rows["transfer"] == "dense"], rows[(rows["transfer"] != "dense") & pruned]
    out = []
    for keys, curve in curves.groupby(GROUP, sort=True):
        group = dict(zip(GROUP, keys))
        task_gates = gates[(gates["task"] == group["task"]) & gates[spec.level].isin(curve[spec.level])]
        testable, reason = gate_reason(spec, task_gates, STATISTIC, 2)
        found = {"setting": setting, **group, "study": f"{study or setting}/{group['task']}", "testable": testable,
                 "testable_reason": reason}
        if testable:
            levels = spec.order.easiest_first(task_gates.loc[task_gates["testable"], spec.level])
            ends = [levels[0], levels[-1]]
            at = [set(curve.loc[curve[spec.level] == level, "sparsity"]) for level in ends]
            common = sorted(at[0] & at[1])
            cells = pd.concat([dense[dense["task"] == group["task"]], curve], ignore_index=True)
            cells = cells[cells[spec.level].isin(ends) & cells["sparsity"].isin([0.0, *common])]
            grid, method = outcome_grid(cells, spec)
            found_intervals = intervals.intervals(grid, area_between, method=method)
            score = found_intervals[STATISTIC]
            found.update({"easiest": ends[0], "hardest": ends[-1], "sparsities": f"{common[0]:g}-{common[-1]:g}",
                          "estimate": score.estimate, "low": score.low, "high": score.high, "se": score.se,
                          "df": score.df, "easiest_area": found_intervals["easiest"].estimate,
                          "hardest_area": found_intervals["hardest"].estimate, "interval": method})
        out.append(found)
    return pd.DataFrame(out).reindex(columns=COLUMNS)


def chapter_comparisons(rows_by_chapter: dict) -> pd.DataFrame:
    """Every comparison with rows: each within-task C1 setting's, and the compression grid's per knob
    (its option count as Setting 2 gates and studies it, its context as Setting 3); `where` names the
    setting or knob and the task, as the table and figure label them."""
    parts = [comparisons(name, found) for name, found in rows_by_chapter.items()
             if found is not None and SETTINGS[name].in_c1 and not SETTINGS[name].across_tasks]
    grid = rows_by_chapter.get("compression")
    if grid is not None:
        parts += [comparisons(KNOBS[knob].SETTING.name, part).assign(setting="compression", knob=knob)
                  for knob, part in grid.groupby("knob")]
    if not parts:
        return pd.DataFrame(columns=[*COLUMNS, "where"])
    table = pd.concat(parts, ignore_index=True)
    return table.assign(where=[f"{k if isinstance(k, str) else s}: {t.split('/')[-1]}"
                               for s, k, t in zip(table["setting"], table["knob"], table["task"])])


def method_scores(table: pd.DataFrame) -> pd.DataFrame:
    """The score per method, pooled over its testable comparisons (`pooling.pool`, C1's rule), lowest
    first: `estimate`, `low`, `high`, `n_tasks` (the studies: a task within a setting), `n_comparisons`,
    `not_testable`, the between-study spread (`tau2`, `i2`) and `reading`, what the interval shows."""
    out = []
    for method, found in table.groupby("method", sort=True):
        testable = found[found["testable"].astype(bool)]
        pooled = pooling.pool(testable["estimate"], testable["se"], testable["df"], testable["study"])
        out.append({"method": method, "estimate": pooled.estimate, "low": pooled.low, "high": pooled.high,
                    "n_tasks": pooled.studies, "n_comparisons": pooled.comparisons,
                    "not_testable": int((~found["testable"].astype(bool)).sum()), "tau2": pooled.tau2,
                    "i2": pooled.i2, "reading": reading(pooled)})
    columns = ["method", "estimate", "low", "high", "n_tasks", "n_comparisons", "not_testable", "tau2", "i2",
               "reading"]
    return pd.DataFrame(out, columns=columns).sort_values("estimate", kind="stable").reset_index(drop=True)


def reading(pooled: pooling.Pooled) -> str:
    """What a pooled score's 95% interval shows, in a few words."""
    if not (np.isfinite(pooled.low) and np.isfinite(pooled.high)):
        return "no interval"
    if pooled.low > 0:
        return "hard level pays more"
    if pooled.high < 0:
        return "easy level pays more"
    return "interval includes 0"


def scores_json(scores: pd.DataFrame) -> dict[str, dict]:
    """{method: {estimate, low, high, n_tasks, n_comparisons, not_testable, reading}} as the claims JSON prints it."""
    keys = ["estimate", "low", "high", "n_tasks", "n_comparisons", "not_testable", "reading"]
    return {row["method"]: {k: json_value(row[k]) for k in keys} for row in scores.to_dict(orient="records")}


def sentence(scores: pd.DataFrame, table: pd.DataFrame) -> str:
    """The ranking in words: each method's pooled score with its interval, lowest first, what it rests on,
    and the methods whose interval includes 0 named as such."""
    if scores.empty:
        return "No pruning method has rows to score."
    ranked = "; ".join(f"{r['method']} {interval_text(r['estimate'], r['low'], r['high'])} over {r['n_tasks']} "
                       f"task(s)" for r in scores.to_dict(orient="records"))
    levels = table[table["testable"].astype(bool)]
    pairs = sorted({f"{SETTINGS[study.split('/')[0]].level} {level_label(e)} against {level_label(h)} "
                    f"({study.split('/')[-1]})" for study, e, h in zip(levels["study"], levels["easiest"],
                                                                          levels["hardest"])})
    zero = scores.loc[scores["reading"] == "interval includes 0", "method"].tolist()
    seed_only = sorted(set(levels.loc[levels["interval"] != intervals.METHOD, "method"]))
    overlap = len(scores) > 1 and scores["low"].max() <= scores["high"].min()
    return (f"Junk-DNA score (area between the hardest and the easiest testable level's normalised-drop curves, "
            f"95% interval), lowest first: {ranked}. The levels compared (easiest against hardest testable): "
            f"{'; '.join(pairs)}. "
            + (f"The pooled interval of {', '.join(zero)} includes 0: pooled over these tasks, the rows do not show "
               "that pruning costs the hard level more than the easy one. " if zero else
               "No method's pooled interval includes 0. ")
            + f"Of the {len(levels)} task scores, {int((levels['low'] > 0).sum())} have their own interval above 0 "
              f"and {int((levels['high'] < 0).sum())} below. "
            + ("Every pooled interval overlaps every other, so the ranking is that of the estimates alone. "
               if overlap else "")
            + (f"The rows of {', '.join(seed_only)} have no per-question outcomes: their intervals are seed-only "
               "(t over the seeds), narrower than the others' for leaving out the questions' error."
               if seed_only else "")).strip()



@dataclass
class Ranking:
    """The methods ranked by their Junk-DNA score, as a page shows them."""

    comparisons: pd.DataFrame  # `chapter_comparisons`
    scores: pd.DataFrame  # `method_scores`

    def summary(self):
        from IPython.display import Markdown

        return Markdown(sentence(self.scores, self.comparisons))

    def table(self) -> Styler | None:
        return None if self.scores.empty else tables.scores(self.scores, self.comparisons)

    def figure(self) -> Figure | None:
        return None if self.scores.empty else plots.scores(self.scores, self.comparisons)


def ranking(rows_by_chapter: dict) -> Ranking:
    """The Junk-DNA score of every pruning method with rows in `rows_by_chapter` (None: a grid not whole)."""
    table = chapter_comparisons(rows_by_chapter)
    return Ranking(table, method_scores(table))
