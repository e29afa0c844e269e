"""Error-minimising affine scales and biases, on the host in NumPy float64 (method="mse").

Every function works on groups laid out as rows: ``w`` (M, g) float64 holds M groups of g
values. Nothing here changes MLX's affine format: a group is still ``scale * code + bias``
with codes in [0, 2**bits - 1], the scale and bias stored in the weight's dtype ``T`` and
dequantized as MLX does, ``RN_T(RN_T(code * scale) + bias)`` (docs/quantization-formats.md,
3.3). Only the choice of scale and bias differs from MLX's round-to-nearest (rtn):

1. a grid of clipping ranges: each end of the group's [min, max] moves inwards by a
   fraction of the range (``CLIP_FRACTIONS``, every pair), the range split into 2**bits - 1
   steps, the codes rounded to nearest; the pair with the least squared error wins;
2. alternating refits (``REFITS``): with the codes fixed, the least-squares scale and bias
   (a straight-line fit of the values on the codes); with those fixed, the nearest codes
   again. Neither half can raise the error, so the error only falls;
3. the scale and bias are rounded to ``T``, the codes recomputed for the stored values, and
   the group's exact dequantization error compared with rtn's: a group keeps rtn's scale,
   bias and codes unless the search is strictly better. So the result is never worse than
   rtn on any group, by construction.

The squared error may be weighted per value (``weight``, e.g. the mean squared activation
of each input feature): GPTQ (``_gptq``) fits its groups that way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Fractions of a group's range by which each end may be clipped (the grid is every pair):
#: 0 is rtn's full range, 0.3 clips 30% of it at that end. On MiniLM's weights a grid four
#: times finer lowers the squared error by under 1% more (0.794 of rtn's against 0.799 at
#: 4 bits) at four times the cost.
CLIP_FRACTIONS = np.linspace(0.0, 0.3, 13)
#: Alternating least-squares refits after the grid (each one cannot raise the error).
REFITS = 4
#: The smallest step tried: a group whose values are (nearly) all equal gets this step,
#: all codes 0 and the bias as its value.
_TINY = 1e-30


def narrow_dtype(name: str) -> Any:
    """The NumPy dtype of the weight dtype ``name`` (float32, float16 or bfloat16)."""
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def to_stored(x: np.ndarray, dtype: Any) -> np.ndarray:
    """``x`` rounded to the stored dtype (through float32, as MLX rounds), back in float64."""
    return x.astype(np.float32).astype(dtype).astype(np.float64)


def codes(w: np.ndarray, scale: np.ndarray, bias: np.ndarray, n: int) -> np.ndarray:
    """The nearest codes in [0, n] of ``w`` for ``scale * code + bias`` (float64); a zero
    scale gives code 0 (the bias is then every value)."""
    safe = np.where(scale == 0, 1.0, scale)
    q = np.clip(np.rint((w - bias) / safe), 0, n)
    return np.where(scale == 0, 0.0, q)


def dequantized(q: np.ndarray, scale: np.ndarray, bias: np.ndarray, dtype: Any) -> np.ndarray:
    """MLX's affine dequantization of codes ``q`` with stored ``scale``/``bias`` (values of
    ``dtype``), bit for bit: ``RN_T(RN_T(q * scale) + bias)`` in float32 arithmetic, which
    is exact ``T`` arithmetic (docs/quantization-formats.md, 3.3); returned as float64."""
    t = (q.astype(np.float32) * scale.astype(np.float32)).astype(dtype).astype(np.float32)
    return (t + bias.astype(np.float32)).astype(dtype).astype(np.float64)


def _error(w: np.ndarray, h: np.ndarray, scale: np.ndarray, bias: np.ndarray, n: int) -> np.ndarray:
    """Weighted squared error per group of the nearest codes, in exact arithmetic (M, 1)."""
    d = w - (scale * codes(w, scale, bias, n) + bias)
    return np.sum(h * d * d, axis=-1, keepdims=True)


def _refit(w: np.ndarray, h: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The weighted least-squares (scale, bias) of ``w ~ scale * q + bias`` per group, and
    where it exists (the codes not all equal, a positive scale)."""
    s0, s1, s2 = (np.sum(h * q**k, axis=-1, keepdims=True) for k in (0, 1, 2))
    t0, t1 = np.sum(h * w, axis=-1, keepdims=True), np.sum(h * q * w, axis=-1, keepdims=True)
    det = s0 * s2 - s1 * s1
    ok = det > 1e-12 * np.maximum(s0 * s2, _TINY)
    scale = np.where(ok, (s0 * t1 - s1 * t0) / np.where(ok, det, 1.0), 0.0)
    bias = (t0 - scale * s1) / np.maximum(s0, _TINY)
    return scale, bias, ok & (scale > 0)


