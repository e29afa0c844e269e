"""Argument normalisation shared by the frontend modules."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, overload

from ._dtypes import DType, as_dtype


def ndim_of(x: Any) -> int:
    return len(x.shape)


def normalize_axis(axis: int, ndim: int) -> int:
    """``axis`` as a non-negative int; raises IndexError (array API) when out of range."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an int, got {axis!r}") from None
    if not -ndim <= axis < ndim:  # a 0-d array has no axis at all
        raise IndexError(f"axis {axis} is out of range for an array with {ndim} dimensions")
    return axis % ndim


@overload
def normalize_axes(axis: None, ndim: int) -> None: ...
@overload
def normalize_axes(axis: int | Sequence[int], ndim: int) -> tuple[int, ...]: ...
def normalize_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...] | None:
    """None stays None (all axes); an int or tuple becomes a sorted tuple of non-negative
    ints. Raises IndexError for out-of-range and ValueError for repeated axes."""
    if axis is None:
        return None
    axes = (axis,) if not isinstance(axis, (tuple, list)) else tuple(axis)
    out = tuple(normalize_axis(a, ndim) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"axis {axis} names an axis more than once")
    return tuple(sorted(out))


def maybe_dtype(dtype: Any) -> DType | None:
    return None if dtype is None else as_dtype(dtype)


def shape_tuple(shape: Any) -> tuple[int, ...]:
    """``shape`` (an int or a sequence of ints) as a tuple; raises ValueError for negative sizes."""
    if isinstance(shape, int):
        shape = (shape,)
    out = tuple(operator.index(n) for n in shape)
    if any(n < 0 for n in out):
        raise ValueError(f"shape {out} has a negative size")
    return out
