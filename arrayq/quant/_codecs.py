"""Exact float encodings without bit casts: E8M0 scales (a binary search over exact
thresholds instead of log2), E4M3 and E2M1 (FP4) by comparisons against constants."""

from __future__ import annotations

import functools
import math

from ._common import _FLOAT_INFO, _FP4_VALUES, _POW2_MAX, _POW2_MIN, _f32, _i32, _round_narrow


@functools.cache
def _e8m0_thresholds(name):
    """(n_lo, [h_{n_lo+1}, ..., h_{n_hi}]) for the e8m0 exponent of a scale.

    The exponent is ``ceil(log2(s))``, the smallest ``n`` with ``2**n >= s``.
    ``h_n`` is the smallest positive value of format ``name`` whose exponent
    is >= n, i.e. the successor of ``2**(n-1)`` in that format; ``n_lo`` is
    the exponent of the smallest positive (subnormal) value.  Then
    ``exponent(s) == n_lo + #{n: h_n <= s}`` for every positive ``s``.
    """
    p, emin, emax = _FLOAT_INFO[name]
    n_lo = emin - (p - 1)  # smallest subnormal is 2**n_lo
    table = []
    for n in range(n_lo + 1, emax + 2):
        ulp = 2.0 ** (max(n - 1, emin) - (p - 1))
        table.append(2.0 ** (n - 1) + ulp)
    return n_lo, table


def _count_le(xp, table, s):
    """Number of entries of the ascending Python list ``table`` that are <= s.

    ``s`` is a 1-D float32 array; returns int32 of the same shape.
    Vectorised binary search (no ``searchsorted`` needed).
    """
    n = len(table)
    tab = _f32(xp, table)
    count = xp.zeros(s.shape, dtype=xp.int32)
    step = 1
    while step * 2 <= n:
        step *= 2
    while step >= 1:
        cand = xp.add(count, step)
        idx = xp.clip(xp.subtract(cand, 1), 0, n - 1)
        ok = xp.logical_and(xp.less_equal(cand, n), xp.less_equal(xp.take(tab, idx, axis=0), s))
        count = xp.where(ok, cand, count)
        step //= 2
    return count


def _pow2_values(name):
    """Python list: 2**k rounded to format ``name`` for k in [_POW2_MIN, _POW2_MAX]."""
    p, emin, emax = _FLOAT_INFO[name]
    emin_sub = emin - (p - 1)
    out = []
    for k in range(_POW2_MIN, _POW2_MAX + 1):
        if k > emax:
            out.append(math.inf)
        elif k < emin_sub:  # 2**(emin_sub-1) is a tie -> rounds to even 0
            out.append(0.0)
        else:
            out.append(2.0**k)
    return out


def _pow2(xp, k, name="float32"):
    """2**k (k: int32 array in [_POW2_MIN, _POW2_MAX]) rounded to ``name``, as float32."""
    shape = tuple(k.shape)
    tab = _f32(xp, _pow2_values(name))
    idx = xp.reshape(xp.subtract(xp.clip(k, _POW2_MIN, _POW2_MAX), _POW2_MIN), (-1,))
    return xp.reshape(xp.take(tab, idx, axis=0), shape)


def _e8m0_exponent(xp, s, name):
    """``ceil(log2(s))`` (int32) for float32 ``s >= 0`` holding ``name`` values.

    Returns 0 where ``s == 0`` (as MLX does).
    """
    n_lo, table = _e8m0_thresholds(name)
    shape = tuple(s.shape)
    flat = xp.reshape(s, (-1,))
    e = xp.add(_count_le(xp, table, flat), n_lo)
    e = xp.where(xp.equal(flat, 0), xp.zeros_like(e), e)
    return xp.reshape(e, shape)


