"""The MLX backend against the NumPy reference, op by op, through the arrayq frontend.

Every op runs twice on the same data: on NumPy arrays (the reference backend) and on MLX
arrays. Results must be ``mlx.core.array`` of the same shape; values agree

* exactly for integer and bool results;
* for float32 within ``rtol=2e-6, atol=1e-6`` elementwise (MLX's CPU kernels use their own
  vectorised approximations of exp, log, sin, ... which differ from NumPy's by a few ulp;
  float32's ulp is 1.2e-7 relative) and within ``rtol=2e-5`` for reductions and matrix
  products (summation order differs; the inputs are O(1), so the atol of 1e-5 is ~100 ulp
  of the sums' scale);
* for float64 (CPU only) within 1e-12 relative: both are IEEE float64 with a few ulp of
  algorithmic difference.

Dtypes agree exactly, except where the two backends' *default* dtypes are the answer
(NumPy's are int64/float64, MLX's int32/float32): an index or integer sum is int64 on
NumPy and int32 on MLX, by the array API's rules.
"""

from __future__ import annotations

import cmath
import math
import os
import subprocess
import sys

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")

import arrayq as aq  # noqa: E402
from arrayq import _dtypes as dt  # noqa: E402

MLX = aq.get_backend("mlx")
RNG = np.random.default_rng(1234)

F32 = dict(rtol=2e-6, atol=1e-6)
F32_SUM = dict(rtol=2e-5, atol=1e-5)
F64 = dict(rtol=1e-12, atol=1e-13)
# On NVIDIA (and M5) GPUs MLX runs float32 matmuls in TF32 (10-bit mantissa) unless
# MLX_ENABLE_TF32=0: ~1e-3 relative. CI runs on the CPU, where this is F32_SUM.
_TF32 = MLX.device_of(mx.ones(1)) == "gpu" and os.environ.get("MLX_ENABLE_TF32", "1") != "0"
F32_MATMUL = dict(rtol=5e-3, atol=5e-3) if _TF32 else F32_SUM


# ----------------------------------------------------------------------------- helpers


def to_mlx(obj):
    """NumPy arrays inside ``obj`` as MLX arrays (other values unchanged)."""
    if isinstance(obj, np.ndarray):
        return aq.to_backend(obj, "mlx")
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_mlx(o) for o in obj)
    if isinstance(obj, dict):
        return {k: to_mlx(v) for k, v in obj.items()}
    return obj


def _defaults_explain(ref: dt.DType, got: dt.DType) -> bool:
    return (ref, got) in ((dt.int64, dt.int32), (dt.float64, dt.float32), (dt.uint64, dt.uint32))


def assert_same(ref, got, tol=F32, exact_dtype=True):
    """``got`` (MLX) matches ``ref`` (NumPy): type, shape, dtype, values."""
    if isinstance(ref, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(ref)
        for r, g in zip(ref, got):
            assert_same(r, g, tol, exact_dtype)
        return
    assert isinstance(got, mx.array), f"MLX result is a {type(got).__name__}, not an mx.array"
    assert tuple(got.shape) == tuple(ref.shape), (tuple(got.shape), tuple(ref.shape))
    rdt, gdt = aq.dtype(ref), aq.dtype(got)
    if exact_dtype:
        assert rdt == gdt or _defaults_explain(rdt, gdt), f"dtype {gdt} on MLX, {rdt} on NumPy"
    g = aq.to_numpy(got)
    if rdt.kind in ("float", "complex") or gdt.kind in ("float", "complex"):
        np.testing.assert_allclose(
            g.astype(np.complex128 if gdt.kind == "complex" else np.float64),
            np.asarray(ref).astype(np.complex128 if rdt.kind == "complex" else np.float64),
            equal_nan=True,
            **tol,
        )
    else:
        np.testing.assert_array_equal(g, ref)


def check(fn, *args, tol=F32, exact_dtype=True):
    """Run ``fn`` on NumPy ``args`` and on their MLX copies; compare."""
    ref = fn(*args)
    got = fn(*to_mlx(args))
    assert_same(ref, got, tol, exact_dtype)
    return got


SPECIAL = [0.5, -0.5, 1.5, 2.5, -2.5, 0.0, -0.0, 3.0, -3.0]


def floats(shape, lo=-3.0, hi=3.0, dtype=np.float32, specials=True):
    n = math.prod(shape)
    data = RNG.uniform(lo, hi, n)
    if specials and n:
        picks = [v for v in SPECIAL if lo <= v <= hi]
        k = min(len(picks), n // 2)
        data[:k] = picks[:k]
        RNG.shuffle(data)
    return data.reshape(shape).astype(dtype)


def ints(shape, lo=-9, hi=10, dtype=np.int32):
    return RNG.integers(lo, hi, size=shape).astype(dtype)


SHAPES = [(), (0,), (5,), (3, 4), (2, 3, 4)]
PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (3,)), ((0, 4), (4,)), ((5,), ())]
shape_id = lambda s: "x".join(map(str, s)) or "0d"  # noqa: E731
pair_id = lambda p: f"{shape_id(p[0])}-{shape_id(p[1])}"  # noqa: E731


# ----------------------------------------------------------------------------- loading


def test_entry_point_loads_the_backend():
    from arrayq_mlx import MLXBackend

    assert isinstance(MLX, MLXBackend) and MLX.name == "mlx"
    row = {b.name: b for b in aq.list_backends()}["mlx"]
    assert row.available and row.source.startswith("entry point arrayq_mlx:MLXBackend")
    assert MLX.library_module == "mlx.core" and "arrayq[mlx]" in MLX.install_hint


def test_importing_the_package_does_not_import_mlx():
    code = (
        "import sys, arrayq, arrayq_mlx; assert not any(m == 'mlx' or m.startswith('mlx.') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('mlx'))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_capabilities_report_native_overrides_and_gaps():
    caps = aq.capabilities("mlx")
    for op in (
        "mean",
        "var",
        "std",
        "erf",
        "tensordot",
        "clip",
        "eye",
        "linspace",
        "tril",
        "stack",
        "tile",
        "roll",
        "expand_dims",
        "squeeze",
        "moveaxis",
        "logaddexp",
        "square",
        "quantize",
        "dequantize",
        "quantized_matmul",
        "gather_qmm",
    ):
        assert caps[op] == "native", op
    for op in ("nonzero", "unique_all", "unique_values"):
        assert caps[op].startswith("gap:"), op


# ----------------------------------------------------------------------------- elementwise

UNARY_DOMAIN = {
    "acos": (-0.99, 0.99),
    "asin": (-0.99, 0.99),
    "atanh": (-0.99, 0.99),
    "acosh": (1.0, 5.0),
    "log": (0.1, 5.0),
    "log2": (0.1, 5.0),
    "log10": (0.1, 5.0),
    "sqrt": (0.0, 5.0),
    "log1p": (-0.9, 5.0),
    "tan": (-1.4, 1.4),
}
FLOAT_UNARY = [
    op for op in (*aq.backend.UNARY_OPS, "positive", "square", "erf") if op not in ("bitwise_invert", "logical_not")
]
INT_UNARY = [
    "abs",
    "bitwise_invert",
    "ceil",
    "floor",
    "negative",
    "positive",
    "round",
    "sign",
    "square",
    "trunc",
    "isfinite",
    "isinf",
    "isnan",
]


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("op", FLOAT_UNARY)
def test_unary_float32(op, shape):
    x = floats(shape, *UNARY_DOMAIN.get(op, (-3.0, 3.0)))
    check(getattr(aq, op), x, tol=dict(rtol=1e-5, atol=1e-6) if op == "erf" else F32)


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("op", INT_UNARY)
def test_unary_int32(op, shape):
    check(getattr(aq, op), ints(shape))


def test_unary_specials_nan_inf_signed_zero():
    x = np.array([np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 2.5, -2.5, 1e-40], np.float32)
    for op in (
        "abs",
        "ceil",
        "floor",
        "trunc",
        "round",
        "sign",
        "signbit",
        "isnan",
        "isinf",
        "isfinite",
        "negative",
        "exp",
        "tanh",
        "square",
    ):
        got = check(getattr(aq, op), x)
        if op in ("negative", "abs"):  # signed zeros are visible here (a NaN's sign is unspecified)
            keep = ~np.isnan(x)
            np.testing.assert_array_equal(np.signbit(aq.to_numpy(got))[keep], np.signbit(getattr(aq, op)(x))[keep])
    assert aq.to_numpy(aq.signbit(to_mlx(x))).tolist() == [False, True, False, True, False, True, False, True, False]


def test_round_is_half_to_even():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 4.5], np.float32)
    assert aq.to_numpy(aq.round(to_mlx(x))).tolist() == [0, 2, 2, 0, -2, -2, 4, 4]


