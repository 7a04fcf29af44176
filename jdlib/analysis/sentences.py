"""Numbers and sentences for the book, computed from a setting's statistics (never typed by hand).

A sentence never prints "nan": where a number does not exist, it says why instead.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import MIN_LEVELS

FULL_SCALE = "Verdict at full scale"  # how every chapter's full-scale verdict sentence begins
VERDICTS = ("holds", "fails", "inconclusive", "not testable")  # the order a sentence counts them in


def plain(value):
    """A numpy scalar as the Python value it holds (what JSON and labels want); anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def json_value(value):
    """`plain(value)`, and None for a float that is not finite (JSON has no nan)."""
    value = plain(value)
    return None if isinstance(value, float) and not np.isfinite(value) else value


def level_label(value) -> str:
    """A difficulty level as text: numbers compactly (0.25, 100), names as they are (factoid)."""
    return f"{value:g}" if isinstance(value, (int, float, np.number)) else str(value)


def _mean(values: pd.Series) -> float | None:
    """The mean of the finite values, or None where there is none."""
    finite = pd.to_numeric(values, errors="coerce").dropna()
    return float(finite.mean()) if len(finite) else None


def setting_findings(prefix: str, norm: pd.DataFrame, table: pd.DataFrame, trend: pd.DataFrame,
                     level: str, difficulty, statistic: str = "95% bootstrap CI over seeds",
                     names: dict | None = None) -> dict[str, object]:
    """Glue-ready values: the verdict counts (`statistic` says what the verdicts in `trend` rest on),
    the easiest and hardest levels, and `<prefix>_summary`, a sentence with how the drop grows with
    sparsity and with difficulty. `names` gives a level's name where the levels are tasks."""
    levels = norm[level].unique()
    hardest, easiest = max(levels, key=difficulty), min(levels, key=difficulty)
    verdicts = trend["verdict"].value_counts().to_dict()
    combos = len(trend)
    sentence = (f"Across {combos} task/pattern combination{'s' if combos != 1 else ''}, the claim that the drop "
                f"steepens with difficulty holds in {verdicts.get('holds', 0)}, fails in {verdicts.get('fails', 0)} "
                f"and is inconclusive in {verdicts.get('inconclusive', 0)} ({statistic}).")

    def called(value) -> str:
        return f"{level} {level_label(value)}" + (f", {names[value]}" if names and value in names else "")

    return {
        f"{prefix}_cells": int(len(norm)),
        f"{prefix}_top_sparsity": float(norm["sparsity"].max()),
        f"{prefix}_hardest": level_label(hardest),
        f"{prefix}_easiest": level_label(easiest),
        f"{prefix}_verdicts": sentence,
        f"{prefix}_summary": " ".join([
            _sparsity_sentence(table), _difficulty_sentence(trend, len(levels)),
            _drop_sentence(norm, level, called(hardest), hardest, called(easiest), easiest)]),
    }


def _sparsity_sentence(table: pd.DataFrame) -> str:
    """How the drop follows sparsity within a level (the per-level Spearman of `stats.trend_table`)."""
    mean = _mean(table["spearman"]) if len(table) else None
    if mean is None:
        return ("Spearman's correlation between the drop and sparsity within a level is undefined on every curve: "
                "along each, the sparsity or the drop takes a single value." if len(table) else
                "No curve has compressed cells, so there is no correlation between the drop and sparsity.")
    curves = int(table["spearman"].notna().sum())
    return (f"Within a level, Spearman's correlation between the drop and sparsity averages {mean:.2f} over "
            f"{curves} curve{'s' if curves != 1 else ''}.")


def _difficulty_sentence(trend: pd.DataFrame, levels: int) -> str:
    """The paper's statistic, the rank correlation between difficulty and slope, or why it is missing."""
    mean = _mean(trend["rho"]) if "rho" in trend and len(trend) else None
    if mean is not None:
        n = int(trend["rho"].notna().sum())
        return (f"The rank correlation between difficulty and slope (the paper's statistic) averages {mean:.2f} over "
                f"{n} comparison{'s' if n != 1 else ''}.")
    if levels < MIN_LEVELS:
        return (f"There is no rank correlation between difficulty and slope (the paper's statistic) here: this run "
                f"has {levels} difficulty level{'s' if levels != 1 else ''}, and over fewer than {MIN_LEVELS} a "
                "rank correlation is always +1 or -1, so the verdicts read the hardest-minus-easiest gap instead.")
    return ("The rank correlation between difficulty and slope (the paper's statistic) is undefined in every "
            "comparison: the level slopes are tied, or a level has no slope.")


def _drop_sentence(norm: pd.DataFrame, level: str, hard_name: str, hardest, easy_name: str, easiest) -> str:
    """The mean normalised drop at the highest sparsity, hardest level against easiest."""
    top = norm[norm["sparsity"] == norm["sparsity"].max()]
    hard, easy = (_mean(top[top[level] == v]["drop"]) for v in (hardest, easiest))
    where = f"At the highest sparsity tested ({norm['sparsity'].max():g}), the mean normalised drop is"
    if hard is None or easy is None:
        missing = " and ".join(n for n, d in ((hard_name, hard), (easy_name, easy)) if d is None)
        return f"{where} not there for {missing}: no cell of that level reached this sparsity."
    return f"{where} {hard:.3f} at the hardest level ({hard_name}) against {easy:.3f} at the easiest ({easy_name})."


