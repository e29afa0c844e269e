"""Launching arrayq's CUDA kernels through ``mx.fast.cuda_kernel``: the sources, headers,
template arguments and grids (which kernel runs is :func:`arrayq_mlx.cuda.choose`).

The CUDA text lives in the ``.cu`` (kernel bodies) and ``.cuh`` (helpers) files beside this
module, package data read once with ``importlib.resources``; MLX gets each file without its
leading ``//!`` lines, which are notes for readers. MLX wraps a body in the ``__global__``
function it generates (inputs, outputs and template arguments become its parameters and
constexprs), puts the header before it and compiles it with NVRTC on first use; it caches
the module by the kernel's name (:func:`mlx_kernel_name`). ``tests/test_mlx_cuda_sources.py``
checks that the text handed to MLX is byte for byte what it was when the sources were
Python strings.
"""

from __future__ import annotations

import functools
import math
import struct
from importlib import resources
from typing import Any

from arrayq_mlx.cuda import (
    ATTENTION_KEYS_PER_STEP,
    ATTENTION_WARPS,
    DECODE_BLOCK,
    DECODE_TC_KSPLIT,
    DECODE_TC_MAX_ROWS,
    DECODE_TC_STAGES,
    DEQUANT_BLOCK,
    QKV_WARPS,
    QMM_KT,
    SWIGLU_BLOCK,
    QmmConfig,
    add_norm_block,
    decode_k_split,
    decode_m_tile,
    decode_rows_per_warp,
    decode_tc_m_tile,
    layout,
    qmm_config,
    qmm_smem_bytes,
)


@functools.cache
def source(name: str) -> str:
    """The CUDA text of the file ``name`` beside this module (``"decode.cu"``, ``"common.cuh"``,
    ...) as MLX gets it: without the file's leading ``//!`` lines."""
    text = resources.files("arrayq_mlx.cuda").joinpath(name).read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    notes = next((i for i, line in enumerate(lines) if not line.startswith("//!")), len(lines))
    return "".join(lines[notes:])


