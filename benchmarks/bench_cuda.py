"""Quantized matmul on an NVIDIA GPU through MLX's CUDA build (``mlx`` + ``mlx-cuda-13``).

    python benchmarks/bench_cuda.py [--quick] [--out DIR] [--check] [--tune] [--only-table]

``--check`` first runs the correctness sweep of arrayq's CUDA kernels (every bits x group
size x dtype they cover, several row counts, odd shapes) against a float64 NumPy reference
on fresh random data with NaN-poisoned outputs; ``--tune`` times the kernels' variants (the
tensor-core decode kernel's K split and stages) and the rows sweep that sets the
decode/prefill thresholds. Times are wall time and, with PyTorch installed, GPU time (CUPTI).

4-bit affine, group size 64, bfloat16 activations and bfloat16 scales/biases (the weight is
quantized from bfloat16). For each shape it times, on the GPU:

* ``mx.quantized_matmul`` called directly (MLX's own kernel),
* ``arrayq.linalg.quantized_matmul`` on the same arrays, which runs arrayq's own CUDA
  kernels (``arrayq_mlx.cuda``: the tensor-core decode GEMV for M <= 16, the
  fused tensor-core kernel for 32-1024 rows, dequantize + dense matmul above)
  unless ``ARRAYQ_MLX_CUDA_KERNELS=0``,
* dense bfloat16 ``mx.matmul`` (x @ W.T) as the baseline.

Each timed sample builds 32 independent calls and evaluates them with one ``mx.eval``, so
launch and synchronisation overhead is spread over 32 calls; the reported time per call is
the median over the samples divided by 32. The calls cycle through several distinct weights
(at least ~200 MB in all) so the 50 MB L2 cache of an H100 cannot serve a weight twice.
"Achieved GB/s" counts the bytes one call must move at least (packed weight + scales +
biases + x + out, or the bf16 weight + x + out for dense) over its time, and is set against
the copy bandwidth of the same card measured in the same run (a large device-to-device
copy, bytes read + bytes written over time). TFLOP/s = 2*M*N*K / time.

Works with or without arrayq installed as a package (run from the repository root, with
``.`` and ``backends`` on PYTHONPATH): the MLX backend is registered at run time if no
entry point provides it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

CALLS_PER_EVAL = 32
GROUP_SIZE, BITS = 64, 4
# (label, M, K, N)
SHAPES = [
    ("decode 1x4096 . 12288x4096", 1, 4096, 12288),
    ("LM head 1x4096 . 151936x4096", 1, 4096, 151936),
    ("prefill 512x4096 . 12288x4096", 512, 4096, 12288),
]
MIN_WEIGHT_BYTES = 200 * 2**20  # distinct weights per shape add up to at least this much


def card_name() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        return out.splitlines()[0] if out else "unknown (nvidia-smi printed nothing)"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"


def copy_bandwidth_torch(nbytes: int = 4 * 2**30, repeat: int = 20) -> float | None:
    """Device-to-device copy through PyTorch, (read + write) bytes / median time, in GB/s."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    src = torch.randn(nbytes // 2, dtype=torch.bfloat16, device="cuda")
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    del src, dst
    torch.cuda.empty_cache()
    return 2 * nbytes / statistics.median(times) / 1e9


