"""The release artefacts: ``python -m build`` makes an sdist and a wheel from it, the wheel
holds every package arrayq needs (the shipped backends, the conformance suite, the models,
the benchmarks, py.typed), and installed into a fresh virtual environment it works on its
own: imports, ``arrayq --version``, a slice of the conformance suite, and ``arrayq bench``'s
generation rows, run from a directory outside the source tree so that only the installed
wheel can be imported.

The wheel carries the NumPy backend's native kernels where a C compiler is found; a second
build with no compiler (``CC`` pointing at a program that fails) must still give a wheel that
installs and works, on the pure-NumPy path, and says so in ``arrayq info``.

The build runs without isolation (no download), so it needs ``build`` and setuptools >= 77
(which reads ``license = "MIT"``), as the ``dev`` extra installs; otherwise it skips.
"""

from __future__ import annotations

import hashlib
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
#: The MLX backend's CUDA sources (package data, read at run time), relative to the source tree.
CUDA_SOURCES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "backends/arrayq_mlx/cuda").glob("*.cu*"))


def _setuptools_version() -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version("setuptools").split(".")[:2])
    except (PackageNotFoundError, ValueError):
        return (0,)


def _run(
    cmd: list[str], cwd: Path, timeout: float = 300, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(extra_env or {})
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if proc.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-4000:]}")
    return proc


