"""The claims' pooled rule and the learnability gate as the verdicts apply them."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from test_stats import c1_rows

from jdlib.analysis import pooling
from jdlib.analysis.floor import level_gates
from jdlib.analysis.verdicts import NAME, c1_comparisons


def comparisons(estimates, se=0.02, df=40.0):
    """A C1 table: one comparison per study."""
    return pd.DataFrame([{"setting": "setting2", "task": f"t{i}", "family": "unstructured", "method": "magnitude",
                          "study": f"t{i}", "estimate": e, "se": se, "df": df, "testable": True,
                          "verdict": "holds" if e - 2 * se > 0 else ("fails" if e + 2 * se < 0 else "inconclusive")}
                         for i, e in enumerate(estimates)])


def test_one_failing_comparison_among_many_holding_ones_does_not_fail_the_claim():
    table = comparisons([0.10, 0.09, 0.11, 0.10, 0.12, 0.08, 0.10, 0.09, 0.11, -0.06])
    judged = pooling.judge(table, ["study"], NAME)
    assert judged.counts == {"holds": 9, "fails": 1, "inconclusive": 0, "not_testable": 0}
    assert judged.verdict == "holds" and judged.pooled.low > 0
    assert len(judged.failing) == 1 and "t9" in judged.failing[0]  # named, after Holm, yet not deciding
    # the claim fails only when the pooled interval says so
    assert pooling.judge(comparisons([-0.10, -0.09, -0.11, -0.10, -0.12, 0.05]), ["study"], NAME).verdict == "fails"


def test_equal_studies_pool_to_their_estimate_with_the_hartung_knapp_interval():
    pooled = pooling.pool([0.3] * 4, [0.1] * 4, [20.0] * 4)
    assert pooled.estimate == pytest.approx(0.3) and pooled.tau2 == 0.0
    half = sps.t.ppf(0.975, 3) * 0.1 / 2  # scale floored at 1: sqrt(1 / sum of the weights)
    assert (pooled.low, pooled.high) == pytest.approx((0.3 - half, 0.3 + half))


def test_comparisons_sharing_a_dense_model_count_as_one_study():
    one_study = pooling.pool([0.1, 0.3], [0.05, 0.07], [10.0, 12.0], studies=["a", "a"])
    assert one_study.studies == 1 and one_study.comparisons == 2
    assert one_study.estimate == pytest.approx(0.2)
    half = sps.t.ppf(0.975, 10.0) * 0.06  # the mean standard error, the fewest degrees of freedom
    assert (one_study.low, one_study.high) == pytest.approx((0.2 - half, 0.2 + half))


def test_holm_adjusts_step_down():
    assert pooling.holm([0.01, 0.04, 0.03, 0.005, np.nan])[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert np.isnan(pooling.holm([0.01, np.nan])[1])


def test_a_level_at_the_floor_is_not_testable_and_does_not_fail_the_comparison():
    # 8 options: the dense model at chance (1/8), losing nothing; the two easier levels steepen
    rows = c1_rows({2: 0.5, 4: 0.9, 8: 0.0}, base={8: 0.125}, questions=2000, sparsities=(0.3, 0.6, 0.9))
    gates = level_gates("setting2", rows)
    assert gates.set_index("options")["testable"].to_dict() == {2: True, 4: True, 8: False}
    row = c1_comparisons("setting2", rows).iloc[0]
    assert row["verdict"] == "not testable" and not row["testable"]
    reason = row["testable_reason"]
    assert "options 8 (dense 0.1" in reason and "floor 0.125" in reason and "trend needs 3" in reason
    # without the gate the level at the floor would decide the comparison
    assert c1_comparisons("setting2", rows, gates=gates.assign(testable=True)).iloc[0]["verdict"] == "fails"


def test_a_level_at_the_floor_is_left_out_where_enough_levels_remain():
    rows = c1_rows({2: 0.1, 4: 0.5, 8: 0.9, 16: 0.0}, base={16: 1 / 16})
    row = c1_comparisons("setting2", rows).iloc[0]
    assert row["testable"] and row["verdict"] == "holds" and row["levels"] == 3
    assert "3 of 4 levels pass the gate; left out: options 16" in row["testable_reason"]


def test_the_claims_json_carries_the_pooled_estimate_the_counts_and_each_comparisons_gate():
    from jdlib.analysis.verdicts import c1_monotonic, claim_json

    rows = {"setting2": c1_rows({2: 0.1, 4: 0.5, 8: 0.9})}
    entry = claim_json(c1_monotonic(rows))
    assert entry["verdict"] == "holds" and entry["pooled"]["low"] > 0
    assert {"estimate", "low", "high", "method"} <= set(entry["pooled"])
    assert entry["counts"] == {"holds": 1, "fails": 0, "inconclusive": 0, "not_testable": 0}
    assert entry["comparisons"][0]["testable"] is True and "3 of 3 levels" in entry["comparisons"][0]["reason"]
    at_floor = claim_json(c1_monotonic({"setting2": c1_rows({2: 0.1, 4: 0.5, 8: 0.0}, base={8: 0.125})}))
    assert at_floor["verdict"] == "not testable" and at_floor["counts"]["not_testable"] == 1
    assert at_floor["comparisons"][0]["testable"] is False
