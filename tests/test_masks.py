import pytest
import torch

from jdlib.compress import prune
from jdlib.compress.masks import GlobalRanking, holds_nm, parse_pattern, prunable_weights, select
from jdlib.models import tiny_model


@pytest.mark.parametrize("arch", ["bert", "llama"])
def test_prunable_scope_is_block_linear_weights_only(arch):
    model = tiny_model(arch, head="classification", num_labels=2).model
    names = set(prunable_weights(model))
    assert names, "no prunable weights found"
    assert all(n.endswith(".weight") for n in names)
    assert not any(k in n for n in names for k in ("embed", "norm", "classifier", "score", "pooler", "lm_head"))
    all_2d = {n for n, p in model.named_parameters() if p.dim() == 2 and ("layer." in n or "layers." in n)}
    assert names == all_2d


@pytest.mark.parametrize("method", ["magnitude", "random", "large"])
@pytest.mark.parametrize("scope", ["global", "layer", "row"])
@pytest.mark.parametrize("sparsity", [0.1, 0.37, 0.5, 0.9])
def test_realised_sparsity_is_exact(method, scope, sparsity):
    model = tiny_model("bert", head="classification", num_labels=2).model
    masks, report = prune(model, method=method, sparsity=sparsity, scope=scope, seed=5)
    total = sum(k.numel() for k in masks.keep.values())
    if scope == "global":
        assert report.realised_sparsity == round(sparsity * total) / total
    else:
        for name, keep in masks.keep.items():
            per = keep.shape[1] if scope == "row" else keep.numel()
            assert int((~keep).sum()) == round(sparsity * per) * (keep.shape[0] if scope == "row" else 1), name
    params = dict(model.named_parameters())
    for name, keep in masks.keep.items():
        assert (params[name][~keep] == 0).all()


def test_global_threshold_matches_concatenated_kthvalue():
    torch.manual_seed(0)
    scores = {"a": torch.rand(64, 48), "b": torch.rand(17, 32), "c": torch.rand(5, 8)}
    ranking = GlobalRanking(scores)
    flat = torch.cat([s.flatten() for s in scores.values()])
    for sparsity in (0.05, 0.5, 0.93):
        k = round(sparsity * flat.numel())
        assert ranking.kth_smallest(k) == flat.kthvalue(k).values
        keep = ranking.masks(sparsity)
        pruned = torch.cat([(~m).flatten() for m in keep.values()])
        assert torch.equal(pruned, flat <= flat.kthvalue(k).values)


def test_global_threshold_breaks_ties_to_the_exact_count():
    scores = {"a": torch.tensor([[0.0, 0.0, 1.0, 1.0]]), "b": torch.tensor([[0.0, 2.0, 1.0, 3.0]])}
    keep = GlobalRanking(scores).masks(0.5)
    assert sum(int((~m).sum()) for m in keep.values()) == 4


@pytest.mark.parametrize("pattern", [f"{n}:8" for n in range(1, 8)] + [f"{n}:4" for n in range(1, 4)])
def test_nm_groups_hold(pattern):
    n, m = parse_pattern(pattern)
    model = tiny_model("llama", head="causal_lm").model
    masks, report = prune(model, sparsity=0.5, pattern=pattern)
    assert all(holds_nm(k, n, m) for k in masks.keep.values())
    assert report.realised_sparsity == pytest.approx(1 - n / m)


def test_nm_keeps_the_largest_of_each_group():
    scores = {"w": torch.tensor([[4.0, 1.0, 3.0, 2.0, 0.5, 0.1, 0.9, 0.2]])}
    keep = select(scores, 0.0, pattern="2:4")["w"]
    assert keep.tolist() == [[True, False, True, False, True, False, True, False]]


@pytest.mark.parametrize("bad", ["9:8", "0:4", "4:4", "2-4", "structured"])
def test_bad_pattern_names_the_allowed_values(bad):
    with pytest.raises(ValueError, match="kept:group"):
        parse_pattern(bad)


def test_same_model_same_masks():
    a = prune(tiny_model("bert", seed=3).model, sparsity=0.6)[0]
    b = prune(tiny_model("bert", seed=3).model, sparsity=0.6)[0]
    assert all(torch.equal(a.keep[n], b.keep[n]) for n in a.keep)
