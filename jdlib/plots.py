"""Figures in the manner of the paper's: normalised performance against compression."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D

from .settings.compression import RATIO


def _label_axes(ax, x_label: str, first_column: bool) -> None:
    ax.set_xlabel(x_label)
    if first_column:
        ax.set_ylabel("normalised performance")
    ax.grid(alpha=0.3)


def subplots(nrows: int = 1, ncols: int = 1, figsize=None, **kwargs):
    """pyplot's subplots, closed at once: a notebook shows the figure where it glues it, and the
    inline backend does not show it a second time at the end of the cell (a closed figure still
    renders)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, **kwargs)
    plt.close(fig)
    return fig, axes


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
    # a row per task and a column per pattern family (and method): wide panels that fit a page
    fig, axes = subplots(len(tasks), len(families), figsize=(max(7.5, 4.0 * len(families)), 3.3 * len(tasks)),
                         squeeze=False, sharey=True)
    levels = sorted(norm[level].unique(), key=difficulty)
    colours = plt.cm.viridis_r(np.linspace(0.15, 0.95, max(len(levels), 2)))
    for c, (family, method) in enumerate(families):
        for r, task in enumerate(tasks):
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
            _label_axes(ax, x_label, first_column=c == 0)
    axes[0, -1].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


TRANSFER_COLOURS = {"dense_freeze": "tab:blue", "sparse_to_dense": "tab:green", "sparse": "tab:red"}
TRANSFER_STYLES = {"dense_freeze": "o-", "sparse_to_dense": "^-.", "sparse": "s--"}  # overlapping lines stay visible


def _empty(message: str) -> plt.Figure:
    fig, ax = subplots(figsize=(4, 1.5))
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.axis("off")
    return fig


