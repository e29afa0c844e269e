"""The products, diagonals and norms of ``arrayq.linalg``: cross, outer, diagonal, trace,
vector_norm, matrix_norm and NumPy-style norm. They work elementwise and by reductions, so
NaN and inf propagate as they would through those (``vector_norm([inf, 1])`` is inf); the
norms that need singular values (``ord`` 2, -2, "nuc") follow the decompositions' rules
(:mod:`arrayq._linalg_checks`)."""

from __future__ import annotations

import math
import operator
from typing import Any

from . import _dtypes as dt
from ._helpers import maybe_dtype, normalize_axes, normalize_axis
from ._linalg_checks import arrays, finite, floating, matrices, method, narrow, numeric, poison, replace
from .backend import broadcast_shapes

#: The ``ord`` values of matrix_norm: what each computes is in its docstring.
MATRIX_ORDS = ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)


def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """The cross product of the 3-element vectors along ``axis`` of ``x1`` and ``x2``
    (numeric, broadcast together), in their promoted dtype. ValueError if either has
    another size than 3 along ``axis``; IndexError for an axis out of range; TypeError for
    bool input."""
    backend, (x1, x2) = arrays("cross", x1, x2)
    for x in (x1, x2):
        numeric("cross", backend, x)
    shape = broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    if not shape:
        raise ValueError("linalg.cross needs arrays of vectors, got 0-d arrays")
    axis = normalize_axis(axis, len(shape))
    for x in (x1, x2):
        pos = axis - len(shape) + x.ndim
        if pos < 0 or x.shape[pos] != 3:
            raise ValueError(
                f"linalg.cross needs 3 elements along axis {axis - len(shape)} of both arrays, "
                f"got shapes {tuple(x1.shape)} and {tuple(x2.shape)}"
            )
    common = dt.result_type(backend.dtype_of(x1), backend.dtype_of(x2))
    x1, x2 = (backend.broadcast_to(backend.astype(x, common, copy=False), shape) for x in (x1, x2))
    return method(backend, "cross", x1, x2)(x1, x2, axis)


def outer(x1: Any, x2: Any, /) -> Any:
    """The outer product of the vectors ``x1`` (N,) and ``x2`` (M,): shape (N, M),
    ``out[i, j] = x1[i] * x2[j]``, in the promoted dtype. ValueError unless both are 1-D,
    TypeError for bool input."""
    backend, (x1, x2) = arrays("outer", x1, x2)
    if x1.ndim != 1 or x2.ndim != 1:
        raise ValueError(f"linalg.outer needs two 1-D arrays, got shapes {tuple(x1.shape)} and {tuple(x2.shape)}")
    for x in (x1, x2):
        numeric("outer", backend, x)
    return method(backend, "outer", x1, x2)(x1, x2)


def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    """The diagonal of each matrix of ``x`` (..., M, N): shape (..., K). ``offset`` > 0 picks
    a diagonal above the main one, < 0 below; K is its length (0 past the matrix). Any
    dtype. ValueError for fewer than 2 axes."""
    backend, (x,) = arrays("diagonal", x)
    matrices("diagonal", x)
    return method(backend, "diagonal", x)(x, operator.index(offset))


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """The sum of the ``offset`` diagonal of each matrix of ``x`` (..., M, N), shape (...).
    ``dtype`` as for ``sum``: by default x's dtype, widened to the default integer dtype
    for small integers (unsigned to its unsigned counterpart). ValueError for fewer than 2
    axes, TypeError for bool input."""
    backend, (x,) = arrays("trace", x)
    matrices("trace", x)
    numeric("trace", backend, x)
    return method(backend, "trace", x)(x, operator.index(offset), maybe_dtype(dtype))


def _real(dtype: dt.DType) -> dt.DType:
    return {dt.complex64: dt.float32, dt.complex128: dt.float64}.get(dtype, dtype)


