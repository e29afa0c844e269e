"""The serving batch's kernels on the NumPy backend: the repacked 8-bit-activation matmul
against M (the rows of x: the sequences of a decode step), and optionally the batched
decode step itself, each beside another build of the kernels in the same process.

    python benchmarks/bench_batch_kernels.py [--level avx2] [--rounds 9]
        [--baseline OTHER_BUILD/_kernels.*.so] [--step MODEL]

Kernel table: x (M, K) @ W.T on the repacked layout (``_kernels.gemv_repacked``) for
M = 1, 2, 4, 8 at the qwen3-0.6b preset's shapes (q/k/v, o, gate/up, down, the tied LM
head; 4-bit, group 64, bfloat16 scales), on one thread, timed in the calling thread's CPU
time (``time.thread_time``: another process taking the core does not count, which a wall
clock on a shared machine would), median over rounds. Each row: microseconds a call and
the ratio to M = 1. With ``--baseline``, that build (an ``arrayq_numpy._kernels`` shared
library, e.g. copied from a checkout of the previous commit) runs beside this one,
interleaved round by round, and the table adds new / baseline at M = 1 and M = 8 and
whether both gave the same floats (they should: the integer dot products are exact).

``--step MODEL`` also times ``arrayq.serving.decode_step`` at B = 1 and B = 8 (16+
positions cached per sequence) with each build swapped in as the backend's kernels, two
threads, wall clock, median of the interleaved rounds; the part inside the quantized
matmuls is timed around the kernel calls. Set ``ARRAYQ_NATIVE_ACTIVATIONS=int8`` (and
``ARRAYQ_NATIVE`` for the level) in the environment for the step.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

import arrayq as aq
from arrayq_numpy import _native

SHAPES = {"qkv": (4096, 1024), "o": (1024, 2048), "gate_up": (6144, 1024), "down": (1024, 3072), "head": (151936, 1024)}
ROWS = (1, 2, 4, 8)


def load_build(path: str) -> Any:
    """Another build of ``arrayq_numpy._kernels`` as a module of its own."""
    spec = importlib.util.spec_from_file_location("baseline._kernels", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def kernel_table(builds: dict[str, Any], level_name: str, rounds: int) -> None:
    rng = np.random.default_rng(0)
    for kern in builds.values():
        kern.set_num_threads(1)
    print(f"\nrepacked int8 matmul, level {level_name}, 1 thread, CPU µs a call (median of {rounds}), × M = 1")
    cols = " | ".join(f"M={m}" for m in ROWS)
    extra = " new/base M=1 | new/base M=8 | same |" if len(builds) > 1 else ""
    print(f"| weight | build | {cols} |{extra}")
    print("|---|---|" + "---:|" * len(ROWS) + ("---:|---:|---|" if extra else ""))
    for name, (n, k) in SHAPES.items():
        w = aq.astype(rng.standard_normal((n, k), dtype=np.float32), aq.bfloat16)
        qw = aq.quantize(w, group_size=64, bits=4)
        scales, kind = _native._scale_view(np.asarray(qw.scales))
        biases = _native._scale_view(np.asarray(qw.biases))[0]
        xs = {m: rng.standard_normal((m, k)).astype(np.float32) for m in ROWS}
        runs = {}
        for b, kern in builds.items():
            level = list(kern.levels()).index(level_name)
            data = np.empty(kern.repacked_size(level, n, k, 64, 4, kind, False), np.uint8)
            kern.repack(level, np.asarray(qw.packed), scales, biases, data, n, k, 64, 4, kind, False)
            runs[b] = (kern, level, data)
        reps = 3 if n * k > 1 << 26 else 20
        times: dict[tuple[str, int], list[float]] = {(b, m): [] for b in builds for m in ROWS}
        outs: dict[str, np.ndarray] = {}
        for r in range(rounds + 1):  # the first round warms up
            for b, (kern, level, data) in runs.items():
                for m, x in xs.items():
                    out = np.empty((m, n), np.float32)
                    start = time.thread_time()
                    for _ in range(reps):
                        kern.gemv_repacked(level, x, data, out, m, n, k, 64, 4, kind, False)
                    if r:
                        times[(b, m)].append((time.thread_time() - start) / reps * 1e6)
                    outs[b] = out
        med = {key: statistics.median(t) for key, t in times.items()}
        for b in builds:
            cells = " | ".join(f"{med[(b, m)]:.1f} ({med[(b, m)] / med[(b, 1)]:.2f}×)" for m in ROWS)
            row = f"| {name} {n}×{k} | {b} | {cells} |"
            if extra and b == "new":
                same = np.array_equal(outs["new"], outs["baseline"])
                ratio = {m: med[("new", m)] / med[("baseline", m)] for m in (1, 8)}
                row += f" {ratio[1]:.3f} | {ratio[8]:.3f} | {same} |"
            elif extra:
                row += " | | |"
            print(row, flush=True)


def step_table(builds: dict[str, Any], model_dir: str, rounds: int) -> None:
    from _batch_step import filled_caches, timed

    from arrayq import models
    from arrayq.serving import decode_step

    model = models.load(model_dir, backend="numpy")
    like = model.layers[0].self_attn.o_proj.weight.scales
    sizes = (1, 8)
    caches = filled_caches(model, sizes, like)
    start_lengths = {b: list(caches[b].lengths) for b in sizes}
    inside = [0.0]

    class Timed:
        """A build with its matmul entry points timed (the rest passed through)."""

        def __init__(self, kern: Any):
            self._kern = kern

        def __getattr__(self, attr: str) -> Any:
            real = getattr(self._kern, attr)
            return timed(real, inside) if attr in ("gemv", "gemv_repacked") else real

    for kern in builds.values():
        kern.set_num_threads(2)
    own = _native._kernels
    times: dict[tuple[str, int], list[tuple[float, float]]] = {(b, s): [] for b in builds for s in sizes}
    try:
        for r in range(rounds + 1):
            for b, kern in builds.items():
                _native._kernels = Timed(kern)
                for s in sizes:
                    inside[0] = 0.0
                    t0 = time.perf_counter()
                    aq.to_numpy(decode_step(model, [5] * s, caches[s], like))
                    if r:
                        times[(b, s)].append((time.perf_counter() - t0, inside[0]))
                    if max(caches[s].lengths) > 200:  # keep the contexts short and alike
                        caches[s].lengths[:] = start_lengths[s]
                time.sleep(0.005)  # the other build's pool goes idle
    finally:
        _native._kernels = own
    mode = f"{_native.level()}, {_native.current_activations()} activations"
    print(f"\ndecode_step, {mode}, 2 threads, ms (median of {rounds})")
    print("| build | B=1 step | B=1 kernels | B=8 step | B=8 kernels | B=8 rest | kernels B8/B1 | rate B=8 vs B=1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for b in builds:
        (t1, k1), (t8, k8) = ([statistics.median(v[i] for v in times[(b, s)]) for i in (0, 1)] for s in sizes)
        print(
            f"| {b} | {t1 * 1e3:.1f} | {k1 * 1e3:.1f} | {t8 * 1e3:.1f} | {k8 * 1e3:.1f} | {(t8 - k8) * 1e3:.1f} | "
            f"{k8 / k1:.2f}× | {8 * t1 / t8:.2f}× |"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--level", default="avx2", help="SIMD level of the kernel table (arrayq_numpy._native.levels())")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--baseline", help="another build's _kernels shared library, run beside this one")
    p.add_argument("--step", metavar="MODEL", help="also time decode_step at B = 1 and 8 on this checkpoint")
    a = p.parse_args(argv)
    if _native._kernels is None:
        raise SystemExit("the native kernels were not built")
    builds: dict[str, Any] = {}
    if a.baseline:
        builds["baseline"] = load_build(str(Path(a.baseline)))
    builds["new" if a.baseline else "this"] = _native._kernels
    kernel_table(builds, a.level, a.rounds)
    if a.step:
        step_table(builds, a.step, 2 * a.rounds + 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
