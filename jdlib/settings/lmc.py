"""Loss-basin ablation (claim C5): are the dense and the sparse fine-tuned solutions linearly connected?

For each task, data fraction, seed and compression, the pre-trained model is fine-tuned twice
with the same seed, data order and head initialisation: densely (dense transfer) and from its
pruned weights (sparse transfer by default). The validation loss and accuracy are measured
along the straight line between the two solutions (alpha = 0: dense, 1: sparse), and the loss
barrier is taken from that curve (see `jdlib.lmc`).

Easy and hard are two data fractions of one task (Setting 1's knob): the validation split,
label set and loss scale stay the same, so barriers compare directly, which they would not
across tasks with different numbers of labels and base rates.
"""
from __future__ import annotations

from functools import partial

from dataclasses import dataclass
from functools import partial

from .. import lmc
from ..config import ConfigError, param
from ..results import cell_key
from . import setting1
from .finetuning import DENSE, FinetuneRunner
from .setting1 import Setting1Config
from .spec import Part, Setting


@dataclass
class LmcConfig(Setting1Config):
    transfer: list[str] = param(["sparse"], str, "the mode of the path's other end (the dense solution is alpha = 0)",
                                many=True, choices=("dense_freeze", "sparse", "sparse_to_dense"), role="grid")
    alphas: list[float] = param([round(i / 10, 1) for i in range(11)], float,
                                "increasing numbers in [0, 1] from 0 to 1, e.g. [0, 0.1, ..., 1]", many=True, low=0,
                                high=1, role="grid")

    def validate(self) -> None:
        super().validate()
        a = self.alphas
        if list(a) != sorted(a) or a[0] != 0 or a[-1] != 1:
            raise ConfigError(f"alphas={a!r} is not valid: use increasing numbers in [0, 1] from 0 to 1, "
                              "e.g. [0, 0.1, ..., 1]")


def cells(config: LmcConfig) -> list[dict]:
    """One cell per (fraction, task, seed, transfer, compression), with the alpha grid; the cells of a
    (fraction, task, seed) come one after another, so its dense solution is fine-tuned once."""
    return [{**cell, "alphas": [float(a) for a in config.alphas]} for cell in setting1.cells(config)
            if cell["transfer"] != "dense"]


class LmcRunner(FinetuneRunner):
    """Fine-tunes the dense and the compressed solution of a cell and interpolates between them.

    The dense solution of the last (task, fraction, seed) is kept in memory and reused by the
    next cell that shares it.
    """

    def __init__(self, config):
        super().__init__(config)
        self.dense_key = None

    def __call__(self, cell: dict) -> dict:
        base = {k: v for k, v in cell.items() if k != "alphas"}
        dense_cell = {**base, **DENSE}
        if self.dense_key != cell_key(dense_cell):
            self.dense_run = self.fine_tune(dense_cell)
            self.dense_params = lmc.parameters(self.loaded.model)
            self.dense_buffers = lmc.buffers(self.loaded.model)
            self.dense_key = cell_key(dense_cell)
        run = self.fine_tune(base)
        other = lmc.parameters(self.loaded.model)
        curve = lmc.interpolation_curve(self.loaded, self.dense_params, other, self.task.validation, cell["alphas"],
                                        cell["max_length"], buffers=self.dense_buffers)
        alphas, losses, accs = cell["alphas"], curve["losses"], curve["accuracies"]
        return {"accuracy": accs[-1], "loss": losses[-1], "dense_accuracy": accs[0], "dense_loss": losses[0],
                **curve, "barrier": lmc.barrier(alphas, losses),
                "accuracy_barrier": lmc.barrier(alphas, accs, higher_is_worse=False),
                "n": len(self.task.validation), **run, "dense_final_train_loss": self.dense_run["final_train_loss"]}


SETTING = Setting(
    name="lmc", title="The loss basin: linear mode connectivity", config=LmcConfig, level="fraction",
    order=setting1.ORDER, kind="finetune", parts=lambda config: [Part("lmc", cells(config))],
    make_runner=lambda config: partial(LmcRunner, config), in_c1=False)
