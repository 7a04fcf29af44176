"""Scorers and difficulty knobs of the no-fine-tuning settings: real invariants on tiny models."""
import random

import pytest
import torch
from tokenizers.processors import TemplateProcessing

from jdlib.difficulty import answer_span, context_window, few_shot, reduce_options
from jdlib.models import LoadedModel, load_model, tiny_tokenizer
from jdlib.scorers import (Embedder, Generator, LoglikScorer, answer_metrics, choose, class_prototypes, exact_match,
                           f1_score, lenient_match, normalize_answer)
from jdlib.scorers.embedding import choose_among
from jdlib.scorers.loglik import ChoiceItem, encode_pair
from jdlib.scorers.prompts import choice_item


# -- log-likelihood -------------------------------------------------------------------------
def hand_loglik(loaded, context: str, option: str) -> float:
    """Plain forward pass over context + continuation tokens, log-softmax, sum over the continuation."""
    ctx, cont = encode_pair(loaded.tokenizer, context, " " + option)
    with torch.no_grad():
        logprobs = torch.log_softmax(loaded.model(torch.tensor([ctx + cont])).logits[0].float(), -1)
    return sum(float(logprobs[len(ctx) + j - 1, t]) for j, t in enumerate(cont))


CASES = [("q: which is a pet? a:", ["cat", "a large dog", "x"]),
         ("", ["hello", "hi"]),  # zero-shot, empty context: the BOS token alone predicts the first token
         ("context ends with a space ", ["yes", "no!"]),
         ("z", ["one token of context"])]


@pytest.mark.parametrize("batch_size", [1, 2, 16])
def test_loglik_matches_a_plain_forward_pass(tiny_llama, batch_size):
    scorer = LoglikScorer(tiny_llama, batch_size=batch_size)
    for context, options in CASES:
        got = scorer.loglikelihoods(context, options)
        want = [hand_loglik(tiny_llama, context, o) for o in options]
        assert got == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_contexts_of_different_lengths_batched_together_match_a_plain_forward_pass(tiny_llama, batch_size):
    requests = [(context, " " + o) for context, options in CASES for o in options]
    scorer = LoglikScorer(tiny_llama, batch_size=batch_size)
    got = scorer.score(requests)
    assert got == pytest.approx([hand_loglik(tiny_llama, c, o[1:]) for c, o in requests], abs=1e-4)
    if batch_size >= len(requests):  # every context in one pass, every continuation in one more
        assert scorer.forward_passes == 2


def test_loglik_computes_the_shared_prefix_once_and_remembers(tiny_llama):
    scorer = LoglikScorer(tiny_llama, batch_size=8)
    scorer.loglikelihoods("abc", ["d", "ef", "ghi"])
    assert scorer.forward_passes == 2  # one over the context, one batched over the three options
    scorer.loglikelihoods("abc", ["ef", "d"])
    assert scorer.forward_passes == 2
    scorer.loglikelihoods("abc", ["d", "new"])
    assert scorer.forward_passes == 4


def test_trailing_context_whitespace_moves_to_the_continuation(tiny_llama):
    tok = tiny_llama.tokenizer
    assert encode_pair(tok, "abc ", "d") == encode_pair(tok, "abc", " d")
    assert encode_pair(tok, "abc\n", " d") == encode_pair(tok, "abc", "\n d")


def bos_tokenizer():
    """The tiny tokenizer putting BOS first, as a Llama tokenizer (the plain one adds nothing, as GPT-2's)."""
    tok = tiny_tokenizer()
    tok._tokenizer.post_processor = TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", tok.bos_token_id)])
    return tok


def test_context_tokens_carry_the_tokenizers_own_special_tokens(tiny_llama):
    plain = tiny_llama.tokenizer  # adds no special tokens, as GPT-2's
    with_bos = bos_tokenizer()
    ab = plain.encode("ab", add_special_tokens=False)
    assert encode_pair(plain, "ab", " c")[0] == ab
    assert encode_pair(with_bos, "ab", " c")[0] == [with_bos.bos_token_id] + ab
    for tok in (plain, with_bos):
        assert encode_pair(tok, "", " c") == ([tok.bos_token_id], tok.encode(" c", add_special_tokens=False))


