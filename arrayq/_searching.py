"""Searching, sorting and set functions (array API chapters of those names). Functions
whose output shape depends on the data (``nonzero``, ``unique_*``) are a declared gap on
backends that cannot produce such shapes."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from ._dispatch import resolve
from ._helpers import normalize_axis


class _ArgReduction(Protocol):
    __name__: str

    def __call__(self, x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any: ...


def _arg(name: str) -> _ArgReduction:
    def arg(x: Any, /, *, axis: int | None = None, keepdims: bool = False) -> Any:
        backend, (x,) = resolve(x)
        if axis is not None:
            axis = normalize_axis(axis, len(x.shape))
        if (x.shape[axis] if axis is not None else _size(x)) == 0:
            raise ValueError(f"{name} of an empty array has no answer; got shape {tuple(x.shape)}")
        return backend.argreduce(name, x, axis, keepdims)

    arg.__name__ = arg.__qualname__ = name
    arg.__doc__ = (
        f"Index of the first {name[3:]}imum of ``x`` along ``axis`` (None: in the "
        "flattened array), in the default integer dtype. ValueError for an empty array."
    )
    return arg


def _size(x: Any) -> int:
    n = 1
    for s in x.shape:
        n *= int(s)
    return n


argmax = _arg("argmax")
argmin = _arg("argmin")


def where(condition: Any, x1: Any, x2: Any, /) -> Any:
    """``x1`` where ``condition`` is true, else ``x2``; the three broadcast together."""
    backend, (condition, x1, x2) = resolve(condition, x1, x2)
    return backend.where(condition, x1, x2)


def nonzero(x: Any, /) -> tuple:
    """Indices of the non-zero elements: one 1-D integer array per axis of ``x`` (x at
    least 1-D, ValueError for 0-d)."""
    backend, (x,) = resolve(x)
    if len(x.shape) == 0:
        raise ValueError("nonzero needs an array of at least one dimension")
    return backend.nonzero(x)


def searchsorted(x1: Any, x2: Any, /, *, side: str = "left", sorter: Any = None) -> Any:
    """Indices where the values ``x2`` would go in sorted 1-D ``x1`` (or ``x1[sorter]``)
    to keep it sorted; ``side`` "left" or "right" for ties."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    backend, (x1, x2, sorter) = resolve(x1, x2, sorter)
    if len(x1.shape) != 1:
        raise ValueError(f"searchsorted needs a 1-D x1, got shape {tuple(x1.shape)}")
    return backend.searchsorted(x1, x2, side, sorter)


def sort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    """``x`` sorted along ``axis`` (NaNs last)."""
    backend, (x,) = resolve(x)
    return backend.sort(x, normalize_axis(axis, len(x.shape)), descending, stable)


def argsort(x: Any, /, *, axis: int = -1, descending: bool = False, stable: bool = True) -> Any:
    """Indices that sort ``x`` along ``axis``; with ``stable``, equal elements keep order."""
    backend, (x,) = resolve(x)
    return backend.argsort(x, normalize_axis(axis, len(x.shape)), descending, stable)


class UniqueAllResult(NamedTuple):
    """What :func:`unique_all` returns (a tuple with these field names, as the array API asks)."""

    values: Any
    indices: Any
    inverse_indices: Any
    counts: Any


class UniqueCountsResult(NamedTuple):
    """What :func:`unique_counts` returns."""

    values: Any
    counts: Any


class UniqueInverseResult(NamedTuple):
    """What :func:`unique_inverse` returns."""

    values: Any
    inverse_indices: Any


def unique_all(x: Any, /) -> UniqueAllResult:
    """(values, indices, inverse_indices, counts) of the sorted distinct values of ``x``:
    first-occurrence indices into flattened x, inverse indices shaped like x; a named tuple."""
    backend, (x,) = resolve(x)
    return UniqueAllResult(*backend.unique_all(x))


def unique_counts(x: Any, /) -> UniqueCountsResult:
    """(values, counts) of the sorted distinct values of ``x``; a named tuple."""
    backend, (x,) = resolve(x)
    return UniqueCountsResult(*backend.unique_counts(x))


def unique_inverse(x: Any, /) -> UniqueInverseResult:
    """(values, inverse_indices): ``values[inverse_indices] == x``; a named tuple."""
    backend, (x,) = resolve(x)
    return UniqueInverseResult(*backend.unique_inverse(x))


def unique_values(x: Any, /) -> Any:
    """The sorted distinct values of ``x`` (1-D)."""
    backend, (x,) = resolve(x)
    return backend.unique_values(x)


__all__ = [
    "argmax",
    "argmin",
    "argsort",
    "nonzero",
    "searchsorted",
    "sort",
    "unique_all",
    "unique_counts",
    "unique_inverse",
    "unique_values",
    "where",
]
