"""An arrayq backend for ``array_api_strict`` arrays, written as a third party would.

It implements only the required primitives of ``arrayq.backend.Backend``; every
composite (mean, tensordot, quantize, quantized_matmul, ...) reaches it through arrayq's
reference defaults. array_api_strict has no float16 or bfloat16, so those are declared
gaps, and the conformance suite skips them with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from arrayq.backend import Array, Backend, UnsupportedDTypeError
from arrayq.backend import dtypes as dt


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
    def is_array(self, x: Any) -> bool:
        return isinstance(x, self._array_type)

    def native_dtype(self, dtype: dt.DType) -> Any:
        native = getattr(self.xp, dtype.name, None)
        if native is None or dtype.name in self.declared_gaps:
            raise UnsupportedDTypeError(f"the strict backend has no dtype {dtype.name}")
        return native

    def from_numpy(self, a: Any, device: Any = None) -> Array:
        self.native_dtype(dt.as_dtype(a.dtype))
        return self.xp.asarray(a)

    def to_numpy(self, x: Array) -> Any:
        return np.from_dlpack(x)

    def astype(self, x: Array, dtype: dt.DType, copy: bool = True) -> Array:
        return self.xp.astype(x, self.native_dtype(dtype), copy=copy)

    # creation
    def full(self, shape: tuple[int, ...], fill_value: Any, dtype: dt.DType | None, device: Any) -> Array:
        return self.xp.full(shape, fill_value, dtype=self.native_dtype(dtype) if dtype else None)

    def arange(self, start: Any, stop: Any, step: Any, dtype: dt.DType | None, device: Any) -> Array:
        return self.xp.arange(start, stop, step, dtype=self.native_dtype(dtype) if dtype else None)

    # elementwise
    def unary(self, op: str, x: Array) -> Array:
        return getattr(self.xp, op)(x)

    def binary(self, op: str, x1: Array, x2: Array) -> Array:
        return getattr(self.xp, op)(x1, x2)

    def where(self, condition: Array, x1: Array, x2: Array) -> Array:
        return self.xp.where(condition, x1, x2)

    # reductions
    def reduce(self, op: str, x: Array, axis: tuple[int, ...] | None, keepdims: bool, dtype: dt.DType | None) -> Array:
        extra = {"dtype": self.native_dtype(dtype)} if dtype is not None else {}
        return getattr(self.xp, op)(x, axis=axis, keepdims=keepdims, **extra)

    def argreduce(self, op: str, x: Array, axis: int | None, keepdims: bool) -> Array:
        return getattr(self.xp, op)(x, axis=axis, keepdims=keepdims)

    def cumulative_sum(self, x: Array, axis: int, dtype: dt.DType | None, include_initial: bool) -> Array:
        return self.xp.cumulative_sum(
            x, axis=axis, dtype=self.native_dtype(dtype) if dtype else None, include_initial=include_initial
        )

    # shapes and indexing
    def reshape(self, x: Array, shape: tuple[int, ...]) -> Array:
        return self.xp.reshape(x, shape)

    def permute_dims(self, x: Array, axes: tuple[int, ...]) -> Array:
        return self.xp.permute_dims(x, axes)

    def broadcast_to(self, x: Array, shape: tuple[int, ...]) -> Array:
        return self.xp.broadcast_to(x, shape)

    def concat(self, arrays: Sequence[Array], axis: int | None) -> Array:
        return self.xp.concat(list(arrays), axis=axis)

    def flip(self, x: Array, axis: tuple[int, ...] | None) -> Array:
        return self.xp.flip(x, axis=axis)

    def take(self, x: Array, indices: Array, axis: int) -> Array:
        if indices.ndim == 1:
            return self.xp.take(x, indices, axis=axis)
        # array_api_strict's take wants 1-D indices; take flat, then restore the index shape
        flat = self.xp.take(x, self.xp.reshape(indices, (-1,)), axis=axis)
        return self.xp.reshape(flat, x.shape[:axis] + indices.shape + x.shape[axis + 1 :])

    def take_along_axis(self, x: Array, indices: Array, axis: int) -> Array:
        return self.xp.take_along_axis(x, indices, axis=axis)

    # searching, sorting, sets
    def nonzero(self, x: Array) -> tuple[Array, ...]:
        return self.xp.nonzero(x)

    def searchsorted(self, x1: Array, x2: Array, side: str, sorter: Array | None) -> Array:
        return self.xp.searchsorted(x1, x2, side="right" if side == "right" else "left", sorter=sorter)

    def sort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        return self.xp.sort(x, axis=axis, descending=descending, stable=stable)

    def argsort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        return self.xp.argsort(x, axis=axis, descending=descending, stable=stable)

    def unique_all(self, x: Array) -> tuple[Array, Array, Array, Array]:
        values, indices, inverse, counts = self.xp.unique_all(x)
        return values, indices, inverse, counts

    # linear algebra
    def matmul(self, x1: Array, x2: Array) -> Array:
        return self.xp.matmul(x1, x2)
