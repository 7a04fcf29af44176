"""Every claim's verdict, read back from the results store without computing anything.

    python -m jdlib.claims --params full --json
"""
from __future__ import annotations

import pandas as pd

from .analysis import scale
from .analysis.claims import NOT_RUN
from .analysis.score import chapter_comparisons, method_scores, scores_json
from .analysis.verdicts import all_claims, chapter_rows, claim_json, orders, under_measured_order


def report(params: str = "quick", store: str | None = None) -> dict:
    """Every claim's verdict, the settings' declared and measured orders, the chance-corrected verdicts,
    the Junk-DNA score per pruning method (`score`) and C1 and S1 per model (`by_model`, `analysis.scale`),
    from the store alone (nothing is computed)."""
    rows = chapter_rows(params, store, compute=False)
    plain = all_claims(params, store, rows_by_chapter=rows)
    corrected = all_claims(params, store, correct_chance=True, rows_by_chapter=rows)
    settings = orders(rows)
    if plain["c1"].verdict != NOT_RUN:
        for entry in under_measured_order(rows, plain["c1"]).to_dict(orient="records"):
            settings[entry["setting"]].update({"verdict": entry["verdict (the paper's order)"],
                                               "verdict_measured_order": entry["verdict (the dense model's order)"]})
        for entry in plain["c1"].tables["by_setting"].to_dict(orient="records"):
            settings[entry["setting"]].update({
                "pooled": {k: None if pd.isna(entry[k]) else float(entry[k]) for k in ("estimate", "low", "high")},
                "counts": {k: int(entry[k]) for k in ("holds", "fails", "inconclusive", "not_testable")}})
    by_model = scale.scale_json(scale.per_model(params, store))
    claimed = {name.upper(): claim_json(r) for name, r in plain.items()}
    for name in ("C1", "S1"):  # the headline per model beside the claim; the detail under "by_model"
        claimed[name]["by_model"] = {model: {k: found[name][k] for k in ("verdict", "estimate", "low", "high", "counts")}
                                     for model, found in by_model.items()}
    return {"params": params,
            "claims": claimed,
            "settings": settings,
            "chance_corrected": {name.upper(): r.verdict for name, r in corrected.items()},
            "scores": scores_json(method_scores(chapter_comparisons(rows))),
            "by_model": by_model}


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
    for model, found in out["by_model"].items():
        print(f"{model}: C1 {found['C1']['verdict']}, S1 {found['S1']['verdict']} ({found['name']}; the scale cut)")
    for method, found in out["scores"].items():
        print(f"Junk-DNA score {method}: {found['estimate']} [{found['low']}, {found['high']}] "
              f"over {found['n_tasks']} task(s), {found['reading']}")


if __name__ == "__main__":
    main()
