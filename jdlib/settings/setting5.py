"""Setting 5, across-task difficulty by the human-model gap: tasks on which the dense model falls
furthest short of human raters count as harder, gap = (human - model) / human x 100.

Two formulations, picked by `transfer`:

- fine-tuning (the embedded default): each task is fine-tuned densely and from the pruned
  model (sparse transfer, ...), as in Setting 1; the model score is the dense fine-tuned
  accuracy and the human score BIG-bench's own rater score;
- `transfer: [none]` (the paper's decoder formulation): the compressed pre-trained model
  answers each multiple-choice task zero-shot, by option log-likelihood for a decoder (an
  encoder by embedding similarity); the model score is the dense zero-shot accuracy, the
  human score the accuracy reported with the data set (PIQA, HellaSwag, OpenBookQA).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import pandas as pd

from ..config import ConfigError, FinetuneConfig, SweepConfig, param
from ..data import chance_by_task, human_scores
from ..difficulty import human_model_gap
from .finetuning import FinetuneRunner, transfer_cells
from .nofinetune import NO_FINETUNING, NoFinetuneConfig, ScoringRunner, scoring_cells
from .setting2 import questions
from .spec import DifficultyOrder, Part, Setting

RATERS = ("average", "expert")


def check_raters(config: SweepConfig) -> None:
    """Every task has a score from the rater."""
    for task in config.tasks:
        if config.rater not in human_scores(task):
            raise ConfigError(f"task={task!r} has no {config.rater} human rater score; Setting 5 needs one "
                              "(BIG-bench's task_human_eval.pkl, or the reported human accuracy of piqa, "
                              "hellaswag, openbookqa)")


@dataclass
class Setting5Config(FinetuneConfig):
    """Setting 5 with fine-tuning; `transfer: [none]` in the parameters gives `Setting5ScoringConfig`."""

    rater: str = param("average", str, choices=RATERS, role="analysis")

    def validate(self) -> None:
        super().validate()
        check_raters(self)


@dataclass
class Setting5ScoringConfig(NoFinetuneConfig):
    """Setting 5 without fine-tuning: the tasks are answered zero-shot by the compressed model.

    Nothing else varies with the seed here, so by default each seed scores its own sample of
    questions (`eval_seeded`); otherwise the seeds would repeat one number.
    """

    rater: str = param("average", str, choices=RATERS, role="analysis")
    eval_seeded: bool = param(True, bool)

    def validate(self) -> None:
        super().validate()
        check_raters(self)


def variant(values: dict) -> type[SweepConfig]:
    """The config class for these parameter values: no fine-tuning when transfer is none alone."""
    transfer = values.get("transfer")
    transfer = transfer if isinstance(transfer, (list, tuple)) else [transfer]
    if NO_FINETUNING in transfer and len(transfer) > 1:
        raise ConfigError(f"transfer={list(transfer)!r} mixes '{NO_FINETUNING}' (score the compressed model "
                          "without fine-tuning) with fine-tuning modes: give [none] alone, or fine-tuning modes only")
    return Setting5ScoringConfig if transfer == [NO_FINETUNING] else Setting5Config


ORDER = DifficultyOrder(
    hardness=float,
    paper="Setting 5 (section 3.1.5): across tasks, difficulty = (human - model) / human x 100, the gap between "
          "human and dense-model performance; a larger gap is harder (PIQA 17.53 < HellaSwag 37.57 < "
          "OpenBookQA 60.43 for Vicuna-13B).",
    describe="a smaller human-model gap to a larger one")


def with_gaps(results: pd.DataFrame, rater: str = "average") -> pd.DataFrame:
    """Each row with its task's human score, dense accuracy (mean over seeds) and human-model gap."""
    dense = results[results["transfer"] == "dense"].groupby("task")["accuracy"].mean() * 100
    human = {task: human_scores(task)[rater] for task in dense.index}
    gaps = pd.DataFrame({"task": dense.index, "human": [human[t] for t in dense.index], "dense_score": dense.values})
    gaps["gap"] = [round(human_model_gap(h, m), 2) for h, m in zip(gaps["human"], gaps["dense_score"])]
    return results.merge(gaps, on="task")


def score(runner, cell: dict) -> dict:
    """Zero-shot accuracy of the cell's (compressed) model on its task's evaluation questions."""
    task = runner.task(cell["task"])
    return runner.choose(runner.sample(questions(task), cell), prefix=task.prefix)


def parts(config: SweepConfig) -> list[Part]:
    cells = scoring_cells(config, None, ()) if isinstance(config, NoFinetuneConfig) else transfer_cells(config)
    return [Part("setting5", cells)]


def make_runner(config: SweepConfig):
    if isinstance(config, NoFinetuneConfig):
        return partial(ScoringRunner, config, score)
    return partial(FinetuneRunner, config)


SETTING = Setting(
    name="setting5", title="Setting 5: the human-model gap", config=Setting5Config, level="gap", order=ORDER,
    kind="finetune", parts=parts, make_runner=make_runner, across_tasks=True, variants=variant,
    finish=lambda config, rows: with_gaps(rows[0], config.rater), chance=lambda rows: chance_by_task(rows["task"]))
