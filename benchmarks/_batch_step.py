"""What the serving benchmarks' decode-step tables share (``bench_serve.py --step``,
``bench_batch_kernels.py --step``): batches of warmed caches, and a kernel entry point
whose time is added up."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import arrayq as aq


def filled_caches(model: Any, sizes: Any, like: Any, dtype: Any = None) -> dict[int, Any]:
    """A ``BatchCache`` per batch size in ``sizes``: sequence i holds 16 + i prefilled
    positions (stored in ``dtype``: None, the model's, or e.g. "float16")."""
    from arrayq.serving import BatchCache

    caches = {}
    for b in sizes:
        caches[b] = BatchCache(len(model.layers), dtype=dtype)
        for i in range(b):
            c = model.make_cache()
            model.hidden(aq.asarray([[1 + i + j for j in range(16 + i)]], dtype=aq.int32, like=like), c)
            caches[b].add(c)
    return caches


def timed(real: Callable[..., Any], inside: list[float]) -> Callable[..., Any]:
    """``real``, adding the seconds each call takes to ``inside[0]``."""

    def call(*args: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return real(*args)
        finally:
            inside[0] += time.perf_counter() - t0

    return call
