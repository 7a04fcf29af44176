"""Paper-scale datasets of the fine-tuning settings from the Hugging Face hub, through `datasets`
(needs internet): GLUE, and the two multiple-choice sets of the true gem's across-task part.

- "glue/<task>": classification with `text`, `text_pair` (None for one-sentence tasks) and
  `label`; MNLI is evaluated on its matched validation split.
- "winogrande": WinoGrande (winogrande_xl, its largest training set: the paper names none),
  multiple choice as its authors' RoBERTa code reads it: `text` is the sentence up to the
  blank, each of the two `options` is a candidate followed by the rest of the sentence;
  evaluated on the validation split (the test labels are hidden). Read from the hub's parquet
  conversion, as its main branch was a loading script.
- "commonsense_qa": CommonsenseQA, multiple choice with `text` (question) and its five
  `options`, as the official RoBERTa code reads it ("Q: <question>", "A: <option>");
  evaluated on the validation split (the test labels are hidden).
"""
from __future__ import annotations

import datasets

from .task import Task

GLUE = {  # config: (text fields, label names, validation split)
    "sst2": (("sentence",), ["negative", "positive"], "validation"),
    "qnli": (("question", "sentence"), ["entailment", "not_entailment"], "validation"),
    "mnli": (("premise", "hypothesis"), ["entailment", "neutral", "contradiction"], "validation_matched"),
    "qqp": (("question1", "question2"), ["not_duplicate", "duplicate"], "validation"),
    "rte": (("sentence1", "sentence2"), ["entailment", "not_entailment"], "validation"),
    "cola": (("sentence",), ["unacceptable", "acceptable"], "validation"),
}
WINOGRANDE_ID, WINOGRANDE_REVISION, WINOGRANDE_CONFIG = "allenai/winogrande", "refs/convert/parquet", "winogrande_xl"
COMMONSENSE_QA_ID = "tau/commonsense_qa"
MULTIPLE_CHOICE = ("winogrande", "commonsense_qa")
SOURCES = {f"glue/{name}" for name in GLUE} | set(MULTIPLE_CHOICE)


def from_hub(*args, **kwargs) -> datasets.DatasetDict:
    """`datasets.load_dataset`, with a clear message when the hub cannot be reached."""
    try:
        return datasets.load_dataset(*args, **kwargs)
    except (ConnectionError, OSError, ValueError) as err:
        raise OSError(f"could not load {args} from the Hugging Face hub ({err}); the paper-scale tasks "
                      "need internet, or a datasets cache filled on a machine that has it") from None


def _winogrande_row(e: dict) -> dict:
    before, _, after = e["sentence"].partition("_")
    return {"text": before, "options": [f"{e['option1']} {after.strip()}", f"{e['option2']} {after.strip()}"],
            "label": int(e["answer"]) - 1}


def _commonsense_qa_row(e: dict) -> dict:
    """The official code's format (MMT/examples/roberta/commonsense_qa/commonsense_qa_task.py): "Q: " before
    the question, "A: " before each option."""
    letters = list(e["choices"]["label"])
    return {"text": "Q: " + e["question"], "options": ["A: " + o for o in e["choices"]["text"]],
            "label": letters.index(e["answerKey"])}


def _multiple_choice(name: str) -> Task:
    if name == "winogrande":
        files = {split: f"{WINOGRANDE_CONFIG}/{split}/*.parquet" for split in ("train", "validation")}
        raw, view_row = from_hub(WINOGRANDE_ID, data_files=files, revision=WINOGRANDE_REVISION), _winogrande_row
    else:
        raw, view_row = from_hub(COMMONSENSE_QA_ID), _commonsense_qa_row

    def view(split: datasets.Dataset) -> datasets.Dataset:
        return split.map(view_row, remove_columns=split.column_names)

    return Task(name, "multiple_choice", view(raw["train"]), view(raw["validation"]))


def load(name: str) -> Task:
    if name in MULTIPLE_CHOICE:
        return _multiple_choice(name)
    source, _, config = name.partition("/")
    if source == "glue" and config in GLUE:
        fields, labels, val_split = GLUE[config]
        raw = from_hub("nyu-mll/glue", config)

        def view(split: datasets.Dataset) -> datasets.Dataset:
            # Sentence pairs are joined with the tokenizer's separator at tokenisation time.
            return split.map(lambda e: {"text": e[fields[0]], "text_pair": e[fields[1]] if len(fields) > 1 else None,
                                        "label": e["label"]}, remove_columns=split.column_names)

        return Task(name, "classification", view(raw["train"]), view(raw[val_split]), labels)
    raise ValueError(f"task={name!r} is not a known hub task; available: {', '.join(sorted(SOURCES))}")
