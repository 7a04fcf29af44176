"""Settings 2, 3, 4 and 6 end to end on tiny models: the embedded path (encoder, BIG-bench) and
the paper path (decoder, MMLU / TriviaQA / FreebaseQA served from tiny local hub-schema data)."""
import datasets
import pytest
import torch
import yaml

import jdlib
import jdlib.settings.nofinetune as nofinetune
from jdlib.compress import prune
from jdlib.config import ConfigError
from jdlib.settings import load
from jdlib.data import check_task_name, load_task
from jdlib.models import tiny_model
from jdlib.results import ResultsStore
from jdlib.settings.nofinetune import ScoringRunner
from jdlib.settings.setting3 import passages

LEVELS = {"setting2": "options", "setting3": "context", "setting4": "shots", "setting6": "format"}
COMMON = {"scope": "global", "method": ["magnitude"], "sparsities": [0.5], "pattern": ["unstructured", "2:4"],
          "seeds": [1, 2], "batch_size": 8, "max_length": 48, "max_eval": 6}
EMBEDDED = {
    "setting2": {"tasks": ["bigbench/abstract_narrative_understanding/99_distractors"], "options": [2, 3, 5]},
    "setting3": {"tasks": ["bigbench/disfl_qa"], "context": [0, 50, 100], "candidates": 4, "max_length": 96},
    "setting4": {"tasks": ["bigbench/intent_recognition"], "shots": [0, 1, 2]},
    "setting6": {"tasks": ["bigbench/qa_wikidata"], "format": ["multiple_choice", "factoid"], "choices": 3,
                 "factoid_pool": 10},
}


def configure(tmp_path, setting, values, **overrides):
    path = tmp_path / f"{setting}.yaml"
    path.write_text(yaml.safe_dump({**COMMON, **values, "store": str(tmp_path / "store.sqlite")}))
    return load(setting, str(path), **overrides)


