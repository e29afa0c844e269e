"""Test-only backends: NumPy underneath, but each with its own ndarray subclass, so that
dispatch can tell their arrays apart from plain NumPy arrays and from each other. Every
op's result is re-tagged, so a whole computation stays on the fake backend."""

from __future__ import annotations

import numpy as np

from arrayq.backend import COMPOSITES, NATIVE_OPS, PRIMITIVE_METHODS
from arrayq_numpy import NumPyBackend

#: Backend methods implementing primitives that take or give arrays (is_array,
#: native_dtype and to_numpy are the fakes' own).
ARRAY_PRIMITIVE_METHODS = tuple(m for m in PRIMITIVE_METHODS if m not in ("is_array", "native_dtype", "to_numpy"))
ARRAY_OPS = (*ARRAY_PRIMITIVE_METHODS, *COMPOSITES, *NATIVE_OPS)


def _retag(value, array_type):
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value).view(array_type)
    if isinstance(value, (tuple, list)):
        return type(value)(_retag(v, array_type) for v in value)
    return value


def _tagging(method, array_type):
    def op(self, *args, **kwargs):
        return _retag(method(self, *args, **kwargs), array_type)

    op.__name__ = method.__name__
    return op


def make_backend_class(tag: str, gives_way: bool = False, base: type = NumPyBackend) -> type:
    array_type = type(f"{tag}Array", (np.ndarray,), {})
    namespace = {op: _tagging(getattr(base, op), array_type) for op in ARRAY_OPS}

    def __init__(self) -> None:
        base.__init__(self)
        self.calls = []

    def binary(self, op, x1, x2):
        self.calls.append((op, type(x1), type(x2)))
        return _retag(base.binary(self, op, x1, x2), array_type)

    namespace.update(
        __init__=__init__,
        binary=binary,
        library_module=None,
        array_cls=array_type,
        gives_way=gives_way,
        is_array=lambda self, x: isinstance(x, array_type),
        to_numpy=lambda self, x: np.asarray(x).view(np.ndarray),
    )
    return type(f"{tag}Backend", (base,), namespace)