def gap_findings(prefix: str, gap: pd.DataFrame) -> dict[str, object]:
    """`<prefix>_gap_verdicts`: a sentence on the hardest-minus-easiest slope comparisons (columns gap,
    verdict), their counts and mean."""
    verdicts = gap["verdict"].value_counts().to_dict()
    combos = len(gap)
    mean = _mean(gap["gap"]) if combos else None
    sentence = (f"Comparing the hardest level with the easiest in {combos} task/pattern combination"
                f"{'s' if combos != 1 else ''}, the drop is steeper at the hardest level (95% interval "
                f"above zero) in {verdicts.get('holds', 0)}, shallower in {verdicts.get('fails', 0)} and "
                f"indistinguishable in {verdicts.get('inconclusive', 0)}; ")
    sentence += (f"the slope at the hardest level minus that at the easiest averages {mean:+.3f}." if mean is not None
                 else "no comparison has a slope at both levels, so there is no mean difference.")
    return {f"{prefix}_gap_verdicts": sentence}


def basin_sentence(c5) -> str:
    """C5's result (`claims.c5_basin`) in words, saying what the sign of the paired difference means:
    hard minus easy above zero is a barrier that rises with difficulty, below zero one that falls."""
    level, easy, hard = c5["level"], c5["easy"], c5["hard"]
    if c5["pairs"] == 0:
        return c5["sentence"]

    def named(value) -> str:
        return str(value) if isinstance(value, str) else f"{level} {value:g}"

    def interval(low: float, high: float, spec: str) -> str:
        return ("no interval: fewer than two pairs, or pairs that do not vary" if np.isnan(low) or np.isnan(high)
                else f"95% interval {low:{spec}} to {high:{spec}}")

    diff, low, high = c5["diff_mean"], c5["diff_low"], c5["diff_high"]
    meaning = {"holds": "the interval lies above zero: the barrier rises, as C5 predicts",
               "fails": "the interval lies below zero: the barrier falls, against C5",
               "inconclusive": "the interval includes zero, so neither is established",
               }.get(c5["rising_verdict"], f"that part is {c5['rising_verdict']}")
    easy_part = {"holds": "below it, near zero as C5 predicts", "fails": "above it, not near zero, against C5",
                 "inconclusive": "neither clearly below nor clearly above it"}.get(c5["easy_verdict"], c5["easy_verdict"])
    tolerance = ("The rows carry no dense loss, so the easy barrier has no tolerance to be judged against."
                 if np.isnan(c5["easy_tolerance"]) else
                 f"The easy barrier, against the rule's tolerance of {c5['easy_tolerance']:.4f} (scaled to the dense "
                 f"solution's validation loss), is {easy_part}.")
    return (f"The loss barrier between the dense and the sparse fine-tuned solutions is {c5['easy_mean']:.4f} "
            f"({interval(c5['easy_low'], c5['easy_high'], '.4f')}) on the easy level ({named(easy)}) and "
            f"{c5['hard_mean']:.4f} ({interval(c5['hard_low'], c5['hard_high'], '.4f')}) on the hard one "
            f"({named(hard)}). Hard minus easy, paired over {c5['pairs']} seed/sparsity pairs, is {diff:+.4f} "
            f"({interval(low, high, '+.4f')}): a positive difference would mean the barrier rises with difficulty, "
            f"a negative one that it falls; here {meaning}. {tolerance} Verdict on C5: {c5['verdict']}.")


def full_scale_verdict(claim: str, verdicts) -> str:
    """The sentence that ends a chapter's full-scale section: `claim`'s verdict (a string), or the
    counts of its comparisons' verdicts (a Series of them)."""
    if isinstance(verdicts, str):
        return f"{FULL_SCALE} ({claim}): {verdicts}."
    counts = pd.Series(verdicts).value_counts()
    order = [v for v in VERDICTS if v in counts.index] + [v for v in counts.index if v not in VERDICTS]
    parts = [f"{verdict} in {int(counts[verdict])}" for verdict in order]
    return f"{FULL_SCALE} ({claim}, {len(verdicts)} comparisons): " + ", ".join(parts) + "."


def fine_tuning_scale(config, gates: pd.DataFrame) -> str:
    """What this build's fine-tuning grid is, from its config: the recipe's length and data, and at how many
    levels the dense model passed the learnability gate (`gates`: floor.level_gates of its rows)."""
    budget = (f"{config.steps} optimizer update{'s' if config.steps != 1 else ''} a model" if config.steps
              else f"{config.epochs} epoch{'s' if config.epochs != 1 else ''}")
    data = (f"at most {config.max_train} training examples a task" if config.max_train
            else "each task's whole training split")
    questions = f"{config.max_eval} questions" if config.max_eval else "the whole evaluation split"
    seeds = len(config.seeds)
    sentence = (f"This build's models ({seeds} seed{'s' if seeds != 1 else ''} a cell) were fine-tuned for {budget} at "
                f"batch {config.batch_size} on {data} and evaluated on {questions}.")
    if not len(gates):
        return sentence
    passed = int(gates["testable"].sum())
    return sentence + (f" The dense model passed the learnability gate (its 95% interval wholly above the floor + "
                       f"the margin) at {passed} of {len(gates)} levels"
                       + (": every level tests the claim." if passed == len(gates) else
                          "; a level below it tests nothing, so this build's verdicts say little about the claim "
                          "and the full grid's (the last section) decide."))
