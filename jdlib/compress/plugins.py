"""Plug-in pruning methods: `method: "package.module:function"` wherever a method name goes.

The function a plug-in names is called as

    function(weights: dict[str, torch.Tensor], sparsity: float, *, pattern: str, seed: int,
             calibration: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]

- `weights`: the model's prunable weights (`masks.prunable_weights`: every 2-D linear weight of the
  transformer blocks) by full parameter name, detached; read them, do not change them in place.
- `sparsity`: the fraction of them to prune (for an N:M pattern, 1 - N/M).
- The keywords are passed only when the function declares them by name:
  `pattern` "unstructured" or "N:M" written kept:group (a plug-in run on N:M patterns declares it);
  `seed` the cell's seed (declaring it makes the method seeded: its result is made per seed);
  `calibration` (declaring it makes the method calibrated, as Wanda and SparseGPT are): the function
  is then called once per transformer block, in order, with that block's weights and, per weight,
  H = 2/n sum x x^T over the n calibration sequences of the inputs x of its layer (in x in, float32,
  read-only), computed on the outputs of the blocks pruned before it (SparseGPT's Hessian; the square
  root of its diagonal ranks inputs as Wanda's norms do).
- It returns, for every name it was given, a bool keep-mask (True keeps) of the weight's shape, or a
  new weight of its shape and dtype whose pruned entries are exactly 0 (a method that updates the
  weights it keeps). Across the weights of one call the pruned fraction must be within
  SPARSITY_TOLERANCE of `sparsity`, and an N:M pattern keep at most N of every M consecutive inputs.

When a bad plug-in is caught: config validation (`jdlib.config`, before any model, data or store)
imports it and checks its signature, then runs it once per pattern and sparsity of the config on
a tiny seeded random weight dict and checks what it returned; every call on the real model is
checked the same way before the model takes its output. Each error is one line naming the plug-in.

Its identity in the results store: pruning cells of a plug-in carry `plugin_source`, a hash of the
file that defines the function, so rows of an edited plug-in never stand in for the new code's
(whatever changes a result enters the key); the spec alone would reuse stale rows silently. Code
the file imports from elsewhere is not hashed, and a plug-in is read once per process.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .calibrate import LayerwiseResult, compress_blocks
from .masks import parse_pattern, pattern_sparsity, prunable_weights
from .obs import Hessian

FORM = "package.module:function"
SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
KEYWORDS = ("pattern", "seed", "calibration")
# |realised - target| over the weights of one call: room for rounding per row or group (0.3 of 16
# inputs prunes 5, 0.31), none for a plug-in that ignores the target
SPARSITY_TOLERANCE = 0.05
CHECK_SEED = 0  # of the tiny random weights and inputs a plug-in is checked on


class PluginError(ValueError):
    """A plug-in that cannot serve as a compression method; the message names it and what is wrong."""


def is_plugin(method: str) -> bool:
    """Whether a method name is written as a plug-in (package.module:function)."""
    return isinstance(method, str) and ":" in method


@dataclass(frozen=True)
class Plugin:
    """A loaded plug-in: its spec, function, the keywords it declares and the hash of its source file."""

    spec: str
    function: Callable
    keywords: frozenset[str]
    source_hash: str

    @property
    def calibrated(self) -> bool:
        return "calibration" in self.keywords

    @property
    def seeded(self) -> bool:
        return "seed" in self.keywords

    def run(self, weights: dict[str, torch.Tensor], sparsity: float, pattern: str, seed: int = 0,
            calibration: dict[str, torch.Tensor] | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        """Call the plug-in and check its output: per name, the keep-mask and the new weight (None for a mask)."""
        given = {"pattern": pattern, "seed": seed, "calibration": calibration}
        try:
            found = self.function(weights, sparsity, **{k: given[k] for k in self.keywords})
        except Exception as err:  # whatever the plug-in raises, the user needs to know which plug-in it was
            raise PluginError(f"{self} raised {type(err).__name__}: {_first_line(err)} (pattern {pattern}, "
                              f"sparsity {sparsity:g})") from err
        return self._checked(weights, found, sparsity, pattern)

    def _checked(self, weights: dict[str, torch.Tensor], found, sparsity: float,
                 pattern: str) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        if not isinstance(found, dict):
            raise PluginError(f"{self} returned a {type(found).__name__}: return a dict with a mask or new weight "
                              "for every weight name it is given")
        odd = sorted(set(weights) ^ set(found), key=str)
        if odd:
            which = "no entry for" if odd[0] in weights else "an entry it was not given,"
            raise PluginError(f"{self} returned {which} {odd[0]}: return a mask or new weight for every weight name "
                              "it is given, and no other")
        out, pruned, total = {}, 0, 0
        nm = parse_pattern(pattern)
        for name, weight in weights.items():
            value = found[name]
            if not torch.is_tensor(value) or value.shape != weight.shape:
                shape = f"shape {tuple(value.shape)}" if torch.is_tensor(value) else f"a {type(value).__name__}"
                raise PluginError(f"{self} returned {shape} for {name} of shape {tuple(weight.shape)}: return a "
                                  "tensor of each weight's shape")
            if value.dtype not in (torch.bool, weight.dtype):
                raise PluginError(f"{self} returned dtype {value.dtype} for {name}: return torch.bool keep-masks "
                                  f"or new weights of the weights' dtype {weight.dtype}")
            keep = value.to(weight.device) if value.dtype == torch.bool else value != 0
            if nm and (keep.reshape(keep.shape[0], -1, nm[1]).sum(-1) > nm[0]).any():
                raise PluginError(f"{self} keeps more than {nm[0]} of some {nm[1]} consecutive inputs of {name}: "
                                  f"pattern {pattern} allows at most {nm[0]}")
            out[name] = (keep, None if value.dtype == torch.bool else value.to(weight.device))
            pruned += int((~keep).sum())
            total += keep.numel()
        realised = pruned / total if total else sparsity
        if abs(realised - sparsity) > SPARSITY_TOLERANCE:
            raise PluginError(f"{self} pruned {realised:.3f} of the weights at target sparsity {sparsity:g} "
                              f"(pattern {pattern}): prune within {SPARSITY_TOLERANCE:g} of the target")
        return out

    def __str__(self) -> str:
        return f"plug-in {self.spec!r}"


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "(no message)"


@functools.cache
def load_plugin(spec: str) -> Plugin:
    """Import the plug-in `spec` names and check that it can be called as the module docstring says."""
    name = f"plug-in {spec!r}"
    if not SPEC.fullmatch(spec):
        raise PluginError(f"{name} is not valid: write a plug-in as {FORM}, e.g. mypkg.prune:halve")
    module_name, attribute = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # a missing module, or one that fails while importing
        raise PluginError(f"{name} cannot be imported: {type(err).__name__}: {_first_line(err)} (its package must "
                          "be importable: on PYTHONPATH or in the current directory)") from None
    if not hasattr(module, attribute):
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise PluginError(f"{name}: module {module_name} has no attribute {attribute!r}"
                          + (f" (its functions: {', '.join(public)})" if public else ""))
    function = getattr(module, attribute)
    if not callable(function):
        raise PluginError(f"{name} is a {type(function).__name__}, not a function: name a function "
                          "(weights, sparsity) -> masks or new weights")
    try:
        signature = inspect.signature(function)
        source = Path(inspect.getfile(function)).read_bytes()
    except (TypeError, ValueError, OSError) as err:
        raise PluginError(f"{name} has no Python signature or source file to identify its results by ({err})") from None
    keywords = frozenset(k for k in KEYWORDS if k in signature.parameters)
    try:
        signature.bind(None, None, **dict.fromkeys(keywords))
    except TypeError as err:
        raise PluginError(f"{name} cannot be called as function(weights, sparsity, *, {', '.join(KEYWORDS)}) "
                          f"(only the keywords it declares): {err}") from None
    return Plugin(spec, function, keywords, hashlib.sha256(source).hexdigest()[:16])


def plugin_identity(method: str) -> dict[str, str]:
    """What a pruning cell of `method` carries beyond its name: a plug-in's source hash (nothing for a built-in)."""
    return {"plugin_source": load_plugin(method).source_hash} if is_plugin(method) else {}


