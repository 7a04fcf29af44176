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

from .intervals import CONFIDENCE, seeds_questions_t

# The chance-corrected drop divides by (dense - floor): at 0.05 a change of 0.01 in accuracy moves it by
# 0.2 already; closer to the floor the drop curve is noise.
GATE_MARGIN = 0.05


def majority_rate(labels: Iterable) -> float:
    """The share of the most frequent gold label (a constant predictor's accuracy)."""
    values = list(labels)
    if not values:
        raise ValueError("labels: none given")
    _, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
    return float(counts.max() / len(values))


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


def dense_interval(accuracies: Iterable[float], n_questions: int, outcomes: np.ndarray | None = None,
                   shared_questions: bool = True, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """The dense model's mean accuracy over seeds and its interval, over seeds and questions.

    The variance is the seeds' part (their spread over the number of seeds) plus the questions'
    (as `intervals.METHOD` adds them, analytically: the statistic is a mean). With per-question
    `outcomes[seed, question]` the questions' part is the variance of the seed-averaged outcome per
    question over n (shared questions) or each seed's own over n, averaged over seeds and divided by
    their number; without them, p(1 - p) / n, its largest value for outcomes in [0, 1]. One seed gives
    the questions' part alone.
    """
    acc = np.asarray(list(accuracies), dtype=float)
    if len(acc) == 0 or n_questions < 1:
        raise ValueError("accuracies: at least one seed and one question are needed")
    n_seeds, mean = len(acc), float(acc.mean())
    seeds = float(np.var(acc, ddof=1)) / n_seeds if n_seeds > 1 else 0.0
    if outcomes is not None:
        y = np.asarray(outcomes, dtype=float).reshape(n_seeds, -1)
        # ddof 0: the question bootstrap's variance of a mean, as intervals.METHOD takes it
        questions = (float(np.var(y.mean(axis=0))) if shared_questions else
                     float(np.var(y, axis=1).mean()) / n_seeds) / y.shape[1]
    else:
        p = mean if shared_questions else acc
        questions = float(np.mean(p * (1 - p))) / n_questions / (1 if shared_questions else n_seeds)
    low, high = seeds_questions_t(mean, seeds, questions, n_seeds, confidence)
    return mean, float(low), float(high)


def learnability_gate(accuracies: Iterable[float], n_questions: int, floor: float, *,
                      outcomes: np.ndarray | None = None, shared_questions: bool = True,
                      margin: float = GATE_MARGIN, confidence: float = CONFIDENCE) -> GateResult:
    """Is a level testable? The dense model's per-seed `accuracies` (on `n_questions` questions each,
    optionally their per-question `outcomes[seed, question]`) must have their interval (`dense_interval`)
    wholly above `floor` + `margin`."""
    acc = list(accuracies)
    dense, low, high = dense_interval(acc, n_questions, outcomes, shared_questions, confidence)
    passes = bool(np.isfinite(low) and low > floor + margin)
    words = "wholly above" if passes else "not wholly above"
    reason = (f"dense {dense:.3f} [{low:.3f}, {high:.3f}] {words} the floor {floor:.3f} + margin {margin:g}"
              + ("" if len(acc) > 1 else " (one seed: questions only)"))
    return GateResult(passes, dense, low, high, float(floor), margin, len(acc), reason)
