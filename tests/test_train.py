"""The fine-tuning loop and evaluation: determinism, the fixed-shape path and per-question outcomes on the CPU;
the graphed step on a CUDA device, where there is one."""
import warnings

import datasets
import numpy as np
import pytest
import torch
from transformers import DataCollatorWithPadding

from jdlib.compress import prune
from jdlib.evaluate import evaluate
from jdlib.models import tiny_model
from jdlib.train import encode, fill_last_batch, finetune


def toy_data(n=45, seed=0):
    """Texts of uneven length (so padding matters) and a label the first word gives away."""
    rng = np.random.default_rng(seed)
    texts = [("good " if i % 2 else "bad ") + "".join(rng.choice(list("abcdefgh"), int(rng.integers(1, 30))))
             for i in range(n)]
    return datasets.Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(n)]})


def no_dropout(loaded):
    # The two padding paths draw dropout masks of different shapes; without dropout they compute the same function.
    for module in loaded.model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return loaded


def tuned(seed=0, transfer="dense", dropout=True, **kwargs):
    loaded = tiny_model("bert", head="classification", num_labels=2, seed=1)
    if not dropout:
        no_dropout(loaded)
    masks = None
    if transfer != "dense":
        masks, _ = prune(tiny_model("bert", head="classification", num_labels=2, seed=1).model, sparsity=0.5)
    losses = finetune(loaded, toy_data(), transfer, masks, epochs=2, batch_size=8, lr=1e-2, max_length=24,
                      seed=seed, progress=False, **kwargs)
    return loaded, losses


def test_same_seed_same_losses_and_weights_other_seed_differs():
    (a, la), (b, lb), (_, lc) = tuned(0, "sparse"), tuned(0, "sparse"), tuned(1, "sparse")
    assert la == lb
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    assert la != lc


def test_one_loss_per_step_including_the_short_last_batch():
    _, losses = tuned()
    assert len(losses) == 2 * 6  # 45 items in batches of 8: 5 full and one of 5, per epoch
    assert all(np.isfinite(losses))


def test_fixed_shape_batches_train_as_batches_cut_to_their_longest():
    dynamic, dynamic_losses = tuned(dropout=False, transfer="sparse", fixed_shape=False)
    fixed, fixed_losses = tuned(dropout=False, transfer="sparse", fixed_shape=True)
    assert len(fixed_losses) == len(dynamic_losses)
    np.testing.assert_allclose(fixed_losses, dynamic_losses, rtol=1e-4, atol=1e-5)
    for (name, x), y in zip(dynamic.model.state_dict().items(), fixed.model.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-3, atol=1e-4, msg=name)
    assert dynamic_losses[0] != dynamic_losses[-1]  # it trained


def test_fixed_shape_path_keeps_the_transfer_modes_exact():
    probe = tiny_model("bert", head="classification", num_labels=2, seed=1)
    pretrained = {k: v.clone() for k, v in probe.model.state_dict().items()}
    masks, _ = prune(probe.model, sparsity=0.5)
    sparse, _ = tuned(transfer="sparse", fixed_shape=True)
    frozen, _ = tuned(transfer="dense_freeze", fixed_shape=True)
    for name, keep in masks.keep.items():
        assert (sparse.model.state_dict()[name][~keep] == 0).all()
        assert torch.equal(frozen.model.state_dict()[name][~keep], pretrained[name][~keep])
        assert not torch.equal(frozen.model.state_dict()[name][keep], pretrained[name][keep])


def test_the_filled_last_batch_marks_exactly_the_filler_items():
    order = torch.randperm(45, generator=torch.Generator().manual_seed(0))
    index, real = fill_last_batch(order, 8)
    assert index.shape == real.shape == (6, 8)
    assert torch.equal(index.flatten()[:45], order) and int(real.sum()) == 45
    assert not real[-1, 5:].any() and real[:-1].all()
    index, real = fill_last_batch(order[:3], 8)  # a split smaller than one batch
    assert index.shape == (1, 8) and torch.equal(index[0, :3], order[:3]) and int(real.sum()) == 3


def test_trimmed_batches_equal_a_padding_collators():
    loaded = tiny_model("bert", head="classification", num_labels=2)
    data = toy_data(12)
    index = torch.tensor([3, 0, 7, 11])
    ours = encode(loaded, data, max_length=24).batch(index, trim=True)
    items = [loaded.tokenizer(data[int(i)]["text"], truncation=True, max_length=24) for i in index]
    theirs = DataCollatorWithPadding(loaded.tokenizer)([{**item, "labels": data[int(i)]["label"]}
                                                        for item, i in zip(items, index)])
    assert set(ours) == set(theirs)
    for key in ours:
        assert torch.equal(ours[key], theirs[key]), key


