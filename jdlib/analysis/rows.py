"""A chapter's rows read back from the results store: what its notebook shows, computing them or not."""
from __future__ import annotations

from ..grid import NotInStore, stored_only
from ..settings import load
from ..sweep import sweep


def chapter_results(chapter: str, params: str = "quick", store: str | None = None, compute: bool = True):
    """The rows a chapter's notebook shows, for its params (read back from the store); with
    `compute=False`, None when its grid is not whole in the store."""
    return config_rows(load(chapter, params, store=store), compute)


def config_rows(config, compute: bool = True):
    """The rows of a config's sweep; with `compute=False` read from the store alone, None when not whole there."""
    return sweep(config, progress=False) if compute else stored_rows(config)[0]


def stored_rows(config) -> tuple[object | None, NotInStore | None]:
    """A config's rows read from the store alone, computing nothing: (rows, None) where its grid is whole
    there, else (None, the NotInStore that says how many of its cells are missing)."""
    try:
        with stored_only():
            return sweep(config, progress=False), None
    except NotInStore as missing:
        return None, missing
