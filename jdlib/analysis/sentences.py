"""Numbers and sentences for the book, computed from a setting's statistics (never typed by hand)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def level_label(value) -> str:
    """A difficulty level as text: numbers compactly (0.25, 100), names as they are (factoid)."""
    return f"{value:g}" if isinstance(value, (int, float, np.number)) else str(value)


def setting_findings(prefix: str, norm: pd.DataFrame, table: pd.DataFrame, trend: pd.DataFrame,
                     level: str, difficulty, statistic: str = "95% bootstrap CI over seeds") -> dict[str, object]:
    """Glue-ready values: how often the drop grows with sparsity, and with difficulty (`statistic`
    says what the verdicts in `trend` rest on)."""
    hardest = max(norm[level].unique(), key=difficulty)
    easiest = min(norm[level].unique(), key=difficulty)
    top = norm[norm["sparsity"] == norm["sparsity"].max()]
    verdicts = trend["verdict"].value_counts().to_dict()
    combos = len(trend)
    sentence = (f"Across {combos} task/pattern combination{'s' if combos != 1 else ''}, the claim that the drop "
                f"steepens with difficulty holds in {verdicts.get('holds', 0)}, fails in {verdicts.get('fails', 0)} "
                f"and is inconclusive in {verdicts.get('inconclusive', 0)} ({statistic}).")
    return {
        f"{prefix}_cells": int(len(norm)),
        f"{prefix}_mean_spearman": float(np.nanmean(table["spearman"])) if len(table) else float("nan"),
        f"{prefix}_mean_rho": float(np.nanmean(trend["rho"])) if trend["rho"].notna().any() else float("nan"),
        f"{prefix}_drop_hardest": float(top[top[level] == hardest]["drop"].mean()),
        f"{prefix}_drop_easiest": float(top[top[level] == easiest]["drop"].mean()),
        f"{prefix}_top_sparsity": float(norm["sparsity"].max()),
        f"{prefix}_hardest": level_label(hardest),
        f"{prefix}_easiest": level_label(easiest),
        f"{prefix}_verdicts": sentence,
    }


def gap_findings(prefix: str, gap: pd.DataFrame) -> dict[str, object]:
    """Glue-ready values of hardest-minus-easiest slope comparisons (columns gap, verdict): their mean and a sentence."""
    verdicts = gap["verdict"].value_counts().to_dict()
    combos = len(gap)
    sentence = (f"Comparing the hardest level with the easiest in {combos} task/pattern combination"
                f"{'s' if combos != 1 else ''}, the drop is steeper at the hardest level (95% interval "
                f"above zero) in {verdicts.get('holds', 0)}, shallower in {verdicts.get('fails', 0)} and "
                f"indistinguishable in {verdicts.get('inconclusive', 0)}.")
    return {f"{prefix}_gap": float(np.nanmean(gap["gap"])) if combos else float("nan"),
            f"{prefix}_gap_verdicts": sentence}
