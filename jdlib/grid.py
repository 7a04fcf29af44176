"""Run a grid of cells against the results store: finished cells are skipped, so sweeps resume."""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable

import pandas as pd
from tqdm import tqdm

from .results import ResultsStore, cell_key, provenance


_STORED_ONLY: ContextVar[bool] = ContextVar("stored_only", default=False)


class NotInStore(LookupError):
    """A grid with cells missing from the store, met inside `stored_only()`."""


@contextmanager
def stored_only() -> Iterator[None]:
    """Inside this block sweeps compute nothing: a grid with a cell missing from the store raises
    NotInStore before any cell runs (reading a committed store of long runs). A sweep may still
    copy a stored row to a twin key, as the true gem shares Setting 1 and 5 runs."""
    token = _STORED_ONLY.set(True)
    try:
        yield
    finally:
        _STORED_ONLY.reset(token)


def run_grid(setting: str, cells: list[dict], make_runner: Callable[[], Callable[[dict], dict]], store: ResultsStore,
             progress: bool = True, key_setting: str | None = None) -> pd.DataFrame:
    """Run every cell not yet in `store`, writing one row as each finishes; return all the grid's rows.

    Rows are labelled `setting`; a cell's key hashes `key_setting` (default `setting`) with its
    config, so a sweep that reruns another setting's cells (the true-gem ablation reruns Setting
    1 and 5 cells with more transfer modes) passes that setting's name and shares its rows. A
    shared row keeps the label of the sweep that ran it first. `make_runner()` makes the callable
    that runs a cell (cell -> metrics); it is called once, and only when a cell is to run.
    """
    keys = [cell_key({"setting": key_setting or setting, **cell}) for cell in cells]
    done = store.keys()
    todo = [(k, c) for k, c in zip(keys, cells) if k not in done]
    if todo and _STORED_ONLY.get():
        raise NotInStore(f"{setting}: {len(todo)} of {len(cells)} cells are not in {store.path}")
    bar = tqdm(todo, desc=f"{setting}: {len(todo)} of {len(cells)} cells to run", disable=not progress)
    run_cell = make_runner() if todo else None
    for key, cell in bar:
        start = time.perf_counter()
        metrics = run_cell(cell)
        store.put(key, setting, cell, metrics, provenance(time.perf_counter() - start))
    return store.frame(keys)

