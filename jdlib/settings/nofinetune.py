"""The no-fine-tuning settings' machinery (Settings 2, 3, 4 and 6): compress the pre-trained
model, score it as it is, with no task head and no training.

A sweep loads its model once, keeps an in-memory copy of the pre-trained weights and swaps
compressed weights in per cell (`CompressedWeights`: every global magnitude level from one
ranking, each compressed state made once). Cells are run grouped by compressed state, and each
state gets fresh scorers that remember what they computed, so a text (an input, an option, a
demonstration) is embedded or a prompt scored once per state, however many difficulty levels
and seeds reuse it.

The model's kind picks the scorer: an encoder scores with its own sentence embedding
(`scorers.embedding`), a decoder with option log-likelihoods (`scorers.loglik`) or greedy
answers (`scorers.generation`). A setting module gives the cells' difficulty level and a
`score(runner, cell)` function; this module runs them.
"""
from __future__ import annotations

from functools import partial

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
from transformers import AutoConfig

from ..compress import CALIBRATED
from ..compress.calibrate import calibration_for
from ..config import ConfigError, SweepConfig
from ..data import Task, load_task
from ..models import DECODER_TYPES, load_model, quiet, resolve_path, restore, snapshot
from ..results import ResultsStore
from ..scorers import Embedder, Generator, LoglikScorer, answer_metrics
from ..scorers.embedding import choose_among
from ..scorers.generation import ANSWER_METRICS
from ..scorers.prompts import FORMATS, choice_item
from ..grid import run_grid
from .compressed import CompressedWeights
from .finetuning import transfer_cells

NO_TRANSFER = "none"  # the compressed cells' transfer: the pre-trained model is scored as compressed
CHOICE_SCORES = ("acc", "acc_norm")
LARGE = 1_000_000_000  # parameters above which compressed copies are not cached


