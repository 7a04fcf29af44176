"""Confidence intervals for the claims' statistics that resample questions as well as seeds.

A comparison group (a task, pattern family, method and transfer mode) is an `OutcomeGrid`: per
seed, the per-question outcomes (1 correct, 0 wrong, or any per-question score) of every
condition (difficulty level x sparsity). A statistic maps accuracies acc[..., seed, condition]
to a value, vectorised over the leading axes so that thousands of resamples cost one call.

The methods are the candidates that `bench/interval_coverage.py` measures (coverage of a known
value, false verdicts under a null; bench/results/interval_coverage.json); `METHOD` is the one
it chose. Two facts drive the choice: seeds are few (3 or 5), so a percentile bootstrap over
seeds is anti-conservative; and in Settings 2, 3 and 6 the seeds only redraw distractors over one
fixed question sample, so the spread between seeds misses the error of sampling the questions,
which every seed shares. The `*_questions_t` methods add that error: the variance of the pooled
statistic is a seeds' part plus a question bootstrap's (one resample of question indices shared by
every condition of a seed, and by every seed when they share their questions: the pairing is
kept), and the t quantile takes Satterthwaite's degrees of freedom (the seeds' part has n - 1, the
bootstrap's is known almost exactly). Where each seed has its own question sample the seeds' part
already holds the question error and the bootstrap counts it again: conservative by design.

They differ in the seeds' part. `seed_questions_t` takes the spread of the per-seed statistics over
the number of seeds, the variance of their mean; but the C1 statistics pool the seeds' points into
one Theil-Sen slope, whose pairs across seeds couple them: it is not the mean of per-seed slopes.
`seed_bootstrap_questions_t` (METHOD) takes the variance of the pooled statistic itself over seed
resamples (every distinct multiset of seeds with its multinomial probability, so no Monte-Carlo
error at 3 or 5 seeds), times n / (n - 1): for a statistic linear in the seeds, such as a mean
difference, exactly the per-seed spread's value. In bench/results/interval_coverage.json (worst
case over the scenarios at 3 seeds, the seed-dominated ones with 900 simulated grids each) its false
verdicts are 0.065 for the gap and 0.045 for the trend, where the per-seed spread gives 0.068 and
0.066 and a delete-one-seed jackknife 0.079 and 0.061; coverage at least 0.94 at 3 and at 5 seeds; mean
width 3% (3 seeds) and 0.5% (5 seeds) above the per-seed spread's. Part of the remaining excess over
0.05 is not the variance: the Theil-Sen slope of a convex drop curve is pulled up by noise, more at
the noisier (low-accuracy) hard levels, so under a null of equal curves the pooled gap's mean sits
above zero by a fraction of its spread.

The C1 statistics follow the paper: per level, the Theil-Sen slope of the normalised drop,
(dense - compressed) / dense at the same level and seed, against sparsity, the seeds pooled as
repeated points; across levels, Spearman's correlation between difficulty and slope (`rho`, the
paper's statistic), the hardest level's slope minus the easiest's (`gap`), and the Theil-Sen
slope of the level slopes against the difficulty rank (`trend`). rho is a discrete statistic
whose population value is 1 for any strictly rising slopes and undefined for equal ones; no
method's interval for it keeps its promise (the bench's `rho_note`), while `trend`, continuous,
does: a verdict on "the slope grows with difficulty" should read `trend`, with rho beside it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations_with_replacement

import numpy as np
import pandas as pd
from scipy import stats as sps

Statistic = Callable[[np.ndarray, pd.DataFrame], np.ndarray]
"""acc[..., seed, condition] and the grid's conditions -> one value per leading index."""

METHODS = ("seed_bootstrap", "seed_t", "two_level_bootstrap", "jackknife_questions_t", "seed_questions_t",
           "seed_bootstrap_questions_t")
