"""The CUDA text arrayq hands to MLX, byte for byte: no GPU needed.

MLX compiles a ``mx.fast.cuda_kernel`` from the source and header strings it is given, and
caches the compiled module by the kernel's name. So a kernel compiles identically only if
those strings, the name and the template arguments are the same. This file drives the
launcher (``CudaKernels``) with a stand-in for MLX that records every ``cuda_kernel`` build
and launch, over every format, row count, GPU generation and block shape the kernels take,
and compares a SHA-256 of each group of records with ``data/cuda_kernel_sources.json``. It
also hashes the translation units ``benchmarks/cuda_compile.py`` compiles offline, and where
``nvcc`` is installed compiles one variant of each kernel for Hopper.

The table was written from the launcher before its CUDA sources moved into ``.cu``/``.cuh``
files; a change to a kernel's source must come with a new table:

    python tests/test_mlx_cuda_sources.py --write
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from arrayq_mlx import cuda as ck
from arrayq_mlx.cuda import _launch as launch
from arrayq_mlx.cuda._launch import CudaKernels

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).with_name("data") / "cuda_kernel_sources.json"
ROWS = (1, 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 31, 32, 48, 64, 128, 129, 200, 400, 1024, 1025)
ARCHS = (0, 8, 9)


class _Dtype:
    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:  # as MLX prints its dtypes
        return f"mlx.core.{self.name}"

    __repr__ = __str__


class _Array:
    def __init__(self, shape: tuple[int, ...], dtype: _Dtype) -> None:
        self.shape, self.dtype, self.ndim = shape, dtype, len(shape)


def _plain(v: Any) -> Any:
    """A JSON-able form of an argument MLX receives (dtypes by their text, arrays by shape)."""
    if isinstance(v, _Array):
        return {"shape": list(v.shape), "dtype": str(v.dtype)}
    if isinstance(v, (list, tuple)):
        return [_plain(e) for e in v]
    if isinstance(v, _Dtype):
        return str(v)
    if isinstance(v, float) and v != v:
        return "nan"
    return v


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _FakeMx:
    """What ``CudaKernels`` uses of ``mlx.core``; records each kernel build and launch."""

    def __init__(self) -> None:
        self.bfloat16, self.float16, self.float32 = (_Dtype(n) for n in ("bfloat16", "float16", "float32"))
        self.int32 = _Dtype("int32")
        self.records: list[dict[str, Any]] = []
        fake = self

        class _Fast:
            @staticmethod
            def cuda_kernel(**build: Any) -> Any:
                built = {k: (_sha(v) if k in ("source", "header") else _plain(v)) for k, v in sorted(build.items())}

                def launch(**call: Any) -> list[_Array]:
                    fake.records.append({"build": built, "launch": {k: _plain(v) for k, v in sorted(call.items())}})
                    shapes, dtypes = call["output_shapes"], call["output_dtypes"]
                    return [_Array(tuple(sh), dt) for sh, dt in zip(shapes, dtypes, strict=True)]

                return launch

        self.fast = _Fast()

    def array(self, value: Any, dtype: _Dtype) -> _Array:
        return _Array((len(value),) if isinstance(value, list) else (), dtype)

    def matmul(self, a: _Array, b: _Array) -> _Array:
        return _Array((a.shape[0], b.shape[1]), a.dtype)

    def swapaxes(self, a: _Array, i: int, j: int) -> _Array:
        return _Array(a.shape[::-1], a.dtype)


def _digest(records: list[dict[str, Any]]) -> str:
    return _sha(json.dumps(records, sort_keys=True))


def _shapes(bits: int, gs: int) -> list[tuple[int, int]]:
    """(N, K): odd N, a few groups of K, whole and odd numbers of the kernels' K stages."""
    few = 3 * max(gs, ck.layout(bits, gs).vals)
    return [(77, few), (1000, 1024), (4096 + 13, 4096), (12288, 4096), (40, 768), (24, 1280), (64, 384)]


