"""Calibrated compression on tiny random BERT and Llama: Wanda, SparseGPT, GPTQ, RTN, SVD, the runner."""
import warnings

import pytest
import torch
from torch import nn

from jdlib.compress import calibration_from_c4, calibration_from_texts, low_rank, prune, prunable_weights, quantize
from jdlib.compress.calibrate import capture_block_inputs, run_layerwise
from jdlib.compress.masks import find_blocks, holds_nm
from jdlib.compress.obs import Hessian, inverse_cholesky
from jdlib.compress.sparsegpt import prune_sparsegpt, sparsegpt_linear
from jdlib.models import tiny_model, tiny_tokenizer

ARCHS = ["bert", "llama"]
HEADS = {"bert": "classification", "llama": "causal_lm"}
TEXTS = [
    "the quick brown fox jumps over the lazy dog.",
    "pack my box with five dozen liquor jugs!",
    "how vexingly quick daft zebras jump; 0123456789",
    "sphinx of black quartz, judge my vow?",
    "(a) 'jackdaws love my big sphinx of quartz' - said he: \"yes\".",
] * 3


def model_of(arch: str) -> nn.Module:
    return tiny_model(arch, HEADS[arch], num_labels=2 if arch == "bert" else None).model


@pytest.fixture(scope="module")
def calibration() -> torch.Tensor:
    return calibration_from_texts(tiny_tokenizer(), TEXTS, n_samples=8, seq_len=16, seed=0)


def block_count(model: nn.Module) -> int:
    return len(find_blocks(model))


# The runner: capture, shared statistics, sample count


@pytest.mark.parametrize("arch", ARCHS)
def test_prehook_capture_replays_the_model(arch, calibration):
    model = model_of(arch).eval()
    blocks = find_blocks(model)
    ran = []
    blocks[0].register_forward_hook(lambda *_: ran.append(1))
    captured = capture_block_inputs(model, calibration, batch_size=3)
    assert not ran, "capture ran the first block: only the embedding part should run"
    assert not blocks[0]._forward_pre_hooks, "the capture hook was left on the block"
    assert [len(h) for h in captured.hidden] == [3, 3, 2] and set(captured.kwargs) == {3, 2}

    last_outputs = []
    blocks[-1].register_forward_hook(lambda m, a, out: last_outputs.append(out))
    with torch.no_grad():
        for batch, hidden in zip(calibration.split(3), captured.hidden):
            model(input_ids=batch, use_cache=False)
            for block in blocks:
                hidden = captured.call(block, hidden)
            torch.testing.assert_close(hidden, last_outputs[-1])


@pytest.mark.parametrize("arch", ARCHS)
def test_one_statistic_per_distinct_input(arch, calibration):
    groups = {
        "bert": [["attention.self.query", "attention.self.key", "attention.self.value"],
                 ["attention.output.dense"], ["intermediate.dense"], ["output.dense"]],
        "llama": [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], ["self_attn.o_proj"],
                  ["mlp.gate_proj", "mlp.up_proj"], ["mlp.down_proj"]],
    }[arch]
    for share in (True, False):
        seen = []
        run_layerwise(model_of(arch), calibration, lambda p, lin, stats: seen.append(stats), Hessian, share)
        for stats in seen:
            assert sorted(stats) == sorted(n for g in groups for n in g)
            distinct = {id(s) for s in stats.values()}
            assert len(distinct) == (len(groups) if share else len(stats))
            for group in groups:
                assert all((stats[n] is stats[group[0]]) == share for n in group[1:])
                assert stats[group[0]].samples == len(calibration)  # n is counted, never assumed


def test_shared_and_separate_hessians_prune_alike(calibration):
    shared, separate = model_of("llama"), model_of("llama")
    keep_shared, _ = prune_sparsegpt(shared, calibration, 0.5, share_inputs=True)
    keep_separate, _ = prune_sparsegpt(separate, calibration, 0.5, share_inputs=False)
    for name in keep_shared:
        assert torch.equal(keep_shared[name], keep_separate[name]), name
    for a, b in zip(shared.parameters(), separate.parameters()):
        assert torch.equal(a, b)


def test_module_without_blocks_fails_clearly(calibration):
    flat = nn.Sequential(nn.Embedding(64, 8), nn.Linear(8, 8))
    for call in (
        lambda: prune(flat, "wanda", calibration=calibration),
        lambda: prune(flat, "sparsegpt", calibration=calibration),
        lambda: quantize(flat, "gptq", 4, calibration=calibration),
        lambda: low_rank(flat, rank=2),
    ):
        with pytest.raises(ValueError, match="cannot find transformer blocks"):
            call()


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_missing_or_bad_calibration_is_a_clear_error(method, calibration):
    model = model_of("llama")
    before = {n: w.clone() for n, w in prunable_weights(model).items()}
    with pytest.raises(ValueError, match="calibration"):
        prune(model, method, 0.5)
    with pytest.raises(ValueError, match="calibration"):
        prune(model, method, 0.5, calibration=calibration.float())
    with pytest.raises(ValueError, match="calibration"):
        prune(model, method, 0.5, calibration=calibration[0])
    with pytest.raises(ValueError, match="calibration"):
        quantize(model, "gptq", 4)
    assert all(torch.equal(w, before[n]) for n, w in prunable_weights(model).items()), "failed call changed weights"


