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

from ..data import human_scores
from ..difficulty import human_model_gap
from ..compress import CONTROLS, claimed
from ..settings import SETTINGS, load
from ..settings.compression import KNOBS
from ..settings.spec import DifficultyOrder
from . import claims, compression, intervals, pooling, specificity, stats
from .claims import not_run
from .floor import GATE_MARGIN, gate_reason, level_gates, row_floors
from .intervals import outcome_grid
from .rows import chapter_results
from .sentences import json_value, level_label, plain

C1_SETTINGS = [name for name, setting in SETTINGS.items() if setting.in_c1]
GATE_RULE = (f"A level is testable only when the dense model learned the task there: its accuracy's 95% interval "
             f"(over seeds and questions) lies wholly above the task's floor plus {GATE_MARGIN:g}, the floor being the "
             "larger of the chance level and the majority-class rate of the evaluation split (a fine-tuned classifier "
             "that learned nothing answers the most frequent label). Untestable levels are shown and left out of the "
             "statistic; a comparison with fewer testable levels than its statistic needs (three for trend, two for "
             "the gap) is not testable, a verdict of its own, distinct from inconclusive.")
POOLED_RULE = ("The claim is judged from all its testable comparisons at once, by a rule fixed in advance "
               f"(jdlib.analysis.pooling; coverage measured in bench/interval_coverage.py): {pooling.METHOD}; the "
               "estimates are on the scale of the statistic (slope change per difficulty step), so settings whose "
               "drops differ in size count as heterogeneous studies. It "
               "holds when the pooled 95% interval lies above 0, fails when below, and is inconclusive otherwise; "
               "one borderline comparison cannot decide it. The counts of comparisons that hold, fail, are "
               "inconclusive and are not testable stand beside it, and the failing comparisons are named after "
               "Holm's adjustment over the testable ones.")
C1_RULE = ("C1 reads, per setting, task, pattern family and method, the Theil-Sen slope of the normalised drop "
           "against sparsity at each level, in the paper's declared order. It reports the paper's statistic, the "
           "Spearman correlation rho between difficulty and slope over the testable levels, and judges by `trend`, "
           "the Theil-Sen slope of the level slopes against the difficulty rank (settings of three levels or "
           "more), or by the slope at the hardest level minus that at the easiest (two levels, Setting 6): rho is "
           "a discrete statistic whose interval, measured in bench/interval_coverage.py, does not keep its promise, "
           "while trend's and the gap's do. The 95% interval resamples questions as well as seeds (a t interval "
           "with the seeds' spread and a question bootstrap's variance); rows without per-question outcomes get a "
           "seed-only t interval, and Setting 5, whose levels are tasks, rho with a seed bootstrap (not pooled), "
           "each marked. A comparison holds when its interval lies above 0, fails when it lies below, and is "
           f"inconclusive otherwise (and always when the interval has no width). {GATE_RULE} {POOLED_RULE} Each "
           "setting is judged by the same rule on its own comparisons.")
NAME = ["setting", "task", "family", "method"]  # how a comparison is named


GROUP = ["task", "family", "method", "transfer"]


