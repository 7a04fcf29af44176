"""A chapter's full-scale section: the grid of other params read from their store, computing nothing,
with its figure, its verdict sentence and its tables."""
from pathlib import Path

import pytest
import yaml

import jdlib
from conftest import AWAITING_GPU
from jdlib.analysis.chapter import committed
from jdlib.analysis.sentences import FULL_SCALE
from jdlib.book import notebooks
from jdlib.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = [name for name in notebooks() if name in SETTINGS]  # every chapter with a full grid of its own
SCREENED = {"setting1", "true_gem", "lmc"}  # their tasks: the learnability screen's choice (params/full)


def params_file(tmp_path: Path, setting: str, store: Path) -> str:
    values = yaml.safe_load((ROOT / "params" / "ci" / f"{setting}.yaml").read_text())
    path = tmp_path / f"{setting}.yaml"
    path.write_text(yaml.safe_dump({**values, "store": str(store)}))
    return str(path)


def assert_shows_a_full_scale_result(found, claim: str) -> None:
    assert found.rows is not None, found.status
    assert found.figure() is not None and found.figure().axes
    assert found.verdict.startswith(f"{FULL_SCALE} ({claim}") and "nan" not in found.verdict.lower()
    assert found.table() is not None and len(found.detail()) and len(found.baselines().data)
    assert found.verdict in found.summary().data


def test_a_grid_not_whole_in_the_store_is_shown_as_not_there_and_nothing_is_computed(tmp_path):
    params = params_file(tmp_path, "setting4", tmp_path / "full.sqlite")
    found = committed("setting4", params)
    assert found.rows is None and found.figure() is None and found.table() is None and found.detail() is None
    assert found.verdict == "" and "0 of its" in found.status and "not whole" in found.status
    assert not (tmp_path / "full.sqlite").exists()


def test_a_whole_grid_is_read_back_with_its_provenance_figure_and_verdict(tmp_path):
    params = params_file(tmp_path, "setting4", tmp_path / "full.sqlite")
    computed = jdlib.sweep(jdlib.load_config("setting4", params), progress=False)
    found = committed("setting4", params)
    assert len(found.rows) == len(computed) and f"{len(computed)} cells" in found.status
    assert "task/pattern combination" in found.status  # the C1 sentence of the chapter's analysis
    assert_shows_a_full_scale_result(found, "C1 in Setting 4")
    assert "verdict" in found.detail()
    assert "itself" in committed("setting4", params, built=params).status


@pytest.mark.parametrize("chapter,claim", [("true_gem", "C2"), ("lmc", "C5"), ("compression", "C3")])
def test_the_ablation_chapters_show_their_claims_full_scale_figure_and_verdict(book, tmp_path, chapter, claim):
    """The chapters that are not C1 settings, on the grids the notebook test ran (params/ci, its store)."""
    found = committed(chapter, params_file(tmp_path, chapter, book / "ci.sqlite"))
    assert_shows_a_full_scale_result(found, claim)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_shows_its_full_grid_figure_and_verdict_from_the_committed_store(chapter):
    """What the book's "At full scale" sections show, from results/full.sqlite: fails while a chapter's
    full grid is not whole there (its status says how much of it is), unless the grid awaits its GPU run
    (conftest.AWAITING_GPU), when the section must say so."""
    found = committed(chapter)
    if chapter in AWAITING_GPU:
        assert found.rows is None and "is not whole in the committed store" in found.status, \
            f"{chapter}'s full grid is in the store now: take it out of conftest.AWAITING_GPU"
        return
    assert found.rows is not None, found.status
    assert found.figure() is not None and found.verdict.startswith(FULL_SCALE) and found.table() is not None
    shown = found.baselines()
    baselines = shown.data
    assert len(baselines) and {"dense [95% CI]", "testable"} <= set(baselines.columns)
    assert "floor" in baselines.columns or "floor: " in shown.caption  # one floor for every row: in the caption
    if chapter in SCREENED:  # issue 17: tasks chosen so every level learns
        assert (baselines["testable"] == "yes").all(), baselines[baselines["testable"] != "yes"]
    elif SETTINGS[chapter].kind == "finetune":  # Setting 5 keeps the tasks the screen found unlearned, gated out
        assert (baselines["testable"] == "yes").sum() >= 3, baselines


