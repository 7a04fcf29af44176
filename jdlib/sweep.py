"""Run the sweep a validated config describes: everything checkable first, then its grid through
the results store (finished cells are skipped, so sweeps resume)."""
from __future__ import annotations

import socket
from typing import Any

import pandas as pd

from .config import ConfigError, FinetuneConfig, SweepConfig
from .grid import reading_only, run_grid
from .models import check_model
from .results import ResultsStore, check_store
from .settings import finetuning, get

SCHEDULER_TIMEOUT_S = 5.0  # to reach a dask:// scheduler (Dask's own connect timeout is 30 s)


def check(config: SweepConfig) -> None:
    """What can be checked before the store is opened or a model loaded: the model, the executor's
    scheduler, the tasks' kinds and the levels against the tasks' data, the store's path."""
    setting = get(config.setting)
    if not reading_only():  # reading stored rows needs neither the model nor the data
        try:
            check_model(config.model)
            check_scheduler(config.executor)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if isinstance(config, FinetuneConfig):
            check_heads(config)
        if setting.check_data:
            setting.check_data(config)
    check_store(config.store_path, write=not reading_only())


def check_scheduler(executor: str) -> None:
    """Raise ValueError naming `executor` when nothing answers at its dask:// address."""
    if not executor.startswith("dask://"):
        return
    host, _, port = executor.removeprefix("dask://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=SCHEDULER_TIMEOUT_S).close()
    except OSError as e:
        raise ValueError(f"executor={executor!r}: no Dask scheduler answers at {host}:{port} ({e.strerror or e}); "
                         f"start one there (dask scheduler --port {port}) or use executor 'local'") from None


def check_heads(config: FinetuneConfig) -> None:
    """A fine-tuning sweep trains a task head: each task must be of a kind that has one."""
    for name in config.tasks:
        kind = finetuning.load_task(name).kind  # the task as the fine-tuning runner will read it
        if kind not in finetuning.HEADS:
            raise ConfigError(f"tasks: {name} is a {kind} task; {config.setting} fine-tunes a task head on each "
                              f"task, which needs a {' or '.join(finetuning.HEADS)} task")


def sweep(config: SweepConfig, progress: bool = True) -> Any:
    """Run the sweep a validated config describes (see `jdlib.settings.load`) and return its rows
    (the true gem: its two parts' rows)."""
    setting = get(config.setting)
    check(config)
    store = ResultsStore(config.store_path)
    parts = setting.parts(config)
    make_runner = setting.make_runner(config)
    rows = []
    for i, part in enumerate(parts):
        if setting.before_part:
            setting.before_part(store, config, parts, i)
        rows.append(with_outcomes(run_grid(config.setting, part.cells, make_runner, store, progress,
                                           key_setting=part.key_setting, executor=config.executor), store))
    return setting.finish(config, rows) if setting.finish else rows[0]


def with_outcomes(rows: pd.DataFrame, store: ResultsStore) -> pd.DataFrame:
    """The rows with an `outcomes` column: each cell's per-question outcomes where the store has
    them (None where it has not: rows computed before outcomes were kept)."""
    if rows.empty or "key" not in rows:
        return rows
    found = store.outcomes(list(rows["key"]))
    return rows.assign(outcomes=[found.get(k) for k in rows["key"]])
