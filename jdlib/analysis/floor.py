"""A task's floor and the learnability gate: what a verdict may rest on (DESIGN section 7b).

The floor of a task is what a model scores without learning anything: the larger of the chance
level and the majority-class rate of the evaluation split (a fine-tuned classifier that always
answers the most frequent label scores that rate; a 50/50 binary task with a third, unused label
has chance 1/3 but a floor of 0.5).

The gate is fixed here, before any data are read: a level is testable only when the dense model's
accuracy is above the floor by `GATE_MARGIN`, its 95% interval (over seeds and questions) wholly
above floor + margin. Below that the drop has nothing to fall from: a compressed model cannot lose
what the dense one never learned, and the normalised drop divides by what little it did.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data import majority_by_task
from ..data.task import majority_rate
from ..settings import SETTINGS
from .intervals import CONFIDENCE, seeds_questions_t
from .sentences import level_label, plain

# The chance-corrected drop divides by (dense - floor): at 0.05 a change of 0.01 in accuracy moves it by
# 0.2 already; closer to the floor the drop curve is noise.
GATE_MARGIN = 0.05


def floor(chance: float | None, labels: Iterable | None = None) -> float:
    """max(chance, majority-class rate of `labels`); a missing chance (open answers) counts as 0."""
    chance = 0.0 if chance is None or np.isnan(chance) else float(chance)
    return chance if labels is None else max(chance, majority_rate(labels))


@dataclass(frozen=True)
class GateResult:
    """The gate's decision on one level: the dense model's accuracy (mean over seeds) and its interval
    against the floor and margin, and the reason in words."""

    passes: bool
    dense: float
    low: float
    high: float
    floor: float
    margin: float
    seeds: int
    reason: str


def dense_interval(accuracies: Iterable[float], n_questions: int | None, outcomes: np.ndarray | None = None,
                   shared_questions: bool = True, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """The dense model's mean accuracy over seeds and its interval (clipped to [0, 1]), over seeds and questions.

    The variance is the seeds' part (their spread over the number of seeds) plus the questions' (as
    `intervals.METHOD` adds them, analytically: the statistic is a mean). With per-question
    `outcomes[seed, question]` the questions' part is the variance of the seed-averaged outcome per
    question over n (shared questions) or each seed's own over n, averaged over seeds and divided by
    their number; without them, p(1 - p) / n, its largest value for outcomes in [0, 1]; with neither
    (`n_questions` None), none: the seeds' part alone. One seed gives the questions' part alone, and
    with neither no interval (NaN).
    """
    acc = np.asarray(list(accuracies), dtype=float)
    if len(acc) == 0 or (n_questions is not None and n_questions < 1):
        raise ValueError("accuracies: at least one seed is needed, and n_questions is positive or None")
    n_seeds, mean = len(acc), float(acc.mean())
    seeds = float(np.var(acc, ddof=1)) / n_seeds if n_seeds > 1 else 0.0
    if outcomes is not None:
        y = np.asarray(outcomes, dtype=float).reshape(n_seeds, -1)
        # ddof 0: the question bootstrap's variance of a mean, as intervals.METHOD takes it
        questions = (float(np.var(y.mean(axis=0))) if shared_questions else
                     float(np.var(y, axis=1).mean()) / n_seeds) / y.shape[1]
    elif n_questions is not None:
        p = mean if shared_questions else acc
        questions = float(np.mean(p * (1 - p))) / n_questions / (1 if shared_questions else n_seeds)
    else:
        questions = 0.0 if n_seeds > 1 else np.nan
    low, high = seeds_questions_t(mean, seeds, questions, n_seeds, confidence)
    return mean, float(np.clip(low, 0, 1)), float(np.clip(high, 0, 1))  # accuracy is bounded


def dense_text(dense: float, low: float, high: float) -> str:
    """"dense 0.593 [0.521, 0.665]", or "dense 0.593 (no interval)"."""
    return f"dense {dense:.3f} " + (f"[{low:.3f}, {high:.3f}]" if np.isfinite(low) else "(no interval)")


def learnability_gate(accuracies: Iterable[float], n_questions: int | None, floor: float, *,
                      outcomes: np.ndarray | None = None, shared_questions: bool = True,
                      margin: float = GATE_MARGIN, confidence: float = CONFIDENCE) -> GateResult:
    """Is a level testable? The dense model's per-seed `accuracies` (on `n_questions` questions each,
    optionally their per-question `outcomes[seed, question]`; None: unknown) must have their interval
    (`dense_interval`) wholly above `floor` + `margin`; no interval, no pass."""
    acc = list(accuracies)
    dense, low, high = dense_interval(acc, n_questions, outcomes, shared_questions, confidence)
    passes = bool(np.isfinite(low) and low > floor + margin)
    words = "wholly above" if passes else "not wholly above"
    reason = (f"{dense_text(dense, low, high)} {words} the floor {floor:.3f} + margin {margin:g}"
              + ("" if len(acc) > 1 else " (one seed: questions only)")
              + ("" if n_questions is not None or outcomes is not None else " (questions unknown: seeds only)"))
    return GateResult(passes, dense, low, high, float(floor), margin, len(acc), reason)


def row_floors(setting: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Each row's `chance`, `majority` (the majority-class rate of the validation split its fine-tuned cell
    evaluated; NaN where the setting does not fine-tune a classifier) and `floor`, the larger of the two."""
    spec = SETTINGS[setting]
    chance = spec.chance(rows).astype(float) if spec.chance is not None else pd.Series(np.nan, index=rows.index)
    majority = pd.Series(np.nan, index=rows.index)
    if spec.kind == "finetune" and len(rows):
        majority = majority_by_task(rows["task"], rows.get("max_train"), rows.get("max_eval"))
    return pd.DataFrame({"chance": chance, "majority": majority,
                         "floor": np.fmax(chance.fillna(0.0), majority.fillna(0.0))}, index=rows.index)


