"""The true-gem and loss-basin ablations: interpolation, barriers, the C2 and C5 verdicts, the grids."""
import datasets
import numpy as np
import pandas as pd
import pytest
import torch

import dataclasses

import jdlib
import jdlib.settings
from jdlib import lmc
from jdlib.analysis import claims
from jdlib.config import ConfigError
from jdlib.settings import load
from jdlib.models import tiny_model
from jdlib.results import ResultsStore, cell_key
from jdlib.settings import lmc as lmc_setting
from jdlib.settings import setting1, setting5, true_gem
from jdlib.settings.finetuning import FinetuneRunner, transfer_cells
from jdlib.train import finetune, init_head


def toy_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    texts = [("good " if i % 2 else "bad ") + "".join(rng.choice(list("abcdefgh"), 5)) for i in range(n)]
    return datasets.Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(n)]})


def two_solutions():
    """A dense and a sparse fine-tuned tiny BERT from the same init, head init and data order."""
    from jdlib.compress import prune

    loaded = tiny_model("bert", head="classification", num_labels=2, seed=3)
    start = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    init_head(loaded, 7)
    finetune(loaded, toy_data(), "dense", epochs=2, batch_size=8, lr=5e-3, max_length=16, seed=7, progress=False)
    dense = lmc.parameters(loaded.model)
    loaded.model.load_state_dict(start)
    masks, _ = prune(loaded.model, sparsity=0.6)
    init_head(loaded, 7)
    finetune(loaded, toy_data(), "sparse", masks, epochs=2, batch_size=8, lr=5e-3, max_length=16, seed=7,
             progress=False)
    return loaded, dense, lmc.parameters(loaded.model)


@pytest.fixture(scope="module")
def solutions():
    return two_solutions()


# --- interpolation and barrier ---------------------------------------------------------

def test_interpolation_endpoints_reproduce_each_solution_exactly(solutions):
    loaded, dense, sparse = solutions
    val = toy_data(24, seed=1)
    from jdlib.evaluate import evaluate

    ends = {}
    for name, params in (("dense", dense), ("sparse", sparse)):
        with torch.no_grad():
            for n, p in loaded.model.named_parameters():
                p.copy_(params[n])
        ends[name] = evaluate(loaded, val, max_length=16)
    curve = lmc.interpolation_curve(loaded, dense, sparse, val, [0.0, 0.25, 0.5, 0.75, 1.0], max_length=16)
    assert curve["losses"][0] == ends["dense"]["loss"] and curve["losses"][-1] == ends["sparse"]["loss"]
    assert curve["accuracies"][0] == ends["dense"]["accuracy"]
    assert ends["dense"]["loss"] != ends["sparse"]["loss"]  # two different solutions
    lmc.interpolate(loaded.model, dense, sparse, 1.0)
    assert all(torch.equal(p, sparse[n]) for n, p in loaded.model.named_parameters())
    lmc.interpolate(loaded.model, dense, sparse, 0.5)
    n, p = next((n, p) for n, p in loaded.model.named_parameters() if "classifier.weight" in n)
    assert torch.allclose(p, (dense[n] + sparse[n]) / 2)  # the head is interpolated too


def test_barrier_of_identical_models_is_zero(solutions):
    loaded, dense, _ = solutions
    curve = lmc.interpolation_curve(loaded, dense, {k: v.clone() for k, v in dense.items()}, toy_data(24, 1),
                                    [0.0, 0.3, 0.5, 0.7, 1.0], max_length=16)
    assert len(set(curve["losses"])) == 1
    assert lmc.barrier([0.0, 0.3, 0.5, 0.7, 1.0], curve["losses"]) == 0.0


def test_barrier_formula_on_a_hand_made_curve():
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    # endpoints 1 and 3: the line is 1.5, 2, 2.5 inside; excesses 0.5, 1.5, 0.0
    assert lmc.barrier(alphas, [1.0, 2.0, 3.5, 2.5, 3.0]) == pytest.approx(1.5)
    assert lmc.barrier(alphas, [1.0, 1.2, 1.4, 1.6, 3.0]) == pytest.approx(0.0)  # below the line: no barrier
    # accuracy: the largest dip below the line between 0.8 and 0.6
    assert lmc.barrier(alphas, [0.8, 0.75, 0.3, 0.65, 0.6], higher_is_worse=False) == pytest.approx(0.4)
    with pytest.raises(ValueError, match="include 0 and 1"):
        lmc.barrier([0.0, 0.5], [1.0, 2.0])


