"""Moving rows between results stores: grids computed on another machine come back into the store.

`merge(source, into)` adds the rows of `source` whose keys `into` lacks and never changes a stored
row: a key present in both must have equal metrics (else the merge is refused, or with
`skip_different` those keys are left as stored); a stored row without per-question outcomes gains
the source's outcomes when the metrics are equal (how a rescoring attaches outcomes to committed
rows). The one deliberate exception, `replace_methods`: the source's rows of a method recomputed whole
from one code version replace the stored rows of that method, each replacement reported with its
differences. Both files pass `PRAGMA integrity_check` before, and `into` after.

`grid_keys` names the keys a grid can reach, so a store sent to another machine can be seeded with
exactly the rows that spare it recomputing (`merge(..., keys=grid_keys(...))`), and `projection`
says how long the cells a grid still lacks should take, from the wall times of stored rows. Each takes
`overrides`, parameters that replace the params file's (`{"model": "mpnet"}`: the grid at another scale).
"""
from __future__ import annotations

import json
import math
import re
import sqlite3
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .results import ResultsStore, StoreError, cell_key, decode_outcomes, split_timings


class MergeRefused(StoreError):
    """A merge that would change a stored row's metrics (nothing was written)."""

    def __init__(self, message: str, report: MergeReport):
        super().__init__(message)
        self.report = report


@dataclass
class MergeReport:
    """What a merge found and did: keys by kind, and each differing key's metrics (stored, source)."""

    source: str
    into: str
    new: list[str] = field(default_factory=list)  # keys added, with their outcomes where the source has them
    equal: list[str] = field(default_factory=list)  # keys present with equal metrics (and outcomes, where both have them)
    different: dict[str, dict] = field(default_factory=dict)  # key -> {"setting", "metrics": {name: [stored, source]}}
    outcomes_added: list[str] = field(default_factory=list)  # equal keys that gained the source's outcomes
    replaced: dict[str, dict] = field(default_factory=dict)  # key -> {"setting", "method", "metrics": differences}
    by_setting: dict[str, dict[str, int]] = field(default_factory=dict)  # setting -> {"new"|"equal"|"different": n}
    written: bool = False

    def summary(self) -> str:
        """One line: the counts, by setting."""
        def part(kind: str) -> str:
            n = sum(c.get(kind, 0) for c in self.by_setting.values())
            detail = ", ".join(f"{s} {c[kind]}" for s, c in sorted(self.by_setting.items()) if c.get(kind))
            return f"{n} {kind}" + (f" ({detail})" if detail else "")
        action = "merged" if self.written else "not written"
        replaced = ""
        if self.replaced:
            changed = sum(bool(r["metrics"]) for r in self.replaced.values())
            methods = ", ".join(sorted({r["method"] for r in self.replaced.values()}))
            replaced = f"; {len(self.replaced)} rows of {methods} replaced ({changed} of them with other metrics)"
        return (f"{self.source} -> {self.into}: {part('new')}, {part('equal')}, {part('different')}; "
                f"{len(self.outcomes_added)} stored rows gained outcomes{replaced}; {action}")

    def lines(self) -> list[str]:
        """The summary, then one line per differing key with its metric differences."""
        def diffs(d: dict) -> str:
            return ", ".join(f"{m} {a!r} -> {b!r}" for m, (a, b) in sorted(d["metrics"].items()))

        return ([self.summary()]
                + [f"  different {key} ({d['setting']}): {diffs(d)}" for key, d in sorted(self.different.items())]
                + [f"  replaced {key} ({d['setting']}, {d['method']}): {diffs(d)}"
                   for key, d in sorted(self.replaced.items()) if d["metrics"]])

    def to_json(self) -> dict:
        return {**asdict(self), "summary": self.summary()}


def integrity(path: str | Path) -> str:
    """`PRAGMA integrity_check` of the SQLite file at `path` ("ok" when sound), read only."""
    path = Path(path)
    mode = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
    try:
        db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?{mode}", uri=True)
        try:
            return "; ".join(r[0] for r in db.execute("PRAGMA integrity_check").fetchall())
        finally:
            db.close()
    except sqlite3.Error as e:
        return str(e)


def _check_integrity(path: Path, when: str) -> None:
    result = integrity(path)
    if result != "ok":
        raise StoreError(f"results store {path} fails PRAGMA integrity_check {when}: {result}")


