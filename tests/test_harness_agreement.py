"""jdlib's decoder multiple-choice scoring against lm-evaluation-harness's HF model, on one model object.

The harness is the reference: its `HFLM.loglikelihood` scores the same (context, " " + option)
requests as its multiple-choice tasks make them (PIQA, HellaSwag, OpenBookQA: cloze), and its
acc / acc_norm are the two lines of `ConfigurableTask.process_results`, copied below. Nothing is
downloaded: the models are random, the tokenizer is jdlib's offline character tokenizer.

Tolerance: both sides compute in fp32 the same log-softmax sums (-11 to -265 here), through
different batching, padding and (jdlib) a key/value cache, so they differ by rounding only:
measured at most 2.3e-7 relative, two float32 ulps of the sum. REL_TOL = 1e-5 leaves 40x
headroom, and `test_the_tolerance_catches_an_off_by_one_split` checks that a one-token slip of
the context/continuation split moves every sum by more than 100 x REL_TOL (measured: at least
1.2%, 2.5 nats).
"""
import random

import numpy as np
import pytest
import torch
from lm_eval.api.instance import Instance  # lm-evaluation-harness, a dev dependency (pip install -e .[dev])
from lm_eval.models.huggingface import HFLM
from tokenizers.processors import TemplateProcessing
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from jdlib.models import LoadedModel, tiny_tokenizer
from jdlib.scorers.loglik import ChoiceItem, LoglikScorer, encode_pair
from jdlib.scorers.prompts import choice_item


REL_TOL = 1e-5
WORDS = "the of and to in is was for on that with as by at from his her which or an be are cat dog red sky".split()


def llama_tokenizer():
    """The character tokenizer with BOS first by default, as a Llama tokenizer encodes."""
    tok = tiny_tokenizer()
    tok._tokenizer.post_processor = TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", tok.cls_token_id)])
    return tok


def decoder(arch: str) -> LoadedModel:
    """A random 2-layer decoder whose logits spread (init std 0.2): near-ties between options stay rare."""
    if arch == "llama":
        tok = llama_tokenizer()
        config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                             initializer_range=0.2, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                             eos_token_id=tok.eos_token_id)
        model_class = LlamaForCausalLM
    else:  # GPT-2 style: absolute positions, and a tokenizer that adds no BOS, as GPT-2's
        tok = tiny_tokenizer()
        config = GPT2Config(vocab_size=len(tok), n_positions=512, n_embd=64, n_layer=2, n_head=4,
                            initializer_range=0.2, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                            eos_token_id=tok.eos_token_id)
        model_class = GPT2LMHeadModel
    torch.manual_seed(0)
    return LoadedModel(model_class(config).eval(), tok, f"random-{arch}", "causal_lm", "decoder")


def question_set(n: int = 30, seed: int = 0) -> list[ChoiceItem]:
    """Cloze questions with 2-5 options of 1-12 words, some after solved demonstrations, and edge cases."""
    rng = random.Random(seed)

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))

    def example() -> dict:
        options = list(dict.fromkeys(text(1, 12) for _ in range(rng.randint(2, 5))))
        return {"text": text(3, 15) + "?", "options": options, "label": rng.randrange(len(options))}

    items = [choice_item(example(), [example() for _ in range(rng.choice([0, 0, 1, 2]))]) for _ in range(n - 3)]
    return items + [ChoiceItem("", ["yes it is", "no"], 0),  # no context: the BOS (EOS) token alone
                    ChoiceItem("the sky is ", ["red", "blue sky"], 1),  # trailing space joins the continuation
                    ChoiceItem("question: is it?\n", ["cat", "dog dog"], 0)]  # so does a trailing newline


def harness_choices(lls: list[float], options: list[str]) -> tuple[int, int]:
    """acc and acc_norm picks as lm_eval.api.task.ConfigurableTask.process_results makes them."""
    completion_len = np.array([float(len(i)) for i in options])
    return int(np.argmax(lls)), int(np.argmax(np.array(lls) / completion_len))


def harness(loaded: LoadedModel, max_length: int) -> HFLM:
    return HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=8, max_length=max_length, device="cpu")


def requests_of(items: list[ChoiceItem]) -> list[tuple[str, str]]:
    return [(item.context, " " + option) for item in items for option in item.options]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def model(request):
    return decoder(request.param)


@pytest.fixture(scope="module")
def scored(model):
    """Per max_length: the harness's log-likelihood of every request, and a jdlib scorer (it remembers its own)."""
    items, cache = question_set(), {}

    def at(max_length: int) -> tuple[list[float], LoglikScorer]:
        if max_length not in cache:
            requests = [Instance("loglikelihood", {}, r, i) for i, r in enumerate(requests_of(items))]
            reference = [ll for ll, _ in harness(model, max_length).loglikelihood(requests, disable_tqdm=True)]
            cache[max_length] = reference, LoglikScorer(model, max_length=max_length, batch_size=8)
        return cache[max_length]

    return items, at


# 512 reads every question whole; 96 tokens cut most contexts from the left, as the harness does
@pytest.mark.parametrize("max_length", [512, 96])
def test_jdlib_and_the_harness_give_the_same_loglikelihoods_and_choices(scored, max_length):
    items, at = scored
    reference, scorer = at(max_length)
    ours = scorer.choose(items)
    assert scorer.score(requests_of(items)) == pytest.approx(reference, rel=REL_TOL, abs=0)

    start, picks, picks_norm = 0, [], []
    for item in items:
        pick, pick_norm = harness_choices(reference[start:start + len(item.options)], item.options)
        start += len(item.options)
        picks.append(pick)
        picks_norm.append(pick_norm)
    assert ours["predictions"] == picks
    assert ours["predictions_norm"] == picks_norm
    assert len(set(picks)) > 1 and picks != picks_norm  # the set does not let a trivial rule agree


def test_the_tolerance_catches_an_off_by_one_split(model, scored):
    """A scorer that let the context keep the continuation's first token would miss REL_TOL on every option."""
    items, at = scored
    reference, _ = at(512)
    right, slipped = [], []
    for request, ll in zip(requests_of(items), reference):
        ctx, cont = encode_pair(model.tokenizer, *request)
        if len(cont) > 1:
            right.append(ll)
            slipped.append((request, ctx + cont[:1], cont[1:]))
    wrong = [ll for ll, _ in harness(model, 512)._loglikelihood_tokens(slipped, disable_tqdm=True)]
    assert len(wrong) > 90 and min(abs(a - b) / abs(a) for a, b in zip(right, wrong)) > 100 * REL_TOL


def test_the_set_tells_character_from_token_normalisation(model, scored):
    """acc_norm divides by characters: dividing by the continuation's tokens would change a choice."""
    items, at = scored
    scorer = at(512)[1]
    by_chars = scorer.choose(items)["predictions_norm"]
    by_tokens = []
    for item in items:
        lls = np.array(scorer.loglikelihoods(item.context, item.options))
        tokens = np.array([len(encode_pair(model.tokenizer, item.context, " " + o)[1]) for o in item.options])
        by_tokens.append(int(np.argmax(lls / tokens)))
    assert by_chars != by_tokens
