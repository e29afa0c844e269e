"""What going through arrayq costs per call, against the library called directly."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import numpy as np

from ._timing import interleaved_times, mlx, per_op_time


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
    return rows + frontend_overhead(quick)


#: The decode shape of the qwen3-0.6b preset's attention output projection: x (1, 1024)
#: times a 3072 x 1024 (N x K) 4-bit, group 64 weight.
FRONTEND_SHAPE = (1, 1024, 3072)


def frontend_overhead(quick: bool = False) -> list[dict[str, Any]]:
    """What arrayq's frontend costs per call over the backend's own op, for the quantized
    ops a decoder calls every token, at :data:`FRONTEND_SHAPE` (4-bit, group 64; ``gather_qmm``
    with 4 experts of that shape and one index each; ``dequantize`` of the weight).

    Rows per backend (NumPy, and MLX where installed; on MLX the ops only build the lazy
    graph, so the Python cost is not hidden by the kernel): ``<lib> directly`` (MLX's own
    ``mx.quantized_matmul``), ``<lib> backend op`` (``backend.quantized_matmul(x, qw,
    transpose)``, what the frontend calls after its checks) and ``arrayq on <lib>``
    (``arrayq.linalg.quantized_matmul(x, qw)``; ``nn.QuantizedLinear`` through it). The
    three are timed interleaved, round by round. ``overhead_us`` is the frontend row's median
    minus its backend row's median; ``frontend_us`` is the frontend alone, measured with the
    backend's op replaced for the measurement by one returning a ready result, minus that
    replacement's own call (precise where the kernel's time varies more than the frontend
    costs: on NumPy it computes for ~200 µs)."""
    rounds, ops_fast, ops_slow = (9, 200, 5) if quick else (31, 2000, 40)
    rows: list[dict[str, Any]] = []
    rows += _frontend_rows("numpy", np.asarray, None, ops_slow, ops_fast, rounds)
    mx = mlx()
    if mx is not None:
        rows += _frontend_rows("mlx", mx.array, mx, ops_fast, ops_fast, rounds)
    return rows


def _frontend_rows(lib: str, array: Any, mx: Any, ops: int, ops_alone: int, rounds: int) -> list[dict[str, Any]]:
    """:func:`frontend_overhead`'s rows for one backend (``mx``: mlx.core, or None)."""
    import arrayq as aq

    m, k, n = FRONTEND_SHAPE
    rng = np.random.default_rng(0)
    backend = aq.get_backend(lib)
    x = array(rng.standard_normal((m, k), dtype=np.float32))
    qw = aq.quantize(array(rng.standard_normal((n, k), dtype=np.float32)), group_size=64, bits=4)
    packed, scales, biases = (aq.stack([a] * 4) for a in (qw.packed, qw.scales, qw.biases))
    experts = aq.QuantizedWeight(packed, scales, biases, qw.group_size, qw.bits, qw.mode)
    x3, idx = aq.expand_dims(x, axis=0), array(np.array([2], np.uint32))
    layer = aq.nn.QuantizedLinear(qw)

    def direct_qmm() -> Any:
        return mx.quantized_matmul(x, qw.packed, qw.scales, qw.biases, transpose=True, group_size=64, bits=4)

    cases: list[tuple[str, str, Callable[[], Any], Callable[[], Any], Callable[[], Any] | None]] = [
        (
            "quantized_matmul",
            "quantized_matmul",
            lambda: backend.quantized_matmul(x, qw, True),
            lambda: aq.linalg.quantized_matmul(x, qw),
            direct_qmm if mx is not None else None,
        ),
        ("QuantizedLinear", "quantized_matmul", lambda: backend.quantized_matmul(x, qw, True), lambda: layer(x), None),
        (
            "gather_qmm",
            "gather_qmm",
            lambda: backend.gather_qmm(x3, experts, None, idx, True),
            lambda: aq.linalg.gather_qmm(x3, experts, rhs_indices=idx),
            None,
        ),
    ]
    if mx is not None:  # NumPy's dequantize is the reference, on the frontend's side of the line
        cases.append(
            ("dequantize", "dequantize", lambda: backend.dequantize(qw, aq.float32), lambda: aq.dequantize(qw), None)
        )
    rows: list[dict[str, Any]] = []
    for op, method, back, front, direct in cases:
        case = f"{op} {m}x{k} · {n}x{k} 4-bit, {lib}" + (" graph" if mx is not None else "")
        fns = {"front": front, "back": back} | ({"direct": direct} if direct is not None else {})
        med = {name: statistics.median(t) for name, t in interleaved_times(fns, ops, rounds).items()}
        alone = _frontend_alone(backend, method, front, ops_alone, rounds)
        common = {"bench": "dispatch", "case": case, "ops": ops}
        if direct is not None:
            rows.append({**common, "name": f"{lib} directly", "median_s": med["direct"]})
        rows.append({**common, "name": f"{lib} backend op", "median_s": med["back"]})
        rows.append(
            {
                **common,
                "name": f"arrayq on {lib}",
                "median_s": med["front"],
                "overhead_us": (med["front"] - med["back"]) * 1e6,
                "frontend_us": alone * 1e6,
            }
        )
    return rows


def _frontend_alone(backend: Any, method: str, front: Callable[[], Any], ops: int, rounds: int) -> float:
    """Seconds per call of ``front`` beyond ``backend.<method>`` when that op does nothing
    but return a result it computed once (set on the instance for the measurement, then
    removed)."""
    ready = getattr(backend, method)
    result = front()

    def stub(*args: Any) -> Any:
        return result

    stub_direct = stub
    setattr(backend, method, stub)
    try:
        times = interleaved_times({"front": front, "stub": lambda: stub_direct(None, None, None)}, ops, rounds)
    finally:
        delattr(backend, method)
    assert getattr(backend, method) == ready
    return statistics.median(f - s for f, s in zip(times["front"], times["stub"]))
