"""How a call finds its backend.

* From the arrays: ``type(x)`` → backend (``_registry.backend_of``: the registry owns the
  live backends and the type cache), so the common case is one dictionary lookup. Python
  scalars belong to no backend and mix with anything.
* For creation functions (no array argument): the default backend, chosen in this order:
  ``with arrayq.default_backend(...)`` (a context variable, so threads and asyncio tasks
  each see their own), ``arrayq.set_default_backend(...)``, the ``ARRAYQ_BACKEND``
  environment variable, then ``"numpy"``.
* Arrays of two backends: a backend with ``gives_way`` (NumPy, the reference) moves its
  arrays to the other one; any other pair raises BackendMismatchError.
* Creation functions given ``like=x`` or ``device=Device(...)`` (:func:`placement`): x's
  backend and device, or the Device's, instead of the default.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._registry import _SCALARS, backend_of, get_backend
from .errors import BackendMismatchError

if TYPE_CHECKING:
    from .backend import Backend


def resolve(*xs: Any) -> tuple[Backend, list[Any]]:
    """The one backend for these arguments, and the arguments moved onto it where a
    giving-way backend (NumPy) meets another. Scalars stay as they are."""
    chosen = None
    mixed = False
    for x in xs:
        b = backend_of(x)
        if b is None or b is chosen:
            continue
        if chosen is None:
            chosen = b
        elif b.gives_way and not chosen.gives_way:
            mixed = True
        elif chosen.gives_way and not b.gives_way:
            chosen, mixed = b, True
        elif getattr(b, "arrayq_records", None) is chosen:  # arrayq.compile recording this backend (_plan)
            chosen = b
        elif getattr(chosen, "arrayq_records", None) is not b:
            raise BackendMismatchError(
                f"this op got arrays of two backends, {chosen.name!r} and {b.name!r}; move one "
                f"with arrayq.to_backend(x, {chosen.name!r}) (or {b.name!r}) first"
            )
    if chosen is None:
        return current_backend(), list(xs)
    if mixed:
        xs = tuple(_move(x, chosen) for x in xs)
    return chosen, list(xs)


def _move(x: Any, target: Backend) -> Any:
    source = backend_of(x)
    if source is None or source is target:
        return x
    return target.from_numpy(source.to_numpy(x), device=_context_device(target))


# ---- where creation functions create ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Device:
    """A device of a named backend: what :func:`device` returns, and what the creation
    functions' ``device=`` takes to create on that backend rather than the default one.

    ``backend``: the backend's name; ``id``: the backend's own device value (``"cpu"``,
    ``"gpu"``, an ``mlx.core.Device``...), None for the backend's default device. Nothing is
    checked until the Device is used."""

    backend: str
    id: Any = None


def device(x: Any, /) -> Device:
    """The Device of array ``x``: its backend's name and ``backend.device_of(x)``, so that
    ``arrayq.zeros(3, device=arrayq.device(x))`` creates where x is. Raises TypeError for
    anything that is not an array of a loaded backend."""
    backend = backend_of(x)
    if backend is None:
        raise TypeError(f"arrayq.device takes an array, got {type(x).__name__}")
    return Device(backend.name, backend.device_of(x))


def device_on(backend: Backend, device: Any, what: str = "device") -> Any:
    """``device`` as ``backend``'s own device value: None stays None, a :class:`Device` of
    ``backend`` gives its id, anything else must be one of ``backend.devices()``. Raises
    ValueError for a Device of another backend or a device the backend lacks, naming the
    fix."""
    if isinstance(device, Device):
        if get_backend(device.backend) is not backend:
            raise ValueError(
                f"{what}={device!r} is a device of backend {device.backend!r}, but this array is made on "
                f"backend {backend.name!r}; pass a device of {backend.name!r}, or move the data with "
                f"arrayq.to_backend(..., {device.backend!r})"
            )
        device = device.id
    if device is not None:
        try:
            backend.check_device(device)
        except ValueError as exc:
            raise ValueError(
                f"{exc}. To create on another backend pass like=<an array of it> or "
                "device=arrayq.Device(name, device), or use arrayq.default_backend(name)"
            ) from None
    return device


def placement(device: Any = None, like: Any = None) -> tuple[Backend, Any]:
    """Where a creation function makes its array: ``(backend, device)`` for its ``device=``
    and ``like=`` arguments.

    * ``like=x`` (an array): x's backend, on x's device unless ``device`` names another
      device of that backend;
    * ``device=arrayq.Device(name, id)``: that backend and device;
    * otherwise the default backend, on ``device`` (one of its devices) or its default.

    Raises TypeError when ``like`` is not an array, and ValueError when ``device`` names a
    device of another backend than ``like``'s or one the backend does not have."""
    if like is not None:
        try:
            backend = backend_of(like)
        except TypeError:
            backend = None
        if backend is None:
            raise TypeError(f"like= takes an array of a backend (to create on its backend and device), got {like!r}")
        if device is None:
            return backend, backend.device_of(like)
        if isinstance(device, Device) and get_backend(device.backend) is not backend:
            raise ValueError(
                f"like= is an array of backend {backend.name!r}, but device={device!r} is a device of "
                f"backend {device.backend!r}; pass one of the two, or a device of {backend.name!r}"
            )
        device = device_on(backend, device)
        return backend, backend.device_of(like) if device is None else device
    if isinstance(device, Device):
        backend = get_backend(device.backend)
        return backend, default_device(backend, device_on(backend, device))
    backend = current_backend()
    return backend, default_device(backend, device_on(backend, device))


