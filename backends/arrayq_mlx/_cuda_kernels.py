"""arrayq's own CUDA kernels for MLX's affine quantized matmul, as ``mx.fast.cuda_kernel``.

MLX compiles each kernel variant with NVRTC the first time it runs (a few seconds); nothing
here is compiled, or even built as a kernel object, unless MLX has a CUDA device. The
sources are templates: ``BITS``, ``GS`` (group size), ``ROWS``, ``MT``, ``VALS``, ``VEC``
and the dtypes ``T`` (x/out) and ``S`` (scales/biases) are MLX template arguments, so one
source covers every bit width and group size.

Four kernels, for ``y = x @ W.T`` with an unbatched affine weight ``W`` of shape ``(N, K)``
(``packed`` uint32 ``(N, K*bits/32)``, ``scales``/``biases`` ``(N, K/GS)``):

* **decode_tc** (``rows <= DECODE_TC_MAX_ROWS``, 16, on compute capability 8 and up, where
  ``K % 256 == 0`` and the codes fit a 16-bit mantissa: up to 7 bits for bfloat16 x, 8 for
  float16): a memory-bound GEMV on the tensor cores (``mma.sync`` m16n8k16). A warp owns 16
  rows of ``W`` (the mma's M) and every other 256-value stage of K, which it streams
  through its own two-stage ring in shared memory with ``cp.async``; the rows of x are the
  mma's N. Each code goes into the mantissa of ``MAGIC`` (128 in bfloat16, 1024 in
  float16), so ``MAGIC + q`` is exact in x's 16-bit type; a second mma with A = ones sums x
  over the same values, and per group ``s * (acc - MAGIC * sum) + b * sum`` adds
  ``sum_k (s*q_k + b) * x_k`` in float32. A lane's codes are 8 consecutive values of a row,
  paired (i, i+4) by one shift and one LOP3 per pair; x is permuted to match (``DECODE_TC_SOURCE``).
* **decode** (``rows <= DECODE_MAX_ROWS``, 4, where decode_tc does not run): the same GEMV
  on the CUDA cores. Each warp owns ``ROWS``
  rows of ``W``; lane ``c`` of the warp takes chunk ``c, c+32, ...`` of ``VALS`` consecutive
  values (one vector load of ``VALS*BITS/8`` bytes, inside one group). The codes are
  decoded without an integer-to-float conversion: ``f = 1 + q/2**BITS`` is built in the
  float's mantissa, and ``sum_k (s*q_k + b) * x_k = (s*2**BITS) * sum f_k x_k + (b -
  s*2**BITS) * sum x_k`` per chunk. Products and sums are float32; a warp-shuffle
  reduction ends each row.
* **qmm** (``PREFILL_MIN_ROWS <= rows <= QMM_MAX_ROWS``, 32-1024, and 5-7 rows where decode_tc
  does not run, where ``K % 64 == 0`` and ``N % 8 == 0``, on Hopper GPUs only: compute
  capability 9.x, see :func:`compute_capability`): the fused tensor-core kernel (``wgmma``,
  A = W dequantized in registers, B = x tiles in shared memory; see ``QMM_SOURCE``); no
  bf16 copy of W is written.
* **dequantize** (more rows, and 5-7 rows where neither runs; without the fused kernel,
  from ``DEQUANT_MIN_ROWS`` rows): ``W``
  in x's dtype, ``w = s*q + b`` computed in float32 and rounded once; the product is then
  MLX's dense ``mx.matmul`` (cuBLAS, tensor cores, float32 accumulation).

Everything else (transpose=False, batched weights, non-affine modes, float32 x, 1-bit,
17-31 rows (8-31 where decode_tc does not run), where MLX's tiled kernel is faster, 32-127
rows where the fused kernel does not run, shapes whose rows are not aligned for the vector loads) falls back to
``mx.quantized_matmul``. ``ARRAYQ_MLX_CUDA_KERNELS=0`` turns the kernels off.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any

#: Environment variable: "0" turns arrayq's CUDA kernels off (MLX's own kernels run).
ENV_VAR = "ARRAYQ_MLX_CUDA_KERNELS"
#: x rows (batch axes included) up to which the CUDA-core decode kernel runs where the
#: tensor-core one does not. Its time grows by ~10-20 us a row at 12288 x 4096 (the codes are
#: decoded again for each row of x); 5-7 rows take the fused kernel where its shape rules
#: allow (else the dequantize path; notes-gpu.md).
DECODE_MAX_ROWS = 4
#: x rows up to which the tensor-core decode kernel runs (GPUs of compute capability 8 and
#: up): the rows of x are the mma's N, so 8 rows cost about what one does. H100, 12288 x
#: 4096, GPU time per call: 1 row 10.6 us, 8 rows 11.5, 9-16 rows 14.8-15.9 against MLX's
#: 27.0 / 23.3 / 23.6-23.7 and the fused kernel's ~25 (notes-gpu.md).
DECODE_TC_MAX_ROWS = 16
#: From this many rows, where the tensor-core decode kernel does not run, MLX's own kernel
#: (mlx 0.32.4 switches to a tiled kernel at 8 rows) is faster than the others up to
#: PREFILL_MIN_ROWS; below it, MLX's GEMV costs ~28 us a row.
MLX_MIN_ROWS = 8
#: x rows from which arrayq's fused prefill kernel runs again (and beats MLX's kernel: H100,
#: 12288 x 4096, v3 3 x 128: 32 rows 40.4 vs 53.4 us, 64: 42.3 vs 62.4; notes-gpu.md).
PREFILL_MIN_ROWS = 32
#: Up to this many rows the fused kernel (``"qmm"``) beats dequantize + matmul (H100,
#: 12288 x 4096, v3: 512 rows 98.6 vs 139.8 us, 768: 147.8 vs 174.6; 1024 is a tie, 193.1 vs
#: 200.4 and 208.9 vs 203.1 in two runs); above it the dequantize path runs.
QMM_MAX_ROWS = 1024
#: Where the fused kernel does not run (not Hopper, or its shape rules fail), MLX's kernel
#: up to this many rows and dequantize + matmul from here (H100, before the fused kernel:
#: 128 rows 108.3 vs 114.8 us, 64 rows 104.5 vs 62.6; notes-gpu.md).
DEQUANT_MIN_ROWS = 128
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
    arch: int,
) -> str | None:
    """Which kernel runs a quantized matmul: ``"decode_tc"`` (the tensor-core decode kernel),
    ``"decode"`` (the other decode kernel), ``"qmm"`` (the fused prefill kernel), ``"dequant"``
    or None (MLX's own ``mx.quantized_matmul``). Pure shape/format logic; dtypes are given by
    name. ``arch``: the GPU's compute capability major (:func:`compute_capability`; 8 and up
    run ``mma.sync``, 9 the fused kernel's Hopper ``wgmma``; 0 when unknown)."""
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
    # codes as 16-bit floats need 7 bits at most in bfloat16 (8 in float16)
    tc_codes = bits <= (7 if x_dtype == "bfloat16" else 8)
    if arch >= 8 and rows <= DECODE_TC_MAX_ROWS and k % DECODE_TC_KS == 0 and tc_codes:
        return "decode_tc"
    if rows <= DECODE_MAX_ROWS:
        return "decode"
    if MLX_MIN_ROWS <= rows < PREFILL_MIN_ROWS:
        return None
    # the fused kernel also for 5-7 rows where decode_tc does not run (one row tile, ~40 us
    # at 12288 x 4096, where dequantize + matmul takes ~100 and MLX's GEMV ~28 us a row)
    if (
        arch == 9
        and rows <= QMM_MAX_ROWS
        and k % QMM_KT == 0
        and n % 8 == 0
        and rows * k < 2**31
        and n * k * bits // 8 < 2**32  # 32-bit byte offsets of the codes
    ):
        return "qmm"
    if MLX_MIN_ROWS <= rows < DEQUANT_MIN_ROWS:
        return None
    return "dequant"


def compute_capability(mx: Any) -> int:
    """The major compute capability of MLX's CUDA device (9 for Hopper: its NVRTC target sm_90a
    has the fused kernel's ``wgmma`` and bf16x2 instructions, which sm_80/89 lack and sm_100a
    dropped; 8 and up have ``mma.sync`` for the tensor-core decode kernel), or 0 when MLX
    cannot say."""
    try:
        info = mx.device_info(mx.gpu)
    except Exception:
        return 0
    major = info.get("compute_capability_major")
    if major is None:  # "sm_90": major and minor digits
        arch = str(info.get("architecture", ""))
        major = arch[3:-1] if arch.startswith("sm_") and arch[3:].isdigit() else None
    try:
        return int(major) if major is not None else 0
    except (TypeError, ValueError):
        return 0


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

TC_HELPERS = r"""
// D += A B for one m16n8k16 tile (A row-major 16x16, B column-major 16x8, 16-bit, f32 acc)
template <bool BF16>
__device__ __forceinline__ void aq_mma(float (&d)[4], const uint32_t a0, const uint32_t a1, const uint32_t a2,
                                       const uint32_t a3, const uint32_t b0, const uint32_t b1) {
  if constexpr (BF16) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
}
// the 8 codes of a row from code `first` on (row's words at wr): code j at bits j*BITS
template <int BITS>
__device__ __forceinline__ uint64_t aq_codes8(const uint32_t* wr, const int first) {
  const int bit = first * BITS;
  if constexpr (8 * BITS <= 32 && 32 % (8 * BITS) == 0) {
    return wr[bit >> 5] >> (bit & 31);  // never crosses a word (2 and 4 bits)
  } else {
    const uint64_t u = (uint64_t)wr[bit >> 5] | ((uint64_t)wr[(bit >> 5) + 1] << 32);
    return u >> (bit & 31);
  }
}
// codes i and i+4 of the 8 (u: see aq_codes8) as the 16-bit pair (MAGIC + q_i, MAGIC + q_i+4):
// each code in the mantissa of MAGIC (128 in bf16, 1024 in f16: ulp 1), exact
template <int BITS>
__device__ __forceinline__ uint32_t aq_code_pair(const uint64_t u, const int i, const uint32_t magic) {
  constexpr uint32_t M = (1u << BITS) - 1u;
  const uint64_t v = u >> (i * BITS);
  const uint32_t lo = (uint32_t)v;
  const uint32_t hi = 4 * BITS >= 16 ? (uint32_t)(v >> (4 * BITS - 16)) : lo << (16 - 4 * BITS);
  return (lo & M) | (hi & (M << 16)) | magic;
}
"""

#: Tensor-core decode kernel body (sm_80+: mma.sync, cp.async). Inputs x (M, K) T, w (N,
#: K*BITS/32) uint32, scales and biases (N, K/GS) S; output out (M, N) T; M <= MT <= 16,
#: K % KS == 0. A warp takes 16 rows of W (the mma's M) and every KSPLIT-th stage of KS
#: values of K, streamed through its own ring of D shared-memory stages by cp.async. The
#: mma multiplies the codes, exact as MAGIC + q in x's 16-bit type, by x (its rows are the
#: mma's N); a second mma with A = ones sums x over the same values; per group of K,
#: s * (acc - MAGIC * sum) + b * sum adds the group in float32.
DECODE_TC_SOURCE = r"""
  using SS = cuda::std::remove_cv_t<cuda::std::remove_reference_t<decltype(scales[0])>>;
  using XT = cuda::std::remove_cv_t<cuda::std::remove_reference_t<decltype(x[0])>>;
  constexpr int KS = 256;                        // K values per stage (DECODE_TC_KS)
  constexpr int CB = KS * BITS / 8;              // bytes of codes per row and stage
  constexpr int CR = CB / 16;                    // their 16-byte chunks
  constexpr int RW = CB / 4 + 4;                 // shared row of codes in words (padded: the
                                                 // 8 rows a load reads hit different banks)
  constexpr int GST = KS / GS;                   // groups per stage
  constexpr int SB = GST * (int)sizeof(SS);      // bytes of scales per row and stage
  constexpr int SCH = SB < 16 ? SB : 16;
  constexpr int SCR = SB / SCH;
  constexpr int STW = 16 * RW + 2 * 16 * SB / 4; // words per stage
  constexpr int NB = (MT + 7) / 8;               // 8-row tiles of x
  constexpr int SPG = GS / 32;                   // 32-value steps per group
  constexpr float MAGIC_F = X_BF16 ? 128.0f : 1024.0f;
  static_assert((16 * CR) % 32 == 0, "the code chunks of a stage split evenly over the lanes");
  static_assert(4 % KSPLIT == 0 && MT <= 16, "4 warps a block: 4 / KSPLIT tiles; at most 16 rows of x");
  static_assert(BITS <= (X_BF16 ? 7 : 10), "MAGIC + q must be exact in x's 16-bit type");
  // SK (the scales' dtype, in the kernel's name for MLX's name-keyed cache) must match them
  static_assert(SK == (cuda::std::is_same_v<SS, __nv_bfloat16> ? 0 : cuda::std::is_same_v<SS, __half> ? 1 : 2));
  const int M = x_shape[0];
  const int K = x_shape[1];
  const int N = w_shape[0];
  const int KW = K / 32 * BITS;
  const int KG = K / GS;
  const int NST = K / KS;
  const int lane = threadIdx.x & 31;
  const int wib = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int ks = wib % KSPLIT;
  const int row0 = (blockIdx.x * (4 / KSPLIT) + wib / KSPLIT) * 16;
  const int nst = row0 < N && ks < NST ? (NST - ks + KSPLIT - 1) / KSPLIT : 0;
  // static shared memory (MLX's dynamic shared memory costs CPU time on every launch)
  static_assert(4 * D * STW * 4 + 4 * NB * 4 * 32 * 4 <= 48 * 1024, "static shared memory");
  __shared__ __align__(16) uint32_t aq_ring[4 * D * STW];
  uint32_t* const ring = aq_ring + wib * (D * STW);
  const uint32_t ring_s = aq_smem_u32(ring);

  // stage i of this warp (K values (ks + i*KSPLIT)*KS ...) into ring slot i % D; one
  // commit group per call, empty past the last stage
  auto issue = [&](const int i) {
    if (i < nst) {
      const int st = ks + i * KSPLIT;
      const uint32_t slot = ring_s + (i % D) * STW * 4;
#pragma unroll
      for (int j = 0; j < 16 * CR / 32; ++j) {
        const int e = lane + 32 * j, r = e / CR, c = e - (e / CR) * CR;
        const int n = row0 + r;
        aq_cp_async<16>(slot + r * RW * 4 + c * 16, w + (size_t)min(n, N - 1) * KW + st * (CB / 4) + c * 4, n < N);
      }
#pragma unroll
      for (int e = lane; e < 16 * SCR; e += 32) {
        const int r = e / SCR, c = e - (e / SCR) * SCR;
        const size_t off = (size_t)min(row0 + r, N - 1) * KG + st * GST;
        const uint32_t dst = slot + 16 * RW * 4 + r * SB + c * SCH;
        aq_cp_async<SCH>(dst, reinterpret_cast<const char*>(scales + off) + c * SCH, true);
        aq_cp_async<SCH>(dst + 16 * SB, reinterpret_cast<const char*>(biases + off) + c * SCH, true);
      }
    }
    aq_cp_commit();
  };

  const uint32_t magic = aq_magic2<X_BF16>((uint32_t)K >> 31);
  const uint32_t ones = X_BF16 ? 0x3F803F80u : 0x3C003C00u;
  float tot[NB][4];
#pragma unroll
  for (int nb = 0; nb < NB; ++nb)
#pragma unroll
    for (int j = 0; j < 4; ++j) tot[nb][j] = 0.0f;
#pragma unroll
  for (int i = 0; i < D - 1; ++i) issue(i);
  for (int i = 0; i < nst; ++i) {
    issue(i + D - 1);  // into the slot read in the previous pass
    aq_cp_wait<D - 1>();
    __syncwarp();
    const uint32_t* cw = ring + (i % D) * STW;
    const SS* sc = reinterpret_cast<const SS*>(cw + 16 * RW);
    const SS* bi = sc + 16 * GST;
    const XT* xs = x + (ks + i * KSPLIT) * KS + 8 * t;
#pragma unroll
    for (int gi = 0; gi < GST; ++gi) {
      float acc[NB][4], sum[NB][4];
#pragma unroll
      for (int nb = 0; nb < NB; ++nb)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[nb][j] = sum[nb][j] = 0.0f;
#pragma unroll
      for (int pp = 0; pp < SPG; ++pp) {
        const int p = gi * SPG + pp;  // values 32p .. 32p+31 of the stage; this lane's: 32p+8t ..
        const uint64_t u0 = aq_codes8<BITS>(cw + g * RW, 32 * p + 8 * t);
        const uint64_t u1 = aq_codes8<BITS>(cw + (g + 8) * RW, 32 * p + 8 * t);
#pragma unroll
        for (int nb = 0; nb < NB; ++nb) {
          const int m = 8 * nb + g;
          uint4 xv = make_uint4(0u, 0u, 0u, 0u);
          if (m < M) xv = __ldg(reinterpret_cast<const uint4*>(xs + (size_t)m * K + 32 * p));
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            // k16 step e: mma column k of (2t, 2t+1, 2t+8, 2t+9) holds code (2e, 2e+4, 2e+1,
            // 2e+5) of this lane's 8, and x at the same K positions
            const uint32_t xlo = e ? xv.y : xv.x, xhi = e ? xv.w : xv.z;
            const uint32_t b0 = __byte_perm(xlo, xhi, 0x5410), b1 = __byte_perm(xlo, xhi, 0x7632);
            aq_mma<X_BF16>(acc[nb], aq_code_pair<BITS>(u0, 2 * e, magic), aq_code_pair<BITS>(u1, 2 * e, magic),
                           aq_code_pair<BITS>(u0, 2 * e + 1, magic), aq_code_pair<BITS>(u1, 2 * e + 1, magic),
                           b0, b1);
            aq_mma<X_BF16>(sum[nb], ones, ones, ones, ones, b0, b1);
          }
        }
      }
      // acc: rows g, g+8 (j >> 1) x rows 8nb + 2t + (j & 1) of x; sum: x summed (every row)
      const float s[2] = {static_cast<float>(sc[g * GST + gi]), static_cast<float>(sc[(g + 8) * GST + gi])};
      const float b[2] = {static_cast<float>(bi[g * GST + gi]), static_cast<float>(bi[(g + 8) * GST + gi])};
#pragma unroll
      for (int nb = 0; nb < NB; ++nb)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (8 * nb + (j & 1) < MT) {
            const float sx = sum[nb][j & 1];
            tot[nb][j] = fmaf(s[j >> 1], fmaf(-MAGIC_F, sx, acc[nb][j]), fmaf(b[j >> 1], sx, tot[nb][j]));
          }
        }
    }
    __syncwarp();  // every lane is done with the slot before the next pass refills it
  }
  if constexpr (KSPLIT > 1) {
    __shared__ float part[4][NB * 4][32];
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int j = 0; j < 4; ++j) part[wib][nb * 4 + j][lane] = tot[nb][j];
    __syncthreads();
    if (ks != 0) return;
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int q = 1; q < KSPLIT; ++q) tot[nb][j] += part[wib + q][nb * 4 + j][lane];
  }
#pragma unroll
  for (int nb = 0; nb < NB; ++nb)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = 8 * nb + 2 * t + (j & 1), n = row0 + g + 8 * (j >> 1);
      if (m < M && n < N) out[(size_t)m * N + n] = static_cast<XT>(tot[nb][j]);
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


#: Fused prefill kernel (PREFILL_MIN_ROWS..QMM_MAX_ROWS, and 5-7 rows where the tensor-core
#: decode kernel does not run; Hopper only): y = x @ W.T on the tensor cores with
#: W dequantized in registers, never written out. Hopper ``wgmma`` (MLX's NVRTC compiles for
#: ``sm_90a`` on compute capability 9): each warpgroup of the block owns 64 rows of W and
#: issues ``wgmma.m64nNTk16`` with A = its dequantized weight fragment (registers) and B = a
#: tile of NT rows of x in shared memory (128-byte swizzle, filled by ``cp.async``, STAGES
#: deep). Per K tile of 64 values a lane turns 4 x 2 codes into A's bf16/f16 pairs: the code
#: pair is shifted out of the row's words (staged in shared memory with x), each code
#: becomes ``1 + q/2**BITS`` in a float's mantissa and ``s*2**BITS * f + (b - s*2**BITS)``
#: is one float32 FMA, rounded once to x's dtype (as the dequantize path rounds).
#: The block's output tile goes through shared memory for 16-byte coalesced stores.
QMM_KT = 64  # K values per pipeline stage: one 128-byte swizzle row of 16-bit x


@dataclass(frozen=True)
class QmmConfig:
    """Block shape of the fused prefill kernel: ``wgs`` warpgroups (64 rows of W each),
    ``nt`` rows of x per block (the wgmma N: a multiple of 8 up to 256), ``stages``
    shared-memory stages (prefetch distance ``stages - 2`` K tiles)."""

    wgs: int
    nt: int
    stages: int

    @property
    def threads(self) -> int:
        return 128 * self.wgs


#: The block shapes measured (H100, notes-gpu.md): 3 x 128 for up to 128 rows of x (one row
#: tile), 2 x 256 from QMM_WIDE_FROM (twice the wgmma work per dequantized weight fragment;
#: v3 at 256 rows: 56.0 vs 65.6 us).
QMM_CONFIGS = (QmmConfig(3, 128, 4), QmmConfig(2, 256, 4), QmmConfig(2, 128, 4))
QMM_WIDE_FROM = 129


def qmm_smem_bytes(cfg: QmmConfig, bits: int) -> int:
    """Dynamic shared memory of the fused kernel: the stages (x tile + code rows), or the
    output tile if larger, plus 1 KB to align the swizzled tiles to 1024 bytes."""
    rb = 8 * bits
    ch = 16 if rb % 16 == 0 else 8
    stage = -(-(cfg.nt * 128 + 64 * cfg.wgs * (rb + ch)) // 1024) * 1024
    epilogue = cfg.nt * (64 * cfg.wgs + 8) * 2
    return max(cfg.stages * stage, epilogue) + 1024


def qmm_config(rows: int, n: int) -> QmmConfig:
    """The fused kernel's block shape for ``rows`` rows of x (``n`` rows of W: unused yet)."""
    return QMM_CONFIGS[1] if rows >= QMM_WIDE_FROM else QMM_CONFIGS[0]


#: ``SK`` template argument of the fused kernel: the scales' dtype. MLX 0.32 caches a custom
#: kernel's module by its name alone (name + template arguments, not the input dtypes), so
#: variants for different scale dtypes need different names.
SCALE_KINDS = {"bfloat16": 0, "float16": 1, "float32": 2}


def dtype_name(dtype: Any) -> str:
    """``"bfloat16"`` for ``mx.bfloat16`` (``str`` gives ``mlx.core.bfloat16``) or a name."""
    return str(dtype).rsplit(".", 1)[-1]


def qmm_template(
    x_is_bf16: bool,
    bits: int,
    group_size: int,
    cfg: QmmConfig,
    scales_dtype: str = "bfloat16",
    k: int | None = None,
) -> tuple[tuple[str, Any], ...]:
    """MLX template arguments of the fused kernel: ints and bools only, so the kernel's name
    (``custom_kernel_<name>_<values>``, see :func:`mlx_kernel_name`) is known here. ``TAIL``:
    the K tiles (``k // 64``) are not a multiple of the stages (None: assume they are)."""
    tail = k is not None and (k // QMM_KT) % cfg.stages != 0
    return (
        ("TAIL", tail),
        ("SK", SCALE_KINDS[scales_dtype]),
        ("BITS", bits),
        ("GS", group_size),
        ("X_BF16", bool(x_is_bf16)),
        ("WGS", cfg.wgs),
        ("NT", cfg.nt),
        ("STAGES", cfg.stages),
    )


def mlx_kernel_name(name: str, template: tuple[tuple[str, Any], ...]) -> str:
    """The ``__global__`` function name MLX gives a ``mx.fast.cuda_kernel`` (int/bool template
    arguments: ``_<int>``, ``_t``/``_f``)."""
    parts = [("_t" if v else "_f") if isinstance(v, bool) else f"_{int(v)}" for _, v in template]
    return f"custom_kernel_{name}" + "".join(parts)


ASYNC_HELPERS = r"""
#include <cuda/std/type_traits>
__device__ __forceinline__ uint32_t aq_smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// CH bytes global -> shared, zero-filled when !valid
template <int CH>
__device__ __forceinline__ void aq_cp_async(const uint32_t dst, const void* src, const bool valid) {
  const int n = valid ? CH : 0;
  if constexpr (CH == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n) : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(src), "n"(CH), "r"(n) : "memory");
  }
}
__device__ __forceinline__ void aq_cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void aq_cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }
// MAGIC (128 in bf16, 1024 in f16: ulp 1) in both halves, as a value in a register, so that
// mask and magic are one LOP3 (zero is a run-time zero, e.g. K >> 31: ptxas would fold a
// constant back into the instruction)
template <bool BF16>
__device__ __forceinline__ uint32_t aq_magic2(const uint32_t zero) {
  return (BF16 ? 0x43004300u : 0x64006400u) | zero;
}
"""

#: The fused kernel's helpers (after HEADER and ASYNC_HELPERS).
QMM_HELPERS = r"""
__device__ __forceinline__ void aq_fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void aq_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void aq_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void aq_wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// wgmma descriptor of a K-major tile in shared memory, 128-byte swizzle: rows of 128 bytes,
// 8-row groups 1024 bytes apart (SBO), tile base 1024-byte aligned
__device__ __forceinline__ uint64_t aq_desc(const uint32_t addr) {
  return (uint64_t)((addr & 0x3FFFFu) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) |
         ((uint64_t)1 << 62);
}
// the value, computed here (a volatile asm stays before the volatile asm that follows it)
__device__ __forceinline__ uint64_t aq_pin(const uint64_t v) {
  uint64_t r;
  asm volatile("mov.b64 %0, %1;\n" : "=l"(r) : "l"(v));
  return r;
}
// a 64-bit value of two words, computed here (see aq_pin)
__device__ __forceinline__ uint64_t aq_pack64(const uint32_t lo, const uint32_t hi) {
  uint64_t r;
  asm volatile("mov.b64 %0, {%1, %2};\n" : "=l"(r) : "r"(lo), "r"(hi));
  return r;
}
// codes k and k+1 (k even) of a row whose words start at wr: code k at bit 0, k+1 at bit BITS
template <int BITS>
__device__ __forceinline__ uint32_t aq_pair(const uint32_t* wr, const int k) {
  const int bit = k * BITS;
  if constexpr (32 % (2 * BITS) == 0) {
    return wr[bit >> 5] >> (bit & 31);
  } else {
    return __funnelshift_r(wr[bit >> 5], wr[(bit >> 5) + 1], bit & 31);
  }
}
// two floats rounded (to nearest even) into one word of a 16-bit float type, lo in bits 0-15
template <bool BF16>
__device__ __forceinline__ uint32_t aq_pack2(const float lo, const float hi) {
  uint32_t r;
  if constexpr (BF16) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  }
  return r;
}
// the pair v (see aq_pair) dequantized: s2 * (1 + q/2^BITS) + b2 with s2 = s*2^BITS, b2 = b - s2
template <int BITS, bool BF16>
__device__ __forceinline__ uint32_t aq_deq2(const uint32_t v, const float s2, const float b2) {
  constexpr uint32_t FIELD = ((1u << BITS) - 1u) << (23 - BITS);
  const float f0 = __uint_as_float(((v << (23 - BITS)) & FIELD) | 0x3F800000u);
  const float f1 = __uint_as_float(((v << (23 - 2 * BITS)) & FIELD) | 0x3F800000u);
  return aq_pack2<BF16>(fmaf(s2, f0, b2), fmaf(s2, f1, b2));
}
// v, as a value the compiler cannot recompute (so it stays in a register rather than being
// rematerialized inside the K loop)
__device__ __forceinline__ uint32_t aq_opaque(uint32_t v) {
  asm volatile("" : "+r"(v));
  return v;
}
// pair arithmetic in x's 16-bit type (sm_90: bf16x2 sub; fma: exact product and sum, one rounding)
template <bool BF16>
__device__ __forceinline__ uint32_t aq_sub2(const uint32_t a, const uint32_t b) {
  uint32_t r;
  if constexpr (BF16) {
    asm("sub.rn.bf16x2 %0, %1, %2;\n" : "=r"(r) : "r"(a), "r"(b));
  } else {
    asm("sub.rn.f16x2 %0, %1, %2;\n" : "=r"(r) : "r"(a), "r"(b));
  }
  return r;
}
template <bool BF16>
__device__ __forceinline__ uint32_t aq_fma2(const uint32_t a, const uint32_t b, const uint32_t c) {
  uint32_t r;
  if constexpr (BF16) {
    asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  } else {
    asm("fma.rn.f16x2 %0, %1, %2, %3;\n" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  }
  return r;
}
// the 16-bit pattern v (a scale or bias) as the pair (v, v)
__device__ __forceinline__ uint32_t aq_dup2(const uint32_t v) { return __byte_perm(v, 0u, 0x1010); }
// codes k and k+1 dequantized in x's 16-bit type, scales and biases in it too: code k is the
// low BITS bits of byte sel&7 of {v >> BITS, v}, code k+1 those of byte (sel>>8)&7; each is
// put in the mantissa of MAGIC (128 in bf16, 1024 in f16: ulp 1), MAGIC subtracted (exact),
// then one fma: s*q + b, rounded once to x's type (s2 = (s, s), b2 = (b, b))
template <int BITS, bool BF16>
__device__ __forceinline__ uint32_t aq_deq2h(const uint32_t v, const uint32_t sel, const uint32_t magic,
                                             const uint32_t s2, const uint32_t b2) {
  constexpr uint32_t MASK = ((1u << BITS) - 1u) * 0x10001u;
  const uint32_t r = (__byte_perm(v, v >> BITS, sel) & MASK) | magic;
  return aq_fma2<BF16>(aq_sub2<BF16>(r, magic), s2, b2);
}
"""


def _wgmma_helper(nt: int) -> str:
    """``aq_wgmma<BF16>(d, a, desc)``: one ``wgmma.m64n{nt}k16`` (f32 += A regs x B smem)."""
    na = nt // 2
    dregs = ", ".join(f"%{i}" for i in range(na))
    outs = ", ".join(f'"+f"(d[{i}])' for i in range(na))

    def asm(t: str) -> str:
        return (
            f'    asm volatile("{{\\n.reg .pred p;\\nsetp.ne.b32 p, %{na + 5}, 0;\\n"\n'
            f'                 "wgmma.mma_async.sync.aligned.m64n{nt}k16.f32.{t}.{t} {{{dregs}}}, '
            f'{{%{na}, %{na + 1}, %{na + 2}, %{na + 3}}}, %{na + 4}, p, 1, 1, 0;\\n}}\\n"\n'
            f"                 : {outs}\n"
            f'                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(1));\n'
        )

    return (
        f"template <bool BF16>\n"
        f"__device__ __forceinline__ void aq_wgmma(float (&d)[{na}], const uint32_t (&a)[4], const uint64_t desc) {{\n"
        f"  if constexpr (BF16) {{\n{asm('bf16')}  }} else {{\n{asm('f16')}  }}\n}}\n"
        f"__device__ __forceinline__ void aq_fence_acc(float (&d)[{na}]) {{\n"
        f'#pragma unroll\n  for (int i = 0; i < {na}; ++i) asm volatile("" : "+f"(d[i])::"memory");\n}}\n'
    )


@functools.cache
def qmm_header(kernel_name: str, cfg: QmmConfig) -> str:
    """Header of one fused-kernel variant: the shared helpers, the wgmma wrapper for its N,
    and ``__launch_bounds__`` (so the registers fit ``cfg.threads`` threads) attached to the
    kernel that MLX declares after the header, by redefining ``__global__`` (a macro of
    CUDA's headers; a macro of the kernel's name would also rename it in NVRTC's name
    lookup). ``kernel_name`` only keys the cache."""
    return (
        HEADER
        + ASYNC_HELPERS
        + QMM_HELPERS
        + _wgmma_helper(cfg.nt)
        + "#undef __global__\n"
        + f"#define __global__ __attribute__((global)) __launch_bounds__({cfg.threads}, 1)\n"
    )


#: Fused prefill kernel body. Inputs x (M, K) T, w (N, K*BITS/32) uint32, scales and biases
#: (N, K/GS); output out (M, N) T. Block: WGS warpgroups, 64*WGS rows of W x NT rows of x.
#: Needs K % 64 == 0 and N % 8 == 0.
QMM_SOURCE = r"""
  using SS = cuda::std::remove_cv_t<cuda::std::remove_reference_t<decltype(scales[0])>>;
  using XT = cuda::std::conditional_t<X_BF16, __nv_bfloat16, __half>;
  constexpr int WR = 64 * WGS;              // rows of W per block
  constexpr int NTH = 128 * WGS;
  constexpr int RB = 8 * BITS;              // bytes of codes per row and K tile
  constexpr int CH = RB % 16 == 0 ? 16 : 8; // cp.async size for the codes
  constexpr int CPR = RB / CH;
  constexpr int WST = RB + CH;              // padded shared-memory row of codes
  constexpr int XS = NT * 128;              // one x tile: NT rows of 64 values
  constexpr int SB = (XS + WR * WST + 1023) / 1024 * 1024;
  constexpr int GPT = GS < 64 ? 64 / GS : 1; // groups per K tile
  constexpr float TWO_B = float(1 << BITS);
  // codes dequantized in x's type (aq_deq2h) when the scales are in it too, else in float32
  constexpr bool H2 = cuda::std::is_same_v<SS, XT> && BITS <= (X_BF16 ? 7 : 8);
  constexpr int XCH = NT * 8;               // 16-byte chunks of one x tile
  constexpr int XIT = (XCH + NTH - 1) / NTH;
  constexpr int WCH = WR * CPR;             // chunks of one tile of codes
  constexpr int WIT = (WCH + NTH - 1) / NTH;
  static_assert(STAGES % 2 == 0 && STAGES >= 4, "the K loop is unrolled by STAGES over two A buffers");
  const int M = x_shape[0];
  const int K = x_shape[1];
  const int N = w_shape[0];
  const int KW = K / 32 * BITS;
  const int KG = K / GS;
  const int KTN = K / 64;
  const int mtiles = (M + NT - 1) / NT;
  const int m0 = (blockIdx.x % mtiles) * NT;
  const int n0 = (blockIdx.x / mtiles) * WR;
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int t = lane & 3;
  // block-local row of W of a[0], a[2] (a[1], a[3]: rl + 8)
  const int rl = 64 * (tid >> 7) + 16 * ((tid >> 5) & 3) + (lane >> 2);
  extern __shared__ unsigned char aq_smem[];
  const uint32_t sraw = aq_smem_u32(aq_smem);
  const uint32_t sbase = (sraw + 1023u) & ~1023u;
  unsigned char* const sptr = aq_smem + (sbase - sraw);

  // cp.async addresses, fixed but for the K tile: x chunk j of this thread is row
  // xr + j*NTH/8 of the tile, 16-byte column xc (swizzled); rows past M are not loaded (their
  // columns of the product are never stored)
  const int xr = tid >> 3, xc = tid & 7;
  const uint32_t xdst = aq_opaque(sbase + xr * 128 + ((xc ^ (xr & 7)) << 4));
  const unsigned char* const xsrc = reinterpret_cast<const unsigned char*>(x) + ((size_t)(m0 + xr) * K + xc * 8) * 2;
  const size_t xstep = (size_t)(NTH / 8) * K * 2;
  int xjv = 0;  // chunks of this thread inside the tile and inside x
#pragma unroll
  for (int j = 0; j < XIT; ++j) xjv += (tid + j * NTH < XCH && m0 + xr + j * (NTH / 8) < M) ? 1 : 0;
  uint32_t wdst[WIT], wsrc[WIT];  // code chunk j: shared offset, byte offset in w (K tile 0)
#pragma unroll
  for (int j = 0; j < WIT; ++j) {
    const int i = min(tid + j * NTH, WCH - 1);
    const int r = i / CPR, c = i - (i / CPR) * CPR;
    wdst[j] = aq_opaque(sbase + XS + r * WST + c * CH);
    wsrc[j] = aq_opaque((uint32_t)min(n0 + r, N - 1) * (uint32_t)KW * 4u + c * CH);
  }
  auto load_stage = [&](const int kt, const int st) {
    const unsigned char* xp = xsrc + kt * 128;
#pragma unroll
    for (int j = 0; j < XIT; ++j) {
      if (j < xjv) aq_cp_async<16>(xdst + st * SB + j * NTH * 16, xp, true);
      xp += xstep;
    }
    const unsigned char* wp = reinterpret_cast<const unsigned char*>(w) + (size_t)kt * RB;
#pragma unroll
    for (int j = 0; j < WIT; ++j) {
      if ((j + 1) * NTH <= WCH || tid + j * NTH < WCH) aq_cp_async<CH>(wdst[j] + st * SB, wp + wsrc[j], true);
    }
  };

  // scales/biases of rows rl and rl + 8 (element offsets of their rows)
  const uint32_t so0 = aq_opaque((uint32_t)min(n0 + rl, N - 1) * (uint32_t)KG);
  const uint32_t so1 = aq_opaque((uint32_t)min(n0 + rl + 8, N - 1) * (uint32_t)KG);
  // raw scales/biases of the next K tile (H2: their 16-bit patterns)
  using RS = cuda::std::conditional_t<H2, uint32_t, SS>;
  RS rs[2][GPT], rb[2][GPT];
  auto raw = [](const SS* p) -> RS {
    if constexpr (H2) {
      return (uint32_t)*reinterpret_cast<const unsigned short*>(p);
    } else {
      return *p;
    }
  };
  auto load_scales = [&](const int kt) {
#pragma unroll
    for (int j = 0; j < GPT; ++j) {
      const uint32_t gi = (uint32_t)((kt * 64) / GS + j);
      rs[0][j] = raw(scales + so0 + gi);
      rb[0][j] = raw(biases + so0 + gi);
      rs[1][j] = raw(scales + so1 + gi);
      rb[1][j] = raw(biases + so1 + gi);
    }
  };
  load_scales(0);
#pragma unroll
  for (int s = 0; s < STAGES - 2; ++s) {
    if (s < KTN) load_stage(s, s);
    aq_cp_commit();
  }
  float d[NT / 2];
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) d[i] = 0.0f;
  // wgmma descriptor of stage 0 (low word: start address >> 4; the stages and k16 steps
  // only add to it)
  const uint64_t desc0 = aq_desc(sbase);
  const uint32_t dlo = (uint32_t)desc0, dhi = (uint32_t)(desc0 >> 32);
  // byte t of a word and of the word >> 4 (4-bit codes: codes 2t and 2t+1 of the word)
  const uint32_t sel4 = aq_opaque((uint32_t)t | ((uint32_t)(4 + t) << 8));
  const uint32_t magic = aq_magic2<X_BF16>((uint32_t)K >> 31);

  // one K tile (stage st = kt % STAGES): A fragments of its 4 k16 steps dequantized (while
  // the previous tile's wgmmas run), then 4 wgmmas in one group; waiting for the group
  // before leaves the other A buffer and the previous stage free
  auto step = [&](const int kt, const int st, uint32_t (&a)[4][4]) {
    float s2[2][GPT], b2[2][GPT];
    uint32_t sh[2][GPT], bh[2][GPT];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int j = 0; j < GPT; ++j) {
        if constexpr (H2) {
          sh[h][j] = aq_dup2(rs[h][j]);
          bh[h][j] = aq_dup2(rb[h][j]);
        } else {
          s2[h][j] = static_cast<float>(rs[h][j]) * TWO_B;
          b2[h][j] = static_cast<float>(rb[h][j]) - s2[h][j];
        }
      }
    }
    if (kt + 1 < KTN) load_scales(kt + 1);
    aq_cp_wait<STAGES - 3>();
    aq_fence_proxy_async();
    __syncthreads();
    if (kt + STAGES - 2 < KTN) load_stage(kt + STAGES - 2, (st + STAGES - 2) % STAGES);
    aq_cp_commit();
    const unsigned char* wrow0 = sptr + st * SB + XS + rl * WST;
    const unsigned char* wrow1 = wrow0 + 8 * WST;
    if constexpr (H2 && BITS == 4) {
      // a lane's codes of a row: byte t of each of the tile's 8 words
      uint32_t c0[8], c1[8];
#pragma unroll
      for (int v = 0; v < 2; ++v) {
        const uint4 u0 = *reinterpret_cast<const uint4*>(wrow0 + 16 * v);
        const uint4 u1 = *reinterpret_cast<const uint4*>(wrow1 + 16 * v);
        c0[4 * v] = u0.x; c0[4 * v + 1] = u0.y; c0[4 * v + 2] = u0.z; c0[4 * v + 3] = u0.w;
        c1[4 * v] = u1.x; c1[4 * v + 1] = u1.y; c1[4 * v + 2] = u1.z; c1[4 * v + 3] = u1.w;
      }
#pragma unroll
      for (int s16 = 0; s16 < 4; ++s16) {
        constexpr int GSTEP = GS < 64 ? GS / 16 : 4;
        const int j = GS < 64 ? s16 / GSTEP : 0;
        a[s16][0] = aq_deq2h<BITS, X_BF16>(c0[2 * s16], sel4, magic, sh[0][j], bh[0][j]);
        a[s16][1] = aq_deq2h<BITS, X_BF16>(c1[2 * s16], sel4, magic, sh[1][j], bh[1][j]);
        a[s16][2] = aq_deq2h<BITS, X_BF16>(c0[2 * s16 + 1], sel4, magic, sh[0][j], bh[0][j]);
        a[s16][3] = aq_deq2h<BITS, X_BF16>(c1[2 * s16 + 1], sel4, magic, sh[1][j], bh[1][j]);
      }
    } else {
      const uint32_t* w0 = reinterpret_cast<const uint32_t*>(wrow0);
      const uint32_t* w1 = reinterpret_cast<const uint32_t*>(wrow1);
#pragma unroll
      for (int s16 = 0; s16 < 4; ++s16) {
        constexpr int GSTEP = GS < 64 ? GS / 16 : 4;
        const int j = GS < 64 ? s16 / GSTEP : 0;
        const int ka = 16 * s16 + 2 * t;
        if constexpr (H2) {
          a[s16][0] = aq_deq2h<BITS, X_BF16>(aq_pair<BITS>(w0, ka), 0x0400u, magic, sh[0][j], bh[0][j]);
          a[s16][1] = aq_deq2h<BITS, X_BF16>(aq_pair<BITS>(w1, ka), 0x0400u, magic, sh[1][j], bh[1][j]);
          a[s16][2] = aq_deq2h<BITS, X_BF16>(aq_pair<BITS>(w0, ka + 8), 0x0400u, magic, sh[0][j], bh[0][j]);
          a[s16][3] = aq_deq2h<BITS, X_BF16>(aq_pair<BITS>(w1, ka + 8), 0x0400u, magic, sh[1][j], bh[1][j]);
        } else {
          a[s16][0] = aq_deq2<BITS, X_BF16>(aq_pair<BITS>(w0, ka), s2[0][j], b2[0][j]);
          a[s16][1] = aq_deq2<BITS, X_BF16>(aq_pair<BITS>(w1, ka), s2[1][j], b2[1][j]);
          a[s16][2] = aq_deq2<BITS, X_BF16>(aq_pair<BITS>(w0, ka + 8), s2[0][j], b2[0][j]);
          a[s16][3] = aq_deq2<BITS, X_BF16>(aq_pair<BITS>(w1, ka + 8), s2[1][j], b2[1][j]);
        }
      }
    }
    // descriptors of the 4 k16 steps (32 bytes apart), made before the fence: no other
    // instruction may define a wgmma input between the wgmmas of one group
    uint64_t desc[4];
#pragma unroll
    for (int s16 = 0; s16 < 4; ++s16) desc[s16] = aq_pack64(dlo + ((st * SB + 32 * s16) >> 4), dhi);
    aq_wgmma_fence();
#pragma unroll
    for (int s16 = 0; s16 < 4; ++s16) aq_wgmma<X_BF16>(d, a[s16], desc[s16]);
    aq_wgmma_commit();
    aq_wgmma_wait<1>();
  };
  uint32_t a[2][4][4];
  // the K loop unrolled by STAGES, so stages and A buffers are compile-time (no branch
  // inside the loop either: ptxas would then serialize the wgmmas); the last tiles after it
  int kt = 0;
  for (; kt + STAGES <= KTN; kt += STAGES) {
#pragma unroll
    for (int u = 0; u < STAGES; ++u) step(kt + u, u, a[u & 1]);
  }
  if constexpr (TAIL) {  // a variant of its own: with these branches ptxas may serialize wgmmas
#pragma unroll
    for (int u = 0; u < STAGES - 1; ++u) {
      if (kt + u < KTN) step(kt + u, u, a[u & 1]);
    }
  }
  aq_wgmma_wait<0>();
  aq_fence_acc(d);
  aq_cp_wait<0>();
  __syncthreads();
  // output tile through shared memory: ot[token][row of W], then 16-byte stores
  constexpr int LDO = WR + 8;
  uint16_t* const ot = reinterpret_cast<uint16_t*>(sptr);
#pragma unroll
  for (int j = 0; j < NT / 8; ++j) {
    const int tok = 8 * j + 2 * t;
    const uint32_t p0 = aq_pack2<X_BF16>(d[4 * j], d[4 * j + 2]);
    const uint32_t p1 = aq_pack2<X_BF16>(d[4 * j + 1], d[4 * j + 3]);
    ot[tok * LDO + rl] = (uint16_t)(p0 & 0xFFFFu);
    ot[tok * LDO + rl + 8] = (uint16_t)(p0 >> 16);
    ot[(tok + 1) * LDO + rl] = (uint16_t)(p1 & 0xFFFFu);
    ot[(tok + 1) * LDO + rl + 8] = (uint16_t)(p1 >> 16);
  }
  __syncthreads();
  for (int i = tid; i < NT * (WR / 8); i += NTH) {
    const int tok = i / (WR / 8), c = i - (i / (WR / 8)) * (WR / 8);
    const int m = m0 + tok, n = n0 + 8 * c;
    if (m < M && n < N) {
      *reinterpret_cast<uint4*>(out + (size_t)m * N + n) = *reinterpret_cast<const uint4*>(ot + tok * LDO + 8 * c);
    }
  }
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


#: K values per stage of the tensor-core decode kernel (``KS`` in its source): K must be a
#: multiple of it.
DECODE_TC_KS = 256
#: Warps that split K for one 16-row tile, and shared-memory stages per warp, of the
#: tensor-core decode kernel. Measured on the H100 (4-bit gs64, GPU time per call,
#: notes-gpu.md): more stages, more K splits, larger stages (512/1024 values) or fewer
#: registers (more blocks per multiprocessor) were all slower at 12288 x 4096 and the LM head.
DECODE_TC_KSPLIT = 2
DECODE_TC_STAGES = 2


@functools.cache
def decode_tc_template(
    x_is_bf16: bool,
    scales_dtype: str,
    bits: int,
    group_size: int,
    mt: int,
    ksplit: int = DECODE_TC_KSPLIT,
    stages: int = DECODE_TC_STAGES,
) -> tuple[tuple[str, Any], ...]:
    """MLX template arguments of the tensor-core decode kernel (ints and bools, so that the
    scales' dtype is in the kernel's name: see :data:`SCALE_KINDS`)."""
    return (
        ("SK", SCALE_KINDS[scales_dtype]),
        ("X_BF16", bool(x_is_bf16)),
        ("BITS", bits),
        ("GS", group_size),
        ("MT", mt),
        ("KSPLIT", ksplit),
        ("D", stages),
    )


def decode_tc_m_tile(rows: int) -> int:
    """The compile-time x row count ``MT`` of the tensor-core decode kernel: 1, 8 or 16 (the
    epilogue of one row skips the mma columns that no row of x fills)."""
    return 1 if rows == 1 else 8 if rows <= 8 else 16


#: Header of the tensor-core decode kernel. ``__launch_bounds__(128, 1)`` lets ptxas use
#: ~106 registers for one row of x (MT 1), which leaves 4 blocks per multiprocessor: faster
#: than 6 or 8 (H100: 10.6 vs 12.0 us at 12288 x 4096; notes-gpu.md). MT 8 and 16 take
#: 118-190 registers (2-4 blocks).
DECODE_TC_HEADER = (
    ASYNC_HELPERS
    + TC_HELPERS
    + "#undef __global__\n"
    + f"#define __global__ __attribute__((global)) __launch_bounds__({DECODE_BLOCK}, 1)\n"
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
        self._decode: Any = None
        self._dequant: Any = None
        self._kernels: dict[tuple[tuple[str, Any], ...], Any] = {}  # fused and tensor-core decode variants
        self.qmm_cfg: QmmConfig | None = None  # None: qmm_config(rows, n)
        self.tc_split: int | None = None  # None: DECODE_TC_KSPLIT
        self.tc_stages: int | None = None  # None: DECODE_TC_STAGES

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
        rows = decode_rows_per_warp(bits, group_size)
        ksplit = decode_k_split(n, rows, decode_m_tile(m))
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

    def decode_tc(self, x: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int) -> Any:
        """``x @ W.T`` for x ``(M, K)`` (M <= 16; bfloat16/float16; K % 256 == 0), W ``(N, K)``: the
        tensor-core decode kernel; ``(M, N)`` in x's dtype. ``tc_split``/``tc_stages`` override
        its K split and stages (benchmarks)."""
        mx = self.mx
        m, n = int(x.shape[0]), int(packed.shape[0])
        if not 1 <= m <= DECODE_TC_MAX_ROWS:
            raise ValueError(f"the tensor-core decode kernel takes 1 to {DECODE_TC_MAX_ROWS} rows of x, got {m}")
        s_name = dtype_name(scales.dtype)
        ksplit, stages = self.tc_split or DECODE_TC_KSPLIT, self.tc_stages or DECODE_TC_STAGES
        tmpl = decode_tc_template(
            "bfloat16" in str(x.dtype), s_name, bits, group_size, decode_tc_m_tile(m), ksplit, stages
        )
        kernel = self._kernels.get(tmpl)
        if kernel is None:
            kernel = self._kernels[tmpl] = mx.fast.cuda_kernel(
                name="arrayq_qmv_tc",
                input_names=["x", "w", "scales", "biases"],
                output_names=["out"],
                source=DECODE_TC_SOURCE,
                header=DECODE_TC_HEADER,
            )
        tiles = -(-n // 16)  # 16 rows of W per tile, 4 // ksplit tiles per block
        blocks = -(-tiles // (4 // ksplit))
        return kernel(
            inputs=[x, packed, scales, biases],
            template=list(tmpl),
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

    def qmm(self, x: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int) -> Any:
        """``x @ W.T`` for x ``(M, K)`` (bfloat16/float16, K % 64 == 0), W ``(N, K)`` (N % 8 == 0):
        the fused tensor-core kernel; ``(M, N)`` in x's dtype."""
        mx = self.mx
        m, n = int(x.shape[0]), int(packed.shape[0])
        cfg = self.qmm_cfg or qmm_config(m, n)
        k = int(x.shape[1])
        tmpl = qmm_template("bfloat16" in str(x.dtype), bits, group_size, cfg, dtype_name(scales.dtype), k)
        kernel = self._kernels.get(tmpl)
        if kernel is None:
            kernel = self._kernels[tmpl] = mx.fast.cuda_kernel(
                name="arrayq_qmm",
                input_names=["x", "w", "scales", "biases"],
                output_names=["out"],
                source=QMM_SOURCE,
                header=qmm_header(mlx_kernel_name("arrayq_qmm", tmpl), cfg),
                shared_memory=qmm_smem_bytes(cfg, bits),
            )
        blocks = -(-m // cfg.nt) * -(-n // (64 * cfg.wgs))
        return kernel(
            inputs=[x, packed, scales, biases],
            template=list(tmpl),
            grid=(blocks * cfg.threads, 1, 1),
            threadgroup=(cfg.threads, 1, 1),
            output_shapes=[(m, n)],
            output_dtypes=[x.dtype],
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
        if kind == "decode_tc":
            out = self.decode_tc(x2, packed, scales, biases, bits, gs)
        elif kind == "decode":
            out = self.decode(x2, packed, scales, biases, bits, gs)
        elif kind == "qmm":
            out = self.qmm(x2, packed, scales, biases, bits, gs)
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


def emulate_qmm_weight(xp: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int) -> Any:
    """A NumPy emulation of the fused kernel's A fragments: for each K tile of 64, k16 step
    and lane ``t`` (``lane & 3``), the code pairs at ``16*s16 + 2t`` and ``+ 8`` of a row are
    shifted out of the tile's words (a funnel shift of two words where a pair straddles
    them), turned into ``1 + q/2**bits`` and ``s2*f + b2`` (float32), and rounded to
    bfloat16. Returns W ``(N, K)`` as float64; asserts each element is made exactly once."""
    n, kw = packed.shape
    k = kw * 32 // bits
    words = xp.asarray(packed, dtype=xp.uint64)
    tile_words = 2 * bits  # 64 values
    w = xp.full((n, k), xp.nan)
    s = xp.asarray(scales, dtype=xp.float32)
    b = xp.asarray(biases, dtype=xp.float32)
    field = ((1 << bits) - 1) << (23 - bits)

    def bf16(v: Any) -> Any:  # float32 -> bfloat16 (round to nearest even), as float64
        u = xp.asarray(v, dtype=xp.float32).view(xp.uint32).astype(xp.uint64)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
        return u.astype(xp.uint32).view(xp.float32).astype(xp.float64)

    for kt in range(k // 64):
        tw = words[:, kt * tile_words : (kt + 1) * tile_words]
        tw = xp.concatenate([tw, xp.zeros((n, 1), dtype=xp.uint64)], axis=1)  # the row's padding
        for s16 in range(4):
            for t in range(4):
                for ka in (16 * s16 + 2 * t, 16 * s16 + 2 * t + 8):
                    bit = ka * bits
                    wi, sh = bit >> 5, bit & 31
                    v = ((tw[:, wi + 1] << xp.uint64(32)) | tw[:, wi]) >> xp.uint64(sh)
                    v = v & xp.uint64(0xFFFFFFFF)
                    g = (kt * 64 + ka) // group_size
                    s2 = s[:, g] * xp.float32(1 << bits)
                    b2 = b[:, g] - s2
                    for e in range(2):
                        mant = ((v << xp.uint64(23 - bits - e * bits)) & xp.uint64(field)) | xp.uint64(0x3F800000)
                        f = mant.astype(xp.uint32).view(xp.float32)
                        col = kt * 64 + ka + e
                        assert xp.isnan(w[:, col]).all(), "made twice"
                        w[:, col] = bf16((s2.astype(xp.float64) * f + b2).astype(xp.float32))
    assert not xp.isnan(w).any(), "every element made"
    return w


def _round_to(xp: Any, v: Any, dtype: str) -> Any:
    """float64 ``v`` rounded once (to nearest even) to bfloat16 or float16, as float64
    (normal range; what ``fma.rn.bf16x2``/``fma.rn.f16x2`` do to the exact ``s*q + b``)."""
    v = xp.asarray(v, dtype=xp.float64)
    if dtype == "float16":
        return v.astype(xp.float16).astype(xp.float64)
    u = v.view(xp.uint64)
    u = (u + xp.uint64(2**44 - 1) + ((u >> xp.uint64(45)) & xp.uint64(1))) & ~xp.uint64(2**45 - 1)
    return u.view(xp.float64)


def _half_bits(xp: Any, v: Any, dtype: str) -> Any:
    """Bit patterns (uint64) of float64 values exact in ``dtype`` (bfloat16 or float16)."""
    if dtype == "float16":
        return xp.asarray(v, dtype=xp.float16).view(xp.uint16).astype(xp.uint64)
    return (xp.asarray(v, dtype=xp.float32).view(xp.uint32) >> xp.uint32(16)).astype(xp.uint64)


def _half_value(xp: Any, bits16: Any, dtype: str) -> Any:
    """float64 values of 16-bit patterns of ``dtype``."""
    if dtype == "float16":
        return bits16.astype(xp.uint16).view(xp.float16).astype(xp.float64)
    return (bits16.astype(xp.uint32) << xp.uint32(16)).view(xp.float32).astype(xp.float64)


def emulate_qmm_weight_h2(
    xp: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int, dtype: str = "bfloat16"
) -> Any:
    """A NumPy emulation of the fused kernel's A fragments when x and the scales/biases share
    the 16-bit ``dtype`` (``aq_deq2h``): per K tile, k16 step and lane ``t``, the word(s) the
    kernel reads, ``__byte_perm(v, v >> bits, sel)`` (4-bit: ``v`` the tile's word ``2*s16``
    or ``2*s16 + 1`` and ``sel = t | (4 + t) << 8``; otherwise ``v`` the code pair shifted to
    bit 0 and ``sel = 0x0400``), the mask and the magic number (128 in bfloat16, 1024 in
    float16), its exact subtraction (asserted), and one fma rounded once to ``dtype``.
    ``scales``/``biases`` must be exact in ``dtype``. Returns W ``(N, K)`` as float64."""
    n, kw = packed.shape
    k = kw * 32 // bits
    words = xp.asarray(packed, dtype=xp.uint64)
    tile_words = 2 * bits
    magic16 = 0x4300 if dtype == "bfloat16" else 0x6400
    magic = xp.uint64(magic16 * 0x10001)
    mask = xp.uint64(((1 << bits) - 1) * 0x10001)
    magic_v = float(_half_value(xp, xp.asarray([magic16], dtype=xp.uint64), dtype)[0])
    s = xp.asarray(scales, dtype=xp.float64)
    b = xp.asarray(biases, dtype=xp.float64)
    assert (_half_value(xp, _half_bits(xp, s, dtype), dtype) == s).all(), "scales exact in dtype"
    w = xp.full((n, k), xp.nan)

    for kt in range(k // 64):
        tw = words[:, kt * tile_words : (kt + 1) * tile_words]
        tw = xp.concatenate([tw, xp.zeros((n, 1), dtype=xp.uint64)], axis=1)  # the row's padding
        for s16 in range(4):
            for t in range(4):
                for ka in (16 * s16 + 2 * t, 16 * s16 + 2 * t + 8):
                    if bits == 4:
                        v, sel = tw[:, ka // 8], t | (4 + t) << 8
                    else:
                        bit = ka * bits
                        wi, sh = bit >> 5, bit & 31
                        v = (((tw[:, wi + 1] << xp.uint64(32)) | tw[:, wi]) >> xp.uint64(sh)) & xp.uint64(0xFFFFFFFF)
                        sel = 0x0400
                    r = (_byte_perm(v, v >> xp.uint64(bits), sel) & mask) | magic
                    g = (kt * 64 + ka) // group_size
                    for e in range(2):
                        m = _half_value(xp, (r >> xp.uint64(16 * e)) & xp.uint64(0xFFFF), dtype)
                        q = m - magic_v
                        assert (_round_to(xp, q, dtype) == q).all(), "magic subtracted exactly"
                        col = kt * 64 + ka + e
                        assert xp.isnan(w[:, col]).all(), "made twice"
                        w[:, col] = _round_to(xp, s[:, g] * q + b[:, g], dtype)
    assert not xp.isnan(w).any(), "every element made"
    return w


def _byte_perm(lo: Any, hi: Any, sel: int) -> Any:
    """CUDA's ``__byte_perm(lo, hi, sel)`` (selector nibbles 0-7) on Python ints or uint64
    arrays."""
    src = [(lo >> (8 * i)) & 255 for i in range(4)] + [(hi >> (8 * i)) & 255 for i in range(4)]
    return sum(src[(sel >> (4 * i)) & 7] << (8 * i) for i in range(4))


#: Fragment layouts of ``mma.sync.m16n8k16`` (PTX ISA) for lane ``(g, t) = (lane >> 2,
#: lane & 3)``: the (row, column) of the low half of each A register, the (k, column) of the
#: low half of each B register (the high half is the next column / k), and the (row,
#: column) of each C element.
def _mma_a(g: int, t: int) -> tuple[tuple[int, int], ...]:
    return ((g, 2 * t), (g + 8, 2 * t), (g, 2 * t + 8), (g + 8, 2 * t + 8))


def _mma_b(g: int, t: int) -> tuple[tuple[int, int], ...]:
    return ((2 * t, g), (2 * t + 8, g))


def _mma_c(g: int, t: int) -> tuple[tuple[int, int], ...]:
    return ((g, 2 * t), (g, 2 * t + 1), (g + 8, 2 * t), (g + 8, 2 * t + 1))


def emulate_decode_tc(
    xp: Any,
    x: Any,
    packed: Any,
    scales: Any,
    biases: Any,
    bits: int,
    group_size: int,
    dtype: str = "bfloat16",
    ksplit: int = DECODE_TC_KSPLIT,
) -> Any:
    """A lane-level NumPy emulation of the tensor-core decode kernel (``DECODE_TC_SOURCE``):
    blocks of 4 warps, each warp's tile of 16 rows and its share of the K stages, the stage in
    shared memory (rows past N zero, padding words garbage), each lane's registers as the
    source builds them (``aq_codes8``, ``aq_code_pair``, the x words and their
    ``__byte_perm`` selectors), every mma's A and B assembled from the 32 lanes' registers by
    the PTX fragment layouts (each element exactly once) and its C scattered back to the
    lanes, the group epilogue with the scales of the clamped rows, the K split's partial sums,
    and the output indexing (each element written exactly once). x ``(M, K)`` holds values
    exact in ``dtype`` (bfloat16 or float16); float64 arithmetic (it checks the indexing and
    the algebra, not float32 rounding); returns ``(M, N)``."""
    n_rows, _ = packed.shape
    m_rows, k = x.shape
    mt = decode_tc_m_tile(m_rows)
    nbt = (mt + 7) // 8
    stages, groups = k // DECODE_TC_KS, DECODE_TC_KS // group_size
    stage_words = DECODE_TC_KS * bits // 32
    words = xp.asarray(packed, dtype=xp.uint64)
    xbits = _half_bits(xp, x, dtype)
    magic16 = 0x4300 if dtype == "bfloat16" else 0x6400
    magic = float(_half_value(xp, xp.asarray([magic16], dtype=xp.uint64), dtype)[0])
    s = xp.asarray(scales, dtype=xp.float64)
    b = xp.asarray(biases, dtype=xp.float64)
    mask = (1 << bits) - 1
    garbage = xp.random.default_rng(0)
    out = xp.full((m_rows, n_rows), xp.nan)
    written = xp.zeros((m_rows, n_rows), dtype=int)

    def half(v: int) -> float:
        return float(_half_value(xp, xp.asarray([v & 0xFFFF], dtype=xp.uint64), dtype)[0])

    def codes8(row: list[int], first: int) -> int:  # aq_codes8
        bit = first * bits
        if 8 * bits <= 32 and 32 % (8 * bits) == 0:
            return row[bit >> 5] >> (bit & 31)
        return (row[bit >> 5] | (row[(bit >> 5) + 1] << 32)) >> (bit & 31)

    def code_pair(u: int, i: int) -> int:  # aq_code_pair
        v = u >> (i * bits)
        lo = v & 0xFFFFFFFF
        hi = (v >> (4 * bits - 16)) & 0xFFFFFFFF if 4 * bits >= 16 else (lo << (16 - 4 * bits)) & 0xFFFFFFFF
        return (lo & mask) | (hi & (mask << 16)) | (magic16 * 0x10001)

    tiles = -(-n_rows // 16)
    for block in range(-(-tiles // (4 // ksplit))):
        tot = xp.zeros((4, 32, nbt, 4))
        for wib in range(4):
            ks, row0 = wib % ksplit, (block * (4 // ksplit) + wib // ksplit) * 16
            nst = (stages - ks + ksplit - 1) // ksplit if row0 < n_rows and ks < stages else 0
            for i in range(nst):
                st = ks + i * ksplit
                smem = []
                for r in range(16):
                    n = row0 + r
                    codes = [int(w) for w in words[n, st * stage_words : (st + 1) * stage_words]] if n < n_rows else []
                    smem.append((codes or [0] * stage_words) + [int(w) for w in garbage.integers(0, 2**32, 4)])
                for gi in range(groups):
                    acc = xp.zeros((32, nbt, 4))
                    sums = xp.zeros((32, nbt, 4))
                    for p in range(gi * group_size // 32, (gi + 1) * group_size // 32):
                        for nb in range(nbt):
                            for e in range(2):
                                a_mat = xp.full((16, 16), xp.nan)
                                b_mat = xp.full((16, 8), xp.nan)
                                for lane in range(32):
                                    g, t = lane >> 2, lane & 3
                                    u0, u1 = codes8(smem[g], 32 * p + 8 * t), codes8(smem[g + 8], 32 * p + 8 * t)
                                    a_regs = [code_pair(u0, 2 * e), code_pair(u1, 2 * e)]
                                    a_regs += [code_pair(u0, 2 * e + 1), code_pair(u1, 2 * e + 1)]
                                    m, k0 = 8 * nb + g, st * DECODE_TC_KS + 32 * p + 8 * t
                                    xs = [int(xbits[m, k0 + j]) if m < m_rows else 0 for j in range(8)]
                                    xw = [xs[2 * j] | xs[2 * j + 1] << 16 for j in range(4)]
                                    xlo, xhi = (xw[1], xw[3]) if e else (xw[0], xw[2])
                                    b_regs = (_byte_perm(xlo, xhi, 0x5410), _byte_perm(xlo, xhi, 0x7632))
                                    for reg, (r, c) in zip(a_regs, _mma_a(g, t)):
                                        assert xp.isnan(a_mat[r, c : c + 2]).all(), "A element given twice"
                                        a_mat[r, c], a_mat[r, c + 1] = half(reg), half(reg >> 16)
                                    for reg, (kk, c) in zip(b_regs, _mma_b(g, t)):
                                        assert xp.isnan(b_mat[kk : kk + 2, c]).all(), "B element given twice"
                                        b_mat[kk, c], b_mat[kk + 1, c] = half(reg), half(reg >> 16)
                                assert not (xp.isnan(a_mat).any() or xp.isnan(b_mat).any()), "fragments complete"
                                c_mat, s_mat = a_mat @ b_mat, xp.ones((16, 16)) @ b_mat
                                for lane in range(32):
                                    for j, (r, c) in enumerate(_mma_c(lane >> 2, lane & 3)):
                                        acc[lane, nb, j] += c_mat[r, c]
                                        sums[lane, nb, j] += s_mat[r, c]
                    grp = st * groups + gi
                    for lane in range(32):
                        g = lane >> 2
                        rows = (min(row0 + g, n_rows - 1), min(row0 + g + 8, n_rows - 1))
                        for nb in range(nbt):
                            for j in range(4):
                                if 8 * nb + (j & 1) < mt:
                                    sx, r = sums[lane, nb, j & 1], rows[j >> 1]
                                    tot[wib, lane, nb, j] += (
                                        s[r, grp] * (acc[lane, nb, j] - magic * sx) + b[r, grp] * sx
                                    )
        for wib in range(0, 4, ksplit):  # the warps with ks == 0 add their tile's partial sums
            row0 = (block * (4 // ksplit) + wib // ksplit) * 16
            part = tot[wib : wib + ksplit].sum(0)
            for lane in range(32):
                g, t = lane >> 2, lane & 3
                for nb in range(nbt):
                    for j in range(4):
                        m, n = 8 * nb + 2 * t + (j & 1), row0 + g + 8 * (j >> 1)
                        if m < m_rows and n < n_rows:
                            out[m, n] = part[lane, nb, j]
                            written[m, n] += 1
    assert (written == 1).all(), "every output element written once"
    return out
