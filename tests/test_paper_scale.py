"""Paper scale as the paper and its official code have it: the human-model gaps of Appendix B and
Table 3 from the shipped scores, TriviaQA as the official script reads it (tiny local data in the
hub's schema, no network), the multiple-choice sets of the true gem, and the paper params."""
import datasets
import pandas as pd
import pytest
import torch

from jdlib import load_task
from jdlib.data import check_task_name, human_scores
from jdlib.data.human import APPENDIX_B, TABLE_3, paper_gaps
from jdlib.difficulty import human_model_gap
from jdlib.settings import load, setting3, setting5

# As printed in the paper (arXiv 2310.02277): Appendix B (RoBERTa-Large) and Table 3 (Vicuna-13B).
APPENDIX_B_GAPS = {"glue/sst2": 1.64, "glue/cola": 2.26, "glue/qqp": -14.18, "glue/stsb": 0.54, "glue/qnli": -3.51,
                   "glue/rte": 9.94, "winogrande": 16.91, "commonsense_qa": 18.99}
TABLE_3_GAPS = {"piqa": 17.53, "hellaswag": 37.57, "openbookqa": 60.43}


# -- the human-model gap ---------------------------------------------------------------------
@pytest.mark.parametrize("table, printed", [(APPENDIX_B, APPENDIX_B_GAPS), (TABLE_3, TABLE_3_GAPS)],
                         ids=["appendix_b", "table_3"])
def test_the_papers_gaps_follow_from_its_scores(table, printed):
    assert {task: round(gap, 2) for task, gap in paper_gaps(table).items()} == printed
    assert all(round(human_model_gap(s.human, s.model), 2) == printed[t] for t, s in table.items())


def test_table_3_levels_are_easy_medium_hard_by_gap():
    gaps = paper_gaps(TABLE_3)
    assert sorted(gaps, key=gaps.get) == ["piqa", "hellaswag", "openbookqa"]


def test_setting5_gaps_from_dense_accuracies_reproduce_the_papers():
    """Setting 5's own path (human rater scores and the mean dense accuracy over seeds) gives the
    paper's gaps when the dense model scores what the paper's did."""
    scored = {**APPENDIX_B, **TABLE_3}
    tasks = [t for t, s in scored.items() if s.metric == "accuracy"]
    rows = [{"task": t, "seed": seed, "transfer": "dense", "accuracy": (scored[t].model + shift) / 100}
            for t in tasks for seed, shift in ((41, -0.5), (42, 0.5))]
    gaps = setting5.with_gaps(pd.DataFrame(rows)).groupby("task")["gap"].first().to_dict()
    assert gaps == {t: {**APPENDIX_B_GAPS, **TABLE_3_GAPS}[t] for t in tasks}
    assert len(tasks) == 9


def test_human_scores_only_where_the_human_score_is_an_accuracy():
    # CoLA's human score is a Matthews correlation and STS-B's a Pearson correlation: comparing
    # them with a measured accuracy would be wrong, so Setting 5 cannot use them.
    assert human_scores("glue/cola") == {} and human_scores("glue/stsb") == {}
    assert human_scores("commonsense_qa") == {"average": 89.0} and human_scores("glue/qqp") == {"average": 80.4}
    assert human_scores("piqa") == {"average": 95.0}


# -- TriviaQA as open_closed_book/trivia_vicuna.py reads it ------------------------------------
WIKI = "the tower in paris is the eiffel tower. " * 75  # 3000 characters
WEB = "a web page on the eiffel tower and its history. " * 10


def trivia_row(i: int) -> dict:
    wiki = [WIKI] if i % 4 in (0, 2) else []
    web = [WEB, "a second web result"] if i % 4 in (0, 1) else []
    return {"question": f"question {i}?", "question_id": f"q{i}", "question_source": "x",
            "entity_pages": {"doc_source": ["w"] * len(wiki), "filename": ["f"] * len(wiki),
                             "title": ["t"] * len(wiki), "wiki_context": wiki},
            "search_results": {"description": ["d"] * len(web), "filename": ["f"] * len(web),
                               "rank": list(range(len(web))), "title": ["t"] * len(web),
                               "url": ["u"] * len(web), "search_context": web},
            "answer": {"aliases": ["The Eiffel Tower", "Eiffel tower"], "normalized_aliases": ["eiffel tower"],
                       "matched_wiki_entity_name": "", "normalized_matched_wiki_entity_name": "",
                       "normalized_value": "eiffel tower", "type": "WikipediaEntity",
                       "value": "The Eiffel Tower"}}


