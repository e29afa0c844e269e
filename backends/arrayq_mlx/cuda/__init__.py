"""arrayq's own CUDA kernels for MLX's affine quantized matmul, as ``mx.fast.cuda_kernel``.

MLX compiles each kernel variant with NVRTC the first time it runs (a few seconds); nothing
here is compiled, or even built as a kernel object, unless MLX has a CUDA device. The
sources are templates: ``BITS``, ``GS`` (group size), ``ROWS``, ``MT``, ``VALS``, ``VEC``
and the dtypes ``T`` (x/out) and ``S`` (scales/biases) are MLX template arguments, so one
source covers every bit width and group size.

This module is the choice: which kernel runs a quantized matmul (:func:`choose`), the row
thresholds behind it, the chunk layouts and the fused kernel's block shapes. ``_launch.py``
holds :class:`~arrayq_mlx.cuda._launch.CudaKernels`, which reads the CUDA sources beside it
(``common.cuh``, ``decode.cu``, ``tc_helpers.cuh``, ``decode_tc.cu``, ``dequant.cu``,
``async_helpers.cuh``, ``qmm_helpers.cuh``, ``qmm.cu``, ``attention.cu``, ``qkv_heads.cu``,
``add_rms_norm.cu``, ``swiglu_halves.cu``), builds each kernel's header and
template arguments and launches it. The kernels' NumPy emulations are in the tests
(``tests/_cuda_emulators.py``).

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
  paired (i, i+4) by one shift and one LOP3 per pair; x is permuted to match (``decode_tc.cu``).
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
  A = W dequantized in registers, B = x tiles in shared memory; see ``qmm.cu``); no
  bf16 copy of W is written.
* **dequantize** (more rows, and 5-7 rows where neither runs; without the fused kernel,
  from ``DEQUANT_MIN_ROWS`` rows): ``W``
  in x's dtype, ``w = s*q + b`` computed in float32 and rounded once; the product is then
  MLX's dense ``mx.matmul`` (cuBLAS, tensor cores, float32 accumulation).

Everything else (transpose=False, batched weights, non-affine modes, float32 x, 1-bit,
17-31 rows (8-31 where decode_tc does not run), where MLX's tiled kernel is faster, 32-127
rows where the fused kernel does not run, shapes whose rows are not aligned for the vector loads) falls back to
``mx.quantized_matmul``. ``ARRAYQ_MLX_CUDA_KERNELS=0`` turns the kernels off. In models
(``arrayq_mlx._quantized.CudaRoute``) the decode kernels' rows take MLX's kernel unless
``ARRAYQ_MLX_CUDA_KERNELS=all`` (:func:`decode_enabled`): end to end they do not pay.

Four kernels make a model's step fewer launches: **prefix attention** (``attention.cu``: one
query row over a fixed cache's written keys), **qkv_heads** (``qkv_heads.cu``: a fused
q/k/v projection's heads split, q's and k's through their RMS norms and rotary positions, in
the layout attention reads; one launch where the composed ops make ~12 graph nodes a layer)
**add_rms_norm** (``add_rms_norm.cu``: a residual sum and its RMS norm, two outputs of one
launch where the composed ops make two nodes; twice a layer) and **swiglu** (``swiglu_halves.cu``:
silu(gate) * up of a fused gate/up projection's halves, where the composed ops make two
slices and an elementwise node). They run where :func:`qkv_heads_fits`,
:func:`add_rms_norm_fits`, :func:`swiglu_fits` and :func:`fused_enabled` say so
They are off unless ``ARRAYQ_MLX_CUDA_FUSED=1``: written and checked on a machine without a
GPU (emulated, compiled by nvcc and NVRTC), not yet run on one; with it,
``ARRAYQ_MLX_CUDA_FUSED_OFF=qkv_heads,add_rms_norm,swiglu`` keeps some off, to measure them.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Any

#: Environment variable: "0" turns arrayq's CUDA kernels off (MLX's own kernels run);
#: "all" lets the decode kernels run in models too (see :func:`decode_enabled`).
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
ATTENTION_WARPS = 8  # warps of a prefix_attention block
ATTENTION_KEYS_PER_STEP = 4  # keys a warp loads at once (their latencies overlap)
QKV_WARPS = 4  # warps of a qkv_heads block, one (batch, position, head) row each
#: activation dtypes (names) the qkv_heads kernel takes (its weights in the same dtype)
QKV_DTYPES = ("bfloat16", "float16", "float32")
#: rows up to this long take the add_rms_norm kernel (its threads hold a row in registers)
ADD_NORM_MAX_D = 16384
#: Environment variable: a comma-separated list of arrayq's fused model-step kernels to keep
#: off ("qkv_heads", "add_rms_norm", "swiglu"), so that their effect can be measured against
#: the composed MLX ops.
FUSED_OFF_VAR = "ARRAYQ_MLX_CUDA_FUSED_OFF"
#: Environment variable: "1" (or "on") lets the fused model-step kernels run. Off by default until
#: they have run on a GPU (docs/benchmarks-cuda.md: written and checked without one).
FUSED_ON_VAR = "ARRAYQ_MLX_CUDA_FUSED"


def enabled() -> bool:
    """Whether arrayq's CUDA kernels may run (``ARRAYQ_MLX_CUDA_KERNELS`` is not "0")."""
    return os.environ.get(ENV_VAR, "1").strip() not in ("0", "false", "off", "no")


