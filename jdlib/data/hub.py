"""Paper-scale datasets from the Hugging Face hub, through `datasets` (needs internet)."""
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
SOURCES = {f"glue/{name}" for name in GLUE}


def from_hub(*args, **kwargs) -> datasets.DatasetDict:
    """`datasets.load_dataset`, with a clear message when the hub cannot be reached."""
    try:
        return datasets.load_dataset(*args, **kwargs)
    except (ConnectionError, OSError, ValueError) as err:
        raise OSError(f"could not load {args} from the Hugging Face hub ({err}); the paper-scale tasks "
                      "need internet, or a datasets cache filled on a machine that has it") from None


def load(name: str) -> Task:
    source, _, config = name.partition("/")
    if source == "glue" and config in GLUE:
        fields, labels, val_split = GLUE[config]
        raw = from_hub("nyu-mll/glue", config)

        def view(split: datasets.Dataset) -> datasets.Dataset:
            # Sentence pairs are joined with the tokenizer's separator at tokenisation time.
            return split.map(lambda e: {"text": e[fields[0]], "text_pair": e[fields[1]] if len(fields) > 1 else None,
                                        "label": e["label"]}, remove_columns=split.column_names)

        return Task(name, "classification", view(raw["train"]), view(raw[val_split]), "accuracy", labels)
    raise ValueError(f"task={name!r} is not a known hub task; available: {', '.join(sorted(SOURCES))}")
