"""A claim judged from all its comparisons at once, by a rule fixed before any data were read (DESIGN 7b).

One borderline comparison among many must not decide a claim, and many comparisons that each
fall short of significance may still say something together. The rule:

1. Only testable comparisons (the learnability gate, `analysis.floor`) with a standard error enter.
2. Comparisons that share a task's dense model and questions (the sparsity patterns and pruning
   methods of one difficulty knob and task, whichever grid they come from: the compression grid's
   option-count rows join Setting 2's on the same task) are not independent: they form one study,
   whose estimate is their mean and whose standard error is their mean standard error (as if wholly
   correlated: the most it can be).
3. The studies are pooled by DerSimonian-Laird random effects (the between-study variance tau^2
   absorbs that settings and tasks differ in scale), with the Hartung-Knapp interval: t with k - 1
   degrees of freedom around the pooled estimate, its variance scaled by the studies' weighted
   dispersion, never by less than 1 (the form whose coverage holds with few studies). One study
   keeps its own t interval.
4. The claim holds when the pooled 95% interval lies above 0, fails when below, is inconclusive
   otherwise, and is `not testable` when no comparison passes the gate.
5. Beside it: the counts of comparisons that hold, fail, are inconclusive or not testable, and the
   failing comparisons that stay failing after Holm's adjustment over the testable comparisons.

`bench/interval_coverage.py` measures the rule's coverage and false verdicts (its `pooled` key).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from .intervals import CONFIDENCE

NOT_TESTABLE = "not testable"
VERDICTS = ("holds", "fails", "inconclusive", NOT_TESTABLE)
METHOD = ("DerSimonian-Laird random effects over studies (the comparisons of one setting, task and knob as one, "
          "their mean with their mean standard error), Hartung-Knapp 95% interval (t, k - 1 df, scale >= 1)")
ALPHA = 0.05  # Holm's family-wise error over a claim's testable comparisons
BENCH = Path(__file__).resolve().parents[2] / "bench" / "results" / "interval_coverage.json"


def measured(path: Path = BENCH) -> str:
    """What bench/interval_coverage.py measured of this rule (its key `pooled`), in a sentence."""
    try:
        found = json.loads(Path(path).read_text())["pooled"]
    except (OSError, KeyError, ValueError):
        return f"The rule's coverage is not measured yet ({path.name} has no key 'pooled')."
    c, f = found["coverage"], found["false_positive"]
    return (f"Measured on simulated claims in bench/interval_coverage.py, worst case at 3 / 5 seeds: coverage "
            f"{c['3']:.3f} / {c['5']:.3f} and false verdicts {f['3']:.3f} / {f['5']:.3f} (goal: coverage at least "
            f"{found['goal']['coverage']:.2f}, false verdicts at most {found['goal']['false_positive']:.2f}); the "
            f"former rule, where any failing comparison failed the claim, gave false verdicts "
            f"{found['former_false_positive']['3']:.3f} / {found['former_false_positive']['5']:.3f}.")


@dataclass(frozen=True)
class Pooled:
    """A pooled estimate with its interval, and the heterogeneity behind it (tau^2, I^2, Cochran's Q)."""

    estimate: float
    low: float
    high: float
    studies: int
    comparisons: int
    tau2: float = np.nan
    i2: float = np.nan
    q: float = np.nan
    se: float = np.nan  # the interval's standard error and degrees of freedom
    df: float = np.nan
    method: str = METHOD

    @property
    def p_value(self) -> float:
        """Two-sided, of estimate = 0, from the interval's t (NaN without one)."""
        return float(p_values([self.estimate], [self.se], [self.df])[0])

    @property
    def verdict(self) -> str:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or not self.high > self.low:
            return "inconclusive"
        return "holds" if self.low > 0 else ("fails" if self.high < 0 else "inconclusive")

    def as_dict(self) -> dict:
        """{estimate, low, high, method} and the heterogeneity, as the claims JSON prints it."""
        def num(v):
            return None if v is None or not np.isfinite(v) else float(v)

        return {"estimate": num(self.estimate), "low": num(self.low), "high": num(self.high), "method": self.method,
                "studies": self.studies, "comparisons": self.comparisons, "tau2": num(self.tau2),
                "i2": num(self.i2)}


def pool(estimates: Iterable[float], ses: Iterable[float], dfs: Iterable[float] | None = None,
         studies: Iterable | None = None, confidence: float = CONFIDENCE) -> Pooled:
    """The pooled estimate of comparisons (`estimate`, standard error `se`, degrees of freedom `df`),
    `studies` naming the study of each (default: each its own); see the module docstring."""
    frame = pd.DataFrame({"y": list(estimates), "se": list(ses)})
    frame["df"] = np.inf if dfs is None else list(dfs)
    frame["study"] = range(len(frame)) if studies is None else list(studies)
    frame = frame[np.isfinite(frame["y"]) & np.isfinite(frame["se"]) & (frame["se"] > 0)]
    if frame.empty:
        return Pooled(np.nan, np.nan, np.nan, 0, 0)
    by = frame.groupby("study", sort=False).agg(y=("y", "mean"), se=("se", "mean"), df=("df", "min"))
    y, v, k = by["y"].to_numpy(), by["se"].to_numpy() ** 2, len(by)
    quantile = 0.5 + confidence / 2
    if k == 1:
        se, df = float(np.sqrt(v[0])), float(by["df"].iloc[0])
        half = sps.t.ppf(quantile, df) * se
        return Pooled(float(y[0]), float(y[0] - half), float(y[0] + half), 1, len(frame), se=se, df=df)
    w = 1 / v
    fixed = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - fixed) ** 2))
    tau2 = max(0.0, (q - (k - 1)) / (np.sum(w) - np.sum(w ** 2) / np.sum(w)))
    w_star = 1 / (v + tau2)
    mu = float(np.sum(w_star * y) / np.sum(w_star))
    scale = max(1.0, float(np.sum(w_star * (y - mu) ** 2)) / (k - 1))
    se = float(np.sqrt(scale / np.sum(w_star)))
    half = sps.t.ppf(quantile, k - 1) * se
    return Pooled(mu, mu - half, mu + half, k, len(frame), tau2, max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0, q,
                  se, float(k - 1))


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN stays NaN and counts in no family)."""
    p = np.asarray(list(pvalues), dtype=float)
    out = np.full(len(p), np.nan)
    present = np.flatnonzero(np.isfinite(p))
    order = present[np.argsort(p[present], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def p_values(estimates, ses, dfs) -> np.ndarray:
    """Two-sided p-values of estimate = 0 from each comparison's t interval (NaN without a standard error)."""
    y, se, df = (np.asarray(list(a), dtype=float) for a in (estimates, ses, dfs))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(se) & (se > 0), 2 * sps.t.sf(np.abs(y / se), df), np.nan)


