"""bench/merge_store.py and jdlib.merge: merging stores adds new keys, never changes a stored row."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jdlib.merge import MergeRefused, grid_keys, integrity, measured_rate, merge, projection, seed
from jdlib.results import ResultsStore, StoreError, cell_key

ROOT = Path(__file__).resolve().parents[1]
PROV = {"git_commit": "abc", "device": "NVIDIA H200", "wall_time_s": 2.0, "executor": "local-gpus:4"}


def put(store: ResultsStore, x: int, accuracy: float, outcomes=None) -> str:
    config = {"setting": "demo", "x": x}
    key = cell_key(config)
    store.put(key, "demo", config, {"accuracy": accuracy}, PROV, outcomes)
    return key


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bench/merge_store.py"), *args], capture_output=True,
                          text=True, cwd=ROOT)


def test_new_keys_are_added_with_their_outcomes_and_equal_rows_gain_outcomes(tmp_path):
    into, source = ResultsStore(tmp_path / "into.sqlite"), ResultsStore(tmp_path / "source.sqlite")
    kept = put(into, 0, 0.5, [1, 0])
    bare = put(into, 1, 0.75)  # committed before outcomes were kept
    put(source, 0, 0.5, [1, 0])
    put(source, 1, 0.75, [1, 1, 1, 0])
    new = put(source, 2, 0.25, [0, 0, 0, 1])
    report = merge(source.path, into.path)
    assert sorted(report.equal) == sorted([kept, bare]) and report.new == [new] and not report.different
    assert report.outcomes_added == [bare] and report.written
    assert report.by_setting == {"demo": {"equal": 2, "new": 1}}
    assert into.keys() == {kept, bare, new}
    found = into.outcomes()
    assert found[new].tolist() == [0, 0, 0, 1] and found[bare].tolist() == [1, 1, 1, 0]
    row = into.rows([new])[0]
    assert row["provenance"] == PROV and row["metrics"] == {"accuracy": 0.25}
    assert integrity(into.path) == "ok"
    assert merge(source.path, into.path).new == []  # merging twice adds nothing


def test_a_differing_metric_refuses_the_merge_and_writes_nothing(tmp_path):
    into, source = ResultsStore(tmp_path / "into.sqlite"), ResultsStore(tmp_path / "source.sqlite")
    key = put(into, 0, 0.5)
    put(source, 0, 0.625, [1, 0])
    new = put(source, 1, 0.25)
    with pytest.raises(MergeRefused, match="1 keys .* different metrics") as err:
        merge(source.path, into.path)
    assert err.value.report.different == {key: {"setting": "demo", "metrics": {"accuracy": [0.5, 0.625]}}}
    assert into.keys() == {key} and into.rows()[0]["metrics"] == {"accuracy": 0.5} and into.outcomes() == {}
    report = merge(source.path, into.path, skip_different=True)  # the rest merges; the key stays as stored
    assert report.new == [new] and list(report.different) == [key]
    assert into.rows([key])[0]["metrics"] == {"accuracy": 0.5} and into.outcomes() == {}


def test_differing_outcomes_under_equal_metrics_are_a_difference(tmp_path):
    into, source = ResultsStore(tmp_path / "into.sqlite"), ResultsStore(tmp_path / "source.sqlite")
    key = put(into, 0, 0.5, [1, 0])
    put(source, 0, 0.5, [0, 1])
    with pytest.raises(MergeRefused) as err:
        merge(source.path, into.path)
    assert err.value.report.different[key]["metrics"] == {"outcomes": ["2 questions", "2 of them differ"]}


def test_replace_method_swaps_that_methods_rows_and_outcomes_and_leaves_the_rest_refused(tmp_path):
    into, source = ResultsStore(tmp_path / "into.sqlite"), ResultsStore(tmp_path / "source.sqlite")

    def row(store, method, accuracy, outcomes, commit):
        config = {"setting": "demo", "method": method}
        store.put(cell_key(config), "demo", config, {"accuracy": accuracy}, {**PROV, "git_commit": commit}, outcomes)
        return cell_key(config)

    moved = row(into, "sparsegpt", 0.5, None, "old")
    same = row(into, "gptq", 0.25, [1, 0, 0, 0], "old")
    other = row(into, "wanda", 0.75, None, "old")
    row(source, "sparsegpt", 0.625, [1, 1, 0, 0], "new")
    row(source, "gptq", 0.25, None, "new")
    row(source, "wanda", 0.5, None, "new")
    with pytest.raises(MergeRefused):  # wanda differs and is not named: nothing is written
        merge(source.path, into.path, replace_methods=["sparsegpt", "gptq"])
    assert into.rows([moved])[0]["metrics"] == {"accuracy": 0.5}
    report = merge(source.path, into.path, replace_methods=["sparsegpt", "gptq"], skip_different=True)
    assert set(report.replaced) == {moved, same} and list(report.different) == [other]
    assert report.replaced[moved]["metrics"] == {"accuracy": [0.5, 0.625]} and report.replaced[same]["metrics"] == {}
    assert "2 rows of gptq, sparsegpt replaced (1 of them with other metrics)" in report.summary()
    rows = {r["key"]: r for r in into.rows()}
    assert rows[moved]["metrics"] == {"accuracy": 0.625} and rows[moved]["provenance"]["git_commit"] == "new"
    assert rows[same]["provenance"]["git_commit"] == "new" and rows[other]["metrics"] == {"accuracy": 0.75}
    found = into.outcomes()
    assert found[moved].tolist() == [1, 1, 0, 0] and same not in found  # the old code's outcomes went with its row
    assert integrity(into.path) == "ok"


def test_merge_into_a_missing_store_copies_the_chosen_keys(tmp_path):
    source = ResultsStore(tmp_path / "source.sqlite")
    keys = [put(source, x, x / 10, [x % 2]) for x in range(3)]
    report = merge(source.path, tmp_path / "seed.sqlite", keys=keys[:2])
    seeded = ResultsStore(tmp_path / "seed.sqlite")
    assert report.new == sorted(keys[:2]) and seeded.keys() == set(keys[:2]) and set(seeded.outcomes()) == set(keys[:2])


def test_a_corrupt_store_is_refused_before_anything_is_written(tmp_path):
    into, source = ResultsStore(tmp_path / "into.sqlite"), ResultsStore(tmp_path / "source.sqlite")
    put(into, 0, 0.5)
    for x in range(200):
        put(source, x + 1, 0.5, np.ones(500))
    data = bytearray(source.path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 4096] = b"\xff" * 4096  # a torn page in the middle
    source.path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        merge(source.path, into.path)
    assert len(into.keys()) == 1


def test_cli_reports_counts_refuses_with_one_line_and_prints_json(tmp_path):
    into, source = ResultsStore(tmp_path / "into.sqlite"), ResultsStore(tmp_path / "source.sqlite")
    put(into, 0, 0.5)
    put(source, 0, 0.5, [1, 0])
    put(source, 1, 0.25)
    done = run_cli(str(source.path), "--into", str(into.path), "--json")
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(done.stdout)
    assert len(report["new"]) == 1 and len(report["equal"]) == 1 and len(report["outcomes_added"]) == 1
    other = ResultsStore(tmp_path / "other.sqlite")
    put(other, 1, 0.3)
    refused = run_cli(str(other.path), "--into", str(into.path))
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1 and "refused" in refused.stderr
    assert "accuracy 0.25 -> 0.3" in refused.stdout
    missing = run_cli(str(tmp_path / "nothing.sqlite"), "--into", str(into.path))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_grid_keys_of_the_true_gem_share_setting1_keys():
    gem, setting1 = grid_keys("true_gem", "ci"), grid_keys("setting1", "ci")
    assert set(gem.values()) <= {"setting1", "setting5"}
    within = {k for k, s in gem.items() if s == "setting1"}
    assert within and within & set(setting1)  # the dense and sparse cells are Setting 1's rows


def test_projection_counts_the_missing_cells_at_the_measured_rate(tmp_path):
    keys = list(grid_keys("setting1", "ci"))
    store = ResultsStore(tmp_path / "s.sqlite")
    for key in keys[:2]:
        store.put(key, "setting1", {}, {"accuracy": 0.5}, PROV)  # 2 s a cell with 4 workers: 7,200 an hour
    rate = measured_rate("setting1", "ci", store.path, device="NVIDIA H200")
    assert rate[0] == pytest.approx(7200) and "local-gpus:4" in rate[1]
    assert measured_rate("setting1", "ci", store.path, device="another GPU") is None
    found = projection("setting1", "ci", store.path, rate)
    assert (found.total, found.to_run) == (len(keys), len(keys) - 2)
    assert found.minutes == pytest.approx((len(keys) - 2) / 120)
    assert projection("setting1", "ci", store.path, None).minutes is None


def test_seed_keeps_the_rows_a_grid_reaches_and_with_outcomes_only_those_that_have_them(tmp_path):
    keys = list(grid_keys("setting1", "ci"))
    source = ResultsStore(tmp_path / "full.sqlite")
    for i, key in enumerate(keys[:3]):
        source.put(key, "setting1", {}, {"accuracy": 0.5}, PROV, [1, 0] if i else None)
    other = put(source, 0, 0.5, [1])  # no grid reaches it
    assert ResultsStore(seed(source.path, tmp_path / "d.sqlite", ["setting1"], "ci").into).keys() == set(keys[:3])
    report = seed(source.path, tmp_path / "d.sqlite", ["setting1", "lmc"], "ci", outcomes_only=True)
    assert set(report.new) == set(keys[1:3]) and other not in ResultsStore(tmp_path / "d.sqlite").keys()


def test_overrides_make_another_grid_whose_keys_share_only_what_it_shares(tmp_path):
    """The second scale ({"model": "mpnet"}) is a grid of its own keys; adding a control method keeps the
    magnitude cells' keys, so a store seeded for it holds the rows already computed."""
    minilm = grid_keys("setting2", "ci")
    assert not set(grid_keys("setting2", "ci", {"model": "mpnet"})) & set(minilm)  # validated, not loaded
    controls = grid_keys("setting2", "ci", {"method": ["magnitude", "random"]})
    assert set(minilm) < set(controls)
    source = ResultsStore(tmp_path / "full.sqlite")
    for key in minilm:
        source.put(key, "setting2", {}, {"accuracy": 0.5}, PROV)
    seeded = seed(source.path, tmp_path / "d.sqlite", ["setting2"], "ci", overrides={"model": "mpnet"})
    assert ResultsStore(seeded.into).keys() == set()
    found = projection("setting2", "ci", source.path, None, {"method": ["magnitude", "random"]})
    assert (found.total, found.to_run) == (len(controls), len(controls) - len(minilm))
