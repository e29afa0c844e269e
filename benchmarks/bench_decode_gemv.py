"""Decode GEMV speed of the NumPy backend's native kernels, per shape, path and thread count.

    python benchmarks/bench_decode_gemv.py [--level avx2] [--threads 1 2] [--rounds 7]
        [--shapes 4096x1024 ...] [--bits 4] [--group-size 64] [--format mlx|q4_0|q8_0]
        [--paths "int8 repacked" "read probe"]

For each shape (N x K: x (1, K) @ W.T), a 4-bit group-64 weight with float16 scales (the
qwen3-0.6b preset's format; ``--format q4_0``/``q8_0``: GGUF's blocks as the GGUF reader
gives them, group 32, float32 scales and biases -8 or -128 times the scale) is run through
three paths of ``arrayq_numpy._kernels``, beside a probe of the memory bandwidth:

* ``float32``: the default decode kernel on MLX's packed layout, float32 activations;
* ``int8``: the 8-bit-activation kernel on MLX's packed layout (before the repacked one);
* ``int8 repacked``: the 8-bit-activation kernel on the backend's repacked layout;
* ``read probe``: the repacked copies' bytes read on the kernels' thread pool and nothing
  else (``_kernels.pool_probe``), the speed a memory-bound kernel can reach here.

The default shapes are the qwen3-0.6b preset's decode matmuls: q/k/v (4096x1024), o
(1024x2048), gate/up (6144x1024), down (1024x3072) and the tied LM head (151936x1024).

Every call reads its weight from memory, as in a model: the benchmark cycles through
distinct copies of the weight totalling at least 256 MB (more than any cache here). Rounds
interleave the paths (one batch of calls of each path per round, in turn), so background
load hits them alike; a path's time is the median over rounds of the mean time of a call
in the round. GB/s: the bytes of the layout the path reads (codes, scales and biases)
divided by that time. Prints one table (and one JSON line per row with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import arrayq as aq
import arrayq_numpy
from arrayq_numpy import _native

CACHE_BUSTING_BYTES = 256 << 20


def _paths(level: int, qws: list, k: int, group_size: int, bits: int) -> dict:
    """name -> (bytes read per call, function(i, x, out) running the path on copy i)."""
    kern = _native._kernels
    n = qws[0].packed.shape[0]
    views = [(_native._scale_view(np.asarray(q.scales))[0], _native._scale_view(np.asarray(q.biases))[0]) for q in qws]
    kind = _native._scale_view(np.asarray(qws[0].scales))[1]
    mlx_bytes = qws[0].packed.nbytes + 2 * np.asarray(qws[0].scales).nbytes
    repacked = [_native.repack(q.packed, q.scales, q.biases, group_size, bits, level) for q in qws]
    size = repacked[0][0].nbytes

    def mlx(int8: bool):
        return lambda i, x, out: kern.gemv(
            level, x, qws[i].packed, views[i][0], views[i][1], out, 1, n, k, group_size, bits, kind, int8
        )

    return {
        # the bandwidth to beat: the same bytes as the repacked copies, read (XOR of their
        # 64-bit words) on the kernels' own thread pool, split as a call splits its rows
        "read probe": (size, lambda i, x, out: kern.pool_probe(repacked[i][0], 1 << 30)),
        "float32": (mlx_bytes, mlx(False)),
        "int8": (mlx_bytes, mlx(True)),
        "int8 repacked": (
            size,
            lambda i, x, out: kern.gemv_repacked(
                level, x, repacked[i][0], out, 1, n, k, group_size, bits, *repacked[i][1:]
            ),
        ),
    }


def _gguf_like(w: np.ndarray, bits: int) -> aq.QuantizedWeight:
    """W as the GGUF reader gives a Q4_0 (bits 4) or Q8_0 (bits 8) tensor: group 32,
    codes 0..2**bits-1, float32 scales that are float16 values, biases -2**(bits-1) * scale."""
    zero = 1 << (bits - 1)
    g = w.reshape(w.shape[0], -1, 32)
    d = (np.abs(g).max(-1) / (zero - 1)).astype(np.float16).astype(np.float32)
    codes = np.clip(np.rint(g / np.where(d > 0, d, 1)[..., None]) + zero, 0, 2 * zero - 1).astype(np.uint32)
    codes = codes.reshape(w.shape[0], -1, 32 // bits, 32 // (32 // bits))
    packed = (codes.reshape(w.shape[0], -1, 32 // bits) << (bits * np.arange(32 // bits, dtype=np.uint32))).sum(-1)
    return aq.QuantizedWeight(packed.astype(np.uint32), d, d * np.float32(-zero), 32, bits)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--level", default="avx2", help="SIMD level (arrayq_numpy._native.levels())")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--shapes", nargs="+", default=["4096x1024", "1024x2048", "6144x1024", "1024x3072", "151936x1024"])
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--group-size", type=int, default=64)
    p.add_argument("--format", choices=["mlx", "q4_0", "q8_0"], default="mlx")
    p.add_argument("--paths", nargs="+", default=None, help="run only these paths (default: all)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if _native._kernels is None:
        raise SystemExit("the native kernels were not built")
    level = _native.levels().index(a.level)
    rng = np.random.default_rng(0)
    rows = []
    for shape in a.shapes:
        n, k = (int(v) for v in shape.split("x"))
        w = rng.standard_normal((n, k), dtype=np.float32)
        if a.format == "mlx":
            qw = aq.quantize(aq.astype(w, aq.float16), group_size=a.group_size, bits=a.bits)
        else:
            qw = _gguf_like(w, 4 if a.format == "q4_0" else 8)
            a.bits, a.group_size = qw.bits, qw.group_size
        copies = max(1, -(-CACHE_BUSTING_BYTES // qw.packed.nbytes))
        qws = [qw] + [
            aq.QuantizedWeight(qw.packed.copy(), qw.scales.copy(), qw.biases.copy(), a.group_size, a.bits)
            for _ in range(copies - 1)
        ]
        paths = _paths(level, qws, k, a.group_size, a.bits)
        if a.paths:
            paths = {name: paths[name] for name in a.paths}
        x = rng.standard_normal((1, k), dtype=np.float32)
        out = np.empty((1, n), np.float32)
        for threads in a.threads:
            arrayq_numpy.set_num_threads(threads)
            times: dict[str, list[float]] = {name: [] for name in paths}
            for _ in range(a.rounds + 1):  # the first round warms up
                for name, (_, fn) in paths.items():
                    start = time.perf_counter()
                    for i in range(copies):
                        fn(i, x, out)
                    times[name].append((time.perf_counter() - start) / copies)
            for name, (nbytes, _) in paths.items():
                t = statistics.median(times[name][1:])
                rows.append(
                    {
                        "shape": shape,
                        "threads": threads,
                        "path": name,
                        "us": t * 1e6,
                        "GB/s": nbytes / t / 1e9,
                        "MB": nbytes / 1e6,
                    }
                )
    print(f"level {a.level}, {a.format} {a.bits}-bit, group {a.group_size}; medians of {a.rounds} interleaved rounds")
    print(f"{'shape':>12} {'thr':>3} {'path':>14} {'MB':>8} {'us/call':>10} {'GB/s':>7}")
    for r in rows:
        print(f"{r['shape']:>12} {r['threads']:>3} {r['path']:>14} {r['MB']:8.2f} {r['us']:10.1f} {r['GB/s']:7.1f}")
        if a.json:
            print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
