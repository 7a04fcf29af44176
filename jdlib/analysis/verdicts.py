"""Every claim's verdict, from every chapter's rows in the results store (the claims chapter).

Each chapter's sweep is run again through `jdlib.sweep`: its cells are already in the store
(the book executes the chapters first), so this reads them back, with the configs, levels and
difficulty orders the chapters used; a missing cell would be computed, never invented. With
`compute=False` nothing is computed: a chapter whose grid is not whole in the store is left out
and the claims that need it are "not run" (the committed store of the full grids).
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial

import numpy as np
import pandas as pd

from ..grid import NotInStore, stored_only
from ..compress import PRUNE_METHODS
from ..settings import SETTINGS, load
from ..settings.compression import KNOBS
from ..settings.spec import DifficultyOrder
from ..sweep import sweep
from . import claims, compression, intervals, stats

NOT_RUN = "not run"
C1_SETTINGS = [name for name, setting in SETTINGS.items() if setting.in_c1]
C1_RULE = ("C1 reads, per setting, task, pattern family and method, the Theil-Sen slope of the normalised drop "
           "against sparsity at each level, in the paper's declared order. It reports the paper's statistic, the "
           "Spearman correlation rho between difficulty and slope over all levels, and judges by `trend`, the "
           "Theil-Sen slope of the level slopes against the difficulty rank (three levels or more), or by the slope "
           "at the hardest level minus that at the easiest (two levels, Setting 6): rho is a discrete statistic "
           "whose interval, measured in bench/interval_coverage.py, does not keep its promise, while trend's and "
           "the gap's do. The 95% interval resamples questions as well as seeds (a t interval with the seeds' "
           "spread and a question bootstrap's variance); rows without per-question outcomes get a seed-only t "
           "interval, and Setting 5, whose levels are tasks, rho with a seed bootstrap, each marked. A comparison "
           "holds when its interval lies above 0, fails when it lies below, and is inconclusive otherwise (and "
           "always when the interval has no width). A setting holds when all its comparisons hold, fails when any "
           "fails, and is inconclusive otherwise; so does C1 over the settings.")


def chapter_results(chapter: str, params: str = "quick", store: str | None = None, compute: bool = True):
    """The rows a chapter's notebook shows, for its params (read back from the store); with
    `compute=False`, None when its grid is not whole in the store."""
    config = load(chapter, params, store=store)
    if compute:
        return sweep(config, progress=False)
    try:
        with stored_only():
            return sweep(config, progress=False)
    except NotInStore:
        return None


def not_run(claim: str, chapters: str) -> claims.ClaimResult:
    return claims.ClaimResult(claim, NOT_RUN, "", f"{claim} needs the {chapters} grid, which is not in the store.")


GROUP = ["task", "family", "method", "transfer"]


def c1_comparisons(setting: str, results: pd.DataFrame, order: DifficultyOrder | None = None,
                   correct_chance: bool = False) -> pd.DataFrame:
    """One row per comparison (task, pattern family, method, transfer) of a setting's C1 evidence.

    Within a task: the paper's statistic rho (Spearman between difficulty and the Theil-Sen slope
    of the drop, over all levels) with its interval, the hardest-minus-easiest `gap`, and the
    `trend` (Theil-Sen slope of the level slopes against the difficulty rank), each with the
    interval `bench/interval_coverage.py` chose (intervals.METHOD: seeds and questions). The
    verdict reads `trend` where there are three levels or more (rho's interval does not keep its
    promise, the bench shows) and `gap` with two; the count of adjacent-level order violations
    stands beside. A comparison whose cells lack per-question outcomes (rows stored before they
    were kept) gets a seed-only t interval, marked in `interval`. Across tasks (Setting 5) the
    levels are tasks, with questions of their own: rho with the seed bootstrap, marked likewise.
    `order` replaces the setting's declared (the paper's) difficulty order, e.g. by the measured one.
    With `correct_chance` every statistic reads (acc - chance) / (dense - chance), chance per level.
    """
    spec = SETTINGS[setting] if order is None else replace(SETTINGS[setting], order=order)
    if correct_chance and spec.chance is not None:
        results = results.assign(chance=spec.chance(results).fillna(0.0))
        norm = stats.normalise(results.assign(accuracy=results["accuracy"] - results["chance"]), spec.level)
    else:
        norm = stats.normalise(results, spec.level)
    if spec.across_tasks:
        rows = stats.difficulty_trend(norm, spec.level, spec.order, across_tasks=True).rename(
            columns={"rho": "estimate", "rho_low": "low", "rho_high": "high"})
        return rows.assign(setting=setting, statistic="rho", interval="seed bootstrap (levels are tasks)")
    violations = stats.order_violations(norm, spec.level, spec.order)
    dense = results[results["transfer"] == "dense"]
    out = []
    for keys, curve in results[results["transfer"] != "dense"].assign(
            family=lambda f: f["pattern"].map(stats.pattern_family)).groupby(GROUP, sort=True):
        group = dict(zip(GROUP, keys))
        base = dense[dense["task"] == group["task"]]
        out.append({**group, **c1_intervals(pd.concat([base, curve], ignore_index=True), spec)})
    table = pd.DataFrame(out)
    return table.merge(violations, on=GROUP, how="left").assign(setting=setting)


def c1_intervals(rows: pd.DataFrame, spec) -> dict:
    """rho, gap and trend of one comparison (its dense and compressed rows) with their intervals and verdict."""
    with_outcomes = "outcomes" in rows and rows["outcomes"].map(lambda o: o is not None and len(o) > 0).all()
    corrected = "chance" in rows  # c1_comparisons adds the column when it corrects for chance
    shared = not bool(rows.get("eval_seeded", pd.Series([False])).fillna(False).any())
    if with_outcomes and rows["outcomes"].map(len).nunique() == 1:
        grid_rows, method = rows, intervals.METHOD
    else:  # one "question" per cell holding its accuracy: only the seeds' spread is left
        grid_rows, method = rows.assign(outcomes=rows["accuracy"].map(lambda a: [a])), "seed_t"
    try:
        grid = intervals.OutcomeGrid.from_rows(grid_rows, level=spec.level, difficulty=spec.order,
                                               shared_questions=shared, by=["pattern"],
                                               chance="chance" if corrected else None)
        found = intervals.intervals(grid, partial(intervals.c1_statistics, chance_corrected=corrected), method=method)
    except ValueError as err:  # a grid that is not whole (a level or seed missing): no interval
        return {"statistic": "", "estimate": np.nan, "low": np.nan, "high": np.nan, "verdict": "inconclusive",
                "interval": f"none ({err})", "levels": rows[spec.level].nunique(), "seeds": rows["seed"].nunique(),
                **{f"{name}{end}": np.nan for name in ("rho", "gap", "trend") for end in ("", "_low", "_high")},
                "verdict_gap": "inconclusive"}
    levels = rows[spec.level].nunique()
    primary = "trend" if levels >= stats.MIN_LEVELS else "gap"
    out = {"statistic": primary, "estimate": found[primary].estimate, "low": found[primary].low,
           "high": found[primary].high, "verdict": intervals.verdict(found[primary]),
           "interval": method if method != "seed_t" else "seed_t (no per-question outcomes)",
           "levels": levels, "seeds": rows["seed"].nunique()}
    for name in ("rho", "gap", "trend"):
        out.update({name: found[name].estimate, f"{name}_low": found[name].low, f"{name}_high": found[name].high})
    out["verdict_gap"] = intervals.verdict(found["gap"])
    out.update(free_sparsity(grid, method))
    return out


def free_sparsity(grid: intervals.OutcomeGrid, method: str) -> dict:
    """"Earlier" in C1: per level, the largest sparsity up to which the drop is not significantly above
    zero (the lower end of its 95% interval at or below 0 at that sparsity and every smaller one),
    easiest level first; and how many adjacent levels, in the declared order, free more than the
    easier one before them (the paper: 10-15% is free on easy tasks, nothing on hard ones)."""
    conditions = grid.conditions
    dense = {level: i for i, (level, x) in enumerate(zip(conditions["level"], conditions["sparsity"])) if x == 0}

    def drops(acc, conds):
        with np.errstate(divide="ignore", invalid="ignore"):
            return {str(i): ((acc[..., dense[level]] - acc[..., i]) / acc[..., dense[level]]).mean(axis=-1)
                    for i, (level, x) in enumerate(zip(conds["level"], conds["sparsity"])) if x > 0}

    found = intervals.intervals(grid, drops, method=method)
    free = {}
    for level in dict.fromkeys(conditions["level"]):
        rows = conditions[(conditions["level"] == level) & (conditions["sparsity"] > 0)].sort_values("sparsity")
        largest = 0.0
        for i, x in zip(rows.index, rows["sparsity"]):
            if not found[str(i)].low <= 0:
                break
            largest = float(x)
        free[level] = largest
    values = list(free.values())
    return {"free_sparsity": "; ".join(f"{_plain(k)}: {v:g}" for k, v in free.items()),
            "free_violations": int(sum(b > a for a, b in zip(values, values[1:])))}


def c1_monotonic(results: dict[str, pd.DataFrame], correct_chance: bool = False) -> claims.ClaimResult:
    """C1 over the settings: per-comparison rows, a verdict per setting and overall."""
    table = pd.concat([c1_comparisons(s, r, correct_chance=correct_chance) for s, r in results.items()],
                      ignore_index=True)
    per_setting = {s: claims.combine(g["verdict"]) for s, g in table.groupby("setting")}
    verdict = claims.combine(per_setting.values())
    counts = table["verdict"].value_counts().to_dict()
    sentence = (f"Over {len(table)} comparisons in {len(per_setting)} settings, the drop steepens with the paper's "
                f"difficulty order in {counts.get('holds', 0)}, flattens in {counts.get('fails', 0)} and shows no "
                f"clear trend in {counts.get('inconclusive', 0)}; by setting: "
                + ", ".join(f"{s} {v}" for s, v in per_setting.items()) + f". Verdict on C1: {verdict}.")
    return claims.ClaimResult.from_parts("C1", {
        "verdict": verdict, "table": table, "rule": C1_RULE, "sentence": sentence, "comparisons": len(table),
        "failures": failures(table, results),
        "settings": ", ".join(per_setting), **{f"{s}_verdict": v for s, v in per_setting.items()}},
        "per comparison: trend (Theil-Sen slope of the level slopes against difficulty rank), or the gap for two levels",
        resamples="comparisons")


def compression_c1(rows: pd.DataFrame, correct_chance: bool = False) -> pd.DataFrame:
    """The compression grid's pruning rows judged as C1 is, within the setting each knob comes from
    (Setting 2's option count, Setting 3's context): the same statistic, intervals and rule."""
    pruning = rows[rows["method"].isin(PRUNE_METHODS) | (rows["transfer"] == "dense")]
    return pd.concat([c1_comparisons(KNOBS[knob].SETTING.name, part, correct_chance=correct_chance)
                      .assign(setting="compression", knob=knob) for knob, part in pruning.groupby("knob")],
                     ignore_index=True)


def failures(table: pd.DataFrame, results: dict[str, pd.DataFrame]) -> str:
    """A sentence on each failing C1 comparison: how well the dense model does at its hardest and easiest
    level, against chance (a drop cannot steepen where the dense model has nothing above chance to lose)."""
    notes = []
    for _, row in table[table["verdict"] == "fails"].iterrows():
        spec, rows = SETTINGS[row["setting"]], results[row["setting"]]
        if spec.across_tasks:
            notes.append(f"{row['setting']}: the slopes fall as the tasks' human-model gap grows")
            continue
        dense = rows[(rows["transfer"] == "dense") & (rows["task"] == row["task"])]
        by_level = dense.groupby(spec.level)["accuracy"].mean()
        hardest, easiest = max(by_level.index, key=spec.order), min(by_level.index, key=spec.order)
        chance = f" (chance {spec.chance(dense).mean():.2f})" if spec.chance is not None else ""
        notes.append(f"{row['setting']}, {row['task'].split('/')[-1]} ({row['family']}, {row['method']}): the dense "
                     f"model scores {by_level[hardest]:.2f} at the hardest level ({spec.level} "
                     f"{_plain(hardest)}) and {by_level[easiest]:.2f} at the easiest{chance}")
    return ("Where a comparison fails: " + "; ".join(notes) + ".") if notes else "No comparison fails."


def chance_corrected(setting: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with chance subtracted from `accuracy`, so that normalising against the dense row of
    the same level gives (acc - chance) / (dense - chance); rows of a setting without a chance level
    are returned as they are."""
    spec = SETTINGS[setting]
    if spec.chance is None or rows is None or rows.empty:
        return rows
    return rows.assign(accuracy=rows["accuracy"] - spec.chance(rows).fillna(0.0))


