"""Fine-tuning throughput on a GPU: jdlib's `finetune` against a plain PyTorch loop, and a sweep's
cells per hour on 1 and on N GPUs through the Dask executor `local-gpus`.

Parts, each run in its own process (so one that fails or runs long costs only itself):

- cell: one Setting 1 cell's fine-tune (the MiniLM classifier, a BIG-bench task, sparse transfer
  at 50% magnitude sparsity, batch 32, length 128, 3 epochs, AdamW, linear decay with 6% warm-up)
  through jdlib and through a plain loop of the same recipe: fp32, a padding collator, the same
  transfer-mode masking, `loss.item()` each step. Tokenising and training are timed apart; the
  speedup is the training rate's (a sweep tokenises a subset once for the cells that share it),
  the end-to-end one is reported beside it. jdlib's runs are each made twice: cold, the process's
  first (CUDA and cuBLAS start-up, the first graph), and warm, as every later cell of a sweep.
- agreement: small Setting 1 grids through `jdlib.sweep` on the given device, rows written as
  JSON; run it once on a GPU and once on a CPU and `report` compares them.
- sweep: a thinned Setting 1 grid through `executor="local-gpus"` on the visible GPUs; cells per hour.
- report: merges the parts into one JSON with speedup_vs_plain_loop and scaling_efficiency.

    python bench/finetune_throughput.py all --parts DIR --gpus 1 2 --out DIR/finetune_throughput_h200.json
    python bench/finetune_throughput.py agreement --device cpu --name agreement-cpu --parts CPU_DIR
    python bench/finetune_throughput.py report --parts DIR CPU_DIR --out bench/results/finetune_throughput_h200.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASK = "bigbench/vitaminc_fact_verification"
RECIPE = {"epochs": 3, "batch_size": 32, "lr": 1e-4, "max_length": 128, "seed": 41}
VARIANTS = {"jdlib": {}, "jdlib_no_graph": {"cuda_graph": False}, "jdlib_fp32": {"precision": "fp32"},
            "jdlib_compile": {"compile": True},
            # the cost of bit-identical reruns: jdlib's default (deterministic algorithms) against without
            "jdlib_nondeterministic": {"deterministic_algorithms": False}}
GOALS = {"speedup_vs_plain_loop": 4.0, "scaling_efficiency": 0.85}
# Setting 1's full grid on one task, thinned: every fraction, the dense baseline, two sparsities and one N:M.
SWEEP = {"tasks": [TASK], "fractions": [0.1, 0.25, 0.5, 0.7, 1.0], "sparsities": [0.5, 0.9],
         "pattern": ["unstructured", "2:8"], "max_train": 5000, "max_eval": 2000}
SWEEP_SEEDS_PER_GPU = 2
# Grids for the CPU/GPU agreement: the quick grid, and a small cell that learns (3 epochs of 800 examples).
AGREEMENT = {"quick": ("quick", {}),
             "learns": ("full", {"tasks": [TASK], "fractions": [1.0], "sparsities": [0.5], "pattern": ["unstructured"],
                                 "seeds": [41, 42, 43], "max_train": 800, "max_eval": 400})}


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain_tokenise(loaded, train, max_length: int) -> list[dict]:
    """The baseline's data: one tokenised item per example, for a padding collator."""
    columns = train[:]
    encoded = loaded.tokenizer(columns["text"], columns.get("text_pair"), truncation=True, max_length=max_length)
    return [{**{k: v[i] for k, v in encoded.items()}, "labels": label} for i, label in enumerate(columns["label"])]