def decode_enabled() -> bool:
    """Whether a model's decode GEMVs (the ``decode_tc``/``decode`` kernels' rows) run on
    arrayq's kernels: only with ``ARRAYQ_MLX_CUDA_KERNELS=all``. Faster alone, they make the
    model slower end to end (H100, qwen3-0.6b preset, compiled decode: 119 tok/s with them,
    134 without; docs/benchmarks-cuda.md), so by default those rows take MLX's kernel and
    arrayq's kernels run the prefill shapes."""
    return os.environ.get(ENV_VAR, "1").strip().lower() == "all"


def fused_enabled(name: str) -> bool:
    """Whether arrayq's fused model-step kernel ``name`` ("qkv_heads", "add_rms_norm", "swiglu") may run: the kernels
    are on (:func:`enabled`), ``ARRAYQ_MLX_CUDA_FUSED`` is "1" and ``ARRAYQ_MLX_CUDA_FUSED_OFF`` does
    not list it."""
    asked = os.environ.get(FUSED_ON_VAR, "0").strip().lower() in ("1", "on", "true", "yes")
    off = {part.strip() for part in os.environ.get(FUSED_OFF_VAR, "").split(",")}
    return enabled() and asked and name not in off


def qkv_heads_fits(dtype: str, weight_dtypes: tuple[str, ...], head_dim: int, size: int) -> bool:
    """Whether the qkv_heads kernel takes a projection output of ``dtype`` (a name) and
    ``size`` elements, with norm weights of ``weight_dtypes`` and heads of ``head_dim``: a
    dtype of :data:`QKV_DTYPES` shared by the weights, ``head_dim`` a multiple of 32 up to
    256 (a lane's features), rows indexed in 32 bits and at least one element."""
    same = all(w == dtype for w in weight_dtypes)
    return dtype in QKV_DTYPES and same and head_dim % 32 == 0 and 0 < head_dim <= 256 and 0 < size < 2**31


def add_rms_norm_fits(dtype: str, weight_dtype: str | None, d: int, size: int) -> bool:
    """Whether the add_rms_norm kernel takes rows of ``d`` values of ``dtype`` (a name),
    ``size`` in all, with a weight of ``weight_dtype`` (None: no weight): a dtype of
    :data:`QKV_DTYPES`, the weight's the same (as ``mx.fast.rms_norm`` takes it), ``d`` up to
    :data:`ADD_NORM_MAX_D`, 32-bit indexing and at least one value."""
    same = weight_dtype in (None, dtype)
    return dtype in QKV_DTYPES and same and 0 < d <= ADD_NORM_MAX_D and 0 < size < 2**31


def swiglu_fits(dtype: str, size: int) -> bool:
    """Whether the swiglu_halves kernel takes a gate/up array of ``dtype`` (a name) and
    ``size`` values: a dtype of :data:`QKV_DTYPES`, at least one value, 32-bit sizes."""
    return dtype in QKV_DTYPES and 0 < size < 2**31


SWIGLU_BLOCK = 256  # threads of a swiglu_halves block, one output value each


def add_norm_block(d: int) -> int:
    """Threads of an add_rms_norm block for rows of ``d`` values: a warp per 128 values (4 a
    thread), at most 1024 (then up to 16 a thread)."""
    return min(1024, 32 * -(-d // 128))


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


@functools.lru_cache(maxsize=1024)  # pure shape logic, asked ~100 times a decoded token
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


#: K values per stage of the tensor-core decode kernel (``KS`` in its source): K must be a
#: multiple of it.
DECODE_TC_KS = 256
#: Warps that split K for one 16-row tile, and shared-memory stages per warp, of the
#: tensor-core decode kernel. Measured on the H100 (4-bit gs64, GPU time per call,
#: notes-gpu.md): more stages, more K splits, larger stages (512/1024 values) or fewer
#: registers (more blocks per multiprocessor) were all slower at 12288 x 4096 and the LM head.
DECODE_TC_KSPLIT = 2
DECODE_TC_STAGES = 2


def decode_tc_m_tile(rows: int) -> int:
    """The compile-time x row count ``MT`` of the tensor-core decode kernel: 1, 8 or 16 (the
    epilogue of one row skips the mma columns that no row of x fills)."""
    return 1 if rows == 1 else 8 if rows <= 8 else 16
