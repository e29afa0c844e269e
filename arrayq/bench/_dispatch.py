"""What going through arrayq costs per call, against the library called directly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._timing import mlx, per_op_time


def dispatch_overhead(quick: bool = False, ops: int = 1000) -> list[dict[str, Any]]:
    """What going through arrayq costs per call: ``ops`` small ops through arrayq vs the same
    ops called on the library directly, median of several repeats, per op.

    * ``add (4,)``: two 4-element float32 arrays, on NumPy; and on MLX, where the op only
      builds the lazy graph (no evaluation), so that the overhead is not hidden by compute.
    * ``quantized_matmul decode``: on MLX, x (1, 4096) times a 4-bit gs64 4096 x 4096 weight
      with float32 scales, evaluated: arrayq (argument checks, dispatch, the backend's CPU
      path) vs ``mx.quantized_matmul`` directly.

    Each arrayq row carries ``overhead_us``: its time minus the direct call's, in µs per op.
    """
    import arrayq as aq

    repeat = 5 if quick else 9
    rows: list[dict[str, Any]] = []

    def pair(case: str, lib: str, direct: Callable[[], Any], ours: Callable[[], Any], n: int) -> None:
        t_direct = per_op_time(direct, n, repeat)
        t_ours = per_op_time(ours, n, repeat)
        rows.append({"bench": "dispatch", "case": case, "name": f"{lib} directly", "median_s": t_direct, "ops": n})
        rows.append(
            {
                "bench": "dispatch",
                "case": case,
                "name": f"arrayq on {lib}",
                "median_s": t_ours,
                "ops": n,
                "overhead_us": (t_ours - t_direct) * 1e6,
            }
        )

    a = np.arange(4, dtype=np.float32)
    b = np.ones(4, dtype=np.float32)
    pair(f"add (4,) x{ops}, numpy", "numpy", lambda: np.add(a, b), lambda: aq.add(a, b), ops)

    mx = mlx()
    if mx is None:
        return rows
    am, bm = mx.array(a), mx.array(b)
    mx.eval(am, bm)
    pair(f"add (4,) x{ops}, mlx graph", "mlx", lambda: mx.add(am, bm), lambda: aq.add(am, bm), ops)

    rng = np.random.default_rng(0)
    k = n = 4096
    w = mx.array(rng.standard_normal((n, k), dtype=np.float32))
    packed, scales, biases = mx.quantize(w, group_size=64, bits=4)
    qw = aq.QuantizedWeight(packed, scales, biases, 64, 4, "affine")
    x = mx.array(rng.standard_normal((1, k), dtype=np.float32))
    mx.eval(packed, scales, biases, x)
    calls = 20 if quick else 50

    def direct_qmm() -> None:
        mx.eval(mx.quantized_matmul(x, packed, scales, biases, transpose=True, group_size=64, bits=4))

    def ours_qmm() -> None:
        aq.eval(aq.linalg.quantized_matmul(x, qw))

    pair(f"quantized_matmul decode x{calls}, mlx", "mlx", direct_qmm, ours_qmm, calls)
    return rows
