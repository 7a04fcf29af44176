"""The results store: one SQLite row per finished grid cell, keyed by a hash of its config.

A row is written in one transaction when its cell finishes, so a sweep killed at any point
(kill -9 included) leaves only whole rows, and the next run skips them.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import sqlite3
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd
import torch

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    setting TEXT NOT NULL,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    provenance TEXT NOT NULL,
    finished TEXT NOT NULL DEFAULT (datetime('now'))
)
"""


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


class ResultsStore:
    """A SQLite file of finished cells."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def keys(self) -> set[str]:
        with self._connect() as db:
            return {k for (k,) in db.execute("SELECT key FROM cells")}

    def put(self, key: str, setting: str, config: dict, metrics: dict, provenance: dict) -> None:
        with self._connect() as db:  # one transaction: the row is there whole or not at all
            db.execute("INSERT OR REPLACE INTO cells (key, setting, config, metrics, provenance) VALUES (?,?,?,?,?)",
                       (key, setting, json.dumps(config, default=str), json.dumps(metrics), json.dumps(provenance)))

    def rows(self, keys: list[str] | None = None, setting: str | None = None) -> list[dict]:
        with self._connect() as db:
            found = db.execute("SELECT key, setting, config, metrics, provenance FROM cells"
                               + (" WHERE setting = ?" if setting else ""), (setting,) if setting else ()).fetchall()
        wanted = set(keys) if keys is not None else None
        return [{"key": k, "setting": s, "config": json.loads(c), "metrics": json.loads(m), "provenance": json.loads(p)}
                for k, s, c, m, p in found if wanted is None or k in wanted]

    def frame(self, keys: list[str] | None = None, setting: str | None = None) -> pd.DataFrame:
        """Finished cells as a table: config columns, metric columns, device and wall time."""
        records = [{**r["config"], **r["metrics"], "device": r["provenance"]["device"],
                    "git_commit": r["provenance"]["git_commit"], "wall_time_s": r["provenance"]["wall_time_s"],
                    "key": r["key"]} for r in self.rows(keys, setting)]
        return pd.DataFrame.from_records(records)
