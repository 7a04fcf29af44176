"""The paper's decoder tasks from the Hugging Face hub (needs internet): MMLU, TriviaQA, FreebaseQA,
and the commonsense sets of Setting 5 (PIQA, HellaSwag, OpenBookQA).

Names and views (columns of the common `Task`):

- "mmlu" (all 57 subjects) or "mmlu/<subject>": cais/mmlu; multiple choice with `text`
  (question), `options` (the four choices), `label`, `subject`. The dev split (5 questions per
  subject, the source of MMLU's few-shot demonstrations) is `train`; the test split is
  `validation`.
- "trivia_qa": mandarjoshi/trivia_qa, config "rc" (reading comprehension: questions with
  evidence documents); generation with `text` (question) and `answers` (the answer's value and
  aliases, then its normalised aliases: the official script's gold answers). As the paper's official
  script (open_closed_book/trivia_vicuna.py, in the history of VITA-Group/Junk_DNA_Hypothesis)
  reads it, `validation` is the first 2000 questions of TriviaQA's validation split (whose
  answers are public), in order, with `context`: the first Wikipedia evidence document followed
  by the first web search result, joined as they are and cut to their first 3072 characters.
- "freebase_qa": FreebaseQA (the parquet conversion of its hub dataset); generation with
  `text` (the raw question) and `answers` (every answer name of every parse); `validation` is
  its evaluation split (named "test" on the hub).
- "piqa", "hellaswag", "openbookqa": multiple choice with `text`, `options`, `label`, as
  lm-evaluation-harness reads them: PIQA's goal and its two solutions (evaluated on the
  validation split, the test labels being hidden); HellaSwag's activity label and context
  with its four endings, cleaned of WikiHow's bracketed markup (validation split, likewise);
  OpenBookQA's question stem and four choices (its labelled test split). Each row carries its
  task's cloze prompt, `template` (the harness's `doc_to_text`, see `CLOZE`). PIQA is read from
  its parquet conversion, as its main branch is a loading script.
"""
from __future__ import annotations

import re
from collections.abc import Callable

import datasets

from .human import HUMAN  # noqa: F401 (the human scores `jdlib.data.human_scores` reads)
from .hub import from_hub
from .task import Task

MMLU_ID = "cais/mmlu"
TRIVIA_QA_ID, TRIVIA_QA_CONFIG = "mandarjoshi/trivia_qa", "rc"
TRIVIA_QA_QUESTIONS, TRIVIA_QA_CONTEXT_CHARS = 2000, 3072  # the official script's evaluation
# The hub's FreebaseQA is a loading script, which datasets>=3 no longer runs; the hub keeps an
# automatic parquet conversion of it on this revision.
FREEBASE_QA_ID, FREEBASE_QA_REVISION = "KelvinJiang/freebase_qa", "refs/convert/parquet"

MMLU_SUBJECTS = (
    "abstract_algebra", "anatomy", "astronomy", "business_ethics", "clinical_knowledge", "college_biology",
    "college_chemistry", "college_computer_science", "college_mathematics", "college_medicine", "college_physics",
    "computer_security", "conceptual_physics", "econometrics", "electrical_engineering", "elementary_mathematics",
    "formal_logic", "global_facts", "high_school_biology", "high_school_chemistry", "high_school_computer_science",
    "high_school_european_history", "high_school_geography", "high_school_government_and_politics",
    "high_school_macroeconomics", "high_school_mathematics", "high_school_microeconomics", "high_school_physics",
    "high_school_psychology", "high_school_statistics", "high_school_us_history", "high_school_world_history",
    "human_aging", "human_sexuality", "international_law", "jurisprudence", "logical_fallacies", "machine_learning",
    "management", "marketing", "medical_genetics", "miscellaneous", "moral_disputes", "moral_scenarios", "nutrition",
    "philosophy", "prehistory", "professional_accounting", "professional_law", "professional_medicine",
    "professional_psychology", "public_relations", "security_studies", "sociology", "us_foreign_policy", "virology",
    "world_religions",
)
# PIQA's main branch is a loading script too; its parquet conversion is read.
PIQA_ID, PIQA_REVISION = "ybisk/piqa", "refs/convert/parquet"
HELLASWAG_ID = "Rowan/hellaswag"
OPENBOOKQA_ID, OPENBOOKQA_CONFIG = "allenai/openbookqa", "main"
COMMONSENSE = ("piqa", "hellaswag", "openbookqa")
# Each task's doc_to_text in lm-evaluation-harness 0.4.13 (lm_eval/tasks/<task>/<task>.yaml), over the row's text:
# PIQA asks a question, HellaSwag's context and OpenBookQA's question stem are read bare.
CLOZE = {"piqa": "Question: {text}\nAnswer:", "hellaswag": "{text}", "openbookqa": "{text}"}
SOURCES = ("mmlu", "trivia_qa", "freebase_qa", *COMMONSENSE)


def names() -> list[str]:
    return ["mmlu", *(f"mmlu/{s}" for s in MMLU_SUBJECTS), "trivia_qa", "freebase_qa", *COMMONSENSE]


def is_known(name: str) -> bool:
    return name in names()


