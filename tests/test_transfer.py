import datasets
import pytest
import torch

from jdlib.compress import prune
from jdlib.models import snapshot, tiny_model
from jdlib.train import finetune


def toy_data(n=48):
    texts = [("good " if i % 2 else "bad ") + "x" * (i % 7) for i in range(n)]
    return datasets.Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(n)]})


def trained(mode, sparsity=0.5):
    loaded = tiny_model("bert", head="classification", num_labels=2, seed=1)
    pretrained = snapshot(loaded.model)
    probe = tiny_model("bert", head="classification", num_labels=2, seed=1).model
    masks, _ = prune(probe, sparsity=sparsity)
    finetune(loaded, toy_data(), transfer=mode, masks=None if mode == "dense" else masks, epochs=2,
             batch_size=8, lr=1e-2, max_length=16, seed=0, progress=False)
    return loaded.model, pretrained, masks


def test_sparse_transfer_keeps_pruned_weights_exactly_zero():
    model, pretrained, masks = trained("sparse")
    params = dict(model.named_parameters())
    for name, keep in masks.keep.items():
        assert (params[name][~keep] == 0).all()
        assert not torch.equal(params[name][keep], pretrained[name][keep])  # the rest did train


def test_dense_freeze_keeps_small_weights_bit_for_bit():
    model, pretrained, masks = trained("dense_freeze")
    params = dict(model.named_parameters())
    for name, keep in masks.keep.items():
        assert torch.equal(params[name][~keep], pretrained[name][~keep])
        assert not torch.equal(params[name][keep], pretrained[name][keep])


def test_sparse_to_dense_lets_pruned_weights_regrow():
    model, _, masks = trained("sparse_to_dense")
    params = dict(model.named_parameters())
    regrown = sum(int((params[n][~k] != 0).sum()) for n, k in masks.keep.items())
    assert regrown > 0


def test_dense_transfer_moves_every_block_weight():
    model, pretrained, masks = trained("dense")
    params = dict(model.named_parameters())
    assert all(not torch.equal(params[n], pretrained[n]) for n in masks.keep)


def test_unknown_transfer_mode_names_the_allowed_values():
    loaded = tiny_model("bert", head="classification", num_labels=2)
    with pytest.raises(ValueError, match="dense, dense_freeze, sparse, sparse_to_dense"):
        finetune(loaded, toy_data(), transfer="half_sparse", progress=False)


def test_same_seed_same_fine_tuned_model():
    a, _, _ = trained("sparse")
    b, _, _ = trained("sparse")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