def _build(out: Path, source: Path, extra_env: dict[str, str] | None = None) -> dict[str, Path]:
    if importlib.util.find_spec("build") is None:
        pytest.skip("the build package is not installed; pip install -e '.[dev]'")
    if _setuptools_version() < (77,):
        pytest.skip("setuptools >= 77 is needed to build without isolation; pip install -e '.[dev]'")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)], out, 300, extra_env)
    wheels, sdists = sorted(out.glob("arrayq-*.whl")), sorted(out.glob("arrayq-*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) <= 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0] if sdists else source}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and the wheel ``python -m build`` makes (the wheel built from the sdist). Its
    kernels are compiled at -O0 (setup.py keeps a level CFLAGS names): what ships in the wheel
    is tested here, not how fast it runs, and kernels.c takes minutes to compile at -O3."""
    return _build(tmp_path_factory.mktemp("dist"), ROOT, extra_env={"CFLAGS": "-O0"})


@pytest.fixture(scope="module")
def wheel_without_compiler(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from the sdist where the C compiler fails (as on a machine without one)."""
    failing = "false" if os.name != "nt" else "cmd /c exit 1"
    no_cc = {"CC": failing, "LDSHARED": failing, "LDCXXSHARED": failing}
    out = tmp_path_factory.mktemp("dist-no-cc")
    return _build(out, dist["sdist"], extra_env=no_cc)["wheel"]


def _has_compiler() -> bool:
    """Whether this environment built the native kernels (then a wheel build does too)."""
    return importlib.util.find_spec("arrayq_numpy._kernels") is not None


def test_wheel_and_sdist_are_named_for_the_version(dist: dict[str, Path]) -> None:
    assert dist["wheel"].name.startswith(f"arrayq-{arrayq.__version__}-")
    assert dist["sdist"].name == f"arrayq-{arrayq.__version__}.tar.gz"


def test_sdist_carries_the_kernel_sources(dist: dict[str, Path]) -> None:
    import tarfile

    names = {n.split("/", 1)[1] for n in tarfile.open(dist["sdist"]).getnames() if "/" in n}
    csrc = "backends/arrayq_numpy/csrc/"
    sources = ("module.c", "kernels.c", "kernels.h", "kernels_simd.inc", "repacked_simd.inc", "repack.c")
    sources += ("threadpool.c", "attention.c", "bound.c", "glue.h")
    assert {"setup.py", *(csrc + name for name in sources)} <= names
    assert set(CUDA_SOURCES) <= names


def test_wheel_holds_every_package(dist: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    for required in (
        "arrayq/__init__.py",
        "arrayq/py.typed",
        "arrayq/bench/__init__.py",
        "arrayq/bench/_generate.py",
        "arrayq/bench/_worker.py",
        "arrayq/conformance/__init__.py",
        "arrayq/conformance/cases/__init__.py",
        "arrayq/conformance/plugin.py",
        "arrayq/models/__init__.py",
        "arrayq/models/qwen3.py",
        "arrayq/serving/__init__.py",
        "arrayq/serving/_http.py",
        "arrayq_numpy/__init__.py",
        "arrayq_numpy/_fastpath.py",
        "arrayq_mlx/__init__.py",
        "arrayq_mlx/cuda/__init__.py",
        "arrayq_mlx/cuda/_launch.py",
        "arrayq_jax/__init__.py",
        "arrayq_jax/_quantized.py",
        *(path.removeprefix("backends/") for path in CUDA_SOURCES),
    ):
        assert required in names, f"{required} is not in {dist['wheel'].name}"
    assert len(CUDA_SOURCES) >= 8 and any(n.endswith(".cu") for n in CUDA_SOURCES), CUDA_SOURCES
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(dist["wheel"]).read(meta).decode()
    assert f"Version: {arrayq.__version__}" in text
    assert "License-Expression: MIT" in text or "License: MIT" in text
    eps = zipfile.ZipFile(dist["wheel"]).read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert "[arrayq.backends]" in eps and "numpy = arrayq_numpy:NumPyBackend" in eps
    assert "jax = arrayq_jax:JAXBackend" in eps
    assert "arrayq = arrayq.cli:main" in eps


def test_wheel_holds_the_native_kernels_where_a_compiler_is_found(dist: dict[str, Path]) -> None:
    if not _has_compiler():
        pytest.skip("this environment has no C compiler: the kernels were not built here either")
    names = zipfile.ZipFile(dist["wheel"]).namelist()
    assert any(n.startswith("arrayq_numpy/_kernels") and n.endswith((".so", ".pyd")) for n in names), names


def _cuda_names() -> list[str]:
    return [Path(p).name for p in CUDA_SOURCES]


def _install_and_probe(wheel: Path, tmp_path: Path) -> tuple[Path, Path, dict]:
    """A fresh virtual environment with ``wheel`` installed (its dependencies from this
    interpreter); returns its bin directory, a work directory outside the source tree, and
    what the installed arrayq reports about itself."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    # arrayq's dependencies (numpy, ml_dtypes, array-api-compat, mlx) come from this
    # interpreter's site-packages, which may themselves be a virtual environment's: add
    # them after the new environment's own, so that the wheel installed there comes first
    venv_site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path).stdout.strip()
    )
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    # (as plain path entries: their .pth files would bring back the editable install's
    # import hook, which finds modules in the source tree that the wheel lacks)
    (venv_site / "_arrayq_test_parent_site.pth").write_text(
        "".join(f"import sys; sys.path.append({p!r})\n" for p in parents)
    )
    _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)], cwd=tmp_path)

    work = tmp_path / "elsewhere"  # not the source tree: only the installed wheel can be found
    work.mkdir()
    probe = (
        "import json, pathlib, arrayq, arrayq_numpy, arrayq_mlx, arrayq.conformance, arrayq.models\n"
        "mods = (arrayq, arrayq_numpy, arrayq_mlx, arrayq.conformance, arrayq.models)\n"
        "mods = {m.__name__: m.__file__ for m in mods}\n"
        "typed = (pathlib.Path(arrayq.__file__).parent / 'py.typed').is_file()\n"
        "import hashlib; from arrayq_mlx.cuda import _launch\n"  # the CUDA sources as the launcher reads them
        "mods[_launch.__name__] = _launch.__file__\n"
        f"cuda = {{n: hashlib.sha256(_launch.source(n).encode()).hexdigest() for n in {_cuda_names()!r}}}\n"
        "print(json.dumps({'files': mods, 'typed': typed, 'version': arrayq.__version__, 'cuda': cuda,"
        " 'backends': [b.name for b in arrayq.list_backends(load=False)]}))\n"
    )
    found = json.loads(_run([str(python), "-c", probe], cwd=work).stdout.strip().splitlines()[-1])
    found["venv_site"] = str(venv_site)
    return bindir, work, found


@pytest.fixture(scope="module")
def installed(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """The wheel installed into a fresh virtual environment (:func:`_install_and_probe`)."""
    return _install_and_probe(dist["wheel"], tmp_path_factory.mktemp("installed"))


def test_installed_wheel_works_on_its_own(installed: tuple[Path, Path, dict]) -> None:
    bindir, work, found = installed
    venv_site = Path(found["venv_site"])
    for name, file in found["files"].items():
        assert Path(file).resolve().is_relative_to(venv_site.resolve()), f"{name} was imported from {file}"
    assert found["typed"], "py.typed is missing from the installed package"
    from arrayq_mlx.cuda import _launch

    want = {n: hashlib.sha256(_launch.source(n).encode()).hexdigest() for n in _cuda_names()}
    assert found["cuda"] == want, "the installed wheel's CUDA sources differ from the source tree's"
    assert found["version"] == arrayq.__version__
    assert {"numpy", "mlx"} <= set(found["backends"])

    assert _run([str(bindir / "arrayq"), "--version"], cwd=work).stdout.strip() == f"arrayq {arrayq.__version__}"
    report = _run([str(bindir / "arrayq"), "conformance", "numpy", "-k", "quantized_matmul"], cwd=work).stdout
    assert "quantized_matmul" in report and "pass" in report, report
    if _has_compiler():
        info = _run([str(bindir / "arrayq"), "info"], cwd=work).stdout
        assert "native kernels" in info, info


def test_installed_wheel_benchmarks_generation(installed: tuple[Path, Path, dict], tmp_path: Path) -> None:
    """``arrayq bench --quick`` from the installed wheel, outside the source tree, prints
    the generation rows: what it runs ships in the wheel (arrayq.bench, its worker
    processes). The quantized and dispatch benchmarks are exercised in test_bench.py;
    ``--only generate`` keeps this test to the tiny model's engines."""
    bindir, work, _ = installed
    proc = _run(
        [str(bindir / "arrayq"), "bench", "--quick", "--only", "generate"],
        cwd=work,
        extra_env={"ARRAYQ_CACHE": str(tmp_path / "cache")},
    )
    assert "token generation" in proc.stdout, proc.stdout + proc.stderr
    for phase in ("prefill", "decode"):
        assert f"{phase}, tiny" in proc.stdout and "arrayq numpy" in proc.stdout, proc.stdout + proc.stderr
    if importlib.util.find_spec("mlx") is not None:
        assert "arrayq mlx" in proc.stdout, proc.stdout + proc.stderr
    assert "failed" not in proc.stderr, proc.stderr


def test_wheel_built_without_a_compiler_works_on_the_numpy_path(wheel_without_compiler: Path, tmp_path: Path) -> None:
    names = zipfile.ZipFile(wheel_without_compiler).namelist()
    assert not any(n.startswith("arrayq_numpy/_kernels") and n.endswith((".so", ".pyd")) for n in names), names
    bindir, work, _ = _install_and_probe(wheel_without_compiler, tmp_path)
    info = _run([str(bindir / "arrayq"), "info"], cwd=work).stdout
    assert "pure-NumPy path (native kernels not built" in info, info
    report = _run([str(bindir / "arrayq"), "conformance", "numpy", "-k", "quantized_matmul"], cwd=work).stdout
    assert "quantized_matmul" in report and "pass" in report, report
