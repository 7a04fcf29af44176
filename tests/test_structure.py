"""The library's structure: no import circle, one registry of settings, keys that stay stable,
notebooks that hand every parameter to the config, and bad input stopped before any work."""
import ast
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import jdlib.models
from jdlib.config import ConfigError, checks
from jdlib.results import ResultsStore, cell_key
from jdlib.settings import SETTINGS, load, parameters
from jdlib.sweep import check, sweep

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jdlib"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every jdlib module `path` imports, at module level or inside functions."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("jdlib")}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
            if not target.startswith("jdlib"):
                continue
            for alias in node.names:  # `from . import x` names a module where there is one
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
    return found - {name}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, set(files)) & set(files) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_import_graph_has_no_circle():
    graph = import_graph()
    assert "jdlib.settings" in graph["jdlib.sweep"]  # the graph sees the imports it should
    assert cycles(graph) == []


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_c1_settings_come_from_the_registry():
    from jdlib.analysis.verdicts import C1_SETTINGS

    assert C1_SETTINGS == [f"setting{i}" for i in range(1, 7)]
    for name, setting in SETTINGS.items():
        assert setting.name == name and (ROOT / "notebooks" / f"{setting.chapter}.ipynb").exists()


def test_setting3_declares_the_papers_order():
    order = SETTINGS["setting3"].order
    assert order.easiest_first([0, 100, 20, 60]) == [20, 60, 100, 0]
    assert "closed book" in order.paper


@pytest.mark.parametrize("name", ["setting2", "setting3", "setting4", "setting6", "compression"])
def test_the_committed_full_grids_keep_their_keys(name):
    """Every cell of the full params is in the committed store under the key the code makes now."""
    config = load(name, "full")
    keys = {cell_key({"setting": part.key_setting, **cell}) for part in SETTINGS[name].parts(config)
            for cell in part.cells}
    assert keys <= ResultsStore(ROOT / "results" / "full.sqlite").keys()


def parameters_cell(name: str) -> dict:
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    namespace: dict = {}
    exec("".join(cell["source"]), namespace)
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_notebook_parameters_are_the_settings_and_reach_the_config(name):
    declared = parameters_cell(name)
    assert set(declared) <= set(parameters(name)), set(declared) - set(parameters(name))
    source = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    code = "".join("".join(c["source"]) for c in source if c["cell_type"] == "code")
    assert f'jdlib.load_config("{name}", **jdlib.config.notebook_parameters(globals()))' in code


def test_parameters_of_a_namespace_leave_out_modules_functions_and_ipython():
    from jdlib.config import notebook_parameters as of

    namespace = {"params": "ci", "sparsty": 0.3, "jdlib": jdlib, "glue": print, "In": [""], "_": 1, "tasks": None,
                 "seeds": [41, 42], "config": load("setting2", "ci"), "results": {"a": 1}}
    assert of(namespace) == {"params": "ci", "sparsty": 0.3, "tasks": None, "seeds": [41, 42]}


def test_fields_that_cannot_change_a_result_are_out_of_the_key():
    for setting in SETTINGS.values():
        roles = {name: check.role for name, check in checks(setting.config).items()}
        assert all(roles[name] == "run" for name in ("store", "device", "executor"))
    config = load("setting2", "ci")
    assert not {"store", "device", "executor"} & set(config.cell_common())


@pytest.fixture
def no_model_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(jdlib.models, "load_model", refuse)
    monkeypatch.setattr("jdlib.settings.nofinetune.load_model", refuse)
    monkeypatch.setattr("jdlib.settings.finetuning.load_model", refuse)


