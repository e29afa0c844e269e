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
* Every arithmetic, comparison and bitwise operation on arrays is a call of the namespace
  (``xp.divide(a, b)``, never ``a / b``; Python scalars only as the second operand): on the
  arrayq frontend each is the backend's ``binary``/``unary`` primitive, so a backend's own
  division or multiply-add is the one that runs (tests/test_reference_primitives.py runs
  this code on arrays that have no operators).
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

from ._codecs import _e8m0_exponent, _from_e4m3, _from_fp4, _pow2, _to_e4m3, _to_fp4
from ._common import _f32, _i32, _require_float, _round_narrow, _same_dtype, default_params
from ._packing import pack, unpack


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
    is_min = xp.equal(wg, w_min)
    neg_min = xp.logical_and(is_min, xp.signbit(wg))
    first = xp.argmax(xp.astype(is_min, xp.int32), axis=-1, keepdims=True)
    first_neg = xp.argmax(xp.astype(neg_min, xp.int32), axis=-1, keepdims=True)
    neg = xp.logical_and(xp.any(neg_min, axis=-1, keepdims=True), xp.equal(first, first_neg))
    zero = xp.where(neg, xp.full(w_min.shape, -0.0, dtype=w_min.dtype), xp.zeros_like(w_min))
    return xp.where(xp.equal(w_min, 0), zero, w_min)


def _affine_codes(xp, wg, bits):
    """Affine quantization of float32 groups ``(..., G, gs)`` (MLX CPU kernel)."""
    sub, div = xp.subtract, xp.divide
    n_bins = float((1 << bits) - 1)
    w_max = xp.max(wg, axis=-1, keepdims=True)
    w_min = xp.min(wg, axis=-1, keepdims=True)
    eps = _f32(xp, 1e-7)
    if bits == 1:
        # 1 bit: code 0 -> w_min, code 1 -> w_min + scale (~ w_max)
        scale = xp.maximum(sub(w_max, w_min), eps)
        bias = _first_min_zero_sign(xp, wg, w_min)
        q = xp.clip(xp.round(div(sub(wg, bias), scale)), 0.0, 1.0)
        return xp.astype(q, xp.uint32), scale, bias
    mask = xp.greater(xp.abs(w_min), xp.abs(w_max))
    scale = xp.maximum(div(sub(w_max, w_min), n_bins), eps)
    scale = xp.where(mask, scale, xp.negative(scale))
    edge = xp.where(mask, w_min, w_max)
    q0 = xp.round(div(edge, scale))
    nz = xp.not_equal(q0, 0)
    one = xp.ones_like(q0)
    zero = xp.zeros_like(q0)
    scale = xp.where(nz, div(edge, xp.where(nz, q0, one)), scale)
    bias = xp.where(nz, edge, zero)
    q = xp.round(div(sub(wg, bias), scale))
    # NaN only arises when |edge| is so large that edge/scale overflowed
    # (constant groups with |w| > ~3.4e31); MLX's kernel yields code 0 there.
    q = xp.where(xp.isnan(q), zero, q)
    q = xp.clip(q, 0.0, n_bins)
    return xp.astype(q, xp.uint32), scale, bias


def _fp_codes(xp, wg, bits, mode, dtype, name):
    """Element and scale codes for mxfp4 / mxfp8 / nvfp4 (MLX CPU fallback)."""
    maxval = 6.0 if bits == 4 else 448.0
    amax = xp.max(xp.abs(wg), axis=-1, keepdims=True)
    s = _round_narrow(xp, xp.divide(amax, maxval), dtype)  # computed in w's dtype
    if mode == "nvfp4":
        scale_codes = _to_e4m3(xp, s)
        sd = _from_e4m3(xp, scale_codes)
        # MLX divides by a zero scale here (NaN/inf), and those map to code
        # 0; dividing into 0 instead gives the same codes without warnings.
        zero_sc = xp.equal(sd, 0)
        v = xp.divide(wg, xp.where(zero_sc, xp.ones_like(sd), sd))
        v = _round_narrow(xp, xp.where(zero_sc, xp.zeros_like(v), v), dtype)
    else:
        e = _e8m0_exponent(xp, s, name)
        v = _round_narrow(xp, xp.divide(wg, _pow2(xp, e)), dtype)
        # MLX casts (e + 127) from int32 to uint8, i.e. modulo 256.
        scale_codes = xp.astype(xp.bitwise_and(xp.add(e, 127), _i32(xp, 255)), xp.uint8)
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
        t = _round_narrow(xp, xp.multiply(xp.astype(codes, xp.float32), s), scales.dtype)
        t = _round_narrow(xp, xp.add(t, b), scales.dtype)
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
        sc = _pow2(xp, xp.subtract(xp.astype(scales, xp.int32), 127), out_name)
    out = xp.multiply(vals, xp.expand_dims(sc, axis=-1))
    return xp.reshape(xp.astype(out, out_dtype), lead + (k,))
