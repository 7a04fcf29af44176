from functools import partial
from itertools import product

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from jdlib.analysis.intervals import (METHOD, METHODS, Interval, OutcomeGrid, c1_statistics, gap_statistic,
                                      interval, intervals, level_slopes, mean_difference, rho_statistic,
                                      trend_statistic, verdict)

SPARSITIES = (0.0, 0.3, 0.6, 0.9)


def rows_of(betas, seeds=3, questions=400, shared=True, dense=0.8, seed=0):
    """Long rows: per seed, level and sparsity, Bernoulli outcomes with accuracy dense * (1 - beta * sparsity).

    The drop is exactly beta * sparsity, so every level's true Theil-Sen slope is its beta. With
    `shared`, a question's uniform draw is reused by every seed and condition (paired outcomes).
    """
    rng = np.random.default_rng(seed)
    common = rng.random(questions)
    rows = []
    for s in range(seeds):
        u = common if shared else rng.random(questions)
        for level, beta in enumerate(betas):
            for x in SPARSITIES:
                rows.append(dict(seed=40 + s, options=level, sparsity=x,
                                 outcomes=(u < dense * (1 - beta * x)).astype(np.int8)))
    return pd.DataFrame(rows)


def grid_of(betas, **kw) -> OutcomeGrid:
    return OutcomeGrid.from_rows(rows_of(betas, **kw), level="options", difficulty=float,
                                 shared_questions=kw.get("shared", True))


def test_slopes_and_rho_equal_scipys_on_the_pooled_points():
    rng = np.random.default_rng(1)
    grid = grid_of([0.2, 0.5, 0.4, 0.8], seeds=3, shared=False)
    acc = grid.accuracy() + rng.normal(0, 0.01, grid.accuracy().shape)  # break ties among pairwise slopes
    slopes = level_slopes(acc, grid.conditions)
    cells = acc.reshape(3, 4, len(SPARSITIES))
    for level in range(4):
        drop = (cells[:, level, :1] - cells[:, level]) / cells[:, level, :1]
        expected = sps.theilslopes(drop.ravel(), np.tile(SPARSITIES, 3)).slope
        assert slopes[level] == pytest.approx(expected, rel=1e-5)
    assert rho_statistic(acc, grid.conditions) == pytest.approx(sps.spearmanr(np.arange(4), slopes).statistic)
    assert gap_statistic(acc, grid.conditions) == pytest.approx(slopes[-1] - slopes[0])
    expected_trend = np.median([(slopes[j] - slopes[i]) / (j - i) for i in range(4) for j in range(i + 1, 4)])
    assert trend_statistic(acc, grid.conditions) == pytest.approx(expected_trend, rel=1e-5)


def test_a_sparsity_repeated_within_a_level_is_pooled_as_theil_sen_points():
    """Two N:M patterns of one sparsity (6:8 and 3:4) are two points at x = 0.25."""
    conditions = pd.DataFrame({"level": [0, 0, 0, 0], "difficulty": [0.0] * 4, "sparsity": [0.0, 0.25, 0.25, 0.5],
                               "pattern": ["dense", "6:8", "3:4", "4:8"]})
    acc = np.array([[0.8, 0.7, 0.6, 0.5], [0.8, 0.72, 0.66, 0.4]])
    drop = (acc[:, :1] - acc) / acc[:, :1]
    expected = sps.theilslopes(drop.ravel(), np.tile(conditions["sparsity"], 2)).slope
    assert level_slopes(acc, conditions)[0] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="one condition at sparsity 0"):
        level_slopes(acc, conditions.assign(sparsity=[0.0, 0.0, 0.25, 0.5]))
    with pytest.raises(ValueError, match="the same sparsities"):
        level_slopes(acc, conditions.assign(difficulty=[0.0, 0.0, 0.0, 1.0]))


def test_statistics_are_vectorised_over_leading_axes():
    grid = grid_of([0.2, 0.5, 0.8], seeds=2)
    acc = grid.accuracy()
    batch = np.stack([acc, acc[::-1], acc * 0.9])
    values = c1_statistics(batch, grid.conditions)
    for k, statistic in enumerate([acc, acc[::-1], acc * 0.9]):
        single = c1_statistics(statistic, grid.conditions)
        assert all(values[name][k] == pytest.approx(single[name]) for name in single)


