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

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from ..compress import LOW_RANK_METHODS, QUANT_METHODS, claimed
from .pooling import ALPHA, NOT_TESTABLE, Judged, holm, judge
from .pooling import counts as count_verdicts
from .sentences import basin_sentence
from .stats import verdict

CI_METHODS = ("t", "bootstrap")


NOT_RUN = "not run"

@dataclass
class ClaimResult:
    """A verdict on one claim and what it rests on: the headline statistic with its interval, the
    scalars behind the sentence (`numbers`, glued into the book) and the tables."""

    claim: str
    verdict: str
    rule: str
    sentence: str
    statistic: str = ""
    estimate: float = np.nan
    low: float = np.nan
    high: float = np.nan
    resamples: int | None = None  # the paired units the interval rests on
    numbers: dict[str, object] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    pooled: dict = field(default_factory=dict)  # {estimate, low, high, method, ...}: what the verdict reads
    counts: dict[str, int] = field(default_factory=dict)  # comparisons that hold, fail, are inconclusive, not testable
    units: pd.DataFrame | None = None  # the comparisons (or parts) counted, with `testable` and its reason

    @classmethod
    def from_parts(cls, claim: str, parts: dict, statistic: str = "", headline: str | None = None,
                   resamples: str | None = None, judged: Judged | None = None,
                   units: pd.DataFrame | None = None) -> "ClaimResult":
        """Sort a claim function's results: tables apart, scalars into `numbers`; `headline` names the
        `<headline>_mean/_low/_high` entries that give the estimate and its interval; `judged` (the pooled
        rule's result over `units`) gives them instead, with `pooled` and `counts`."""
        tables = {k: v for k, v in parts.items() if isinstance(v, pd.DataFrame)}
        numbers = {k: v for k, v in parts.items() if k not in tables and k not in ("verdict", "rule", "sentence")}
        estimate = low = high = np.nan
        if headline:
            estimate, low, high = (float(parts.get(f"{headline}_{p}", np.nan)) for p in ("mean", "low", "high"))
        pooled, counts = {}, {}
        if judged is not None:
            estimate, low, high = judged.pooled.estimate, judged.pooled.low, judged.pooled.high
            pooled, counts = judged.pooled.as_dict(), judged.counts
        if units is None and judged is not None:
            units = tables.get("table")
        return cls(claim, parts["verdict"], parts.get("rule", ""), parts["sentence"], statistic, estimate, low, high,
                   int(parts[resamples]) if resamples and resamples in parts else None, numbers, tables, pooled,
                   counts, units)

    def pooled_text(self) -> str:
        """The estimate the verdict reads with its interval, "+0.142 [-0.027, +0.311]", in words."""
        return interval_words(self.estimate, self.low, self.high)

    def counts_text(self) -> str:
        """"8 hold, 0 fail, 2 inconclusive, 4 not testable" ("none" without counts: a claim not run)."""
        c = self.counts
        return (f"{c['holds']} hold, {c['fails']} fail, {c['inconclusive']} inconclusive, "
                f"{c['not_testable']} not testable") if c else "none"

    def __getitem__(self, key: str):
        if key in ("verdict", "rule", "sentence", "statistic", "estimate", "low", "high", "resamples"):
            return getattr(self, key)
        return self.tables[key] if key in self.tables else self.numbers[key]

    def __contains__(self, key: str) -> bool:
        return key in self.tables or key in self.numbers or key in ("verdict", "rule", "sentence")

    def get(self, key: str, default=None):
        return self[key] if key in self else default
MODES = ("dense_freeze", "sparse", "sparse_to_dense")


def interval_words(estimate: float, low: float, high: float) -> str:
    """"+0.0120 [+0.0040, +0.0200]", or why there is no interval."""
    if estimate is None or not np.isfinite(estimate):
        return "none"
    if low is None or not (np.isfinite(low) and np.isfinite(high)):
        return f"{estimate:+.4f}, no interval"
    return f"{estimate:+.4f} [{low:+.4f}, {high:+.4f}]"


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

