"""Does the same key give the same metrics? Recompute stored cells into a scratch store and compare.

A seeded sample of a setting's rows in a store is recomputed from the configs they record, with
the setting's own runner, into an empty scratch store; every metric (accuracy, loss, the final
training loss, the per-question outcomes) is compared exactly.

    python bench/rerun.py results/full.sqlite --setting setting1 --cells 24 --executor local-gpus:4 \
        --out bench/results/rerun_h200.json
    python bench/rerun.py results/full.sqlite --setting compression --method sparsegpt gptq --cells 12 --twice \
        --out bench/results/rerun_compression_h200.json

`--twice` computes the sample a second time into another scratch store and compares the two as well
(`same_machine`): whether this device and code give one answer, whatever the stored rows say.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jdlib.config import checks  # noqa: E402
from jdlib.grid import run_grid  # noqa: E402
from jdlib.results import ResultsStore, _git_commit  # noqa: E402
from jdlib.settings import get  # noqa: E402

COMPARED = ("accuracy", "loss", "final_train_loss", "barrier", "dense_accuracy", "block_error", "realised_sparsity", "bits")


def config_for(setting: str, cell: dict, device: str | None, executor: str):
    """The setting's config that runs `cell`: its non-grid parameters from the cell."""
    spec = get(setting)
    fields = {f.name for f in dataclasses.fields(spec.config)}
    grid = {name for name, check in checks(spec.config).items() if check.role == "grid"}
    config = spec.config(setting=setting, **{k: v for k, v in cell.items() if k in fields and k not in grid},
                         device=device, executor=executor)
    return spec, config


def differences(stored: dict, fresh: dict, outcomes: tuple) -> dict[str, float]:
    """Absolute differences of every compared metric the stored row has, and of the outcomes (count of changed answers)."""
    diff = {m: abs(float(stored[m]) - float(fresh[m])) for m in COMPARED
            if stored.get(m) is not None and fresh.get(m) is not None}
    if all(o is not None for o in outcomes):
        diff["outcomes"] = float(np.sum(np.asarray(outcomes[0]) != np.asarray(outcomes[1])))
    return diff


def recompute(rows: list[dict], args) -> tuple[dict[str, dict], dict]:
    """The rows' cells computed afresh into an empty scratch store: (key -> row, key -> outcomes)."""
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = ResultsStore(Path(scratch_dir) / "rerun.sqlite")
        groups: dict[str, tuple] = {}  # cells whose configs agree share one runner
        for row in rows:
            spec, config = config_for(args.setting, row["config"], args.device, args.executor)
            ident = json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)
            groups.setdefault(ident, (spec, config, []))[2].append(row["config"])
        for spec, config, cells in groups.values():
            run_grid(args.setting, cells, spec.make_runner(config), scratch, executor=args.executor)
        fresh = {r["key"]: r for r in scratch.rows()}
        missing = [r["key"] for r in rows if r["key"] not in fresh]
        if missing:
            sys.exit(f"rerun of {missing[0]} landed under another key: the cell's key is not its config's")
        return fresh, scratch.outcomes()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("store", type=Path)
    p.add_argument("--setting", default="setting1", help="the rows' setting label (fine-tuning: setting1, setting5, lmc)")
    p.add_argument("--cells", type=int, default=24)
    p.add_argument("--seed", type=int, default=0, help="which rows are sampled")
    p.add_argument("--method", nargs="+", default=None, help="only rows of these methods (default: all)")
    p.add_argument("--twice", action="store_true", help="compute the sample twice and compare the two runs too")
    p.add_argument("--device", default=None)
    p.add_argument("--executor", default="local")
    p.add_argument("--out", type=Path, default=Path("bench/results/rerun.json"))
    args = p.parse_args()

    source = ResultsStore(args.store)
    rows = [r for r in source.rows(setting=args.setting)
            if args.method is None or r["config"].get("method") in args.method]
    if not rows:
        sys.exit(f"{args.store}: no rows of setting {args.setting!r}"
                 + (f" and method {' or '.join(args.method)}" if args.method else "") + " to rerun")
    rows = random.Random(args.seed).sample(rows, min(args.cells, len(rows)))
    stored_outcomes = source.outcomes([r["key"] for r in rows])
    report = {"store": str(args.store), "setting": args.setting, "cells": len(rows), "identical": 0,
              "max_abs_diff": 0.0, "compared": [*COMPARED, "outcomes"], "different": []}
    start = time.perf_counter()
    fresh, fresh_outcomes = recompute(rows, args)
    for row in rows:
        diff = differences(row["metrics"], fresh[row["key"]]["metrics"],
                           (stored_outcomes.get(row["key"]), fresh_outcomes.get(row["key"])))
        worst = max(diff.values(), default=0.0)
        report["max_abs_diff"] = max(report["max_abs_diff"], worst)
        if worst == 0.0:
            report["identical"] += 1
        else:
            report["different"].append({"key": row["key"], **{k: v for k, v in diff.items() if v}})
    if args.twice:
        again, again_outcomes = recompute(rows, args)
        diffs = [max(differences(fresh[k]["metrics"], again[k]["metrics"],
                                 (fresh_outcomes.get(k), again_outcomes.get(k))).values(), default=0.0)
                 for k in fresh]
        report["same_machine"] = {"cells": len(diffs), "identical": sum(d == 0.0 for d in diffs),
                                  "max_abs_diff": max(diffs, default=0.0)}
    report.update(seconds=round(time.perf_counter() - start, 1), git_commit=_git_commit(),
                  stored_commits=sorted({r["provenance"].get("git_commit") or "?" for r in rows}),
                  device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                  torch=torch.__version__)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['identical']} of {report['cells']} cells identical; max abs diff {report['max_abs_diff']}")


if __name__ == "__main__":
    main()
