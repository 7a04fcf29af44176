"""Setting 1, within-task difficulty by data adequacy: dense versus sparse transfer as the
fraction of fine-tuning data shrinks (less data, harder task)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from ..config import FinetuneConfig, param
from ..data import chance_by_task
from .finetuning import FinetuneRunner, transfer_cells
from .spec import DifficultyOrder, Part, Setting


@dataclass
class Setting1Config(FinetuneConfig):
    fractions: list[float] = param([0.1, 0.25, 0.5, 0.7, 1.0], float, "fractions in (0, 1]", many=True, low=0, high=1,
                                   strict_low=True, role="grid")


ORDER = DifficultyOrder(
    hardness=lambda fraction: 1.0 - fraction,
    paper="Setting 1 (section 3.1.1): fine-tuning on random subsets of the training data, of which 10% and 25% "
          "are the 'limited data' levels: the less data, the harder the task.",
    describe="more fine-tuning data to less (the smallest fraction hardest)")


def cells(config: Setting1Config) -> list[dict]:
    """Fraction x the fine-tuning cells (task x seed x dense baseline and transfer x compression)."""
    return [{**cell, "fraction": fraction} for fraction in config.fractions for cell in transfer_cells(config)]


SETTING = Setting(
    name="setting1", title="Setting 1: data adequacy", config=Setting1Config, level="fraction", order=ORDER,
    kind="finetune", parts=lambda config: [Part("setting1", cells(config))],
    make_runner=lambda config: partial(FinetuneRunner, config), chance=lambda rows: chance_by_task(rows["task"]))