C2_RULE = ("C2 (the paper's section 5) holds that the two transfer modes that keep the pre-trained small "
           "weights (dense, and dense with those weights frozen) beat the two that remove them (sparse, and "
           "sparse-to-dense, even though pruned weights may regrow there), and more so on hard tasks. It is judged "
           "from paired differences over seeds and sparsities (and tasks, methods and patterns at a level): "
           "(a) at the hardest level, the mean accuracy of the keeping modes minus that of the removing modes > 0; "
           "(b) that advantage at the hardest level minus the same at the easiest, paired by seed and compression, "
           "> 0. Each part holds when its {conf:.0%} {ci} interval is above 0 and fails when it is below; C2 holds "
           "when both hold, fails when either fails, and is inconclusive otherwise. The four pairwise comparisons "
           "and sparse-to-dense against sparse (which the paper does not claim) are reported beside it.")
KEEP, REMOVE = ("dense", "dense_freeze"), ("sparse", "sparse_to_dense")
C2_STATISTIC = "accuracy of the keeping modes minus the removing modes at the hardest level (paired)"
PAIRWISE = [(k, r) for k in KEEP for r in REMOVE] + [("sparse_to_dense", "sparse")]


def c2_pairs(frame: pd.DataFrame, level: str, metric: str = "accuracy") -> pd.DataFrame:
    """One row per (task, level, seed, method, pattern, sparsity): the accuracy of each transfer mode
    (the dense baseline's under `dense`), and `advantage`, the mean of the keeping modes present minus
    the mean of the removing modes present."""
    on = ["task", level, "seed"]
    if frame.empty:
        return pd.DataFrame(columns=on + ["method", "pattern", "sparsity", "dense", "advantage"])
    dense = frame[frame["transfer"] == "dense"][on + [metric]].rename(columns={metric: "dense"})
    compressed = frame[frame["transfer"] != "dense"]
    wide = compressed.pivot_table(index=on + ["method", "pattern", "sparsity"], columns="transfer",
                                  values=metric, aggfunc="mean").reset_index()
    wide.columns.name = None
    pairs = wide.merge(dense, on=on, how="inner")
    keep = [m for m in KEEP if m in pairs]
    remove = [m for m in REMOVE if m in pairs]
    pairs["advantage"] = (pairs[keep].mean(axis=1) - pairs[remove].mean(axis=1)) if remove else np.nan
    return pairs


def c2_table(frame: pd.DataFrame, level: str, difficulty, ci: str = "t", confidence: float = 0.95,
             seed: int = 0) -> pd.DataFrame:
    """At every level: the keep-minus-remove advantage and each pairwise comparison, with its mean paired
    difference, interval, number of pairs and verdict."""
    pairs = c2_pairs(frame, level)
    rows = []
    for value in sorted(pairs[level].unique(), key=difficulty):
        at = pairs[pairs[level] == value]
        comparisons = {"keep > remove": at["advantage"]}
        comparisons.update({f"{a} > {b}": at[a] - at[b] for a, b in PAIRWISE if a in at and b in at})
        for name, diff in comparisons.items():
            mean, low, high = mean_ci(diff, ci, confidence, seed=seed)
            rows.append({level: value, "difficulty": difficulty(value), "comparison": name, "mean": mean, "low": low,
                         "high": high, "pairs": int(diff.notna().sum()), "verdict": verdict(low, high)})
    return pd.DataFrame(rows, columns=[level, "difficulty", "comparison", "mean", "low", "high", "pairs", "verdict"])


def combine(verdicts) -> str:
    """All parts hold: holds; any part fails: fails; otherwise inconclusive."""
    verdicts = list(verdicts)
    if verdicts and all(v == "holds" for v in verdicts):
        return "holds"
    return "fails" if "fails" in verdicts else "inconclusive"


