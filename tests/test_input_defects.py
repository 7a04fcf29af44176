"""The limits the input checks draw (issue 19) are where the computation's own limits are: every
seed the config takes seeds every generator apart from the others, and every `shots` level it
takes gets its demonstrations in full."""
import random
from collections import Counter

import datasets
import numpy as np
import pytest
import torch

from jdlib.config import ConfigError
from jdlib.data import Task, load_task
from jdlib.difficulty import few_shot
from jdlib.settings import load
from jdlib.settings.setting4 import largest_shots
from jdlib.sweep import check
from jdlib.train import seed_everything


def test_the_seeds_taken_seed_every_generator_and_draw_apart():
    edges = load("setting1", "ci", seeds=[0, 1, 2**32 - 1]).seeds
    draws = []
    for seed in edges:
        seed_everything(seed)
        draws.append((random.random(), float(np.random.rand()), float(torch.rand(1))))
    assert all(len({d[i] for d in draws}) == len(edges) for i in range(3))
    # just outside the range: numpy takes no seed, Python's random draws for -1 what it draws for 1
    with pytest.raises(ValueError):
        np.random.seed(2**32)
    assert random.Random(-1).random() == random.Random(1).random()
    for outside in ([-1], [2**32], [1, -1]):
        with pytest.raises(ConfigError, match=r"seeds: -?\d+ is not valid: use integers from 0 to 4294967295"):
            load("setting1", "ci", seeds=outside)


def test_setting4_takes_shots_up_to_the_rarest_class_and_no_more(tmp_path):
    task = load_task("bigbench/intent_recognition")
    rarest = min(Counter(task.train["label"]).values())
    for k in (rarest, rarest + 1):  # the demonstrations the encoder's cells would get
        per_class = Counter(d["label"] for d in few_shot(task.train, k, seed=41))
        assert (min(per_class.values()) == k) == (k == rarest)
    store = str(tmp_path / "s.sqlite")
    check(load("setting4", "ci", shots=[0, rarest], store=store))
    with pytest.raises(ConfigError, match=rf"shots=\[0, {rarest + 1}\].* {rarest} training examples.*0 to {rarest}$"):
        check(load("setting4", "ci", shots=[0, rarest + 1], store=store))


def mmlu_like(sizes: dict[str, int]) -> Task:
    rows = [{"text": f"{s} {i}", "options": ["a", "b"], "label": i % 2, "subject": s} for s, n in sizes.items()
            for i in range(n)]
    return Task("mmlu-like", "multiple_choice", datasets.Dataset.from_list(rows),
                datasets.Dataset.from_list(rows[:1] + rows[-1:]))


def test_a_decoders_shots_are_bounded_by_its_smallest_subject():
    task = mmlu_like({"algebra": 3, "virology": 5})
    largest, group = largest_shots(task, "decoder")
    assert (largest, group) == (3, "in its smallest subject")
    for k in (largest, largest + 1):  # the demonstrations the decoder's cells would get, per subject
        given = {s: len(few_shot([q for q in task.train if q["subject"] == s], k, 41, per_class=False))
                 for s in ("algebra", "virology")}
        assert (min(given.values()) == k) == (k == largest)


def test_setting4_names_the_task_kind_in_its_own_words(tmp_path):
    with pytest.raises(ConfigError) as err:
        check(load("setting4", "ci", tasks=["bigbench/disfl_qa"], store=str(tmp_path / "s.sqlite")))
    assert "generation task" in str(err.value) and "option count" not in str(err.value)
