"""The learnability screen: which BIG-bench tasks does the embedded model learn at every data fraction?

Dense fine-tunes of the embedded model (the fine-tuning settings' recipe: a fixed number of
optimizer updates at every fraction) on candidate classification and multiple-choice tasks, on
their whole training split, at the smallest and the largest level of the fine-tuning settings,
several seeds. Each level is judged by the learnability gate of `jdlib.analysis.floor` (fixed
before any data were read): the dense model's interval over seeds and questions must lie wholly
above the task's floor (chance or majority class, whichever is higher) plus the margin.

The cells are Setting 1's dense cells (same keys), so the store this writes holds rows the full
Setting 1 grid reuses when it takes a screened task with the same recipe.

The rule that picks the fine-tuning settings' tasks, stated here before the screen ran: keep the
tasks whose every screened level passes the gate and whose dense accuracy rises with data (the
interval of largest-level minus smallest-level accuracy wholly above zero); rank them by that
rise (the data-adequacy gradient Setting 1 needs) and take the first `--choose`. No pruning result
is read.

    python bench/learnability.py --executor local-gpus:4 --out bench/results/learnability_h200.json
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jdlib.analysis.floor import GATE_MARGIN, floor, learnability_gate  # noqa: E402
from jdlib.data import load_task  # noqa: E402
from jdlib.grid import run_grid  # noqa: E402
from jdlib.results import ResultsStore, cell_key  # noqa: E402
from jdlib.settings import setting1  # noqa: E402
from jdlib.settings.finetuning import FinetuneRunner  # noqa: E402
from jdlib.train import RECIPE  # noqa: E402

# Classification and multiple-choice BIG-bench tasks with at least ~1,000 examples and one option
# count per question, one per family (English where a task has languages); Setting 5's tasks (with
# human rater scores) are among them.
CANDIDATES = [
    "bigbench/vitaminc_fact_verification", "bigbench/hyperbaton", "bigbench/formal_fallacies_syllogisms_negation",
    "bigbench/movie_dialog_same_or_different", "bigbench/multiemo/all_sentence_en", "bigbench/mnist_ascii",
    "bigbench/fact_checker", "bigbench/strategyqa", "bigbench/logical_fallacy_detection", "bigbench/navigate",
    "bigbench/sports_understanding", "bigbench/winowhy", "bigbench/play_dialog_same_or_different",
    "bigbench/epistemic_reasoning", "bigbench/goal_step_wikihow/step_ordering", "bigbench/timedial",
]


def screen_config(args) -> setting1.Setting1Config:
    config = setting1.Setting1Config(
        setting="setting1", model=args.model, tasks=args.tasks, fractions=args.levels, seeds=args.seeds,
        epochs=None, steps=args.steps, batch_size=args.batch_size, lr=args.lr, max_length=args.max_length,
        max_train=None, max_eval=args.max_eval, store=str(args.store), device=args.device, executor=args.executor,
        transfer=["sparse"], pattern=["unstructured"], sparsities=[0.5])
    config.validate()
    return config


def dense_cells(config: setting1.Setting1Config) -> list[dict]:
    return [cell for cell in setting1.cells(config) if cell["transfer"] == "dense"]


def rise(low_level: np.ndarray, high_level: np.ndarray, confidence: float = 0.95) -> dict:
    """Largest minus smallest level's mean accuracy, with a Welch t interval over seeds."""
    diff = float(high_level.mean() - low_level.mean())
    var = high_level.var(ddof=1) / len(high_level) + low_level.var(ddof=1) / len(low_level)
    half = stats.t.ppf(0.5 + confidence / 2, len(high_level) + len(low_level) - 2) * math.sqrt(var)
    return {"rise": round(diff, 4), "low": round(diff - half, 4), "high": round(diff + half, 4)}


def judge(config: setting1.Setting1Config, store: ResultsStore) -> dict:
    """Per task: its training size, floor and, per level, the dense accuracy, interval, final loss and the gate."""
    cells = dense_cells(config)
    keys = {cell_key({"setting": "setting1", **c}): c for c in cells}
    frame = store.frame(list(keys))
    outcomes = store.outcomes(list(keys))
    tasks = {}
    for task_name in config.tasks:
        task = load_task(task_name).cap(None, config.max_eval)
        labels = task.validation["label"]
        task_floor = floor(task.chance, labels)
        levels, accuracy_by_level = {}, {}
        for level in config.fractions:
            rows = frame[(frame["task"] == task_name) & (frame["fraction"] == level)].sort_values("seed")
            if rows.empty:
                continue
            acc = rows["accuracy"].to_numpy(float)
            per_question = np.stack([outcomes[k] for k in rows["key"]]) if all(k in outcomes for k in rows["key"]) else None
            gate = learnability_gate(acc, int(rows["n"].iloc[0]), task_floor, outcomes=per_question)
            levels[str(level)] = {"dense": round(gate.dense, 4), "low": round(gate.low, 4), "high": round(gate.high, 4),
                                  "final_loss": round(float(rows["final_train_loss"].mean()), 4),
                                  "train_examples": int(rows["train_examples"].iloc[0]), "seeds": len(acc),
                                  "passes": gate.passes, "reason": gate.reason}
            accuracy_by_level[level] = acc
        entry = {"kind": task.kind, "train_size": len(task.train), "eval_size": len(labels),
                 "chance": round(task.chance, 4), "floor": round(task_floor, 4), "levels": levels}
        if len(accuracy_by_level) >= 2 and all(len(a) > 1 for a in accuracy_by_level.values()):
            smallest, largest = min(accuracy_by_level), max(accuracy_by_level)
            entry["data_gradient"] = rise(accuracy_by_level[smallest], accuracy_by_level[largest])
        tasks[task_name] = entry
    return tasks