def _multiple_choice(name: str, raw: datasets.DatasetDict, splits: tuple[str, str],
                     view_row: Callable[[dict], dict]) -> Task:
    """A multiple-choice Task of the (train, evaluation) `splits` of `raw`, each row seen through `view_row`
    (with its task's cloze `template`, where the task has one)."""
    extra = {"template": CLOZE[name]} if name in CLOZE else {}

    def view(split: datasets.Dataset) -> datasets.Dataset:
        return split.map(lambda e: {**view_row(e), **extra}, remove_columns=split.column_names)

    return Task(name, "multiple_choice", view(raw[splits[0]]), view(raw[splits[1]]))


def _mmlu(name: str) -> Task:
    subject = name.partition("/")[2] or "all"
    return _multiple_choice(name, from_hub(MMLU_ID, subject), ("dev", "test"),
                            lambda e: {"text": e["question"], "options": list(e["choices"]),
                                       "label": int(e["answer"]), "subject": e["subject"] or subject})


def _trivia_qa_answers(answer: dict) -> list[str]:
    """The answer's value and aliases, then the normalised aliases the official script scores against."""
    found = [answer.get("value") or "", *(answer.get("aliases") or []), *(answer.get("normalized_aliases") or [])]
    return [a for a in dict.fromkeys(found) if a]


def _trivia_qa_context(entity_pages: dict, search_results: dict) -> str:
    """The official script's evidence: the first Wikipedia page, then the first web result, cut."""
    wiki = entity_pages["wiki_context"][0] if len(entity_pages["filename"]) else ""
    web = search_results["search_context"][0] if len(search_results["filename"]) else ""
    return (wiki + web)[:TRIVIA_QA_CONTEXT_CHARS]


def _trivia_qa(name: str) -> Task:
    raw = from_hub(TRIVIA_QA_ID, TRIVIA_QA_CONFIG)
    # nothing reads the training questions' evidence: mapping only these columns spares reading it
    questions = raw["train"].select_columns(["question", "answer"])
    train = questions.map(lambda e: {"text": e["question"], "answers": _trivia_qa_answers(e["answer"])},
                          remove_columns=questions.column_names)
    evaluation = raw["validation"].select(range(min(TRIVIA_QA_QUESTIONS, len(raw["validation"]))))
    validation = evaluation.map(
        lambda e: {"text": e["question"], "answers": _trivia_qa_answers(e["answer"]),
                   "context": _trivia_qa_context(e["entity_pages"], e["search_results"])},
        remove_columns=evaluation.column_names)
    return Task(name, "generation", train, validation)


def _answer_names(parses) -> list[str]:
    """Every answer name in FreebaseQA's Parses, whether stored as a list of parses or as the
    columnar dict of lists that `datasets` makes of a sequence of structs."""
    if isinstance(parses, dict):
        parses = [dict(zip(parses, values)) for values in zip(*parses.values())] if parses else []
    out = []
    for parse in parses:
        answers = parse.get("Answers") or []
        if isinstance(answers, dict):
            answers = [dict(zip(answers, values)) for values in zip(*answers.values())] if answers else []
        for answer in answers:
            found = answer.get("AnswersName") or []
            out += [n for group in found for n in ([group] if isinstance(group, str) else group)]
    return [a for a in dict.fromkeys(out) if a]


def _freebase_qa(name: str) -> Task:
    raw = from_hub(FREEBASE_QA_ID, revision=FREEBASE_QA_REVISION)

    def view(split: datasets.Dataset) -> datasets.Dataset:
        return split.map(lambda e: {"text": e["RawQuestion"], "answers": _answer_names(e["Parses"])},
                         remove_columns=split.column_names)

    evaluation = "test" if "test" in raw else "validation"
    return Task(name, "generation", view(raw["train"]), view(raw[evaluation]))


def _piqa(name: str) -> Task:
    return _multiple_choice(name, from_hub(PIQA_ID, revision=PIQA_REVISION), ("train", "validation"),
                            lambda e: {"text": e["goal"], "options": [e["sol1"], e["sol2"]], "label": int(e["label"])})


def _hellaswag_clean(text: str) -> str:
    """lm-evaluation-harness's HellaSwag preprocessing: WikiHow's " [title]" becomes a full stop, other
    bracketed markup goes."""
    text = text.strip().replace(" [title]", ". ")
    return re.sub(r"\[.*?\]", "", text).replace("  ", " ")


def _hellaswag(name: str) -> Task:
    def view_row(e: dict) -> dict:
        context = f"{e['activity_label']}: {e['ctx_a']} {e['ctx_b'].capitalize()}"
        return {"text": _hellaswag_clean(context), "options": [_hellaswag_clean(o) for o in e["endings"]],
                "label": int(e["label"])}

    return _multiple_choice(name, from_hub(HELLASWAG_ID), ("train", "validation"), view_row)


def _openbookqa(name: str) -> Task:
    def view_row(e: dict) -> dict:
        letters = list(e["choices"]["label"])
        return {"text": e["question_stem"], "options": list(e["choices"]["text"]),
                "label": letters.index(e["answerKey"].strip())}

    return _multiple_choice(name, from_hub(OPENBOOKQA_ID, OPENBOOKQA_CONFIG), ("train", "test"), view_row)


LOADERS = {"mmlu": _mmlu, "trivia_qa": _trivia_qa, "freebase_qa": _freebase_qa, "piqa": _piqa,
           "hellaswag": _hellaswag, "openbookqa": _openbookqa}


def load(name: str) -> Task:
    if not is_known(name):
        raise ValueError(f"task={name!r} is not a paper task; use one of mmlu, mmlu/<subject>, "
                         f"{', '.join(SOURCES[1:])}")
    return LOADERS[name.partition("/")[0]](name)
