"""The MLX backend's quantized strategy: which kernel runs a quantized matmul.

* **CPU.** MLX's CPU quantized kernel accumulates in its input dtype (bfloat16 or float16
  inputs then break arrayq's "accumulated in float32" promise) and runs ~8-10x slower with
  bfloat16 scales than with float32 ones. So x (and affine scales/biases) are cast to
  float32 for the call and the result is cast back to x's dtype. For affine weights with
  ``M >= CPU_DEQUANTIZE_MIN_ROWS`` rows the weight is instead dequantized to float32 and
  multiplied with ``mx.matmul``; for mxfp4/mxfp8/nvfp4 the float32 kernel always wins
  (dequantizing those formats is slow). Measurements: docs/benchmarks.md, "The three CPU
  paths".
* **GPU.** MLX's fused ``mx.quantized_matmul``; on MLX's CUDA device, arrayq's own kernels
  where they apply (``arrayq_mlx.cuda``: a tensor-core decode GEMV for <= 16 rows
  of x, a fused tensor-core kernel for 32-1024 rows, dequantize + dense matmul above; affine
  2/3/4/5/6/8-bit, groups 32/64/128, ``transpose=True``, unbatched weight, bfloat16 or
  float16 x). ``ARRAYQ_MLX_CUDA_KERNELS=0`` turns them off; the decode GEMVs run on
  MLX's kernel unless it is ``all`` (they do not pay end to end). :class:`CudaRoute` decides.

The MLX defects met on the way (1-D x, batch axes, 1-bit on CUDA, empty M) are handled in
:mod:`arrayq_mlx._workarounds`. Every function takes the backend and reads ``backend.mx``
at call time. The frontend (arrayq.quant) has validated every argument before these run.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from arrayq.backend import Array
from arrayq_mlx import _workarounds as fix

if TYPE_CHECKING:
    from arrayq.quant import QuantizedWeight
    from arrayq_mlx import MLXBackend

#: Rows of x (M, batch axes included) from which the CPU quantized_matmul of an *affine*
#: weight dequantizes it to float32 and runs one matmul instead of MLX's quantized kernel.
#: Measured in docs/benchmarks.md, "The three CPU paths: where the dequantize threshold comes from".
CPU_DEQUANTIZE_MIN_ROWS = 128


def cpu_dequantizes_first(mode: str, rows: int) -> bool:
    """Whether the CPU quantized_matmul dequantizes the weight to float32 and runs one
    ``mx.matmul`` (affine weights, ``rows >= CPU_DEQUANTIZE_MIN_ROWS``) instead of calling
    ``mx.quantized_matmul``. ``rows``: x's rows, batch axes included."""
    return mode == "affine" and rows >= CPU_DEQUANTIZE_MIN_ROWS


def cpu_float32(mx: Any, x: Array, scales: Array, biases: Array | None, mode: str) -> tuple[Array, Array, Array | None]:
    """x, scales, biases in float32 for MLX's CPU kernels (affine scales only: the other
    modes' scales are uint8 codes)."""
    f32 = mx.float32
    x = x.astype(f32) if x.dtype != f32 else x
    if mode == "affine" and scales.dtype != f32:
        scales = scales.astype(f32)
        biases = biases.astype(f32) if biases is not None else None
    return x, scales, biases


def _in_dtype(out: Array, dtype: Any) -> Array:
    return out if out.dtype == dtype else out.astype(dtype)


def quantized_matmul(backend: MLXBackend, x: Array, qw: QuantizedWeight, transpose: bool) -> Array:
    """``MLXBackend.quantized_matmul``: the workarounds, then the GPU or the CPU strategy."""
    mx = backend.mx
    if x.ndim == 1:
        row = fix.cuda_qmm_vector_as_row(mx, x)
        return mx.squeeze(quantized_matmul(backend, row, qw, transpose), -2)
    packed, scales, biases, group_size, bits, mode = qw.packed, qw.scales, qw.biases, qw.group_size, qw.bits, qw.mode
    x = fix.qmm_x_with_weight_batch_axes(mx, x, packed)
    if bits == 1 and backend._devices.targets_gpu():
        with fix.cuda_no_one_bit(mx):
            return quantized_matmul(backend, x, qw, transpose)
    if backend._devices.targets_gpu():
        kind = backend._cuda_route.kernel_for(backend, x, qw, transpose)
        if kind is not None:  # arrayq's own CUDA kernels (decode GEMVs, fused prefill, or dequantize + matmul)
            return backend._cuda_route.kernels().quantized_matmul(kind, x, packed, scales, biases, bits, group_size)
        if fix.cuda_qmm_mispairs_batch_axes(x, packed):
            return fix.qmm_batch_as_gather(backend, x, qw, transpose)
        out = mx.quantized_matmul(
            x, packed, scales, biases, transpose=transpose, group_size=group_size, bits=bits, mode=mode
        )
        return _in_dtype(out, x.dtype)
    x32, s32, b32 = cpu_float32(mx, x, scales, biases, mode)
    if cpu_dequantizes_first(mode, math.prod(x.shape[:-1])):
        w = mx.dequantize(packed, s32, b32, group_size=group_size, bits=bits, mode=mode, dtype=mx.float32)
        out = mx.matmul(x32, mx.swapaxes(w, -1, -2) if transpose else w)
    else:
        out = mx.quantized_matmul(
            x32, packed, s32, b32, transpose=transpose, group_size=group_size, bits=bits, mode=mode
        )
    return _in_dtype(out, x.dtype)


