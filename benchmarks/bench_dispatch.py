"""The frontend's per-call cost of ``arrayq.linalg.quantized_matmul`` over calling the
backend's ``quantized_matmul`` directly, and inside ``arrayq.compile`` (where it is paid at
trace time only).

    python benchmarks/bench_dispatch.py [--rounds 15] [--ops 2000] [--backends numpy,mlx]

A decode-shaped call on a small weight (x (1, 1, 64), a 4-bit group-64 weight 64 x 64), so
that the kernel's own time is small and the difference between the columns is the
frontend's Python: checking x against the weight's cached facts, resolving the backend,
the empty-shape guard. On MLX the calls only build the graph (nothing is evaluated: that
is the per-call host cost a lazy backend pays); on NumPy they compute. Timings are
interleaved (each round times every column in turn) and the table shows medians over
rounds of the per-call time, and the median of the per-round differences.

The compiled column (MLX): one ``arrayq.compile``'d function making 16 dependent
quantized matmuls, called (graph built by MLX's replay, not evaluated), per quantized
matmul; the same chain calling ``mx.quantized_matmul`` directly, uncompiled, beside it.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import numpy as np

import arrayq as aq
from arrayq.bench._timing import interleaved_times


def _rows(backend: str, rounds: int, ops: int) -> dict[str, Any]:
    b = aq.get_backend(backend)
    rng = np.random.default_rng(0)
    qw = aq.to_backend(aq.quantize(rng.standard_normal((64, 64)).astype(np.float32), group_size=64, bits=4), backend)
    x = aq.to_backend(rng.standard_normal((1, 1, 64)).astype(np.float32), backend)
    fns = {
        "direct": lambda: b.quantized_matmul(x, qw, True),
        "frontend": lambda: aq.linalg.quantized_matmul(x, qw, transpose=True),
    }
    chain = 16
    if backend == "mlx":
        import mlx.core as mx

        def chained(x: Any, qw: Any) -> Any:
            for _ in range(chain):
                x = aq.linalg.quantized_matmul(x, qw, transpose=True)
            return x

        def direct_chain() -> Any:
            y = x
            for _ in range(chain):
                y = mx.quantized_matmul(y, qw.packed, qw.scales, qw.biases, transpose=True, group_size=64, bits=4)
            return y

        compiled = aq.compile(chained)
        fns["compiled (per qmm)"] = lambda: compiled(x, qw)
        fns["mx direct chain (per qmm)"] = direct_chain
    samples = interleaved_times(fns, ops, rounds)
    for name in ("compiled (per qmm)", "mx direct chain (per qmm)"):
        if name in samples:
            samples[name] = [t / chain for t in samples[name]]
    overhead = [f - d for f, d in zip(samples["frontend"], samples["direct"])]
    return {
        "backend": backend,
        **{name: statistics.median(v) for name, v in samples.items()},
        "overhead": statistics.median(overhead),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--ops", type=int, default=2000)
    parser.add_argument("--backends", default="numpy,mlx")
    args = parser.parse_args(argv)
    names = [n for n in args.backends.split(",") if any(i.name == n and i.available for i in aq.list_backends())]
    rows = [_rows(n, args.rounds, args.ops) for n in names]
    cols = ["direct", "frontend", "overhead", "compiled (per qmm)", "mx direct chain (per qmm)"]
    print(f"{'backend':8} " + " ".join(f"{c:>26}" for c in cols) + "   (microseconds per call, medians)")
    for row in rows:
        cells = [f"{row[c] * 1e6:26.2f}" if c in row else f"{'-':>26}" for c in cols]
        print(f"{row['backend']:8} " + " ".join(cells))
    print(f"\n{args.rounds} interleaved rounds of {args.ops} calls per column; x (1, 1, 64), 4-bit gs64 64 x 64.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
