"""Manipulation functions (array API chapter "Manipulation Functions") and indexing
(``take``, ``take_along_axis``). Out-of-range axes raise IndexError; shapes that do not
fit raise ValueError."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._dispatch import resolve
from ._helpers import normalize_axes, normalize_axis, shape_tuple
from .backend import broadcast_shapes


def reshape(x: Any, /, shape: Any, *, copy: bool | None = None) -> Any:
    """``x`` with a new ``shape`` (one entry may be -1) and the same elements in row-major
    order; with ``copy`` true, always a new array (None or false: a view where the backend
    can). Raises ValueError if the sizes differ."""
    backend, (x,) = resolve(x)
    shape = (shape,) if isinstance(shape, int) else tuple(int(n) for n in shape)
    size = math.prod(int(n) for n in x.shape)
    known = math.prod(n for n in shape if n != -1)
    if (
        shape.count(-1) > 1
        or any(n < -1 for n in shape)
        or (size != known if -1 not in shape else (known == 0 or size % known))
    ):
        raise ValueError(f"cannot reshape an array of shape {tuple(x.shape)} (size {size}) into {shape}")
    if -1 in shape:
        shape = tuple(size // known if n == -1 else n for n in shape)
    out = backend.reshape(x, shape)
    return backend.astype(out, backend.dtype_of(out), copy=True) if copy else out


def permute_dims(x: Any, /, axes: Sequence[int]) -> Any:
    """``x`` with its axes reordered: result axis i is x's axis ``axes[i]``. Raises
    ValueError unless ``axes`` is a permutation of range(x.ndim)."""
    backend, (x,) = resolve(x)
    ndim = len(x.shape)
    norm = tuple(normalize_axis(a, ndim) for a in axes)
    if sorted(norm) != list(range(ndim)):
        raise ValueError(f"axes {tuple(axes)} is not a permutation of the {ndim} axes of x")
    return backend.permute_dims(x, norm)


def matrix_transpose(x: Any, /) -> Any:
    """Swap the last two axes of ``x`` (..., M, N) → (..., N, M). ValueError below 2-D."""
    backend, (x,) = resolve(x)
    if len(x.shape) < 2:
        raise ValueError(f"matrix_transpose needs at least 2 dimensions, got shape {tuple(x.shape)}")
    return backend.matrix_transpose(x)


def broadcast_to(x: Any, /, shape: Any) -> Any:
    """``x`` broadcast to ``shape`` (a read-only view where the backend has views). Raises
    ValueError if x's shape does not broadcast to it."""
    backend, (x,) = resolve(x)
    shape = shape_tuple(shape)
    if broadcast_shapes(tuple(x.shape), shape) != shape:
        raise ValueError(f"cannot broadcast shape {tuple(x.shape)} to {shape}")
    return backend.broadcast_to(x, shape)


def broadcast_arrays(*arrays: Any) -> list:
    """The arrays broadcast against each other to one common shape."""
    backend, moved = resolve(*arrays)
    return backend.broadcast_arrays(moved)


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> Any:
    """Join ``arrays`` along an existing ``axis`` (None: flatten them first). The other
    axes must match (ValueError otherwise); dtypes promote."""
    backend, arrays = resolve(*arrays)
    if not arrays:
        raise ValueError("concat needs at least one array")
    if axis is not None:
        ndim = len(arrays[0].shape)
        axis = normalize_axis(axis, ndim)
        for a in arrays:
            if len(a.shape) != ndim or any(a.shape[i] != arrays[0].shape[i] for i in range(ndim) if i != axis):
                raise ValueError(
                    f"concat along axis {axis}: shapes {[tuple(b.shape) for b in arrays]} differ off that axis"
                )
    return backend.concat(arrays, axis)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> Any:
    """Join same-shape ``arrays`` along a new ``axis``. ValueError if shapes differ."""
    backend, arrays = resolve(*arrays)
    if not arrays or any(tuple(a.shape) != tuple(arrays[0].shape) for a in arrays):
        raise ValueError(f"stack needs one or more arrays of one shape, got {[tuple(a.shape) for a in arrays]}")
    return backend.stack(arrays, normalize_axis(axis, len(arrays[0].shape) + 1))


def unstack(x: Any, /, *, axis: int = 0) -> tuple:
    """Split ``x`` along ``axis`` into a tuple of arrays with that axis removed."""
    backend, (x,) = resolve(x)
    return backend.unstack(x, normalize_axis(axis, len(x.shape)))


def expand_dims(x: Any, /, axis: int = 0) -> Any:
    """``x`` with a new axis of length 1 at ``axis`` (counted in the result)."""
    backend, (x,) = resolve(x)
    return backend.expand_dims(x, normalize_axis(axis, len(x.shape) + 1))


def squeeze(x: Any, /, axis: int | tuple[int, ...]) -> Any:
    """``x`` without the length-1 axes named in ``axis``; ValueError if one is not length 1."""
    backend, (x,) = resolve(x)
    return backend.squeeze(x, normalize_axes(axis, len(x.shape)))