def chapter_rows(params: str = "quick", store: str | None = None, compute: bool = True) -> dict:
    """Every chapter's rows for its params (None for a grid not whole in the store, with `compute=False`)."""
    return {name: chapter_results(name, params, store, compute) for name in SETTINGS}


def all_claims(params: str = "quick", store: str | None = None, compute: bool = True,
               correct_chance: bool = False, rows_by_chapter: dict | None = None) -> dict[str, claims.ClaimResult]:
    """C1 to C5 from the chapters' rows (read here, or given as `chapter_rows` returns them).

    With `compute=False` only whole grids in the store count: C1 is judged on the settings
    present (its `settings` entry lists them), C4 on those and the compression grid, and a
    claim with nothing to read is "not run". With `correct_chance` every setting with a chance
    level is judged on chance-corrected performance (see `chance_corrected`).
    """
    found_rows = rows_by_chapter if rows_by_chapter is not None else chapter_rows(params, store, compute)

    def rows(chapter):
        found = found_rows[chapter]
        return chance_corrected(chapter, found) if correct_chance and isinstance(found, pd.DataFrame) else found

    # C1 corrects inside its statistics (its intervals read per-question outcomes, not `accuracy`)
    settings = {s: r for s in C1_SETTINGS if (r := found_rows[s]) is not None}
    c1 = c1_monotonic(settings, correct_chance) if settings else not_run("C1", "settings'")
    gem = rows("true_gem")
    if gem is None:
        c2 = not_run("C2", "true_gem")
    else:
        c2_within = claims.c2_irreversibility(gem.within, "fraction", SETTINGS["setting1"].order)
        c2_across = claims.c2_irreversibility(gem.across, "gap", SETTINGS["setting5"].order, across_tasks=True)
        c2 = claims.ClaimResult(
            "C2", claims.combine([c2_within.verdict, c2_across.verdict]), c2_within.rule,
            f"Within a task: {c2_within.sentence} Across tasks: {c2_across.sentence}", c2_within.statistic,
            c2_within.estimate, c2_within.low, c2_within.high, c2_within.resamples,
            {"within": c2_within.verdict, "across": c2_across.verdict},
            {"within": c2_within.tables["table"], "across": c2_across.tables["table"]})
    compressed = rows("compression")
    analysis = None
    if compressed is not None:
        analysis = compression.analyse(compressed, sorted(compressed["knob"].unique()))
    c3 = not_run("C3", "compression") if analysis is None else \
        claims.c3_quantization(analysis["within"])
    # C4 pools the C1 comparisons of every setting with those of the compression grid's pruning rows.
    pruning = compression_c1(found_rows["compression"], correct_chance) if compressed is not None else None
    pooled = [t for t in (c1.tables.get("table"), pruning) if t is not None]
    c4 = claims.c4_patterns(pd.concat(pooled, ignore_index=True)) if pooled else not_run("C4", "settings' or compression")
    barriers = rows("lmc")
    c5 = not_run("C5", "lmc") if barriers is None else claims.c5_basin(barriers, "fraction", SETTINGS["lmc"].order)
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5}


