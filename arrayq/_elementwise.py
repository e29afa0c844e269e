"""Elementwise functions (array API chapter "Element-wise Functions"), plus ``erf``.

Every function here dispatches on its array arguments; Python scalars mix with any
backend's arrays (array API "weak" scalars: the array's dtype wins).
Results have the broadcast shape of the operands.
"""

from __future__ import annotations

from typing import Any, Protocol

from ._dispatch import resolve
from ._registry import _SCALARS, _type_cache

_UNARY_DOC = {
    "abs": "absolute value",
    "acos": "inverse cosine",
    "acosh": "inverse hyperbolic cosine",
    "asin": "inverse sine",
    "asinh": "inverse hyperbolic sine",
    "atan": "inverse tangent",
    "atanh": "inverse hyperbolic tangent",
    "bitwise_invert": "bitwise NOT (integer or bool x)",
    "ceil": "smallest integer >= x",
    "conj": "complex conjugate",
    "cos": "cosine",
    "cosh": "hyperbolic cosine",
    "exp": "e**x",
    "expm1": "e**x - 1, accurate near 0",
    "floor": "largest integer <= x",
    "imag": "imaginary part (complex x)",
    "isfinite": "whether finite (bool result)",
    "isinf": "whether infinite (bool result)",
    "isnan": "whether NaN (bool result)",
    "log": "natural logarithm",
    "log1p": "log(1 + x), accurate near 0",
    "log2": "base-2 logarithm",
    "log10": "base-10 logarithm",
    "logical_not": "logical NOT (bool result)",
    "negative": "-x",
    "real": "real part",
    "round": "round half to even",
    "sign": "-1, 0 or 1 by the sign of x",
    "signbit": "whether the sign bit is set (bool result)",
    "sin": "sine",
    "sinh": "hyperbolic sine",
    "sqrt": "square root",
    "tan": "tangent",
    "tanh": "hyperbolic tangent",
    "trunc": "x rounded toward zero",
    # composites
    "positive": "+x",
    "square": "x * x",
    "erf": "the error function (floating x)",
}
_BINARY_DOC = {
    "add": "x1 + x2",
    "atan2": "the angle of (x2, x1), quadrant-aware",
    "bitwise_and": "bitwise AND",
    "bitwise_left_shift": "x1 << x2",
    "bitwise_or": "bitwise OR",
    "bitwise_right_shift": "x1 >> x2",
    "bitwise_xor": "bitwise XOR",
    "copysign": "|x1| with the sign of x2",
    "divide": "x1 / x2 (true division)",
    "equal": "x1 == x2",
    "floor_divide": "floor(x1 / x2)",
    "greater": "x1 > x2",
    "greater_equal": "x1 >= x2",
    "less": "x1 < x2",
    "less_equal": "x1 <= x2",
    "logical_and": "logical AND",
    "logical_or": "logical OR",
    "logical_xor": "logical XOR",
    "maximum": "the larger of x1, x2 (NaN propagates)",
    "minimum": "the smaller of x1, x2 (NaN propagates)",
    "multiply": "x1 * x2",
    "not_equal": "x1 != x2",
    "pow": "x1 ** x2",
    "remainder": "x1 - floor_divide(x1, x2) * x2 (sign of x2)",
    "subtract": "x1 - x2",
    # composites
    "hypot": "sqrt(x1**2 + x2**2) without overflow",
    "logaddexp": "log(exp(x1) + exp(x2)) without overflow",
}
_COMPOSITE_UNARY = ("positive", "square", "erf")
_COMPOSITE_BINARY = ("hypot", "logaddexp")


class UnaryOp(Protocol):
    """An elementwise function of one array: ``op(x) -> array``."""

    __name__: str

    def __call__(self, x: Any, /) -> Any: ...


class BinaryOp(Protocol):
    """An elementwise function of two arrays (or one array and a Python scalar)."""

    __name__: str

    def __call__(self, x1: Any, x2: Any, /) -> Any: ...


def _unary(name: str) -> UnaryOp:
    composite = name in _COMPOSITE_UNARY

    def op(x: Any, /) -> Any:
        backend = _type_cache.get(type(x))  # an array of a backend seen before: its op, directly
        if backend is not None:
            return getattr(backend, name)(x) if composite else backend.unary(name, x)
        backend, (x,) = resolve(x)
        if not backend.is_array(x):
            x = backend.asarray(x, None, None, None)
        return getattr(backend, name)(x) if composite else backend.unary(name, x)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = (
        f"Elementwise {_UNARY_DOC[name]}.\n\n``x``: an array of any shape; the result "
        "has x's shape. Dtype rules follow the array API standard; an unsupported "
        "dtype raises the backend's TypeError."
    )
    return op


