"""Benchmarks, measured side by side in one run (``arrayq bench`` prints them).

Each benchmark returns rows of ``{"name", "median_s", ...}``; ratios are computed between
rows of the same run only. Medians of several repetitions; machines are noisy, so no
benchmark asserts anything.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np


def median_time(fn: Callable[[], Any], repeat: int = 5, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_extra_bytes(fn: Callable[[], Any]) -> int:
    """Peak memory allocated while ``fn()`` runs, beyond what was allocated before it
    (NumPy reports its buffers to tracemalloc), not counting the result it returns."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    out = fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    result = getattr(out, "nbytes", 0)
    return max(0, peak - base - result)


def copy_bandwidth(nbytes: int = 1 << 28) -> float:
    """Measured read+write bandwidth of a large NumPy copy, bytes per second."""
    src = np.ones(nbytes // 8, np.float64)
    dst = np.empty_like(src)
    seconds = median_time(lambda: np.copyto(dst, src), repeat=5)
    return 2 * nbytes / seconds


def quantized_matmul(n: int = 12288, k: int = 4096, prefill: int = 128, quick: bool = False) -> list[dict[str, Any]]:
    """4-bit gs64 weight n x k with bfloat16 scales (as checkpoints ship): arrayq on NumPy
    vs mlx.core.quantized_matmul on the CPU (float32 and bfloat16 scales) vs a NumPy
    float32 matmul with the weight dequantized in advance. ``quick`` skips MLX's
    bfloat16 prefill, which takes over a minute."""
    import ml_dtypes

    import arrayq as aq

    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, k), dtype=np.float32).astype(ml_dtypes.bfloat16)
    qw = aq.quantize(w, group_size=64, bits=4)
    dense = aq.dequantize(qw, dtype=aq.float32)
    rows = []
    try:
        import mlx.core as mx
    except ImportError:
        mx = None
    for m in (1, prefill):
        x = rng.standard_normal((m, k), dtype=np.float32)
        label = f"{'decode' if m == 1 else 'prefill'} x({m},{k})"
        repeat = 7 if m == 1 else 3
        rows.append(
            {
                "case": label,
                "name": "arrayq numpy",
                "median_s": median_time(lambda: aq.linalg.quantized_matmul(x, qw), repeat),
                "peak_extra_MiB": peak_extra_bytes(lambda: aq.linalg.quantized_matmul(x, qw)) / 2**20,
            }
        )
        rows.append(
            {
                "case": label,
                "name": "numpy f32 matmul, dequantized in advance",
                "median_s": median_time(lambda: x @ dense.T, repeat),
            }
        )
        if mx is not None:
            packed = mx.array(qw.packed)
            for scale_name, dtype in (("float32", mx.float32), ("bfloat16", mx.bfloat16)):
                if quick and m > 1 and scale_name == "bfloat16":
                    continue
                s = mx.array(qw.scales.astype(np.float32)).astype(dtype)
                b = mx.array(qw.biases.astype(np.float32)).astype(dtype)
                xm = mx.array(x).astype(dtype)
                mx.eval(packed, s, b, xm)

                def run(xm=xm, s=s, b=b):
                    mx.eval(mx.quantized_matmul(xm, packed, s, b, transpose=True, group_size=64, bits=4))

                rows.append(
                    {
                        "case": label,
                        "name": f"mlx cpu, {scale_name} scales",
                        "median_s": median_time(run, repeat if m == 1 else 1),
                    }
                )
    return rows


def format_table(rows: list[dict[str, Any]], baseline: str = "arrayq numpy") -> str:
    """A text table; each row's ``vs arrayq`` is its time over the baseline's time in the
    same case (so > 1 means arrayq is faster)."""
    lines = [f"{'case':<20} {'implementation':<42} {'median':>10} {'vs arrayq':>10} {'peak extra':>11}"]
    base = {r["case"]: r["median_s"] for r in rows if r["name"] == baseline}
    for r in rows:
        ratio = r["median_s"] / base[r["case"]] if r["case"] in base else float("nan")
        peak = f"{r['peak_extra_MiB']:.1f} MiB" if "peak_extra_MiB" in r else ""
        lines.append(f"{r['case']:<20} {r['name']:<42} {r['median_s'] * 1e3:>8.1f}ms {ratio:>9.2f}x {peak:>11}")
    return "\n".join(lines)
