"""arrayq's NumPy backend: the reference. Exact, readable, and eager.

Ops follow the array API standard through ``array_api_compat.numpy``; bfloat16 comes from
``ml_dtypes``. NumPy's habit of returning NumPy scalars from 0-d results is undone here,
so every result is an ``numpy.ndarray``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from arrayq import _dtypes as dt
from arrayq.backend import Backend
from arrayq.errors import UnsupportedDTypeError


def _arr(x: Any) -> np.ndarray:
    return x if type(x) is np.ndarray else np.asarray(x)


class NumPyBackend(Backend):
    """The reference backend, on ``numpy.ndarray``."""

    library_module = "numpy"
    install_hint = "pip install numpy array-api-compat ml_dtypes"
    gives_way = True
    default_float = dt.float64
    default_int = dt.int64

    def __init__(self) -> None:
        import array_api_compat.numpy as xp
        import ml_dtypes

        self.xp = xp
        self._native = {
            d: (np.dtype(ml_dtypes.bfloat16) if d.name == "bfloat16" else np.dtype(d.name)) for d in dt.ALL_DTYPES
        }

    # ---- data and dtypes
    def is_array(self, x):
        return isinstance(x, (np.ndarray, np.generic))

    def native_dtype(self, dtype):
        try:
            return self._native[dtype]
        except KeyError:
            raise UnsupportedDTypeError(f"the numpy backend has no dtype {dtype!r}") from None

    def from_numpy(self, a, device=None):
        return np.asarray(a)

    def to_numpy(self, x):
        return np.asarray(x)

    def astype(self, x, dtype, copy=True):
        return _arr(x).astype(self._native[dtype], copy=copy)

    def asarray(self, obj, dtype, device, copy):
        native = None if dtype is None else self._native[dtype]
        if copy is False:
            # only an array (or a buffer) of the right dtype comes through without a copy;
            # ``out is obj`` also covers empty arrays, which share no memory with anything
            out = np.asarray(obj, dtype=native)
            if out is not obj and not np.shares_memory(out, obj):
                raise ValueError("asarray(copy=False) would have to copy; pass copy=None")
            return out
        if dtype is None and not isinstance(obj, (np.ndarray, np.generic)):
            return super().asarray(obj, dtype, device, copy)
        if copy:
            return np.array(obj, dtype=native, copy=True)
        return np.asarray(obj, dtype=native)

    # ---- creation
    def full(self, shape, fill_value, dtype, device):
        return np.full(shape, fill_value, dtype=self._native[dtype] if dtype else None)

    def arange(self, start, stop, step, dtype, device):
        return np.arange(start, stop, step, dtype=self._native[dtype] if dtype else None)

    def eye(self, n_rows, n_cols, k, dtype, device):
        return np.eye(n_rows, n_cols, k, dtype=self._native[dtype or self.default_float])

    def linspace(self, start, stop, num, dtype, device, endpoint):
        return np.linspace(start, stop, num, dtype=self._native[dtype or self.default_float], endpoint=endpoint)

    def tril(self, x, k):
        return np.tril(x, k)

    def triu(self, x, k):
        return np.triu(x, k)

    # ---- elementwise
    def unary(self, op, x):
        return _arr(getattr(self.xp, op)(x))

    def binary(self, op, x1, x2):
        x1, x2 = self._weak_floats(x1, x2)
        return _arr(getattr(self.xp, op)(x1, x2))

    def _weak_floats(self, x1, x2):
        # ml_dtypes' bfloat16 takes no part in NumPy's weak-scalar promotion: bfloat16 and a
        # Python float give float32. The array API keeps the array's dtype; so does this.
        bf16 = self._native[dt.bfloat16]
        if type(x2) is float and getattr(x1, "dtype", None) == bf16:
            x2 = np.asarray(x2, bf16)
        elif type(x1) is float and getattr(x2, "dtype", None) == bf16:
            x1 = np.asarray(x1, bf16)
        return x1, x2

    def where(self, condition, x1, x2):
        return _arr(np.where(condition, x1, x2))

    def square(self, x):
        return _arr(np.square(x))

    def hypot(self, x1, x2):
        return _arr(np.hypot(*self._weak_floats(x1, x2)))

    def logaddexp(self, x1, x2):
        return _arr(np.logaddexp(*self._weak_floats(x1, x2)))

    def clip(self, x, min, max):
        if x.dtype == self._native[dt.bfloat16]:  # NumPy has no clip loop for bfloat16
            return super().clip(x, min, max)
        return _arr(self.xp.clip(x, min, max))

    def erf(self, x):
        # NumPy has no erf; math.erf is exact to float64, so the reference is exact.
        erf = np.frompyfunc(math.erf, 1, 1)
        return np.asarray(erf(x), dtype=np.float64).astype(x.dtype)

    # ---- reductions
    def reduce(self, op, x, axis, keepdims, dtype):
        kwargs = {"dtype": self._native[dtype]} if dtype is not None else {}
        return _arr(getattr(self.xp, op)(x, axis=axis, keepdims=keepdims, **kwargs))

    def argreduce(self, op, x, axis, keepdims):
        return _arr(getattr(self.xp, op)(x, axis=axis, keepdims=keepdims))

    def cumulative_sum(self, x, axis, dtype, include_initial):
        return _arr(
            self.xp.cumulative_sum(
                x, axis=axis, dtype=self._native[dtype] if dtype else None, include_initial=include_initial
            )
        )

    def mean(self, x, axis, keepdims):
        return _arr(np.mean(x, axis=axis, keepdims=keepdims))

    def var(self, x, axis, correction, keepdims):
        return _arr(np.var(x, axis=axis, ddof=correction, keepdims=keepdims))

    def std(self, x, axis, correction, keepdims):
        return _arr(np.std(x, axis=axis, ddof=correction, keepdims=keepdims))

    # ---- shapes and indexing
    def reshape(self, x, shape):
        return np.reshape(x, shape)

    def permute_dims(self, x, axes):
        return np.transpose(x, axes)

    def broadcast_to(self, x, shape):
        return np.broadcast_to(x, shape)

    def concat(self, arrays, axis):
        return np.concatenate(arrays, axis=axis)

    def flip(self, x, axis):
        return _arr(np.flip(x, axis=axis))

    def take(self, x, indices, axis):
        return _arr(np.take(x, indices, axis=axis))

    def take_along_axis(self, x, indices, axis):
        return np.take_along_axis(x, indices, axis=axis)

    def stack(self, arrays, axis):
        return np.stack(arrays, axis=axis)

    def tile(self, x, repetitions):
        return np.tile(x, repetitions)

    def roll(self, x, shift, axis):
        return np.roll(x, shift, axis=axis)

    # ---- searching, sorting, sets
    def nonzero(self, x):
        return tuple(np.nonzero(x))

    def searchsorted(self, x1, x2, side, sorter):
        return _arr(np.searchsorted(x1, x2, side=side, sorter=sorter))

    def sort(self, x, axis, descending, stable):
        return self.xp.sort(x, axis=axis, descending=descending, stable=stable)

    def argsort(self, x, axis, descending, stable):
        return self.xp.argsort(x, axis=axis, descending=descending, stable=stable)

    def unique_all(self, x):
        return tuple(self.xp.unique_all(x))

    # ---- linear algebra
    # NumPy computes bfloat16 products in float32; the array API keeps the operands' dtype.
    def matmul(self, x1, x2):
        return _in_dtype(np.matmul(x1, x2), x1, x2)

    def tensordot(self, x1, x2, axes):
        return _arr(np.tensordot(x1, x2, axes=axes))

    def vecdot(self, x1, x2, axis):
        return _in_dtype(np.vecdot(x1, x2, axis=axis), x1, x2)

    # ---- quantized linear algebra
    def quantized_matmul(self, x, packed, scales, biases, transpose, group_size, bits, mode):
        """Affine weights without batch axes take the fast path in ``_quantized``; other
        formats and batched weights take the blockwise reference."""
        if mode != "affine" or packed.ndim != 2:
            return super().quantized_matmul(x, packed, scales, biases, transpose, group_size, bits, mode)
        from ._quantized import affine_matmul

        x2d = x.reshape(-1, x.shape[-1]).astype(np.float32)
        out = affine_matmul(x2d, packed, scales, biases, transpose, group_size, bits)
        return out.reshape(*x.shape[:-1], out.shape[-1]).astype(x.dtype, copy=False)


def _in_dtype(out: Any, *operands: Any) -> np.ndarray:
    dtype = np.result_type(*operands)
    return _arr(out) if out.dtype == dtype else _arr(out).astype(dtype)