def test_grid_orders_levels_by_declared_difficulty_and_reads_the_outcomes():
    rows = rows_of([0.1, 0.9], seeds=2)
    # declared order: level 1 is the easier one
    grid = OutcomeGrid.from_rows(rows, level="options", difficulty={0: 2.0, 1: 1.0}, shared_questions=True)
    assert list(grid.conditions["level"].unique()) == [1, 0]
    assert grid.outcomes.shape == (2, 2 * len(SPARSITIES), 400)
    cell = rows[(rows.seed == 41) & (rows.options == 0) & (rows.sparsity == 0.6)]["outcomes"].iloc[0]
    at = grid.conditions.index[(grid.conditions["level"] == 0) & (grid.conditions["sparsity"] == 0.6)][0]
    np.testing.assert_array_equal(grid.outcomes[1, at], cell)
    # the hardest declared level (0) drops at 0.1, the easiest (1) at 0.9
    assert gap_statistic(grid.accuracy(), grid.conditions) == pytest.approx(0.1 - 0.9, abs=0.05)


def test_grid_refuses_missing_cells_and_unequal_question_counts():
    rows = rows_of([0.1, 0.9], seeds=2)
    with pytest.raises(ValueError, match="missing"):
        OutcomeGrid.from_rows(rows.iloc[1:], level="options", difficulty=float, shared_questions=True)
    ragged = rows.copy()
    ragged.at[0, "outcomes"] = ragged.at[0, "outcomes"][:-1]
    with pytest.raises(ValueError, match="same number of questions"):
        OutcomeGrid.from_rows(ragged, level="options", difficulty=float, shared_questions=True)
    with pytest.raises(ValueError, match="no column 'context'"):
        OutcomeGrid.from_rows(rows, level="context", difficulty=float, shared_questions=True)
    with pytest.raises(ValueError, match=r"no place in the order for options \[1\]"):
        OutcomeGrid.from_rows(rows, level="options", difficulty={0: 1.0}, shared_questions=True)


def test_verdict_needs_a_decisive_interval():
    assert verdict(Interval(0.5, 0.1, 0.9, "m", 10)) == "holds"
    assert verdict(Interval(-0.5, -0.9, -0.1, "m", 10)) == "fails"
    assert verdict(Interval(0.5, -0.1, 0.9, "m", 10)) == "inconclusive"
    assert verdict(Interval(0.5, 0.5, 0.5, "m", 10)) == "inconclusive"  # zero width
    assert verdict(Interval(0.5, np.nan, np.nan, "m", 0)) == "inconclusive"
    assert not Interval(0.5, 0.5, 0.5, "m", 10).decisive


@pytest.mark.parametrize("method", METHODS)
def test_no_question_noise_and_identical_seeds_give_no_decisive_interval(method):
    grid = grid_of([0.1, 0.5, 0.9], seeds=3)
    # every question scores the cell's accuracy, and every seed repeats the first: nothing varies
    flat = np.broadcast_to(grid.accuracy()[:1, :, None], grid.outcomes.shape).copy()
    still = OutcomeGrid(grid.seeds, grid.conditions, flat, True)
    for name, iv in intervals(still, c1_statistics, method=method, n_boot=200).items():
        assert not iv.decisive and verdict(iv) == "inconclusive", (name, iv)


def test_strong_effects_with_many_questions_hold_and_reversed_ones_fail():
    rising = grid_of([0.1, 0.4, 0.7, 0.95], seeds=3, questions=3000, shared=False)
    falling = grid_of([0.95, 0.7, 0.4, 0.1], seeds=3, questions=3000, shared=False)
    for statistic in (gap_statistic, trend_statistic):
        assert verdict(interval(rising, statistic, n_boot=300)) == "holds"
        assert verdict(interval(falling, statistic, n_boot=300)) == "fails"
    assert rho_statistic(rising.accuracy(), rising.conditions) == 1.0


