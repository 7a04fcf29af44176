"""A difficulty setting's chapter, analysed in one call: normalised performance, the per-level trend
table, claim C1 by the paper's statistic, the declared and measured difficulty orders, and the
chance-corrected check; then its figure and glue values for the book."""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from .. import plots
from ..settings import SETTINGS, Setting, load
from ..settings.compression import KNOBS
from . import claims, compression, score, stats, tables
from .floor import level_gates
from .rows import stored_rows
from .sentences import (basin_sentence, fine_tuning_scale, full_scale_verdict, gap_findings, level_label,
                        setting_findings)
from .verdicts import c1_comparisons, gates_table, measured_order
from .verdicts import compression_c1 as c1_compression

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

    def dense(self) -> Styler:
        """The dense model's accuracy per level (mean and spread over seeds), ranked in the paper's order
        and as the dense model ranks the levels."""
        level = self.setting.level
        dense = self.results[self.results["transfer"] == "dense"]
        table = dense.groupby(["task", level])["accuracy"].agg(["mean", "std", "count"]).reset_index()
        table["accuracy (mean ± sd)"] = [f"{m:.3f} ± {s:.3f}" if s == s else f"{m:.3f}"
                                         for m, s in zip(table["mean"], table["std"])]
        table["rank (paper)"] = table[level].map({v: i + 1 for i, v in enumerate(self.declared)})
        table["rank (measured)"] = table[level].map({v: i + 1 for i, v in enumerate(self.measured)})
        table = table.sort_values(["task", "rank (paper)"]).rename(columns={"count": "seeds"})
        return tables.page(table[["task", level, "accuracy (mean ± sd)", "seeds", "rank (paper)", "rank (measured)"]],
                           f"Dense accuracy per {level}, ranked easiest (1) to hardest")

    def verdict_table(self) -> pd.DataFrame:
        """C1 per comparison with every column behind it (the wide detail), the chance-corrected verdict beside."""
        table = self.comparisons.reindex(columns=[c for c in COLUMNS if c in self.comparisons]).copy()
        if self.corrected is not None:
            on = [c for c in ("task", "family", "method") if c in table]
            table = table.merge(self.corrected[on + ["verdict"]].rename(columns={"verdict": "chance-corrected"}),
                                on=on, how="left")
        return table.round(3)

    def verdicts(self) -> Styler:
        """C1 per comparison as a page shows it: the statistic the verdict reads, with its interval."""
        table = tables.with_interval(self.verdict_table())
        keep = [c for c in ("task", "family", "method", "statistic", "estimate [95% CI]", "verdict", "chance-corrected")
                if c in table]
        return tables.page(table[keep], f"{self.setting.title}: C1 per comparison (the full table is below)",
                           keep=("estimate [95% CI]", "verdict", "chance-corrected"))

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
        names = (dict(zip(self.norm[level], self.norm["task"].map(tables.short_task))) if self.setting.across_tasks
                 else None)
        out = setting_findings(prefix, self.norm, self.table, trend, level, self.setting.order,
                               statistic=f"C1 by {statistic}, 95% interval", names=names)
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


def glue_scale(config, rows: pd.DataFrame) -> None:
    """Glue `<setting>_scale`: what this build's fine-tuning grid is and at how many levels its dense models
    (the rows with transfer "dense") passed the learnability gate."""
    from myst_nb import glue

    gates = level_gates(config.setting, rows) if "transfer" in rows else pd.DataFrame()
    glue(f"{config.setting}_scale", fine_tuning_scale(config, gates), display=False)


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
    nothing: its figure, its claim's verdict (`verdict`, a sentence that begins with
    `sentences.FULL_SCALE`), a narrow table and the wide detail. `rows` is None, and `status` says
    why, where the grid is not whole there."""

    setting: Setting
    params: str
    rows: pd.DataFrame | None
    status: str
    verdict: str = ""
    chapter: SettingChapter | None = None  # the C1 settings' analysis of `rows`
    claim_results: dict = field(default_factory=dict)  # the other chapters' claim results on `rows`, by name
    built_here: bool = False  # this build ran `params` itself: the rows are the build's own

    def scores(self, built: pd.DataFrame) -> score.Ranking:
        """The Junk-DNA score per pruning method on these rows, or on `built` (the build's own rows) where
        this build ran `params` itself."""
        return score.ranking({self.setting.name: built if self.built_here else self.rows})

    def summary(self):
        from IPython.display import Markdown

        return Markdown(f"{self.status} {self.verdict}".strip())

    def baselines(self) -> Styler | None:
        """The dense model per task and level beside the task's floor, and whether the level passes the
        learnability gate (`verdicts.gates_table`): what the verdict may read (None where the grid is not whole)."""
        if self.rows is None:
            return None
        return tables.gates(gates_table({self.setting.name: self.rows}))

    def figure(self) -> plt.Figure | None:
        """The chapter's figure on these rows (closed: a notebook shows it once, as the cell's value)."""
        if self.rows is None:
            return None
        name, spec = self.setting.name, self.setting
        if self.chapter is not None:
            figure = self.chapter.figure()
        elif name == "lmc":
            figure = plots.barriers(self.rows, spec.level, spec.order, level_label="fraction")
        elif name == "compression":
            figure = plots.compression_knobs({knob: (compression.normalised(self.rows, knob), KNOBS[knob].ORDER)
                                              for knob in sorted(self.rows["knob"].unique())})
        else:  # the true gem: the four transfer modes within a task
            figure = plots.transfer_modes(stats.normalise(self.rows.within, spec.level), spec.level, spec.order,
                                          level_label=spec.level)
        plt.close(figure)
        return figure

    def table(self) -> Styler | None:
        """The verdict's table, narrow and labelled (None where the grid is not whole)."""
        if self.rows is None:
            return None
        if self.chapter is not None:
            return self.chapter.verdicts()
        name = self.setting.name
        if name == "lmc":
            return tables.barriers(self.claim_results["C5"])
        if name == "compression":
            return tables.c3_parts(self.claim_results["C3"])
        return tables.c2_comparisons(self.claim_results)

    def detail(self) -> pd.DataFrame | None:
        """The wide table behind the verdict (for a toggle): C1's every column, or the claim's statistic per level."""
        if self.rows is None:
            return None
        if self.chapter is not None:
            return self.chapter.verdict_table()
        if self.setting.name == "compression":
            return compression.within_table(compression.within(self.rows, sorted(self.rows["knob"].unique()))).round(3)
        return pd.concat([result["table"].assign(part=name) for name, result in self.claim_results.items()],
                         ignore_index=True).round(4)


