"""Setting 4, number of demonstrations (k-shot): fewer solved examples is harder.

Embedded: on a classification task, the k demonstrations of each class (seeded, nested in k)
are embedded and averaged into a class prototype; an input takes the class of the closest
prototype; with k = 0 the class's label text stands for it.
Paper: a decoder (Vicuna-7B) on MMLU with k = 0..5 demonstrations of the same subject before
each question, by option log-likelihood (for a classification task: k per class).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..difficulty import few_shot
from ..scorers import choose, class_prototypes
from .nofinetune import NoFinetuneConfig, check_levels, run_setting
from .setting2 import questions

LEVEL = "shots"


@dataclass
class Setting4Config(NoFinetuneConfig):
    shots: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 5])

    LIST_FIELDS = NoFinetuneConfig.LIST_FIELDS + ("shots",)

    def validate(self) -> None:
        super().validate()
        check_levels("shots", self.shots, lambda k: isinstance(k, int) and k >= 0, "non-negative integers")


def difficulty(shots: int) -> float:
    """Fewer demonstrations is harder."""
    return -float(shots)


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
        correct = sum(p == q["label"] for p, q in zip(picks, asked))
        return {"accuracy": correct / len(asked), "n": len(asked), "demonstrations": len(demos)}
    train = questions(task, "train")
    demos = {subject: few_shot([q for q in train if q.get("subject") == subject], k, seed, per_class=per_class)
             for subject in {q.get("subject") for q in asked}}
    metrics = runner.choose(asked, lambda q: demos[q.get("subject")], prefix=task.prefix)
    return {**metrics, "demonstrations": sum(map(len, demos.values())) / len(demos)}


def run(config: Setting4Config, progress: bool = True) -> pd.DataFrame:
    return run_setting(config, LEVEL, config.shots, score, progress)
