"""Does the effect change with model size? C1 and S1 per model, on one cut of the scoring settings' grids.

The second scale (issue 20): all-mpnet-base-v2 (110M parameters) beside the embedded all-MiniLM-L6-v2
(22.7M), on Settings 2, 3, 4 and 6, magnitude and random pruning, unstructured, seeds 41-43: `CUT`, the
grid both scales run (the full grid is about 13 GPU hours at mpnet's size; N:M is C4's question, not
this one's). Per model, C1 is judged on the cut's magnitude rows, by C1's own rule, and S1 (magnitude's
trend minus random pruning's) where the random rows are there too, each on the settings whose cut is
whole in the store for every model that has one (the scales on the same footing). A model with no whole grid is "not run", and `coverage` says how many of
each grid's cells are stored. The rule is C1's and S1's, fixed before any mpnet row existed.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd
from pandas.io.formats.style import Styler

from .. import plots
from ..settings import load
from . import claims, tables
from .claims import not_run
from .rows import stored_rows
from .specificity import s1_claim
from .verdicts import c1_monotonic, claim_json

MODELS = {"minilm": "all-MiniLM-L6-v2 (22.7M parameters)", "mpnet": "all-mpnet-base-v2 (110M parameters)"}
COMPARED = ("setting2", "setting3", "setting4", "setting6")
CUT = {"pattern": ["unstructured"], "seeds": [41, 42, 43]}
METHODS = {"C1": ["magnitude"], "S1": ["magnitude", "random"]}


@dataclass
class Grid:
    """One setting's cut for one model and claim: its rows where whole in the store, else None."""

    setting: str
    model: str
    claim: str
    rows: pd.DataFrame | None
    stored: int
    total: int


def overrides(model: str, claim: str) -> dict:
    """The parameters that replace params/full's for `model`'s cut read by `claim` (C1 or S1)."""
    return {**CUT, "model": model, "method": METHODS[claim]}


def grid(setting: str, model: str, claim: str, params: str = "full", store: str | None = None) -> Grid:
    """`setting`'s cut for `model` and `claim` read from the store, computing nothing."""
    config = load(setting, params, **overrides(model, claim), **({"store": store} if store else {}))
    rows, missing = stored_rows(config)
    if missing:
        return Grid(setting, model, claim, None, missing.total - missing.missing, missing.total)
    return Grid(setting, model, claim, rows, len(rows), len(rows))


def per_model(params: str = "full", store: str | None = None) -> dict[str, dict]:
    """Per model: C1 and S1 on its cut (each "not run" without a whole grid), the settings each was judged
    on (`judged_on`) and the grids read. Where two models have whole grids, each claim is judged on the
    settings whole for both, so the scales are compared on the same footing."""
    grids = {model: [grid(s, model, claim, params, store) for claim in METHODS for s in COMPARED] for model in MODELS}
    whole = {model: {claim: {g.setting: g.rows for g in found if g.claim == claim and g.rows is not None}
                     for claim in METHODS} for model, found in grids.items()}
    out = {model: {"grids": found, "judged_on": {}} for model, found in grids.items()}
    for claim, judge in (("C1", c1_monotonic), ("S1", lambda rows: s1_claim(rows, None))):
        having = [m for m in MODELS if whole[m][claim]]
        common = set.intersection(*(set(whole[m][claim]) for m in having)) if having else set()
        for model in MODELS:
            settings = sorted(common or whole[model][claim]) if model in having else []
            out[model]["judged_on"][claim] = settings
            out[model][claim] = (judge({s: whole[model][claim][s] for s in settings}) if settings
                                 else not_run(claim, f"{model} cut's" + (" random-pruning" if claim == "S1" else "")))
    return out


