"""Setting 2, option count: the same multiple-choice questions offered with 2, 3, 4, ...
options (the gold answer and seeded distractors); more options is harder.

Embedded: the pre-trained sentence encoder picks the option closest to the question.
Paper: a decoder (Vicuna-7B) on MMLU with 5 fixed demonstrations, by option log-likelihood.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

import pandas as pd

from ..config import ConfigError
from ..data import Task
from ..difficulty import few_shot, reduce_options
from .nofinetune import NoFinetuneConfig, check_levels, run_setting

LEVEL = "options"


@dataclass
class Setting2Config(NoFinetuneConfig):
    options: list[int] = field(default_factory=lambda: [2, 3, 4])
    demonstrations: int = 0  # fixed solved questions before each one (decoders; the paper: 5)

    LIST_FIELDS = NoFinetuneConfig.LIST_FIELDS + ("options",)

    def validate(self) -> None:
        super().validate()
        check_levels("options", self.options, lambda n: isinstance(n, int) and n >= 2, "integers of at least 2")
        if not isinstance(self.demonstrations, int) or self.demonstrations < 0:
            raise ConfigError(f"demonstrations={self.demonstrations!r} is not valid: use a non-negative integer")

    def cell_common(self) -> dict:
        # Every level scores the questions that have at least max(options) options.
        return {**super().cell_common(), "demonstrations": self.demonstrations, "min_options": max(self.options)}


def difficulty(options: int) -> float:
    """More options to choose from is harder."""
    return float(options)


def questions(task: Task, split: str = "validation") -> list[dict]:
    """(text, options, label[, subject]) rows: per-example options, or a classification task's labels."""
    rows = getattr(task, split).to_list()
    if task.kind == "classification":
        return [{**r, "options": list(task.labels)} for r in rows]
    if task.kind != "multiple_choice":
        raise ValueError(f"{task.name} is a {task.kind} task: the option count needs multiple-choice questions")
    return rows


def score(runner, cell: dict) -> dict:
    task, n = runner.task(cell["task"]), cell[LEVEL]
    pool = [q for q in questions(task) if len(q["options"]) >= cell["min_options"]]
    if not pool:
        raise ValueError(f"{task.name} has no question with {cell['min_options']} options or more")
    rng = random.Random(f"{cell['seed']}:{n}")
    reduced = [reduce_options(q, n, rng) for q in runner.sample(pool, cell)]
    demos: dict[str, list[dict]] = {}
    if runner.kind == "decoder" and cell["demonstrations"]:
        train = questions(task, "train")
        for subject in {q.get("subject") for q in reduced}:  # MMLU's demonstrations come from the same subject
            same = [q for q in train if q.get("subject") == subject and len(q["options"]) >= n]
            fixed = few_shot(same, cell["demonstrations"], seed=0, per_class=False)
            demos[subject] = [reduce_options(d, n, random.Random(f"demo:{i}:{n}")) for i, d in enumerate(fixed)]
    return runner.choose(reduced, lambda q: demos.get(q.get("subject"), []), prefix=task.prefix)


def run(config: Setting2Config, progress: bool = True) -> pd.DataFrame:
    return run_setting(config, LEVEL, config.options, score, progress)