@dataclass
class NoFinetuneConfig(SweepConfig):
    """Parameters of a no-fine-tuning setting; `epochs`, `lr` and `max_train` do not apply.

    - max_eval, eval_seeded: evaluation questions per task, one fixed seeded sample, or (with
      eval_seeded) a sample drawn anew for each seed; seeds always vary what the difficulty
      knob samples (distractors, demonstrations, candidate pools), and eval_seeded makes them
      vary the questions too, which a deterministic formulation (greedy answers to a fixed
      set) needs for its seeds to differ at all;
    - calibration: where Wanda and SparseGPT get calibration text: "task" (the task's
      training split) or "c4" (the paper's);
    - prompt_format, choice_score: a decoder's multiple-choice format ("cloze" or "letters")
      and which harness score is `accuracy` ("acc" or "acc_norm");
    - max_new_tokens, answer_metric: a decoder's open answers: generation length and which of
      exact_match, exact_match_lenient, f1 is `accuracy`.
    """

    transfer: list[str] = field(default_factory=lambda: [NO_TRANSFER])
    max_eval: int | None = 200
    eval_seeded: bool = False
    prompt_format: str = "cloze"
    choice_score: str = "acc"
    max_new_tokens: int = 16
    answer_metric: str = "exact_match_lenient"

    def validate(self) -> None:
        for t in self.transfer:
            if t != NO_TRANSFER:
                raise ConfigError(f"transfer={t!r} is not valid for {self.setting}: it scores the compressed "
                                  f"pre-trained model without fine-tuning; use '{NO_TRANSFER}'")
        SweepConfig.validate(dataclasses.replace(self, transfer=[]))
        choices = {"prompt_format": FORMATS, "choice_score": CHOICE_SCORES,
                   "answer_metric": ANSWER_METRICS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not valid: use one of {', '.join(allowed)}")
        if not isinstance(self.eval_seeded, bool):
            raise ConfigError(f"eval_seeded={self.eval_seeded!r} is not valid: use true or false")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens={self.max_new_tokens!r} is not valid: use a positive integer")

    def cell_common(self) -> dict:
        return {k: getattr(self, k) for k in ("model", "scope", "max_length", "max_eval", "eval_seeded", "calibration",
                                              "calibration_samples", "calibration_seq_len", "prompt_format",
                                              "choice_score", "max_new_tokens", "answer_metric")}


def check_levels(name: str, values: Sequence, valid: Callable[[object], bool], allowed: str) -> None:
    if not values:
        raise ConfigError(f"{name} is empty: give at least one level")
    for v in values:
        if isinstance(v, bool) or not valid(v):
            raise ConfigError(f"{name}: {v!r} is not valid: use {allowed}")


# What else a quantized or low-rank cell (the compression setting) carries: pruning cells have none
# of these, so their state and their key are unchanged.
COMPRESSION_FIELDS = ("bits", "group_size", "rank_fraction", "energy")
GPTQ = "gptq"  # calibrated like Wanda and SparseGPT


def compression_options(cell: dict) -> dict:
    return {k: cell[k] for k in COMPRESSION_FIELDS if k in cell}


def state_of(cell: dict) -> tuple:
    """The compressed state a cell needs (its weights do not depend on anything else here)."""
    return (cell["method"], cell["pattern"], float(cell["sparsity"]),
            *((k, cell[k]) for k in COMPRESSION_FIELDS if k in cell))


def scoring_cells(config: NoFinetuneConfig, level: str | None, values: Sequence) -> list[dict]:
    """Task x level x seed x (the dense baseline + method x pattern x sparsity), grouped by
    compressed state (and by task within one, as calibrated methods compress per task).
    With `level` None the difficulty lies across tasks and the cells have no level."""
    cells = transfer_cells(config) if level is None else [{**c, level: v} for v in values for c in transfer_cells(config)]
    return sorted(cells, key=lambda c: (c["transfer"] != "dense", *state_of(c), c["task"]))


def model_kind(name: str) -> str:
    """"encoder" or "decoder", read from the model's config without loading its weights."""
    if name.startswith("tiny-"):
        return "decoder" if name == "tiny-llama" else "encoder"
    path, local = resolve_path(name)
    with quiet():
        config = AutoConfig.from_pretrained(path, local_files_only=local)
    return "decoder" if config.model_type in DECODER_TYPES or getattr(config, "is_decoder", False) else "encoder"


def sample(rows: list[dict], n: int | None, seed: int = 0) -> list[dict]:
    """A seeded random sample of at most n rows, in their original order (None: all)."""
    if n is None or n >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


class ScoringRunner:
    """Runs the cells of a no-fine-tuning setting with `score(runner, cell) -> metrics`."""

    def __init__(self, config: NoFinetuneConfig, score: Callable[["ScoringRunner", dict], dict]):
        self.config = config
        self.score = score
        self.loaded = None
        self.tasks: dict[str, Task] = {}
        self.memo: dict[object, object] = {}

    # -- the model and its weights ---------------------------------------------------------
    def _load(self) -> None:
        config = self.config
        kind = model_kind(config.model)
        self.loaded = load_model(config.model, head="embedding" if kind == "encoder" else "causal_lm",
                                 device=config.device)
        model = self.loaded.model
        large = sum(p.numel() for p in model.parameters()) > LARGE
        # A large model's pre-trained copy waits in host memory (one copy per state change) and
        # no compressed copy is cached: the cells are grouped by compressed state anyway.
        self.pretrained = ({k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()} if large
                           else snapshot(model))
        self.compressed = CompressedWeights(model, config.scope, max_cached=0 if large else None)
        self.state, self.sparsity, self.compression, self.scorers = None, 0.0, {}, {}

    def _calibration(self, task_name: str):
        config = self.config
        texts = [r["text"] + (" " + r["context"] if r.get("context") else "") for r in self.task(task_name).train]
        return calibration_for(config.calibration, self.loaded.tokenizer, texts, config.calibration_samples,
                               config.calibration_seq_len)

    def _set_weights(self, cell: dict) -> None:
        calibrated = cell["method"] in CALIBRATED or cell["method"] == GPTQ
        state = state_of(cell) + ((cell["task"],) if calibrated and self.config.calibration == "task" else ())
        if state == self.state:
            return
        restore(self.loaded.model, self.pretrained)
        self.sparsity, self.compression = 0.0, {}
        if cell["transfer"] != "dense":
            masks = self.compressed.apply(cell["method"], cell["pattern"], cell["sparsity"],
                                          calibration=lambda: self._calibration(cell["task"]), extra=state[3:],
                                          options=compression_options(cell))
            self.sparsity, self.compression = masks.sparsity, self.compressed.summary
        self.state, self.scorers = state, {}

    def __call__(self, cell: dict) -> dict:
        if self.loaded is None:
            self._load()
        self._set_weights(cell)
        metrics = self.score(self, cell)
        metrics["realised_sparsity"] = self.sparsity
        return {**metrics, **self.compression}

    # -- what a setting's score function uses ---------------------------------------------
    @property
    def kind(self) -> str:
        return self.loaded.kind

    def task(self, name: str) -> Task:
        if name not in self.tasks:
            self.tasks[name] = load_task(name)
        return self.tasks[name]

    def sample(self, rows: list[dict], cell: dict) -> list[dict]:
        """The cell's evaluation questions: `max_eval` of `rows`, drawn with the cell's seed when
        `eval_seeded`, else one fixed sample shared by every seed."""
        return sample(rows, cell["max_eval"], cell["seed"] if cell["eval_seeded"] else 0)

    def derived(self, key, make: Callable[[], object]):
        """Data derived from the tasks alone (question pools, answer pools), made once per sweep."""
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]

    def _scorer(self, name: str, make: Callable[[], object]):
        if name not in self.scorers:
            self.scorers[name] = make()
        return self.scorers[name]

    def embedder(self) -> Embedder:
        return self._scorer("embedding", lambda: Embedder(self.loaded, self.config.batch_size, self.config.max_length))

    def loglik(self) -> LoglikScorer:
        return self._scorer("loglik", lambda: LoglikScorer(self.loaded, self.config.max_length, self.config.batch_size))

    def generator(self) -> Generator:
        return self._scorer("generation", lambda: Generator(self.loaded, self.config.max_new_tokens,
                                                            self.config.batch_size, self.config.max_length))

    def choose(self, questions: Sequence[dict], demonstrations: Callable[[dict], Sequence[dict]] = lambda q: (),
               prefix: str = "") -> dict:
        """Accuracy on multiple-choice questions (text, options, label).

        An encoder picks the option closest to the question's embedding (demonstrations do not
        apply); a decoder the option of highest log-likelihood after the demonstrations.
        """
        gold = [q["label"] for q in questions]
        if self.kind == "encoder":
            picks = choose_among(self.embedder(), [q["text"] for q in questions], [q["options"] for q in questions])
            return {"accuracy": _mean(p == g for p, g in zip(picks, gold)), "n": len(questions)}
        items = [choice_item(q, demonstrations(q), self.config.prompt_format, prefix) for q in questions]
        scores = self.loglik().choose(items)
        return {"accuracy": scores[self.config.choice_score], "acc": scores["acc"], "acc_norm": scores["acc_norm"],
                "n": len(questions)}

    def answer(self, prompts: Sequence[str], answers: Sequence[Sequence[str]]) -> dict:
        """A decoder's greedy answers scored against the gold aliases; `accuracy` is `answer_metric`."""
        metrics = answer_metrics(self.generator()(prompts), answers)
        return {"accuracy": metrics[self.config.answer_metric], **metrics, "n": len(prompts)}


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def run_setting(config: NoFinetuneConfig, level: str | None, values: Sequence, score,
                progress: bool = True) -> pd.DataFrame:
    """Run a no-fine-tuning setting's grid through the results store."""
    cells = scoring_cells(config, level, values)
    return run_grid(config.setting, cells, partial(ScoringRunner, config, score), ResultsStore(config.store_path), progress)