def fit(w: np.ndarray, bits: int, weight: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The (scale, bias) per group, each (M, 1) float64 and not yet rounded to the stored
    dtype, minimising the (weighted) squared error of ``w`` (M, g) over the clipping grid
    and the refits (see the module's docstring). ``weight``: (g,) or (M, g) non-negative."""
    n = (1 << bits) - 1
    h = np.ones_like(w) if weight is None else np.broadcast_to(weight, w.shape)
    lo, hi = w.min(axis=-1, keepdims=True), w.max(axis=-1, keepdims=True)
    span = hi - lo
    best: tuple[np.ndarray, ...] = (np.full_like(lo, np.inf), np.zeros_like(lo), np.zeros_like(lo))
    for a, c in ((a, c) for a in CLIP_FRACTIONS for c in CLIP_FRACTIONS):
        low = lo + a * span
        scale = np.maximum((hi - c * span - low) / n, _TINY)
        best = _keep_better(best, _error(w, h, scale, low, n), scale, low)
    for _ in range(REFITS):
        scale, bias, ok = _refit(w, h, codes(w, best[1], best[2], n))
        err = np.where(ok, _error(w, h, np.where(ok, scale, 1.0), bias, n), np.inf)
        best = _keep_better(best, err, scale, bias)
    return best[1], best[2]


def _keep_better(
    best: tuple[np.ndarray, ...], err: np.ndarray, scale: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, ...]:
    better = err < best[0]
    return np.where(better, err, best[0]), np.where(better, scale, best[1]), np.where(better, bias, best[2])


def stored_group(w: np.ndarray, scale: np.ndarray, bias: np.ndarray, bits: int, dtype: Any) -> tuple[np.ndarray, ...]:
    """(codes, stored scale, stored bias) for the float64 (scale, bias) of groups ``w``: the
    pair rounded to ``dtype`` and the nearest codes for the rounded pair."""
    scale, bias = to_stored(scale, dtype), to_stored(bias, dtype)
    ok = np.isfinite(scale) & np.isfinite(bias)  # float16 overflows first
    scale, bias = np.where(ok, scale, 0.0), np.where(ok, bias, 0.0)
    return codes(w, scale, bias, (1 << bits) - 1), scale, bias


def group_error(w: np.ndarray, q: np.ndarray, scale: np.ndarray, bias: np.ndarray, dtype: Any) -> np.ndarray:
    """Squared error per group (M, 1) of MLX's exact dequantization against ``w``."""
    d = w - dequantized(q, scale, bias, dtype)
    return np.sum(d * d, axis=-1, keepdims=True)


#: Groups searched at once: about 1M values, so the search's float64 temporaries stay near 100 MiB.
_CHUNK_VALUES = 1 << 20


def mse(w: np.ndarray, rtn: tuple[np.ndarray, ...], bits: int, group_size: int, dtype: Any) -> tuple[np.ndarray, ...]:
    """method="mse" on ``w`` (R, K) float64: (codes (R, K), scales (R, G), biases (R, G)),
    float64 holding values of the stored ``dtype``. ``rtn``: MLX's own three arrays for the
    same ``w``; a group keeps them unless the search's exact error is strictly smaller."""
    rows, k = w.shape
    groups = w.reshape(-1, group_size)
    old = (rtn[0].reshape(-1, group_size), rtn[1].reshape(-1, 1), rtn[2].reshape(-1, 1))
    step = max(1, _CHUNK_VALUES // group_size)
    parts = []
    for i in range(0, groups.shape[0], step):
        chunk, (q0, s0, b0) = groups[i : i + step], (a[i : i + step] for a in old)
        q1, s1, b1 = stored_group(chunk, *fit(chunk, bits), bits, dtype)
        better = group_error(chunk, q1, s1, b1, dtype) < group_error(chunk, q0, s0, b0, dtype)
        parts.append(pick(better, (q1, s1, b1), (q0, s0, b0)))
    q, scale, bias = (np.concatenate([p[j] for p in parts]) for j in range(3))
    return q.reshape(rows, k), scale.reshape(rows, -1), bias.reshape(rows, -1)


def pick(better: np.ndarray, new: tuple[np.ndarray, ...], old: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Per group (or row), ``new``'s arrays where ``better`` (M, 1) holds, else ``old``'s."""
    return tuple(np.where(better, a, b) for a, b in zip(new, old))
