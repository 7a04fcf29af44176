"""The declarative description of a setting: what a chapter, the sweep and the claims read.

The idea of lm-evaluation-harness's TaskConfig applied to experiments: a `Setting` names its
config class, the column of its difficulty level, the difficulty order the paper declares (with
the paper's sentence), how its grid of cells is built and run, and where the book shows it.
The scoring itself stays in Python, in the setting's module.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..config import SweepConfig

KINDS = ("finetune", "score")


@dataclass(frozen=True)
class DifficultyOrder:
    """How the paper ranks a setting's levels: `hardness(level)` grows with difficulty."""

    hardness: Callable[[Any], float]
    paper: str  # the paper's words that define the order
    describe: str  # the order in a few words, easiest to hardest

    def easiest_first(self, levels: Iterable) -> list:
        return sorted(pd.unique(pd.Series(list(levels))), key=self.hardness)

    def __call__(self, level) -> float:
        return self.hardness(level)


@dataclass(frozen=True)
class Part:
    """Cells of one grid, keyed as the cells of `key_setting` (the true gem shares Setting 1's and 5's)."""

    key_setting: str
    cells: list[dict]


@dataclass(frozen=True)
class Setting:
    """One setting (or ablation) of the book."""

    name: str
    title: str
    config: type[SweepConfig]
    level: str  # the column of the rows holding the difficulty level
    order: DifficultyOrder | None  # None: the compression chapter, whose knobs keep their settings' orders
    kind: str  # "finetune" or "score": does a cell fine-tune, or score the compressed pre-trained model
    parts: Callable[[SweepConfig], Sequence[Part]]
    make_runner: Callable[[SweepConfig], Callable[[], Callable[[dict], dict]]]
    across_tasks: bool = False  # the levels are tasks (Setting 5's human-model gap)
    in_c1: bool = True  # one of the paper's six difficulty settings, judged by C1
    variants: Callable[[dict], type[SweepConfig]] | None = None  # picks the config class from the values
    finish: Callable[[SweepConfig, list[pd.DataFrame]], Any] | None = None  # the rows of each part -> results
    check_data: Callable[[SweepConfig], None] | None = None  # checks against the tasks' data, before any model
    data_levels: Callable[[SweepConfig], list] | None = None  # the config's levels every task's data offers
    chance: Callable[[pd.DataFrame], pd.Series] | None = None  # accuracy by chance of each row, where it exists
    # before part i runs (store, config, parts, i): the true gem copies rows its two parts share
    before_part: Callable[[Any, SweepConfig, Sequence[Part], int], None] | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: use one of {', '.join(KINDS)}")

    @property
    def glue_prefix(self) -> str:
        return self.name

    @property
    def chapter(self) -> str:
        return self.name

    def config_class(self, values: dict) -> type[SweepConfig]:
        return self.variants(values) if self.variants else self.config