def winogrande_split(n):
    return datasets.Dataset.from_list([{"sentence": f"Anna lent Bea {i} books because _ had many.",
                                        "option1": "Anna", "option2": "Bea", "answer": "12"[i % 2]}
                                       for i in range(n)])


def commonsense_qa_split(n):
    return datasets.Dataset.from_list([{"id": str(i), "question": f"where is fox {i}?", "question_concept": "fox",
                                        "choices": {"label": list("ABCDE"),
                                                    "text": ["den", "sea", "sky", "car", "cup"]},
                                        "answerKey": "ABCDE"[i % 5]} for i in range(n)])


@pytest.fixture
def tiny_hub(monkeypatch):
    calls = []

    def fake(path, name=None, **kwargs):
        calls.append((path, name, kwargs))
        if path == "mandarjoshi/trivia_qa" and name == "rc":
            return datasets.DatasetDict({"train": datasets.Dataset.from_list([trivia_row(i) for i in range(3)]),
                                         "validation": datasets.Dataset.from_list([trivia_row(i)
                                                                                   for i in range(2006)])})
        if path == "allenai/winogrande":
            return datasets.DatasetDict({"train": winogrande_split(4), "validation": winogrande_split(6)})
        if path == "tau/commonsense_qa":
            return datasets.DatasetDict({"train": commonsense_qa_split(5), "validation": commonsense_qa_split(7)})
        raise ConnectionError(f"no internet: {path}")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    return calls


def test_trivia_qa_is_the_first_2000_validation_questions_in_order(tiny_hub):
    task = load_task("trivia_qa")
    assert task.kind == "generation" and len(task.validation) == 2000
    assert task.validation["text"] == [f"question {i}?" for i in range(2000)]


def test_trivia_qa_evidence_is_wiki_then_web_cut_to_3072_characters(tiny_hub):
    rows = load_task("trivia_qa").validation.select(range(4))
    both, web_only, wiki_only, none = rows["context"]
    assert len(both) == 3072 and both == (WIKI + WEB)[:3072]  # joined as they are, no separator
    assert both[3000:] == WEB[:72]
    assert web_only == WEB and wiki_only == WIKI and none == ""  # the first web result only


def test_trivia_qa_gold_answers_include_the_normalised_aliases_the_official_script_scores(tiny_hub):
    answers = load_task("trivia_qa").validation[0]["answers"]
    assert answers == ["The Eiffel Tower", "Eiffel tower", "eiffel tower"]


def test_trivia_qa_training_rows_are_read_without_their_evidence(tiny_hub, monkeypatch):
    """Only the question and answer of a training row reach the map (the evidence is the bulk of a row)."""
    seen = []
    real_map = datasets.Dataset.map

    def spy(self, *args, **kwargs):
        seen.append(sorted(self.column_names))
        return real_map(self, *args, **kwargs)

    monkeypatch.setattr(datasets.Dataset, "map", spy)
    task = load_task("trivia_qa")
    assert seen[0] == ["answer", "question"]  # the training split, mapped first
    assert "entity_pages" in seen[1] and task.train.column_names == ["text", "answers"]
    assert task.train[0]["answers"] == ["The Eiffel Tower", "Eiffel tower", "eiffel tower"]


def test_setting3_asks_the_questions_whose_answer_is_in_the_evidence_in_order(tiny_hub):
    task = load_task("trivia_qa")
    # setting3.passages stops on an empty context (it reads that as disfl_qa's format), so the
    # questions without evidence are left out here.
    task.validation = task.validation.filter(lambda r: r["context"] != "")
    rows = setting3.passages(task, None)
    assert [r["question"] for r in rows] == [f"question {i}?" for i in range(2000) if i % 4 != 3]
    assert rows[0]["context"] == (WIKI + WEB)[:3072]  # the whole cut evidence is the 100% window