def _format_records(bits: int, gs: int, xd: str, sd: str) -> list[dict[str, Any]]:
    """Every kernel the choice picks for this format, over rows, shapes and GPU generations."""
    mx = _FakeMx()
    kern = CudaKernels(mx, poison=True)
    for arch in ARCHS:
        for n, k in _shapes(bits, gs):
            for m in ROWS:
                kind = ck.choose(
                    rows=m,
                    k=k,
                    n=n,
                    bits=bits,
                    group_size=gs,
                    mode="affine",
                    transpose=True,
                    x_dtype=xd,
                    scales_dtype=sd,
                    weight_ndim=2,
                    has_biases=True,
                    arch=arch,
                )
                if kind is None:
                    continue
                x = _Array((m, k), getattr(mx, xd))
                packed = _Array((n, k * bits // 32), _Dtype("uint32"))
                scales = _Array((n, k // gs), getattr(mx, sd))
                kern.quantized_matmul(kind, x, packed, scales, scales, bits, gs)
    return mx.records


def _variant_records() -> dict[str, list[dict[str, Any]]]:
    """The variants benchmarks/bench_cuda.py --tune times: K splits and stages of the
    tensor-core decode kernel, each fused-kernel block shape, the decode kernel up to 16 rows,
    and outputs not poisoned."""
    out: dict[str, list[dict[str, Any]]] = {}
    mx = _FakeMx()
    kern = CudaKernels(mx)
    bf16 = mx.bfloat16
    w = _Array((12288, 512), _Dtype("uint32")), _Array((12288, 64), bf16), _Array((12288, 64), bf16)
    for ks, stages in ((2, 2), (4, 2), (1, 2), (2, 3), (2, 4)):
        kern.tc_split, kern.tc_stages = ks, stages
        for m in (1, 8, 16):
            kern.decode_tc(_Array((m, 4096), bf16), *w, 4, 64)
    kern.tc_split = kern.tc_stages = None
    for m in range(1, 17):
        kern.decode(_Array((m, 4096), bf16), *w, 4, 64)
    out["tune decode"] = mx.records
    mx = _FakeMx()
    kern = CudaKernels(mx)
    for cfg in ck.QMM_CONFIGS:
        kern.qmm_cfg = cfg
        for m in (5, 64, 256, 1024):
            kern.qmm(_Array((m, 4096), bf16), *w, 4, 64)
            kern.qmm(_Array((m, 384), bf16), _Array((128, 48), _Dtype("uint32")), *w[1:], 4, 64)  # TAIL
    out["tune qmm"] = mx.records
    mx = _FakeMx()
    kern = CudaKernels(mx)
    kern.prefill(_Array((2048, 4096), bf16), *w, 4, 64)
    kern.quantized_matmul("decode", _Array((1, 4096), mx.float16), *w, 4, 64)
    out["not poisoned"] = mx.records
    return out


#: qkv_heads variants: dtype, B, L, (HQ, HKV), D, rope dims, traditional (qwen3-0.6b and -8b
#: decode and prefill rows, rope over part of the features, the other pair layout)
QKV_CASES = [
    ("bfloat16", 1, 1, (16, 8), 128, 128, False),
    ("bfloat16", 8, 1, (16, 8), 128, 128, False),
    ("bfloat16", 1, 32, (32, 8), 128, 128, False),
    ("float16", 2, 3, (4, 2), 64, 32, True),
    ("float32", 1, 5, (2, 1), 256, 256, False),
]


def _qkv_records() -> list[dict[str, Any]]:
    """The qkv_heads kernel's build and launches over :data:`QKV_CASES` (an int offset and a
    0-d int32 array one)."""
    mx = _FakeMx()
    kern = CudaKernels(mx, poison=True)
    for dtype, b, length, (hq, hkv), d, dims, trad in QKV_CASES:
        t = getattr(mx, dtype)
        qkv, w = _Array((b, length, (hq + 2 * hkv) * d), t), _Array((d,), t)
        for offset in (3, _Array((), mx.int32)):
            kern.qkv_heads(qkv, w, w, (hq, hkv), 1e-6, (dims, trad, 1e6, 1.0), offset)
    return mx.records


#: add_rms_norm variants: dtype, rows' shape, with a weight (qwen3-0.6b's and -8b's hidden
#: sizes, a size that is not a multiple of the block, the largest)
NORM_CASES = [
    ("bfloat16", (1, 1, 1024), True),
    ("bfloat16", (8, 1, 4096), True),
    ("float16", (2, 3, 1000), False),
    ("float32", (5, 16384), True),
]


def _norm_records() -> list[dict[str, Any]]:
    """The add_rms_norm kernel's build and launches over :data:`NORM_CASES`, and swiglu_halves'
    over the same shapes doubled."""
    mx = _FakeMx()
    kern = CudaKernels(mx, poison=True)
    for dtype, shape, with_weight in NORM_CASES:
        x = _Array(shape, getattr(mx, dtype))
        kern.add_rms_norm(x, x, _Array(shape[-1:], x.dtype) if with_weight else None, 1e-6)
        kern.swiglu_halves(_Array((*shape[:-1], 2 * shape[-1]), x.dtype))
    return mx.records


def _cuda_compile() -> Any:
    """benchmarks/cuda_compile.py as a module."""
    spec = importlib.util.spec_from_file_location("_aq_cuda_compile", ROOT / "benchmarks" / "cuda_compile.py")
    assert spec is not None and spec.loader is not None
    cc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cc)
    return cc


def _compile_units() -> dict[str, str]:
    """SHA-256 of each translation unit benchmarks/cuda_compile.py builds (what nvcc compiles)."""
    cc = _cuda_compile()
    units = {}
    for label, func, header, source, ins, tmpl in cc.variants():
        unit = cc.translation_unit(func, header, source, ins, [("out", ins[0][1])], tmpl)
        units[f"cuda_compile {label}"] = _sha(unit)
    return units


def digests() -> dict[str, str]:
    """The table: one SHA-256 per group of records, and one per offline translation unit."""
    table = {}
    for bits in ck.SUPPORTED_BITS:
        for gs in ck.SUPPORTED_GROUP_SIZES:
            for xd in ck.X_DTYPES:
                for sd in ck.SCALE_DTYPES:
                    table[f"b{bits} gs{gs} x {xd} s {sd}"] = _digest(_format_records(bits, gs, xd, sd))
    table.update({label: _digest(recs) for label, recs in _variant_records().items()})
    table["qkv_heads"] = _digest(_qkv_records())
    table["add_rms_norm, swiglu_halves"] = _digest(_norm_records())
    table.update(_compile_units())
    return table


def test_sources_handed_to_mlx_are_unchanged() -> None:
    want = json.loads(GOLDEN.read_text())
    got = digests()
    assert sorted(got) == sorted(want)
    changed = [key for key in want if got[key] != want[key]]
    assert not changed, f"CUDA text handed to MLX changed for: {changed}"


def test_every_kernel_is_in_the_table() -> None:
    records = [r for bits in (3, 4) for r in _format_records(bits, 64, "bfloat16", "bfloat16")]
    names = {r["build"]["name"] for r in records}
    assert names == {"arrayq_qmv", "arrayq_qmv_tc", "arrayq_qmm", "arrayq_dequant"}
    assert len(records) > 500


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed here")
def test_each_kernel_compiles_with_nvcc(tmp_path: Path) -> None:
    """One variant of each kernel, as MLX would build it (benchmarks/cuda_compile.py's
    translation unit), compiled for Hopper with nvcc; no GPU needed."""
    cc = _cuda_compile()
    ins = [("x", "bfloat16"), ("w", "uint32"), ("scales", "bfloat16"), ("biases", "bfloat16")]
    cfg = ck.QMM_CONFIGS[0]
    qmm = launch.qmm_template(True, 4, 64, cfg, "bfloat16", 4096)
    tc = launch.decode_tc_template(True, "bfloat16", 4, 64, 1)
    variants = [
        (
            "qmv",
            launch.source("common.cuh"),
            "decode.cu",
            ins,
            launch.decode_template("bfloat16", "bfloat16", 4, 64, 8, 1),
        ),
        (
            "dequant",
            launch.source("common.cuh"),
            "dequant.cu",
            ins[1:],
            launch.dequant_template("bfloat16", "bfloat16", 3, 64),
        ),
        (launch.mlx_kernel_name("arrayq_qmv_tc", tc), launch.decode_tc_header(), "decode_tc.cu", ins, tc),
        (launch.mlx_kernel_name("arrayq_qmm", qmm), launch.qmm_header("qmm", cfg), "qmm.cu", ins, qmm),
    ]
    units = [(*v, [("out", "bfloat16")]) for v in variants]
    for dtype, _, _, (hq, hkv), d, dims, trad in QKV_CASES[2:]:  # each dtype once; three outputs
        tmpl = launch.qkv_heads_template(dtype, d, hq, hkv, dims, trad)
        qkv_ins = [(n, dtype) for n in ("qkv", "q_weight", "k_weight")] + [("offset", "int32"), ("params", "float32")]
        func = launch.mlx_kernel_name(f"arrayq_qkv_heads_{dtype}", tmpl[1:])  # (T: a dtype, not in this name)
        units.append((func, "", "qkv_heads.cu", qkv_ins, tmpl, [(n, dtype) for n in ("q", "k", "v")]))
    for dtype, shape, with_weight in NORM_CASES[1:]:
        tmpl = launch.add_norm_template(dtype, shape[-1], with_weight)
        norm_ins = [("x", dtype), ("y", dtype), ("weight", dtype), ("eps", "float32")]
        func = launch.mlx_kernel_name(f"arrayq_add_rms_norm_{dtype}", tmpl[1:])
        units.append((func, "", "add_rms_norm.cu", norm_ins, tmpl, [("s", dtype), ("normed", dtype)]))
    for dtype in ("bfloat16", "float32"):
        tmpl = (("T", dtype), ("N", 3072))
        func = launch.mlx_kernel_name(f"arrayq_swiglu_halves_{dtype}", tmpl[1:])
        units.append((func, "", "swiglu_halves.cu", [("gu", dtype)], tmpl, [("out", dtype)]))
    for func, header, name, inputs, template, outs in units:
        unit = tmp_path / f"{func}.cu"
        unit.write_text(cc.translation_unit(func, header, launch.source(name), inputs, outs, template))
        cmd = ["nvcc", "-arch=sm_90a", "-cubin", "-std=c++17", "-o", str(unit.with_suffix(".cubin")), str(unit)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, f"{name}: {res.stderr[-3000:]}"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(digests(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
