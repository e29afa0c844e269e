"""arrayq: write array and model code once, run it on any array backend, with quantized
linear algebra as a first-class op.

Functions take and return the backend's own arrays (``numpy.ndarray``,
``mlx.core.array``); the backend comes from the arguments, or for creation functions from
:func:`default_backend`. ``import arrayq`` imports no backend library.
"""

from __future__ import annotations

from typing import Any

from . import _api, fft, linalg
from ._api import *  # noqa: F403
from ._api import __array_api_version__ as __array_api_version__
from ._compile import compile
from ._dispatch import current_backend, default_backend, set_default_backend, to_backend
from ._namespace import namespace
from ._ops import COMPOSITES, NATIVE_OPS, PRIMITIVES
from ._registry import BackendInfo, get_backend, list_backends, register_backend, unregister_backend
from ._version import __version__ as __version__
from .backend import Backend
from .errors import (
    ArrayqError,
    BackendMismatchError,
    BackendUnavailableError,
    CompileError,
    LinAlgError,
    QuantizationError,
    UnknownBackendError,
    UnsupportedDTypeError,
    UnsupportedOperationError,
)
from .quant import QuantizedWeight, dequantize, quantize

# the array API's names first (written so that type checkers follow it), then the rest
__all__: list[str] = []
__all__ += _api.__all__
__all__ += [
    "fft",
    "linalg",
    "Backend",
    "BackendInfo",
    "capabilities",
    "compile",
    "current_backend",
    "default_backend",
    "get_backend",
    "list_backends",
    "namespace",
    "register_backend",
    "set_default_backend",
    "to_backend",
    "unregister_backend",
    "QuantizedWeight",
    "quantize",
    "dequantize",
    "ArrayqError",
    "BackendMismatchError",
    "BackendUnavailableError",
    "CompileError",
    "LinAlgError",
    "QuantizationError",
    "UnknownBackendError",
    "UnsupportedDTypeError",
    "UnsupportedOperationError",
]


def __getattr__(name: str) -> Any:
    # arrayq.nn and arrayq.models load on first use, keeping `import arrayq` small
    if name in ("nn", "models", "conformance", "bench", "distributed"):
        import importlib

        return importlib.import_module(f"arrayq.{name}")
    raise AttributeError(f"module 'arrayq' has no attribute {name!r}")


def capabilities(backend: str | Backend | None = None) -> dict[str, str]:
    """For every op of the contract: "primitive" (the backend implements a required op),
    "native" (it overrides a composite or an optional native op), "fallback" (the
    contract's default or the frontend's reference runs), or "gap: <reason>" (declared
    unsupported). ``backend`` defaults to the current default backend."""
    b = get_backend(backend) if backend is not None else current_backend()
    out = {}
    for op in (*PRIMITIVES, *COMPOSITES, *NATIVE_OPS):
        if op in b.declared_gaps:
            out[op] = f"gap: {b.declared_gaps[op]}"
        elif op in PRIMITIVES:
            out[op] = "primitive"
        else:
            out[op] = "native" if getattr(type(b), op) is not getattr(Backend, op) else "fallback"
    return out