def tiny_weights(pattern: str, seed: int = CHECK_SEED) -> dict[str, torch.Tensor]:
    """A seeded random block of three linear weights, their input widths a multiple of the N:M group."""
    nm = parse_pattern(pattern)
    width = 16 * (nm[1] if nm else 2)
    generator = torch.Generator().manual_seed(seed)
    shapes = {"check.0.attention.weight": (width, width), "check.0.up.weight": (2 * width, width),
              "check.0.down.weight": (width, 2 * width)}
    return {name: torch.randn(shape, generator=generator) for name, shape in shapes.items()}


def tiny_calibration(weights: dict[str, torch.Tensor], seed: int = CHECK_SEED) -> dict[str, torch.Tensor]:
    """Per weight, a Hessian of random inputs, as a calibrated plug-in gets (see the module docstring)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, w in weights.items():
        x = torch.randn(64, w.shape[1], generator=generator)
        out[name] = 2 / len(x) * x.T @ x
    return out


def check_plugin(spec: str, patterns: tuple[str, ...], sparsities: tuple[float, ...]) -> None:
    """Load `spec` and run it once per pattern and target on tiny random weights, raising PluginError."""
    plugin = load_plugin(spec)
    for pattern in patterns:
        weights = tiny_weights(pattern)
        calibration = tiny_calibration(weights) if plugin.calibrated else None
        targets = sparsities if parse_pattern(pattern) is None else (pattern_sparsity(pattern),)
        for sparsity in targets:
            plugin.run({n: w.clone() for n, w in weights.items()}, sparsity, pattern, CHECK_SEED, calibration)


def prune_with_plugin(model: nn.Module, plugin: Plugin, sparsity: float, pattern: str, seed: int = 0,
                      calibration: torch.Tensor | None = None) -> tuple[dict[str, torch.Tensor], LayerwiseResult]:
    """Prune the model's prunable weights in place with `plugin`; return the keep-masks and the block
    errors on `calibration` (when given). An uncalibrated plug-in is called once with every weight;
    a calibrated one once per block, on the calibration inputs as the pruned blocks before pass them on."""
    keep: dict[str, torch.Tensor] = {}
    whole = None if plugin.calibrated else plugin.run(
        {n: w.detach() for n, w in prunable_weights(model).items()}, sparsity, pattern, seed)

    def put(prefix: str, linears: dict[str, nn.Linear], stats: dict[str, Hessian]) -> None:
        names = {f"{prefix}.{n}.weight": n for n in linears}
        found = whole if whole is not None else plugin.run(
            {name: linears[n].weight.detach() for name, n in names.items()}, sparsity, pattern, seed,
            {name: stats[n].matrix for name, n in names.items()})
        for name, n in names.items():
            mask, new = found[name]
            weight = linears[n].weight
            if new is None:
                weight.masked_fill_(~mask, 0)
            else:
                weight.copy_(new)
            keep[name] = mask

    return keep, compress_blocks(model, put, calibration, Hessian if plugin.calibrated else None)