def c1_comparisons(setting: str, results: pd.DataFrame, order: DifficultyOrder | None = None,
                   correct_chance: bool = False, gates: pd.DataFrame | None = None) -> pd.DataFrame:
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
    With `correct_chance` every statistic reads (acc - floor) / (dense - floor), the task's floor per level
    (`analysis.floor`). Only the levels that pass the learnability gate (`gates`, from `floor.level_gates`
    unless given) enter a statistic: `testable` and `testable_reason` say which did and why, and a
    comparison with too few of them has the verdict `not testable` (see `GATE_RULE`). `se` and `df` are
    the interval's standard error and degrees of freedom, `study` the comparisons that share a dense model
    (what `pooling` reads). The control methods' rows (compress.CONTROLS) are left out: they belong to S1.
    """
    results = results[~results["method"].isin(CONTROLS)]
    spec = SETTINGS[setting] if order is None else replace(SETTINGS[setting], order=order)
    gates = level_gates(setting, results) if gates is None else gates
    if correct_chance:
        results = results.assign(chance=row_floors(setting, results)["floor"])
        norm = stats.normalise(results.assign(accuracy=results["accuracy"] - results["chance"]), spec.level)
    else:
        norm = stats.normalise(results, spec.level)
    passing = set(zip(gates.loc[gates["testable"], "task"], gates.loc[gates["testable"], spec.level]))
    norm = norm[[(t, v) in passing for t, v in zip(norm["task"], norm[spec.level])]]
    if spec.across_tasks:  # the levels are tasks: the gate keeps or drops whole tasks
        testable, reason = gate_reason(spec, gates, "rho", stats.MIN_LEVELS)
        if testable:
            rows = stats.difficulty_trend(norm, spec.level, spec.order, across_tasks=True).rename(
                columns={"rho": "estimate", "rho_low": "low", "rho_high": "high"})
        else:
            rows = results[results["transfer"] != "dense"].assign(family=lambda f: f["pattern"].map(
                stats.pattern_family))[GROUP[1:]].drop_duplicates().assign(
                estimate=np.nan, low=np.nan, high=np.nan, verdict=pooling.NOT_TESTABLE)
        return rows.assign(setting=setting, statistic="rho", interval="seed bootstrap (levels are tasks)", se=np.nan,
                           df=np.nan, testable=testable, testable_reason=reason, study=f"{setting}/tasks")
    statistic = "trend" if results[spec.level].nunique() >= stats.MIN_LEVELS else "gap"
    needed = stats.MIN_LEVELS if statistic == "trend" else 2
    violations = stats.order_violations(norm, spec.level, spec.order)
    dense = results[results["transfer"] == "dense"]
    out = []
    for keys, curve in results[results["transfer"] != "dense"].assign(
            family=lambda f: f["pattern"].map(stats.pattern_family)).groupby(GROUP, sort=True):
        group = dict(zip(GROUP, keys))
        testable, reason = gate_reason(spec, gates[gates["task"] == group["task"]], statistic, needed)
        found = {"testable": testable, "testable_reason": reason, "study": f"{setting}/{group['task']}"}
        if testable:
            rows = pd.concat([dense[dense["task"] == group["task"]], curve], ignore_index=True)
            rows = rows[[(group["task"], v) in passing for v in rows[spec.level]]]
            found.update(c1_intervals(rows, spec))
        else:
            found.update(untestable(statistic, curve, spec))
        out.append({**group, **found})
    table = pd.DataFrame(out)
    return table.merge(violations, on=GROUP, how="left").assign(setting=setting)


def untestable(statistic: str, rows: pd.DataFrame, spec) -> dict:
    """The entries of a comparison that is not testable: no statistic, the verdict `not testable`."""
    return {"statistic": statistic, "estimate": np.nan, "low": np.nan, "high": np.nan, "se": np.nan, "df": np.nan,
            "verdict": pooling.NOT_TESTABLE, "interval": "none (not testable)", "levels": rows[spec.level].nunique(),
            "seeds": rows["seed"].nunique(), "verdict_gap": pooling.NOT_TESTABLE,
            **{f"{name}{end}": np.nan for name in ("rho", "gap", "trend") for end in ("", "_low", "_high")}}


def c1_intervals(rows: pd.DataFrame, spec) -> dict:
    """rho, gap and trend of one comparison (its dense and compressed rows) with their intervals and verdict."""
    corrected = "chance" in rows  # c1_comparisons adds the column when it corrects for chance
    try:
        grid, method = outcome_grid(rows, spec, by=["pattern"], chance="chance" if corrected else None)
        found = intervals.intervals(grid, partial(intervals.c1_statistics, chance_corrected=corrected), method=method)
    except ValueError as err:  # a grid that is not whole (a level or seed missing): no interval
        return {"statistic": "", "estimate": np.nan, "low": np.nan, "high": np.nan, "se": np.nan, "df": np.nan,
                "verdict": "inconclusive",
                "interval": f"none ({err})", "levels": rows[spec.level].nunique(), "seeds": rows["seed"].nunique(),
                **{f"{name}{end}": np.nan for name in ("rho", "gap", "trend") for end in ("", "_low", "_high")},
                "verdict_gap": "inconclusive"}
    levels = rows[spec.level].nunique()
    primary = "trend" if levels >= stats.MIN_LEVELS else "gap"
    out = {"statistic": primary, "estimate": found[primary].estimate, "low": found[primary].low,
           "high": found[primary].high, "se": found[primary].se, "df": found[primary].df,
           "verdict": intervals.verdict(found[primary]),
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
    return {"free_sparsity": "; ".join(f"{plain(k)}: {v:g}" for k, v in free.items()),
            "free_violations": int(sum(b > a for a, b in zip(values, values[1:])))}


C1_STATISTIC = ("pooled trend: the Theil-Sen slope of the level slopes against the difficulty rank (the gap for two "
                "levels), per comparison, pooled over the testable comparisons")


def c1_monotonic(results: dict[str, pd.DataFrame], correct_chance: bool = False) -> claims.ClaimResult:
    """C1 over the settings by the pooled rule (`POOLED_RULE`): per-comparison rows, a pooled verdict per
    setting and over all the settings' comparisons at once."""
    table = pd.concat([c1_comparisons(s, r, correct_chance=correct_chance) for s, r in results.items()],
                      ignore_index=True)
    per_setting = {s: pooling.judge(g, ["study"], NAME) for s, g in table.groupby("setting")}
    judged = pooling.judge(table, ["study"], NAME)
    sentence = (f"{pooled_sentence(judged, 'C1', 'the trend')} By setting: "
                + "; ".join(f"{s} {j.verdict} ({interval_text(j.pooled)})" for s, j in per_setting.items())
                + f". Verdict on C1: {judged.verdict}.")
    return claims.ClaimResult.from_parts("C1", {
        "verdict": judged.verdict, "table": table, "rule": C1_RULE, "sentence": sentence, "comparisons": len(table),
        "failures": failures(judged), "not_testable": not_testable(table),
        "settings": ", ".join(per_setting), **{f"{s}_verdict": j.verdict for s, j in per_setting.items()},
        "by_setting": setting_table(per_setting)}, C1_STATISTIC, resamples="comparisons", judged=judged)


