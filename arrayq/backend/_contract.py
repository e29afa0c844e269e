"""The backend contract, declared: what a backend is, with no implementation here.

* **Attributes** say what the backend is called, which library it wraps, and what it
  lacks (``declared_gaps``).
* **Primitives** raise ``UnsupportedOperationError`` until a backend implements them (or
  lists them in ``declared_gaps``).
* **Optional native ops** return ``NotImplemented``: the frontend then runs its reference
  (Nx's ``block``: a default the backend may replace, case by case, by returning a result).

The defaults of everything else — the composites, devices, laziness — are in
``_composites.py``; :class:`arrayq.backend.Backend` is both together.

Arguments arrive normalised by the frontend: ``dtype`` as an :class:`arrayq.DType` or None,
a reduction's ``axis`` as a tuple of non-negative ints or None, ``shape`` as a tuple of
ints, Python scalars only where the array API allows them (either operand of a
binary elementwise op, fill values), quantized weights as a validated ``QuantizedWeight`` whose
arrays are this backend's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._dtypes import DType
from ..errors import unsupported

if TYPE_CHECKING:
    from ..quant import QuantizedWeight

Array = Any  # the backend's own array type


class Contract:
    """The declarations every backend fulfils. Subclass :class:`arrayq.backend.Backend`,
    not this."""

    #: Set by the registry to the name the backend is registered under.
    name: str = "unnamed"
    #: The module of the array library (checked in sys.modules to recognise its arrays).
    library_module: str | None = None
    #: Distributions whose versions the conformance report names (empty: the distribution of
    #: ``library_module``'s top-level package).
    library_packages: tuple[str, ...] = ()
    #: What to tell a user whose library is missing.
    install_hint: str | None = None
    #: NumPy, the reference, moves its arrays to the other backend in a mixed call.
    gives_way: bool = False
    #: Dtypes Python floats / ints become; also what ``full``/``arange`` give with dtype=None
    #: for float / integer fill values.
    default_float: DType
    default_int: DType
    #: What this backend does not support, ``{"what": "why"}``: op names, dtype names, or
    #: "data-dependent shapes". The conformance suite skips these with the reason.
    declared_gaps: dict[str, str] = {}

    # ---- primitives: data and dtypes
    def is_array(self, x: Any) -> bool:
        """Whether ``x`` is one of this backend's arrays."""
        raise unsupported(self, "is_array")

    def native_dtype(self, dtype: DType) -> Any:
        """The library's dtype for ``dtype``; raises UnsupportedDTypeError if it has none."""
        raise unsupported(self, "native_dtype")

    def from_numpy(self, a: Any, device: Any = None) -> Array:
        """A backend array equal to the NumPy array ``a`` (same dtype), on ``device``."""
        raise unsupported(self, "from_numpy")

    def to_numpy(self, x: Array) -> Any:
        """``x`` as a NumPy array (evaluating it if the backend is lazy)."""
        raise unsupported(self, "to_numpy")

    def astype(self, x: Array, dtype: DType, copy: bool = True) -> Array:
        """``x`` in ``dtype`` (a copy unless ``copy`` is false and nothing changes)."""
        raise unsupported(self, "astype")

    # ---- primitives: creation
    def full(self, shape: tuple[int, ...], fill_value: Any, dtype: DType | None, device: Any) -> Array:
        """An array of ``shape`` filled with ``fill_value``; dtype None: ``default_float`` for
        a float fill, ``default_int`` for an int, bool for a bool."""
        raise unsupported(self, "full")

    def arange(self, start: Any, stop: Any, step: Any, dtype: DType | None, device: Any) -> Array:
        """``start, start + step, ...`` below ``stop``; dtype None: ``default_int`` if all
        three are ints, else ``default_float``."""
        raise unsupported(self, "arange")

    # ---- primitives: elementwise
    def unary(self, op: str, x: Array) -> Array:
        """Apply the elementwise op ``op`` (one of ``UNARY_OPS``) with array API semantics."""
        raise unsupported(self, op)

    def binary(self, op: str, x1: Array, x2: Array) -> Array:
        """Apply ``op`` (one of ``BINARY_OPS``) with broadcasting; either operand may be a
        Python scalar."""
        raise unsupported(self, op)

    def where(self, condition: Array, x1: Array, x2: Array) -> Array:
        """``x1`` where ``condition`` holds, else ``x2``, broadcast together."""
        raise unsupported(self, "where")

    # ---- primitives: reductions
    def reduce(self, op: str, x: Array, axis: tuple[int, ...] | None, keepdims: bool, dtype: DType | None) -> Array:
        """Reduce with ``op`` (one of ``REDUCE_OPS``) over ``axis`` (None: all axes).
        ``dtype`` is only given for sum and prod."""
        raise unsupported(self, op)

    def argreduce(self, op: str, x: Array, axis: int | None, keepdims: bool) -> Array:
        """``op`` is "argmax" or "argmin"; the first occurrence wins; axis None flattens."""
        raise unsupported(self, op)

    def cumulative_sum(self, x: Array, axis: int, dtype: DType | None, include_initial: bool) -> Array:
        """Running sums along ``axis`` (with a leading 0 if ``include_initial``)."""
        raise unsupported(self, "cumulative_sum")

    # ---- primitives: shapes and indexing
    def reshape(self, x: Array, shape: tuple[int, ...]) -> Array:
        """``x`` in ``shape`` (one entry may be -1), same elements in row-major order."""
        raise unsupported(self, "reshape")

    def permute_dims(self, x: Array, axes: tuple[int, ...]) -> Array:
        """``x`` with its axes reordered."""
        raise unsupported(self, "permute_dims")

    def broadcast_to(self, x: Array, shape: tuple[int, ...]) -> Array:
        """``x`` broadcast to ``shape``."""
        raise unsupported(self, "broadcast_to")

    def concat(self, arrays: Sequence[Array], axis: int | None) -> Array:
        """Join along ``axis``; ``axis`` None flattens the arrays first."""
        raise unsupported(self, "concat")

    def flip(self, x: Array, axis: tuple[int, ...] | None) -> Array:
        """``x`` reversed along ``axis`` (None: every axis)."""
        raise unsupported(self, "flip")

    def take(self, x: Array, indices: Array, axis: int) -> Array:
        """Elements of ``x`` at ``indices`` along ``axis``; the frontend has checked that
        every index lies in range."""
        raise unsupported(self, "take")

    def take_along_axis(self, x: Array, indices: Array, axis: int) -> Array:
        """``x`` indexed along ``axis`` by ``indices`` of x's rank (checked in range)."""
        raise unsupported(self, "take_along_axis")

    # ---- primitives: searching, sorting, sets
    def nonzero(self, x: Array) -> tuple[Array, ...]:
        """The indices of the nonzero elements, one array per axis."""
        raise unsupported(self, "nonzero")

    def searchsorted(self, x1: Array, x2: Array, side: str, sorter: Array | None) -> Array:
        """Where the values ``x2`` go in the sorted 1-D ``x1``."""
        raise unsupported(self, "searchsorted")

    def sort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        """``x`` sorted along ``axis``."""
        raise unsupported(self, "sort")

    def argsort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        """The indices that sort ``x`` along ``axis``."""
        raise unsupported(self, "argsort")

    def unique_all(self, x: Array) -> tuple[Array, Array, Array, Array]:
        """(values, first indices, inverse indices shaped like x, counts), values sorted."""
        raise unsupported(self, "unique_all")

    # ---- primitives: linear algebra
    def matmul(self, x1: Array, x2: Array) -> Array:
        """The array API ``matmul`` (batch axes broadcast)."""
        raise unsupported(self, "matmul")

    # ---- optional native ops: return a result, or NotImplemented for the reference
    def quantize(self, w: Array, group_size: int, bits: int, mode: str) -> Any:
        """``(packed, scales, biases)`` for the float weight ``w`` (..., rows, cols), in
        MLX's format bit for bit (docs/quantization-formats.md); biases None outside affine."""
        return NotImplemented

    def dequantize(self, qw: QuantizedWeight, dtype: DType) -> Any:
        """The float array (..., rows, cols) in ``dtype`` that ``qw`` stands for."""
        return NotImplemented

    def quantized_matmul(self, x: Array, qw: QuantizedWeight, transpose: bool) -> Any:
        """``x @ dequantize(qw).T`` (transpose) or ``x @ dequantize(qw)``, x (..., M, K) or
        (K,) float, not empty; result in x's dtype, accumulated in float32 or better."""
        return NotImplemented

    def gather_qmm(
        self, x: Array, qw: QuantizedWeight, lhs_indices: Array | None, rhs_indices: Array | None, transpose: bool
    ) -> Any:
        """``mlx.core.gather_qmm``'s product; indices checked in range and broadcastable."""
        return NotImplemented

    def scaled_dot_product_attention(self, q: Array, k: Array, v: Array, scale: float, mask: Any) -> Any:
        """Attention of q (B, H, L, D) over k, v (B, Hkv, S, D); ``mask`` None, "causal" or an
        additive array (checked by arrayq.nn). k and v may be of a narrower floating dtype
        than q (a float16 KV cache): a backend that does not read them as they are returns
        NotImplemented, and arrayq.nn asks again with them converted to q's dtype."""
        return NotImplemented

    def prefix_attention(self, q: Array, k: Array, v: Array, scale: float, length: Any, causal: bool) -> Any:
        """Attention of q (B, H, L, D) over the first ``length`` keys of k, v (B, Hkv, S, D)
        (the rest ignored: a fixed-size cache's unwritten tail); with ``causal`` query i sees
        keys up to ``length - L + i``. ``length``: an int in range, or a 0-d integer array not
        to be read on the host (checked by arrayq.nn as far as it can be). k and v may be
        narrower than q, as for :meth:`scaled_dot_product_attention`."""
        return NotImplemented

    def rms_norm(self, x: Array, weight: Array | None, eps: float) -> Any:
        """``x / sqrt(mean(x**2, axis=-1) + eps) * weight``, in x's dtype."""
        return NotImplemented

    def rope(self, x: Array, dims: int, traditional: bool, base: float, scale: float, offset: Any) -> Any:
        """``x`` (..., L, D) with its first ``dims`` features rotated for positions
        ``offset`` .. ``offset+L-1`` (``arrayq.nn.rope``; arguments checked there), in x's dtype.
        ``offset``: an int, or a 0-d integer array not to be read on the host (a lazy backend
        returns NotImplemented where it cannot take it as an array)."""
        return NotImplemented

    def swiglu(self, gate: Array, up: Array) -> Any:
        """``silu(gate) * up`` elementwise (``arrayq.nn.swiglu``; one shape and one floating
        dtype, checked there), in their dtype."""
        return NotImplemented

    def swiglu_halves(self, gate_up: Array) -> Any:
        """``swiglu`` of the halves of ``gate_up``'s last axis (..., 2N): gate the first N
        columns, up the last N, as a fused gate/up projection gives them (``arrayq.nn.swiglu``
        with one array; checked there); (..., N) in its dtype."""
        return NotImplemented

    def qkv_heads(
        self,
        qkv: Array,
        n_heads: int,
        n_kv_heads: int,
        head_dim: int,
        q_weight: Array,
        k_weight: Array,
        eps: float,
        dims: int,
        traditional: bool,
        base: float,
        scale: float,
        offset: Any,
    ) -> Any:
        """``(q, k, v)`` of a fused q/k/v projection's output (``arrayq.nn.qkv_heads``;
        arguments checked there): heads split, q and k RMS-normed then rotated as ``rope``
        (``offset`` as there), each (B, heads, L, head_dim), in qkv's dtype."""
        return NotImplemented

    def add_rms_norm(self, x: Array, y: Array, weight: Array, eps: float) -> Any:
        """``(x + y, rms_norm(x + y, weight, eps))`` (``arrayq.nn.add_rms_norm``; one shape
        and floating dtype, checked there), in x's dtype."""
        return NotImplemented

    def slice_update(self, x: Array, update: Array, start: Any, axis: int) -> Any:
        """``x`` with ``update`` written at ``start`` .. along ``axis`` (``arrayq.slice_update``;
        shapes and dtypes checked there): ``start`` an int in range, or a 0-d int32 array
        already clamped into range, not to be read on the host. A new array."""
        return NotImplemented

    # ---- optional native ops: a distributed engine (arrayq.distributed). The defaults say
    # "none": arrayq.distributed then gives a group of this process alone.
    def distributed_init(self, engine: str) -> Any:
        """This process's place in the backend's distributed engine, ``(rank, size, handle)``
        (``handle``: the engine's own group, handed back to the collectives below), started
        with ``engine`` ("any" or the engine's name for one, e.g. MLX's "ring" or "nccl");
        NotImplemented where the backend has no engine."""
        return NotImplemented

    def all_sum(self, x: Array, handle: Any) -> Any:
        """The elementwise sum of ``x`` over every process of the group ``handle``, on each."""
        return NotImplemented

    def all_gather(self, x: Array, handle: Any) -> Any:
        """Every process's ``x`` (same shape on each) concatenated along axis 0, rank order."""
        return NotImplemented

    def send(self, x: Array, dst: int, handle: Any) -> Any:
        """Send ``x`` to rank ``dst`` of the group (checked: another rank); returns what the
        backend needs evaluated for the send to happen (an array; lazy backends)."""
        return NotImplemented

    def recv(self, shape: tuple[int, ...], dtype: DType, src: int, handle: Any) -> Any:
        """The array of ``shape`` and ``dtype`` that rank ``src`` sends (checked: another rank)."""
        return NotImplemented
