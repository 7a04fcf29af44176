import datasets
import numpy as np
import pandas as pd
import pytest

from jdlib.analysis.floor import GATE_MARGIN, dense_interval, floor, learnability_gate, majority_rate


def test_the_floor_of_a_balanced_binary_task_with_a_three_way_label_set_is_one_half_not_a_third():
    labels = ["yes"] * 500 + ["no"] * 500  # "maybe" is a label no question has
    assert floor(1 / 3, labels) == 0.5


def test_a_tasks_floor_reads_its_evaluation_split_not_its_label_set():
    from jdlib.data import Task

    split = datasets.Dataset.from_dict({"text": ["a"] * 6, "label": [0, 1, 0, 1, 0, 1]})
    task = Task("toy", "classification", split, split, labels=["yes", "no", "maybe"])
    assert task.chance == pytest.approx(1 / 3) and task.majority_rate == 0.5
    assert floor(task.chance, task.validation["label"]) == 0.5


def test_a_multiple_choice_tasks_majority_rate_is_its_most_frequent_gold_position():
    """One decision for the screen and the verdicts: a fine-tuned multiple-choice model that learned only
    a position answers it (BIG-bench's timedial: the gold is always the first option, floor 1.0)."""
    from jdlib.data import Task

    split = datasets.Dataset.from_dict({"text": ["q"] * 4, "options": [["a", "b", "c"]] * 4, "label": [0, 0, 0, 2]})
    task = Task("toy", "multiple_choice", split, split)
    assert task.chance == pytest.approx(1 / 3) and task.majority_rate == 0.75
    assert floor(task.chance, task.validation["label"]) == 0.75
    generation = Task("gen", "generation", split.remove_columns(["options", "label"]), split)
    assert generation.majority_rate is None


def test_the_floor_is_the_majority_rate_or_chance_whichever_is_larger():
    assert majority_rate([0, 0, 0, 1]) == 0.75
    assert floor(0.5, [0, 0, 0, 1]) == 0.75
    assert floor(0.25, [0, 1, 2, 3]) == 0.25
    assert floor(None) == 0.0


def test_a_constant_predictor_at_the_floor_fails_the_gate_and_a_learned_model_passes():
    at_floor = learnability_gate([0.498, 0.498, 0.498], 2000, 0.501)
    assert not at_floor.passes and "not wholly above" in at_floor.reason
    learned = learnability_gate([0.80, 0.82, 0.81], 2000, 0.5)
    assert learned.passes and learned.low > 0.5 + GATE_MARGIN


def test_the_gate_needs_the_whole_interval_above_floor_plus_margin_not_just_the_mean():
    mean_above = learnability_gate([0.50, 0.62, 0.56], 500, 0.5)  # mean 0.56 > 0.55, wide seed spread
    assert mean_above.dense > 0.5 + GATE_MARGIN and not mean_above.passes


def test_seeds_that_agree_leave_the_questions_error_in_the_dense_interval():
    rng = np.random.default_rng(0)
    outcomes = np.tile((rng.random(1000) < 0.7).astype(float), (3, 1))  # three seeds, one constant predictor
    mean, low, high = dense_interval(outcomes.mean(axis=1), 1000, outcomes)
    assert (high - low) / 2 == pytest.approx(1.959964 * np.sqrt(np.var(outcomes[0]) / 1000), rel=1e-4)
    # without outcomes: p(1 - p) / n, the largest the questions' variance can be (reached by 0/1 outcomes)
    assert dense_interval([mean] * 3, 1000)[1:] == pytest.approx((low, high))


def test_the_build_scale_sentence_says_what_was_trained_and_how_many_levels_were_learned():
    from jdlib.analysis.sentences import fine_tuning_scale
    from jdlib.settings import load

    config = load("setting1", "ci")
    gates = pd.DataFrame({"testable": [True, False]})
    sentence = fine_tuning_scale(config, gates)
    assert f"{config.steps} optimizer update" in sentence and f"batch {config.batch_size}" in sentence
    assert "at 1 of 2 levels" in sentence and "tests nothing" in sentence
    assert "every level tests the claim" in fine_tuning_scale(config, gates.assign(testable=True))
    assert "learnability gate" not in fine_tuning_scale(config, gates.iloc[:0])