def test_curves_unpack_one_row_per_alpha():
    frame = pd.DataFrame({"task": ["t"], "seed": [1], "alphas": [[0.0, 0.5, 1.0]], "losses": [[1.0, 2.0, 1.5]],
                          "accuracies": [[0.9, 0.5, 0.8]], "barrier": [0.75]})
    paths = lmc.curves(frame)
    assert list(paths["alpha"]) == [0.0, 0.5, 1.0] and list(paths["path_loss"]) == [1.0, 2.0, 1.5]
    assert (paths["barrier"] == 0.75).all()


# --- C2 verdict ----------------------------------------------------------------------------

def c2_frame(gaps, seeds=(1, 2, 3, 4), sparsities=(0.3, 0.6), noise=0.0, level_values=(0.25, 1.0)):
    """Synthetic rows: at each level, dense = 0.8 and each mode loses gaps[mode] x sparsity."""
    rng = np.random.default_rng(0)
    rows = []
    for fraction in level_values:
        for seed in seeds:
            rows.append(dict(task="t", fraction=fraction, seed=seed, transfer="dense", method="none", pattern="dense",
                             sparsity=0.0, accuracy=0.8))
            for s in sparsities:
                for mode, gap in gaps.items():
                    acc = 0.8 - (gap * s if fraction == min(level_values) else 0.0) + noise * rng.standard_normal()
                    rows.append(dict(task="t", fraction=fraction, seed=seed, transfer=mode, method="magnitude",
                                     pattern="unstructured", sparsity=s, accuracy=acc))
    return pd.DataFrame(rows)


def test_c2_holds_when_the_keeping_modes_beat_the_removing_ones_more_on_the_hard_level():
    frame = c2_frame({"dense_freeze": 0.01, "sparse_to_dense": 0.2, "sparse": 0.4}, noise=0.005)
    result = claims.c2_irreversibility(frame, "fraction", setting1.ORDER)
    assert result["hardest"] == 0.25 and result["pairs"] == 8
    assert result["advantage_verdict"] == "holds" and result["harder_verdict"] == "holds"
    assert result["verdict"] == "holds" and "holds" in result["sentence"] and "regrow" in result["rule"]
    # the easy level, where nothing is lost, is in the table but does not decide part (a)
    easy = result["table"][result["table"]["fraction"] == 1.0]
    assert (easy["verdict"] != "holds").all()


def test_c2_does_not_require_sparse_to_dense_to_beat_sparse():
    frame = c2_frame({"dense_freeze": 0.01, "sparse_to_dense": 0.4, "sparse": 0.2}, noise=0.005)
    result = claims.c2_irreversibility(frame, "fraction", setting1.ORDER)
    assert result["sparse_to_dense_vs_sparse_verdict"] == "fails" and result["verdict"] == "holds"


def test_c2_fails_when_removing_the_small_weights_costs_nothing_or_more_on_the_easy_level():
    regrown = c2_frame({"dense_freeze": 0.3, "sparse_to_dense": -0.2, "sparse": 0.0}, noise=0.005)
    assert claims.c2_irreversibility(regrown, "fraction", setting1.ORDER)["advantage_verdict"] == "fails"
    easy_pays = c2_frame({"dense_freeze": 0.0, "sparse_to_dense": 0.2, "sparse": 0.4}, noise=0.005,
                         level_values=(1.0, 0.25))  # the losses sit at the smallest value, here the easy end
    flipped = easy_pays.assign(fraction=easy_pays["fraction"].map({1.0: 0.25, 0.25: 1.0}))
    assert claims.c2_irreversibility(flipped, "fraction", setting1.ORDER)["harder_verdict"] == "fails"


