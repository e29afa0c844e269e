"""A recorded plan's native steps on tiny arrays: what a replay pays around each kernel call.

    ARRAYQ_NATIVE=avx512 python benchmarks/bench_replay_steps.py [--calls 5000] [--runs 9]

Each op (8-bit ``quantized_matmul``, ``add_rms_norm``, ``swiglu_halves``, ``qkv_heads``,
``prefix_attention``) is compiled alone on arrays so small that its kernel's own work is a
fraction of a microsecond; its plan's step (the NumPy backend's replay form) is then called
``--calls`` times in a loop, ``--runs`` times, and the median time a call is printed. Caches
stay warm here (in a decode step each call follows a matmul that streamed megabytes of
weights: there the same code costs about twice as much; benchmarks/profile_plan_steps.py).
To compare two trees, run it from each alternately (``PYTHONPATH=<tree>:<tree>/backends``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=5000)
    p.add_argument("--runs", type=int, default=9)
    args = p.parse_args(argv)

    import numpy as np

    import arrayq as aq
    from arrayq import nn
    from arrayq_numpy import _native

    rng = np.random.default_rng(0)

    def f32(*shape: int) -> Any:
        return rng.standard_normal(shape).astype(np.float32)

    weight, norm = aq.quantize(f32(32, 64), group_size=64, bits=4), f32(64) + 3
    qw, kw = f32(16) + 3, f32(16) + 3
    cases: dict[str, tuple[Any, list[Any]]] = {
        "quantized_matmul": (lambda x: aq.linalg.quantized_matmul(x, weight, transpose=True), [f32(1, 1, 64)]),
        "add_rms_norm": (lambda x, y: nn.add_rms_norm(x, y, norm, 1e-6), [f32(1, 1, 64), f32(1, 1, 64)]),
        "swiglu_halves": (nn.swiglu, [f32(1, 1, 128)]),
        "qkv_heads": (
            lambda qkv, at: nn.qkv_heads(qkv, 2, 1, 16, q_weight=qw, k_weight=kw, eps=1e-6, rope_dims=16, offset=at),
            [f32(1, 1, 64), np.array(40, np.int32)],
        ),
        "prefix_attention": (
            lambda q, k, v, n: nn.scaled_dot_product_attention(q, k, v, scale=0.25, mask="causal", key_length=n),
            [f32(1, 2, 1, 16), f32(1, 1, 64, 16), f32(1, 1, 64, 16), np.array(8, np.int32)],
        ),
    }
    print(f"load average {os.getloadavg()[0]:.1f}; level {_native.level()}; us a call, median of {args.runs}")
    with _native.activations("int8"):
        for name, (fn, inputs) in cases.items():
            compiled = aq.compile(fn)
            compiled(*inputs)
            (entry,) = compiled._cache.values()
            steps = [s for s in entry.run.steps if name in getattr(s[0], "__qualname__", "")]
            if not steps:
                print(f"{name:18} (no replay form here)")
                continue
            step, places, _ = steps[0]
            if max(places) >= len(inputs):
                print(f"{name:18} (its step reads another step's result)")
                continue
            step_args = [inputs[p] for p in places]  # (a one-op plan: its step reads the inputs)
            runs = []
            for _ in range(args.runs):
                t = time.perf_counter_ns()
                for _ in range(args.calls):
                    step(*step_args)
                runs.append((time.perf_counter_ns() - t) / args.calls)
            print(f"{name:18}{statistics.median(runs) / 1e3:8.2f}  ({type(step).__name__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
