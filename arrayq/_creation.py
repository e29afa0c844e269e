"""Creation functions (array API chapter "Creation Functions").

Functions with no array argument use the default backend (``arrayq.default_backend``)
unless given ``like=x`` (x's backend and device) or ``device=arrayq.Device(name, id)``
(that backend); ``device=`` also takes the backend's own device values. ``*_like``
functions, ``tril``/``triu`` and ``meshgrid`` use their arrays' backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ._dispatch import current_backend, default_device, device_on, placement, resolve
from ._helpers import maybe_dtype, shape_tuple

if TYPE_CHECKING:
    from ._dtypes import DType
    from .backend import Backend


class _Filled(Protocol):
    __name__: str

    def __call__(self, shape: Any, *, dtype: Any = None, device: Any = None, like: Any = None) -> Any: ...


class _Like(Protocol):
    __name__: str

    def __call__(self, x: Any, /, *, dtype: Any = None, device: Any = None) -> Any: ...


class _Triangle(Protocol):
    __name__: str

    def __call__(self, x: Any, /, *, k: int = 0) -> Any: ...


#: What every creation function without an array argument says about where it creates.
_WHERE = (
    " On the default backend, unless ``like`` is an array (then on its backend and device)"
    " or ``device`` is an ``arrayq.Device`` (then on that backend); ``device`` may also be one"
    " of the backend's own devices. Raises ValueError when ``device`` is not a device of that"
    " backend (or of ``like``'s), TypeError when ``like`` is not an array."
)


def _default_complex(backend: Backend) -> DType:
    """The default complex dtype: the one whose parts are the backend's default float."""
    return backend.default_complex


def asarray(obj: Any, /, *, dtype: Any = None, device: Any = None, copy: bool | None = None, like: Any = None) -> Any:
    """Convert ``obj`` (an array of any backend, nested sequences, a scalar, a buffer) to an
    array. Arrays of a backend stay on it unless ``like`` or an ``arrayq.Device`` names
    another backend (then they are copied there: asked for, so not silent); other objects
    go to the default backend, or to ``like``'s / the Device's. Python floats become the
    backend's default float dtype. Raises TypeError for an unknown dtype or a ``like`` that
    is not an array, ValueError for a device the backend lacks (see :func:`zeros`) or
    ``copy=False`` where the data must move."""
    from ._dispatch import Device, backend_of

    dtype = maybe_dtype(dtype)
    try:
        owner = backend_of(obj)
    except TypeError:
        owner = None
    if like is None and not isinstance(device, Device):
        backend = owner or current_backend()
        device = device_on(backend, device)
        if owner is None and device is None:
            device = default_device(backend, None)
        return backend.asarray(obj, dtype, device, copy)
    backend, device = placement(device, like)
    if owner is not None and owner is not backend:
        if copy is False:
            raise ValueError(
                f"asarray(copy=False) cannot move an array of backend {owner.name!r} to {backend.name!r}; "
                "pass copy=None"
            )
        obj = owner.to_numpy(obj)
    return backend.asarray(obj, dtype, device, copy)