FLOAT_BINARY = [
    op for op in (*aq.backend.BINARY_OPS, "hypot", "logaddexp") if not op.startswith(("bitwise", "logical"))
]
INT_BINARY = [
    "add",
    "subtract",
    "multiply",
    "floor_divide",
    "remainder",
    "pow",
    "maximum",
    "minimum",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "bitwise_left_shift",
    "bitwise_right_shift",
]


def _binary_operands(op, s1, s2, kind):
    if kind == "float":
        x1 = floats(s1, 0.1, 3.0) if op == "pow" else floats(s1)
        x2 = (
            floats(s2, 0.5, 3.0) * np.where(RNG.random(s2) < 0.5, -1, 1).astype(np.float32)
            if op in ("divide", "floor_divide", "remainder")
            else floats(s2)
        )
        return x1, x2
    if op == "pow":
        return ints(s1, -3, 4), ints(s2, 0, 5)
    if op in ("bitwise_left_shift", "bitwise_right_shift"):
        return ints(s1, -1000, 1000), ints(s2, 0, 40)  # past the width: 0 (or the sign), as NumPy
    x2 = (
        ints(s2, 1, 6) * np.where(RNG.random(s2) < 0.5, -1, 1).astype(np.int32)
        if op in ("floor_divide", "remainder")
        else ints(s2)
    )
    return ints(s1, -50, 50), x2


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
@pytest.mark.parametrize("op", FLOAT_BINARY)
def test_binary_float32(op, pair):
    check(getattr(aq, op), *_binary_operands(op, *pair, "float"))


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
@pytest.mark.parametrize("op", INT_BINARY)
def test_binary_int32(op, pair):
    check(getattr(aq, op), *_binary_operands(op, *pair, "int"))


@pytest.mark.parametrize(
    "op", ["logical_and", "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor", "equal", "not_equal"]
)
def test_binary_bool(op):
    check(getattr(aq, op), RNG.random((3, 4)) < 0.5, RNG.random((4,)) < 0.5)
    check(aq.logical_not, RNG.random((3, 4)) < 0.5)
    check(aq.bitwise_invert, RNG.random((3, 4)) < 0.5)


@pytest.mark.parametrize(
    "op",
    [
        "add",
        "subtract",
        "multiply",
        "divide",
        "maximum",
        "pow",
        "less",
        "copysign",
        "remainder",
        "floor_divide",
        "atan2",
    ],
)
def test_python_scalars_are_weak(op):
    x = floats((3, 4), 0.1, 3.0)
    for scalar in (2.0, -1.5):
        got = check(lambda a, scalar=scalar: getattr(aq, op)(a, scalar), x)
        assert got.dtype in (mx.float32, mx.bool_)
    half = x.astype(np.float16)
    assert to_mlx(half).dtype == mx.float16
    assert getattr(aq, op)(to_mlx(half), 2.0).dtype in (mx.float16, mx.bool_)  # the array's dtype wins
    if op not in ("divide", "copysign", "atan2"):
        got = check(lambda a: getattr(aq, op)(a, 3), ints((3, 4), 1, 9))
        assert got.dtype in (mx.int32, mx.bool_)


def test_remainder_and_floor_divide_follow_the_divisors_sign():
    a = np.array([-7, 7, -7, 7, 0], np.int32)
    b = np.array([2, 2, -2, -2, 3], np.int32)
    check(aq.remainder, a, b)
    check(aq.floor_divide, a, b)
    af, bf = a.astype(np.float32), b.astype(np.float32)
    af[-1] = -0.0
    got = check(aq.remainder, af, bf)
    assert not np.signbit(aq.to_numpy(got)[-1])  # -0.0 % 3 is +0.0 (array API, NumPy)
    check(aq.floor_divide, af, bf)


def test_complex64():
    z = (floats((3, 4)) + 1j * floats((3, 4))).astype(np.complex64)
    for op in ("conj", "real", "imag", "abs", "exp", "negative", "sqrt"):
        check(getattr(aq, op), z, tol=dict(rtol=1e-5, atol=1e-6))
    check(aq.multiply, z, z)
    check(aq.add, z, z)


def test_clip_where_and_friends():
    x = floats((3, 4))
    check(lambda a: aq.clip(a, -1.0, 1.0), x)
    check(lambda a: aq.clip(a, min=0.5), x)
    check(lambda a: aq.clip(a, max=0.5), x)
    check(lambda a: aq.clip(a), x)
    check(lambda a, lo: aq.clip(a, lo, 2.0), x, floats((4,), -2, 0))
    check(lambda a: aq.clip(a, 0, 5), ints((3, 4)))
    check(aq.where, RNG.random((3, 1)) < 0.5, x, floats((4,)))
    check(lambda c, a: aq.where(c, a, 0.0), RNG.random((3, 4)) < 0.5, x)


# ----------------------------------------------------------------------------- reductions

RED_SHAPES = [
    ((), None),
    ((5,), None),
    ((5,), 0),
    ((3, 4), None),
    ((3, 4), 0),
    ((3, 4), -1),
    ((2, 3, 4), (0, 2)),
    ((2, 3, 4), ()),
    ((0, 4), 0),
    ((0, 4), None),
]
red_id = lambda c: f"{shape_id(c[0])}-ax{c[1]}"  # noqa: E731


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns about empty means and variances
@pytest.mark.parametrize("keepdims", [False, True], ids=["", "keep"])
@pytest.mark.parametrize("case", RED_SHAPES, ids=red_id)
@pytest.mark.parametrize("op", ["sum", "prod", "max", "min", "mean", "var", "std", "all", "any", "count_nonzero"])
def test_reductions_float32(op, case, keepdims):
    shape, axis = case
    empty = 0 in tuple(shape[a] for a in ((axis,) if isinstance(axis, int) else axis or range(len(shape))))
    if empty and op in ("max", "min"):
        pytest.skip("max/min of an empty axis is a ValueError in the frontend")
    x = floats(shape, 0.5, 1.5) if op == "prod" else floats(shape)
    if op in ("all", "any"):
        x = np.where(RNG.random(shape) < 0.3, 0, x).astype(np.float32)
    kwargs = {"axis": axis, "keepdims": keepdims}
    check(lambda a: getattr(aq, op)(a, **kwargs), x, tol=F32_SUM)
    if op in ("var", "std") and not empty:
        check(lambda a: getattr(aq, op)(a, correction=1, **kwargs), x, tol=F32_SUM)


