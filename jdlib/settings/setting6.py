"""Setting 6, factoid versus multiple choice: the same kind of question answered open-ended
(factoid, harder) or by choosing among a few options (multiple choice).

Embedded (BIG-bench qa_wikidata: prompts formed from Wikidata triples, open answers): the
encoder ranks candidate answers by cosine similarity to the prompt. Factoid: the candidates
are the gold answer and every other distinct answer of the task (or a seeded pool of
`factoid_pool`); multiple choice: the gold answer and `choices` - 1 seeded distractors from
the same answers, for the same questions.
Paper: a decoder (Vicuna-7B) answers FreebaseQA by greedy generation (factoid) and MMLU by
option log-likelihood (multiple choice, `choice_task`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import pandas as pd

from ..config import ConfigError, param
from ..data import check_task_name
from ..scorers.prompts import answer_prompt
from .nofinetune import NoFinetuneConfig, scoring_setting
from .setting2 import questions
from .spec import DifficultyOrder

LEVEL = "format"
FORMATS = ("multiple_choice", "factoid")


def _task(name: str) -> None:
    check_task_name(name)


@dataclass
class Setting6Config(NoFinetuneConfig):
    format: list[str] = param(list(FORMATS), str, many=True, choices=FORMATS, role="grid")
    choices: int = param(4, int, low=2)  # options of a multiple-choice question made from the task's answers
    # encoder factoid: candidates ranked (None: every distinct answer of the task)
    factoid_pool: int | None = param(None, int, "an integer above choices, or null (every answer)", low=3,
                                     nullable=True)
    # multiple choice from this task's own questions (None: the same questions)
    choice_task: str | None = param(None, str, "a task name, or null (the same questions)", nullable=True,
                                    extra=_task)

    def validate(self) -> None:
        super().validate()
        if self.factoid_pool is not None and self.factoid_pool <= self.choices:
            raise ConfigError(f"factoid_pool={self.factoid_pool!r} is not valid: use an integer above choices "
                              f"({self.choices}) or null (every answer)")


ORDER = DifficultyOrder(
    hardness=lambda fmt: float(FORMATS.index(fmt)),
    paper="Setting 6 (section 3.1.6): the same knowledge asked as multiple choice (choose among options) and as "
          "a factoid question (generate the answer); factoid is harder.",
    describe="multiple choice to factoid")


def chance(rows: pd.DataFrame) -> pd.Series:
    """One in as many candidates as ranked (a decoder's generated answers have no chance level)."""
    if "candidates" not in rows:
        return pd.Series(float("nan"), index=rows.index)
    return 1.0 / rows["candidates"].astype(float)


def answer_pool(runner, task_name: str) -> list[str]:
    """Every distinct answer (alias) of a generation task, training and validation splits."""
    def make():
        task = runner.task(task_name)
        return list(dict.fromkeys(a for split in (task.train, task.validation) for answers in split["answers"]
                                  for a in answers if a.strip()))

    return runner.derived(("answers", task_name), make)


def with_candidates(row: dict, pool: list[str], n: int | None, rng: random.Random) -> dict:
    """The question with its first answer and n - 1 seeded distractors (None: every other answer), shuffled."""
    aliases = {a.strip().lower() for a in row["answers"]}
    others = [a for a in pool if a.strip().lower() not in aliases]
    options = [row["answers"][0], *(others if n is None else rng.sample(others, min(n - 1, len(others))))]
    rng.shuffle(options)
    return {"text": row["text"], "options": options, "label": options.index(row["answers"][0])}


def score(runner, cell: dict) -> dict:
    fmt, seed = cell[LEVEL], cell["seed"]
    if fmt == "multiple_choice" and cell["choice_task"]:
        task = runner.task(cell["choice_task"])
        return {**runner.choose(runner.sample(questions(task), cell), prefix=task.prefix),
                "eval_task": cell["choice_task"]}
    task = runner.task(cell["task"])
    if task.kind != "generation":
        raise ValueError(f"{task.name} is a {task.kind} task: factoid questions need open answers")
    asked = runner.sample([r for r in task.validation.to_list() if r["answers"] and r["answers"][0].strip()], cell)
    if fmt == "factoid" and runner.kind == "decoder":
        return {**runner.answer([answer_prompt(r["text"]) for r in asked], [r["answers"] for r in asked]),
                "eval_task": cell["task"]}
    pool, rng = answer_pool(runner, cell["task"]), random.Random(f"{seed}:{fmt}")
    size = cell["choices"] if fmt == "multiple_choice" else cell["factoid_pool"]
    offered = [with_candidates(r, pool, size, rng) for r in asked]
    metrics = runner.choose(offered, prefix=task.prefix)
    return {**metrics, "eval_task": cell["task"], "candidates": sum(len(q["options"]) for q in offered) / len(offered)}


SETTING = scoring_setting("setting6", "Setting 6: factoid versus multiple choice", Setting6Config, LEVEL, ORDER,
                          score, chance=chance)
