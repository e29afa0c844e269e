"""What a backend author needs, and nothing private: subclass :class:`Backend`, implement
the primitives, override composites and optional native ops where your library is faster,
and prove it with ``arrayq conformance NAME``.

* ``_contract.py`` declares the contract: attributes, primitives (raise until implemented)
  and optional native ops (return ``NotImplemented``, so the frontend runs its reference).
* ``_composites.py`` holds the defaults of the composites, written once on the primitives.
* :mod:`arrayq.backend.dtypes` has the dtypes and promotion rules; the errors are arrayq's
  own (:mod:`arrayq.errors`), the same on every backend; the op tables say which names
  ``unary``/``binary``/``reduce`` receive.

docs/writing-a-backend.md walks through it.
"""

from .._ops import (
    BINARY_OPS,
    COMPOSITES,
    DISTRIBUTED_OPS,
    FFT_OPS,
    LINALG_OPS,
    NATIVE_OPS,
    PRIMITIVES,
    REDUCE_OPS,
    UNARY_OPS,
)
from ..errors import (
    ArrayqError,
    BackendMismatchError,
    BackendUnavailableError,
    LinAlgError,
    QuantizationError,
    UnknownBackendError,
    UnsupportedDTypeError,
    UnsupportedOperationError,
)
from . import dtypes
from ._composites import Backend, broadcast_shapes
from ._contract import Array, Contract
from .dtypes import DType

#: The methods that implement primitives (``unary``, ``binary`` and ``reduce`` stand for the
#: elementwise and reduction op names of ``PRIMITIVES``), in the contract's order.
PRIMITIVE_METHODS = tuple(
    name
    for name, value in vars(Contract).items()
    if callable(value) and not name.startswith("_") and name not in NATIVE_OPS
)

__all__ = [
    "BINARY_OPS",
    "COMPOSITES",
    "DISTRIBUTED_OPS",
    "FFT_OPS",
    "LINALG_OPS",
    "NATIVE_OPS",
    "PRIMITIVES",
    "PRIMITIVE_METHODS",
    "REDUCE_OPS",
    "UNARY_OPS",
    "Array",
    "ArrayqError",
    "Backend",
    "BackendMismatchError",
    "BackendUnavailableError",
    "Contract",
    "DType",
    "LinAlgError",
    "QuantizationError",
    "UnknownBackendError",
    "UnsupportedDTypeError",
    "UnsupportedOperationError",
    "broadcast_shapes",
    "dtypes",
]
