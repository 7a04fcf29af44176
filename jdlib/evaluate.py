"""Metrics of a fine-tuned classifier on a task split."""
from __future__ import annotations

import datasets
import torch

from .models import LoadedModel
from .train import batches


@torch.no_grad()
def evaluate(loaded: LoadedModel, dataset: datasets.Dataset, batch_size: int = 64, max_length: int = 128) -> dict:
    """Accuracy and mean loss of a classification model on `dataset` (columns text, label)."""
    model = loaded.model
    model.eval()
    device = next(model.parameters()).device
    correct, loss_sum, n = 0, 0.0, 0
    for batch in batches(loaded, dataset, batch_size, max_length):
        batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        correct += int((out.logits.argmax(-1) == batch["labels"]).sum())
        loss_sum += float(out.loss) * len(batch["labels"])
        n += len(batch["labels"])
    return {"accuracy": correct / n, "loss": loss_sum / n, "n": n}