def _same(a: object, b: object, rtol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True
        return a == b or (rtol > 0 and math.isclose(a, b, rel_tol=rtol))
    return a == b


def _metric_differences(stored: dict, source: dict, rtol: float) -> dict[str, list]:
    return {m: [stored.get(m), source.get(m)] for m in sorted(stored.keys() | source.keys())
            if not _same(stored.get(m), source.get(m), rtol)}


def _read(path: Path, keys: set[str] | None) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(key -> cells row, key -> outcomes row) of the store at `path`, limited to `keys`."""
    if not path.exists():
        return {}, {}
    db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    try:
        tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        cells = {r[0]: r for r in db.execute("SELECT key, setting, config, metrics, provenance, finished FROM cells")
                 if keys is None or r[0] in keys} if "cells" in tables else {}
        outcomes = {r[0]: r for r in db.execute("SELECT key, encoding, length, data FROM outcomes")
                    if r[0] in cells} if "outcomes" in tables else {}
    finally:
        db.close()
    return cells, outcomes


def _outcome_difference(stored: tuple, source: tuple) -> list | None:
    """None when two outcome rows hold the same values, else [stored description, source description]."""
    if stored[1:] == source[1:]:
        return None
    a, b = decode_outcomes(*stored[1:]), decode_outcomes(*source[1:])
    if len(a) != len(b):
        return [f"{len(a)} questions", f"{len(b)} questions"]
    n = int((a != b).sum())
    return None if n == 0 else [f"{len(a)} questions", f"{n} of them differ"]


def merge(source: str | Path, into: str | Path, keys: Iterable[str] | None = None, rtol: float = 0.0,
          skip_different: bool = False, dry_run: bool = False, replace_methods: Iterable[str] = ()) -> MergeReport:
    """Merge the rows of store `source` (those of `keys`, default all) into store `into`, which is
    created if missing; return the report.

    Rows keep their provenance and finishing time; claims are not copied. Metrics are compared
    after timings move to the provenance (as `ResultsStore` reads them), exactly unless `rtol`.
    A key whose metrics (or outcomes, where both stores have them) differ is never changed: the
    whole merge is refused with MergeRefused (nothing written) unless `skip_different`, which
    merges the rest. A stored key whose source row has a method in `replace_methods` is replaced, row
    and outcomes (the stored outcomes go where the source has none), equal or not: reported in `replaced`,
    with its differences. StoreError when either file fails its integrity check (before, or `into` after).
    """
    source, into = Path(source), Path(into)
    if not source.is_file():
        raise StoreError(f"results store {source} does not exist")
    ResultsStore(source)  # a sound store of a version this jdlib reads
    _check_integrity(source, "before the merge")
    if into.exists():
        ResultsStore(into)
        _check_integrity(into, "before the merge")
    wanted = set(keys) if keys is not None else None
    src_cells, src_out = _read(source, wanted)
    dst_cells, dst_out = _read(into, set(src_cells))
    report = MergeReport(str(source), str(into))
    replacing = set(replace_methods)
    counts: dict[str, Counter] = {}
    for key, row in sorted(src_cells.items()):
        setting = row[1]
        if key not in dst_cells:
            kind = "new"
            report.new.append(key)
        else:
            stored, _ = split_timings(json.loads(dst_cells[key][3]), {})
            theirs, _ = split_timings(json.loads(row[3]), {})
            diffs = _metric_differences(stored, theirs, rtol)
            if key in dst_out and key in src_out:
                outcome_diff = _outcome_difference(dst_out[key], src_out[key])
                if outcome_diff:
                    diffs["outcomes"] = outcome_diff
            method = json.loads(row[2]).get("method")
            if method in replacing:
                kind = "replaced"
                report.replaced[key] = {"setting": setting, "method": method, "metrics": diffs}
            elif diffs:
                kind = "different"
                report.different[key] = {"setting": setting, "metrics": diffs}
            else:
                kind = "equal"
                report.equal.append(key)
                if key in src_out and key not in dst_out:
                    report.outcomes_added.append(key)
        counts.setdefault(setting, Counter())[kind] += 1
    report.by_setting = {s: dict(c) for s, c in sorted(counts.items())}
    if report.different and not skip_different:
        raise MergeRefused(f"refused: {len(report.different)} keys of {source} are in {into} with different "
                           f"metrics (nothing written; first: {min(report.different)})", report)
    if dry_run or not (report.new or report.outcomes_added or report.replaced):
        return report
    store = ResultsStore(into)
    store.migrate()  # creates the file, or brings it to the current schema version
    db = sqlite3.connect(into, timeout=60, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            present = {k for (k,) in db.execute("SELECT key FROM cells")}
            if present & set(report.new):  # another process wrote one of them since they were read
                raise StoreError(f"results store {into} changed during the merge; run it again")
            db.executemany("INSERT INTO cells (key, setting, config, metrics, provenance, finished) "
                           "VALUES (?,?,?,?,?,?)", [src_cells[k] for k in report.new])
            db.executemany("INSERT OR REPLACE INTO cells (key, setting, config, metrics, provenance, finished) "
                           "VALUES (?,?,?,?,?,?)", [src_cells[k] for k in report.replaced])
            db.executemany("DELETE FROM outcomes WHERE key = ?", [(k,) for k in report.replaced])
            db.executemany("INSERT OR IGNORE INTO outcomes (key, encoding, length, data) VALUES (?,?,?,?)",
                           [src_out[k] for k in report.new + report.outcomes_added + list(report.replaced)
                            if k in src_out])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    except sqlite3.Error as e:
        raise StoreError(f"results store {into}: {e}") from e
    finally:
        db.close()
    report.written = True
    _check_integrity(into, "after the merge")
    return report


def grid_keys(name: str, params: str = "full", overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Key -> key setting of every cell the grid of setting `name` at `params` (with `overrides`) can reach
    (the true gem's within-task cells are keyed as Setting 1's, its across-task cells as Setting 5's)."""
    from .settings import get, load

    config = load(name, params, **(overrides or {}))
    return {cell_key({"setting": part.key_setting, **cell}): part.key_setting
            for part in get(name).parts(config) for cell in part.cells}


@dataclass
class Projection:
    """The cells of a grid still to run and the minutes they should take."""

    grid: str
    total: int
    to_run: int
    minutes: float | None  # None: no stored row of this kind to measure a rate from
    basis: str  # where the rate comes from

    def line(self) -> str:
        when = f"{self.minutes:.1f} min" if self.minutes is not None else "unknown time"
        return f"{self.grid}: {self.to_run} of {self.total} cells to run, projected {when} ({self.basis})"


def measured_rate(name: str, params: str, store: str | Path, device: str | None = None,
                  overrides: Mapping[str, Any] | None = None) -> tuple[float, str] | None:
    """(cells per hour, where that comes from) of grid `name` at `params`, measured from the rows of
    `store` computed on `device` (default: any); None without such rows.

    Of the executor that computed most of them, `local-gpus:K` (K workers sharing each GPU) or
    `local` (K = 1), the rate is K / mean wall time of a cell, so it holds for that executor on that
    kind of machine (a compressed cell's wall time leaves out building its compressed state).
    """
    walls: dict[str, list[float]] = {}
    for row in ResultsStore(store).rows(keys=list(grid_keys(name, params, overrides))):
        prov = row["provenance"]
        if (device is None or prov.get("device") == device) and prov.get("wall_time_s"):
            walls.setdefault(str(prov.get("executor") or "local"), []).append(prov["wall_time_s"])
    if not walls:
        return None
    executor, times = max(walls.items(), key=lambda kv: len(kv[1]))
    workers = int(executor.rpartition(":")[2]) if re.fullmatch(r"local-gpus:\d+", executor) else 1
    per_hour = workers * 3600 / statistics.fmean(times)
    return per_hour, f"{per_hour:.0f} cells/hour measured from {len(times)} rows run by {executor}" + (
        f" on {device}" if device else "")


def projection(name: str, params: str, store: str | Path, rate: tuple[float, str] | None,
               overrides: Mapping[str, Any] | None = None) -> Projection:
    """The cells of grid `name` at `params` missing from `store`, and their minutes at `rate`
    (as `measured_rate` gives it; None: unknown, and the basis says so)."""
    keys = grid_keys(name, params, overrides)
    to_run = len(keys) - len(ResultsStore(store).keys() & keys.keys())
    if rate is None:
        return Projection(name, len(keys), to_run, None, "no measured rate: grid size only")
    return Projection(name, len(keys), to_run, to_run / rate[0] * 60, rate[1])


def seed(source: str | Path, into: str | Path, grids: Iterable[str], params: str = "full",
         outcomes_only: bool = False, overrides: Mapping[str, Any] | None = None) -> MergeReport:
    """A new store `into` (replacing any file there) with the rows of `source` that `grids` at
    `params` can reach, so a run elsewhere recomputes none of them; with `outcomes_only`, only the
    rows that carry per-question outcomes (a rescoring then recomputes the rest, to attach theirs)."""
    keys = set().union(*(grid_keys(g, params, overrides) for g in grids))
    if outcomes_only:
        keys &= set(ResultsStore(source).outcomes(list(keys)))
    into = Path(into)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{into}{suffix}").unlink(missing_ok=True)
    return merge(source, into, keys=keys)
