"""The true-gem ablation (the paper's Figures 8-9): is the knowledge in the small weights lost for good?

Four transfer modes from the same pre-trained model: dense transfer (the baseline), dense
transfer with the small weights frozen at their pre-trained values (dense_freeze), sparse
transfer (pruned, held at zero) and sparse-to-dense transfer (pruned, then free to regrow),
across sparsity, within a task (fractions of the fine-tuning data, as Setting 1) and across
tasks (the human-model gap, as Setting 5).

The two parts are Setting 1 and Setting 5 grids with more transfer modes: their cells are made
by `setting1.cells` and `transfer_cells`, keyed as those settings' cells, so a row either
setting has already run (dense, sparse) is reused and only the other modes run.
"""
from __future__ import annotations

from functools import cache, partial

import dataclasses
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd

from ..config import ConfigError, SweepConfig
from ..results import ResultsStore, cell_key
from ..grid import run_grid
from . import setting1, setting5
from .finetuning import FinetuneRunner, transfer_cells
from .setting1 import Setting1Config
from .setting5 import Setting5Config

TRANSFERS = ["dense_freeze", "sparse", "sparse_to_dense"]


@dataclass
class TrueGemConfig(Setting1Config):
    """`tasks` and `fractions` make the within-task part; `gap_tasks` (with human rater scores) the
    across-task part, none to skip it. Dense transfer is the baseline of both and always runs."""

    transfer: list[str] = field(default_factory=lambda: list(TRANSFERS))
    gap_tasks: list[str] = field(default_factory=list)
    rater: str = "average"

    LIST_FIELDS = Setting1Config.LIST_FIELDS + ("gap_tasks",)

    def validate(self) -> None:
        if "dense" in self.transfer:
            raise ConfigError("transfer lists 'dense': dense transfer is the baseline and always runs; "
                              f"list the other modes, e.g. {TRANSFERS}")
        self.within().validate()
        if self.gap_tasks:
            self.across().validate()

    def _shared(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(SweepConfig) if f.name != "setting"}

    def within(self) -> Setting1Config:
        """The within-task part as a Setting 1 config."""
        return Setting1Config(setting="setting1", fractions=self.fractions, **self._shared())

    def across(self) -> Setting5Config:
        """The across-task part as a Setting 5 config (its tasks are `gap_tasks`)."""
        return Setting5Config(setting="setting5", rater=self.rater, **{**self._shared(), "tasks": self.gap_tasks})


class TrueGemResults(NamedTuple):
    within: pd.DataFrame  # Setting 1 rows: a `fraction` column
    across: pd.DataFrame  # Setting 5 rows: `human`, `dense_score` and `gap` columns


def grids(config: TrueGemConfig) -> dict[str, list[dict]]:
    """The cells of each part, by the setting whose keys they share."""
    return {"setting1": setting1.cells(config.within()),
            "setting5": transfer_cells(config.across()) if config.gap_tasks else []}


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
            store.put(key, label, cell, row["metrics"], {**row["provenance"], "copied_from": source})
            copied += 1
    return copied


def run(config: TrueGemConfig, progress: bool = True, run_cell=None) -> TrueGemResults:
    """Run both parts (rows labelled true_gem unless the other setting ran them first); a task in
    both parts is fine-tuned once on all its data (see `share_full_data_rows`). `run_cell`
    replaces the fine-tuning runner (tests)."""
    store = ResultsStore(config.store_path)
    make_runner = (lambda: run_cell) if run_cell else cache(partial(FinetuneRunner, config))  # one runner, both parts
    cells = grids(config)
    share_full_data_rows(store, config.setting, cells["setting1"], "setting1", "setting5")
    within = run_grid(config.setting, cells["setting1"], make_runner, store, progress, key_setting="setting1")
    share_full_data_rows(store, config.setting, cells["setting5"], "setting5", "setting1")
    across = pd.DataFrame(columns=["task", "seed", "transfer", "method", "pattern", "sparsity", "accuracy",
                                   "human", "dense_score", "gap"])
    if cells["setting5"]:
        across = setting5.with_gaps(run_grid(config.setting, cells["setting5"], make_runner, store, progress,
                                             key_setting="setting5"), config.rater)
    return TrueGemResults(within, across)
