"""Setting 2, option count: the same multiple-choice questions offered with 2, 3, 4, ...
options (the gold answer and seeded distractors); more options is harder.

Embedded: the pre-trained sentence encoder picks the option closest to the question.
Paper: a decoder (Vicuna-7B) on MMLU with 5 fixed demonstrations, by option log-likelihood.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import pandas as pd

from ..config import ConfigError, param
from ..data import Task, load_task
from ..difficulty import few_shot, reduce_options
from .nofinetune import NoFinetuneConfig, scoring_setting
from .spec import DifficultyOrder

LEVEL = "options"


@dataclass
class Setting2Config(NoFinetuneConfig):
    options: list[int] = param([2, 3, 4], int, "integers of at least 2", many=True, low=2, role="grid")
    # fixed solved questions before each one (decoders; the paper: 5)
    demonstrations: int = param(0, int, low=0)

    def cell_common(self) -> dict:
        # Every level scores the questions that have at least max(options) options.
        return {**super().cell_common(), "min_options": max(self.options)}


ORDER = DifficultyOrder(
    hardness=float,
    paper="Setting 2 (section 3.1.2): MMLU's four options reduced to three and two, the gold answer kept: "
          "more options to choose from is harder (2 < 3 < 4).",
    describe="fewer options to more")


def most_options(name: str) -> int:
    """The most options a question of task `name` offers."""
    return max((len(q["options"]) for q in questions(load_task(name))), default=0)


def check_data(config: Setting2Config) -> None:
    """Each task offers questions with as many options as the largest level asks for."""
    for name in config.tasks:
        largest = most_options(name)
        if max(config.options) > largest:
            raise ConfigError(f"options={config.options!r}: {name} has at most {largest} options per question; "
                              f"use option counts from 2 to {largest}")


def data_levels(config: Setting2Config) -> list[int]:
    """The option counts of `config` that every one of its tasks offers."""
    largest = min(most_options(name) for name in config.tasks)
    return [n for n in config.options if n <= largest]


def chance(rows: pd.DataFrame) -> pd.Series:
    """One in as many options as offered."""
    return 1.0 / rows[LEVEL].astype(float)


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


SETTING = scoring_setting("setting2", "Setting 2: the number of options", Setting2Config, LEVEL, ORDER, score,
                          check_data=check_data, data_levels=data_levels, chance=chance)
