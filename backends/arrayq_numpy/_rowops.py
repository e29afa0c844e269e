"""The NumPy backend's float32 row kernels (``csrc/rowops.c``): rms_norm, rope and swiglu,
one native pass each instead of four to ten NumPy calls, for what a decode step spends
its time on outside the quantized matmuls; and two fused steps of a decoder layer,
qkv_heads (a fused projection's heads, normed and rotated) and add_rms_norm (a residual
sum and its norm), each one call in place of a dozen and of two.

Each function returns None where the kernels do not take the call (native kernels not
built or turned off by ``ARRAYQ_NATIVE``, a dtype other than float32, an empty array, rope
on more than 4 axes); the backend then runs its NumPy path or the reference. Layouts the
kernels cannot read through strides (a last axis that is not contiguous, negative strides)
are copied first. Precision (docs/native-kernels.md): rope is the NumPy path's arithmetic,
operation for operation; rms_norm sums the squares in float64 (more accurate than the
float32 NumPy path); swiglu is the frontend's silu formula in float32 with a polynomial
exp (within 2 ulp); qkv_heads and add_rms_norm are bit for bit rms_norm and rope, and an
add and rms_norm, of these kernels.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from . import _native


@functools.cache
def _runs() -> bool:
    """Whether the row kernels are in use: the native kernels are (``ARRAYQ_NATIVE``) and
    this build has them."""
    return _native._chosen_level() is not None and hasattr(_native._kernels, "swiglu")


@functools.lru_cache(maxsize=8)
def rope_tables(dims: int, base: float, scale: float, offset: int, length: int, dtype: Any) -> tuple[Any, Any]:
    """``arrayq.nn.rope_tables``, read-only and remembered: a decoder's layers rotate q and
    k at the same positions (56 calls a token for qwen3-0.6b, one set of tables)."""
    from arrayq.nn import rope_tables

    tables = rope_tables(dims, base, scale, offset, length, dtype)
    for t in tables:
        t.setflags(write=False)
    return tables


def _rows(a: np.ndarray, width: int) -> np.ndarray | None:
    """``a`` as float32 (rows, width) with a contiguous last axis and non-negative strides,
    without a copy where NumPy can view it so (a copy where it cannot); None for another
    dtype or an empty array."""
    if a.dtype != np.float32 or a.size == 0:
        return None
    rows = a.reshape(-1, width)
    if rows.flags.carray:  # (decode's case: no more checks)
        return rows
    if rows.strides[1] != 4 and width > 1 or min(rows.strides) < 0 or not rows.flags.aligned:
        rows = np.require(rows, requirements=["C", "A"])  # (ascontiguousarray keeps a misaligned one)
    return rows


def rms_norm(x: np.ndarray, weight: np.ndarray | None, eps: float) -> np.ndarray | None:
    """``x / sqrt(mean(x**2, axis=-1) + eps) * weight`` for float32 x (..., D) with weight
    None or float32 (D,); a new C-contiguous array of x's shape, or None (see the module)."""
    if not _runs() or x.ndim == 0 or (weight is not None and (weight.dtype != np.float32 or weight.ndim != 1)):
        return None
    rows = _rows(x, x.shape[-1])
    if rows is None:
        return None
    out = np.empty(rows.shape, np.float32)
    w = weight if weight is None or weight.flags.c_contiguous else np.ascontiguousarray(weight)
    _native._kernels.rms_norm(rows, w, out, eps)
    return out.reshape(x.shape)


def rope(x: np.ndarray, dims: int, traditional: bool, cos: np.ndarray, sin: np.ndarray) -> np.ndarray | None:
    """float32 x (..., L, D), 2 to 4 axes, with its first ``dims`` features rotated by the
    float32 (L, dims/2) tables (``arrayq.nn.rope_tables``): a new C-contiguous array of
    x's shape, or None (see the module)."""
    if not _runs() or x.dtype != np.float32 or not 2 <= x.ndim <= 4 or x.size == 0 or cos.dtype != np.float32:
        return None
    x4 = x.reshape((1,) * (4 - x.ndim) + x.shape)  # (a view: only leading axes of one added)
    if x4.strides[-1] != 4 or min(x4.strides) < 0 or not x4.flags.aligned:
        x4 = np.require(x4, requirements=["C", "A"])
    out = np.empty(x4.shape, np.float32)
    _native._kernels.rope(x4, cos, sin, out, int(dims), bool(traditional))
    return out.reshape(x.shape)