def test_the_claims_report_gives_every_claim_and_the_orders_computing_nothing(tmp_path):
    from jdlib.claims import report

    store = str(tmp_path / "s.sqlite")
    jdlib.sweep(jdlib.load_config("setting4", "ci", store=store), progress=False)
    out = report("ci", store)
    assert sorted(out["claims"]) == ["C1", "C2", "C3", "C4", "C5", "S1"] and sorted(out["chance_corrected"]) == sorted(out["claims"])
    for name, claim in out["claims"].items():
        per_model = {"by_model"} if name in ("C1", "S1") else set()  # C1 and S1 per model: analysis.scale
        assert set(claim) == {"verdict", "statistic", "estimate", "low", "high", "pooled", "counts", "rule",
                              "resamples", "comparisons"} | per_model
        assert {"estimate", "low", "high", "method"} <= set(claim["pooled"])
        assert set(claim["counts"]) == {"holds", "fails", "inconclusive", "not_testable"}
        assert all({"testable", "reason"} <= set(c) for c in claim["comparisons"])
        assert claim["verdict"] in {"holds", "fails", "inconclusive", "not testable", "not run"}
    assert out["claims"]["C1"]["verdict"] != "not run" and out["claims"]["C2"]["verdict"] == "not run"
    assert out["claims"]["S1"]["verdict"] == "not run"  # neither the compression grid nor random pruning is there
    order = out["settings"]["setting4"]
    assert order["declared_order"] == [3, 1, 0] and sorted(order["measured_order"]) == [0, 1, 3]
    assert {"verdict", "verdict_measured_order"} <= set(order)
    assert list(out["settings"]) == ["setting4"]  # the other grids are not in the store: nothing computed
    assert set(out["scores"]) <= {"magnitude"}  # the Junk-DNA score of the one pruning method stored
    assert all({"estimate", "low", "high", "n_tasks"} <= set(s) for s in out["scores"].values())


def test_findings_say_why_a_number_is_missing_instead_of_printing_nan():
    """Two levels give no rank correlation (nan in the table): the sentence says so and why."""
    import pandas as pd

    from jdlib.analysis.sentences import gap_findings, setting_findings

    norm = pd.DataFrame({"fraction": [0.5, 0.5, 1.0, 1.0], "sparsity": [0.0, 0.5, 0.0, 0.5],
                         "drop": [0.0, 0.3, 0.0, 0.1]})
    table = pd.DataFrame({"spearman": [1.0, 1.0]})
    trend = pd.DataFrame({"rho": [float("nan")], "verdict": ["inconclusive"]})
    found = setting_findings("s", norm, table, trend, "fraction", lambda f: -f)
    assert "nan" not in " ".join(map(str, found.values())).lower()
    assert "no rank correlation" in found["s_summary"] and "2 difficulty levels" in found["s_summary"]
    assert "0.300 at the hardest level (fraction 0.5) against 0.100" in found["s_summary"]
    gap = gap_findings("s", pd.DataFrame({"gap": [float("nan")], "verdict": ["inconclusive"]}))["s_gap_verdicts"]
    assert "nan" not in gap.lower() and "no mean difference" in gap


def test_the_basin_sentence_says_what_the_sign_of_hard_minus_easy_means():
    from jdlib.analysis.sentences import basin_sentence

    falls = {"level": "fraction", "easy": 1.0, "hard": 0.1, "pairs": 36, "diff_mean": -0.0592, "diff_low": -0.0989,
             "diff_high": -0.0195, "rising_verdict": "fails", "easy_verdict": "inconclusive", "easy_tolerance": 0.026,
             "easy_mean": 0.0637, "easy_low": 0.0232, "easy_high": 0.1043, "hard_mean": 0.0045, "hard_low": 0.0015,
             "hard_high": 0.0075, "verdict": "fails", "sentence": ""}
    sentence = basin_sentence(falls)
    assert "the barrier falls, against C5" in sentence and "rises (fails)" not in sentence
    assert "a negative one that it falls" in sentence and sentence.endswith("Verdict on C5: fails.")
    unsettled = basin_sentence({**falls, "diff_high": 0.01, "rising_verdict": "inconclusive", "verdict": "inconclusive"})
    assert "neither is established" in unsettled


def test_tables_name_columns_of_one_value_in_the_caption_and_keep_the_verdict():
    import pandas as pd

    from jdlib.analysis import tables

    frame = pd.DataFrame({"task": ["bigbench/hyperbaton"] * 2, "family": ["N:M", "unstructured"],
                          "estimate": [0.1, float("nan")], "low": [0.05, float("nan")], "high": [0.2, float("nan")],
                          "bits": [float("nan")] * 2, "verdict": ["holds", "holds"]})
    styled = tables.estimates(frame, "C1", estimate="estimate")
    assert list(styled.data.columns) == ["family", "estimate [95% CI]", "verdict"]
    assert list(styled.data["estimate [95% CI]"]) == ["+0.100 [+0.050, +0.200]", "none"]
    assert styled.caption == "C1 (all rows: task: hyperbaton)"  # no "nan" for the column with no value


def test_the_compression_chapter_ranks_the_pruning_methods_by_their_score_on_the_committed_grid():
    ranking = committed("compression").scores(built=None)
    assert {"magnitude", "wanda", "sparsegpt"} <= set(ranking.scores["method"])
    assert ranking.scores[["estimate", "low", "high"]].notna().all().all()
    assert ranking.table() is not None and ranking.figure().axes
    assert "sparsegpt" in ranking.summary().data


def test_the_advisor_page_reads_every_method_on_the_committed_full_grids():
    from jdlib.advise import committed as committed_advice
    from jdlib.plots import safe_sparsity

    advice = committed_advice("full", tolerance=0.05)
    assert {"magnitude", "wanda", "sparsegpt"} <= set(advice.loc[advice["grid"].str.startswith("compression"), "method"])
    assert {"setting2", "setting3", "setting4", "setting6"} <= set(advice["grid"])
    assert advice["safe_sparsity"].dropna().between(0, 1).all() and len(safe_sparsity(advice).axes) >= 6
