"""Setting 4, number of demonstrations (k-shot): fewer solved examples is harder.

Embedded: on a classification task, the k demonstrations of each class (seeded, nested in k)
are embedded and averaged into a class prototype; an input takes the class of the closest
prototype; with k = 0 the class's label text stands for it.
Paper: a decoder (Vicuna-7B) on MMLU with k = 0..5 demonstrations of the same subject before
each question, by option log-likelihood (for a classification task: k per class).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..config import ConfigError, param
from ..data import Task, chance_by_task, load_task
from ..difficulty import few_shot
from ..scorers import choose, class_prototypes
from .nofinetune import NoFinetuneConfig, model_kind, outcome_metrics, scoring_setting
from .setting2 import questions
from .spec import DifficultyOrder

LEVEL = "shots"


@dataclass
class Setting4Config(NoFinetuneConfig):
    shots: list[int] = param([0, 1, 2, 3, 5], int, "non-negative integers", many=True, low=0, role="grid")


ORDER = DifficultyOrder(
    hardness=lambda shots: -float(shots),
    paper="Setting 4 (section 3.1.4): in-context learning with k = 0 to 5 demonstrations; fewer demonstrations "
          "is harder (5 shots easiest, 0 shots hardest).",
    describe="more demonstrations to fewer (zero-shot hardest)")


# The task kinds whose demonstrations each kind of model can use, and why (the words of the error).
KINDS = {
    "encoder": (("classification",), "an encoder averages the k demonstrations of each class into the class's "
                                     "prototype, so it needs a classification task"),
    "decoder": (("classification", "multiple_choice"), "a decoder scores each option after k solved questions, so "
                                                       "it needs a classification or multiple-choice task"),
}


def largest_shots(task: Task, model: str) -> tuple[int, str]:
    """The most demonstrations every cell gets in full (`few_shot` gives a group smaller than k
    all it has), and the group that bounds them: per class (a classification task), within each
    subject of the questions asked (a decoder)."""
    per_class = task.kind == "classification"
    by_subject = model == "decoder" and "subject" in task.validation.column_names
    sizes = Counter((row.get("subject") if by_subject else None, row["label"] if per_class else None)
                    for row in task.train.to_list())
    subjects = set(task.validation["subject"]) if by_subject else {None}
    largest = min(min((n for (s, _), n in sizes.items() if s == subject), default=0) for subject in subjects)
    group = {(True, True): "in its rarest class within a subject", (True, False): "in its rarest class",
             (False, True): "in its smallest subject", (False, False): "in all"}[per_class, by_subject]
    return largest, group


def check_data(config: Setting4Config) -> None:
    """Each task is of a kind the model can take demonstrations of, with as many demonstrations
    as the largest `shots` asks for."""
    model = model_kind(config.model)
    kinds, why = KINDS[model]
    for name in config.tasks:
        task = load_task(name)
        if task.kind not in kinds:
            raise ConfigError(f"tasks: {name} is a {task.kind} task; k-shot demonstrations with {config.model}: {why}")
        largest, group = largest_shots(task, model)
        if max(config.shots) > largest:
            raise ConfigError(f"shots={config.shots!r}: {name} has {largest} training examples {group}: use "
                              f"shots from 0 to {largest}")


def score(runner, cell: dict) -> dict:
    task, k, seed = runner.task(cell["task"]), cell[LEVEL], cell["seed"]
    asked = runner.sample(questions(task), cell)
    per_class = task.kind == "classification"
    if runner.kind == "encoder":
        if not per_class:
            raise ValueError(f"{task.name}: class prototypes need a classification task (one set of labels)")
        demos = few_shot(task.train, k, seed, per_class=True)
        embed = runner.embedder()
        prototypes = class_prototypes(embed, task.labels,
                                      [[d["text"] for d in demos if d["label"] == c] for c in range(len(task.labels))])
        picks = choose(embed([q["text"] for q in asked]), prototypes)
        return {**outcome_metrics([float(p == q["label"]) for p, q in zip(picks, asked)]),
                "demonstrations": len(demos)}
    train = questions(task, "train")
    demos = {subject: few_shot([q for q in train if q.get("subject") == subject], k, seed, per_class=per_class)
             for subject in {q.get("subject") for q in asked}}
    metrics = runner.choose(asked, lambda q: demos[q.get("subject")], prefix=task.prefix)
    return {**metrics, "demonstrations": sum(map(len, demos.values())) / len(demos)}


SETTING = scoring_setting("setting4", "Setting 4: k-shot demonstrations", Setting4Config, LEVEL, ORDER, score,
                          check_data=check_data, chance=lambda rows: chance_by_task(rows["task"]))