def test_one_seed_gives_no_interval():
    iv = interval(grid_of([0.1, 0.9], seeds=1), gap_statistic)
    assert np.isfinite(iv.estimate) and np.isnan(iv.low) and verdict(iv) == "inconclusive"


def test_question_resamples_are_shared_by_the_conditions_of_a_seed():
    """Two conditions with the same outcome on every question: a paired difference never varies;
    resampled apart, it would."""
    rng = np.random.default_rng(3)
    outcomes = (rng.random((3, 1, 500)) < 0.6).astype(float).repeat(2, axis=1)
    conditions = pd.DataFrame({"level": [0, 0], "difficulty": [0.0, 0.0], "sparsity": [0.0, 0.5],
                               "transfer": ["dense", "sparse"]})
    grid = OutcomeGrid((1, 2, 3), conditions, outcomes, shared_questions=False)
    paired = mean_difference({"transfer": "dense"}, {"transfer": "sparse"})
    for method in ("two_level_bootstrap", METHOD):
        iv = interval(grid, paired, method=method, n_boot=300)
        assert iv.low == iv.high == 0.0
    # the same data with the second condition's questions shuffled: no longer paired, the interval opens
    shuffled = outcomes.copy()
    shuffled[:, 1] = rng.permuted(shuffled[:, 1], axis=-1)
    iv = interval(OutcomeGrid((1, 2, 3), conditions, shuffled, False), paired, method="two_level_bootstrap", n_boot=300)
    assert iv.high - iv.low > 0.02


def test_seeds_that_share_their_questions_share_each_resample():
    """Identical seeds over one question sample: each resample keeps them identical (spread 0);
    with a new sample per seed, the resamples differ between seeds."""
    rng = np.random.default_rng(4)
    one = (rng.random((1, 2, 300)) < 0.5).astype(float)
    conditions = pd.DataFrame({"level": [0, 1], "difficulty": [0.0, 1.0], "sparsity": [0.0, 0.0]})

    def spread(acc, _):
        return acc.std(axis=-2).mean(axis=-1)

    shared = OutcomeGrid((1, 2, 3), conditions, one.repeat(3, axis=0), shared_questions=True)
    apart = OutcomeGrid((1, 2, 3), conditions, one.repeat(3, axis=0), shared_questions=False)
    assert interval(shared, spread, method="two_level_bootstrap", n_boot=200).high < 1e-12
    assert interval(apart, spread, method="two_level_bootstrap", n_boot=200).high > 0.01


def test_chance_corrected_drop_uses_each_levels_chance():
    conditions = pd.DataFrame({"level": [2, 2, 4, 4], "difficulty": [0.0, 0.0, 1.0, 1.0],
                               "sparsity": [0.0, 0.5, 0.0, 0.5], "chance": [0.5, 0.5, 0.25, 0.25]})
    acc = np.array([[0.9, 0.7, 0.65, 0.45]])  # one seed
    plain = level_slopes(acc, conditions)
    corrected = level_slopes(acc, conditions, chance_corrected=True)
    np.testing.assert_allclose(plain, [(0.2 / 0.9) / 0.5, (0.2 / 0.65) / 0.5], rtol=1e-6)
    np.testing.assert_allclose(corrected, [(0.2 / 0.4) / 0.5, (0.2 / 0.4) / 0.5], rtol=1e-6)


def test_rho_intervals_stay_within_minus_one_and_one_also_through_a_partial():
    grid = grid_of([0.4, 0.41, 0.42, 0.43], seeds=3, questions=300, shared=False)
    chance = OutcomeGrid(grid.seeds, grid.conditions.assign(chance=0.1), grid.outcomes, False)
    unbounded = intervals(chance, lambda acc, c: c1_statistics(acc, c), n_boot=200)["rho"]
    assert unbounded.high > 1.0  # a t interval knows no bounds of its own
    for statistic in (c1_statistics, partial(c1_statistics, chance_corrected=True)):
        rho = intervals(chance, statistic, n_boot=200)["rho"]
        assert -1.0 <= rho.low <= rho.estimate <= rho.high <= 1.0 and rho.decisive


