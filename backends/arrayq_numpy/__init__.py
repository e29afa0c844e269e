"""arrayq's NumPy backend: the reference. Exact, readable, and eager.

Ops follow the array API standard through ``array_api_compat.numpy``; bfloat16 comes from
``ml_dtypes``. NumPy's habit of returning NumPy scalars from 0-d results is undone here,
so every result is an ``numpy.ndarray``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, cast

import numpy as np

from arrayq.backend import DISTRIBUTED_OPS, Array, UnsupportedDTypeError
from arrayq.backend import dtypes as dt
from arrayq.quant import QuantizedWeight

from . import _fastpath, _native, _replay, _rowops
from ._fastpath import affine_matmul
from ._linalg import NumPyLinalg
from ._native import activations, num_threads, set_num_threads

_Norm = Literal["backward", "ortho", "forward"]  # checked by arrayq.fft


def _arr(x: Any) -> np.ndarray:
    return x if type(x) is np.ndarray else np.asarray(x)


#: Weights per matrix from which a batched affine weight or ``gather_qmm`` runs one fast-path
#: call per weight matrix; smaller matrices (and empty ones) take the blockwise reference,
#: which handles the whole batch at once. Measured per matrix (2 cores, native kernels, one
#: row of x): 32 x 64 (2048 weights) 6.8 us against the reference's 3.2; 64 x 128 (8192) 7.2
#: against 15.6; 256 x 256 9.1 against 205.
PER_MATRIX_MIN_WEIGHTS = 4096


#: Elements per block of :meth:`NumPyBackend.erf` (256 KiB of float32). Measured on an
#: (8, 123, 1536) float32 array, 2 cores: 4096 47 ms, 16384 24 ms, 65536 22 ms, 262144 20 ms,
#: the whole array at once 67 ms. 65536 keeps a float64 block (512 KiB) in L2 as well.
ERF_BLOCK = 1 << 16


def _per_matrix_pays(packed: np.ndarray, bits: int) -> bool:
    """Whether each weight matrix (the last two axes of ``packed``) is big enough for its
    own fast-path call (:data:`PER_MATRIX_MIN_WEIGHTS`)."""
    return packed.shape[-2] * packed.shape[-1] * 32 // bits >= PER_MATRIX_MIN_WEIGHTS


_NO_ENGINE = (
    "NumPy has no distributed engine: one process only (a group of size 1); "
    "several processes need the mlx backend (mx.distributed)"
)


class NumPyBackend(_native.NativeActivations, NumPyLinalg):
    """The reference backend, on ``numpy.ndarray``; its linear algebra is ``numpy.linalg``
    (:mod:`arrayq_numpy._linalg`)."""

    library_module = "numpy"
    install_hint = "pip install numpy array-api-compat ml_dtypes"
    gives_way = True
    #: arrayq.compile records a function's backend calls once per signature and replays them
    compile_records_plan = True
    default_float = dt.float64
    default_int = dt.int64
    #: no distributed engine: arrayq.distributed's group of this process alone runs instead
    declared_gaps = dict.fromkeys(DISTRIBUTED_OPS, _NO_ENGINE)

    def __init__(self) -> None:
        import array_api_compat.numpy as xp
        import ml_dtypes

        # typed Any: array_api_compat builds this namespace at import time, its stubs do not list it
        self.xp: Any = xp
        self._native = {
            d: (np.dtype(ml_dtypes.bfloat16) if d.name == "bfloat16" else np.dtype(d.name)) for d in dt.ALL_DTYPES
        }
        #: repacked copies of the weights 8-bit-activation decode reads (``repacked.nbytes()``)
        self.repacked = _native.RepackedWeights()
        #: the keys each row of a padding mask sees, the last mask's remembered (attention)
        self.key_lengths = _native.KeyLengths()

    def replay_form(self, method: str, args: tuple[Any, ...], fixed: tuple[bool, ...], result: Any) -> Any:
        """Recorded plans call NumPy directly for thin wrappers, and the native kernels
        without the checks the recorded call settled (``_replay``); not for a method that a
        subclass (or a patch) replaced."""
        own = getattr(type(self), method, None) is _METHODS.get(method)
        return _replay.replay_form(self, method, args, fixed, result) if own else None

    def notes(self) -> list[str]:
        return [_native.status(), "erf: NumPy has none; the contract's polynomial formula, run in cache-sized blocks"]

    # ---- data and dtypes
    def is_array(self, x: Any) -> bool:
        return isinstance(x, (np.ndarray, np.generic))

    def native_dtype(self, dtype: dt.DType) -> Any:
        try:
            return self._native[dtype]
        except KeyError:
            raise UnsupportedDTypeError(f"the numpy backend has no dtype {dtype!r}") from None

    def from_numpy(self, a: Any, device: Any = None) -> Array:
        return np.asarray(a)

    def to_numpy(self, x: Array) -> Any:
        return np.asarray(x)

    def astype(self, x: Array, dtype: dt.DType, copy: bool = True) -> Array:
        """NumPy's ``astype``; float32 to float16 by :func:`_rowops.to_half` (the same values)."""
        native = self._native[dtype]
        if native == np.float16 and type(x) is np.ndarray and x.dtype == np.float32:
            half = _rowops.to_half(x)
            if half is not None:
                return half
        return _arr(x).astype(native, copy=copy)

    def asarray(self, obj: Any, dtype: dt.DType | None, device: Any, copy: bool | None) -> Array:
        native = None if dtype is None else self._native[dtype]
        if copy is False:
            # only an array (or a buffer) of the right dtype comes through without a copy;
            # ``out is obj`` also covers empty arrays, which share no memory with anything
            out = np.asarray(obj, dtype=native)
            if out is not obj and not np.shares_memory(out, obj):
                raise ValueError("asarray(copy=False) would have to copy; pass copy=None")
            return out
        if dtype is None and not isinstance(obj, (np.ndarray, np.generic)):
            return super().asarray(obj, dtype, device, copy)
        if copy:
            return np.array(obj, dtype=native, copy=True)
        return np.asarray(obj, dtype=native)

    # ---- creation
    def full(self, shape: tuple[int, ...], fill_value: Any, dtype: dt.DType | None, device: Any) -> Array:
        return np.full(shape, fill_value, dtype=self._native[dtype] if dtype else None)

    def zeros(self, shape: tuple[int, ...], dtype: dt.DType | None, device: Any) -> Array:
        # np.zeros maps fresh zero pages lazily; np.full(.., 0) writes every byte (a serving
        # batch's 448 MiB KV cache paid that in full)
        return np.zeros(shape, dtype=self._native[dtype or self.default_float])

    def arange(self, start: Any, stop: Any, step: Any, dtype: dt.DType | None, device: Any) -> Array:
        return np.arange(start, stop, step, dtype=self._native[dtype] if dtype else None)

    def eye(self, n_rows: int, n_cols: int, k: int, dtype: dt.DType | None, device: Any) -> Array:
        return np.eye(n_rows, n_cols, k, dtype=self._native[dtype or self.default_float])

    def linspace(self, start: Any, stop: Any, num: int, dtype: dt.DType | None, device: Any, endpoint: bool) -> Array:
        return np.linspace(start, stop, num, dtype=self._native[dtype or self.default_float], endpoint=endpoint)

    def tril(self, x: Array, k: int) -> Array:
        return np.tril(x, k)

    def triu(self, x: Array, k: int) -> Array:
        return np.triu(x, k)

    # ---- elementwise
    def unary(self, op: str, x: Array) -> Array:
        out = _arr(getattr(self.xp, op)(x))
        if op in _COMPLEX_SPECIAL_CASES and out.dtype.kind == "c":
            return _COMPLEX_SPECIAL_CASES[op](x, out)
        return out

    def binary(self, op: str, x1: Array, x2: Array) -> Array:
        x1, x2 = self._weak_floats(x1, x2)
        return _arr(getattr(self.xp, op)(x1, x2))

    def _weak_floats(self, x1: Any, x2: Any) -> tuple[Any, Any]:
        # ml_dtypes' bfloat16 takes no part in NumPy's weak-scalar promotion: bfloat16 and a
        # Python float give float32. The array API keeps the array's dtype; so does this.
        bf16 = self._native[dt.bfloat16]
        if type(x2) is float and getattr(x1, "dtype", None) == bf16:
            x2 = np.asarray(x2, bf16)
        elif type(x1) is float and getattr(x2, "dtype", None) == bf16:
            x1 = np.asarray(x1, bf16)
        return x1, x2

    def where(self, condition: Array, x1: Array, x2: Array) -> Array:
        return _arr(np.where(condition, x1, x2))

    def square(self, x: Array) -> Array:
        return _arr(np.square(x))

    def hypot(self, x1: Array, x2: Array) -> Array:
        return _arr(np.hypot(*self._weak_floats(x1, x2)))

    def logaddexp(self, x1: Array, x2: Array) -> Array:
        return _arr(np.logaddexp(*self._weak_floats(x1, x2)))

    def clip(self, x: Array, min: Any, max: Any) -> Array:
        if x.dtype == self._native[dt.bfloat16]:  # NumPy has no clip loop for bfloat16
            return super().clip(x, min, max)
        return _arr(self.xp.clip(x, min, max))

    def erf(self, x: Array) -> Array:
        # NumPy has no erf: the contract's formula (arrayq/backend/_erf.py), run on blocks
        # small enough that its ~20 temporaries stay in cache (about 3x faster on large
        # arrays than on the whole array at once; elementwise, so the same bits)
        x = _arr(x)
        if x.size <= ERF_BLOCK:
            return super().erf(x)
        flat = x.reshape(-1)
        out = np.empty(flat.shape, x.dtype)
        for start in range(0, flat.size, ERF_BLOCK):
            out[start : start + ERF_BLOCK] = super().erf(flat[start : start + ERF_BLOCK])
        return out.reshape(x.shape)

    # ---- reductions
    def reduce(self, op: str, x: Array, axis: tuple[int, ...] | None, keepdims: bool, dtype: dt.DType | None) -> Array:
        kwargs = {"dtype": self._native[dtype]} if dtype is not None else {}
        return _arr(getattr(self.xp, op)(x, axis=axis, keepdims=keepdims, **kwargs))

    def argreduce(self, op: str, x: Array, axis: int | None, keepdims: bool) -> Array:
        return _arr(getattr(self.xp, op)(x, axis=axis, keepdims=keepdims))

    def cumulative_sum(self, x: Array, axis: int, dtype: dt.DType | None, include_initial: bool) -> Array:
        return _arr(
            self.xp.cumulative_sum(
                x, axis=axis, dtype=self._native[dtype] if dtype else None, include_initial=include_initial
            )
        )

    def mean(self, x: Array, axis: tuple[int, ...] | None, keepdims: bool) -> Array:
        return _arr(np.mean(x, axis=axis, keepdims=keepdims))

    def var(self, x: Array, axis: tuple[int, ...] | None, correction: float, keepdims: bool) -> Array:
        return _arr(np.var(x, axis=axis, ddof=correction, keepdims=keepdims))

    def std(self, x: Array, axis: tuple[int, ...] | None, correction: float, keepdims: bool) -> Array:
        return _arr(np.std(x, axis=axis, ddof=correction, keepdims=keepdims))

    # ---- shapes and indexing
    def reshape(self, x: Array, shape: tuple[int, ...]) -> Array:
        return np.reshape(x, shape)

    def permute_dims(self, x: Array, axes: tuple[int, ...]) -> Array:
        return np.transpose(x, axes)

    def broadcast_to(self, x: Array, shape: tuple[int, ...]) -> Array:
        return np.broadcast_to(x, shape)

    def concat(self, arrays: Sequence[Array], axis: int | None) -> Array:
        return np.concatenate(arrays, axis=axis)

    def flip(self, x: Array, axis: tuple[int, ...] | None) -> Array:
        return _arr(np.flip(x, axis=axis))

    def take(self, x: Array, indices: Array, axis: int) -> Array:
        return _arr(np.take(x, indices, axis=axis))

    def take_along_axis(self, x: Array, indices: Array, axis: int) -> Array:
        return np.take_along_axis(x, indices, axis=axis)

    def stack(self, arrays: Sequence[Array], axis: int) -> Array:
        return np.stack(arrays, axis=axis)

    def tile(self, x: Array, repetitions: tuple[int, ...]) -> Array:
        return np.tile(x, repetitions)

    def roll(self, x: Array, shift: int | Sequence[int], axis: tuple[int, ...] | None) -> Array:
        return np.roll(x, shift, axis=axis)

    # ---- searching, sorting, sets
    def nonzero(self, x: Array) -> tuple[Array, ...]:
        return tuple(np.nonzero(x))

    def searchsorted(self, x1: Array, x2: Array, side: str, sorter: Array | None) -> Array:
        return _arr(np.searchsorted(x1, x2, side="right" if side == "right" else "left", sorter=sorter))

    def sort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        return self.xp.sort(x, axis=axis, descending=descending, stable=stable)

    def argsort(self, x: Array, axis: int, descending: bool, stable: bool) -> Array:
        return self.xp.argsort(x, axis=axis, descending=descending, stable=stable)

    def unique_all(self, x: Array) -> tuple[Array, Array, Array, Array]:
        return tuple(self.xp.unique_all(x))

    # ---- linear algebra
    # NumPy computes bfloat16 products in float32; the array API keeps the operands' dtype.
    def matmul(self, x1: Array, x2: Array) -> Array:
        if x1.ndim > 2 and x2.ndim == 2:
            # (..., K) @ (K, N) as one 2-D product: NumPy's stacked matmul runs a small
            # product per leading index, ~8x slower for a layer's (B, L, K) activations
            flat = np.matmul(x1.reshape(math.prod(x1.shape[:-1]), x1.shape[-1]), x2)
            return _in_dtype(flat.reshape(x1.shape[:-1] + x2.shape[-1:]), x1, x2)
        return _in_dtype(np.matmul(x1, x2), x1, x2)

    def tensordot(self, x1: Array, x2: Array, axes: tuple[Sequence[int], Sequence[int]]) -> Array:
        return _arr(np.tensordot(x1, x2, axes=axes))

    def vecdot(self, x1: Array, x2: Array, axis: int) -> Array:
        # (numpy's stubs omit the axis= keyword that gufuncs take)
        return _in_dtype(np.vecdot(x1, x2, axis=axis), x1, x2)  # type: ignore[call-overload]

    # ---- the fft extension: numpy.fft, which keeps float32 / complex64 (NumPy >= 2)
    def fftn(self, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        return _arr(np.fft.fftn(x, s=s, axes=axes, norm=cast(_Norm, norm)))

    def ifftn(self, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        return _arr(np.fft.ifftn(x, s=s, axes=axes, norm=cast(_Norm, norm)))

    def rfftn(self, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        return _arr(np.fft.rfftn(x, s=s, axes=axes, norm=cast(_Norm, norm)))

    def irfftn(self, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        return _arr(np.fft.irfftn(x, s=s, axes=axes, norm=cast(_Norm, norm)))

    def from_dlpack(self, x: Any, device: Any, copy: bool | None) -> Array:
        out = np.from_dlpack(x)  # never copies: shares x's memory (read-only where x's library says so)
        return out.copy() if copy else out

    # ---- quantized linear algebra
    def dequantize(self, qw: QuantizedWeight, dtype: dt.DType) -> Any:
        """Affine weights: the reference's arithmetic in a few NumPy calls
        (``_fastpath.dequantize``); the other modes take the reference (NotImplemented)."""
        if qw.mode != "affine":
            return NotImplemented
        return _fastpath.dequantize(qw.packed, qw.scales, qw.biases, qw.group_size, qw.bits, self._native[dtype])

    def quantized_matmul(self, x: Array, qw: QuantizedWeight, transpose: bool) -> Any:
        """Affine weights take the native kernels (``_native``, for ``transpose=True`` where
        they were built; with 8-bit activations, 2-D weights read the backend's repacked copy,
        :attr:`repacked`) or the pure-NumPy fast path in ``_fastpath``; batched weights take
        them once per weight matrix (:meth:`_per_weight`) where the matrices are big enough
        (:data:`PER_MATRIX_MIN_WEIGHTS`). Other formats, smaller batched matrices and empty
        weights take the blockwise reference (NotImplemented)."""
        packed, bits = qw.packed, qw.bits
        if qw.mode != "affine" or packed.size == 0 or (packed.ndim > 2 and not _per_matrix_pays(packed, bits)):
            return NotImplemented
        if packed.ndim > 2:  # batch axes broadcast as in matmul: gather_qmm's default indices
            x3 = x[None] if x.ndim == 1 else x
            out = self.gather_qmm(x3, qw, None, None, transpose)
            return out[..., 0, :] if x.ndim == 1 else out
        x2d = x.reshape(-1, x.shape[-1]).astype(np.float32, copy=False)
        if transpose and x2d.shape[0] and qw.group_size % 32 == 0 and _native.repacked_runs():
            out = _native.matmul_repacked(x2d, qw, self.repacked)
            if out is not None:  # (None: x holds a NaN or an infinity, which takes _affine_2d)
                return out.reshape(*x.shape[:-1], out.shape[-1]).astype(x.dtype, copy=False)
        return _affine_2d(x, packed, qw.scales, qw.biases, transpose, qw.group_size, bits)

    def gather_qmm(
        self, x: Array, qw: QuantizedWeight, lhs_indices: Array | None, rhs_indices: Array | None, transpose: bool
    ) -> Any:
        """Affine weights take :meth:`quantized_matmul`'s fast paths once per weight matrix
        (:meth:`_per_weight`: in a mixture-of-experts layer, all the rows routed to one expert
        in one call) where the matrices are big enough (:data:`PER_MATRIX_MIN_WEIGHTS`);
        other formats, smaller and empty matrices take the reference (NotImplemented)."""
        if qw.mode != "affine" or not _per_matrix_pays(qw.packed, qw.bits):
            return NotImplemented
        bx, bw = x.shape[:-2], qw.packed.shape[:-2]
        lhs = np.arange(math.prod(bx)).reshape(bx) if lhs_indices is None else np.asarray(lhs_indices)
        rhs = np.arange(math.prod(bw)).reshape(bw) if rhs_indices is None else np.asarray(rhs_indices)
        return self._per_weight(x, qw, lhs, rhs, transpose)

    def _per_weight(self, x: Array, qw: QuantizedWeight, lhs: np.ndarray, rhs: np.ndarray, transpose: bool) -> Array:
        """``out[i] = x_i @ W_j(.T)`` with ``x_i`` the ``lhs[i]``-th (M, K) matrix of x's batch
        and ``W_j`` the ``rhs[i]``-th affine matrix of the weight's batch, for the index
        arrays ``lhs``/``rhs`` (valid flat indices) broadcast to one shape S. The problems of
        one weight matrix are stacked into one 2-D fast-path call. Returns S + (M, N) in x's
        dtype."""
        lhs, rhs = np.broadcast_arrays(lhs, rhs)
        m, k = x.shape[-2:]
        xs = x.reshape(math.prod(x.shape[:-2]), m, k)
        ws = [a.reshape(math.prod(a.shape[:-2]), *a.shape[-2:]) for a in (qw.packed, qw.scales, qw.biases)]
        flat_lhs, flat_rhs = lhs.reshape(-1), rhs.reshape(-1)
        out: np.ndarray | None = None
        for j in np.unique(flat_rhs):
            rows = np.flatnonzero(flat_rhs == j)
            problems = xs[flat_lhs[rows]].reshape(-1, k)
            y = _affine_2d(problems, ws[0][j], ws[1][j], ws[2][j], transpose, qw.group_size, qw.bits)
            if out is None:
                out = np.empty((flat_rhs.size, m, y.shape[-1]), y.dtype)
            out[rows] = y.reshape(rows.size, m, -1)
        assert out is not None, "the frontend passes at least one problem"
        return out.reshape(*lhs.shape, m, out.shape[-1])

    def scaled_dot_product_attention(self, q: Array, k: Array, v: Array, scale: float, mask: Any) -> Any:
        """Float32 decode (one query row, up to 2048 keys, no mask, the causal one, or a
        padding mask: a batch of sequences of different lengths) takes the native kernel
        (one pass over each row's own keys, no BLAS calls), with float32 or float16 keys and
        values (a float16 KV cache, read as it is: the float32 kernel's result on the
        widened keys, bit for bit); the rest, the reference composite (NotImplemented)."""
        if not _native.attends(q, k, v):
            return NotImplemented
        # (a string mask is "causal": arrayq.nn checked it)
        if mask is None or isinstance(mask, str):
            return _native.attention(q, k, v, scale, mask is not None)
        lengths = self.key_lengths(mask, q.shape[0], k.shape[2])
        return NotImplemented if lengths is None else _native.attention(q, k, v, scale, False, lengths)

    def prefix_attention(self, q: Array, k: Array, v: Array, scale: float, length: Any, causal: bool) -> Any:
        """The first ``length`` keys sliced off (NumPy reads an array length on the host: it is
        eager, so it checks it too), then attention over exactly those."""
        n, low = int(length), q.shape[2] if causal else 1
        if not low <= n <= k.shape[2]:
            raise ValueError(f"key_length must be from {low} to the {k.shape[2]} keys, got {n}")
        k, v, mask = k[:, :, :n], v[:, :, :n], "causal" if causal and q.shape[2] > 1 else None
        out = self.scaled_dot_product_attention(q, k, v, scale, mask)
        if out is NotImplemented and (k.dtype != q.dtype or v.dtype != q.dtype):
            return NotImplemented  # (narrower keys or values the kernel did not take: arrayq.nn widens them)
        if out is NotImplemented:
            from arrayq.nn import attention_reference

            out = attention_reference(q, k, v, scale, mask)
        return out

    def rms_norm(self, x: Array, weight: Array | None, eps: float) -> Any:
        """float32 in one native pass (``_rowops``, where the kernels were built); float32
        and float64 otherwise in four NumPy calls (the sum of squares as one vecdot); other
        dtypes through the reference (which widens them to float32)."""
        if x.dtype not in (np.float32, np.float64) or x.ndim == 0 or (weight is not None and weight.dtype != x.dtype):
            return NotImplemented
        native = _rowops.rms_norm(x, weight, eps)
        if native is not None:
            return native
        out = x * (1 / np.sqrt(np.vecdot(x, x)[..., None] / x.shape[-1] + eps))
        return out if weight is None else out * weight

    def rope(self, x: Array, dims: int, traditional: bool, base: float, scale: float, offset: Any) -> Any:
        """float32/float64 with the reference's operations in its order, so the same result
        in fewer calls: float32 in one native pass (``_rowops``, where the kernels were
        built), else NumPy's products; other dtypes through the reference."""
        if x.dtype not in (np.float32, np.float64) or x.ndim < 2:
            return NotImplemented
        cos, sin = _rowops.rope_tables(dims, base, scale, int(offset), x.shape[-2], x.dtype)  # (NumPy is eager)
        native = _rowops.rope(x, dims, traditional, cos, sin)
        if native is not None:
            return native
        pairs = (slice(0, dims, 2), slice(1, dims, 2)) if traditional else (slice(0, dims // 2), slice(dims // 2, dims))
        x1, x2 = x[..., pairs[0]], x[..., pairs[1]]
        out = np.array(x)  # the features past dims stay as they are
        out[..., pairs[0]] = x1 * cos - x2 * sin
        out[..., pairs[1]] = x2 * cos + x1 * sin
        return _arr(out)

    def swiglu(self, gate: Array, up: Array) -> Any:
        """float32 in one native pass (``_rowops``, where the kernels were built); the rest
        through the reference."""
        out = _rowops.swiglu(gate, up)
        return NotImplemented if out is None else out

    def swiglu_halves(self, gate_up: Array) -> Any:
        """:meth:`swiglu` of the two halves (views, not copies)."""
        n = gate_up.shape[-1] // 2
        return self.swiglu(gate_up[..., :n], gate_up[..., n:])

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
        """float32 in one native pass (``_rowops``, where the kernels were built), with the
        rope tables of ``rope``; the rest through the reference."""
        if qkv.dtype != np.float32:
            return NotImplemented
        cos, sin = _rowops.rope_tables(dims, base, scale, int(offset), qkv.shape[1], qkv.dtype)  # (NumPy is eager)
        weights = (q_weight, k_weight)
        out = _rowops.qkv_heads(qkv, n_heads, n_kv_heads, head_dim, *weights, eps, dims, traditional, cos, sin)
        return NotImplemented if out is None else out

    def add_rms_norm(self, x: Array, y: Array, weight: Array | None, eps: float) -> Any:
        """float32 in one native pass (``_rowops``, where the kernels were built); the rest
        through the reference."""
        out = _rowops.add_rms_norm(x, y, weight, eps)
        return NotImplemented if out is None else out

    def slice_update(self, x: Array, update: Array, start: Any, axis: int) -> Any:
        """A copy with the slice assigned (NumPy reads an array start on the host: it is eager)."""
        out = np.array(x)
        where = [slice(None)] * x.ndim
        where[axis] = slice(int(start), int(start) + update.shape[axis])
        out[tuple(where)] = update
        return _arr(out)


#: The class's own methods, as defined here: a form replaces only these (not a subclass's
#: method, nor one patched onto the class later).
_METHODS = {name: getattr(NumPyBackend, name) for name in dir(NumPyBackend) if not name.startswith("__")}


def _affine_2d(
    x: np.ndarray,
    packed: np.ndarray,
    scales: np.ndarray,
    biases: np.ndarray,
    transpose: bool,
    group_size: int,
    bits: int,
) -> np.ndarray:
    """One unbatched affine weight's product with x (..., K) on the native kernels or the
    pure-NumPy path; in x's dtype.

    The decode kernel and the pure-NumPy path factor each group as
    s * (codes . x) + b * sum(x): an inf in x then gives 0 * inf or inf - inf = NaN where the
    product with the dequantized weight (the reference, MLX) gives +-inf; and the native
    dequantization fuses s * q + b (one rounding), so a weight that dequantizes to exactly
    0 (inf * 0 = NaN) comes out as +-1e-9 (inf). So x with NaN or inf takes the pure-NumPy
    unfactored order, dequantized exactly as the reference, times x."""
    x2d = x.reshape(-1, x.shape[-1]).astype(np.float32, copy=False)
    finite = bool(np.isfinite(x2d).all())
    if finite and _native.supports(x2d, packed, transpose, group_size):
        out = _native.matmul(x2d, packed, scales, biases, group_size, bits)
    else:
        out = affine_matmul(x2d, packed, scales, biases, transpose, group_size, bits, factored=finite)
    return out.reshape(*x.shape[:-1], out.shape[-1]).astype(x.dtype, copy=False)


def _expm1_special(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    # NumPy's complex expm1 gives NaN + NaN j for every non-finite input and keeps the sign
    # of a -0 real part; exp(x) - 1 has the array API's special cases there (expm1(+inf + 0j)
    # = +inf + 0j, expm1(NaN + 0j) = NaN + 0j, expm1(-0 + 0j) = +0 + 0j)
    with np.errstate(invalid="ignore", over="ignore"):
        ordinary = np.isfinite(x) & (x != 0)
        return np.where(ordinary, out, np.exp(x) - 1).astype(out.dtype, copy=False)


def _tanh_infinite_real(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    # tanh(+-inf + b j) for finite b is +-1 with a zero imaginary part of b's sign; NumPy
    # (C99's ctanh) takes the zero's sign from sin(2b)
    hit = np.isinf(x.real) & np.isfinite(x.imag)
    fixed = out.copy()
    fixed.real = np.where(hit, np.sign(x.real), out.real)
    fixed.imag = np.where(hit, np.copysign(0.0, x.imag), out.imag)
    return fixed


#: Complex special cases of the array API that NumPy's own functions do not follow.
_COMPLEX_SPECIAL_CASES = {"expm1": _expm1_special, "tanh": _tanh_infinite_real}


def _in_dtype(out: Any, *operands: Any) -> np.ndarray:
    dtype = np.result_type(*operands)
    return _arr(out) if out.dtype == dtype else _arr(out).astype(dtype)


__all__ = ["NumPyBackend", "activations", "num_threads", "set_num_threads"]
