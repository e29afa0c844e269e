"""The frontend op tests as a whole: the test-only primitives-only backend really runs the
reference defaults, capabilities() reports them, and every op of ``arrayq.__all__`` has a
test in one of the chapter files (tests/test_ops_*.py, tests/test_dtypes.py)."""

import importlib

import numpy as np
import pytest

import arrayq
from arrayq import _creation, _elementwise, _manipulation, _searching, _statistical
from arrayq.backend import COMPOSITES, DISTRIBUTED_OPS, NATIVE_OPS, PRIMITIVES, Backend
from tests._ops_support import NUMPY_NATIVE, PArray, PrimitivesOnly, be  # noqa: F401 (fixture)

CHAPTERS = (
    "test_ops_creation",
    "test_ops_elementwise",
    "test_ops_statistical",
    "test_ops_manipulation",
    "test_ops_searching",
    "test_ops_linalg",
    "test_linalg",
    "test_ops_fft",
    "test_ops_info",
    "test_dtypes",
)

#: Names of arrayq.__all__ that are not array ops; other test files cover them.
NOT_OPS = {
    # dtype objects and constants (test_dtypes checks them, but they are not called)
    "DType",
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "e",
    "inf",
    "nan",
    "pi",
    "newaxis",
    "linalg",
    "fft",
    # backends, dispatch, moving data: tests/test_registry.py, tests/test_dispatch.py
    "Backend",
    "BackendInfo",
    "backend_of",
    "capabilities",
    "current_backend",
    "default_backend",
    "eval",
    "get_backend",
    "list_backends",
    "register_backend",
    "set_default_backend",
    "to_backend",
    "to_numpy",
    "unregister_backend",
    # where creation functions create: tests/test_creation_placement.py
    "Device",
    "device",
    # compilation: tests/test_compile.py
    "compile",
    # quantization: tests/test_quant*.py
    "QuantizedWeight",
    "quantize",
    "dequantize",
    # errors
    "ArrayqError",
    "BackendMismatchError",
    "BackendUnavailableError",
    "CompileError",
    "LinAlgError",
    "QuantizationError",
    "UnknownBackendError",
    "UnsupportedDTypeError",
    "UnsupportedOperationError",
}


def test_every_frontend_op_has_a_test():
    ops = set(arrayq.__all__) - NOT_OPS
    # the chapter modules' own lists must be in arrayq.__all__ too
    for module in (_creation, _elementwise, _manipulation, _searching, _statistical):
        assert set(module.__all__) <= set(arrayq.__all__), module.__name__
    covered = set()
    for name in CHAPTERS:
        covered |= importlib.import_module(f"tests.{name}").COVERS
    # arrayq.linalg's functions too, but for the quantized ones (tests/test_quant*.py)
    not_linalg_ops = {"quantize", "dequantize", "quantized_matmul", "gather_qmm", "LinAlgError"}
    ops |= {f"linalg.{n}" for n in arrayq.linalg.__all__ if n not in not_linalg_ops and not n.endswith("Result")}
    assert ops - covered == set(), f"ops without a test: {sorted(ops - covered)}"
    fft = {f"fft.{name}" for name in arrayq.fft.__all__}
    assert fft <= covered, f"fft functions without a test: {sorted(fft - covered)}"
    assert covered - ops - fft == set()


def test_primitives_only_resets_exactly_the_numpy_overrides():
    # what the NumPy backend overrides today; if this changes, PrimitivesOnly follows it
    assert set(NUMPY_NATIVE) >= {
        "asarray",
        "eye",
        "linspace",
        "tril",
        "triu",
        "hypot",
        "logaddexp",
        "clip",
        "erf",
        "mean",
        "var",
        "std",
        "stack",
        "tile",
        "roll",
        "tensordot",
        "vecdot",
    }
    for name in (*COMPOSITES, *NATIVE_OPS):
        assert getattr(PrimitivesOnly, name) is getattr(Backend, name), name


def test_capabilities_report_the_defaults_and_the_native_overrides(be):
    caps = arrayq.capabilities(be.name)
    assert set(caps) == set(PRIMITIVES) | set(COMPOSITES) | set(NATIVE_OPS)
    assert all(caps[op] == "primitive" for op in PRIMITIVES)
    for op in (*COMPOSITES, *NATIVE_OPS):
        if op in DISTRIBUTED_OPS:  # NumPy (and backends built on it) have no engine: a declared gap
            assert caps[op] == f"gap: {be.backend.declared_gaps[op]}", op
        elif be.name == "numpy":
            assert caps[op] == ("native" if op in NUMPY_NATIVE else "fallback"), op
        else:
            assert caps[op] == "fallback", op


def test_primitives_only_arrays_dispatch_to_it_and_stay_there(be):
    if be.name == "numpy":
        pytest.skip("about the primitives-only backend")
    x = be.arr([1.0, 2.0])
    assert arrayq.backend_of(x) is be.backend
    assert arrayq.backend_of(np.array([1.0])) is arrayq.get_backend("numpy")
    # NumPy gives way: a NumPy array meeting a PArray is moved onto primitives-only
    be.check(arrayq.add(x, np.array([10.0, 20.0])), [11.0, 22.0], arrayq.float64)
    with be.creating():
        be.check(arrayq.zeros(2), [0.0, 0.0], arrayq.float64)


def test_a_parray_refuses_to_leak_into_numpy():
    with pytest.raises(TypeError, match="outside the Backend contract"):
        np.asarray(PArray(np.ones(2)))
    with pytest.raises(TypeError):
        np.add(PArray(np.ones(2)), 1)


AXIS_CALLS = {
    "sum": lambda x: arrayq.sum(x, axis=0),
    "max": lambda x: arrayq.max(x, axis=-1),
    "mean": lambda x: arrayq.mean(x, axis=0),
    "count_nonzero": lambda x: arrayq.count_nonzero(x, axis=0),
    "cumulative_sum": lambda x: arrayq.cumulative_sum(x, axis=0),
    "diff": lambda x: arrayq.diff(x, axis=0),
    "argmax": lambda x: arrayq.argmax(x, axis=0),
    "sort": lambda x: arrayq.sort(x, axis=0),
    "argsort": lambda x: arrayq.argsort(x, axis=0),
    "unstack": lambda x: arrayq.unstack(x),
    "flip": lambda x: arrayq.flip(x, axis=0),
    "roll": lambda x: arrayq.roll(x, 1, axis=0),
    "squeeze": lambda x: arrayq.squeeze(x, axis=0),
    "concat": lambda x: arrayq.concat([x, x], axis=0),
    "take": lambda x: arrayq.take(x, np.array([0]), axis=0),
    "take_along_axis": lambda x: arrayq.take_along_axis(x, np.array(0), axis=0),
    "moveaxis": lambda x: arrayq.moveaxis(x, 0, 0),
    "repeat": lambda x: arrayq.repeat(x, 2, axis=0),
    "vecdot": lambda x: arrayq.vecdot(x, x, axis=0),
}


@pytest.mark.parametrize("op", AXIS_CALLS)
def test_a_0d_array_has_no_axis(be, op):
    # array API: an axis must be in [-ndim, ndim); for a 0-d array nothing is. (Not a
    # silent answer, such as a (1,)-shaped cumulative sum of a scalar.)
    with pytest.raises(IndexError):
        AXIS_CALLS[op](be.arr(1.5))
