"""arrayq: write array and model code once, run it on any array backend, with quantized
linear algebra as a first-class op.

Functions take and return the backend's own arrays (``numpy.ndarray``,
``mlx.core.array``); the backend comes from the arguments, or for creation functions from
:func:`default_backend`. ``import arrayq`` imports no backend library.
"""

from __future__ import annotations

import builtins
from typing import Any

from . import _creation, _elementwise, _manipulation, _searching, _statistical, linalg
from ._creation import *  # noqa: F403
from ._dispatch import backend_of, current_backend, default_backend, set_default_backend, to_backend
from ._dtypes import (
    DType,
    as_dtype,
    bfloat16,
    bool_,
    can_cast,
    complex64,
    complex128,
    finfo,
    float16,
    float32,
    float64,
    iinfo,
    int8,
    int16,
    int32,
    int64,
    isdtype,
    result_type,
    uint8,
    uint16,
    uint32,
    uint64,
)
from ._elementwise import *  # noqa: F403
from ._linear_algebra import matmul, tensordot, vecdot
from ._manipulation import *  # noqa: F403
from ._registry import BackendInfo, get_backend, list_backends, register_backend, unregister_backend
from ._searching import *  # noqa: F403
from ._statistical import *  # noqa: F403
from ._version import __version__ as __version__
from .backend import COMPOSITES, PRIMITIVES, Backend
from .errors import (
    ArrayqError,
    BackendMismatchError,
    BackendUnavailableError,
    QuantizationError,
    UnknownBackendError,
    UnsupportedDTypeError,
    UnsupportedOperationError,
)
from .quantization import QuantizedWeight, dequantize, quantize

bool = bool_  # the array API spells it arrayq.bool
e, inf, nan, pi = 2.718281828459045, float("inf"), float("nan"), 3.141592653589793
newaxis = None
__array_api_version__ = "2023.12"


def dtype(x: Any) -> DType:
    """The arrayq DType of array ``x`` (any backend)."""
    return as_dtype(x.dtype)


def astype(x: Any, dtype: Any, /, *, copy: builtins.bool = True, device: Any = None) -> Any:
    """``x`` converted to ``dtype`` (an arrayq dtype, a name, or a native dtype), same
    shape; with ``copy`` false, ``x`` itself when it already has that dtype. Raises
    UnsupportedDTypeError when x's backend lacks the dtype."""
    from ._dispatch import resolve

    backend, (x,) = resolve(x)
    target = as_dtype(dtype)
    if not copy and backend.dtype_of(x) == target:
        return x
    return backend.astype(x, target, copy)


def eval(*arrays: Any) -> None:
    """Compute lazy arrays now (MLX builds graphs; NumPy is eager and does nothing).
    Accepts arrays and containers of arrays, like :func:`to_backend`."""
    import dataclasses

    flat: list[tuple[Backend, Any]] = []

    def collect(o: Any) -> None:
        if isinstance(o, (list, tuple)):
            for v in o:
                collect(v)
        elif isinstance(o, dict):
            for v in o.values():
                collect(v)
        elif dataclasses.is_dataclass(o) and not isinstance(o, type):
            for f in dataclasses.fields(o):
                collect(getattr(o, f.name))
        elif not (o is None or isinstance(o, (str, int, float, complex))) and (b := backend_of(o)) is not None:
            flat.append((b, o))

    collect(arrays)
    by_backend: dict[int, tuple[Backend, list[Any]]] = {}
    for b, a in flat:
        by_backend.setdefault(id(b), (b, []))[1].append(a)
    for b, xs in by_backend.values():
        b.eval(*xs)


def __getattr__(name: str) -> Any:
    # arrayq.nn and arrayq.models load on first use, keeping `import arrayq` small
    if name in ("nn", "models", "conformance", "bench"):
        import importlib

        return importlib.import_module(f"arrayq.{name}")
    raise AttributeError(f"module 'arrayq' has no attribute {name!r}")


def to_numpy(x: Any) -> Any:
    """``x`` (any backend) as a NumPy array, evaluating it first if lazy."""
    b = backend_of(x)
    if b is None:
        import numpy as np

        return np.asarray(x)
    return b.to_numpy(x)


def capabilities(backend: str | Backend | None = None) -> dict[str, str]:
    """For every op of the contract: "primitive" (the backend implements a required op),
    "native" (it overrides a composite), "fallback" (the composite's reference default
    runs), or "gap: <reason>" (declared unsupported). ``backend`` defaults to the current
    default backend."""
    b = get_backend(backend) if backend is not None else current_backend()
    out = {}
    for op in (*PRIMITIVES, *COMPOSITES):
        if op in b.declared_gaps:
            out[op] = f"gap: {b.declared_gaps[op]}"
        elif op in PRIMITIVES:
            out[op] = "primitive"
        else:
            out[op] = "native" if getattr(type(b), op) is not getattr(Backend, op) else "fallback"
    return out


# the chapter modules' names first, then the rest (written so that type checkers follow it)
__all__: list[str] = []
__all__ += _creation.__all__
__all__ += _elementwise.__all__
__all__ += _manipulation.__all__
__all__ += _searching.__all__
__all__ += _statistical.__all__
__all__ += [
    "matmul",
    "tensordot",
    "vecdot",
    "linalg",
    "DType",
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "astype",
    "can_cast",
    "finfo",
    "iinfo",
    "isdtype",
    "result_type",
    "as_dtype",
    "dtype",
    "e",
    "inf",
    "nan",
    "pi",
    "newaxis",
    "Backend",
    "BackendInfo",
    "backend_of",
    "capabilities",
    "current_backend",
    "default_backend",
    "eval",
    "get_backend",
    "list_backends",
    "register_backend",
    "set_default_backend",
    "to_backend",
    "to_numpy",
    "unregister_backend",
    "QuantizedWeight",
    "quantize",
    "dequantize",
    "ArrayqError",
    "BackendMismatchError",
    "BackendUnavailableError",
    "QuantizationError",
    "UnknownBackendError",
    "UnsupportedDTypeError",
    "UnsupportedOperationError",
]