def interval_text(pooled: pooling.Pooled) -> str:
    """"+0.012 [+0.004, +0.020]", or why there is none."""
    return claims.interval_words(pooled.estimate, pooled.low, pooled.high)


def pooled_sentence(judged: pooling.Judged, claim: str, statistic: str) -> str:
    """The pooled estimate, its heterogeneity and the counts in words."""
    c, p = judged.counts, judged.pooled
    if p.comparisons == 0:
        return (f"No comparison of {claim} is testable with an interval to pool ({c['not_testable']} not testable, "
                f"{c['inconclusive']} inconclusive).")
    heterogeneity = (f"; between-study variance tau^2 {p.tau2:.2g}, I^2 {p.i2:.0%}" if p.studies > 1 else "")
    return (f"Pooled over {p.comparisons} testable comparisons in {p.studies} stud{'ies' if p.studies != 1 else 'y'} "
            f"(the comparisons of one task and setting count as one), {statistic} is {interval_text(p)} (95% "
            f"interval{heterogeneity}). Of {sum(c.values())} comparisons {c['holds']} hold, {c['fails']} fail, "
            f"{c['inconclusive']} are inconclusive and {c['not_testable']} are not testable; "
            + (f"failing after Holm's adjustment: {'; '.join(judged.failing)}." if judged.failing else
               "none fails after Holm's adjustment."))


def setting_table(per_setting: dict[str, pooling.Judged]) -> pd.DataFrame:
    """One row per setting (or group): its pooled verdict, estimate, interval, heterogeneity and counts."""
    return pd.DataFrame([{"setting": s, "verdict": j.verdict, "estimate": j.pooled.estimate, "low": j.pooled.low,
                          "high": j.pooled.high, "studies": j.pooled.studies, "tau2": j.pooled.tau2,
                          "i2": j.pooled.i2, **j.counts, "failing (Holm)": "; ".join(j.failing)}
                         for s, j in per_setting.items()])


def compression_c1(rows: pd.DataFrame, correct_chance: bool = False) -> pd.DataFrame:
    """The compression grid's pruning rows judged as C1 is, within the setting each knob comes from
    (Setting 2's option count, Setting 3's context): the same statistic, intervals, gate and rule; their
    `study` is that setting's for the same task (the same model on the same questions, see `pooling`)."""
    pruning = rows[rows["method"].map(claimed) | (rows["transfer"] == "dense")]
    return pd.concat([c1_comparisons(KNOBS[knob].SETTING.name, part, correct_chance=correct_chance)
                      .assign(setting="compression", knob=knob) for knob, part in pruning.groupby("knob")],
                     ignore_index=True)