def arange(
    start: Any, /, stop: Any = None, step: Any = 1, *, dtype: Any = None, device: Any = None, like: Any = None
) -> Any:
    """Evenly spaced values in ``[start, stop)`` (one argument: ``[0, start)``); 1-D;
    placed as :func:`zeros`. Raises ValueError for ``step == 0``."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange step must not be 0")
    backend, device = placement(device, like)
    return backend.arange(start, stop, step, maybe_dtype(dtype), device)


def _filled(method: str, doc: str) -> _Filled:
    def create(shape: Any, *, dtype: Any = None, device: Any = None, like: Any = None) -> Any:
        backend, device = placement(device, like)
        return getattr(backend, method)(shape_tuple(shape), maybe_dtype(dtype), device)

    create.__name__ = create.__qualname__ = method
    create.__doc__ = (
        doc + " Shape is an int or tuple of ints; dtype defaults to the backend's default float."
        " Raises ValueError for a negative size." + _WHERE
    )
    return create


zeros = _filled("zeros", "A new array of ``shape`` filled with 0.")
ones = _filled("ones", "A new array of ``shape`` filled with 1.")
empty = _filled("empty", "A new array of ``shape`` with unspecified contents (arrayq gives zeros).")


def full(shape: Any, fill_value: Any, *, dtype: Any = None, device: Any = None, like: Any = None) -> Any:
    """A new array of ``shape`` filled with ``fill_value``; dtype from ``fill_value``
    (bool, default int, default float or default complex) unless given; placed as
    :func:`zeros`."""
    from . import _dtypes as dt

    backend, device = placement(device, like)
    dtype = maybe_dtype(dtype)
    if dtype is None:
        dtype = (
            dt.bool_
            if isinstance(fill_value, bool)
            else backend.default_int
            if isinstance(fill_value, int)
            else _default_complex(backend)
            if isinstance(fill_value, complex)
            else backend.default_float
        )
    return backend.full(shape_tuple(shape), fill_value, dtype, device)


def _like(method: str, doc: str) -> _Like:
    def create(x: Any, /, *, dtype: Any = None, device: Any = None) -> Any:
        backend, (x,) = resolve(x)
        return getattr(backend, method)(x, maybe_dtype(dtype), device_on(backend, device))

    create.__name__ = create.__qualname__ = method
    create.__doc__ = doc + _LIKE_DOC
    return create


_LIKE_DOC = (
    " Same shape as ``x``, its dtype unless ``dtype`` is given, on x's backend and device (or"
    " ``device``, one of that backend's devices or an ``arrayq.Device`` of it; ValueError otherwise)."
)
zeros_like = _like("zeros_like", "An array of zeros like ``x``.")
ones_like = _like("ones_like", "An array of ones like ``x``.")
empty_like = _like("empty_like", "An uninitialised array like ``x`` (arrayq gives zeros).")


def full_like(x: Any, /, fill_value: Any, *, dtype: Any = None, device: Any = None) -> Any:
    """An array like ``x`` (shape, dtype unless given, backend and device, as
    :func:`zeros_like`) filled with ``fill_value``."""
    backend, (x,) = resolve(x)
    return backend.full_like(x, fill_value, maybe_dtype(dtype), device_on(backend, device))


def eye(
    n_rows: int,
    n_cols: int | None = None,
    /,
    *,
    k: int = 0,
    dtype: Any = None,
    device: Any = None,
    like: Any = None,
) -> Any:
    """A 2-D array (n_rows, n_cols or n_rows) with ones on diagonal ``k``, zeros elsewhere;
    placed as :func:`zeros`."""
    backend, device = placement(device, like)
    n_cols = n_rows if n_cols is None else n_cols
    shape_tuple((n_rows, n_cols))
    return backend.eye(n_rows, n_cols, k, maybe_dtype(dtype), device)


def linspace(
    start: Any,
    stop: Any,
    /,
    num: int,
    *,
    dtype: Any = None,
    device: Any = None,
    endpoint: bool = True,
    like: Any = None,
) -> Any:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included if ``endpoint``);
    dtype the default float, or the default complex if start or stop is complex, unless
    given; placed as :func:`zeros`. Raises ValueError for a negative ``num``."""
    if num < 0:
        raise ValueError(f"linspace num must be >= 0, got {num}")
    backend, device = placement(device, like)
    dtype = maybe_dtype(dtype)
    if dtype is None and (isinstance(start, complex) or isinstance(stop, complex)):
        dtype = _default_complex(backend)
    return backend.linspace(start, stop, num, dtype, device, endpoint)


def meshgrid(*arrays: Any, indexing: str = "xy") -> list:
    """Coordinate grids from 1-D arrays; ``indexing`` "xy" (Cartesian) or "ij" (matrix).
    Raises ValueError for another indexing or a non-1-D input."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"indexing must be 'xy' or 'ij', got {indexing!r}")
    if not arrays:
        return []
    backend, moved = resolve(*arrays)
    if any(len(a.shape) != 1 for a in moved):
        raise ValueError("meshgrid takes 1-D arrays")
    return backend.meshgrid(moved, indexing)


def _triangle(method: str, doc: str) -> _Triangle:
    def tri(x: Any, /, *, k: int = 0) -> Any:
        backend, (x,) = resolve(x)
        if len(x.shape) < 2:
            raise ValueError(f"{method} needs an array of at least 2 dimensions, got shape {tuple(x.shape)}")
        return getattr(backend, method)(x, k)

    tri.__name__ = tri.__qualname__ = method
    tri.__doc__ = (
        doc + " ``x`` is (..., M, N); result has x's shape and dtype. Raises ValueError for fewer than 2 dims."
    )
    return tri


tril = _triangle("tril", "Zero the elements above diagonal ``k`` of each matrix in ``x``.")
triu = _triangle("triu", "Zero the elements below diagonal ``k`` of each matrix in ``x``.")


def from_dlpack(x: Any, /, *, device: Any = None, copy: bool | None = None) -> Any:
    """An array of the default backend with the data of ``x``, any object that has
    ``__dlpack__`` (a NumPy, MLX, PyTorch... array); same shape and dtype. ``copy`` True:
    always a copy; False: never, raising BufferError where the backend would have to copy
    (MLX, whose arrays are immutable, always copies); None: shares memory where it can.
    Raises TypeError for an object without ``__dlpack__`` (use :func:`asarray`), ValueError
    for a device the backend lacks, and BufferError where the data cannot be read (e.g.
    device memory NumPy cannot see)."""
    if not hasattr(x, "__dlpack__"):
        raise TypeError(
            f"from_dlpack takes an object with __dlpack__ (an array of a DLPack-capable library), "
            f"got {type(x).__name__}; use arrayq.asarray for other objects"
        )
    backend, device = placement(device)
    return backend.from_dlpack(x, device, copy)


__all__ = [
    "arange",
    "asarray",
    "empty",
    "empty_like",
    "eye",
    "full",
    "from_dlpack",
    "full_like",
    "linspace",
    "meshgrid",
    "ones",
    "ones_like",
    "tril",
    "triu",
    "zeros",
    "zeros_like",
]
