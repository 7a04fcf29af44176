"""Tasks: BIG-bench (embedded scale) and hub datasets (paper scale), one `Task` view."""
from __future__ import annotations

import difflib
from functools import lru_cache

import pandas as pd

from . import bigbench, hub, paper_qa
from .task import Task


def load_task(name: str, seed: int = 0) -> Task:
    """Load "bigbench/<task>" (offline, from the bigbench package) or a hub task such as "glue/sst2"."""
    source, _, task = name.partition("/")
    if source == "bigbench" and task:
        return bigbench.load(task, seed=seed)
    if paper_qa.is_known(name):
        return paper_qa.load(name)
    return hub.load(name)


def chance_by_task(tasks: pd.Series) -> pd.Series:
    """Each row's accuracy by chance (`Task.chance`) from the task it names."""
    return tasks.map({name: _chance(name) for name in tasks.unique()}).astype(float)


@lru_cache(maxsize=256)
def _chance(task: str) -> float | None:
    return load_task(task).chance


def majority_by_task(tasks: pd.Series, max_train: pd.Series | None = None,
                     max_eval: pd.Series | None = None) -> pd.Series:
    """Each row's majority-class rate (`Task.majority_rate`, NaN where there is none) on the validation
    split its cell evaluated: the task capped as the fine-tuning runner caps it (`max_train`, `max_eval`
    per row, None or NaN: uncapped)."""
    def cap(values):
        return [None] * len(tasks) if values is None else [None if pd.isna(v) else int(v) for v in values]

    keys = list(zip(tasks, cap(max_train), cap(max_eval)))
    return pd.Series([_majority(*key) for key in keys], index=tasks.index, dtype=float)


@lru_cache(maxsize=256)
def _majority(task: str, max_train: int | None, max_eval: int | None) -> float | None:
    return load_task(task).cap(max_train, max_eval).majority_rate


def human_scores(name: str) -> dict[str, float]:
    """Human rater scores of a task (0-100): BIG-bench's average and expert raters, or the paper's."""
    source, _, task = name.partition("/")
    if source == "bigbench":
        return bigbench.human_baseline(task, bigbench.preferred_metric(task))
    return paper_qa.HUMAN.get(name, {})


def check_task_name(name: str) -> None:
    """Raise a ValueError naming the allowed values when `name` is not a known task."""
    source, _, task = name.partition("/")
    if source == "bigbench":
        available = bigbench.available()
        if task not in available:
            # the five nearest names, however far: a short task list may hold nothing within 0.5
            close = difflib.get_close_matches(task, available, n=5, cutoff=0.5) or \
                difflib.get_close_matches(task, available, n=5, cutoff=0.0)
            hint = (f"the closest: {', '.join('bigbench/' + c for c in close)}" if close else
                    f"{len(available)} tasks, listed by jdlib.data.bigbench.available()")
            raise ValueError(f"task={name!r}: no BIG-bench JSON task {task!r}; {hint}")
    elif name not in hub.SOURCES and not paper_qa.is_known(name):
        raise ValueError(f"task={name!r} is not known: use bigbench/<task>, mmlu, mmlu/<subject>, "
                         f"{', '.join(paper_qa.SOURCES[1:])} or one of {', '.join(sorted(hub.SOURCES))}")


__all__ = ["Task", "load_task", "check_task_name", "human_scores"]
