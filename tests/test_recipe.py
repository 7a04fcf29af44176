"""The fine-tuning recipe: a fixed number of updates at every data fraction, its version in the key,
and the same key recomputed giving the same metrics."""
import pytest

from jdlib.config import ConfigError
from jdlib.grid import run_grid
from jdlib.models import tiny_model
from jdlib.results import ResultsStore
from jdlib.settings import get, load
from jdlib.settings.finetuning import transfer_cells
from jdlib.settings.setting1 import Setting1Config
from jdlib.train import RECIPE, finetune, update_count

from test_train import toy_data


def test_steps_fix_the_updates_whatever_the_data_size():
    for n in (5, 45):
        loaded = tiny_model("bert", head="classification", num_labels=2, seed=1)
        losses = finetune(loaded, toy_data(n), steps=13, batch_size=8, lr=1e-2, max_length=24, seed=0, progress=False)
        assert len(losses) == 13


def test_cycled_passes_draw_fresh_orders():
    # 45 items in batches of 8: 6 batches a pass; 12 steps are two passes, and the second pass's
    # order differs from the first's, so its losses are not the first pass's repeated
    loaded = tiny_model("bert", head="classification", num_labels=2, seed=1)
    losses = finetune(loaded, toy_data(), steps=12, batch_size=8, lr=0.0, max_length=24, seed=0, progress=False)
    assert len(losses) == 12 and losses[6:] != losses[:6]  # at lr 0 only the order changes the losses


def test_epochs_and_steps_exclusive():
    assert update_count(45, 8, 2, None) == 12
    assert update_count(45, 8, None, 7) == 7
    assert update_count(45, 8, None, None) == 18  # the paper's three epochs
    with pytest.raises(ValueError, match="epochs=2 and steps=7"):
        update_count(45, 8, 2, 7)
    # the caller's budget replaces the params file's other one (params/ci sets steps)
    assert (load("setting1", "ci", epochs=1).epochs, load("setting1", "ci", epochs=1).steps) == (1, None)
    assert (load("setting1", "quick", steps=40).epochs, load("setting1", "quick", steps=40).steps) == (None, 40)
    assert (load("setting1", "quick", epochs=2).epochs, load("setting1", "quick", epochs=2).steps) == (2, None)
    assert load("setting1", "quick").epochs is None  # a file that sets steps needs not write epochs: null
    with pytest.raises(ConfigError, match="set one of them"):
        load("setting1", "ci", epochs=1, steps=3)
    with pytest.raises(ConfigError, match="set one of them"):
        Setting1Config(setting="setting1", tasks=["bigbench/hyperbaton"], epochs=None, steps=None).validate()


def test_the_recipe_version_and_steps_are_in_every_fine_tuning_key():
    config = load("setting1", "ci")
    for cell in transfer_cells(config):
        assert cell["recipe"] == RECIPE and cell["steps"] == config.steps and cell["epochs"] is None


def test_the_same_key_recomputed_gives_the_same_metrics(tmp_path):
    """Two runs of the same fine-tuning cells, each with a fresh runner and store, agree exactly (CPU)."""
    config = load("setting1", "ci", tasks=["bigbench/hyperbaton"], fractions=[1.0], seeds=[41], pattern=["2:4"],
                  store=str(tmp_path / "a.sqlite"))
    spec = get("setting1")
    (part,) = spec.parts(config)
    frames = []
    for name in ("a", "b"):
        store = ResultsStore(tmp_path / f"{name}.sqlite")
        run_grid("setting1", part.cells, spec.make_runner(config), store, progress=False)
        frames.append((store.frame().sort_values("key").reset_index(drop=True), store.outcomes()))
    (a, out_a), (b, out_b) = frames
    assert list(a["key"]) == list(b["key"]) and len(a) == 2
    for metric in ("accuracy", "loss", "final_train_loss"):
        assert a[metric].tolist() == b[metric].tolist()
    assert all((out_a[k] == out_b[k]).all() for k in out_a)
