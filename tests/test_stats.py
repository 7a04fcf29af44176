import numpy as np
import pandas as pd
import pytest

from jdlib.analysis.stats import difficulty_trend, normalise, slope_gap, trend_table, verdict


def synthetic(slopes, seeds=(1, 2, 3), noise=0.0):
    """Dense accuracy 0.8; compressed accuracy falls linearly with sparsity at a slope per fraction."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        for fraction, slope in slopes.items():
            rows.append(dict(task="t", fraction=fraction, seed=seed, transfer="dense", method="none",
                             pattern="dense", sparsity=0.0, accuracy=0.8))
            for s in (0.2, 0.4, 0.6, 0.8):
                acc = 0.8 * (1 - slope * s) + noise * rng.normal()
                rows.append(dict(task="t", fraction=fraction, seed=seed, transfer="sparse", method="magnitude",
                                 pattern="unstructured", sparsity=s, accuracy=acc))
    return pd.DataFrame(rows)


def test_normalised_performance_and_drop():
    norm = normalise(synthetic({1.0: 0.5}), "fraction")
    row = norm[(norm["sparsity"] == 0.4)].iloc[0]
    assert row["normalised"] == pytest.approx(0.8)
    assert row["drop"] == pytest.approx(0.2)
    anchor = norm[norm["sparsity"] == 0.0]
    assert (anchor["normalised"] == 1.0).all() and len(anchor) == 3


def test_trend_recovers_the_slope_and_monotonic_rank():
    table = trend_table(normalise(synthetic({0.5: 0.9, 1.0: 0.3}), "fraction"), "fraction")
    by_fraction = table.set_index("fraction")
    assert by_fraction.loc[0.5, "theil_sen"] == pytest.approx(0.9)
    assert by_fraction.loc[1.0, "theil_sen"] == pytest.approx(0.3)
    assert (table["spearman"] > 0.99).all()


def test_slope_growing_with_difficulty_holds_and_shrinking_fails():
    harder = lambda fraction: 1 - fraction  # noqa: E731
    grows = difficulty_trend(normalise(synthetic({0.1: 0.9, 0.5: 0.5, 1.0: 0.1}, noise=0.01), "fraction"),
                             "fraction", harder, n_boot=200)
    shrinks = difficulty_trend(normalise(synthetic({0.1: 0.1, 0.5: 0.5, 1.0: 0.9}, noise=0.01), "fraction"),
                               "fraction", harder, n_boot=200)
    assert grows["rho"].item() == pytest.approx(1.0) and shrinks["rho"].item() == pytest.approx(-1.0)
    # every resample ranks three levels alike: an interval of no width carries no verdict (C1 judges by trend)
    assert grows["rho_low"].item() == grows["rho_high"].item() == pytest.approx(1.0)
    assert grows["verdict"].item() == shrinks["verdict"].item() == "inconclusive"


def test_two_levels_or_one_seed_is_never_a_verdict():
    harder = lambda fraction: 1 - fraction  # noqa: E731
    two_levels = difficulty_trend(normalise(synthetic({0.1: 0.9, 1.0: 0.1}), "fraction"), "fraction", harder)
    one_seed = difficulty_trend(normalise(synthetic({0.1: 0.9, 0.5: 0.5, 1.0: 0.1}, seeds=(1,)), "fraction"),
                                "fraction", harder)
    assert two_levels["verdict"].item() == "inconclusive"
    assert one_seed["verdict"].item() == "inconclusive"
    assert verdict(-0.1, 0.5) == "inconclusive" and verdict(0.1, 0.5) == "holds" and verdict(-0.5, -0.1) == "fails"
    assert verdict(0.5, 0.5) == "inconclusive" and verdict(-0.5, -0.5) == "inconclusive"  # no width, no verdict


def test_seeds_that_repeat_one_run_give_no_interval_and_no_verdict():
    harder = lambda fraction: 1 - fraction  # noqa: E731
    repeated = normalise(synthetic({0.1: 0.9, 0.5: 0.5, 1.0: 0.1}, noise=0.0), "fraction")
    trend = difficulty_trend(repeated, "fraction", harder, n_boot=200)
    gap = slope_gap(repeated, "fraction", harder, n_boot=200)
    assert trend["rho"].item() == pytest.approx(1.0) and np.isnan(trend["rho_low"].item())
    assert trend["verdict"].item() == "inconclusive" and gap["verdict"].item() == "inconclusive"
    varied = normalise(synthetic({0.1: 0.9, 0.5: 0.5, 1.0: 0.1}, noise=0.01), "fraction")
    assert slope_gap(varied, "fraction", harder, n_boot=200)["verdict"].item() == "holds"


def c1_rows(slopes, seeds=(1, 2, 3), sparsities=(0.3, 0.6), questions=400, with_outcomes=True, base=None):
    """Setting 2 rows: per level (options), seed and sparsity, outcomes whose accuracy falls by slope x sparsity
    from the dense accuracy (`base[options]`, 0.8 by default)."""
    rng = np.random.default_rng(0)
    rows = []
    for options, slope in slopes.items():
        for seed in seeds:
            for s in (0.0, *sparsities):
                p = (base or {}).get(options, 0.8) * (1 - slope * s) + rng.normal(0, 0.01)
                outcomes = (rng.random(questions) < p).astype(float)
                dense = s == 0.0
                rows.append(dict(task="t", options=options, seed=seed, transfer="dense" if dense else "none",
                                 method="none" if dense else "magnitude", pattern="dense" if dense else "unstructured",
                                 sparsity=s, accuracy=outcomes.mean(), eval_seeded=False,
                                 outcomes=outcomes if with_outcomes else None))
    return pd.DataFrame(rows)


def test_c1_judges_by_trend_with_question_and_seed_intervals():
    from jdlib.analysis import intervals
    from jdlib.analysis.verdicts import c1_comparisons

    rising = c1_comparisons("setting2", c1_rows({2: 0.1, 4: 0.5, 8: 0.9})).iloc[0]
    assert rising["statistic"] == "trend" and rising["verdict"] == "holds" and rising["interval"] == intervals.METHOD
    assert rising["rho"] == pytest.approx(1.0) and rising["violations"] == 0
    flat = c1_comparisons("setting2", c1_rows({2: 0.5, 4: 0.5, 8: 0.5})).iloc[0]
    assert flat["verdict"] != "holds"
    falling = c1_comparisons("setting2", c1_rows({2: 0.9, 4: 0.5, 8: 0.1})).iloc[0]
    assert falling["verdict"] == "fails" and falling["violations"] == 2
    stored_before = c1_comparisons("setting2", c1_rows({2: 0.1, 4: 0.5, 8: 0.9}, with_outcomes=False)).iloc[0]
    assert stored_before["interval"].startswith("seed_t")


def test_c1_reports_the_sparsity_each_level_loses_nothing_at():
    from jdlib.analysis.verdicts import c1_comparisons

    rows = c1_rows({2: 0.0, 4: 0.5, 8: 0.9}, sparsities=(0.1, 0.3, 0.6), questions=2000)
    row = c1_comparisons("setting2", rows).iloc[0]
    free = dict(part.split(": ") for part in row["free_sparsity"].split("; "))
    assert float(free["2"]) == 0.6 and float(free["8"]) == 0.0  # the easy level loses nothing, the hard at once
    assert row["free_violations"] == 0


def test_chance_correction_reaches_the_statistics_read_from_per_question_outcomes():
    """Corrected, the drop is (dense - acc) / (dense - 1/options): the same estimate whether the
    statistic reads per-question outcomes or the stored accuracies, and not the plain one."""
    from jdlib.analysis.verdicts import c1_comparisons

    slopes = {2: 0.2, 4: 0.4, 8: 0.6}
    plain = c1_comparisons("setting2", c1_rows(slopes)).iloc[0]
    corrected = c1_comparisons("setting2", c1_rows(slopes), correct_chance=True).iloc[0]
    from_accuracy = c1_comparisons("setting2", c1_rows(slopes, with_outcomes=False), correct_chance=True).iloc[0]
    assert corrected["interval"] != from_accuracy["interval"]  # one read outcomes, the other accuracies
    assert corrected["gap"] == pytest.approx(from_accuracy["gap"], rel=1e-5)
    assert abs(corrected["gap"] - plain["gap"]) > 0.1


def test_a_level_order_other_than_the_declared_one_can_be_judged():
    from jdlib.analysis.verdicts import c1_comparisons
    from jdlib.settings.spec import DifficultyOrder

    rows = c1_rows({2: 0.1, 4: 0.5, 8: 0.9})
    reversed_order = DifficultyOrder(lambda options: -options, "reversed", "8 < 4 < 2")
    assert c1_comparisons("setting2", rows).iloc[0]["verdict"] == "holds"
    assert c1_comparisons("setting2", rows, order=reversed_order).iloc[0]["verdict"] == "fails"
