"""How the benchmarks measure: medians of repeated calls, the peak memory a call adds, and
the machine's copy bandwidth (decode's memory floor)."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from types import ModuleType
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


def per_op_time(op: Callable[[], Any], ops: int = 1000, repeat: int = 7) -> float:
    """Median over ``repeat`` runs of the time of ``ops`` calls of ``op``, divided by ``ops``."""
    return median_time(lambda: [op() for _ in range(ops)], repeat) / ops


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


def mlx() -> ModuleType | None:
    """``mlx.core``, or None where MLX is not installed."""
    try:
        import mlx.core as mx
    except ImportError:
        return None
    return mx


def interleaved_times(fns: dict[str, Callable[[], Any]], ops: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each of ``fns``, one sample per round: each round times ``ops``
    calls of every function in turn, so that the machine's drift hits them all alike (pair
    samples of one round to compare two of them)."""
    for fn in fns.values():
        fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(ops):
                fn()
            samples[name].append((time.perf_counter() - t0) / ops)
    return samples
