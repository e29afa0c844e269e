"""The ops MLX lacks or computes otherwise than the array API, composed from MLX ops.

These are translations, not defects (those are in :mod:`arrayq_mlx._workarounds`): MLX has
no signbit and no complex expm1, gives sign(NaN) = 0, sign(-0 + 0j) = -0 + 0j and
tanh(inf + ic) a zero of sin(2c)'s sign, keeps the dividend's sign on a zero remainder, shifts by
the count modulo the width (C++), multiplies floating types only, sorts ascending only (and
bool on the CPU only), and has no dtype rule for sums of narrow integers. Each function
takes the backend (``b``) and is called from the ``MLXBackend`` method of the same name.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from arrayq.backend import Array
from arrayq.backend import dtypes as dt

if TYPE_CHECKING:
    from arrayq_mlx import MLXBackend

_SIGNED_INT_BITS = {8: "int8", 16: "int16", 32: "int32", 64: "int64"}


def _is_float(b: MLXBackend, x: Any) -> bool:
    return b.is_array(x) and b.dtype_of(x).kind == "float"


def signbit(b: MLXBackend, x: Array) -> Array:
    """Whether the sign bit is set, -0.0 and -NaN included: read from the bits."""
    mx = b.mx
    d = b.dtype_of(x)
    if d.kind == "float":
        return mx.less(mx.view(x, b._native[dt.as_dtype(_SIGNED_INT_BITS[d.bits])]), 0)
    if d.kind == "signed":
        return mx.less(x, 0)
    if d.kind in ("unsigned", "bool"):
        return mx.zeros(x.shape, dtype=mx.bool_)
    raise TypeError(f"signbit needs a real-valued array, got {d.name}")


def sign(b: MLXBackend, x: Array) -> Array:
    """MLX's sign, but sign(NaN) = NaN (the array API's; MLX gives 0) and a complex zero's
    sign +0 + 0j (MLX keeps a -0 real part)."""
    mx = b.mx
    out = mx.sign(x)
    if _is_float(b, x):  # the array API wants sign(NaN) = NaN; MLX gives 0
        out = mx.where(mx.isnan(x), x, out)
    elif b.is_array(x) and b.dtype_of(x).kind == "complex":
        out = mx.where(mx.equal(x, 0), mx.zeros_like(x), out)
    return out


def expm1(b: MLXBackend, x: Array) -> Array:
    """MLX's expm1, and for complex x, which it lacks: ``expm1(a) cos(c) - 2 sin(c/2)**2 +
    i exp(a) sin(c)`` for x = a + ic (no cancellation for small x), with ``exp(x) - 1`` where
    x is zero or not finite (the array API's special cases: expm1(+inf + 0j) = +inf + 0j,
    expm1(-0 + 0j) = +0 + 0j, ...)."""
    mx = b.mx
    if not (b.is_array(x) and b.dtype_of(x).kind == "complex"):
        return mx.expm1(x)
    re, im = mx.real(x), mx.imag(x)
    half = mx.sin(im / 2)
    accurate = _complex(b, mx.expm1(re) * mx.cos(im) - 2 * half * half, mx.exp(re) * mx.sin(im), x)
    ordinary = mx.logical_and(mx.isfinite(x), mx.not_equal(x, 0))
    return mx.where(ordinary, accurate, mx.exp(x) - 1)


def tanh(b: MLXBackend, x: Array) -> Array:
    """MLX's tanh, but tanh(+-inf + ic) for finite c is +-1 with a zero imaginary part of
    c's sign (the array API's; MLX's sign of that zero follows sin(2c))."""
    mx = b.mx
    out = mx.tanh(x)
    if not (b.is_array(x) and b.dtype_of(x).kind == "complex"):
        return out
    re, im = mx.real(x), mx.imag(x)
    limit = _complex(b, mx.sign(re), copysign(b, mx.zeros_like(im), im), x)
    return mx.where(mx.logical_and(mx.isinf(re), mx.isfinite(im)), limit, out)


def _complex(b: MLXBackend, re: Array, im: Array, like: Array) -> Array:
    """The complex array ``re + i im`` in like's dtype, built through the bits, so that an
    infinite part stays out of the other (``re + 1j * im`` makes 0 * inf = NaN)."""
    mx = b.mx
    return mx.view(mx.stack([re, im], axis=-1), like.dtype).reshape(like.shape)


def copysign(b: MLXBackend, x1: Any, x2: Any) -> Array:
    """|x1| with the sign bit of x2 (MLX has no copysign)."""
    mx = b.mx
    if not b.is_array(x1):  # a weak scalar takes the array's dtype
        x1 = mx.array(x1, dtype=x2.dtype)
    if not b.is_array(x2):  # a Python scalar
        negative = math.copysign(1.0, x2) < 0
        return mx.negative(mx.abs(x1)) if negative else mx.abs(x1)
    magnitude = mx.abs(x1)
    return mx.where(signbit(b, x2), mx.negative(magnitude), magnitude)


