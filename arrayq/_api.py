"""The array API namespace: every array function and dtype of the frontend, without the
registry, quantization or models. Code written against "an array namespace ``xp``" (the
quantized formats' reference) gets this module, so it never imports the package that
imports it. ``arrayq`` re-exports all of it."""

from __future__ import annotations

import builtins
from typing import Any

from . import _creation, _elementwise, _manipulation, _searching, _statistical
from ._creation import *  # noqa: F403
from ._dispatch import Device, backend_of, device
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
from ._info import __array_namespace_info__
from ._linear_algebra import matmul, tensordot, vecdot
from ._manipulation import *  # noqa: F403
from ._searching import *  # noqa: F403
from ._statistical import *  # noqa: F403

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

    flat: list[tuple[Any, Any]] = []
    # a loop, not a recursive closure: that would be a reference cycle holding the arrays
    # until the next garbage collection
    stack: list[Any] = [arrays]
    while stack:
        o = stack.pop()
        if isinstance(o, (list, tuple)):
            stack.extend(reversed(o))
        elif isinstance(o, dict):
            stack.extend(reversed(list(o.values())))
        elif dataclasses.is_dataclass(o) and not isinstance(o, type):
            stack.extend(getattr(o, f.name) for f in reversed(dataclasses.fields(o)))
        elif not (o is None or isinstance(o, (str, int, float, complex))) and (b := backend_of(o)) is not None:
            flat.append((b, o))
    by_backend: dict[int, tuple[Any, list[Any]]] = {}
    for b, a in flat:
        by_backend.setdefault(id(b), (b, []))[1].append(a)
    for b, xs in by_backend.values():
        b.eval(*xs)


def to_numpy(x: Any) -> Any:
    """``x`` (any backend) as a NumPy array, evaluating it first if lazy."""
    b = backend_of(x)
    if b is None:
        import numpy as np

        return np.asarray(x)
    return b.to_numpy(x)


__all__: list[str] = []
__all__ += _creation.__all__
__all__ += _elementwise.__all__
__all__ += _manipulation.__all__
__all__ += _searching.__all__
__all__ += _statistical.__all__
__all__ += [
    "__array_namespace_info__",
    "matmul",
    "tensordot",
    "vecdot",
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
    "eval",
    "to_numpy",
    "backend_of",
    "Device",
    "device",
]
