"""erf on the NumPy backend: the old per-element ``math.erf`` loop against the contract's
polynomial formula, whole-array and in the NumPy backend's cache-sized blocks; MLX's
``mx.erf`` and SciPy's ``scipy.special.erf`` where installed; and exact GELU (the op that
calls erf in a BERT MLP) on the same array.

    python benchmarks/bench_erf.py [--shape 8,123,1536] [--repeat 7]

The default shape is the (batch, tokens, intermediate) activation of an all-MiniLM-L6-v2
forward pass of 8 sentences. Prints the median wall time of ``--repeat`` runs (after one
warm-up run) per row, and the result's largest difference from ``math.erf`` in ulps of the
dtype.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import numpy as np

import arrayq as aq
from arrayq import nn
from arrayq.bench._timing import median_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="8,123,1536")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    shape = tuple(int(n) for n in args.shape.split(","))
    numpy_backend = aq.get_backend("numpy")
    per_element = np.frompyfunc(math.erf, 1, 1)

    def old(x: np.ndarray) -> np.ndarray:  # the NumPy backend's erf before the formula
        return np.asarray(per_element(x), dtype=np.float64).astype(x.dtype)

    rows: list[tuple[str, str, Callable[[np.ndarray], object]]] = [
        ("math.erf per element (old)", "numpy", old),
        ("formula, whole array", "numpy", lambda x: aq.Backend.erf(numpy_backend, x)),
        ("formula in blocks (aq.erf)", "numpy", aq.erf),
        ("exact gelu (nn.gelu)", "numpy", nn.gelu),
    ]
    try:
        import scipy.special

        rows.append(("scipy.special.erf", "numpy", scipy.special.erf))
    except ImportError:
        pass
    try:
        import mlx.core as mx
    except ImportError:
        mx = None
    if mx is not None:

        def mlx_erf(x: object) -> object:
            y = mx.erf(x)
            mx.eval(y)
            return y

        rows.append(("mx.erf (MLX, default device)", "mlx", mlx_erf))

    rng = np.random.default_rng(0)
    print(f"erf on shape {shape}: median of {args.repeat} runs")
    print(f"{'implementation':<32} {'dtype':<8} {'ms':>9} {'max ulp':>9}")
    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal(shape) * 2).astype(dtype)
        want = old(x.astype(np.float64))
        spacing = np.spacing(np.abs(want).astype(dtype)).astype(np.float64)
        for name, where, fn in rows:
            if where == "mlx":
                if dtype == np.float64:
                    continue  # float64 exists on MLX's CPU only; its float32 row is the comparison
                arg = mx.array(x)
                run = lambda fn=fn, arg=arg: fn(arg)  # noqa: E731
            else:
                run = lambda fn=fn, x=x: fn(x)  # noqa: E731
            ms = 1e3 * median_time(run, args.repeat)
            if name.startswith("exact gelu"):
                ulp = "-"
            else:
                got = np.asarray(run()).astype(np.float64)
                ulp = f"{np.max(np.abs(got - want) / spacing):.2f}"
            print(f"{name:<32} {np.dtype(dtype).name:<8} {ms:>9.1f} {ulp:>9}")


if __name__ == "__main__":
    main()