def c2_irreversibility(frame: pd.DataFrame, level: str, difficulty, across_tasks: bool = False, ci: str = "t",
                       confidence: float = 0.95, seed: int = 0) -> dict:
    """C2 as the paper states it (`C2_RULE`): the keeping modes beat the removing ones at the hardest
    level, and by more than at the easiest.

    `frame` holds the dense baseline rows (transfer "dense") and the compressed rows of the other
    modes, with columns task, `level`, seed, transfer, method, pattern, sparsity, accuracy. Across
    tasks (the levels are tasks) part (b) pairs the levels by seed and compression only.
    """
    table = c2_table(frame, level, difficulty, ci, confidence, seed)
    rule = C2_RULE.format(conf=confidence, ci="t" if ci == "t" else "bootstrap")
    base = {"level": level, "table": table, "rule": rule}
    if table.empty or table[table["comparison"] == "keep > remove"]["pairs"].max() == 0:
        return ClaimResult.from_parts("C2", {
            **base, "verdict": "inconclusive", "hardest": np.nan, "pairs": 0, "comparisons": table,
            "sentence": "No compressed cell of a keeping and a removing mode with its dense baseline in these results: "
                        "C2 is inconclusive here."}, C2_STATISTIC)
    hardest, easiest = _hardest(table[level], difficulty), min(pd.unique(table[level]), key=difficulty)
    at = table[table[level] == hardest].set_index("comparison")
    tasks = ", ".join(t.split("/")[-1] for t in sorted(frame[frame[level] == hardest]["task"].unique()))
    result = {**base, "hardest": hardest, "easiest": easiest, "hardest_tasks": tasks,
              "pairs": int(at.loc["keep > remove", "pairs"]), "comparisons": at.reset_index()}
    result.update({f"advantage_{k}": at.loc["keep > remove", k] for k in ("mean", "low", "high", "verdict")})
    # (b) more so on hard tasks: the advantage at the hardest level minus at the easiest, paired
    pairs = c2_pairs(frame, level)
    on = ["seed", "method", "pattern", "sparsity"] + ([] if across_tasks else ["task"])
    hard = pairs[pairs[level] == hardest].groupby(on)["advantage"].mean()
    easy = pairs[pairs[level] == easiest].groupby(on)["advantage"].mean()
    diff = (hard - easy).dropna()
    mean, low, high = mean_ci(diff, ci, confidence, seed=seed) if hardest != easiest else (np.nan,) * 3
    result.update({"harder_mean": mean, "harder_low": low, "harder_high": high,
                   "harder_verdict": verdict(low, high) if hardest != easiest else "inconclusive",
                   "harder_pairs": int(len(diff))})
    result["verdict"] = combine([result["advantage_verdict"], result["harder_verdict"]])
    for a, b in PAIRWISE:
        name = f"{a} > {b}"
        if name in at.index:
            result[f"{a}_vs_{b}_mean"], result[f"{a}_vs_{b}_verdict"] = at.loc[name, "mean"], at.loc[name, "verdict"]

    def interval(short):
        return f"{result[short + '_mean']:+.3f} ({ci_text(result[short + '_low'], result[short + '_high'], '+.3f', confidence)})"

    s2d = result.get("sparse_to_dense_vs_sparse_mean")
    result["sentence"] = (
        f"At the hardest level ({level} {hardest:g}, {tasks}; {result['pairs']} paired cells), the modes that keep "
        f"the small weights beat those that remove them by {interval('advantage')} in accuracy; that advantage is "
        f"{interval('harder')} larger than at the easiest level ({level} {easiest:g})."
        + (f" Sparse-to-dense minus sparse (not part of the claim): {s2d:+.3f}." if s2d is not None else "")
        + f" Verdict on C2: {result['verdict']}.")
    return ClaimResult.from_parts("C2", result, C2_STATISTIC, headline="advantage", resamples="pairs")


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


C5_RULE = ("C5 (the paper's Appendix C) holds that dense and sparse fine-tuned solutions stay linearly connected on "
           "easy tasks while the loss barrier between them rises on hard ones. Two parts, from the barriers paired by "
           "seed and sparsity (and task, method, pattern, transfer where they match): (a) barrier(hard) - "
           "barrier(easy) > 0, holding when its {conf:.0%} {ci} interval is above 0 and failing when it is below; "
           "(b) near zero on the easy level, read as: the easy barrier is below {tol:g} x the dense solution's "
           "validation loss there, holding when its interval's upper end is below that and failing when its lower "
           "end is above. C5 holds when both hold, fails when either fails, and is inconclusive otherwise. Where there "
           "are three levels or more, the rank correlation between difficulty and the mean barrier is reported.")
