"""Verdicts on the paper's claims, computed from the results with confidence intervals.

Each `cN_...` function takes the rows of a sweep and returns a dict: the verdict ("holds",
"fails" or "inconclusive"), the numbers behind it, a table, the rule used and a sentence for
the book. Nothing here hard-codes an outcome; `glue_values` flattens a result for myst-nb glue.

The intervals are over the paired units of the comparison (seeds, and sparsities where the
claim pools them): a Student t interval of the mean paired difference by default, or a
percentile bootstrap over the pairs (`ci="bootstrap"`). A verdict "holds" when the whole
interval lies on the side the claim predicts, "fails" when it lies wholly on the other side,
and is "inconclusive" otherwise (or with fewer than two pairs).

Caveat: the pairs of one seed share that seed's dense run and data order, so they are not
independent, and with two or three seeds an interval over seeds x sparsities is narrower than
one over seeds alone would be. Read a verdict from few seeds as provisional.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..compress import METHODS, PRUNE_METHODS
from .stats import verdict

CI_METHODS = ("t", "bootstrap")
MODES = ("dense_freeze", "sparse", "sparse_to_dense")


def mean_ci(values, ci: str = "t", confidence: float = 0.95, n_boot: int = 2000,
            seed: int = 0) -> tuple[float, float, float]:
    """Mean of `values` and its confidence interval (t, or percentile bootstrap); NaN bounds below 2
    values, or when all values are equal (repeats of one deterministic run have no spread to
    estimate, not a certain mean)."""
    if ci not in CI_METHODS:
        raise ValueError(f"ci={ci!r} is not valid: use one of {', '.join(CI_METHODS)}")
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return np.nan, np.nan, np.nan
    mean = float(x.mean())
    if len(x) < 2 or np.ptp(x) == 0:
        return mean, np.nan, np.nan
    if ci == "t":
        half = float(sps.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
        return mean, mean - half, mean + half
    rng = np.random.default_rng(seed)
    boot = rng.choice(x, size=(n_boot, len(x)), replace=True).mean(axis=1)
    low, high = np.percentile(boot, [50 * (1 - confidence), 50 * (1 + confidence)])
    return mean, float(low), float(high)


def ci_text(low: float, high: float, spec: str, confidence: float | None = None) -> str:
    """"95% CI low to high" (without the prefix when `confidence` is None), or why there is no interval."""
    if np.isnan(low) or np.isnan(high):
        return "no interval: fewer than two values, or values that do not vary"
    return (f"{confidence:.0%} CI " if confidence is not None else "") + f"{low:{spec}} to {high:{spec}}"


def _hardest(values, difficulty):
    values = list(pd.unique(values))
    return max(values, key=difficulty) if values else np.nan


# --- C2: irreversibility ---------------------------------------------------------------

C2_RULE = ("C2 is judged on the hardest difficulty level, from paired differences over seeds and "
           "sparsities (and tasks, methods and patterns at that level): (a) dense - sparse-to-dense "
           "accuracy > 0, (b) sparse-to-dense - sparse accuracy > 0, and (c) dense transfer with the small "
           "weights frozen costs little, read as: its normalised drop is below {share:g} x the normalised "
           "drop of sparse transfer, i.e. {share:g} x drop(sparse) - drop(dense_freeze) > 0. Each part holds "
           "when its {conf:.0%} {ci} interval is above 0 and fails when it is below; C2 holds when all "
           "three hold, fails when any fails, and is inconclusive otherwise.")


def c2_pairs(frame: pd.DataFrame, level: str, metric: str = "accuracy") -> pd.DataFrame:
    """One row per (task, level, seed, method, pattern, sparsity): the dense accuracy and, per transfer
    mode, its accuracy (`<mode>`) and normalised drop (`drop_<mode>` = (dense - mode) / dense)."""
    on = ["task", level, "seed"]
    if frame.empty:
        return pd.DataFrame(columns=on + ["method", "pattern", "sparsity", "dense"])
    dense = frame[frame["transfer"] == "dense"][on + [metric]].rename(columns={metric: "dense"})
    compressed = frame[frame["transfer"] != "dense"]
    wide = compressed.pivot_table(index=on + ["method", "pattern", "sparsity"], columns="transfer",
                                  values=metric, aggfunc="mean").reset_index()
    wide.columns.name = None
    pairs = wide.merge(dense, on=on, how="inner")
    for mode in MODES:
        if mode in pairs:
            pairs["drop_" + mode] = (pairs["dense"] - pairs[mode]) / pairs["dense"]
    return pairs


def _c2_differences(pairs: pd.DataFrame, freeze_share: float) -> dict[str, pd.Series]:
    def have(*cols):
        return all(c in pairs for c in cols)

    empty = pd.Series(dtype=float)
    return {
        "dense > sparse_to_dense": pairs["dense"] - pairs["sparse_to_dense"] if have("sparse_to_dense") else empty,
        "sparse_to_dense > sparse": (pairs["sparse_to_dense"] - pairs["sparse"]
                                     if have("sparse_to_dense", "sparse") else empty),
        "dense_freeze costs little": (freeze_share * pairs["drop_sparse"] - pairs["drop_dense_freeze"]
                                      if have("drop_sparse", "drop_dense_freeze") else empty),
    }


def c2_table(frame: pd.DataFrame, level: str, difficulty, freeze_share: float = 0.5, ci: str = "t",
             confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """The three C2 comparisons at every difficulty level: mean paired difference, its CI, pairs, verdict.

    Also the mean normalised drops of dense_freeze and sparse transfer at that level.
    """
    pairs = c2_pairs(frame, level)
    rows = []
    for value in sorted(pairs[level].unique(), key=difficulty):
        at = pairs[pairs[level] == value]
        for name, diff in _c2_differences(at, freeze_share).items():
            mean, low, high = mean_ci(diff, ci, confidence, seed=seed)
            rows.append({level: value, "difficulty": difficulty(value), "comparison": name, "mean": mean,
                         "low": low, "high": high, "pairs": int(diff.notna().sum()), "verdict": verdict(low, high),
                         "drop_dense_freeze": float(at["drop_dense_freeze"].mean()) if "drop_dense_freeze" in at else np.nan,
                         "drop_sparse": float(at["drop_sparse"].mean()) if "drop_sparse" in at else np.nan})
    return pd.DataFrame(rows, columns=[level, "difficulty", "comparison", "mean", "low", "high", "pairs", "verdict",
                                       "drop_dense_freeze", "drop_sparse"])


def combine(verdicts) -> str:
    """All parts hold: holds; any part fails: fails; otherwise inconclusive."""
    verdicts = list(verdicts)
    if verdicts and all(v == "holds" for v in verdicts):
        return "holds"
    return "fails" if "fails" in verdicts else "inconclusive"


def c2_irreversibility(frame: pd.DataFrame, level: str, difficulty, freeze_share: float = 0.5, ci: str = "t",
                       confidence: float = 0.95, seed: int = 0) -> dict:
    """C2 on the hardest level of `level` (largest `difficulty`): dense > sparse-to-dense > sparse, and
    dense_freeze costs little (its normalised drop below `freeze_share` x sparse's).

    `frame` holds the dense baseline rows (transfer "dense") and the compressed rows of the other
    modes, with columns task, `level`, seed, transfer, method, pattern, sparsity, accuracy. The
    rule in full is `C2_RULE`; the result carries it, the per-level table and a sentence.
    """
    table = c2_table(frame, level, difficulty, freeze_share, ci, confidence, seed)
    rule = C2_RULE.format(share=freeze_share, conf=confidence, ci="t" if ci == "t" else "bootstrap")
    if table.empty:
        sentence = ("No compressed cell with its dense baseline in these results (no tasks in this part?): "
                    "C2 is inconclusive here.")
        return {"verdict": "inconclusive", "level": level, "hardest": np.nan, "pairs": 0, "table": table,
                "comparisons": table, "rule": rule, "sentence": sentence}
    hardest = _hardest(table[level], difficulty)
    at = table[table[level] == hardest].set_index("comparison")
    tasks = ", ".join(t.split("/")[-1] for t in sorted(frame[frame[level] == hardest]["task"].unique()))
    result = {"verdict": combine(at["verdict"]), "level": level, "hardest": hardest, "hardest_tasks": tasks,
              "pairs": int(at["pairs"].max()), "table": table, "comparisons": at.reset_index(), "rule": rule}
    for name, short in (("dense > sparse_to_dense", "dense_vs_s2d"), ("sparse_to_dense > sparse", "s2d_vs_sparse"),
                        ("dense_freeze costs little", "freeze")):
        for col in ("mean", "low", "high", "verdict"):
            result[f"{short}_{col}"] = at.loc[name, col]
    result["drop_dense_freeze"] = float(at["drop_dense_freeze"].iloc[0])
    result["drop_sparse"] = float(at["drop_sparse"].iloc[0])

    def interval(short):
        return f"{result[short + '_mean']:+.3f} ({ci_text(result[short + '_low'], result[short + '_high'], '+.3f', confidence)})"

    result["sentence"] = (
        f"At the hardest level ({level} {hardest:g}, {tasks}; {result['pairs']} paired cells), the accuracy of dense "
        f"transfer minus that of sparse-to-dense transfer is {interval('dense_vs_s2d')}, sparse-to-dense minus "
        f"sparse is {interval('s2d_vs_sparse')}, and freezing the small weights loses {result['drop_dense_freeze']:.3f} "
        f"of the dense accuracy against {result['drop_sparse']:.3f} for sparse transfer ({freeze_share:g} x "
        f"drop(sparse) - drop(dense_freeze) = {interval('freeze')}). Verdict on C2: {result['verdict']}.")
    return result


# --- C5: loss basin ----------------------------------------------------------------------

def barrier_table(frame: pd.DataFrame, level: str, metric: str = "barrier", ci: str = "t",
                  confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """Mean `metric` (the loss barrier) and its CI over seeds per task, level, transfer, method, pattern, sparsity."""
    by = ["task", level, "transfer", "method", "pattern", "sparsity"]
    rows = []
    for keys, g in frame.groupby(by, sort=True):
        mean, low, high = mean_ci(g[metric], ci, confidence, seed=seed)
        rows.append({**dict(zip(by, keys)), "mean": mean, "low": low, "high": high, "seeds": g["seed"].nunique()})
    return pd.DataFrame(rows, columns=by + ["mean", "low", "high", "seeds"])


C5_RULE = ("C5 compares the loss barrier between the dense and the sparse fine-tuned solutions on the hardest "
           "and the easiest level, paired by seed and sparsity (and task, method, pattern, transfer where "
           "they match): it holds when the {conf:.0%} {ci} interval of the mean paired difference "
           "barrier(hard) - barrier(easy) is above 0, fails when it is below 0, and is inconclusive otherwise.")


def c5_basin(frame: pd.DataFrame, level: str, difficulty, metric: str = "barrier", across_tasks: bool = False,
             ci: str = "t", confidence: float = 0.95, seed: int = 0) -> dict:
    """C5: is the loss barrier larger on the hardest level than on the easiest?

    `frame` has one row per interpolation (columns task, `level`, seed, transfer, method, pattern,
    sparsity, `metric`). Within a task (`across_tasks=False`) the pairs also match on task; across
    tasks (levels are tasks) they match on seed and compression only.
    """
    rule = C5_RULE.format(conf=confidence, ci="t" if ci == "t" else "bootstrap")
    levels = sorted(pd.unique(frame[level]), key=difficulty) if not frame.empty else []
    base = {"level": level, "rule": rule, "table": barrier_table(frame, level, metric, ci, confidence, seed)}
    if len(levels) < 2:
        return {**base, "verdict": "inconclusive", "easy": levels[0] if levels else np.nan, "hard": np.nan, "pairs": 0,
                "sentence": "C5 needs an easy and a hard level; with fewer it is inconclusive."}
    easy, hard = levels[0], levels[-1]
    on = ["seed", "transfer", "method", "pattern", "sparsity"] + ([] if across_tasks else ["task"])
    e = frame[frame[level] == easy].groupby(on)[metric].mean().rename("easy")
    h = frame[frame[level] == hard].groupby(on)[metric].mean().rename("hard")
    pairs = pd.concat([e, h], axis=1, join="inner")
    diff = pairs["hard"] - pairs["easy"]
    mean, low, high = mean_ci(diff, ci, confidence, seed=seed)
    easy_mean, easy_low, easy_high = mean_ci(pairs["easy"], ci, confidence, seed=seed)
    hard_mean, hard_low, hard_high = mean_ci(pairs["hard"], ci, confidence, seed=seed)
    result = {**base, "verdict": verdict(low, high), "easy": easy, "hard": hard, "pairs": int(len(pairs)),
              "diff_mean": mean, "diff_low": low, "diff_high": high,
              "easy_mean": easy_mean, "easy_low": easy_low, "easy_high": easy_high,
              "hard_mean": hard_mean, "hard_low": hard_low, "hard_high": hard_high}
    name = (lambda v: str(v)) if isinstance(easy, str) else (lambda v: f"{level} {v:g}")
    result["sentence"] = (
        f"The loss barrier between the dense and the sparse fine-tuned solutions is {easy_mean:.4f} "
        f"({ci_text(easy_low, easy_high, '.4f', confidence)}) on the easy level ({name(easy)}) and "
        f"{hard_mean:.4f} ({ci_text(hard_low, hard_high, '.4f')}) on the hard one ({name(hard)}); the paired "
        f"difference hard - easy over {len(pairs)} seed/sparsity pairs is {mean:+.4f} ({ci_text(low, high, '+.4f')}). "
        f"Verdict on C5: {result['verdict']}.")
    return result


def glue_values(prefix: str, result: dict) -> dict[str, object]:
    """The scalar entries of a claim result (numbers, strings), named `<prefix>_<key>`, ready for glue."""
    out = {}
    for key, value in result.items():
        if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
            out[f"{prefix}_{key}"] = value.item() if isinstance(value, np.generic) else value
    return out


# --- C3: quantization against pruning (and low rank) ---------------------------------------


C3_RULE = ("C3 compares rho, the rank correlation between difficulty and the Theil-Sen slope of the drop "
           "against compression (stats.difficulty_trend, seed by seed), between compressor families, paired "
           "by task and seed (a family's rho is the mean over its methods): pruning must first show the "
           "pattern ({conf:.0%} {ci} interval of its mean rho above 0; otherwise C3 is inconclusive). Then "
           "(a) rho(pruning) - rho(quantization) > 0: quantization does not show pruning's monotonic "
           "difficulty pattern; and, where SVD was run, (b) |rho(pruning) - rho(quantization)| - "
           "|rho(pruning) - rho(low rank)| > 0: low rank is closer to pruning. Each part holds when its "
           "interval is above 0 and fails when it is below; C3 holds when every part holds, fails when "
           "any fails, and is inconclusive otherwise.")


def _family_rhos(rhos: pd.DataFrame, units: list[str]) -> pd.DataFrame:
    fam = rhos["method"].map(lambda m: METHODS[m].family if m in METHODS else "other")
    wide = rhos.assign(group=fam).pivot_table(index=units, columns="group", values="rho", aggfunc="mean")
    wide.columns.name = None
    return wide.reset_index()


def c3_quantization(rhos: pd.DataFrame, units: tuple[str, ...] = ("task", "seed"), ci: str = "t",
                    confidence: float = 0.95, seed: int = 0) -> dict:
    """C3: quantization lacks pruning's monotonic difficulty pattern; low rank is closer to pruning.

    `rhos` has one row per unit (task, seed, and any other column named in `units`) and method:
    columns method (magnitude, wanda, sparsegpt, rtn, gptq, svd) and rho (the difficulty-slope
    rank correlation of that unit and method, e.g. `stats.difficulty_trend` on one seed's rows).
    The rule in full is `C3_RULE`.
    """
    units = [u for u in units if u in rhos]
    rule = C3_RULE.format(conf=confidence, ci="t" if ci == "t" else "bootstrap")
    wide = _family_rhos(rhos, units) if len(rhos) else pd.DataFrame()
    result = {"rule": rule, "table": wide, "units": int(len(wide))}
    if "pruning" not in wide or "quantization" not in wide:
        return {**result, "verdict": "inconclusive",
                "sentence": "C3 needs both pruned and quantized cells; with one of them missing it is inconclusive."}
    parts = {}
    for name in ("pruning", "quantization", "low rank"):
        if name in wide:
            key = "rho_" + name.replace(" ", "_")
            result[key + "_mean"], result[key + "_low"], result[key + "_high"] = mean_ci(wide[name], ci, confidence,
                                                                                        seed=seed)
    prune_verdict = verdict(result["rho_pruning_low"], result["rho_pruning_high"])
    result["pruning_verdict"] = prune_verdict
    d_q = wide["pruning"] - wide["quantization"]
    parts["quant"] = mean_ci(d_q, ci, confidence, seed=seed)
    if "low rank" in wide:
        parts["svd"] = mean_ci(d_q.abs() - (wide["pruning"] - wide["low rank"]).abs(), ci, confidence, seed=seed)
    for short, (mean, low, high) in parts.items():
        result.update({f"{short}_mean": mean, f"{short}_low": low, f"{short}_high": high,
                       f"{short}_verdict": verdict(low, high)})
    verdicts = [result[f"{p}_verdict"] for p in parts]
    result["verdict"] = combine(verdicts) if prune_verdict == "holds" else "inconclusive"

    def interval(short):
        return (f"{result[short + '_mean']:+.2f} "
                f"({ci_text(result[short + '_low'], result[short + '_high'], '+.2f', confidence)})")

    sentence = (f"Over {len(wide)} paired units ({'/'.join(units)}), the difficulty-slope correlation is {interval('rho_pruning')} for "
                f"pruning and {interval('rho_quantization')} for quantization")
    sentence += f", {interval('rho_low_rank')} for low rank. " if "low rank" in wide else ". "
    sentence += f"Pruning minus quantization: {interval('quant')}"
    sentence += (f"; how much closer low rank is to pruning than quantization is: {interval('svd')}. "
                 if "svd" in parts else ". ")
    if prune_verdict != "holds":
        sentence += "Pruning itself does not show the pattern here (its interval is not above 0), so the contrast "\
                    "C3 draws cannot be judged. "
    result["sentence"] = sentence + f"Verdict on C3: {result['verdict']}."
    return result


# --- C4: the pattern across sparsity patterns and pruning methods ---------------------------

C4_RULE = ("C4 reads the C1 verdicts (difficulty_trend: rank correlation between difficulty and the slope of "
           "the drop, 95% bootstrap interval over seeds) of the pruning rows only, grouped by sparsity family "
           "(unstructured, N:M) and by method (magnitude, wanda, sparsegpt): a group holds when all its rows "
           "hold, fails when any fails, and is inconclusive otherwise. C4 combines the groups the same way, and "
           "is inconclusive when the rows span a single family and a single method (nothing to compare across).")


def c4_patterns(trend: pd.DataFrame) -> dict:
    """C4 from C1 trend rows (columns family, method, verdict; other rows such as quantization are
    ignored): a verdict per family, per method, and combined. The rule in full is `C4_RULE`."""
    rows = trend[trend["family"].isin(("unstructured", "N:M")) & trend["method"].isin(PRUNE_METHODS)] \
        if len(trend) else trend
    by_family = {f: combine(g["verdict"]) for f, g in rows.groupby("family")} if len(rows) else {}
    by_method = {m: combine(g["verdict"]) for m, g in rows.groupby("method")} if len(rows) else {}
    table = pd.DataFrame([{"group": "family", "name": k, "verdict": v, "rows": int((rows["family"] == k).sum())}
                          for k, v in by_family.items()]
                         + [{"group": "method", "name": k, "verdict": v, "rows": int((rows["method"] == k).sum())}
                            for k, v in by_method.items()], columns=["group", "name", "verdict", "rows"])
    across = len(by_family) >= 2 or len(by_method) >= 2
    overall = combine(list(by_family.values()) + list(by_method.values())) if across else "inconclusive"
    describe = "; ".join(f"{k}: {v}" for k, v in {**by_family, **by_method}.items()) or "no pruning rows"
    sentence = (f"Per sparsity family and pruning method, the C1 pattern ({describe})"
                + ("" if across else ", a single family and method, so nothing to compare across")
                + f". Verdict on C4: {overall}.")
    result = {"verdict": overall, "families": len(by_family), "methods": len(by_method), "rows": int(len(rows)),
              "by_family": by_family, "by_method": by_method, "table": table, "rule": C4_RULE, "sentence": sentence}
    for k, v in {**by_family, **by_method}.items():
        result[f"verdict_{k.replace(':', '').replace(' ', '_')}"] = v
    return result