@pytest.mark.parametrize("case", RED_SHAPES, ids=red_id)
@pytest.mark.parametrize("op", ["sum", "prod", "max", "min", "all", "any", "count_nonzero"])
def test_reductions_int32(op, case):
    shape, axis = case
    empty = 0 in tuple(shape[a] for a in ((axis,) if isinstance(axis, int) else axis or range(len(shape))))
    if empty and op in ("max", "min"):
        pytest.skip("max/min of an empty axis is a ValueError in the frontend")
    x = ints(shape, -3, 4)
    check(lambda a: getattr(aq, op)(a, axis=axis), x)


def test_sum_and_prod_dtypes():
    small = ints((3, 4), -3, 4).astype(np.int8)
    got = check(aq.sum, small)
    assert got.dtype == mx.int32  # widened to the default int, as the array API says
    assert aq.sum(to_mlx(small.astype(np.uint8))).dtype == mx.uint32
    assert aq.sum(to_mlx(RNG.random(5) < 0.5)).dtype == mx.int32
    check(lambda a: aq.sum(a, dtype=aq.float32), small)
    check(lambda a: aq.prod(a, dtype=aq.int16, axis=0), small)
    assert aq.sum(to_mlx(floats((4,)).astype(np.float16))).dtype == mx.float16


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("kind", ["float32", "int32"])
def test_argreduce_first_occurrence(op, kind):
    x = ints((4, 6), 0, 3)  # many ties
    x = x.astype(np.float32) if kind == "float32" else x
    for axis in (None, 0, 1, -1):
        for keepdims in (False, True):
            check(lambda a, axis=axis, keepdims=keepdims: getattr(aq, op)(a, axis=axis, keepdims=keepdims), x)
    check(getattr(aq, op), np.array(3.0, np.float32))
    big = np.zeros(10_000, np.float32)
    big[[17, 4000, 9999]] = 1.0 if op == "argmax" else -1.0
    assert int(aq.to_numpy(getattr(aq, op)(to_mlx(big)))) == 17
    check(aq.argmax, np.array([1.0, np.nan, 3.0, np.nan], np.float32))  # first NaN, as NumPy


@pytest.mark.parametrize("include_initial", [False, True])
def test_cumulative_sum(include_initial):
    for x, axis in (
        (floats((5,)), None),
        (floats((3, 4)), 0),
        (floats((2, 3, 4)), -1),
        (floats((0,)), None),
        (ints((3, 4)), 1),
        (ints((3, 4)).astype(np.int8), 0),
    ):
        check(
            lambda a, axis=axis, include_initial=include_initial: aq.cumulative_sum(
                a, axis=axis, include_initial=include_initial
            ),
            x,
            tol=F32_SUM,
        )
    check(lambda a: aq.cumulative_sum(a, axis=0, dtype=aq.float32), ints((3, 2)))


# ----------------------------------------------------------------------------- creation


def _on_both(fn):
    with aq.default_backend("numpy"):
        ref = fn()
    with aq.default_backend("mlx"):
        got = fn()
    return ref, got


CREATION = {
    "zeros": lambda: aq.zeros((2, 3)),
    "ones_int": lambda: aq.ones(4, dtype=aq.int32),
    "empty": lambda: aq.zeros((0, 3)),
    "full_f": lambda: aq.full((2, 2), 1.5, dtype=aq.float32),
    "full_i": lambda: aq.full((3,), 7, dtype=aq.int32),
    "full_0d": lambda: aq.full((), True),
    "arange_i": lambda: aq.arange(10, dtype=aq.int32),
    "arange_f": lambda: aq.arange(0.0, 1.0, 0.125, dtype=aq.float32),
    "arange_neg": lambda: aq.arange(5, -5, -2, dtype=aq.int32),
    "arange_empty": lambda: aq.arange(5, 0, dtype=aq.int32),
    "eye": lambda: aq.eye(3, dtype=aq.float32),
    "eye_k": lambda: aq.eye(3, 5, k=1, dtype=aq.float32),
    "eye_kneg_int": lambda: aq.eye(4, 2, k=-1, dtype=aq.int32),
    "linspace": lambda: aq.linspace(0.0, 1.0, 7, dtype=aq.float32),
    "linspace_open": lambda: aq.linspace(-2.0, 3.0, 5, endpoint=False, dtype=aq.float32),
    "linspace_0": lambda: aq.linspace(0.0, 1.0, 0, dtype=aq.float32),
    "linspace_1": lambda: aq.linspace(2.0, 3.0, 1, dtype=aq.float32),
    "asarray_list": lambda: aq.asarray([[1.0, 2.0], [3.0, 4.0]], dtype=aq.float32),
    "asarray_int": lambda: aq.asarray([1, 2, 3], dtype=aq.int32),
    "asarray_bool": lambda: aq.asarray([True, False]),
}


@pytest.mark.parametrize("name", list(CREATION))
def test_creation(name):
    ref, got = _on_both(CREATION[name])
    assert_same(ref, got)


def test_creation_defaults_are_float32_and_int32():
    with aq.default_backend("mlx"):
        assert aq.zeros(3).dtype == mx.float32
        assert aq.full(2, 3).dtype == mx.int32
        assert aq.full(2, 3.0).dtype == mx.float32
        assert aq.arange(4).dtype == mx.int32
        assert aq.arange(0, 1, 0.5).dtype == mx.float32
        assert aq.asarray([1.5]).dtype == mx.float32 and aq.asarray([1]).dtype == mx.int32
        assert aq.eye(2).dtype == mx.float32


def test_like_creation_and_triangles():
    x = floats((2, 3, 4))
    for fn in (
        aq.zeros_like,
        aq.ones_like,
        aq.empty_like,
        lambda a: aq.full_like(a, 2.5),
        lambda a: aq.ones_like(a, dtype=aq.int32),
    ):
        check(fn, x)
    for k in (-1, 0, 2):
        check(lambda a, k=k: aq.tril(a, k=k), x)
        check(lambda a, k=k: aq.triu(a, k=k), x)
    check(lambda a, b: aq.meshgrid(a, b), floats((3,)), floats((4,)))
    check(lambda a, b: aq.meshgrid(a, b, indexing="ij"), floats((3,)), floats((4,)))


def test_asarray_keeps_mlx_arrays_and_copy_false_refuses_to_copy():
    x = mx.arange(3)
    assert aq.asarray(x) is x
    assert aq.asarray(x, dtype=aq.float32).dtype == mx.float32
    with aq.default_backend("mlx"):
        with pytest.raises(ValueError, match="copy"):
            aq.asarray([1, 2], copy=False)


# ----------------------------------------------------------------------------- manipulation

