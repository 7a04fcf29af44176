"""Run the sweep a validated config describes: the setting's grid through the results store."""
from __future__ import annotations

import pandas as pd


def sweep(config, progress: bool = True) -> pd.DataFrame:
    """Run the sweep a validated config describes (see `jdlib.config.load`) and return its rows."""
    from .settings import RUNNERS

    return RUNNERS[config.setting](config, progress)