def _to_e4m3(xp, v):
    """float32 -> e4m3 (fp8 e4m3fn) codes as uint8, like MLX's ``to_fp8``.

    Round to nearest even; magnitudes >= 464 (and NaN/inf) saturate to 448
    (code 0x7E); the sign bit is kept, also for zeros and values that round
    to zero.
    """
    add, mul = xp.add, xp.multiply
    a = xp.abs(v)
    subnormal = xp.less(a, 2.0**-6)
    # subnormal range: round(|v| * 2**9), half to even
    small = xp.where(subnormal, a, xp.zeros_like(a))
    code_sub = xp.round(mul(small, 512.0))
    # normal range: exponent by exact comparisons, 3 mantissa bits RNE
    e = xp.full(a.shape, -6, dtype=xp.int32)
    for k in range(-5, 9):
        e = add(e, xp.astype(xp.greater_equal(a, 2.0**k), xp.int32))
    m = xp.divide(a, _pow2(xp, e))
    mant = xp.round(mul(xp.subtract(m, 1.0), 8.0))
    code_norm = add(mul(xp.astype(add(e, 7), xp.float32), 8.0), mant)
    code = xp.where(subnormal, code_sub, code_norm)
    # saturate; written so that NaN also lands on 0x7E like MLX
    code = xp.where(xp.less(a, 464.0), code, _f32(xp, 126.0))
    code = xp.astype(code, xp.int32)
    sign = xp.where(xp.signbit(v), xp.full(code.shape, 128, dtype=xp.int32), xp.zeros_like(code))
    return xp.astype(add(code, sign), xp.uint8)


def _e4m3_table(xp):
    """float32 array of the 256 e4m3 (fp8 e4m3fn) code values.

    Codes 0x7F and 0xFF decode to NaN (MLX >= 0.32.4; older MLX CPU builds
    decoded them to +-480).  quantize never produces them.
    """
    c = xp.arange(256, dtype=xp.int32)
    mag = xp.bitwise_and(c, _i32(xp, 127))
    e = xp.bitwise_right_shift(mag, _i32(xp, 3))
    m = xp.astype(xp.bitwise_and(c, _i32(xp, 7)), xp.float32)
    p = _pow2(xp, xp.subtract(e, 10))
    val = xp.where(xp.equal(e, 0), xp.multiply(m, 2.0**-9), xp.multiply(xp.add(m, 8.0), p))
    val = xp.where(xp.equal(mag, 127), xp.full(val.shape, math.nan, dtype=xp.float32), val)
    return xp.where(xp.greater_equal(c, 128), xp.negative(val), val)


def _from_e4m3(xp, codes):
    """uint8 e4m3 codes -> float32 values (exact)."""
    shape = tuple(codes.shape)
    idx = xp.reshape(xp.astype(codes, xp.int32), (-1,))
    return xp.reshape(xp.take(_e4m3_table(xp), idx, axis=0), shape)


def _to_fp4(xp, v, dist_dtype):
    """Values -> e2m1 codes (uint32), exactly like MLX's ``argmin |v - lut|``.

    ``v`` is float32.  MLX computes the 16 distances ``|v - lut[i]|`` in
    ``dist_dtype`` (the weight dtype for mx modes, float32 for nvfp4) and
    takes the first minimum.  That is "nearest e2m1 value, ties to the
    smaller magnitude, -0 never chosen" -- except that for huge ``|v|``
    (possible for nvfp4, whose e4m3 scale saturates at 448) the rounded
    distances all tie and code 0 wins.  NaN/inf give code 0.  The distances
    are evaluated one LUT entry at a time (16 passes, no 16x temporary).
    """
    best_d = None
    best_i = None
    for i, lv in enumerate(_FP4_VALUES):
        d = xp.abs(_round_narrow(xp, xp.subtract(v, lv), dist_dtype))
        if best_d is None:
            best_d = d
            best_i = xp.zeros(v.shape, dtype=xp.uint32)
            continue
        better = xp.less(d, best_d)
        best_d = xp.where(better, d, best_d)
        best_i = xp.where(better, xp.full(v.shape, i, dtype=xp.uint32), best_i)
    return best_i


def _from_fp4(xp, codes):
    shape = tuple(codes.shape)
    idx = xp.reshape(xp.astype(codes, xp.int32), (-1,))
    return xp.reshape(xp.take(_f32(xp, _FP4_VALUES), idx, axis=0), shape)
