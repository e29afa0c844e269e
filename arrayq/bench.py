"""Benchmarks, measured side by side in one run (``arrayq bench`` prints them).

Each benchmark returns rows of ``{"bench", "case", "name", ...}``: ``median_s`` (the median
of several repetitions, seconds per call or per op) for ``quantized`` and ``dispatch``,
tokens per second for ``generate``. Ratios and overheads are computed between rows of the
same run only; machines are noisy, so no benchmark asserts anything.

On machines that set ``OPENBLAS_CORETYPE`` (an old-OpenBLAS workaround that slows current
NumPy), benchmark NumPy with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""

from __future__ import annotations

import gc
import importlib.util
import itertools
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
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
    (its default path, the native kernels where they were built; with 8-bit activations;
    the pure-NumPy path) vs mlx.core.quantized_matmul on the CPU (float32 and bfloat16
    scales) vs a NumPy float32 matmul with the weight dequantized in advance, and the
    memory floor of decode: the weight's bytes at the copy bandwidth measured in this run
    (``copy_bandwidth``). Decode cycles through copies of the weight that together exceed
    the CPU's caches, so every call reads its weight from memory, as in a model. ``quick``
    skips MLX's bfloat16 prefill, which takes over a minute."""
    import ml_dtypes

    import arrayq as aq
    from arrayq_numpy import _native
    from arrayq_numpy._quantized import affine_matmul

    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, k), dtype=np.float32).astype(ml_dtypes.bfloat16)
    qw = aq.quantize(w, group_size=64, bits=4)
    dense = aq.dequantize(qw, dtype=aq.float32)
    # distinct copies, 256 MiB in all: more than any CPU cache, so decode reads from memory
    copies = [qw] + [
        aq.QuantizedWeight(qw.packed.copy(), qw.scales.copy(), qw.biases.copy(), 64, 4)
        for _ in range(max(1, (256 << 20) // qw.nbytes) - 1)
    ]
    bandwidth = copy_bandwidth()
    rows: list[dict[str, Any]] = []
    mx = _mlx()
    for m in (1, prefill):
        x = rng.standard_normal((m, k), dtype=np.float32)
        decode = m == 1
        label = f"{'decode' if decode else 'prefill'} x({m},{k})"
        repeat = 15 if decode else 3
        cycle = itertools.cycle(copies if decode else [qw])

        def ours(x: np.ndarray = x, cycle: Any = cycle) -> Any:
            return aq.linalg.quantized_matmul(x, next(cycle))

        def ours_int8(x: np.ndarray = x, cycle: Any = cycle) -> Any:
            with _native.activations("int8"):
                return aq.linalg.quantized_matmul(x, next(cycle))

        def pure_numpy(x: np.ndarray = x, cycle: Any = cycle) -> Any:
            w = next(cycle)
            return affine_matmul(x, w.packed, w.scales, w.biases, True, 64, 4)

        def dense_matmul(x: np.ndarray = x) -> Any:
            return x @ dense.T

        rows.append(
            {
                "bench": "quantized",
                "case": label,
                "name": "arrayq numpy",
                "median_s": median_time(ours, repeat),
                "peak_extra_MiB": peak_extra_bytes(ours) / 2**20,
            }
        )
        if decode and _native.level():
            rows.append(
                {
                    "bench": "quantized",
                    "case": label,
                    "name": "arrayq numpy, int8 activations",
                    "median_s": median_time(ours_int8, repeat),
                }
            )
        if _native.level() and not (quick and not decode):
            rows.append(
                {
                    "bench": "quantized",
                    "case": label,
                    "name": "arrayq numpy, pure-NumPy path",
                    "median_s": median_time(pure_numpy, repeat if decode else 1),
                }
            )
        rows.append(
            {
                "bench": "quantized",
                "case": label,
                "name": "numpy f32 matmul, dequantized in advance",
                "median_s": median_time(dense_matmul, repeat),
            }
        )
        if decode:
            rows.append(
                {
                    "bench": "quantized",
                    "case": label,
                    "name": "memory floor (weight bytes / copy bandwidth)",
                    "median_s": qw.nbytes / bandwidth,
                    "bandwidth_GBps": bandwidth / 1e9,
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

                def run(xm: Any = xm, s: Any = s, b: Any = b, packed: Any = packed) -> None:
                    mx.eval(mx.quantized_matmul(xm, packed, s, b, transpose=True, group_size=64, bits=4))

                rows.append(
                    {
                        "bench": "quantized",
                        "case": label,
                        "name": f"mlx cpu, {scale_name} scales",
                        "median_s": median_time(run, repeat if m == 1 else 1),
                    }
                )
    return rows + experts(rng, mx)


def experts(rng: np.random.Generator, mx: ModuleType | None) -> list[dict[str, Any]]:
    """A mixture-of-experts decode step: one token's top-4 of 16 experts (1536 x 2048, 4-bit
    gs64) through ``gather_qmm``: arrayq on NumPy (each expert's rows in one fast-path call),
    the blockwise reference it replaces, and ``mlx.core.gather_qmm`` on the CPU."""
    import arrayq as aq
    from arrayq.backend import Backend

    qw = aq.quantize((rng.standard_normal((16, 1536, 2048)) * 0.02).astype(np.float32), group_size=64, bits=4)
    x = rng.standard_normal((1, 1, 2048)).astype(np.float32)
    lhs = np.zeros((1, 4), np.int32)
    rhs = np.array([[3, 7, 11, 12]], np.int32)
    numpy_backend = aq.get_backend("numpy")
    label = "experts top-4 x(1)"

    def ours() -> Any:
        return aq.linalg.gather_qmm(x, qw, lhs_indices=lhs, rhs_indices=rhs)

    def reference() -> Any:
        return Backend.gather_qmm(numpy_backend, x, qw.packed, qw.scales, qw.biases, lhs, rhs, True, 64, 4, "affine")

    rows = [
        {"bench": "quantized", "case": label, "name": "arrayq numpy", "median_s": median_time(ours, 15)},
        {"bench": "quantized", "case": label, "name": "arrayq reference path", "median_s": median_time(reference, 3)},
    ]
    if mx is not None:
        args = [mx.array(a) for a in (x, qw.packed, qw.scales, qw.biases, lhs, rhs)]
        mx.eval(args)

        def mlx_run() -> None:
            xm, p, s, b, li, ri = args
            mx.eval(mx.gather_qmm(xm, p, s, b, lhs_indices=li, rhs_indices=ri, transpose=True, group_size=64, bits=4))

        rows.append(
            {
                "bench": "quantized",
                "case": label,
                "name": "mlx cpu, float32 scales",
                "median_s": median_time(mlx_run, 5),
            }
        )
    return rows


def _mlx() -> ModuleType | None:
    """``mlx.core``, or None where MLX is not installed."""
    try:
        import mlx.core as mx
    except ImportError:
        return None
    return mx


def per_op_time(op: Callable[[], Any], ops: int = 1000, repeat: int = 7) -> float:
    """Median over ``repeat`` runs of the time of ``ops`` calls of ``op``, divided by ``ops``."""
    return median_time(lambda: [op() for _ in range(ops)], repeat) / ops


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

    mx = _mlx()
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


def _generate_script() -> Path | None:
    """``benchmarks/bench_generate.py`` of a source checkout (it is not in the wheel)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_generate.py"
    return path if path.is_file() else None


GENERATE_HINT = (
    "the generation benchmark lives in the source tree: from a checkout of arrayq run\n"
    "  python benchmarks/bench_generate.py [--model DIR] [--engines numpy,mlx,mlx-lm]"
)


def generate(quick: bool = False) -> list[dict[str, Any]]:
    """Token generation per engine (arrayq on NumPy, arrayq on MLX, mlx-lm when installed),
    through ``benchmarks/bench_generate.py`` (each engine in its own process). ``quick``:
    the tiny preset, a 16-token prompt, 8 decoded tokens, one timed run, no mlx-lm; else the
    qwen3-0.6b preset with the script's defaults. Outside a source checkout, prints how to
    run the script and returns no rows."""
    script = _generate_script()
    if script is None:
        print(GENERATE_HINT, file=sys.stderr)
        return []
    spec = importlib.util.spec_from_file_location("arrayq_bench_generate", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    from .models import make_checkpoint
    from .models._cli import cache_dir

    preset = "tiny" if quick else "qwen3-0.6b"
    model = cache_dir() / preset
    if not (model / "config.json").is_file():
        print(f"writing the {preset} checkpoint to {model} ...", file=sys.stderr)
        make_checkpoint(model, preset)
    if quick:
        engines, kw = ["numpy", "mlx"], {"prompt_tokens": 16, "decode_tokens": 8, "repeat": 1}
    else:
        engines, kw = ["numpy", "mlx", "mlx-lm"], {}
    rows = []
    for r in module.run_engines(model, engines, **kw):
        for phase in ("prefill", "decode"):
            rows.append(
                {
                    "bench": "generate",
                    "case": f"{phase}, {preset}",
                    "name": r["engine"],
                    "tokens_per_s": r[f"{phase}_tps"],
                    "tokens": r["prompt_tokens" if phase == "prefill" else "decode_tokens"],
                    "peak_rss_MiB": r["peak_rss"] / 2**20,
                }
            )
    return rows


# generate first: its engines' processes inherit this one's peak RSS at exec, so it must
# not have held the quantized benchmark's weights yet
BENCHES: dict[str, Callable[[bool], list[dict[str, Any]]]] = {
    "generate": lambda quick: generate(quick=quick),
    "quantized": lambda quick: quantized_matmul(quick=quick),
    "dispatch": lambda quick: dispatch_overhead(quick=quick),
}


def run(only: str | None = None, quick: bool = False) -> list[dict[str, Any]]:
    """The rows of every benchmark (or only of ``only``: quantized, dispatch, generate)."""
    if only is not None and only not in BENCHES:
        raise ValueError(f"unknown benchmark {only!r}; choose from {sorted(BENCHES)}")
    rows: list[dict[str, Any]] = []
    for name, bench in BENCHES.items():
        if only in (None, name):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            rows += bench(quick)
    return rows


def format_table(rows: list[dict[str, Any]], baseline: str = "arrayq numpy") -> str:
    """A text table of quantized-matmul rows; each row's ``vs arrayq`` is its time over the
    baseline's time in the same case (so > 1 means arrayq is faster)."""
    lines = [f"{'case':<20} {'implementation':<44} {'median':>10} {'vs arrayq':>10} {'peak extra':>11}"]
    base = {r["case"]: r["median_s"] for r in rows if r["name"] == baseline}
    for r in rows:
        ratio = r["median_s"] / base[r["case"]] if r["case"] in base else float("nan")
        peak = f"{r['peak_extra_MiB']:.1f} MiB" if "peak_extra_MiB" in r else ""
        lines.append(f"{r['case']:<20} {r['name']:<44} {_duration(r['median_s']):>10} {ratio:>9.2f}x {peak:>11}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    """``812 µs`` below 10 ms, ``37.8 ms`` above."""
    return f"{seconds * 1e6:.0f} µs" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"


def format_dispatch_table(rows: list[dict[str, Any]]) -> str:
    """A text table of dispatch rows: µs per op, and arrayq's overhead over the direct call."""
    lines = [f"{'case':<34} {'implementation':<18} {'per op':>13} {'overhead':>14}"]
    for r in rows:
        over = f"{r['overhead_us']:+.2f} µs/op" if "overhead_us" in r else ""
        lines.append(f"{r['case']:<34} {r['name']:<18} {r['median_s'] * 1e6:>10.2f} µs {over:>14}")
    return "\n".join(lines)


def format_generate_table(rows: list[dict[str, Any]]) -> str:
    """A text table of generation rows: tokens per second (best of the timed runs)."""
    lines = [f"{'case':<22} {'engine':<18} {'tokens':>7} {'tok/s':>10} {'peak RSS':>10}"]
    for r in rows:
        lines.append(
            f"{r['case']:<22} {r['name']:<18} {r['tokens']:>7} {r['tokens_per_s']:>10.2f} {r['peak_rss_MiB']:>6.0f} MiB"
        )
    return "\n".join(lines)


def format_rows(rows: list[dict[str, Any]]) -> str:
    """All rows as text, one table per benchmark."""
    out = []
    for bench, fmt, title in (
        ("quantized", format_table, "quantized matmul, 4-bit gs64 weight (median time per call)"),
        ("dispatch", format_dispatch_table, "dispatch overhead (median time per op)"),
        ("generate", format_generate_table, "token generation (best of the timed runs)"),
    ):
        part = [r for r in rows if r.get("bench", "quantized") == bench]
        if part:
            out.append(f"{title}\n{fmt(part)}")
    return "\n\n".join(out)


MATPLOTLIB_MISSING = "--plot needs matplotlib: pip install 'arrayq[plot]' (or pip install matplotlib)"


def plot(rows: list[dict[str, Any]], path: str | Path) -> None:
    """A bar chart of the rows, one panel per benchmark and one bar per implementation in
    each case, written to ``path`` (PNG). Times on a log scale. Needs matplotlib (the
    ``plot`` extra); raises RuntimeError saying so when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError(MATPLOTLIB_MISSING) from None

    panels = [
        (
            "quantized",
            "quantized matmul, 4-bit gs64 (median ms per call, log scale)",
            "median_s",
            1e3,
            True,
        ),
        ("dispatch", "dispatch overhead (median µs per op, log scale)", "median_s", 1e6, True),
        ("generate", "token generation (tokens/s, best run)", "tokens_per_s", 1.0, False),
    ]
    panels = [p for p in panels if any(r.get("bench", "quantized") == p[0] for r in rows)]
    if not panels:
        raise ValueError("no rows to plot")

    def count(bench: str) -> int:  # bars plus one heading line per case
        part = [r for r in rows if r.get("bench", "quantized") == bench]
        return len(part) + len({r["case"] for r in part})

    heights = [0.8 + 0.24 * count(p[0]) for p in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, sum(heights)), gridspec_kw={"height_ratios": heights})
    axes = list(axes) if len(panels) > 1 else [axes]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (bench, title, key, scale, log) in zip(axes, panels):
        part = [r for r in rows if r.get("bench", "quantized") == bench]
        names = list(dict.fromkeys(r["name"] for r in part))
        y = 0
        ticks, labels, bold = [], [], []
        for case in dict.fromkeys(r["case"] for r in part):
            ticks.append(y)  # the case as a heading line, its implementations' bars below it
            labels.append(case)
            bold.append(True)
            y -= 1
            for r in (r for r in part if r["case"] == case):
                v = r[key] * scale
                ax.barh(y, v, color=colors[names.index(r["name"]) % len(colors)], height=0.75)
                ax.text(v, y, f" {v:,.0f}" if v >= 100 else f" {v:.3g}", va="center", fontsize=8)
                ticks.append(y)
                labels.append(r["name"])
                bold.append(False)
                y -= 1
        ax.set_yticks(ticks, labels, fontsize=8)
        for tick, is_case in zip(ax.get_yticklabels(), bold):
            if is_case:
                tick.set_fontweight("bold")
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(y + 0.4, 0.6)
        ax.set_title(title, fontsize=10, loc="left")
        if log:
            ax.set_xscale("log")
        ax.margins(x=0.12)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(fig)
