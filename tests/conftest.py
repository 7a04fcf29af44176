import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
torch.set_num_threads(2)

from jdlib.models import tiny_model  # noqa: E402


@pytest.fixture
def tiny_bert():
    return tiny_model("bert", head="classification", num_labels=2)


@pytest.fixture
def tiny_llama():
    return tiny_model("llama", head="causal_lm")
