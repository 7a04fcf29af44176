"""Metrics of a fine-tuned classifier or multiple-choice model on a task split."""
from __future__ import annotations

import datasets
import torch
import torch.nn.functional as F

from .models import LoadedModel
from .train import encode

CPU_BATCH, GPU_BATCH = 64, 1024  # sequences; evaluation needs no gradients: large batches keep a GPU busy


@torch.no_grad()
def evaluate(loaded: LoadedModel, dataset: datasets.Dataset, batch_size: int | None = None,
             max_length: int = 128) -> dict:
    """Accuracy, mean loss and per-question outcomes on `dataset`: a classification model on columns
    text (text_pair), label; a multiple-choice model on text, options, label (the gold option).

    The loss is the cross-entropy over the classes, or over a question's option logits.
    `outcomes` lists 1 (correct) or 0 per question in the dataset's order. Runs in fp32 on the
    model's device, `batch_size` questions at a time (default: 64 sequences on the CPU, 1024 on
    a GPU, divided among a question's options; on a GPU every batch keeps the split's padded
    length and results stay on the device to the end).
    """
    model = loaded.model
    model.eval()
    device = next(model.parameters()).device
    cpu = device.type == "cpu"
    data = encode(loaded, dataset, max_length).to(device)
    batch_size = batch_size or max(1, (CPU_BATCH if cpu else GPU_BATCH) // data.options)
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
