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

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd
from transformers import AutoConfig

from ..compress import method_of
from ..compress.calibrate import calibration_for
from ..config import SweepConfig, param
from ..data import Task, load_task
from ..models import DECODER_TYPES, fitting_batch, load_model, quiet, resolve_path, restore, snapshot
from ..scorers import Embedder, Generator, LoglikScorer, answer_outcomes
from ..scorers.embedding import choose_among
from ..scorers.generation import ANSWER_METRICS
from ..scorers.prompts import FORMATS, choice_item
from .compressed import CompressedWeights
from .finetuning import transfer_cells
from .spec import DifficultyOrder, Part, Setting

NO_FINETUNING = "none"  # the transfer of a scored cell: the pre-trained model is scored as compressed, no fine-tuning
CHOICE_SCORES = ("acc", "acc_norm")
LARGE = 1_000_000_000  # parameters above which compressed copies are not cached


@dataclass
class NoFinetuneConfig(SweepConfig):
    """Parameters of a no-fine-tuning setting (the compressed pre-trained model is scored as it is).

    - max_eval, eval_seeded: evaluation questions per task, one fixed seeded sample, or (with
      eval_seeded) a sample drawn anew for each seed; seeds always vary what the difficulty
      knob samples (distractors, demonstrations, candidate pools), and eval_seeded makes them
      vary the questions too, which a deterministic formulation (greedy answers to a fixed
      set) needs for its seeds to differ at all;
    - batch_size: sequences per scoring batch, or null: sized from the device's free memory
      (`models.fitting_batch`, per batch of prompts for a decoder);
    - prompt_format, choice_score: a decoder's multiple-choice format ("cloze" or "letters")
      and which harness score is `accuracy` ("acc" or "acc_norm");
    - max_new_tokens, answer_metric: a decoder's open answers: generation length and which of
      exact_match, exact_match_lenient, f1 is `accuracy`.
    """

    transfer: list[str] = param([NO_FINETUNING], str, f"'{NO_FINETUNING}' (the compressed pre-trained model is scored "
                                "without fine-tuning)", many=True, choices=(NO_FINETUNING,), role="grid")
    # scoring batches (the same numbers whatever the size); null: as many as the device's free memory holds
    batch_size: int | None = param(32, int, "a positive integer or null (sized from the free memory)", low=0,
                                   strict_low=True, nullable=True, role="run")
    max_eval: int | None = param(200, int, "a positive integer or null (all)", low=0, strict_low=True, nullable=True)
    eval_seeded: bool = param(False, bool)
    prompt_format: str = param("cloze", str, choices=FORMATS)
    choice_score: str = param("acc", str, choices=CHOICE_SCORES)
    max_new_tokens: int = param(16, int, low=0, strict_low=True)
    answer_metric: str = param("exact_match_lenient", str, choices=ANSWER_METRICS)

    CALIBRATION_IN_EVERY_CELL = True


# What else a quantized or low-rank cell (the compression setting) carries: pruning cells have none
# of these, so their state and their key are unchanged.
COMPRESSION_FIELDS = ("bits", "group_size", "rank_fraction", "energy")


def compression_options(cell: dict) -> dict:
    return {k: cell[k] for k in COMPRESSION_FIELDS if k in cell}


