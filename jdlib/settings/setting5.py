"""Setting 5, across-task difficulty by the human-model gap: tasks on which the dense
fine-tuned model falls furthest short of human raters count as harder,
gap = (human - model) / human x 100 with BIG-bench's own human rater scores."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..config import ConfigError, SweepConfig
from ..data import human_scores
from ..difficulty import human_model_gap
from ..results import ResultsStore
from ..sweep import run_grid
from .finetuning import FinetuneRunner, transfer_cells

RATERS = ("average", "expert")


@dataclass
class Setting5Config(SweepConfig):
    rater: str = "average"

    def validate(self) -> None:
        super().validate()
        if self.rater not in RATERS:
            raise ConfigError(f"rater={self.rater!r} is not valid: use one of {', '.join(RATERS)}")
        for task in self.tasks:
            if self.rater not in human_scores(task):
                raise ConfigError(f"task={task!r} has no {self.rater} human rater score; Setting 5 needs one "
                                  "(BIG-bench's task_human_eval.pkl, or a `human` score for paper tasks)")


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


def run(config: Setting5Config, progress: bool = True) -> pd.DataFrame:
    results = run_grid(config.setting, transfer_cells(config), FinetuneRunner(config),
                       ResultsStore(config.store_path), progress)
    return with_gaps(results, config.rater)
