"""Test-only backends: NumPy underneath, but each with its own ndarray subclass, so that
dispatch can tell their arrays apart from plain NumPy arrays and from each other. Every
op's result is re-tagged, so a whole computation stays on the fake backend."""

from __future__ import annotations

import numpy as np

from arrayq.backend import COMPOSITES
from arrayq_numpy import NumPyBackend

#: Backend methods implementing primitives that take or give arrays (the elementwise and
#: reduction op names of the contract go through unary/binary/reduce/argreduce).
ARRAY_PRIMITIVE_METHODS = (
    "from_numpy",
    "astype",
    "full",
    "arange",
    "where",
    "unary",
    "binary",
    "reduce",
    "argreduce",
    "cumulative_sum",
    "reshape",
    "permute_dims",
    "broadcast_to",
    "concat",
    "flip",
    "take",
    "take_along_axis",
    "nonzero",
    "searchsorted",
    "sort",
    "argsort",
    "unique_all",
    "matmul",
)
ARRAY_OPS = (*ARRAY_PRIMITIVE_METHODS, *COMPOSITES)


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
