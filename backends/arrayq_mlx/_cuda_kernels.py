"""arrayq's own CUDA kernels for MLX's affine quantized matmul, as ``mx.fast.cuda_kernel``.

MLX compiles each kernel variant with NVRTC the first time it runs (a few seconds); nothing
here is compiled, or even built as a kernel object, unless MLX has a CUDA device. The
sources are templates: ``BITS``, ``GS`` (group size), ``ROWS``, ``MT``, ``VALS``, ``VEC``
and the dtypes ``T`` (x/out) and ``S`` (scales/biases) are MLX template arguments, so one
source covers every bit width and group size.

Two kernels, for ``y = x @ W.T`` with an unbatched affine weight ``W`` of shape ``(N, K)``
(``packed`` uint32 ``(N, K*bits/32)``, ``scales``/``biases`` ``(N, K/GS)``):

* **decode** (``rows <= DECODE_MAX_ROWS``, 4): a memory-bound GEMV. Each warp owns ``ROWS``
  rows of ``W``; lane ``c`` of the warp takes chunk ``c, c+32, ...`` of ``VALS`` consecutive
  values (one vector load of ``VALS*BITS/8`` bytes, inside one group). The codes are
  decoded without an integer-to-float conversion: ``f = 1 + q/2**BITS`` is built in the
  float's mantissa, and ``sum_k (s*q_k + b) * x_k = (s*2**BITS) * sum f_k x_k + (b -
  s*2**BITS) * sum x_k`` per chunk. Products and sums are float32; a warp-shuffle
  reduction ends each row.
* **dequantize** (``rows >= PREFILL_MIN_ROWS``, 128, and 5-7 rows): ``W`` in x's dtype, ``w = s*q + b`` computed
  in float32 and rounded once; the product is then MLX's dense ``mx.matmul`` (cuBLAS,
  tensor cores, float32 accumulation).

Everything else (transpose=False, batched weights, non-affine modes, float32 x, 1-bit,
8-127 rows, where MLX's tiled kernel is faster, shapes whose rows are not aligned for the vector loads)
falls back to ``mx.quantized_matmul``. ``ARRAYQ_MLX_CUDA_KERNELS=0`` turns the kernels off.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any

#: Environment variable: "0" turns arrayq's CUDA kernels off (MLX's own kernels run).
ENV_VAR = "ARRAYQ_MLX_CUDA_KERNELS"
#: x rows (batch axes included) up to which the decode kernel runs. Its time grows by
#: ~10-20 us a row at 12288 x 4096 (the codes are decoded again for each row of x). 5 rows
#: measured 66 us (dequantize path 99) but that variant (MT=8 with the K split) has not
#: been checked on the GPU yet, so 5-7 rows take the dequantize path (notes-gpu.md).
DECODE_MAX_ROWS = 4
#: From this many rows MLX's own kernel (mlx 0.32.4 switches to a tiled kernel at 8 rows) is
#: faster than both of ours, up to PREFILL_MIN_ROWS; below it, MLX's GEMV costs ~28 us a row.
MLX_MIN_ROWS = 8
#: x rows from which the dequantize + dense matmul path runs again (and beats MLX's kernel).
PREFILL_MIN_ROWS = 128
SUPPORTED_BITS = (2, 3, 4, 5, 6, 8)
SUPPORTED_GROUP_SIZES = (32, 64, 128)
#: x dtypes (names) the kernels take; float32 x keeps MLX's kernel.
X_DTYPES = ("bfloat16", "float16")
SCALE_DTYPES = ("bfloat16", "float16", "float32")
#: Threads per block of the decode and dequantize kernels.
DECODE_BLOCK = 128  # 4 warps (the decode source assumes it)
DEQUANT_BLOCK = 256


def enabled() -> bool:
    """Whether arrayq's CUDA kernels may run (``ARRAYQ_MLX_CUDA_KERNELS`` is not "0")."""
    return os.environ.get(ENV_VAR, "1").strip() not in ("0", "false", "off", "no")