def test_c2_inconclusive_on_noise_one_seed_or_no_removing_mode():
    noisy = c2_frame({"dense_freeze": 0.0, "sparse_to_dense": 0.0, "sparse": 0.0}, noise=0.05)
    assert claims.c2_irreversibility(noisy, "fraction", setting1.ORDER)["verdict"] == "inconclusive"
    one = c2_frame({"dense_freeze": 0.01, "sparse_to_dense": 0.2, "sparse": 0.4}, seeds=(1,), sparsities=(0.5,))
    assert claims.c2_irreversibility(one, "fraction", setting1.ORDER)["verdict"] == "inconclusive"
    keep_only = c2_frame({"dense_freeze": 0.01}, noise=0.005)
    assert claims.c2_irreversibility(keep_only, "fraction", setting1.ORDER)["verdict"] == "inconclusive"
    assert claims.c2_irreversibility(pd.DataFrame(), "fraction", setting1.ORDER)["verdict"] == "inconclusive"


def test_c2_across_tasks_takes_the_largest_gap_as_hardest():
    frame = c2_frame({"dense_freeze": 0.01, "sparse_to_dense": 0.2, "sparse": 0.4}, noise=0.005,
                     level_values=(60.0, 10.0))
    frame["task"] = frame["fraction"].map({60.0: "bigbench/hard", 10.0: "bigbench/easy"})
    frame = frame.rename(columns={"fraction": "gap"})
    frame.loc[frame["gap"] == 60.0, "accuracy"] = 0.8  # the smallest gap has the losses now
    result = claims.c2_irreversibility(frame, "gap", setting5.ORDER, across_tasks=True)
    assert result["hardest"] == 60.0 and result["hardest_tasks"] == "hard" and result["verdict"] != "holds"


def test_mean_ci_t_and_bootstrap():
    x = [1.0, 2.0, 3.0, 4.0]
    mean, low, high = claims.mean_ci(x)
    assert mean == 2.5 and low == pytest.approx(2.5 - 3.182446 * np.std(x, ddof=1) / 2, rel=1e-5)
    mean, low, high = claims.mean_ci(x, ci="bootstrap")
    assert 1.0 <= low < 2.5 < high <= 4.0
    assert np.isnan(claims.mean_ci([1.0])[1])
    assert np.isnan(claims.mean_ci([0.03, 0.03, 0.03])[1]) and np.isnan(claims.mean_ci([0.03] * 3, ci="bootstrap")[2])
    with pytest.raises(ValueError, match="t, bootstrap"):
        claims.mean_ci(x, ci="normal")


# --- C5 verdict ----------------------------------------------------------------------------

def c5_frame(easy, hard, noise=0.01):
    rng = np.random.default_rng(1)
    return pd.DataFrame([dict(task="t", fraction=f, seed=seed, transfer="sparse", method="magnitude",
                              pattern="unstructured", sparsity=s, barrier=b * s + noise * rng.standard_normal(),
                              dense_loss=1.0)
                         for f, b in ((1.0, easy), (0.25, hard)) for seed in (1, 2, 3) for s in (0.4, 0.8)])


def test_c5_verdict_from_the_paired_barrier_difference():
    held = claims.c5_basin(c5_frame(0.0, 0.5), "fraction", lmc_setting.SETTING.order)
    assert held["verdict"] == "holds" and held["easy"] == 1.0 and held["hard"] == 0.25 and held["pairs"] == 6
    assert held["rising_verdict"] == "holds" and held["easy_verdict"] == "holds" and held["easy_tolerance"] == 0.05
    assert claims.c5_basin(c5_frame(0.5, 0.0), "fraction", lmc_setting.SETTING.order)["verdict"] == "fails"
    # the barrier rises, but the easy level is not connected either: C5's second part fails
    both_high = claims.c5_basin(c5_frame(0.5, 1.0), "fraction", lmc_setting.SETTING.order)
    assert both_high["rising_verdict"] == "holds" and both_high["easy_verdict"] == "fails"
    assert both_high["verdict"] == "fails"
    assert claims.c5_basin(c5_frame(0.1, 0.1, noise=0.2), "fraction", lmc_setting.SETTING.order)["verdict"] == "inconclusive"
    one_level = c5_frame(0.0, 0.5).query("fraction == 1.0")
    assert claims.c5_basin(one_level, "fraction", lmc_setting.SETTING.order)["verdict"] == "inconclusive"


