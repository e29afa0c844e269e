"""Shared by tests/test_ops*.py and tests/test_dtypes.py: the backends every op test runs on,
and the checks every result goes through.

Each op test runs twice, through the ``be`` fixture:

* ``numpy``: the reference backend, with its native overrides of the composites.
* ``primitives-only``: the NumPy backend with every composite it overrides put back to the
  reference default in :class:`arrayq.Backend`, so those defaults (written once for every
  backend) are checked against the same expectations. Its arrays are a distinct type,
  :class:`PArray`: an ndarray in a box rather than an ndarray subclass, so that nothing
  NumPy does with subclasses (``isinstance`` checks, ufuncs keeping the subclass) can hide
  where a result came from. A PArray refuses to be turned into a NumPy array behind the
  backend's back, so a composite that strays outside the Backend contract fails loudly,
  and its indexing always gives arrays, as MLX's does.

Expectations are computed independently of the code under test: by hand, with Python's
``math``/``cmath``/``fractions``/``bisect`` in loops, or with NumPy called another way
(``einsum``, explicit index loops); never with the NumPy function the backend calls.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import warnings
from typing import Any

import numpy as np
import pytest

import arrayq
from arrayq.backend import COMPOSITES, NATIVE_OPS, Backend
from arrayq_numpy import NumPyBackend
from tests._fake_backends import ARRAY_PRIMITIVE_METHODS

#: Composites and optional native ops the NumPy backend overrides; PrimitivesOnly puts
#: back the contract's defaults (for native ops: NotImplemented, so the frontend's reference runs).
NUMPY_NATIVE = tuple(n for n in (*COMPOSITES, *NATIVE_OPS) if getattr(NumPyBackend, n) is not getattr(Backend, n))

# ---------------------------------------------------------------------- the test-only backend


class PArray:
    """An array of the primitives-only backend: a numpy.ndarray in a box.

    Supports what the Backend contract lets composites use on a backend array: ``shape``,
    ``ndim``, ``size``, ``dtype`` and basic indexing (which, as on MLX, always gives an
    array, never a scalar)."""

    __slots__ = ("a",)
    __array_ufunc__ = None  # NumPy ufuncs must not accept it either

    def __init__(self, a: Any) -> None:
        self.a = a

    shape = property(lambda self: self.a.shape)
    ndim = property(lambda self: self.a.ndim)
    size = property(lambda self: self.a.size)
    dtype = property(lambda self: self.a.dtype)

    def __getitem__(self, key: Any) -> PArray:
        return PArray(np.asarray(self.a[key]))

    def __array__(self, *args: Any, **kwargs: Any):
        raise TypeError(
            "a PArray reached NumPy without going through the backend: "
            "a composite used something outside the Backend contract"
        )

    def __repr__(self) -> str:
        return f"PArray({self.a!r})"


def _unbox(v: Any) -> Any:
    if isinstance(v, PArray):
        return v.a
    if type(v) in (list, tuple):
        return type(v)(_unbox(i) for i in v)
    return v


def _box(v: Any) -> Any:
    # numpy scalars are boxed too, so that the type check of the results still sees them
    if isinstance(v, (np.ndarray, np.generic)):
        return PArray(v)
    if type(v) in (list, tuple):
        return type(v)(_box(i) for i in v)
    return v


def _boxed(name: str):
    native = getattr(NumPyBackend, name)

    @functools.wraps(native)
    def method(self, *args, **kwargs):
        return _box(native(self, *_unbox(args), **{k: _unbox(v) for k, v in kwargs.items()}))

    return method


#: The primitives that take or give arrays (is_array, native_dtype, to_numpy are below).
_ARRAY_PRIMITIVES = ARRAY_PRIMITIVE_METHODS


class PrimitivesOnly(NumPyBackend):
    """NumPy's primitives on PArrays, and every composite from the Backend defaults."""

    gives_way = False
    library_module = "numpy"

    def is_array(self, x):
        return isinstance(x, PArray)

    def to_numpy(self, x):
        return x.a


