"""Fine-tuning with a multiple-choice head (the true gem's across-task part at paper scale:
CommonsenseQA, WinoGrande): the transfer modes, learning, the loss, and a true-gem grid end to end,
on tiny models built from a config and synthetic tasks (nothing from the hub)."""
import warnings

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForMultipleChoice, RobertaConfig

import jdlib
from jdlib.compress import prune
from jdlib.data import Task
from jdlib.evaluate import evaluate
from jdlib.models import LoadedModel, snapshot, tiny_model, tiny_tokenizer
from jdlib.results import ResultsStore, cell_key
from jdlib.settings import finetuning, load, setting1, true_gem
from jdlib.settings.finetuning import FinetuneRunner, transfer_cells
from jdlib.train import encode, finetune, init_head

LETTERS = list("abcdefghij")
MODES = ("dense", "dense_freeze", "sparse", "sparse_to_dense")


def match_task(n: int, seed: int, options: int = 5) -> datasets.Dataset:
    """The question is a letter; the gold option is the same letter, the others are other letters, in random places.

    Only a model that reads each option against its own question, with the labels pointing at the
    right option, can beat chance (1 / options): the gold option looks like any other on its own.
    """
    rng = np.random.default_rng(seed)
    rows = {"text": [], "options": [], "label": []}
    for _ in range(n):
        gold, *others = rng.choice(LETTERS, options, replace=False)
        label = int(rng.integers(options))
        rows["text"].append(str(gold))
        rows["options"].append([str(x) for x in others[:label]] + [str(gold)] + [str(x) for x in others[label:]])
        rows["label"].append(label)
    return datasets.Dataset.from_dict(rows)


def ragged_task(n: int, seed: int, options: int = 4) -> datasets.Dataset:
    """Questions and options of uneven length, so that padding matters."""
    rng = np.random.default_rng(seed)

    def word(low, high):
        return "".join(rng.choice(LETTERS, int(rng.integers(low, high))))

    return datasets.Dataset.from_dict({
        "text": [word(1, 12) for _ in range(n)],
        "options": [[word(1, 9) for _ in range(options)] for _ in range(n)],
        "label": [int(rng.integers(options)) for _ in range(n)]})


def tiny_choice(seed: int = 1) -> LoadedModel:
    return tiny_model("bert", head="multiple_choice", seed=seed)


