"""The sparsity advisor: its answer on rows with a known one, and the command line on params ci."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from jdlib.advise import advise, main
from jdlib.config import ROOT

SPARSITIES = [0.1, 0.2, 0.3, 0.4, 0.5]
FIRST_UNSAFE = {2: 0.5, 4: 0.3}  # the drop jumps here: easy tasks (2 options) keep more of their weights


def known_rows() -> pd.DataFrame:
    """Setting 2 rows of one task whose pruned model answers exactly as the dense one below FIRST_UNSAFE
    (drop 0 in every seed and question resample) and loses half its correct answers from there on."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in (41, 42, 43):
        for options, unsafe in FIRST_UNSAFE.items():
            dense = (rng.random(200) < 0.8).astype(float)
            halved = dense.copy()
            halved[np.flatnonzero(dense)[::2]] = 0.0
            cells = [("dense", "none", "dense", 0.0, dense)] + [
                ("none", "magnitude", "unstructured", x, dense if x < unsafe else halved) for x in SPARSITIES]
            rows += [{"task": "t", "options": options, "seed": seed, "transfer": transfer, "method": method,
                      "pattern": pattern, "sparsity": x, "accuracy": float(o.mean()), "outcomes": list(o)}
                     for transfer, method, pattern, x, o in cells]
    return pd.DataFrame(rows)


def test_advise_finds_the_known_safe_sparsity():
    table = advise(known_rows(), tolerance=0.01)
    assert list(table["level"]) == [2, 4]  # easiest first
    for _, row in table.iterrows():
        unsafe = FIRST_UNSAFE[row["level"]]
        assert row["safe_sparsity"] == max(x for x in SPARSITIES if x < unsafe)
        assert row["first_unsafe"] == unsafe
        assert (row["drop"], row["low"], row["high"]) == (0.0, 0.0, 0.0)
        assert row["unsafe_low"] > 0.01
    assert set(table["interval"]) == {"seed_bootstrap_questions_t"}
    assert table["testable"].all()  # the dense model answers 0.8 of 2 and 4 options


def test_advise_marks_a_level_below_its_floor():
    rows = known_rows()
    dense = (rows["options"] == 4) & (rows["transfer"] == "dense")
    rows.loc[dense, "outcomes"] = rows.loc[dense, "outcomes"].map(lambda o: [0.0] * len(o))
    rows.loc[dense, "accuracy"] = 0.0
    assert advise(rows, tolerance=0.01).set_index("level")["testable"].to_dict() == {2: True, 4: False}


def test_advise_none_safe_when_the_first_sparsity_drops():
    rows = known_rows()
    rows = rows[(rows["sparsity"] == 0) | (rows["sparsity"] >= 0.3)]  # level 4 drops at its first sparsity
    table = advise(rows, tolerance=0.01).set_index("level")
    assert table.loc[4, "safe_sparsity"] is None or pd.isna(table.loc[4, "safe_sparsity"])
    assert table.loc[4, "first_unsafe"] == 0.3
    assert table.loc[2, "safe_sparsity"] == 0.4


def test_advise_without_outcomes_reads_seeds_only():
    table = advise(known_rows().drop(columns="outcomes"), tolerance=0.01)
    assert set(table["interval"]) == {"seed_t"}


def test_cli_ci_json(tmp_path, capsys):
    argv = ["--model", "minilm", "--tasks", "bigbench/abstract_narrative_understanding/99_distractors",
            "--params", "ci", "--levels", "2", "4", "--pattern", "unstructured", "--store", str(tmp_path / "s.sqlite"),
            "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tolerance"] == 0.01 and out["level"] == "options"
    assert [a["level"] for a in out["advice"]] == [2, 4]
    for entry in out["advice"]:
        assert {"safe_sparsity", "low", "high", "first_unsafe", "tolerance", "method"} <= set(entry)
        assert entry["method"] == "magnitude"
        assert entry["safe_sparsity"] in (None, 0.5) and (entry["safe_sparsity"] is None) == (entry["first_unsafe"] == 0.5)
    assert main(argv) == 0  # resumes from the store: nothing left to compute
    assert "0 of 8 cells to run" in capsys.readouterr().err


def test_cli_without_levels_keeps_the_params_levels_the_task_offers(tmp_path, capsys):
    """The issue's command: hyperbaton has two options a question, params/ci asks for 2, 4 and 8: the advisor
    advises at 2 and says so, instead of refusing (--levels 4 is still refused: the user asked for it)."""
    argv = ["--model", "minilm", "--tasks", "bigbench/hyperbaton", "--params", "ci", "--store",
            str(tmp_path / "s.sqlite"), "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert {a["level"] for a in out["advice"]} == {2} and "options [2] of the params' [2, 4, 8]" in captured.err
    assert all({"safe_sparsity", "low", "high"} <= set(a) for a in out["advice"])
    assert main([*argv, "--levels", "4"]) == 2 and "at most 2 options" in capsys.readouterr().err


@pytest.mark.parametrize("extra, names", [(["--tasks", "bigbench/no_such_task"], "tasks"),
                                          (["--tasks", "bigbench/hyperbaton", "--tolerance", "-0.1"], "tolerance")])
def test_cli_bad_input_exits_2_in_one_line(extra, names, capsys):
    assert main(["--model", "minilm", "--params", "ci", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and names in err


def test_cli_exit_code_from_the_shell():
    found = subprocess.run([sys.executable, "-m", "jdlib.advise", "--model", "minilm", "--tasks", "bigbench/hyperbaton",
                            "--tolerance", "-1"], capture_output=True, text=True, cwd=ROOT)
    assert found.returncode == 2 and "tolerance" in found.stderr and not found.stdout
