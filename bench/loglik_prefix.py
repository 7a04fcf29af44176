"""Multiple-choice log-likelihoods: the shared prefix computed once against a pass per option, in one run.

jdlib.scorers.loglik scores an example's options with one forward pass over its context (the
few-shot demonstrations and the question) and one batched pass over the options on the
context's key/value cache. The baseline runs every context + option sequence through the
model in full, one pass each, which is what scoring "by hand" does. Both must give the same
log-likelihoods; this prints the time of each, the ratio and the largest difference.

    python bench/loglik_prefix.py                          # a random Llama, 5-shot-sized contexts
    python bench/loglik_prefix.py --layers 8 --hidden 512 --examples 20 --out results.json
"""
from __future__ import annotations

import argparse
import json
import random
import time

import torch

from jdlib.models import tiny_tokenizer
from jdlib.results import device_name
from jdlib.scorers.loglik import LoglikScorer, encode_pair


def model_of(layers: int, hidden: int, device: torch.device):
    from transformers import LlamaConfig, LlamaForCausalLM

    from jdlib.models import LoadedModel

    tok = tiny_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 11 // 4,
                         num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64), num_key_value_heads=max(1, hidden // 64),
                         max_position_embeddings=4096, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id)
    return LoadedModel(LlamaForCausalLM(config).to(device).eval(), tok, "bench-llama", "causal_lm", "decoder")


def examples(n: int, context_chars: int, options: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    rng = random.Random(seed)
    words = "the of and to in is was for on that with as by at from his her which or an be are".split()

    def text(chars: int) -> str:
        out = ""
        while len(out) < chars:
            out += rng.choice(words) + " "
        return out[:chars].strip()

    return [(text(context_chars) + "\nanswer:", [text(rng.randint(8, 40)) for _ in range(options)]) for _ in range(n)]


@torch.no_grad()
def per_option(loaded, items) -> list[list[float]]:
    """Baseline: a full forward pass over context + continuation for every option (the tokens
    `encode_pair` gives, which carry the tokenizer's own start token as lm-evaluation-harness's do)."""
    model, tok = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    out = []
    for context, options in items:
        row = []
        for option in options:
            ctx, cont = encode_pair(tok, context, " " + option)
            ids = torch.tensor([ctx + cont], device=device)
            logprobs = torch.log_softmax(model(ids).logits[0].float(), -1)
            start = len(ctx)
            row.append(float(logprobs[start - 1:start - 1 + len(cont)].gather(1, torch.tensor(cont, device=device)[:, None]).sum()))
        out.append(row)
    return out


def shared_prefix(loaded, items) -> list[list[float]]:
    scorer = LoglikScorer(loaded, max_length=4096)
    return [scorer.loglikelihoods(context, options) for context, options in items]


def timed(fn, *args) -> tuple[float, object]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--examples", type=int, default=10)
    parser.add_argument("--context-chars", type=int, default=600, help="about five MMLU demonstrations' worth")
    parser.add_argument("--options", type=int, default=4)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loaded = model_of(args.layers, args.hidden, device)
    items = examples(args.examples, args.context_chars, args.options)
    shared_prefix(loaded, items[:1]), per_option(loaded, items[:1])  # warm-up
    base_s, base = timed(per_option, loaded, items)
    new_s, new = timed(shared_prefix, loaded, items)
    diff = max(abs(a - b) for ra, rb in zip(base, new) for a, b in zip(ra, rb))
    result = {"device": device_name(), "layers": args.layers, "hidden": args.hidden, "examples": args.examples,
              "context_chars": args.context_chars, "options": args.options, "per_option_s": round(base_s, 3),
              "shared_prefix_s": round(new_s, 3), "speedup": round(base_s / new_s, 2), "max_abs_diff": diff}
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
