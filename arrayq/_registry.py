"""Where backends come from: the ``arrayq.backends`` entry-point group, looked at lazily,
plus backends added at run time with :func:`register_backend`.

Nothing here imports a backend's array library until that backend is asked for, so
``import arrayq`` stays cheap and never fails because an optional library is missing.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from .errors import BackendUnavailableError, UnknownBackendError

if TYPE_CHECKING:
    from .backend import Backend

ENTRY_POINT_GROUP = "arrayq.backends"


@dataclass
class _Entry:
    name: str
    source: str  # "entry point <value>" or "register_backend"
    loader: object  # an EntryPoint, a Backend class, or a Backend instance
    backend: Backend | None = None
    error: str | None = None
    hint: str | None = None


#: Python scalars: they belong to no backend and mix with any backend's arrays
_SCALARS = (bool, int, float, complex)
#: type(x) -> the backend whose array it is; cleared whenever the set of backends changes
_type_cache: dict[type, Backend] = {}
_lock = threading.Lock()
_entries: dict[str, _Entry] | None = None
_runtime: dict[str, _Entry] = {}


def _discover() -> dict[str, _Entry]:
    """All entries; run-time registrations first, so that their (often more specific)
    array types are tried before the installed backends'."""
    global _entries
    if _entries is None:
        with _lock:
            if _entries is None:
                found: dict[str, _Entry] = {}
                for ep in entry_points(group=ENTRY_POINT_GROUP):
                    found.setdefault(ep.name, _Entry(ep.name, f"entry point {ep.value}", ep))
                _entries = found
    return {**_runtime, **{k: v for k, v in _entries.items() if k not in _runtime}}


def register_backend(name: str, backend: Backend | type[Backend], *, replace: bool = False) -> None:
    """Make ``backend`` (a Backend instance or subclass) available under ``name``.

    Raises ValueError if ``name`` is already taken and ``replace`` is false, and TypeError
    if ``backend`` is not a Backend.
    """
    from .backend import Backend

    is_class = isinstance(backend, type) and issubclass(backend, Backend)
    if not (is_class or isinstance(backend, Backend)):
        raise TypeError(f"register_backend needs a Backend instance or subclass, got {backend!r}")
    if name in _discover() and not replace:
        raise ValueError(f"a backend named {name!r} exists already; pass replace=True to override it")
    entry = _Entry(name, "register_backend", backend)
    _load(entry)  # its library is imported already: load now, so its arrays are recognised
    if entry.backend is None:
        raise TypeError(f"backend {name!r} could not be created: {entry.error}")
    _runtime[name] = entry
    forget_types()


def unregister_backend(name: str) -> None:
    """Remove a backend added with :func:`register_backend` (entry points stay)."""
    if _runtime.pop(name, None) is None:
        raise UnknownBackendError(f"no backend named {name!r} was added with register_backend")
    forget_types()


def _load(entry: _Entry) -> None:
    from .backend import Backend

    loader = entry.loader
    try:
        if hasattr(loader, "load") and not isinstance(loader, (type, Backend)):
            loader = loader.load()
        backend = loader() if isinstance(loader, type) else loader
        if not isinstance(backend, Backend):
            raise TypeError(f"{entry.source} gave {backend!r}, which is not an arrayq Backend")
        backend.name = entry.name
        entry.backend = backend
    except ImportError as exc:
        entry.error = f"{type(exc).__name__}: {exc}"
        entry.hint = (
            getattr(loader, "install_hint", None) or f"install the package that provides the {entry.name!r} backend"
        )
    except Exception as exc:  # a broken backend must not break arrayq: report it
        entry.error = f"{type(exc).__name__}: {exc}"


def get_backend(name_or_backend: str | Backend) -> Backend:
    """The loaded backend called ``name`` (or the Backend given, unchanged).

    Raises UnknownBackendError for a name nobody registered, and BackendUnavailableError
    (with the reason and an install hint) when its library cannot be loaded.
    """
    from .backend import Backend

    if isinstance(name_or_backend, Backend):
        return name_or_backend
    entries = _discover()
    entry = entries.get(name_or_backend)
    if entry is None:
        raise UnknownBackendError(
            f"no arrayq backend named {name_or_backend!r}; known: {', '.join(sorted(entries)) or 'none'}. "
            "Install a backend package or call arrayq.register_backend()."
        )
    if entry.backend is None and entry.error is None:
        with _lock:
            if entry.backend is None and entry.error is None:
                _load(entry)
    if entry.backend is None:
        hint = f" To fix: {entry.hint}." if entry.hint else ""
        raise BackendUnavailableError(f"backend {entry.name!r} is unavailable ({entry.error}).{hint}")
    return entry.backend


@dataclass(frozen=True)
class BackendInfo:
    """One row of :func:`list_backends`."""

    name: str
    available: bool
    source: str
    reason: str | None
    install_hint: str | None


def list_backends(load: bool = True) -> list[BackendInfo]:
    """Every backend arrayq knows of. With ``load`` true, each is loaded to learn whether it
    is available (its library imported); otherwise availability is only what is known."""
    rows = []
    for name, entry in sorted(_discover().items()):
        if load and entry.backend is None and entry.error is None:
            try:
                get_backend(name)
            except BackendUnavailableError:
                pass
        rows.append(BackendInfo(name, entry.backend is not None, entry.source, entry.error, entry.hint))
    return rows


def loaded_backends() -> list[Backend]:
    """Backends already loaded, plus those whose array library the program has already
    imported (so an array of theirs can be recognised without importing anything new).

    A backend class names its library in ``library_module``; backend packages import that
    library only when the backend is instantiated, so reading the attribute is cheap."""
    out = []
    for entry in _discover().values():
        if entry.backend is None and entry.error is None:
            try:
                if hasattr(entry.loader, "load") and not isinstance(entry.loader, type):
                    entry.loader = entry.loader.load()
            except Exception:
                _load(entry)  # records the reason
                continue
            module = getattr(entry.loader, "library_module", None)
            if module and module in sys.modules:
                try:
                    get_backend(entry.name)
                except BackendUnavailableError:
                    continue
        if entry.backend is not None:
            out.append(entry.backend)
    return out


def forget_types() -> None:
    """Drop the type → backend cache (after the set of backends changed)."""
    _type_cache.clear()


def backend_of(x: Any) -> Backend | None:
    """The backend whose native array ``x`` is; None for a Python scalar or None.

    Raises TypeError for anything else (a list, an unknown array type)."""
    backend = _type_cache.get(type(x))
    if backend is not None:
        return backend
    if x is None or isinstance(x, _SCALARS):
        return None
    for candidate in loaded_backends():
        if candidate.is_array(x):
            _type_cache[type(x)] = candidate
            return candidate
    raise TypeError(
        f"arrayq got a {type(x).__module__}.{type(x).__qualname__}, which no loaded backend "
        "recognises as an array; convert it first with arrayq.asarray(...)"
    )