def complete(task: dict, levels: list[float], seeds: int) -> bool:
    """Every screened level has a row for every seed."""
    return len(task["levels"]) == len(levels) and all(v["seeds"] == seeds for v in task["levels"].values())


def choose(tasks: dict, levels: list[float], seeds: int, count: int) -> list[str]:
    """The rule of the module docstring: every level passes, accuracy rises with data; the steepest first."""
    eligible = [(t["data_gradient"]["rise"], name) for name, t in tasks.items()
                if complete(t, levels, seeds) and all(v["passes"] for v in t["levels"].values())
                and t.get("data_gradient", {}).get("low", -1) > 0]
    return [name for _, name in sorted(eligible, reverse=True)[:count]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", nargs="+", default=CANDIDATES)
    p.add_argument("--levels", nargs="+", type=float, default=[0.1, 1.0], help="data fractions (the settings' extremes)")
    p.add_argument("--seeds", nargs="+", type=int, default=[41, 42, 43])
    p.add_argument("--steps", type=int, default=1000, help="optimizer updates at every level")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--max-eval", type=int, default=2000)
    p.add_argument("--model", default="minilm")
    p.add_argument("--device", default=None)
    p.add_argument("--executor", default="local")
    p.add_argument("--choose", type=int, default=3, help="how many tasks the rule picks")
    p.add_argument("--store", type=Path, default=Path("results/learnability.sqlite"))
    p.add_argument("--out", type=Path, default=Path("bench/results/learnability.json"))
    p.add_argument("--judge-only", action="store_true", help="judge the stored rows, run nothing (cells missing are reported)")
    args = p.parse_args()

    config = screen_config(args)
    cells = dense_cells(config)
    store = ResultsStore(args.store)
    todo = len({cell_key({"setting": "setting1", **c}) for c in cells} - store.keys())
    print(f"learnability screen: {len(args.tasks)} tasks x {len(args.levels)} levels x {len(args.seeds)} seeds = "
          f"{len(cells)} dense fine-tunes of {args.steps} updates, {todo} to run", flush=True)
    start = time.perf_counter()
    if todo and not args.judge_only:
        run_grid("setting1", cells, partial(FinetuneRunner, config), store, executor=args.executor)
    seconds = time.perf_counter() - start
    tasks = judge(config, store)
    frame = store.frame()
    result = {
        "tasks": tasks,
        "chosen": choose(tasks, args.levels, len(args.seeds), args.choose),
        "rule": "every screened level passes the gate; the data gradient's interval wholly above 0; "
                f"the {args.choose} steepest gradients",
        "gate": {"margin": GATE_MARGIN, "interval": "95% t over seeds and questions (jdlib.analysis.floor)",
                 "floor": "max(chance, majority-class rate of the evaluation split)"},
        "recipe": {"recipe": RECIPE, "steps": args.steps, "lr": args.lr, "batch_size": args.batch_size,
                   "max_length": args.max_length, "warmup_ratio": 0.06, "schedule": "linear decay",
                   "max_train": None, "max_eval": args.max_eval, "seeds": args.seeds},
        "incomplete": sorted(name for name, t in tasks.items() if not complete(t, args.levels, len(args.seeds))),
        "seconds_this_run": round(seconds, 1),
        "executors": sorted({r["provenance"].get("executor", "?") for r in store.rows()}),
        # the rows' own provenance: a rerun that finds every cell stored only judges them
        "devices": sorted(set(frame["device"])), "git_commits": sorted(set(frame["git_commit"])),
        "torch": sorted({r["provenance"]["versions"]["torch"] for r in store.rows()}),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for name, t in tasks.items():
        marks = " ".join(f"{lv}:{v['dense']:.3f}{'+' if v['passes'] else '-'}" for lv, v in t["levels"].items())
        print(f"{name:50s} floor {t['floor']:.3f}  {marks}  rise {t.get('data_gradient', {}).get('rise')}")
    print("chosen:", result["chosen"], f"({seconds:.0f} s)")


if __name__ == "__main__":
    main()
