"""Backend discovery through entry points, run-time registration, and the message for a
backend whose library is missing."""

import subprocess
import sys
import textwrap

import pytest

import arrayq
from arrayq import _registry
from tests._fake_backends import make_backend_class


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """An installed distribution (a .dist-info with entry points) on sys.path, providing
    three backends: one that loads, one whose library is missing, one whose package is."""
    pkg = tmp_path / "fake_backend_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent("""
        from tests._fake_backends import make_backend_class

        Working = make_backend_class("EntryPoint")

        class NeedsMissingLibrary(Working):
            install_hint = "pip install 'arrayq[nothing]'"

            def __init__(self):
                import a_library_that_is_not_installed  # noqa: F401
    """)
    )
    dist = tmp_path / "fake_backend-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-backend\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""
        [arrayq.backends]
        fake = fake_backend_pkg:Working
        needs-lib = fake_backend_pkg:NeedsMissingLibrary
        no-package = package_that_does_not_exist:Backend
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_registry, "_entries", None)  # forget the cached discovery
    yield
    monkeypatch.setattr(_registry, "_entries", None)
    sys.modules.pop("fake_backend_pkg", None)


def test_entry_point_backend_is_discovered_and_loaded(fake_distribution):
    names = {row.name: row for row in arrayq.list_backends()}
    assert names["fake"].available and names["fake"].source == "entry point fake_backend_pkg:Working"
    backend = arrayq.get_backend("fake")
    assert type(backend).__name__ == "EntryPointBackend" and backend.name == "fake"
    assert arrayq.get_backend("fake") is backend  # loaded once


def test_missing_library_is_listed_unavailable_with_reason_and_hint(fake_distribution):
    rows = {row.name: row for row in arrayq.list_backends()}
    row = rows["needs-lib"]
    assert not row.available
    assert "a_library_that_is_not_installed" in row.reason
    assert row.install_hint == "pip install 'arrayq[nothing]'"
    with pytest.raises(arrayq.BackendUnavailableError, match=r"needs-lib.*arrayq\[nothing\]"):
        arrayq.get_backend("needs-lib")
    missing_pkg = rows["no-package"]
    assert not missing_pkg.available and "package_that_does_not_exist" in missing_pkg.reason


def test_unknown_backend_names_the_known_ones():
    with pytest.raises(arrayq.UnknownBackendError, match="no arrayq backend named 'nope'.*numpy"):
        arrayq.get_backend("nope")


def test_register_backend_at_run_time_then_unregister():
    cls = make_backend_class("Runtime")
    arrayq.register_backend("runtime", cls)
    try:
        backend = arrayq.get_backend("runtime")
        assert isinstance(backend, cls) and backend.name == "runtime"
        with pytest.raises(ValueError, match="exists already"):
            arrayq.register_backend("runtime", cls)
        instance = cls()
        arrayq.register_backend("runtime", instance, replace=True)
        assert arrayq.get_backend("runtime") is instance
    finally:
        arrayq.unregister_backend("runtime")
    with pytest.raises(arrayq.UnknownBackendError):
        arrayq.get_backend("runtime")


def test_register_backend_rejects_non_backends():
    with pytest.raises(TypeError, match="Backend instance or subclass"):
        arrayq.register_backend("bad", object())


def test_numpy_registers_through_the_entry_point():
    row = {r.name: r for r in arrayq.list_backends()}["numpy"]
    assert row.available and row.source.startswith("entry point arrayq_numpy:")


def test_import_arrayq_imports_no_backend_library():
    code = "import sys, arrayq; arrayq.list_backends(load=False); print('mlx' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_capabilities_reports_native_and_fallback():
    caps = arrayq.capabilities("numpy")
    assert caps["add"] == "primitive"
    assert caps["mean"] == "native"  # NumPy overrides the composite
    assert caps["moveaxis"] == "fallback"  # the reference default runs
    assert set(caps) == set(arrayq.PRIMITIVES) | set(arrayq.COMPOSITES) | set(arrayq.NATIVE_OPS)
    assert caps["quantized_matmul"] == "native" and caps["quantize"] == "fallback"  # the format code runs
