"""The array API's inspection namespace (``arrayq.__array_namespace_info__()``), the default
complex dtype, ``arrayq.from_dlpack`` and ``arrayq.namespace(backend)``, on every backend: NumPy, primitives-only (the
contract's defaults), MLX and the strict example.

Expectations are written out per backend from what each library is: NumPy and
array_api_strict default to float64 / int64 and have every standard dtype; MLX defaults to
float32 / int32, has no complex128, and float64 only on its CPU; MLX arrays cannot take a
boolean mask or make data-dependent shapes.
"""

import inspect

import numpy as np
import pytest

import arrayq as aq
from tests._ops_support import PrimitivesOnly

COVERS = {"__array_namespace_info__", "from_dlpack", "namespace"}

STANDARD = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
STANDARD |= {"float32", "float64", "complex64", "complex128"}
DEFAULTS = {  # real floating, complex floating, integral (and indexing)
    "numpy": ("float64", "complex128", "int64"),
    "primitives-only": ("float64", "complex128", "int64"),
    "strict": ("float64", "complex128", "int64"),
    "mlx": ("float32", "complex64", "int32"),
}


@pytest.fixture(params=["numpy", "primitives-only", "mlx", "strict"])
def name(request):
    """Each backend's name (primitives-only, the contract's defaults, registered meanwhile)."""
    if request.param != "primitives-only":
        pytest.importorskip({"mlx": "mlx.core", "strict": "arrayq_strict"}.get(request.param, "numpy"))
        yield request.param
        return
    aq.register_backend("primitives-only", PrimitivesOnly, replace=True)
    try:
        yield request.param
    finally:
        aq.unregister_backend("primitives-only")


def test_default_dtypes_and_the_default_complex(name):
    real, complex_, integral = DEFAULTS[name]
    with aq.default_backend(name):
        info = aq.__array_namespace_info__()
        assert info.default_dtypes() == {
            "real floating": getattr(aq, real),
            "complex floating": getattr(aq, complex_),
            "integral": getattr(aq, integral),
            "indexing": getattr(aq, integral),
        }
        for device in info.devices():
            assert info.default_dtypes(device=device) == info.default_dtypes()
        # Python complex numbers take the default complex dtype (MLX: complex64, not complex128)
        assert aq.dtype(aq.asarray(0j)) == getattr(aq, complex_)
        assert aq.dtype(aq.asarray([1j, 2.0])) == getattr(aq, complex_)
        assert aq.dtype(aq.full((2,), 1j)) == getattr(aq, complex_)
        assert aq.dtype(aq.asarray(1.5)) == getattr(aq, real)
        assert aq.to_numpy(aq.asarray(complex(1, -2))) == complex(1, -2)


def test_dtypes_devices_and_capabilities(name):
    with aq.default_backend(name):
        info = aq.__array_namespace_info__()
        devices = info.devices()
        assert isinstance(devices, list) and info.default_device() == devices[0]
        assert "cpu" in devices
        expected = STANDARD - ({"complex128"} if name == "mlx" else set())
        assert set(info.dtypes()) == expected
        assert set(info.dtypes(device="cpu")) == expected
        if "gpu" in devices:  # MLX on a GPU: float64 exists on the CPU only
            assert set(info.dtypes(device="gpu")) == expected - {"float64"}
        assert all(d == getattr(aq, n) for n, d in info.dtypes().items())
        for kind, names in {
            "bool": {"bool"},
            "signed integer": {"int8", "int16", "int32", "int64"},
            "unsigned integer": {"uint8", "uint16", "uint32", "uint64"},
            "real floating": {"float32", "float64"},
            "complex floating": {"complex64", "complex128"},
        }.items():
            assert set(info.dtypes(kind=kind)) == names & expected
        assert set(info.dtypes(kind=("bool", "complex floating"))) == {"bool", "complex64", "complex128"} & expected
        assert set(info.dtypes(kind="integral")) == {n for n in STANDARD if "int" in n}
        assert set(info.dtypes(kind="numeric")) == expected - {"bool"}
        mlx = name == "mlx"
        assert info.capabilities() == {"boolean indexing": not mlx, "data-dependent shapes": not mlx}
        with pytest.raises(ValueError, match="unknown dtype kind"):
            info.dtypes(kind="floating")
        with pytest.raises(ValueError, match="no device"):
            info.dtypes(device="tpu")
        with pytest.raises(ValueError, match="no device"):
            info.default_dtypes(device="tpu")
        assert name in repr(info)


def test_the_info_follows_the_default_backend():
    pytest.importorskip("mlx.core")
    with aq.default_backend("mlx"):
        inside = aq.__array_namespace_info__()
    assert inside.default_dtypes()["real floating"] == aq.float32  # made inside: MLX's answers
    with aq.default_backend("numpy"):
        assert aq.__array_namespace_info__().default_dtypes()["real floating"] == aq.float64


# ---------------------------------------------------------------------- from_dlpack


