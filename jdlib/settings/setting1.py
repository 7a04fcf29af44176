"""Setting 1, within-task difficulty by data adequacy: dense versus sparse transfer as the
fraction of fine-tuning data shrinks (less data, harder task)."""
from __future__ import annotations

from functools import partial

from dataclasses import dataclass, field

import pandas as pd

from ..config import ConfigError, SweepConfig
from ..results import ResultsStore
from ..grid import run_grid
from .finetuning import FinetuneRunner, transfer_cells


@dataclass
class Setting1Config(SweepConfig):
    fractions: list[float] = field(default_factory=lambda: [0.1, 0.25, 0.5, 0.7, 1.0])

    LIST_FIELDS = SweepConfig.LIST_FIELDS + ("fractions",)

    def validate(self) -> None:
        super().validate()
        for f in self.fractions:
            if not isinstance(f, (int, float)) or not 0.0 < f <= 1.0:
                raise ConfigError(f"fraction={f!r} is not valid: use numbers in (0, 1]")


def difficulty(fraction: float) -> float:
    """Less fine-tuning data is harder."""
    return 1.0 - fraction


def cells(config: Setting1Config) -> list[dict]:
    """Fraction x the fine-tuning cells (task x seed x dense baseline and transfer x compression)."""
    return [{**cell, "fraction": fraction} for fraction in config.fractions for cell in transfer_cells(config)]


def run(config: Setting1Config, progress: bool = True) -> pd.DataFrame:
    return run_grid(config.setting, cells(config), partial(FinetuneRunner, config), ResultsStore(config.store_path), progress)
