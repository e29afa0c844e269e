"""Linear algebra functions of the array API main namespace: matmul, tensordot, vecdot."""

from __future__ import annotations

from typing import Any

from ._dispatch import resolve
from ._helpers import normalize_axis
from .backend import broadcast_shapes


def matmul(x1: Any, x2: Any, /) -> Any:
    """Matrix product with array API semantics: ``x1`` (..., M, K) or (K,), ``x2``
    (..., K, N) or (K,); batch axes broadcast; 1-D operands lose their added axis.
    Raises ValueError for 0-d operands or mismatched K."""
    backend, (x1, x2) = resolve(x1, x2)
    s1, s2 = tuple(x1.shape), tuple(x2.shape)
    if not s1 or not s2:
        raise ValueError("matmul does not take 0-d arrays; use multiply")
    k1, k2 = s1[-1], s2[0] if len(s2) == 1 else s2[-2]
    if k1 != k2:
        raise ValueError(f"matmul: x1 {s1} has {k1} columns but x2 {s2} has {k2} rows")
    if len(s1) > 2 and len(s2) > 2:
        broadcast_shapes(s1[:-2], s2[:-2])
    return backend.matmul(x1, x2)


def tensordot(x1: Any, x2: Any, /, *, axes: Any = 2) -> Any:
    """Sum of products over ``axes``: an int n (last n axes of x1 with first n of x2) or a
    pair of sequences of axes. Result shape: x1's free axes then x2's. ValueError when the
    contracted sizes differ."""
    backend, (x1, x2) = resolve(x1, x2)
    n1, n2 = len(x1.shape), len(x2.shape)
    if isinstance(axes, int):
        if axes < 0 or axes > min(n1, n2):
            raise ValueError(f"tensordot axes={axes} is out of range for shapes {tuple(x1.shape)}, {tuple(x2.shape)}")
        pair = (tuple(range(n1 - axes, n1)), tuple(range(axes)))
    else:
        a, b = axes
        a = (a,) if isinstance(a, int) else a
        b = (b,) if isinstance(b, int) else b
        pair = (tuple(normalize_axis(i, n1) for i in a), tuple(normalize_axis(i, n2) for i in b))
    if len(pair[0]) != len(pair[1]) or any(x1.shape[i] != x2.shape[j] for i, j in zip(*pair)):
        raise ValueError(f"tensordot: axes {pair} pair up unequal sizes of {tuple(x1.shape)} and {tuple(x2.shape)}")
    return backend.tensordot(x1, x2, pair)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """Dot product ``sum(conj(x1) * x2)`` along ``axis`` after broadcasting; ValueError when
    the sizes along ``axis`` differ."""
    backend, (x1, x2) = resolve(x1, x2)
    shape = broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    axis = normalize_axis(axis, len(shape))
    if (
        len(x1.shape) - len(shape) + axis < 0
        or len(x2.shape) - len(shape) + axis < 0
        or x1.shape[axis - len(shape)] != x2.shape[axis - len(shape)]
    ):
        raise ValueError(f"vecdot: shapes {tuple(x1.shape)} and {tuple(x2.shape)} differ along axis {axis}")
    return backend.vecdot(backend.broadcast_to(x1, shape), backend.broadcast_to(x2, shape), axis)


__all__ = ["matmul", "tensordot", "vecdot"]