def test_mean_difference_refuses_selections_that_do_not_pair():
    conditions = pd.DataFrame({"level": [0, 0, 0], "difficulty": [0.0] * 3, "sparsity": [0.0, 0.5, 0.6],
                               "transfer": ["dense", "sparse", "sparse"]})
    with pytest.raises(ValueError, match="selects 1 conditions"):
        mean_difference({"transfer": "dense"}, {"transfer": "sparse"})(np.zeros((2, 3)), conditions)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        interval(grid_of([0.1, 0.9], seeds=2), gap_statistic, method="jackknife")


def test_default_method_covers_a_known_gap_and_seed_bootstrap_does_not_under_shared_questions():
    """A small coverage check (40 grids, wide tolerance): true slopes are the betas, so the true gap is 0.3.
    Seeds share the questions and differ by nothing else, so resampling seeds alone sees no error."""
    truth = 0.3
    hits = {METHOD: 0, "seed_bootstrap": 0}
    for r in range(40):
        grid = grid_of([0.4, 0.5, 0.7], seeds=3, questions=300, shared=True, seed=100 + r)
        for method in hits:
            hits[method] += interval(grid, gap_statistic, method=method, n_boot=200, seed=r).covers(truth)
    assert hits[METHOD] / 40 >= 0.8
    assert hits["seed_bootstrap"] / 40 <= 0.5


def test_seed_bootstrap_variance_equals_the_per_seed_spread_for_a_statistic_linear_in_the_seeds():
    """A mean over seeds: the seed bootstrap's variance times n / (n - 1) is the per-seed spread over n,
    so the two methods give the same interval from the same question resamples."""
    grid = grid_of([0.4, 0.5, 0.7], seeds=3, questions=300, shared=False)
    paired = mean_difference({"sparsity": 0.0}, {"sparsity": 0.6})
    spread = interval(grid, paired, method="seed_questions_t", n_boot=300, seed=5)
    boot = interval(grid, paired, method="seed_bootstrap_questions_t", n_boot=300, seed=5)
    assert (boot.low, boot.high) == pytest.approx((spread.low, spread.high), rel=1e-9)
    assert boot.high - boot.low > 0.01


def test_seed_bootstrap_variance_is_the_pooled_statistics_over_every_seed_resample():
    """No question noise (every question scores its cell's accuracy): the interval is the pooled gap
    plus or minus t(2) times the standard deviation of the gap over all 27 ordered resamples of 3 seeds,
    times sqrt(3 / 2). The per-seed spread gives another value: the pooled slope is not a mean over seeds."""
    rng = np.random.default_rng(6)
    grid = grid_of([0.2, 0.5, 0.8], seeds=3, questions=50)
    acc = grid.accuracy() + rng.normal(0, 0.02, grid.accuracy().shape)
    flat = OutcomeGrid(grid.seeds, grid.conditions, np.repeat(acc[:, :, None], 50, axis=2), True)
    values = np.array([gap_statistic(acc[list(p)], grid.conditions) for p in product(range(3), repeat=3)])
    half = sps.t.ppf(0.975, 2) * np.sqrt(values.var() * 3 / 2)
    iv = interval(flat, gap_statistic, method="seed_bootstrap_questions_t", n_boot=100)
    assert (iv.low, iv.high) == pytest.approx((iv.estimate - half, iv.estimate + half), rel=1e-5)
    spread = interval(flat, gap_statistic, method="seed_questions_t", n_boot=100)
    assert abs((spread.high - spread.low) - 2 * half) > 1e-3


def test_seed_bootstrap_draws_resamples_where_the_multisets_outnumber_n_boot():
    grid = grid_of([0.2, 0.5, 0.8], seeds=5, questions=200, shared=False)  # 126 multisets of 5 seeds
    drawn = [interval(grid, gap_statistic, method="seed_bootstrap_questions_t", n_boot=60, seed=s) for s in (1, 1, 2)]
    every = interval(grid, gap_statistic, method="seed_bootstrap_questions_t", n_boot=200, seed=1)
    assert drawn[0] == drawn[1] and drawn[0].high != drawn[2].high
    assert all(iv.decisive for iv in drawn + [every])
    assert drawn[0].high - drawn[0].low == pytest.approx(every.high - every.low, rel=0.5)
