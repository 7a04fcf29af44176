"""The notebooks run headless through papermill on params/ci, and the book builds strictly."""
import json
import re
from pathlib import Path

import papermill
import pytest

from jdlib.book import notebooks
from jdlib.results import ResultsStore

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = notebooks()
GLUE_REF = re.compile(r"\{glue:\w+\}`([A-Za-z0-9_]+)|```\{glue:figure\} ([A-Za-z0-9_]+)")


def glued_names(path: Path) -> set[str]:
    cells = json.loads(path.read_text())["cells"]
    return {out.get("metadata", {}).get("scrapbook", {}).get("name") for c in cells for out in c.get("outputs", [])}


def referenced_names(path: Path) -> set[str]:
    cells = json.loads(path.read_text())["cells"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return {a or b for a, b in GLUE_REF.findall(text)}


@pytest.mark.parametrize("nb", NOTEBOOKS)
def test_every_number_the_prose_quotes_was_glued_by_the_run(book, nb):
    referenced = referenced_names(ROOT / "notebooks" / f"{nb}.ipynb")
    assert referenced, f"{nb} quotes no glued result"
    assert referenced <= glued_names(book / f"{nb}.ipynb")


def test_setting1_stores_one_row_per_cell_with_provenance(book):
    frame = ResultsStore(book / "ci.sqlite").frame(setting="setting1")
    assert len(frame) == 12 and frame["accuracy"].between(0, 1).all()
    assert (frame["git_commit"] != "").all() and (frame["wall_time_s"] > 0).all()


def test_rerun_skips_finished_cells(book, tmp_path):
    out = tmp_path / "again.ipynb"
    papermill.execute_notebook(str(ROOT / "notebooks" / "setting1.ipynb"), str(out),
                               parameters={"params": "ci", "store": str(book / "ci.sqlite")},
                               kernel_name="python3", progress_bar=False)
    assert "0 of 12 cells to run" in out.read_text()


def test_notebooks_are_thin():
    for nb in NOTEBOOKS:
        cells = json.loads((ROOT / "notebooks" / f"{nb}.ipynb").read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            assert not any(line.lstrip().startswith(("def ", "class ")) for line in source.splitlines())
            assert not cell.get("outputs"), "source notebooks carry no outputs"


def test_book_builds_strictly(built_book):
    for nb in NOTEBOOKS:
        html = (built_book / f"{nb}.html").read_text()
        assert "<img" in html and ".png" in html
        assert "glue:" not in html
