"""Typed, validated parameters: params YAML -> notebook parameters -> a config object.

Each field declares its check once, with `param`: its type, range or allowed values, whether it
is a list, and its role in a cell's key. The checks run before any model is loaded or store
opened, and a wrong value stops with a message that names the parameter and what is allowed.

Roles (what a field does to the results store's keys):
- "cell": every cell of the sweep carries it, so it is in every key (the default: a new field
  is in the key unless declared otherwise);
- "grid": it spans the grid (tasks, seeds, levels, sparsities): each cell carries one value;
- "calibrated": only the cells of a calibrated method (Wanda, SparseGPT) carry it;
- "analysis": read when the rows are analysed (the rater of the human-model gap), never by a cell;
- "run": cannot change a result (store, device, executor): in no key.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .compress import PRUNE_METHODS, method_of
from .compress.calibrate import CALIBRATION_SOURCES
from .compress.masks import SCOPES, parse_pattern
from .compress.plugins import FORM, check_plugin, is_plugin, load_plugin
from .data import check_task_name
from .transfer import TRANSFER_MODES

ROOT = Path(__file__).resolve().parents[1]
PARAMS_DIR = ROOT / "params"
ROLES = ("cell", "grid", "calibrated", "analysis", "run")
SEED_LIMIT = 2**32  # seeds are below it (numpy's RandomState takes no larger)


class ConfigError(ValueError):
    """A parameter with a value outside what is allowed."""


@dataclass(frozen=True)
class Check:
    """What a parameter may hold; `allowed` is how the error message says it."""

    kind: type
    allowed: str
    many: bool = False
    empty: bool = False  # a list parameter that may be empty
    low: float | None = None
    high: float | None = None
    strict_low: bool = False
    strict_high: bool = False
    choices: tuple | None = None
    nullable: bool = False
    extra: Callable[[Any], None] | None = None  # raises ValueError with its own words
    role: str = "cell"

    def scalar_ok(self, value) -> bool:
        if value is None:
            return self.nullable
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool):  # True is an int to Python, not to a parameter
            return False
        if self.kind is float:
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                return False
        elif not isinstance(value, self.kind):
            return False
        if self.choices is not None and value not in self.choices:
            return False
        if self.low is not None and (value <= self.low if self.strict_low else value < self.low):
            return False
        return self.high is None or not (value >= self.high if self.strict_high else value > self.high)


def param(default, kind: type, allowed: str | None = None, *, many: bool = False, empty: bool = False, low: float | None = None,
          high: float | None = None, strict_low: bool = False, strict_high: bool = False,
          choices: Sequence | None = None, nullable: bool = False, extra: Callable[[Any], None] | None = None,
          role: str = "cell") -> Any:
    """A dataclass field with its check (see `Check`); list defaults are copied per instance."""
    if role not in ROLES:
        raise ValueError(f"role={role!r}: use one of {', '.join(ROLES)}")
    if allowed is None:
        allowed = describe(kind, low, high, strict_low, strict_high, choices, nullable)
    check = Check(kind, allowed, many, empty, low, high, strict_low, strict_high, tuple(choices) if choices else None,
                  nullable, extra, role)
    if many:
        return dataclasses.field(default_factory=lambda: list(default), metadata={"check": check})
    return dataclasses.field(default=default, metadata={"check": check})


def describe(kind, low, high, strict_low, strict_high, choices, nullable) -> str:
    if choices:
        text = "one of " + ", ".join(map(str, choices))
    elif kind is bool:
        text = "true or false"
    else:
        noun = {int: "an integer", float: "a number", str: "a text"}[kind]
        if low is not None and high is not None:
            text = f"{noun} in {'(' if strict_low else '['}{low:g}, {high:g}{')' if strict_high else ']'}"
        elif low == 0 and strict_low:
            text = {int: "a positive integer", float: "a positive number"}[kind]
        elif low == 0:
            text = {int: "a non-negative integer", float: "a non-negative number"}[kind]
        elif low is not None:
            text = f"{noun} of at least {low:g}"
        else:
            text = noun
    return text + (" or null" if nullable else "")


def checks(cls) -> dict[str, Check]:
    """The declared check of every parameter of a config class."""
    return {f.name: f.metadata["check"] for f in dataclasses.fields(cls) if "check" in f.metadata}


def check_value(name: str, value, check: Check) -> list | object:
    """The value as the config holds it (a list for a list parameter), or a ConfigError."""
    if check.many:
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values and not check.empty:
            raise ConfigError(f"{name} is empty: give at least one value ({check.allowed})")
        for v in values:
            if not check.scalar_ok(v):
                raise ConfigError(f"{name}: {v!r} is not valid: use {check.allowed}")
            _extra(name, v, check)
        seen = [v for i, v in enumerate(values) if v in values[:i]]
        if seen:
            raise ConfigError(f"{name} lists {seen[0]!r} twice: give each value once")
        return values
    if not check.scalar_ok(value):
        raise ConfigError(f"{name}={value!r} is not valid: use {check.allowed}")
    _extra(name, value, check)
    return value


def _extra(name: str, value, check: Check) -> None:
    if check.extra is None or value is None:
        return
    try:
        check.extra(value)
    except ValueError as err:
        raise ConfigError(f"{name}: {err}") from None


def _pattern(value: str) -> None:
    if value != "unstructured":
        parse_pattern(value)


def _task(value: str) -> None:
    check_task_name(value)


METHOD_ALLOWED = f"{', '.join(PRUNE_METHODS)} or a plug-in written {FORM}"


def _method(value: str) -> None:
    if is_plugin(value):
        load_plugin(value)  # its import and signature; what it returns is checked in `validate`
    elif value not in PRUNE_METHODS:
        raise ValueError(f"{value!r} is not valid: use {METHOD_ALLOWED}")


@dataclass
class SweepConfig:
    """Parameters every sweep shares; each setting adds its difficulty knob."""

    setting: str
    model: str = param("minilm", str, "an alias (minilm; mpnet after `make mpnet`; tiny-bert, tiny-mpnet, "
                       "tiny-llama), a local folder or a Hugging Face id")
    tasks: list[str] = param([], str, "task names such as bigbench/hyperbaton", many=True, extra=_task, role="grid")
    sparsities: list[float] = param([0.1, 0.3, 0.5, 0.7, 0.9], float, "numbers strictly between 0 and 1", many=True,
                                    low=0, high=1, strict_low=True, strict_high=True, role="grid")
    pattern: list[str] = param(["unstructured"], str, "unstructured or N:M patterns written kept:group, e.g. 2:4",
                               many=True, extra=_pattern, role="grid")
    scope: str = param("global", str, choices=SCOPES)
    method: list[str] = param(["magnitude"], str, METHOD_ALLOWED, many=True, extra=_method, role="grid")
    # Below 0 Python's random draws alike for n and -n: in [0, SEED_LIMIT) each seed draws its own
    # numbers in random, numpy and torch, so the duplicate check on values is one on what seeds draw
    seeds: list[int] = param([41], int, f"integers from 0 to {SEED_LIMIT - 1} (0 <= seed < 2**32)", many=True, low=0,
                             high=SEED_LIMIT - 1, role="grid")
    max_length: int = param(128, int, low=0, strict_low=True)
    max_eval: int | None = param(None, int, "a positive integer or null (all)", low=0, strict_low=True, nullable=True)
    # Wanda/SparseGPT calibration text: the task's training split, or C4 (the paper's)
    calibration: str = param("task", str, choices=CALIBRATION_SOURCES, role="calibrated")
    calibration_samples: int = param(128, int, low=0, strict_low=True, role="calibrated")
    calibration_seq_len: int = param(128, int, low=0, strict_low=True, role="calibrated")
    store: str = param("results/quick.sqlite", str, "a path to an SQLite results store", role="run")
    device: str | None = param(None, str, "a torch device such as cpu or cuda:0, or null (the GPU if any)",
                               nullable=True, role="run")
    executor: str = param("local", str, "local, local-cpus:N, local-gpus, local-gpus:K or dask://HOST:PORT", role="run")

    def validate(self) -> None:
        """Check every declared parameter, then what depends on several (a subclass adds to this)."""
        for name, check in checks(type(self)).items():
            setattr(self, name, check_value(name, getattr(self, name), check))
        if not self.model.strip():
            raise ConfigError("model='' is not valid: use an alias (minilm, mpnet), a local folder or a Hugging Face id")
        from .grid import check_executor

        try:
            check_executor(self.executor)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        try:
            for method in filter(is_plugin, self.method):
                check_plugin(method, tuple(self.pattern), tuple(self.sparsities))
        except ValueError as err:
            raise ConfigError(f"method: {err}") from None

    @property
    def store_path(self) -> Path:
        path = Path(self.store)
        return path if path.is_absolute() else ROOT / path

    # The scoring settings' cells carry the calibration parameters whatever the method (their keys
    # in the committed stores do); the fine-tuning cells only where a method calibrates.
    CALIBRATION_IN_EVERY_CELL = False

    def cell_common(self) -> dict:
        """What every cell of this sweep shares and its result depends on (the "cell" parameters)."""
        roles = ("cell", "calibrated") if self.CALIBRATION_IN_EVERY_CELL else ("cell",)
        return {name: getattr(self, name) for name, check in checks(type(self)).items() if check.role in roles}

    def calibration_of(self, method: str) -> dict:
        """What a calibrated method's cells carry beyond the rest (nothing for magnitude)."""
        if not method_of(method).calibrated:
            return {}
        return {name: getattr(self, name) for name, check in checks(type(self)).items()
                if check.role == "calibrated"}