def test_glue_values_keep_scalars_only():
    values = claims.glue_values("x", {"verdict": "holds", "n": np.int64(3), "m": np.float64(0.5),
                                      "table": pd.DataFrame()})
    assert values == {"x_verdict": "holds", "x_n": 3, "x_m": 0.5} and type(values["x_n"]) is int


# --- grids ---------------------------------------------------------------------------------

def test_true_gem_runs_all_four_modes_and_shares_setting_1_and_5_keys():
    config = load("true_gem", "ci")
    grids = {p.key_setting: p.cells for p in true_gem.parts(config)}
    for cells in grids.values():
        assert {c["transfer"] for c in cells} == {"dense", "dense_freeze", "sparse", "sparse_to_dense"}
    s1 = load("setting1", "ci", pattern=config.pattern, sparsities=config.sparsities)
    s5 = load("setting5", "ci", tasks=config.gap_tasks)
    mine = {cell_key({"setting": name, **c}) for name, cells in grids.items() for c in cells}
    shared1 = {cell_key({"setting": "setting1", **c}) for c in setting1.cells(s1)}
    shared5 = {cell_key({"setting": "setting5", **c}) for c in transfer_cells(s5)}
    extra = {cell_key({"setting": name, **c}) for name, cells in grids.items() for c in cells
             if c["transfer"] in ("dense_freeze", "sparse_to_dense")}
    assert shared1 <= mine and shared5 <= mine and mine == shared1 | shared5 | extra


def test_true_gem_reuses_stored_setting_rows_and_adds_gaps(tmp_path, monkeypatch):
    store = str(tmp_path / "r.sqlite")
    config = load("true_gem", "ci", store=store)
    calls = []

    def fake(cell):
        calls.append(cell)
        return {"accuracy": 0.5 + 0.1 * cell["seed"] % 3 - 0.2 * cell["sparsity"]}

    from jdlib.grid import run_grid

    s1 = load("setting1", "ci", pattern=config.pattern, sparsities=config.sparsities, store=store)
    run_grid("setting1", setting1.cells(s1), lambda: fake, ResultsStore(store), progress=False)
    before = len(calls)
    faked = dataclasses.replace(true_gem.SETTING, make_runner=lambda config: (lambda: fake))
    monkeypatch.setitem(jdlib.settings.SETTINGS, "true_gem", faked)
    results = jdlib.sweep(config, progress=False)
    new = calls[before:]
    assert not any(c.get("fraction") is not None and c["transfer"] in ("dense", "sparse") for c in new)
    assert len(results.within) == len({p.key_setting: p.cells for p in true_gem.parts(config)}["setting1"])
    assert {"human", "dense_score", "gap"} <= set(results.across.columns)
    assert results.across.groupby("task")["gap"].nunique().eq(1).all()
    # the task in both parts is fine-tuned once on all its data: its across-task rows are copies
    assert not any(c["task"] == config.tasks[0] and "fraction" not in c for c in new)
    rows = ResultsStore(store).rows()
    copies = [r for r in rows if "copied_from" in r["provenance"]]
    assert len(copies) == 2 * 4  # seeds x (dense + three modes at one sparsity)
    by_key = {r["key"]: r for r in rows}
    assert all(r["metrics"] == by_key[r["provenance"]["copied_from"]]["metrics"] for r in copies)
    vita = results.across[results.across["task"] == config.tasks[0]].sort_values(["seed", "transfer"])
    full = results.within[results.within["fraction"] == 1.0].sort_values(["seed", "transfer"])
    assert list(vita["accuracy"]) == list(full["accuracy"])
    labels = pd.Series([r["setting"] for r in rows]).value_counts()
    assert labels.to_dict() == {"true_gem": len(new) + len(copies), "setting1": before}  # shared rows keep their label


def test_true_gem_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="beside the dense baseline"):
        load("true_gem", "ci", transfer=["dense", "sparse"])
    with pytest.raises(ConfigError, match="fraction"):
        load("true_gem", "ci", fractions=[0.0])
    assert load("true_gem", "ci", gap_tasks=[]).gap_tasks == []
    with pytest.raises(ConfigError, match="alphas"):
        load("lmc", "ci", alphas=[0.2, 0.5, 1.0])
    with pytest.raises(ConfigError, match="alphas"):
        load("lmc", "ci", alphas=[0.0, 0.7, 0.5, 1.0])


