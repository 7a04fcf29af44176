"""Prompts for a decoder: few-shot demonstrations followed by the question.

Two multiple-choice formats, both scored by `loglik.LoglikScorer` (target delimiter " "):

- "cloze": each option's text is a continuation of the question's prompt: the row's own
  `template` where it has one (its task's `doc_to_text` in lm-evaluation-harness 0.4.13, filled
  with the row's text as it is: "Question: {text}\\nAnswer:" for PIQA, "{text}" for HellaSwag's
  cleaned context and OpenBookQA's question stem), else "Question: <q>\\nAnswer:" (the
  harness's template of PIQA and ARC);
- "letters": the question, the options as "A. <option>" lines, "Answer:", and the letters
  are the continuations (the harness's MMLU format, with its subject header).

Open questions (generation): "Question: <q>\\nAnswer:", after "Context: <passage>" when the
model reads a passage (open book).
"""
from __future__ import annotations

from collections.abc import Sequence

from .loglik import ChoiceItem

FORMATS = ("cloze", "letters")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"prompt_format={fmt!r} is not valid: use one of {', '.join(FORMATS)}")


def header(example: dict) -> str:
    subject = example.get("subject")
    if not subject:
        return ""
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def _block(example: dict, fmt: str) -> tuple[str, list[str]]:
    """The question block and its continuations (the options, or their letters)."""
    options = list(example["options"])
    if fmt == "letters":
        if len(options) > len(LETTERS):
            raise ValueError(f"{len(options)} options are more than the {len(LETTERS)} letters")
        lines = "".join(f"{LETTERS[i]}. {o}\n" for i, o in enumerate(options))
        return f"{example['text'].strip()}\n{lines}Answer:", list(LETTERS[:len(options)])
    if example.get("template"):
        return example["template"].format(text=example["text"]), options
    return f"Question: {example['text'].strip()}\nAnswer:", options


def choice_item(example: dict, demonstrations: Sequence[dict] = (), fmt: str = "cloze", prefix: str = "") -> ChoiceItem:
    """A multiple-choice question (text, options, label) after its solved demonstrations."""
    check_format(fmt)
    shots = ""
    for demo in demonstrations:
        block, continuations = _block(demo, fmt)
        shots += f"{block} {continuations[demo['label']]}\n\n"
    block, continuations = _block(example, fmt)
    return ChoiceItem(prefix + header(example) + shots + block, continuations, int(example["label"]))


def answer_prompt(question: str, context: str = "", demonstrations: Sequence[tuple[str, str]] = ()) -> str:
    """An open question, after (question, answer) demonstrations, reading `context` when given."""
    shots = "".join(f"Question: {q.strip()}\nAnswer: {a}\n\n" for q, a in demonstrations)
    passage = f"Context: {context.strip()}\n\n" if context.strip() else ""
    return f"{shots}{passage}Question: {question.strip()}\nAnswer:"
