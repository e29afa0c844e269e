"""The error function on the primitives: the contract's default for ``erf``.

For a = |x|, with a polynomial P in x*x below a split point and a polynomial Q in a Moebius
variable t above it:

    a < split:   erf(x) = x + x * P(x*x)
    a >= split:  erf(x) = sign(x) * (1 - exp(-c*c) * Q(t)),   t = (c - centre) / (c + centre),
                 c = min(a, clamp)

P approximates ``erf(x)/x - 1``, so small and subnormal x keep their relative accuracy (the
result is x plus a correction a tenth its size). Q approximates ``exp(a*a) * erfc(a)``,
which lies between 0.1 and 0.5 there, so the subtraction from 1 loses nothing: erfc is at
most 0.21 where it is used. Clamping ``a`` keeps t and c*c finite for huge and infinite x
and changes no result: at the clamp, erfc is below half an ulp of 1 in the dtype. NaN
propagates (through ``min``); ``+-inf`` give ``+-1``; ``-0.0`` gives ``-0.0``.

One table per working precision: float64 runs in float64, everything else in float32
(float16 and bfloat16 are widened, then rounded once at the end). The coefficients come
from ``tools/fit_erf.py`` (a near-minimax fit in 40-digit arithmetic), which also states
their approximation errors: about 3e-17 relative for float64 and 2e-8 for float32, well
below half an ulp, so the rounding of the arithmetic sets the accuracy
(tests/test_ops_erf.py measures it against ``math.erf``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import _dtypes as dt


@dataclasses.dataclass(frozen=True)
class ErfTable:
    """One working precision's constants (see the module docstring); polynomial
    coefficients lowest power first, each representable in that precision."""

    split: float
    small: tuple[float, ...]
    centre: float
    tail: tuple[float, ...]
    clamp: float


# fmt: off
# tools/fit_erf.py: small fit 8.83e-10, tail fit 2.01e-08 (relative); erfc(clamp) = 1.54e-08
FLOAT32 = ErfTable(
    split=0.9,
    small=(0.12837916612625122, -0.3761262893676758, 0.11283624917268753, -0.026855628937482834,
           0.005191971082240343, -0.0008042610716074705, 7.956421904964373e-05),
    centre=1.5,
    tail=(0.32158541679382324, -0.49086880683898926, 0.19449135661125183, -0.009282107464969158,
          -0.01866544783115387, -0.0004232932988088578, 0.0032644961029291153),
    clamp=4.0,
)
# tools/fit_erf.py: small fit 1.10e-17, tail fit 3.05e-17 (relative); erfc(clamp) = 2.15e-17
FLOAT64 = ErfTable(
    split=0.9,
    small=(0.1283791670955126, -0.3761263890318407, 0.11283791670969676, -0.02686617064776645,
           0.005223977649982063, -0.0008548328351028023, 0.00012055377222334704, -1.4926573322762247e-05,
           1.6473802137210434e-06, -1.644423779180452e-07, 1.491317342913587e-08, -1.040818120226091e-09),
    centre=3.0,
    tail=(0.17900115118138996, -0.3262335600430372, 0.24560380171232746, -0.15011593650077731,
          0.07166583719836207, -0.024392499318620545, 0.004269136316229724, 0.0007077464302112362,
          -0.0005970615991978111, 4.525564493439887e-05, 6.405275949497199e-05, -1.2866139971819109e-05,
          -7.958425441628965e-06, 2.16083584184819e-06, 1.2228893712552289e-06, -3.9961552411723216e-07,
          -2.910016345411037e-07),
    clamp=6.0,
)
# fmt: on


def _polynomial(b: Any, coeffs: tuple[float, ...], v: Any) -> Any:
    """``sum(coeffs[i] * v**i)`` by Horner's rule."""
    out = b.binary("add", b.binary("multiply", v, coeffs[-1]), coeffs[-2])
    for c in reversed(coeffs[:-2]):
        out = b.binary("add", b.binary("multiply", out, v), c)
    return out


def erf(b: Any, x: Any) -> Any:
    """erf of the floating array ``x`` on backend ``b``'s primitives; x's shape and dtype."""
    dtype = b.dtype_of(x)
    narrow = dtype in (dt.float16, dt.bfloat16)
    if narrow:
        x = b.astype(x, dt.float32, True)
    table = FLOAT64 if dtype == dt.float64 else FLOAT32
    # c = |x| clamped (the array API's minimum propagates NaN): no square overflows, and
    # nothing warns, for huge x; z is x itself below the clamp
    c = b.binary("minimum", b.unary("abs", x), table.clamp)
    u = b.binary("multiply", c, c)
    z = b.binary("copysign", c, x)
    small = b.binary("add", z, b.binary("multiply", z, _polynomial(b, table.small, u)))
    t = b.binary("divide", b.binary("subtract", c, table.centre), b.binary("add", c, table.centre))
    erfc = b.binary("multiply", b.unary("exp", b.unary("negative", u)), _polynomial(b, table.tail, t))
    tail = b.binary("copysign", b.binary("subtract", 1.0, erfc), x)
    out = b.where(b.binary("less", c, table.split), small, tail)
    return b.astype(out, dtype, True) if narrow else out
