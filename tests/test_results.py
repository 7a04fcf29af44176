import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from jdlib import verdicts
from jdlib.results import ResultsStore, cell_key
from jdlib.settings import finetuning, nofinetune
from jdlib.grid import NotInStore, run_grid, stored_only


def test_cell_key_ignores_key_order_and_sees_every_value():
    assert cell_key({"a": 1, "b": [1, 2]}) == cell_key({"b": [1, 2], "a": 1})
    assert cell_key({"a": 1, "b": 0.3}) != cell_key({"a": 1, "b": 0.30001})


def test_rows_carry_provenance_and_reruns_skip_finished_cells(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    calls = []

    def run_cell(cell):
        calls.append(cell["x"])
        return {"score": cell["x"] ** 2}

    cells = [{"x": x} for x in range(4)]
    frame = run_grid("demo", cells, lambda: run_cell, store, progress=False)
    assert sorted(frame["score"]) == [0, 1, 4, 9]
    assert {"git_commit", "device", "wall_time_s"} <= set(frame.columns)
    row = store.rows()[0]
    assert {"versions", "python", "device", "git_commit", "wall_time_s"} <= set(row["provenance"])
    run_grid("demo", cells + [{"x": 9}], lambda: run_cell, store, progress=False)
    assert calls == [0, 1, 2, 3, 9]


SWEEP = textwrap.dedent("""
    import sys, time
    from jdlib.results import ResultsStore
    from jdlib.grid import run_grid

    def run_cell(cell):
        time.sleep(0.3)
        print("ran", cell["x"], flush=True)
        return {"score": cell["x"] * 10}

    run_grid("resume", [{"x": x} for x in range(12)], lambda: run_cell, ResultsStore(sys.argv[1]), progress=False)
""")


def test_sweep_killed_mid_way_resumes_without_lost_or_corrupt_rows(tmp_path):
    path = tmp_path / "r.sqlite"
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP)
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and (not path.exists() or len(ResultsStore(path).keys()) < 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(ResultsStore(path).keys())
    assert 4 <= before < 12
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rerun = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, check=True)
    assert rerun.stdout.count("ran") == 12 - before
    frame = ResultsStore(path).frame()
    assert sorted(frame["score"]) == [x * 10 for x in range(12)]


def test_stored_only_reads_back_and_never_computes(tmp_path):
    store = ResultsStore(tmp_path / "s.sqlite")
    cells = [{"a": 1}, {"a": 2}]
    run_grid("x", cells[:1], lambda: (lambda cell: {"accuracy": 0.5}), store, progress=False)

    def refuse(cell):
        raise AssertionError("a cell was computed inside stored_only()")

    with stored_only():
        assert run_grid("x", cells[:1], lambda: refuse, store, progress=False)["accuracy"].tolist() == [0.5]
        with pytest.raises(NotInStore, match="1 of 2 cells"):
            run_grid("x", cells, lambda: refuse, store, progress=False)
    assert len(run_grid("x", cells, lambda: (lambda cell: {"accuracy": 0.1}), store, progress=False)) == 2


def test_claims_from_an_empty_store_without_computing_are_not_run(tmp_path, monkeypatch):
    for runner in (finetuning, nofinetune):
        monkeypatch.setattr(runner, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    results = verdicts.all_claims("ci", store=str(tmp_path / "empty.sqlite"), compute=False)
    assert {r["verdict"] for r in results.values()} == {verdicts.NOT_RUN}
    assert verdicts.summary(results)["verdict"].tolist() == [verdicts.NOT_RUN] * 5


def test_a_copy_of_the_code_can_name_its_commit(monkeypatch):
    from jdlib import results

    monkeypatch.setenv(results.COMMIT_ENV, "abc123")
    assert results.provenance(1.0)["git_commit"] == "abc123"
    monkeypatch.delenv(results.COMMIT_ENV)
    assert results.provenance(1.0)["git_commit"] != "abc123"