@dataclass
class FinetuneConfig(SweepConfig):
    """A setting that fine-tunes the (compressed) pre-trained model under a transfer mode."""

    transfer: list[str] = param(["sparse"], str, many=True, choices=TRANSFER_MODES, role="grid")
    # The recipe's length: `epochs` passes over the data (the paper's), or `steps` optimizer updates,
    # the same at every data fraction (small fractions cycle their data): one of them, the other null.
    epochs: int | None = param(3, int, "a positive integer, or null when steps is set", low=0, strict_low=True,
                               nullable=True)
    steps: int | None = param(None, int, "a positive number of optimizer updates, or null (epochs decide)", low=0,
                              strict_low=True, nullable=True)
    batch_size: int = param(32, int, low=0, strict_low=True)
    lr: float = param(2e-5, float, low=0, strict_low=True)
    max_train: int | None = param(None, int, "a positive integer or null (all)", low=0, strict_low=True,
                                  nullable=True)

    def validate(self) -> None:
        super().validate()
        if (self.epochs is None) == (self.steps is None):
            raise ConfigError(f"epochs={self.epochs!r}, steps={self.steps!r} is not valid: set one of them, the "
                              "other null (epochs: passes over the data; steps: optimizer updates at every level)")


def params_file(setting: str, params: str) -> Path:
    """params/<params>/<setting>.yaml for a params name (ci, quick, full, paper), or a YAML path."""
    path = Path(params)
    if path.suffix in (".yaml", ".yml"):
        for candidate in (path, ROOT / path):
            if candidate.exists():
                return candidate
        raise ConfigError(f"params={params!r}: no such YAML file")
    found = PARAMS_DIR / params / f"{setting}.yaml"
    if not found.exists():
        choices = sorted(p.name for p in PARAMS_DIR.iterdir() if (p / f"{setting}.yaml").exists())
        raise ConfigError(f"params={params!r} has no {setting}.yaml: use one of {', '.join(choices)} or a YAML path")
    return found


def unknown_parameters(names, known, setting: str) -> None:
    """Stop on parameter names the setting does not have, naming the closest valid ones."""
    unknown = sorted(set(names) - set(known))
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
        hints.append(f"{name!r}" + (f" (did you mean {' or '.join(close)}?)" if close else ""))
    raise ConfigError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(hints)} for {setting}: "
                      f"its parameters are {', '.join(sorted(known))}")


PLAIN = (type(None), bool, int, float, str)


def notebook_parameters(namespace: dict) -> dict:
    """The parameters a notebook holds: every plain value (None, a number, a text, a list of them)
    its parameters cell and papermill's injected cell defined, so that a misspelt `-p` name reaches
    the config and stops the run instead of being dropped. Modules, functions, IPython's own names
    and what the notebook computed (a config, a table) are left out, so a cell run twice in
    JupyterLab loads the same config."""
    def plain(value) -> bool:
        return isinstance(value, PLAIN) or (isinstance(value, (list, tuple)) and all(isinstance(v, PLAIN) for v in value))

    return {name: value for name, value in namespace.items()
            if not name.startswith("_") and name not in IPYTHON_NAMES and plain(value)}


IPYTHON_NAMES = {"In", "Out"}  # IPython's input and output history (lists of texts)
