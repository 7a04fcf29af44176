"""The compression setting: pruning, quantization and SVD cells on Settings 2 and 3's knobs."""
import numpy as np
import pandas as pd
import pytest
import torch

import jdlib
from jdlib.analysis import claims
from jdlib.analysis import compression as analysis
from jdlib.config import ConfigError
from jdlib.models import load_model, restore, snapshot
from jdlib.settings import compression
from jdlib.settings.compressed import CompressedWeights
from jdlib.settings.nofinetune import state_of


def test_compression_axis():
    shapes = [(4, 8), (8, 4)]
    cell = {"transfer": "none", "pattern": "unstructured", "sparsity": 0.0}
    assert compression.compression_ratio({**cell, "method": "magnitude", "sparsity": 0.75}, shapes) == pytest.approx(4)
    assert compression.compression_ratio({**cell, "method": "magnitude", "pattern": "2:4"}, shapes) == pytest.approx(2)
    assert compression.compression_ratio({**cell, "method": "gptq", "bits": 4}, shapes) == pytest.approx(8)
    assert compression.compression_ratio({**cell, "method": "rtn", "bits": 2}, shapes) == pytest.approx(16)
    # full rank 4, fraction 0.5 -> rank 2: 2 * 32 / (2 * 12 * 2)
    assert compression.compression_ratio({**cell, "method": "svd", "rank_fraction": 0.5}, shapes) == pytest.approx(64 / 48)
    assert compression.compression_ratio({"transfer": "dense", "method": "none", "pattern": "dense",
                                          "sparsity": 0.0}, shapes) == 1.0


def test_pruning_state_unchanged_and_new_cells_carry_their_options():
    assert state_of({"method": "magnitude", "pattern": "unstructured", "sparsity": 0.5}) == ("magnitude", "unstructured", 0.5)
    assert state_of({"method": "rtn", "pattern": "unstructured", "sparsity": 0.0, "bits": 3}) != \
        state_of({"method": "rtn", "pattern": "unstructured", "sparsity": 0.0, "bits": 4})


def test_config_checks():
    with pytest.raises(ConfigError, match="bits"):
        jdlib.load_config("compression", "ci", bits=[9])
    with pytest.raises(ConfigError, match="tasks: .* use \\[\\]"):
        jdlib.load_config("compression", "ci", tasks=["bigbench/disfl_qa"])
    with pytest.raises(ConfigError, match="rank_fractions"):
        jdlib.load_config("compression", "ci", rank_fractions=[1.5])


@pytest.mark.parametrize("method,options", [("rtn", {"bits": 2}), ("gptq", {"bits": 3}), ("svd", {"rank_fraction": 0.25})])
def test_quantized_and_low_rank_cells_change_the_weights(method, options):
    loaded = load_model("tiny-bert", head="embedding")
    model = loaded.model
    before = snapshot(model)
    weights = CompressedWeights(model, "global")
    calibration = lambda: torch.randint(5, loaded.model.config.vocab_size, (2, 8))  # noqa: E731
    extra = tuple(options.items())
    weights.apply(method, "unstructured", 0.0, calibration, extra=extra, options=options)
    summary = weights.summary
    assert weights.timing["compress_seconds"] >= 0 and not weights.timing["compression_cached"]
    assert ("block_error" in summary) == (method == "gptq")
    assert ("params_ratio" if method == "svd" else "realised_bits") in summary
    names = list(compression.prunable_weights(model))
    compressed = {n: dict(model.named_parameters())[n].detach().clone() for n in names}
    assert all(not torch.equal(compressed[n], before[n]) for n in names)
    if method == "svd":
        assert all(torch.linalg.matrix_rank(w).item() <= max(1, round(0.25 * min(w.shape))) for w in compressed.values())
    else:
        assert all(w.unique().numel() <= 2 ** options["bits"] * w.shape[0] for w in compressed.values())
    restore(model, before)
    weights.apply(method, "unstructured", 0.0, calibration, extra=extra, options=options)  # from the cache
    assert all(torch.equal(dict(model.named_parameters())[n], compressed[n]) for n in names)
    assert weights.summary == summary


def test_tiny_sweep_runs_every_family(tmp_path):
    config = jdlib.load_config("compression", "ci", store=str(tmp_path / "s.sqlite"), options=[2, 4],
                               context=[0, 100], seeds=[41], max_eval=6, quantizers=["rtn"], bits=[2],
                               pattern=["unstructured"])
    results = jdlib.sweep(config, progress=False)
    assert len(results) == len(compression.cells(config))
    assert set(results["method"]) == {"none", "magnitude", "rtn", "svd"}
    assert set(results["knob"]) == {"options", "context"}
    assert results["accuracy"].between(0, 1).all()
    assert (results[results["method"] == "rtn"]["realised_bits"] <= 2).all()
    assert "compress_seconds" not in results  # a timing: provenance, not a metric
    ratios = results.groupby("method")["compression_ratio"].first()
    assert ratios["rtn"] == 16 and ratios["magnitude"] == pytest.approx(2) and ratios["none"] == 1
    found = analysis.analyse(results, config.knobs(), n_boot=10)
    norm = found["options"]["norm"]
    assert set(norm["compressor"]) == {"pruning", "quantization", "low rank"}
    assert (norm[norm["pattern"] == "dense"]["compression_ratio"] == 1).all()