def state_of(cell: dict) -> tuple:
    """The compressed state a cell needs (its weights do not depend on anything else here; a seeded
    method's, random pruning's, on the cell's seed too)."""
    return (cell["method"], cell["pattern"], float(cell["sparsity"]),
            *((k, cell[k]) for k in COMPRESSION_FIELDS if k in cell),
            *((("seed", cell["seed"]),) if method_of(cell["method"]).seeded else ()))


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
        # on the GPU when it fits there (a state change then restores device to device), else pinned host memory
        self.pretrained = snapshot(model)
        # no compressed copy of a large model is cached: the cells are grouped by compressed state anyway
        large = sum(p.numel() for p in model.parameters()) > LARGE
        self.compressed = CompressedWeights(model, config.scope, max_cached=0 if large else None)
        self.state, self.sparsity, self.compression, self.scorers, self.timing = None, 0.0, {}, {}, {}

    def _calibration(self, task_name: str):
        config = self.config
        texts = ([r["text"] + (" " + r["context"] if r.get("context") else "") for r in self.task(task_name).train]
                 if config.calibration == "task" else ())  # C4 needs no task text
        return calibration_for(config.calibration, self.loaded.tokenizer, texts, config.calibration_samples,
                               config.calibration_seq_len)

    def _set_weights(self, cell: dict) -> None:
        calibrated = method_of(cell["method"]).calibrated
        state = state_of(cell) + ((cell["task"],) if calibrated and self.config.calibration == "task" else ())
        if state == self.state:
            return
        restore(self.loaded.model, self.pretrained)
        self.sparsity, self.compression, self.timing = 0.0, {}, {}
        if cell["transfer"] != "dense":
            masks = self.compressed.apply(cell["method"], cell["pattern"], cell["sparsity"],
                                          calibration=lambda: self._calibration(cell["task"]), extra=state[3:],
                                          options=compression_options(cell), seed=cell["seed"])
            self.sparsity, self.compression, self.timing = masks.sparsity, self.compressed.summary, self.compressed.timing
        self.state, self.scorers = state, {}

    def __call__(self, cell: dict) -> dict:
        if self.loaded is None:
            self._load()
        self._set_weights(cell)
        metrics = self.score(self, cell)
        metrics["realised_sparsity"] = self.sparsity
        # the compression's seconds count once, in the first cell of its state
        timing, self.timing = self.timing, {**self.timing, "compress_seconds": 0.0} if self.timing else {}
        return {**metrics, **self.compression, **({"provenance": timing} if timing else {})}

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
        def make() -> Embedder:
            size = self.config.batch_size or fitting_batch(self.loaded.model, self.config.max_length, cache=False)
            return Embedder(self.loaded, size, self.config.max_length)

        return self._scorer("embedding", make)

    def loglik(self) -> LoglikScorer:
        return self._scorer("loglik", lambda: LoglikScorer(self.loaded, self.config.max_length, self.config.batch_size))

    def generator(self) -> Generator:
        return self._scorer("generation", lambda: Generator(self.loaded, self.config.max_new_tokens,
                                                            self.config.batch_size, self.config.max_length))

    def choose(self, questions: Sequence[dict], demonstrations: Callable[[dict], Sequence[dict]] = lambda q: (),
               prefix: str = "") -> dict:
        """Accuracy on multiple-choice questions (text, options, label), and each question's outcome.

        An encoder picks the option closest to the question's embedding (demonstrations do not
        apply); a decoder the option of highest log-likelihood after the demonstrations.
        """
        gold = [q["label"] for q in questions]
        if self.kind == "encoder":
            picks = choose_among(self.embedder(), [q["text"] for q in questions], [q["options"] for q in questions])
            return outcome_metrics([float(p == g) for p, g in zip(picks, gold)])
        items = [choice_item(q, demonstrations(q), self.config.prompt_format, prefix) for q in questions]
        scores = self.loglik().choose(items)
        picks = scores["predictions" if self.config.choice_score == "acc" else "predictions_norm"]
        return {**outcome_metrics([float(p == g) for p, g in zip(picks, gold)]), "acc": scores["acc"],
                "acc_norm": scores["acc_norm"]}

    def answer(self, prompts: Sequence[str], answers: Sequence[Sequence[str]]) -> dict:
        """A decoder's greedy answers scored against the gold aliases; `accuracy` is `answer_metric`."""
        per_question = answer_outcomes(self.generator()(prompts), answers)
        means = {name: sum(v) / len(v) for name, v in per_question.items()}
        return {**means, **outcome_metrics(per_question[self.config.answer_metric])}


def outcome_metrics(outcomes: Sequence[float]) -> dict:
    """`accuracy` (the mean), `n` and the per-question `outcomes` the results store keeps beside the row."""
    outcomes = [float(o) for o in outcomes]
    return {"accuracy": sum(outcomes) / len(outcomes) if outcomes else float("nan"), "n": len(outcomes),
            "outcomes": outcomes}


def scoring_setting(name: str, title: str, config: type[NoFinetuneConfig], level: str, order: DifficultyOrder,
                    score: Callable[[ScoringRunner, dict], dict], **more) -> Setting:
    """The `Setting` of a no-fine-tuning setting whose cells carry their level in `level`."""
    return Setting(name=name, title=title, config=config, level=level, order=order, kind="score",
                   parts=lambda c: [Part(name, scoring_cells(c, level, getattr(c, level)))],
                   make_runner=lambda c: partial(ScoringRunner, c, score), **more)
