"""Claim S1 (specific to small weights) on rows of known answer, and the controls kept out of C1-C4."""
import numpy as np
import pandas as pd
import pytest

from jdlib.analysis import pooling, specificity, tables
from jdlib.analysis.specificity import at_matched_damage, s1_specific, s1_units
from jdlib.analysis.verdicts import c1_comparisons, claim_json, compression_c1
from jdlib.compress import CLAIMED_PRUNE_METHODS, CONTROLS, METHODS, PRUNE_METHODS

LEVELS = (2, 4, 8)


def rows(slopes: dict[str, dict[int, float]], sparsities=(0.3, 0.6, 0.9), seeds=(1, 2, 3), questions=2000):
    """Setting 2 rows: the dense model at 0.8 per level and seed, and per method (magnitude, random, rtn) a curve
    whose accuracy falls by slope x strength (rtn: strength 0.3, 0.6, 0.9 at ratios 4, 8, 16)."""
    rng = np.random.default_rng(0)
    out = []

    def add(options, seed, p, **cell):
        outcomes = (rng.random(questions) < p).astype(float)
        out.append(dict(task="t", options=options, seed=seed, accuracy=outcomes.mean(), eval_seeded=False,
                        outcomes=outcomes, **cell))

    for options in LEVELS:
        for seed in seeds:
            add(options, seed, 0.8, transfer="dense", method="none", pattern="dense", sparsity=0.0,
                compression_ratio=1.0)
            for method, by_level in slopes.items():
                pruning = METHODS[method].family == "pruning"
                for i, s in enumerate(sparsities):
                    add(options, seed, 0.8 * (1 - by_level[options] * s), transfer="none", method=method,
                        pattern="unstructured", sparsity=s if pruning else 0.0,
                        compression_ratio=1 / (1 - s) if pruning else 4.0 * 2 ** i)
    return pd.DataFrame(out)


RISING, FLAT = {2: 0.1, 4: 0.5, 8: 0.9}, {2: 0.5, 4: 0.5, 8: 0.5}


def judged(frame):
    return s1_specific(s1_units({"setting2": frame}, None))


def test_the_controls_are_one_property_of_the_methods_table_and_stay_out_of_c1_and_c4():
    assert CONTROLS == tuple(m for m, spec in METHODS.items() if spec.control) == ("random", "large")
    assert set(CLAIMED_PRUNE_METHODS) == set(PRUNE_METHODS) - set(CONTROLS) == {"magnitude", "wanda", "sparsegpt"}
    frame = rows({"magnitude": RISING, "random": FLAT, "large": FLAT})
    assert set(c1_comparisons("setting2", frame)["method"]) == {"magnitude"}
    assert set(compression_c1(frame.assign(knob="options"))["method"]) == {"magnitude"}


def test_matched_damage_interpolates_the_control_against_its_mean_drop():
    # one seed, two levels, strengths 0 (dense), 1, 2: mean drops 0, 0.2, 0.6
    drop = np.array([[[0.0, 0.1, 0.4], [0.0, 0.3, 0.8]]])
    found = at_matched_damage(drop, np.array([0.0, 0.2, 0.4, 0.9]))
    # 0.4 lies half way between 0.2 and 0.6; 0.9 is beyond the control's range: clamped to its largest
    assert found[0, 0] == pytest.approx([0.0, 0.1, 0.25, 0.4]) and found[0, 1] == pytest.approx([0.0, 0.3, 0.55, 0.8])


def test_s1_holds_when_magnitude_pruning_costs_harder_levels_more_than_random_pruning_at_matched_damage():
    # random damages more per sparsity (0.8 on every level), magnitude spreads less damage towards hard levels
    result = judged(rows({"magnitude": RISING, "random": {2: 0.8, 4: 0.8, 8: 0.8}}))
    assert result.verdict == "holds" and result.low > 0
    damage = result.units.set_index("match").loc["damage"]
    assert damage["reference_trend"] == pytest.approx(0.4, abs=0.05) and abs(damage["control_trend"]) < 0.05
    assert "Verdict on S1: holds" in result.sentence


def test_s1_fails_when_random_pruning_costs_harder_levels_more():
    result = judged(rows({"magnitude": FLAT, "random": RISING}))
    assert result.verdict == "fails" and result.high < 0


def test_s1_is_inconclusive_when_both_prunings_cost_harder_levels_alike():
    result = judged(rows({"magnitude": RISING, "random": RISING}))
    assert result.verdict == "inconclusive" and result.low < 0 < result.high


def test_s1_is_not_testable_without_random_rows_and_still_reports_the_quantizer():
    frame = rows({"magnitude": RISING, "rtn": RISING})
    units = s1_units({"compression": frame.assign(knob="options")}, None)
    result = s1_specific(units)
    assert result.verdict == pooling.NOT_TESTABLE
    random = units[units["control"] == "random"]
    assert len(random) == 2 and not random["testable"].any() and random["testable_reason"].str.contains("not run").all()
    rtn = units[units["control"] == "rtn"]
    assert list(rtn["match"]) == ["damage"] and rtn["testable"].all()  # a quantizer has no sparsity to match
    assert "rtn: magnitude minus rtn" in result.sentence and "random pruning, which decides S1, is not among" in \
        result.sentence
    entry = claim_json(result)
    assert entry["verdict"] == "not testable" and entry["pooled"]["estimate"] is None
    assert entry["counts"]["not_testable"] == 2 and sum(entry["counts"].values()) == 3
    assert {c["control"] for c in entry["comparisons"]} == {"random", "rtn"}


def test_a_level_below_the_floor_makes_the_comparison_not_testable():
    frame = rows({"magnitude": RISING, "random": FLAT})
    at_chance = frame.assign(accuracy=np.where(frame["options"] == 8, 0.1, frame["accuracy"]),
                             outcomes=[np.zeros(2000) + 0.1 if o == 8 else q
                                       for o, q in zip(frame["options"], frame["outcomes"])])
    result = judged(at_chance)
    assert result.verdict == pooling.NOT_TESTABLE and "trend needs 3" in result.units["testable_reason"].iloc[0]


def test_s1_not_run_still_gives_the_chapters_an_empty_table_per_control():
    missing = specificity.s1_claim({}, None)
    assert missing.verdict == "not run" and missing["by_control"].empty
    assert {"control", "match", "verdict", "estimate", "low", "high"} <= set(missing["by_control"].columns)
    tables.pooled(missing["by_control"], "S1 per control").to_html()  # a chapter shows it without a KeyError