def gather_qmm(
    backend: MLXBackend,
    x: Array,
    qw: QuantizedWeight,
    lhs_indices: Array | None,
    rhs_indices: Array | None,
    transpose: bool,
) -> Array:
    """``MLXBackend.gather_qmm``: ``mx.gather_qmm``; on the CPU with x, scales and biases in
    float32 (as :func:`quantized_matmul`, for float32 accumulation and speed), result in x's dtype."""
    mx = backend.mx
    if qw.bits == 1 and backend._devices.targets_gpu():
        with fix.cuda_no_one_bit(mx):
            return gather_qmm(backend, x, qw, lhs_indices, rhs_indices, transpose)
    lhs = None if lhs_indices is None else lhs_indices.astype(mx.uint32)
    rhs = None if rhs_indices is None else rhs_indices.astype(mx.uint32)
    out_dtype, scales, biases = x.dtype, qw.scales, qw.biases
    if not backend._devices.targets_gpu():
        x, scales, biases = cpu_float32(mx, x, scales, biases, qw.mode)
    out = mx.gather_qmm(
        x,
        qw.packed,
        scales,
        biases,
        lhs,
        rhs,
        transpose=transpose,
        group_size=qw.group_size,
        bits=qw.bits,
        mode=qw.mode,
    )
    return _in_dtype(fix.cpu_gather_qmm_empty_m(mx, out, out_dtype), out_dtype)


class CudaRoute:
    """Whether one of arrayq's own CUDA kernels runs a GPU quantized matmul, and those
    kernels, built on first use. Only on MLX's CUDA device, and unless
    ``ARRAYQ_MLX_CUDA_KERNELS=0``."""

    def __init__(self, mx: Any) -> None:
        self.mx = mx
        self._available: bool | None = None
        self._arch: int | None = None
        self._kernels: Any = None

    def available(self) -> bool:
        """Whether MLX has a CUDA device (asked once)."""
        if self._available is None:
            cuda = getattr(self.mx, "cuda", None)
            try:
                self._available = bool(cuda is not None and cuda.is_available())
            except Exception:
                self._available = False
        return self._available

    def arch(self) -> int:
        """The CUDA device's compute capability major (which of arrayq's kernels it runs), asked once."""
        if self._arch is None:
            from arrayq_mlx import cuda as ck

            self._arch = ck.compute_capability(self.mx)
        return self._arch

    def kernel_for(self, backend: MLXBackend, x: Array, qw: QuantizedWeight, transpose: bool) -> str | None:
        """The arrayq CUDA kernel (``"decode_tc"``/``"decode"``/``"qmm"``/``"dequant"``) for this
        GPU quantized matmul, or None for MLX's own kernel (see ``arrayq_mlx.cuda``; the
        decode kernels only with ``ARRAYQ_MLX_CUDA_KERNELS=all``: ``cuda.decode_enabled``)."""
        from arrayq_mlx import cuda as ck

        if not (self.available() and ck.enabled()):
            return None
        x_name, s_name = backend._from_native.get(x.dtype), backend._from_native.get(qw.scales.dtype)
        if x_name is None or s_name is None:
            return None
        kind = ck.choose(
            rows=math.prod(x.shape[:-1]),
            k=int(x.shape[-1]),
            n=int(qw.packed.shape[-2]),
            bits=qw.bits,
            group_size=qw.group_size,
            mode=qw.mode,
            transpose=transpose,
            x_dtype=x_name.name,
            scales_dtype=s_name.name,
            weight_ndim=qw.packed.ndim,
            has_biases=qw.biases is not None,
            arch=self.arch(),
        )
        return None if kind in ("decode_tc", "decode") and not ck.decode_enabled() else kind

    def kernels(self) -> Any:
        """arrayq's CUDA kernels (``CudaKernels``), built on first use."""
        if self._kernels is None:
            from arrayq_mlx.cuda._launch import CudaKernels

            self._kernels = CudaKernels(self.mx)
        return self._kernels
