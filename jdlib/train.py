"""Fine-tuning with a task head, under a transfer mode (the paper's recipe by default)."""
from __future__ import annotations

import hashlib
import math
import random

import datasets
import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm import tqdm
from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

from .compress.masks import Masks
from .models import LoadedModel, quiet
from .transfer import Transfer


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def encode(loaded: LoadedModel, dataset: datasets.Dataset, max_length: int) -> datasets.Dataset:
    """Tokenise the `text` (and `text_pair`, if any) column; keep `label`."""
    tok = loaded.tokenizer
    pair = "text_pair" in dataset.column_names

    def tokenize(batch):
        return tok(batch["text"], batch["text_pair"] if pair else None, truncation=True, max_length=max_length)

    # A fingerprint of our own: by default `map` hashes the closure, tokenizer included, with dill
    # on every call, which took a third of a small fine-tuning cell's time (and 11x per LMC cell).
    ident = f"{dataset._fingerprint}|{type(tok).__name__}|{tok.name_or_path}|{len(tok)}|{max_length}|{pair}"
    with quiet():
        return dataset.map(tokenize, batched=True, remove_columns=[c for c in dataset.column_names if c != "label"],
                           new_fingerprint=hashlib.sha256(ident.encode()).hexdigest()[:32])


def batches(loaded: LoadedModel, dataset: datasets.Dataset, batch_size: int, max_length: int,
            shuffle: bool = False, seed: int = 0) -> DataLoader:
    """Batches padded to their longest item."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(encode(loaded, dataset, max_length).with_format("torch"), batch_size=batch_size,
                      shuffle=shuffle, generator=generator, collate_fn=DataCollatorWithPadding(loaded.tokenizer))


def init_head(loaded: LoadedModel, seed: int) -> None:
    """Re-initialise the task head (everything outside the pre-trained base model) for `seed`."""
    model = loaded.model
    prefix = model.base_model_prefix
    std = getattr(model.config, "initializer_range", 0.02)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and not name.startswith(prefix):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if module.bias is not None:
                    module.bias.zero_()


def finetune(
    loaded: LoadedModel,
    train: datasets.Dataset,
    transfer: str = "dense",
    masks: Masks | None = None,
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 2e-5,
    max_length: int = 128,
    seed: int = 42,
    warmup_ratio: float = 0.06,
    weight_decay: float = 0.0,
    progress: bool = True,
) -> list[float]:
    """Fine-tune `loaded.model` in place on `train` (AdamW, linear decay with warm-up); return losses."""
    seed_everything(seed)
    model = loaded.model
    enforcer = Transfer(model, masks, transfer)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    loader = batches(loaded, train, batch_size, max_length, shuffle=True, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    total = epochs * len(loader)
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(warmup_ratio * total), total)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    model.train()
    losses = []
    bar = tqdm(total=total, desc=f"fine-tune ({transfer})", disable=not progress, leave=False)
    for _ in range(epochs):
        for batch in loader:
            loss = model(**batch).loss
            accelerator.backward(loss)
            enforcer.before_step()
            optimizer.step()
            enforcer.after_step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            bar.update()
    bar.close()
    model.eval()
    loaded.model = accelerator.unwrap_model(model)
    return losses