def plain_loop(loaded, items: list[dict], masks, epochs: int, batch_size: int, lr: float, max_length: int,
               seed: int) -> list[float]:
    """The baseline: the recipe as a plain loop (fp32, batches padded by a collator, one `.item()` a step)."""
    import torch
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

    from jdlib.transfer import Transfer

    torch.manual_seed(seed)
    model = loaded.model
    device = next(model.parameters()).device
    loader = DataLoader(items, batch_size=batch_size, shuffle=True,
                        collate_fn=DataCollatorWithPadding(loaded.tokenizer),
                        generator=torch.Generator().manual_seed(seed))
    enforcer = Transfer(model, masks, "sparse")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    total = epochs * len(loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(0.06 * total), total)
    model.train()
    losses = []
    for _ in range(epochs):
        for batch in loader:
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
            loss.backward()
            enforcer.before_step()
            optimizer.step()
            enforcer.after_step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    model.eval()
    return losses


def part_cell(args: argparse.Namespace) -> dict:
    """Time one cell's fine-tune: the plain loop, then jdlib's variants (each twice: a cold and a warm call).

    Each run times tokenisation and training apart: a sweep tokenises a subset once for all the
    cells that share it, and the rates the issue quotes are training rates.
    """
    import torch

    from jdlib import train as jdtrain
    from jdlib.compress import prune
    from jdlib.data import load_task
    from jdlib.evaluate import evaluate
    from jdlib.models import load_model, restore, snapshot
    from jdlib.results import device_name

    task = load_task(args.task).cap(args.max_train, args.max_eval)
    loaded = load_model("minilm", head="classification", num_labels=task.num_labels, device=args.device)
    pretrained = snapshot(loaded.model)
    masks, _ = prune(loaded.model, method="magnitude", sparsity=0.5, scope="global")
    compressed = snapshot(loaded.model)
    train = task.train
    examples = RECIPE["epochs"] * len(train)
    capture = []

    class TimedGraphedStep(jdtrain.GraphedStep):
        def __init__(self, *a, **kw):
            synchronize()
            start = time.perf_counter()
            super().__init__(*a, **kw)
            synchronize()
            capture.append(time.perf_counter() - start)

    jdtrain.GraphedStep = TimedGraphedStep

    def run(label: str, tokenise, fine_tune) -> dict:
        restore(loaded.model, compressed)
        jdtrain.init_head(loaded, RECIPE["seed"])
        jdtrain._ENCODED.clear()  # every run tokenises, as a cell with a new subset does
        capture.clear()
        synchronize()
        start = time.perf_counter()
        data = tokenise()
        tokenised = time.perf_counter()
        losses = fine_tune(data)
        synchronize()
        end = time.perf_counter()
        metrics = evaluate(loaded, task.validation, max_length=RECIPE["max_length"])
        pruned_zero = all(bool((p[~masks.keep[n]] == 0).all()) for n, p in loaded.model.named_parameters()
                          if n in masks.keep)
        row = {"tokenise_s": round(tokenised - start, 3), "train_s": round(end - tokenised, 3),
               "capture_s": round(sum(capture), 3) if capture else None,
               "examples_per_s": round(examples / (end - tokenised), 1),
               "end_to_end_examples_per_s": round(examples / (end - start), 1),
               "final_loss": round(losses[-1], 4), "accuracy": metrics["accuracy"],
               "eval_loss": round(metrics["loss"], 4),
               "pruned_weights_zero": pruned_zero}
        print(f"{label:<24} tokenise {row['tokenise_s']:6.2f} s  train {row['train_s']:6.2f} s "
              f"(capture {row['capture_s']})  {row['examples_per_s']:>7.0f} examples/s "
              f"({row['end_to_end_examples_per_s']:.0f} with tokenising)  accuracy {metrics['accuracy']:.4f}  "
              f"pruned zero {pruned_zero}", flush=True)
        return row

    def jdlib_run(**kwargs):
        return lambda _: jdtrain.finetune(loaded, train, "sparse", masks, progress=False, **RECIPE, **kwargs)

    def jdlib_tokenise():
        return jdtrain.encode(loaded, train, RECIPE["max_length"])

    out = {"task": args.task, "train_examples": len(train), "eval_examples": len(task.validation),
           "examples_per_run": examples, "recipe": RECIPE, "device": device_name(),
           "torch": torch.__version__, "git_commit": os.environ.get("JDLIB_GIT_COMMIT")}
    if "plain_fp32" in args.variants:
        out["plain_fp32"] = run("plain loop (fp32)", lambda: plain_tokenise(loaded, train, RECIPE["max_length"]),
                                lambda items: plain_loop(loaded, items, masks, **RECIPE))
    for name, kwargs in VARIANTS.items():
        if name in args.variants:
            out[name] = {"cold": run(f"{name} (cold)", jdlib_tokenise, jdlib_run(**kwargs)),
                         "warm": run(f"{name} (warm)", jdlib_tokenise, jdlib_run(**kwargs))}
    restore(loaded.model, pretrained)
    return out


