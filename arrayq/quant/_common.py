"""Constants and small helpers shared by the format code (every function takes the array
namespace ``xp`` first and uses only array API functions on it; see ``_formats``)."""

from __future__ import annotations

import math

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
