"""Quantized matmul on this CPU: arrayq on NumPy (its default path, 8-bit activations, the
pure-NumPy path) against MLX's CPU kernel, a dense NumPy matmul and decode's memory floor;
and a mixture-of-experts ``gather_qmm`` step.

Everything runs through arrayq's public frontend. The rows that need the NumPy backend's
settings use its documented switches: ``arrayq_numpy.activations("int8")`` for 8-bit
activations, and ``ARRAYQ_NATIVE=off`` for the pure-NumPy path, which is read once per
process, so that row is measured in a child process (:func:`pure_numpy_times`). The
blockwise reference of ``gather_qmm`` is the contract's composite, run on the conformance
suite's reference backend.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ._timing import copy_bandwidth, median_time, mlx, peak_extra_bytes

#: Decode cycles through distinct copies of the weight, this many bytes in all: more than
#: any CPU cache, so that every call reads its weight from memory, as in a model.
DECODE_WORKING_SET = 256 << 20


def numpy_native_kernels() -> bool:
    """Whether the NumPy backend's quantized matmul runs its native kernels, as its
    ``notes()`` (the line ``arrayq info`` prints) say."""
    import arrayq as aq

    return any(note.startswith("quantized matmul: native kernels") for note in aq.get_backend("numpy").notes())


def weight_copies(qw: Any) -> list[Any]:
    """``qw`` and distinct copies of it, :data:`DECODE_WORKING_SET` bytes in all."""
    import arrayq as aq

    return [qw] + [
        aq.QuantizedWeight(qw.packed.copy(), qw.scales.copy(), qw.biases.copy(), qw.group_size, qw.bits)
        for _ in range(max(1, DECODE_WORKING_SET // qw.nbytes) - 1)
    ]


def _save(directory: Path, name: str, a: np.ndarray) -> dict[str, Any]:
    # as unsigned words of the item's size: np.save does not keep ml_dtypes' bfloat16
    np.save(directory / f"{name}.npy", a.view(f"u{a.dtype.itemsize}"))
    return {"file": f"{name}.npy", "dtype": a.dtype.name}


def load_saved(directory: Path, entry: dict[str, Any]) -> np.ndarray:
    """An array written by :func:`pure_numpy_times` (in the child process)."""
    import ml_dtypes

    dtype = np.dtype(getattr(ml_dtypes, entry["dtype"], entry["dtype"]))
    return np.load(directory / entry["file"]).view(dtype)


def pure_numpy_times(qw: Any, cases: list[tuple[str, np.ndarray, int]]) -> dict[str, float]:
    """Median seconds of ``arrayq.linalg.quantized_matmul(x, qw)`` on the NumPy backend's
    pure-NumPy path, per ``(label, x, repeat)`` case (a case of one row cycles through
    :func:`weight_copies`, as decode does): measured in a child process started with
    ``ARRAYQ_NATIVE=off``, the backend's documented switch, which it reads once per process.
    The weight and the x's reach it through files in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="arrayq-bench-") as tmp:
        directory = Path(tmp)
        spec = {
            "weight": {name: _save(directory, name, getattr(qw, name)) for name in ("packed", "scales", "biases")},
            "group_size": qw.group_size,
            "bits": qw.bits,
            "cases": [
                {"label": label, "x": _save(directory, f"x{i}", x), "repeat": repeat}
                for i, (label, x, repeat) in enumerate(cases)
            ],
        }
        (directory / "spec.json").write_text(json.dumps(spec))
        env = {**os.environ, "ARRAYQ_NATIVE": "off"}
        cmd = [sys.executable, "-m", "arrayq.bench._worker", "pure-numpy", str(directory)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"the pure-NumPy benchmark process failed:\n{proc.stderr[-3000:]}")
    times: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return times


