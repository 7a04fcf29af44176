"""Grids on Dask workers: the same rows as in this process, a lost worker costs only its cell.

The fake runner lives in this module, which Dask workers import by name (pytest puts tests/ on
sys.path, and the worker processes inherit it).
"""
import os
import time
from functools import partial

import numpy as np
import pytest
import torch

from jdlib.grid import check_executor, run_grid
from jdlib.results import ResultsStore

CELLS = [{"x": x} for x in range(8)]


class Squares:
    """A picklable fake runner. It logs each cell it finishes; with `die_at`, its worker process
    dies a second into that cell the first time (a marker file remembers that it did). (A worker
    that died the instant it finished a cell would also lose that cell's result before the driver
    fetched it: Dask would compute it again, and the driver would still write its row once.)"""

    def __init__(self, log, die_at=None, marker=None):
        self.log, self.die_at, self.marker = log, die_at, marker

    def __call__(self, cell: dict) -> dict:
        if cell["x"] == self.die_at and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            time.sleep(1.0)
            os._exit(1)
        time.sleep(0.05)
        with open(self.log, "a") as f:
            f.write(f"{cell['x']}\n")
        return {"score": cell["x"] ** 2, "outcomes": [cell["x"] % 2, 1, 0.5],
                "provenance": {"runner_pid": os.getpid()}}


@pytest.mark.parametrize("value", ["", "Local", "dask", "dask://", "dask://host", "dask://host:0",
                                   "dask://host:99999", "tcp://host:8786", "local-cpus", "local-cpus:0",
                                   "local-cpus:two", "gpus", None])
def test_a_bad_executor_is_refused_naming_executor(value, tmp_path):
    with pytest.raises(ValueError, match="executor"):
        check_executor(value)
    with pytest.raises(ValueError, match="executor"):
        run_grid("demo", CELLS, partial(Squares, tmp_path / "log"), ResultsStore(tmp_path / "s.sqlite"),
                 progress=False, executor=value)
    assert not (tmp_path / "log").exists() and not (tmp_path / "s.sqlite").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_local_gpus_without_a_gpu_is_refused():
    for value in ("local-gpus", "local-gpus:3"):
        with pytest.raises(ValueError, match=f"executor='{value}'.*GPU"):
            check_executor(value)


@pytest.mark.parametrize("value", ["local-gpus:0", "local-gpus:", "local-gpus:x", "local-cpus", "dask://h"])
def test_malformed_executors_are_refused_naming_the_forms(value):
    with pytest.raises(ValueError, match="local-gpus:K"):
        check_executor(value)


def test_good_executors_pass():
    for value in ("local", "local-cpus:2", "dask://scheduler.example.org:8786", "dask://10.0.0.5:8786"):
        check_executor(value)


def test_an_unpicklable_runner_factory_is_refused_before_any_work(tmp_path):
    lock = __import__("threading").Lock()
    with pytest.raises(ValueError, match="executor='local-cpus:2'.*pickle"):
        run_grid("demo", CELLS, lambda: lock, ResultsStore(tmp_path / "s.sqlite"), progress=False,
                 executor="local-cpus:2")
    assert not (tmp_path / "s.sqlite").exists()


def test_two_worker_processes_give_the_metrics_of_the_local_executor(tmp_path):
    local = ResultsStore(tmp_path / "local.sqlite")
    dask = ResultsStore(tmp_path / "dask.sqlite")
    expected = run_grid("demo", CELLS, partial(Squares, tmp_path / "local.log"), local, progress=False)
    got = run_grid("demo", CELLS, partial(Squares, tmp_path / "dask.log"), dask, progress=False,
                   executor="local-cpus:2")
    columns = ["key", "x", "score"]
    assert got[columns].sort_values("key").reset_index(drop=True).equals(
        expected[columns].sort_values("key").reset_index(drop=True))
    assert sorted(int(x) for x in (tmp_path / "dask.log").read_text().split()) == list(range(8))
    outcomes, local_outcomes = dask.outcomes(), local.outcomes()
    assert outcomes.keys() == local_outcomes.keys() and all(
        np.array_equal(outcomes[k], local_outcomes[k]) for k in outcomes)
    rows = dask.rows()
    assert {r["provenance"]["executor"] for r in rows} == {"local-cpus:2"}
    assert os.getpid() not in {r["provenance"]["runner_pid"] for r in rows}  # computed by the workers
    assert all(r["provenance"]["worker"].endswith(str(r["provenance"]["runner_pid"])) for r in rows)
    calls = []
    run_grid("demo", CELLS, lambda: calls.append, dask, progress=False, executor="local-cpus:2")
    assert calls == []  # resume: nothing left to run


def test_a_worker_killed_mid_sweep_leaves_every_row_exactly_once(tmp_path):
    log, marker = tmp_path / "calls.log", tmp_path / "died"
    store = ResultsStore(tmp_path / "s.sqlite")
    frame = run_grid("demo", CELLS, partial(Squares, log, die_at=3, marker=marker), store, progress=False,
                     executor="local-cpus:2")
    assert marker.exists()  # a worker did die in cell 3
    assert sorted(int(x) for x in log.read_text().split()) == list(range(8))  # every cell finished once
    assert sorted(frame["x"]) == list(range(8)) and len(store.keys()) == 8
    assert dict(zip(frame["x"], frame["score"])) == {x: x ** 2 for x in range(8)}