# ---- the default backend --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Default:
    backend: str | Backend
    device: Any = None


_context: contextvars.ContextVar[_Default | None] = contextvars.ContextVar("arrayq_default", default=None)
_process_default: _Default | None = None


def _chosen() -> _Default:
    return _context.get() or _process_default or _Default(os.environ.get("ARRAYQ_BACKEND") or "numpy")


def current_backend() -> Backend:
    """The backend creation functions use now (see the module docstring for the order)."""
    return get_backend(_chosen().backend)


def _context_device(backend: Backend) -> Any:
    chosen = _chosen()
    return chosen.device if get_backend(chosen.backend) is backend else None


def default_device(backend: Backend, device: Any) -> Any:
    """``device`` if given, else the device of the active default for this backend."""
    return device if device is not None else _context_device(backend)


@contextlib.contextmanager
def default_backend(backend: str | Backend | Device, device: Any = None) -> Iterator[Backend]:
    """Within the ``with`` block, creation functions use ``backend`` (a name, a Backend, or
    a :class:`Device`, which names the device too) on ``device`` (None: the backend's own
    default device).

    The setting lives in a context variable: other threads and asyncio tasks keep theirs.
    Raises UnknownBackendError / BackendUnavailableError at entry for a bad name, and
    ValueError for a device the backend does not have."""
    backend, device = _unpack(backend, device)
    resolved = get_backend(backend)
    if device is not None:
        resolved.check_device(device)
    token = _context.set(_Default(resolved, device))
    try:
        yield resolved
    finally:
        _context.reset(token)


def set_default_backend(backend: str | Backend | Device | None, device: Any = None) -> None:
    """Set the process-wide default backend (below any ``with default_backend``; a name, a
    Backend or a :class:`Device`); None clears it, so ``ARRAYQ_BACKEND`` or NumPy apply
    again."""
    global _process_default
    if backend is None:
        _process_default = None
        return
    backend, device = _unpack(backend, device)
    resolved = get_backend(backend)
    if device is not None:
        resolved.check_device(device)
    _process_default = _Default(resolved, device)


# ---- moving data between backends -----------------------------------------------------


def _unpack(backend: str | Backend | Device, device: Any) -> tuple[str | Backend, Any]:
    """A backend argument that may be a :class:`Device`: its name and (unless ``device``
    is given) its id."""
    if isinstance(backend, Device):
        return backend.backend, backend.id if device is None else device
    return backend, device


def to_backend(obj: Any, backend: str | Backend | Device, device: Any = None) -> Any:
    """``obj`` with every array in it moved to ``backend`` (a name, a Backend, or a
    :class:`Device` such as ``arrayq.device(x)``, which names the device too) and ``device``.

    ``obj`` may be an array, a scalar, or a tuple / list / dict / dataclass of these, nested;
    containers keep their type (dataclasses are rebuilt with ``dataclasses.replace``).
    Arrays already there are returned unchanged. Raises TypeError for an object that is
    none of these."""
    backend, device = _unpack(backend, device)
    target = get_backend(backend)
    if device is not None:
        target.check_device(device)

    def move(o: Any) -> Any:
        if o is None or isinstance(o, (_SCALARS, str)):
            return o
        if isinstance(o, tuple) and hasattr(o, "_fields"):
            return type(o)(*map(move, o))
        if isinstance(o, (tuple, list)):
            return type(o)(map(move, o))
        if isinstance(o, dict):
            return type(o)((k, move(v)) for k, v in o.items())
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            changes = {f.name: move(getattr(o, f.name)) for f in dataclasses.fields(o) if f.init}
            return dataclasses.replace(o, **changes)
        source = backend_of(o)
        if source is None:  # not reached: None and scalars were returned above
            return o
        if source is target and (device is None or target.device_of(o) == device):
            return o
        host = source.to_numpy(o)
        if not getattr(host.dtype, "isnative", True):  # ('>f4' and the like): backends take native order
            host = host.astype(host.dtype.newbyteorder("="))
        return target.from_numpy(host, device=default_device(target, device))

    return move(obj)
