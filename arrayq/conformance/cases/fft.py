"""The fft extension (``arrayq.fft``): every transform with ``n`` / ``s`` / ``axes`` and each
``norm``, on lengths that take each path of the contract's reference (one DFT matrix up to
64 points, the four-step split, Bluestein's chirp for a prime factor above 64), and the
frequency and shift helpers.

The reference runs the contract's default (``arrayq/backend/_fft.py``) on NumPy's
primitives, so a backend with a native fft (NumPy: numpy.fft, MLX: mlx.core.fft) is
checked against a different algorithm. The shared tolerances (:mod:`._common`, on the error
over ``max|ref|``) hold: an FFT's rounding error grows like ``log2(n) * eps`` — about 10
ulps for the n <= 1024 here, 1.2e-6 in complex64 and 2.2e-15 in complex128 — on both
sides, plus the reference's products of up to 64 terms (``sqrt(64) * eps``); complex64's
2e-5 and complex128's 1e-10 leave room for that, while a wrong sign, index or
normalisation is an O(1) error.

A transform of float64 data gives complex128: those cases list complex128 among their
dtypes, so a backend without it (MLX) skips them as a declared gap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._common import Case

_COMPLEX = ("complex64", "complex128")
_REAL = ("float32", "float64")
_WIDE = {"float32": "complex64", "float64": "complex128", "complex64": "float32", "complex128": "float64"}


def _signal(shape: tuple[int, ...], dtype: str) -> Callable[[np.random.Generator], list[Any]]:
    def make(rng: np.random.Generator) -> list[Any]:
        x = rng.uniform(-1, 1, shape)
        if dtype.startswith("complex"):
            x = x + 1j * rng.uniform(-1, 1, shape)
        return [x.astype(dtype)]

    return make


Variants = list[tuple[tuple[int, ...], dict[str, Any]]]


def _transform(op: str, kw: dict[str, Any]) -> Callable[..., Any]:
    return lambda aq, x: getattr(aq.fft, op)(x, **kw)


def _frequencies(op: str, n: int, d: float, dtype: str) -> Callable[..., Any]:
    return lambda aq: getattr(aq.fft, op)(n, d=d, dtype=getattr(aq, dtype))


def _shift(op: str, axes: Any) -> Callable[..., Any]:
    return lambda aq, x: getattr(aq.fft, op)(x, axes=axes)


def _ramp(shape: tuple[int, ...]) -> Callable[[np.random.Generator], list[Any]]:
    return lambda rng: [np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)]


def _cases(op: str, dtypes: tuple[str, ...], variants: Variants) -> list[Case]:
    out = []
    for dtype in dtypes:
        for shape, kw in variants:
            call = _transform(op, kw)
            tag = ",".join(f"{k}={v}" for k, v in kw.items())
            out.append(
                Case(
                    f"{op}[{dtype},{shape}{',' + tag if tag else ''}]",
                    op,
                    (dtype, _WIDE[dtype]),
                    _signal(shape, dtype),
                    call,
                )
            )
    return out


#: One-dimensional variants: lengths 16 and 7 (one matrix), 100 and 1024 (the split), 67
#: (Bluestein), 134 = 2 * 67 (the split around Bluestein); padding, cutting, other axes, norms.
ONE_D: Variants = [
    ((16,), {}),
    ((3, 10), {"axis": 0, "n": 5}),
    ((2, 7), {"n": 12, "norm": "ortho"}),
    ((2, 9), {"norm": "forward"}),
    ((100,), {}),
    ((67,), {"norm": "ortho"}),
    ((2, 134), {}),
    ((2, 1024), {"norm": "forward"}),
]
#: The complex-to-real transforms need an input of at least 2 points for the default n.
TO_REAL: Variants = [
    ((9,), {}),
    ((3, 6), {"axis": 0, "n": 5}),
    ((2, 5), {"n": 9, "norm": "ortho"}),
    ((2, 51), {"n": 100, "norm": "forward"}),
    ((68,), {"n": 134}),
]
N_D: Variants = [
    ((3, 4, 6), {}),
    ((3, 4, 6), {"axes": (2, 0), "norm": "ortho"}),
    ((3, 4, 6), {"s": (5, 3), "axes": (0, -1)}),
    ((2, 70), {"s": (2, 67), "axes": (0, 1), "norm": "forward"}),
]


def fft_cases() -> list[Case]:
    cases = []
    for op in ("fft", "ifft"):
        cases += _cases(op, _COMPLEX, ONE_D)
    for op in ("rfft", "ihfft"):
        cases += _cases(op, _REAL, ONE_D)
    for op in ("irfft", "hfft"):
        cases += _cases(op, _COMPLEX, TO_REAL)
    for op in ("fftn", "ifftn", "irfftn"):
        cases += _cases(op, _COMPLEX, N_D)
    cases += _cases("rfftn", _REAL, N_D)
    for op in ("fftfreq", "rfftfreq"):
        for dtype in _REAL:
            for n, d in ((1, 1.0), (8, 0.1), (9, 2.0)):
                call = _frequencies(op, n, d, dtype)
                cases.append(Case(f"{op}[{dtype},n={n},d={d}]", op, (dtype,), lambda rng: [], call))
    for op in ("fftshift", "ifftshift"):
        for shape, axes in (((7,), None), ((4, 5), 1), ((2, 3, 5), (0, -1))):
            case_id = f"{op}[float32,{shape},axes={axes}]"
            cases.append(Case(case_id, op, ("float32",), _ramp(shape), _shift(op, axes), "exact"))
    return cases
