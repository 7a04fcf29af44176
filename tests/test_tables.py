"""The claims chapter's tables (jdlib.analysis.tables): narrow, rounded, no "nan", an interval in one column."""
import numpy as np
import pandas as pd

from jdlib.analysis import claims, tables

NAN = float("nan")


def test_gates_join_the_interval_and_show_a_missing_rate_as_a_dash():
    gates = pd.DataFrame({"setting": ["s2", "s2"], "task": ["a", "b"], "level": ["2", "3"], "dense": [0.78, 0.5],
                          "low": [0.74, NAN], "high": [0.82, NAN], "floor": [0.5, 0.33], "chance": [0.5, 0.33],
                          "majority": [0.6, NAN], "testable": [True, False]})
    styled = tables.gates(gates)
    html = styled.to_html()
    assert "nan" not in html.lower() and "0.780 [0.740, 0.820]" in html and "(no interval)" in html
    assert list(styled.data.columns) == ["task", "level", "dense [95% CI]", "floor", "chance / majority", "testable"]
    assert list(styled.data["chance / majority"]) == ["0.500 / 0.600", "0.330 / –"]
    assert "–" in html and "setting: s2" in styled.caption
    assert tables.gates(pd.DataFrame()).data.empty


def test_comparisons_keep_who_the_estimate_with_its_interval_and_the_verdict():
    table = pd.DataFrame({"setting": ["s2", "s3"], "task": ["bigbench/x/99_distractors", "bigbench/y"],
                          "estimate": [0.12, NAN], "low": [0.09, NAN], "high": [0.15, NAN], "rho": [NAN, NAN],
                          "verdict": ["holds", "not testable"], "testable_reason": ["8 of 8 pass", "below floor"]})
    styled = tables.comparisons(table, "C1")
    assert list(styled.data.columns) == ["setting", "task", "estimate [95% CI]", "verdict", "testable"]
    assert list(styled.data["task"]) == ["99_distractors", "y"]
    assert "nan" not in styled.to_html().lower() and "none" in list(styled.data["estimate [95% CI]"])
    assert tables.comparisons(None, "C5").data.empty  # a claim not run has no units


def test_pooled_puts_the_counts_in_one_column_and_drops_empty_ones():
    by = pd.DataFrame({"setting": ["s2", "s4"], "verdict": ["holds", "inconclusive"], "estimate": [0.12, 0.03],
                       "low": [0.09, -0.01], "high": [0.15, 0.06], "studies": [1, 1], "tau2": [NAN, NAN],
                       "i2": [NAN, NAN], "holds": [2, 0], "fails": [0, 0], "inconclusive": [0, 2],
                       "not_testable": [0, 0], "failing (Holm)": ["", ""]})
    styled = tables.pooled(by, "C1 per setting")
    assert list(styled.data.columns) == ["setting", "verdict", "estimate [95% CI]",
                                         "holds / fails / inconclusive / not testable"]
    assert list(styled.data.iloc[:, -1]) == ["2 / 0 / 0 / 0", "0 / 0 / 2 / 0"] and "nan" not in styled.to_html()


def test_claim_summary_leaves_the_sentences_to_the_sections():
    summary = pd.DataFrame({"claim": ["C1", "C2"], "verdict": ["holds", "not run"], "estimate [95% interval]": ["+0.1", "none"],
                            "comparisons": ["2 hold", "none"], "floor-corrected": ["holds", "not run"],
                            "not testable": ["", ""], "evidence": ["long", "long"]})
    assert list(tables.claim_summary(summary).data.columns) == [
        "claim", "verdict", "estimate [95% interval]", "comparisons", "floor-corrected"]


def test_c5_sentence_says_the_barrier_falls_when_hard_minus_easy_is_below_zero():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame([dict(task="t", fraction=f, seed=seed, transfer="sparse", method="magnitude",
                               pattern="unstructured", sparsity=s, barrier=b * s + 0.01 * rng.standard_normal(),
                               dense_loss=1.0)
                          for f, b in ((1.0, 0.5), (0.25, 0.0)) for seed in (1, 2, 3) for s in (0.4, 0.8)])
    result = claims.c5_basin(frame, "fraction", lambda f: -f)
    assert result["rising_verdict"] == "fails"
    assert "the barrier falls, against C5" in result["sentence"] and "rises (fails)" not in result["sentence"]
