"""Run a grid of cells against the results store: finished cells are skipped, so sweeps resume.

Cells run in this process (`executor="local"`) or as tasks on Dask workers (see
`check_executor`); either way this process alone writes the store, one whole row as each cell
finishes, and claims each cell before it is computed, so two runs on one store split the grid
and compute no cell twice.
"""
from __future__ import annotations

import atexit
import hashlib
import logging
import os
import re
import socket
import threading
import time
import uuid
import warnings
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any, Callable

import pandas as pd
import torch
from tqdm import tqdm

from .results import ResultsStore, StoreError, cell_key, check_store, provenance

Runner = Callable[[dict], dict]
EXECUTORS = ("'local' (cells run in this process), 'local-gpus' (one Dask worker per visible GPU), "
             "'local-gpus:K' (K workers per visible GPU), 'local-cpus:N' (N Dask worker processes) "
             "or 'dask://HOST:PORT' (a running Dask scheduler)")
RESERVED = ("provenance", "outcomes")  # keys of a runner's metrics that are not metrics (see run_grid)

_STORED_ONLY: ContextVar[bool] = ContextVar("stored_only", default=False)


class NotInStore(LookupError):
    """A grid with cells missing from the store, met inside `stored_only()`."""

    def __init__(self, setting: str, missing: int, total: int, path: object):
        super().__init__(f"{setting}: {missing} of {total} cells are not in {path}")
        self.setting, self.missing, self.total = setting, missing, total


def reading_only() -> bool:
    """Whether the sweeps run now compute nothing (inside `stored_only()`)."""
    return _STORED_ONLY.get()


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


# -- executors ---------------------------------------------------------------------------------