def run_pure_numpy(directory: Path) -> dict[str, float]:
    """The child's side of :func:`pure_numpy_times`."""
    import arrayq as aq

    if numpy_native_kernels():
        raise RuntimeError("the pure-NumPy benchmark runs with ARRAYQ_NATIVE=off, but the native kernels are on")
    spec = json.loads((directory / "spec.json").read_text())
    parts = {name: load_saved(directory, entry) for name, entry in spec["weight"].items()}
    qw = aq.QuantizedWeight(parts["packed"], parts["scales"], parts["biases"], spec["group_size"], spec["bits"])
    copies = weight_copies(qw) if any(load_saved(directory, c["x"]).shape[0] == 1 for c in spec["cases"]) else [qw]
    times = {}
    for case in spec["cases"]:
        x = load_saved(directory, case["x"])
        cycle = itertools.cycle(copies if x.shape[0] == 1 else [qw])

        def call(x: np.ndarray = x, cycle: Any = cycle) -> Any:
            return aq.linalg.quantized_matmul(x, next(cycle))

        times[case["label"]] = median_time(call, case["repeat"])
    return times


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
    import arrayq_numpy

    rng = np.random.default_rng(0)
    w = rng.standard_normal((n, k), dtype=np.float32).astype(ml_dtypes.bfloat16)
    qw = aq.quantize(w, group_size=64, bits=4)
    dense = aq.dequantize(qw, dtype=aq.float32)
    copies = weight_copies(qw)
    bandwidth = copy_bandwidth()
    rows: list[dict[str, Any]] = []
    mx = mlx()
    xs = {m: rng.standard_normal((m, k), dtype=np.float32) for m in (1, prefill)}
    labels = {m: f"{'decode' if m == 1 else 'prefill'} x({m},{k})" for m in xs}
    native = numpy_native_kernels()
    # the pure-NumPy path where the native kernels are the default (quick: decode only)
    pure = [(labels[m], x, 15 if m == 1 else 1) for m, x in xs.items() if native and (m == 1 or not quick)]
    pure_times = pure_numpy_times(qw, pure) if pure else {}
    for m, x in xs.items():
        decode = m == 1
        label = labels[m]
        repeat = 15 if decode else 3
        cycle = itertools.cycle(copies if decode else [qw])

        def ours(x: np.ndarray = x, cycle: Any = cycle) -> Any:
            return aq.linalg.quantized_matmul(x, next(cycle))

        def ours_int8(x: np.ndarray = x, cycle: Any = cycle) -> Any:
            with arrayq_numpy.activations("int8"):
                return aq.linalg.quantized_matmul(x, next(cycle))

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
        if decode and native:
            rows.append(
                {
                    "bench": "quantized",
                    "case": label,
                    "name": "arrayq numpy, int8 activations",
                    "median_s": median_time(ours_int8, repeat),
                }
            )
        if label in pure_times:
            rows.append(
                {
                    "bench": "quantized",
                    "case": label,
                    "name": "arrayq numpy, pure-NumPy path",
                    "median_s": pure_times[label],
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
    the blockwise reference it replaces (the contract's composite, on the conformance
    suite's reference backend), and ``mlx.core.gather_qmm`` on the CPU."""
    import arrayq as aq
    from arrayq.conformance._reference import reference_backend

    qw = aq.quantize((rng.standard_normal((16, 1536, 2048)) * 0.02).astype(np.float32), group_size=64, bits=4)
    x = rng.standard_normal((1, 1, 2048)).astype(np.float32)
    lhs = np.zeros((1, 4), np.int32)
    rhs = np.array([[3, 7, 11, 12]], np.int32)
    label = "experts top-4 x(1)"

    def ours() -> Any:
        return aq.linalg.gather_qmm(x, qw, lhs_indices=lhs, rhs_indices=rhs)

    rows = [{"bench": "quantized", "case": label, "name": "arrayq numpy", "median_s": median_time(ours, 15)}]
    with reference_backend() as ref:
        xr, lr, rr, pr, sr, br = (ref.from_numpy(a) for a in (x, lhs, rhs, qw.packed, qw.scales, qw.biases))
        qr = aq.QuantizedWeight(pr, sr, br, qw.group_size, qw.bits, qw.mode)

        def reference() -> Any:
            return aq.linalg.gather_qmm(xr, qr, lhs_indices=lr, rhs_indices=rr)

        name = "arrayq reference path"
        rows.append({"bench": "quantized", "case": label, "name": name, "median_s": median_time(reference, 3)})
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