MANIP = {
    "reshape": (lambda a: aq.reshape(a, (4, 6)), (2, 3, 4)),
    "reshape_-1": (lambda a: aq.reshape(a, (-1,)), (2, 3, 4)),
    "reshape_0d": (lambda a: aq.reshape(a, (1, 1)), ()),
    "reshape_empty": (lambda a: aq.reshape(a, (4, 0)), (0, 4)),
    "permute": (lambda a: aq.permute_dims(a, (2, 0, 1)), (2, 3, 4)),
    "matrix_transpose": (aq.matrix_transpose, (2, 3, 4)),
    "broadcast_to": (lambda a: aq.broadcast_to(a, (2, 3, 4)), (3, 1)),
    "broadcast_0d": (lambda a: aq.broadcast_to(a, (2, 2)), ()),
    "flip_all": (aq.flip, (2, 3, 4)),
    "flip_axis": (lambda a: aq.flip(a, axis=(0, 2)), (2, 3, 4)),
    "flip_empty": (lambda a: aq.flip(a, axis=0), (0, 3)),
    "expand_dims": (lambda a: aq.expand_dims(a, axis=1), (2, 3)),
    "expand_dims_end": (lambda a: aq.expand_dims(a, axis=-1), (2, 3)),
    "expand_0d": (lambda a: aq.expand_dims(a, axis=0), ()),
    "squeeze": (lambda a: aq.squeeze(a, axis=(0, 2)), (1, 3, 1)),
    "moveaxis": (lambda a: aq.moveaxis(a, 0, -1), (2, 3, 4)),
    "moveaxis2": (lambda a: aq.moveaxis(a, (0, 1), (2, 0)), (2, 3, 4)),
    "tile": (lambda a: aq.tile(a, (2, 1, 3)), (3, 4)),
    "tile_0": (lambda a: aq.tile(a, (0, 2)), (3,)),
    "repeat": (lambda a: aq.repeat(a, 2, axis=1), (3, 4)),
    "repeat_flat": (lambda a: aq.repeat(a, 3), (2, 2)),
    "roll": (lambda a: aq.roll(a, 2, axis=1), (3, 4)),
    "roll_flat": (lambda a: aq.roll(a, -3), (3, 4)),
    "roll_multi": (lambda a: aq.roll(a, (1, -2), axis=(0, 1)), (3, 4)),
    "roll_empty": (lambda a: aq.roll(a, 1, axis=0), (0, 4)),
    "unstack": (lambda a: aq.unstack(a, axis=1), (2, 3, 4)),
    "diff": (lambda a: aq.diff(a, axis=0), (3, 4)),
    "diff2": (lambda a: aq.diff(a, n=2), (3, 5)),
    "concat_none": (lambda a: aq.concat([a, a], axis=None), (2, 3)),
    "concat_0d_none": (lambda a: aq.concat([a, a], axis=None), ()),
    "concat1": (lambda a: aq.concat([a, a[:, :1]], axis=1), (2, 3)),
    "concat_empty": (lambda a: aq.concat([a, a]), (0, 3)),
    "stack": (lambda a: aq.stack([a, a, a], axis=1), (2, 3)),
    "stack_0d": (lambda a: aq.stack([a, a]), ()),
    "broadcast_arrays": (lambda a: aq.broadcast_arrays(a, a[:1]), (3, 4)),
    "take": (lambda a: aq.take(a, np.array([2, 0, -1, 2]), axis=1), (3, 4)),
    "take_1d": (lambda a: aq.take(a, np.array([[0, 1], [-2, 4]])), (5,)),
    "take_empty": (lambda a: aq.take(a, np.zeros(0, np.int32), axis=0), (3, 4)),
    "getitem": (lambda a: a[1:, ::2], (3, 4)),
}


@pytest.mark.parametrize("kind", ["float32", "int32"])
@pytest.mark.parametrize("name", list(MANIP))
def test_manipulation(name, kind):
    fn, shape = MANIP[name]
    x = floats(shape) if kind == "float32" else ints(shape)
    ref = fn(x)
    got = fn(to_mlx(x))
    assert_same(ref, got, F32_SUM)


def test_take_along_axis_and_indices_from_numpy():
    x = floats((3, 4))
    idx = RNG.integers(-4, 4, (3, 2)).astype(np.int32)
    check(lambda a, i: aq.take_along_axis(a, i, axis=1), x, idx)
    check(lambda a, i: aq.take_along_axis(a, i, axis=0), x, RNG.integers(0, 3, (2, 1)).astype(np.int32))
    got = aq.take(to_mlx(x), np.array([1, 0]), axis=0)  # NumPy indices give way to MLX
    assert isinstance(got, mx.array)


def test_repeat_with_array_counts():
    x = ints((3, 2))
    counts = np.array([1, 0, 2], np.int32)
    check(lambda a, c: aq.repeat(a, c, axis=0), x, counts)


# ----------------------------------------------------------------------------- searching, sorting


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("kind", ["float32", "int32", "bool"])
def test_sort_and_argsort_stable(kind, descending):
    x = ints((4, 50), 0, 4)  # many ties: stability is visible in argsort
    x = {"float32": x.astype(np.float32), "int32": x, "bool": x > 1}[kind]
    for axis in (0, -1):
        check(lambda a, axis=axis: aq.sort(a, axis=axis, descending=descending), x)
        check(lambda a, axis=axis: aq.argsort(a, axis=axis, descending=descending, stable=True), x)
    check(lambda a: aq.argsort(a, descending=descending), x[:0])


def test_sort_puts_nan_last_ascending():
    x = np.array([3.0, np.nan, -1.0, 2.0, np.nan, -np.inf], np.float32)
    check(aq.sort, x)
    check(aq.argsort, x)
    check(lambda a: aq.sort(a, descending=True), x)


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted(side):
    x1 = np.sort(ints((20,), 0, 8)).astype(np.float32)
    x2 = np.array([[-1, 0, 3.5], [3, 7, 9]], np.float32)
    check(lambda a, b: aq.searchsorted(a, b, side=side), x1, x2)
    perm = RNG.permutation(20).astype(np.int32)
    unsorted = x1[np.argsort(perm)]
    sorter = np.argsort(unsorted, kind="stable").astype(np.int32)
    check(lambda a, b, s: aq.searchsorted(a, b, side=side, sorter=s), unsorted, x2, sorter)
    check(lambda a, b: aq.searchsorted(a, b, side=side), x1.astype(np.int32), np.array([0, 4, 8], np.int32))


# ----------------------------------------------------------------------------- linear algebra

MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((0, 4), (4, 3)),
    ((3, 0), (0, 2)),
]


@pytest.mark.parametrize("kind", ["float32", "int32"])
@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=pair_id)
def test_matmul(shapes, kind):
    make = floats if kind == "float32" else ints
    check(aq.matmul, make(shapes[0]), make(shapes[1]), tol=F32_MATMUL)


@pytest.mark.parametrize("kind", ["float32", "int32"])
def test_tensordot_and_vecdot(kind):
    make = floats if kind == "float32" else ints
    a, b = make((2, 3, 4)), make((3, 4, 5))
    check(lambda x, y: aq.tensordot(x, y), a, b, tol=F32_MATMUL)
    check(lambda x, y: aq.tensordot(x, y, axes=1), make((2, 3)), make((3, 4)), tol=F32_MATMUL)
    check(lambda x, y: aq.tensordot(x, y, axes=([1, 0], [0, 1])), make((3, 2, 4)), make((2, 3)), tol=F32_MATMUL)
    check(lambda x, y: aq.tensordot(x, y, axes=0), make((2,)), make((3,)), tol=F32_MATMUL)
    check(lambda x, y: aq.vecdot(x, y), make((3, 4)), make((4,)), tol=F32_MATMUL)
    check(lambda x, y: aq.vecdot(x, y, axis=0), make((3, 4)), make((3, 1)), tol=F32_MATMUL)
    check(lambda x, y: aq.linalg.matmul(x, y), make((2, 3)), make((3, 2)), tol=F32_MATMUL)