def counts(verdicts: Iterable[str]) -> dict[str, int]:
    """How many comparisons hold, fail, are inconclusive, are not testable."""
    found = pd.Series(list(verdicts), dtype=object).value_counts()
    return {v.replace(" ", "_"): int(found.get(v, 0)) for v in VERDICTS}


@dataclass(frozen=True)
class Judged:
    """A claim (or a part of one) judged by the pooled rule from its comparisons' table."""

    pooled: Pooled
    counts: dict[str, int]
    failing: list[str]  # the comparisons that fail after Holm's adjustment

    @property
    def verdict(self) -> str:
        testable = sum(n for v, n in self.counts.items() if v != NOT_TESTABLE.replace(" ", "_"))
        return NOT_TESTABLE if testable == 0 else self.pooled.verdict


def judge(table: pd.DataFrame, study: list[str], name: list[str]) -> Judged:
    """The pooled rule on a comparisons table (columns estimate, se, df, verdict, testable, `study`, `name`):
    the pooled estimate of the testable ones, the counts, and the failing comparisons after Holm,
    named by the `name` columns. Adds nothing to `table`."""
    testable = table[table["testable"].astype(bool)] if len(table) else table
    if testable.empty:
        return Judged(Pooled(np.nan, np.nan, np.nan, 0, 0), counts(table.get("verdict", [])), [])
    keys = testable[study].astype(str).agg("/".join, axis=1)
    pooled = pool(testable["estimate"], testable["se"], testable["df"], keys)
    adjusted = holm(p_values(testable["estimate"], testable["se"], testable["df"]))
    failing = testable[(testable["estimate"] < 0) & (adjusted < ALPHA)]
    return Judged(pooled, counts(table["verdict"]),
                  [", ".join(str(v) for v in row) for row in failing[name].itertuples(index=False)])
