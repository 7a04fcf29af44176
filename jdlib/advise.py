"""How far can I prune? The largest sparsity per task and difficulty level whose drop stays within a tolerance.

    python -m jdlib.advise --model minilm --tasks bigbench/hyperbaton --params ci --json

The advisor sweeps a setting's grid for the given model and tasks (`jdlib.sweep`: the same store,
resumable, any executor) and reads, per task, level, method and pattern, the normalised drop
(dense - pruned) / dense at each sparsity, averaged over seeds, with the interval C1 uses
(`analysis.intervals.METHOD`: seeds and per-question outcomes; a seed-only t interval where the rows
have no outcomes). A sparsity is safe when the upper end of its drop's 95% interval is at most the
tolerance; `safe_sparsity` is the largest sparsity that is safe together with every smaller one, and
`first_unsafe` the next (a drop without an interval, e.g. from one seed, is not shown to be safe).
`testable` says whether the dense model passes the learnability gate at that level (`analysis.floor`):
where it does not, there is little to lose and the advice says little.

Exit codes: 0 advice printed; 2 bad input (a parameter, named in one line on stderr, before any
compute); 1 a failure while computing.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import pandas as pd
import yaml

from .analysis import intervals
from .analysis.compression import compressor_of
from .analysis.floor import level_gates
from .analysis.sentences import level_label, plain
from .analysis.intervals import outcome_grid
from .analysis.rows import chapter_results
from .config import ConfigError
from .settings import SETTINGS, load
from .settings.compression import KNOBS

SETTINGS_ADVISED = [name for name, s in SETTINGS.items() if s.in_c1 and s.finish is None]
GROUP = ["task", "transfer", "method", "pattern"]
COLUMNS = ["task", "level", *GROUP[1:], "safe_sparsity", "drop", "low", "high", "first_unsafe", "unsafe_drop",
           "unsafe_low", "unsafe_high", "testable", "tolerance", "interval", "seeds"]


def advise(rows: pd.DataFrame, tolerance: float, setting: str = "setting2") -> pd.DataFrame:
    """Per task, level (easiest first), transfer, method and pattern: the safe sparsity with its drop's
    estimate and interval, and the first unsafe sparsity with its own (see the module docstring).

    `rows`: a sweep's rows of `setting`, the dense cells (transfer "dense", sparsity 0) with the pruned ones.
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance={tolerance!r}: use a number of at least 0")
    spec = SETTINGS[setting]
    dense = rows[rows["transfer"] == "dense"]
    gates = level_gates(setting, rows)
    testable = set(zip(gates.loc[gates["testable"], "task"], gates.loc[gates["testable"], spec.level]))
    out = []
    for keys, curve in rows[rows["transfer"] != "dense"].groupby(GROUP, sort=True):
        group = dict(zip(GROUP, keys))
        cells = pd.concat([dense[dense["task"] == group["task"]], curve], ignore_index=True)
        cells = cells[cells[spec.level].isin(curve[spec.level])]
        grid, method = outcome_grid(cells, spec)
        found = intervals.intervals(grid, drops, method=method)
        conditions = grid.conditions
        for level in dict.fromkeys(conditions["level"]):
            pruned = conditions[(conditions["level"] == level) & (conditions["sparsity"] > 0)].sort_values("sparsity")
            safe = unsafe = None
            for i, x in zip(pruned.index, pruned["sparsity"]):
                if not found[str(i)].high <= tolerance:  # NaN (no interval) is not shown to be safe
                    unsafe = (float(x), found[str(i)])
                    break
                safe = (float(x), found[str(i)])
            out.append({**group, "level": plain(level), **_ends(safe, ""), **_ends(unsafe, "unsafe_"),
                        "testable": (group["task"], level) in testable, "tolerance": tolerance, "interval": method,
                        "seeds": len(grid.seeds)})
    return pd.DataFrame(out, columns=COLUMNS)


def committed(params: str = "full", tolerance: float = 0.01) -> pd.DataFrame:
    """`advise` on the committed grids of `params`, computing nothing: every advised setting whose grid is
    whole in its store, and the compression grid's pruning rows per knob (judged as the setting whose levels
    the knob has), each row's `grid` naming where it comes from and `setting` whose levels it has."""
    parts = [advise(rows, tolerance, name).assign(grid=name, setting=name) for name in SETTINGS_ADVISED
             if (rows := chapter_results(name, params, compute=False)) is not None]
    grid = chapter_results("compression", params, compute=False)
    if grid is not None:
        pruning = grid[grid["method"].map(compressor_of) == "pruning"]  # the dense rows too
        parts += [advise(part, tolerance, KNOBS[knob].SETTING.name).assign(
            grid=f"compression ({knob})", setting=KNOBS[knob].SETTING.name) for knob, part in pruning.groupby("knob")]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*COLUMNS, "grid", "setting"])


def committed_sentence(table: pd.DataFrame, pattern: str = "unstructured") -> str:
    """Per grid, task and method (`pattern` pruning): the safe sparsity at the easiest and the hardest
    testable level, in a sentence."""
    rows = table[(table["pattern"] == pattern) & table["testable"].astype(bool)]
    if rows.empty:
        return f"No grid has a testable level of {pattern} pruning to advise on."
    parts = []
    for (grid, task, method), found in rows.groupby(["grid", "task", "method"], sort=False):
        ends = found.iloc[[0, -1]]
        level = SETTINGS[found["setting"].iloc[0]].level
        parts.append(f"{grid}, {task.split('/')[-1]}, {method}: " + " to ".join(
            f"{_safe_text(r['safe_sparsity'])} at {level} {level_label(r['level'])}" for _, r in ends.iterrows()))
    return (f"Safe sparsity of {pattern} pruning at tolerance {rows['tolerance'].iloc[0]:g}, from the easiest to the "
            f"hardest testable level: " + "; ".join(parts) + ".")