# Pruning: realised sparsity, N:M, error ordering, determinism


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
@pytest.mark.parametrize("sparsity", [0.5, 0.3])
def test_exact_realised_sparsity(arch, method, sparsity, calibration):
    model = model_of(arch)
    dense = {n: w.detach().clone() for n, w in prunable_weights(model).items()}
    masks, report = prune(model, method, sparsity, calibration=calibration)
    weights = prunable_weights(model)
    assert set(masks.keep) == set(weights)
    total = pruned = 0
    for name, keep in masks.keep.items():
        w = weights[name]
        assert (w[~keep] == 0).all(), f"{name}: a pruned weight is not exactly zero"
        if method == "wanda":
            assert ((~keep).sum(1) == round(sparsity * w.shape[1])).all(), f"{name}: rows differ"
            assert torch.equal(w[keep], dense[name][keep])
        else:
            assert int((~keep).sum()) == round(sparsity * w.numel()), name
            assert not torch.equal(w[keep], dense[name][keep]), f"{name}: no OBS update of the kept weights"
        total, pruned = total + keep.numel(), pruned + int((~keep).sum())
    assert report.realised_sparsity == pytest.approx(pruned / total, abs=0, rel=1e-12)
    assert abs(report.realised_sparsity - sparsity) < 0.01
    assert len(report.block_errors) == block_count(model) and report.wall_time_s > 0


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
@pytest.mark.parametrize("pattern", ["2:4", "7:8", "1:8"])
def test_nm_groups_hold(arch, method, pattern, calibration):
    n, m = map(int, pattern.split(":"))
    model = model_of(arch)
    masks, report = prune(model, method, pattern=pattern, calibration=calibration)
    weights = prunable_weights(model)
    for name, keep in masks.keep.items():
        assert holds_nm(keep, n, m), name
        assert (weights[name][~keep] == 0).all(), name
    assert report.realised_sparsity == pytest.approx(1 - n / m)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_sparsegpt_block_error_below_magnitude(arch, pattern, calibration):
    _, magnitude = prune(model_of(arch), "magnitude", 0.6, pattern, scope="layer", calibration=calibration)
    _, sparsegpt = prune(model_of(arch), "sparsegpt", 0.6, pattern, calibration=calibration)
    assert len(sparsegpt.block_errors) == len(magnitude.block_errors) == 2
    for ours, theirs in zip(sparsegpt.block_errors, magnitude.block_errors):
        assert 0 < ours < theirs


@pytest.mark.parametrize("method", ["wanda", "sparsegpt"])
def test_same_seed_same_masks(method):
    tok = tiny_tokenizer()
    first = calibration_from_texts(tok, TEXTS, 6, 16, seed=1)
    again = calibration_from_texts(tok, TEXTS, 6, 16, seed=1)
    other = calibration_from_texts(tok, TEXTS, 6, 16, seed=2)
    assert torch.equal(first, again) and not torch.equal(first, other)
    masks_a, _ = prune(model_of("llama"), method, 0.5, calibration=first)
    masks_b, _ = prune(model_of("llama"), method, 0.5, calibration=again)
    masks_c, _ = prune(model_of("llama"), method, 0.5, calibration=other)
    assert all(torch.equal(masks_a.keep[n], masks_b.keep[n]) for n in masks_a.keep)
    assert any(not torch.equal(masks_a.keep[n], masks_c.keep[n]) for n in masks_a.keep)


# Quantization


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("group_size, act_order", [(None, False), (32, False), (32, True)])
def test_gptq_block_error_below_rtn(arch, group_size, act_order, calibration):
    rtn = quantize(model_of(arch), "rtn", 3, group_size, calibration=calibration)
    gptq = quantize(model_of(arch), "gptq", 3, group_size, calibration=calibration, act_order=act_order)
    assert len(gptq.block_errors) == len(rtn.block_errors) == 2
    for ours, theirs in zip(gptq.block_errors, rtn.block_errors):
        assert 0 < ours < theirs
    assert 2 < gptq.realised_bits <= 3 and 2 < rtn.realised_bits <= 3


