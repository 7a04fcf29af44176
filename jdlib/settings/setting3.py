"""Setting 3, context length: a question answered with x% of its context passage around the
answer, or with none (closed book).

Embedded (BIG-bench disfl_qa; the input holds a question and a "context:" paragraph, the target
is a span of it): the candidates are the question's answer and `candidates` - 1 answers of
the other questions asked (seeded, the same at every level for a seed); the encoder picks
the candidate closest to the embedding of the question followed by the context window (the
question alone when closed book).
Difficulty, as the paper orders it: a longer window is harder (more text to locate the answer
in), and the closed book hardest of all.
Paper: a decoder (Vicuna-7B) on TriviaQA (rc) answers by greedy generation after the window;
exact match (strict, and the paper's lenient containment) and F1 against the answer's aliases.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import pandas as pd

from ..config import param
from ..data import Task
from ..difficulty import answer_span, context_window
from ..scorers.embedding import choose_among
from ..scorers.prompts import answer_prompt
from .nofinetune import NoFinetuneConfig, outcome_metrics, scoring_setting
from .spec import DifficultyOrder

LEVEL = "context"
CLOSED_BOOK = 0  # the context level with no passage at all
UNANSWERABLE = "unknown"  # BIG-bench's disfl_qa (from SQuAD 2.0) marks unanswerable questions with this target


@dataclass
class Setting3Config(NoFinetuneConfig):
    context: list[float] = param([0, 20, 60, 100], float, "percentages in [0, 100] (0: closed book)", many=True,
                                 low=0, high=100, role="grid")
    candidates: int = param(10, int, low=2)  # encoder: answers ranked per question (the gold one and distractors)
    # the passage: at most this many words around the answer (None: all)
    max_context_words: int | None = param(None, int, "a positive integer or null (the whole passage)", low=0,
                                          strict_low=True, nullable=True)


ORDER = DifficultyOrder(
    hardness=lambda context: 101.0 if context == CLOSED_BOOK else float(context),
    paper="Setting 3 (section 3.1.3): the model must 'synthesize long in-context knowledge' and 'locate and "
          "retrieve correct answers within it', so a longer window around the answer is harder, and the closed "
          "book, with no context at all, sits 'at the end of the difficult spectrum'; the paper's Spearman table "
          "lists closed book, 100%, 60%, 20% from the hard end down.",
    describe="a short context window to a long one, then the closed book (hardest)")


def passages(task: Task, max_words: int | None = None) -> list[dict]:
    """(question, context, answers, answer) rows whose answer occurs in the context.

    The context is the task's `context` column, else the part of the input after "context:"
    (disfl_qa); `answer` is the first gold alias found in it; `max_words` cuts the passage to
    that many words around the answer (TriviaQA's documents run to thousands of words).
    """
    rows = []
    for r in task.validation:
        if r.get("context"):
            question, context = r["text"], r["context"]
        else:
            question, found, context = r["text"].partition("context:")
            if not found:
                raise ValueError(f"{task.name}: an input has no context (no 'context' column, no 'context:' marker)")
        answer = next((a for a in r["answers"] if a.strip() and a.strip().lower() != UNANSWERABLE
                       and answer_span(context, a)), None)
        if answer is None:
            continue
        if max_words is not None and len(context.split()) > max_words:
            context = context_window(context, answer, 100 * max_words / len(context.split()))
        rows.append({"question": question.strip(), "context": context, "answers": list(r["answers"]),
                     "answer": answer})
    if not rows:
        raise ValueError(f"{task.name}: no question has its answer in its context")
    return rows


def score(runner, cell: dict) -> dict:
    task, percent = runner.task(cell["task"]), cell[LEVEL]
    everything = runner.derived(("passages", task.name, cell["max_context_words"]),
                                lambda: passages(task, cell["max_context_words"]))
    asked = runner.sample(everything, cell)
    windows = [context_window(r["context"], r["answer"], percent) for r in asked]
    if runner.kind == "decoder":
        return runner.answer([answer_prompt(r["question"], w) for r, w in zip(asked, windows)],
                             [r["answers"] for r in asked])
    # Distractors are the answers of the other questions asked: each is embedded once per
    # compressed model, whatever the number of seeds.
    pool = list(dict.fromkeys(r["answer"] for r in asked))
    if len(pool) < cell["candidates"]:
        raise ValueError(f"the {len(asked)} questions asked of {task.name} have {len(pool)} distinct answers, "
                         f"fewer than candidates={cell['candidates']}: ask more (max_eval) or rank fewer")
    rng = random.Random(cell["seed"])  # the level does not enter: every level ranks the same candidates
    options, gold = [], []
    for r in asked:
        gold_forms = {a.strip().lower() for a in r["answers"]}
        others = [a for a in pool if a.strip().lower() not in gold_forms]
        row = [r["answer"], *rng.sample(others, cell["candidates"] - 1)]
        rng.shuffle(row)
        options.append(row)
        gold.append(row.index(r["answer"]))
    queries = [f"{r['question']} context: {w}" if w else r["question"] for r, w in zip(asked, windows)]
    picks = choose_among(runner.embedder(), queries, options)
    return {**outcome_metrics([float(p == g) for p, g in zip(picks, gold)]),
            "context_words": sum(len(w.split()) for w in windows) / len(windows)}


def chance(rows: pd.DataFrame) -> pd.Series:
    """An encoder ranks `candidates` answers; a decoder's open answers have no chance level."""
    if "f1" in rows:
        return pd.Series(float("nan"), index=rows.index)
    return 1.0 / rows["candidates"].astype(float)


SETTING = scoring_setting("setting3", "Setting 3: context length", Setting3Config, LEVEL, ORDER, score, chance=chance)