EASY_TOLERANCE = 0.05  # "near zero": a barrier below 5% of the dense solution's loss
C5_STATISTIC = "loss barrier at the hardest level minus at the easiest (paired)"


def c5_basin(frame: pd.DataFrame, level: str, difficulty, metric: str = "barrier", across_tasks: bool = False,
             ci: str = "t", confidence: float = 0.95, seed: int = 0) -> dict:
    """C5: is the loss barrier larger on the hardest level than on the easiest?

    `frame` has one row per interpolation (columns task, `level`, seed, transfer, method, pattern,
    sparsity, `metric`). Within a task (`across_tasks=False`) the pairs also match on task; across
    tasks (levels are tasks) they match on seed and compression only.
    """
    rule = C5_RULE.format(conf=confidence, ci="t" if ci == "t" else "bootstrap", tol=EASY_TOLERANCE)
    levels = sorted(pd.unique(frame[level]), key=difficulty) if not frame.empty else []
    base = {"level": level, "rule": rule, "table": barrier_table(frame, level, metric, ci, confidence, seed)}
    if len(levels) < 2:
        return ClaimResult.from_parts("C5", {
            **base, "verdict": "inconclusive", "easy": levels[0] if levels else np.nan, "hard": np.nan, "pairs": 0,
            "sentence": "C5 needs an easy and a hard level; with fewer it is inconclusive."}, C5_STATISTIC)
    easy, hard = levels[0], levels[-1]
    on = ["seed", "transfer", "method", "pattern", "sparsity"] + ([] if across_tasks else ["task"])
    e = frame[frame[level] == easy].groupby(on)[metric].mean().rename("easy")
    h = frame[frame[level] == hard].groupby(on)[metric].mean().rename("hard")
    pairs = pd.concat([e, h], axis=1, join="inner")
    diff = pairs["hard"] - pairs["easy"]
    mean, low, high = mean_ci(diff, ci, confidence, seed=seed)
    easy_mean, easy_low, easy_high = mean_ci(pairs["easy"], ci, confidence, seed=seed)
    hard_mean, hard_low, hard_high = mean_ci(pairs["hard"], ci, confidence, seed=seed)
    # (b) near zero on the easy level, against a tolerance scaled by the loss itself
    loss = frame[frame[level] == easy]["dense_loss"].mean() if "dense_loss" in frame else np.nan
    tolerance = EASY_TOLERANCE * loss
    easy_part = ("inconclusive" if np.isnan(tolerance) or np.isnan(easy_high) else
                 "holds" if easy_high < tolerance else "fails" if easy_low > tolerance else "inconclusive")
    rising = verdict(low, high)
    trend = np.nan
    if len(levels) >= 3:
        means = frame.groupby(level)[metric].mean()
        trend = float(sps.spearmanr([difficulty(v) for v in means.index], means.values).statistic)
    result = {**base, "verdict": combine([rising, easy_part]), "rising_verdict": rising, "easy_verdict": easy_part,
              "easy_tolerance": tolerance, "trend_rho": trend, "easy": easy, "hard": hard, "pairs": int(len(pairs)),
              "diff_mean": mean, "diff_low": low, "diff_high": high,
              "easy_mean": easy_mean, "easy_low": easy_low, "easy_high": easy_high,
              "hard_mean": hard_mean, "hard_low": hard_low, "hard_high": hard_high}
    # one source for C5's words: sentences.basin_sentence says what the sign of hard - easy means
    result["sentence"] = basin_sentence(result) if len(pairs) else (
        f"No seed/sparsity pair has a barrier at both the easiest and the hardest {level}, so C5 has nothing "
        f"to compare. Verdict on C5: {result['verdict']}.")
    return ClaimResult.from_parts("C5", result, C5_STATISTIC, headline="diff", resamples="pairs")


