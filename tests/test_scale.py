"""C1 and S1 per model on the scale cut (issue 20 item 3): read from the store, computing nothing."""
import jdlib
from jdlib.analysis import scale
from jdlib.analysis.claims import NOT_RUN


def test_an_empty_store_gives_every_model_not_run_with_the_cut_sizes(tmp_path):
    found = scale.per_model("ci", str(tmp_path / "empty.sqlite"))
    assert set(found) == {"minilm", "mpnet"}
    assert all(entry[c].verdict == NOT_RUN for entry in found.values() for c in ("C1", "S1"))
    cover = scale.coverage(found)
    assert (cover["stored"] == 0).all() and (cover["cells"] > 0).all() and not cover["whole"].any()
    assert "cannot be said" in scale.sentence(found) and scale.figure(found) is None
    assert not (tmp_path / "empty.sqlite").exists()


def test_a_whole_cut_is_judged_for_its_model_only_and_s1_needs_the_random_cells(tmp_path):
    store = str(tmp_path / "s.sqlite")
    jdlib.sweep(jdlib.load_config("setting2", "ci", store=store, **scale.overrides("minilm", "C1")), progress=False)
    found = scale.per_model("ci", store)
    assert found["minilm"]["C1"].verdict != NOT_RUN and found["minilm"]["S1"].verdict == NOT_RUN
    assert found["mpnet"]["C1"].verdict == NOT_RUN
    assert found["minilm"]["C1"].tables["table"]["setting"].unique().tolist() == ["setting2"]
    assert "C1 judged on setting2" in scale.sentence(found) and scale.figure(found).axes

    jdlib.sweep(jdlib.load_config("setting2", "ci", store=store, **scale.overrides("minilm", "S1")), progress=False)
    found = scale.per_model("ci", store)
    assert found["minilm"]["S1"].verdict != NOT_RUN
    side = scale.side_by_side(found).set_index(["model", "claim"])
    assert side.loc[("minilm", "S1"), "settings"] == "setting2" and side.loc[("mpnet", "S1"), "verdict"] == NOT_RUN
    assert {"pooled [95% CI]", "verdict"} <= set(scale.table(found).data.columns)


def test_the_claims_report_gives_c1_and_s1_per_model(tmp_path):
    from jdlib.claims import report

    out = report("ci", str(tmp_path / "empty.sqlite"))
    assert set(out["by_model"]) == {"minilm", "mpnet"}
    assert out["claims"]["C1"]["by_model"]["mpnet"]["verdict"] == NOT_RUN
    assert {"verdict", "estimate", "low", "high", "counts"} <= set(out["claims"]["S1"]["by_model"]["minilm"])


def test_two_models_are_judged_on_the_settings_whole_for_both(tmp_path, monkeypatch):
    """A second model whole on fewer settings: each model's C1 reads only the settings both have."""
    monkeypatch.setattr(scale, "MODELS", {"minilm": "MiniLM", "tiny-bert": "a tiny random BERT"})
    store = str(tmp_path / "s.sqlite")
    for setting in ("setting2", "setting4"):
        jdlib.sweep(jdlib.load_config(setting, "ci", store=store, **scale.overrides("minilm", "C1")), progress=False)
    jdlib.sweep(jdlib.load_config("setting2", "ci", store=store, **scale.overrides("tiny-bert", "C1")), progress=False)
    found = scale.per_model("ci", store)
    assert found["minilm"]["judged_on"]["C1"] == found["tiny-bert"]["judged_on"]["C1"] == ["setting2"]
    assert set(found["minilm"]["C1"].tables["table"]["setting"]) == {"setting2"}
    assert scale.coverage(found).query("model == 'minilm' and claim == 'C1'")["whole"].sum() == 2
