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

from functools import partial

from dataclasses import dataclass

import pandas as pd

from ..config import ConfigError, SweepConfig
from ..data import human_scores
from ..difficulty import human_model_gap
from ..results import ResultsStore
from ..grid import run_grid
from .finetuning import FinetuneRunner, transfer_cells
from .nofinetune import NO_TRANSFER, NoFinetuneConfig, run_setting
from .setting2 import questions

RATERS = ("average", "expert")


def check_raters(config: SweepConfig) -> None:
    """The rater is known and every task has a score from it."""
    if config.rater not in RATERS:
        raise ConfigError(f"rater={config.rater!r} is not valid: use one of {', '.join(RATERS)}")
    for task in config.tasks:
        if config.rater not in human_scores(task):
            raise ConfigError(f"task={task!r} has no {config.rater} human rater score; Setting 5 needs one "
                              "(BIG-bench's task_human_eval.pkl, or the reported human accuracy of piqa, "
                              "hellaswag, openbookqa)")


@dataclass
class Setting5Config(SweepConfig):
    """Setting 5 with fine-tuning; `transfer: [none]` in the parameters gives `Setting5ScoringConfig`."""

    rater: str = "average"

    @staticmethod
    def variant(values: dict) -> type[SweepConfig]:
        """The config class for these parameter values: no fine-tuning when transfer is none alone."""
        transfer = values.get("transfer")
        return Setting5ScoringConfig if transfer in (NO_TRANSFER, [NO_TRANSFER]) else Setting5Config

    def validate(self) -> None:
        if NO_TRANSFER in self.transfer:
            raise ConfigError(f"transfer={self.transfer!r} mixes '{NO_TRANSFER}' (score the compressed model "
                              "without fine-tuning) with fine-tuning modes: give [none] alone, or fine-tuning "
                              "modes only")
        super().validate()
        check_raters(self)


@dataclass
class Setting5ScoringConfig(NoFinetuneConfig):
    """Setting 5 without fine-tuning: the tasks are answered zero-shot by the compressed model.

    Nothing else varies with the seed here, so by default each seed scores its own sample of
    questions (`eval_seeded`); otherwise the seeds would repeat one number.
    """

    rater: str = "average"
    eval_seeded: bool = True

    def validate(self) -> None:
        super().validate()
        check_raters(self)


def difficulty(gap: float) -> float:
    """A larger human-model gap is harder."""
    return gap


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


def run(config: Setting5Config | Setting5ScoringConfig, progress: bool = True) -> pd.DataFrame:
    if isinstance(config, NoFinetuneConfig):
        results = run_setting(config, None, (), score, progress)
    else:
        results = run_grid(config.setting, transfer_cells(config), partial(FinetuneRunner, config),
                           ResultsStore(config.store_path), progress)
    return with_gaps(results, config.rater)
