"""A chapter's full-scale section: the grid of other params read from their store, computing nothing."""
from pathlib import Path

import yaml

import jdlib
from jdlib.analysis.chapter import committed


def params_file(tmp_path: Path) -> str:
    values = yaml.safe_load(Path("params/ci/setting4.yaml").read_text())
    path = tmp_path / "setting4.yaml"
    path.write_text(yaml.safe_dump({**values, "store": str(tmp_path / "full.sqlite")}))
    return str(path)


def test_a_grid_not_whole_in_the_store_is_shown_as_not_there_and_nothing_is_computed(tmp_path):
    params = params_file(tmp_path)
    found = committed("setting4", params)
    assert found.rows is None and found.figure() is None and found.verdict_table() is None
    assert "0 of its" in found.status and "not whole" in found.status
    assert not (tmp_path / "full.sqlite").exists()


def test_a_whole_grid_is_read_back_with_its_provenance_and_verdicts(tmp_path):
    params = params_file(tmp_path)
    computed = jdlib.sweep(jdlib.load_config("setting4", params), progress=False)
    found = committed("setting4", params)
    assert len(found.rows) == len(computed) and f"{len(computed)} cells" in found.status
    assert "task/pattern combination" in found.status  # the C1 sentence of the chapter's analysis
    assert found.figure() is not None and "verdict" in found.verdict_table()
    assert "itself" in committed("setting4", params, built=params).status


def test_the_claims_report_gives_every_claim_and_the_orders_computing_nothing(tmp_path):
    from jdlib.analysis.verdicts import report

    store = str(tmp_path / "s.sqlite")
    jdlib.sweep(jdlib.load_config("setting4", "ci", store=store), progress=False)
    out = report("ci", store)
    assert sorted(out["claims"]) == ["C1", "C2", "C3", "C4", "C5"] and sorted(out["chance_corrected"]) == sorted(out["claims"])
    for claim in out["claims"].values():
        assert set(claim) == {"verdict", "statistic", "estimate", "low", "high", "rule", "resamples"}
        assert claim["verdict"] in {"holds", "fails", "inconclusive", "not run"}
    assert out["claims"]["C1"]["verdict"] != "not run" and out["claims"]["C2"]["verdict"] == "not run"
    order = out["settings"]["setting4"]
    assert order["declared_order"] == [3, 1, 0] and sorted(order["measured_order"]) == [0, 1, 3]
    assert {"verdict", "verdict_measured_order"} <= set(order)
    assert list(out["settings"]) == ["setting4"]  # the other grids are not in the store: nothing computed