SMALL_INT_PAIRS = [("int8", "int8"), ("uint8", "uint8"), ("int16", "int16"), ("uint16", "uint16"), ("uint8", "int8")]


@pytest.mark.parametrize("dtypes", SMALL_INT_PAIRS + [("bool", "bool")], ids=str)
@pytest.mark.parametrize("shapes", [((3, 4), (4,)), ((0,), (0,)), ((2, 0), (0,))], ids=pair_id)
def test_vecdot_keeps_small_integer_dtypes(dtypes, shapes):
    # mx.vecdot sums these in int32/uint32; the standard (and NumPy) keep the promoted
    # dtype, wrapping as a sum in it does (values up to 100: 8-bit sums overflow)
    lo = 0 if "uint" in dtypes[0] + dtypes[1] else -100
    a, b = (ints(s, lo, 100).astype(d) for s, d in zip(shapes, dtypes))
    check(aq.vecdot, a, b)
    check(aq.linalg.vecdot, a, b)


# ----------------------------------------------------------------------------- gaps and dtypes


@pytest.mark.parametrize("op", ["nonzero", "unique_all", "unique_counts", "unique_inverse", "unique_values"])
def test_data_dependent_shapes_are_a_declared_gap(op):
    assert op in MLX.declared_gaps
    with pytest.raises(aq.UnsupportedOperationError, match="depends on the data"):
        getattr(aq, op)(mx.array([1, 0, 2, 2]))


def test_complex128_is_unsupported_naming_dtype_and_backend():
    assert "complex128" in MLX.declared_gaps
    with pytest.raises(aq.UnsupportedDTypeError, match=r"'mlx'.*complex128"):
        aq.to_backend(np.ones(2, np.complex128), "mlx")
    with pytest.raises(aq.UnsupportedDTypeError, match="complex128"):
        aq.astype(mx.ones(2), aq.complex128)
    with aq.default_backend("mlx"):
        with pytest.raises(aq.UnsupportedDTypeError, match="complex128"):
            aq.zeros(2, dtype=aq.complex128)


def test_float64_works_on_the_cpu():
    assert "float64" in MLX.declared_gaps
    with mx.stream(mx.cpu):
        x = floats((3, 4), dtype=np.float64)
        for op in ("exp", "sin", "sqrt", "erf", "log1p", "tanh"):
            check(getattr(aq, op), np.abs(x) + 0.1, tol=dict(rtol=1e-12, atol=1e-14))
        check(aq.add, x, x, tol=F64)
        check(aq.matmul, x, x.T, tol=F64)
        check(aq.sum, x, tol=F64)
        check(lambda a: aq.astype(a, aq.float32), x)
        with aq.default_backend("mlx", device="cpu"):
            assert aq.zeros(2, dtype=aq.float64).dtype == mx.float64


@pytest.mark.skipif(not MLX._devices.has_gpu, reason="no MLX GPU here")
def test_float64_is_refused_on_the_gpu():
    with pytest.raises(aq.UnsupportedDTypeError, match="float64 only on the CPU"):
        MLX.full((2,), 1.0, dt.float64, "gpu")
    with mx.stream(mx.gpu), pytest.raises(aq.UnsupportedDTypeError, match="float64"):
        aq.to_backend(np.ones(2), "mlx")


def test_every_dtype_but_complex128_maps():
    for d in dt.ALL_DTYPES:
        if d.name == "complex128":
            continue
        with mx.stream(mx.cpu):
            native = MLX.native_dtype(d)
        assert aq.as_dtype(native) == d


def test_bfloat16_round_trip_is_bit_exact():
    import ml_dtypes

    bits = np.arange(0, 1 << 16, dtype=np.uint32).astype(np.uint16)  # every bfloat16, NaN payloads too
    a = bits.view(ml_dtypes.bfloat16).reshape(256, 256)
    x = aq.to_backend(a, "mlx")
    assert x.dtype == mx.bfloat16
    back = aq.to_numpy(x)
    assert back.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(back.view(np.uint16), a.view(np.uint16))
    # and values, not just bits, are what MLX computes with
    small = np.array([1.5, -2.0, 0.0078125], ml_dtypes.bfloat16)
    assert aq.to_numpy(aq.astype(aq.to_backend(small, "mlx"), aq.float32)).tolist() == [1.5, -2.0, 0.0078125]
    strided = a[::3, ::5]  # not contiguous
    np.testing.assert_array_equal(aq.to_numpy(aq.to_backend(strided, "mlx")).view(np.uint16), strided.view(np.uint16))


@pytest.mark.parametrize(
    "dtype",
    ["bool", "int8", "int16", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "complex64"],
)
def test_round_trip_every_dtype(dtype):
    a = (RNG.integers(0, 100, (3, 5)) - (0 if dtype.startswith(("u", "b")) else 50)).astype(dtype)
    x = aq.to_backend(a, "mlx")
    assert aq.dtype(x) == aq.as_dtype(dtype)
    back = aq.to_numpy(x)
    assert back.dtype == a.dtype
    np.testing.assert_array_equal(back, a)


def test_to_numpy_returns_a_writable_copy():
    x = mx.arange(4)
    a = aq.to_numpy(x)
    a[0] = 99
    assert aq.to_numpy(x)[0] == 0  # MLX arrays are immutable


# ----------------------------------------------------------------------------- laziness, devices, mixing


def test_ops_are_lazy_until_eval_or_to_numpy():
    x = mx.ones((1024, 1024))  # 4 MiB
    mx.eval(x)
    before = mx.get_active_memory()
    y = aq.exp(aq.multiply(x, 2.0))
    z = aq.sum(aq.exp(x))
    assert isinstance(y, mx.array) and isinstance(z, mx.array)
    assert mx.get_active_memory() - before < (1 << 20), "an op evaluated eagerly"
    aq.eval(y, {"z": z})
    assert mx.get_active_memory() - before >= 4 << 20
    w = aq.add(x, 1.0)
    assert float(aq.to_numpy(w)[0, 0]) == 2.0  # to_numpy evaluates


def test_devices():
    devices = MLX.devices()
    assert "cpu" in devices and devices[0] == MLX.device_of(mx.ones(1))
    assert ("gpu" in devices) == MLX._devices.has_gpu
    MLX.check_device("cpu")
    MLX.check_device(mx.cpu)
    with pytest.raises(ValueError, match="no device"):
        MLX.check_device("tpu")
    with aq.default_backend("mlx", device="cpu"):
        x = aq.ones(3)
    assert isinstance(x, mx.array)
    with mx.stream(mx.cpu):
        assert MLX.device_of(x) == "cpu"
    if not MLX._devices.has_gpu:
        with pytest.raises(ValueError, match="no device 'gpu'"):
            with aq.default_backend("mlx", device="gpu"):
                pass


