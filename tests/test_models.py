import socket

import pytest
import torch

from jdlib import load_model


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
    for name in ("tiny-bert", "tiny-llama"):
        loaded = load_model(name, head="classification", num_labels=2, device="cpu")
        ids = loaded.tokenizer(["hello there"], return_tensors="pt")
        assert loaded.model(**ids).logits.shape == (1, 2)
        assert torch.isfinite(loaded.model(**ids).logits).all()
