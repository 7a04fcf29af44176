"""The learnability screen's report as the chapters show it: the committed report and a synthetic one."""
import pytest

from jdlib.analysis.screen import SCREEN, load_screen, screen_page, screen_sentence, screen_table


def synthetic():
    level = lambda dense, passes: {"dense": dense, "low": dense - 0.02, "high": dense + 0.02, "passes": passes,
                                   "seeds": 3}
    return {"tasks": {"bigbench/a": {"train_size": 900, "floor": 0.5, "levels": {"0.1": level(0.7, True),
                                                                                  "1.0": level(0.8, True)},
                                     "data_gradient": {"rise": 0.1, "low": 0.05, "high": 0.15}},
                      "bigbench/b": {"train_size": 50, "floor": 0.6, "levels": {"0.1": level(0.6, False)}}},
            "chosen": ["bigbench/a"], "incomplete": ["bigbench/b"], "rule": "R", "devices": ["GPU"],
            "gate": {"floor": "F", "margin": 0.05}, "recipe": {"steps": 1000, "seeds": [1, 2, 3]}}


def test_the_table_marks_passes_missing_levels_and_the_choice():
    table = screen_table(synthetic()).set_index("task")
    assert table.loc["a", "dense at 0.1"].endswith("+") and table.loc["b", "dense at 0.1"].endswith("-")
    assert table.loc["b", "dense at 1"] == "not run" and table.loc["b", "rise with data"] == "none"
    assert table.loc["a", "chosen"] == "yes" and table.loc["b", "chosen"] == ""


def test_the_sentence_gives_the_rule_the_choice_and_what_is_incomplete():
    text = screen_sentence(synthetic())
    assert "2 candidate" in text and "1 lack rows" in text and "1 tasks pass at every level screened for them" in text and "It chose a." in text


def test_the_committed_screen_chose_tasks_that_pass_every_level():
    screen = load_screen(SCREEN)
    assert screen["chosen"]
    for name in screen["chosen"]:
        assert all(v["passes"] for v in screen["tasks"][name]["levels"].values())
        assert screen["tasks"][name]["data_gradient"]["low"] > 0


def test_a_missing_screen_names_the_script(tmp_path):
    with pytest.raises(FileNotFoundError, match="bench/learnability.py"):
        load_screen(tmp_path / "none.json")


@pytest.mark.parametrize("setting", ["setting1", "true_gem", "lmc"])
def test_the_full_fine_tuning_grids_take_the_tasks_the_screen_chose(setting):
    from jdlib.settings import load

    config = load(setting, "full")
    screen = load_screen(SCREEN)
    assert set(config.tasks) <= set(screen["chosen"])
    assert config.steps == screen["recipe"]["steps"] and config.max_train is None


def test_the_page_table_drops_intervals_and_names_the_choice():
    html = screen_page(synthetic()).to_html()
    assert "0.700 +" in html and "[" not in html.split("<tbody>")[1] and "learnability screen" in html