def swiglu(gate: np.ndarray, up: np.ndarray) -> np.ndarray | None:
    """``silu(gate) * up`` for float32 gate and up of one shape (..., N): a new C-contiguous
    array of that shape, or None (see the module)."""
    if not _runs() or gate.shape != up.shape or gate.ndim == 0:
        return None
    g, u = _rows(gate, gate.shape[-1]), _rows(up, up.shape[-1])
    if g is None or u is None:
        return None
    out = np.empty(gate.shape, np.float32)
    _native._kernels.swiglu(g, u, out.reshape(g.shape))
    return out


def qkv_heads(
    qkv: np.ndarray,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    q_weight: np.ndarray,
    k_weight: np.ndarray,
    eps: float,
    dims: int,
    traditional: bool,
    cos: np.ndarray,
    sin: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """q (B, n_heads, L, head_dim), k and v (B, n_kv_heads, L, head_dim) from float32 qkv
    (B, L, (n_heads + 2 n_kv_heads) * head_dim) (shapes checked by the caller): q's and k's
    heads RMS-normed with the float32 (head_dim,) weights and rotated by the float32
    (L, dims/2) tables, v's heads copied; new C-contiguous arrays, or None (see the module)."""
    f32 = np.float32  # (plain comparisons: this runs 28 times a token)
    if not _runs() or q_weight.dtype != f32 or k_weight.dtype != f32 or cos.dtype != f32:
        return None
    rows = _rows(qkv, qkv.shape[-1])
    if rows is None:
        return None
    b, length = qkv.shape[:2]
    q = np.empty((b, n_heads, length, head_dim), f32)
    k, v = np.empty((b, n_kv_heads, length, head_dim), f32), np.empty((b, n_kv_heads, length, head_dim), f32)
    weights = [w if w.flags.c_contiguous else np.ascontiguousarray(w) for w in (q_weight, k_weight)]
    _native._kernels.qkv_heads(rows, *weights, cos, sin, q, k, v, eps, int(dims), bool(traditional))
    return q, k, v


def add_rms_norm(
    x: np.ndarray, y: np.ndarray, weight: np.ndarray | None, eps: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(x + y, rms_norm(x + y))`` for float32 x and y of one shape (..., D) and weight None
    or float32 (D,): two new C-contiguous arrays of x's shape, or None (see the module)."""
    if not _runs() or x.ndim == 0 or (weight is not None and weight.dtype != np.float32):
        return None
    xs, ys = _rows(x, x.shape[-1]), _rows(y, y.shape[-1])
    if xs is None or ys is None:
        return None
    total, out = np.empty(xs.shape, np.float32), np.empty(xs.shape, np.float32)
    w = weight if weight is None or weight.flags.c_contiguous else np.ascontiguousarray(weight)
    _native._kernels.add_rms_norm(xs, ys, w, total, out, eps)
    return total.reshape(x.shape), out.reshape(x.shape)


#: Elements from which :func:`to_half` takes a float32 -> float16 conversion (below, NumPy's
#: own costs less than checking the kernels' setting)
TO_HALF_MIN = 256


def to_half(x: Any) -> np.ndarray | None:
    """``x.astype(float16)`` for a C-contiguous float32 array of at least TO_HALF_MIN
    elements by the CPU's F16C conversion (a float16 KV cache's writes: NumPy converts some
    5 ns an element), the same values (rounded to nearest, ties to even; past float16's
    range, infinity without NumPy's overflow warning); None where the
    kernels do not run, the CPU lacks F16C or x holds a NaN (NumPy's conversion keeps NaN
    payload bits F16C does not): the caller converts then."""
    if x.size < TO_HALF_MIN or not x.flags.c_contiguous or not _runs() or not x.flags.aligned:
        return None
    out = np.empty(x.shape, np.float16)
    return out if _native._kernels.to_half(x.reshape(-1), out.reshape(-1)) else None
