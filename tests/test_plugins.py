"""Plug-in pruning methods ("package.module:function"): run as the built-ins are, identified in the
store by their source, and a bad one stopped in one line before any compute.

The toy plug-ins live in tests/plugins (mypkg.prune: the README's example; broken: one fault each)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from jdlib.analysis.claims import c4_patterns
from jdlib.compress import calibration_from_texts, method_of, prune
from jdlib.compress.plugins import PluginError, load_plugin
from jdlib.config import ROOT, ConfigError
from jdlib.models import tiny_model, tiny_tokenizer
from jdlib.results import ResultsStore, cell_key
from jdlib.settings import load
from jdlib.settings.finetuning import transfer_cells

PLUGINS = Path(__file__).parent / "plugins"
HALVE = "mypkg.prune:halve"
TASK = "bigbench/abstract_narrative_understanding/99_distractors"  # params/ci's Setting 2 task


@pytest.fixture(autouse=True)
def importable(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))


def tiny_bert() -> torch.nn.Module:
    return tiny_model("bert", "classification", num_labels=2).model


def on_pythonpath() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")])}


def test_halve_runs_through_the_setting2_notebook_with_papermill(tmp_path):
    """The README's command, from the repository's root with tests/plugins on PYTHONPATH."""
    store = tmp_path / "s.sqlite"
    found = subprocess.run([str(Path(sys.executable).parent / "papermill"), "notebooks/setting2.ipynb",
                            str(tmp_path / "out.ipynb"), "-p", "params", "ci", "-p", "method", HALVE, "-p", "store",
                            str(store)], cwd=ROOT, env=on_pythonpath(), capture_output=True, text=True)
    assert found.returncode == 0, found.stderr[-3000:]
    rows = ResultsStore(store).frame()
    pruned = rows[rows["transfer"] != "dense"]
    assert set(pruned["method"]) == {HALVE} and set(pruned["pattern"]) == {"unstructured", "2:4"}
    assert (pruned["realised_sparsity"] == 0.5).all()
    assert set(pruned["plugin_source"]) == {load_plugin(HALVE).source_hash}


def test_halve_runs_through_the_advisor_from_the_folder_that_holds_it(tmp_path):
    found = subprocess.run([sys.executable, "-m", "jdlib.advise", "--model", "minilm", "--tasks", TASK, "--params",
                            "ci", "--levels", "2", "4", "--pattern", "unstructured", "--method", HALVE, "--store",
                            str(tmp_path / "s.sqlite"), "--json"], cwd=PLUGINS, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr[-3000:]
    advice = json.loads(found.stdout)["advice"]
    assert [a["level"] for a in advice] == [2, 4] and {a["method"] for a in advice} == {HALVE}
    assert all(a["safe_sparsity"] in (None, 0.5) for a in advice)


@pytest.mark.parametrize("pattern", ["unstructured", "2:4"])
def test_halve_prunes_as_row_wise_magnitude(pattern):
    """Its masks are magnitude pruning's per row (N:M: per group), the built-in's on the same model."""
    mine, theirs = tiny_bert(), tiny_bert()
    masks, report = prune(mine, HALVE, 0.5, pattern)
    expected, _ = prune(theirs, "magnitude", 0.5, pattern, scope="row")
    assert report.scope == "plug-in" and report.realised_sparsity == 0.5
    assert all(torch.equal(masks.keep[n], expected.keep[n]) for n in expected.keep)
    assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))


def test_a_calibrated_plugin_gets_each_layers_inputs_as_wanda_does():
    """wanda_rows declares `calibration` and returns new weights: it must prune exactly as the built-in
    Wanda, so it got each linear's inputs, block by block on the pruned blocks' outputs."""
    calibration = calibration_from_texts(tiny_tokenizer(), ["the quick brown fox jumps over the lazy dog."] * 8,
                                         n_samples=4, seq_len=8)
    assert method_of("mypkg.prune:wanda_rows").calibrated and not method_of(HALVE).calibrated
    mine, theirs = tiny_bert(), tiny_bert()
    masks, report = prune(mine, "mypkg.prune:wanda_rows", 0.5, calibration=calibration)
    expected, wanda = prune(theirs, "wanda", 0.5, calibration=calibration)
    assert all(torch.equal(masks.keep[n], expected.keep[n]) for n in expected.keep)
    assert report.block_errors == pytest.approx(wanda.block_errors)
    with pytest.raises(ValueError, match="needs calibration"):
        prune(tiny_bert(), "mypkg.prune:wanda_rows", 0.5)


def test_a_plugin_is_seeded_when_it_declares_seed(tmp_path, monkeypatch):
    (tmp_path / "seeded_plugin.py").write_text(
        "import torch\n\ndef draw(weights, sparsity, *, seed):\n"
        "    g = torch.Generator().manual_seed(seed)\n"
        "    return {n: torch.rand(w.shape, generator=g) >= sparsity for n, w in weights.items()}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert method_of("seeded_plugin:draw").seeded and not method_of(HALVE).seeded
    first, again, other = (prune(tiny_bert(), "seeded_plugin:draw", 0.5, seed=s)[0] for s in (1, 1, 2))
    assert all(torch.equal(first.keep[n], again.keep[n]) for n in first.keep)
    assert not all(torch.equal(first.keep[n], other.keep[n]) for n in first.keep)


def test_the_cell_key_holds_the_plugins_source(tmp_path, monkeypatch):
    """Cells of an edited plug-in get new keys (no stale rows); built-in cells carry nothing new."""
    source = (PLUGINS / "mypkg" / "prune.py").read_text()
    (tmp_path / "edited_plugin.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = load("setting2", "ci", method=["magnitude", "edited_plugin:halve"])

    def keys(method: str) -> set[str]:
        return {cell_key(c) for c in transfer_cells(config) if c["method"] == method}

    before = keys("edited_plugin:halve")
    assert not any("plugin_source" in c for c in transfer_cells(config) if c["method"] == "magnitude")
    (tmp_path / "edited_plugin.py").write_text(source + "\n# an edit\n")
    load_plugin.cache_clear()
    after = keys("edited_plugin:halve")
    assert before and after and not before & after


@pytest.mark.parametrize("spec, fault", [
    ("no_such_package.prune:halve", "cannot be imported: ModuleNotFoundError"),
    ("unimportable:prune", "cannot be imported: ModuleNotFoundError: No module named 'no_such_dependency"),
    ("mypkg.prune:no_such_function", "has no attribute 'no_such_function' (its functions: halve, wanda_rows)"),
    ("broken:NOT_A_FUNCTION", "is a float, not a function"),
    ("broken:wrong_signature", "cannot be called as function(weights, sparsity"),
    ("broken:raises", "raised RuntimeError: no pruning today"),
    ("broken:wrong_shape", "returned shape"),
    ("broken:wrong_dtype", "returned dtype torch.int64"),
    ("broken:missing_name", "returned no entry for"),
    ("broken:wrong_sparsity", "pruned 0.000 of the weights at target sparsity 0.5"),
    ("broken:ignores_pattern", "keeps more than 2 of some 4 consecutive inputs"),
    ("mypkg.prune", "is not valid: use magnitude, wanda"),
    ("mypkg.prune:", "is not valid: write a plug-in as package.module:function"),
])
def test_a_bad_plugin_stops_validation_in_one_line_naming_it(spec, fault):
    with pytest.raises(ConfigError) as err:
        load("setting2", "ci", method=["magnitude", spec])  # ci has the 2:4 pattern too
    message = str(err.value)
    assert message.startswith("method: ") and f"{spec!r}" in message and fault in message
    assert len(message.splitlines()) == 1


def test_a_bad_plugin_stops_the_advisor_with_exit_2(capsys):
    from jdlib.advise import main

    assert main(["--model", "minilm", "--tasks", TASK, "--params", "ci", "--method", "broken:wrong_dtype"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'broken:wrong_dtype'" in err and "dtype" in err


def test_a_plugin_is_checked_on_the_real_weights_too():
    """prune() called directly (no config validation) checks what the plug-in returns on the model."""
    with pytest.raises(PluginError, match=r"plug-in 'broken:wrong_sparsity' pruned 0.000 .* target sparsity 0.3"):
        prune(tiny_bert(), "broken:wrong_sparsity", 0.3)


def test_c4_pools_a_plugins_rows_as_a_pruning_method_and_leaves_controls_out():
    comparisons = pd.DataFrame([
        {"setting": "setting2", "task": f"t{i}", "family": "unstructured", "method": method, "estimate": 0.3,
         "se": 0.05, "df": 5, "verdict": "holds", "testable": True, "study": f"s{i}"}
        for method in ("magnitude", HALVE, "random") for i in range(3)])
    table = c4_patterns(comparisons).tables["table"]
    assert set(table.loc[table["group"] == "method", "name"]) == {"magnitude", HALVE}
