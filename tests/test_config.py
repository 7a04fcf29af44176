import pytest

import jdlib.models
from jdlib.config import PARAMS_DIR, ConfigError
from jdlib.settings import SETTINGS, load


@pytest.fixture(autouse=True)
def no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the parameters were validated")

    monkeypatch.setattr(jdlib.models, "load_model", refuse)


@pytest.mark.parametrize("override, names", [
    ({"sparsity": 1.5}, ["sparsity=1.5", "between 0 and 1"]),
    ({"pattern": "9:8"}, ["pattern='9:8'", "kept:group"]),
    ({"tasks": ["bigbench/no_such_task"]}, ["bigbench/no_such_task", "closest"]),
    ({"tasks": ["glue/nope"]}, ["glue/nope", "glue/sst2"]),
    ({"fractions": [0, 0.5]}, ["fractions: 0", "(0, 1]"]),
    ({"transfer": ["half"]}, ["transfer: 'half'", "dense_freeze", "sparse_to_dense"]),
    ({"scope": "block"}, ["scope='block'", "global, layer, row"]),
    ({"method": "obs"}, ["method: 'obs'", "magnitude"]),
    ({"epochs": 0}, ["epochs=0", "positive integer"]),
    ({"colour": "red"}, ["colour", "sparsities"]),
])
def test_bad_parameter_is_named_with_its_allowed_values(override, names):
    with pytest.raises(ConfigError) as err:
        load("setting1", "ci", **override)
    for text in names:
        assert text in str(err.value)


def test_bad_params_name_lists_the_choices():
    with pytest.raises(ConfigError, match="ci, full, paper, quick"):
        load("setting1", "nightly")


def test_sparsity_overrides_the_list_and_none_keeps_the_file():
    config = load("setting1", "quick", sparsity=0.3, tasks=None)
    assert config.sparsities == [0.3]
    assert config.tasks == ["bigbench/vitaminc_fact_verification"]


def test_scalars_become_lists():
    config = load("setting1", "ci", pattern="2:4", seeds=7, fractions=0.5)
    assert config.pattern == ["2:4"] and config.seeds == [7] and config.fractions == [0.5]


PARAMS_FILES = sorted((f.parent.name, f.stem) for f in PARAMS_DIR.glob("*/*.yaml"))


@pytest.mark.parametrize("params, setting", PARAMS_FILES)
def test_every_params_file_validates(params, setting):
    assert setting in SETTINGS, f"params/{params}/{setting}.yaml names no setting"
    assert load(setting, params).setting == setting


def test_paper_setting5_scores_without_fine_tuning():
    config = load("setting5", "paper")
    assert config.transfer == ["none"] and config.tasks == ["piqa", "hellaswag", "openbookqa"]


def test_setting5_checks_the_rater_and_that_tasks_have_human_scores():
    with pytest.raises(ConfigError, match="rater='crowd'.*average, expert"):
        load("setting5", "ci", rater="crowd")
    with pytest.raises(ConfigError, match="hinglish_toxicity.*no average human rater score"):
        load("setting5", "ci", tasks=["bigbench/navigate", "bigbench/hinglish_toxicity"])


def test_calibrated_cells_carry_their_calibration_and_magnitude_cells_keep_their_keys():
    from jdlib.settings import setting1

    config = load("setting1", "ci", method=["magnitude", "wanda"], calibration_samples=16)
    cells = setting1.cells(config)
    wanda = [c for c in cells if c["method"] == "wanda"]
    magnitude = [c for c in cells if c["method"] == "magnitude"]
    assert wanda and all(c["calibration"] == "task" and c["calibration_samples"] == 16 for c in wanda)
    assert magnitude and not any("calibration" in c for c in magnitude)
    with pytest.raises(ConfigError, match="calibration='wiki'.*task, c4"):
        load("setting1", "ci", calibration="wiki")