def _binary(name: str) -> BinaryOp:
    composite = name in _COMPOSITE_BINARY

    def op(x1: Any, x2: Any, /) -> Any:
        # an array of a backend seen before with one of the same type or a Python scalar: that
        # backend's op, directly (what resolve would choose, with nothing to move or convert)
        t1, t2 = type(x1), type(x2)
        backend = _type_cache.get(t1) if t2 is t1 or t2 in _SCALARS else None
        if backend is None and t1 in _SCALARS:
            backend = _type_cache.get(t2)
        if backend is not None:
            return getattr(backend, name)(x1, x2) if composite else backend.binary(name, x1, x2)
        backend, (x1, x2) = resolve(x1, x2)
        if not (backend.is_array(x1) or backend.is_array(x2)):
            x1 = backend.asarray(x1, None, None, None)
        return getattr(backend, name)(x1, x2) if composite else backend.binary(name, x1, x2)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = (
        f"Elementwise {_BINARY_DOC[name]}.\n\n``x1``, ``x2``: arrays (or one Python "
        "scalar) whose shapes broadcast; the result has the broadcast shape. Raises "
        "ValueError if the shapes do not broadcast."
    )
    return op


# One assignment per op (UNARY_OPS / BINARY_OPS of arrayq.backend, then the composites), so
# that type checkers and editors see every name; tests/test_ops.py checks none is missing.
abs = _unary("abs")
acos = _unary("acos")
acosh = _unary("acosh")
asin = _unary("asin")
asinh = _unary("asinh")
atan = _unary("atan")
atanh = _unary("atanh")
bitwise_invert = _unary("bitwise_invert")
ceil = _unary("ceil")
conj = _unary("conj")
cos = _unary("cos")
cosh = _unary("cosh")
exp = _unary("exp")
expm1 = _unary("expm1")
floor = _unary("floor")
imag = _unary("imag")
isfinite = _unary("isfinite")
isinf = _unary("isinf")
isnan = _unary("isnan")
log = _unary("log")
log1p = _unary("log1p")
log2 = _unary("log2")
log10 = _unary("log10")
logical_not = _unary("logical_not")
negative = _unary("negative")
real = _unary("real")
round = _unary("round")
sign = _unary("sign")
signbit = _unary("signbit")
sin = _unary("sin")
sinh = _unary("sinh")
sqrt = _unary("sqrt")
tan = _unary("tan")
tanh = _unary("tanh")
trunc = _unary("trunc")
positive = _unary("positive")
square = _unary("square")
erf = _unary("erf")

add = _binary("add")
atan2 = _binary("atan2")
bitwise_and = _binary("bitwise_and")
bitwise_left_shift = _binary("bitwise_left_shift")
bitwise_or = _binary("bitwise_or")
bitwise_right_shift = _binary("bitwise_right_shift")
bitwise_xor = _binary("bitwise_xor")
copysign = _binary("copysign")
divide = _binary("divide")
equal = _binary("equal")
floor_divide = _binary("floor_divide")
greater = _binary("greater")
greater_equal = _binary("greater_equal")
less = _binary("less")
less_equal = _binary("less_equal")
logical_and = _binary("logical_and")
logical_or = _binary("logical_or")
logical_xor = _binary("logical_xor")
maximum = _binary("maximum")
minimum = _binary("minimum")
multiply = _binary("multiply")
not_equal = _binary("not_equal")
pow = _binary("pow")
remainder = _binary("remainder")
subtract = _binary("subtract")
hypot = _binary("hypot")
logaddexp = _binary("logaddexp")


def clip(x: Any, /, min: Any = None, max: Any = None) -> Any:
    """``x`` limited to ``[min, max]`` (either bound may be None, a scalar or an array that
    broadcasts against x). Result has x's shape and dtype."""
    backend, (x, lo, hi) = resolve(x, min, max)
    return backend.clip(x, lo, hi)


__all__ = [
    "abs",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "bitwise_invert",
    "ceil",
    "conj",
    "cos",
    "cosh",
    "exp",
    "expm1",
    "floor",
    "imag",
    "isfinite",
    "isinf",
    "isnan",
    "log",
    "log1p",
    "log2",
    "log10",
    "logical_not",
    "negative",
    "real",
    "round",
    "sign",
    "signbit",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
    "trunc",
    "positive",
    "square",
    "erf",
    "add",
    "atan2",
    "bitwise_and",
    "bitwise_left_shift",
    "bitwise_or",
    "bitwise_right_shift",
    "bitwise_xor",
    "copysign",
    "divide",
    "equal",
    "floor_divide",
    "greater",
    "greater_equal",
    "less",
    "less_equal",
    "logical_and",
    "logical_or",
    "logical_xor",
    "maximum",
    "minimum",
    "multiply",
    "not_equal",
    "pow",
    "remainder",
    "subtract",
    "hypot",
    "logaddexp",
    "clip",
]