def test_paper_setting3_params_are_the_official_scripts():
    config = load("setting3", "paper")
    assert config.tasks == ["trivia_qa"] and config.model == "lmsys/vicuna-7b-v1.3"
    assert config.max_new_tokens == 32 and config.answer_metric == "exact_match_lenient"
    assert config.max_context_words is None  # the loader's 3072 characters, not a word budget
    assert config.max_eval is None and config.eval_seeded is False  # all of the first 2000, every seed
    compression = load("compression", "paper")
    assert compression.max_new_tokens == 32 and compression.max_context_words is None
    assert compression.max_eval >= 2000


# -- the true gem: roberta-large, and CSQA and WinoGrande across tasks --------------------------
def test_multiple_choice_sets_of_the_true_gem(tiny_hub):
    wino, csqa = load_task("winogrande"), load_task("commonsense_qa")
    assert wino.kind == csqa.kind == "multiple_choice" and len(wino.validation) == 6 and len(csqa.validation) == 7
    assert wino.validation[1] == {"text": "Anna lent Bea 1 books because ",
                                  "options": ["Anna had many.", "Bea had many."], "label": 1}
    # the official code's format: `<s> Q: Where would I not want a fox? </s> A: hen house </s>`
    assert csqa.validation[3] == {"text": "Q: where is fox 3?", "label": 3,
                                  "options": ["A: den", "A: sea", "A: sky", "A: car", "A: cup"]}
    path, name, kwargs = next(c for c in tiny_hub if c[0] == "allenai/winogrande")
    assert kwargs["data_files"]["validation"].startswith("winogrande_xl/")
    check_task_name("winogrande")


def test_paper_true_gem_params_are_the_official_recipe_and_rank_across_tasks_by_appendix_b():
    config = load("true_gem", "paper")
    assert (config.model, config.max_length, config.batch_size, config.lr, config.epochs) == \
           ("roberta-large", 512, 16, 2e-5, 3)
    assert config.seeds == [41, 42, 43] and sorted(config.tasks) == ["glue/mnli", "glue/qnli", "glue/sst2"]
    across = config.across()
    across.validate()
    gaps = {t: human_model_gap(human_scores(t)["average"], APPENDIX_B[t].model) for t in across.tasks}
    assert sorted(gaps, key=gaps.get) == ["winogrande", "commonsense_qa"]


# -- fitting the paper's models: dtype, placement, memory -------------------------------------
@pytest.fixture(scope="module")
def fp16_llama_folder(tmp_path_factory):
    """A tiny Llama saved in fp16, as Vicuna's checkpoints are."""
    from transformers import AutoModelForCausalLM

    from jdlib.models import tiny_model

    tiny = tiny_model("llama", head="causal_lm")
    folder = tmp_path_factory.mktemp("fp16_llama")
    AutoModelForCausalLM.from_config(tiny.model.config, dtype=torch.float16).save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    return folder


def test_scored_models_load_in_their_checkpoints_dtype_and_fine_tuned_ones_in_fp32(fp16_llama_folder):
    from jdlib.models import load_model

    scored = load_model(str(fp16_llama_folder), head="causal_lm", device="cpu")
    assert {p.dtype for p in scored.model.parameters()} == {torch.float16}  # no fp32 copy of the weights
    tuned = load_model(str(fp16_llama_folder), head="classification", num_labels=2, device="cpu")
    assert {p.dtype for p in tuned.model.parameters()} == {torch.float32}  # AdamW updates fp32 weights
    assert next(load_model(str(fp16_llama_folder), head="causal_lm", device="cpu",
                           dtype="bfloat16").model.parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype='half'"):
        load_model(str(fp16_llama_folder), head="causal_lm", device="cpu", dtype="half")


def test_multiple_choice_head_loads_for_the_true_gems_across_part():
    from jdlib.models import load_model

    loaded = load_model("tiny-bert", head="multiple_choice", device="cpu")
    batch = loaded.tokenizer(["q a", "q b", "q c"], return_tensors="pt", padding=True)
    logits = loaded.model(**{k: v.unsqueeze(0) for k, v in batch.items()}).logits
    assert logits.shape == (1, 3) and next(loaded.model.parameters()).dtype == torch.float32


@pytest.mark.parametrize("pattern, scope", [("unstructured", "layer"), ("unstructured", "row"), ("2:4", "layer"),
                                            ("7:8", "global")])
def test_magnitude_masks_made_matrix_by_matrix_equal_the_whole_models_selection(tiny_llama, pattern, scope):
    from jdlib.compress.magnitude import magnitude_masks, magnitude_scores
    from jdlib.compress.masks import select

    streamed = magnitude_masks(tiny_llama.model, 0.5, pattern, scope)
    whole = select(magnitude_scores(tiny_llama.model), 0.5, pattern, scope)
    assert streamed.keys() == whole.keys() and all(torch.equal(streamed[k], whole[k]) for k in whole)


def cache_bytes_per_token(loaded, tokens: int) -> float:
    out = loaded.model(input_ids=torch.randint(5, 40, (1, tokens)), use_cache=True)
    cache = getattr(out, "cache", None) or out.past_key_values
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values)) / tokens