def flip(x: Any, /, *, axis: Any = None) -> Any:
    """``x`` with the order of elements reversed along ``axis`` (None: all axes)."""
    backend, (x,) = resolve(x)
    return backend.flip(x, normalize_axes(axis, len(x.shape)))


def moveaxis(x: Any, source: Any, destination: Any, /) -> Any:
    """``x`` with axes ``source`` moved to positions ``destination`` (ints or tuples of
    equal length); the other axes keep their order."""
    backend, (x,) = resolve(x)
    ndim = len(x.shape)
    src = tuple(normalize_axis(a, ndim) for a in ((source,) if isinstance(source, int) else source))
    dst = tuple(normalize_axis(a, ndim) for a in ((destination,) if isinstance(destination, int) else destination))
    if len(src) != len(dst) or len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"moveaxis source {source} and destination {destination} must be distinct axes of equal count")
    return backend.moveaxis(x, src, dst)


def repeat(x: Any, repeats: Any, /, *, axis: int | None = None) -> Any:
    """Each element of ``x`` repeated ``repeats`` times (an int, or an integer array with one
    count per element along ``axis``); axis None flattens first."""
    backend, (x, repeats) = resolve(x, repeats)
    if axis is not None:
        axis = normalize_axis(axis, len(x.shape))
    if isinstance(repeats, int) and repeats < 0:
        raise ValueError(f"repeats must be >= 0, got {repeats}")
    return backend.repeat(x, repeats, axis)


def roll(x: Any, /, shift: Any, *, axis: Any = None) -> Any:
    """Elements of ``x`` shifted by ``shift`` along ``axis`` (None: over the flattened
    array), wrapping around."""
    backend, (x,) = resolve(x)
    if axis is None:
        if isinstance(shift, (tuple, list)):
            raise ValueError(
                f"roll with axis=None takes one int shift, got {shift!r}; a tuple of shifts needs a tuple of axes"
            )
        return backend.roll(x, shift, None)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(normalize_axis(a, len(x.shape)) for a in axes)
    if not isinstance(shift, int) and len(shift) != len(axes):
        raise ValueError(f"roll got {len(shift)} shifts for {len(axes)} axes")
    return backend.roll(x, shift, axes)


def tile(x: Any, repetitions: Sequence[int], /) -> Any:
    """``x`` repeated ``repetitions[i]`` times along each axis (leading 1s added as needed)."""
    backend, (x,) = resolve(x)
    if any(r < 0 for r in repetitions):
        raise ValueError(f"tile repetitions must be >= 0, got {tuple(repetitions)}")
    return backend.tile(x, tuple(repetitions))


def _check_indices(backend: Any, indices: Any, size: int, axis: int, what: str) -> None:
    """IndexError unless every index lies in ``[-size, size)``. Checked here, once, for every
    backend: MLX reads past the end (garbage, or a segfault for large indices) where NumPy
    raises. Costs a min and a max of the indices (and, on MLX, evaluating them)."""
    if backend.is_array(indices):
        if 0 in tuple(indices.shape):
            return
        lo, hi = (int(backend.to_numpy(backend.reduce(op, indices, None, False, None))) for op in ("min", "max"))
    else:
        lo = hi = int(indices)
    if lo < -size or hi >= size:
        raise IndexError(
            f"{what}: index {hi if hi >= size else lo} is out of range for axis {axis} of size {size}; "
            f"indices must lie in [{-size}, {size})"
        )


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    """Elements of ``x`` at integer ``indices`` along ``axis`` (None: 1-D x only; the
    standard requires 1-D indices, arrayq accepts any index shape, which replaces that
    axis). Negative indices count from the end. Raises IndexError for an index outside
    ``[-size, size)``, on every backend."""
    backend, (x, indices) = resolve(x, indices)
    if axis is None:
        if len(x.shape) != 1:
            raise ValueError("take needs axis= for an array that is not 1-D")
        axis = 0
    axis = normalize_axis(axis, len(x.shape))
    _check_indices(backend, indices, int(x.shape[axis]), axis, "take")
    return backend.take(x, indices, axis)


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> Any:
    """Elements of ``x`` picked along ``axis`` by ``indices``, which has x's number of
    dimensions and broadcasts against x on the other axes (as numpy.take_along_axis).
    Raises IndexError for an index outside ``[-size, size)``, on every backend."""
    backend, (x, indices) = resolve(x, indices)
    if len(indices.shape) != len(x.shape):
        raise ValueError(
            f"take_along_axis needs indices with x's {len(x.shape)} dimensions, got shape {tuple(indices.shape)}"
        )
    axis = normalize_axis(axis, len(x.shape))
    _check_indices(backend, indices, int(x.shape[axis]), axis, "take_along_axis")
    return backend.take_along_axis(x, indices, axis)


__all__ = [
    "broadcast_arrays",
    "broadcast_to",
    "concat",
    "expand_dims",
    "flip",
    "matrix_transpose",
    "moveaxis",
    "permute_dims",
    "repeat",
    "reshape",
    "roll",
    "squeeze",
    "stack",
    "take",
    "take_along_axis",
    "tile",
    "unstack",
]