def failures(judged: pooling.Judged) -> str:
    """The comparisons that fail after Holm's adjustment, in a sentence."""
    if not judged.failing:
        return "No comparison fails after Holm's adjustment."
    return f"Failing after Holm's adjustment: {'; '.join(judged.failing)}."


def not_testable(table: pd.DataFrame | None) -> str:
    """The comparisons (or contrasts) that are not testable, grouped as they share a reason (setting and
    task, or contrast), with the gate's reason."""
    left = table[table["verdict"] == pooling.NOT_TESTABLE] if table is not None and len(table) else []
    if len(left) == 0:
        return "Every comparison is testable."
    by = [c for c in ("setting", "task", "contrast", "part") if c in left]
    notes = [", ".join(str(k).split("/")[-1] for k in np.atleast_1d(keys))
             + f" ({len(g)} comparison{'s' if len(g) > 1 else ''}): {g['testable_reason'].iloc[0]}"
             for keys, g in left.fillna({c: "" for c in by}).groupby(by, sort=False)]
    return "Not testable: " + "; ".join(notes) + "."


def chance_corrected(setting: str, rows: pd.DataFrame) -> pd.DataFrame:
    """The rows with the floor (`floor.row_floors`: chance or the majority-class rate) subtracted from
    `accuracy`, so that normalising against the dense row of the same level gives (acc - floor) / (dense - floor)."""
    if rows is None or rows.empty:
        return rows
    return rows.assign(accuracy=rows["accuracy"] - row_floors(setting, rows)["floor"])


def chapter_rows(params: str = "quick", store: str | None = None, compute: bool = True) -> dict:
    """Every chapter's rows for its params (None for a grid not whole in the store, with `compute=False`)."""
    return {name: chapter_results(name, params, store, compute) for name in SETTINGS}


def all_claims(params: str = "quick", store: str | None = None, compute: bool = True,
               correct_chance: bool = False, rows_by_chapter: dict | None = None) -> dict[str, claims.ClaimResult]:
    """C1 to C5 and S1 from the chapters' rows (read here, or given as `chapter_rows` returns them).

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
    gem = found_rows["true_gem"]
    c2 = not_run("C2", "true_gem") if gem is None else c2_gated(gem, correct_chance)
    compressed = rows("compression")
    c3 = not_run("C3", "compression") if compressed is None else \
        claims.c3_quantization(compression.within(compression_testable(found_rows["compression"], compressed),
                                                  sorted(compressed["knob"].unique())))
    # C4: the C1 comparisons of every setting and of the compression grid's pruning rows, each once
    pruning = compression_c1(found_rows["compression"], correct_chance) if compressed is not None else None
    pooled = [t for t in (c1.tables.get("table"), pruning) if t is not None]
    c4 = claims.c4_patterns(pd.concat(pooled, ignore_index=True)) if pooled else not_run("C4", "settings' or compression")
    barriers = found_rows["lmc"]
    c5 = not_run("C5", "lmc") if barriers is None else c5_judged(barriers)
    # S1: the compression chapter computes the controls' grid; here it is read back (computed only with the rest)
    controls = specificity.control_rows(load("compression", params, store=store), compute and rows_by_chapter is None)
    s1 = specificity.s1_claim(found_rows, controls, correct_chance)
    return {"c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5, "s1": s1}


def compression_testable(rows: pd.DataFrame, values: pd.DataFrame | None = None) -> pd.DataFrame:
    """The compression grid's rows (`values`: the same rows, e.g. floor-corrected) at the levels whose dense
    model passes the gate, each knob's levels gated as the setting it comes from gates them."""
    values = rows if values is None else values
    keep = pd.Series(False, index=rows.index)
    for knob, part in rows.groupby("knob"):
        keep[part.index] = testable_mask(KNOBS[knob].SETTING.name, part)
    return values[keep]


def testable_mask(setting: str, rows: pd.DataFrame) -> pd.Series:
    """Whether each row's task and level pass the learnability gate (`floor.level_gates`)."""
    level = SETTINGS[setting].level
    gates = level_gates(setting, rows)
    passing = set(zip(gates.loc[gates["testable"], "task"], gates.loc[gates["testable"], level]))
    return pd.Series([(t, v) in passing for t, v in zip(rows["task"], rows[level])], index=rows.index)


C2_PARTS = {"within": ("setting1", "fraction", False), "across": ("setting5", "gap", True)}  # setting, level, across