METHOD = "seed_bootstrap_questions_t"
CONFIDENCE = 0.95
MIN_LEVELS = 3  # with two levels a rank correlation is always +1 or -1: no evidence either way
_ROUNDING = 1e-9  # a narrower interval is a zero-width one that floating point blurred
_CHUNK = 2 ** 20  # resamples x seeds^2 x conditions per statistic call: bounds the pairwise slopes' memory


@dataclass(frozen=True)
class OutcomeGrid:
    """Per-question outcomes of one comparison group.

    `outcomes[seed, condition, question]`; `conditions` has one row per condition with the
    columns `level`, `difficulty` (larger is harder), `sparsity` and, where given, `chance` and
    the extra condition columns. Within a seed, question q is the same question in every
    condition. `shared_questions`: every seed answered the same questions in the same order
    (seeds redraw distractors only: eval_seeded off), rather than a new sample per seed.
    """

    seeds: tuple
    conditions: pd.DataFrame
    outcomes: np.ndarray
    shared_questions: bool

    def __post_init__(self):
        if self.outcomes.ndim != 3 or self.outcomes.shape[:2] != (len(self.seeds), len(self.conditions)):
            raise ValueError(f"outcomes: expected shape (seeds={len(self.seeds)}, conditions={len(self.conditions)}, "
                             f"questions), got {self.outcomes.shape}")
        if self.outcomes.shape[2] < 1:
            raise ValueError("outcomes: no questions")

    @classmethod
    def from_rows(cls, rows: pd.DataFrame | Iterable[Mapping], *, level: str,
                  difficulty: Callable[[object], float] | Mapping, shared_questions: bool,
                  x: str = "sparsity", outcomes: str = "outcomes", seed: str = "seed",
                  chance: str | None = None, by: Iterable[str] = ()) -> OutcomeGrid:
        """One row per (seed, level, x, *by) holding that cell's per-question outcome array.

        `difficulty` maps a level to its place in the declared order (larger is harder);
        `chance` names a column with the level's chance accuracy (for chance correction).
        """
        frame = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows
        by = list(by)
        for column in [level, x, outcomes, seed, *by, *([chance] if chance else [])]:
            if column not in frame.columns:
                raise ValueError(f"rows: no column {column!r} (columns: {list(frame.columns)})")
        if isinstance(difficulty, Mapping):
            unknown = sorted(set(frame[level]) - set(difficulty), key=str)
            if unknown:
                raise ValueError(f"difficulty: no place in the order for {level} {unknown}")
            rank = difficulty.__getitem__
        else:
            rank = difficulty
        keys = [level, *by, x]
        if frame.duplicated(keys + [seed]).any():
            raise ValueError(f"rows: more than one row per {keys + [seed]}")
        conditions = frame[keys + ([chance] if chance else [])].drop_duplicates(keys).copy()
        conditions.insert(1, "difficulty", conditions[level].map(rank).astype(float))
        if conditions.drop_duplicates(level)["difficulty"].duplicated().any():
            raise ValueError(f"difficulty: two levels of {level!r} share a difficulty")
        conditions = conditions.sort_values(["difficulty", *by, x]).reset_index(drop=True)
        conditions = conditions.rename(columns={level: "level", x: "sparsity", **({chance: "chance"} if chance else {})})
        seeds = tuple(sorted(frame[seed].unique()))
        position = {tuple(k): i for i, k in enumerate(conditions[["level", *by, "sparsity"]].itertuples(index=False))}
        cells: dict[tuple[int, int], np.ndarray] = {}
        for row in frame[keys + [seed, outcomes]].itertuples(index=False):
            cells[seeds.index(row[-2]), position[tuple(row[:-2])]] = np.asarray(row[-1], dtype=float).ravel()
        missing = [(seeds[s], tuple(conditions.iloc[c])) for s in range(len(seeds)) for c in range(len(conditions))
                   if (s, c) not in cells]
        if missing:
            raise ValueError(f"rows: {len(missing)} (seed, condition) cells missing, e.g. {missing[0]}")
        lengths = {len(v) for v in cells.values()}
        if len(lengths) != 1:
            raise ValueError(f"{outcomes}: every cell needs the same number of questions, got {sorted(lengths)}")
        array = np.empty((len(seeds), len(conditions), lengths.pop()))
        for (s, c), v in cells.items():
            array[s, c] = v
        return cls(seeds, conditions, array, shared_questions)

    def accuracy(self) -> np.ndarray:
        """acc[seed, condition]: the mean outcome over questions."""
        return self.outcomes.mean(axis=-1)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its confidence interval; `resamples` is how many values made it."""

    estimate: float
    low: float
    high: float
    method: str
    resamples: int
    confidence: float = CONFIDENCE
    se: float = np.nan  # the t methods' standard error and degrees of freedom (what pooling reads); NaN otherwise
    df: float = np.nan

    @property
    def decisive(self) -> bool:
        """Whether the interval can carry a verdict: finite and wider than rounding error."""
        return bool(np.isfinite(self.low) and np.isfinite(self.high)
                    and self.high - self.low > _ROUNDING * max(1.0, abs(self.estimate)))

    def covers(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)


def verdict(interval: Interval) -> str:
    """holds when the whole interval is above zero, fails when below; inconclusive otherwise or when not decisive."""
    if not interval.decisive:
        return "inconclusive"
    return "holds" if interval.low > 0 else ("fails" if interval.high < 0 else "inconclusive")


# The C1 statistics ------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _pairs(xs: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Positions (a, b) with xs[a] < xs[b]: Theil-Sen's pairs are every point at a with every point at b."""
    x = np.asarray(xs)
    return np.nonzero(x[:, None] < x[None, :])


