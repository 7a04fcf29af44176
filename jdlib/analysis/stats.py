"""Normalised performance and drop, and the trend statistics of the paper (Spearman, Theil-Sen).

Normalised performance = compressed / dense; normalised drop = (dense - compressed) / dense.
Per difficulty level: Spearman's rank correlation of drop with compression strength, and the
Theil-Sen slope of drop against it. Across levels: whether the slope grows with difficulty
(Spearman between difficulty and slope), with a bootstrap CI that resamples seeds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..compress.masks import parse_pattern

def pattern_family(pattern: str) -> str:
    """The sparsity pattern family of a cell: dense, unstructured or N:M."""
    return "dense" if pattern == "dense" else ("N:M" if parse_pattern(pattern) else "unstructured")


def normalise(frame: pd.DataFrame, level: str, metric: str = "accuracy", baseline: str = "dense") -> pd.DataFrame:
    """Compressed cells with `normalised` and `drop` against the dense cell of the same task, level and seed.

    Each curve (transfer, method, pattern family) also gets the dense cell itself as its point
    at sparsity 0 (normalised 1, drop 0): every curve starts where no weight is pruned, and a
    slope exists even from a single compressed level.
    """
    on = ["task", level, "seed"]
    base = frame[frame["transfer"] == baseline][on + [metric]].rename(columns={metric: "dense_" + metric})
    out = frame[frame["transfer"] != baseline].merge(base, on=on, how="inner")
    out["family"] = out["pattern"].map(pattern_family)
    curves = out[["transfer", "method", "family"]].drop_duplicates()
    anchors = base.assign(**{metric: base["dense_" + metric], "sparsity": 0.0, "pattern": "dense"}).merge(curves, how="cross")
    out = pd.concat([anchors, out], ignore_index=True)
    out["normalised"] = out[metric] / out["dense_" + metric]
    out["drop"] = 1.0 - out["normalised"]
    return out


def _theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    if len(np.unique(x)) < 2:
        return np.nan, np.nan, np.nan
    with np.errstate(invalid="ignore"):  # the CI of very few points is undefined, not an error
        slope, _, low, high = sps.theilslopes(y, x, alpha=0.95)
    return float(slope), float(low), float(high)


def spearman(x, y) -> tuple[float, float]:
    if len(np.unique(x)) < 2 or len(np.unique(y)) < 2:
        return np.nan, np.nan
    result = sps.spearmanr(x, y)
    return float(result.statistic), float(result.pvalue)


def trend_table(norm: pd.DataFrame, level: str, x: str = "sparsity") -> pd.DataFrame:
    """Per task, family, method, transfer and level: Spearman(drop, x) and the Theil-Sen slope with its 95% CI.

    Seeds are pooled as repeated points; `seed_slope_sd` is the spread of per-seed slopes.
    """
    rows = []
    for keys, g in norm.groupby(["task", "family", "method", "transfer", level], sort=True):
        rho, p = spearman(g[x], g["drop"])
        slope, low, high = _theil_sen(g[x].to_numpy(float), g["drop"].to_numpy(float))
        per_seed = [_theil_sen(s[x].to_numpy(float), s["drop"].to_numpy(float))[0] for _, s in g.groupby("seed")]
        rows.append(dict(zip(["task", "family", "method", "transfer", level], keys), spearman=rho, spearman_p=p,
                         theil_sen=slope, theil_sen_low=low, theil_sen_high=high,
                         seed_slope_sd=float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else np.nan,
                         mean_drop=float(g["drop"].mean()), points=len(g)))
    return pd.DataFrame(rows)


def _slope_difficulty_rho(g: pd.DataFrame, level: str, difficulty, x: str) -> float:
    levels = sorted(g[level].unique())
    slopes = [_theil_sen(g[g[level] == v][x].to_numpy(float), g[g[level] == v]["drop"].to_numpy(float))[0]
              for v in levels]
    return spearman([difficulty(v) for v in levels], slopes)[0]


def _bootstrap(seeds, n_boot: int, rng: np.random.Generator, statistic) -> np.ndarray:
    """`statistic` of n_boot resamples (with replacement) of the seeds. The statistics pool the
    resampled seeds' points and do not depend on their order, so each distinct multiset of
    seeds is computed once (a handful for a few seeds, instead of n_boot)."""
    done: dict[tuple, float] = {}
    out = []
    for _ in range(n_boot):
        picks = tuple(sorted(rng.choice(seeds, size=len(seeds), replace=True)))
        if picks not in done:
            done[picks] = statistic(picks)
        out.append(done[picks])
    return np.array(out, dtype=float)


def _seeds_differ(g: pd.DataFrame, level: str, x: str) -> bool:
    """Whether the seeds gave different points. Seeds that repeat one deterministic run carry no
    spread, and resampling them would give a zero-width interval that claims a certainty the data
    do not have."""
    order = ["task", level, "pattern", x]
    runs = {tuple(s.sort_values(order)["drop"].round(12)) for _, s in g.groupby("seed")}
    return len(runs) > 1


def difficulty_trend(norm: pd.DataFrame, level: str, difficulty, x: str = "sparsity",
                     n_boot: int = 1000, seed: int = 0, across_tasks: bool = False) -> pd.DataFrame:
    """Does the slope grow with difficulty? Spearman(difficulty, Theil-Sen slope) per task, family,
    method and transfer, with a 95% bootstrap CI over seeds (needs two seeds or more, and a
    verdict needs at least MIN_LEVELS difficulty levels, and seeds that differ). With
    `across_tasks` the levels are tasks (Setting 5) and the trend is taken over all of them at once."""
    rng = np.random.default_rng(seed)
    rows = []
    by = ["family", "method", "transfer"] if across_tasks else ["task", "family", "method", "transfer"]
    for keys, g in norm.groupby(by, sort=True):
        rho = _slope_difficulty_rho(g, level, difficulty, x)
        seeds = g["seed"].unique()
        low = high = np.nan
        if len(seeds) > 1 and not np.isnan(rho) and _seeds_differ(g, level, x):
            by_seed = {s: g[g["seed"] == s] for s in seeds}
            boot = _bootstrap(seeds, n_boot, rng, lambda picks: _slope_difficulty_rho(
                pd.concat([by_seed[s] for s in picks]), level, difficulty, x))
            boot = boot[~np.isnan(boot)]
            if len(boot):
                low, high = np.percentile(boot, [2.5, 97.5])
        rows.append(dict(zip(by, keys), rho=rho, rho_low=low, rho_high=high,
                         levels=g[level].nunique(), seeds=len(seeds),
                         verdict=verdict(low, high) if g[level].nunique() >= MIN_LEVELS else "inconclusive"))
    return pd.DataFrame(rows)


def order_violations(norm: pd.DataFrame, level: str, difficulty, x: str = "sparsity") -> pd.DataFrame:
    """Per task, family, method and transfer: how many adjacent levels, in the declared order, have a
    smaller Theil-Sen slope than the easier level before them ("monotonically" is part of C1)."""
    rows = []
    for keys, g in norm.groupby(["task", "family", "method", "transfer"], sort=True):
        levels = sorted(g[level].unique(), key=difficulty)
        slopes = [_theil_sen(g[g[level] == v][x].to_numpy(float), g[g[level] == v]["drop"].to_numpy(float))[0]
                  for v in levels]
        rows.append(dict(zip(["task", "family", "method", "transfer"], keys),
                         violations=int(sum(b < a for a, b in zip(slopes, slopes[1:]))), adjacent=len(levels) - 1))
    return pd.DataFrame(rows, columns=["task", "family", "method", "transfer", "violations", "adjacent"])


MIN_LEVELS = 3  # with two levels a rank correlation is always +1 or -1: no evidence either way


def verdict(low: float, high: float) -> str:
    """holds when the whole CI is above zero, fails when it is below, inconclusive otherwise (and
    always when the interval has no width: a discrete statistic's resamples that all agree are no
    evidence of certainty)."""
    if np.isnan(low) or np.isnan(high) or not high > low:  # no verdict from an interval without width
        return "inconclusive"
    return "holds" if low > 0 else ("fails" if high < 0 else "inconclusive")


def _slope_gap(g: pd.DataFrame, level: str, hard, easy, x: str) -> float:
    def slope(v):
        s = g[g[level] == v]
        return _theil_sen(s[x].to_numpy(float), s["drop"].to_numpy(float))[0]

    return slope(hard) - slope(easy)


def slope_gap(norm: pd.DataFrame, level: str, difficulty, x: str = "sparsity", n_boot: int = 1000,
              seed: int = 0) -> pd.DataFrame:
    """The Theil-Sen slope of the drop at the hardest level minus that at the easiest, per task,
    family, method and transfer, with a 95% bootstrap CI over seeds: the claim C1 for a setting
    of two levels (Setting 6: factoid against multiple choice), where a rank correlation across
    levels carries no evidence. holds: the hardest level's drop is steeper (a verdict needs seeds
    that differ)."""
    rng = np.random.default_rng(seed)
    rows = []
    for keys, g in norm.groupby(["task", "family", "method", "transfer"], sort=True):
        hard, easy = max(g[level].unique(), key=difficulty), min(g[level].unique(), key=difficulty)
        gap = _slope_gap(g, level, hard, easy, x)
        seeds = g["seed"].unique()
        low = high = np.nan
        if len(seeds) > 1 and not np.isnan(gap) and _seeds_differ(g, level, x):
            by_seed = {s: g[g["seed"] == s] for s in seeds}
            boot = _bootstrap(seeds, n_boot, rng, lambda picks: _slope_gap(
                pd.concat([by_seed[s] for s in picks]), level, hard, easy, x))
            boot = boot[~np.isnan(boot)]
            if len(boot):
                low, high = np.percentile(boot, [2.5, 97.5])
        rows.append(dict(zip(["task", "family", "method", "transfer"], keys), hardest=hard, easiest=easy, gap=gap,
                         gap_low=low, gap_high=high, seeds=len(seeds),
                         verdict=verdict(low, high) if hard != easy else "inconclusive"))
    return pd.DataFrame(rows)