def c2_part(rows: pd.DataFrame, part: str, correct_chance: bool = False) -> claims.ClaimResult:
    """One part of C2 (`within` a task, Setting 1's gate; `across` tasks, Setting 5's) on the true gem's rows at
    the testable levels only, as `claims.c2_irreversibility` judges it; not testable with fewer than two
    (the hardest is compared with the easiest), its table then the paired differences at every level. The
    control methods' rows (compress.CONTROLS) are left out: they belong to S1."""
    setting, level, across = C2_PARTS[part]
    rows = rows[~rows["method"].isin(CONTROLS)]
    kept = rows[testable_mask(setting, rows)]
    kept = chance_corrected(setting, kept) if correct_chance else kept
    if kept[level].nunique() >= 2:
        return claims.c2_irreversibility(kept, level, SETTINGS[setting].order, across_tasks=across)
    reason = (f"{kept[level].nunique()} of {rows[level].nunique()} {level} levels pass the learnability gate; C2 "
              "compares the hardest with the easiest, so it needs two")
    shown = claims.c2_irreversibility(rows, level, SETTINGS[setting].order, across_tasks=across)
    return claims.ClaimResult("C2", pooling.NOT_TESTABLE, shown.rule, f"{reason}: not testable.",
                              numbers={"reason": reason}, tables={"table": shown.tables["table"]})


def c2_gated(gem, correct_chance: bool = False) -> claims.ClaimResult:
    """C2 on the true gem's rows at the testable levels only (within a task, Setting 1's gate; across tasks,
    Setting 5's): each part by `c2_part`, C2 combining the testable ones (not testable when neither is)."""
    parts = {part: c2_part(getattr(gem, part), part, correct_chance) for part in C2_PARTS
             if getattr(gem, part) is not None and not getattr(gem, part).empty}
    verdicts = {name: r.verdict for name, r in parts.items()}
    head = parts.get("within") or next(iter(parts.values()))
    units = pd.DataFrame([{"part": name, "comparison": comparison, "estimate": r[f"{short}_mean"],
                           "low": r[f"{short}_low"], "high": r[f"{short}_high"], "verdict": r[f"{short}_verdict"],
                           "testable": True, "testable_reason": "levels that fail the gate are left out"}
                          for name, r in parts.items() for short, comparison in
                          (("advantage", "keep > remove at the hardest level"), ("harder", "hardest minus easiest"))
                          if f"{short}_mean" in r]
                         + [{"part": name, "comparison": "keep > remove at the hardest level", "estimate": np.nan,
                             "low": np.nan, "high": np.nan, "verdict": pooling.NOT_TESTABLE, "testable": False,
                             "testable_reason": r["reason"]}
                            for name, r in parts.items() if r.verdict == pooling.NOT_TESTABLE])
    testable = [v for v in verdicts.values() if v != pooling.NOT_TESTABLE]
    return claims.ClaimResult(
        "C2", claims.combine(testable) if testable else pooling.NOT_TESTABLE, head.rule + " " + GATE_RULE,
        " ".join(f"{'Within a task' if n == 'within' else 'Across tasks'}: {r.sentence}" for n, r in parts.items()),
        head.statistic, head.estimate, head.low, head.high, head.resamples, verdicts,
        {name: r.tables["table"] for name, r in parts.items()},
        {"estimate": head.estimate, "low": head.low, "high": head.high,
         "method": "the hardest testable level's paired t interval (one comparison per part, nothing pooled)"},
        pooling.counts(units["verdict"]) if len(units) else pooling.counts([]), units)


def lmc_gates(rows: pd.DataFrame) -> pd.DataFrame:
    """The gate (`floor.level_gates`) on the loss basin's dense solutions, the interpolations' alpha = 0 ends."""
    dense = rows.drop_duplicates(["task", SETTINGS["lmc"].level, "seed"])
    return level_gates("lmc", dense.assign(transfer="dense", accuracy=dense["dense_accuracy"], outcomes=None))


