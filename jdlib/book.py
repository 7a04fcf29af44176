"""The book's chapters in reading order, from _toc.yml: the order notebooks must run in
(the claims chapter reads every other chapter's rows, so it comes last).

    python -m jdlib.book      # prints the notebooks of notebooks/ in that order
"""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def chapters(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """Every file the table of contents names, in order (the root first)."""
    data = yaml.safe_load(toc.read_text())
    files = [data["root"]]
    for part in data.get("parts", []):
        files += [chapter["file"] for chapter in part.get("chapters", [])]
    return files


def notebooks() -> list[str]:
    """The chapters that are notebooks in notebooks/, in reading order."""
    return [name for name in chapters() if (ROOT / "notebooks" / f"{name}.ipynb").exists()]


if __name__ == "__main__":
    print(" ".join(notebooks()))
