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
from dataclasses import dataclass, field

import pandas as pd

from ..config import ConfigError
from ..data import check_task_name
from ..scorers.prompts import answer_prompt
from .nofinetune import NoFinetuneConfig, check_levels, run_setting
from .setting2 import questions

LEVEL = "format"
FORMATS = ("multiple_choice", "factoid")


@dataclass
class Setting6Config(NoFinetuneConfig):
    format: list[str] = field(default_factory=lambda: list(FORMATS))
    choices: int = 4  # options of a multiple-choice question made from the task's answers
    factoid_pool: int | None = None  # encoder factoid: candidates ranked (None: every distinct answer of the task)
    choice_task: str | None = None  # multiple choice from this task's own questions (None: the same questions)

    LIST_FIELDS = NoFinetuneConfig.LIST_FIELDS + ("format",)

    def validate(self) -> None:
        super().validate()
        check_levels("format", self.format, lambda f: f in FORMATS, " or ".join(FORMATS))
        if not isinstance(self.choices, int) or self.choices < 2:
            raise ConfigError(f"choices={self.choices!r} is not valid: use an integer of at least 2")
        if self.factoid_pool is not None and (not isinstance(self.factoid_pool, int) or self.factoid_pool <= self.choices):
            raise ConfigError(f"factoid_pool={self.factoid_pool!r} is not valid: use an integer above choices "
                              f"({self.choices}) or null (every answer)")
        if self.choice_task is not None:
            try:
                check_task_name(self.choice_task)
            except ValueError as err:
                raise ConfigError(f"choice_task: {err}") from None

    def cell_common(self) -> dict:
        return {**super().cell_common(), "choices": self.choices, "factoid_pool": self.factoid_pool,
                "choice_task": self.choice_task}


def difficulty(fmt: str) -> float:
    """Answering open-ended (factoid) is harder than choosing among options."""
    return float(FORMATS.index(fmt))


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


def run(config: Setting6Config, progress: bool = True) -> pd.DataFrame:
    return run_setting(config, LEVEL, config.format, score, progress)
