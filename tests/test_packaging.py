"""The release artefacts: ``python -m build`` makes an sdist and a wheel from it, the wheel
holds every package arrayq needs (the shipped backends, the conformance suite, the models,
py.typed), and installed into a fresh virtual environment it works on its own: imports,
``arrayq --version``, and a slice of the conformance suite, run from a directory outside
the source tree so that only the installed wheel can be imported.

The build runs without isolation (no download), so it needs ``build`` and setuptools >= 77
(which reads ``license = "MIT"``), as the ``dev`` extra installs; otherwise it skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import site
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

import arrayq

ROOT = Path(__file__).resolve().parents[1]


def _setuptools_version() -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return (0,)


def _run(cmd: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel ``python -m build`` makes (the wheel built from the sdist)."""
    if importlib.util.find_spec("build") is None:
        pytest.skip("the build package is not installed; pip install -e '.[dev]'")
    if _setuptools_version() < (77,):
        pytest.skip("setuptools >= 77 is needed to build without isolation; pip install -e '.[dev]'")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)], cwd=out)
    wheels, sdists = sorted(out.glob("arrayq-*.whl")), sorted(out.glob("arrayq-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_wheel_and_sdist_are_named_for_the_version(dist: dict[str, Path]) -> None:
    assert dist["wheel"].name.startswith(f"arrayq-{arrayq.__version__}-py3-none-any")
    assert dist["sdist"].name == f"arrayq-{arrayq.__version__}.tar.gz"


def test_wheel_holds_every_package(dist: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    for required in (
        "arrayq/__init__.py",
        "arrayq/py.typed",
        "arrayq/conformance/__init__.py",
        "arrayq/conformance/cases.py",
        "arrayq/conformance/plugin.py",
        "arrayq/models/__init__.py",
        "arrayq/models/qwen3.py",
        "arrayq_numpy/__init__.py",
        "arrayq_numpy/_quantized.py",
        "arrayq_mlx/__init__.py",
    ):
        assert required in names, f"{required} is not in {dist['wheel'].name}"
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(dist["wheel"]).read(meta).decode()
    assert f"Version: {arrayq.__version__}" in text
    assert "License-Expression: MIT" in text or "License: MIT" in text
    eps = zipfile.ZipFile(dist["wheel"]).read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert "[arrayq.backends]" in eps and "numpy = arrayq_numpy:NumPyBackend" in eps
    assert "arrayq = arrayq.cli:main" in eps


def test_installed_wheel_works_on_its_own(dist: dict[str, Path], tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    # arrayq's dependencies (numpy, ml_dtypes, array-api-compat, mlx) come from this
    # interpreter's site-packages, which may themselves be a virtual environment's: add
    # them after the new environment's own, so that the wheel installed there comes first
    venv_site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path).stdout.strip()
    )
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (venv_site / "_arrayq_test_parent_site.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
    )
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(dist["wheel"])], cwd=tmp_path)

    work = tmp_path / "elsewhere"  # not the source tree: only the installed wheel can be found
    work.mkdir()
    probe = (
        "import json, pathlib, arrayq, arrayq_numpy, arrayq_mlx, arrayq.conformance, arrayq.models\n"
        "mods = (arrayq, arrayq_numpy, arrayq_mlx, arrayq.conformance, arrayq.models)\n"
        "mods = {m.__name__: m.__file__ for m in mods}\n"
        "typed = (pathlib.Path(arrayq.__file__).parent / 'py.typed').is_file()\n"
        "print(json.dumps({'files': mods, 'typed': typed, 'version': arrayq.__version__,"
        " 'backends': [b.name for b in arrayq.list_backends(load=False)]}))\n"
    )
    found = json.loads(_run([str(python), "-c", probe], cwd=work).stdout.strip().splitlines()[-1])
    for name, file in found["files"].items():
        assert Path(file).resolve().is_relative_to(venv_site.resolve()), f"{name} was imported from {file}"
    assert found["typed"], "py.typed is missing from the installed package"
    assert found["version"] == arrayq.__version__
    assert {"numpy", "mlx"} <= set(found["backends"])

    assert _run([str(bindir / "arrayq"), "--version"], cwd=work).stdout.strip() == f"arrayq {arrayq.__version__}"
    report = _run([str(bindir / "arrayq"), "conformance", "numpy", "-k", "quantized_matmul"], cwd=work).stdout
    assert "quantized_matmul" in report and "pass" in report, report
