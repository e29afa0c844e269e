"""The conformance suite's answer key: NumPy's primitives with every composite the NumPy
backend overrides put back to the contract's reference default.

Comparing a backend with the NumPy backend itself would compare NumPy's fast paths (the
native quantized kernels, its attention and rms_norm) with themselves: a bug there could
not fail. This backend keeps NumPy for what NumPy is the truth of (the primitives: ufuncs,
reductions, indexing, matmul) and computes every composite — quantized matmul, gather_qmm,
attention, rms_norm, mean, tensordot… — the way the contract writes it, on those
primitives. Its arrays are a private ndarray subclass, so that dispatch sends every call
made inside a composite back here rather than to the NumPy backend.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..backend import COMPOSITES, NATIVE_OPS, Backend

#: The name the reference is registered under while a conformance run uses it.
NAME = "conformance-reference"


class ReferenceArray(np.ndarray):
    """An ndarray that belongs to the conformance reference backend."""


def _retag(value: Any) -> Any:
    if isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, ReferenceArray):
        return np.asarray(value).view(ReferenceArray)
    if isinstance(value, (tuple, list)):
        return type(value)(_retag(v) for v in value)
    return value


def _tagging(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def op(self: Backend, *args: Any, **kwargs: Any) -> Any:
        return _retag(method(self, *args, **kwargs))

    return op


def reference_backend_class() -> type[Backend]:
    """The reference backend class: NumPy's primitives (their results re-tagged as
    :class:`ReferenceArray`), the contract's composites."""
    from arrayq_numpy import NumPyBackend

    untagged = {"is_array", "to_numpy", "native_dtype", "dtype_of", "device_of", "devices", "check_device"}
    namespace: dict[str, Any] = {}
    for name in dir(NumPyBackend):
        attr = getattr(NumPyBackend, name)
        if name.startswith("__") or name in untagged or not callable(attr) or isinstance(attr, type):
            continue
        namespace[name] = _tagging(getattr(Backend, name) if name in (*COMPOSITES, *NATIVE_OPS) else attr)
    namespace.update(
        gives_way=False,  # plain NumPy arrays made inside a composite move here
        compile_records_plan=False,  # arrayq.compile runs eagerly here: what compiled results are checked against
        library_module=None,
        is_array=lambda self, x: isinstance(x, ReferenceArray),
        to_numpy=lambda self, x: np.asarray(x).view(np.ndarray),
    )
    return type("ConformanceReferenceBackend", (NumPyBackend,), namespace)


@contextlib.contextmanager
def reference_backend() -> Iterator[Backend]:
    """The reference backend, registered for the duration of the block (dispatch finds
    backends through the registry) and removed after it."""
    import arrayq

    arrayq.register_backend(NAME, reference_backend_class(), replace=True)
    try:
        yield arrayq.get_backend(NAME)
    finally:
        arrayq.unregister_backend(NAME)
