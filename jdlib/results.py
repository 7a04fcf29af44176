"""The results store: one SQLite row per finished grid cell, keyed by a hash of its config.

A row is written in one transaction when its cell finishes, so a sweep killed at any point
(kill -9 included) leaves only whole rows, and the next run skips them. Next to a row the store
keeps the cell's per-question outcomes (compactly encoded) and, while the cell is being
computed, a claim naming the process computing it, so a second run on the same store computes
no cell twice.

Schema versions (in `PRAGMA user_version`):
- 0: the table `cells` alone (stores written before versions).
- 1: adds the tables `outcomes` and `claims`; timings are provenance, not metrics: a metric
  named in `TIMINGS` (`compress_seconds`) is moved into the row's provenance. Rows migrated from
  version 0 keep the seconds they recorded, which for a cell that reused a cached compression
  repeat the seconds of the cell that compressed.
A store of an older version is read as it is and migrated in place by its first write (or by
`migrate()`), so reading a committed store never rewrites it; a store of a newer version is
refused on open.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import torch

SCHEMA_VERSION = 1
TABLES = (
    """CREATE TABLE IF NOT EXISTS cells (
        key TEXT PRIMARY KEY,
        setting TEXT NOT NULL,
        config TEXT NOT NULL,
        metrics TEXT NOT NULL,
        provenance TEXT NOT NULL,
        finished TEXT NOT NULL DEFAULT (datetime('now')))""",
    """CREATE TABLE IF NOT EXISTS outcomes (
        key TEXT PRIMARY KEY,
        encoding TEXT NOT NULL,
        length INTEGER NOT NULL,
        data BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS claims (
        key TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        started REAL NOT NULL,
        heartbeat REAL NOT NULL)""",
)
TIMINGS = ("compress_seconds",)  # metric names that are provenance (see the module docstring)
CLAIM_LEASE_S = 600.0  # a claim whose owner gave no sign of life for this long is stale
SQLITE_MAGIC = b"SQLite format 3\x00"


class StoreError(Exception):
    """A results store that cannot be read or written; the message names its path."""


def cell_key(config: dict) -> str:
    """A stable hash of a cell's full config (key order and float formatting do not matter)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:32]


COMMIT_ENV = "JDLIB_GIT_COMMIT"  # names the commit of a copy of the code whose .git is missing or stale


def _git_commit() -> str:
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(wall_time_s: float) -> dict:
    """Where a row came from: code version, package versions, device and wall time."""
    versions = {}
    for pkg in ("torch", "transformers", "datasets", "accelerate", "scipy", "jdlib"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {"git_commit": _git_commit(), "python": platform.python_version(), "versions": versions,
            "device": device_name(), "wall_time_s": round(wall_time_s, 3)}


def split_timings(metrics: dict, provenance: dict) -> tuple[dict, dict]:
    """Move the timings found among `metrics` into `provenance` (see `TIMINGS`)."""
    moved = {k: metrics[k] for k in TIMINGS if k in metrics}
    if not moved:
        return metrics, provenance
    return {k: v for k, v in metrics.items() if k not in moved}, {**provenance, **moved}


def encode_outcomes(values: Sequence[float] | np.ndarray) -> tuple[str, int, bytes]:
    """(encoding, length, bytes) of a 1-D sequence of per-question outcomes: one bit each when
    every value is 0 or 1, else float16 when that holds them exactly, else float32."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"outcomes must be a 1-D sequence of floats, got an array of shape {a.shape}")
    if np.isin(a, (0.0, 1.0)).all():
        return "bits", len(a), np.packbits(a.astype(np.uint8)).tobytes()
    half = a.astype(np.float16)
    if np.array_equal(half.astype(np.float64), a, equal_nan=True):
        return "float16", len(a), half.tobytes()
    return "float32", len(a), a.astype(np.float32).tobytes()


def decode_outcomes(encoding: str, length: int, data: bytes) -> np.ndarray:
    """The float32 array that `encode_outcomes` encoded."""
    if encoding == "bits":
        return np.unpackbits(np.frombuffer(data, dtype=np.uint8), count=length).astype(np.float32)
    if encoding in ("float16", "float32"):
        return np.frombuffer(data, dtype=encoding).astype(np.float32)
    raise ValueError(f"unknown outcome encoding {encoding!r}")


def _this_host() -> str:
    return socket.gethostname()


def _owner() -> str:
    return f"{_this_host()}:{os.getpid()}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process, alive
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is dead too; /proc says so on Linux
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _claim_live(owner: str, heartbeat: float, now: float, lease_s: float) -> bool:
    """Whether a claim still binds: its owner is not known dead and gave a sign of life within the lease."""
    if now - heartbeat > lease_s:
        return False
    host, _, pid = owner.rpartition(":")
    return host != _this_host() or not pid.isdigit() or _process_alive(int(pid))


def _magic_problem(path: Path) -> str | None:
    """Whether the file is no SQLite database at all (cheap: reads 16 bytes). Whether it is whole
    is SQLite's to judge: a store whose last pages are still in its write-ahead log is sound,
    though the file alone is shorter than its header says (a disk that filled mid-checkpoint)."""
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if not SQLITE_MAGIC.startswith(head):  # an empty file is an empty database to SQLite
        return "is not a SQLite database file"
    return None


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that creates nothing: immutable while no write-ahead log exists beside the file."""
    mode = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?{mode}", uri=True)


def _inspect(path: Path, attempts: int = 2) -> int:
    """The schema version of the existing store file `path`; StoreError if it is not a usable store.

    A file that another process is creating can read as torn for a few milliseconds, so a
    failed reading is repeated once after a pause before it counts.
    """
    try:
        problem = _magic_problem(path)
        if problem:
            raise StoreError(f"results store {path} {problem}")
        try:
            db = _read_only(path)
            try:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                check = db.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                db.close()
        except sqlite3.Error as e:
            damaged = getattr(e, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # Python >= 3.11
            raise StoreError(f"results store {path} is {'truncated or corrupt' if damaged else 'not readable'}: "
                             f"{e}") from e
        if check != "ok":
            raise StoreError(f"results store {path} is corrupt: {check}")
    except StoreError:
        if attempts <= 1:
            raise
        time.sleep(0.1)
        return _inspect(path, attempts - 1)
    if version > SCHEMA_VERSION:
        raise StoreError(f"results store {path} has schema version {version}, newer than this jdlib's version "
                         f"{SCHEMA_VERSION}: use the jdlib that wrote it, or another store")
    if tables and "cells" not in tables:
        raise StoreError(f"results store {path} is a SQLite database of something else "
                         f"(tables {sorted(tables)}, no table 'cells')")
    return version


def _checkpoint(path: Path) -> None:
    """Fold the write-ahead log into the file, so a disk still full stops the run before any compute."""
    try:
        db = sqlite3.connect(path, timeout=60)
        try:
            db.execute("PRAGMA wal_checkpoint")
        finally:
            db.close()
    except sqlite3.Error as e:
        raise StoreError(f"results store {path}: its write-ahead log {path}-wal cannot be written back "
                         f"into it: {e}") from e


def check_store(path: str | Path, write: bool = True) -> None:
    """Check that `path` can serve as a results store (and be written, if `write`), creating nothing.

    An existing file must be a sound SQLite store of this or an older schema version (with
    `write`, its write-ahead log, if any, is written back into it); a missing one must be
    creatable (its nearest existing ancestor a writable directory). Raises StoreError naming the path.
    """
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"results store {path} is a directory, not a SQLite file")
    if path.exists():
        _inspect(path)
        if write and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)):
            raise StoreError(f"results store {path} is not writable (the file and its folder must be)")
        if write and Path(f"{path}-wal").exists():
            _checkpoint(path)
        return
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise StoreError(f"results store {path} cannot be created: {ancestor} is not a directory")
    if write and not os.access(ancestor, os.W_OK | os.X_OK):
        raise StoreError(f"results store {path} cannot be created: {ancestor} is not writable")


