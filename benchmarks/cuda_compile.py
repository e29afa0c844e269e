"""Compile arrayq's ``mx.fast.cuda_kernel`` sources offline with ``nvcc``, as MLX would.

    python benchmarks/cuda_compile.py [--arch sm_90a] [--sass] [--keep DIR] [--nvrtc LIBNVRTC]

Needs only ``nvcc`` (no GPU, no MLX CUDA build). For each kernel variant it writes the full
translation unit the way MLX 0.32's ``build_kernel`` does (MLX's default header replaced by a
small stand-in that declares ``Shape``/``Strides``; the kernel signature generated from the
input/output names and the names' ``_shape`` uses; template arguments as ``constexpr``
lines), compiles it for ``--arch`` and prints ptxas's resource report (registers, spills,
shared memory) and any warnings, e.g. wgmma serialization. ``--sass`` also counts the
tensor-core instructions in the disassembly (HGMMA for wgmma, HMMA for mma.sync).
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

from arrayq_mlx import _cuda_kernels as ck  # noqa: E402

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

CUDA_TYPES = {"bfloat16": "__nv_bfloat16", "float16": "__half", "float32": "float", "uint32": "uint32_t"}


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
    out = []
    for x_dtype in ("bfloat16", "float16"):
        for bits, gs in ((4, 64), (2, 32), (3, 64), (5, 128), (6, 64), (8, 128)):
            for cfg in ck.QMM_CONFIGS:
                if x_dtype == "float16" and (bits != 4 or cfg != ck.QMM_CONFIGS[0]):
                    continue
                if (bits, gs) != (4, 64) and cfg != ck.QMM_CONFIGS[0]:
                    continue
                tmpl = ck.qmm_template(x_dtype == "bfloat16", bits, gs, cfg)
                func = ck.mlx_kernel_name("arrayq_qmm", tmpl)
                ins = [("x", x_dtype), ("w", "uint32"), ("scales", "bfloat16"), ("biases", "bfloat16")]
                label = f"qmm b{bits} gs{gs} {x_dtype} wgs{cfg.wgs} nt{cfg.nt} st{cfg.stages}"
                out.append((label, func, ck.qmm_header(func, cfg), ck.QMM_SOURCE, ins, tmpl))
    return out


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
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