def level_gates(setting: str, rows: pd.DataFrame, margin: float = GATE_MARGIN) -> pd.DataFrame:
    """The gate at every task and level of a setting's rows (their dense rows, transfer "dense"): the dense
    model's accuracy with its interval over seeds and questions beside the floor, chance and majority rate,
    and whether the level is `testable`, with the reason. What a chapter's dense table shows."""
    spec = SETTINGS[setting]
    dense = rows[rows["transfer"] == "dense"]
    dense = dense.join(row_floors(setting, dense))
    shared = not bool(dense.get("eval_seeded", pd.Series([False])).fillna(False).any())
    out = []
    for (task, level), g in dense.groupby(["task", spec.level], sort=False):
        g = g.sort_values("seed")
        outcomes = None
        if "outcomes" in g and g["outcomes"].map(lambda o: o is not None and len(o) > 0).all() \
                and g["outcomes"].map(len).nunique() == 1:
            outcomes = np.stack([np.asarray(o, dtype=float) for o in g["outcomes"]])
        n = int(g["n"].iloc[0]) if "n" in g and pd.notna(g["n"].iloc[0]) else \
            (outcomes.shape[1] if outcomes is not None else None)
        gate = learnability_gate(g["accuracy"], n, float(g["floor"].max()), outcomes=outcomes,
                                 shared_questions=shared, margin=margin)
        out.append({"task": task, spec.level: level, "dense": gate.dense, "low": gate.low, "high": gate.high,
                    "floor": gate.floor, "chance": float(g["chance"].mean()), "majority": float(g["majority"].mean()),
                    "seeds": gate.seeds, "questions": n, "testable": gate.passes, "reason": gate.reason})
    columns = ["task", spec.level, "dense", "low", "high", "floor", "chance", "majority", "seeds", "questions",
               "testable", "reason"]
    table = pd.DataFrame(out, columns=columns)
    return table.sort_values(["task", spec.level], key=lambda c: c.map(spec.order) if c.name == spec.level else c)


def gate_reason(spec, gates: pd.DataFrame, statistic: str, needed: int) -> tuple[bool, str]:
    """Whether a comparison has the testable levels its statistic needs (`gates`: its task's, or its tasks'),
    and why: how many levels pass, and each left out with the dense model's accuracy and interval beside
    the floor."""
    passed, left = gates[gates["testable"]], gates[~gates["testable"]]
    testable = len(passed) >= needed
    out = [f"{spec.level} {level_label(plain(r[spec.level]))}"
           + (f" of {r['task'].split('/')[-1]}" if spec.across_tasks else "")
           + f" ({dense_text(r['dense'], r['low'], r['high'])}, floor {r['floor']:.3f})"
           for _, r in left.iterrows()]
    head = f"{len(passed)} of {len(gates)} levels pass the gate"
    if testable:
        return True, head + (f"; left out: {'; '.join(out)}" if out else "")
    return False, f"{head}, {statistic} needs {needed}; below floor + {GATE_MARGIN:g}: {'; '.join(out)}"