def _launch_bounds(threads: int) -> str:
    """Header lines that attach ``__launch_bounds__(threads, 1)`` to the kernel MLX declares after
    the header, by redefining ``__global__`` (a macro of CUDA's headers; a macro of the kernel's
    name would also rename it in NVRTC's name lookup)."""
    return "#undef __global__\n" + f"#define __global__ __attribute__((global)) __launch_bounds__({threads}, 1)\n"


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
    and ``__launch_bounds__`` (so the registers fit ``cfg.threads`` threads). ``kernel_name``
    only keys the cache."""
    return (
        source("common.cuh")
        + source("async_helpers.cuh")
        + source("qmm_helpers.cuh")
        + _wgmma_helper(cfg.nt)
        + _launch_bounds(cfg.threads)
    )


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


@functools.cache
def decode_tc_header() -> str:
    """Header of the tensor-core decode kernel. ``__launch_bounds__(128, 1)`` lets ptxas use
    ~106 registers for one row of x (MT 1), which leaves 4 blocks per multiprocessor: faster
    than 6 or 8 (H100: 10.6 vs 12.0 us at 12288 x 4096; notes-gpu.md). MT 8 and 16 take
    118-190 registers (2-4 blocks)."""
    return source("async_helpers.cuh") + source("tc_helpers.cuh") + _launch_bounds(DECODE_BLOCK)


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


def qkv_heads_template(
    dtype: Any, head_dim: int, n_heads: int, n_kv_heads: int, dims: int, traditional: bool
) -> tuple[tuple[str, Any], ...]:
    """MLX template arguments of the qkv_heads kernel (``dtype``: the activations' ``mx.Dtype``)."""
    return (
        ("T", dtype),
        ("D", head_dim),
        ("HQ", n_heads),
        ("HKV", n_kv_heads),
        ("DIMS", dims),
        ("TRAD", bool(traditional)),
        ("WARPS", QKV_WARPS),
    )


def add_norm_template(dtype: Any, d: int, has_weight: bool) -> tuple[tuple[str, Any], ...]:
    """MLX template arguments of the add_rms_norm kernel for rows of ``d`` values of ``dtype``."""
    return (("T", dtype), ("D", d), ("BLOCK", add_norm_block(d)), ("HAS_W", bool(has_weight)))


def qkv_heads_params(eps: float, base: float, scale: float) -> list[float]:
    """The qkv_heads kernel's float32 ``params``: eps, then rope's log2(base) and scale as
    ``mx.fast.rope`` rounds them (float32 base, its log2 rounded to float32), then base as a
    float32 pair hi + lo and scale's lo part (scale's hi is the third value), from which the
    float32 path rebuilds float64 base and scale (to 48 bits: exact for 10000, 1e6, 5e5)."""

    f32 = struct_f32
    base_hi, scale_hi = f32(base), f32(scale)
    return [f32(eps), f32(math.log2(base_hi)), scale_hi, base_hi, f32(base - base_hi), f32(scale - scale_hi)]


def struct_f32(v: float) -> float:
    """``v`` rounded to float32 (to nearest even), as a Python float."""
    return float(struct.unpack("f", struct.pack("f", v))[0])


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
        self._tc_launches: dict[tuple, tuple[Any, dict]] = {}
        self._attention: Any = None
        self._scales: dict[float, Any] = {}
        self._qkv: Any = None
        self._add_norm: Any = None
        self._swiglu: Any = None
        self._constants: dict[tuple[float, ...], Any] = {}  # float32 parameter arrays, one per value

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
                source=source("decode.cu"),
                header=source("common.cuh"),
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
        m, n = int(x.shape[0]), int(packed.shape[0])
        # everything but the arrays, looked up once per shape: a model makes this call ~100
        # times a token, and its Python was a tenth of a token's time on an H100
        key = (x.dtype, scales.dtype, bits, group_size, m, n, self.tc_split, self.tc_stages, self.poison)
        launch = self._tc_launches.get(key)
        if launch is None:
            launch = self._tc_launches[key] = self._decode_tc_launch(x, scales, bits, group_size, m, n)
        kernel, kw = launch
        return kernel(inputs=[x, packed, scales, biases], **kw)[0]

    def _decode_tc_launch(self, x: Any, scales: Any, bits: int, group_size: int, m: int, n: int) -> tuple[Any, dict]:
        """:meth:`decode_tc`'s kernel and launch arguments for these dtypes and shapes."""
        mx = self.mx
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
                source=source("decode_tc.cu"),
                header=decode_tc_header(),
            )
        tiles = -(-n // 16)  # 16 rows of W per tile, 4 // ksplit tiles per block
        blocks = -(-tiles // (4 // ksplit))
        return kernel, {
            "template": list(tmpl),
            "grid": (blocks * DECODE_BLOCK, 1, 1),
            "threadgroup": (DECODE_BLOCK, 1, 1),
            "output_shapes": [(m, n)],
            "output_dtypes": [x.dtype],
            "init_value": self._init_value(),
        }

    def dequantize(self, packed: Any, scales: Any, biases: Any, bits: int, group_size: int, dtype: Any) -> Any:
        """W ``(N, K)`` in ``dtype`` (bfloat16/float16): ``s*q + b`` in float32, rounded once."""
        mx = self.mx
        if self._dequant is None:
            self._dequant = mx.fast.cuda_kernel(
                name="arrayq_dequant",
                input_names=["w", "scales", "biases"],
                output_names=["out"],
                source=source("dequant.cu"),
                header=source("common.cuh"),
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
                source=source("qmm.cu"),
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

    def prefix_attention(self, q: Any, k: Any, v: Any, scale: float, n_keys: Any) -> Any:
        """Attention of q ``(B, HQ, 1, D)`` over the first ``n_keys`` (a 0-d int32 array or an
        int) keys of k, v ``(B, HKV, S, D)``, one dtype (bfloat16/float16/float32), D a multiple
        of 32 up to 256, HQ a multiple of HKV: ``(B, HQ, 1, D)`` in q's dtype (attention.cu)."""
        mx = self.mx
        if self._attention is None:
            self._attention = mx.fast.cuda_kernel(
                name="arrayq_prefix_attention",
                input_names=["q", "k", "v", "n_keys", "scale"],
                output_names=["out"],
                source=source("attention.cu"),
            )
        scale_array = self._scales.get(scale)
        if scale_array is None:  # one constant per scale (a model has one)
            scale_array = self._scales[scale] = mx.array([scale], dtype=mx.float32)
        n = n_keys.astype(mx.int32) if isinstance(n_keys, mx.array) else mx.array(n_keys, dtype=mx.int32)
        b, hq, _, d = (int(s) for s in q.shape)
        return self._attention(
            inputs=[q, k, v, n, scale_array],
            template=[("T", q.dtype), ("D", d), ("WARPS", ATTENTION_WARPS), ("U", ATTENTION_KEYS_PER_STEP)],
            grid=(b * hq * 32 * ATTENTION_WARPS, 1, 1),
            threadgroup=(32 * ATTENTION_WARPS, 1, 1),
            output_shapes=[tuple(q.shape)],
            output_dtypes=[q.dtype],
            init_value=self._init_value(),
        )[0]

    def _constant(self, *values: float) -> Any:
        """A float32 array of ``values``, made once (a model has one eps, one rope)."""
        out = self._constants.get(values)
        if out is None:
            out = self._constants[values] = self.mx.array(list(values), dtype=self.mx.float32)
        return out

    def add_rms_norm(self, x: Any, y: Any, weight: Any, eps: float) -> tuple[Any, Any]:
        """``(x + y, rms_norm(x + y, weight, eps))`` for x, y ``(..., D)`` of one dtype
        (bfloat16/float16/float32; :func:`~arrayq_mlx.cuda.add_rms_norm_fits`) and ``weight``
        ``(D,)`` in it or None; both in x's shape and dtype (add_rms_norm.cu)."""
        mx = self.mx
        if self._add_norm is None:
            self._add_norm = mx.fast.cuda_kernel(
                name="arrayq_add_rms_norm",
                input_names=["x", "y", "weight", "eps"],
                output_names=["s", "normed"],
                source=source("add_rms_norm.cu"),
            )
        d = int(x.shape[-1])
        block = add_norm_block(d)
        rows = math.prod(int(n) for n in x.shape[:-1])
        out = self._add_norm(
            inputs=[x, y, x if weight is None else weight, self._constant(struct_f32(eps))],  # (x: unread)
            template=list(add_norm_template(x.dtype, d, weight is not None)),
            grid=(rows * block, 1, 1),
            threadgroup=(block, 1, 1),
            output_shapes=[tuple(x.shape)] * 2,
            output_dtypes=[x.dtype] * 2,
            init_value=self._init_value(),
        )
        return out[0], out[1]

    def swiglu_halves(self, gate_up: Any) -> Any:
        """``silu(gate) * up`` for ``gate_up`` ``(..., 2N)`` (gate the first N values of the
        last axis, up the last N; bfloat16/float16/float32, :func:`~arrayq_mlx.cuda.swiglu_fits`):
        ``(..., N)`` in its dtype, float32 inside and rounded once (swiglu_halves.cu)."""
        mx = self.mx
        if self._swiglu is None:
            self._swiglu = mx.fast.cuda_kernel(
                name="arrayq_swiglu_halves",
                input_names=["gu"],
                output_names=["out"],
                source=source("swiglu_halves.cu"),
            )
        n = int(gate_up.shape[-1]) // 2
        shape = (*(int(s) for s in gate_up.shape[:-1]), n)
        threads = math.prod(shape)
        return self._swiglu(
            inputs=[gate_up],
            template=[("T", gate_up.dtype), ("N", n)],
            grid=(-(-threads // SWIGLU_BLOCK) * SWIGLU_BLOCK, 1, 1),
            threadgroup=(SWIGLU_BLOCK, 1, 1),
            output_shapes=[shape],
            output_dtypes=[gate_up.dtype],
            init_value=self._init_value(),
        )[0]

    def qkv_heads(
        self,
        qkv: Any,
        q_weight: Any,
        k_weight: Any,
        heads: tuple[int, int],
        eps: float,
        rope: tuple[int, bool, float, float],
        offset: Any,
    ) -> tuple[Any, Any, Any]:
        """q ``(B, HQ, L, D)``, k and v ``(B, HKV, L, D)`` of a fused projection ``qkv``
        ``(B, L, (HQ + 2 HKV) * D)`` (bfloat16/float16/float32, D a multiple of 32 up to 256;
        :func:`~arrayq_mlx.cuda.qkv_heads_fits`), ``heads`` = (HQ, HKV): q's and k's heads
        RMS-normed with ``q_weight``/``k_weight`` (D,) in qkv's dtype and ``eps``, then rotated
        by ``rope`` = (dims, traditional, base, scale) at positions ``offset`` + 0 .. L-1
        (``offset``: an int or a 0-d integer array, read on the device); in qkv's dtype
        (qkv_heads.cu)."""
        mx = self.mx
        if self._qkv is None:
            self._qkv = mx.fast.cuda_kernel(
                name="arrayq_qkv_heads",
                input_names=["qkv", "q_weight", "k_weight", "offset", "params"],
                output_names=["q", "k", "v"],
                source=source("qkv_heads.cu"),
            )
        (hq, hkv), (dims, traditional, base, scale) = heads, rope
        b, length, width = (int(s) for s in qkv.shape)
        d = width // (hq + 2 * hkv)
        params = self._constant(*qkv_heads_params(eps, base, scale))
        if isinstance(offset, int):
            offset = mx.array(offset, dtype=mx.int32)
        elif offset.dtype != mx.int32:
            offset = offset.astype(mx.int32)
        blocks = -(-b * length * (hq + 2 * hkv) // QKV_WARPS)
        out = self._qkv(
            inputs=[qkv, q_weight, k_weight, offset, params],
            template=list(qkv_heads_template(qkv.dtype, d, hq, hkv, dims, traditional)),
            grid=(blocks * 32 * QKV_WARPS, 1, 1),
            threadgroup=(32 * QKV_WARPS, 1, 1),
            output_shapes=[(b, hq, length, d), (b, hkv, length, d), (b, hkv, length, d)],
            output_dtypes=[qkv.dtype] * 3,
            init_value=self._init_value(),
        )
        return out[0], out[1], out[2]
