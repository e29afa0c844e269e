"""Manipulation functions (array API chapter "Manipulation Functions") and indexing
(``take``, ``take_along_axis``). Out-of-range axes raise IndexError; shapes that do not
fit raise ValueError."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._dispatch import resolve
from ._dtypes import int32
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


def take(x: Any, indices: Any, /, *, axis: int | None = None, mode: str = "raise") -> Any:
    """Elements of ``x`` at integer ``indices`` along ``axis`` (None: 1-D x only; the
    standard requires 1-D indices, arrayq accepts any index shape, which replaces that
    axis). Negative indices count from the end.

    ``mode`` (an arrayq extension, JAX's names): ``"raise"`` (the default) raises
    IndexError for an index outside ``[-size, size)``, on every backend; checking reads the
    indices' minimum and maximum on the host, which makes a lazy backend compute them first.
    ``"clip"`` reads nothing on the host: each index is clamped into ``[0, size - 1]`` on the
    device (a negative index becomes 0), for indices known to be in range (a sampled token id)
    and inside :func:`arrayq.compile`. ValueError for another mode or an empty axis with
    ``"clip"``."""
    backend, (x, indices) = resolve(x, indices)
    if axis is None:
        if len(x.shape) != 1:
            raise ValueError("take needs axis= for an array that is not 1-D")
        axis = 0
    axis = normalize_axis(axis, len(x.shape))
    size = int(x.shape[axis])
    if mode == "raise":
        _check_indices(backend, indices, size, axis, "take")
    elif mode == "clip":
        if size == 0 and 0 not in tuple(getattr(indices, "shape", ())):
            raise ValueError(f"take(mode='clip'): axis {axis} is empty, there is no element to clamp to")
        high = size - 1
        indices = backend.clip(indices, 0, high) if backend.is_array(indices) else min(max(int(indices), 0), high)
    else:
        raise ValueError(f"take mode must be 'raise' or 'clip', got {mode!r}")
    return backend.take(x, indices, axis)


def slice_update(x: Any, update: Any, start: Any, /, *, axis: int = 0) -> Any:
    """``x`` with ``update`` written over positions ``start`` .. ``start + L - 1`` along
    ``axis`` (``L = update.shape[axis]``): a new array, neither input is changed (an
    arrayq extension, as ``mlx.core.slice_update`` and ``jax.lax.dynamic_update_slice``).

    ``x`` (..., N, ...) and ``update`` (..., L, ...) have one dtype and the same shape but
    for ``axis``, where L <= N. ``start``: a Python int in ``[0, N - L]`` (IndexError
    otherwise), or a 0-d integer array of x's backend, which is never read on the host (so a
    decode loop's position can stay on the device and inside :func:`arrayq.compile`): it is
    clamped into ``[0, N - L]`` there, as JAX does. The backend's ``slice_update`` runs where
    it has one (MLX: ``mx.slice_update``); else a gather and a select over the N positions.
    Raises TypeError for different dtypes or a start that is not an integer, ValueError for
    shapes that do not fit."""
    if isinstance(start, (int, np.integer)):
        backend, (x, update) = resolve(x, update)
    else:
        backend, (x, update, start) = resolve(x, update, start)
    ndim = len(x.shape)
    axis = normalize_axis(axis, ndim)
    n, length = int(x.shape[axis]), int(update.shape[axis]) if len(update.shape) == ndim else -1
    rest = [int(d) for i, d in enumerate(x.shape) if i != axis]
    if length < 0 or length > n or rest != [int(d) for i, d in enumerate(update.shape) if i != axis]:
        raise ValueError(
            f"slice_update: update of shape {tuple(update.shape)} does not fit x of shape {tuple(x.shape)} "
            f"along axis {axis} (same shape but for that axis, where it may be at most {n})"
        )
    if backend.dtype_of(update) != backend.dtype_of(x):
        raise TypeError(
            f"slice_update: update is {backend.dtype_of(update)} and x is {backend.dtype_of(x)}; "
            "cast update with astype first"
        )
    if backend.is_array(start):
        kind = backend.dtype_of(start)
        if len(start.shape) or kind.kind not in ("signed", "unsigned"):
            raise TypeError(
                f"slice_update: start must be an int or a 0-d integer array, got a {kind.name} array of shape "
                f"{tuple(start.shape)}"
            )
        start = backend.clip(backend.astype(start, int32, False), 0, n - length)
    elif isinstance(start, (int, np.integer)) and not isinstance(start, bool):
        if not 0 <= int(start) <= n - length:
            raise IndexError(
                f"slice_update: start {int(start)} must lie in [0, {n - length}] for {length} positions of {n}"
            )
        start = int(start)
    else:
        raise TypeError(f"slice_update: start must be an int or a 0-d integer array, got {type(start).__name__}")
    if length == 0:
        return x
    out = backend.slice_update(x, update, start, axis)
    return out if out is not NotImplemented else _slice_update_reference(backend, x, update, start, axis)


def _slice_update_reference(backend: Any, x: Any, update: Any, start: Any, axis: int) -> Any:
    """The contract's default: position p takes ``update[p - start]`` where that lies in
    range, else keeps ``x[p]`` (a gather of the clamped offsets, then a select)."""
    n, length = int(x.shape[axis]), int(update.shape[axis])
    device = backend.device_of(x)
    rel = np.arange(n, dtype=np.int32)
    if backend.is_array(start):  # stays on the device
        rel = backend.binary("subtract", backend.from_numpy(rel, device), start)
        after, before = backend.binary("greater_equal", rel, 0), backend.binary("less", rel, length)
        inside = backend.binary("logical_and", after, before)
        index = backend.clip(rel, 0, length - 1)
    else:  # a known start: the offsets are known on the host too
        rel = rel - start
        inside = backend.from_numpy((rel >= 0) & (rel < length), device)
        index = backend.from_numpy(np.clip(rel, 0, length - 1).astype(np.int32), device)
    shape = [1] * len(x.shape)
    shape[axis] = n
    return backend.where(backend.reshape(inside, tuple(shape)), backend.take(update, index, axis), x)


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
    "slice_update",
    "squeeze",
    "stack",
    "take",
    "take_along_axis",
    "tile",
    "unstack",
]
