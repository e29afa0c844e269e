"""MLX-compatible quantization formats, written once against the array API.

Every public function takes an array namespace ``xp`` as its first argument
and only uses functions from the Python array API standard (2023.12) on it
(plus ``xp.bfloat16`` for the bfloat16 dtype).  The code therefore runs
unchanged on NumPy (through ``array_api_compat``), on MLX, and on the arrayq
frontend itself.

The formats reproduce ``mlx.core.quantize`` / ``mlx.core.dequantize`` as
executed by MLX's CPU backend (MLX 0.32.4), bit for bit:

* ``affine``: ``bits`` in {1, 2, 3, 4, 5, 6, 8}, ``group_size`` in
  {32, 64, 128}; one scale and one bias per group, both in the dtype of the
  quantized matrix.
* ``mxfp4`` (group 32, e2m1 elements, e8m0 scale), ``mxfp8`` (group 32, e4m3
  elements, e8m0 scale), ``nvfp4`` (group 16, e2m1 elements, e4m3 scale).
  Scales are ``uint8`` codes; there are no biases.

See ``docs/quantization-formats.md`` for the precise formulas, including the
places where MLX deviates from textbook definitions.

Implementation notes
--------------------
* Nothing here reinterprets bits of floating point arrays (the array API has
  no bitcast).  Floating point encodings (e4m3, e8m0, e2m1) are computed with
  exact comparisons against constants instead.
* ``log2`` is never evaluated: the e8m0 exponent ``ceil(log2(s))`` is found
  by a vectorised binary search over per-dtype thresholds computed exactly
  in pure Python (backends' float32 ``log2`` differ in the last bit, which
  would flip exponents near powers of two).  Powers of two come from an
  exact lookup table rather than ``pow``.
* Arithmetic that MLX performs in float16/bfloat16 is emulated by computing
  in float32 and rounding to the narrow dtype after every operation.  For
  ``+ - * /`` this gives exactly the correctly rounded narrow result, because
  float32 has at least ``2p + 2`` significand bits for both narrow types.
"""

from __future__ import annotations

import functools
import math

__all__ = [
    "MODES",
    "default_params",
    "packed_width",
    "pack",
    "unpack",
    "quantize",
    "dequantize",
    "has_nonfinite",
    "quantized_matmul_reference",
    "gather_qmm_reference",
]

# mode -> (default group size, default bits, allowed group sizes, allowed bits)
MODES = {
    "affine": (64, 4, (32, 64, 128), (1, 2, 3, 4, 5, 6, 8)),
    "mxfp4": (32, 4, (32,), (4,)),
    "mxfp8": (32, 8, (32,), (8,)),
    "nvfp4": (16, 4, (16,), (4,)),
}

# Peak size (bytes) of the float32 copy of one dequantized weight block in the
# matmul references. Dequantizing a block holds about six block-sized temporaries at
# once (codes, unpacked values, table indices, decoded values, the scaled block), so 8 MiB
# keeps a call's peak extra memory near 48 MiB, under the 64 MiB bound
# (docs/benchmarks.md, "Memory of the reference path").
_BLOCK_BYTES = 8 * 1024 * 1024

# (significand bits incl. implicit bit, min normal exponent, max exponent)
_FLOAT_INFO = {
    "float32": (24, -126, 127),
    "float16": (11, -14, 15),
    "bfloat16": (8, -126, 127),
}

# e2m1 code -> value (index = 4-bit code, sign in bit 3).
_FP4_VALUES = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]