# What a new user gets wrong: (setting, parameters, words the message must hold).
BAD_INPUT = [
    ("setting4", {"sparsty": 0.3}, ["sparsty", "sparsity"]),
    ("setting2", {"optons": [2, 3]}, ["optons", "options"]),
    ("setting1", {"epochs": True}, ["epochs=True", "positive integer"]),
    ("setting1", {"seeds": [41, True]}, ["seeds", "True"]),
    ("setting1", {"lr": float("nan")}, ["lr=nan", "positive number"]),
    ("setting1", {"lr": -1e-4}, ["lr=-0.0001"]),
    ("setting1", {"seeds": [41, 41]}, ["seeds", "41", "twice"]),
    ("setting1", {"seeds": [-1]}, ["seeds", "-1", "0 to 4294967295"]),
    ("setting5", {"seeds": [4294967296]}, ["seeds", "4294967296", "0 to 4294967295"]),
    ("setting2", {"seeds": [1, -1]}, ["seeds", "-1", "2**32"]),  # Python's random draws alike for 1 and -1
    ("setting2", {"sparsities": [0.5, 0.5]}, ["sparsities", "twice"]),
    ("setting2", {"sparsity": 1.5}, ["sparsity=1.5", "between 0 and 1"]),
    ("setting2", {"sparsities": []}, ["sparsities is empty"]),
    ("setting2", {"options": [1, 2]}, ["options", "at least 2"]),
    ("setting2", {"options": ["two"]}, ["options", "'two'"]),
    ("setting3", {"context": [150]}, ["context", "[0, 100]"]),
    ("setting4", {"shots": [-1]}, ["shots", "non-negative"]),
    ("setting6", {"format": ["essay"]}, ["format", "factoid"]),
    ("setting2", {"pattern": ["9:8"]}, ["pattern", "9:8"]),
    ("setting2", {"scope": "block"}, ["scope='block'", "global"]),
    ("setting2", {"method": ["obs"]}, ["method", "obs", "sparsegpt"]),
    ("setting2", {"model": ""}, ["model=''"]),
    ("setting2", {"eval_seeded": "yes"}, ["eval_seeded='yes'", "true or false"]),
    ("setting2", {"executor": "spark"}, ["executor", "local"]),
    ("setting1", {"transfer": ["half"]}, ["transfer", "half", "dense_freeze"]),
    ("setting5", {"rater": "crowd"}, ["rater='crowd'", "average"]),
    ("setting2", {"tasks": ["bigbench/no_such_task"]}, ["bigbench/no_such_task"]),
    ("setting2", {"params": "nightly"}, ["params='nightly'", "quick"]),
]


@pytest.mark.parametrize("setting, values, words", BAD_INPUT, ids=[str(v) for _, v, _ in BAD_INPUT])
def test_bad_input_stops_with_a_message_naming_it(no_model_loading, setting, values, words):
    values = dict(values)
    with pytest.raises(ConfigError) as err:
        load(setting, values.pop("params", "ci"), **values)
    for word in words:
        assert word in str(err.value), str(err.value)


# What only the tasks' data or the executor's address shows: stopped before the store or a model.
BAD_FOR_THE_DATA = [
    ("setting2", {"options": [2, 200]}, ["options=[2, 200]", "at most"]),
    ("setting4", {"shots": [0, 500]}, ["shots=[0, 500]", "use shots from 0 to"]),
    ("setting4", {"tasks": ["bigbench/disfl_qa"]}, ["bigbench/disfl_qa", "generation task", "k-shot demonstrations"]),
    ("setting1", {"tasks": ["bigbench/disfl_qa"]}, ["bigbench/disfl_qa", "generation task", "setting1 fine-tunes"]),
    ("setting2", {"executor": "dask://127.0.0.1:1"}, ["executor='dask://127.0.0.1:1'", "no Dask scheduler"]),
]


@pytest.mark.parametrize("setting, values, words", BAD_FOR_THE_DATA, ids=[str(v) for _, v, _ in BAD_FOR_THE_DATA])
def test_input_the_data_refuses_stops_before_the_store_and_the_model(no_model_loading, tmp_path, setting, values,
                                                                     words):
    store = tmp_path / "s.sqlite"
    with pytest.raises(ConfigError) as err:
        sweep(load(setting, "ci", store=str(store), **values), progress=False)
    for word in words:
        assert word in str(err.value), str(err.value)
    assert "\n" not in str(err.value) and not store.exists()


def test_an_unknown_task_lists_the_closest_names_not_all_of_them():
    with pytest.raises(ConfigError) as err:
        load("setting2", "ci", tasks=["bigbench/hyperbatn"])
    assert "bigbench/hyperbaton" in str(err.value) and len(str(err.value)) < 600


@pytest.mark.parametrize("kind", ["text", "directory", "truncated"])
def test_a_store_that_is_no_store_is_named_before_any_model_loads(no_model_loading, tmp_path, kind):
    path = tmp_path / "store.sqlite"
    if kind == "text":
        path.write_text("not a database\n")
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"SQLite format 3\x00" + b"\x00" * 40)
    config = load("setting2", "ci", store=str(path))
    with pytest.raises(Exception) as err:
        check(config)
    assert str(path) in str(err.value)


def test_an_unknown_hub_model_fails_fast_offline_naming_model():
    start = time.perf_counter()
    with pytest.raises(ValueError, match="model='no/such-model'"):
        jdlib.models.load_model("no/such-model")
    assert time.perf_counter() - start < 2.0


def test_a_misspelt_papermill_parameter_stops_the_notebook(tmp_path):
    store = tmp_path / "s.sqlite"
    run = subprocess.run([str(Path(sys.executable).parent / "papermill"), str(ROOT / "notebooks" / "setting4.ipynb"),
                          str(tmp_path / "out.ipynb"), "-p", "params", "ci", "-p", "store", str(store),
                          "-p", "sparsty", "0.3"], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0 and "sparsty" in run.stderr + run.stdout
    assert not store.exists()