def test_lmc_cells_group_the_shared_dense_solution_and_carry_the_alpha_grid():
    config = load("lmc", "ci", sparsities=[0.3, 0.6])
    cells = lmc_setting.cells(config)
    assert all(c["transfer"] == "sparse" and c["alphas"] == [0.0, 0.5, 1.0] for c in cells)
    runs = [(c["task"], c["fraction"], c["seed"]) for c in cells]
    assert len(cells) == 2 * 2 * 2 and all(runs[i] == runs[i + 1] for i in range(0, len(runs), 2))


def test_dense_freeze_cell_holds_small_weights_at_pre_trained_values(tmp_path):
    """The runner must not start dense_freeze from the pruned weights (that would be sparse transfer)."""
    config = load("true_gem", "ci", model="tiny-bert", fractions=[1.0], seeds=[1], max_train=16, max_eval=8,
                  max_length=16, gap_tasks=[], lr=1e-2, store=str(tmp_path / "r.sqlite"))
    runner = FinetuneRunner(config)
    cell = next(c for c in {p.key_setting: p.cells for p in true_gem.parts(config)}["setting1"] if c["transfer"] == "dense_freeze")
    runner(cell)
    masks = runner._compress(cell["method"], cell["pattern"], cell["sparsity"])
    runner(cell)  # again, now that the compressed weights are cached
    params = dict(runner.loaded.model.named_parameters())
    for name, keep in masks.keep.items():
        assert torch.equal(params[name][~keep], runner.pretrained[name][~keep])
        assert (params[name][~keep] != 0).any()


def test_lmc_runner_records_curves_whose_ends_are_the_two_solutions(tmp_path):
    config = load("lmc", "ci", model="tiny-bert", fractions=[1.0], seeds=[1], sparsities=[0.5, 0.8],
                  max_train=16, max_eval=8, max_length=16, lr=1e-2, store=str(tmp_path / "r.sqlite"))
    frame = jdlib.sweep(config, progress=False)
    assert len(frame) == 2
    for _, row in frame.iterrows():
        assert len(row["losses"]) == len(row["alphas"]) == 3
        assert row["dense_loss"] == row["losses"][0] and row["loss"] == row["losses"][-1]
        assert row["barrier"] == pytest.approx(lmc.barrier(row["alphas"], row["losses"]))
        assert row["barrier"] >= 0
    assert frame["dense_loss"].nunique() == 1  # one dense solution shared by both sparsities
    plain = FinetuneRunner(config)({k: v for k, v in lmc_setting.cells(config)[0].items() if k != "alphas"})
    assert plain["loss"] == frame.iloc[0]["loss"]  # the sparse end is the ordinary sparse-transfer cell


def test_fine_tuned_sparsegpt_cell_records_its_compression(tmp_path):
    config = load("setting1", "ci", model="tiny-bert", fractions=[1.0], seeds=[1], sparsities=[0.5],
                  pattern=["unstructured"], method=["sparsegpt"], max_train=16, max_eval=8, max_length=16,
                  calibration_samples=4, calibration_seq_len=8, store=str(tmp_path / "r.sqlite"))
    frame = jdlib.sweep(config, progress=False)
    pruned = frame[frame["method"] == "sparsegpt"].iloc[0]
    assert pruned["realised_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert pruned["block_error"] > 0 and pruned["calibration"] == "task"
    provenance = ResultsStore(config.store_path).rows([pruned["key"]])[0]["provenance"]
    assert provenance["compress_seconds"] > 0 and provenance["compression_cached"] is False
    assert np.isnan(frame[frame["transfer"] == "dense"].iloc[0]["block_error"])


def test_interval_text_says_why_there_is_none():
    assert claims.ci_text(0.1, 0.3, "+.2f", 0.95) == "95% CI +0.10 to +0.30"
    assert claims.ci_text(np.nan, np.nan, "+.2f", 0.95).startswith("no interval")