@dataclass(frozen=True)
class Layout:
    """How one lane reads one chunk of a packed row.

    ``vals`` consecutive values (a multiple of 32, at most the group size, so one chunk
    has one scale) in ``words = vals*bits/32`` uint32 words, read ``vec`` words per load
    (4: 16-byte loads, 2: 8-byte, 1: 4-byte).
    """

    bits: int
    group_size: int
    vals: int
    words: int
    vec: int


def layout(bits: int, group_size: int) -> Layout:
    """The chunk layout for ``bits``/``group_size``: 16-byte chunks for 2 bits (64 values
    when the group allows it), 4 bits (32 values) and 8 bits (32 values, two loads); 3, 5 and
    6 bits take a whole packing period of 32 values (12, 20, 24 bytes)."""
    vals = 64 if bits == 2 and group_size >= 64 else 32
    words = vals * bits // 32
    vec = 4 if words % 4 == 0 else 2 if words % 2 == 0 else 1
    return Layout(bits, group_size, vals, words, vec)


def choose(
    *,
    rows: int,
    k: int,
    n: int,
    bits: int,
    group_size: int,
    mode: str,
    transpose: bool,
    x_dtype: str,
    scales_dtype: str,
    weight_ndim: int,
    has_biases: bool,
) -> str | None:
    """Which kernel runs a quantized matmul: ``"decode"``, ``"dequant"`` or None (MLX's own
    ``mx.quantized_matmul``). Pure shape/format logic; dtypes are given by name."""
    if not (mode == "affine" and transpose and has_biases and weight_ndim == 2):
        return None
    if bits not in SUPPORTED_BITS or group_size not in SUPPORTED_GROUP_SIZES:
        return None
    if x_dtype not in X_DTYPES or scales_dtype not in SCALE_DTYPES:
        return None
    if rows < 1 or n < 1 or k < 1 or k % group_size:
        return None
    lay = layout(bits, group_size)
    if k % lay.vals or (k * bits // 32) % lay.vec or k % 8:
        return None
    if rows <= DECODE_MAX_ROWS:
        return "decode"
    if MLX_MIN_ROWS <= rows < PREFILL_MIN_ROWS:
        return None
    return "dequant"


def decode_rows_per_warp(bits: int, group_size: int) -> int:
    """Rows of W per warp in the decode kernel: 8 when a chunk is at most 16 bytes, else 4
    (the loaded words of all rows stay in registers)."""
    return 8 if layout(bits, group_size).words <= 4 else 4


#: With 3 or more rows of x (MT >= 4) and fewer row sets of W than this (16 warps per
#: multiprocessor of an H100), the decode kernel splits K over the 4 warps of a block: the
#: per-row work is then compute-bound and needs more warps (H100: 5 rows of x at 12288 x 4096,
#: 131 -> 66 us). For one row of x it costs ~10% (ncu: 16.9 -> 18.7 us), so it stays off.
DECODE_SPLIT_BELOW_WARPS = 132 * 16


def decode_k_split(n: int, rows: int, m_tile: int = 1) -> int:
    """Warps (1 or 4) that share one set of rows of W in the decode kernel, each taking
    every KSPLIT-th chunk of K; their sums meet in shared memory."""
    return 4 if m_tile >= 4 and -(-n // rows) < DECODE_SPLIT_BELOW_WARPS else 1


def decode_m_tile(rows: int) -> int:
    """The compile-time row count ``MT`` of the decode kernel: the next power of two."""
    return 1 << max(0, math.ceil(math.log2(rows)))


HEADER = r"""
// arrayq: helpers for the affine quantized kernels (bits of one row form a little-endian
// bit stream: value i at bits [i*BITS, (i+1)*BITS) of the row's uint32 words).
template <int WORDS, int VEC>
__device__ __forceinline__ void aq_load_words(const uint32_t* p, uint32_t (&q)[WORDS]) {
  if constexpr (VEC == 4) {
#pragma unroll
    for (int j = 0; j < WORDS / 4; ++j) {
      const uint4 u = __ldg(reinterpret_cast<const uint4*>(p) + j);
      q[4 * j] = u.x; q[4 * j + 1] = u.y; q[4 * j + 2] = u.z; q[4 * j + 3] = u.w;
    }
  } else if constexpr (VEC == 2) {
#pragma unroll
    for (int j = 0; j < WORDS / 2; ++j) {
      const uint2 u = __ldg(reinterpret_cast<const uint2*>(p) + j);
      q[2 * j] = u.x; q[2 * j + 1] = u.y;
    }
  } else {
#pragma unroll
    for (int j = 0; j < WORDS; ++j) q[j] = __ldg(p + j);
  }
}

// 1 + code/2^BITS as a float (exact): the code placed in the top of the mantissa.
template <int BITS, int WORDS>
__device__ __forceinline__ float aq_code_f(const uint32_t (&q)[WORDS], const int i) {
  const int bit = i * BITS;
  const int wi = bit >> 5;
  const int sh = bit & 31;
  uint32_t v = q[wi] >> sh;
  if (sh + BITS > 32 && wi + 1 < WORDS) v = __funnelshift_r(q[wi], q[wi + 1], sh);
  constexpr uint32_t FIELD = ((1u << BITS) - 1u) << (23 - BITS);
  return __uint_as_float(((v << (23 - BITS)) & FIELD) | 0x3F800000u);
}

// 8 values of a 16-bit float type from one 16-byte vector, widened to float32.
template <bool BF16>
__device__ __forceinline__ void aq_widen8(const uint4 u, float* out) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if constexpr (BF16) {
      out[2 * j] = __uint_as_float(w[j] << 16);
      out[2 * j + 1] = __uint_as_float(w[j] & 0xFFFF0000u);
    } else {
      out[2 * j] = __half2float(__ushort_as_half((unsigned short)(w[j] & 0xFFFFu)));
      out[2 * j + 1] = __half2float(__ushort_as_half((unsigned short)(w[j] >> 16)));
    }
  }
}

// Two float32 values rounded (to nearest even) into one word of a 16-bit float type.
template <bool BF16>
__device__ __forceinline__ uint32_t aq_narrow2(const float a, const float b) {
  if constexpr (BF16) {
    return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(a)) |
           ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(b)) << 16);
  } else {
    return (uint32_t)__half_as_ushort(__float2half_rn(a)) |
           ((uint32_t)__half_as_ushort(__float2half_rn(b)) << 16);
  }
}
"""

#: Decode (GEMV) kernel body. Inputs x (M, K) T, w (N, K*BITS/32) uint32, scales and
#: biases (N, K/GS) S; output out (M, N) T. One warp per ROWS rows of W, M <= MT.
DECODE_SOURCE = r"""
  constexpr int WORDS = VALS * BITS / 32;
  constexpr float TWO_B = float(1 << BITS);
  const int M = x_shape[0];
  const int K = x_shape[1];
  const int N = w_shape[0];
  const int KW = K / 32 * BITS;
  const int KG = K / GS;
  const int NCH = K / VALS;
  // a block is 4 warps: 4 / KSPLIT sets of ROWS rows, KSPLIT warps splitting K for each
  const int lane = threadIdx.x & 31;
  const int wib = threadIdx.x >> 5;
  const int ks = wib % KSPLIT;
  const int row0 = (blockIdx.x * (4 / KSPLIT) + wib / KSPLIT) * ROWS;
  const bool active = row0 < N;
  float acc[MT][ROWS];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[m][r] = 0.0f;
#pragma unroll 2
  for (int c = ks * 32 + lane; active && c < NCH; c += 32 * KSPLIT) {
    uint32_t q[ROWS][WORDS];
    float s2[ROWS], b2[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const int n = min(row0 + r, N - 1);
      aq_load_words<WORDS, VEC>(w + (size_t)n * KW + (size_t)c * WORDS, q[r]);
      const size_t g = (size_t)n * KG + (c * VALS) / GS;
      const float s = static_cast<float>(scales[g]);
      s2[r] = s * TWO_B;
      b2[r] = static_cast<float>(biases[g]) - s2[r];
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m < M) {
        float xv[VALS];
        const uint4* xp = reinterpret_cast<const uint4*>(x + (size_t)m * K + (size_t)c * VALS);
#pragma unroll
        for (int j = 0; j < VALS / 8; ++j) aq_widen8<X_BF16>(__ldg(xp + j), xv + 8 * j);
        float sx = 0.0f;
#pragma unroll
        for (int i = 0; i < VALS; ++i) sx += xv[i];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
          float d = 0.0f;
#pragma unroll
          for (int i = 0; i < VALS; ++i) d = fmaf(aq_code_f<BITS, WORDS>(q[r], i), xv[i], d);
          acc[m][r] = fmaf(s2[r], d, fmaf(b2[r], sx, acc[m][r]));
        }
      }
    }
  }
  __shared__ float part[4][MT * ROWS];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      float v = acc[m][r];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (lane == 0) part[wib][m * ROWS + r] = v;
    }
  }
  __syncthreads();
  if (!active || ks != 0) return;
  for (int e = lane; e < MT * ROWS; e += 32) {
    const int m = e / ROWS;
    const int r = e - m * ROWS;
    float v = 0.0f;
#pragma unroll
    for (int j = 0; j < KSPLIT; ++j) v += part[wib + j][e];
    if (m < M && row0 + r < N) out[(size_t)m * N + row0 + r] = static_cast<T>(v);
  }
"""

#: Dequantize kernel body. Inputs w (N, K*BITS/32) uint32, scales and biases (N, K/GS) S;
#: output out (N, K) T, out = s*q + b in float32 rounded once. One thread per 8 values
#: (one 16-byte store; a warp writes 512 contiguous bytes): it reads the two words that
#: hold its 8*BITS bits as one 64-bit window.
DEQUANT_SOURCE = r"""
  constexpr int WORDS = VALS * BITS / 32;
  constexpr int PARTS = VALS / 8;
  constexpr uint32_t MASK = (1u << BITS) - 1u;
  const int N = w_shape[0];
  const int KG = scales_shape[1];
  const int K = KG * GS;
  const int KW = K / 32 * BITS;
  const int NCH = K / VALS;
  const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (size_t)N * NCH * PARTS) return;
  const size_t ch = t / PARTS;
  const int j = (int)(t - ch * PARTS);
  const size_t n = ch / NCH;
  const int c = (int)(ch - n * NCH);
  const int bit0 = 8 * j * BITS;
  const uint32_t* wp = w + n * KW + (size_t)c * WORDS + (bit0 >> 5);
  const uint32_t lo = __ldg(wp);
  const uint32_t hi = (bit0 >> 5) + 1 < WORDS ? __ldg(wp + 1) : 0u;
  const uint64_t win = ((((uint64_t)hi) << 32) | lo) >> (bit0 & 31);
  const size_t g = n * KG + (c * VALS) / GS;
  const float s = static_cast<float>(scales[g]);
  const float b = static_cast<float>(biases[g]);
  float v[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    // the code as a float without a conversion instruction: 2^23 + code, minus 2^23
    const uint32_t code = (uint32_t)(win >> (i * BITS)) & MASK;
    v[i] = fmaf(s, __uint_as_float(0x4B000000u | code) - 8388608.0f, b);
  }
  uint4 u;
  u.x = aq_narrow2<X_BF16>(v[0], v[1]);
  u.y = aq_narrow2<X_BF16>(v[2], v[3]);
  u.z = aq_narrow2<X_BF16>(v[4], v[5]);
  u.w = aq_narrow2<X_BF16>(v[6], v[7]);
  reinterpret_cast<uint4*>(out + n * K + (size_t)c * VALS)[j] = u;
"""


@functools.cache
def decode_template(
    x_dtype: Any, scales_dtype: Any, bits: int, group_size: int, rows: int, mt: int, ksplit: int = 1
) -> tuple[tuple[str, Any], ...]:
    """MLX template arguments of the decode kernel (dtypes are ``mx.Dtype``)."""
    lay = layout(bits, group_size)
    return (
        ("T", x_dtype),
        ("S", scales_dtype),
        ("X_BF16", "bfloat16" in str(x_dtype)),
        ("BITS", bits),
        ("GS", group_size),
        ("ROWS", rows),
        ("MT", mt),
        ("KSPLIT", ksplit),
        ("VALS", lay.vals),
        ("VEC", lay.vec),
    )


@functools.cache
def dequant_template(out_dtype: Any, scales_dtype: Any, bits: int, group_size: int) -> tuple[tuple[str, Any], ...]:
    """MLX template arguments of the dequantize kernel."""
    lay = layout(bits, group_size)
    return (
        ("T", out_dtype),
        ("S", scales_dtype),
        ("X_BF16", "bfloat16" in str(out_dtype)),
        ("BITS", bits),
        ("GS", group_size),
        ("VALS", lay.vals),
        ("VEC", lay.vec),
    )


class CudaKernels:
    """The kernels, built (as MLX kernel objects) on first use; create only when
    ``mx.cuda.is_available()``. ``poison`` fills outputs with NaN before each launch (tests)."""

    def __init__(self, mx: Any, poison: bool = False) -> None:
        self.mx = mx
        self.poison = poison
        self.rows_per_warp: int | None = None  # None: decode_rows_per_warp(bits, group_size)
        self.k_split: int | None = None  # None: decode_k_split(n, rows)
        self._decode: Any = None
        self._dequant: Any = None

    def _init_value(self) -> float | None:
        return float("nan") if self.poison else None

    def decode(self, x: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int) -> Any:
        """``x @ W.T`` for x ``(M, K)`` (M <= 16 compiles; bfloat16/float16), W ``(N, K)``; ``(M, N)``
        in x's dtype."""
        mx = self.mx
        if self._decode is None:
            self._decode = mx.fast.cuda_kernel(
                name="arrayq_qmv",
                input_names=["x", "w", "scales", "biases"],
                output_names=["out"],
                source=DECODE_SOURCE,
                header=HEADER,
            )
        m, n = int(x.shape[0]), int(packed.shape[0])
        rows = self.rows_per_warp or decode_rows_per_warp(bits, group_size)
        ksplit = self.k_split or decode_k_split(n, rows, decode_m_tile(m))
        row_sets = -(-n // rows)
        blocks = -(-row_sets // (4 // ksplit))
        return self._decode(
            inputs=[x, packed, scales, biases],
            template=list(decode_template(x.dtype, scales.dtype, bits, group_size, rows, decode_m_tile(m), ksplit)),
            grid=(blocks * DECODE_BLOCK, 1, 1),
            threadgroup=(DECODE_BLOCK, 1, 1),
            output_shapes=[(m, n)],
            output_dtypes=[x.dtype],
            init_value=self._init_value(),
        )[0]

    def dequantize(self, packed: Any, scales: Any, biases: Any, bits: int, group_size: int, dtype: Any) -> Any:
        """W ``(N, K)`` in ``dtype`` (bfloat16/float16): ``s*q + b`` in float32, rounded once."""
        mx = self.mx
        if self._dequant is None:
            self._dequant = mx.fast.cuda_kernel(
                name="arrayq_dequant",
                input_names=["w", "scales", "biases"],
                output_names=["out"],
                source=DEQUANT_SOURCE,
                header=HEADER,
            )
        n, k = int(packed.shape[0]), int(scales.shape[1]) * group_size
        return self._dequant(
            inputs=[packed, scales, biases],
            template=list(dequant_template(dtype, scales.dtype, bits, group_size)),
            grid=(n * k // 8, 1, 1),
            threadgroup=(DEQUANT_BLOCK, 1, 1),
            output_shapes=[(n, k)],
            output_dtypes=[dtype],
            init_value=self._init_value(),
        )[0]

    def prefill(self, x: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int) -> Any:
        """``x @ W.T`` for many rows: W dequantized to x's dtype, then ``mx.matmul``."""
        w = self.dequantize(packed, scales, biases, bits, group_size, x.dtype)
        return self.mx.matmul(x, self.mx.swapaxes(w, 0, 1))

    def quantized_matmul(self, kind: str, x: Any, packed: Any, scales: Any, biases: Any, bits: int, gs: int) -> Any:
        """x ``(..., K)`` times the unbatched W ``(N, K)``: ``(..., N)`` with ``kind`` from
        :func:`choose`."""
        mx = self.mx
        lead = tuple(x.shape[:-1])
        x2 = x if x.ndim == 2 else mx.reshape(x, (-1, x.shape[-1]))
        if kind == "decode":
            out = self.decode(x2, packed, scales, biases, bits, gs)
        else:
            out = self.prefill(x2, packed, scales, biases, bits, gs)
        return out if x.ndim == 2 else mx.reshape(out, lead + (int(packed.shape[0]),))


def emulate_decode(xp: Any, x: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int) -> Any:
    """A NumPy emulation of the decode kernel's indexing and arithmetic, chunk by chunk:
    the same word offsets, shifts, funnel shifts, mantissa trick and per-chunk
    ``s*2**bits * sum(f*x) + (b - s*2**bits) * sum(x)``, in float64 (so it checks the
    math, not the rounding). ``xp`` is NumPy; x ``(M, K)``, returns ``(M, N)``."""
    lay = layout(bits, group_size)
    n, kw = packed.shape
    k = kw * 32 // bits
    words = xp.asarray(packed, dtype=xp.uint64).reshape(n, k // lay.vals, lay.words)
    field = ((1 << bits) - 1) << (23 - bits)
    codes_f = []
    for i in range(lay.vals):
        bit = i * bits
        wi, sh = bit >> 5, bit & 31
        v = words[:, :, wi] >> xp.uint64(sh)
        if sh + bits > 32 and wi + 1 < lay.words:  # __funnelshift_r(lo, hi, sh)
            v = ((words[:, :, wi + 1] << xp.uint64(32)) | words[:, :, wi]) >> xp.uint64(sh)
        v = v & xp.uint64(0xFFFFFFFF)
        mant = ((v << xp.uint64(23 - bits)) & xp.uint64(field)) | xp.uint64(0x3F800000)
        codes_f.append(mant.astype(xp.uint32).view(xp.float32).astype(xp.float64))
    f = xp.stack(codes_f, axis=-1)  # (N, chunks, VALS): 1 + q / 2**bits
    xs = xp.asarray(x, dtype=xp.float64).reshape(x.shape[0], k // lay.vals, lay.vals)
    per_chunk = lay.vals // group_size if lay.vals >= group_size else 1
    assert per_chunk == 1, "a chunk lies inside one group"
    chunk_group = (xp.arange(k // lay.vals) * lay.vals) // group_size
    s = xp.asarray(scales, dtype=xp.float64)[:, chunk_group]
    b = xp.asarray(biases, dtype=xp.float64)[:, chunk_group]
    s2 = s * 2.0**bits
    b2 = b - s2
    d = xp.einsum("ncv,mcv->mnc", f, xs)
    sx = xs.sum(-1)  # (M, chunks)
    return (s2[None] * d + b2[None] * sx[:, None, :]).sum(-1)


def emulate_dequantize(xp: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int) -> Any:
    """A NumPy emulation of the dequantize kernel's indexing: thread ``t`` -> chunk, part
    ``j`` of 8 values, the two words at ``(8*j*bits) >> 5`` read as one 64-bit window and
    shifted by ``(8*j*bits) & 31``, codes ``(window >> i*bits) & mask``; returns W ``(N, K)``
    as float64 ``s*q + b``."""
    lay = layout(bits, group_size)
    n, kw = packed.shape
    k = kw * 32 // bits
    words = xp.asarray(packed, dtype=xp.uint64).reshape(n, k // lay.vals, lay.words)
    words = xp.concatenate([words, xp.zeros((n, k // lay.vals, 1), dtype=xp.uint64)], axis=-1)  # "hi = 0"
    parts = []
    for j in range(lay.vals // 8):
        bit0 = 8 * j * bits
        wi = bit0 >> 5
        win = ((words[:, :, wi + 1] << xp.uint64(32)) | words[:, :, wi]) >> xp.uint64(bit0 & 31)
        for i in range(8):
            parts.append((win >> xp.uint64(i * bits)) & xp.uint64((1 << bits) - 1))
    q = xp.stack(parts, axis=-1).reshape(n, k).astype(xp.float64)
    g = xp.arange(k) // group_size
    return xp.asarray(scales, dtype=xp.float64)[:, g] * q + xp.asarray(biases, dtype=xp.float64)[:, g]