def gates_table(rows_by_chapter: dict) -> pd.DataFrame:
    """Every chapter's learnability gate in one table: per setting (the compression grid per knob, the true
    gem per part), task and level, the dense model's accuracy and interval beside the floor, and whether the level is testable."""
    parts = []
    for chapter, found in rows_by_chapter.items():
        if found is None:
            continue
        if chapter == "true_gem":  # each part by the gate of the setting it is keyed as (C2's)
            for part, (setting, level, _) in C2_PARTS.items():
                rows = getattr(found, part)
                if rows is not None and not rows.empty:
                    parts.append(level_gates(setting, rows).rename(columns={level: "level"})
                                 .assign(setting=f"true_gem ({part})"))
            continue
        if chapter == "compression":
            for knob, part in found.groupby("knob"):
                setting = KNOBS[knob].SETTING.name
                parts.append(level_gates(setting, part).rename(columns={SETTINGS[setting].level: "level"})
                             .assign(setting=f"compression ({knob})"))
            continue
        gates = lmc_gates(found) if chapter == "lmc" else level_gates(chapter, found)
        parts.append(gates.rename(columns={SETTINGS[chapter].level: "level"}).assign(setting=chapter))
    if not parts:
        return pd.DataFrame()
    table = pd.concat(parts, ignore_index=True)
    table["level"] = table["level"].map(lambda v: level_label(plain(v)))
    table["task"] = table["task"].str.split("/").str[-1]
    return table[["setting", "task", "level", "dense", "low", "high", "floor", "chance", "majority", "testable"]]


def not_testable_summary(results: dict[str, claims.ClaimResult]) -> str:
    """What is not testable, claim by claim, in one sentence (the reasons stand in each claim's table)."""
    notes = []
    for name, r in results.items():
        n, units = r.counts.get("not_testable", 0), r.units
        if not n or units is None:
            continue
        left = units[units["verdict"] == pooling.NOT_TESTABLE]
        by = [c for c in ("setting", "task", "contrast") if c in left]
        groups = sorted({", ".join(str(v).split("/")[-1] for v in row) for row in left[by].itertuples(index=False)})
        notes.append(f"{name.upper()}: {n} of {sum(r.counts.values())} not testable ({'; '.join(groups)})")
    return ("Not testable, the dense model not above its floor: " + "; ".join(notes) + ".") if notes else \
        "Every comparison is testable."


C5_CONTRASTS = ("C5 compares models that learned: the loss barrier is read only where the dense model passes the "
                "learnability gate. The primary contrast is the paper's (QQP against STS-B, QNLI against RTE): an "
                "easy task against a hard one at the full data fraction, among the tasks learned there, ordered by "
                "the human-model gap of that dense model (BIG-bench's average raters); the secondary is the data "
                "fraction within each task learned at both fractions. The verdict is the primary contrast's where it "
                "is testable, else the secondary's, else not testable.")


def c5_judged(rows: pd.DataFrame, rater: str = "average") -> claims.ClaimResult:
    """C5 on learned models only (`C5_CONTRASTS`): the loss-basin rows' dense ends gated per task and
    fraction, the primary contrast across tasks and the secondary within them, each by `claims.c5_basin`."""
    spec = SETTINGS["lmc"]
    gates = lmc_gates(rows)
    easiest = spec.order.easiest_first(rows[spec.level].unique())[0]
    at_full = gates[gates[spec.level] == easiest]
    learned = [t for t in at_full.loc[at_full["testable"], "task"] if rater in human_scores(t)]
    contrasts, units = {}, []
    if len(learned) >= 2:
        score = at_full.set_index("task")["dense"]
        gap = {t: round(human_model_gap(human_scores(t)[rater], 100 * score[t]), 2) for t in learned}
        frame = rows[(rows[spec.level] == easiest) & rows["task"].isin(learned)].assign(gap=lambda f: f["task"].map(gap))
        contrasts["primary"] = claims.c5_basin(frame, "gap", float, across_tasks=True)
    reason_primary = (f"{len(learned)} task(s) learned at {spec.level} {level_label(easiest)}; "
                      + "; ".join(f"{r['task'].split('/')[-1]}: {r['reason']}" for _, r in at_full.iterrows()))
    both = [t for t, g in gates.groupby("task") if g["testable"].all()]
    if both:
        contrasts["secondary"] = claims.c5_basin(rows[rows["task"].isin(both)], spec.level, spec.order)
    reason_secondary = "; ".join(f"{r['task'].split('/')[-1]} at {spec.level} {level_label(r[spec.level])}: "
                                 f"{r['reason']}" for _, r in gates.iterrows())
    for name, reason in (("primary", reason_primary), ("secondary", reason_secondary)):
        found = contrasts.get(name)
        units.append({"contrast": name, "easy": found["easy"] if found else None,
                      "hard": found["hard"] if found else None,
                      "estimate": found["diff_mean"] if found else np.nan, "low": found["diff_low"] if found else np.nan,
                      "high": found["diff_high"] if found else np.nan,
                      "verdict": found.verdict if found else pooling.NOT_TESTABLE, "testable": found is not None,
                      "testable_reason": reason})
    units = pd.DataFrame(units)
    decided = next((n for n in ("primary", "secondary") if n in contrasts), None)
    rule = claims.C5_RULE.format(conf=0.95, ci="t", tol=claims.EASY_TOLERANCE) + " " + C5_CONTRASTS + " " + GATE_RULE
    if decided is None:
        return claims.ClaimResult("C5", pooling.NOT_TESTABLE, rule,
                                  "C5 is not testable: no task's dense model passes the gate at both ends of a contrast ("
                                  + reason_secondary + ").", claims.C5_STATISTIC, tables={"gates": gates},
                                  pooled={"estimate": None, "low": None, "high": None, "method": "none"},
                                  counts=pooling.counts(units["verdict"]), units=units)
    result = contrasts[decided]
    sentence = (f"The {decided} contrast ({'an easy task against a hard one, both learned' if decided == 'primary' else 'all the data against 10% within the tasks learned at both'}): "
                f"{result.sentence}" + ("" if decided == "primary" else f" The primary contrast is not testable: {reason_primary}."))
    return claims.ClaimResult(
        "C5", result.verdict, rule, sentence, result.statistic, result.estimate, result.low, result.high,
        result.resamples, {**result.numbers, "contrast": decided},
        {**result.tables, "gates": gates, "contrasts": units},
        {"estimate": result.estimate, "low": result.low, "high": result.high,
         "method": f"the {decided} contrast's paired t interval over seeds and sparsities"},
        pooling.counts(units["verdict"]), units)


