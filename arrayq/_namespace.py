"""``arrayq.namespace(backend)``: the array API namespace of one backend, for code written
against "a namespace ``xp``" that compares dtypes with ``==``.

``arrayq`` itself is one namespace for every backend: its dtypes are arrayq's own
:class:`~arrayq.DType` objects, equal to each backend's native dtypes when the DType is on
the left (``arrayq.float32 == x.dtype``). Some libraries answer the reverse comparison
themselves, with False: ``mlx.core.float32 == arrayq.float32`` and
``array_api_strict.float32 == arrayq.float32`` are False. Code that writes
``x.dtype == xp.float32`` (the standard's test suite does, everywhere) therefore needs a
namespace whose dtypes *are* the backend's. That is this view:

* the dtype names are the backend's native dtypes (``mlx.core.float32``); a dtype the
  backend lacks (MLX's complex128) is absent, as the standard says an unsupported dtype is;
* functions are arrayq's, run with this backend (and device) as the default backend, so
  creation functions make its arrays; functions that return dtypes (``result_type``,
  ``finfo``/``iinfo``'s ``dtype``, ``__array_namespace_info__``'s dictionaries) return
  native ones;
* ``fft`` and ``linalg`` are views of the same kind.

Nothing is global: each call builds a new view; arrays are the backend's own as always.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable
from typing import Any

from . import _api, fft, linalg
from ._dispatch import current_backend, default_backend
from ._dtypes import DType, as_dtype
from ._registry import get_backend
from .backend import Backend
from .errors import UnsupportedDTypeError


class _NativeInfo:
    """``__array_namespace_info__()`` with the backend's native dtypes."""

    def __init__(self, info: Any, native: Callable[[Any], Any]) -> None:
        self._info, self._native = info, native

    def capabilities(self) -> dict[str, bool]:
        return self._info.capabilities()

    def default_device(self) -> Any:
        return self._info.default_device()

    def devices(self) -> list[Any]:
        return self._info.devices()

    def default_dtypes(self, *, device: Any = None) -> dict[str, Any]:
        return {k: self._native(v) for k, v in self._info.default_dtypes(device=device).items()}

    def dtypes(self, *, device: Any = None, kind: Any = None) -> dict[str, Any]:
        return {k: self._native(v) for k, v in self._info.dtypes(device=device, kind=kind).items()}


class Namespace(types.ModuleType):
    """The view :func:`arrayq.namespace` returns (a module object, so tools that expect a
    namespace module accept it)."""

    def __init__(self, name: str, backend: Backend, device: Any, module: types.ModuleType, names: list[str]) -> None:
        super().__init__(name, module.__doc__)
        self._backend, self._device = backend, device
        for name in names:
            value = getattr(module, name)
            if isinstance(value, DType):
                try:
                    setattr(self, name, backend.native_dtype(value))
                except UnsupportedDTypeError:
                    pass  # absent, as the standard says an unsupported dtype is
            elif callable(value) and not isinstance(value, type):
                setattr(self, name, self._wrap(value))
            else:
                setattr(self, name, value)

    def _native(self, dtype: Any) -> Any:
        return self._backend.native_dtype(as_dtype(dtype))

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        name = fn.__name__

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            with default_backend(self._backend, self._device):
                out = fn(*args, **kwargs)
            if name == "result_type":
                return self._native(out)
            if name in ("finfo", "iinfo"):
                return dataclasses.replace(out, dtype=self._native(out.dtype))
            if name == "__array_namespace_info__":
                return _NativeInfo(out, self._native)
            return out

        return call


def namespace(backend: str | Backend | None = None, device: Any = None) -> Namespace:
    """The array API namespace of ``backend`` (a name or a Backend; None: the current
    default backend) on ``device``: arrayq's functions with that backend as the default,
    its native dtypes under the standard's names, and ``fft``/``linalg`` alike (module
    doc). Raises UnknownBackendError / BackendUnavailableError as ``get_backend`` does,
    and ValueError for a device the backend lacks.

    >>> xp = arrayq.namespace("mlx")
    >>> xp.zeros(3).dtype == xp.float32   # mlx.core.float32 on both sides
    True
    """
    b = current_backend() if backend is None else get_backend(backend)
    if device is not None:
        b.check_device(device)
    view = Namespace(f"arrayq[{b.name}]", b, device, _api, [*_api.__all__, "__array_api_version__"])
    for sub in (fft, linalg):
        name = sub.__name__.rpartition(".")[2]
        setattr(view, name, Namespace(f"arrayq[{b.name}].{name}", b, device, sub, list(sub.__all__)))
    return view
