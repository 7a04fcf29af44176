"""A difficulty setting's chapter, analysed in one call: normalised performance, the per-level trend
table, claim C1 by the paper's statistic, the declared and measured difficulty orders, and the
chance-corrected check; then its figure and glue values for the book."""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import plots
from ..grid import NotInStore, stored_only
from ..settings import SETTINGS, Setting, load
from ..sweep import sweep
from . import claims, compression, stats
from .sentences import gap_findings, level_label, setting_findings
from .verdicts import c1_comparisons, measured_order

COLUMNS = ["task", "family", "method", "statistic", "estimate", "low", "high", "verdict", "rho", "rho_low", "rho_high",
           "gap", "gap_low", "gap_high", "violations", "adjacent", "free_sparsity", "free_violations", "interval"]


@dataclass
class SettingChapter:
    """What a setting's chapter shows, computed from its rows."""

    setting: Setting
    results: pd.DataFrame
    norm: pd.DataFrame  # compressed / dense, per cell (stats.normalise)
    table: pd.DataFrame  # per task, family, method and level: Spearman(drop, sparsity), Theil-Sen slope
    comparisons: pd.DataFrame  # C1 per task, family and method (the paper's statistic, the gap, violations)
    corrected: pd.DataFrame | None  # the same on chance-corrected performance, where a chance level exists
    declared: list  # the levels, easiest first, as the paper orders them
    measured: list  # ... as the dense model finds them

    @property
    def name(self) -> str:
        return self.setting.name

    def dense(self) -> pd.DataFrame:
        """The dense model's accuracy per level (mean, spread, seeds), in the declared order."""
        level = self.setting.level
        dense = self.results[self.results["transfer"] == "dense"]
        table = dense.groupby(["task", level])["accuracy"].agg(["mean", "std", "count"]).round(3).reset_index()
        table["rank (paper)"] = table[level].map({v: i + 1 for i, v in enumerate(self.declared)})
        table["rank (measured)"] = table[level].map({v: i + 1 for i, v in enumerate(self.measured)})
        return table.sort_values(["task", "rank (paper)"]).reset_index(drop=True)

    def verdict_table(self) -> pd.DataFrame:
        """C1 per comparison, with the chance-corrected verdict beside it."""
        table = self.comparisons.reindex(columns=[c for c in COLUMNS if c in self.comparisons]).copy()
        if self.corrected is not None:
            on = [c for c in ("task", "family", "method") if c in table]
            table = table.merge(self.corrected[on + ["verdict"]].rename(columns={"verdict": "chance-corrected"}),
                                on=on, how="left")
        return table.round(3)

    def figure(self) -> plt.Figure:
        label = {"fraction": "fraction", "gap": "gap"}.get(self.setting.level, self.setting.level)
        return plots.normalised_performance(self.norm, self.setting.level, self.setting.order, level_label=label,
                                            across_tasks=self.setting.across_tasks)

    def findings(self) -> dict[str, object]:
        """Glue-ready values, named `<setting>_...`."""
        prefix, level = self.name, self.setting.level
        trend = self.comparisons if "rho" in self.comparisons else self.comparisons.rename(columns={"estimate": "rho"})
        statistic = {"rho": "the rank correlation between difficulty and slope",
                     "trend": "the Theil-Sen slope of the level slopes against difficulty",
                     "gap": "the slope at the hardest level minus that at the easiest"}.get(
            self.comparisons["statistic"].mode().iloc[0] if len(self.comparisons) else "", "no statistic")
        out = setting_findings(prefix, self.norm, self.table, trend, level, self.setting.order,
                               statistic=f"C1 by {statistic}, 95% interval")
        if "gap" in self.comparisons:
            out.update(gap_findings(prefix, self.comparisons[["gap"]].assign(verdict=self.comparisons["verdict_gap"])))
        out[f"{prefix}_declared_order"] = " < ".join(level_label(v) for v in self.declared)
        out[f"{prefix}_measured_order"] = " < ".join(level_label(v) for v in self.measured)
        out[f"{prefix}_orders_agree"] = ("agrees with the paper's order" if self.declared == self.measured else
                                         "differs from the paper's order; the verdicts use the paper's")
        out[f"{prefix}_paper_order"] = self.setting.order.paper
        if self.corrected is not None:
            on = [c for c in ("task", "family", "method") if c in self.comparisons]  # Setting 5: no task
            same = (self.corrected.set_index(on)["verdict"].reindex(self.comparisons.set_index(on).index)
                    == self.comparisons.set_index(on)["verdict"])
            out[f"{prefix}_chance"] = (f"On chance-corrected performance, (acc - chance) / (dense - chance), "
                                       f"{int(same.sum())} of {len(same)} verdicts stay the same.")
        else:
            out[f"{prefix}_chance"] = "This setting has no chance level to correct for (its score is not a choice)."
        return out

    def glue(self) -> None:
        from myst_nb import glue

        for key, value in self.findings().items():
            glue(key, value, display=False)
        glue(f"{self.name}_figure", self.figure(), display=False)


