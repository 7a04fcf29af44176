"""The Junk-DNA score: the area between the hardest and the easiest testable level's drop curves, on rows
with a known answer, pooled per method by C1's rule."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jdlib.analysis import intervals, score

N = 40  # questions per cell
DENSE = 32  # the dense model answers 0.8 of them at every learned level


def cells(options: int, correct: dict[float, int], method: str = "magnitude", pattern: str = "unstructured",
          task: str = "t") -> list[dict]:
    """Setting 2 rows of one level: per seed, the dense cell (sparsity 0) and a pruned cell per sparsity with
    `correct` answers out of N (the same count in every seed, each seed its own questions right)."""
    rng = np.random.default_rng(options)
    rows = []
    for seed in (41, 42, 43):
        order = rng.permutation(N)
        for x, k in correct.items():
            outcomes = np.zeros(N)
            outcomes[order[:k]] = 1.0  # nested: a pruned model gets a subset of the dense one's right
            dense = x == 0
            rows.append({"task": task, "options": options, "seed": seed, "transfer": "dense" if dense else "none",
                         "method": "none" if dense else method, "pattern": "dense" if dense else pattern,
                         "sparsity": x, "accuracy": k / N, "outcomes": list(outcomes)})
    return rows


def known_rows(method: str = "magnitude", task: str = "t", hard_drop: float = 1.0,
               easy_drop: float = 0.0) -> pd.DataFrame:
    """The easy level (2 options) loses `easy_drop` x sparsity of its accuracy, the hard one (4 options)
    `hard_drop` x sparsity; 8 options is below its floor (1/8 + margin) and loses everything, which must
    not count."""
    easy = {0.0: DENSE, **{x: round(DENSE * (1 - easy_drop * x)) for x in (0.25, 0.5, 0.75)}}  # 0.75: easy only
    hard = {0.0: DENSE, **{x: round(DENSE * (1 - hard_drop * x)) for x in (0.25, 0.5)}}
    untestable = {0.0: 6, 0.25: 0, 0.5: 0}
    return pd.DataFrame(cells(2, easy, method, task=task) + cells(4, hard, method, task=task)
                        + cells(8, untestable, method, task=task))


def test_area_between_is_the_trapezoid_of_the_seed_mean_drop():
    conditions = pd.DataFrame({"level": [2, 2, 2, 4, 4, 4], "difficulty": [0.0, 0, 0, 1, 1, 1],
                               "sparsity": [0.0, 0.3, 0.6] * 2})
    acc = np.array([[0.8, 0.8, 0.4, 0.8, 0.4, 0.2], [0.6, 0.6, 0.6, 0.5, 0.5, 0.0]])  # [seed, condition]
    found = score.area_between(acc, conditions)
    easy = np.trapezoid([0, 0, (0.5 + 0) / 2], [0, 0.3, 0.6])
    hard = np.trapezoid([0, (0.5 + 0) / 2, (0.75 + 1) / 2], [0, 0.3, 0.6])
    assert found["easiest"] == pytest.approx(easy) and found["hardest"] == pytest.approx(hard)
    assert found["score"] == pytest.approx(hard - easy)


def test_score_reads_the_hardest_and_easiest_testable_levels_over_the_common_range():
    table = score.comparisons("setting2", known_rows())
    row = table.iloc[0]
    assert len(table) == 1 and row["testable"]
    assert (row["easiest"], row["hardest"], row["sparsities"]) == (2, 4, "0.25-0.5")  # 8 fails the gate
    assert "options 8" in row["testable_reason"]
    assert row["estimate"] == pytest.approx(np.trapezoid([0, 0.25, 0.5], [0, 0.25, 0.5]))  # 0.125
    assert row["easiest_area"] == 0 and row["interval"] == intervals.METHOD
    assert 0 < row["low"] < row["estimate"] < row["high"]  # the questions' error, though the seeds agree
    scores = score.method_scores(table)  # one study keeps its own interval
    assert (scores.iloc[0]["estimate"], scores.iloc[0]["low"]) == (row["estimate"], row["low"])
    assert scores.iloc[0]["reading"] == "hard level pays more"


def test_equal_drops_score_zero_and_the_interval_includes_it():
    rows = known_rows(hard_drop=0.5, easy_drop=0.5)
    table = score.comparisons("setting2", rows)
    assert table.iloc[0]["estimate"] == 0
    scores = score.method_scores(table)
    assert scores.iloc[0]["reading"] == "interval includes 0"


def test_one_level_testable_is_not_testable():
    rows = known_rows()
    table = score.comparisons("setting2", rows[rows["options"] != 2])
    assert not table.iloc[0]["testable"] and np.isnan(table.iloc[0]["estimate"])
    assert "1 of 2 levels pass the gate" in table.iloc[0]["testable_reason"]


def test_methods_ranked_pooled_over_tasks_quantizers_and_nm_left_out():
    wanda = pd.concat([known_rows("wanda", "a", hard_drop=0.5), known_rows("wanda", "b", hard_drop=0.5)])
    rows = pd.concat([known_rows("magnitude", "a"), known_rows("magnitude", "b"), wanda[wanda["method"] == "wanda"]])
    pruned = rows[rows["transfer"] != "dense"]
    rows = pd.concat([rows, pruned.assign(method="rtn"), pruned.assign(pattern="2:4")], ignore_index=True)
    table = score.chapter_comparisons({"setting2": rows})
    assert set(table["method"]) == {"magnitude", "wanda"} and len(table) == 4
    assert set(table["where"]) == {"setting2: a", "setting2: b"}
    scores = score.method_scores(table)
    assert list(scores["method"]) == ["wanda", "magnitude"]  # lowest first: wanda's hard level falls half as fast
    assert list(scores["n_tasks"]) == [2, 2]
    by_method = scores.set_index("method")
    # the two tasks of a method have the same curves: the pooled estimate is theirs
    assert by_method.loc["magnitude", "estimate"] == pytest.approx(0.125)
    found = score.scores_json(scores)
    assert set(found) == {"magnitude", "wanda"}
    assert {"estimate", "low", "high", "n_tasks"} <= set(found["wanda"])
    assert "magnitude" in score.sentence(scores, table)


def test_settings_whose_levels_are_tasks_get_no_score():
    assert score.chapter_comparisons({"setting5": known_rows(), "setting2": None}).empty