def test_quantized_values_lie_on_a_grid_per_group():
    model = model_of("bert")
    report = quantize(model, "rtn", 2, group_size=16)
    for name, w in prunable_weights(model).items():
        groups = w.detach().reshape(w.shape[0], -1, 16)
        levels = torch.tensor([[len(g.unique()) for g in row] for row in groups])
        assert levels.max() <= 4, name
    assert report.realised_bits == 2.0 and report.block_errors == []


@pytest.mark.parametrize("method, act_order", [("rtn", False), ("gptq", False), ("gptq", True)])
def test_pruned_then_quantized_keeps_its_zeros(method, act_order, calibration):
    model = model_of("llama")
    masks, _ = prune(model, "wanda", 0.5, calibration=calibration)
    quantize(model, method, 4, 32 if act_order else None, calibration=calibration, act_order=act_order)
    weights = prunable_weights(model)
    for name, keep in masks.keep.items():
        assert (weights[name][~keep] == 0).all(), f"{name}: quantization revived a pruned weight"
        assert (weights[name][keep] != 0).float().mean() > 0.5, f"{name}: kept weights collapsed to zero"


# Low rank


def test_full_rank_svd_reproduces_the_weights(calibration):
    model = model_of("llama")
    dense = {n: w.detach().clone() for n, w in prunable_weights(model).items()}
    for kwargs in ({"rank": 10_000}, {"energy": 1.0}):
        report = low_rank(model, **kwargs, calibration=calibration)
        for name, w in prunable_weights(model).items():
            torch.testing.assert_close(w, dense[name], rtol=1e-4, atol=1e-5)
            assert report.per_layer[name] == min(w.shape)
        assert max(report.block_errors) < 1e-4


def test_truncated_svd_is_the_eckart_young_optimum():
    model = model_of("bert")
    dense = {n: w.detach().clone() for n, w in prunable_weights(model).items()}
    report = low_rank(model, rank=8)
    kept = total = 0
    for name, w in prunable_weights(model).items():
        s = torch.linalg.svdvals(dense[name])
        torch.testing.assert_close((w - dense[name]).norm() ** 2, s[8:].square().sum(), rtol=1e-3, atol=1e-6)
        assert torch.linalg.matrix_rank(w) == 8 == report.per_layer[name]
        kept, total = kept + 8 * sum(w.shape), total + w.numel()
    assert report.params_ratio == pytest.approx(kept / total)
    energy = low_rank(model_of("bert"), energy=0.5)
    assert all(0 < r < 64 for r in energy.per_layer.values())


# OBS pieces


def test_cholesky_falls_back_to_more_damping():
    indefinite = torch.tensor([[1.0, 2.5, 0.0], [2.5, 1.0, 0.0], [0.0, 0.0, 1.0]])  # eigenvalues -1.5, 1, 3.5
    with pytest.warns(UserWarning, match="not positive definite"):
        upper = inverse_cholesky(indefinite)
    assert torch.equal(upper, upper.triu())
    damping = torch.linalg.inv(upper.T @ upper) - indefinite
    lam = damping.diagonal().mean()
    torch.testing.assert_close(damping, lam * torch.eye(3), atol=1e-4, rtol=1e-4)
    assert lam > 1.5  # enough to make H + lambda I positive definite
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inverse_cholesky(torch.eye(3) * 2)


def test_dead_inputs_are_handled():
    torch.manual_seed(0)
    linear = nn.Linear(16, 8)
    hessian = Hessian(linear)
    x = torch.randn(4, 32, 16)
    x[..., 3] = 0
    hessian.add(x)
    assert hessian.samples == 4
    with torch.no_grad():
        keep = sparsegpt_linear(linear, hessian, 0.5)
    assert torch.isfinite(linear.weight).all() and (linear.weight[:, 3] == 0).all()
    assert int((~keep).sum()) == 64 and (linear.weight[~keep] == 0).all()


# Calibration data


def test_calibration_windows_come_from_the_token_stream():
    tok = tiny_tokenizer()
    stream = [t for text in TEXTS for t in tok(text)["input_ids"]]
    cal = calibration_from_texts(tok, TEXTS, n_samples=5, seq_len=12, seed=3)
    assert cal.shape == (5, 12) and cal.dtype == torch.long
    text = f",{','.join(map(str, stream))},"
    assert all(f",{','.join(map(str, row.tolist()))}," in text for row in cal)
    assert len({tuple(r.tolist()) for r in cal}) > 1
    with pytest.raises(ValueError, match="seq_len"):
        calibration_from_texts(tok, ["short"], n_samples=2, seq_len=16)


def test_c4_fails_clearly_offline(monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    try:
        cal = calibration_from_c4(tiny_tokenizer(), n_samples=2, seq_len=16)
    except RuntimeError as err:  # no cached copy of the shard, which is this workplace
        assert "allenai/c4" in str(err) and "calibration_from_texts" in str(err)
    else:
        assert cal.shape == (2, 16) and cal.dtype == torch.long