_POW2_MIN = -149  # smallest exponent in the float32 power-of-two table
_POW2_MAX = 128  # 2**128 is stored as +inf


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def _prod(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _same_dtype(ns_dtype, dtype):
    """``ns_dtype == dtype`` with the namespace's dtype object on the left.

    A frontend namespace (arrayq) may be handed arrays whose dtype objects
    belong to the backend; their ``__eq__`` need not know the frontend's
    dtypes, while the frontend's ``__eq__`` knows the backends'.
    """
    return bool(ns_dtype == dtype)


def _dtype_name(xp, dtype):
    """Name of a floating dtype of ``xp`` ('float32', 'float16', ...)."""
    for name in ("float32", "float16", "bfloat16", "float64"):
        dt = getattr(xp, name, None)
        if dt is not None and _same_dtype(dt, dtype):
            return name
    return None


def _require_float(xp, dtype, what):
    name = _dtype_name(xp, dtype)
    if name not in _FLOAT_INFO:
        raise TypeError(f"{what} must have dtype float32, float16 or bfloat16, got {dtype}")
    return name


def _u32(xp, v):
    return xp.asarray(v, dtype=xp.uint32)


def _i32(xp, v):
    return xp.asarray(v, dtype=xp.int32)


def _f32(xp, v):
    return xp.asarray(v, dtype=xp.float32)


def _round_narrow(xp, x32, dtype):
    """Round a float32 array to ``dtype`` and return it as float32 again."""
    if _same_dtype(xp.float32, dtype):
        return x32
    return xp.astype(xp.astype(x32, dtype), xp.float32)


def default_params(mode, group_size=None, bits=None):
    """Resolve and validate ``(group_size, bits)`` for ``mode``.

    Missing values take MLX's defaults (affine: 64/4, mxfp4: 32/4,
    mxfp8: 32/8, nvfp4: 16/4).

    Raises:
        ValueError: unknown mode, or a group size / bit width the mode does
            not support.
    """
    if mode not in MODES:
        raise ValueError(f"unknown quantization mode {mode!r}; expected one of {sorted(MODES)}")
    dgs, dbits, ok_gs, ok_bits = MODES[mode]
    gs = dgs if group_size is None else int(group_size)
    b = dbits if bits is None else int(bits)
    if gs not in ok_gs:
        raise ValueError(f"{mode} quantization supports group sizes {ok_gs}, got {gs}")
    if b not in ok_bits:
        raise ValueError(f"{mode} quantization supports bits {ok_bits}, got {b}")
    return gs, b


def _period(bits):
    """(values, words) in one repeating unit of the packed bit stream."""
    g = math.gcd(32, bits)
    return 32 // g, bits // g


def packed_width(k, bits):
    """Number of uint32 words holding ``k`` values of ``bits`` bits.

    Raises ValueError unless ``k * bits`` is a multiple of 32.
    """
    if (k * bits) % 32:
        raise ValueError(
            f"{k} values of {bits} bits do not fill whole uint32 words (k * bits must be a multiple of 32)"
        )
    return k * bits // 32


# ---------------------------------------------------------------------------
# bit packing
# ---------------------------------------------------------------------------


def pack(xp, q, bits):
    """Pack integer codes into uint32 words, exactly as MLX lays them out.

    The codes of a row form one little-endian bit stream: value ``i`` occupies
    stream bits ``[i*bits, (i+1)*bits)`` with its least significant bit first,
    and word ``j`` holds stream bits ``[32*j, 32*j+32)`` (bit 0 = LSB).  For
    bits 3, 5 and 6 values straddle word boundaries.  (MLX's CPU kernel writes
    3- and 6-bit codes in 3-byte units and 5-bit codes in 5-byte units; on a
    little-endian layout that is the same stream.)

    Args:
        xp: array namespace.
        q: integer array of shape ``(..., k)``; values must be in
            ``[0, 2**bits)`` (higher bits are discarded silently).
        bits: bits per value, ``1 <= bits <= 32``.

    Returns:
        uint32 array of shape ``(..., k * bits // 32)``.

    Raises:
        ValueError: bad ``bits``, ``q.ndim == 0`` or ``k * bits % 32 != 0``.
    """
    bits = int(bits)
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in [1, 32], got {bits}")
    if q.ndim < 1:
        raise ValueError("pack needs an array with at least one dimension")
    k = q.shape[-1]
    n_words = packed_width(k, bits)
    n_vals, n_w = _period(bits)
    lead = tuple(q.shape[:-1])
    q = xp.astype(q, xp.uint32)
    if bits < 32:
        q = xp.bitwise_and(q, _u32(xp, (1 << bits) - 1))
    q = xp.reshape(q, lead + (k // n_vals, n_vals))
    words = [None] * n_w
    for j in range(n_vals):
        off = j * bits
        wi, sh = divmod(off, 32)
        v = q[..., j]
        lo = xp.bitwise_left_shift(v, _u32(xp, sh)) if sh else v
        words[wi] = lo if words[wi] is None else xp.bitwise_or(words[wi], lo)
        if sh + bits > 32:
            hi = xp.bitwise_right_shift(v, _u32(xp, 32 - sh))
            words[wi + 1] = hi if words[wi + 1] is None else xp.bitwise_or(words[wi + 1], hi)
    out = xp.stack(words, axis=-1)
    return xp.reshape(out, lead + (n_words,))


def unpack(xp, packed, bits, k=None):
    """Inverse of :func:`pack`.

    Args:
        xp: array namespace.
        packed: uint32 array of shape ``(..., n_words)``.
        bits: bits per value, ``1 <= bits <= 32``.
        k: number of values per row; defaults to ``n_words * 32 // bits``.
            Must equal that value.

    Returns:
        uint32 array of shape ``(..., k)`` with values in ``[0, 2**bits)``.

    Raises:
        ValueError: bad ``bits``/``k`` or ``n_words`` not a whole number of
            packing periods.
    """
    bits = int(bits)
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in [1, 32], got {bits}")
    if packed.ndim < 1:
        raise ValueError("unpack needs an array with at least one dimension")
    n_words = packed.shape[-1]
    if (n_words * 32) % bits:
        raise ValueError(f"{n_words} words do not hold whole {bits}-bit values")
    k_full = n_words * 32 // bits
    if k is not None and int(k) != k_full:
        raise ValueError(f"{n_words} uint32 words hold {k_full} values of {bits} bits, not {k}")
    n_vals, n_w = _period(bits)
    if n_words % n_w:
        raise ValueError(f"{bits}-bit packing needs a multiple of {n_w} words, got {n_words}")
    lead = tuple(packed.shape[:-1])
    w = xp.reshape(xp.astype(packed, xp.uint32), lead + (n_words // n_w, n_w))
    mask = _u32(xp, (1 << bits) - 1) if bits < 32 else None
    vals = []
    for j in range(n_vals):
        wi, sh = divmod(j * bits, 32)
        v = w[..., wi]
        if sh:
            v = xp.bitwise_right_shift(v, _u32(xp, sh))
        if sh + bits > 32:
            v = xp.bitwise_or(v, xp.bitwise_left_shift(w[..., wi + 1], _u32(xp, 32 - sh)))
        if mask is not None:
            v = xp.bitwise_and(v, mask)
        vals.append(v)
    out = xp.stack(vals, axis=-1)
    return xp.reshape(out, lead + (k_full,))


# ---------------------------------------------------------------------------
# exact float helpers (pure Python tables + array comparisons)
# ---------------------------------------------------------------------------


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
        cand = count + step
        idx = xp.clip(cand - 1, 0, n - 1)
        ok = xp.logical_and(cand <= n, xp.take(tab, idx, axis=0) <= s)
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
    idx = xp.reshape(xp.clip(k, _POW2_MIN, _POW2_MAX) - _POW2_MIN, (-1,))
    return xp.reshape(xp.take(tab, idx, axis=0), shape)


def _e8m0_exponent(xp, s, name):
    """``ceil(log2(s))`` (int32) for float32 ``s >= 0`` holding ``name`` values.

    Returns 0 where ``s == 0`` (as MLX does).
    """
    n_lo, table = _e8m0_thresholds(name)
    shape = tuple(s.shape)
    flat = xp.reshape(s, (-1,))
    e = _count_le(xp, table, flat) + n_lo
    e = xp.where(flat == 0, xp.zeros_like(e), e)
    return xp.reshape(e, shape)


def _to_e4m3(xp, v):
    """float32 -> e4m3 (fp8 e4m3fn) codes as uint8, like MLX's ``to_fp8``.

    Round to nearest even; magnitudes >= 464 (and NaN/inf) saturate to 448
    (code 0x7E); the sign bit is kept, also for zeros and values that round
    to zero.
    """
    a = xp.abs(v)
    sub_lim = 2.0**-6
    # subnormal range: round(|v| * 2**9), half to even
    small = xp.where(a < sub_lim, a, xp.zeros_like(a))
    code_sub = xp.round(small * 512.0)
    # normal range: exponent by exact comparisons, 3 mantissa bits RNE
    e = xp.zeros(a.shape, dtype=xp.int32) - 6
    for k in range(-5, 9):
        e = e + xp.astype(a >= 2.0**k, xp.int32)
    m = a / _pow2(xp, e)
    mant = xp.round((m - 1.0) * 8.0)
    code_norm = xp.astype(e + 7, xp.float32) * 8.0 + mant
    code = xp.where(a < sub_lim, code_sub, code_norm)
    # saturate; written so that NaN also lands on 0x7E like MLX
    code = xp.where(a < 464.0, code, _f32(xp, 126.0))
    code = xp.astype(code, xp.int32)
    sign = xp.where(xp.signbit(v), xp.full(code.shape, 128, dtype=xp.int32), xp.zeros_like(code))
    return xp.astype(code + sign, xp.uint8)


def _e4m3_table(xp):
    """float32 array of the 256 e4m3 (fp8 e4m3fn) code values.

    Codes 0x7F and 0xFF decode to NaN (MLX >= 0.32.4; older MLX CPU builds
    decoded them to +-480).  quantize never produces them.
    """
    c = xp.arange(256, dtype=xp.int32)
    mag = xp.bitwise_and(c, _i32(xp, 127))
    e = xp.bitwise_right_shift(mag, _i32(xp, 3))
    m = xp.astype(xp.bitwise_and(c, _i32(xp, 7)), xp.float32)
    p = _pow2(xp, e - 10)
    val = xp.where(e == 0, m * (2.0**-9), (m + 8.0) * p)
    val = xp.where(mag == 127, xp.full(val.shape, math.nan, dtype=xp.float32), val)
    return xp.where(c >= 128, -val, val)


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
        d = xp.abs(_round_narrow(xp, v - lv, dist_dtype))
        if best_d is None:
            best_d = d
            best_i = xp.zeros(v.shape, dtype=xp.uint32)
            continue
        better = d < best_d
        best_d = xp.where(better, d, best_d)
        best_i = xp.where(better, xp.full(v.shape, i, dtype=xp.uint32), best_i)
    return best_i


def _from_fp4(xp, codes):
    shape = tuple(codes.shape)
    idx = xp.reshape(xp.astype(codes, xp.int32), (-1,))
    return xp.reshape(xp.take(_f32(xp, _FP4_VALUES), idx, axis=0), shape)


# ---------------------------------------------------------------------------
# quantize / dequantize
# ---------------------------------------------------------------------------


def has_nonfinite(xp, w):
    """True if ``w`` contains NaN or +-inf (returns a Python bool).

    :func:`quantize` does not check; callers that must reject non-finite
    weights (arrayq raises ``QuantizationError``) call this first.  The
    output of :func:`quantize` for non-finite input is unspecified.
    """
    return not bool(xp.all(xp.isfinite(w)))


def quantize(xp, w, group_size=None, bits=None, mode="affine"):
    """Quantize ``w`` exactly like ``mlx.core.quantize`` (MLX CPU backend).

    Args:
        xp: array namespace.
        w: float32, float16 or bfloat16 array of shape ``(..., R, K)``
            (``w.ndim >= 2``); every ``group_size`` consecutive elements of
            the last axis form a group.
        group_size, bits: see :data:`MODES`; ``None`` picks MLX's default.
        mode: ``"affine"``, ``"mxfp4"``, ``"mxfp8"`` or ``"nvfp4"``.

    Returns:
        ``(packed, scales, biases)``:

        * ``packed``: uint32, shape ``(..., R, K * bits // 32)``;
        * ``scales``: shape ``(..., R, K // group_size)``; dtype of ``w`` for
          affine, uint8 codes (e8m0 for mx modes, e4m3 for nvfp4) otherwise;
        * ``biases``: like ``scales`` for affine, ``None`` for other modes.

    Raises:
        TypeError: ``w`` is not float32/float16/bfloat16.
        ValueError: bad mode/bits/group size, ``w.ndim < 2``, or ``K`` not a
            multiple of ``group_size``.

    Non-finite input gives unspecified output (see :func:`has_nonfinite`).
    """
    group_size, bits = default_params(mode, group_size, bits)
    name = _require_float(xp, w.dtype, "w")
    if w.ndim < 2:
        raise ValueError(f"quantize needs an array with at least 2 dimensions, got {w.ndim}")
    k = w.shape[-1]
    if k % group_size:
        raise ValueError(f"last dimension {k} is not divisible by group_size {group_size}")
    lead = tuple(w.shape[:-1])
    n_groups = k // group_size
    wg = xp.reshape(xp.astype(w, xp.float32), lead + (n_groups, group_size))
    if mode == "affine":
        q, scales, biases = _affine_codes(xp, wg, bits)
        packed = pack(xp, xp.reshape(q, lead + (k,)), bits)
        return (
            packed,
            xp.astype(xp.reshape(scales, lead + (n_groups,)), w.dtype),
            xp.astype(xp.reshape(biases, lead + (n_groups,)), w.dtype),
        )
    codes, scale_codes = _fp_codes(xp, wg, bits, mode, w.dtype, name)
    packed = pack(xp, xp.reshape(codes, lead + (k,)), bits)
    return packed, xp.reshape(scale_codes, lead + (n_groups,)), None


def _first_min_zero_sign(xp, wg, w_min):
    """``w_min`` with the sign of zero MLX's sequential ``std::min`` keeps.

    MLX scans a group keeping the first element that compares smallest, so a
    zero minimum carries the sign of the first zero in the group.  Only
    visible for 1-bit affine, where the bias is the group minimum itself.
    """
    is_min = wg == w_min
    neg_min = xp.logical_and(is_min, xp.signbit(wg))
    first = xp.argmax(xp.astype(is_min, xp.int32), axis=-1, keepdims=True)
    first_neg = xp.argmax(xp.astype(neg_min, xp.int32), axis=-1, keepdims=True)
    neg = xp.logical_and(xp.any(neg_min, axis=-1, keepdims=True), first == first_neg)
    zero = xp.where(neg, xp.full(w_min.shape, -0.0, dtype=w_min.dtype), xp.zeros_like(w_min))
    return xp.where(w_min == 0, zero, w_min)


def _affine_codes(xp, wg, bits):
    """Affine quantization of float32 groups ``(..., G, gs)`` (MLX CPU kernel)."""
    n_bins = float((1 << bits) - 1)
    w_max = xp.max(wg, axis=-1, keepdims=True)
    w_min = xp.min(wg, axis=-1, keepdims=True)
    eps = _f32(xp, 1e-7)
    if bits == 1:
        # 1 bit: code 0 -> w_min, code 1 -> w_min + scale (~ w_max)
        scale = xp.maximum(w_max - w_min, eps)
        bias = _first_min_zero_sign(xp, wg, w_min)
        q = xp.clip(xp.round((wg - bias) / scale), 0.0, 1.0)
        return xp.astype(q, xp.uint32), scale, bias
    mask = xp.abs(w_min) > xp.abs(w_max)
    scale = xp.maximum((w_max - w_min) / n_bins, eps)
    scale = xp.where(mask, scale, -scale)
    edge = xp.where(mask, w_min, w_max)
    q0 = xp.round(edge / scale)
    nz = q0 != 0
    one = xp.ones_like(q0)
    zero = xp.zeros_like(q0)
    scale = xp.where(nz, edge / xp.where(nz, q0, one), scale)
    bias = xp.where(nz, edge, zero)
    q = xp.round((wg - bias) / scale)
    # NaN only arises when |edge| is so large that edge/scale overflowed
    # (constant groups with |w| > ~3.4e31); MLX's kernel yields code 0 there.
    q = xp.where(xp.isnan(q), zero, q)
    q = xp.clip(q, 0.0, n_bins)
    return xp.astype(q, xp.uint32), scale, bias


def _fp_codes(xp, wg, bits, mode, dtype, name):
    """Element and scale codes for mxfp4 / mxfp8 / nvfp4 (MLX CPU fallback)."""
    maxval = 6.0 if bits == 4 else 448.0
    amax = xp.max(xp.abs(wg), axis=-1, keepdims=True)
    s = _round_narrow(xp, amax / maxval, dtype)  # computed in w's dtype
    if mode == "nvfp4":
        scale_codes = _to_e4m3(xp, s)
        sd = _from_e4m3(xp, scale_codes)
        # MLX divides by a zero scale here (NaN/inf), and those map to code
        # 0; dividing into 0 instead gives the same codes without warnings.
        zero_sc = sd == 0
        v = wg / xp.where(zero_sc, xp.ones_like(sd), sd)
        v = _round_narrow(xp, xp.where(zero_sc, xp.zeros_like(v), v), dtype)
    else:
        e = _e8m0_exponent(xp, s, name)
        v = _round_narrow(xp, wg / _pow2(xp, e), dtype)
        # MLX casts (e + 127) from int32 to uint8, i.e. modulo 256.
        scale_codes = xp.astype(xp.bitwise_and(e + 127, _i32(xp, 255)), xp.uint8)
    if bits == 4:
        codes = _to_fp4(xp, v, xp.float32 if mode == "nvfp4" else dtype)
    else:
        codes = xp.astype(_to_e4m3(xp, v), xp.uint32)
    return codes, scale_codes[..., 0]


def dequantize(xp, packed, scales, biases=None, group_size=None, bits=None, mode="affine", dtype=None):
    """Dequantize exactly like ``mlx.core.dequantize`` (MLX CPU backend).

    Args:
        xp: array namespace.
        packed: uint32 array ``(..., R, n_words)`` (``ndim >= 2``).
        scales: ``(..., R, n_groups)``; float dtype for affine, uint8 codes
            for the other modes.
        biases: same shape/dtype as ``scales`` for affine; must be ``None``
            for the other modes.
        group_size, bits, mode: as for :func:`quantize`.
        dtype: output dtype (float32/float16/bfloat16).  Default: the scales
            dtype for affine, bfloat16 otherwise (as MLX).

    Returns:
        array ``(..., R, n_words * 32 // bits)`` of ``dtype``.

    Rounding: affine computes ``scale * q`` rounded to the scales dtype, then
    ``+ bias`` rounded again (two roundings), and only then casts to
    ``dtype``.  The fp modes compute ``value * 2**e`` (mx) or
    ``value * e4m3(scale)`` (nv) in ``dtype`` (one rounding; the power of two
    itself is first rounded to ``dtype``, so it may flush to 0 or overflow to
    inf in float16).

    Raises:
        TypeError: wrong dtypes.
        ValueError: bad mode/bits/group size or inconsistent shapes.
    """
    group_size, bits = default_params(mode, group_size, bits)
    if not _same_dtype(xp.uint32, packed.dtype):
        raise TypeError(f"packed must be uint32, got {packed.dtype}")
    if packed.ndim < 2:
        raise ValueError(f"dequantize needs an array with at least 2 dimensions, got {packed.ndim}")
    if tuple(scales.shape[:-1]) != tuple(packed.shape[:-1]) or scales.ndim != packed.ndim:
        raise ValueError(f"scales shape {tuple(scales.shape)} does not match packed shape {tuple(packed.shape)}")
    k = packed.shape[-1] * 32 // bits
    if (packed.shape[-1] * 32) % bits or k != scales.shape[-1] * group_size:
        raise ValueError(
            f"packed shape {tuple(packed.shape)} and scales shape "
            f"{tuple(scales.shape)} are inconsistent with group_size="
            f"{group_size}, bits={bits}"
        )
    lead = tuple(packed.shape[:-1])
    n_groups = scales.shape[-1]
    codes = unpack(xp, packed, bits)
    codes = xp.reshape(codes, lead + (n_groups, group_size))

    if mode == "affine":
        if biases is None:
            raise ValueError("affine dequantization needs biases")
        if tuple(biases.shape) != tuple(scales.shape):
            raise ValueError(f"biases shape {tuple(biases.shape)} != scales shape {tuple(scales.shape)}")
        if not _same_dtype(scales.dtype, biases.dtype):
            raise TypeError("scales and biases must have the same dtype")
        _require_float(xp, scales.dtype, "scales")
        out_dtype = scales.dtype if dtype is None else dtype
        _require_float(xp, out_dtype, "dtype")
        s = xp.expand_dims(xp.astype(scales, xp.float32), axis=-1)
        b = xp.expand_dims(xp.astype(biases, xp.float32), axis=-1)
        t = _round_narrow(xp, xp.astype(codes, xp.float32) * s, scales.dtype)
        t = _round_narrow(xp, t + b, scales.dtype)
        out = xp.astype(xp.astype(t, scales.dtype), out_dtype)
        return xp.reshape(out, lead + (k,))

    if biases is not None:
        raise ValueError(f"{mode} quantization has no biases")
    if not _same_dtype(xp.uint8, scales.dtype):
        raise TypeError(f"{mode} scales must be uint8 codes, got {scales.dtype}")
    out_dtype = xp.bfloat16 if dtype is None else dtype
    out_name = _require_float(xp, out_dtype, "dtype")
    if bits == 4:
        vals = _from_fp4(xp, codes)
    else:
        vals = _from_e4m3(xp, codes)
    if mode == "nvfp4":
        sc = _from_e4m3(xp, scales)  # exactly representable in every dtype
    else:
        sc = _pow2(xp, xp.astype(scales, xp.int32) - 127, out_name)
    out = vals * xp.expand_dims(sc, axis=-1)
    return xp.reshape(xp.astype(out, out_dtype), lead + (k,))


# ---------------------------------------------------------------------------
# reference matmuls
# ---------------------------------------------------------------------------


def _check_quantized_weight(xp, packed, scales, biases, mode, group_size, bits):
    if not _same_dtype(xp.uint32, packed.dtype):
        raise TypeError(f"packed weight must be uint32, got {packed.dtype}")
    if packed.ndim < 2:
        raise ValueError("packed weight must have at least 2 dimensions")
    if scales.ndim != packed.ndim or tuple(scales.shape[:-1]) != tuple(packed.shape[:-1]):
        raise ValueError(f"scales shape {tuple(scales.shape)} does not match packed weight shape {tuple(packed.shape)}")
    if (packed.shape[-1] * 32) % bits or (packed.shape[-1] * 32 // bits != scales.shape[-1] * group_size):
        raise ValueError(
            f"packed weight {tuple(packed.shape)} and scales "
            f"{tuple(scales.shape)} are inconsistent with group_size="
            f"{group_size}, bits={bits}"
        )
    if mode == "affine":
        if biases is None or tuple(biases.shape) != tuple(scales.shape):
            raise ValueError("affine mode needs biases shaped like scales")
    elif biases is not None:
        raise ValueError(f"{mode} mode has no biases")


def _out_dtype(xp, x):
    _require_float(xp, x.dtype, "x")
    return x.dtype


def _rows_per_block(batch, inner, unit, block_rows=None):
    """Output rows per dequantized block in the matmul references.

    Default: as many rows as keep the float32 copy of the block (``batch``
    matrices x rows x ``inner`` x 4 bytes) within ``_BLOCK_BYTES`` (8 MiB),
    at least one unit.  The result is a positive multiple of ``unit``.
    """
    if block_rows is None:
        block = _BLOCK_BYTES // max(1, batch * inner * 4)
    else:
        block = int(block_rows)
        if block < 1:
            raise ValueError(f"block_rows must be positive, got {block_rows}")
    if block < unit:
        return unit
    return block // unit * unit if block_rows is None else -(-block // unit) * unit


def quantized_matmul_reference(
    xp, x, packed, scales, biases=None, *, transpose=True, group_size=None, bits=None, mode="affine", block_rows=None
):
    """Reference for ``mlx.core.quantized_matmul``: ``x @ W.T`` or ``x @ W``.

    ``W`` is the dequantized weight; its logical shape is ``(..., N, K)`` when
    ``transpose`` (packed ``(..., N, K*bits/32)``, scales ``(..., N, K/gs)``)
    and ``(..., K, N)`` otherwise (packed ``(..., K, N*bits/32)``, scales
    ``(..., K, N/gs)``).

    Semantics: ``x @ W(.T)`` accumulated in float32 and cast to ``x.dtype``,
    where ``W`` is the weight dequantized in float32: for affine, scales and
    biases are widened to float32 first and ``scale * q + bias`` is computed in
    float32 (not rounded to the scales dtype as :func:`dequantize` does), as
    MLX's GPU kernels do; fp modes decode exactly.  The weight is dequantized
    block by block along its output dimension (``N``) and multiplied with
    ``x`` cast to float32; the partial results are concatenated.  By default a block holds as many
    rows as keep its float32 copy (over all batch matrices) within 8 MiB;
    ``block_rows`` overrides that.  When ``transpose`` is False blocks are
    whole groups and whole packing periods (e.g. 32 columns for 3-bit).
    Peak extra memory is a small multiple of one block plus the float32
    copies of ``x`` and of the output.

    Args:
        x: float array ``(..., M, K)`` or ``(K,)``.
        packed, scales, biases: quantized weight (see :func:`quantize`);
            leading batch dims broadcast against those of ``x`` like
            ``matmul``.
        transpose, group_size, bits, mode: as in MLX.
        block_rows: optional block size along ``N``.

    Returns:
        array ``broadcast(x_batch, w_batch) + (M, N)`` (``(..., N)`` for 1-D
        ``x``) of dtype ``x.dtype``.

    Differences from MLX 0.32: for affine weights whose scales dtype differs
    from ``x.dtype``, MLX promotes (float16 x with float32 scales gives a
    float32 result) and casts scales/biases to that dtype before
    dequantizing; arrayq keeps ``x.dtype`` and dequantizes in float32.  MLX
    ignores all but the first weight matrix when ``w`` is batched
    but ``x`` has fewer than 3 dimensions; this function broadcasts like
    ``matmul``.  Accumulation order and precision differ (MLX's CPU kernels
    accumulate some paths in the input dtype), so results agree only to
    rounding error.

    Raises:
        TypeError / ValueError: bad dtypes, shapes or quantization params.
    """
    group_size, bits = default_params(mode, group_size, bits)
    _check_quantized_weight(xp, packed, scales, biases, mode, group_size, bits)
    if x.ndim < 1:
        raise ValueError("x must have at least one dimension")
    out_dtype = _out_dtype(xp, x)

    k_cols = packed.shape[-1] * 32 // bits
    if transpose:
        inner, outer = k_cols, packed.shape[-2]
    else:
        inner, outer = packed.shape[-2], k_cols
    if x.shape[-1] != inner:
        raise ValueError(
            f"x has inner dimension {x.shape[-1]} but the quantized weight "
            f"{'(N, K)' if transpose else '(K, N)'} = "
            f"{(outer, inner) if transpose else (inner, outer)} needs {inner}"
        )

    x32 = xp.astype(x, xp.float32)
    deq_dtype = xp.float32

    def widened(a):  # affine scale/bias blocks in float32, so W is computed in float32
        return a if a is None or mode != "affine" else xp.astype(a, xp.float32)

    # Block unit along N: one row when transposed; whole groups and whole
    # packing periods otherwise.
    if transpose:
        unit = 1
    else:
        n_vals, _ = _period(bits)
        unit = group_size * n_vals // math.gcd(group_size, n_vals)
    block = _rows_per_block(_prod(packed.shape[:-2]), inner, unit, block_rows)

    parts = []
    for n0 in range(0, outer, block):
        n1 = min(outer, n0 + block)
        if transpose:
            wb = dequantize(
                xp,
                packed[..., n0:n1, :],
                widened(scales[..., n0:n1, :]),
                None if biases is None else widened(biases[..., n0:n1, :]),
                group_size,
                bits,
                mode,
                deq_dtype,
            )
            wb = xp.matrix_transpose(xp.astype(wb, xp.float32))
        else:
            w0, w1 = n0 * bits // 32, n1 * bits // 32
            g0, g1 = n0 // group_size, n1 // group_size
            wb = dequantize(
                xp,
                packed[..., w0:w1],
                widened(scales[..., g0:g1]),
                None if biases is None else widened(biases[..., g0:g1]),
                group_size,
                bits,
                mode,
                deq_dtype,
            )
            wb = xp.astype(wb, xp.float32)
        parts.append(xp.matmul(x32, wb))
    if not parts:  # N == 0
        out = xp.matmul(x32, xp.zeros((inner, 0), dtype=xp.float32))
    elif len(parts) == 1:
        out = parts[0]
    else:
        out = xp.concat(parts, axis=-1)
    return xp.astype(out, out_dtype)


def gather_qmm_reference(
    xp,
    x,
    packed,
    scales,
    biases=None,
    lhs_indices=None,
    rhs_indices=None,
    *,
    transpose=True,
    group_size=None,
    bits=None,
    mode="affine",
):
    """Reference for ``mlx.core.gather_qmm`` (matrix-level gather + qmm).

    ``x`` has shape ``(*Bx, M, K)`` and the quantized weight ``(*Bw, N, K)``
    (``transpose``) or ``(*Bw, K, N)``, e.g. one matrix per expert.
    ``lhs_indices`` (default ``arange(prod(Bx)).reshape(Bx)``) and
    ``rhs_indices`` (default ``arange(prod(Bw)).reshape(Bw)``) are integer
    arrays of flat indices into the batch dims of ``x`` and ``w``; they are
    broadcast together to a shape ``S`` and

        out[s] = x_flat[lhs[s]] @ W_flat[rhs[s]](.T)

    computed as :func:`quantized_matmul_reference` does.  The gathered
    packed weights are processed in chunks so that temporary copies stay
    bounded.

    Returns:
        array of shape ``S + (M, N)`` and dtype ``x.dtype``.

    Raises:
        TypeError / ValueError: bad dtypes, shapes or parameters, or
        ``x.ndim < 2``.  Out-of-range indices give unspecified results.
    """
    group_size, bits = default_params(mode, group_size, bits)
    _check_quantized_weight(xp, packed, scales, biases, mode, group_size, bits)
    if x.ndim < 2:
        raise ValueError("gather_qmm needs x with at least 2 dimensions")
    out_dtype = _out_dtype(xp, x)
    bx = tuple(x.shape[:-2])
    bw = tuple(packed.shape[:-2])
    nx, nw = _prod(bx), _prod(bw)
    m, kx = x.shape[-2], x.shape[-1]
    x_flat = xp.reshape(x, (nx, m, kx))

    def flat_w(a):
        return None if a is None else xp.reshape(a, (nw,) + tuple(a.shape[-2:]))

    pw, sw, bwt = flat_w(packed), flat_w(scales), flat_w(biases)

    if lhs_indices is None:
        lhs_indices = xp.reshape(xp.arange(nx, dtype=xp.int32), bx)
    if rhs_indices is None:
        rhs_indices = xp.reshape(xp.arange(nw, dtype=xp.int32), bw)
    for name_, ind in (("lhs_indices", lhs_indices), ("rhs_indices", rhs_indices)):
        if not xp.isdtype(ind.dtype, "integral"):
            raise TypeError(f"{name_} must be an integer array, got {ind.dtype}")
    lhs, rhs = xp.broadcast_arrays(lhs_indices, rhs_indices)
    out_batch = tuple(lhs.shape)
    p = _prod(out_batch)
    lhs = xp.reshape(xp.astype(lhs, xp.int32), (p,))
    rhs = xp.reshape(xp.astype(rhs, xp.int32), (p,))

    k_cols = packed.shape[-1] * 32 // bits
    n_out = packed.shape[-2] if transpose else k_cols
    k_in = k_cols if transpose else packed.shape[-2]
    if kx != k_in:
        raise ValueError(f"x has inner dimension {kx} but the quantized weight needs {k_in}")
    if p == 0:
        return xp.zeros(out_batch + (m, n_out), dtype=out_dtype)

    # Chunk the gathered problems so that the per-chunk copies (packed
    # weights, float32 x, float32 output) stay around _BLOCK_BYTES; inside a
    # chunk quantized_matmul_reference bounds the dequantized blocks.
    per_problem = 4 * (_prod(packed.shape[-2:]) + m * kx + m * n_out)
    chunk = max(1, _BLOCK_BYTES // per_problem)
    outs = []
    for p0 in range(0, p, chunk):
        p1 = min(p, p0 + chunk)
        li, ri = lhs[p0:p1], rhs[p0:p1]
        xg = xp.take(x_flat, li, axis=0)
        y = quantized_matmul_reference(
            xp,
            xg,
            xp.take(pw, ri, axis=0),
            xp.take(sw, ri, axis=0),
            None if bwt is None else xp.take(bwt, ri, axis=0),
            transpose=transpose,
            group_size=group_size,
            bits=bits,
            mode=mode,
        )
        outs.append(y)
    out = outs[0] if len(outs) == 1 else xp.concat(outs, axis=0)
    return xp.reshape(out, out_batch + (m, n_out))
