import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from jdlib.results import SCHEMA_VERSION, ResultsStore, StoreError, cell_key, check_store, provenance
from jdlib.grid import NotInStore, run_grid, stored_only

ROOT = Path(__file__).resolve().parents[1]


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


FORK = multiprocessing.get_context("fork")  # a forked run starts in no time: jdlib is already imported


def slow_sweep(path, log, cells=12, poll_s=2.0):
    """A sweep in another process: each cell takes 0.2 s and is logged as 'x pid' once computed."""
    def run_cell(cell):
        time.sleep(0.2)
        with open(log, "a") as f:
            f.write(f"{cell['x']} {os.getpid()}\n")
        return {"score": cell["x"] * 10}

    frame = run_grid("sweep", [{"x": x} for x in range(cells)], lambda: run_cell, ResultsStore(path), progress=False,
                     poll_s=poll_s)
    os._exit(0 if sorted(frame["score"]) == [x * 10 for x in range(cells)] else 1)


def test_sweep_killed_mid_way_resumes_without_lost_or_corrupt_rows(tmp_path):
    path, log = tmp_path / "r.sqlite", tmp_path / "calls.log"
    proc = FORK.Process(target=slow_sweep, args=(path, log))
    proc.start()
    deadline = time.time() + 60
    while time.time() < deadline and (not path.exists() or len(ResultsStore(path).keys()) < 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    before = len(ResultsStore(path).keys())
    assert 4 <= before < 12
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    calls = []
    frame = run_grid("sweep", [{"x": x} for x in range(12)], lambda: (lambda c: calls.append(c) or {"score": c["x"] * 10}),
                     ResultsStore(path), progress=False)
    assert len(calls) == 12 - before  # the killed run's claim on its last cell is void: its process is dead
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
    from jdlib.analysis import claims, verdicts  # the claims' home: imported here so the store's tests stand alone
    from jdlib.settings import finetuning, nofinetune

    for runner in (finetuning, nofinetune):
        monkeypatch.setattr(runner, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    results = verdicts.all_claims("ci", store=str(tmp_path / "empty.sqlite"), compute=False)
    assert {r["verdict"] for r in results.values()} == {claims.NOT_RUN}
    assert verdicts.summary(results)["verdict"].tolist() == [claims.NOT_RUN] * len(results)
    assert sorted(results) == ["c1", "c2", "c3", "c4", "c5", "s1"]
    assert not (tmp_path / "empty.sqlite").exists()


def test_a_copy_of_the_code_can_name_its_commit(monkeypatch):
    from jdlib import results

    monkeypatch.setenv(results.COMMIT_ENV, "abc123")
    assert results.provenance(1.0)["git_commit"] == "abc123"
    monkeypatch.delenv(results.COMMIT_ENV)
    assert results.provenance(1.0)["git_commit"] != "abc123"


# -- the store's errors name its path; checking and reading create nothing --------------------

def square(cell):
    return {"score": cell["x"] ** 2}


def filled_store(path, n=20):
    store = ResultsStore(path)
    run_grid("demo", [{"x": x, "pad": "p" * 2000} for x in range(n)], lambda: square, store, progress=False)
    return store


def test_paths_that_are_not_stores_fail_naming_the_path(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("these are notes, not a results store\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    filled_store(tmp_path / "whole.sqlite")
    data = (tmp_path / "whole.sqlite").read_bytes()
    assert len(data) > 8192
    truncated = tmp_path / "truncated.sqlite"
    truncated.write_bytes(data[:len(data) // 2])
    stub = tmp_path / "stub.sqlite"
    stub.write_bytes(data[:40])
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    under_a_file = text / "s.sqlite"
    for path, why in [(text, "not a SQLite"), (folder, "directory"), (truncated, "truncated or corrupt"), (stub, "truncated or corrupt"),
                      (other, "no table 'cells'"), (under_a_file, "not a directory")]:
        for check in (ResultsStore, check_store):
            with pytest.raises(StoreError, match=re.escape(str(path)) + ".*" + why):
                check(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "notes.txt", "other.sqlite", "stub.sqlite",
                                                        "truncated.sqlite", "whole.sqlite"]


def test_checking_or_reading_a_store_creates_nothing(tmp_path):
    missing = tmp_path / "a" / "b" / "s.sqlite"
    check_store(missing)
    store = ResultsStore(missing)
    assert store.keys() == set() and store.rows() == [] and store.frame().empty and store.outcomes() == {}
    assert list(tmp_path.iterdir()) == []
    filled_store(tmp_path / "s.sqlite", n=3)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert before == ["s.sqlite"]
    check_store(tmp_path / "s.sqlite")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_failed_run_leaves_no_file_and_a_later_failure_keeps_the_rows(tmp_path):
    path = tmp_path / "new" / "dir" / "s.sqlite"

    def broken(cell):
        if cell["x"] >= 1:
            raise RuntimeError("the model did not load")
        return {"score": 0}

    with pytest.raises(RuntimeError, match="did not load"):
        run_grid("demo", [{"x": 1}, {"x": 2}], lambda: broken, ResultsStore(path), progress=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="did not load"):
        run_grid("demo", [{"x": 0}, {"x": 1}], lambda: broken, ResultsStore(path), progress=False)
    assert ResultsStore(path).frame()["x"].tolist() == [0]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # the failed run let go of its cell


# -- a full disk ---------------------------------------------------------------------------------
# A file-size limit (RLIMIT_FSIZE) makes writes beyond it fail as a full disk does, with no mount.

def fill_the_disk(limit):
    """From here on this process cannot write a file beyond `limit` bytes."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def rows_then_full_disk_mid_checkpoint(path, rows):
    """A run that stored `rows` rows and met a full disk while writing its log back into the file:
    the file ends up shorter than its header says, the rows whole in the write-ahead log."""
    store = ResultsStore(path)
    store.put("first", "demo", {"x": -1}, {"score": 0}, provenance(0.0))
    held = sqlite3.connect(path)  # while it reads the store, closing the store's connections writes nothing back
    held.execute("PRAGMA wal_autocheckpoint = 0")
    held.execute("SELECT COUNT(*) FROM cells").fetchone()
    for x in range(1, rows):
        store.put(cell_key({"setting": "demo", "x": x}), "demo", {"x": x}, square({"x": x}), provenance(0.0),
                  outcomes=[0.1] * 1000)  # float32: 4 kB a row, so the file must grow
    fill_the_disk(path.stat().st_size)
    try:
        held.execute("PRAGMA wal_checkpoint")
    except sqlite3.Error:
        os._exit(0)
    os._exit(1)  # the disk was not full: no test


def check_on_a_full_disk(path, limit, sent):
    fill_the_disk(limit)
    try:
        check_store(path)
    except StoreError as e:
        sent.send(str(e))
    os._exit(0)


def test_a_store_whose_last_pages_are_still_in_its_log_resumes(tmp_path):
    path = tmp_path / "s.sqlite"
    run = FORK.Process(target=rows_then_full_disk_mid_checkpoint, args=(path, 17))
    run.start()
    run.join()
    assert run.exitcode == 0
    header = path.read_bytes()[:100]
    promised = int.from_bytes(header[16:18], "big") * int.from_bytes(header[28:32], "big")
    assert path.stat().st_size < promised and Path(f"{path}-wal").stat().st_size > 0  # what the user met
    received, sent = FORK.Pipe(duplex=False)
    # (a limit counts per file: below its size, the 32 kB -shm could not be rewritten, which a full disk allows)
    still_full = FORK.Process(target=check_on_a_full_disk, args=(path, promised - 1, sent))
    still_full.start()
    still_full.join()
    assert received.poll() and "-wal cannot be written back" in received.recv()  # before any compute
    check_store(path, write=False)
    check_store(path)  # with room: the log is written back into the file
    assert path.stat().st_size >= promised
    assert len(ResultsStore(path).keys()) == 17
    calls = []
    frame = run_grid("demo", [{"x": x} for x in range(1, 20)], lambda: (lambda c: calls.append(c["x"]) or square(c)),
                     ResultsStore(path), progress=False)
    assert calls == [17, 18, 19] and frame["score"].tolist() == [x * x for x in range(1, 20)]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def create_on_a_full_disk(path, limit, removable, sent):
    fill_the_disk(limit)
    if not removable:
        def refuse(self, missing_ok=False):
            raise PermissionError(f"cannot remove {self}")

        Path.unlink = refuse
    try:
        run_grid("demo", [{"x": 1}], lambda: square, ResultsStore(path), progress=False)
    except StoreError as e:
        sent.send(str(e))
    os._exit(0)


@pytest.mark.parametrize("limit", [0, 4096, 8192])  # SQLite stops at the file, at its log, at its index
@pytest.mark.parametrize("removable", [True, False])
def test_a_store_the_disk_has_no_room_for_leaves_no_file_or_says_so(tmp_path, limit, removable):
    path = tmp_path / "new" / "s.sqlite"
    received, sent = FORK.Pipe(duplex=False)
    run = FORK.Process(target=create_on_a_full_disk, args=(path, limit, removable, sent))
    run.start()
    run.join()
    assert received.poll()
    message = received.recv()
    assert str(path) in message
    if removable:
        assert "is removed" in message and list(tmp_path.iterdir()) == []
    else:
        assert "could not be removed" in message and path.exists()


# -- schema versions ---------------------------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    setting TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    provenance TEXT NOT NULL,
    finished TEXT NOT NULL DEFAULT (datetime('now'))
)
"""


def old_store(path, cells):
    """A store as jdlib wrote it before schema versions, timings among the metrics."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(OLD_SCHEMA)
        for cell in cells:
            prov = {"git_commit": "0ld", "device": "cpu", "wall_time_s": 1.0}
            metrics = {"score": cell["x"] ** 2, "compress_seconds": 0.5 + cell["x"]}
            db.execute("INSERT INTO cells (key, setting, config, metrics, provenance) VALUES (?,?,?,?,?)",
                       (cell_key({"setting": "demo", **cell}), "demo", json.dumps(cell), json.dumps(metrics),
                        json.dumps(prov)))
    db.close()


def test_an_old_store_reads_as_migrated_and_its_first_write_migrates_it(tmp_path):
    path = tmp_path / "old.sqlite"
    cells = [{"x": x} for x in range(3)]
    old_store(path, cells)
    store = ResultsStore(path)
    frame = store.frame()
    assert "compress_seconds" not in frame.columns and sorted(frame["score"]) == [0, 1, 4]
    assert sorted(r["provenance"]["compress_seconds"] for r in store.rows()) == [0.5, 1.5, 2.5]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 0  # reading rewrote nothing

    calls = []
    frame = run_grid("demo", cells + [{"x": 3}], lambda: (lambda c: calls.append(c) or square(c)), store,
                     progress=False)
    assert calls == [{"x": 3}] and sorted(frame["score"]) == [0, 1, 4, 9]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        raw = [json.loads(m) for (m,) in db.execute("SELECT metrics FROM cells")]
        assert {"claims", "outcomes"} <= {n for (n,) in db.execute("SELECT name FROM sqlite_master")}
    assert all("compress_seconds" not in m for m in raw)
    assert sorted(r["provenance"].get("compress_seconds", 0) for r in store.rows()) == [0, 0.5, 1.5, 2.5]


def test_the_committed_store_is_migrated_with_its_timings_in_provenance():
    committed = ROOT / "results" / "full.sqlite"
    if not committed.exists():
        pytest.skip("no committed store")
    with sqlite3.connect(committed) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        metrics = [json.loads(m) for (m,) in db.execute("SELECT metrics FROM cells")]
        provenance = [json.loads(p) for (p,) in db.execute("SELECT provenance FROM cells")]
    assert version == SCHEMA_VERSION
    assert not any("compress_seconds" in m for m in metrics)
    assert sum("compress_seconds" in p for p in provenance) > 0


def test_a_store_of_a_newer_schema_is_refused_naming_path_and_versions(tmp_path):
    path = tmp_path / "s.sqlite"
    filled_store(path, n=2)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 6}")
    for check in (ResultsStore, check_store):
        with pytest.raises(StoreError, match=rf"{re.escape(str(path))}.*version {SCHEMA_VERSION + 6}.*{SCHEMA_VERSION}"):
            check(path)


# -- claims: two runs on one store compute no cell twice ----------------------------------------

def test_two_runs_on_one_store_compute_no_cell_twice(tmp_path):
    path, log = tmp_path / "s.sqlite", tmp_path / "calls.log"
    runs = [FORK.Process(target=slow_sweep, args=(path, log, 12, 0.1)) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=120)
    assert [run.exitcode for run in runs] == [0, 0]  # each returned every row
    computed = [line.split() for line in log.read_text().splitlines()]
    assert sorted(int(x) for x, _ in computed) == list(range(12))  # each cell once, by one of the runs
    assert len(ResultsStore(path).keys()) == 12


def claim_and_die(path, claimed):
    """Another run: claims x=1 and x=2, stores x=1 after a while, and dies holding x=2."""
    store = ResultsStore(path)
    first, second = (cell_key({"setting": "demo", "x": x}) for x in (1, 2))
    assert store.claim(first) and store.claim(second)
    claimed.set()
    time.sleep(1.0)
    store.put(first, "demo", {"x": 1}, {"score": -1}, provenance(0.0))
    os._exit(0)


def test_a_run_waits_for_cells_another_run_holds_and_takes_over_those_of_a_dead_run(tmp_path):
    path = tmp_path / "s.sqlite"
    claimed = FORK.Event()
    other = FORK.Process(target=claim_and_die, args=(path, claimed))
    other.start()
    assert claimed.wait(timeout=60)
    calls = []
    frame = run_grid("demo", [{"x": x} for x in range(3)], lambda: (lambda c: calls.append(c["x"]) or square(c)),
                     ResultsStore(path), progress=False, poll_s=0.1)
    other.join()
    assert calls == [0, 2]
    assert dict(zip(frame["x"], frame["score"])) == {0: 0, 1: -1, 2: 4}


def test_a_claim_binds_within_its_lease_and_not_after(tmp_path):
    store = ResultsStore(tmp_path / "s.sqlite", lease_s=30)
    key = cell_key({"x": 1})
    assert store.claim(key) and store.claim(key)  # a process may renew its own claim
    with sqlite3.connect(store.path) as db:  # another host's run, whose process this host cannot see
        db.execute("UPDATE claims SET owner = 'elsewhere:1'")
    assert not store.claim(key) and store.claimable([key]) == []
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE claims SET heartbeat = heartbeat - 31")
    assert store.claimable([key]) == [key] and store.claim(key)
    store.release(key)
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0


# -- what a row records ------------------------------------------------------------------------

@pytest.mark.parametrize("values, encoding, exact", [
    ([1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1, 1], "bits", True),
    ([True, False, True], "bits", True),
    ([0.25, 0.5, 1.0, 0.0, 0.75], "float16", True),
    ([0.1, 1 / 3, 0.9999], "float32", False),
])
def test_outcomes_round_trip_compactly(tmp_path, values, encoding, exact):
    store = ResultsStore(tmp_path / "s.sqlite")
    store.put("k", "demo", {"x": 1}, {"accuracy": 0.5}, {"git_commit": "c", "device": "cpu", "wall_time_s": 0.0},
              outcomes=values)
    store.put("other", "demo", {"x": 2}, {"accuracy": 0.5}, {"git_commit": "c", "device": "cpu", "wall_time_s": 0.0})
    with sqlite3.connect(store.path) as db:
        stored, length, data = db.execute("SELECT encoding, length, data FROM outcomes WHERE key = 'k'").fetchone()
    assert (stored, length) == (encoding, len(values))
    assert len(data) == {"bits": -(-len(values) // 8), "float16": 2 * len(values), "float32": 4 * len(values)}[encoding]
    back = store.outcomes(["k", "other"])
    assert list(back) == ["k"] and back["k"].shape == (len(values),)
    expected = np.asarray(values, dtype=float)
    assert np.array_equal(back["k"], expected) if exact else np.allclose(back["k"], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="outcomes"):
        store.put("k", "demo", {}, {}, {}, outcomes=[[1, 0], [0, 1]])


def test_a_runners_provenance_and_outcomes_are_not_metrics(tmp_path):
    store = ResultsStore(tmp_path / "s.sqlite")

    def run_cell(cell):
        return {"accuracy": 0.5, "compress_seconds": 1.2, "outcomes": [1, 0, 1],
                "provenance": {"compression_cached": True, "eval_seconds": 0.3}}

    frame = run_grid("demo", [{"x": 1}], lambda: run_cell, store, progress=False)
    assert set(frame.columns) == {"x", "accuracy", "device", "git_commit", "wall_time_s", "key"}
    prov = store.rows()[0]["provenance"]
    assert prov["compression_cached"] is True and prov["eval_seconds"] == 0.3 and prov["compress_seconds"] == 1.2
    assert prov["executor"] == "local"
    assert store.outcomes()[frame["key"][0]].tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="git_commit"):
        run_grid("demo", [{"x": 2}], lambda: (lambda c: {"accuracy": 1, "provenance": {"git_commit": "x"}}), store,
                 progress=False)


def test_rows_from_other_code_are_listed(tmp_path):
    store = ResultsStore(tmp_path / "s.sqlite")
    store.put("old", "demo", {"x": 0}, {"score": 0}, {"git_commit": "0ld", "device": "cpu", "wall_time_s": 0.0})
    run_grid("demo", [{"x": 1}], lambda: square, store, progress=False)
    assert store.rows_from_other_code()["key"].tolist() == ["old"]
    assert store.rows_from_other_code(commit="0ld")["x"].tolist() == [1]