def tiny_roberta_choice(seed: int = 1) -> LoadedModel:
    """A 2-layer RoBERTa with a multiple-choice head: the paper's architecture, tiny."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, max_position_embeddings=80, pad_token_id=tokenizer.pad_token_id)
    return LoadedModel(AutoModelForMultipleChoice.from_config(config), tokenizer, "tiny-roberta", "multiple_choice",
                       "encoder")


def no_dropout(loaded: LoadedModel) -> LoadedModel:
    for module in loaded.model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return loaded


def pruned(make, sparsity=0.5):
    """A model, its pre-trained weights and the masks of `sparsity` magnitude pruning (taken on a copy)."""
    loaded = make()
    masks, _ = prune(make().model, sparsity=sparsity)
    return loaded, snapshot(loaded.model), masks


# --- (1) the transfer modes ----------------------------------------------------------------------

@pytest.mark.parametrize("make", [tiny_choice, tiny_roberta_choice], ids=["bert", "roberta"])
def test_every_transfer_mode_fine_tunes_a_multiple_choice_model_and_holds_its_invariants(make):
    results = {}
    for mode in MODES:
        loaded, pretrained, masks = pruned(make)
        init_head(loaded, 0)
        losses = finetune(loaded, ragged_task(24, 0), mode, None if mode == "dense" else masks, epochs=2,
                          batch_size=8, lr=1e-2, max_length=24, seed=0, progress=False)
        assert len(losses) == 2 * 3 and np.isfinite(losses).all()
        results[mode] = dict(loaded.model.named_parameters())
        metrics = evaluate(loaded, ragged_task(10, 1), max_length=24)
        assert metrics["n"] == 10 and len(metrics["outcomes"]) == 10
    # the masks cover the blocks' linear weights only: not the embeddings, the pooler or the option scorer
    assert masks.keep and all(".layer." in name for name in masks.keep)
    assert not any(word in name for name in masks.keep for word in ("embeddings", "pooler", "classifier"))
    for name, keep in masks.keep.items():
        assert (results["sparse"][name][~keep] == 0).all()
        assert not torch.equal(results["sparse"][name][keep], pretrained[name][keep])
        assert torch.equal(results["dense_freeze"][name][~keep], pretrained[name][~keep])
        assert not torch.equal(results["dense_freeze"][name][keep], pretrained[name][keep])
        assert not torch.equal(results["dense"][name], pretrained[name])
    regrown = sum(int((results["sparse_to_dense"][n][~k] != 0).sum()) for n, k in masks.keep.items())
    assert regrown > 0


def test_fixed_shape_batches_train_multiple_choice_as_batches_cut_to_their_longest():
    runs = []
    for fixed_shape in (False, True):
        loaded, _, masks = pruned(lambda: no_dropout(tiny_choice()))
        losses = finetune(loaded, ragged_task(21, 0), "sparse", masks, epochs=2, batch_size=8, lr=1e-2,
                          max_length=24, seed=0, progress=False, fixed_shape=fixed_shape)
        runs.append((losses, loaded.model.state_dict()))
    (dynamic, a), (fixed, b) = runs
    np.testing.assert_allclose(fixed, dynamic, rtol=1e-4, atol=1e-5)
    # The option scorer's bias adds the same to every option, so its gradient is zero up to rounding,
    # which AdamW's normalisation blows up into steps of either sign: it changes no output.
    for name in set(a) - {"classifier.bias"}:
        torch.testing.assert_close(a[name], b[name], rtol=1e-3, atol=1e-4, msg=name)


# --- (2) it learns the task ----------------------------------------------------------------------

def test_a_task_that_needs_the_options_and_their_labels_is_learned():
    loaded = tiny_choice(seed=0)
    init_head(loaded, 0)
    evaluation = match_task(20, 1)
    before = evaluate(loaded, evaluation, max_length=8)["accuracy"]
    finetune(loaded, match_task(40, 0), "dense", epochs=20, batch_size=8, lr=3e-3, max_length=8, seed=0,
             progress=False)
    after = evaluate(loaded, evaluation, max_length=8)
    # chance is 0.2: 12 or more right of 20 by chance has probability 1e-4
    assert after["accuracy"] >= 0.6 > before
    assert after["loss"] < np.log(5)


# --- (3) the loss is the cross-entropy over option logits ----------------------------------------

def option_logits(loaded: LoadedModel, data: datasets.Dataset, max_length: int) -> torch.Tensor:
    """Each (question, option) pair scored alone, unpadded: [questions, options]."""
    rows = []
    with torch.no_grad():
        for text, options in zip(data["text"], data["options"]):
            scores = []
            for option in options:
                enc = loaded.tokenizer(text, option, truncation=True, max_length=max_length, return_tensors="pt")
                inputs = {k: v[:, None] for k, v in enc.items() if k in loaded.tokenizer.model_input_names}
                scores.append(loaded.model(**inputs).logits[0, 0])
            rows.append(torch.stack(scores))
    return torch.stack(rows)


@pytest.mark.parametrize("make", [tiny_choice, tiny_roberta_choice], ids=["bert", "roberta"])
def test_evaluation_loss_and_outcomes_are_those_of_independent_option_logits(make):
    loaded = make()
    init_head(loaded, 3)
    loaded.model.eval()
    data = ragged_task(13, 2)
    logits = option_logits(loaded, data, max_length=24)
    labels = torch.tensor(data["label"])
    metrics = evaluate(loaded, data, batch_size=4, max_length=24)
    assert metrics["loss"] == pytest.approx(float(F.cross_entropy(logits, labels)), rel=1e-5)
    assert metrics["outcomes"] == (logits.argmax(-1) == labels).int().tolist()
    assert metrics["accuracy"] == pytest.approx(np.mean(metrics["outcomes"]))
    assert len(set(metrics["outcomes"])) == 2  # both kinds of outcome: the comparison can fail


@pytest.mark.parametrize("fixed_shape", [False, True])
def test_the_training_loss_is_the_cross_entropy_over_option_logits(fixed_shape):
    data = ragged_task(11, 4)
    loaded = no_dropout(tiny_choice())
    init_head(loaded, 5)
    expected = F.cross_entropy(option_logits(loaded, data, max_length=24), torch.tensor(data["label"]))
    # one batch holding the whole split: the first step's loss is over every question, in any order
    losses = finetune(loaded, data, epochs=1, batch_size=16, lr=1e-3, max_length=24, seed=0, progress=False,
                      fixed_shape=fixed_shape)
    assert losses[0] == pytest.approx(float(expected), rel=1e-5)


def test_encoding_pairs_each_question_with_each_of_its_own_options():
    loaded = tiny_choice()
    data = ragged_task(6, 3)
    encoded = encode(loaded, data, max_length=24)
    assert encoded.inputs["input_ids"].shape[:2] == (6, 4) and encoded.options == 4
    for q in range(6):
        for o in range(4):
            alone = loaded.tokenizer(data[q]["text"], data[q]["options"][o], truncation=True, max_length=24)
            ids = encoded.inputs["input_ids"][q, o]
            assert ids[:len(alone["input_ids"])].tolist() == alone["input_ids"]
            assert int(encoded.inputs["attention_mask"][q, o].sum()) == len(alone["input_ids"])
    assert encoded.labels.tolist() == data["label"]


def test_a_head_that_does_not_fit_the_split_and_uneven_options_are_named():
    choice = match_task(4, 0)
    with pytest.raises(ValueError, match="head='multiple_choice'"):
        evaluate(tiny_model("bert", head="classification", num_labels=2), choice)
    with pytest.raises(ValueError, match="head='classification'"):
        finetune(tiny_choice(), datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}), progress=False)
    uneven = datasets.Dataset.from_dict({"text": ["a", "b"], "options": [["a", "b"], ["a", "b", "c"]],
                                         "label": [0, 1]})
    with pytest.raises(ValueError, match="options: .* 2, 3"):
        evaluate(tiny_choice(), uneven)


# --- (4) a true-gem grid with a multiple-choice gap task -----------------------------------------

def sentiment(n: int, seed: int) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    texts = [("good " if i % 2 else "bad ") + "".join(rng.choice(LETTERS, 4)) for i in range(n)]
    return datasets.Dataset.from_dict({"text": texts, "text_pair": [None] * n, "label": [i % 2 for i in range(n)]})


SYNTHETIC = {  # known task names (their names pass the config's checks), synthetic data
    "glue/sst2": lambda: Task("glue/sst2", "classification", sentiment(24, 0), sentiment(12, 1),
                              ["negative", "positive"]),
    "commonsense_qa": lambda: Task("commonsense_qa", "multiple_choice", match_task(24, 0), match_task(12, 1)),
    "winogrande": lambda: Task("winogrande", "multiple_choice", match_task(24, 2, options=2),
                               match_task(12, 3, options=2)),
    "trivia_qa": lambda: Task("trivia_qa", "generation", datasets.Dataset.from_dict({"text": ["q"], "answers": [["a"]]}),
                              datasets.Dataset.from_dict({"text": ["q"], "answers": [["a"]]})),
}


@pytest.fixture
def synthetic_tasks(monkeypatch):
    monkeypatch.setattr(finetuning, "load_task", lambda name: SYNTHETIC[name]())


def tiny_true_gem(store: str, **values):
    return load("true_gem", "ci", model="tiny-bert", tasks=["glue/sst2"], fractions=[1.0],
                gap_tasks=["commonsense_qa", "winogrande"], seeds=[1], sparsities=[0.5], steps=6, batch_size=8,
                lr=3e-3, max_length=8, store=store, **values)


def test_a_true_gem_grid_fine_tunes_multiple_choice_gap_tasks_and_stores_their_outcomes(synthetic_tasks, tmp_path):
    config = tiny_true_gem(str(tmp_path / "r.sqlite"))
    results = jdlib.sweep(config, progress=False)
    across = results.across
    assert set(across["task"]) == {"commonsense_qa", "winogrande"}
    assert len(across) == 2 * 4  # tasks x (dense + three modes at one sparsity)
    assert set(across["transfer"]) == set(MODES)
    stored = ResultsStore(config.store_path).outcomes(list(across["key"]))
    for _, row in across.iterrows():
        outcomes = stored[row["key"]]
        assert len(outcomes) == 12 and set(outcomes) <= {0, 1}
        assert list(outcomes) == list(row["outcomes"])
        assert np.mean(outcomes) == pytest.approx(row["accuracy"])
        assert row["realised_sparsity"] == (0.0 if row["transfer"] == "dense" else pytest.approx(0.5, abs=1e-3))
    # the gap is the paper's, from the dense multiple-choice accuracy against the human score
    dense = across[across["transfer"] == "dense"].set_index("task")
    for task in dense.index:
        human = jdlib.data.human_scores(task)["average"]
        assert dense.loc[task, "gap"] == pytest.approx((human - 100 * dense.loc[task, "accuracy"]) / human * 100,
                                                       abs=0.01)
    # the across-task cells are keyed as Setting 5's, the within-task ones as Setting 1's
    s5 = load("setting5", "ci", model="tiny-bert", tasks=config.gap_tasks, seeds=[1], sparsities=[0.5],
              transfer=config.transfer, steps=6, batch_size=8, lr=3e-3, max_length=8)
    assert set(across["key"]) == {cell_key({"setting": "setting5", **c}) for c in transfer_cells(s5)}
    assert set(results.within["key"]) == {cell_key({"setting": "setting1", **c})
                                          for c in setting1.cells(config.within())}
    assert len(results.within) == 4 and results.within["outcomes"].map(len).eq(12).all()


def test_the_runner_picks_the_head_by_the_tasks_kind(synthetic_tasks, tmp_path):
    config = tiny_true_gem(str(tmp_path / "r.sqlite"))
    runner = FinetuneRunner(config)
    parts = {p.key_setting: p.cells for p in true_gem.parts(config)}
    choice = next(c for c in parts["setting5"] if c["task"] == "winogrande" and c["transfer"] == "sparse")
    metrics = runner(choice)
    assert runner.loaded.head == "multiple_choice" and runner.loaded.model.classifier.out_features == 1
    assert metrics["n"] == 12 and metrics["realised_sparsity"] == pytest.approx(0.5, abs=1e-3)
    masks = runner._compress(choice["method"], choice["pattern"], choice["sparsity"])
    params = dict(runner.loaded.model.named_parameters())
    assert all((params[name][~keep] == 0).all() for name, keep in masks.keep.items())
    runner(next(c for c in parts["setting1"] if c["transfer"] == "dense"))
    assert runner.loaded.head == "classification" and runner.loaded.model.classifier.out_features == 2
    with pytest.raises(ValueError, match="task='trivia_qa' is a generation task"):
        runner({**choice, "task": "trivia_qa"})


# --- on a CUDA device (skipped elsewhere): the graphed step -------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("make", [tiny_choice, tiny_roberta_choice], ids=["bert", "roberta"])
def test_cuda_graph_trains_multiple_choice_as_the_eager_steps_and_keeps_sparse_exact(make):
    runs = {}
    for graph in (True, False):
        loaded, _, masks = pruned(lambda: no_dropout(make()))
        loaded.model.to("cuda")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a failed capture falls back with a warning: fail instead
            losses = finetune(loaded, ragged_task(21, 0), "sparse", masks, epochs=2, batch_size=8, lr=1e-2,
                              max_length=24, seed=0, progress=False, precision="fp32", cuda_graph=graph)
        runs[graph] = losses, loaded
    np.testing.assert_allclose(runs[True][0], runs[False][0], rtol=1e-4, atol=1e-5)
    graphed = runs[True][1]
    params = dict(graphed.model.named_parameters())
    for name, keep in masks.keep.items():
        assert (params[name][~keep.cuda()] == 0).all()
    data = ragged_task(30, 5)
    on_gpu = evaluate(graphed, data, max_length=24)
    graphed.model.to("cpu")
    on_cpu = evaluate(graphed, data, max_length=24)
    assert on_gpu["outcomes"] == on_cpu["outcomes"]
    assert on_gpu["loss"] == pytest.approx(on_cpu["loss"], rel=1e-4)
