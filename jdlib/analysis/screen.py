"""The learnability screen (bench/learnability.py) as the fine-tuning chapters show it: which tasks
were screened, which levels the dense model learned, and by which rule the chapters' tasks were chosen."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..config import ROOT

if TYPE_CHECKING:
    from IPython.display import Markdown
from pandas.io.formats.style import Styler

from .tables import interval_text, page, short_task

SCREEN = ROOT / "bench" / "results" / "learnability_h200.json"


def load_screen(path: str | Path = SCREEN) -> dict:
    """The screen's report; a FileNotFoundError naming the script that writes it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no learnability screen; run python bench/learnability.py on a GPU")
    return json.loads(path.read_text())


def screen_table(screen: dict, intervals: bool = True) -> pd.DataFrame:
    """A row per screened task: its floor, the dense accuracy (with its interval) per level (+ passes the
    gate, - does not), the rise with data, and whether the rule chose it."""
    levels = sorted({level for t in screen["tasks"].values() for level in t["levels"]}, key=float)
    rows = []
    for name, task in screen["tasks"].items():
        row = {"task": short_task(name), "train": task["train_size"], "floor": round(task["floor"], 3)}
        for level in levels:
            v = task["levels"].get(level)
            dense = (interval_text(v["dense"], v["low"], v["high"], signed=False) if intervals
                     else f"{v['dense']:.3f}") if v else ""
            row[f"dense at {float(level):g}"] = f"{dense} {'+' if v['passes'] else '-'}" if v else "not run"
        rise = task.get("data_gradient")
        row["rise with data"] = ("none" if not rise else interval_text(rise["rise"], rise["low"], rise["high"])
                                 if intervals else f"{rise['rise']:+.3f}")
        row["chosen"] = "yes" if name in screen["chosen"] else ""
        rows.append(row)
    return pd.DataFrame(rows)


def screen_sentence(screen: dict) -> str:
    """How the fine-tuning chapters' tasks were chosen, in the screen's own numbers."""
    recipe, gate = screen["recipe"], screen["gate"]
    chosen = ", ".join(short_task(t) for t in screen["chosen"]) or "no task"
    learned = [n for n, t in screen["tasks"].items() if t["levels"] and all(v["passes"] for v in t["levels"].values())]  # at the levels it has
    incomplete = f" ({len(screen['incomplete'])} lack rows at some level or seed)" if screen.get("incomplete") else ""
    return (f"The tasks were chosen by a learnability screen before any pruning result was read: dense fine-tunes "
            f"of {len(screen['tasks'])} candidate BIG-bench tasks{incomplete} on their whole training splits, "
            f"{recipe['steps']:,} updates at every data fraction, {len(recipe['seeds'])} seeds, on "
            f"{', '.join(screen['devices'])}. A level passes when the dense accuracy's 95% interval lies wholly above "
            f"the task's floor ({gate['floor']}) plus {gate['margin']:g}; {len(learned)} tasks pass at every level screened "
            f"for them. The rule, fixed in bench/learnability.py before the screen ran: {screen['rule']}. "
            f"It chose {chosen}.")


def screen_page(screen: dict) -> Styler:
    """The screen's table as a page shows it: dense accuracies without intervals (they are in `screen_table`)."""
    return page(screen_table(screen, intervals=False).drop(columns="train"),
                "The learnability screen: dense accuracy per data fraction (+ passes the gate), the task's floor, "
                "the rise with data, and the rule's choice")


def screen_summary(path: str | Path = SCREEN) -> Markdown:
    """The chapter's paragraph on how its tasks were chosen."""
    from IPython.display import Markdown  # a notebook's display; the GPU machine runs jdlib without IPython

    return Markdown(screen_sentence(load_screen(path)))