def _within(prune, quant, svd=None, n=4, noise=0.05, knobs=("options",), quantizer="gptq"):
    """Within-level Spearman rows: per knob, level and seed, one per method."""
    rng = np.random.default_rng(0)
    rows = []
    for knob in knobs:
        for level in (2, 4):
            for seed in range(n):
                for method, rho in (("magnitude", prune), (quantizer, quant), ("svd", svd)):
                    if rho is not None:
                        rows.append({"knob": knob, "task": "t", "level": level, "seed": seed, "method": method,
                                     "spearman": rho + rng.normal(0, noise)})
    return pd.DataFrame(rows)


def part(result, name, quantizer="gptq", knob="options"):
    parts = result["parts"]
    return parts[(parts["part"] == name) & (parts["quantizer"] == quantizer) & (parts["knob"] == knob)].iloc[0]


def test_c3_verdicts_by_the_papers_within_level_statistic():
    held = claims.c3_quantization(_within(0.98, 0.5, 0.95))
    assert held["verdict"] == "holds" and part(held, "pruning > quantizer")["verdict"] == "holds"
    assert part(held, "SVD closer to pruning")["verdict"] == "holds"
    assert claims.c3_quantization(_within(0.9, 0.9, noise=0.01))["verdict"] == "inconclusive"
    svd_far = claims.c3_quantization(_within(0.9, 0.5, 0.0, noise=0.01))
    assert part(svd_far, "SVD closer to pruning")["verdict"] == "fails" and svd_far["verdict"] == "fails"
    assert claims.c3_quantization(_within(0.5, 0.95))["verdict"] == "fails"
    one = _within(0.98, 0.5, n=1).query("level == 2")  # one pair: no interval
    assert claims.c3_quantization(one)["verdict"] == "inconclusive"
    assert claims.c3_quantization(_within(0.98, None))["verdict"] == "inconclusive"


def test_c3_judges_each_knob_and_quantizer_apart():
    rows = pd.concat([_within(0.98, 0.5, knobs=("options",)), _within(0.98, 0.99, knobs=("context",), noise=0.005),
                      _within(0.98, 0.4, quantizer="rtn", knobs=("options", "context"))])
    rows = rows.drop_duplicates(["knob", "task", "level", "seed", "method"])
    result = claims.c3_quantization(rows)
    assert part(result, "pruning > quantizer", "gptq", "options")["verdict"] == "holds"
    assert part(result, "pruning > quantizer", "gptq", "context")["verdict"] != "holds"
    assert part(result, "pruning > quantizer", "rtn", "context")["verdict"] == "holds"
    assert result["verdict"] != "holds"


def test_rule_texts_name_what_their_code_computes():
    assert "within each difficulty level" in claims.C3_RULE and "quantizer apart" in claims.C3_RULE
    assert "keep" in claims.C2_RULE and "regrow" in claims.C2_RULE
    assert "near zero" in claims.C5_RULE and "dense solution's" in claims.C5_RULE


def test_c4_pools_each_comparison_once_by_family_and_method():
    def table(entries):
        """C1 comparison rows: (family, method, estimate) per study (task), standard error 0.01."""
        rows = [{"setting": "setting2", "task": f"t{i}", "study": f"setting2/t{i}", "family": f, "method": m,
                 "estimate": e, "se": 0.01, "df": 30.0, "testable": True,
                 "verdict": "holds" if e > 0.02 else ("fails" if e < -0.02 else "inconclusive")}
                for i in range(4) for f, m, e in entries]
        return pd.DataFrame(rows + [{"setting": "compression", "task": "q", "study": "q", "family": "quantization",
                                     "method": "gptq", "estimate": -1.0, "se": 0.01, "df": 30.0, "testable": True,
                                     "verdict": "fails"}])

    both = [("unstructured", "magnitude", 0.1), ("N:M", "magnitude", 0.1), ("unstructured", "wanda", 0.1)]
    result = claims.c4_patterns(table(both))
    assert result["verdict"] == "holds" and result["by_family"] == {"N:M": "holds", "unstructured": "holds"}
    assert result.counts["holds"] == 12 and result.pooled["studies"] == 4  # quantization is not C4's
    assert claims.c4_patterns(table(both[:2] + [("N:M", "wanda", -0.3)]))["verdict"] == "fails"
    assert claims.c4_patterns(table([("unstructured", "magnitude", 0.1)]))["verdict"] == "inconclusive"
    untestable = table(both).assign(testable=False, verdict="not testable")
    assert claims.c4_patterns(untestable)["verdict"] == "not testable"