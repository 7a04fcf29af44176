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
    assert grows["verdict"].item() == "holds" and grows["rho"].item() == pytest.approx(1.0)
    assert shrinks["verdict"].item() == "fails"


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
