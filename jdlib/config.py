"""Typed, validated parameters: params YAML -> notebook parameters -> a config object.

Every check runs before any model is loaded, and a wrong value stops with a message that
names the parameter and the allowed values.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .compress import PRUNE_METHODS
from .compress.calibrate import CALIBRATION_SOURCES
from .compress.masks import SCOPES, parse_pattern
from .data import check_task_name
from .transfer import check_mode

ROOT = Path(__file__).resolve().parents[1]
PARAMS_DIR = ROOT / "params"


class ConfigError(ValueError):
    """A parameter with a value outside what is allowed."""


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass
class SweepConfig:
    """Parameters every sweep shares; each setting adds its difficulty knob."""

    setting: str
    model: str = "minilm"
    tasks: list[str] = field(default_factory=list)
    sparsities: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5, 0.7, 0.9])
    pattern: list[str] = field(default_factory=lambda: ["unstructured"])
    scope: str = "global"
    method: list[str] = field(default_factory=lambda: ["magnitude"])
    transfer: list[str] = field(default_factory=lambda: ["sparse"])
    seeds: list[int] = field(default_factory=lambda: [41])
    epochs: int = 3
    batch_size: int = 32
    max_length: int = 128
    lr: float = 2e-5
    max_train: int | None = None
    max_eval: int | None = None
    calibration: str = "task"  # Wanda/SparseGPT calibration text: the task's training split, or C4 (the paper's)
    calibration_samples: int = 128
    calibration_seq_len: int = 128
    store: str = "results/quick.sqlite"
    device: str | None = None

    LIST_FIELDS = ("tasks", "sparsities", "pattern", "method", "transfer", "seeds")

    def validate(self) -> None:
        if not self.tasks:
            raise ConfigError("tasks is empty: give at least one task, e.g. bigbench/hyperbaton")
        for task in self.tasks:
            try:
                check_task_name(task)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        for s in self.sparsities:
            if not isinstance(s, (int, float)) or not 0.0 < s < 1.0:
                raise ConfigError(f"sparsity={s!r} is not valid: use numbers strictly between 0 and 1")
        for p in self.pattern:
            try:
                parse_pattern(p)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        if self.scope not in SCOPES:
            raise ConfigError(f"scope={self.scope!r} is not valid: use one of {', '.join(SCOPES)}")
        for m in self.method:
            if m not in PRUNE_METHODS:
                raise ConfigError(f"method={m!r} is not valid: use one of {', '.join(PRUNE_METHODS)}")
        for t in self.transfer:
            try:
                check_mode(t)
            except ValueError as err:
                raise ConfigError(str(err)) from None
        if self.calibration not in CALIBRATION_SOURCES:
            raise ConfigError(f"calibration={self.calibration!r} is not valid: use one of "
                              f"{', '.join(CALIBRATION_SOURCES)}")
        for name in ("epochs", "batch_size", "max_length", "calibration_samples", "calibration_seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} is not valid: use a positive integer")
        for name in ("max_train", "max_eval"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name}={value!r} is not valid: use a positive integer or null (all)")
        if not isinstance(self.lr, (int, float)) or self.lr <= 0:
            raise ConfigError(f"lr={self.lr!r} is not valid: use a positive number")
        if not all(isinstance(s, int) for s in self.seeds) or not self.seeds:
            raise ConfigError(f"seeds={self.seeds!r} is not valid: use a list of integers")

    @property
    def store_path(self) -> Path:
        path = Path(self.store)
        return path if path.is_absolute() else ROOT / path

    def cell_common(self) -> dict:
        """What every cell of this sweep shares and its result depends on."""
        return {k: getattr(self, k) for k in ("model", "scope", "epochs", "batch_size", "max_length", "lr",
                                              "max_train", "max_eval")}


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


def load(setting: str, params: str = "quick", **overrides) -> SweepConfig:
    """The validated config of `setting`: the params file, then every override that is not None.

    `sparsity` (one level) replaces the `sparsities` list.
    """
    from .settings import CONFIGS

    if setting not in CONFIGS:
        raise ConfigError(f"setting={setting!r} is not valid: use one of {', '.join(CONFIGS)}")
    values = yaml.safe_load(params_file(setting, params).read_text()) or {}
    values.update({k: v for k, v in overrides.items() if v is not None})
    cls = CONFIGS[setting]
    if hasattr(cls, "variant"):  # a setting with two formulations picks its config by the values
        cls = cls.variant(values)
    if values.get("sparsity") is not None:
        values["sparsities"] = [values.pop("sparsity")]
    values.pop("sparsity", None)
    known = {f.name for f in dataclasses.fields(cls)} - {"setting"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}: the parameters of {setting} are "
                          f"{', '.join(sorted(known | {'sparsity'}))}")
    for name in cls.LIST_FIELDS:
        if name in values:
            values[name] = _as_list(values[name])
    config = cls(setting=setting, **values)
    config.validate()
    return config
