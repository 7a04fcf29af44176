"""The true-gem ablation (the paper's Figures 8-9): is the knowledge in the small weights lost for good?

Four transfer modes from the same pre-trained model: dense transfer (the baseline), dense
transfer with the small weights frozen at their pre-trained values (dense_freeze), sparse
transfer (pruned, held at zero) and sparse-to-dense transfer (pruned, then free to regrow),
across sparsity, within a task (fractions of the fine-tuning data, as Setting 1) and across
tasks (the human-model gap, as Setting 5).

The two parts are Setting 1 and Setting 5 grids with more transfer modes: their cells are made
by `setting1.cells` and `transfer_cells`, keyed as those settings' cells, so a row either
setting has already run (dense, sparse) is reused and only the other modes run. At paper scale the
across-task tasks (CommonsenseQA, WinoGrande) are multiple choice: `FinetuneRunner` fine-tunes
them with a multiple-choice head, under the same four modes and recipe.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import pandas as pd

from ..config import ConfigError, FinetuneConfig, param
from ..results import ResultsStore, cell_key
from . import setting1, setting5
from .finetuning import FinetuneRunner, transfer_cells
from .setting1 import Setting1Config
from .setting5 import RATERS, Setting5Config
from .spec import Part, Setting

TRANSFERS = ["dense_freeze", "sparse", "sparse_to_dense"]


@dataclass
class TrueGemConfig(Setting1Config):
    """`tasks` and `fractions` make the within-task part; `gap_tasks` (with human rater scores) the
    across-task part, none to skip it. Dense transfer is the baseline of both and always runs."""

    transfer: list[str] = param(TRANSFERS, str, "the modes beside the dense baseline: " + ", ".join(TRANSFERS),
                                many=True, choices=TRANSFERS, role="grid")
    gap_tasks: list[str] = param([], str, "task names with human rater scores, or [] (no across-task part)",
                                 many=True, empty=True, role="grid")
    rater: str = param("average", str, choices=RATERS, role="analysis")

    def validate(self) -> None:
        super().validate()
        self.within().validate()
        if self.gap_tasks:
            self.across().validate()

    def _shared(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(FinetuneConfig) if f.name != "setting"}

    def within(self) -> Setting1Config:
        """The within-task part as a Setting 1 config."""
        return Setting1Config(setting="setting1", fractions=self.fractions, **self._shared())

    def across(self) -> Setting5Config:
        """The across-task part as a Setting 5 config (its tasks are `gap_tasks`)."""
        return Setting5Config(setting="setting5", rater=self.rater, **{**self._shared(), "tasks": self.gap_tasks})


class TrueGemResults(NamedTuple):
    within: pd.DataFrame  # Setting 1 rows: a `fraction` column
    across: pd.DataFrame  # Setting 5 rows: `human`, `dense_score` and `gap` columns


def share_full_data_rows(store: ResultsStore, label: str, cells: list[dict], key_setting: str,
                         other: str) -> int:
    """Copy into `store` the row of each cell not run yet whose twin in the other part is stored.

    A Setting 5 cell is the Setting 1 cell of its task at fraction 1 without the `fraction` field
    (FinetuneRunner reads a missing fraction as 1), so the same fine-tuning run would be done
    twice when a task is in both parts. The twin is found by key, so a cell that differs in any
    other field has none. A copied row keeps its provenance and names its source in
    `copied_from`. Returns the number of rows copied.
    """
    done = store.keys()
    copied = 0
    for cell in cells:
        key = cell_key({"setting": key_setting, **cell})
        if key in done or cell.get("fraction", 1.0) != 1.0:
            continue
        twin = {k: v for k, v in cell.items() if k != "fraction"} if "fraction" in cell else {**cell, "fraction": 1.0}
        source = cell_key({"setting": other, **twin})
        if source in done:
            row = store.rows([source])[0]
            store.put(key, label, cell, row["metrics"], {**row["provenance"], "copied_from": source},
                      outcomes=store.outcomes([source]).get(source))
            copied += 1
    return copied


def finish(config: TrueGemConfig, rows: list[pd.DataFrame]) -> TrueGemResults:
    """The two parts' rows; the across-task part with its tasks' human-model gaps."""
    within, across = rows
    if across.empty:
        across = pd.DataFrame(columns=["task", "seed", "transfer", "method", "pattern", "sparsity", "accuracy",
                                       "human", "dense_score", "gap"])
    else:
        across = setting5.with_gaps(across, config.rater)
    return TrueGemResults(within, across)


def parts(config: TrueGemConfig) -> list[Part]:
    """Setting 1's grid and Setting 5's, each keyed as that setting's cells."""
    return [Part("setting1", setting1.cells(config.within())),
            Part("setting5", transfer_cells(config.across()) if config.gap_tasks else [])]


SETTING = Setting(
    name="true_gem", title="The true gem: is the knowledge in small weights lost for good?", config=TrueGemConfig,
    level="fraction", order=setting1.ORDER, kind="finetune", parts=parts,
    make_runner=lambda config: partial(FinetuneRunner, config), in_c1=False, finish=finish,
    before_part=lambda store, config, parts, i: share_full_data_rows(
        store, config.setting, parts[i].cells, parts[i].key_setting, parts[1 - i].key_setting))