def test_a_text_pair_column_of_none_encodes_the_text_alone():
    """GLUE's one-sentence tasks (SST-2, CoLA) carry text_pair None (jdlib.data.hub)."""
    loaded = tiny_model("bert", head="classification", num_labels=2)
    data = toy_data(6)
    with_none = data.add_column("text_pair", [None] * len(data))
    alone, paired = encode(loaded, data, max_length=64), encode(loaded, with_none, max_length=64)
    assert all(torch.equal(alone.inputs[k], paired.inputs[k]) for k in alone.inputs)
    two = encode(loaded, data.add_column("text_pair", ["xy"] * len(data)), max_length=64)
    assert torch.equal(two.lengths, alone.lengths + 2)


def test_outcomes_are_per_question_in_order_and_average_to_the_accuracy():
    loaded, _ = tuned()
    data = toy_data(30, seed=5)
    metrics = evaluate(loaded, data, batch_size=7, max_length=24)
    assert len(metrics["outcomes"]) == len(data) == metrics["n"]
    assert set(metrics["outcomes"]) <= {0, 1}
    assert np.mean(metrics["outcomes"]) == pytest.approx(metrics["accuracy"])
    one_by_one = [evaluate(loaded, data.select([i]), batch_size=1, max_length=24) for i in range(len(data))]
    assert metrics["outcomes"] == [m["outcomes"][0] for m in one_by_one]
    assert metrics["loss"] == pytest.approx(np.mean([m["loss"] for m in one_by_one]), rel=1e-5)


def test_wrong_precision_and_cpu_graph_name_the_parameter():
    loaded = tiny_model("bert", head="classification", num_labels=2)
    with pytest.raises(ValueError, match="precision='fp8'"):
        finetune(loaded, toy_data(), precision="fp8", progress=False)
    with pytest.raises(ValueError, match="cuda_graph=True"):
        finetune(loaded, toy_data(), cuda_graph=True, progress=False)


# --- on a CUDA device (skipped elsewhere): the graphed step --------------------------------------

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def tuned_on(device, transfer="sparse", dropout=False, **kwargs):
    loaded = tiny_model("bert", head="classification", num_labels=2, seed=1)
    if not dropout:
        no_dropout(loaded)
    loaded.model.to(device)
    masks, _ = prune(tiny_model("bert", head="classification", num_labels=2, seed=1).model, sparsity=0.5)
    losses = finetune(loaded, toy_data(), transfer, None if transfer == "dense" else masks, epochs=2, batch_size=8,
                      lr=1e-2, max_length=24, seed=0, progress=False, **kwargs)
    return loaded, losses, masks


@cuda
def test_cuda_graph_keeps_the_transfer_modes_exact():
    pretrained = tiny_model("bert", head="classification", num_labels=2, seed=1).model.state_dict()
    sparse, _, masks = tuned_on("cuda", "sparse", dropout=True)
    frozen, _, _ = tuned_on("cuda", "dense_freeze", dropout=True)
    for name, keep in masks.keep.items():
        keep = keep.cuda()
        assert (sparse.model.state_dict()[name][~keep] == 0).all()
        assert not torch.equal(sparse.model.state_dict()[name][keep], pretrained[name].cuda()[keep])
        assert torch.equal(frozen.model.state_dict()[name][~keep], pretrained[name].cuda()[~keep])


@cuda
def test_cuda_graph_trains_as_the_eager_steps_and_as_the_cpu():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a failed capture falls back with a warning: fail instead
        graphed, graphed_losses, _ = tuned_on("cuda", precision="fp32")
    _, eager_losses, _ = tuned_on("cuda", precision="fp32", cuda_graph=False)
    _, cpu_losses, _ = tuned_on("cpu")
    _, bf16_losses, _ = tuned_on("cuda")
    np.testing.assert_allclose(graphed_losses, eager_losses, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(graphed_losses, cpu_losses, rtol=1e-3, atol=1e-4)
    assert bf16_losses[0] == pytest.approx(cpu_losses[0], rel=0.02) and np.isfinite(bf16_losses).all()
    data = toy_data(30, seed=5)
    on_gpu = evaluate(graphed, data, max_length=24)
    graphed.model.to("cpu")
    on_cpu = evaluate(graphed, data, max_length=24)
    assert on_gpu["outcomes"] == on_cpu["outcomes"]
    assert on_gpu["loss"] == pytest.approx(on_cpu["loss"], rel=1e-4)
