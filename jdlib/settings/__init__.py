"""The settings: one module per setting, each declaring its `Setting` (see `spec`), in one registry
that loading a config, the sweep and the claims read.

    config = load("setting2", "quick", sparsity=0.3)   # validated before any model loads
    results = sweep(config)                              # its grid through the results store
"""
from __future__ import annotations

import dataclasses
from typing import Any

import yaml

from ..config import ConfigError, SweepConfig, check_value, checks, params_file, unknown_parameters
from . import compression, lmc, setting1, setting2, setting3, setting4, setting5, setting6, true_gem
from .spec import DifficultyOrder, Part, Setting

SETTINGS: dict[str, Setting] = {s.name: s for s in (
    setting1.SETTING, setting2.SETTING, setting3.SETTING, setting4.SETTING, setting5.SETTING, setting6.SETTING,
    true_gem.SETTING, lmc.SETTING, compression.SETTING)}
SPARSITY = "sparsity"  # one level that replaces the `sparsities` list


def get(name: str) -> Setting:
    if name not in SETTINGS:
        raise ConfigError(f"setting={name!r} is not valid: use one of {', '.join(SETTINGS)}")
    return SETTINGS[name]


def parameters(name: str) -> list[str]:
    """Every parameter a setting takes (of all its config variants), `params` and `sparsity` included."""
    setting = get(name)
    classes = {setting.config} | ({setting.variants({"transfer": t}) for t in (["none"], ["sparse"])}
                                  if setting.variants else set())
    return sorted({"params", SPARSITY}.union(*(checks(cls) for cls in classes)))


# Parameters of which a config sets one, the other null: a caller who sets one replaces the params
# file's other (`-p steps 200` on params whose fine-tuning is given in epochs), and a file that sets one
# needs not write the other null.
ALTERNATIVES = (("epochs", "steps"),)


def load(name: str, params: str = "quick", **overrides: Any) -> SweepConfig:
    """The validated config of setting `name`: the params file, then every override that is not None.

    An unknown parameter name stops here, naming the closest valid ones; `sparsity` (one level)
    replaces the `sparsities` list, and `steps` replaces the file's `epochs` (and the reverse).
    """
    setting = get(name)
    values = yaml.safe_load(params_file(name, params).read_text()) or {}
    unknown_parameters(values, parameters(name), f"{name} (in {params_file(name, params)})")
    unknown_parameters(overrides, parameters(name), name)
    given = {k: v for k, v in overrides.items() if v is not None}
    cls = setting.config_class({**values, **given})
    # A params file serves every variant of its setting (Setting 5 with or without fine-tuning):
    # what the chosen variant has no use for is left out, unless the caller named it.
    values = {k: v for k, v in values.items() if k in checks(cls) or k == SPARSITY}
    for chosen, other in ALTERNATIVES + tuple((b, a) for a, b in ALTERNATIVES):
        if chosen in given and other not in given:  # the caller's choice replaces the file's alternative
            values[other] = None
        elif values.get(chosen) is not None and other not in values:  # a file that sets one sets the other null
            values[other] = None
    values.update(given)
    if values.get(SPARSITY) is not None:
        one = dataclasses.replace(checks(cls)["sparsities"], many=False, allowed="a number strictly between 0 and 1")
        values["sparsities"] = [check_value(SPARSITY, values.pop(SPARSITY), one)]
    values.pop(SPARSITY, None)
    values.pop("params", None)
    unknown_parameters(values, checks(cls), f"{name} with these values ({cls.__name__})")
    config = cls(setting=name, **values)
    config.validate()
    return config


__all__ = ["SETTINGS", "DifficultyOrder", "Part", "Setting", "get", "load", "parameters"]