def _provenance(rows: pd.DataFrame) -> str:
    devices = ", ".join(f"{n} on {d}" for d, n in rows["device"].value_counts().items())
    commits = sorted({str(c)[:7] for c in rows["git_commit"]})
    return (f"{len(rows)} cells ({devices}; {rows['wall_time_s'].sum() / 60:.0f} minutes of cell time), "
            f"computed at commit{'s' if len(commits) > 1 else ''} {', '.join(commits)}")


def _claims(setting: str, rows) -> dict:
    """The claim results a chapter that is not a C1 setting judges on its full grid, by name."""
    spec = SETTINGS[setting]
    if setting == "lmc":
        return {"C5": claims.c5_basin(rows, spec.level, spec.order, ci="t")}
    if setting == "compression":
        return {"C3": claims.c3_quantization(compression.within(rows, sorted(rows["knob"].unique()))),
                "C4": claims.c4_patterns(c1_compression(rows))}
    if setting == "true_gem":
        across = SETTINGS["setting5"]
        return {"C2 within a task": claims.c2_irreversibility(rows.within, spec.level, spec.order, ci="t"),
                "C2 across tasks": claims.c2_irreversibility(rows.across, across.level, across.order,
                                                             across_tasks=True, ci="t")}
    return {}


def _verdict(chapter: SettingChapter | None, results: dict) -> str:
    """The full-scale verdict sentences: C1's counts in a setting, else each claim's sentence and verdict."""
    if chapter is not None:
        return full_scale_verdict(f"C1 in {chapter.setting.title.split(':')[0]}", chapter.comparisons["verdict"])
    out = []
    for name, result in results.items():
        sentence = basin_sentence(result) if result.claim == "C5" else result.sentence
        out.append(f"{full_scale_verdict(name, result.verdict)} {sentence}")
    return " ".join(out)


def committed(setting: str, params: str = "full", built: str | None = None) -> Committed:
    """`setting`'s grid at `params` from the store its params name (the committed results/full.sqlite),
    computing nothing; `built` is the params this build ran (the same: nothing more to show)."""
    spec = SETTINGS[setting]
    if built == params:
        return Committed(spec, params, None, f"This build ran `params/{params}` itself: the sections above are "
                                             "the full-scale ones.", built_here=True)
    config = load(setting, params)
    rows, missing = stored_rows(config)
    if missing:
        return Committed(spec, params, None, f"The grid of `params/{params}` is not whole in the committed store "
                                             f"`{config.store}` yet: {missing.total - missing.missing} of its {missing.total} "
                                             f"cells are there (a later run resumes it), so this chapter shows no "
                                             "full-scale figure or verdict.")
    frame = pd.concat([rows.within, rows.across], ignore_index=True) if hasattr(rows, "within") else rows
    status = (f"Read from the committed store `{config.store}` (computing nothing): `params/{params}`, "
              f"{_provenance(frame)}.")
    chapter = analyse(setting, rows) if spec.in_c1 else None
    if chapter is not None:
        status += f" {chapter.findings()[f'{setting}_verdicts']} {chapter.findings()[f'{setting}_chance']}"
    results = _claims(setting, rows)
    return Committed(spec, params, rows, status, _verdict(chapter, results), chapter, results)