def glue_values(prefix: str, result: "ClaimResult | dict") -> dict[str, object]:
    """The scalar entries of a claim result (numbers, strings), named `<prefix>_<key>`, ready for glue."""
    out = {}
    items = result.items() if isinstance(result, dict) else {
        "verdict": result.verdict, "rule": result.rule, "sentence": result.sentence, "statistic": result.statistic,
        "estimate": result.estimate, "low": result.low, "high": result.high, "pooled": result.pooled_text(),
        "counts": result.counts_text(), **result.numbers}.items()
    for key, value in items:
        if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
            out[f"{prefix}_{key}"] = value.item() if isinstance(value, np.generic) else value
    return out


# --- C3: quantization against pruning (and low rank) ---------------------------------------


C3_RULE = ("C3 reads the paper's own statistic (section 4): within each difficulty level, seed and task, the Spearman "
           "correlation between compression strength (log2 of the compression ratio) and the normalised drop. The "
           "paper finds it near 1 for magnitude pruning at every level (0.975-1.0) and lower for GPTQ (0.316-0.872). "
           "Per knob (option count, context length) and per quantizer apart (round-to-nearest, GPTQ), the paired "
           "difference rho(magnitude pruning) - rho(quantizer), over levels, tasks and seeds, must be > 0: it holds "
           "when its {conf:.0%} {ci} interval is above 0 and fails when it is below. Where SVD was run, "
           "|rho(pruning) - rho(quantizer)| - |rho(pruning) - rho(SVD)| > 0 (low rank is closer to pruning) is a "
           "part of its own, judged alike. Each part and quantizer is pooled over the knobs by the claims' pooled "
           "rule (DerSimonian-Laird random effects, Hartung-Knapp interval; a knob is one study); C3 holds when "
           "every pooled part holds, fails when any fails, and is inconclusive otherwise. Whether quantization's "
           "own drop steepens with difficulty (its difficulty trend) is reported beside it, not judged.")
C3_STATISTIC = ("within-level Spearman(compression, drop): magnitude pruning minus the quantizers, pooled over the "
                "knobs")
C3_REFERENCE = "magnitude"  # the pruning method the paper's table compares with GPTQ

# The paper's table (section 4): Spearman(compression, drop) within each level, magnitude pruning and GPTQ.
PAPER_SPEARMAN = pd.DataFrame(
    [("setting3", "closed book", 0.996, 0.799), ("setting3", "context 100%", 0.996, 0.794),
     ("setting3", "context 60%", 0.975, 0.399), ("setting3", "context 20%", 0.987, 0.316),
     ("setting2", "4 options", 0.979, 0.872), ("setting2", "3 options", 1.0, 0.799),
     ("setting2", "2 options", 1.0, 0.666)], columns=["setting", "level", "pruning", "quantization"])