for _name in _ARRAY_PRIMITIVES:
    setattr(PrimitivesOnly, _name, _boxed(_name))
for _name in NUMPY_NATIVE:
    setattr(PrimitivesOnly, _name, getattr(Backend, _name))
del _name

# ---------------------------------------------------------------------- the fixture


class Be:
    """One backend under test, with the helpers the tests use."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.backend = arrayq.get_backend(name)
        self.boxed = name == "primitives-only"

    def __repr__(self) -> str:
        return self.name

    def arr(self, data: Any, dtype: Any = None) -> Any:
        """An array of this backend holding ``data`` (NumPy semantics for ``dtype``)."""
        a = np.array(data, dtype=None if dtype is None else arrayq.as_dtype(dtype).dtype)
        return PArray(a) if self.boxed else a

    def creating(self):
        """Creation functions (no array argument) make arrays of this backend inside."""
        return arrayq.default_backend(self.name)

    def out(self, r: Any) -> np.ndarray:
        """``r`` as a NumPy array, after checking it is an array of this backend and not a
        NumPy scalar."""
        if self.boxed:
            assert type(r) is PArray, f"expected a PArray, got {type(r).__name__}: {r!r}"
            assert type(r.a) is np.ndarray, f"expected an ndarray inside, got {type(r.a).__name__}: {r.a!r}"
            return r.a
        assert type(r) is np.ndarray, f"expected numpy.ndarray, got {type(r).__name__}: {r!r}"
        return r

    def check(self, r: Any, expected: Any, dtype: Any, *, rtol: float = 0.0, atol: float = 0.0) -> np.ndarray:
        """``r`` is an array of this backend of ``expected``'s shape, of ``dtype``, equal to
        ``expected`` (exactly unless rtol/atol say otherwise; NaN equals NaN)."""
        got = out = self.out(r)
        want = np.asarray(expected)
        dtype = arrayq.as_dtype(dtype)
        assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
        assert got.dtype == dtype.dtype, f"dtype {got.dtype}, expected {dtype.name}"
        assert arrayq.dtype(r) == dtype
        if rtol == 0 and atol == 0:
            if dtype.name == "bfloat16":  # NumPy's testing does not see bfloat16 NaNs as NaN; float32 holds it exactly
                got, want = got.astype(np.float32), want.astype(np.float32)
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(
                got.astype(np.complex128 if got.dtype.kind == "c" else np.float64),
                want.astype(np.complex128 if np.iscomplexobj(want) else np.float64),
                rtol=rtol,
                atol=atol,
                equal_nan=True,
            )
        return out


@pytest.fixture(scope="module", params=["numpy", "primitives-only"])
def be(request) -> Be:
    """The backend under test; primitives-only is registered only while its tests run."""
    if request.param == "numpy":
        yield Be("numpy")
        return
    arrayq.register_backend("primitives-only", PrimitivesOnly, replace=True)
    try:
        yield Be("primitives-only")
    finally:
        arrayq.unregister_backend("primitives-only")


_MANTISSA = {"float16": 10, "bfloat16": 7, "float32": 23, "float64": 52, "complex64": 23, "complex128": 52}


def eps(dtype: Any) -> float:
    """The machine epsilon of a floating dtype (of its parts, for complex), from the format."""
    return 2.0 ** -_MANTISSA[arrayq.as_dtype(dtype).name]


@contextlib.contextmanager
def quiet():
    """NumPy warns about the NaNs, infinities and empty means some tests make on purpose."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def build(shape: tuple[int, ...], element: Any, dtype: Any) -> np.ndarray:
    """An array of ``shape`` whose element at index tuple ``i`` is ``element(i)``: the
    explicit loop most expectations are written as."""
    out = np.empty(shape, dtype=arrayq.as_dtype(dtype).dtype)
    for idx in itertools.product(*(range(n) for n in shape)):
        out[idx] = element(idx)
    return out