def test_numpy_arrays_give_way_to_mlx():
    a = floats((3, 4))
    b = aq.to_backend(floats((4,)), "mlx")
    out = aq.add(a, b)
    assert isinstance(out, mx.array)
    np.testing.assert_allclose(aq.to_numpy(out), a + aq.to_numpy(b), **F32)
    assert isinstance(aq.where(RNG.random((3, 4)) < 0.5, a, b), mx.array)
    assert isinstance(aq.matmul(a, aq.to_backend(floats((4, 2)), "mlx")), mx.array)


def test_to_backend_round_trips_a_dict_of_arrays():
    tree = {"w": floats((3, 4)), "b": ints((4,)), "nested": [floats(()), (ints((2, 2)),)], "n": 3}
    on_mlx = aq.to_backend(tree, "mlx")
    assert isinstance(on_mlx["w"], mx.array) and isinstance(on_mlx["nested"][1][0], mx.array)
    assert on_mlx["n"] == 3
    back = aq.to_backend(on_mlx, "numpy")
    np.testing.assert_array_equal(back["w"], tree["w"])
    np.testing.assert_array_equal(back["b"], tree["b"])
    np.testing.assert_array_equal(back["nested"][1][0], tree["nested"][1][0])
    assert back["w"].dtype == np.float32 and back["b"].dtype == np.int32


# ----------------------------------------------------------------------------- quantized

QUANT_FORMATS = [
    ("affine", 32, 2),
    ("affine", 64, 4),
    ("affine", 128, 8),
    ("affine", 64, 3),
    ("affine", 32, 6),
    ("mxfp4", 32, 4),
    ("mxfp8", 32, 8),
    ("nvfp4", 16, 4),
]
fmt_id = lambda f: f"{f[0]}-g{f[1]}-b{f[2]}"  # noqa: E731


@pytest.mark.parametrize("fmt", QUANT_FORMATS, ids=fmt_id)
def test_quantize_equals_mx_quantize_exactly(fmt):
    mode, gs, bits = fmt
    w = mx.array(floats((2, 16, 256), specials=False))
    qw = aq.quantize(w, group_size=gs, bits=bits, mode=mode)
    ref = mx.quantize(w, gs, bits, mode)
    assert isinstance(qw, aq.QuantizedWeight) and isinstance(qw.packed, mx.array)
    assert mx.array_equal(qw.packed, ref[0]).item() and mx.array_equal(qw.scales, ref[1]).item()
    assert (qw.biases is None) == (len(ref) == 2)
    if qw.biases is not None:
        assert mx.array_equal(qw.biases, ref[2]).item()
    deq = aq.dequantize(qw)
    assert mx.array_equal(
        deq, mx.dequantize(*ref[:2], ref[2] if len(ref) > 2 else None, gs, bits, mode, dtype=mx.float32)
    ).item()
    assert aq.dequantize(qw, dtype=aq.bfloat16).dtype == mx.bfloat16


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("fmt", QUANT_FORMATS, ids=fmt_id)
def test_dequantize_aimed_at_the_gpu_is_mx_dequantize_exactly(fmt, dtype, monkeypatch):
    """With the GPU as the target the backend hands dequantize to the frontend's format code
    (MLX's CUDA kernel rounds differently, and the CPU stream would stall a compiled decode
    step); here the same code runs on MLX's CPU and must equal ``mx.dequantize`` bit for bit."""
    mode, gs, bits = fmt
    w = mx.array(floats((3, 16, 256), specials=False)).astype(getattr(mx, dtype))
    ref = mx.quantize(w, gs, bits, mode)
    expected = mx.dequantize(*ref[:2], ref[2] if len(ref) > 2 else None, gs, bits, mode, dtype=w.dtype)
    monkeypatch.setattr(MLX._devices, "targets_gpu", lambda device=None: True)
    qw = aq.QuantizedWeight(ref[0], ref[1], ref[2] if len(ref) > 2 else None, gs, bits, mode, getattr(aq, dtype))
    assert MLX.dequantize(qw, getattr(aq, dtype)) is NotImplemented
    got = aq.dequantize(qw)
    assert got.dtype == w.dtype and mx.array_equal(got, expected, equal_nan=True).item()


def _reference_qmm(x, qw, transpose=True):
    """``x @ dequantize(w).T`` in float64 NumPy (dequantized weights are exact in float32)."""
    w = aq.to_numpy(aq.dequantize(qw, dtype=aq.float32)).astype(np.float64)
    xs = aq.to_numpy(aq.astype(x, aq.float32)).astype(np.float64) if isinstance(x, mx.array) else x.astype(np.float64)
    return np.matmul(xs, np.swapaxes(w, -1, -2) if transpose else w)


def _assert_qmm_close(got, ref64, x_dtype, k):
    assert isinstance(got, mx.array) and got.dtype == MLX.native_dtype(x_dtype)
    g = aq.to_numpy(aq.astype(got, aq.float32)).astype(np.float64)
    assert g.shape == ref64.shape
    scale = np.abs(ref64).max() + 1e-30
    # float32 accumulation over K terms: ~sqrt(K) ulp of the result's scale; bfloat16 and
    # float16 outputs are additionally rounded once to 8 / 11 significant bits.
    rel = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 8e-3}[x_dtype.name]
    np.testing.assert_allclose(g, ref64, rtol=rel, atol=rel * scale)


def _numpy_path(fn):
    """The NumPy backend's answer, or None where its quantized path is not there yet."""
    try:
        return fn()
    except (ImportError, NotImplementedError, aq.UnsupportedOperationError):
        return None


@pytest.mark.parametrize("rows", [1, 5, 130], ids=lambda m: f"M{m}")  # both CPU strategies (M < 128, M >= 128)
@pytest.mark.parametrize("fmt", [("affine", 64, 4), ("affine", 32, 8), ("mxfp4", 32, 4), ("nvfp4", 16, 4)], ids=fmt_id)
@pytest.mark.parametrize("x_dtype", [aq.float32, aq.bfloat16, aq.float16], ids=lambda d: d.name)
def test_quantized_matmul_matches_reference(x_dtype, fmt, rows):
    mode, gs, bits = fmt
    k, n = 256, 48
    w_np = floats((n, k), specials=False) * 0.5
    w = aq.to_backend(w_np, "mlx")
    if mode == "affine" and x_dtype != aq.float32:
        w = aq.astype(w, x_dtype)  # scales and biases in the activations' dtype, as models ship them
    qw = aq.quantize(w, group_size=gs, bits=bits, mode=mode)
    x = aq.astype(aq.to_backend(floats((rows, k), specials=False), "mlx"), x_dtype)
    got = aq.linalg.quantized_matmul(x, qw)
    ref64 = _reference_qmm(x, qw)
    _assert_qmm_close(got, ref64, x_dtype, k)
    if x_dtype == aq.float32:
        on_numpy = _numpy_path(lambda: aq.linalg.quantized_matmul(aq.to_numpy(x), aq.to_backend(qw, "numpy")))
        if on_numpy is not None:
            np.testing.assert_allclose(aq.to_numpy(got), on_numpy, rtol=1e-5, atol=1e-5 * np.abs(ref64).max())