def measured_order(setting: str, rows: pd.DataFrame) -> list:
    """The levels ordered by how hard the dense model finds them, easiest first: 1 - its floor-corrected
    accuracy, (acc - floor) / (1 - floor), averaged over tasks and seeds; Setting 5's levels are its tasks'
    human-model gaps."""
    spec = SETTINGS[setting]
    dense = rows[rows["transfer"] == "dense"]
    if spec.across_tasks:
        return [float(g) for g in sorted(dense["gap"].unique())]
    floor = row_floors(setting, dense)["floor"]
    score = (dense["accuracy"] - floor) / (1.0 - floor)
    hardness = (1.0 - score).groupby(dense[spec.level]).mean()
    return [plain(v) for v in hardness.sort_values(kind="stable").index]


def measured_difficulty(setting: str, rows: pd.DataFrame) -> DifficultyOrder:
    """The dense model's difficulty order of a setting's levels (`measured_order`) as an order to judge by."""
    ranked = measured_order(setting, rows)
    return DifficultyOrder(lambda level: ranked.index(plain(level)), "the dense model's own accuracy",
                           " < ".join(map(str, ranked)))


def under_measured_order(rows_by_chapter: dict, c1: claims.ClaimResult) -> pd.DataFrame:
    """Per C1 setting with rows: its verdict under the paper's order and under the dense model's, judged
    again (same rule, same intervals) only where the two orders differ."""
    table = c1.tables.get("table")
    out = []
    for setting, found in orders(rows_by_chapter).items():
        declared = pooling.judge(table[table["setting"] == setting], ["study"], NAME).verdict
        measured = declared
        if not found["agree"]:
            again = c1_comparisons(setting, rows_by_chapter[setting],
                                   order=measured_difficulty(setting, rows_by_chapter[setting]))
            measured = pooling.judge(again, ["study"], NAME).verdict
        out.append({"setting": setting, "orders agree": "yes" if found["agree"] else "no",
                    "verdict (the paper's order)": declared, "verdict (the dense model's order)": measured,
                    "changes": "no" if declared == measured else "yes"})
    return pd.DataFrame(out)


def orders(rows_by_chapter: dict) -> dict[str, dict]:
    """Per C1 setting with rows: its declared order (easiest first, the paper's) and its measured one."""
    out = {}
    for setting in C1_SETTINGS:
        found = rows_by_chapter.get(setting)
        if found is None:
            continue
        spec = SETTINGS[setting]
        levels = found[spec.level].unique()
        declared = [plain(v) for v in spec.order.easiest_first(levels)]
        measured = measured_order(setting, found)
        out[setting] = {"declared_order": declared, "measured_order": measured, "agree": declared == measured,
                        "paper": spec.order.paper}
    return out