def c3_quantization(within: pd.DataFrame, ci: str = "t", confidence: float = 0.95, seed: int = 0) -> dict:
    """C3 by the paper's statistic (`C3_RULE`). `within` has one row per knob, task, level, seed and
    method with `spearman`, the correlation between compression strength and drop within that level
    (`analysis.compression.within_level`)."""
    rule = C3_RULE.format(conf=confidence, ci="t" if ci == "t" else "bootstrap")
    units = ["knob", "task", "level", "seed"]
    wide = within.pivot_table(index=units, columns="method", values="spearman").reset_index() if len(within) \
        else pd.DataFrame()
    wide.columns.name = None
    quantizers = [m for m in QUANT_METHODS if m in wide]
    result = {"rule": rule, "table": wide, "units": int(len(wide))}
    if C3_REFERENCE not in wide or not quantizers:
        return ClaimResult.from_parts("C3", {
            **result, "verdict": "inconclusive",
            "sentence": "C3 needs magnitude-pruned and quantized cells; with one of them missing it is inconclusive."},
            C3_STATISTIC)
    rows = []
    for knob, g in wide.groupby("knob"):
        for q in quantizers:
            parts = {"pruning > quantizer": g[C3_REFERENCE] - g[q]}
            for svd in (m for m in LOW_RANK_METHODS if m in g):
                parts["SVD closer to pruning"] = (g[C3_REFERENCE] - g[q]).abs() - (g[C3_REFERENCE] - g[svd]).abs()
            for part, diff in parts.items():
                mean, low, high = mean_ci(diff, ci, confidence, seed=seed)
                n = int(diff.notna().sum())
                rows.append({"knob": knob, "quantizer": q, "part": part, "mean": mean, "low": low, "high": high,
                             "pairs": n, "verdict": verdict(low, high), "estimate": mean,
                             "se": float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan, "df": n - 1,
                             "testable": True, "testable_reason": "levels that fail the gate are left out",
                             "rho_pruning": float(g[C3_REFERENCE].mean()), "rho_quantizer": float(g[q].mean())})
    parts = pd.DataFrame(rows)
    # each part and quantizer pooled over the knobs (one study each), by the claims' pooled rule
    judged = {key: judge(g, ["knob"], ["knob", "quantizer", "part"])
              for key, g in parts.groupby(["part", "quantizer"], sort=False)}
    quantizers = judge(parts[parts["part"] == "pruning > quantizer"], ["knob"], ["knob", "quantizer", "part"])
    headline = Judged(quantizers.pooled, count_verdicts(parts["verdict"]), quantizers.failing)  # every part counted
    result.update({"parts": parts, "verdict": combine(j.verdict for j in judged.values()),
                   "quant_mean": float(parts.loc[parts["part"] == "pruning > quantizer", "mean"].mean()),
                   "pooled_parts": pd.DataFrame([{"part": p, "quantizer": q, "verdict": j.verdict,
                                                  "estimate": j.pooled.estimate, "low": j.pooled.low,
                                                  "high": j.pooled.high, "studies": j.pooled.studies}
                                                 for (p, q), j in judged.items()])})
    described = "; ".join(f"{r.knob}, {r.quantizer}: rho {r.rho_pruning:.2f} (pruning) vs {r.rho_quantizer:.2f}, "
                          f"difference {r['mean']:+.2f} ({ci_text(r.low, r.high, '+.2f', confidence)}) {r.verdict}"
                          for _, r in parts[parts["part"] == "pruning > quantizer"].iterrows())
    svd = parts[parts["part"] == "SVD closer to pruning"]
    pooled = "; ".join(f"{p}, {q}: {interval_words(j.pooled.estimate, j.pooled.low, j.pooled.high)} {j.verdict}"
                       for (p, q), j in judged.items())
    result["sentence"] = (f"Within each level, the rank correlation between compression strength and the drop, "
                          f"magnitude pruning against each quantizer: {described}."
                          + (f" SVD is closer to pruning than the quantizer in {int((svd['verdict'] == 'holds').sum())} "
                             f"of {len(svd)} knob/quantizer pairs." if len(svd) else "")
                          + f" Pooled over the knobs: {pooled}. Verdict on C3: {result['verdict']}.")
    return ClaimResult.from_parts("C3", result, C3_STATISTIC, resamples="units", judged=headline, units=parts)


# --- C4: the pattern across sparsity patterns and pruning methods ---------------------------

C4_RULE = ("C4 reads the C1 comparisons of the pruning rows only (magnitude, Wanda, SparseGPT), from every setting "
           "and from the compression grid's two knobs (each within the setting it comes from), each comparison once "
           "and judged as C1 judges it, the learnability gate included. The pooled rule (C1's: DerSimonian-Laird "
           "random effects over studies, Hartung-Knapp interval) gives one pooled estimate over all of them and one "
           "per sparsity family (unstructured, N:M) and per pruning method. C4 holds when every family and method "
           "with a testable comparison holds by its pooled 95% interval (the pattern holds in each); it fails when "
           "the pooled estimate over all fails, or when a family's or method's pooled estimate lies below 0 after "
           "Holm's adjustment over the families and methods; it is not testable when no comparison is, and "
           "inconclusive otherwise, or when the rows span a single family and a single method (nothing to "
           "compare across).")
