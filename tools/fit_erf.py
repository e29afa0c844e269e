"""Fit the coefficients of arrayq's erf (``arrayq/backend/_erf.py``) and print them.

The formula, for a = |x|:

* ``a < split``: ``erf(x) = x + x * P(x*x)``. P approximates ``erf(x)/x - 1`` as a
  polynomial in u = x*x; the error is weighted relative to ``erf(x)/x``, so it is a
  relative error of the result, down to subnormal x.
* ``a >= split``: ``erf(x) = sign(x) * (1 - exp(-x*x) * Q(t))`` with
  ``t = (c - centre) / (c + centre)`` and ``c = min(a, clamp)``. Q approximates the scaled
  complementary function ``erfcx(a) = exp(a*a) * erfc(a)``, smooth and between 0.1 and 0.5
  there; the Moebius variable t maps [split, clamp] into a short interval around 0, where a
  polynomial converges fast. Its error is weighted relative to erfcx. At ``clamp``
  erfc is below half an ulp of 1 in the target dtype, so clamping (which keeps t finite for
  a = inf) changes no result.

Each polynomial is a weighted least-squares fit at Chebyshev nodes, refined by Lawson's
iteration towards the minimax fit, all in 40-digit arithmetic (mpmath); the printed
coefficients, lowest power first, are representable in the dtype the formula runs in. The script also prints
each fit's largest weighted error on a dense grid: far below half an ulp of the dtype, so
the rounding of the arithmetic, not the approximation, sets erf's accuracy.

    pip install mpmath && python tools/fit_erf.py
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import mpmath as mp

mp.mp.dps = 40


@dataclasses.dataclass(frozen=True)
class Design:
    """The shape of one dtype's formula: its split point, polynomial lengths, centre and clamp."""

    dtype: str
    split: float
    small_terms: int
    centre: float
    tail_terms: int
    clamp: float


DESIGNS = (
    Design("float32", split=0.9, small_terms=7, centre=1.5, tail_terms=7, clamp=4.0),
    Design("float64", split=0.9, small_terms=12, centre=3.0, tail_terms=17, clamp=6.0),
)


def _small(u: mp.mpf) -> mp.mpf:
    """erf(x)/x - 1 as a function of u = x*x."""
    if u == 0:
        return 2 / mp.sqrt(mp.pi) - 1
    x = mp.sqrt(u)
    return mp.erf(x) / x - 1


def _erfcx(a: mp.mpf) -> mp.mpf:
    return mp.exp(a * a) * mp.erfc(a)


def _horner(coeffs: list, v: mp.mpf) -> mp.mpf:
    out = mp.mpf(0)
    for c in reversed(coeffs):
        out = out * v + c
    return out


def _stored(c: mp.mpf, dtype: str) -> mp.mpf:
    """``c`` rounded to what the table can hold: a float64, or for float32 a float32 (the
    arithmetic rounds a Python float to the array's dtype)."""
    if dtype == "float64":
        return mp.mpf(float(c))
    mantissa, exponent = mp.frexp(c)
    return mp.ldexp(mp.nint(mp.ldexp(mantissa, 24)), exponent - 24)


def fit(
    f: Callable[[mp.mpf], mp.mpf],
    lo: mp.mpf,
    hi: mp.mpf,
    terms: int,
    scale: Callable[[mp.mpf], mp.mpf],
    dtype: str,
) -> tuple[list, float]:
    """Coefficients (lowest power first, each representable in ``dtype``) of a polynomial
    near-minimising ``max |poly(v) - f(v)| / scale(v)`` on [lo, hi], and that maximum on a
    dense grid. The coefficients are rounded one at a time, lowest first, each remaining one
    refitted after a rounding so that it absorbs the error rounding made."""
    n = 6 * terms
    nodes = [(lo + hi) / 2 + (hi - lo) / 2 * mp.cos(mp.pi * (2 * k + 1) / (2 * n)) for k in range(n)]
    values = [f(v) for v in nodes]
    scales = [scale(v) for v in nodes]
    fixed: list = []
    while len(fixed) < terms:
        free = range(len(fixed), terms)
        target = [y - _horner(fixed, v) for v, y in zip(nodes, values)]
        weights = [mp.mpf(1)] * n
        for _ in range(6):  # Lawson: reweight by each node's error, towards equal ripples
            rows = [[mp.sqrt(w) * v**j / s for j in free] for v, w, s in zip(nodes, weights, scales)]
            rhs = [mp.sqrt(w) * y / s for y, w, s in zip(target, weights, scales)]
            solved = list(mp.qr_solve(mp.matrix(rows), mp.matrix(rhs))[0])
            coeffs = fixed + solved
            errors = [abs(_horner(coeffs, v) - y) / s for v, y, s in zip(nodes, values, scales)]
            total = sum(w * e for w, e in zip(weights, errors))
            weights = [w * e / total for w, e in zip(weights, errors)]
        fixed.append(_stored(solved[0], dtype))
    grid = [lo + (hi - lo) * i / 3000 for i in range(3001)]
    worst = max(abs(_horner(fixed, v) - f(v)) / scale(v) for v in grid)
    return [float(c) for c in fixed], float(worst)


def main() -> None:
    for d in DESIGNS:
        split, centre, clamp = mp.mpf(d.split), mp.mpf(d.centre), mp.mpf(d.clamp)
        small, small_err = fit(_small, mp.mpf(0), split * split, d.small_terms, lambda u: 1 + _small(u), d.dtype)

        def tail_of_t(t: mp.mpf, centre: mp.mpf = centre) -> mp.mpf:
            return _erfcx(centre * (1 + t) / (1 - t))

        t_lo, t_hi = (split - centre) / (split + centre), (clamp - centre) / (clamp + centre)
        tail, tail_err = fit(tail_of_t, t_lo, t_hi, d.tail_terms, tail_of_t, d.dtype)
        errors = f"small fit {small_err:.2e}, tail fit {tail_err:.2e} (relative)"
        print(f"# tools/fit_erf.py: {errors}; erfc(clamp) = {float(mp.erfc(clamp)):.2e}")
        print(f"{d.dtype.upper()} = ErfTable(")
        print(f"    split={d.split!r},")
        print(f"    small=({', '.join(repr(c) for c in small)}),")
        print(f"    centre={d.centre!r},")
        print(f"    tail=({', '.join(repr(c) for c in tail)}),")
        print(f"    clamp={d.clamp!r},")
        print(")")


if __name__ == "__main__":
    main()