def test_a_tokenizer_that_appends_special_tokens_is_refused(tiny_llama):
    tok = tiny_tokenizer()
    tok._tokenizer.post_processor = TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    appending = LoadedModel(tiny_llama.model, tok, "t", "causal_lm", "decoder")
    for scorer in (LoglikScorer, Generator):
        with pytest.raises(ValueError, match="adds special tokens after the text"):
            scorer(appending)


class LogitRows:
    """Records the logits' positions of every forward pass of a model."""

    def __init__(self, model):
        self.positions = []
        self.handle = model.register_forward_hook(lambda module, args, out: self.positions.append(out.logits.shape[1]))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_the_context_pass_computes_the_logits_of_one_position(tiny_llama, arch):
    """A context is read for its key/value cache: no logits row per context token (2048 x 32000 at paper scale)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    loaded = tiny_llama if arch == "llama" else LoadedModel(
        GPT2LMHeadModel(GPT2Config(vocab_size=len(tiny_llama.tokenizer), n_positions=128, n_embd=32, n_layer=2,
                                   n_head=2)).eval(), tiny_llama.tokenizer, "tiny-gpt2", "causal_lm", "decoder")
    rows = LogitRows(loaded.model)
    context, options = "a context of many characters", ["yes", "no way"]
    got = LoglikScorer(loaded, batch_size=4).loglikelihoods(context, options)
    rows.handle.remove()
    assert rows.positions == [1, len(" no way")]  # the context pass, then the continuations' (one token a character)
    assert got == pytest.approx([hand_loglik(loaded, context, o) for o in options], abs=1e-4)


def test_batch_size_none_sizes_each_batch_from_free_memory(tiny_llama, monkeypatch):
    """Each batch takes models.fitting_batch's size for its longest context and the longest continuation."""
    import jdlib.scorers.loglik as loglik

    asked = []

    def two(model, tokens):
        asked.append(tokens)
        return 2

    monkeypatch.setattr(loglik, "fitting_batch", two)
    items = [(c, " " + o) for c, opts in CASES for o in opts]
    scorer = LoglikScorer(tiny_llama, batch_size=None)
    got = scorer.score(items)
    tokens = [encode_pair(tiny_llama.tokenizer, c, x) for c, x in items]
    longest = max(len(cont) for _, cont in tokens)
    # no two of the contexts' continuations (2, 3, 2, 1) fit in a batch of 2 together: a batch each, longest first
    assert asked == sorted((len(ctx) + longest for ctx in {tuple(ctx) for ctx, _ in tokens}), reverse=True)
    assert got == pytest.approx([hand_loglik(tiny_llama, c, x[1:]) for c, x in items], abs=1e-4)
    fixed = LoglikScorer(tiny_llama, batch_size=2)
    assert fixed.score(items) == pytest.approx(got, abs=1e-5) and scorer.forward_passes == fixed.forward_passes


def test_long_contexts_lose_tokens_from_the_left(tiny_llama):
    scorer = LoglikScorer(tiny_llama, max_length=12)
    context = "a long context of many characters"
    cut = encode_pair(tiny_llama.tokenizer, context, " yes")[0][-(12 + 1 - 4):]  # 13 tokens, " yes" has 4
    tok = tiny_llama.tokenizer
    with torch.no_grad():
        ids = cut + tok.encode(" yes", add_special_tokens=False)
        logprobs = torch.log_softmax(tiny_llama.model(torch.tensor([ids[:-1]])).logits[0].float(), -1)
    want = sum(float(logprobs[len(cut) - 1 + j, t]) for j, t in enumerate(ids[len(cut):]))
    assert scorer.loglikelihoods(context, ["yes"]) == pytest.approx([want], abs=1e-4)
    with pytest.raises(ValueError, match="max_length=12"):
        scorer.loglikelihoods(context, ["an option longer than twelve tokens"])


def test_acc_and_acc_norm_follow_the_harness(tiny_llama):
    scorer = LoglikScorer(tiny_llama)
    items = [ChoiceItem("pick one:", ["a", "bbbbbbbb", "cc"], 0), ChoiceItem("and now?", ["zz", "y"], 1)]
    out = scorer.choose(items)
    for item, pick, pick_norm in zip(items, out["predictions"], out["predictions_norm"]):
        ll = [hand_loglik(tiny_llama, item.context, o) for o in item.options]
        assert pick == max(range(len(ll)), key=ll.__getitem__)
        assert pick_norm == max(range(len(ll)), key=lambda i: ll[i] / len(item.options[i]))
    assert out["acc"] == sum(p == i.gold for p, i in zip(out["predictions"], items)) / 2


