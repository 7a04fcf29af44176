"""Metrics of a fine-tuned classifier on a task split."""
from __future__ import annotations

import datasets
import torch
import torch.nn.functional as F

from .models import LoadedModel
from .train import encode

GPU_BATCH = 1024  # evaluation needs no gradients: large batches keep a GPU busy


@torch.no_grad()
def evaluate(loaded: LoadedModel, dataset: datasets.Dataset, batch_size: int | None = None,
             max_length: int = 128) -> dict:
    """Accuracy, mean loss and per-question outcomes of a classification model on `dataset` (columns text, label).

    `outcomes` lists 1 (correct) or 0 per question in the dataset's order. Runs in fp32 on the
    model's device, `batch_size` items at a time (default 64 on the CPU, 1024 on a GPU, where
    every batch keeps the split's padded length and results stay on the device to the end).
    """
    model = loaded.model
    model.eval()
    device = next(model.parameters()).device
    cpu = device.type == "cpu"
    batch_size = batch_size or (64 if cpu else GPU_BATCH)
    data = encode(loaded, dataset, max_length).to(device)
    correct, losses = [], []
    for index in torch.arange(len(data), device=device).split(batch_size):
        batch = data.batch(index, trim=cpu)
        labels = batch.pop("labels")
        logits = model(**batch).logits.float()
        correct.append(logits.argmax(-1) == labels)
        losses.append(F.cross_entropy(logits, labels, reduction="sum").double())
    outcomes = torch.cat(correct).int().tolist()
    n = len(outcomes)
    return {"accuracy": sum(outcomes) / n, "loss": float(torch.stack(losses).sum()) / n, "n": n,
            "outcomes": outcomes}
