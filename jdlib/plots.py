"""Figures in the manner of the paper's: normalised performance against compression."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _label(value) -> str:
    return f"{value:g}" if isinstance(value, (int, float, np.number)) else str(value)


def normalised_performance(norm: pd.DataFrame, level: str, difficulty, level_label: str | None = None,
                           x: str = "sparsity", x_label: str = "sparsity", across_tasks: bool = False) -> plt.Figure:
    """A panel per task (columns) and pattern family (rows; per method too when there are
    several), a line per difficulty level.

    Lines are coloured from easy (light) to hard (dark); the band spans the seeds. With
    `across_tasks` the levels are tasks (Setting 5), all in one panel per family.
    """
    names = dict(zip(norm[level], norm["task"].str.split("/").str[-1])) if across_tasks else {}
    if across_tasks:
        norm = norm.assign(task="all tasks")
    tasks = list(dict.fromkeys(norm["task"]))
    methods = sorted(norm["method"].unique())
    families = [(f, m) for f in ("unstructured", "N:M") if f in set(norm["family"]) for m in methods]
    fig, axes = plt.subplots(len(families), len(tasks), figsize=(4.2 * len(tasks), 3.4 * len(families)),
                             squeeze=False, sharey=True)
    levels = sorted(norm[level].unique(), key=difficulty)
    colours = plt.cm.viridis_r(np.linspace(0.15, 0.95, max(len(levels), 2)))
    for r, (family, method) in enumerate(families):
        for c, task in enumerate(tasks):
            ax = axes[r, c]
            panel = norm[(norm["task"] == task) & (norm["family"] == family) & (norm["method"] == method)]
            for colour, value in zip(colours, levels):
                curve = panel[panel[level] == value].groupby(x)["normalised"].agg(["mean", "min", "max"])
                if curve.empty:
                    continue
                ax.plot(curve.index, curve["mean"], "o-", color=colour, label=(f"{names[value]}, " if names else "") + f"{level_label or level} {_label(value)}")
                ax.fill_between(curve.index, curve["min"], curve["max"], color=colour, alpha=0.15)
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
            ax.set_title(f"{task.split('/')[-1]} ({family}{f', {method}' if len(methods) > 1 else ''})", fontsize=10)
            ax.set_xlabel(x_label)
            if c == 0:
                ax.set_ylabel("normalised performance")
            ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig
