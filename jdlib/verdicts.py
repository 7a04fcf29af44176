"""Every claim's verdict, from every chapter's rows in the results store (the claims chapter).

Each chapter's sweep is run again through `jdlib.sweep`: its cells are already in the store
(the book executes the chapters first), so this reads them back, with the configs, levels and
difficulty orders the chapters used; a missing cell would be computed, never invented. With
`compute=False` nothing is computed: a chapter whose grid is not whole in the store is left out
and the claims that need it are "not run" (the committed store of the full grids).
"""
from __future__ import annotations

import pandas as pd

from . import claims, config as configs, stats
from .settings import compression, lmc, setting1, setting2, setting3, setting4, setting5, setting6
from .grid import NotInStore, stored_only
from .sweep import sweep

NOT_RUN = "not run"

# setting: (level column, difficulty order, levels are tasks)
C1_SETTINGS = {
    "setting1": ("fraction", setting1.difficulty, False),
    "setting2": (setting2.LEVEL, setting2.difficulty, False),
    "setting3": (setting3.LEVEL, setting3.difficulty, False),
    "setting4": (setting4.LEVEL, setting4.difficulty, False),
    "setting5": ("gap", setting5.difficulty, True),
    "setting6": (setting6.LEVEL, setting6.difficulty, False),
}
C1_RULE = ("C1 compares, per task, pattern family and method, the Theil-Sen slope of the normalised drop "
           "against sparsity at the hardest level with that at the easiest (across tasks for Setting 5: the "
           "rank correlation between the human-model gap and the slope); each comparison holds when its 95% "
           "bootstrap interval over seeds lies above 0 and fails when it lies below. A setting holds when all "
           "its comparisons hold, fails when any fails, and is inconclusive otherwise; so does C1 over the "
           "settings.")


def chapter_results(chapter: str, params: str = "quick", store: str | None = None, compute: bool = True):
    """The rows a chapter's notebook shows, for its params (read back from the store); with
    `compute=False`, None when its grid is not whole in the store."""
    config = configs.load(chapter, params, store=store)
    if compute:
        return sweep(config, progress=False)
    try:
        with stored_only():
            return sweep(config, progress=False)
    except NotInStore:
        return None


def not_run(claim: str, chapters: str) -> dict:
    return {"verdict": NOT_RUN, "sentence": f"{claim} needs the {chapters} grid, which is not in the store.",
            "rule": ""}


def c1_comparisons(setting: str, results: pd.DataFrame) -> pd.DataFrame:
    """One row per comparison of a setting's C1 evidence, with its verdict."""
    level, difficulty, across = C1_SETTINGS[setting]
    norm = stats.normalise(results, level)
    if across:
        rows = stats.difficulty_trend(norm, level, difficulty, across_tasks=True).rename(
            columns={"rho": "estimate", "rho_low": "low", "rho_high": "high"})
    else:
        rows = stats.slope_gap(norm, level, difficulty).rename(
            columns={"gap": "estimate", "gap_low": "low", "gap_high": "high"})
    return rows.assign(setting=setting)


def c1_monotonic(results: dict[str, pd.DataFrame]) -> dict:
    """C1 over the settings: per-comparison rows, a verdict per setting and overall."""
    table = pd.concat([c1_comparisons(s, r) for s, r in results.items()], ignore_index=True)
    per_setting = {s: claims.combine(g["verdict"]) for s, g in table.groupby("setting")}
    verdict = claims.combine(per_setting.values())
    counts = table["verdict"].value_counts().to_dict()
    sentence = (f"Over {len(table)} comparisons in {len(per_setting)} settings, the drop is steeper on the harder "
                f"level in {counts.get('holds', 0)}, shallower in {counts.get('fails', 0)} and indistinguishable in "
                f"{counts.get('inconclusive', 0)}; by setting: "
                + ", ".join(f"{s} {v}" for s, v in per_setting.items()) + f". Verdict on C1: {verdict}.")
    return {"verdict": verdict, "table": table, "per_setting": per_setting, "rule": C1_RULE, "sentence": sentence,
            "comparisons": len(table), **{f"{s}_verdict": v for s, v in per_setting.items()}}


def all_claims(params: str = "quick", store: str | None = None, compute: bool = True) -> dict[str, dict]:
    """C1 to C5 from the chapters' rows, each a claims-style result (verdict, sentence, rule).

    With `compute=False` only whole grids in the store count: C1 is judged on the settings
    present (its `settings` entry lists them), C4 on those and the compression grid, and a
    claim with nothing to read is "not run".
    """
    def rows(chapter):
        return chapter_results(chapter, params, store, compute)

    settings = {s: r for s in C1_SETTINGS if (r := rows(s)) is not None}
    c1 = {**c1_monotonic(settings), "settings": ", ".join(settings)} if settings else not_run("C1", "settings'")
    gem = rows("true_gem")
    if gem is None:
        c2 = not_run("C2", "true_gem")
    else:
        c2_within = claims.c2_irreversibility(gem.within, "fraction", setting1.difficulty)
        c2_across = claims.c2_irreversibility(gem.across, "gap", setting5.difficulty)
        c2 = {"verdict": claims.combine([c2_within["verdict"], c2_across["verdict"]]),
              "sentence": f"Within a task: {c2_within['sentence']} Across tasks: {c2_across['sentence']}",
              "within": c2_within["verdict"], "across": c2_across["verdict"], "rule": c2_within["rule"]}
    compressed = rows("compression")
    analysis = None
    if compressed is not None:
        analysis = compression.analyse(compressed, configs.load("compression", params, store=store).knobs())
    c3 = not_run("C3", "compression") if analysis is None else \
        claims.c3_quantization(analysis["rhos"], units=("knob", "task", "seed"))
    # C4 pools the C1 comparisons of every setting with the compression chapter's pruning rows.
    pooled = [t for t in (c1.get("table"), analysis["trend"] if analysis else None) if t is not None]
    c4 = claims.c4_patterns(pd.concat(pooled, ignore_index=True)) if pooled else not_run("C4", "settings' or compression")
    barriers = rows("lmc")
    c5 = not_run("C5", "lmc") if barriers is None else claims.c5_basin(barriers, "fraction", lmc.difficulty)
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5}


def summary(results: dict[str, dict]) -> pd.DataFrame:
    """A claim-per-row table: verdict and the sentence behind it."""
    return pd.DataFrame([{"claim": name.upper(), "verdict": r["verdict"], "evidence": r["sentence"]}
                         for name, r in results.items()])
