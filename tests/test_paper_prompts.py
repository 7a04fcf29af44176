"""Setting 5's prompts as lm-evaluation-harness makes them: for a row of each data set's hub schema,
jdlib's (context, continuation) requests equal those of the harness's own task config (PIQA,
HellaSwag, OpenBookQA; lm_eval 0.4.13, a dev dependency), zero-shot and after one demonstration.

The harness side is its task YAML (and HellaSwag's utils.process_docs) loaded by its own loader
and run by its `ConfigurableTask` on the same synthetic rows; nothing is downloaded.
"""
from pathlib import Path

import datasets
import lm_eval
import pytest
from lm_eval.api.task import ConfigurableTask
from lm_eval.tasks._yaml_loader import load_yaml

from jdlib import load_task
from jdlib.scorers.loglik import TARGET_DELIMITER, LoglikScorer
from jdlib.scorers.prompts import choice_item
from jdlib.settings import load, setting5
from jdlib.settings.nofinetune import ScoringRunner

TASKS = ("piqa", "hellaswag", "openbookqa")

# (evaluated row, demonstration row) per data set, in its hub schema. The evaluated rows hold what a
# prompt builder gets wrong: spaces around PIQA's goal (the harness keeps them), HellaSwag's WikiHow
# markup with a lower-case ctx_b and a context that ends in a space once cleaned.
ROWS = {
    "piqa": ({"goal": " How do I open a stuck jar? ", "sol1": "Run the lid under hot water.",
              "sol2": "Run the lid under cold water.", "label": 0},
             {"goal": "Keep bread fresh", "sol1": "Store it in a paper bag.", "sol2": "Store it in a sink.",
              "label": 0}),
    "hellaswag": ({"ind": 4, "activity_label": "Home and Garden",
                   "ctx_a": "[header] How to clean a grill [title] Heat the grill for ten minutes.",
                   "ctx_b": "scrub the grates with a brush [step]", "ctx": "", "source_id": "wikihow~1",
                   "endings": ["Then rinse them [substeps] with water.", "Eat the brush.", " Paint the grill. ",
                               "Sing to it."], "split": "val", "split_type": "indomain", "label": "0"},
                  {"ind": 1, "activity_label": "Washing face", "ctx_a": "A woman stands at a sink.",
                   "ctx_b": "she", "ctx": "", "source_id": "activitynet~v_1", "split": "train",
                   "endings": ["splashes water on her face.", "flies away.", "eats the sink.", "sleeps."],
                   "split_type": "indomain", "label": "0"}),
    "openbookqa": ({"id": "7-980", "question_stem": "The sun is responsible for",
                    "choices": {"text": ["puppies learning new tricks", "children growing up and getting old",
                                         "flowers wilting in a vase", "plants sprouting, blooming and wilting"],
                                "label": ["A", "B", "C", "D"]}, "answerKey": "D"},
                   {"id": "1-1", "question_stem": "A magnet attracts",
                    "choices": {"text": ["iron nails", "wood", "glass", "paper"], "label": ["A", "B", "C", "D"]},
                    "answerKey": "A"}),
}


def raw(name: str) -> datasets.DatasetDict:
    """The hub's splits: the evaluated row in validation and test (PIQA and HellaSwag are evaluated on the one,
    OpenBookQA on the other), the demonstration row twice in train (the harness's sampler draws n + 1 rows)."""
    evaluated, demo = ROWS[name]
    splits = {"train": [demo, demo], "validation": [evaluated], "test": [evaluated]}
    return datasets.DatasetDict({s: datasets.Dataset.from_list(rows) for s, rows in splits.items()})


@pytest.fixture
def hub(monkeypatch):
    by_path = {"ybisk/piqa": "piqa", "Rowan/hellaswag": "hellaswag", "allenai/openbookqa": "openbookqa"}
    monkeypatch.setattr(datasets, "load_dataset", lambda path, *args, **kwargs: raw(by_path[path]))


def harness_requests(name: str, shots: int) -> tuple[list[tuple[str, str]], int]:
    """The harness's loglikelihood requests for the evaluated row, and its gold index."""
    config = load_yaml(Path(lm_eval.__file__).parent / "tasks" / name / f"{name}.yaml")
    task = ConfigurableTask(config={**config, "custom_dataset": lambda **kwargs: raw(name)})
    task.set_fewshot_seed(0)
    doc = task.eval_docs[0]
    requests = task.construct_requests(doc, task.fewshot_context(doc, shots))
    return [r.arguments for r in requests], int(task.doc_to_target(doc))


def jdlib_requests(name: str, shots: int) -> tuple[list[tuple[str, str]], int]:
    task = load_task(name)
    item = choice_item(task.validation[0], task.train.to_list()[:shots], "cloze")
    return [(item.context, TARGET_DELIMITER + option) for option in item.options], item.gold


@pytest.mark.parametrize("shots", [0, 1])
@pytest.mark.parametrize("name", TASKS)
def test_cloze_requests_are_the_harness_tasks(hub, name, shots):
    ours, theirs = jdlib_requests(name, shots), harness_requests(name, shots)
    assert ours == theirs and len(ours[0]) >= 2


def test_the_tasks_prompts_differ_as_the_harness_has_them(hub):
    """PIQA asks "Question: ...\\nAnswer:"; HellaSwag's cleaned context and OpenBookQA's stem stand alone."""
    contexts = {name: jdlib_requests(name, 0)[0][0][0] for name in TASKS}
    assert contexts["piqa"] == "Question:  How do I open a stuck jar? \nAnswer:"
    assert contexts["hellaswag"] == ("Home and Garden: How to clean a grill. Heat the grill for ten minutes. "
                                     "Scrub the grates with a brush ")
    assert contexts["openbookqa"] == "The sun is responsible for"


def test_setting5_scores_each_task_with_its_own_prompt(hub, monkeypatch):
    """The rows' prompts reach the scorer through Setting 5's question sampling."""
    runner = ScoringRunner(load("setting5", "paper", model="tiny-llama"), setting5.score)
    runner._load()
    seen = []

    def choose(self, items):
        seen.extend(items)
        picks = [0] * len(items)
        return {"acc": 0.0, "acc_norm": 0.0, "predictions": picks, "predictions_norm": picks}

    monkeypatch.setattr(LoglikScorer, "choose", choose)
    for name in TASKS:
        setting5.score(runner, {"task": name, "max_eval": 10, "eval_seeded": True, "seed": 41})
    assert [[(item.context, TARGET_DELIMITER + o) for o in item.options] for item in seen] == \
           [harness_requests(name, 0)[0] for name in TASKS]
