"""Claim S1, "specific to small weights": is C1's trend a property of removing the small weights, or of
any damage to the model?

C1 finds that magnitude pruning costs harder levels more. If random pruning, quantization or low
rank cost harder levels just as much when they damage the model as much overall, the trend says
nothing about the small weights. Per setting (and compression knob), task and transfer mode, C1's
statistic under magnitude pruning is set against the same statistic under each control:

- at matched sparsity (pruning controls only: random pruning at magnitude's sparsities);
- at matched overall damage: for each magnitude sparsity, the control is read at the strength whose
  mean normalised drop (over levels and seeds) equals magnitude pruning's there. The control's drop at
  each level and seed is interpolated linearly against its mean drop, between the two measured
  strengths that bracket the target on the running maximum of its mean drop (the first strength to
  reach it and the one before; the dense model is strength 0, drop 0), so no parametrisation of its
  strength (sparsity, bits, rank) enters. The control, so read, becomes a curve on magnitude's
  sparsity axis with magnitude's mean drop at every point, and C1's statistic on it says how the same
  overall damage falls on easy and hard levels. Magnitude sparsities whose mean drop (point estimate)
  exceeds the control's largest are left out of both curves; in a resample a target beyond the
  control's range is clamped to it.

The difference (magnitude minus control) and its interval come from one resampling of the joint
grid (the dense model, magnitude and the control share seeds and questions): C1's interval method
(`intervals.METHOD`, seeds and per-question outcomes; seed-only t without outcomes), C1's gate
and C1's pooled rule. The rule (`S1_RULE`) was written before any control's rows were read.
"""
from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from ..compress import LOW_RANK_METHODS, METHODS, QUANT_METHODS
from ..settings import SETTINGS, load
from ..settings.compression import KNOBS, RATIO, CompressionConfig
from . import claims, intervals, pooling
from .claims import not_run
from .floor import gate_reason, level_gates, row_floors
from .intervals import outcome_grid
from .rows import chapter_results, config_rows
from .stats import MIN_LEVELS

REFERENCE = "magnitude"  # pruning of the small weights, the hypothesis's compressor
DECIDING = "random"  # the control whose comparison decides S1: the same count of weights, chosen blind to size
BESIDE = (*QUANT_METHODS, *LOW_RANK_METHODS)  # judged alike and reported beside: damage to every weight
JUDGED = (DECIDING, *BESIDE)
MATCHES = ("damage", "sparsity")
STRENGTH = "strength"
NAME = ["setting", "task", "control", "match"]  # how a comparison is named
NOT_IN_GRID = "not run"

S1_RULE = (
    "S1 asks whether C1's trend is specific to the small weights. Per setting (the compression grid per knob), "
    "task and transfer mode, C1's statistic (the Theil-Sen trend of the level slopes against the difficulty "
    "rank; the hardest-minus-easiest gap with two levels), on the levels that pass C1's learnability gate, is "
    "computed under magnitude pruning and under each control, and the comparison is magnitude's minus the "
    "control's: at matched overall damage (the control read, by linear interpolation against its mean drop "
    "between the measured strengths that bracket it, where its mean drop over levels and seeds equals magnitude "
    "pruning's at each sparsity; magnitude sparsities beyond the control's largest mean drop left out) and, for "
    "random pruning, at matched sparsity. Its 95% interval is C1's (seeds and per-question outcomes, one "
    "resampling of the joint grid), and a comparison holds when the interval lies above 0, fails when below, and "
    "is inconclusive otherwise. The comparisons of each control are pooled by C1's rule (DerSimonian-Laird, "
    "Hartung-Knapp; one study per setting and task). S1's verdict is random pruning's pooled comparison at "
    "matched damage: it holds when magnitude pruning's trend exceeds random pruning's (interval wholly above 0), "
    "fails when it is below (wholly below 0), is inconclusive otherwise, and is not testable without random "
    "pruning's rows. Round-to-nearest, GPTQ and SVD are judged alike and reported beside, not deciding: they "
    "damage every weight, so they tell whether a trend is a property of any damage; random pruning removes the "
    "same number of weights chosen blind to their size, which is what the hypothesis is about.")
S1_STATISTIC = ("C1's trend under magnitude pruning minus under random pruning at matched overall damage, pooled over "
                "settings, knobs and tasks")