def sweep_config(setting_params: str, overrides: dict, store: Path, executor: str, device: str | None):
    from jdlib.settings import load

    return load("setting1", setting_params, store=str(store), executor=executor, device=device, **overrides)


def part_agreement(args: argparse.Namespace) -> dict:
    """Run the agreement grids on `args.device`; return their rows (config and metrics)."""
    from jdlib.results import ResultsStore, device_name
    from jdlib.sweep import sweep

    out = {"device": device_name() if args.device != "cpu" else f"cpu ({os.cpu_count()} cores)", "grids": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (params, overrides) in AGREEMENT.items():
            store = Path(tmp) / f"{name}.sqlite"
            start = time.perf_counter()
            sweep(sweep_config(params, overrides, store, "local", args.device), progress=False)
            frame = ResultsStore(store).frame()
            keep = ["fraction", "transfer", "method", "pattern", "sparsity", "seed", "accuracy", "loss"]
            out["grids"][name] = {"seconds": round(time.perf_counter() - start, 1),
                                  "rows": frame[keep].to_dict(orient="records")}
            print(f"agreement grid {name}: {len(frame)} cells in {out['grids'][name]['seconds']} s", flush=True)
    return out


def part_sweep(args: argparse.Namespace) -> dict:
    """A thinned Setting 1 grid through executor local-gpus on the visible GPUs; cells per hour."""
    import torch

    from jdlib.results import ResultsStore
    from jdlib.sweep import sweep

    gpus = torch.cuda.device_count() if args.executor.startswith("local-gpus") else int(args.executor.split(":")[1])
    per_gpu = int(args.executor.split(":")[1]) if args.executor.startswith("local-gpus:") else 1
    seeds = list(range(41, 41 + SWEEP_SEEDS_PER_GPU * gpus * per_gpu))
    grid = {**SWEEP, "seeds": seeds, "max_train": args.max_train, "max_eval": args.max_eval}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "sweep.sqlite"
        config = sweep_config("full", grid, store, args.executor, None)
        start = time.perf_counter()
        sweep(config, progress=False)
        seconds = time.perf_counter() - start
        frame = ResultsStore(store).frame()
    cells = len(frame)
    busy = frame["wall_time_s"].sum()
    out = {"gpus": gpus, "workers_per_gpu": per_gpu, "cells": cells, "seconds": round(seconds, 1), "cells_per_hour": round(cells / seconds * 3600),
           "cell_seconds_median": round(float(frame["wall_time_s"].median()), 3),
           "cell_seconds_sum": round(float(busy), 1), "busy_fraction": round(float(busy) / (gpus * per_gpu * seconds), 3),
           "executor": args.executor, "grid": grid}
    print(f"sweep on {gpus} GPU(s): {cells} cells in {seconds:.1f} s = {out['cells_per_hour']} cells/hour "
          f"(median cell {out['cell_seconds_median']} s)", flush=True)
    return out


def run_part(part: str, args: argparse.Namespace, extra: list[str], env: dict | None = None, name: str | None = None):
    """Run one part in a fresh process with a time limit; its JSON lands in the parts folder."""
    name = name or part
    command = [sys.executable, __file__, part, "--parts", str(args.parts[0]), "--name", name, *extra]
    print(f"== {name}: {' '.join(command[2:])}", flush=True)
    try:
        subprocess.run(command, env={**os.environ, **(env or {})}, timeout=args.timeout, check=True)
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as err:
        print(f"== {name} did not finish: {err}", flush=True)


def part_all(args: argparse.Namespace) -> None:
    import torch

    available = torch.cuda.device_count()
    run_part("cell", args, ["--task", args.task, "--device", "cuda", "--variants", *args.cell_variants])
    run_part("agreement", args, ["--device", "cuda"], name="agreement-cuda")
    for n in args.gpus:
        if n <= available:
            run_part("sweep", args, [], env={"CUDA_VISIBLE_DEVICES": ",".join(map(str, range(n)))}, name=f"sweep-{n}")
    if args.compile:  # last: its first call compiles for minutes
        run_part("cell", args, ["--task", args.task, "--device", "cuda", "--variants", "jdlib_compile"],
                 name="cell-compile")


def agreement_summary(gpu: dict, cpu: dict) -> dict:
    """Per grid and level: each seed's accuracy and loss on each device, the difference of the means, and
    the spread over seeds (both devices' values pooled)."""
    summary = {}
    for name in gpu["grids"]:
        if name not in cpu.get("grids", {}):
            continue
        groups: dict[str, dict[tuple[str, str], list[float]]] = {}
        for device, part in (("gpu", gpu), ("cpu", cpu)):
            for row in part["grids"][name]["rows"]:
                level = f"fraction {row['fraction']}, {row['transfer']} {row['pattern']} {row['sparsity']}"
                for metric in ("accuracy", "loss"):
                    groups.setdefault(level, {}).setdefault((metric, device), []).append(row[metric])
        rows = {}
        for level, values in sorted(groups.items()):
            rows[level] = {}
            for metric in ("accuracy", "loss"):
                on_gpu, on_cpu = values[(metric, "gpu")], values[(metric, "cpu")]
                rows[level][metric] = {
                    "gpu": [round(v, 4) for v in on_gpu], "cpu": [round(v, 4) for v in on_cpu],
                    "gpu_minus_cpu": round(statistics.mean(on_gpu) - statistics.mean(on_cpu), 4),
                    "seed_std": round(statistics.stdev(on_cpu + on_gpu), 4) if len(on_cpu) > 1 else None}
        summary[name] = rows
    return summary


def part_report(args: argparse.Namespace) -> dict:
    parts = {}
    for folder in args.parts:
        for path in sorted(Path(folder).glob("*.json")):
            parts[path.stem] = json.loads(path.read_text())
    compiled = {k: v for k, v in parts.get("cell-compile", {}).items() if k.startswith("jdlib")}
    cell = {**parts.get("cell", {}), **compiled}
    out = {"speedup_vs_plain_loop": None, "scaling_efficiency": None, "gpus": None, "device": cell.get("device"),
           "goals": GOALS, "git_commit": os.environ.get("JDLIB_GIT_COMMIT")}
    if "plain_fp32" in cell and "jdlib" in cell:
        plain = cell["plain_fp32"]
        out["speedup_vs_plain_loop"] = round(cell["jdlib"]["warm"]["examples_per_s"] / plain["examples_per_s"], 2)
        out["speedup_with_tokenising"] = round(cell["jdlib"]["warm"]["end_to_end_examples_per_s"]
                                               / plain["end_to_end_examples_per_s"], 2)
        out["speedup_by_variant"] = {name: {run: round(cell[name][run]["examples_per_s"] / plain["examples_per_s"], 2)
                                            for run in ("cold", "warm")}
                                     for name in cell if name.startswith("jdlib")}
    sweeps = {p["gpus"]: p for name, p in parts.items() if name.startswith("sweep") and p.get("workers_per_gpu", 1) == 1}
    packed = {f"{p['gpus']}x{p['workers_per_gpu']}": p for name, p in parts.items()
              if name.startswith("sweep") and p.get("workers_per_gpu", 1) > 1}
    if sweeps:
        most = max(sweeps)
        out["gpus"] = most
        if 1 in sweeps and most > 1:
            out["scaling_efficiency"] = round(sweeps[most]["cells_per_hour"] / (most * sweeps[1]["cells_per_hour"]), 3)
    out["cell"] = cell
    out["sweeps"] = {str(n): p for n, p in sorted(sweeps.items())}
    if packed:  # several workers per GPU (executor local-gpus:K), against one worker on as many GPUs
        out["packed_sweeps"] = {name: {**p, "speedup_vs_one_worker": round(
            p["cells_per_hour"] / sweeps[p["gpus"]]["cells_per_hour"], 2) if p["gpus"] in sweeps else None}
            for name, p in sorted(packed.items())}
    if "agreement-cuda" in parts and "agreement-cpu" in parts:
        out["agreement"] = {"gpu_device": parts["agreement-cuda"]["device"],
                            "cpu_device": parts["agreement-cpu"]["device"],
                            "notes": [part["note"] for part in (parts["agreement-cuda"], parts["agreement-cpu"])
                                      if part.get("note")],
                            "grids": agreement_summary(parts["agreement-cuda"], parts["agreement-cpu"])}
    if args.earlier:
        earlier = {path.stem: json.loads(path.read_text()) for path in sorted(args.earlier.glob("*.json"))}
        cells = {**earlier.get("cell", {}), **earlier.get("cell-compile", {})}
        plain = cells["plain_fp32"]["examples_per_s"]
        out["earlier_run"] = {"note": args.earlier_note, "speedup_by_variant": {
            name: {run: round(cells[name][run]["examples_per_s"] / plain, 2) for run in ("cold", "warm")}
            for name in cells if name.startswith("jdlib")}, "parts": earlier}
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps({k: out[k] for k in ("speedup_vs_plain_loop", "scaling_efficiency", "gpus", "device")}))
    return out


