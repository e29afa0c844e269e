"""Statistical and utility reductions (array API chapters "Statistical Functions" and
"Utility Functions"). ``axis`` is an int, a tuple of ints or None (all axes); the reduced
axes are dropped unless ``keepdims``. Out-of-range axes raise IndexError."""

from __future__ import annotations

from typing import Any, Protocol

from ._dispatch import resolve
from ._helpers import maybe_dtype, normalize_axes, normalize_axis


class Reduction(Protocol):
    """A reduction over ``axis`` (max, min, all, any)."""

    __name__: str

    def __call__(self, x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any: ...


def _reduce(name: str, x: Any, axis: Any, keepdims: bool, dtype: Any = None) -> Any:
    backend, (x,) = resolve(x)
    axes = normalize_axes(axis, len(x.shape))
    if name in ("max", "min") and (0 in tuple(x.shape[a] for a in (axes or range(len(x.shape))))):
        raise ValueError(f"{name} of an empty axis has no value; check the array shape {tuple(x.shape)}")
    return backend.reduce(name, x, axes, keepdims, maybe_dtype(dtype))


def _reduction(name: str, doc: str) -> Reduction:
    def reduce(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
        return _reduce(name, x, axis, keepdims)

    reduce.__name__ = reduce.__qualname__ = name
    reduce.__doc__ = doc
    return reduce


def sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """Sum of ``x`` over ``axis``. ``dtype`` sets the accumulation and result dtype
    (default: x's, with narrow integers and bool widened as the array API says)."""
    return _reduce("sum", x, axis, keepdims, dtype)


def prod(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    """Product of ``x`` over ``axis``; ``dtype`` as for :func:`sum`."""
    return _reduce("prod", x, axis, keepdims, dtype)


max = _reduction("max", "Maximum of ``x`` over ``axis``; ValueError for an empty reduction.")
min = _reduction("min", "Minimum of ``x`` over ``axis``; ValueError for an empty reduction.")
all = _reduction("all", "Whether every element over ``axis`` is true (bool result).")
any = _reduction("any", "Whether any element over ``axis`` is true (bool result).")


def mean(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
    """Arithmetic mean of floating ``x`` over ``axis``. An empty reduction gives NaN."""
    backend, (x,) = resolve(x)
    return backend.mean(x, normalize_axes(axis, len(x.shape)), keepdims)


def var(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    """Variance of floating ``x`` over ``axis``, dividing by ``N - correction``."""
    backend, (x,) = resolve(x)
    return backend.var(x, normalize_axes(axis, len(x.shape)), correction, keepdims)


def std(x: Any, /, *, axis: Any = None, correction: float = 0.0, keepdims: bool = False) -> Any:
    """Standard deviation: ``sqrt(var(x, axis, correction))``."""
    backend, (x,) = resolve(x)
    return backend.std(x, normalize_axes(axis, len(x.shape)), correction, keepdims)


def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None, include_initial: bool = False) -> Any:
    """Running sum along ``axis`` (may be None only for 1-D x). With ``include_initial``
    the result starts with 0 and is one longer along ``axis``. Raises ValueError when x is
    not 1-D and axis is None."""
    backend, (x,) = resolve(x)
    if axis is None:
        if len(x.shape) != 1:
            raise ValueError("cumulative_sum needs axis= for an array that is not 1-D")
        axis = 0
    return backend.cumulative_sum(x, normalize_axis(axis, len(x.shape)), maybe_dtype(dtype), include_initial)


def count_nonzero(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
    """Number of non-zero elements over ``axis`` (default integer dtype)."""
    backend, (x,) = resolve(x)
    return backend.count_nonzero(x, normalize_axes(axis, len(x.shape)), keepdims)


def diff(x: Any, /, *, axis: int = -1, n: int = 1, prepend: Any = None, append: Any = None) -> Any:
    """The ``n``-th discrete difference along ``axis`` (length shrinks by n), after joining
    ``prepend`` / ``append`` along that axis. Raises ValueError for a negative n."""
    if n < 0:
        raise ValueError(f"diff n must be >= 0, got {n}")
    backend, (x, prepend, append) = resolve(x, prepend, append)
    return backend.diff(x, normalize_axis(axis, len(x.shape)), n, prepend, append)


__all__ = ["all", "any", "count_nonzero", "cumulative_sum", "diff", "max", "mean", "min", "prod", "std", "sum", "var"]