def test_quantized_matmul_shapes_transpose_and_batches():
    k, n = 128, 32
    qw = aq.quantize(mx.array(floats((n, k), specials=False)), group_size=64, bits=4)
    x1 = mx.array(floats((k,), specials=False))
    got = aq.linalg.quantized_matmul(x1, qw)  # 1-D x
    assert got.shape == (n,)
    _assert_qmm_close(got, _reference_qmm(x1, qw), aq.float32, k)
    xb = mx.array(floats((2, 3, 30, k), specials=False))  # batch axes: M = 180 rows, dequantize path
    _assert_qmm_close(aq.linalg.quantized_matmul(xb, qw), _reference_qmm(xb, qw), aq.float32, k)
    qt = aq.quantize(mx.array(floats((k, n * 2), specials=False)), group_size=32, bits=4)  # (K, N): transpose=False
    for rows in (3, 130):
        x = mx.array(floats((rows, k), specials=False))
        got = aq.linalg.quantized_matmul(x, qt, transpose=False)
        _assert_qmm_close(got, _reference_qmm(x, qt, transpose=False), aq.float32, k)
    batched = aq.quantize(mx.array(floats((3, n, k), specials=False)), group_size=64, bits=4)  # batched weight
    for shape in ((3, 2, k), (3, 50, k), (2, k), (130, k), (k,), (4, 1, 2, k)):  # x's batch broadcasts against w's
        x = mx.array(floats(shape, specials=False))
        got = aq.linalg.quantized_matmul(x, batched)
        ref = _reference_qmm(x[None] if x.ndim == 1 else x, batched)
        _assert_qmm_close(got, ref[..., 0, :] if x.ndim == 1 else ref, aq.float32, k)
    grid_w = aq.quantize(
        mx.array(floats((2, 1, n, k), specials=False)), group_size=64, bits=4
    )  # w's batch broadcasts too
    x = mx.array(floats((3, 5, k), specials=False))
    _assert_qmm_close(aq.linalg.quantized_matmul(x, grid_w), _reference_qmm(x, grid_w), aq.float32, k)
    # the GPU's route for broadcasting batches (a gather_qmm over index grids), checked here too
    from arrayq_mlx._workarounds import qmm_batch_as_gather

    for shape in ((4, 1, 2, k), (2, k)):
        x = mx.array(floats(shape, specials=False))
        x = x[None] if x.ndim == 2 else x
        got = qmm_batch_as_gather(MLX, x, batched, True)
        _assert_qmm_close(got, _reference_qmm(x, batched), aq.float32, k)
    empty = aq.linalg.quantized_matmul(mx.zeros((0, k)), qw)
    assert isinstance(empty, mx.array) and empty.shape == (0, n)


class _RecordingMLX:
    """mlx.core, with calls to the named functions recorded (by name) and passed on."""

    def __init__(self, names):
        self.calls = []
        self._names = names

    def __getattr__(self, name):
        attr = getattr(mx, name)
        if name not in self._names:
            return attr

        def recorded(*args, **kwargs):
            self.calls.append(name)
            return attr(*args, **kwargs)

        return recorded


@pytest.fixture
def on_mlx_cpu():
    """MLX's default device set to the CPU for the test (the CPU strategies)."""
    before = mx.default_device()
    mx.set_default_device(mx.cpu)
    yield
    mx.set_default_device(before)


def test_cpu_dequantize_threshold():
    """The CPU routing rule itself: affine weights from 128 rows of x (measured in
    docs/benchmarks.md, "The three CPU paths"; a change of the threshold goes with new measurements),
    never the other modes."""
    from arrayq_mlx._quantized import cpu_dequantizes_first

    assert [cpu_dequantizes_first("affine", m) for m in (0, 1, 127, 128, 129, 4096)] == [0, 0, 0, 1, 1, 1]
    for mode in ("mxfp4", "mxfp8", "nvfp4"):
        assert not any(cpu_dequantizes_first(mode, m) for m in (1, 127, 128, 4096))


# (shape of x, format, whether the CPU path dequantizes then matmuls); rows count batch axes
_CPU_ROUTES = [
    ((1, 64), ("affine", 64, 4), False),
    ((127, 64), ("affine", 64, 4), False),
    ((128, 64), ("affine", 64, 4), True),
    ((64,), ("affine", 32, 8), False),  # 1-D x: one row
    ((2, 63, 64), ("affine", 32, 8), False),  # 126 rows
    ((2, 64, 64), ("affine", 32, 8), True),  # 128 rows, 64 per batch entry
    ((128, 64), ("mxfp4", 32, 4), False),
    ((300, 64), ("mxfp8", 32, 8), False),
    ((128, 64), ("nvfp4", 16, 4), False),
]


@pytest.mark.parametrize(("shape", "fmt", "dequantizes"), _CPU_ROUTES, ids=lambda v: str(v).replace(" ", ""))
def test_cpu_quantized_matmul_takes_the_chosen_path(on_mlx_cpu, monkeypatch, shape, fmt, dequantizes):
    """Which MLX functions the CPU quantized_matmul calls, not only its result (both paths
    give the same numbers, so a wrong threshold, comparison or row count shows only here)."""
    mode, gs, bits = fmt
    qw = aq.quantize(mx.array(floats((24, 64), specials=False)), group_size=gs, bits=bits, mode=mode)
    x = mx.array(floats(shape, specials=False))
    recording = _RecordingMLX({"quantized_matmul", "dequantize", "matmul"})
    monkeypatch.setattr(MLX, "mx", recording)
    got = aq.linalg.quantized_matmul(x, qw)
    monkeypatch.undo()
    assert recording.calls == (["dequantize", "matmul"] if dequantizes else ["quantized_matmul"])
    ref = _reference_qmm(x[None] if x.ndim == 1 else x, qw)
    _assert_qmm_close(got, ref[0] if x.ndim == 1 else ref, aq.float32, 64)


def test_quantized_matmul_accumulates_in_float32_for_bfloat16():
    # a K long enough that bfloat16 accumulation (MLX's CPU kernel on bfloat16 inputs)
    # would be visibly off: our CPU path must land within one bfloat16 rounding.
    k, n = 2048, 16
    w = aq.astype(mx.array(floats((n, k), 0.0, 1.0, specials=False)), aq.bfloat16)
    qw = aq.quantize(w, group_size=64, bits=8)
    x = aq.astype(mx.array(floats((4, k), 0.0, 1.0, specials=False)), aq.bfloat16)
    got = aq.to_numpy(aq.astype(aq.linalg.quantized_matmul(x, qw), aq.float32)).astype(np.float64)
    ref = _reference_qmm(x, qw)
    # one rounding to bfloat16 (half an ulp: 2**-8 relative) plus float32 accumulation noise;
    # MLX's CPU kernel fed bfloat16 directly is off by ~50% here (measured with mlx 0.32.4)
    assert np.max(np.abs(got - ref) / np.abs(ref)) <= 1.05 * 2.0**-8