def copy_bandwidth_mlx(mx: Any, nbytes: int = 4 * 2**30, repeat: int = 20) -> float:
    """The same through MLX: y = x + 1 on a large bfloat16 array (one read, one write)."""
    x = mx.random.normal((nbytes // 2 // 4096, 4096)).astype(mx.bfloat16)
    mx.eval(x)
    times = []
    for i in range(repeat + 3):
        t0 = time.perf_counter()
        y = x + 1
        mx.eval(y)
        if i >= 3:
            times.append(time.perf_counter() - t0)
        del y
    del x
    return 2 * nbytes / statistics.median(times) / 1e9


def median_per_call(mx: Any, make_calls: Callable[[], list[Any]], samples: int) -> tuple[float, float]:
    """Per call, after warm-up: (median time of ``mx.eval`` on 32 calls built beforehand,
    median time to build the 32 calls and evaluate them), each divided by 32. The first is
    the GPU work and its launches; the second adds the Python cost of making the calls
    (MLX builds the whole graph before ``mx.eval`` launches anything)."""
    for _ in range(3):
        mx.eval(make_calls())
    eval_only, total = [], []
    for _ in range(samples):
        mx.synchronize()
        outs = make_calls()
        t0 = time.perf_counter()
        mx.eval(outs)
        eval_only.append(time.perf_counter() - t0)
        del outs
        mx.synchronize()
        t0 = time.perf_counter()
        mx.eval(make_calls())
        total.append(time.perf_counter() - t0)
    return statistics.median(eval_only) / CALLS_PER_EVAL, statistics.median(total) / CALLS_PER_EVAL


def gpu_time_per_call(mx: Any, make_calls: Callable[[], list[Any]], reps: int = 5) -> float | None:
    """GPU time per call: the span from the first kernel's start to the last kernel's end of
    one ``mx.eval`` of the 32 calls, as CUPTI records it (through ``torch.profiler``), / 32;
    median of ``reps`` evals. MLX runs independent calls concurrently, so this is the GPU's
    throughput, without MLX's CPU time per op (which the wall time includes: MLX builds the
    whole graph before the GPU starts). None without PyTorch or when nothing was recorded."""
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return None
    spans = []
    for _ in range(reps):
        outs = make_calls()
        mx.synchronize()
        try:
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                mx.eval(outs)
                mx.synchronize()
            kernels = [e.time_range for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        except Exception:  # a PyTorch without working CUPTI: no GPU time
            return None
        if not kernels:
            return None
        spans.append((max(r.end for r in kernels) - min(r.start for r in kernels)) * 1e-6 / CALLS_PER_EVAL)
        del outs
    return statistics.median(spans)


def bench_shape(mx: Any, aq: Any, label: str, m: int, k: int, n: int, samples: int) -> list[dict[str, Any]]:
    from arrayq.quant import QuantizedWeight

    bf16 = mx.bfloat16
    q_bytes = n * k * BITS // 8 + 2 * (n * (k // GROUP_SIZE) * 2)  # packed + bf16 scales + bf16 biases
    d_bytes = n * k * 2
    n_q = max(2, min(CALLS_PER_EVAL, -(-MIN_WEIGHT_BYTES // q_bytes)))
    n_d = max(2, min(CALLS_PER_EVAL, -(-MIN_WEIGHT_BYTES // d_bytes)))
    mx.random.seed(0)
    dense, quant = [], []
    for i in range(max(n_q, n_d)):
        w = (mx.random.normal((n, k)) * 0.02).astype(bf16)
        if i < n_q:
            packed, scales, biases = mx.quantize(w, group_size=GROUP_SIZE, bits=BITS)
            assert scales.dtype == bf16, scales.dtype
            quant.append((packed, scales, biases))
        if i < n_d:
            dense.append(w)
        mx.eval(dense, quant)
    xs = [(mx.random.normal((m, k))).astype(bf16) for _ in range(CALLS_PER_EVAL)]
    mx.eval(xs)
    qws = [QuantizedWeight(p, s, b, GROUP_SIZE, BITS, "affine") for p, s, b in quant]

    # correctness first: the kernel against x @ dequantize(W).T in float32
    p, s, b = quant[0]
    got = mx.quantized_matmul(xs[0], p, s, b, transpose=True, group_size=GROUP_SIZE, bits=BITS).astype(mx.float32)
    via_aq = aq.linalg.quantized_matmul(xs[0], qws[0], transpose=True).astype(mx.float32)
    ref = mx.matmul(
        xs[0].astype(mx.float32), mx.dequantize(p, s, b, group_size=GROUP_SIZE, bits=BITS, dtype=mx.float32).T
    )
    rel = (mx.linalg.norm(got - ref) / mx.linalg.norm(ref)).item()
    rel_aq = (mx.linalg.norm(via_aq - ref) / mx.linalg.norm(ref)).item()

    def direct() -> list[Any]:
        return [
            mx.quantized_matmul(xs[i], *quant[i % n_q], transpose=True, group_size=GROUP_SIZE, bits=BITS)
            for i in range(CALLS_PER_EVAL)
        ]

    def through_arrayq() -> list[Any]:
        return [aq.linalg.quantized_matmul(xs[i], qws[i % n_q], transpose=True) for i in range(CALLS_PER_EVAL)]

    def dense_mm() -> list[Any]:
        return [mx.matmul(xs[i], dense[i % n_d].T) for i in range(CALLS_PER_EVAL)]

    io = m * k * 2 + m * n * 2
    flops = 2 * m * n * k
    rows = []
    for name, fn, wbytes in (
        ("mx.quantized_matmul q4", direct, q_bytes),
        ("arrayq kernels q4", through_arrayq, q_bytes),
        ("mx.matmul bf16 dense", dense_mm, d_bytes),
    ):
        t, t_total = median_per_call(mx, fn, samples)
        gpu = gpu_time_per_call(mx, fn)
        rows.append(
            {
                "case": label,
                "M": m,
                "K": k,
                "N": n,
                "name": name,
                "us_per_call": t * 1e6,
                "us_per_call_with_build": t_total * 1e6,
                "gpu_us_per_call": None if gpu is None else gpu * 1e6,
                "bytes_per_call": wbytes + io,
                "GB_s": (wbytes + io) / (gpu or t) / 1e9,
                "TFLOP_s": flops / (gpu or t) / 1e12,
                "distinct_weights": n_q if wbytes == q_bytes else n_d,
            }
        )
    rows[0]["rel_err_vs_dequantized"] = rel
    rows[1]["rel_err_vs_dequantized"] = rel_aq
    return rows


def make_weights(mx: Any, n: int, k: int, bits: int, gs: int, count: int, dtype: Any) -> list[tuple[Any, Any, Any]]:
    """``count`` distinct quantized weights (quantized on MLX's CPU stream, the format arrayq
    promises), random normal * 0.02 in ``dtype``."""
    out = []
    for _ in range(count):
        w = (mx.random.normal((n, k)) * 0.02).astype(dtype)
        out.append(tuple(mx.quantize(w, group_size=gs, bits=bits, stream=mx.cpu)))
        mx.eval(out[-1])
    return out


def check_kernels(mx: Any, aq: Any, log: list[str], quick: bool = False) -> int:
    """Correctness of arrayq's CUDA kernels against a float64 NumPy reference: fresh random
    data per case, outputs poisoned with NaN (every element must be written), through the
    kernels directly and through ``arrayq.linalg.quantized_matmul``. Returns the failures."""
    import numpy as np

    from arrayq.quant import QuantizedWeight
    from arrayq_mlx import cuda as ck
    from arrayq_mlx.cuda._launch import CudaKernels

    kern = CudaKernels(mx, poison=True)
    tol = {"bfloat16": 1e-2, "float16": 2e-3}
    cases = []
    if not quick:
        for bits in ck.SUPPORTED_BITS:
            for gs in ck.SUPPORTED_GROUP_SIZES:
                cases += [(bits, gs, "bfloat16", "bfloat16", m) for m in (1, 512)]
        for bits in ck.SUPPORTED_BITS:
            cases += [(bits, 64, "float16", "float16", m) for m in (1, 128)]
    else:  # the dequantize kernel on odd shapes, every bit width
        cases += [(bits, gs, "bfloat16", "bfloat16", 128) for bits in ck.SUPPORTED_BITS for gs in (32, 128)]
    for bits, gs in ((4, 64), (3, 64), (8, 128), (2, 32)):
        cases += [(bits, gs, "bfloat16", "bfloat16", m) for m in (2, 3, 7, 16)]
    cases += [(4, 64, "bfloat16", "float32", 1), (4, 64, "float16", "float32", 128)]
    # the tensor-core decode kernel up to its row limit (rows of x are its mma's N)
    cases += [(4, 64, "bfloat16", "bfloat16", m) for m in (5, 8, 12)] + [(6, 32, "float16", "bfloat16", 4)]
    cases += [(3, 128, "float16", "float16", 16), (5, 32, "bfloat16", "float32", 9)]
    # an odd number of 256-value stages (the K split gives one warp more than the other)
    cases += [(4, 64, "bfloat16", "bfloat16", 1, 768), (6, 32, "float16", "float16", 3, 1280)]
    # the fused kernel's second block shape and the dequantize path above it
    cases += [(4, 64, "bfloat16", "bfloat16", 400), (3, 32, "float16", "float16", 400)]
    cases += [(4, 64, "bfloat16", "bfloat16", 1024), (4, 64, "bfloat16", "bfloat16", 1025)]
    # the fused kernel below one row tile, and its 16-bit path for float16
    cases += [
        (4, 64, "bfloat16", "bfloat16", 64),
        (3, 32, "bfloat16", "bfloat16", 48),
        (4, 64, "float16", "float16", 200),
    ]
    rng = np.random.default_rng()
    fails = 0
    arch = ck.compute_capability(mx)  # the same choice as the backend's on this GPU
    for i, (bits, gs, xd, sd, m, *k_given) in enumerate(cases):
        # odd shapes in turn: N not a multiple of the rows per warp, K a few groups
        n = (77, 1000, 4096 + 13)[i % 3]
        k = k_given[0] if k_given else (3 * max(gs, ck.layout(bits, gs).vals), 1024, 4096)[(i // 3) % 3]
        w = mx.array((rng.standard_normal((n, k)) * 0.02).astype(np.float32)).astype(getattr(mx, sd))
        packed, scales, biases = mx.quantize(w, group_size=gs, bits=bits, stream=mx.cpu)
        x = mx.array(rng.standard_normal((m, k)).astype(np.float32)).astype(getattr(mx, xd))
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
        wd = mx.dequantize(
            packed,
            scales.astype(mx.float32),
            biases.astype(mx.float32),
            group_size=gs,
            bits=bits,
            dtype=mx.float32,
            stream=mx.cpu,
        )
        ref = np.asarray(x.astype(mx.float32), dtype=np.float64) @ np.asarray(wd, dtype=np.float64).T
        if kind is None:
            log.append(f"b{bits} gs{gs} x {xd} s {sd} M{m} N{n} K{k}: falls back to MLX")
            continue
        t0 = time.perf_counter()
        got = kern.quantized_matmul(kind, x, packed, scales, biases, bits, gs)
        mx.eval(got)
        first = time.perf_counter() - t0
        qw = QuantizedWeight(packed, scales, biases, gs, bits, "affine")
        via = aq.linalg.quantized_matmul(x, qw, transpose=True)
        errs = []
        for a in (got, via):
            a64 = np.asarray(a.astype(mx.float32), dtype=np.float64)
            errs.append(np.linalg.norm(a64 - ref) / np.linalg.norm(ref) if np.isfinite(a64).all() else float("nan"))
        ok = errs[0] <= tol[xd] and errs[1] <= tol[xd] and got.dtype == x.dtype and via.dtype == x.dtype
        fails += not ok
        log.append(
            f"{'ok  ' if ok else 'FAIL'} {kind:<7} b{bits} gs{gs} x {xd} s {sd} M{m} N{n} K{k}: rel err kernel "
            f"{errs[0]:.2e} via arrayq {errs[1]:.2e}; first call {first:.2f} s"
        )
        print(log[-1], flush=True)
    log.append(f"kernel check: {len(cases)} cases, {fails} failures")
    print(log[-1], flush=True)
    return fails


def tune(mx: Any, samples: int, log: list[str]) -> None:
    """Variants of the kernels and the rows sweep at N x K = 12288 x 4096 (4-bit, gs 64)."""
    from arrayq_mlx import cuda as ck
    from arrayq_mlx.cuda._launch import CudaKernels

    bf16 = mx.bfloat16
    kern = CudaKernels(mx)

    def timed(label: str, fn: Callable[[Any, Any], Any], xs: list[Any], ws: list[Any]) -> float:
        def calls() -> list[Any]:
            return [fn(xs[i], ws[i % len(ws)]) for i in range(CALLS_PER_EVAL)]

        t, _ = median_per_call(mx, calls, samples)
        gpu = gpu_time_per_call(mx, calls)
        log.append(f"{label:<52} wall {t * 1e6:8.1f} us   GPU {(gpu or float('nan')) * 1e6:8.1f} us")
        print(log[-1], flush=True)
        return t

    def inputs(m: int) -> list[Any]:
        xs = [mx.random.normal((m, 4096)).astype(bf16) for _ in range(CALLS_PER_EVAL)]
        mx.eval(xs)
        return xs

    def decode(x: Any, w: tuple[Any, Any, Any]) -> Any:
        return kern.decode(x, *w, BITS, GROUP_SIZE)

    def decode_tc(x: Any, w: tuple[Any, Any, Any]) -> Any:
        return kern.decode_tc(x, *w, BITS, GROUP_SIZE)

    def qmm(x: Any, w: tuple[Any, Any, Any]) -> Any:
        return kern.qmm(x, *w, BITS, GROUP_SIZE)

    def mlx_q(x: Any, w: tuple[Any, Any, Any]) -> Any:
        return mx.quantized_matmul(x, *w, transpose=True, group_size=GROUP_SIZE, bits=BITS)

    def dense_mm(x: Any, w: Any) -> Any:
        return mx.matmul(x, w.T)

    for n, count in ((12288, 8), (151936, 1)):
        ws = make_weights(mx, n, 4096, BITS, GROUP_SIZE, count, bf16)
        x1 = inputs(1)
        for ks, stages in ((2, 2), (4, 2), (1, 2), (2, 3), (2, 4)):
            kern.tc_split, kern.tc_stages = ks, stages
            timed(f"decode_tc M1 N{n} k split {ks} stages {stages}", decode_tc, x1, ws)
        kern.tc_split = kern.tc_stages = None
        timed(f"decode (SIMT) M1 N{n}", decode, x1, ws)
        ws.clear()
        mx.clear_cache()
    ws = make_weights(mx, 12288, 4096, BITS, GROUP_SIZE, 8, bf16)
    dense = [(mx.random.normal((12288, 4096)) * 0.02).astype(bf16) for _ in range(4)]
    mx.eval(dense)
    hopper = ck.compute_capability(mx) == 9  # the fused kernel is Hopper-only
    for m in (1, 2, 4, 5, 8, 9, 12, 16):
        xm = inputs(m)
        timed(f"rows {m}: decode_tc", decode_tc, xm, ws)
        if m <= ck.DECODE_MAX_ROWS:
            timed(f"rows {m}: decode (SIMT)", decode, xm, ws)
        if m >= 5 and hopper:
            timed(f"rows {m}: fused qmm", qmm, xm, ws)
        timed(f"rows {m}: mx.quantized_matmul", mlx_q, xm, ws)
        timed(f"rows {m}: bf16 dense", dense_mm, xm, dense)
    ws.clear()
    dense.clear()
    mx.clear_cache()


def format_table(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        f"date {meta['date']}  card {meta['card']}  mlx {meta['mlx']}  arrayq {meta['arrayq']}  "
        f"python {meta['python']}",
        f"copy bandwidth (read+write): torch {meta['copy_GB_s_torch'] or float('nan'):.0f} GB/s, "
        f"mlx (x+1) {meta['copy_GB_s_mlx']:.0f} GB/s; {CALLS_PER_EVAL} calls per mx.eval, "
        f"median of {meta['samples']} samples",
        "wall: mx.eval of 32 prebuilt calls / 32; +build: making the 32 calls in Python and "
        "evaluating them, / 32; GPU: first kernel start to last kernel end of the eval / 32 (CUPTI); "
        "GB/s, % copy, TFLOP/s and x MLX from GPU (from wall without PyTorch)",
        f"{'case':<31} {'what':<24} {'wall us':>8} {'+build':>8} {'GPU us':>8} {'GB/s':>6} {'% copy':>7} "
        f"{'TFLOP/s':>8} {'x MLX':>6}  note",
    ]
    copy = meta["copy_GB_s_torch"] or meta["copy_GB_s_mlx"]
    mlx_time: dict[str, float] = {}
    for r in rows:
        time_us = r.get("gpu_us_per_call") or r["us_per_call"]
        if r["name"].startswith("mx.quantized_matmul"):
            mlx_time[r["case"]] = time_us
        note = ""
        if "rel_err_vs_dequantized" in r:
            note = f"rel err vs dequantized {r['rel_err_vs_dequantized']:.1e}"
        gpu = r.get("gpu_us_per_call")
        lines.append(
            f"{r['case']:<31} {r['name']:<24} {r['us_per_call']:>8.1f} {r['us_per_call_with_build']:>8.1f} "
            f"{gpu if gpu is not None else float('nan'):>8.1f} {r['GB_s']:>6.0f} "
            f"{100 * r['GB_s'] / copy:>6.0f}% {r['TFLOP_s']:>8.1f} "
            f"{mlx_time.get(r['case'], float('nan')) / time_us:>6.2f}  {note}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    parser.add_argument("--out", help="folder for bench_cuda.txt and bench_cuda.json")
    parser.add_argument("--check", action="store_true", help="run the kernels' correctness sweep first")
    parser.add_argument("--check-quick", action="store_true", help="with --check: only the multi-row cases")
    parser.add_argument("--tune", action="store_true", help="time kernel variants and the rows sweep")
    parser.add_argument("--no-table", action="store_true", help="skip the main table")
    args = parser.parse_args(argv)
    samples = 5 if args.quick else 15

    import mlx.core as mx

    import arrayq as aq
    from arrayq._version import __version__ as version

    try:
        aq.get_backend("mlx")
    except Exception:  # no installed entry point: register the backend from the source tree
        from arrayq_mlx import MLXBackend

        aq.register_backend("mlx", MLXBackend, replace=True)
    if not mx.cuda.is_available():
        print("MLX has no CUDA device here (needs mlx-cuda-13 and an NVIDIA GPU)", file=sys.stderr)
        return 1
    mx.set_default_device(mx.gpu)
    meta = {
        "date": datetime.date.today().isoformat(),
        "card": card_name(),
        "mlx": getattr(mx, "__version__", "unknown"),
        "arrayq": version,
        "python": platform.python_version(),
        "samples": samples,
        "calls_per_eval": CALLS_PER_EVAL,
        "group_size": GROUP_SIZE,
        "bits": BITS,
        "activations": "bfloat16",
        "scales": "bfloat16",
        "MLX_ENABLE_TF32": os.environ.get("MLX_ENABLE_TF32"),
    }
    log: list[str] = []

    def save_log() -> None:
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, "bench_cuda_log.txt"), "w") as fh:
                fh.write("\n".join(log) + "\n")

    fails = 0
    if args.check:
        with aq.default_backend("mlx", "gpu"):
            fails = check_kernels(mx, aq, log, quick=args.check_quick)
        save_log()
    meta["copy_GB_s_torch"] = copy_bandwidth_torch()
    meta["copy_GB_s_mlx"] = copy_bandwidth_mlx(mx)
    if args.tune:
        tune(mx, samples, log)
        save_log()
    rows: list[dict[str, Any]] = []
    with aq.default_backend("mlx", "gpu"):
        for label, m, k, n in [] if args.no_table else SHAPES:
            rows += bench_shape(mx, aq, label, m, k, n, samples)
            mx.clear_cache()  # the shape's weights are gone with bench_shape's frame
            print(format_table(meta, rows).splitlines()[-1], flush=True)
    table = format_table(meta, rows)
    print(table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "bench_cuda.txt"), "w") as fh:
            fh.write(table + "\n")
        with open(os.path.join(args.out, "bench_cuda.json"), "w") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=1)
    save_log()
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
