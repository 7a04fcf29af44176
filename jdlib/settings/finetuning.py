"""The fine-tuning settings' cell: compress the pre-trained model, fine-tune under a transfer
mode on (a fraction of) a task, evaluate. Shared by Setting 1, Setting 5 and the ablations.

The task's kind picks the head, on one path: a classification task gets one output per class, a
multiple-choice task (CommonsenseQA, WinoGrande in the true gem at paper scale) one score per
(question, option) pair, as transformers' AutoModelForMultipleChoice. The compression, the
transfer modes and the recipe are the same for both."""
from __future__ import annotations

from ..compress.calibrate import calibration_for
from ..compress.masks import Masks, parse_pattern
from ..compress.plugins import plugin_identity
from ..config import FinetuneConfig
from ..data import load_task
from ..difficulty import subsample
from ..evaluate import evaluate
from ..models import load_model, restore, snapshot
from ..train import RECIPE, finetune, init_head
from .compressed import CompressedWeights

DENSE = {"transfer": "dense", "method": "none", "pattern": "dense", "sparsity": 0.0}
HEADS = ("classification", "multiple_choice")  # the task kinds a head is fine-tuned on, each its head's name


def transfer_cells(config) -> list[dict]:
    """Task x seed x (the dense baseline + every transfer mode x method x pattern x sparsity)."""
    compressions = []
    for pattern in config.pattern:
        nm = parse_pattern(pattern)
        levels = [1.0 - nm[0] / nm[1]] if nm else config.sparsities
        compressions += [(pattern, round(s, 6)) for s in levels]
    variants = [DENSE] + [{"transfer": t, "method": m, "pattern": p, "sparsity": s, **config.calibration_of(m),
                           **plugin_identity(m)}
                          for t in config.transfer for m in config.method for p, s in compressions]
    # the fine-tuning computation's version: only cells that fine-tune carry it (the scoring settings share this grid)
    recipe = {"recipe": RECIPE} if isinstance(config, FinetuneConfig) else {}
    return [{**config.cell_common(), **recipe, "task": task, "seed": seed, **v}
            for task in config.tasks for seed in config.seeds for v in variants]


class FinetuneRunner:
    """Runs cells, loading each task's model once and restoring it from memory between cells.

    Compressed pre-trained weights are cached per (method, pattern, sparsity): the magnitude
    ranking is computed once per model and every level derived from it.
    """

    def __init__(self, config):
        self.config = config
        self.task_name = None

    def _load(self, task_name: str) -> None:
        config = self.config
        self.task = load_task(task_name).cap(config.max_train, config.max_eval)
        if self.task.kind not in HEADS:
            raise ValueError(f"task={task_name!r} is a {self.task.kind} task: fine-tuning needs a "
                             f"{' or '.join(HEADS)} task")
        self.loaded = load_model(config.model, head=self.task.kind, num_labels=self.task.num_labels,
                                 device=config.device)
        self.pretrained = snapshot(self.loaded.model)
        self.compressed = CompressedWeights(self.loaded.model, config.scope)
        self.task_name = task_name

    def _compress(self, method: str, pattern: str, sparsity: float, seed: int = 0) -> Masks:
        """The compressed pre-trained weights put in; `seed` draws random pruning's (the cell's seed)."""
        config = self.config
        return self.compressed.apply(method, pattern, sparsity, calibration=lambda: calibration_for(
            config.calibration, self.loaded.tokenizer, self.task.train["text"], config.calibration_samples,
            config.calibration_seq_len), seed=seed)

    def fine_tune(self, cell: dict) -> dict:
        """Fine-tune the cell's model in place (left in `self.loaded.model`); return what the run records."""
        if cell["task"] != self.task_name:
            self._load(cell["task"])
        restore(self.loaded.model, self.pretrained)
        masks = None if cell["transfer"] == "dense" else self._compress(
            cell["method"], cell["pattern"], cell["sparsity"], cell["seed"])
        if cell["transfer"] == "dense_freeze":
            # The masks only say which weights to freeze: the model starts unpruned, so they are
            # held at their pre-trained values, not at the compressed ones (zero).
            restore(self.loaded.model, self.pretrained)
        init_head(self.loaded, cell["seed"])
        train = subsample(self.task.train, cell.get("fraction", 1.0), seed=cell["seed"])
        losses = finetune(self.loaded, train, cell["transfer"], masks, epochs=cell["epochs"], steps=cell["steps"],
                          batch_size=cell["batch_size"], lr=cell["lr"], max_length=cell["max_length"],
                          seed=cell["seed"], progress=False)
        return {"train_examples": len(train), "final_train_loss": losses[-1] if losses else None,
                "realised_sparsity": masks.sparsity if masks else 0.0, **(self.compressed.summary if masks else {}),
                **({"provenance": self.compressed.timing} if masks else {})}

    def __call__(self, cell: dict) -> dict:
        run = self.fine_tune(cell)
        metrics = evaluate(self.loaded, self.task.validation, max_length=cell["max_length"])
        metrics.update(run)
        return metrics
