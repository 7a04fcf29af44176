"""The chapter notebooks are saved in the form JupyterLab writes (jdlib.lab_format), so opening one in
JupyterLab marks nothing modified; and lab_format puts a notebook in that form."""
from pathlib import Path

import nbformat
import pytest

from jdlib.lab_format import kernel_metadata, lab_form, main, text

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def metadata():
    return kernel_metadata()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_is_already_in_jupyterlab_form(path, metadata):
    now = path.read_text(encoding="utf-8")
    assert text(lab_form(nbformat.reads(now, as_version=4), metadata)) == now, \
        f"{path.name} is not as JupyterLab saves it: run `python -m jdlib.lab_format {path}`"


def test_an_old_notebook_gets_ids_minor_version_and_the_kernels_metadata(tmp_path, metadata):
    old = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A"), nbformat.v4.new_code_cell("1")])
    old.nbformat_minor = 4
    for cell in old.cells:
        del cell["id"]
    old.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}}
    path = tmp_path / "old.ipynb"
    path.write_text(nbformat.writes(old, version=4), encoding="utf-8")
    assert main(["--check", str(path)]) == 1
    assert main([str(path)]) == 0 and main(["--check", str(path)]) == 0
    new = nbformat.read(path, as_version=4)
    assert new.nbformat_minor == 5 and all(cell.get("id") for cell in new.cells)
    assert new.metadata.kernelspec == metadata["kernelspec"] and new.metadata.language_info["name"] == "python"
    assert [c.source for c in new.cells] == ["# A", "1"]