def test_letters_prompt_lists_options_and_demonstrations():
    demo = {"text": "2+2?", "options": ["3", "4"], "label": 1, "subject": "maths"}
    item = choice_item({"text": "1+1?", "options": ["2", "5"], "label": 0, "subject": "maths"}, [demo], "letters")
    assert item.options == ["A", "B"] and item.gold == 0
    assert item.context.startswith("The following are multiple choice questions (with answers) about maths.")
    assert "2+2?\nA. 3\nB. 4\nAnswer: B\n\n1+1?\nA. 2\nB. 5\nAnswer:" in item.context
    cloze = choice_item({"text": "1+1?", "options": ["2", "5"], "label": 0}, [], "cloze")
    assert cloze.context == "Question: 1+1?\nAnswer:" and cloze.options == ["2", "5"]


# -- generation -------------------------------------------------------------------------------
def test_answer_normalisation_and_metrics_on_known_strings():
    assert normalize_answer("  The Eiffel  Tower! ") == "eiffel tower"
    assert exact_match("the Eiffel tower.", ["Tour Eiffel", "Eiffel Tower"]) == 1.0
    assert exact_match("It is the Eiffel Tower", ["Eiffel Tower"]) == 0.0
    assert lenient_match("It is the Eiffel Tower, in Paris", ["Eiffel Tower"]) == 1.0
    assert lenient_match("Paris", ["Paris, France"]) == 1.0  # either way round, as the official script
    assert lenient_match("comparison", ["paris"]) == 1.0  # plain substrings, as the official script
    assert lenient_match("Eiffel_Tower!", ["eiffel tower"]) == 1.0  # underscores and punctuation become spaces
    assert lenient_match("", ["Paris"]) == 0.0  # an empty answer matches nothing (the official script: correct)
    assert lenient_match("Lyon", ["Paris"]) == 0.0
    assert lenient_match("anything", ["the"]) == 0.0  # an alias that normalises to nothing matches nothing
    assert f1_score("eiffel tower paris", ["Eiffel Tower"]) == pytest.approx(0.8)
    assert f1_score("london", ["Eiffel Tower", "London"]) == 1.0
    assert answer_metrics(["Paris", "in Rome"], [["paris"], ["Rome"]]) == pytest.approx(
        {"exact_match": 0.5, "exact_match_lenient": 1.0, "f1": (1 + 2 / 3) / 2})


def greedy(loaded, ids: list[int], n: int) -> str:
    """n greedy tokens after `ids`, by hand, decoded."""
    ids = list(ids)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(loaded.model(torch.tensor([ids])).logits[0, -1].argmax()))
    return loaded.tokenizer.decode(ids[-n:], skip_special_tokens=True).strip()


@pytest.mark.parametrize("bos", [True, False])
def test_batched_greedy_generation_equals_one_prompt_at_a_time(tiny_llama, bos):
    """The prompt's tokens are the tokenizer's own: BOS first for a Llama tokenizer, none for a GPT-2 one."""
    loaded = LoadedModel(tiny_llama.model, bos_tokenizer(), "t", "causal_lm", "decoder") if bos else tiny_llama
    prompts = ["ab", "a much longer prompt here", "xyz?"]
    together = Generator(loaded, max_new_tokens=6, batch_size=3, stop=())(prompts)
    alone = [Generator(loaded, max_new_tokens=6, batch_size=1, stop=())([p])[0] for p in prompts]
    assert together == alone
    ab = loaded.tokenizer("ab", add_special_tokens=False)["input_ids"]
    assert together[0] == greedy(loaded, [loaded.tokenizer.bos_token_id] * bos + ab, 6)
    assert together[0] != greedy(loaded, [loaded.tokenizer.bos_token_id] * (not bos) + ab, 6)  # BOS matters here


# -- sentence embedding ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm", head="embedding", device="cpu")


def test_embedding_scorer_solves_an_easy_case(minilm):
    queries = ["The kitten is sleeping on the sofa.", "Stock prices fell sharply on Wall Street today.",
               "It rained all day and the streets flooded."]
    options = [["A cat naps on a couch.", "Markets dropped.", "Heavy rain caused floods."]] * 3
    assert choose_among(Embedder(minilm), queries, options) == [0, 1, 2]