PARTS = {"cell": part_cell, "agreement": part_agreement, "sweep": part_sweep}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=[*PARTS, "all", "report"])
    p.add_argument("--parts", nargs="+", type=Path, default=[Path(tempfile.gettempdir()) / "finetune_throughput"],
                   help="folder(s) of the parts' JSON (report reads them all; the others write to the first)")
    p.add_argument("--name", help="the part's JSON file name (default: the part)")
    p.add_argument("--task", default=TASK)
    p.add_argument("--device", default="cuda", help="cell and agreement: the torch device")
    p.add_argument("--max-train", type=int, default=SWEEP["max_train"], help="cell and sweep: training examples")
    p.add_argument("--max-eval", type=int, default=SWEEP["max_eval"], help="cell and sweep: evaluation examples")
    p.add_argument("--variants", nargs="+", choices=["plain_fp32", *VARIANTS], default=["plain_fp32", "jdlib"],
                   help="cell: what to time")
    p.add_argument("--cell-variants", nargs="+", choices=["plain_fp32", *VARIANTS],
                   default=["plain_fp32", "jdlib", "jdlib_no_graph", "jdlib_fp32"],
                   help="all: what the cell part times")
    p.add_argument("--executor", default="local-gpus", help="sweep: local-gpus, local-gpus:K (K workers per GPU), or local-cpus:N to try it on a CPU")
    p.add_argument("--compile", action="store_true", help="all: also time finetune(compile=True), last")
    p.add_argument("--gpus", nargs="+", type=int, default=[1, 2], help="all: the GPU counts to sweep on")
    p.add_argument("--timeout", type=float, default=300, help="all: seconds each part may run")
    p.add_argument("--out", help="report: the JSON to write")
    p.add_argument("--earlier", type=Path, help="report: an earlier run's parts folder, kept beside as raw numbers")
    p.add_argument("--earlier-note", default="", help="report: what the earlier run was (machine, commit, ...)")
    args = p.parse_args()
    if args.part == "all":
        part_all(args)
        part_report(args)
    elif args.part == "report":
        part_report(args)
    else:
        args.parts[0].mkdir(parents=True, exist_ok=True)
        result = PARTS[args.part](args)
        (args.parts[0] / f"{args.name or args.part}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
