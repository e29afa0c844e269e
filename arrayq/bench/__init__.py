"""Benchmarks, measured side by side in one run (``arrayq bench`` prints them; the scripts
in ``benchmarks/`` are thin command lines over this package).

Each benchmark returns rows of ``{"bench", "case", "name", ...}``: ``median_s`` (the median
of several repetitions, seconds per call or per op) for ``quantized`` and ``dispatch``,
tokens per second for ``generate``. Ratios and overheads are computed between rows of the
same run only; machines are noisy, so no benchmark asserts anything.

* :func:`quantized_matmul` (with :func:`experts`) — ``_quantized``
* :func:`dispatch_overhead` — ``_dispatch``
* :func:`generate` and the generation script's :func:`run_engines` / :func:`generate_main`
  — ``_generate`` (each engine in a child process, ``_worker``)
* tables and the chart — ``_tables``; timing helpers — ``_timing``

Everything goes through arrayq's public frontend and the backends' documented settings,
and ships in the wheel: ``arrayq bench`` needs no source checkout.

On machines that set ``OPENBLAS_CORETYPE`` (an old-OpenBLAS workaround that slows current
NumPy), benchmark NumPy with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ._dispatch import dispatch_overhead
from ._generate import generate, run_engines
from ._generate import main as generate_main
from ._quantized import experts, quantized_matmul
from ._tables import (
    MATPLOTLIB_MISSING,
    format_dispatch_table,
    format_generate_table,
    format_rows,
    format_table,
    plot,
)
from ._timing import copy_bandwidth, median_time, peak_extra_bytes, per_op_time

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


__all__ = [
    "BENCHES",
    "MATPLOTLIB_MISSING",
    "copy_bandwidth",
    "dispatch_overhead",
    "experts",
    "format_dispatch_table",
    "format_generate_table",
    "format_rows",
    "format_table",
    "generate",
    "generate_main",
    "median_time",
    "peak_extra_bytes",
    "per_op_time",
    "plot",
    "quantized_matmul",
    "run",
    "run_engines",
]
