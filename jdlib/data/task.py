"""The common view of a downstream task, whatever its source."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import datasets
import numpy as np


def majority_rate(labels: Iterable) -> float:
    """The share of the most frequent gold label: the accuracy of a model that always answers it."""
    values = list(labels)
    if not values:
        raise ValueError("labels: none given")
    _, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
    return float(counts.max() / len(values))


@dataclass
class Task:
    """A task with train and validation splits as `datasets.Dataset`.

    Columns: `text` always; `label` (index of the gold option) for classification and
    multiple choice; `options` (per example) for multiple choice; `answers` for generation;
    optionally `template`, a multiple-choice row's cloze prompt over its `text` ("{text}").
    Classification tasks share one option list, `labels`.
    """

    name: str
    kind: str
    train: datasets.Dataset
    validation: datasets.Dataset
    labels: list[str] | None = None
    prefix: str = ""

    @property
    def num_labels(self) -> int | None:
        return len(self.labels) if self.labels else None

    @property
    def chance(self) -> float | None:
        """Accuracy by chance on the validation split: one in as many labels (a classification task), the
        mean of one in as many options as each question has (multiple choice); None for generation."""
        if self.kind == "classification":
            return 1.0 / len(self.labels)
        if self.kind == "multiple_choice":
            return float(sum(1.0 / len(o) for o in self.validation["options"]) / len(self.validation))
        return None

    @property
    def majority_rate(self) -> float | None:
        """The validation split's majority-class rate: a classifier that learned nothing can always answer
        the most frequent label, and a multiple-choice model the most frequent gold position (its options
        come in the split's order); None for generation, whose answers are neither."""
        return majority_rate(self.validation["label"]) if self.kind in ("classification", "multiple_choice") else None

    def cap(self, max_train: int | None = None, max_eval: int | None = None, seed: int = 0) -> "Task":
        """The same task with at most `max_train` / `max_eval` examples (a seeded random pool)."""
        def take(split: datasets.Dataset, n: int | None) -> datasets.Dataset:
            return split if n is None or n >= len(split) else split.shuffle(seed=seed).select(range(n))

        return Task(self.name, self.kind, take(self.train, max_train), take(self.validation, max_eval),
                    self.labels, self.prefix)