def _safe_text(value) -> str:
    return "none" if value is None or pd.isna(value) else f"{value:g}"


def drops(acc: np.ndarray, conditions: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per pruned condition (by its position): the normalised drop against its level's dense condition,
    averaged over seeds; acc[..., seed, condition]."""
    dense = {level: i for i, (level, x) in enumerate(zip(conditions["level"], conditions["sparsity"])) if x == 0}
    with np.errstate(divide="ignore", invalid="ignore"):
        return {str(i): ((acc[..., dense[level]] - acc[..., i]) / acc[..., dense[level]]).mean(axis=-1)
                for i, (level, x) in enumerate(zip(conditions["level"], conditions["sparsity"])) if x > 0}


def _ends(found: tuple[float, intervals.Interval] | None, prefix: str) -> dict:
    key = "first_unsafe" if prefix else "safe_sparsity"
    if found is None:
        return {key: None, f"{prefix}drop": None, f"{prefix}low": None, f"{prefix}high": None}
    x, interval = found
    return {key: x, **{f"{prefix}{name}": _number(getattr(interval, end))
                       for name, end in (("drop", "estimate"), ("low", "low"), ("high", "high"))}}


def records(table: pd.DataFrame) -> list[dict]:
    """The table as JSON-ready dicts: plain numbers, None for a missing one."""
    return [{k: None if isinstance(v, float) and math.isnan(v) else plain(v) for k, v in row.items()}
            for row in table.to_dict(orient="records")]


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _values(texts: list[str] | None) -> list | None:
    """Command-line values as YAML reads them (2 -> int, 0.5 -> float, 2:4 stays a text)."""
    return None if texts is None else [yaml.safe_load(t) if ":" not in t else t for t in texts]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jdlib.advise", description=__doc__.split("\n\n")[0],
                                epilog="Exit codes: 0 advice printed, 2 bad input, 1 a failure while computing.")
    p.add_argument("--model", required=True, help="an alias (minilm; mpnet after make mpnet), a local folder or a Hugging Face id")
    p.add_argument("--tasks", required=True, nargs="+", help="task names such as bigbench/hyperbaton")
    p.add_argument("--setting", default="setting2", choices=SETTINGS_ADVISED, help="whose grid (default setting2)")
    p.add_argument("--method", nargs="+", help="pruning methods (default: the params')")
    p.add_argument("--pattern", nargs="+", help="unstructured or N:M patterns (default: the params')")
    p.add_argument("--levels", nargs="+", help="the setting's difficulty levels, e.g. option counts (default: the params')")
    p.add_argument("--tolerance", type=float, default=0.01, help="largest acceptable normalised drop (default 0.01)")
    p.add_argument("--params", default="quick", help="ci, quick, full or a YAML path (default quick)")
    p.add_argument("--store", help="a results store other than the params' own")
    p.add_argument("--executor", help="local, local-cpus:N, local-gpus[:K] or dask://HOST:PORT (default: the params')")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return p


def summary(table: pd.DataFrame, level: str) -> str:
    """One line per task, method and pattern: each level's safe sparsity, easiest level first."""
    lines = []
    for keys, g in table.groupby(["task", "transfer", "method", "pattern"], sort=False):
        levels = ", ".join(f"{level} {r['level']}: {_safe_text(r['safe_sparsity'])}" for _, r in g.iterrows())
        lines.append(f"{keys[0]} {keys[2]} {keys[3]}: {levels}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit code."""
    args = parser().parse_args(argv)  # argparse exits 2 on its own errors
    try:
        if not (math.isfinite(args.tolerance) and 0 <= args.tolerance < 1):
            raise ConfigError(f"tolerance={args.tolerance!r} is not valid: use a number in [0, 1)")
        level = SETTINGS[args.setting].level
        overrides = {"model": args.model, "tasks": args.tasks, "method": args.method, "pattern": args.pattern,
                     "store": args.store, "executor": args.executor}
        if args.levels is not None:
            if level not in SETTINGS[args.setting].config.__dataclass_fields__:
                raise ConfigError(f"levels: {args.setting}'s levels ({level}) are not a parameter; leave --levels out")
            overrides[level] = _values(args.levels)
        config = load(args.setting, args.params, **overrides)
        fits = SETTINGS[args.setting].data_levels
        kept = fits(config) if args.levels is None and fits is not None else None
        if kept and len(kept) < len(getattr(config, level)):  # the params' levels the data offer, not an error
            print(f"advise: {level} {kept} of the params' {getattr(config, level)}: the levels the tasks offer "
                  f"(--levels sets them)", file=sys.stderr)
            config = load(args.setting, args.params, **{**overrides, level: kept})
        from .sweep import check
        check(config)  # the model, the tasks' data and the store, before any compute
    except ConfigError as err:
        print(f"python -m jdlib.advise: error: {err}", file=sys.stderr)
        return 2
    from .sweep import sweep

    start = time.monotonic()
    rows = sweep(config)  # its progress bar on stderr
    table = advise(rows, args.tolerance, args.setting)
    print(f"advise: {len(rows)} cells of {args.setting} ({', '.join(config.tasks)}) in {time.monotonic() - start:.0f} s, "
          f"store {config.store_path}; tolerance {args.tolerance:g}, interval {', '.join(table['interval'].unique())}",
          file=sys.stderr)
    if args.json:
        print(json.dumps({"setting": args.setting, "model": config.model, "params": args.params, "level": level,
                          "tolerance": args.tolerance, "advice": records(table)}, indent=1))
    else:
        print(summary(table, level))
    return 0


if __name__ == "__main__":
    sys.exit(main())
