import datasets
import pytest

import jdlib.data
import jdlib.data.hub as hub
from jdlib import load_task
from jdlib.difficulty import human_model_gap, subsample


def test_bigbench_task_has_seeded_splits_labels_and_human_scores():
    a = load_task("bigbench/vitaminc_fact_verification")
    b = load_task("bigbench/vitaminc_fact_verification")
    assert a.kind == "classification" and a.labels == ["True", "False", "Neither"]
    assert a.train["text"][:5] == b.train["text"][:5]
    assert set(a.train["text"][:200]).isdisjoint(a.validation["text"])
    assert set(a.train["label"]) == {0, 1, 2}
    human = jdlib.data.human_scores(a.name)
    assert 0 < human["average"] < 100 and "expert" in human
    c = load_task("bigbench/vitaminc_fact_verification", seed=1)
    assert c.train["text"][:5] != a.train["text"][:5]


def test_bigbench_generation_and_multiple_choice_kinds():
    assert load_task("bigbench/qa_wikidata").kind == "generation"
    mc = load_task("bigbench/logical_deduction")
    assert mc.kind == "multiple_choice"
    row = mc.validation[0]
    assert 0 <= row["label"] < len(row["options"])


def test_subsample_is_random_seeded_and_not_a_prefix():
    data = datasets.Dataset.from_dict({"i": list(range(1000))})
    a, b = subsample(data, 0.1, seed=3), subsample(data, 0.1, seed=3)
    assert len(a) == 100 and a["i"] == b["i"]
    assert a["i"] != list(range(100))
    assert subsample(data, 0.1, seed=4)["i"] != a["i"]
    with pytest.raises(ValueError, match="fraction"):
        subsample(data, 0.0)


def test_human_model_gap():
    assert human_model_gap(80.0, 60.0) == pytest.approx(25.0)


def test_glue_task_through_datasets(monkeypatch):
    def fake_load_dataset(path, name):
        assert (path, name) == ("nyu-mll/glue", "qnli")
        split = datasets.Dataset.from_dict({"question": ["q1", "q2"], "sentence": ["s1", "s2"], "label": [0, 1],
                                            "idx": [0, 1]})
        return datasets.DatasetDict(train=split, validation=split)

    monkeypatch.setattr(hub.datasets, "load_dataset", fake_load_dataset)
    task = load_task("glue/qnli")
    assert task.labels == ["entailment", "not_entailment"]
    assert task.train[1] == {"text": "q2", "text_pair": "s2", "label": 1}


def test_hub_task_offline_says_what_to_do():
    with pytest.raises(OSError, match="need internet"):
        load_task("glue/sst2")
