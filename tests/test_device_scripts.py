"""The device scripts in bench/ check their preconditions: on a machine not set up each exits non-zero
with one line naming what is missing and which call sets it up; none kills by a broad pattern."""
import os
import re
import sys
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SET_UP = Path("/tmp/jd/call1.done").exists()  # a machine set up by device_stage.sh: the checks pass there


def run(command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], **env})


def one_line_failure(done: subprocess.CompletedProcess, script: str) -> str:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: "), done.stderr
    return lines[0]


@pytest.mark.skipif(SET_UP, reason="this machine is set up for the device scripts")
def test_device_grids_on_a_machine_not_set_up_fails_with_one_line(tmp_path):
    script = ROOT / "bench/device_grids.sh"
    assert "usage" in one_line_failure(run(f"bash {script}", tmp_path), "device_grids.sh")
    assert "nothing to run" in one_line_failure(run(f"bash {script} 540", tmp_path, OUT=str(tmp_path)),
                                                "device_grids.sh")
    assert "OUT" in one_line_failure(run(f"GRIDS=setting5 bash {script} 540", tmp_path), "device_grids.sh")
    line = one_line_failure(run(f"GRIDS=setting5 bash {script} 540", tmp_path, OUT=str(tmp_path)), "device_grids.sh")
    assert "not set up" in line and "calls 1, 2, 3 and 4" in line
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.skipif(SET_UP, reason="this machine is set up for the device scripts")
def test_device_stage_and_run_name_the_missing_call(tmp_path):
    for folder in ("a", "w", "x", "b"):
        (tmp_path / f".gpu/{folder}").mkdir(parents=True)
        target, src = ("run.sh", "device_run.sh") if folder == "b" else ("stage.sh", "device_stage.sh")
        (tmp_path / f".gpu/{folder}/{target}").write_text((ROOT / f"bench/{src}").read_text())
    line = one_line_failure(run("bash .gpu/a/stage.sh", tmp_path), "device_stage.sh")
    assert "incomplete" in line and "carry .gpu/a" in line
    line = one_line_failure(run("bash .gpu/w/stage.sh", tmp_path), "device_stage.sh")
    assert "call 1" in line and "back to back" in line
    line = one_line_failure(run("bash .gpu/x/stage.sh", tmp_path), "device_stage.sh")
    assert "call 2 (carry .gpu/w" in line and "calls 1, 2, 3 and 4 back to back" in line
    done = run("source .gpu/b/run.sh && echo reached", tmp_path)
    assert "call 1" in one_line_failure(done, "device_run.sh") and "reached" not in done.stdout
    assert "stage.sh (call 1)" in one_line_failure(run(f"bash {ROOT}/bench/device_stage.sh", tmp_path),
                                                   "device_stage.sh")


@pytest.mark.skipif(SET_UP, reason="this machine is set up for the device scripts")
def test_device_stage_of_the_mpnet_parts_names_the_missing_call(tmp_path):
    for k in (1, 2, 3):
        folder = tmp_path / f".gpu/m{k}"
        folder.mkdir(parents=True)
        (folder / "stage.sh").write_text((ROOT / "bench/device_stage.sh").read_text())
        (folder / f"mpnet.tar.xz.{k}").write_bytes(b"part")
        (folder / "mpnet.meta").write_text("3 0123abcd\n")
    line = one_line_failure(run("bash .gpu/m1/stage.sh", tmp_path), "device_stage.sh")
    assert "call 3 (carry .gpu/x" in line and "m1..m3" in line and "back to back" in line
    line = one_line_failure(run("bash .gpu/m3/stage.sh", tmp_path), "device_stage.sh")
    assert "call m2 (carry .gpu/m2: bash .gpu/m2/stage.sh) did not run" in line and "back to back" in line
    (tmp_path / ".gpu/m2/mpnet.meta").unlink()
    line = one_line_failure(run("bash .gpu/m2/stage.sh", tmp_path), "device_stage.sh")
    assert "incomplete" in line and "MPNET=1 bash bench/device_payloads.sh" in line and "carry .gpu/m2" in line


def test_no_script_in_bench_kills_by_pattern():
    for path in (ROOT / "bench").iterdir():
        if path.suffix in (".sh", ".py"):
            assert not re.search(r"\b(pkill|killall)\b", path.read_text()), path


# The GPU machine's Python has torch, numpy, pandas, scipy, matplotlib and the wheels device_payloads.sh
# carries, but not the notebook stack: jdlib must import and sweep without it.
NOT_ON_THE_DEVICE = ("IPython", "papermill", "nbformat", "myst_nb", "ipywidgets", "jupyter_book")
BLOCKED_IMPORT = f"""
import sys
class NotOnTheDevice:
    def find_spec(self, name, *args):
        if name.split(".")[0] in {NOT_ON_THE_DEVICE!r}:
            raise ImportError(name + " is not on the GPU machine")
sys.meta_path.insert(0, NotOnTheDevice())
import jdlib, jdlib.merge, jdlib.sweep, jdlib.analysis
"""


def test_jdlib_imports_without_the_notebook_stack_the_device_lacks():
    done = subprocess.run([sys.executable, "-c", BLOCKED_IMPORT], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
