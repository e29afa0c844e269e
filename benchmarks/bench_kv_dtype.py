"""Decode attention over a float16 KV cache against the shipped float32 kernel, in one
process: the NumPy backend's ``_kernels.attention`` (one thread), the float32 loop of
``benchmarks/kv_dtype_attention.c`` (its restatement of that kernel) and the same loop
reading float16 keys and values (F16C), called in turn on each of 28 layers' caches.

    python benchmarks/bench_kv_dtype.py [--rounds 15]

Needs a C compiler and an AVX-512 CPU with F16C (the C file is built as a shared library
with ``-march=native`` in a temporary folder). q (B, 16, 1, 128), k and v (B, 8, S, 128)
from a normal distribution, B = 1 and 8, S = 64 and 256; 12 MiB of other memory read
before each call (a layer's weights), so the caches come from memory. Prints per-call
medians over rounds (µs), the ratios, and the largest difference between the shipped
kernel's output and the copy's (the copy should compute the same floats up to the order of
its sums).
"""

from __future__ import annotations

import argparse
import ctypes
import pathlib
import statistics
import subprocess
import tempfile
import time
from typing import Any

import numpy as np

from arrayq_numpy import _native

SOURCE = pathlib.Path(__file__).with_name("kv_dtype_attention.c")
NAMES = ("shipped", "copy f32", "f16")


def build(folder: str) -> ctypes.CDLL:
    """The C file as a shared library, its two group loops typed."""
    lib = pathlib.Path(folder) / "kvd.so"
    subprocess.run(["cc", "-O3", "-march=native", "-shared", "-fPIC", "-o", str(lib), str(SOURCE), "-lm"], check=True)
    dll = ctypes.CDLL(str(lib))
    for f in (dll.groups_f32, dll.groups_f16):
        f.argtypes = [ctypes.c_int64, ctypes.c_int64] + [ctypes.c_void_p] * 5
    return dll


def measure(kern: Any, dll: ctypes.CDLL, b: int, s: int, rounds: int) -> tuple[dict[str, float], float]:
    """Per-call medians (µs) of the three at batch ``b`` and ``s`` keys, and the largest
    difference between the shipped kernel's output and the copy's."""
    rng, junk = np.random.default_rng(b * 1000 + s), np.ones(3 << 20, np.float32)
    layers = []
    for _ in range(28):
        q = rng.standard_normal((b, 16, 1, 128), np.float32)
        k, v = (rng.standard_normal((b, 8, s, 128), np.float32) for _ in range(2))
        layers.append((q, k, v, k.astype(np.float16), v.astype(np.float16)))
    out, out2 = (np.empty((b, 16, 1, 128), np.float32) for _ in range(2))
    scores = np.empty(s, np.float32)

    def call(name: str, q: np.ndarray, k: np.ndarray, v: np.ndarray, k16: np.ndarray, v16: np.ndarray) -> None:
        if name == "shipped":
            kern.attention(0, q, k, v, out, 0.088, False)
            return
        kk, vv, f = (k, v, dll.groups_f32) if name == "copy f32" else (k16, v16, dll.groups_f16)
        f(b, s, q.ctypes.data, kk.ctypes.data, vv.ctypes.data, out2.ctypes.data, scores.ctypes.data)

    times: dict[str, list[float]] = {n: [] for n in NAMES}
    for r in range(rounds):
        total = dict.fromkeys(NAMES, 0.0)
        for layer in layers:
            for name in NAMES if r % 2 else NAMES[::-1]:
                junk.sum()
                t0 = time.perf_counter()
                call(name, *layer)
                total[name] += time.perf_counter() - t0
        for name in NAMES:
            times[name].append(total[name] / len(layers) * 1e6)
    call("shipped", *layers[0])
    call("copy f32", *layers[0])
    return {n: statistics.median(t) for n, t in times.items()}, float(np.abs(out - out2).max())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=15)
    args = p.parse_args()
    kern = _native._kernels
    assert kern is not None, "the NumPy backend's native kernels are not built"
    kern.set_num_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        dll = build(folder)
        print(f"level {kern.levels()[0]}, 1 thread, µs a call (median of {args.rounds} rounds of 28 layers)")
        print(
            f"{'B':>2} {'keys':>5} {'shipped':>9} {'copy f32':>9} {'f16':>9} {'shipped/f16':>12} {'copy/f16':>9} diff"
        )
        for b in (1, 8):
            for s in (64, 256):
                m, diff = measure(kern, dll, b, s, args.rounds)
                print(
                    f"{b:>2} {s:>5} {m['shipped']:>9.1f} {m['copy f32']:>9.1f} {m['f16']:>9.1f}"
                    f" {m['shipped'] / m['f16']:>12.2f} {m['copy f32'] / m['f16']:>9.2f} {diff:.1e}"
                )


if __name__ == "__main__":
    main()