def transfer_modes(norm: pd.DataFrame, level: str, difficulty, level_label: str | None = None,
                   x: str = "sparsity", x_label: str = "sparsity", across_tasks: bool = False) -> plt.Figure:
    """A line per transfer mode (the paper's Figures 8-9): a panel per difficulty level (columns,
    easy to hard) and task and pattern family (rows); dense transfer is the dashed line at 1.

    With `across_tasks` the levels are tasks (one column each, titled by task). The band spans
    the seeds.
    """
    if norm.empty:
        return _empty("no cells")
    names = dict(zip(norm[level], norm["task"].str.split("/").str[-1])) if across_tasks else {}
    rows = ([("all tasks", f) for f in ("unstructured", "N:M") if f in set(norm["family"])] if across_tasks else
            list(norm[["task", "family"]].drop_duplicates().itertuples(index=False, name=None)))
    levels = sorted(norm[level].unique(), key=difficulty)
    fig, axes = subplots(len(rows), len(levels), figsize=(3.4 * len(levels), 3.0 * len(rows)),
                         squeeze=False, sharey=True)
    for r, (task, family) in enumerate(rows):
        for c, value in enumerate(levels):
            ax = axes[r, c]
            panel = norm[(norm[level] == value) & (norm["family"] == family)
                         & (True if across_tasks else norm["task"] == task)]
            for (transfer, method), g in panel.groupby(["transfer", "method"], sort=False):
                curve = g.groupby(x)["normalised"].agg(["mean", "min", "max"])
                colour = TRANSFER_COLOURS.get(transfer)
                label = transfer + ("" if norm["method"].nunique() == 1 else f" ({method})")
                ax.plot(curve.index, curve["mean"], TRANSFER_STYLES.get(transfer, "o-"), color=colour, label=label, ms=4)
                ax.fill_between(curve.index, curve["min"], curve["max"], color=colour, alpha=0.15)
            ax.axhline(1.0, color="black", lw=1.0, ls="--", label="dense (baseline)")
            title = (f"{names[value]} ({level_label or level} {value:g})" if across_tasks
                     else f"{task.split('/')[-1]}, {level_label or level} {value:g}")
            ax.set_title(title + ("" if family == "unstructured" else f", {family}"), fontsize=9)
            _label_axes(ax, x_label, first_column=c == 0)
    axes[0, -1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def interpolation_paths(paths: pd.DataFrame, level: str, difficulty, level_label: str | None = None) -> plt.Figure:
    """Validation loss (top) and accuracy (bottom) along the path from the dense (alpha 0) to the
    sparse (alpha 1) solution: a column per task and compression, a line per difficulty level
    (light: easy, dark: hard), the band spanning the seeds. `paths` comes from `jdlib.lmc.curves`."""
    if paths.empty:
        return _empty("no cells")
    panels = list(paths[["task", "transfer", "pattern", "sparsity"]].drop_duplicates().itertuples(index=False, name=None))
    levels = sorted(paths[level].unique(), key=difficulty)
    colours = plt.cm.viridis_r(np.linspace(0.15, 0.95, max(len(levels), 2)))
    fig, axes = subplots(2, len(panels), figsize=(3.4 * len(panels), 5.6), squeeze=False, sharex=True)
    for c, (task, transfer, pattern, sparsity) in enumerate(panels):
        panel = paths[(paths["task"] == task) & (paths["transfer"] == transfer) & (paths["pattern"] == pattern)
                      & (paths["sparsity"] == sparsity)]
        for r, (metric, label) in enumerate((("path_loss", "validation loss"), ("path_accuracy", "validation accuracy"))):
            ax = axes[r, c]
            for colour, value in zip(colours, levels):
                curve = panel[panel[level] == value].groupby("alpha")[metric].agg(["mean", "min", "max"])
                if curve.empty:
                    continue
                ax.plot(curve.index, curve["mean"], "o-", color=colour, ms=3, label=f"{level_label or level} {value:g}")
                ax.fill_between(curve.index, curve["min"], curve["max"], color=colour, alpha=0.15)
            if r == 0:
                ax.set_title(f"{task.split('/')[-1]}\n{transfer}, {pattern} {sparsity:g}", fontsize=9)
            else:
                ax.set_xlabel("alpha (0: dense, 1: sparse)")
            if c == 0:
                ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def barriers(frame: pd.DataFrame, level: str, difficulty, level_label: str | None = None,
             metric: str = "barrier") -> plt.Figure:
    """The loss barrier against sparsity: a panel per task and pattern family, a line per difficulty
    level (mean over seeds), each seed a dot."""
    if frame.empty:
        return _empty("no cells")
    frame = frame.assign(family=frame["pattern"].map(lambda p: "unstructured" if p == "unstructured" else "N:M"))
    panels = list(frame[["task", "family"]].drop_duplicates().itertuples(index=False, name=None))
    levels = sorted(frame[level].unique(), key=difficulty)
    colours = plt.cm.viridis_r(np.linspace(0.15, 0.95, max(len(levels), 2)))
    fig, axes = subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False, sharey=True)
    for c, (task, family) in enumerate(panels):
        ax = axes[0, c]
        panel = frame[(frame["task"] == task) & (frame["family"] == family)]
        for colour, value in zip(colours, levels):
            g = panel[panel[level] == value]
            curve = g.groupby("sparsity")[metric].mean()
            ax.plot(curve.index, curve.values, "o-", color=colour, label=f"{level_label or level} {value:g}")
            ax.scatter(g["sparsity"], g[metric], color=colour, s=12, alpha=0.5)
        ax.axhline(0.0, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{task.split('/')[-1]} ({family})", fontsize=10)
        ax.set_xlabel("sparsity")
        if c == 0:
            ax.set_ylabel("loss barrier")
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=8)
    fig.tight_layout()
    return fig


VERDICT_COLOURS = {"holds": "tab:green", "fails": "tab:red", "inconclusive": "tab:grey", "not testable": "tab:olive"}


