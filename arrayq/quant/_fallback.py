"""What runs when a backend has no native kernel for a quantized op (its optional native op
returned ``NotImplemented``): the format code on the array namespace, with the backend
pinned as the default for creation functions, so it runs on the backend's primitives."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import _api
from .. import _dtypes as dt
from .._dispatch import default_backend, resolve
from . import _formats, _reference

if TYPE_CHECKING:
    from . import QuantizedWeight


def _dequantized(backend: Any, qw: QuantizedWeight, dtype: dt.DType) -> Any:
    out = backend.dequantize(qw, dtype)
    if out is NotImplemented:
        out = _run_reference(
            backend, _formats.dequantize, qw.packed, qw.scales, qw.biases, qw.group_size, qw.bits, qw.mode, dtype
        )
    return out


def _run_reference(backend: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """The format code ``fn`` on the array namespace, with ``backend`` the default for
    creation functions inside it (every other call follows its arrays there)."""
    with default_backend(backend):
        return fn(_api, *args, **kwargs)


def reference_matmul(x: Any, qw: QuantizedWeight, transpose: bool = True) -> Any:
    """:func:`quantized_matmul` through the reference, whatever the backend has natively:
    the blockwise dequantize-then-matmul on the backend's primitives (what a native kernel
    must match). Same arguments as the native op: x and ``qw`` on one backend, checked."""
    backend, _ = resolve(x, qw.packed, qw.scales, qw.biases)
    return _run_reference(
        backend, _reference.quantized_matmul_reference, x, qw.packed, qw.scales, qw.biases,
        transpose=transpose, group_size=qw.group_size, bits=qw.bits, mode=qw.mode,
    )  # fmt: skip


def reference_gather_qmm(x: Any, qw: QuantizedWeight, lhs_indices: Any, rhs_indices: Any, transpose: bool) -> Any:
    """:func:`gather_qmm` through the reference (see :func:`reference_matmul`)."""
    backend, _ = resolve(x, qw.packed, qw.scales, qw.biases, lhs_indices, rhs_indices)
    return _run_reference(
        backend, _reference.gather_qmm_reference, x, qw.packed, qw.scales, qw.biases, lhs_indices, rhs_indices,
        transpose=transpose, group_size=qw.group_size, bits=qw.bits, mode=qw.mode,
    )  # fmt: skip