def strength(rows: pd.DataFrame) -> pd.Series:
    """Each row's compression strength on its own method's axis: sparsity for pruning (and the dense model,
    0); for quantization and low rank the rank of its compression ratio, 1 the weakest (only the order counts:
    matched damage reads a control against its mean drop, and SVD's weakest ratio is below 1)."""
    pruning = ~rows["method"].isin(BESIDE)
    ranked = rows[~pruning].groupby("method")[RATIO].rank(method="dense") if (~pruning).any() else None
    return rows["sparsity"].astype(float).where(pruning, ranked)


def at_matched_damage(drop: np.ndarray, target: np.ndarray) -> np.ndarray:
    """A control's drop[..., seed, level, k] (k by rising strength, the dense model first) read at each target
    mean drop target[..., n]: interpolated linearly against its mean drop over seeds and levels, between the
    first strength whose running maximum reaches the target and the one before; targets clamped to its range."""
    mean = np.nanmean(drop, axis=(-3, -2))  # [..., k]
    envelope = np.maximum.accumulate(mean, axis=-1)
    target = np.clip(target, 0.0, envelope[..., -1:])
    high = (envelope[..., None, :] < target[..., :, None]).sum(axis=-1)  # [..., n]
    low = np.maximum(high - 1, 0)
    at_low, at_high = np.take_along_axis(mean, low, -1), np.take_along_axis(mean, high, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(at_high > at_low, (target - at_low) / (at_high - at_low), 0.0)
    shape = drop.shape[:-1] + low.shape[-1:]
    below = np.take_along_axis(drop, np.broadcast_to(low[..., None, None, :], shape), -1)
    above = np.take_along_axis(drop, np.broadcast_to(high[..., None, None, :], shape), -1)
    return below + weight[..., None, None, :] * (above - below)


def curve(acc: np.ndarray, conditions: pd.DataFrame, method: str,
          chance_corrected: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One method's drop[..., seed, level, k] (the dense model at k = 0) and its strengths xs[k], from a joint grid."""
    at = np.flatnonzero(conditions["method"].isin(["none", method]).to_numpy())
    return intervals.drops(acc[..., at], conditions.iloc[at], chance_corrected)


def specificity_statistics(acc: np.ndarray, conditions: pd.DataFrame, control: str, primary: str,
                           matched: np.ndarray | None, same_sparsity: tuple | None,
                           chance_corrected: bool = False) -> dict[str, np.ndarray]:
    """C1's `primary` statistic under magnitude pruning and under `control`, and magnitude's minus the
    control's: at matched damage over magnitude's strengths `matched` (a mask, the dense model first), and
    at matched sparsity over `same_sparsity` (masks over magnitude's and the control's strengths)."""
    def statistic(drop, xs):
        return intervals.across_levels(intervals.theil_sen(drop, xs))[primary]

    (reference, xs), (other, _) = curve(acc, conditions, REFERENCE, chance_corrected), \
        curve(acc, conditions, control, chance_corrected)
    out = {}
    if matched is not None:
        target = np.nanmean(reference[..., matched], axis=(-3, -2))
        out["damage_reference"] = statistic(reference[..., matched], xs[matched])
        out["damage_control"] = statistic(at_matched_damage(other, target), xs[matched])
        out["damage"] = out["damage_reference"] - out["damage_control"]
    if same_sparsity is not None:
        mine, theirs = same_sparsity
        out["sparsity_reference"] = statistic(reference[..., mine], xs[mine])
        out["sparsity_control"] = statistic(other[..., theirs], xs[mine])
        out["sparsity"] = out["sparsity_reference"] - out["sparsity_control"]
    return out


def not_testable(match: str, reason: str) -> dict:
    """A comparison with no statistic: the verdict `not testable` and why."""
    return {"match": match, "estimate": np.nan, "low": np.nan, "high": np.nan, "se": np.nan, "df": np.nan,
            "verdict": pooling.NOT_TESTABLE, "testable": False, "testable_reason": reason}


def compare(setting: str, rows: pd.DataFrame, control: str, gates: pd.DataFrame,
            correct_chance: bool = False) -> list[dict]:
    """Magnitude pruning against `control` on one task and transfer mode's rows (the dense model, magnitude's
    unstructured curve, the control's): a comparison per match (damage; sparsity for a pruning control)."""

    spec = SETTINGS[setting]
    matches = MATCHES if METHODS[control].family == "pruning" else MATCHES[:1]
    passing = set(zip(gates.loc[gates["testable"], "task"], gates.loc[gates["testable"], spec.level]))
    primary = "trend" if gates[spec.level].nunique() >= MIN_LEVELS else "gap"
    testable, reason = gate_reason(spec, gates, primary, MIN_LEVELS if primary == "trend" else 2)
    if not testable:
        return [not_testable(m, reason) for m in matches]
    rows = rows[[(t, v) in passing for t, v in zip(rows["task"], rows[spec.level])]]
    rows = rows.assign(**{STRENGTH: strength(rows)})
    if correct_chance:
        rows = rows.assign(chance=row_floors(setting, rows)["floor"])
    grid, method = outcome_grid(rows, spec, by=["method"], x=STRENGTH, chance="chance" if correct_chance else None)
    # which sparsities have a damage to match, and which the two curves share: fixed on the point estimate
    (reference, xs), (other, strengths) = (curve(grid.accuracy(), grid.conditions, m, correct_chance)
                                           for m in (REFERENCE, control))
    damage, reach = np.nanmean(reference, axis=(0, 1)), np.nanmax(np.nanmean(other, axis=(0, 1)))
    matched = np.concatenate([[True], damage[1:] <= max(0.0, reach)])
    same = (np.isin(xs, strengths), np.isin(strengths, xs)) if "sparsity" in matches else None
    out = []
    if matched.sum() < 2:
        out.append(not_testable("damage", f"magnitude pruning's mean drop at its smallest sparsity ({damage[1]:.3f}) "
                                          f"exceeds {control}'s largest ({reach:.3f}): no damage to match"))
    if same is not None and same[0].sum() < 2:
        out.append(not_testable("sparsity", f"{control} shares no sparsity with magnitude pruning"))
    judged = [m for m in matches if m not in {u["match"] for u in out}]
    if not judged:
        return out
    statistic = partial(specificity_statistics, control=control, primary=primary,
                        matched=matched if "damage" in judged else None,
                        same_sparsity=same if "sparsity" in judged else None, chance_corrected=correct_chance)
    found = intervals.intervals(grid, statistic, method=method)
    for match in judged:
        difference, mask = found[match], matched if match == "damage" else same[0]
        out.append({"match": match, "statistic": primary, "estimate": difference.estimate, "low": difference.low,
                    "high": difference.high, "se": difference.se, "df": difference.df,
                    "verdict": intervals.verdict(difference), "testable": True, "testable_reason": reason,
                    "reference_trend": found[f"{match}_reference"].estimate,
                    "control_trend": found[f"{match}_control"].estimate,
                    "control_se": found[f"{match}_control"].se, "control_df": found[f"{match}_control"].df,
                    "control_verdict": intervals.verdict(found[f"{match}_control"]),
                    "sparsities": ", ".join(f"{x:g}" for x in xs[mask][1:]),
                    "interval": method if method != "seed_t" else "seed_t (no per-question outcomes)"})
    return out


def comparisons(setting: str, rows: pd.DataFrame, source: str, expected: tuple = (),
                correct_chance: bool = False) -> pd.DataFrame:
    """Every S1 comparison in one setting's rows (`source` names it: the setting, or the compression grid's
    knob): per task, transfer mode and control present with magnitude pruning; a control in `expected`
    without rows is a comparison `not testable`, its reason that it was not run."""
    gates = level_gates(setting, rows)
    dense = rows[rows["transfer"] == "dense"]
    out = []
    for (task, transfer), curves in rows[rows["transfer"] != "dense"].groupby(["task", "transfer"], sort=True):
        curves = curves[curves["pattern"] == "unstructured"]  # the quantizers' and SVD's cells say so too
        if REFERENCE not in set(curves["method"]):
            continue
        present = [c for c in JUDGED if c in set(curves["method"])]
        for control in dict.fromkeys([*present, *expected]):
            name = {"setting": source, "task": task, "transfer": transfer, "control": control,
                    "study": f"{source}/{task}/{transfer}"}
            if control not in present:
                out += [{**name, **not_testable(m, f"{control} pruning {NOT_IN_GRID}: no rows in the store")}
                        for m in MATCHES]
                continue
            pair = pd.concat([dense[dense["task"] == task],
                              curves[curves["method"].isin([REFERENCE, control])]], ignore_index=True)
            out += [{**name, **found} for found in
                    compare(setting, pair, control, gates[gates["task"] == task], correct_chance)]
    return pd.DataFrame(out)


def s1_units(rows_by_chapter: dict, controls: pd.DataFrame | None, correct_chance: bool = False) -> pd.DataFrame:
    """S1's comparisons from every source: the compression grid per knob (its rows and the controls' grid,
    `controls`; random pruning a comparison `not testable` where it has no rows) and each C1 setting whose
    rows prune at random."""
    parts = []
    compressed = rows_by_chapter.get("compression")
    if compressed is not None:
        joined = compressed if controls is None else pd.concat(
            [compressed, controls[controls["transfer"] != "dense"]], ignore_index=True)
        for knob, part in joined.groupby("knob"):
            parts.append(comparisons(KNOBS[knob].SETTING.name, part, f"compression ({knob})", (DECIDING,),
                                     correct_chance))
    for name, found in rows_by_chapter.items():
        spec = SETTINGS.get(name)
        if spec is None or not spec.in_c1 or spec.across_tasks or found is None or DECIDING not in set(found["method"]):
            continue
        parts.append(comparisons(name, found, name, correct_chance=correct_chance))
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def control_rows(config: CompressionConfig, compute: bool = True) -> pd.DataFrame | None:
    """The rows of a compression config's controls grid (`CompressionConfig.controls_grid`): None where it
    declares no controls or, with `compute=False`, where the grid is not whole in the store."""
    grid = config.controls_grid()
    return None if grid is None else config_rows(grid, compute)


def by_control(units: pd.DataFrame) -> dict[tuple[str, str], tuple[pooling.Judged, pooling.Judged]]:
    """Per control and match: the pooled difference (magnitude minus control) and the pooled trend of the
    control itself (does it also lose more on harder levels?), by C1's pooled rule."""
    out = {}
    for (control, match), g in units.groupby(["control", "match"], sort=False):
        own = g.assign(estimate=g.get("control_trend", np.nan), se=g.get("control_se", np.nan),
                       df=g.get("control_df", np.nan))
        out[control, match] = (pooling.judge(g, ["study"], NAME), pooling.judge(own, ["study"], NAME))
    return out


def control_table(judged: dict) -> pd.DataFrame:
    """`by_control` as a table: per control and match, the pooled difference and the control's own trend."""
    rows = [{"control": c, "match": m, "verdict": d.verdict, "estimate": d.pooled.estimate,
             "low": d.pooled.low, "high": d.pooled.high, **d.counts,
             "the control's own trend": claims.interval_words(own.pooled.estimate, own.pooled.low, own.pooled.high),
             "its verdict": own.verdict}
            for (c, m), (d, own) in judged.items()]
    # with no comparison (S1 not run) the same columns, empty, so the chapters' tables show "none"
    return pd.DataFrame(rows, columns=None if rows else ["control", "match", "verdict", "estimate", "low", "high",
                                                         "the control's own trend", "its verdict"])


def control_words(control: str, match: str, judged: dict) -> str:
    """One control's pooled comparison in words: the difference, and what the control's own trend does."""
    if (control, match) not in judged:
        return f"{control} not compared"
    difference, own = judged[control, match]
    if difference.verdict == pooling.NOT_TESTABLE:
        return f"{control} not testable ({difference.counts['not_testable']} comparison(s) without rows or levels)"
    itself = {"holds": "it also loses more on harder levels", "fails": "it loses less on harder levels",
              "inconclusive": "its own trend is not distinguishable from 0"}.get(own.verdict, "its own trend has no interval")
    return (f"{control}: magnitude minus {control} {claims.interval_words(difference.pooled.estimate, difference.pooled.low, difference.pooled.high)} "
            f"({difference.verdict}); {control}'s own trend "
            f"{claims.interval_words(own.pooled.estimate, own.pooled.low, own.pooled.high)}: {itself}")


def controls_finding(judged: dict, units: pd.DataFrame) -> str:
    """What the controls show, in words, whatever they show: random pruning against magnitude pruning at matched
    damage (or why it cannot be said), then whether the quantizers and SVD also lose more on harder levels."""
    deciding = judged.get((DECIDING, "damage"))
    if deciding is None or deciding[0].verdict == pooling.NOT_TESTABLE:
        reasons = units.loc[units["control"] == DECIDING, "testable_reason"] if len(units) else pd.Series([], dtype=str)
        head = (f"Random pruning, the control that decides S1, has no comparison here "
                f"({reasons.iloc[0] if len(reasons) else 'not in any grid'}), so whether the trend is specific to "
                "the small weights is not yet known.")
    else:
        difference = deciding[0]
        head = {"holds": "At the same overall damage, magnitude pruning costs the harder levels more than random "
                         "pruning does: the extra cost to hard levels is specific to removing the small weights",
                "fails": "At the same overall damage, random pruning costs the harder levels more than magnitude "
                         "pruning does: the trend is not specific to the small weights",
                }.get(difference.verdict, "At the same overall damage, the trends of magnitude and random pruning "
                                          "cannot be told apart") + \
            f" (magnitude minus random {claims.interval_words(difference.pooled.estimate, difference.pooled.low, difference.pooled.high)})."
    beside = units[units["control"].isin(BESIDE) & units["testable"].astype(bool)] if len(units) else units
    if not len(beside):
        return head + " No quantizer or SVD comparison is testable here."
    own = beside["control_verdict"].value_counts()
    exceeds = beside["verdict"].value_counts()
    return (head + f" Beside it, of {len(beside)} comparison{'s' if len(beside) != 1 else ''} with round-to-nearest, "
            "GPTQ and SVD: their own trend "
            f"rises with difficulty (interval above 0) in {own.get('holds', 0)}, falls in {own.get('fails', 0)} "
            f"and is undecided in {len(beside) - own.get('holds', 0) - own.get('fails', 0)} (they "
            + ("too lose more on harder levels" if own.get("holds", 0) else "do not show that they lose more on "
               "harder levels")
            + f"); magnitude pruning's trend exceeds theirs at matched damage in {exceeds.get('holds', 0)}, falls "
            f"below in {exceeds.get('fails', 0)} and cannot be told apart in {exceeds.get('inconclusive', 0)}.")


def s1_specific(units: pd.DataFrame) -> claims.ClaimResult:
    """S1 from its comparisons (`s1_units`) by `S1_RULE`: random pruning's pooled comparison at matched damage
    decides; every control's, at each match, stands beside with the control's own trend."""
    judged = by_control(units)
    deciding = judged[DECIDING, "damage"][0] if (DECIDING, "damage") in judged else \
        pooling.judge(units.iloc[:0], ["study"], NAME)
    verdict = deciding.verdict
    controls = [c for c in JUDGED if (c, "damage") in judged]
    had = [c for c in controls if judged[c, "damage"][0].verdict != pooling.NOT_TESTABLE]
    words = "; ".join(control_words(c, "damage", judged) for c in controls) or "no control has rows"
    sentence = (f"At matched overall damage, C1's trend under magnitude pruning minus under each control, pooled "
                f"(95% interval): {words}. At matched sparsity: {control_words(DECIDING, 'sparsity', judged)}. "
                f"The controls compared: {', '.join(had) or 'none'}; {DECIDING} pruning, which decides S1, is "
                f"{'among them' if DECIDING in had else 'not among them'}. Verdict on S1: {verdict}.")
    headline = pooling.Judged(deciding.pooled, pooling.counts(units["verdict"]), deciding.failing)
    return claims.ClaimResult.from_parts("S1", {
        "verdict": verdict, "rule": S1_RULE, "sentence": sentence, "finding": controls_finding(judged, units),
        "table": units, "by_control": control_table(judged), "controls": ", ".join(had) or "none",
        "comparisons": int(len(units))}, S1_STATISTIC, resamples="comparisons", judged=headline, units=units)


def s1_claim(rows_by_chapter: dict, controls: pd.DataFrame | None, correct_chance: bool = False) -> claims.ClaimResult:
    """S1 from the chapters' rows and the controls' grid (`control_rows`), or "not run" with nothing to compare."""
    units = s1_units(rows_by_chapter, controls, correct_chance)
    if len(units):
        return s1_specific(units)
    missing = not_run("S1", "compression or random-pruning")
    missing.numbers["finding"] = missing.sentence  # what the chapters glue as what the controls show
    missing.tables["by_control"] = control_table({})
    return missing


def stored(params: str = "full", store: str | None = None) -> claims.ClaimResult:
    """S1 from a params' store alone, computing nothing: its compression grid and its controls' grid where whole."""
    return s1_claim({"compression": chapter_results("compression", params, store, compute=False)},
                    control_rows(load("compression", params, store=store), compute=False))