def comparisons(table: pd.DataFrame, x_label: str = "estimate (95% CI)") -> plt.Figure:
    """A forest plot of claim comparisons: one row each (columns setting, task, family, method,
    estimate, low, high, verdict), coloured by verdict; the claim predicts estimates above 0."""
    rows = table.reset_index(drop=True)
    fig, ax = subplots(figsize=(7.5, 0.32 * len(rows) + 1.2))
    for i, r in rows.iterrows():
        colour = VERDICT_COLOURS.get(r["verdict"], "black")
        ax.plot([r["low"], r["high"]], [i, i], color=colour, lw=2)
        ax.plot(r["estimate"], i, "o", color=colour)
    labels = [f"{r['setting']}: {r['task'].split('/')[-1] if isinstance(r.get('task'), str) else 'all tasks'} "
              f"({r['family']}, {r['method']})" for _, r in rows.iterrows()]
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="black", lw=0.8, ls="--")
    ax.set_xlabel(x_label)
    present = [v for v in VERDICT_COLOURS if v in set(rows["verdict"])]
    for verdict in present:
        ax.plot([], [], color=VERDICT_COLOURS[verdict], lw=2, label=verdict)
    # above the axes, where it covers no interval
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=max(len(present), 1), frameon=False)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


METHOD_STYLES = {"magnitude": "o-", "sparsegpt": "s--", "wanda": "^:", "rtn": "o-", "gptq": "s--", "svd": "o-"}


def compression(norm: pd.DataFrame, level: str, difficulty, level_label: str | None = None,
                fig: Figure | SubFigure | None = None) -> Figure | SubFigure:
    """A panel per task (rows) and compressor family (columns; a line style per method), a line
    per difficulty level (light: easy, dark: hard), normalised performance against the
    compression ratio (log scale); the band spans the seeds. One legend below the panels keys
    the colours (levels) and the line styles (methods). Drawn into `fig` where given (a part of a
    larger figure, as in `compression_knobs`)."""
    tasks = list(dict.fromkeys(norm["task"]))
    fams = [f for f in ("pruning", "pruning N:M", "quantization", "low rank") if f in set(norm["compressor"])]
    if fig is None:
        fig = plt.figure(figsize=(3.6 * len(fams), 3.2 * len(tasks) + 0.6), layout="constrained")
        plt.close(fig)
    axes = fig.subplots(len(tasks), len(fams), squeeze=False, sharey=True)
    levels = sorted(norm[level].unique(), key=difficulty)
    colours = plt.cm.viridis_r(np.linspace(0.15, 0.95, max(len(levels), 2)))
    for r, task in enumerate(tasks):
        for c, fam in enumerate(fams):
            ax = axes[r, c]
            panel = norm[(norm["task"] == task) & (norm["compressor"] == fam)]
            methods = sorted(panel["method"].unique())
            for method in methods:
                for colour, value in zip(colours, levels):
                    curve = panel[(panel["method"] == method) & (panel[level] == value)].groupby(RATIO)["normalised"]
                    curve = curve.agg(["mean", "min", "max"])
                    if curve.empty:
                        continue
                    ax.plot(curve.index, curve["mean"], METHOD_STYLES.get(method, "o-"), color=colour, ms=3)
                    ax.fill_between(curve.index, curve["min"], curve["max"], color=colour, alpha=0.12)
            ax.set_xscale("log", base=2)
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
            ax.set_title(f"{task.split('/')[-1]}: {fam}" + (f"\n({', '.join(methods)})" if methods else ""), fontsize=9)
            ax.set_xlabel("compression ratio (fp32 bits / compressed)")
            if c == 0:
                ax.set_ylabel("normalised performance")
            ax.grid(alpha=0.3)
    present = [m for m in METHOD_STYLES if m in set(norm["method"])]
    handles = [Line2D([], [], color=colour, lw=2, label=f"{level_label or level} {value:g}")
               for colour, value in zip(colours, levels)]
    handles += [Line2D([], [], color="black", ls=METHOD_STYLES[m][1:], marker=METHOD_STYLES[m][0], ms=4, label=m)
                for m in present]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8), fontsize=8, frameon=False)
    return fig


def compression_knobs(knobs: dict[str, tuple[pd.DataFrame, object]]) -> Figure:
    """`compression`'s figure for several knobs in one, a part per knob (its title the knob), from
    {knob: (normalised rows of that knob, its difficulty order)}."""
    shapes = [(len(set(norm["task"])), len(set(norm["compressor"]))) for norm, _ in knobs.values()]
    heights = [3.2 * tasks + 1.0 for tasks, _ in shapes]
    fig = plt.figure(figsize=(3.6 * max(f for _, f in shapes), sum(heights)), layout="constrained")
    plt.close(fig)
    parts = fig.subfigures(len(knobs), 1, height_ratios=heights, squeeze=False)[:, 0]
    for part, (knob, (norm, difficulty)) in zip(parts, knobs.items()):
        part.suptitle(f"The {knob} knob", fontsize=11)
        compression(norm, knob, difficulty, fig=part)
    return fig


