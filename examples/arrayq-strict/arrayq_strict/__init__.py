"""An arrayq backend for ``array_api_strict`` arrays, written as a third party would.

It implements only the required primitives of ``arrayq.backend.Backend``; every
composite (mean, tensordot, quantize, quantized_matmul, ...) reaches it through arrayq's
reference defaults. array_api_strict has no float16 or bfloat16, so those are declared
gaps, and the conformance suite skips them with the reason.
"""

from __future__ import annotations

import numpy as np

from arrayq import _dtypes as dt
from arrayq.backend import Backend
from arrayq.errors import UnsupportedDTypeError


class StrictBackend(Backend):
    library_module = "array_api_strict"
    install_hint = "pip install array-api-strict"
    default_float = dt.float64
    default_int = dt.int64
    declared_gaps = {
        "float16": "array_api_strict has no float16",
        "bfloat16": "array_api_strict has no bfloat16",
    }

    def __init__(self) -> None:
        import array_api_strict  # imported here, so listing the backend costs nothing

        self.xp = array_api_strict
        self._array_type = type(array_api_strict.asarray(0))

    # data and dtypes
    def is_array(self, x):
        return isinstance(x, self._array_type)

    def native_dtype(self, dtype):
        native = getattr(self.xp, dtype.name, None)
        if native is None or dtype.name in self.declared_gaps:
            raise UnsupportedDTypeError(f"the strict backend has no dtype {dtype.name}")
        return native

    def from_numpy(self, a, device=None):
        self.native_dtype(dt.as_dtype(a.dtype))
        return self.xp.asarray(a)

    def to_numpy(self, x):
        return np.from_dlpack(x)

    def astype(self, x, dtype, copy=True):
        return self.xp.astype(x, self.native_dtype(dtype), copy=copy)

    # creation
    def full(self, shape, fill_value, dtype, device):
        return self.xp.full(shape, fill_value, dtype=self.native_dtype(dtype) if dtype else None)

    def arange(self, start, stop, step, dtype, device):
        return self.xp.arange(start, stop, step, dtype=self.native_dtype(dtype) if dtype else None)

    # elementwise
    def unary(self, op, x):
        return getattr(self.xp, op)(x)

    def binary(self, op, x1, x2):
        return getattr(self.xp, op)(x1, x2)

    def where(self, condition, x1, x2):
        return self.xp.where(condition, x1, x2)

    # reductions
    def reduce(self, op, x, axis, keepdims, dtype):
        extra = {"dtype": self.native_dtype(dtype)} if dtype is not None else {}
        return getattr(self.xp, op)(x, axis=axis, keepdims=keepdims, **extra)

    def argreduce(self, op, x, axis, keepdims):
        return getattr(self.xp, op)(x, axis=axis, keepdims=keepdims)

    def cumulative_sum(self, x, axis, dtype, include_initial):
        return self.xp.cumulative_sum(
            x, axis=axis, dtype=self.native_dtype(dtype) if dtype else None, include_initial=include_initial
        )

    # shapes and indexing
    def reshape(self, x, shape):
        return self.xp.reshape(x, shape)

    def permute_dims(self, x, axes):
        return self.xp.permute_dims(x, axes)

    def broadcast_to(self, x, shape):
        return self.xp.broadcast_to(x, shape)

    def concat(self, arrays, axis):
        return self.xp.concat(arrays, axis=axis)

    def flip(self, x, axis):
        return self.xp.flip(x, axis=axis)

    def take(self, x, indices, axis):
        if indices.ndim == 1:
            return self.xp.take(x, indices, axis=axis)
        # array_api_strict's take wants 1-D indices; take flat, then restore the index shape
        flat = self.xp.take(x, self.xp.reshape(indices, (-1,)), axis=axis)
        return self.xp.reshape(flat, x.shape[:axis] + indices.shape + x.shape[axis + 1 :])

    def take_along_axis(self, x, indices, axis):
        return self.xp.take_along_axis(x, indices, axis=axis)

    # searching, sorting, sets
    def nonzero(self, x):
        return self.xp.nonzero(x)

    def searchsorted(self, x1, x2, side, sorter):
        return self.xp.searchsorted(x1, x2, side=side, sorter=sorter)

    def sort(self, x, axis, descending, stable):
        return self.xp.sort(x, axis=axis, descending=descending, stable=stable)

    def argsort(self, x, axis, descending, stable):
        return self.xp.argsort(x, axis=axis, descending=descending, stable=stable)

    def unique_all(self, x):
        return tuple(self.xp.unique_all(x))

    # linear algebra
    def matmul(self, x1, x2):
        return self.xp.matmul(x1, x2)