def test_embedder_embeds_each_text_once_and_padding_does_not_change_a_vector(minilm):
    embed = Embedder(minilm, batch_size=4)
    texts = ["short", "a much longer sentence that needs padding when batched with short ones", "short"]
    vectors = embed(texts)
    assert embed.forward_texts == 2
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(3), atol=1e-5)
    alone = Embedder(minilm)(["short"])[0]
    assert torch.allclose(vectors[0], alone, atol=1e-5)
    embed(["short"])
    assert embed.forward_texts == 2


def test_prototypes_are_label_texts_at_zero_shot_and_mean_demonstrations_otherwise(minilm):
    embed = Embedder(minilm)
    labels = ["weather", "music"]
    zero = class_prototypes(embed, labels, [[], []])
    assert torch.allclose(zero, embed(labels), atol=1e-6)
    demos = [["Will it rain tomorrow?", "How hot is it?"], ["Play some jazz"]]
    protos = class_prototypes(embed, labels, demos)
    mean = embed(demos[0]).mean(0)
    assert torch.allclose(protos[0], mean / mean.norm(), atol=1e-6)
    assert torch.allclose(protos[1], embed(demos[1])[0], atol=1e-6)
    assert choose(embed(["Is it going to snow?", "Put on my favourite song"]), protos) == [0, 1]


# -- difficulty knobs --------------------------------------------------------------------------
def test_reduce_options_keeps_the_gold_answer_and_n_options_and_is_seeded():
    example = {"text": "q", "options": [f"o{i}" for i in range(10)], "label": 7}
    for n in (1, 2, 4, 10):
        for seed in range(20):
            out = reduce_options(example, n, random.Random(seed))
            assert len(out["options"]) == n and out["options"][out["label"]] == "o7"
            assert out["options"] == sorted(out["options"], key=lambda o: int(o[1:]))  # original order kept
    draws = {tuple(reduce_options(example, 3, random.Random(s))["options"]) for s in range(20)}
    assert len(draws) > 1
    assert reduce_options(example, 3, random.Random(5)) == reduce_options(example, 3, random.Random(5))
    with pytest.raises(ValueError, match="n=11"):
        reduce_options(example, 11, random.Random(0))


def test_context_window_keeps_the_answer_and_the_right_fraction():
    words = [f"w{i}" for i in range(200)]
    for where in (0, 57, 120, 198):
        context = " ".join(words[:where] + ["the", "answer"] + words[where:])
        total = len(context.split())
        for percent in (10, 25, 50, 100):
            window = context_window(context, "the answer", percent)
            assert "the answer" in window
            assert len(window.split()) == round(percent / 100 * total)
            assert window in context  # a contiguous stretch of the passage
        assert context_window(context, "the answer", 0) == ""  # closed book
        assert context_window(context, "the answer", 100) == context
    assert context_window("a b c d e f g h i j", "b c d", 10) == "b c d"  # never smaller than the answer
    with pytest.raises(ValueError, match="does not occur"):
        context_window("a b c", "zzz", 50)


def test_answer_span_ignores_tokenisation_spaces_and_case():
    context = "The rate was 200 , 000 per year in Earth ' s orbit"
    assert answer_span(context, "200,000") == (3, 6)
    assert answer_span(context, "earth's orbit") == (9, 13)
    assert answer_span(context, "Mars") is None


def test_few_shot_is_seeded_per_class_and_nested():
    pool = [{"text": str(i), "label": i % 3} for i in range(30)]
    three = few_shot(pool, 3, seed=41)
    assert sorted(d["label"] for d in three) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert three == few_shot(pool, 3, seed=41)
    assert three != few_shot(pool, 3, seed=42)
    two = few_shot(pool, 2, seed=41)
    assert {d["text"] for d in two} < {d["text"] for d in three}
    assert few_shot(pool, 0, seed=41) == []
    total = few_shot(pool, 4, seed=1, per_class=False)
    assert len(total) == 4
    assert all(d["text"] not in {"0", "1"} for d in few_shot(pool, 10, seed=3, exclude=[0, 1]))
    with pytest.raises(ValueError, match="k=-1"):
        few_shot(pool, -1, seed=0)
