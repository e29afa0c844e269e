"""The Python of the NumPy backend's replay forms (``arrayq_numpy._native_forms``) around
their C kernels, at the qwen3-0.6b preset's decode shapes, beside another tree's forms in
the same process.

    python benchmarks/bench_replay_forms.py [--baseline OTHER_TREE/backends/arrayq_numpy/_native_forms.py]
        [--rounds 15] [--calls 2000] [--real-kernels]

Each form is made as a recorded plan makes it (``form(backend, method, args, fixed,
result)``) for: the 8-bit-activation ``quantized_matmul`` of one row (1024 -> 2048, 4-bit
gs64), and swiglu of a fused gate/up output (1, 1, 6144): ``swiglu_halves`` where the tree
has it, else the two slices and ``swiglu`` a plan ran before. The C kernels are replaced by
no-ops (unless ``--real-kernels``), so only the Python around them is timed: microseconds a
call, minimum and median over rounds of ``--calls`` calls. With ``--baseline``, that file is
loaded as a module of this tree's backend (its kernels and helpers are this tree's) and
its forms run interleaved round by round with this tree's; the table adds new / baseline
(the median of the rounds' ratios). Results with real kernels are checked equal.
"""

from __future__ import annotations

import argparse
import importlib.util
import operator
import statistics
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

import arrayq as aq
from arrayq_numpy import _native, activations
from arrayq_numpy import _native_forms as current


def _load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("arrayq_numpy._native_forms_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cases(forms: ModuleType, backend: Any, x: np.ndarray, qw: Any, gu: np.ndarray) -> dict[str, Callable[[], Any]]:
    """name -> a call of that tree's form on the inputs."""
    matmul, _ = forms.form(backend, "quantized_matmul", (x, qw, True), (False, True, True), x @ np.zeros((1024, 2048)))
    n = gu.shape[-1] // 2
    if "swiglu_halves" in forms._FORMS:
        halves, _ = forms.form(backend, "swiglu_halves", (gu,), (False,), np.empty(gu.shape[:-1] + (n,), np.float32))
        gated: Callable[[], Any] = lambda: halves(gu)  # noqa: E731
    else:
        g, u = gu[..., :n], gu[..., n:]
        pair, _ = forms.form(backend, "swiglu", (g, u), (False, False), np.empty(g.shape, np.float32))
        first, second = (Ellipsis, slice(None, n)), (Ellipsis, slice(n, None))
        gated = lambda: pair(operator.getitem(gu, first), operator.getitem(gu, second))  # noqa: E731
    return {"quantized_matmul 1024->2048 (113 a token)": lambda: matmul(x), "swiglu of gate/up (28 a token)": gated}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", help="another tree's backends/arrayq_numpy/_native_forms.py")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--real-kernels", action="store_true", help="keep the C kernels (their time included)")
    args = p.parse_args(argv)
    if _native._chosen_level() is None:
        raise SystemExit("the native kernels are not in use here (ARRAYQ_NATIVE=off, or no compiler at install)")
    backend = aq.get_backend("numpy")
    rng = np.random.default_rng(0)
    qw = aq.quantize(rng.standard_normal((2048, 1024)).astype(np.float32), group_size=64, bits=4)
    x = rng.standard_normal((1, 1, 1024)).astype(np.float32)
    gu = rng.standard_normal((1, 1, 6144)).astype(np.float32)
    kernels = _native._kernels
    saved = {name: getattr(kernels, name) for name in ("gemv_repacked", "swiglu")}
    with activations("int8"):
        try:
            if not args.real_kernels:  # (set before the forms are made: they bind the kernels)
                kernels.gemv_repacked = lambda *a: None
                kernels.swiglu = lambda *a: None
            trees = {"this tree": _cases(current, backend, x, qw, gu)}
            if args.baseline:
                trees["baseline"] = _cases(_load(args.baseline), backend, x, qw, gu)
            if args.real_kernels and args.baseline:
                for name in trees["this tree"]:
                    assert np.array_equal(trees["this tree"][name](), trees["baseline"][name]()), name
            times: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds):
                for tree, cases in trees.items():
                    for name, call in cases.items():
                        t = time.perf_counter()
                        for _ in range(args.calls):
                            call()
                        times.setdefault((tree, name), []).append((time.perf_counter() - t) / args.calls * 1e6)
        finally:
            for name, fn in saved.items():
                setattr(kernels, name, fn)
    print(f"{'form':44}{'tree':>11}{'min µs':>9}{'median µs':>11}{'new/base':>10}")
    for name in trees["this tree"]:
        for tree in trees:
            t = times[(tree, name)]
            ratio = ""
            if tree == "this tree" and "baseline" in trees:
                base = times[("baseline", name)]
                ratio = f"{statistics.median(a / b for a, b in zip(t, base)):.3f}"
            print(f"{name:44}{tree:>11}{min(t):9.2f}{statistics.median(t):11.2f}{ratio:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