C4_NAME = ["setting", "task", "family", "method"]
C4_STATISTIC = "pooled trend of the pruning comparisons (C1's statistic), over all and per family and method"


def c4_patterns(trend: pd.DataFrame) -> ClaimResult:
    """C4 from C1 comparison rows (columns setting, task, family, method, estimate, se, df, verdict, testable,
    study; other rows such as quantization are ignored): a pooled verdict per family, per method, and over
    all the comparisons once. The rule in full is `C4_RULE`."""
    rows = trend[trend["family"].isin(("unstructured", "N:M")) & trend["method"].map(claimed)] \
        if len(trend) else trend
    groups = {(kind, name): judge(g, ["study"], C4_NAME)
              for kind in ("family", "method") if len(rows) for name, g in rows.groupby(kind)}
    overall = judge(rows, ["study"], C4_NAME) if len(rows) else None
    adjusted = holm([j.pooled.p_value for j in groups.values()])
    failing = [name for ((_, name), j), a in zip(groups.items(), adjusted) if j.pooled.estimate < 0 and a < ALPHA]
    tested = [j.verdict for j in groups.values() if j.verdict != NOT_TESTABLE]
    by_family = {name: j.verdict for (kind, name), j in groups.items() if kind == "family"}
    by_method = {name: j.verdict for (kind, name), j in groups.items() if kind == "method"}
    across = len(by_family) >= 2 or len(by_method) >= 2
    if overall is None or overall.verdict == NOT_TESTABLE:
        verdict = NOT_TESTABLE if overall is not None else "inconclusive"
    elif overall.verdict == "fails" or failing:
        verdict = "fails"
    else:
        verdict = "holds" if across and tested and all(v == "holds" for v in tested) else "inconclusive"
    table = pd.DataFrame([{"group": kind, "name": name, "verdict": j.verdict, "estimate": j.pooled.estimate,
                           "low": j.pooled.low, "high": j.pooled.high, "studies": j.pooled.studies,
                           "rows": int((rows[kind] == name).sum()), **j.counts, "failing (Holm)": "; ".join(j.failing)}
                          for (kind, name), j in groups.items()],
                         columns=["group", "name", "verdict", "estimate", "low", "high", "studies", "rows", "holds",
                                  "fails", "inconclusive", "not_testable", "failing (Holm)"])
    describe = "; ".join(f"{k}: {v}" for k, v in {**by_family, **by_method}.items()) or "no pruning rows"
    pooled = "" if overall is None else (
        f" Over all {overall.pooled.comparisons} testable comparisons once, the pooled trend is "
        f"{interval_words(overall.pooled.estimate, overall.pooled.low, overall.pooled.high)} ({overall.verdict});"
        f" comparisons: {overall.counts['holds']} hold, {overall.counts['fails']} fail, "
        f"{overall.counts['inconclusive']} inconclusive, {overall.counts['not_testable']} not testable.")
    sentence = (f"Per sparsity family and pruning method, the pooled C1 pattern ({describe})"
                + ("" if across else ", a single family and method, so nothing to compare across") + "."
                + pooled + (f" Failing after Holm's adjustment over the groups: {', '.join(failing)}." if failing else "")
                + f" Verdict on C4: {verdict}.")
    result = {"verdict": verdict, "families": len(by_family), "methods": len(by_method), "rows": int(len(rows)),
              "by_family": by_family, "by_method": by_method, "table": table, "rule": C4_RULE, "sentence": sentence,
              "comparisons": rows}
    for k, v in {**by_family, **by_method}.items():
        result[f"verdict_{k.replace(':', '').replace(' ', '_')}"] = v
    return ClaimResult.from_parts("C4", result, C4_STATISTIC, judged=overall, units=rows)


def not_run(claim: str, chapters: str) -> ClaimResult:
    return ClaimResult(claim, NOT_RUN, "", f"{claim} needs the {chapters} grid, which is not in the store.")