def remainder(b: MLXBackend, x1: Any, x2: Any) -> Array:
    """MLX's remainder, with a zero result taking the divisor's sign."""
    mx = b.mx
    out = mx.remainder(x1, x2)
    if _is_float(b, out):
        # MLX keeps the dividend's sign on a zero result (-0.0 % 3 = -0.0); the array API
        # (and NumPy) give the divisor's sign.
        zero = mx.zeros_like(out)
        signed_zero = (
            copysign(b, zero, x2) if b.is_array(x2) else (mx.negative(zero) if math.copysign(1.0, x2) < 0 else zero)
        )
        out = mx.where(mx.equal(out, 0), signed_zero, out)
    return out


def _shift_width(b: MLXBackend, x1: Any, x2: Any) -> int:
    d = b.dtype_of(x1 if b.is_array(x1) else x2)
    return d.bits


def bitwise_left_shift(b: MLXBackend, x1: Any, x2: Any) -> Array:
    # MLX (C++) shifts by x2 modulo the width; NumPy and the array API's intent: 0 once
    # every bit has been shifted out.
    mx = b.mx
    out = mx.left_shift(x1, x2)
    if b.is_array(x2) or x2 >= _shift_width(b, x1, x2):
        out = mx.where(mx.greater_equal(x2, _shift_width(b, x1, x2)), mx.zeros_like(out), out)
    return out


def bitwise_right_shift(b: MLXBackend, x1: Any, x2: Any) -> Array:
    """Shifts past the width give 0 (unsigned) or the sign fill (signed), as NumPy."""
    width = _shift_width(b, x1, x2)
    capped = b.mx.minimum(x2, width - 1) if b.is_array(x2) else min(x2, width - 1)
    if b.is_array(x1) and b.dtype_of(x1).kind == "unsigned":
        out = b.mx.right_shift(x1, capped)
        return b.mx.where(b.mx.greater_equal(x2, width), b.mx.zeros_like(out), out)
    return b.mx.right_shift(x1, capped)  # signed: sign-fill, as NumPy


def exact_matmul(backend: MLXBackend, x1: Array, x2: Array) -> Array:
    """matmul of integers and bools, which MLX's matmul (floating types only) refuses:
    multiply and sum, exactly (O(M*K*N) memory; integer matmuls are small in practice)."""
    mx = backend.mx
    out_dtype = dt.result_type(backend.dtype_of(x1), backend.dtype_of(x2))
    v1, v2 = x1.ndim == 1, x2.ndim == 1
    a = mx.expand_dims(x1, 0) if v1 else x1
    b = mx.expand_dims(x2, -1) if v2 else x2
    if out_dtype == dt.bool_:
        prod = mx.logical_and(mx.expand_dims(a, -1), mx.expand_dims(b, -3))
        out = mx.any(prod, axis=-2)
    else:
        native = backend._native_for(out_dtype)
        prod = mx.multiply(mx.expand_dims(a.astype(native), -1), mx.expand_dims(b.astype(native), -3))
        out = mx.sum(prod, axis=-2).astype(native)
    if v2:
        out = mx.squeeze(out, -1)
    if v1:
        out = mx.squeeze(out, -2 if not v2 else 0) if out.ndim else out
    return out


def accumulator(b: MLXBackend, x: Array, dtype: dt.DType | None) -> dt.DType:
    """The array API's sum/prod/cumulative_sum dtype: ``dtype``, or for a narrow integer
    (or bool) input the default int (uint32 for unsigned)."""
    if dtype is not None:
        return dtype
    d = b.dtype_of(x)
    if d.kind in ("bool", "signed") and d.bits < 32:
        return dt.int32
    if d.kind == "unsigned" and d.bits < 32:
        return dt.uint32
    return d


def sort(b: MLXBackend, x: Array, axis: int, descending: bool) -> Array:
    # mx.sort is stable (and puts NaN last); descending reverses it, as
    # array_api_compat.numpy does, so NaN comes first there.
    mx = b.mx
    is_bool = x.dtype == mx.bool_
    if is_bool:  # MLX sorts bool on the CPU only
        x = x.astype(mx.uint8)
    out = mx.sort(x, axis=axis)
    if descending:
        out = mx.flip(out, axis=axis)
    return out.astype(mx.bool_) if is_bool else out


def argsort(b: MLXBackend, x: Array, axis: int, descending: bool) -> Array:
    mx = b.mx
    index = b._native[b.default_int]
    if x.dtype == mx.bool_:
        x = x.astype(mx.uint8)
    if not descending:
        return mx.argsort(x, axis=axis).astype(index)
    # stable descending: sort the reversed array ascending, reverse, map indices back
    n = x.shape[axis]
    rev = mx.argsort(mx.flip(x, axis=axis), axis=axis).astype(index)
    return mx.subtract(n - 1, mx.flip(rev, axis=axis))