UNIT_COLUMNS = ["setting", "knob", "task", "family", "method", "transfer", "control", "match", "part", "comparison",
                "contrast", "easy", "hard", "statistic", "estimate", "low", "high", "verdict", "testable", "testable_reason"]


def claim_json(result: claims.ClaimResult) -> dict:
    """One claim as `python -m jdlib.claims --json` prints it: the verdict, the pooled estimate it reads,
    the counts, and each comparison with whether it is testable and why."""
    def num(v):
        return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)

    units = result.units
    comparisons = [] if units is None else [
        {k: json_value(v) for k, v in row.items()} for row in
        units.reindex(columns=[c for c in UNIT_COLUMNS if c in units]).to_dict(orient="records")]
    for entry in comparisons:
        entry["testable"] = bool(entry.get("testable"))
        entry["reason"] = entry.pop("testable_reason", None)
    pooled = {"estimate": None, "low": None, "high": None, "method": None, **result.pooled}
    counts = {**pooling.counts([]), **result.counts}  # zeros for a claim not run
    return {"verdict": result.verdict, "statistic": result.statistic, "estimate": num(result.estimate),
            "low": num(result.low), "high": num(result.high), "pooled": pooled, "counts": counts,
            "rule": result.rule, "resamples": result.resamples, "comparisons": comparisons}


def summary(results: dict[str, claims.ClaimResult],
            corrected: dict[str, claims.ClaimResult] | None = None) -> pd.DataFrame:
    """A claim-per-row table as a reviewer reads it: the verdict, the pooled estimate with its interval, the
    counts, the chance-corrected verdict, what is not testable and why, and the sentence behind it."""
    return pd.DataFrame([{"claim": name.upper(), "verdict": r.verdict, "estimate [95% interval]": r.pooled_text(),
                          "comparisons": r.counts_text(),
                          **({"floor-corrected": corrected[name].verdict} if corrected else {}),
                          "not testable": not_testable(r.units) if r.counts.get("not_testable") else "",
                          "evidence": r.sentence}
                         for name, r in results.items()])


def provenance(rows_by_chapter: dict) -> pd.DataFrame:
    """Per chapter with rows: how many cells, on which devices, their summed cell time and the commits
    that computed them, read from the rows' provenance."""
    out = []
    for chapter, found in rows_by_chapter.items():
        if found is None:
            continue
        frame = pd.concat([found.within, found.across], ignore_index=True) if hasattr(found, "within") else found
        out.append({"chapter": chapter, "cells": len(frame),
                    "devices": "; ".join(f"{n:,} on {d}" for d, n in frame["device"].value_counts().items()),
                    "cell seconds": round(float(frame["wall_time_s"].sum())),
                    "commits": len({str(c)[:7] for c in frame["git_commit"]})})
    return pd.DataFrame(out, columns=["chapter", "cells", "devices", "cell seconds", "commits"])


def missing_sentence(rows_by_chapter: dict) -> str:
    """Which chapters' grids are not whole in the store (read with `compute=False`), in a sentence."""
    missing = [chapter for chapter, found in rows_by_chapter.items() if found is None]
    return (f"The grids of {', '.join(missing)} are not whole in the store: the claims that need them are judged "
            "without them, or not run." if missing else "Every chapter's grid is whole in the store.")


def provenance_sentence(rows_by_chapter: dict) -> str:
    """`provenance` in one sentence: each chapter's cells, devices and cell time."""
    table = provenance(rows_by_chapter)
    if table.empty:
        return "No chapter's grid is whole in the store."
    return "; ".join(f"{r['chapter']}: {r['cells']:,} cells ({r['devices']}), {r['cell seconds']:,} s of cell time"
                     for r in table.to_dict(orient="records")) + "."


def orders_table(rows_by_chapter: dict) -> pd.DataFrame:
    """The settings' declared (the paper's) and measured difficulty orders, easiest first."""
    return pd.DataFrame([{"setting": name, "the paper's order": " < ".join(map(str, o["declared_order"])),
                          "the dense model's": " < ".join(map(str, o["measured_order"])),
                          "agree": "yes" if o["agree"] else "no"} for name, o in orders(rows_by_chapter).items()])