def measured_order(setting: str, rows: pd.DataFrame) -> list:
    """The levels ordered by how hard the dense model finds them, easiest first: 1 - its chance-corrected
    accuracy (plain accuracy where the setting has no chance level) averaged over tasks and seeds;
    Setting 5's levels are its tasks' human-model gaps."""
    spec = SETTINGS[setting]
    dense = rows[rows["transfer"] == "dense"]
    if spec.across_tasks:
        return [float(g) for g in sorted(dense["gap"].unique())]
    score = dense["accuracy"]
    if spec.chance is not None:
        chance = spec.chance(dense).fillna(0.0)
        score = (score - chance) / (1.0 - chance)
    hardness = (1.0 - score).groupby(dense[spec.level]).mean()
    return [_plain(v) for v in hardness.sort_values(kind="stable").index]


def measured_difficulty(setting: str, rows: pd.DataFrame) -> DifficultyOrder:
    """The dense model's difficulty order of a setting's levels (`measured_order`) as an order to judge by."""
    ranked = measured_order(setting, rows)
    return DifficultyOrder(lambda level: ranked.index(_plain(level)), "the dense model's own accuracy",
                           " < ".join(map(str, ranked)))


def under_measured_order(rows_by_chapter: dict, c1: claims.ClaimResult) -> pd.DataFrame:
    """Per C1 setting with rows: its verdict under the paper's order and under the dense model's, judged
    again (same rule, same intervals) only where the two orders differ."""
    table = c1.tables.get("table")
    out = []
    for setting, found in orders(rows_by_chapter).items():
        declared = claims.combine(table.loc[table["setting"] == setting, "verdict"])
        measured = declared
        if not found["agree"]:
            again = c1_comparisons(setting, rows_by_chapter[setting],
                                   order=measured_difficulty(setting, rows_by_chapter[setting]))
            measured = claims.combine(again["verdict"])
        out.append({"setting": setting, "orders agree": "yes" if found["agree"] else "no",
                    "verdict (the paper's order)": declared, "verdict (the dense model's order)": measured,
                    "changes": "no" if declared == measured else "yes"})
    return pd.DataFrame(out)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def orders(rows_by_chapter: dict) -> dict[str, dict]:
    """Per C1 setting with rows: its declared order (easiest first, the paper's) and its measured one."""
    out = {}
    for setting in C1_SETTINGS:
        found = rows_by_chapter.get(setting)
        if found is None:
            continue
        spec = SETTINGS[setting]
        levels = found[spec.level].unique()
        declared = [_plain(v) for v in spec.order.easiest_first(levels)]
        measured = measured_order(setting, found)
        out[setting] = {"declared_order": declared, "measured_order": measured, "agree": declared == measured,
                        "paper": spec.order.paper}
    return out