@pytest.fixture
def count_loads(monkeypatch):
    loads = []
    real = nofinetune.load_model

    def counting(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(nofinetune, "load_model", counting)
    return loads


@pytest.mark.parametrize("setting", sorted(EMBEDDED))
def test_embedded_sweep_runs_once_per_cell_and_resumes(tmp_path, setting, count_loads, monkeypatch):
    config = configure(tmp_path, setting, {**EMBEDDED[setting], "model": "tiny-bert"})
    frame = jdlib.sweep(config, progress=False)
    level = LEVELS[setting]
    assert len(frame) == (2 if setting == "setting6" else 3) * 2 * 3  # levels x seeds x (dense + 2 compressed)
    assert len(count_loads) == 1  # one model for the whole sweep
    assert frame["accuracy"].between(0, 1).all() and (frame["n"] == 6).all()
    dense = frame[frame["transfer"] == "dense"]
    assert (dense[["method", "pattern", "sparsity", "realised_sparsity"]].drop_duplicates().values.tolist()
            == [["none", "dense", 0.0, 0.0]])
    compressed = frame[frame["transfer"] != "dense"]
    assert set(compressed["transfer"]) == {"none"}
    assert compressed["realised_sparsity"].round(3).eq(0.5).all()
    assert frame.groupby([level, "seed"]).size().eq(3).all()

    def refuse(self, cell):
        raise AssertionError("a finished cell ran again")

    monkeypatch.setattr(ScoringRunner, "__call__", refuse)
    again = jdlib.sweep(config, progress=False)
    assert sorted(again["key"]) == sorted(frame["key"])


def test_scores_are_deterministic_for_a_seed_and_seeds_differ(tmp_path):
    values = {**EMBEDDED["setting2"], "model": "tiny-bert", "sparsities": [0.3], "pattern": ["unstructured"],
              "max_eval": 40}
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        runs.append(jdlib.sweep(configure(tmp_path / name, "setting2", values), progress=False).sort_values("key"))
    assert runs[0]["accuracy"].tolist() == runs[1]["accuracy"].tolist()  # a fresh store, the same numbers
    by_seed = runs[0][runs[0]["transfer"] == "dense"].pivot_table(index="options", columns="seed", values="accuracy")
    assert (by_seed[1] != by_seed[2]).any()  # seeds draw different distractors


def test_compressed_state_equals_a_fresh_prune_and_dense_restores_pretrained(tmp_path):
    config = configure(tmp_path, "setting2", {**EMBEDDED["setting2"], "model": "tiny-bert"})
    runner = ScoringRunner(config, lambda runner, cell: {"accuracy": 0.0})
    cell = {"task": config.tasks[0], "seed": 41, "transfer": "none", "method": "magnitude",
            "pattern": "unstructured", "sparsity": 0.5}  # a grid's cells carry their seed (random pruning reads it)
    runner(cell)
    fresh = tiny_model("bert", head="embedding")
    prune(fresh.model, "magnitude", 0.5, "unstructured", "global")
    for (name, got), want in zip(runner.loaded.model.state_dict().items(), fresh.model.state_dict().values()):
        assert torch.equal(got, want), name
    runner({**cell, "transfer": "dense", "method": "none", "pattern": "dense", "sparsity": 0.0})
    pretrained = tiny_model("bert", head="embedding").model.state_dict()
    assert all(torch.equal(v, pretrained[k]) for k, v in runner.loaded.model.state_dict().items())
    runner({**cell, "pattern": "2:4"})
    runner(cell)  # back to a cached state
    assert runner.sparsity == pytest.approx(0.5)
    for (name, got), want in zip(runner.loaded.model.state_dict().items(), fresh.model.state_dict().values()):
        assert torch.equal(got, want), name


def test_cells_are_grouped_by_compressed_state(tmp_path):
    config = configure(tmp_path, "setting4", {**EMBEDDED["setting4"], "model": "tiny-bert"})
    cells = nofinetune.scoring_cells(config, "shots", config.shots)
    states = [nofinetune.state_of(c) for c in cells]
    changes = sum(a != b for a, b in zip(states, states[1:]))
    assert changes == len(set(states)) - 1
    assert cells[0]["transfer"] == "dense"


@pytest.mark.parametrize("override, names", [
    ({"transfer": ["sparse"]}, ["transfer: 'sparse'", "'none'"]),
    ({"options": [1, 2]}, ["options: 1", "at least 2"]),
    ({"answer_metric": "bleu"}, ["answer_metric='bleu'", "exact_match_lenient"]),
    ({"prompt_format": "mmlu"}, ["prompt_format='mmlu'", "letters"]),
    ({"calibration": "wiki"}, ["calibration='wiki'", "c4"]),
    ({"tasks": ["trivia_qb"]}, ["trivia_qb", "mmlu/<subject>"]),
])
def test_bad_parameters_are_named(override, names):
    with pytest.raises(ConfigError) as err:
        load("setting2", "ci", **override)
    for text in names:
        assert text in str(err.value)


def test_setting_specific_checks():
    with pytest.raises(ConfigError, match="factoid_pool=4"):
        load("setting6", "ci", factoid_pool=4)
    with pytest.raises(ConfigError, match="choice_task"):
        load("setting6", "ci", choice_task="glue/nope")
    with pytest.raises(ConfigError, match=r"context: 120"):
        load("setting3", "ci", context=[0, 120])
    with pytest.raises(ConfigError, match="shots: -1"):
        load("setting4", "ci", shots=[-1, 0])
    assert load("setting2", "ci", sparsity=0.3).sparsities == [0.3]


def test_disfl_qa_passages_split_the_context_and_drop_unanswerable():
    rows = passages(load_task("bigbench/disfl_qa"))
    assert rows and all(r["answer"].lower() != "unknown" for r in rows)
    assert all("context:" not in r["question"] and r["context"] for r in rows)
    assert all(r["answer"].replace(" ", "").lower() in r["context"].replace(" ", "").lower() for r in rows)


# -- the paper path: a decoder on MMLU, TriviaQA and FreebaseQA in their hub schemas ------------
def mmlu_split(n, subject):
    return datasets.Dataset.from_list([{"question": f"what is {i} plus {i}?", "subject": subject,
                                        "choices": [str(2 * i), str(2 * i + 1), str(i), "none"], "answer": 0}
                                       for i in range(n)])


def trivia_split(n, with_context=True):
    rows = []
    for i in range(n):
        wiki = [f"some words before. the answer is paris{i} in france. more words after it."] if i % 2 else []
        search = [f"a web page says paris{i} is the one."]
        rows.append({"question": f"which city {i}?", "question_id": str(i), "question_source": "x",
                     "entity_pages": {"doc_source": ["w"] * len(wiki), "filename": ["f"] * len(wiki),
                                      "title": ["t"] * len(wiki), "wiki_context": wiki},
                     "search_results": {"description": ["d"], "filename": ["f"], "rank": [1], "title": ["t"],
                                        "url": ["u"], "search_context": search},
                     "answer": {"aliases": [f"paris{i}", f"paree{i}"], "normalized_aliases": [f"paris{i}"],
                                "matched_wiki_entity_name": "", "normalized_matched_wiki_entity_name": "",
                                "normalized_value": f"paris{i}", "type": "WikipediaEntity", "value": f"Paris{i}"}})
    return datasets.Dataset.from_list(rows)


def freebase_split(n):
    return datasets.Dataset.from_list([{
        "Question-ID": f"q{i}", "RawQuestion": f"who wrote book {i}?", "ProcessedQuestion": f"who wrote book {i}",
        "Parses": [{"Parse-Id": f"q{i}.p0", "PotentialTopicEntityMention": "book", "TopicEntityName": "book",
                    "TopicEntityMid": "m.0", "InferentialChain": "book.author",
                    "Answers": [{"AnswersMid": "m.1", "AnswersName": [f"author{i}", f"writer{i}"]}]}]}
        for i in range(n)])


def piqa_split(n):
    return datasets.Dataset.from_list([{"goal": f"how do i open jar {i}?", "sol1": "twist the lid", "sol2": "eat it",
                                        "label": i % 2} for i in range(n)])


def hellaswag_split(n):
    return datasets.Dataset.from_list([{
        "ind": i, "activity_label": "Home and Garden", "ctx_a": f"[header] How to water plant {i} [title] Fill a can.",
        "ctx_b": "then you", "ctx": "", "endings": ["pour it [step] slowly.", "sing", "run", "sleep"],
        "source_id": "wikihow~1", "split": "val", "split_type": "indomain", "label": str(i % 4)} for i in range(n)])


def openbookqa_split(n):
    return datasets.Dataset.from_list([{"id": str(i), "question_stem": f"the sun is {i}", "answerKey": "BCDA"[i % 4],
                                        "choices": {"text": ["a star", "a rock", "cold", "wet"],
                                                    "label": ["A", "B", "C", "D"]}} for i in range(n)])


@pytest.fixture
def tiny_hub(monkeypatch):
    def fake(path, name=None, **kwargs):
        commonsense = {"ybisk/piqa": piqa_split, "Rowan/hellaswag": hellaswag_split,
                       "allenai/openbookqa": openbookqa_split}
        if path in commonsense:
            split = commonsense[path]
            return datasets.DatasetDict({"train": split(4), "validation": split(6), "test": split(8)})
        if path == "cais/mmlu":
            return datasets.DatasetDict({"dev": mmlu_split(5, "maths"), "test": mmlu_split(8, "maths"),
                                         "validation": mmlu_split(3, "maths")})
        if path == "mandarjoshi/trivia_qa" and name == "rc":
            return datasets.DatasetDict({"train": trivia_split(6), "validation": trivia_split(8)})
        if path == "KelvinJiang/freebase_qa":
            return datasets.DatasetDict({"train": freebase_split(6), "validation": freebase_split(4),
                                         "test": freebase_split(8)})
        raise ConnectionError(f"no internet: {path}")

    monkeypatch.setattr(datasets, "load_dataset", fake)


def test_paper_loaders_give_the_common_view(tiny_hub):
    mmlu = load_task("mmlu")
    assert mmlu.kind == "multiple_choice" and len(mmlu.train) == 5 and len(mmlu.validation) == 8
    assert mmlu.validation[1] == {"text": "what is 1 plus 1?", "options": ["2", "3", "1", "none"], "label": 0,
                                  "subject": "maths"}
    trivia = load_task("trivia_qa")
    assert trivia.kind == "generation" and trivia.validation[0]["answers"] == ["Paris0", "paris0", "paree0"]
    assert trivia.validation[1]["context"].startswith("some words before")  # Wikipedia first
    assert trivia.validation[0]["context"].startswith("a web page")  # else the search result
    freebase = load_task("freebase_qa")
    assert len(freebase.validation) == 8  # the evaluation split ("test" on the hub)
    assert freebase.validation[3] == {"text": "who wrote book 3?", "answers": ["author3", "writer3"]}
    check_task_name("mmlu/abstract_algebra")
    with pytest.raises(ValueError, match="mmlu/<subject>"):
        check_task_name("mmlu_all")


def test_commonsense_loaders_read_as_the_harness_does(tiny_hub):
    piqa, hellaswag, obqa = (load_task(name) for name in ("piqa", "hellaswag", "openbookqa"))
    assert all(t.kind == "multiple_choice" for t in (piqa, hellaswag, obqa))
    assert len(piqa.validation) == len(hellaswag.validation) == 6 and len(obqa.validation) == 8  # OBQA: test
    assert piqa.validation[1] == {"text": "how do i open jar 1?", "options": ["twist the lid", "eat it"], "label": 1,
                                  "template": "Question: {text}\nAnswer:"}
    assert hellaswag.validation[2] == {"text": "Home and Garden: How to water plant 2. Fill a can. Then you",
                                       "options": ["pour it slowly.", "sing", "run", "sleep"], "label": 2,
                                       "template": "{text}"}
    assert [r["label"] for r in obqa.validation][:4] == [1, 2, 3, 0]
    assert jdlib.data.human_scores("hellaswag") == {"average": 95.6}


def test_freebase_answers_from_columnar_parses():
    from jdlib.data.paper_qa import _answer_names

    columnar = {"Parse-Id": ["p0", "p1"], "Answers": [{"AnswersMid": ["m1"], "AnswersName": [["a", "b"]]},
                                                       {"AnswersMid": ["m2"], "AnswersName": [["b", "c"]]}]}
    assert _answer_names(columnar) == ["a", "b", "c"]


PAPER = {
    "setting2": {"tasks": ["mmlu"], "options": [2, 3, 4], "demonstrations": 2, "prompt_format": "letters"},
    "setting3": {"tasks": ["trivia_qa"], "context": [0, 50, 100], "max_context_words": 12, "max_new_tokens": 4},
    "setting4": {"tasks": ["mmlu"], "shots": [0, 1, 3], "prompt_format": "letters"},
    "setting6": {"tasks": ["freebase_qa"], "format": ["multiple_choice", "factoid"], "choice_task": "mmlu",
                 "prompt_format": "letters", "max_new_tokens": 4},
}


@pytest.mark.parametrize("setting", sorted(PAPER))
def test_paper_path_runs_a_sweep_on_a_decoder(tmp_path, tiny_hub, setting):
    values = {**PAPER[setting], "model": "tiny-llama", "scope": "layer", "max_length": 512,
              "pattern": ["unstructured", "2:4"]}
    frame = jdlib.sweep(configure(tmp_path, setting, values), progress=False)
    assert frame["accuracy"].between(0, 1).all()
    assert (frame[frame["transfer"] == "none"]["realised_sparsity"].round(3) == 0.5).all()
    if setting == "setting3":
        assert {"exact_match", "exact_match_lenient", "f1"} <= set(frame.columns)
        assert (frame["accuracy"] == frame["exact_match_lenient"]).all()
    elif setting == "setting6":
        factoid = frame[frame["format"] == "factoid"]
        assert factoid["exact_match"].notna().all() and set(factoid["eval_task"]) == {"freebase_qa"}
        assert set(frame[frame["format"] == "multiple_choice"]["eval_task"]) == {"mmlu"}
    else:
        assert (frame["accuracy"] == frame["acc"]).all() and frame["acc_norm"].between(0, 1).all()


def test_paper_cell_with_wanda_calibrated_on_the_task(tmp_path, tiny_hub):
    values = {**PAPER["setting2"], "model": "tiny-llama", "method": ["wanda", "magnitude"], "scope": "layer",
              "pattern": ["unstructured"], "max_length": 512, "calibration_samples": 2, "calibration_seq_len": 16,
              "seeds": [1], "options": [2, 4]}
    frame = jdlib.sweep(configure(tmp_path, "setting2", values), progress=False)
    wanda = frame[frame["method"] == "wanda"]
    assert len(wanda) == 2 and (wanda["realised_sparsity"].round(3) == 0.5).all()
    seconds = {r["key"]: r["provenance"].get("compress_seconds") for r in ResultsStore(tmp_path / "store.sqlite").rows()}
    # the two levels share one compressed state: compressed once, its seconds counted once
    assert (wanda["block_error"] > 0).all() and sorted(seconds[k] > 0 for k in wanda["key"]) == [False, True]
    assert frame[frame["method"] == "magnitude"]["block_error"].isna().all()  # measured only on calibration data
    assert len(ResultsStore(tmp_path / "store.sqlite").frame()) == len(frame) == 6
    norm = jdlib.stats.normalise(frame, "options")
    fig = jdlib.plots.normalised_performance(norm, "options", float)
    assert sorted(ax.get_title() for ax in fig.axes) == ["mmlu (unstructured, magnitude)", "mmlu (unstructured, wanda)"]


def test_named_levels_plot_and_report():
    """Setting 6's levels are names: the figure's legend and the findings print them as they are."""
    import pandas as pd

    from jdlib.settings.setting6 import ORDER as difficulty

    rows = [{"task": "t", "format": f, "seed": s, "transfer": t, "method": m, "pattern": p, "sparsity": sp,
             "accuracy": acc} for f, drop in (("multiple_choice", 0.1), ("factoid", 0.5)) for s in (1, 2)
            for t, m, p, sp, acc in (("dense", "none", "dense", 0.0, 0.8), ("none", "magnitude", "unstructured", 0.5,
                                                                            0.8 * (1 - drop * s / 2)))]
    norm = jdlib.stats.normalise(pd.DataFrame(rows), "format")
    fig = jdlib.plots.normalised_performance(norm, "format", difficulty, level_label="format")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["format multiple_choice", "format factoid"]
    table = jdlib.stats.trend_table(norm, "format")
    trend = jdlib.stats.difficulty_trend(norm, "format", difficulty)
    found = jdlib.analysis.sentences.setting_findings("s6", norm, table, trend, "format", difficulty)
    assert found["s6_hardest"] == "factoid" and found["s6_easiest"] == "multiple_choice"
    gap = jdlib.stats.slope_gap(norm, "format", difficulty)
    assert gap["gap"].iloc[0] > 0 and gap["verdict"].iloc[0] == "holds"  # factoid drops faster in both seeds


def test_evaluation_sample_is_fixed_or_drawn_per_seed(tmp_path):
    config = configure(tmp_path, "setting6", {**EMBEDDED["setting6"], "model": "tiny-bert"})
    runner = ScoringRunner(config, lambda runner, cell: {})
    rows = [{"i": i} for i in range(100)]
    fixed = [runner.sample(rows, {"max_eval": 10, "eval_seeded": False, "seed": s}) for s in (1, 2)]
    drawn = [runner.sample(rows, {"max_eval": 10, "eval_seeded": True, "seed": s}) for s in (1, 2)]
    assert fixed[0] == fixed[1] and drawn[0] != drawn[1]
    assert all(len(d) == 10 and len({r["i"] for r in d}) == 10 for d in fixed + drawn)
    assert runner.sample(rows, {"max_eval": None, "eval_seeded": True, "seed": 1}) == rows


def test_large_model_mode_gives_the_same_numbers(tmp_path, tiny_hub, monkeypatch):
    """Host-memory pre-trained copy and no compressed-weight cache (a 7B model's mode) change nothing."""
    values = {**PAPER["setting4"], "model": "tiny-llama", "scope": "layer", "max_length": 512, "seeds": [1],
              "pattern": ["unstructured", "2:4"], "sparsities": [0.3, 0.6]}
    runs = []
    for name, large in (("small", 10**12), ("large", 0)):
        monkeypatch.setattr(nofinetune, "LARGE", large)
        (tmp_path / name).mkdir()
        runs.append(jdlib.sweep(configure(tmp_path / name, "setting4", values), progress=False).sort_values("key"))
    assert runs[0]["accuracy"].tolist() == runs[1]["accuracy"].tolist()
    assert runs[0]["realised_sparsity"].tolist() == runs[1]["realised_sparsity"].tolist()


def test_setting5_without_fine_tuning_scores_zero_shot_and_ranks_by_the_gap(tmp_path, tiny_hub):
    values = {"tasks": ["piqa", "hellaswag", "openbookqa"], "transfer": ["none"], "model": "tiny-llama",
              "scope": "layer", "max_length": 512, "pattern": ["unstructured"]}
    config = configure(tmp_path, "setting5", values)
    assert type(config).__name__ == "Setting5ScoringConfig"
    frame = jdlib.sweep(config, progress=False)
    assert len(frame) == 3 * 2 * 2  # task x seed x (dense, 50%)
    assert set(frame["transfer"]) == {"dense", "none"} and "final_train_loss" not in frame
    dense = frame[frame["transfer"] == "dense"].groupby("task")["accuracy"].mean() * 100
    for task, row in frame.groupby("task").first().iterrows():
        assert row["gap"] == round((row["human"] - dense[task]) / row["human"] * 100, 2)
    assert (frame[frame["transfer"] == "none"]["realised_sparsity"].round(3) == 0.5).all()


def test_setting5_transfer_none_cannot_mix_with_fine_tuning():
    with pytest.raises(ConfigError, match="mixes 'none'"):
        load("setting5", "ci", transfer=["none", "sparse"])
    assert type(load("setting5", "ci", transfer="none")).__name__ == "Setting5ScoringConfig"
    assert type(load("setting5", "ci")).__name__ == "Setting5Config"
