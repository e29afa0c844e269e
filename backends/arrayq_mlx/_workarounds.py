"""Workarounds of MLX defects, one function each: the code that can go when MLX is fixed.

Each workaround names the MLX version it was seen in and a test in
``tests/test_mlx_workarounds.py`` that asserts the defect is still there in the installed
MLX. When that test fails, MLX has fixed the defect: delete the workaround (and its call
site) and the test, and raise ``MLXBackend.min_mlx_version`` to the fixed release if older
releases must no longer be served. Tests of CUDA defects run only on MLX's CUDA build.

Every workaround decides by shape, dtype or device, so nothing is evaluated early. Where
MLX only *differs* from the array API (no signbit, sign(NaN), the zero's sign in remainder,
shifts past the width, integer matmul, descending sorts) the translation lives in
``arrayq_mlx/__init__.py``: those are translations, not defects.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from arrayq.backend import Array

if TYPE_CHECKING:
    from arrayq.quant import QuantizedWeight
    from arrayq_mlx import MLXBackend

_IDENTITY = {"sum": 0, "prod": 1, "all": True, "any": False}

# ----------------------------------------------------------------------------- creation


def full(mx: Any, shape: Sequence[int], fill_value: Any, native: Any) -> Array:
    """``mx.full(shape, fill_value)`` in the dtype ``native``.

    MLX 0.32.4: ``mx.full`` with a Python scalar of another kind than ``dtype`` gives the
    scalar's kind (``dtype=bool`` with 0: int32; ``dtype=int8`` with 2.5: float32). A fill
    made in the dtype first keeps it. Test: ``test_full_takes_the_kind_of_the_fill``.
    """
    return mx.full(tuple(shape), mx.array(fill_value, dtype=native))


def eye(mx: Any, n_rows: int, n_cols: int, k: int, native: Any) -> Array:
    """``mx.eye``, also for a diagonal ``k`` beyond a C int (it has no element anyway).

    MLX 0.32.4: ``mx.eye`` takes ``k`` as a 32-bit int and refuses 2**31 with a TypeError.
    Test: ``test_eye_refuses_a_diagonal_past_int32``.
    """
    if not -n_rows < k < n_cols:  # no element on that diagonal
        return mx.zeros((n_rows, n_cols), dtype=native)
    return mx.eye(n_rows, n_cols, k, dtype=native)


# ----------------------------------------------------------------------------- reductions


def empty_reduction(mx: Any, op: str, x: Array, axis: Sequence[int] | None, keepdims: bool) -> Array | None:
    """The identity of ``op`` where it reduces an empty axis, else None (MLX reduces).

    MLX 0.32.4: ``prod``/``all`` over every axis of an empty array made from data answer
    0/False instead of 1/True. Test: ``test_prod_and_all_of_an_empty_array_from_data``.
    """
    axes = range(x.ndim) if axis is None else axis
    if op not in _IDENTITY or not any(x.shape[a] == 0 for a in axes):
        return None
    shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape) if keepdims or i not in axes)
    return mx.full(shape, _IDENTITY[op], dtype=mx.bool_ if op in ("all", "any") else x.dtype)


def sum_prod_in_dtype(op: str, out: Array, dtype: Any) -> Array:
    """``out`` of sum/prod cast back to the dtype it was asked in.

    MLX 0.32.4: ``mx.sum``/``mx.prod`` of int8/int16 (and uint8/uint16) give int32/uint32, so
    the array API's ``dtype=int8`` cannot be asked of MLX. Test: ``test_sum_widens_narrow_integers``.
    """
    if op in ("sum", "prod") and out.dtype != dtype:
        return out.astype(dtype)
    return out


def nan_where_empty(mx: Any, out: Array, count: int) -> Array:
    """NaN of ``out``'s shape where ``count`` (the elements reduced) is 0, else ``out``.

    MLX 0.32.4: ``mx.mean`` of an empty array gives -inf (test:
    ``test_mean_of_an_empty_array_is_not_nan``), and ``mx.var``/``mx.std`` over an empty axis
    can hang when the result is not empty, so that graph is never evaluated (test:
    ``test_var_over_an_empty_axis_hangs``).
    """
    return mx.full(out.shape, math.nan, dtype=out.dtype) if count == 0 else out


# ----------------------------------------------------------------------------- float64 accuracy
#: Unary ops whose MLX CPU kernels give only float32 accuracy (~1e-7 relative) on float64
#: arrays (MLX 0.32.4; test: ``test_float64_transcendentals_are_float32_accurate``, which
#: covers erf and logaddexp too). Rebuilt below from ops MLX computes to float64 accuracy
#: (sinh, cosh, tan: measured <= 2.3e-16 relative); erf takes arrayq's own float64 erf.
FLOAT64_INACCURATE = frozenset({"exp", "sin", "cos"})


def exp64(mx: Any, x: Array) -> Array:
    ch, sh = mx.cosh(x), mx.sinh(x)
    # e^x = cosh x + sinh x; for x < 0 the reciprocal form avoids cancellation
    return mx.where(mx.greater_equal(x, 0), mx.add(ch, sh), mx.divide(1.0, mx.subtract(ch, sh)))


def _half_angle(mx: Any, x: Array) -> Array:
    return mx.tan(mx.multiply(x, 0.5))  # x / 2 is exact (but for subnormals)


def sin64(mx: Any, x: Array) -> Array:
    t = _half_angle(mx, x)  # sin x = 2t / (1 + t^2) = 2 / (t + 1/t)
    out = mx.divide(2.0, mx.add(t, mx.divide(1.0, t)))
    return mx.where(mx.less(mx.abs(x), 1e-8), x, out)  # sin x = x to float64 precision there


def cos64(mx: Any, x: Array) -> Array:
    t2 = mx.square(_half_angle(mx, x))  # cos x = (1 - t^2) / (1 + t^2)
    return mx.divide(mx.subtract(1.0, t2), mx.add(1.0, t2))


def logaddexp64(mx: Any, composed: Array, x1: Array, x2: Array) -> Array:
    """float64 logaddexp from arrayq's composite ``composed`` (big + log1p(exp(-|x1 - x2|)),
    with :func:`exp64`); equal arguments (infinities too) give x + log 2."""
    return mx.where(mx.equal(x1, x2), mx.add(x1, math.log(2.0)), composed)


def det64(mx: Any, x: Array) -> Array:
    """The determinant of float64 matrices from MLX's own LU factors (LAPACK's getrf):
    the product of U's diagonal, negated once per row swap.

    MLX 0.32.4: ``mx.linalg.det`` of a float64 4 x 4 matrix gives the float32 determinant
    (1e-8 relative); its ``lu_factor`` and ``slogdet`` are float64-accurate. Test:
    ``test_float64_det_is_float32_accurate``.
    """
    lu, pivots = mx.linalg.lu_factor(x, stream=mx.cpu)
    n = x.shape[-1]
    swaps = mx.sum(mx.not_equal(pivots, mx.arange(n, dtype=pivots.dtype)), axis=-1)
    sign = mx.subtract(1, mx.multiply(2, mx.remainder(swaps, 2))).astype(x.dtype)
    return mx.multiply(sign, mx.prod(mx.diagonal(lu, 0, -2, -1), axis=-1))


def trace_outside(shape: Sequence[int], offset: int) -> bool:
    """Whether the ``offset`` diagonal of (..., M, N) matrices lies outside them (its sum is
    0), so ``mx.trace`` must not be asked.

    MLX 0.32.4: ``mx.trace`` with an offset past the last diagonal (offset > N or < -M + 1,
    e.g. 5 on 3 x 4) spins for 20 s to over 100 s on an array made from data before
    answering 0 (now and then, mostly on an idle machine, it answers at once: too unreliable
    to detect a fix by test; try ``mx.trace(x, 5, -2, -1)`` in a few fresh processes on a
    busy machine after upgrading MLX). Test: ``test_trace_outside_the_matrix_answers_at_once``.
    """
    return offset >= shape[-1] or -offset >= shape[-2]


# ----------------------------------------------------------------------------- empty operands


def no_empty_kernel(mx: Any, out: Array, *xs: Array) -> Array:
    """``out``, or zeros of its shape where an operand is empty: shape inference alone gives
    the answer, so MLX's kernel never runs.

    MLX 0.32.4, CUDA: matmul (and tensordot, vecdot) kernels crash on empty operands.
    Test: ``test_cuda_matmul_of_empty_operands_crashes``.
    """
    if any(x.size == 0 for x in xs):
        return mx.zeros(out.shape, dtype=out.dtype)
    return out


def empty_range(start: Any, stop: Any, step: Any) -> bool:
    """Whether ``arange(start, stop, step)`` is empty: then the backend makes zeros((0,)).

    MLX 0.32.4, CUDA: ``mx.arange`` crashes on an empty range. Test: ``test_cuda_arange_of_an_empty_range_crashes``.
    """
    return math.ceil((stop - start) / step) <= 0


# ----------------------------------------------------------------------------- quantized


def quantize_stream(mx: Any) -> Any:
    """The stream ``mx.quantize`` runs on: the CPU, whatever the target (``mx.dequantize``
    runs only where the CPU is the target; aimed at the GPU, the backend's dequantize is the
    frontend's format code on GPU ops instead, which a compiled step keeps on the device).

    MLX 0.32.4, CUDA: the kernels do not produce MLX's format exactly: quantize rounds exact
    ties up (the CPU rounds them to even), dequantize rounds once where the CPU rounds twice,
    fp modes encode -0 and all-zero groups differently, and 1-bit quantize/dequantize return
    garbage without an error (docs/benchmarks-cuda.md). On the CPU stream the formats stay
    bit-exact on every device (quantize is a load-time op). Test:
    ``test_cuda_quantize_rounds_ties_up``.
    """
    return mx.cpu


def cuda_no_one_bit(mx: Any) -> contextlib.AbstractContextManager[Any]:
    """The context a 1-bit quantized_matmul/gather_qmm targeting the GPU runs in: MLX's CPU stream.

    MLX 0.32.4, CUDA: no 1-bit kernels ("[quantized_matmul] 1-bit quantization is not
    supported."). Test: ``test_cuda_quantized_matmul_has_no_one_bit``.
    """
    return mx.stream(mx.cpu)


def cuda_qmm_vector_as_row(mx: Any, x: Array) -> Array:
    """A 1-D x of quantized_matmul as a 1-row matrix (the caller drops the row again).

    MLX 0.32.4, CUDA: ``mx.quantized_matmul`` fails on a 1-D x. Test:
    ``test_cuda_quantized_matmul_rejects_a_vector``.
    """
    return mx.expand_dims(x, 0)


def qmm_x_with_weight_batch_axes(mx: Any, x: Array, packed: Array) -> Array:
    """x with leading 1s up to the weight's rank, with which MLX broadcasts correctly.

    MLX 0.32.4: ``mx.quantized_matmul`` silently drops the weight's batch axes when x has
    fewer dimensions ((M, K) x (B, N, K) gives (M, N)). Test:
    ``test_quantized_matmul_drops_the_weight_batch``.
    """
    if x.ndim < packed.ndim:
        return mx.reshape(x, (1,) * (packed.ndim - x.ndim) + tuple(x.shape))
    return x


def cuda_qmm_mispairs_batch_axes(x: Array, packed: Array) -> bool:
    """Whether the batch axes of x and a batched weight broadcast (differ): then the GPU
    quantized_matmul runs as :func:`qmm_batch_as_gather`.

    MLX 0.32.4, CUDA: ``mx.quantized_matmul`` pairs broadcast batch axes wrongly
    ((4, 1, M, K) x (3, N, K) repeats weight 0). Test:
    ``test_cuda_quantized_matmul_mispairs_broadcast_batches``.
    """
    return packed.ndim > 2 and tuple(x.shape[:-2]) != tuple(packed.shape[:-2])


def qmm_batch_as_gather(backend: MLXBackend, x: Array, qw: QuantizedWeight, transpose: bool) -> Array:
    """A quantized_matmul whose batch axes broadcast, as a gather_qmm with index grids (no
    copy of x or of the weight). See :func:`cuda_qmm_mispairs_batch_axes`."""
    from arrayq.backend import broadcast_shapes

    mx = backend.mx
    xb, wb = tuple(x.shape[:-2]), tuple(qw.packed.shape[:-2])
    batch = broadcast_shapes(xb, wb)

    def grid(shape: tuple[int, ...]) -> Array:
        ids = mx.reshape(mx.arange(math.prod(shape), dtype=mx.uint32), shape)
        return mx.broadcast_to(mx.reshape(ids, (1,) * (len(batch) - len(shape)) + shape), batch)

    return backend.gather_qmm(x, qw, grid(xb), grid(wb), transpose)


def cpu_gather_qmm_empty_m(mx: Any, out: Array, dtype: Any) -> Array:
    """``out`` of ``mx.gather_qmm``, or zeros of its shape (in ``dtype``) when it is empty,
    so that MLX's kernel never runs.

    MLX 0.32.4, CPU: ``mx.gather_qmm`` dies (SIGFPE) for M = 0. Test:
    ``test_cpu_gather_qmm_of_zero_rows_dies``.
    """
    return mx.zeros(out.shape, dtype=dtype) if out.size == 0 else out