def analyse(setting: str, results: pd.DataFrame) -> SettingChapter:
    """A C1 setting's chapter from its rows (those `jdlib.sweep` returned)."""
    spec = SETTINGS[setting]
    norm = stats.normalise(results, spec.level)
    table = stats.trend_table(norm, spec.level)
    comparisons = c1_comparisons(setting, results)
    corrected = None if spec.chance is None else c1_comparisons(setting, results, correct_chance=True)
    levels = results[spec.level].unique()
    declared = [v.item() if isinstance(v, np.generic) else v for v in spec.order.easiest_first(levels)]
    return SettingChapter(spec, results, norm, table, comparisons, corrected, declared,
                          measured_order(setting, results))


@dataclass
class Committed:
    """A chapter's grid at other params (the full grids) read from its committed store, computing
    nothing; `rows` is None, and `status` says why, where the grid is not whole there."""

    setting: Setting
    params: str
    rows: pd.DataFrame | None
    status: str
    chapter: SettingChapter | None = None  # the C1 settings' analysis of `rows`

    def summary(self):
        from IPython.display import Markdown

        return Markdown(self.status)

    def figure(self) -> plt.Figure | None:
        """The chapter's figure on these rows (closed: a notebook shows it once, as the cell's value)."""
        figure = None
        if self.chapter is not None:
            figure = self.chapter.figure()
        elif self.rows is not None and self.setting.name == "lmc":
            figure = plots.barriers(self.rows, self.setting.level, self.setting.order, level_label="fraction")
        if figure is not None:
            plt.close(figure)
        return figure

    def verdict_table(self) -> pd.DataFrame | None:
        """C1's table (a difficulty setting), C5's (the loss basin) or C3's statistic (the compression grid)."""
        if self.chapter is not None:
            return self.chapter.verdict_table()
        if self.rows is None:
            return None
        if self.setting.name == "lmc":
            return claims.c5_basin(self.rows, self.setting.level, self.setting.order)["table"].round(4)
        if self.setting.name == "compression":
            knobs = sorted(self.rows["knob"].unique())
            return compression.within_table(compression.within(self.rows, knobs)).round(3)
        return None


def _provenance(rows: pd.DataFrame) -> str:
    devices = ", ".join(f"{n} on {d}" for d, n in rows["device"].value_counts().items())
    commits = sorted({str(c)[:7] for c in rows["git_commit"]})
    return (f"{len(rows)} cells ({devices}; {rows['wall_time_s'].sum() / 60:.0f} minutes of cell time), "
            f"computed at commit{'s' if len(commits) > 1 else ''} {', '.join(commits)}")


def committed(setting: str, params: str = "full", built: str | None = None) -> Committed:
    """`setting`'s grid at `params` from the store its params name (the committed results/full.sqlite),
    computing nothing; `built` is the params this build ran (the same: nothing more to show)."""
    spec = SETTINGS[setting]
    if built == params:
        return Committed(spec, params, None, f"This build ran `params/{params}` itself: the sections above are "
                                             "the full-scale ones.")
    config = load(setting, params)
    try:
        with stored_only():
            rows = sweep(config, progress=False)
    except NotInStore as err:
        return Committed(spec, params, None, f"The grid of `params/{params}` is not whole in the committed store "
                                             f"`{config.store}` yet: {err.total - err.missing} of its {err.total} "
                                             f"cells are there (a later run resumes it), so this chapter shows no "
                                             "full-scale result.")
    frame = pd.concat([rows.within, rows.across], ignore_index=True) if hasattr(rows, "within") else rows
    status = (f"Read from the committed store `{config.store}` (computing nothing): `params/{params}`, "
              f"{_provenance(frame)}.")
    chapter = analyse(setting, rows) if spec.in_c1 else None
    if chapter is not None:
        status += f" {chapter.findings()[f'{setting}_verdicts']} {chapter.findings()[f'{setting}_chance']}"
    return Committed(spec, params, rows, status, chapter)
