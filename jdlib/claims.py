"""Verdicts on the paper's claims, computed from the results with confidence intervals.

Each `cN_...` function takes the rows of a sweep and returns a dict: the verdict ("holds",
"fails" or "inconclusive"), the numbers behind it, a table, the rule used and a sentence for
the book. Nothing here hard-codes an outcome; `glue_values` flattens a result for myst-nb glue.

The intervals are over the paired units of the comparison (seeds, and sparsities where the
claim pools them): a Student t interval of the mean paired difference by default, or a
percentile bootstrap over the pairs (`ci="bootstrap"`). A verdict "holds" when the whole
interval lies on the side the claim predicts, "fails" when it lies wholly on the other side,
and is "inconclusive" otherwise (or with fewer than two pairs).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .stats import verdict

CI_METHODS = ("t", "bootstrap")
VERDICTS = ("holds", "fails", "inconclusive")
MODES = ("dense_freeze", "sparse", "sparse_to_dense")


def mean_ci(values, ci: str = "t", confidence: float = 0.95, n_boot: int = 2000,
            seed: int = 0) -> tuple[float, float, float]:
    """Mean of `values` and its confidence interval (t, or percentile bootstrap); NaN bounds below 2 values."""
    if ci not in CI_METHODS:
        raise ValueError(f"ci={ci!r} is not valid: use one of {', '.join(CI_METHODS)}")
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return np.nan, np.nan, np.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, np.nan, np.nan
    if ci == "t":
        half = float(sps.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
        return mean, mean - half, mean + half
    rng = np.random.default_rng(seed)
    boot = rng.choice(x, size=(n_boot, len(x)), replace=True).mean(axis=1)
    low, high = np.percentile(boot, [50 * (1 - confidence), 50 * (1 + confidence)])
    return mean, float(low), float(high)


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
        return f"{result[short + '_mean']:+.3f} ({confidence:.0%} CI {result[short + '_low']:+.3f} to {result[short + '_high']:+.3f})"

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
        f"({confidence:.0%} CI {easy_low:.4f} to {easy_high:.4f}) on the easy level ({name(easy)}) and "
        f"{hard_mean:.4f} ({hard_low:.4f} to {hard_high:.4f}) on the hard one ({name(hard)}); the paired "
        f"difference hard - easy over {len(pairs)} seed/sparsity pairs is {mean:+.4f} ({low:+.4f} to {high:+.4f}). "
        f"Verdict on C5: {result['verdict']}.")
    return result


def glue_values(prefix: str, result: dict) -> dict[str, object]:
    """The scalar entries of a claim result (numbers, strings), named `<prefix>_<key>`, ready for glue."""
    out = {}
    for key, value in result.items():
        if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
            out[f"{prefix}_{key}"] = value.item() if isinstance(value, np.generic) else value
    return out