def coverage(found: dict[str, dict]) -> pd.DataFrame:
    """Per model, claim and setting: the cut's cells stored of its total, and whether the grid is whole."""
    return pd.DataFrame([{"model": model, "claim": g.claim, "setting": g.setting, "methods": ", ".join(METHODS[g.claim]),
                          "stored": g.stored, "cells": g.total, "whole": g.rows is not None}
                         for model, entry in found.items() for g in entry["grids"]])


def side_by_side(found: dict[str, dict]) -> pd.DataFrame:
    """C1 and S1 per model, side by side: verdict, pooled estimate and interval, comparisons counted, and
    the settings each was judged on."""
    out = []
    for model, entry in found.items():
        for name in METHODS:
            result: claims.ClaimResult = entry[name]
            judged_on = entry["judged_on"][name]
            out.append({"model": model, "claim": name, "verdict": result.verdict, "estimate": result.estimate,
                        "low": result.low, "high": result.high, **{k: result.counts.get(k, 0) for k in ("holds", "fails", "inconclusive", "not_testable")},
                        "settings": ", ".join(judged_on) or "none whole"})
    return pd.DataFrame(out)


def scale_json(found: dict[str, dict]) -> dict:
    """`per_model` for `python -m jdlib.claims --json`: per model, C1 and S1 as the claims give them, and coverage."""
    return {model: {"name": MODELS[model], "C1": claim_json(entry["C1"]), "S1": claim_json(entry["S1"]),
                    "judged_on": entry["judged_on"],
                    "grids": coverage({model: entry}).drop(columns="model").to_dict(orient="records")}
            for model, entry in found.items()}


def table(found: dict[str, dict]) -> Styler:
    """`side_by_side` as the book shows it: the pooled estimate with its interval in one column."""
    out = tables.with_interval(side_by_side(found), name="pooled [95% CI]")
    return tables.page(out, "C1 and S1 per model on the scale cut (unstructured, seeds 41-43)", keep=("verdict", "claim"))


def coverage_table(found: dict[str, dict]) -> Styler:
    """`coverage` as the book shows it."""
    out = coverage(found)
    out["whole"] = out["whole"].map({True: "yes", False: "no"})
    return tables.page(out, "The scale cut's grids in the store: cells stored of each grid's cells", keep=("whole",))


def figure(found: dict[str, dict]) -> plt.Figure | None:
    """C1's comparisons of every model with a judged cut, one forest plot, a row per model, setting and task
    (None where no model has one)."""
    parts = [entry["C1"].tables["table"].assign(setting=lambda t, m=model: m + " " + t["setting"])
             for model, entry in found.items() if "table" in entry["C1"].tables]
    if not parts:
        return None
    fig = plots.comparisons(pd.concat(parts, ignore_index=True),
                            x_label="C1's estimate (the trend; the slope gap with two levels)")
    plt.close(fig)
    return fig


def sentence(found: dict[str, dict]) -> str:
    """What the scale cut says, in words, whatever it says: C1 and S1 per model, and whether the two scales
    can be compared yet."""
    parts = []
    for model, entry in found.items():
        whole = entry["judged_on"]["C1"]
        words = []
        for name in METHODS:
            result = entry[name]
            if result.verdict == claims.NOT_RUN:
                cut = [g for g in entry["grids"] if g.claim == name]
                words.append(f"{name} not run ({sum(g.stored for g in cut)} of {sum(g.total for g in cut)} cells stored)")
            else:
                words.append(f"{name} {result.verdict} ({claims.interval_words(result.estimate, result.low, result.high)})")
        parts.append(f"on {MODELS[model]}, {', and '.join(words)}"
                     + (f", C1 judged on {', '.join(whole)}" if whole else ""))
    judged = [m for m, e in found.items() if e["C1"].verdict != claims.NOT_RUN]
    tail = ("Both scales have C1 verdicts: compare them above." if len(judged) == len(found) else
            "Whether the effect grows with scale cannot be said until every model's cut is in the store.")
    return f"At the scale cut, {'; '.join(parts)}. {tail}"
