"""The control compressors: random pruning (seeded) and pruning the largest weights, at magnitude's sparsity."""
import pytest
import torch

import jdlib
from jdlib.compress import METHODS, PRUNE_METHODS, SEEDED, prune
from jdlib.compress.masks import holds_nm, parse_pattern, prunable_weights
from jdlib.models import tiny_model
from jdlib.settings import SETTINGS, load
from jdlib.settings.compressed import CompressedWeights
from jdlib.settings.nofinetune import state_of

CONTROLS = ("random", "large")


def test_controls_are_uncalibrated_pruning_methods_and_only_random_is_seeded():
    assert all(METHODS[m].family == "pruning" and not METHODS[m].calibrated for m in CONTROLS)
    assert set(CONTROLS) <= set(PRUNE_METHODS) and SEEDED == ("random",)


@pytest.mark.parametrize("method", CONTROLS)
@pytest.mark.parametrize("scope", ["global", "layer", "row"])
def test_each_matrix_loses_as_many_weights_as_under_magnitude_pruning(method, scope):
    """(tests/test_masks.py checks the realised sparsity of every method.)"""
    masks = prune(tiny_model("bert").model, method=method, sparsity=0.37, scope=scope, seed=5)[0]
    reference = prune(tiny_model("bert").model, sparsity=0.37, scope=scope)[0]
    assert masks.sparsity == reference.sparsity
    if scope != "global":  # a global threshold spreads its count over the matrices by their weights
        assert all(int((~k).sum()) == int((~reference.keep[n]).sum()) for n, k in masks.keep.items())


@pytest.mark.parametrize("method", CONTROLS)
@pytest.mark.parametrize("pattern", ["1:4", "3:4", "1:8", "7:8"])
def test_nm_patterns_keep_n_of_every_m_input_weights(method, pattern):
    n, m = parse_pattern(pattern)
    masks, report = prune(tiny_model("llama", head="causal_lm").model, method=method, pattern=pattern, seed=3)
    assert all(holds_nm(k, n, m) for k in masks.keep.values())
    assert report.realised_sparsity == pytest.approx(1 - n / m)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_random_masks_are_reproducible_for_a_seed_and_differ_across_seeds(scope):
    def masks(seed, sparsity=0.5, pattern="unstructured"):
        return prune(tiny_model("bert", seed=3).model, method="random", sparsity=sparsity, pattern=pattern,
                     scope=scope, seed=seed)[0].keep

    a, again, other = masks(1), masks(1), masks(2)
    assert all(torch.equal(a[n], again[n]) for n in a)
    assert not all(torch.equal(a[n], other[n]) for n in a)
    assert not all(torch.equal(k, masks(1, pattern="2:4")[n]) for n, k in masks(2, pattern="2:4").items())
    # nested in sparsity for one seed, as magnitude pruning's masks are
    denser = masks(1, sparsity=0.3)
    assert all((a[n] <= denser[n]).all() for n in a)


def test_random_masks_ignore_the_weights_magnitudes():
    model = tiny_model("bert", seed=3).model
    weights = {n: w.detach().abs().clone() for n, w in prunable_weights(model).items()}
    keep = prune(model, method="random", sparsity=0.5, seed=7)[0].keep
    pruned = torch.cat([weights[n][~k] for n, k in keep.items()])
    kept = torch.cat([weights[n][k] for n, k in keep.items()])
    assert abs(float(pruned.mean() / kept.mean()) - 1) < 0.05  # magnitude pruning: far below 1
    assert all(abs(float((~k).float().mean()) - 0.5) < 0.05 for k in keep.values())  # every matrix hit alike


@pytest.mark.parametrize("arch", ["bert", "llama"])
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_large_prunes_the_largest_weights(arch, scope):
    model = tiny_model(arch).model
    weights = {n: w.detach().abs().clone() for n, w in prunable_weights(model).items()}
    keep = prune(model, method="large", sparsity=0.1, scope=scope)[0].keep
    groups = [list(keep)] if scope == "global" else [[n] for n in keep]
    for names in groups:
        pruned = torch.cat([weights[n][~keep[n]] for n in names])
        kept = torch.cat([weights[n][keep[n]] for n in names])
        assert pruned.min() >= kept.max()


def test_large_nm_prunes_the_largest_of_each_group():
    model = tiny_model("llama").model
    weights = {n: w.detach().abs().clone() for n, w in prunable_weights(model).items()}
    keep = prune(model, method="large", pattern="3:4")[0].keep
    for name, k in keep.items():
        groups, mask = weights[name].reshape(-1, 4), k.reshape(-1, 4)
        assert (groups[~mask] >= groups.masked_fill(~mask, -1).max(dim=1).values).all(), name


def test_compressed_weights_cache_random_pruning_per_seed():
    model = tiny_model("bert", seed=3).model
    pretrained = {n: p.detach().clone() for n, p in model.named_parameters()}
    compressed = CompressedWeights(model, "global")

    def apply(seed):
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(pretrained[n])
        return compressed.apply("random", "unstructured", 0.5, seed=seed).keep

    first, second, cached = apply(1), apply(2), apply(1)
    assert len(compressed.cache) == 2 and compressed.timing["compression_cached"]
    assert not all(torch.equal(first[n], second[n]) for n in first)
    assert all(torch.equal(first[n], cached[n]) for n in first)
    cell = {"method": "random", "pattern": "unstructured", "sparsity": 0.5, "seed": 41}
    assert state_of(cell) != state_of({**cell, "seed": 42})
    assert state_of({**cell, "method": "magnitude"}) == state_of({**cell, "method": "magnitude", "seed": 42})


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_every_setting_accepts_the_controls(setting):
    assert load(setting, "ci", method=list(CONTROLS)).method == list(CONTROLS)


def test_a_scoring_setting_runs_random_pruning_per_seed(tmp_path):
    config = load("setting2", "ci", method=["random"], options=[2], pattern=["unstructured"],
                  store=str(tmp_path / "store.sqlite"))
    frame = jdlib.sweep(config, progress=False)
    random = frame[frame["method"] == "random"]
    assert len(random) == len(config.seeds) == 2
    assert random["realised_sparsity"].round(3).eq(0.5).all() and random["accuracy"].between(0, 1).all()
