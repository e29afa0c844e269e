"""What every conformance case module shares: :class:`Case`, the tolerances with the reason
for each value, the dtype groups, and the helpers that make seeded NumPy inputs.

Tolerances (``TOLERANCE``) are per dtype, on the error normalised by the reference's
magnitude: ``max|got - ref| / max(1, max|ref|)``. Why each value:

* integers, bool, and everything that is exact by definition (shapes, indexing,
  quantize, dequantize): 0 — any difference is a bug.
* float64: 1e-10 — libm implementations differ by an ulp or two (2.2e-16) and sums may be
  reassociated; the bound leaves room for reductions over a few hundred terms.
* float32: 2e-5 — an ulp is 1.2e-7; transcendental functions differ by a few ulps between
  libraries, and sums/matmuls over up to a few hundred terms reassociate (≈ sqrt(n)·ulp).
* float16: 2e-3 and bfloat16: 1.6e-2 — two ulps of the format (9.8e-4 and 7.8e-3): the
  reference computes in float32 and rounds once; a backend may round once more.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TOLERANCE = {
    "float64": 1e-10,
    "float32": 2e-5,
    "float16": 2e-3,
    "bfloat16": 1.6e-2,
    "complex64": 2e-5,
    "complex128": 1e-10,
}
FLOATS = ("float32", "float16", "bfloat16", "float64")
INTS = ("int32", "int64", "uint8", "int8")


@dataclass(frozen=True)
class Case:
    """One check. ``call(aq, *args)`` runs the op through the frontend ``aq``; ``make(rng)``
    gives the NumPy inputs. ``expect`` is "close" (float tolerance), "exact", or "raises":
    the backend must raise the type the reference raises, and if ``raises`` names a type,
    both must raise that type (or a subclass), with a message matching the regular
    expression ``match``. ``tolerance`` replaces the dtype's bound where set."""

    id: str
    op: str
    dtypes: tuple[str, ...]
    make: Callable[[np.random.Generator], list[Any]]
    call: Callable[..., Any]
    expect: str = "close"
    upcast: bool = False  # reference computes in float32, then rounds to the case's dtype
    tags: tuple[str, ...] = field(default=())
    raises: str = ""
    match: str = ""
    #: The float bound for this case, where the op's error analysis gives one (linalg: a
    #: multiple of n * eps * cond, see :mod:`.linalg`); 0: ``TOLERANCE`` of the dtype.
    tolerance: float = 0.0

    @property
    def seed(self) -> int:
        return zlib.crc32(self.id.encode())


def _dtype(name: str) -> np.dtype:
    import ml_dtypes

    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def _values(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: str, low: float = -3, high: float = 3
) -> np.ndarray:
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        lo, hi = max(int(low), int(info.min)), min(int(high), int(info.max))
        return rng.integers(lo, hi + 1, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(_dtype(dtype))


def _arrays(*specs: tuple[tuple[int, ...], str, float, float]) -> Callable[[np.random.Generator], list[Any]]:
    return lambda rng: [_values(rng, shape, dtype, lo, hi) for shape, dtype, lo, hi in specs]


def _is_float(dtype: str) -> bool:
    return dtype in FLOATS


def _op(name: str) -> Callable[..., Any]:
    return lambda aq, *args: getattr(aq, name)(*args)