def test_gather_qmm_matches_a_loop_of_matmuls():
    e, n, k, m = 4, 32, 128, 3
    qw = aq.quantize(mx.array(floats((e, n, k), specials=False)), group_size=64, bits=4)
    x = mx.array(floats((5, m, k), specials=False))
    lhs = mx.array([0, 1, 2, 3, 4, 0], dtype=mx.int32)
    rhs = mx.array([3, 0, 1, 3, 2, 2], dtype=mx.int32)
    for x_dtype in (aq.float32, aq.bfloat16):
        xd = aq.astype(x, x_dtype)
        got = aq.linalg.gather_qmm(xd, qw, lhs_indices=lhs, rhs_indices=rhs)
        assert got.shape == (6, m, n) and got.dtype == MLX.native_dtype(x_dtype)
        w = aq.to_numpy(aq.dequantize(qw)).astype(np.float64)
        xs = aq.to_numpy(aq.astype(xd, aq.float32)).astype(np.float64)
        ref = np.stack([xs[i] @ w[j].T for i, j in zip(aq.to_numpy(lhs), aq.to_numpy(rhs))])
        _assert_qmm_close(got, ref, x_dtype, k)
    got = aq.linalg.gather_qmm(x[:4], qw)  # indices None: all, in order
    w = aq.to_numpy(aq.dequantize(qw)).astype(np.float64)
    _assert_qmm_close(got, np.matmul(aq.to_numpy(x[:4]).astype(np.float64), np.swapaxes(w, -1, -2)), aq.float32, k)


def test_empty_quantized_products_are_never_handed_to_the_kernel():
    # MLX's CPU gather_qmm dies with SIGFPE on M = 0: the backend must not evaluate it
    qw = aq.quantize(mx.array(floats((3, 32, 64), specials=False)), group_size=64, bits=4)
    got = aq.linalg.gather_qmm(mx.zeros((2, 0, 64)), qw, lhs_indices=mx.array([0, 1]), rhs_indices=mx.array([2, 0]))
    assert got.shape == (2, 0, 32) and aq.to_numpy(got).size == 0
    got = aq.linalg.quantized_matmul(mx.zeros((0, 64)), aq.quantize(mx.ones((32, 64)), group_size=64))
    assert got.shape == (0, 32) and aq.to_numpy(got).size == 0


def test_to_backend_round_trips_a_quantized_weight():
    qw = aq.quantize(mx.array(floats((8, 64), specials=False)), group_size=32, bits=4)
    on_numpy = aq.to_backend(qw, "numpy")
    assert isinstance(on_numpy, aq.QuantizedWeight) and isinstance(on_numpy.packed, np.ndarray)
    back = aq.to_backend(on_numpy, "mlx")
    assert isinstance(back.packed, mx.array)
    for field in ("packed", "scales", "biases"):
        assert mx.array_equal(getattr(back, field), getattr(qw, field)).item()
    assert (back.group_size, back.bits, back.mode, back.dtype) == (32, 4, "affine", aq.float32)
    q8 = aq.quantize(mx.array(floats((4, 64), specials=False)), mode="mxfp8")
    back8 = aq.to_backend(aq.to_backend(q8, "numpy"), "mlx")
    assert back8.biases is None and mx.array_equal(back8.scales, q8.scales).item()


def test_rope_runs_mx_fast_rope_in_half_precision_only(monkeypatch):
    """bfloat16/float16 take MLX's fused kernel (its float32 angles are below their rounding);
    float32 keeps the reference's float64 tables, and matches an independent float64
    rotation to float32 rounding even far into the sequence, where mx.fast.rope would not."""
    seen = []
    real = mx.fast.rope
    monkeypatch.setattr(mx.fast, "rope", lambda x, *a, **k: seen.append(x.dtype) or real(x, *a, **k))
    x = np.random.default_rng(3).standard_normal((1, 2, 3, 8)).astype(np.float32)
    offset = 40_000
    half = aq.nn.rope(mx.array(x).astype(mx.bfloat16), 8, offset=offset)
    full = np.array(aq.nn.rope(mx.array(x), 8, offset=offset))
    assert seen == [mx.bfloat16] and half.dtype == mx.bfloat16

    angles = np.arange(offset, offset + 3)[:, None] * 10000.0 ** (-np.arange(0, 8, 2) / 8)[None, :]
    x1, x2 = x[..., :4].astype(np.float64), x[..., 4:].astype(np.float64)
    expected = np.concatenate(
        [x1 * np.cos(angles) - x2 * np.sin(angles), x2 * np.cos(angles) + x1 * np.sin(angles)], -1
    )
    # float32: the tables' and the rotation's rounding, a few ulps of |x| <= ~3
    assert np.abs(full - expected).max() < 4e-6


# ----------------------------------------------------------------------------- array API suite findings


def test_full_and_the_like_functions_keep_the_dtype_asked():
    x = mx.array([True, False])
    for out in (aq.zeros_like(x), aq.ones_like(x), aq.empty_like(x), aq.full_like(x, 1)):
        assert out.dtype == mx.bool_
    with aq.default_backend("mlx"):
        assert aq.full((2,), 0, dtype=aq.bool).tolist() == [False, False]
        assert aq.full((2,), 2.5, dtype=aq.int8).tolist() == [2, 2]  # cast as astype does
        assert aq.full_like(mx.zeros(2, dtype=mx.uint8), 7.9).tolist() == [7, 7]
        big = aq.eye(2, 3, k=2**31)  # a diagonal past the last column: no ones
        assert big.dtype == mx.float32 and big.tolist() == [[0, 0, 0], [0, 0, 0]]
        assert aq.eye(2, 3, k=-(2**40)).tolist() == [[0, 0, 0], [0, 0, 0]]
        assert aq.eye(2, 3, k=2).tolist() == [[0, 0, 1], [0, 0, 0]]


def test_complex_expm1_tanh_and_sign():
    inf, nan = math.inf, math.nan
    small = [complex(1e-5, 1e-4), complex(0.5, 0.25), complex(-2.0, 3.0), complex(-1e-6, 0.0)]
    got = np.array(aq.expm1(mx.array(small, dtype=mx.complex64)))
    # expm1(z) = exp(z) - 1 in float64 (cmath): no cancellation hides in float32 for |z| >= 1e-6
    want = np.array([complex(cmath.exp(z) - 1) for z in small])
    np.testing.assert_allclose(got, want, rtol=5e-7)  # four float32 ulps (1.2e-7) relative
    # the array API's special cases: (input, result), zeros' signs included
    special = [
        (complex(inf, 0.0), complex(inf, 0.0)),
        (complex(nan, 0.0), complex(nan, 0.0)),
        (complex(-inf, inf), complex(-1.0, 0.0)),
        (complex(-0.0, 0.0), complex(0.0, 0.0)),
    ]
    out = np.array(aq.expm1(mx.array([v for v, _ in special], dtype=mx.complex64)))
    for got_v, (_, want_v) in zip(out, special):
        for g, w in ((got_v.real, want_v.real), (got_v.imag, want_v.imag)):
            assert (math.isnan(g) and math.isnan(w)) or (g == w and math.copysign(1, g) == math.copysign(1, w))
    limits = [complex(inf, 2.0), complex(inf, -2.0), complex(-inf, 1e30), complex(0.5, 0.25)]
    got = np.array(aq.tanh(mx.array(limits, dtype=mx.complex64)))  # tanh(+-inf + ic) = +-1 +- 0j, c's sign
    for g, w in zip(got[:3], [complex(1, 0.0), complex(1, -0.0), complex(-1, 0.0)]):
        assert g == w and math.copysign(1, g.imag) == math.copysign(1, w.imag), (g, w)
    assert abs(got[3] - cmath.tanh(0.5 + 0.25j)) < 1e-6
    signs = np.array(aq.sign(mx.array([complex(-0.0, 0.0), 3 + 4j], dtype=mx.complex64)))
    assert math.copysign(1, signs[0].real) == 1 and signs[0] == 0
    assert abs(signs[1] - (0.6 + 0.8j)) < 1e-7  # 3 + 4j over its modulus 5