def layout(conditions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """index[level, k] into the conditions (levels easiest first; within a level by sparsity, the
    dense condition first) and the sparsities xs[k], the same for every level. A sparsity may
    repeat within a level (two N:M patterns of one sparsity): Theil-Sen pools them as points."""
    difficulty, sparsity = conditions["difficulty"].to_numpy(float), conditions["sparsity"].to_numpy(float)
    counts = np.unique(difficulty, return_counts=True)[1]
    if len(set(counts)) != 1:
        raise ValueError("conditions: every level needs the same sparsities")
    index = np.lexsort((sparsity, difficulty)).reshape(len(counts), counts[0])
    xs = sparsity[index[0]]
    if not (sparsity[index] == xs).all():
        raise ValueError("conditions: every level needs the same sparsities")
    if xs[0] != 0 or (len(xs) > 1 and xs[1] == 0):
        raise ValueError("conditions: every level needs one condition at sparsity 0 (the dense model)")
    return index, xs


def drops(acc: np.ndarray, conditions: pd.DataFrame, chance_corrected: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """drop[..., seed, level, k], the normalised drop (levels easiest first, k by sparsity, the dense
    condition first: 0), and the sparsities xs[k]. Chance-corrected: (dense - compressed) / (dense - chance)."""
    index, xs = layout(conditions)
    cells = acc[..., index]  # [..., seed, level, sparsity]
    floor = conditions["chance"].to_numpy(float)[index[:, :1]] if chance_corrected else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((cells[..., :1] - cells) / (cells[..., :1] - floor)).astype(np.float32), xs


def theil_sen(drop: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """slopes[..., level]: Theil-Sen slope of drop[..., seed, level, k] against xs[k], seeds pooled.

    Equals `scipy.stats.theilslopes` on the pooled points (the median of the pairwise slopes of
    points at different sparsities), computed for every leading index at once.
    """
    drop = np.moveaxis(drop, -3, -1)  # [..., level, sparsity, seed]
    a, b = _pairs(tuple(xs))
    # every seed's point at a with every seed's point at b (float32: the selection is the cost)
    with np.errstate(invalid="ignore"):  # a NaN drop (dense at chance) gives NaN slopes, handled below
        slopes = (drop[..., b, None, :] - drop[..., a, :, None]) / (xs[b] - xs[a]).astype(np.float32)[:, None, None]
    slopes = slopes.reshape(*slopes.shape[:-3], -1)
    half = slopes.shape[-1] // 2
    middle = np.partition(slopes, [half - 1, half] if slopes.shape[-1] % 2 == 0 else half, axis=-1)
    median = middle[..., half] if slopes.shape[-1] % 2 else (middle[..., half - 1] + middle[..., half]) / 2
    # np.partition sorts NaN last rather than propagating it
    return np.where(np.isnan(drop).any(axis=(-2, -1)), np.nan, median.astype(float))


def level_slopes(acc: np.ndarray, conditions: pd.DataFrame, chance_corrected: bool = False) -> np.ndarray:
    """slopes[..., level] (easiest first): Theil-Sen slope of the normalised drop against sparsity, seeds pooled
    (`drops`, then `theil_sen`)."""
    return theil_sen(*drops(acc, conditions, chance_corrected))


def _spearman_with_order(values: np.ndarray) -> np.ndarray:
    """Spearman's correlation of values[..., k] with k (average ranks for ties), as scipy.stats.spearmanr."""
    ranks = sps.rankdata(values, axis=-1)
    order = np.arange(values.shape[-1], dtype=float)
    a = ranks - ranks.mean(axis=-1, keepdims=True)
    b = order - order.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum())


def _trend(slopes: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(slopes.shape[-1], k=1)
    return np.median((slopes[..., j] - slopes[..., i]) / (j - i), axis=-1)


def across_levels(slopes: np.ndarray) -> dict[str, np.ndarray]:
    """rho, gap and trend of the level slopes[..., level] (easiest first; see the module docstring)."""
    if slopes.shape[-1] < 2:
        raise ValueError("conditions: C1 needs two difficulty levels or more")
    nan = np.full(slopes.shape[:-1], np.nan)
    return {"rho": _spearman_with_order(slopes) if slopes.shape[-1] >= MIN_LEVELS else nan,
            "gap": slopes[..., -1] - slopes[..., 0],
            "trend": _trend(slopes)}


def c1_statistics(acc: np.ndarray, conditions: pd.DataFrame, chance_corrected: bool = False) -> dict[str, np.ndarray]:
    """rho, gap and trend from one computation of the level slopes (see the module docstring)."""
    return across_levels(level_slopes(acc, conditions, chance_corrected))


c1_statistics.bounds = {"rho": (-1.0, 1.0)}


def rho_statistic(acc: np.ndarray, conditions: pd.DataFrame) -> np.ndarray:
    """Spearman(difficulty, level slope) over all levels: the paper's C1 statistic (NaN below MIN_LEVELS)."""
    return c1_statistics(acc, conditions)["rho"]


rho_statistic.bounds = (-1.0, 1.0)


def gap_statistic(acc: np.ndarray, conditions: pd.DataFrame) -> np.ndarray:
    """The hardest level's slope minus the easiest's."""
    return c1_statistics(acc, conditions)["gap"]


def trend_statistic(acc: np.ndarray, conditions: pd.DataFrame) -> np.ndarray:
    """Theil-Sen slope of the level slopes against the difficulty rank (0 easiest): slope change per level."""
    return c1_statistics(acc, conditions)["trend"]


def mean_difference(a: Mapping, b: Mapping) -> Statistic:
    """Mean over seeds and matching conditions of acc(a) - acc(b): a paired difference (C2, C5).

    `a` and `b` select conditions by column values, e.g. mean_difference({"transfer": "dense"},
    {"transfer": "sparse"}); the two selections must pair up in order (same count)."""
    def select(conditions: pd.DataFrame, where: Mapping) -> np.ndarray:
        mask = np.ones(len(conditions), bool)
        for column, value in where.items():
            if column not in conditions.columns:
                raise ValueError(f"mean_difference: no condition column {column!r}")
            mask &= (conditions[column] == value).to_numpy()
        return np.flatnonzero(mask)

    def statistic(acc: np.ndarray, conditions: pd.DataFrame) -> np.ndarray:
        ia, ib = select(conditions, a), select(conditions, b)
        if len(ia) == 0 or len(ia) != len(ib):
            raise ValueError(f"mean_difference: {a} selects {len(ia)} conditions, {b} selects {len(ib)}")
        return (acc[..., ia] - acc[..., ib]).mean(axis=(-2, -1))

    return statistic


# Resampling ---------------------------------------------------------------------------------------

def _evaluate(statistic, acc: np.ndarray, conditions: pd.DataFrame) -> dict[str, np.ndarray]:
    """The statistic on acc[resample, seed, condition], in chunks of resamples."""
    # Theil-Sen's pairs grow with seeds^2 x conditions: bound them per call
    chunk = max(1, _CHUNK // (acc.shape[1] ** 2 * acc.shape[2]))
    parts = [statistic(acc[k:k + chunk], conditions) for k in range(0, len(acc), chunk)]
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _question_counts(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
    """How often each question is drawn in each of n_boot resamples of n questions with replacement."""
    draws = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(float)


def _question_resampled(grid: OutcomeGrid, rng: np.random.Generator, n_boot: int,
                        picks: np.ndarray | None = None) -> np.ndarray:
    """acc[resample, slot, condition] with the questions resampled, one index resample shared by
    every condition of a seed (the pairing across levels and sparsities), and by every seed when
    they share their questions. `picks[resample, slot]`: the seed in each slot (default: each seed once)."""
    y, (n_seeds, n_conditions, n) = grid.outcomes, grid.outcomes.shape
    picks = np.broadcast_to(np.arange(n_seeds), (n_boot, n_seeds)) if picks is None else picks
    out = np.empty((n_boot, picks.shape[1], n_conditions))
    if grid.shared_questions:
        counts = _question_counts(rng, n_boot, n)
        every = (counts @ y.reshape(-1, n).T / n).reshape(n_boot, n_seeds, n_conditions)
        return np.take_along_axis(every, picks[:, :, None], axis=1)
    for slot in range(picks.shape[1]):
        counts = _question_counts(rng, n_boot, n)
        for s in range(n_seeds):
            rows = np.flatnonzero(picks[:, slot] == s)
            out[rows, slot] = counts[rows] @ y[s].T / n
    return out


def _percentile(values: np.ndarray, confidence: float) -> tuple[float, float, int]:
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, 0
    tail = 50 * (1 - confidence)
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high), len(values)


def _t_interval(estimate: float, variance: float, df: float, confidence: float) -> tuple[float, float]:
    if not (np.isfinite(estimate) and np.isfinite(variance)):
        return np.nan, np.nan
    half = sps.t.ppf(0.5 + confidence / 2, df) * math.sqrt(variance) if np.isfinite(df) else \
        sps.norm.ppf(0.5 + confidence / 2) * math.sqrt(variance)
    return estimate - half, estimate + half


def satterthwaite(seeds_variance: float, questions_variance: float, n_seeds: int) -> tuple[float, float]:
    """The variance of the `*_questions_t` methods, the seeds' part plus the questions', and its
    Satterthwaite degrees of freedom (the seeds' part has n - 1, the questions' is known almost exactly)."""
    variance = seeds_variance + questions_variance
    return variance, (n_seeds - 1) * (variance / seeds_variance) ** 2 if seeds_variance > 0 else np.inf


def seeds_questions_t(estimate: float, seeds_variance: float, questions_variance: float, n_seeds: int,
                      confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The t interval of the `*_questions_t` methods (see `satterthwaite`)."""
    return _t_interval(estimate, *satterthwaite(seeds_variance, questions_variance, n_seeds), confidence)


def _seed_multisets(n_seeds: int, rng: np.random.Generator, n_boot: int) -> tuple[np.ndarray, np.ndarray]:
    """Seed resamples (with replacement) as distinct multisets picks[m, slot] and their probabilities:
    every one, weighted by its multinomial probability, where there are at most n_boot (5 seeds: 126),
    else n_boot random draws."""
    if math.comb(2 * n_seeds - 1, n_seeds) <= n_boot:
        picks = np.array(list(combinations_with_replacement(range(n_seeds), n_seeds)))
        counts = np.stack([np.bincount(p, minlength=n_seeds) for p in picks])
        ways = math.factorial(n_seeds) / np.prod([[math.factorial(c) for c in row] for row in counts], axis=1)
        return picks, ways / n_seeds ** n_seeds
    picks, frequency = np.unique(np.sort(rng.integers(0, n_seeds, size=(n_boot, n_seeds)), axis=1), axis=0,
                                 return_counts=True)
    return picks, frequency / n_boot


def _seed_variance(statistic, acc: np.ndarray, conditions: pd.DataFrame, how: str,
                   rng: np.random.Generator | None = None, n_boot: int = 0) -> dict[str, float]:
    """The seeds' part of the pooled statistic's variance: the spread of the per-seed statistics over the
    number of seeds (`spread`), a delete-one-seed jackknife of the pooled statistic (`jackknife`), or a
    seed bootstrap's variance of the pooled statistic times n / (n - 1) (`bootstrap`: for a statistic
    linear in the seeds, exactly the spread's value)."""
    n_seeds = len(acc)
    if how == "spread":
        return {k: float(np.var(v, ddof=1)) / n_seeds
                for k, v in _evaluate(statistic, acc[:, None], conditions).items()}
    if how == "jackknife":
        keep = np.array([np.delete(np.arange(n_seeds), s) for s in range(n_seeds)])
        return {k: (n_seeds - 1) / n_seeds * float(np.sum((v - v.mean()) ** 2))
                for k, v in _evaluate(statistic, acc[keep], conditions).items()}
    picks, weight = _seed_multisets(n_seeds, rng, n_boot)
    return {k: n_seeds / (n_seeds - 1) * float(np.sum(weight * (v - np.sum(weight * v)) ** 2))
            for k, v in _evaluate(statistic, acc[picks], conditions).items()}


def intervals(grid: OutcomeGrid, statistic: Callable[[np.ndarray, pd.DataFrame], Mapping[str, np.ndarray]],
              method: str = METHOD, confidence: float = CONFIDENCE, n_boot: int = 2000,
              seed: int = 0) -> dict[str, Interval]:
    """An interval for each value of a statistic that returns several (e.g. `c1_statistics`), from shared resamples.

    Methods: `seed_bootstrap` (percentile, seeds resampled: jdlib's first interval); `seed_t` (t
    over the per-seed statistics, centred on the pooled estimate); `two_level_bootstrap`
    (percentile, seeds then questions); `jackknife_questions_t`, `seed_questions_t` and
    `seed_bootstrap_questions_t` (t with the seeds' variance, by a jackknife of the pooled statistic,
    the per-seed spread or a seed bootstrap of the pooled statistic, plus the question bootstrap's;
    see the module docstring). n_boot resamples for the bootstraps (the seed bootstrap takes every
    distinct multiset of seeds where there are at most n_boot). Fewer than two seeds give no interval (NaN).
    """
    if method not in METHODS:
        raise ValueError(f"method: {method!r} is not one of {METHODS}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: {confidence} is not in (0, 1)")
    rng = np.random.default_rng(seed)
    conditions, acc = grid.conditions, grid.accuracy()
    n_seeds = len(grid.seeds)
    estimates = {k: float(v[0]) for k, v in _evaluate(statistic, acc[None], conditions).items()}
    ends: dict[str, tuple] = {}  # low, high, resamples (and variance, degrees of freedom for the t methods)
    if n_seeds < 2:
        ends = {k: (np.nan, np.nan, 0) for k in estimates}
    elif method in ("seed_bootstrap", "two_level_bootstrap"):
        picks = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
        if method == "seed_bootstrap":
            # the statistic pools the seeds and ignores their order: each multiset once
            distinct, inverse = np.unique(np.sort(picks, axis=1), axis=0, return_inverse=True)
            values = {k: v[inverse.ravel()] for k, v in _evaluate(statistic, acc[distinct], conditions).items()}
        else:
            values = _evaluate(statistic, _question_resampled(grid, rng, n_boot, picks), conditions)
        ends = {k: _percentile(v, confidence) for k, v in values.items()}
    elif method == "seed_t":
        for k, v_seeds in _seed_variance(statistic, acc, conditions, "spread").items():
            ends[k] = (*_t_interval(estimates[k], v_seeds, n_seeds - 1, confidence), n_seeds, v_seeds, n_seeds - 1)
    else:
        how = {"jackknife_questions_t": "jackknife", "seed_questions_t": "spread"}.get(method, "bootstrap")
        seeds = _seed_variance(statistic, acc, conditions, how, rng, n_boot)
        questions = _evaluate(statistic, _question_resampled(grid, rng, n_boot), conditions)
        for k, v_seeds in seeds.items():
            q = questions[k][np.isfinite(questions[k])]
            variance, df = satterthwaite(v_seeds, np.var(q, ddof=1) if len(q) > 1 else np.nan, n_seeds)
            ends[k] = (*_t_interval(estimates[k], variance, df, confidence), n_seeds + len(q), variance, df)
    # a statistic's optional `bounds` (name -> (low, high)) clip its interval; a functools.partial keeps its function's
    bounds = getattr(statistic, "bounds", None) or getattr(getattr(statistic, "func", None), "bounds", {})
    out = {}
    for k, (low, high, count, *t) in ends.items():
        lo, hi = bounds.get(k, (-np.inf, np.inf))
        if np.isfinite(low):
            low, high = max(low, lo), min(high, hi)
        variance, df = t or (np.nan, np.nan)
        out[k] = Interval(estimates[k], float(low), float(high), method, int(count), confidence,
                          float(math.sqrt(variance)) if np.isfinite(variance) else np.nan, float(df))
    return out


def interval(grid: OutcomeGrid, statistic: Statistic, method: str = METHOD, confidence: float = CONFIDENCE,
             n_boot: int = 2000, seed: int = 0) -> Interval:
    """The estimate and confidence interval of one statistic (see `intervals` for the methods)."""
    def single(acc, conditions):
        return {"value": statistic(acc, conditions)}

    single.bounds = {"value": getattr(statistic, "bounds", (-np.inf, np.inf))}
    return intervals(grid, single, method, confidence, n_boot, seed)["value"]


def outcome_grid(rows: pd.DataFrame, spec, **grid) -> tuple[OutcomeGrid, str]:
    """A comparison's rows as C1 reads them, and the interval method: per-question outcomes where every
    cell has the same number of them, else one "question" per cell holding its accuracy (only the
    seeds' spread is left: seed_t). `grid` goes to `OutcomeGrid.from_rows` (by, chance)."""
    with_outcomes = "outcomes" in rows and rows["outcomes"].map(lambda o: o is not None and len(o) > 0).all()
    shared = not bool(rows.get("eval_seeded", pd.Series([False])).fillna(False).any())
    if with_outcomes and rows["outcomes"].map(len).nunique() == 1:
        grid_rows, method = rows, METHOD
    else:
        grid_rows, method = rows.assign(outcomes=rows["accuracy"].map(lambda a: [a])), "seed_t"
    return OutcomeGrid.from_rows(grid_rows, level=spec.level, difficulty=spec.order,
                                           shared_questions=shared, **grid), method