def _visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them."""
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    if named is not None:
        return [g.strip() for g in named.split(",") if g.strip()][:torch.cuda.device_count()]
    return [str(i) for i in range(torch.cuda.device_count())]


def check_executor(value: str) -> None:
    """Raise ValueError naming `executor` unless `value` is one of the forms in EXECUTORS
    ('local-gpus' also needs a visible GPU)."""
    if not isinstance(value, str):
        raise ValueError(f"executor must be a string, one of {EXECUTORS}; got {value!r}")
    if value == "local":
        return
    if re.fullmatch(r"local-gpus(:[1-9][0-9]*)?", value):
        if not _visible_gpus():
            raise ValueError(f"executor={value!r} needs a visible GPU and torch sees none "
                             f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); "
                             "use 'local' or 'local-cpus:N'")
        return
    if re.fullmatch(r"local-cpus:[1-9][0-9]*", value):
        return
    address = re.fullmatch(r"dask://([^\s:/]+):([0-9]{1,5})", value)
    if address and 0 < int(address[2]) < 65536:
        return
    raise ValueError(f"executor={value!r} is not one of {EXECUTORS}")


_CLIENTS: dict[str, Any] = {}  # executor -> distributed.Client, one per executor for this process


def _client(executor: str):
    """The Dask client of `executor`, starting its local cluster on first use (kept until exit,
    so later grids reuse the workers and the runners they hold)."""
    client = _CLIENTS.get(executor)
    if client is not None and client.status == "running":
        return client
    import dask
    from distributed import Client, LocalCluster, Nanny, Scheduler, SpecCluster

    if executor.startswith("dask://"):
        address = "tcp://" + executor.removeprefix("dask://")
        try:
            client = Client(address)
        except OSError as e:  # the connection's timeout included
            raise ConnectionError(f"executor={executor!r}: no Dask scheduler answers at {address} ({e})") from e
    else:
        # A small model leaves a GPU mostly idle between kernels: K workers per GPU fill the gaps.
        per_gpu = int(executor.split(":")[1]) if executor.startswith("local-gpus:") else 1
        gpus = [g for g in _visible_gpus() for _ in range(per_gpu)] if executor.startswith("local-gpus") else []
        n = len(gpus) or int(executor.split(":")[1])
        threads = str(max(1, (os.cpu_count() or 1) // n))  # math threads per worker (Dask's default: 1)
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
        common = {"nthreads": 1, "silence_logs": logging.ERROR, "dashboard": False, "host": "127.0.0.1"}
        # Dask sets its thread caps in this process's environment too; pass ours to the workers instead.
        with dask.config.set({"distributed.nanny.pre-spawn-environ": {"MALLOC_TRIM_THRESHOLD_": 65536}}):
            if gpus:  # SpecCluster (LocalCluster's base): LocalCluster gives every worker the same env
                workers = {i: {"cls": Nanny, "options": {**common, "resources": {"GPU": 1},
                                                         "env": {**env, "CUDA_VISIBLE_DEVICES": gpu}}}
                           for i, gpu in enumerate(gpus)}
                cluster = SpecCluster(workers=workers, silence_logs=logging.ERROR,
                                      scheduler={"cls": Scheduler, "options": {"host": "127.0.0.1",
                                                                               "dashboard": False}})
            else:
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None, silence_logs=logging.ERROR,
                                       env=env)
        client = Client(cluster)
        client.wait_for_workers(n)
    _CLIENTS[executor] = client
    return client


@atexit.register
def _close_clients() -> None:
    for client in _CLIENTS.values():
        cluster = client.cluster
        with suppress(Exception):  # at exit, a cluster already gone is no error
            client.close()
            if cluster is not None:
                cluster.close()
    _CLIENTS.clear()


def _compute(run_cell: Runner, cell: dict) -> dict:
    """Run one cell: its metrics, provenance and outcomes (a runner's reserved keys popped out)."""
    start = time.perf_counter()
    metrics = dict(run_cell(cell))
    extra = metrics.pop("provenance", None) or {}
    outcomes = metrics.pop("outcomes", None)
    stamp = provenance(time.perf_counter() - start)
    clash = sorted(set(extra) & set(stamp))
    if clash:
        raise ValueError(f"a runner's 'provenance' may not set {clash}: run_grid records them")
    return {"metrics": metrics, "provenance": {**stamp, **extra}, "outcomes": outcomes}


_WORKER_RUNNER: dict[str, Runner] = {}  # in a worker process: token of the factory -> its runner


def _compute_on_worker(token: str, make_runner: Callable[[], Runner], cell: dict) -> dict:
    """A Dask task: run `cell` with this worker's runner, built once per factory (one at a time,
    so a worker holds one model)."""
    if token not in _WORKER_RUNNER:
        _WORKER_RUNNER.clear()
        _WORKER_RUNNER[token] = make_runner()
    result = _compute(_WORKER_RUNNER[token], cell)
    result["provenance"]["worker"] = f"{socket.gethostname()}:{os.getpid()}"
    return result


class _Local:
    """Cells run one at a time in this process."""

    def __init__(self, make_runner: Callable[[], Runner]):
        self.make_runner = make_runner
        self.run_cell: Runner | None = None
        self.queue: deque[tuple[str, dict]] = deque()

    def slots(self) -> int:
        return 1

    def submit(self, key: str, cell: dict) -> None:
        self.queue.append((key, cell))

    def next_result(self) -> tuple[str, dict]:
        key, cell = self.queue.popleft()
        self.run_cell = self.run_cell or self.make_runner()  # built only when a cell is to run
        return key, _compute(self.run_cell, cell)

    def close(self) -> None:
        self.queue.clear()


class _Dask:
    """Cells run as tasks on the workers of a Dask cluster, in the order they are submitted."""

    def __init__(self, executor: str, make_runner: Callable[[], Runner]):
        import cloudpickle
        from distributed import as_completed

        try:
            self.token = hashlib.sha256(cloudpickle.dumps(make_runner)).hexdigest()[:16]
        except Exception as e:
            raise ValueError(f"executor={executor!r} sends the runner factory to workers, but make_runner "
                             f"cannot be pickled: {e}") from e
        self.make_runner = make_runner
        self.client = _client(executor)
        self.client.wait_for_workers(1)
        workers = self.client.scheduler_info()["workers"].values()
        self.gpu = any(w.get("resources", {}).get("GPU") for w in workers)
        self.pending = as_completed()
        self.keys: dict[Any, str] = {}

    def slots(self) -> int:
        """Cells in flight: twice the cells the workers run at once, so none idles between two."""
        workers = self.client.scheduler_info()["workers"].values()
        running = sum(int(w.get("resources", {}).get("GPU", 0)) if self.gpu else w["nthreads"] for w in workers)
        return max(2, 2 * running)

    def submit(self, key: str, cell: dict) -> None:
        future = self.client.submit(_compute_on_worker, self.token, self.make_runner, cell, pure=False,
                                    key=f"jdlib-cell-{key}-{uuid.uuid4().hex[:8]}",
                                    resources={"GPU": 1} if self.gpu else None)
        self.keys[future] = key
        self.pending.add(future)

    def next_result(self) -> tuple[str, dict]:
        future = next(self.pending)
        return self.keys.pop(future), future.result()  # a lost worker's cell is rerun by Dask

    def close(self) -> None:
        self.pending.clear()
        for future in self.keys:
            future.cancel()
        self.keys.clear()


@contextmanager
def _heartbeat(store: ResultsStore) -> Iterator[None]:
    """Renew this process's claims while the grid runs, so a long cell's claim stays live."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(store.lease_s / 4):
            try:
                store.heartbeat()
            except StoreError as e:  # a missed beat: at worst another run takes over the cell
                warnings.warn(f"could not renew the claims: {e}")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_grid(setting: str, cells: list[dict], make_runner: Callable[[], Runner], store: ResultsStore,
             progress: bool = True, key_setting: str | None = None, executor: str = "local",
             poll_s: float = 2.0) -> pd.DataFrame:
    """Run every cell not yet in `store`, writing one row as each finishes; return all the grid's rows.

    Rows are labelled `setting`; a cell's key hashes `key_setting` (default `setting`) with its
    config, so a sweep that reruns another setting's cells (the true-gem ablation reruns Setting
    1 and 5 cells with more transfer modes) passes that setting's name and shares its rows. A
    shared row keeps the label of the sweep that ran it first. `make_runner()` makes the callable
    that runs a cell (cell -> metrics); it is called only when a cell is to run: once here with
    `executor="local"`, once per worker process otherwise (it must then be picklable, and its
    runner is kept by the worker for later grids with the same factory).

    A runner's metrics may carry two reserved keys: "provenance", a dict merged into the row's
    provenance (timings such as compress_seconds, whether a cache was hit), and "outcomes", the
    cell's per-question outcomes (a 1-D sequence of floats), stored beside the row (see
    `ResultsStore.outcomes`).

    Cells are submitted in the order given (settings group cells that share a compressed state).
    Each is claimed before it is computed: cells claimed by another live run are skipped, and
    once its own cells are done this run waits for their rows (polling every `poll_s` seconds),
    taking over any whose claimer died. A run that fails releases its claims, and removes the
    store file if it created it and the store holds no row.
    """
    check_executor(executor)
    keys = [cell_key({"setting": key_setting or setting, **cell}) for cell in cells]
    done = store.keys()
    by_key = dict(zip(keys, cells))  # a cell listed twice runs once
    todo = deque((k, c) for k, c in by_key.items() if k not in done)
    if todo and _STORED_ONLY.get():
        raise NotInStore(setting, len(todo), len(cells), store.path)
    if not todo:
        if progress:  # say that the grid is whole: nothing runs
            tqdm(total=0, desc=f"{setting}: 0 of {len(cells)} cells to run").close()
        return store.frame(keys)
    check_store(store.path, write=True)
    pool = _Local(make_runner) if executor == "local" else _Dask(executor, make_runner)
    bar = tqdm(total=len(todo), desc=f"{setting}: {len(todo)} of {len(cells)} cells to run", disable=not progress)
    others: dict[str, dict] = {}  # cells claimed by another run
    in_flight = 0
    try:
        with _heartbeat(store):
            while todo or in_flight or others:
                slots = pool.slots()
                while todo and in_flight < slots:
                    key, cell = todo.popleft()
                    if store.claim(key):
                        pool.submit(key, cell)
                        in_flight += 1
                    else:
                        others[key] = cell
                if in_flight:
                    key, result = pool.next_result()
                    in_flight -= 1
                    store.put(key, setting, by_key[key], result["metrics"],
                              {**result["provenance"], "executor": executor}, result["outcomes"])
                    bar.update()
                    continue
                finished = others.keys() & store.keys()
                for key in finished:
                    del others[key]
                bar.update(len(finished))
                todo.extend((key, others.pop(key)) for key in store.claimable(list(others)))  # their claimer died
                if others and not todo:
                    bar.set_postfix_str(f"waiting for {len(others)} cells another run computes")
                    time.sleep(poll_s)
    except BaseException:
        pool.close()
        with suppress(StoreError):  # the store's own failure is the error to report
            store.release_all()
            store.discard_if_unused()
        raise
    finally:
        bar.close()
    return store.frame(keys)