def test_a_tokens_memory_bound_covers_its_cache_and_logits(tiny_llama):
    from jdlib.models import bytes_per_token

    with torch.no_grad():
        held = cache_bytes_per_token(tiny_llama, 12)
    logits_row = tiny_llama.model.config.vocab_size * 4
    bound = bytes_per_token(tiny_llama.model.config, 4)
    assert bound >= held + logits_row
    assert bound - bytes_per_token(tiny_llama.model.config, 4, cache=False) >= held  # the cache term alone covers it


def test_batches_fill_the_free_memory_share(tiny_llama, monkeypatch):
    from jdlib import models

    per_token = models.bytes_per_token(tiny_llama.model.config, 4)
    monkeypatch.setattr(models, "free_bytes", lambda device: 400 * 100 * per_token)
    assert models.fitting_batch(tiny_llama.model, 100, share=0.5) == 200
    assert models.fitting_batch(tiny_llama.model, 100, share=0.5, cap=64) == 64
    assert models.fitting_batch(tiny_llama.model, 10**9) == 1
    monkeypatch.setattr(models, "free_bytes", lambda device: None)  # off a GPU
    assert models.fitting_batch(tiny_llama.model, 100) == models.CPU_BATCH


def test_generation_batched_from_memory_equals_one_prompt_at_a_time(tiny_llama):
    from jdlib.scorers import Generator

    prompts = ["ab", "a much longer prompt here", "xyz?", "q"]
    auto = Generator(tiny_llama, max_new_tokens=5, batch_size=None, stop=())(prompts)
    alone = [Generator(tiny_llama, max_new_tokens=5, batch_size=1, stop=())([p])[0] for p in prompts]
    assert auto == alone


@pytest.mark.parametrize("bos", [True, False])
def test_a_prompt_too_long_keeps_its_bos_and_its_end(tiny_llama, bos):
    """A Llama tokenizer's BOS stays first; a tokenizer that adds none (GPT-2's) keeps the prompt's end alone."""
    from tokenizers.processors import TemplateProcessing

    from jdlib.models import LoadedModel, tiny_tokenizer
    from jdlib.scorers import Generator

    tok = tiny_tokenizer()
    if bos:
        tok._tokenizer.post_processor = TemplateProcessing(single="[CLS] $A", special_tokens=[("[CLS]", tok.bos_token_id)])
    loaded = LoadedModel(tiny_llama.model, tok, "t", "causal_lm", "decoder")
    prompt = "the context that runs far too long: question?"
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids = [tok.bos_token_id] * bos + ids[-(16 - 3 - bos):]  # max_length 16, 3 new tokens, the BOS if any
    with torch.no_grad():
        for _ in range(3):
            ids.append(int(tiny_llama.model(torch.tensor([ids])).logits[0, -1].argmax()))
    got = Generator(loaded, max_new_tokens=3, max_length=16, stop=())([prompt])[0]
    assert got == tok.decode(ids[-3:], skip_special_tokens=True).strip()
    with pytest.raises(ValueError, match="max_length=4"):
        Generator(tiny_llama, max_new_tokens=3, max_length=4)


