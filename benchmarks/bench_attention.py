"""The NumPy backend's decode attention kernel (``_kernels.attention``) at decode shapes,
beside another build of the kernels in the same process.

    python benchmarks/bench_attention.py [--baseline OTHER_BUILD/_kernels.*.so] [--rounds 15]
        [--threads 2] [--level avx2] [--kv-dtype float16]

q (B, 16, 1, 128) against 32 to 256 keys of 8 kv heads (the qwen3-0.6b preset's decode),
keys and values as views into longer cache buffers as the fixed-size KV cache hands them
over, one cache per layer for 28 layers called in turn (as decode does: a layer's keys are
no longer in cache when its turn comes again); B = 1 (one sequence) and B = 8 (a serving
batch: each sequence its own key count, from half the keys to all of them, through
``lengths``). Wall-clock microseconds a call (the kernel may use the thread pool; with
``--threads 1``, the calling thread's CPU time), median
over rounds of 8 passes over the layers; with
``--baseline`` that build (e.g. copied from a checkout of the previous commit) runs
interleaved round by round (the order alternating), and the table adds new / baseline and whether both gave the
same floats (they should: each row is computed the same way on any thread). A pause
between rounds lets the pool's spinning workers go idle before the other build's round.
``--kv-dtype float16`` adds this build reading the same keys and values rounded to float16
(a float16 KV cache), interleaved too: the table adds its time and float32 / float16.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

from arrayq_numpy import _native

HEADS, KV_HEADS, HEAD_DIM, LAYERS, PASSES = 16, 8, 128, 28, 8
KEYS = (32, 64, 128, 256)


def case(b: int, keys: int, dtype: Any = np.float32) -> list[tuple[np.ndarray, ...]]:
    """Each layer's (q, k, v[, lengths]), k and v stored in ``dtype``."""
    rng = np.random.default_rng(keys * 10 + b)
    lengths = (np.linspace(keys // 2, keys, b).astype(np.int64),) if b > 1 else ()
    layers = []
    for _ in range(LAYERS):
        q = rng.standard_normal((b, HEADS, 1, HEAD_DIM)).astype(np.float32)
        k, v = (rng.standard_normal((b, KV_HEADS, keys + 16, HEAD_DIM)).astype(dtype) for _ in range(2))
        layers.append((q, k[:, :, :keys], v[:, :, :keys], *lengths))
    return layers


def timed(kern: Any, level: int, layers: list[tuple[np.ndarray, ...]], outs: list[np.ndarray], clock: Any) -> float:
    t = clock()
    for _ in range(PASSES):
        for (q, k, v, *lengths), out in zip(layers, outs, strict=True):
            kern.attention(level, q, k, v, out, 0.088, False, *lengths)
    return (clock() - t) / (PASSES * LAYERS) * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", help="another build's _kernels shared library")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--level", help="SIMD level name (default: the best this CPU runs)")
    p.add_argument("--kv-dtype", help="also this build on keys and values of this dtype (float16)")
    args = p.parse_args()
    assert _native._kernels is not None, "the native kernels are not built"
    builds = {"new": _native._kernels}
    if args.baseline:
        from bench_batch_kernels import load_build  # (this folder, as the script's own)

        builds["base"] = load_build(args.baseline)
    if args.kv_dtype:
        builds["half"] = _native._kernels  # (the same build, on the narrower keys and values)
    names = _native._kernels.levels()
    level = names.index(args.level) if args.level else 0
    for kern in builds.values():
        kern.set_num_threads(args.threads)
    # (one thread: its CPU time, which another process's load on the cores does not inflate)
    clock, kind = (time.thread_time, "CPU") if args.threads == 1 else (time.perf_counter, "wall")
    what = f"{args.threads} threads, {kind} µs a call (median of {args.rounds} rounds of {PASSES} x {LAYERS} layers)"
    print(f"attention, level {names[level]}, {what}")
    extra = " base | new/base | same |" if "base" in builds else ""
    half = f" new, {args.kv_dtype} K/V | float32 / {args.kv_dtype} |" if "half" in builds else ""
    print(f"| B | keys | new |{extra}{half}")
    print("|---:|---:|---:|" + ("---:|---:|---|" if extra else "") + ("---:|---:|" if half else ""))
    for b in (1, 8):
        for keys in KEYS:
            data = {name: case(b, keys, args.kv_dtype if name == "half" else np.float32) for name in builds}
            outs = {name: [np.empty((b, HEADS, 1, HEAD_DIM), np.float32) for _ in range(LAYERS)] for name in builds}
            times: dict[str, list[float]] = {name: [] for name in builds}
            for r in range(args.rounds):
                for name, kern in list(builds.items())[:: 1 if r % 2 else -1]:  # (order alternating)
                    time.sleep(0.005)
                    times[name].append(timed(kern, level, data[name], outs[name], clock))
            med = {name: statistics.median(ts) for name, ts in times.items()}
            row = f"| {b} | {keys} | {med['new']:.1f} |"
            if "base" in builds:
                same = all(np.array_equal(n, o) for n, o in zip(outs["new"], outs["base"]))
                row += f" {med['base']:.1f} | {med['new'] / med['base']:.2f} | {'yes' if same else 'NO'} |"
            if "half" in builds:
                row += f" {med['half']:.1f} | {med['new'] / med['half']:.2f} |"
            print(row)


if __name__ == "__main__":
    main()
