"""The ``method=`` of :func:`arrayq.quantize`: how affine scales, biases and codes are chosen.
The format written is MLX's in every case; only the choice differs.

* ``"rtn"``: MLX's round-to-nearest, bit for bit (the backend's quantize or the reference).
* ``"mse"``: per group, a search over clipping ranges and least-squares refits minimising
  the group's squared dequantization error, never worse than rtn on any group (``_search``).
* ``"gptq"``: calibrated on inputs X, column-by-column rounding with error feedback through
  ``inv(X^T X)``, group scales chosen when each group starts; per output row never worse
  than rtn on the calibration inputs (``_gptq``). With ``float_calibration`` (the float
  model's inputs on the same samples) it fits the float model's outputs instead.

The searches run once, offline, on the host in NumPy float64: the weight (and calibration)
are copied to the host, and the result goes back to the weight's backend and device.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _dtypes as dt
from .._dispatch import backend_of
from ..errors import QuantizationError
from . import _gptq, _search
from ._packing import pack, unpack

#: The methods quantize accepts, and what each needs.
METHODS = {
    "rtn": "MLX's round-to-nearest (the default; bit-exact with mlx.core.quantize)",
    "mse": "per-group search for the scale and bias of least squared error (affine only)",
    "gptq": "GPTQ error feedback on calibration inputs, calibration=X of shape (n_samples, K) (affine only)",
}


def check_method(method: Any, mode: str, calibration: Any, float_calibration: Any = None, damping: Any = None) -> None:
    """QuantizationError unless ``method`` is known, fits ``mode``, and has the calibration
    it needs (and only then); ``float_calibration`` goes with gptq's ``calibration`` only,
    and ``damping`` (None, or a finite number above 0) with gptq only."""
    if not isinstance(method, str) or method not in METHODS:
        raise QuantizationError(f"unknown quantization method {method!r}; use one of {list(METHODS)}")
    if method != "rtn" and mode != "affine":
        raise QuantizationError(
            f"method {method!r} chooses affine scales and biases; mode {mode!r} has fixed scale codes: "
            f"use method='rtn' with mode {mode!r}, or mode='affine'"
        )
    if method == "gptq" and calibration is None:
        raise QuantizationError(
            "method 'gptq' needs calibration=X: the layer's inputs, shape (n_samples, K) with K the weight's "
            "last dimension (e.g. the activations that reach this Linear on a few hundred tokens)"
        )
    if method != "gptq" and (calibration is not None or float_calibration is not None):
        raise QuantizationError(f"calibration is used by method 'gptq' only, not by {method!r}; drop it")
    if damping is not None and method != "gptq":
        raise QuantizationError(f"damping is used by method 'gptq' only, not by {method!r}; drop it")
    if damping is not None and (
        isinstance(damping, bool)
        or not isinstance(damping, (int, float))
        or not (math.isfinite(damping) and damping > 0)
    ):
        raise QuantizationError(
            f"damping must be a finite number above 0 (H's diagonal is scaled by 1 + damping), got {damping!r}"
        )
    if float_calibration is not None and calibration is None:
        raise QuantizationError(
            "float_calibration (the float model's inputs) goes with calibration=X (the same samples' inputs in the "
            "model being quantized); pass both, or pass the float inputs as calibration alone"
        )


def host_calibration(calibration: Any, cols: int) -> np.ndarray:
    """The calibration inputs as a float64 NumPy array (n, cols), checked: an array of a
    loaded backend, 2-D, at least one sample, last axis ``cols``, real numbers, finite."""
    try:
        backend = backend_of(calibration)
    except TypeError:
        backend = None
    if backend is None:
        raise QuantizationError(
            f"calibration must be an array (NumPy, MLX, ...), got {type(calibration).__name__}; "
            "convert it with arrayq.asarray"
        )
    x = np.asarray(backend.to_numpy(calibration))
    if x.dtype.kind not in "fiu" and x.dtype.name != "bfloat16":
        raise QuantizationError(f"calibration must hold real numbers, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[1] != cols or x.shape[0] == 0:
        raise QuantizationError(
            f"calibration must have shape (n_samples, {cols}) with n_samples >= 1 (the inputs x of "
            f"x @ w.T, one row per sample), got {x.shape}; reshape (..., {cols}) activations to (-1, {cols})"
        )
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise QuantizationError("calibration holds NaN or inf; pass finite inputs")
    return x


def host_float_calibration(float_calibration: Any, x: np.ndarray) -> np.ndarray:
    """``float_calibration`` checked as :func:`host_calibration` and against the calibration
    ``x``: one row per sample of ``x``, so the same shape."""
    xf = host_calibration(float_calibration, x.shape[1])
    if xf.shape != x.shape:
        raise QuantizationError(
            f"float_calibration must hold the same samples as calibration, row for row: shape {x.shape}, got {xf.shape}"
        )
    return xf


def run(
    backend: Any,
    w: Any,
    rtn: tuple,
    group_size: int,
    bits: int,
    method: str,
    x: Any,
    xf: Any = None,
    damping: float | None = None,
) -> tuple:
    """(packed, scales, biases) on ``w``'s backend and device for ``method`` ("mse" or
    "gptq"), given MLX's rtn result ``rtn`` = (packed, scales, biases) for the same ``w``
    (..., R, K); ``x``: the host calibration (n, K) for gptq, else None; ``xf``: the host
    float calibration (n, K) or None; ``damping``: gptq's, None for its default."""
    shape = tuple(int(d) for d in w.shape)
    rows, k = int(np.prod(shape[:-1])), shape[-1]
    groups = k // group_size
    wdt = dt.as_dtype(w.dtype)
    stored_dtype = _search.narrow_dtype(wdt.name)

    def host(a: Any, width: int) -> np.ndarray:
        return np.asarray(backend.to_numpy(a)).astype(np.float64).reshape(rows, width)

    rtn_codes = unpack(np, np.asarray(backend.to_numpy(rtn[0])).reshape(rows, -1), bits).astype(np.float64)
    before = (rtn_codes, host(rtn[1], groups), host(rtn[2], groups))
    if method == "gptq":
        damp = _gptq.DAMPING if damping is None else float(damping)
        q, scales, biases = _gptq.gptq(host(w, k), x, before, bits, group_size, stored_dtype, xf, damp)
    else:
        q, scales, biases = _search.mse(host(w, k), before, bits, group_size, stored_dtype)
    device = backend.device_of(w)

    def on_backend(a: np.ndarray) -> Any:  # values of the weight's dtype: sent as float32, cast exactly
        return backend.astype(backend.from_numpy(a.reshape(shape[:-1] + (groups,)).astype(np.float32), device), wdt)

    packed = pack(np, q.reshape(shape).astype(np.uint32), bits)
    return backend.from_numpy(packed, device), on_backend(scales), on_backend(biases)
