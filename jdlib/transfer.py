"""The four transfer modes of the paper, enforced during fine-tuning.

- dense: plain fine-tuning of the pre-trained model (the baseline).
- dense_freeze: the weights under the mask (the small ones) keep their pre-trained values.
- sparse: the pruned weights are zero throughout, their gradients masked.
- sparse_to_dense: pruned at the start, then every weight is free to move.
"""
from __future__ import annotations

import torch
from torch import nn

from .compress.masks import Masks

TRANSFER_MODES = ("dense", "dense_freeze", "sparse", "sparse_to_dense")


def check_mode(mode: str) -> None:
    if mode not in TRANSFER_MODES:
        raise ValueError(f"transfer={mode!r} is not valid: use one of {', '.join(TRANSFER_MODES)}")


class Transfer:
    """Pins the masked weights of `model` to fixed values (zero, or pre-trained) across steps."""

    def __init__(self, model: nn.Module, masks: Masks | None, mode: str):
        check_mode(mode)
        if mode != "dense" and masks is None:
            raise ValueError(f"transfer={mode!r} needs masks (prune first)")
        self.mode = mode
        params = dict(model.named_parameters())
        if mode in ("sparse", "sparse_to_dense"):
            masks.apply(model)
        # (parameter, keep-mask, the values the pinned weights must hold)
        self.pinned: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = []
        if mode in ("sparse", "dense_freeze"):
            for name, keep in masks.keep.items():
                p = params[name]
                held = p.detach().clone() if mode == "dense_freeze" else torch.zeros((), dtype=p.dtype, device=p.device)
                self.pinned.append((p, keep.to(p.device), held))

    def before_step(self) -> None:
        """Mask the gradients of pinned weights, so optimizer state stays clean."""
        for p, keep, _ in self.pinned:
            if p.grad is not None:
                p.grad.mul_(keep)

    @torch.no_grad()
    def after_step(self) -> None:
        """Put pinned weights back exactly (bit for bit) after the optimizer moved them."""
        for p, keep, held in self.pinned:
            p.copy_(torch.where(keep, p, held))