def test_from_dlpack_onto_numpy_shares_unless_asked_to_copy():
    x = np.arange(6.0).reshape(2, 3)
    with aq.default_backend("numpy"):
        shared = aq.from_dlpack(x)
        assert type(shared) is np.ndarray and np.shares_memory(shared, x)
        assert np.shares_memory(aq.from_dlpack(x, copy=False), x)
        copied = aq.from_dlpack(x, copy=True)
        assert not np.shares_memory(copied, x)
        np.testing.assert_array_equal(copied, x)
        assert aq.from_dlpack(np.array(3, dtype=np.int8)).dtype == np.int8  # 0-d keeps its dtype


def test_from_dlpack_from_and_to_every_backend(name):
    if name == "primitives-only":
        pytest.skip("its arrays are NumPy arrays in a box, without __dlpack__")
    x = np.array([[1.5, -2.0], [0.25, 4.0]], dtype=np.float32)
    source = aq.to_backend(x, name)
    for target in ("numpy", name):
        with aq.default_backend(target):
            got = aq.from_dlpack(source)
            assert aq.backend_of(got) is aq.get_backend(target)
            assert aq.dtype(got) == aq.float32
            np.testing.assert_array_equal(aq.to_numpy(got), x)
            np.testing.assert_array_equal(aq.to_numpy(aq.from_dlpack(source, copy=True)), x)


def test_from_dlpack_refusals(name):
    with aq.default_backend(name):
        for not_an_array in ([1.0, 2.0], 3.0, "abc"):
            with pytest.raises(TypeError, match="__dlpack__"):
                aq.from_dlpack(not_an_array)
        if name in ("mlx", "strict", "primitives-only"):  # they import through a copy
            with pytest.raises(BufferError, match="without a copy"):
                aq.from_dlpack(np.ones(2), copy=False)
        with pytest.raises(ValueError, match="no device"):
            aq.from_dlpack(np.ones(2), device="tpu")


# ---------------------------------------------------------------------- signatures the standard fixes


def test_signatures_follow_the_standard():
    def kinds(fn):
        return {p.name: p.kind for p in inspect.signature(fn).parameters.values()}

    keyword = inspect.Parameter.KEYWORD_ONLY
    for fn in (aq.sum, aq.prod):
        assert kinds(fn) == {
            "x": inspect.Parameter.POSITIONAL_ONLY,
            "axis": keyword,
            "dtype": keyword,
            "keepdims": keyword,
        }
    assert kinds(aq.expand_dims)["axis"] == inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert kinds(aq.from_dlpack) == {"x": inspect.Parameter.POSITIONAL_ONLY, "device": keyword, "copy": keyword}
    assert kinds(aq.fft.fftfreq) == {
        "n": inspect.Parameter.POSITIONAL_ONLY,
        "d": keyword,
        "dtype": keyword,
        "device": keyword,
    }


# ---------------------------------------------------------------------- arrayq.namespace(backend)


def test_namespace_speaks_in_the_backend_s_own_dtypes(name):
    b = aq.get_backend(name)
    xp = aq.namespace(name)
    assert xp.__name__ == f"arrayq[{name}]" and xp.__array_api_version__ == "2023.12"
    for dtype_name in STANDARD:
        if name == "mlx" and dtype_name == "complex128":
            assert not hasattr(xp, dtype_name)  # absent: MLX has none
            continue
        native = getattr(xp, dtype_name)
        assert native == b.native_dtype(getattr(aq, dtype_name))
    real, complex_, integral = DEFAULTS[name]
    with aq.default_backend("numpy"):  # the view makes its own backend's arrays wherever it is used
        x = xp.ones((2, 3))
        assert aq.backend_of(x) is b
        # the comparisons the standard's code writes, with the native dtype on the left
        assert x.dtype == getattr(xp, real)
        assert xp.asarray(0j).dtype == getattr(xp, complex_)
        assert xp.arange(3).dtype == getattr(xp, integral)
        assert xp.fft.fftfreq(4).dtype == getattr(xp, real) and aq.backend_of(xp.fft.fftfreq(4)) is b
        assert xp.linalg.matmul(x, xp.ones((3, 1))).shape == (2, 1)
    assert xp.result_type(xp.float32, xp.float64) == xp.float64
    assert xp.finfo(xp.float32).dtype == xp.float32 and xp.iinfo(xp.int8).dtype == xp.int8
    info = xp.__array_namespace_info__()
    assert info.default_dtypes()["real floating"] == getattr(xp, real)
    assert all(v == getattr(xp, k) for k, v in info.dtypes().items())
    with aq.default_backend(name):
        assert info.capabilities() == aq.__array_namespace_info__().capabilities()
        assert info.devices() == aq.__array_namespace_info__().devices()
    assert inspect.signature(xp.sum) == inspect.signature(aq.sum)  # the standard's signatures come through


def test_namespace_refusals():
    with pytest.raises(aq.UnknownBackendError):
        aq.namespace("no-such-backend")
    with pytest.raises(ValueError, match="no device"):
        aq.namespace("numpy", device="tpu")
    assert aq.namespace().__name__ == f"arrayq[{aq.current_backend().name}]"