def test_snapshot_goes_to_host_memory_when_the_device_is_short(tiny_llama, monkeypatch):
    from jdlib import models

    monkeypatch.setattr(models, "free_bytes", lambda device: 0)
    copy = models.snapshot(tiny_llama.model)
    state = tiny_llama.model.state_dict()
    assert all(torch.equal(copy[k], v) and copy[k].data_ptr() != v.data_ptr() for k, v in state.items())
    with torch.no_grad():
        next(tiny_llama.model.parameters()).add_(1.0)
    models.restore(tiny_llama.model, copy)
    assert all(torch.equal(copy[k], v) for k, v in tiny_llama.model.state_dict().items())


# -- the no-fine-tuning runner at paper scale ----------------------------------------------------
def scoring_runner(params: str = "ci", **values):
    from jdlib.settings.nofinetune import ScoringRunner

    return ScoringRunner(load("setting2", params, **values), lambda runner, cell: {})


def test_a_large_models_pretrained_copy_is_a_snapshot(monkeypatch):
    """No special host copy: `models.snapshot` keeps it on the GPU when it fits, and no compressed state is cached."""
    from jdlib import models
    from jdlib.settings import nofinetune

    made = []
    monkeypatch.setattr(nofinetune, "LARGE", 0)  # the tiny model counts as large
    monkeypatch.setattr(nofinetune, "snapshot", lambda model: made.append(models.snapshot(model)) or made[-1])
    runner = scoring_runner(model="tiny-llama")
    runner._load()
    assert len(made) == 1 and runner.pretrained is made[0] and runner.compressed.max_cached == 0


@pytest.mark.parametrize("source", ["c4", "task"])
def test_only_task_calibration_reads_the_tasks_training_text(monkeypatch, source):
    from jdlib.data import Task
    from jdlib.models import tiny_model
    from jdlib.settings import nofinetune

    read, seen = [], []
    train = datasets.Dataset.from_list([{"text": "a question", "context": "its passage"}, {"text": "b", "context": ""}])
    monkeypatch.setattr(nofinetune, "calibration_for", lambda source, tokenizer, texts, n, seq_len: seen.append(texts))
    runner = scoring_runner(model="tiny-llama", calibration=source)
    runner.loaded = tiny_model("llama", head="causal_lm")
    monkeypatch.setattr(runner, "task", lambda name: read.append(name) or Task(name, "generation", train, train))
    runner._calibration("trivia_qa")
    assert (read, list(seen[0])) == (([], []) if source == "c4" else (["trivia_qa"], ["a question its passage", "b"]))


@pytest.mark.parametrize("chapter", ["setting3", "setting6", "compression"])
def test_paper_batches_are_sized_from_free_memory_and_keep_the_cells_keys(chapter):
    """batch_size null (the paper params of the generating chapters) is out of the key: the cells of a fixed size."""
    from jdlib.results import cell_key
    from jdlib.settings import SETTINGS

    def keys(config):
        return {cell_key({"setting": part.key_setting, **cell}) for part in SETTINGS[chapter].parts(config)
                for cell in part.cells}

    config = load(chapter, "paper")
    assert config.batch_size is None and keys(config) == keys(load(chapter, "paper", batch_size=8))


def test_batch_size_null_reaches_the_scorers(tmp_path):
    import yaml

    from jdlib.config import PARAMS_DIR
    from jdlib.models import CPU_BATCH

    params = tmp_path / "setting2.yaml"  # null in a YAML file (a None override takes the file's value)
    params.write_text(yaml.safe_dump({**yaml.safe_load((PARAMS_DIR / "ci" / "setting2.yaml").read_text()),
                                      "batch_size": None}))
    decoder = scoring_runner(str(params), model="tiny-llama")
    decoder._load()
    assert decoder.loglik().batch_size is None and decoder.generator().batch_size is None  # sized per batch
    encoder = scoring_runner(str(params), model="tiny-bert")
    encoder._load()
    assert encoder.embedder().batch_size == CPU_BATCH  # models.fitting_batch off a GPU
    with pytest.raises(Exception, match="batch_size"):
        scoring_runner(model="tiny-llama", batch_size=0)