def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False, ord: float = 2) -> Any:
    """The vector p-norm of ``x`` over ``axis`` (None: all elements, as one vector; an int
    or a tuple of ints): ``ord`` inf: max |x|, -inf: min |x|, 0: the number of nonzeros, any
    other p: ``sum(|x|^p)^(1/p)``. Floating (or complex) x; the result is real, in x's
    (real) dtype. Over an empty axis: 0, or inf for negative ``ord``. Sums of squares are
    not rescaled (as NumPy): magnitudes above ~1e154 (float64) overflow. ValueError for a
    non-numeric ord, IndexError for an axis out of range, TypeError for bool or integer x."""
    backend, (x,) = arrays("vector_norm", x)
    if isinstance(ord, (bool, str)) or not isinstance(ord, (int, float)):
        raise ValueError(f"linalg.vector_norm ord must be a number (inf, -inf and 0 included), got {ord!r}")
    work, dtype = floating("vector_norm", backend, x)
    axes = normalize_axes(axis, work.ndim)
    out = method(backend, "vector_norm", work)(work, axes, bool(keepdims), ord)
    return narrow(backend, [out], _real(dtype))[0]


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:
    """A norm of each matrix of ``x`` (..., M, N), shape (...) or (..., 1, 1) with
    ``keepdims``: ``ord`` "fro" (the default): sqrt of the sum of squares; "nuc": the sum of
    the singular values; 2 / -2: the largest / smallest singular value; 1 / -1: the largest
    / smallest column sum of |x|; inf / -inf: the largest / smallest row sum. Floating x
    or complex; the result is real. ValueError for another ord or fewer than 2 axes,
    TypeError for bool or integer x."""
    backend, (x,) = arrays("matrix_norm", x)
    matrices("matrix_norm", x)
    if isinstance(ord, bool) or ord not in MATRIX_ORDS:
        raise ValueError(f"linalg.matrix_norm ord must be one of {MATRIX_ORDS}, got {ord!r}")
    spectral = ord in ("nuc", 2, -2)
    work, dtype = floating("matrix_norm", backend, x)
    if spectral:  # singular values: the decompositions' rule for NaN/inf matrices
        ok = finite(backend, work)
        work = replace(backend, work, ok, True)
        out = method(backend, "matrix_norm", work)(work, ord, bool(keepdims))
        out = poison(backend, [out], ok)[0]
    else:
        out = method(backend, "matrix_norm", work)(work, ord, bool(keepdims))
    return narrow(backend, [out], _real(dtype))[0]


def norm(x: Any, /, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:
    """NumPy's ``linalg.norm``: with ``axis`` None, the 2-norm of all elements if ``ord`` is
    None, else the vector norm of a 1-D x or the matrix norm of a 2-D x; an int axis (or a
    1-tuple): :func:`vector_norm` along it; a 2-tuple: :func:`matrix_norm` of the matrices
    on those axes (ord None: "fro"). ``keepdims`` keeps the reduced axes as size 1.
    ValueError for other ranks or axis counts, and for a string ord on vectors."""
    backend, (x,) = arrays("norm", x)
    if axis is None:
        if ord is None:
            return vector_norm(x, keepdims=keepdims)
        if x.ndim not in (1, 2):
            raise ValueError(f"linalg.norm with an ord needs a 1-D or 2-D array or an axis, got shape {tuple(x.shape)}")
        axis = tuple(range(x.ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(axes) == 1:
        if isinstance(ord, str):
            raise ValueError(f"linalg.norm ord {ord!r} is for matrices; a vector takes a number")
        return vector_norm(x, axis=axes, keepdims=keepdims, ord=2 if ord is None else ord)
    if len(axes) != 2:
        raise ValueError(f"linalg.norm takes one axis (vectors) or two (matrices), got axis={axis!r}")
    rows, cols = (normalize_axis(a, x.ndim) for a in axes)
    if rows == cols:
        raise ValueError(f"linalg.norm needs two different axes, got {axis!r}")
    rest = [i for i in range(x.ndim) if i not in (rows, cols)]
    moved = backend.permute_dims(x, (*rest, rows, cols))
    out = matrix_norm(moved, ord="fro" if ord is None else ord)
    if keepdims:
        shape = [1 if i in (rows, cols) else int(n) for i, n in enumerate(x.shape)]
        out = backend.reshape(out, tuple(shape))
    return out


__all__ = ["MATRIX_ORDS", "cross", "diagonal", "matrix_norm", "norm", "outer", "trace", "vector_norm"]
