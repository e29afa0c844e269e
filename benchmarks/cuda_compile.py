"""Compile arrayq's ``mx.fast.cuda_kernel`` sources offline with ``nvcc``, as MLX would.

    python benchmarks/cuda_compile.py [--arch sm_90a] [--sass] [--keep DIR] [--nvrtc LIBNVRTC]

Needs only ``nvcc`` (no GPU, no MLX CUDA build). For each kernel variant it writes the full
translation unit the way MLX 0.32's ``build_kernel`` does (MLX's default header replaced by a
small stand-in that declares ``Shape``/``Strides``; the kernel signature generated from the
input/output names and the names' ``_shape`` uses; template arguments as ``constexpr``
lines), compiles it for ``--arch`` and prints ptxas's resource report (registers, spills,
shared memory) and any warnings, e.g. wgmma serialization. ``--sass`` also counts the
tensor-core instructions in the disassembly (HGMMA for wgmma, HMMA for mma.sync) and the
instructions of the K loop per K tile, by opcode (what a warp issues per tile).
``--nvrtc PATH/libnvrtc.so.13`` also compiles each unit through NVRTC the way MLX does
(``--device-as-default-execution-space``, ``--gpu-architecture=sm_90a``, the kernel found
through its name expression), which catches what only NVRTC rejects.

Run from the repository root (``backends`` is put on the path).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import subprocess
import sys
import tempfile
from typing import Any

sys.path[:0] = [os.path.join(os.path.dirname(__file__), "..", "backends")]

from arrayq_mlx import cuda as ck  # noqa: E402
from arrayq_mlx.cuda import _launch as launch  # noqa: E402

STUB_HEADER = r"""
#include <cuda/std/cstdint>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda/std/array>
#include <cooperative_groups.h>
namespace mlx::core::cu {
using Shape = cuda::std::array<int32_t, 10>;
using Strides = cuda::std::array<int64_t, 10>;
}
"""

CUDA_TYPES = {
    "bfloat16": "__nv_bfloat16",
    "float16": "__half",
    "float32": "float",
    "uint32": "uint32_t",
    "int32": "int32_t",
}


def translation_unit(
    func: str,
    header: str,
    source: str,
    inputs: list[tuple[str, str]],
    outputs: list[tuple[str, str]],
    template: tuple[tuple[str, Any], ...],
) -> str:
    """The source MLX builds for a custom kernel (inputs/outputs as (name, dtype name))."""
    params = []
    for name, dtype in inputs:
        params.append(f"    const {CUDA_TYPES[dtype]}* {name}")
        if f"{name}_shape" in source:
            params.append(f"    const __grid_constant__ Shape {name}_shape")
        if f"{name}_strides" in source:
            params.append(f"    const __grid_constant__ Strides {name}_strides")
        if f"{name}_ndim" in source:
            params.append(f"    const __grid_constant__ int {name}_ndim")
    params += [f"    {CUDA_TYPES[dtype]}* {name}" for name, dtype in outputs]
    consts = []
    for name, value in template:
        if isinstance(value, bool):
            consts.append(f"  constexpr bool {name} = {'true' if value else 'false'};")
        elif isinstance(value, int):
            consts.append(f"  constexpr int {name} = {value};")
        else:
            consts.append(f"  using {name} = {CUDA_TYPES[value]};")
    return (
        STUB_HEADER
        + header
        + "namespace mlx::core::cu {\n\nnamespace cg = cooperative_groups;\n\n"
        + f"__global__ void {func}(\n"
        + ",\n".join(params)
        + ") {\n"
        + "\n".join(consts)
        + "\n\n"
        + source
        + "\n}\n\n} // namespace mlx::core::cu\n"
    )


def nvrtc_compile(lib: str, src: str, func: str, arch: str, include: str) -> tuple[bool, str]:
    """Compile ``src`` with NVRTC as MLX 0.32 does; (ok, log)."""
    nv = ctypes.CDLL(lib)
    prog = ctypes.c_void_p()
    rc = nv.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), b"k.cu", 0, None, None)
    if rc:
        return False, f"nvrtcCreateProgram {rc}"
    expr = f"mlx::core::cu::{func}".encode()
    nv.nvrtcAddNameExpression(prog, expr)
    opts = [b"--device-as-default-execution-space", f"--gpu-architecture={arch}".encode()]
    opts += [f"-I{include}".encode(), f"-I{include}/cccl".encode()]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    rc = nv.nvrtcCompileProgram(prog, len(opts), arr)
    size = ctypes.c_size_t()
    nv.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value + 1)
    nv.nvrtcGetProgramLog(prog, log)
    ok = rc == 0
    if ok:
        lowered = ctypes.c_char_p()
        ok = nv.nvrtcGetLoweredName(prog, expr, ctypes.byref(lowered)) == 0
    nv.nvrtcDestroyProgram(ctypes.byref(prog))
    return ok, log.value.decode(errors="replace")


def variants() -> list[tuple[str, str, str, str, list[tuple[str, str]], tuple[tuple[str, Any], ...]]]:
    """(label, function name, header, source, inputs, template) of the variants to compile."""
    cases = [("bfloat16", "bfloat16", 4, 64, cfg) for cfg in ck.QMM_CONFIGS]
    cases += [
        ("bfloat16", "bfloat16", b, g, ck.QMM_CONFIGS[0]) for b, g in ((2, 32), (3, 64), (5, 128), (6, 64), (8, 128))
    ]
    cases += [("float16", "float16", 4, 64, ck.QMM_CONFIGS[0]), ("float16", "float16", 8, 128, ck.QMM_CONFIGS[0])]
    cases += [("bfloat16", "float32", 4, 64, ck.QMM_CONFIGS[0]), ("float16", "bfloat16", 4, 32, ck.QMM_CONFIGS[0])]
    cases += [("bfloat16", "bfloat16", 4, 64, ck.QMM_CONFIGS[0], 64 * 6)]  # the TAIL variant
    out = []
    for x_dtype, s_dtype, bits, gs, cfg, *k in cases:
        tmpl = launch.qmm_template(x_dtype == "bfloat16", bits, gs, cfg, s_dtype, *k)
        func = launch.mlx_kernel_name("arrayq_qmm", tmpl)
        ins = [("x", x_dtype), ("w", "uint32"), ("scales", s_dtype), ("biases", s_dtype)]
        label = f"qmm b{bits} gs{gs} x {x_dtype} s {s_dtype} wgs{cfg.wgs} nt{cfg.nt} st{cfg.stages}"
        label += " tail" if dict(tmpl)["TAIL"] else ""
        out.append((label, func, launch.qmm_header(func, cfg), launch.source("qmm.cu"), ins, tmpl))
    # the tensor-core decode kernel: x dtype, scales dtype, bits, group size, MT
    tc = [("bfloat16", "bfloat16", 4, 64, mt) for mt in (1, 8, 16)]
    tc += [("bfloat16", "bfloat16", b, g, 1) for b, g in ((2, 32), (3, 64), (5, 128), (6, 64))]
    tc += [("float16", "float16", 8, 128, 1), ("bfloat16", "float32", 4, 32, 1), ("float16", "bfloat16", 3, 32, 8)]
    for x_dtype, s_dtype, bits, gs, mt in tc:
        tmpl = launch.decode_tc_template(x_dtype == "bfloat16", s_dtype, bits, gs, mt)
        func = launch.mlx_kernel_name("arrayq_qmv_tc", tmpl)
        ins = [("x", x_dtype), ("w", "uint32"), ("scales", s_dtype), ("biases", s_dtype)]
        label = f"qmv_tc b{bits} gs{gs} x {x_dtype} s {s_dtype} mt{mt}"
        out.append((label, func, launch.decode_tc_header(), launch.source("decode_tc.cu"), ins, tmpl))
    return out


SASS_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")


def loop_histogram(sass: str) -> tuple[int, dict[str, int]]:
    """The K loop of a fused-kernel SASS (the backward branch whose body holds the most
    HGMMA): (HGMMA in it, instruction count per base opcode in it, divided by the K tiles it
    covers, 4 HGMMA a tile)."""
    ins = [(int(m.group(1), 16), m.group(2), m.group(3)) for m in SASS_LINE.finditer(sass)]
    best: tuple[int, int, int] = (0, 0, 0)
    for addr, op, rest in ins:
        tgt = re.search(r"0x([0-9a-f]+)", rest) if op.startswith("BRA") else None
        if tgt and int(tgt.group(1), 16) < addr:
            lo = int(tgt.group(1), 16)
            body = [o for a, o, _ in ins if lo <= a <= addr]
            hg = sum(o.startswith("HGMMA") for o in body)
            if hg > best[0]:
                best = (hg, lo, addr)
    hg, lo, hi = best
    counts: dict[str, int] = {}
    for a, o, _ in ins:
        if lo <= a <= hi and hg:
            base = o.split(".")[0]
            counts[base] = counts.get(base, 0) + 1
    tiles = max(1, hg // 4)
    return hg, {k: round(v / tiles) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="sm_90a")
    parser.add_argument("--sass", action="store_true", help="count tensor-core instructions in the SASS")
    parser.add_argument("--keep", help="folder to keep the .cu files in")
    parser.add_argument("--only", default="", help="compile only variants whose label contains this")
    parser.add_argument("--nvrtc", help="path of libnvrtc.so to compile through as MLX does")
    parser.add_argument("--include", default="/usr/local/cuda/include", help="CUDA headers for --nvrtc")
    args = parser.parse_args(argv)
    folder = args.keep or tempfile.mkdtemp(prefix="aq_cuda_")
    os.makedirs(folder, exist_ok=True)
    fails = 0
    for label, func, header, source, ins, tmpl in variants():
        if args.only not in label:
            continue
        cu = os.path.join(folder, func + ".cu")
        unit = translation_unit(func, header, source, ins, [("out", ins[0][1])], tmpl)
        with open(cu, "w") as fh:
            fh.write(unit)
        if args.nvrtc:
            ok, log = nvrtc_compile(args.nvrtc, unit, func, args.arch, args.include)
            print(f"== {label}: NVRTC {'ok' if ok else 'FAILED'}")
            if not ok or log.strip():
                print("   ", log.strip()[-2000:])
            fails += not ok
        cubin = cu[:-3] + ".cubin"
        cmd = ["nvcc", f"-arch={args.arch}", "-cubin", "-std=c++17", "-Xptxas", "-v", "-o", cubin, cu]
        res = subprocess.run(cmd, capture_output=True, text=True)
        report = [ln.strip() for ln in res.stderr.splitlines() if ln.strip()]
        keep = [ln for ln in report if re.search(r"registers|spill|warning|error|stack", ln)]
        print(f"== {label}: {'ok' if res.returncode == 0 else 'FAILED'}")
        for ln in keep if res.returncode == 0 else report[-30:]:
            print("   ", ln)
        fails += res.returncode != 0
        if args.sass and res.returncode == 0:
            sass = subprocess.run(["cuobjdump", "-sass", cubin], capture_output=True, text=True).stdout
            counts = {op: len(re.findall(rf"\b{op}\b", sass)) for op in ("HGMMA", "HMMA", "LDL", "STL", "LDS", "BAR")}
            print("    SASS:", ", ".join(f"{k} {v}" for k, v in counts.items()))
            hg, hist = loop_histogram(sass)
            if hg:  # the fused kernel's K loop (the decode kernels have no HGMMA)
                print(f"    K loop ({hg} HGMMA), per K tile: {sum(hist.values())} instructions:")
                print("     ", ", ".join(f"{k} {v}" for k, v in hist.items() if v))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