def claim_json(result: claims.ClaimResult) -> dict:
    """One claim as `python -m jdlib.claims --json` prints it."""
    def num(v):
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)

    return {"verdict": result.verdict, "statistic": result.statistic, "estimate": num(result.estimate),
            "low": num(result.low), "high": num(result.high), "rule": result.rule, "resamples": result.resamples}


def report(params: str = "quick", store: str | None = None) -> dict:
    """Every claim's verdict, the settings' declared and measured orders, and the chance-corrected
    verdicts, from the store alone (nothing is computed)."""
    rows = chapter_rows(params, store, compute=False)
    plain = all_claims(params, store, rows_by_chapter=rows)
    corrected = all_claims(params, store, correct_chance=True, rows_by_chapter=rows)
    settings = orders(rows)
    if plain["c1"].verdict != NOT_RUN:
        for entry in under_measured_order(rows, plain["c1"]).to_dict(orient="records"):
            settings[entry["setting"]].update({"verdict": entry["verdict (the paper's order)"],
                                               "verdict_measured_order": entry["verdict (the dense model's order)"]})
    return {"params": params,
            "claims": {name.upper(): claim_json(r) for name, r in plain.items()},
            "settings": settings,
            "chance_corrected": {name.upper(): r.verdict for name, r in corrected.items()}}


