"""The whole conformance suite on the JAX backend, with jax_enable_x64 off (this process) and on
(a subprocess: the flag is process-wide and read when jax is imported, so it cannot be turned on
for one test). Each run must pass every case it does not skip, and skip only its declared gaps:
the 64-bit dtypes with x64 off, nothing with it on. The x64-on run starts first and runs beside the
in-process one (CI has two cores), so the two cost about one run of wall time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("jax")

import arrayq
from arrayq.conformance import run

X64_DTYPES = {"float64", "int64", "uint64", "complex128"}


@pytest.fixture(scope="module")
def x64_run(tmp_path_factory):
    """``arrayq conformance jax --json`` under JAX_ENABLE_X64=1, started now, read when needed."""
    out = tmp_path_factory.mktemp("x64") / "report.json"
    env = {**os.environ, "JAX_ENABLE_X64": "1"}
    cmd = [sys.executable, "-m", "arrayq.cli", "conformance", "jax", "--json", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc, out
    if proc.poll() is None:
        proc.kill()


def _skipped_gaps(results):
    return {r["message"].split("'")[1] for r in results if r["status"] == "skip"}


def test_jax_passes_the_suite_with_x64_off(x64_run):
    pytest.importorskip("jax")
    if arrayq.get_backend("jax").gaps() == {}:
        pytest.skip("this process runs with JAX_ENABLE_X64 set; the x64-on run covers it")
    report = run("jax")
    assert not report.failed, "\n" + report.table()
    assert report.counts()["pass"] > 2000
    skipped = _skipped_gaps([{"status": r.status, "message": r.message} for r in report.results])
    assert skipped and skipped <= X64_DTYPES  # every skip is a 64-bit dtype, declared
    assert set(report.versions) == {"jax", "jaxlib"} and "libraries: jax " in report.table()


def test_jax_passes_the_suite_with_x64_on(x64_run):
    proc, out = x64_run
    log, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0, log[-3000:]
    data = json.loads(out.read_text())
    assert data["counts"]["fail"] == 0 and data["counts"]["skip"] == 0, data["counts"]
    assert data["counts"]["pass"] > 3000
    assert set(data["versions"]) == {"jax", "jaxlib"}
    # the 64-bit cases ran (and passed) rather than being skipped
    assert any("float64" in c["id"] and c["status"] == "pass" for c in data["cases"])
