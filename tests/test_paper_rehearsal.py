"""bench/paper_rehearsal.py at tiny shapes on the CPU: every params/paper chapter runs end to end through
its notebook's path (load_config + sweep) on synthetic hub data, offline, and its projection counts the
paper grid's cells as the params define them."""
import importlib.util
import json
import socket
import sys
from pathlib import Path

import datasets
import pytest
import torch
import yaml

from jdlib.compress.masks import parse_pattern

ROOT = Path(__file__).resolve().parents[1]
SPEC = importlib.util.spec_from_file_location("paper_rehearsal", ROOT / "bench" / "paper_rehearsal.py")
rehearsal = sys.modules.setdefault("paper_rehearsal", importlib.util.module_from_spec(SPEC))
SPEC.loader.exec_module(rehearsal)


@pytest.fixture(scope="module")
def entries(tmp_path_factory):
    """Every chapter rehearsed once at tiny shapes, one thread, with the network refused."""
    def refuse(*args, **kwargs):
        raise AssertionError("the rehearsal tried to reach the network")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    datasets.disable_progress_bars()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(socket.socket, "connect", refuse)
            found = rehearsal.run(list(rehearsal.CHAPTERS), rehearsal.TINY, tmp_path_factory.mktemp("rehearsal"))
    finally:
        torch.set_num_threads(threads)
    return {e["chapter"]: e for e in found}


def paper(chapter: str) -> dict:
    return yaml.safe_load((ROOT / "params" / "paper" / f"{chapter}.yaml").read_text())


def compressions(v: dict, transfers: int) -> int:
    """Compressed variants per (task, level, seed): transfer x method x pattern x its levels."""
    levels = sum(1 if parse_pattern(p) else len(v["sparsities"]) for p in v["pattern"])
    return transfers * len(v["method"]) * levels


def paper_grid_size(chapter: str) -> int:
    """The cells of a chapter's paper grid, counted from its params file by the paper's design."""
    v = paper(chapter)
    seeds = len(v["seeds"])
    with_dense = 1 + compressions(v, len(v.get("transfer", ["none"])))
    if chapter == "setting1":
        return len(v["tasks"]) * len(v["fractions"]) * seeds * with_dense
    if chapter == "true_gem":
        return (len(v["tasks"]) * len(v["fractions"]) + len(v["gap_tasks"])) * seeds * with_dense
    if chapter == "lmc":  # no dense cell: the dense solution is each cell's other end
        return len(v["tasks"]) * len(v["fractions"]) * seeds * compressions(v, len(v["transfer"]))
    if chapter == "compression":
        levels = len(v["options_tasks"]) * len(v["options"]) + len(v["context_tasks"]) * len(v["context"])
        others = len(v["quantizers"]) * len(v["bits"]) + len(v["rank_fractions"])
        return levels * seeds * (with_dense + others)
    knob = {"setting2": "options", "setting3": "context", "setting4": "shots", "setting6": "format"}.get(chapter)
    return len(v["tasks"]) * (len(v[knob]) if knob else 1) * seeds * with_dense


@pytest.mark.parametrize("chapter", rehearsal.CHAPTERS)
def test_every_chapter_runs_end_to_end(entries, chapter):
    entry = entries[chapter]
    assert entry["ok"], entry.get("error")
    assert entry["model"] == paper(chapter)["model"]
    assert entry["projected_grid_hours"] > 0
    assert entry["phases"]["load"] > 0 and entry["phases"].get("score", entry["phases"].get("fine_tune", 0)) > 0
    # one cell per compression the chapter names, each scored or fine-tuned, and the dense baseline
    # (the loss basin's dense solution is each cell's other end, not a cell)
    methods = {c["method"] for c in entry["cells_run"]}
    named = set(paper(chapter)["method"]) | set(paper(chapter).get("quantizers", []))
    named |= {"svd"} if paper(chapter).get("rank_fractions") else set()
    assert methods == named | ({"none"} if chapter != "lmc" else set())
    assert all(c["wall_s"] > 0 for c in entry["cells_run"])


@pytest.mark.parametrize("chapter", rehearsal.CHAPTERS)
def test_projection_counts_the_paper_grid(entries, chapter):
    entry = entries[chapter]
    assert entry["grid_cells"] == paper_grid_size(chapter)
    run, shared, repeated = entry["grid_cells_to_run"], entry["grid_cells_shared"], entry["grid_cells_repeated"]
    assert run + shared + repeated == entry["grid_cells"] and run > 0


def test_true_gem_runs_both_parts(entries):
    parts = entries["true_gem"]["parts"]
    assert parts["within"]["ok"] and parts["across"]["ok"], parts
    across = [c for c in entries["true_gem"]["cells_run"] if "fraction" not in c]
    assert {c["task"] for c in across} == {"commonsense_qa"}


def test_scored_cells_ask_the_questions_they_were_cut_to(entries):
    for chapter in ("setting2", "setting3", "setting4", "setting5", "setting6", "compression"):
        assert {c["n"] for c in entries[chapter]["cells_run"]} == {rehearsal.TINY.questions}, chapter


def test_synthetic_hub_feeds_jdlibs_loaders_in_the_hubs_schema(monkeypatch):
    hub = rehearsal.SyntheticHub(rehearsal.shared_tokenizer("llama"), rehearsal.TINY)
    monkeypatch.setattr(datasets, "load_dataset", hub.load_dataset)
    import jdlib

    trivia = jdlib.load_task("trivia_qa")
    row = trivia.validation[0]
    assert row["context"] and row["answers"][0].lower() in row["context"].lower()
    mmlu = jdlib.load_task("mmlu")
    assert set(mmlu.validation["subject"]) == set(hub.subjects()) and len(mmlu.validation[0]["options"]) == 4
    for name in ("glue/mnli", "piqa", "hellaswag", "openbookqa", "freebase_qa", "commonsense_qa", "winogrande"):
        task = jdlib.load_task(name)
        assert len(task.train) >= rehearsal.TINY.min_rows and len(task.validation) >= rehearsal.TINY.min_rows, name
    with pytest.raises(OSError, match="offline"):
        jdlib.load_task("glue/rte")


def test_the_decoder_tokenizer_puts_bos_first_and_nothing_after():
    tok = rehearsal.shared_tokenizer("llama")
    plain = tok.encode("a b", add_special_tokens=False)
    assert tok.encode("a b") == [tok.bos_token_id, *plain]


def test_results_merge_by_chapter(tmp_path):
    path = tmp_path / "out.json"
    rehearsal.write([{"chapter": "setting3", "ok": False}, {"chapter": "setting1", "ok": True}], path)
    rehearsal.write([{"chapter": "setting3", "ok": True}], path)
    assert json.loads(path.read_text()) == [{"chapter": "setting1", "ok": True}, {"chapter": "setting3", "ok": True}]


def test_layers_option_is_checked():
    assert rehearsal.parse_layers("13b=10,7b=8") == {"13b": 10, "7b": 8}
    assert rehearsal.parse_layers("4") == {"7b": 4, "13b": 4}
    with pytest.raises(ValueError, match="--layers"):
        rehearsal.parse_layers("70b=3")