def scores(scores: pd.DataFrame, comparisons: pd.DataFrame) -> Figure:
    """The Junk-DNA score per method, ranked (`score.method_scores`, lowest at the top): the pooled score with
    its 95% interval in black, each testable comparison's (a colour per `where`: setting or knob and task) below it."""
    testable = comparisons[comparisons["testable"].astype(bool)]
    places = list(dict.fromkeys(testable["where"]))
    colours = dict(zip(places, plt.cm.tab10(np.arange(len(places)) % 10)))
    fig, ax = subplots(figsize=(7.5, 0.9 * len(scores) + 1.4))
    step = 0.6 / max(len(places), 1)
    for i, r in scores.reset_index(drop=True).iterrows():
        ax.plot([r["low"], r["high"]], [i, i], color="black", lw=2.5)
        ax.plot(r["estimate"], i, "D", color="black")
        for c in testable[testable["method"] == r["method"]].itertuples():
            y = i + step * (places.index(c.where) + 1)
            ax.plot([c.low, c.high], [y, y], color=colours[c.where], lw=1.2)
            ax.plot(c.estimate, y, "o", color=colours[c.where], ms=4)
    ax.set_yticks(range(len(scores)), [f"{m} (pooled)" for m in scores["method"]], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("Junk-DNA score: area between hardest and easiest drop curves (95% CI)")
    handles = [Line2D([], [], color="black", marker="D", lw=2.5, label="pooled over tasks")]
    handles += [Line2D([], [], color=colours[p], marker="o", ms=4, lw=1.2, label=p) for p in places]
    ax.legend(handles=handles, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(handles), 3),
              frameon=False)
    ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


def safe_sparsity(advice: pd.DataFrame, pattern: str = "unstructured") -> Figure:
    """The advisor's answer (`advise.committed`): a panel per grid and task, the levels easiest first
    along x, a line per method of its safe sparsity (0: none is safe); a level whose dense model fails the
    learnability gate is a hollow marker."""
    from .settings import SETTINGS

    rows = advice[advice["pattern"] == pattern]
    if rows.empty:
        return _empty(f"No committed grid has {pattern} pruning rows to advise on.")
    panels = list(dict.fromkeys(zip(rows["grid"], rows["task"])))
    columns = min(len(panels), 3)
    fig, axes = subplots(-(-len(panels) // columns), columns, figsize=(4.2 * columns, 3.2 * -(-len(panels) // columns)),
                         squeeze=False, sharey=True)
    for ax, (grid, task) in zip(axes.flat, panels):
        panel = rows[(rows["grid"] == grid) & (rows["task"] == task)]
        levels = list(dict.fromkeys(panel["level"]))  # advise gives them easiest first
        for method, curve in panel.groupby("method", sort=True):
            x = [levels.index(v) for v in curve["level"]]
            y = curve["safe_sparsity"].astype(float).fillna(0.0).to_numpy()
            style = METHOD_STYLES.get(method, "o-")
            line, = ax.plot(x, y, style, label=method, ms=5)
            hollow = ~curve["testable"].astype(bool).to_numpy()
            ax.plot(np.array(x)[hollow], y[hollow], style[0], mfc="white", color=line.get_color(), ms=5)
        ax.set_xticks(range(len(levels)), [_label(v) for v in levels], fontsize=8,
                      rotation=30 if len(levels) > 6 else 0)
        ax.set_xlabel(f"{SETTINGS[panel['setting'].iloc[0]].level} (easiest to hardest)")
        ax.set_title(f"{grid}: {task.split('/')[-1]}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"safe sparsity (tolerance {rows['tolerance'].iloc[0]:g})")
    fig.tight_layout()
    return fig
