"""Per-block time of Wanda, SparseGPT and GPTQ on Llama-7B-shaped blocks with random weights.

Each method runs twice in the same process on the same weights and calibration: with one
statistic (input norm or Hessian, and its Cholesky factor) per distinct linear input, as
jdlib does (q/k/v share one, gate/up share one), and the plain baseline with one per linear.
It prints the ratio of the best of --repeats runs (alternating the two) and whether both gave
the same weights.

    python bench/compress_blocks.py --out compress_blocks.json     # Llama-7B shapes, on the GPU if there is one
    python bench/compress_blocks.py --hidden 256 --intermediate 688 --heads 4 --samples 8 --seq-len 128  # CPU
"""
from __future__ import annotations

import argparse
import json
import statistics

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

from jdlib.compress import prunable_weights, quantize
from jdlib.compress.sparsegpt import prune_sparsegpt
from jdlib.compress.wanda import prune_wanda
from jdlib.models import restore, snapshot
from jdlib.results import device_name

METHODS = ("wanda", "sparsegpt", "gptq")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--intermediate", type=int, default=11008)
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--blocks", type=int, default=2, help="blocks to compress (the time is averaged over them)")
    p.add_argument("--samples", type=int, default=128, help="calibration sequences")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=1024, help="small: the embedding and head are not timed")
    p.add_argument("--sparsity", type=float, default=0.5)
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--repeats", type=int, default=3, help="runs of each variant; the fastest counts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the results as JSON to this path")
    return p.parse_args()


def build_model(args: argparse.Namespace, device: torch.device) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.intermediate,
        num_hidden_layers=args.blocks, num_attention_heads=args.heads, num_key_value_heads=args.heads,
        max_position_embeddings=max(2048, args.seq_len),
    )
    torch.manual_seed(args.seed)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    return model.to(torch.float16 if device.type == "cuda" else torch.float32).eval()


def run(method: str, model: torch.nn.Module, calibration: torch.Tensor, args, share: bool) -> list[float]:
    """Seconds per block for one compression of `model` in place."""
    if method == "wanda":
        return prune_wanda(model, calibration, args.sparsity, share_inputs=share)[1].block_seconds
    if method == "sparsegpt":
        return prune_sparsegpt(model, calibration, args.sparsity, share_inputs=share)[1].block_seconds
    return quantize(model, "gptq", args.bits, calibration=calibration, share_inputs=share).block_seconds


def main() -> None:
    args = parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(args, device)
    dense = snapshot(model)
    generator = torch.Generator().manual_seed(args.seed)
    calibration = torch.randint(0, args.vocab, (args.samples, args.seq_len), generator=generator)
    rows = {}
    for method in args.methods:
        # Warm-up on two sequences: kernel selection and solver handles are not what is timed.
        run(method, model, calibration[:2], args, share=True)
        timings, weights = {"baseline": [], "shared": []}, {}
        for _ in range(args.repeats):
            for variant, share in (("baseline", False), ("shared", True)):
                restore(model, dense)
                timings[variant].append(run(method, model, calibration, args, share))
                weights[variant] = {n: w.detach().clone() for n, w in prunable_weights(model).items()}
        base, shared = (min(statistics.mean(t) for t in timings[v]) for v in ("baseline", "shared"))
        rows[method] = {
            "baseline_s_per_block": base, "shared_s_per_block": shared, "speedup": base / shared,
            "baseline_block_seconds": timings["baseline"], "shared_block_seconds": timings["shared"],
            "same_weights": all(torch.equal(weights["baseline"][n], w) for n, w in weights["shared"].items()),
        }
        del weights
    restore(model, dense)

    header = {
        "device": device_name(), "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "blocks": args.blocks, "hidden": args.hidden, "intermediate": args.intermediate, "heads": args.heads,
        "samples": args.samples, "seq_len": args.seq_len, "sparsity": args.sparsity, "bits": args.bits,
        "repeats": args.repeats,
    }
    print(f"device: {header['device']}  dtype: {header['dtype']}  torch {torch.__version__}")
    print(f"{args.blocks} Llama blocks (hidden {args.hidden}, intermediate {args.intermediate}, {args.heads} heads), "
          f"calibration {args.samples} x {args.seq_len} tokens, best of {args.repeats}")
    print(f"{'method':<10} {'baseline s/block':>17} {'shared s/block':>15} {'speed-up':>9} {'same weights':>13}")
    for method, r in rows.items():
        print(f"{method:<10} {r['baseline_s_per_block']:>17.3f} {r['shared_s_per_block']:>15.3f} "
              f"{r['speedup']:>8.2f}x {('yes' if r['same_weights'] else 'no'):>13}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({**header, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
