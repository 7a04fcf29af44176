"""BIG-bench tasks and human rater scores from the PyPI package `bigbench` (installed --no-deps)."""
from __future__ import annotations

import functools
import json
import random
from pathlib import Path

import datasets
import pandas as pd

from .task import Task


def tasks_dir() -> Path:
    try:
        import bigbench
    except ImportError:
        raise ImportError(
            "the BIG-bench tasks come from the PyPI package bigbench: pip install --no-deps bigbench==1.0.0"
        ) from None
    return Path(bigbench.__file__).parent / "benchmark_tasks"


def available() -> list[str]:
    """Task names, and "task/subtask" for tasks split into subtasks."""
    root = tasks_dir()
    return sorted(str(p.parent.relative_to(root)) for p in root.glob("*/task.json")) + sorted(
        str(p.parent.relative_to(root)) for p in root.glob("*/*/task.json"))


@functools.lru_cache(maxsize=None)
def human_scores() -> dict[str, dict]:
    """BIG-bench's human rater scores: {"average": {task: {metric: score}}, "expert": {...}}."""
    return pd.read_pickle(tasks_dir() / "task_human_eval.pkl")


@functools.lru_cache(maxsize=8)
def _raw(name: str) -> dict:
    path = tasks_dir() / name / "task.json"
    if not path.exists():
        raise ValueError(f"task='bigbench/{name}' is not a BIG-bench JSON task; available: {', '.join(available())}")
    raw = json.loads(path.read_text())
    if "examples" not in raw:  # a task made of subtasks: all of their examples
        subtasks = [_raw(str(p.parent.relative_to(tasks_dir()))) for p in sorted(path.parent.glob("*/task.json"))]
        raw = {**subtasks[0], **raw, "examples": [e for sub in subtasks for e in sub["examples"]]}
    return raw


def preferred_metric(name: str) -> str:
    return _raw(name).get("preferred_score", "multiple_choice_grade")


def human_baseline(name: str, metric: str) -> dict[str, float]:
    scores = human_scores()
    task = name.split("/")[0]
    return {rater: float(scores[rater][task][metric]) for rater in ("average", "expert")
            if task in scores.get(rater, {}) and metric in scores[rater][task]}


def _record(example: dict) -> dict:
    if "target_scores" in example:
        options = list(example["target_scores"])
        scores = list(example["target_scores"].values())
        return {"text": example["input"], "options": options, "label": scores.index(max(scores))}
    target = example["target"]
    return {"text": example["input"], "answers": [target] if isinstance(target, str) else list(target)}


def load(name: str, seed: int = 0, validation_fraction: float = 0.2) -> Task:
    """A BIG-bench task with a seeded train/validation split (BIG-bench ships none).

    A multiple-choice task whose examples all offer the same options becomes classification
    over those options, which a task head can be fine-tuned on.
    """
    raw = _raw(name)
    records = [_record(e) for e in raw["examples"]]
    random.Random(seed).shuffle(records)
    if "answers" in records[0]:
        kind, labels = "generation", None
    else:
        option_sets = {tuple(r["options"]) for r in records}
        if len(option_sets) == 1:
            kind, labels = "classification", list(next(iter(option_sets)))
            records = [{"text": r["text"], "label": r["label"]} for r in records]
        else:
            kind, labels = "multiple_choice", None
    n_val = max(1, round(validation_fraction * len(records)))
    split = {"validation": records[:n_val], "train": records[n_val:]}
    return Task(f"bigbench/{name}", kind, datasets.Dataset.from_list(split["train"]),
                datasets.Dataset.from_list(split["validation"]), labels, raw.get("task_prefix", ""))