class ResultsStore:
    """A SQLite file of finished cells, their outcomes and the claims of cells being computed.

    Opening checks the file (StoreError naming the path) and creates nothing: the file is made by
    the first write. `lease_s`: a claim whose owner gave no sign of life (a claim, a row, a
    `heartbeat()`) for this long is stale and can be taken over.
    """

    def __init__(self, path: str | Path, lease_s: float = CLAIM_LEASE_S):
        self.path = Path(path)
        self.lease_s = lease_s
        check_store(self.path, write=False)
        self._ready = False  # the file exists at the current schema version
        self._created: list[Path] = []  # what this object created: folders, then the file

    # -- connections ---------------------------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        """A connection to read, or None while the store has no file."""
        if not self.path.exists():
            yield None
            return
        try:
            db = sqlite3.connect(self.path, timeout=60)
            try:
                yield db
            finally:
                db.close()
        except sqlite3.Error as e:
            raise StoreError(f"results store {self.path}: {e}") from e

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE: it holds the write lock from its first statement)."""
        self.migrate()
        try:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.Error as e:
            raise StoreError(f"results store {self.path}: {e}") from e

    def migrate(self) -> None:
        """Create the file, or bring it to the current schema version (the first write does this)."""
        if self._ready and self.path.exists():
            return
        check_store(self.path, write=True)
        created = not self.path.exists() and self._create_file()
        try:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("BEGIN IMMEDIATE")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    db.execute("ROLLBACK")
                    raise StoreError(f"results store {self.path} has schema version {version}, newer than "
                                     f"this jdlib's version {SCHEMA_VERSION}")
                if version < SCHEMA_VERSION:
                    self._upgrade(db)
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.Error as e:
            raise StoreError(f"results store {self.path}: {e}{self._abandon() if created else ''}") from e
        self._ready = True

    def _create_file(self) -> bool:
        """Create the empty file and its missing folders; whether this object created the file."""
        self._created += [p for p in reversed(self.path.parents) if not p.exists()]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:  # another process made it first
            return False
        except OSError as e:  # a full disk, say
            raise StoreError(f"results store {self.path} cannot be created: {e}{self._abandon()}") from e
        self._created.append(self.path)
        return True

    def _abandon(self) -> str:
        """Remove what this object created for a file it could not set up (a full disk leaves an
        empty file, its -wal and -shm), unless another run stored something in it meanwhile; the
        words an error message adds."""
        try:
            if self._in_use():
                return ""
        except StoreError:
            pass  # a file SQLite cannot read holds nothing of another run's either
        try:
            self._remove_created()
        except OSError as e:
            return f"; what this run began could not be removed ({e}): delete {self.path} and its -wal and -shm"
        return "; what this run created for it is removed"

    @staticmethod
    def _upgrade(db: sqlite3.Connection) -> None:
        """Version 0 (or an empty file) to version 1, inside the caller's transaction."""
        for table in TABLES:
            db.execute(table)
        for key, metrics, prov in db.execute("SELECT key, metrics, provenance FROM cells").fetchall():
            old = json.loads(metrics)
            new, moved = split_timings(old, json.loads(prov))
            if new is not old:
                db.execute("UPDATE cells SET metrics = ?, provenance = ? WHERE key = ?",
                           (json.dumps(new), json.dumps(moved), key))
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def discard_if_unused(self) -> bool:
        """Remove the file (with its -wal and -shm) and the folders this object created, if it
        created the file and the store holds no row and no claim; return whether it did."""
        if self.path not in self._created or not self.path.exists() or self._in_use():
            return False
        self._remove_created()
        return True

    def _in_use(self) -> bool:
        """Whether the store holds a row or a claim."""
        with self._reading() as db:
            if db is None:
                return False
            tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            return any(db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in ("cells", "claims") if t in tables)

    def _remove_created(self) -> None:
        """Remove the file (with its -wal, -shm and -journal) and the folders this object created."""
        if self.path in self._created:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        for folder in reversed([p for p in self._created if p != self.path]):
            try:
                folder.rmdir()
            except FileNotFoundError:  # never made: its making failed
                continue
            except OSError:  # something else is in it now
                break
        self._created.clear()
        self._ready = False

    # -- rows ----------------------------------------------------------------------------

    def _has(self, db: sqlite3.Connection, table: str) -> bool:
        return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None

    def keys(self) -> set[str]:
        with self._reading() as db:
            if db is None or not self._has(db, "cells"):
                return set()
            return {k for (k,) in db.execute("SELECT key FROM cells")}

    def put(self, key: str, setting: str, config: dict, metrics: dict, provenance: dict,
            outcomes: Sequence[float] | np.ndarray | None = None) -> None:
        """Write a finished cell's row (and its per-question outcomes) and release its claim.

        Timings among `metrics` (see `TIMINGS`) are stored in the provenance.
        """
        metrics, provenance = split_timings(metrics, provenance)
        encoded = encode_outcomes(outcomes) if outcomes is not None else None
        with self._writing() as db:  # one transaction: the row is there whole or not at all
            db.execute("INSERT OR REPLACE INTO cells (key, setting, config, metrics, provenance) VALUES (?,?,?,?,?)",
                       (key, setting, json.dumps(config, default=str), json.dumps(metrics), json.dumps(provenance)))
            if encoded:
                db.execute("INSERT OR REPLACE INTO outcomes (key, encoding, length, data) VALUES (?,?,?,?)",
                           (key, *encoded))
            else:
                db.execute("DELETE FROM outcomes WHERE key = ?", (key,))
            db.execute("DELETE FROM claims WHERE key = ?", (key,))
            db.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), _owner()))

    def rows(self, keys: list[str] | None = None, setting: str | None = None) -> list[dict]:
        with self._reading() as db:
            if db is None or not self._has(db, "cells"):
                return []
            found = db.execute("SELECT key, setting, config, metrics, provenance FROM cells"
                               + (" WHERE setting = ?" if setting else ""), (setting,) if setting else ()).fetchall()
        wanted = set(keys) if keys is not None else None
        rows = []
        for k, s, c, m, p in found:
            if wanted is None or k in wanted:
                metrics, prov = split_timings(json.loads(m), json.loads(p))  # a version-0 file not yet migrated
                rows.append({"key": k, "setting": s, "config": json.loads(c), "metrics": metrics, "provenance": prov})
        return rows

    def frame(self, keys: list[str] | None = None, setting: str | None = None) -> pd.DataFrame:
        """Finished cells as a table: config columns, metric columns, device and wall time."""
        records = [{**r["config"], **r["metrics"], "device": r["provenance"]["device"],
                    "git_commit": r["provenance"]["git_commit"], "wall_time_s": r["provenance"]["wall_time_s"],
                    "key": r["key"]} for r in self.rows(keys, setting)]
        return pd.DataFrame.from_records(records)

    def outcomes(self, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        """Per-question outcomes (float32 arrays) of the given cells (default: all) that have them."""
        with self._reading() as db:
            if db is None or not self._has(db, "outcomes"):
                return {}
            if keys is None:
                found = db.execute("SELECT key, encoding, length, data FROM outcomes").fetchall()
            else:
                keys, found = list(keys), []
                for i in range(0, len(keys), 500):  # SQLite bounds the number of parameters
                    chunk = keys[i:i + 500]
                    found += db.execute("SELECT key, encoding, length, data FROM outcomes WHERE key IN "
                                        f"({','.join('?' * len(chunk))})", chunk).fetchall()
        return {k: decode_outcomes(e, n, d) for k, e, n, d in found}

    def rows_from_other_code(self, commit: str | None = None) -> pd.DataFrame:
        """The rows (as `frame()`) computed by code other than `commit` (default: the current
        commit of this checkout, with "+dirty" when its tracked files differ from it).

        Commits are compared as recorded: a row from "C+dirty" matches a current "C+dirty",
        although the two dirty trees may differ; a row without a recorded commit is from other code.
        """
        commit = commit or _git_commit()
        frame = self.frame()
        if frame.empty:
            return frame
        return frame[frame["git_commit"].ne(commit) | frame["git_commit"].isna()].reset_index(drop=True)

    # -- claims --------------------------------------------------------------------------

    def claim(self, key: str) -> bool:
        """Claim cell `key` for this process (atomic). False if its row is stored or a live owner
        holds it; a claim whose owner died on this host, or that is older than the lease, is taken."""
        now = time.time()
        with self._writing() as db:
            if db.execute("SELECT 1 FROM cells WHERE key = ?", (key,)).fetchone():
                return False
            held = db.execute("SELECT owner, heartbeat FROM claims WHERE key = ?", (key,)).fetchone()
            if held and held[0] != _owner() and _claim_live(*held, now, self.lease_s):
                return False
            db.execute("INSERT OR REPLACE INTO claims (key, owner, started, heartbeat) VALUES (?,?,?,?)",
                       (key, _owner(), now, now))
            return True

    def claimable(self, keys: list[str]) -> list[str]:
        """Those of `keys` with no row and no live claim of another process (reads only)."""
        now = time.time()
        with self._reading() as db:
            if db is None or not self._has(db, "cells"):
                return list(keys)
            done = {k for (k,) in db.execute("SELECT key FROM cells")}
            held = dict(((k, (o, h)) for k, o, h in db.execute("SELECT key, owner, heartbeat FROM claims"))
                        if self._has(db, "claims") else ())
        return [k for k in keys if k not in done
                and not (k in held and held[k][0] != _owner() and _claim_live(*held[k], now, self.lease_s))]

    def release(self, key: str) -> None:
        """Give up this process's claim on `key`."""
        with self._writing() as db:
            db.execute("DELETE FROM claims WHERE key = ? AND owner = ?", (key, _owner()))

    def release_all(self) -> None:
        """Give up every claim this process holds."""
        if self.path.exists():
            with self._writing() as db:
                db.execute("DELETE FROM claims WHERE owner = ?", (_owner(),))

    def heartbeat(self) -> None:
        """Renew this process's claims (a long cell's claim stays live past the lease)."""
        if not self.path.exists():
            return
        with self._writing() as db:
            db.execute("UPDATE claims SET heartbeat = ? WHERE owner = ?", (time.time(), _owner()))