def main(argv: list[str] | None = None) -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m jdlib.claims", description=report.__doc__)
    parser.add_argument("--params", default="quick", help="ci, quick, full, paper, or a YAML path")
    parser.add_argument("--store", default=None, help="a results store other than the params' own")
    parser.add_argument("--json", action="store_true", help="print one JSON object (the default prints a table)")
    args = parser.parse_args(argv)
    out = report(args.params, args.store)
    if args.json:
        print(json.dumps(out, indent=1, default=str))
        return
    for name, claim in out["claims"].items():
        print(f"{name}: {claim['verdict']:<12} chance-corrected: {out['chance_corrected'][name]:<12} "
              f"{claim['statistic']}")
    for setting, order in out["settings"].items():
        print(f"{setting}: declared {order['declared_order']} measured {order['measured_order']}")


def summary(results: dict[str, claims.ClaimResult],
            corrected: dict[str, claims.ClaimResult] | None = None) -> pd.DataFrame:
    """A claim-per-row table: verdict (and the chance-corrected one) and the sentence behind it."""
    return pd.DataFrame([{"claim": name.upper(), "verdict": r.verdict,
                          **({"chance-corrected": corrected[name].verdict} if corrected else {}), "evidence": r.sentence}
                         for name, r in results.items()])


def orders_table(rows_by_chapter: dict) -> pd.DataFrame:
    """The settings' declared (the paper's) and measured difficulty orders, easiest first."""
    return pd.DataFrame([{"setting": name, "the paper's order": " < ".join(map(str, o["declared_order"])),
                          "the dense model's": " < ".join(map(str, o["measured_order"])),
                          "agree": "yes" if o["agree"] else "no"} for name, o in orders(rows_by_chapter).items()])
