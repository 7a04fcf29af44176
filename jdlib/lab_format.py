"""Notebooks saved in the form JupyterLab writes, so that opening one there changes nothing.

    python -m jdlib.lab_format notebooks/*.ipynb           # rewrites each one not in that form
    python -m jdlib.lab_format --check notebooks/*.ipynb   # lists them, exit status 1 if any

JupyterLab marks a notebook modified when opening it changes its model: a cell without an id
(nbformat 4.4 and older) gets one, and the kernel it starts writes its kernelspec and the
language_info it reports into the metadata. So a notebook here is nbformat 4.5 with an id per
cell, the kernelspec of the kernel `make install` installs (name, display name, language) and the
language_info that kernel reports, and it is written as Jupyter's contents manager writes it
(`nbformat.write`: sorted keys, indent 1, a final newline).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4.nbbase import random_cell_id

KERNEL = "python3"  # the kernel `make install` installs (ipykernel install --sys-prefix --name python3)


def kernel_metadata(name: str = KERNEL) -> dict:
    """The notebook metadata JupyterLab writes for kernel `name`: its kernelspec, and the
    language_info the kernel reports when it starts (started and shut down here)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import start_new_kernel

    spec = KernelSpecManager().get_kernel_spec(name)
    manager, client = start_new_kernel(kernel_name=name)
    try:
        language_info = client.kernel_info(reply=True, timeout=60)["content"]["language_info"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return {"kernelspec": {"display_name": spec.display_name, "language": spec.language, "name": name},
            "language_info": language_info}


def lab_form(nb: nbformat.NotebookNode, metadata: dict) -> nbformat.NotebookNode:
    """`nb` as JupyterLab saves it with the kernel of `metadata` (`kernel_metadata`): nbformat 4.5,
    an id on every cell (existing ids kept), that kernel's kernelspec and language_info; validated."""
    nb = nbformat.from_dict(nb)
    nb.nbformat, nb.nbformat_minor = 4, 5
    for cell in nb.cells:
        cell.setdefault("id", random_cell_id())
    nb.metadata.update(nbformat.from_dict(metadata))
    nbformat.validate(nb)
    return nb


def text(nb: nbformat.NotebookNode) -> str:
    """The file's text as `nbformat.write` (Jupyter's contents manager) writes it."""
    out = nbformat.writes(nb, version=4)
    return out if out.endswith("\n") else out + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing: list the notebooks not in that form")
    parser.add_argument("--kernel", default=KERNEL)
    args = parser.parse_args(argv)
    metadata = kernel_metadata(args.kernel)
    differ = []
    for path in args.notebooks:
        now = path.read_text(encoding="utf-8")
        wanted = text(lab_form(nbformat.reads(now, as_version=4), metadata))
        if now != wanted:
            differ.append(path)
            if not args.check:
                path.write_text(wanted, encoding="utf-8")
    verb = "not in JupyterLab's form" if args.check else "rewritten in JupyterLab's form"
    print(f"{len(differ)} of {len(args.notebooks)} notebooks {verb}" + "".join(f"\n  {p}" for p in differ))
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
