"""Element-wise functions (array API chapter "Element-wise Functions", plus erf and clip)
on both test backends, against Python's math/cmath/decimal applied element by element.

Tolerances. Ops the IEEE standard defines exactly (+ - * /, sqrt, comparisons, rounding,
sign manipulation) are compared exactly: the reference computes in double precision and
rounds once to the tested dtype, which is the correctly rounded result because a double
has more than 2p+2 bits for every p-bit format tested (p <= 24), so the double rounding is
innocuous. Transcendental functions are not correctly rounded by libm or NumPy's SIMD
loops: TRANSCENDENTAL_ULPS below says how many units in the last place each dtype gets.
"""

import cmath
import itertools
import math
import operator
from decimal import Decimal, localcontext

import array_api_strict as strict
import numpy as np
import pytest

import arrayq as aq
from arrayq.backend import BINARY_OPS, UNARY_OPS
from tests._ops_support import be, eps, quiet  # noqa: F401 (fixture)

COVERS = {*UNARY_OPS, *BINARY_OPS, "positive", "square", "erf", "hypot", "logaddexp", "clip"}

# NaNs, infinities and overflows are made on purpose here; NumPy's warnings about them are noise
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

inf, nan = math.inf, math.nan

#: Relative tolerance of functions that are not correctly rounded, in units of the dtype's
#: epsilon (an ulp is at most eps relative to the value). NumPy's float32/float64 loops
#: (libm, or SVML/AVX512 where the CPU has it) document errors below 4 ulps, and the
#: float64 reference (Python's math, libm) adds up to 1: 8 leaves a margin for any CPU.
#: float16 and bfloat16 are computed in float32 and rounded once: within 1 ulp, so 2.
#: Complex functions combine several real ones, relative to the magnitude: 16.
TRANSCENDENTAL_ULPS = {"float64": 8, "float32": 8, "float16": 2, "bfloat16": 2, "complex128": 16, "complex64": 16}

REAL_FLOATS = [aq.float32, aq.float64, aq.float16, aq.bfloat16]


def _pi() -> Decimal:
    return Decimal("3.14159265358979323846264338327950288419716939937510582097494459")


def erf_reference(v: float) -> float:
    """erf by its Maclaurin series in 70-digit decimal arithmetic: independent of libm and
    of both implementations under test, and correctly rounded to double."""
    if math.isnan(v):
        return nan
    if abs(v) >= 6:  # 1 - erf(6) < 2.2e-17: rounds to 1 in double
        return math.copysign(1.0, v)
    with localcontext() as ctx:
        ctx.prec = 70
        x = Decimal(v)
        x2, term, total, n = x * x, x, x, 0
        while True:
            n += 1
            term = -term * x2 / n
            add = term / (2 * n + 1)
            total += add
            if add == 0 or abs(add) < Decimal(10) ** -45:
                break
        return float(total * 2 / _pi().sqrt())


def logaddexp_reference(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return nan
    if inf in (a, b):
        return inf
    if a == -inf or b == -inf:
        return max(a, b)
    with localcontext() as ctx:
        ctx.prec = 50
        return float((Decimal(a).exp() + Decimal(b).exp()).ln())


def _nan_max(a, b):
    return nan if math.isnan(a) or math.isnan(b) else max(a, b)


def _nan_min(a, b):
    return nan if math.isnan(a) or math.isnan(b) else min(a, b)


def _sign(v):
    return nan if math.isnan(v) else float((v > 0) - (v < 0))


GENERAL = [-2.75, -1.0, -0.5, 0.0, 0.5, 1.25, 3.0]
ANGLES = [-3.0, -1.25, -0.5, 0.0, 0.5, 1.0, 2.75]

# name: (reference on a Python float, inputs, exact?)
UNARY_REAL = {
    "abs": (abs, GENERAL, True),
    "acos": (math.acos, [-1.0, -0.5, 0.0, 0.25, 1.0], False),
    "acosh": (math.acosh, [1.0, 1.5, 10.0, 1000.0], False),
    "asin": (math.asin, [-1.0, -0.5, 0.0, 0.25, 1.0], False),
    "asinh": (math.asinh, GENERAL, False),
    "atan": (math.atan, GENERAL, False),
    "atanh": (math.atanh, [-0.875, -0.5, 0.0, 0.25, 0.96875], False),
    "ceil": (lambda v: float(math.ceil(v)), [-2.75, -1.0, -0.25, 0.0, 0.5, 1.25, 3.0], True),
    "cos": (math.cos, ANGLES, False),
    "cosh": (math.cosh, GENERAL, False),
    "exp": (math.exp, GENERAL + [-10.0, 10.0], False),
    "expm1": (math.expm1, GENERAL + [1e-10, -3e-9], False),
    "floor": (lambda v: float(math.floor(v)), GENERAL, True),
    "log": (math.log, [0.125, 0.5, 1.0, 2.0, 3.0, 1000.0], False),
    "log1p": (math.log1p, [-0.5, 1e-10, 0.0, 0.5, 3.0, 1000.0], False),
    "log2": (math.log2, [0.125, 0.5, 1.0, 3.0, 1024.0], False),
    "log10": (math.log10, [0.125, 1.0, 3.0, 100.0, 1000.0], False),
    "negative": (operator.neg, GENERAL, True),
    "positive": (lambda v: v, GENERAL, True),
    "round": (lambda v: float(round(v)), [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.75, -2.25], True),  # half to even
    "sign": (_sign, GENERAL, True),
    "sin": (math.sin, ANGLES, False),
    "sinh": (math.sinh, GENERAL, False),
    "sqrt": (math.sqrt, [0.0, 0.25, 2.0, 3.0, 10.0, 1e4], True),  # IEEE: correctly rounded
    "square": (lambda v: v * v, GENERAL, True),
    "tan": (math.tan, ANGLES, False),
    "tanh": (math.tanh, GENERAL, False),
    "trunc": (lambda v: float(math.trunc(v)), GENERAL + [-0.25], True),
    # real -> bool
    "isfinite": (math.isfinite, GENERAL + [inf, -inf, nan], True),
    "isinf": (math.isinf, GENERAL + [inf, -inf, nan], True),
    "isnan": (math.isnan, GENERAL + [inf, -inf, nan], True),
    "signbit": (lambda v: math.copysign(1.0, v) < 0, GENERAL + [-0.0, inf, -inf], True),
}
BOOL_RESULT = {"isfinite", "isinf", "isnan", "signbit"}


def _tolerance(name_exact, dtype):
    return {} if name_exact else {"rtol": TRANSCENDENTAL_ULPS[dtype.name] * eps(dtype)}


@pytest.mark.parametrize("dtype", REAL_FLOATS, ids=lambda d: d.name)
@pytest.mark.parametrize("name", sorted(UNARY_REAL))
def test_unary_real_floating(be, name, dtype):
    ref, values, exact = UNARY_REAL[name]
    data = np.array(values, dtype.dtype).reshape(-1, 1)[:, [0, 0]]  # (n, 2): a 2-D input
    # the reference works on the values the array really holds (rounded to its dtype)
    expected = [[ref(float(v)) for v in row] for row in data.astype(np.float64)]
    out_dtype = aq.bool if name in BOOL_RESULT else dtype
    expected = np.array(expected, np.float64 if out_dtype != aq.bool else bool).astype(out_dtype.dtype)
    be.check(getattr(aq, name)(be.arr(data)), expected, out_dtype, **_tolerance(exact, dtype))


@pytest.mark.parametrize("shape", [(), (0,), (0, 3), (2, 1, 3)])
@pytest.mark.parametrize("name", sorted(UNARY_REAL))
def test_unary_keeps_any_shape(be, name, shape):
    ref, values, exact = UNARY_REAL[name]
    size = int(np.prod(shape))
    data = np.array((values * (size // len(values) + 1))[:size], np.float64).reshape(shape)
    expected = np.array([ref(float(v)) for v in data.ravel()], bool if name in BOOL_RESULT else np.float64).reshape(
        shape
    )
    be.check(
        getattr(aq, name)(be.arr(data)),
        expected,
        aq.bool if name in BOOL_RESULT else aq.float64,
        **_tolerance(exact, aq.float64),
    )


# (op, input, result): the IEEE 754 / array API special cases, by hand
SPECIAL = [
    ("abs", -0.0, 0.0),
    ("abs", -inf, inf),
    ("abs", nan, nan),
    ("acos", 2.0, nan),
    ("acosh", 1.0, 0.0),
    ("acosh", 0.5, nan),
    ("asin", -0.0, -0.0),
    ("asinh", -inf, -inf),
    ("atan", inf, math.pi / 2),
    ("atan", -0.0, -0.0),
    ("atanh", 1.0, inf),
    ("atanh", -1.0, -inf),
    ("atanh", 2.0, nan),
    ("ceil", -0.5, -0.0),
    ("ceil", inf, inf),
    ("ceil", nan, nan),
    ("cos", inf, nan),
    ("cos", -0.0, 1.0),
    ("cosh", -inf, inf),
    ("exp", -inf, 0.0),
    ("exp", inf, inf),
    ("exp", nan, nan),
    ("exp", 1000.0, inf),
    ("expm1", -inf, -1.0),
    ("expm1", -0.0, -0.0),
    ("expm1", inf, inf),
    ("floor", -0.0, -0.0),
    ("floor", -inf, -inf),
    ("log", 0.0, -inf),
    ("log", -0.0, -inf),
    ("log", -1.0, nan),
    ("log", inf, inf),
    ("log", 1.0, 0.0),
    ("log1p", -1.0, -inf),
    ("log1p", -2.0, nan),
    ("log1p", -0.0, -0.0),
    ("log2", 0.0, -inf),
    ("log2", 8.0, 3.0),
    ("log10", 0.0, -inf),
    ("log10", 1000.0, 3.0),
    ("negative", 0.0, -0.0),
    ("negative", -inf, inf),
    ("positive", -0.0, -0.0),
    ("round", -0.5, -0.0),
    ("round", 2.5, 2.0),
    ("round", -1.5, -2.0),
    ("round", inf, inf),
    ("round", nan, nan),
    ("sign", -3.0, -1.0),
    ("sign", inf, 1.0),
    ("sign", -inf, -1.0),
    ("sign", nan, nan),
    ("sign", 0.0, 0.0),
    ("sin", inf, nan),
    ("sin", -0.0, -0.0),
    ("sinh", -inf, -inf),
    ("sinh", -0.0, -0.0),
    ("sqrt", -0.0, -0.0),
    ("sqrt", -1.0, nan),
    ("sqrt", inf, inf),
    ("sqrt", 4.0, 2.0),
    ("square", -inf, inf),
    ("square", nan, nan),
    ("square", -0.0, 0.0),
    ("tan", -0.0, -0.0),
    ("tan", inf, nan),
    ("tanh", inf, 1.0),
    ("tanh", -inf, -1.0),
    ("tanh", -0.0, -0.0),
    ("trunc", -0.75, -0.0),
    ("trunc", -inf, -inf),
    ("isfinite", inf, False),
    ("isfinite", nan, False),
    ("isinf", -inf, True),
    ("isnan", nan, True),
    ("signbit", -0.0, True),
    ("signbit", 0.0, False),
    ("signbit", -inf, True),
    ("erf", inf, 1.0),
    ("erf", -inf, -1.0),
    ("erf", nan, nan),
    ("erf", 0.0, 0.0),
]


@pytest.mark.parametrize("dtype", [aq.float32, aq.float64], ids=lambda d: d.name)
@pytest.mark.parametrize("name, value, result", SPECIAL, ids=lambda v: repr(v) if isinstance(v, float) else v)
def test_unary_special_values(be, name, value, result, dtype):
    with quiet():
        got = getattr(aq, name)(be.arr([value, value], dtype))
    out_dtype = aq.bool if isinstance(result, bool) else dtype
    # infinities, NaNs and zeros compare exactly under any rtol; finite results of
    # transcendental functions (log10(1000) == 3) get their ulps like everywhere else
    exact = name in ("erf", *BOOL_RESULT) or UNARY_REAL[name][2]
    out = be.check(got, [result, result], out_dtype, **_tolerance(exact, dtype))
    if result == 0 and not isinstance(result, bool):  # and the zero has the right sign
        assert [math.copysign(1, v) for v in out.tolist()] == [math.copysign(1, result)] * 2


def test_unary_ops_take_0d_and_python_scalars(be):
    be.check(aq.sqrt(be.arr(16.0)), 4.0, aq.float64)
    be.check(aq.negative(be.arr(np.int8(5))), -5, aq.int8)
    with be.creating():
        be.check(aq.square(3), 9, aq.int64)  # a Python scalar becomes the default dtype
        be.check(aq.exp(0.0), 1.0, aq.float64)
        be.check(aq.erf(0.0), 0.0, aq.float64)
        be.check(aq.positive(2.5), 2.5, aq.float64)


def test_numpy_scalars_give_arrays_not_scalars():
    # NumPy scalars belong to the NumPy backend; what it gives back is a 0-d ndarray
    for out, dtype in (
        (aq.sin(np.float64(1.0)), aq.float64),
        (aq.add(np.float32(1.0), np.float32(2.0)), aq.float32),
        (aq.isnan(np.float16(1.0)), aq.bool),
        (aq.erf(np.float64(0.5)), aq.float64),
        (aq.square(np.int8(3)), aq.int8),
        (aq.hypot(np.float64(3.0), np.float64(4.0)), aq.float64),
        (aq.clip(np.float32(3.0), 0.0, 1.0), aq.float32),
    ):
        assert type(out) is np.ndarray and out.shape == () and aq.dtype(out) == dtype


# ---------------------------------------------------------------------- integers and bools

INT_DTYPES = [aq.int8, aq.int16, aq.int32, aq.int64, aq.uint8, aq.uint16, aq.uint32, aq.uint64]
INT_UNARY = {
    "abs": abs,
    "negative": operator.neg,
    "positive": lambda v: v,
    "sign": lambda v: (v > 0) - (v < 0),
    "square": lambda v: v * v,
    "ceil": lambda v: v,
    "floor": lambda v: v,
    "round": lambda v: v,
    "trunc": lambda v: v,
    "bitwise_invert": operator.invert,
}


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("name", sorted(INT_UNARY))
def test_unary_integer(be, name, dtype):
    signed = dtype.kind == "signed"
    if name == "negative" and not signed:
        pytest.skip("negating an unsigned integer wraps: implementation-defined")
    values = [-11, -3, -1, 0, 1, 2, 11] if signed else [0, 1, 2, 3, 11, 15]
    bits = dtype.bits
    expected = [INT_UNARY[name](v) % (2**bits) for v in values]  # wrap like two's complement
    expected = [e - 2**bits if signed and e >= 2 ** (bits - 1) else e for e in expected]
    be.check(getattr(aq, name)(be.arr(values, dtype)), expected, dtype)


@pytest.mark.parametrize("dtype", [aq.int8, aq.uint16, aq.int64], ids=lambda d: d.name)
def test_integers_are_finite_numbers(be, dtype):
    x = be.arr([0, 1, 5], dtype)
    be.check(aq.isfinite(x), [True] * 3, aq.bool)
    be.check(aq.isinf(x), [False] * 3, aq.bool)
    be.check(aq.isnan(x), [False] * 3, aq.bool)


def test_unary_bool(be):
    x = be.arr([[True, False], [False, False]])
    be.check(aq.logical_not(x), [[False, True], [True, True]], aq.bool)
    be.check(aq.bitwise_invert(x), [[False, True], [True, True]], aq.bool)
    be.check(aq.logical_not(be.arr(True)), False, aq.bool)


# ---------------------------------------------------------------------- complex

Z = [1 + 2j, -0.5 + 0.25j, 0j, -3 - 1j, 2.5j, 4 + 0j]
UNARY_COMPLEX = {
    # name: (reference, result kind, exact?)
    "abs": (abs, "real", False),
    "conj": (lambda z: z.conjugate(), "same", True),
    "real": (lambda z: z.real, "real", True),
    "imag": (lambda z: z.imag, "real", True),
    "negative": (operator.neg, "same", True),
    "positive": (lambda z: z, "same", True),
    "sign": (lambda z: z / abs(z) if z else 0j, "same", False),
    "sqrt": (cmath.sqrt, "same", False),
    "exp": (cmath.exp, "same", False),
    "log": (cmath.log, "same", False),
    "sin": (cmath.sin, "same", False),
    "cos": (cmath.cos, "same", False),
    "tanh": (cmath.tanh, "same", False),
    "square": (lambda z: z * z, "same", False),
    "isnan": (cmath.isnan, "bool", True),
    "isfinite": (cmath.isfinite, "bool", True),
    "isinf": (cmath.isinf, "bool", True),
}


@pytest.mark.parametrize("dtype", [aq.complex64, aq.complex128], ids=lambda d: d.name)
@pytest.mark.parametrize("name", sorted(UNARY_COMPLEX))
def test_unary_complex(be, name, dtype):
    ref, kind, exact = UNARY_COMPLEX[name]
    values = Z if name != "log" else [z for z in Z if z]
    data = np.array(values, dtype.dtype)
    expected = [ref(complex(v)) for v in data]
    out_dtype = {"same": dtype, "real": {64: aq.float32, 128: aq.float64}[dtype.bits], "bool": aq.bool}[kind]
    be.check(
        getattr(aq, name)(be.arr(data)),
        np.array(expected).astype(out_dtype.dtype),
        out_dtype,
        **({} if exact else {"rtol": TRANSCENDENTAL_ULPS[dtype.name] * eps(dtype), "atol": eps(dtype)}),
    )


# (op, input, result): complex special cases of the array API (2023.12) that NumPy's own
# functions do not follow, by hand from the standard's lists; zeros' signs are checked too
COMPLEX_SPECIAL = [
    ("expm1", complex(inf, 0.0), complex(inf, 0.0)),
    ("expm1", complex(nan, 0.0), complex(nan, 0.0)),
    ("expm1", complex(-inf, inf), complex(-1.0, 0.0)),
    ("expm1", complex(-inf, nan), complex(-1.0, 0.0)),
    ("expm1", complex(inf, nan), complex(inf, nan)),
    ("expm1", complex(-0.0, 0.0), complex(0.0, 0.0)),
    ("expm1", complex(0.0, -0.0), complex(0.0, -0.0)),  # expm1(conj(x)) == conj(expm1(x))
    ("tanh", complex(inf, 2.0), complex(1.0, 0.0)),
    ("tanh", complex(inf, -2.0), complex(1.0, -0.0)),
    ("tanh", complex(-inf, 1e150), complex(-1.0, 0.0)),  # tanh is odd and conjugate-symmetric
]


@pytest.mark.parametrize("dtype", [aq.complex64, aq.complex128], ids=lambda d: d.name)
@pytest.mark.parametrize("name, value, result", COMPLEX_SPECIAL, ids=str)
def test_unary_complex_special_values(be, name, value, result, dtype):
    with quiet():
        out = be.out(getattr(aq, name)(be.arr([value, 0.5 + 0.25j], dtype)))
    assert out.dtype == dtype.dtype
    got = complex(out[0])
    for part, want in ((got.real, result.real), (got.imag, result.imag)):
        assert (math.isnan(part) and math.isnan(want)) or (
            part == want and math.copysign(1, part) == math.copysign(1, want)
        ), (got, result)
    # the ordinary element next to it is untouched
    ordinary = {"expm1": cmath.exp(0.5 + 0.25j) - 1, "tanh": cmath.tanh(0.5 + 0.25j)}[name]
    assert abs(complex(out[1]) - ordinary) < 1e-6


# ---------------------------------------------------------------------- erf


ERF_INPUTS = [-10.0, -3.0, -1.5, -0.5, -1e-3, 0.0, 1e-8, 0.25, 0.5, 1.0, 2.0, 2.4, 2.6, 3.5, 5.9, 6.0, 27.0]


@pytest.mark.parametrize("dtype", [aq.float64, aq.float32, aq.float16, aq.bfloat16], ids=lambda d: d.name)
def test_erf(be, dtype):
    data = np.array(ERF_INPUTS, dtype.dtype)
    expected = np.array([erf_reference(float(v)) for v in data.astype(np.float64)])
    # both backends run the contract's formula (NumPy in blocks): within 1.5 ulps in float32
    # and 2 in float64, half an ulp plus float32's error in float16/bfloat16 (tests/test_ops_erf.py
    # explains and checks these bounds densely); an ulp is at most eps relative
    tol = {"rtol": 2 * eps(dtype)}
    be.check(aq.erf(be.arr(data)), expected.astype(dtype.dtype), dtype, **tol)


def test_erf_is_odd_and_keeps_shape(be):
    data = np.linspace(-4, 4, 24).reshape(2, 3, 4)
    pos, neg = be.out(aq.erf(be.arr(data))), be.out(aq.erf(be.arr(-data)))
    assert pos.shape == (2, 3, 4)
    np.testing.assert_array_equal(pos, -neg)
    be.check(aq.erf(be.arr(np.zeros((0, 2)))), np.zeros((0, 2)), aq.float64)
    be.check(aq.erf(be.arr(0.5)), erf_reference(0.5), aq.float64, atol=1e-14)


# ---------------------------------------------------------------------- binary ops

X1 = [-2.75, -1.0, -0.5, 0.0, 0.5, 1.25, 3.0, 7.5]
X2 = [1.5, -2.0, 0.25, 3.0, -0.75, 1.25, -4.0, 2.0]  # no zeros: divisors
POSITIVE = [0.25, 0.5, 1.0, 1.25, 2.0, 3.0, 7.5, 10.0]

# name: (reference on two Python floats, (x1, x2) inputs, exact?)
BINARY_REAL = {
    "add": (operator.add, (X1, X2), True),
    "subtract": (operator.sub, (X1, X2), True),
    "multiply": (operator.mul, (X1, X2), True),
    "divide": (operator.truediv, (X1, X2), True),
    "maximum": (_nan_max, (X1 + [nan, 1.0], X2 + [1.0, nan]), True),
    "minimum": (_nan_min, (X1 + [nan, 1.0], X2 + [1.0, nan]), True),
    "copysign": (math.copysign, (X1 + [2.0, 2.0], X2 + [-0.0, 0.0]), True),
    "atan2": (math.atan2, (X1 + [0.0, -0.0, 0.0], X2 + [-1.0, -1.0, 0.0]), False),
    "pow": (math.pow, (POSITIVE, X2), False),
    "hypot": (math.hypot, (X1 + [3.0, 1e300, 1e-300], X2 + [4.0, 1e300, 1e-300]), False),
    "logaddexp": (logaddexp_reference, (X1 + [800.0, -800.0], X2 + [800.0, -801.0]), False),
    "floor_divide": (operator.floordiv, (X1, X2), True),
    "remainder": (operator.mod, (X1, X2), True),  # the sign of the divisor, like Python
    "equal": (operator.eq, (X1 + [nan], X1[::-1] + [nan]), True),
    "not_equal": (operator.ne, (X1 + [nan], X1[::-1] + [nan]), True),
    "less": (operator.lt, (X1 + [nan], X2 + [1.0]), True),
    "less_equal": (operator.le, (X1 + [1.25], X2 + [1.25]), True),
    "greater": (operator.gt, (X1 + [nan], X2 + [1.0]), True),
    "greater_equal": (operator.ge, (X1 + [1.25], X2 + [1.25]), True),
}
COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}
#: computed in float32 for these small formats, so only the IEEE-exact ops are exact there
SMALL_FLOAT_OK = {
    "add",
    "subtract",
    "multiply",
    "divide",
    "maximum",
    "minimum",
    "copysign",
    *COMPARISONS,
    "atan2",
    "pow",
    "hypot",
    "logaddexp",
}


@pytest.mark.parametrize("dtype", REAL_FLOATS, ids=lambda d: d.name)
@pytest.mark.parametrize("name", sorted(BINARY_REAL))
def test_binary_real_floating(be, name, dtype):
    if dtype.bits == 16 and name not in SMALL_FLOAT_OK:
        pytest.skip("floor_divide/remainder are tested in float32 and float64")
    ref, (a, b), exact = BINARY_REAL[name]
    if dtype.bits == 16 and name in ("hypot", "logaddexp"):
        a, b = a[:8], b[:8]  # 1e300 and 800 are out of range
    x1, x2 = np.array(a, dtype.dtype), np.array(b, dtype.dtype)
    expected = [ref(float(u), float(v)) for u, v in zip(x1.astype(np.float64), x2.astype(np.float64))]
    out_dtype = aq.bool if name in COMPARISONS else dtype
    with quiet():
        expected = np.array(expected, bool if out_dtype == aq.bool else np.float64).astype(out_dtype.dtype)
        got = getattr(aq, name)(be.arr(x1), be.arr(x2))
    be.check(got, expected, out_dtype, **_tolerance(exact, dtype))


INT_X1 = [-7, -3, -1, 0, 1, 2, 5, 11]
INT_X2 = [2, -2, 3, 1, -4, 3, 2, -3]
UINT_X1 = [5, 7, 9, 10, 200, 3, 0, 1]
UINT_X2 = [1, 2, 3, 4, 5, 3, 7, 1]

BINARY_INT = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "floor_divide": operator.floordiv,
    "remainder": operator.mod,
    "maximum": max,
    "minimum": min,
    "bitwise_and": operator.and_,
    "bitwise_or": operator.or_,
    "bitwise_xor": operator.xor,
    "equal": operator.eq,
    "not_equal": operator.ne,
    "less": operator.lt,
    "less_equal": operator.le,
    "greater": operator.gt,
    "greater_equal": operator.ge,
}


@pytest.mark.parametrize("dtype", [aq.int8, aq.int16, aq.int64, aq.uint8, aq.uint32, aq.uint64], ids=lambda d: d.name)
@pytest.mark.parametrize("name", sorted(BINARY_INT) + ["pow", "bitwise_left_shift", "bitwise_right_shift"])
def test_binary_integer(be, name, dtype):
    a, b = (INT_X1, INT_X2) if dtype.kind == "signed" else (UINT_X1, UINT_X2)
    if name == "pow":
        a, b, ref = a, [abs(v) % 3 for v in b], operator.pow  # small non-negative exponents
    elif name in ("bitwise_left_shift", "bitwise_right_shift"):
        b = [abs(v) % 4 for v in b]
        ref = operator.lshift if name == "bitwise_left_shift" else operator.rshift  # >> is arithmetic
    else:
        ref = BINARY_INT[name]
    expected = [ref(u, v) for u, v in zip(a, b)]
    out_dtype = aq.bool if name in COMPARISONS else dtype
    be.check(
        getattr(aq, name)(be.arr(a, dtype), be.arr(b, dtype)), np.array(expected).astype(out_dtype.dtype), out_dtype
    )


BOOLS = ([True, True, False, False], [True, False, True, False])


@pytest.mark.parametrize(
    "name, ref",
    [
        ("logical_and", operator.and_),
        ("logical_or", operator.or_),
        ("logical_xor", operator.xor),
        ("bitwise_and", operator.and_),
        ("bitwise_or", operator.or_),
        ("bitwise_xor", operator.xor),
        ("equal", operator.eq),
        ("not_equal", operator.ne),
    ],
)
def test_binary_bool(be, name, ref):
    a, b = BOOLS
    be.check(getattr(aq, name)(be.arr(a), be.arr(b)), [ref(u, v) for u, v in zip(a, b)], aq.bool)


@pytest.mark.parametrize("dtype", [aq.complex64, aq.complex128], ids=lambda d: d.name)
@pytest.mark.parametrize(
    "name, ref, exact",
    [
        ("add", operator.add, True),
        ("subtract", operator.sub, True),
        ("multiply", operator.mul, False),
        ("divide", operator.truediv, False),
        ("equal", operator.eq, True),
        ("not_equal", operator.ne, True),
    ],
)
def test_binary_complex(be, name, ref, exact, dtype):
    a, b = np.array(Z, dtype.dtype), np.array([2 - 1j, 0.5j, 1 + 1j, -3 - 1j, 4, 0.25 + 0.5j], dtype.dtype)
    expected = np.array([ref(complex(u), complex(v)) for u, v in zip(a, b)])
    out_dtype = aq.bool if name in COMPARISONS else dtype
    be.check(
        getattr(aq, name)(be.arr(a), be.arr(b)),
        expected.astype(out_dtype.dtype),
        out_dtype,
        # complex * and / take a few real roundings, in NumPy and in Python alike
        **({} if exact else {"rtol": 8 * eps(dtype)}),
    )


BROADCAST_SHAPES = [
    ((), ()),
    ((0,), (1,)),
    ((3, 4), (4,)),
    ((2, 1, 3), (4, 1)),
    ((1,), (0, 3)),
    ((2, 3), ()),
    ((5, 1), (1, 5)),
]


@pytest.mark.parametrize("s1, s2", BROADCAST_SHAPES, ids=str)
@pytest.mark.parametrize(
    "name", ["add", "multiply", "maximum", "less", "atan2", "hypot", "logaddexp", "copysign", "pow"]
)
def test_binary_broadcasts(be, name, s1, s2):
    ref, _, exact = BINARY_REAL[name]
    x1 = np.linspace(0.25, 4.0, int(np.prod(s1))).reshape(s1)
    x2 = np.linspace(-3.0, 2.0, int(np.prod(s2))).reshape(s2)
    b1, b2 = np.broadcast_arrays(x1, x2)  # the reference only needs the broadcast operands
    expected = np.array([ref(float(u), float(v)) for u, v in zip(b1.ravel(), b2.ravel())]).reshape(b1.shape)
    out_dtype = aq.bool if name in COMPARISONS else aq.float64
    be.check(getattr(aq, name)(be.arr(x1), be.arr(x2)), expected, out_dtype, **_tolerance(exact, aq.float64))
    if name == "pow":
        return  # x2 holds negative bases: no real power
    # and in the other order
    expected_t = np.array([ref(float(v), float(u)) for u, v in zip(b1.ravel(), b2.ravel())]).reshape(b1.shape)
    with quiet():
        be.check(getattr(aq, name)(be.arr(x2), be.arr(x1)), expected_t, out_dtype, **_tolerance(exact, aq.float64))


def test_shapes_that_do_not_broadcast_raise(be):
    for name in ("add", "hypot", "logaddexp"):
        with pytest.raises(ValueError):
            getattr(aq, name)(be.arr(np.ones((2, 3))), be.arr(np.ones((3, 2))))


# ---------------------------------------------------------------------- Python scalars and promotion


@pytest.mark.parametrize(
    "dtype, scalar, result",
    [
        (aq.float32, 1.5, aq.float32),
        (aq.float16, 2, aq.float16),
        (aq.float64, 2, aq.float64),
        (aq.bfloat16, 1.5, aq.bfloat16),
        (aq.bfloat16, 2, aq.bfloat16),
        (aq.float16, 0.5, aq.float16),
        (aq.int8, 3, aq.int8),
        (aq.uint8, 1, aq.uint8),
        (aq.int64, -2, aq.int64),
        (aq.complex64, 1.5, aq.complex64),
        (aq.float32, 1j, aq.complex64),
        (aq.float64, 2j, aq.complex128),
    ],
)
def test_python_scalars_take_the_array_dtype(be, dtype, scalar, result):
    x = be.arr([1, 2], dtype)
    expected = [complex(v) + scalar for v in (1, 2)] if result.kind == "complex" else [v + scalar for v in (1, 2)]
    be.check(aq.add(x, scalar), expected, result)
    be.check(aq.add(scalar, x), expected, result)
    expected_sub = [scalar - v for v in (1, 2)]
    be.check(aq.subtract(scalar, x), np.array(expected_sub).astype(result.dtype), result)


@pytest.mark.parametrize("dtype", [aq.bfloat16, aq.float16, aq.float32, aq.float64], ids=lambda d: d.name)
def test_scalars_with_the_composite_binary_ops(be, dtype):
    x = be.arr([3.0, 0.0, -5.0], dtype)
    be.check(aq.hypot(x, 4), [5.0, 4.0, math.hypot(5, 4)], dtype, **_tolerance(False, dtype))
    be.check(aq.hypot(4.0, x), [5.0, 4.0, math.hypot(5, 4)], dtype, **_tolerance(False, dtype))
    expected = [logaddexp_reference(v, 1.0) for v in (3.0, 0.0, -5.0)]
    be.check(aq.logaddexp(x, 1.0), expected, dtype, **_tolerance(False, dtype))
    be.check(aq.logaddexp(1, x), expected, dtype, **_tolerance(False, dtype))


def test_two_python_scalars_make_a_default_dtype_array(be):
    with be.creating():
        be.check(aq.add(1, 2), 3, aq.int64)
        be.check(aq.multiply(1.5, 2), 3.0, aq.float64)
        be.check(aq.less(1, 2.5), True, aq.bool)
        be.check(aq.hypot(3.0, 4.0), 5.0, aq.float64)
        be.check(aq.logaddexp(0.0, 0.0), math.log(2), aq.float64, **_tolerance(False, aq.float64))


ARRAY_API_DTYPES = [
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "complex64",
    "complex128",
]


def _strict_result(d1, d2):
    names = {getattr(strict, n): n for n in ARRAY_API_DTYPES}
    try:
        return names[strict.result_type(getattr(strict, d1), getattr(strict, d2))]
    except TypeError:
        return None


@pytest.mark.parametrize(
    "d1, d2", [(a, b) for a, b in itertools.product(ARRAY_API_DTYPES, repeat=2) if _strict_result(a, b) is not None]
)
def test_binary_results_follow_the_array_api_promotion_table(be, d1, d2):
    # array_api_strict's promotion table is an independent statement of the standard's
    expected = aq.as_dtype(_strict_result(d1, d2))
    x1, x2 = be.arr([1, 0], d1), be.arr([1, 1], d2)
    if expected != aq.bool:
        be.check(aq.add(x1, x2), np.array([2, 1]).astype(expected.dtype), expected)
        be.check(aq.multiply(x1, x2), np.array([1, 0]).astype(expected.dtype), expected)
    else:
        be.check(aq.logical_and(x1, x2), [True, False], aq.bool)
    be.check(aq.equal(x1, x2), [True, False], aq.bool)
    if expected.kind == "float":
        be.check(aq.hypot(x1, x2), [math.sqrt(2), 1.0], expected, **_tolerance(False, expected))
        be.check(
            aq.logaddexp(x1, x2),
            [logaddexp_reference(1, 1), logaddexp_reference(0, 1)],
            expected,
            **_tolerance(False, expected),
        )


# ---------------------------------------------------------------------- hypot and logaddexp special cases


def test_hypot_special_cases(be):
    # array API: an infinite operand gives +inf even with NaN; otherwise NaN propagates
    a = [inf, -inf, nan, inf, -inf, nan, 0.0, -0.0, 3.0, 1e308, 5e-324]
    b = [nan, nan, inf, inf, -inf, 1.0, 0.0, -0.0, -4.0, 1e308, 5e-324]
    expected = [inf, inf, inf, inf, inf, nan, 0.0, 0.0, 5.0, math.hypot(1e308, 1e308), math.hypot(5e-324, 5e-324)]
    with quiet():
        out = be.check(aq.hypot(be.arr(a), be.arr(b)), expected, aq.float64, **_tolerance(False, aq.float64))
    assert math.copysign(1, out[7]) == 1  # hypot(-0, -0) is +0
    with quiet():
        be.check(aq.hypot(be.arr(a[:6], aq.float32), be.arr(b[:6], aq.float32)), expected[:6], aq.float32)


def test_logaddexp_special_cases(be):
    a = [nan, 1.0, inf, inf, -inf, -inf, inf, 1000.0, -1000.0]
    b = [1.0, nan, 1.0, inf, -inf, 2.0, -inf, 1000.0, -1000.0]
    expected = [nan, nan, inf, inf, -inf, 2.0, inf, 1000.0 + math.log(2), -1000.0 + math.log(2)]
    with quiet():
        be.check(aq.logaddexp(be.arr(a), be.arr(b)), expected, aq.float64, **_tolerance(False, aq.float64))
        be.check(aq.logaddexp(be.arr(a[:7], aq.float32), be.arr(b[:7], aq.float32)), expected[:7], aq.float32)


def test_division_special_cases(be):
    a = [1.0, -1.0, 0.0, inf, nan, -0.0]
    b = [0.0, 0.0, 0.0, inf, 1.0, 2.0]
    with quiet():
        out = be.check(aq.divide(be.arr(a), be.arr(b)), [inf, -inf, nan, nan, nan, -0.0], aq.float64)
    assert math.copysign(1, out[5]) == -1


# ---------------------------------------------------------------------- clip


def _clip_ref(v, lo, hi):
    if any(isinstance(t, float) and math.isnan(t) for t in (v, lo, hi)):
        return nan
    if lo is not None:
        v = max(v, lo)
    if hi is not None:
        v = min(v, hi)
    return v


@pytest.mark.parametrize("lo, hi", [(0.0, 2.0), (None, 2.0), (-1.0, None), (None, None), (1.0, 1.0), (-10.0, 10.0)])
@pytest.mark.parametrize("dtype", [aq.float64, aq.float32, aq.float16, aq.bfloat16], ids=lambda d: d.name)
def test_clip_with_scalar_bounds(be, lo, hi, dtype):
    values = [-2.5, -1.0, 0.0, 0.5, 2.0, 3.75, nan]
    expected = [_clip_ref(v, lo, hi) for v in values]
    be.check(aq.clip(be.arr(values, dtype), lo, hi), np.array(expected).astype(dtype.dtype), dtype)
    be.check(aq.clip(be.arr(values, dtype), min=lo, max=hi), np.array(expected).astype(dtype.dtype), dtype)


@pytest.mark.parametrize("dtype", [aq.int8, aq.uint8, aq.int64], ids=lambda d: d.name)
def test_clip_integers(be, dtype):
    values = [0, 3, 7, 100] if dtype.kind == "unsigned" else [-100, -3, 0, 3, 7, 100]
    expected = [min(max(v, 2), 50) for v in values]
    be.check(aq.clip(be.arr(values, dtype), 2, 50), expected, dtype)
    be.check(aq.clip(be.arr(values, dtype), None, 5), [min(v, 5) for v in values], dtype)


def test_clip_with_array_bounds_that_broadcast(be):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    lo = np.array([1, 2, 3, 4], np.float32)
    hi = np.array([[5], [6], [20]], np.float32)
    expected = [[_clip_ref(float(x[i, j]), float(lo[j]), float(hi[i, 0])) for j in range(4)] for i in range(3)]
    be.check(aq.clip(be.arr(x), be.arr(lo), be.arr(hi)), expected, aq.float32)
    be.check(
        aq.clip(be.arr(x), be.arr(lo)),
        [[max(float(v), float(lo[j])) for j, v in enumerate(row)] for row in x],
        aq.float32,
    )
    be.check(
        aq.clip(be.arr(x), max=be.arr(np.float32(4.5))), [[min(float(v), 4.5) for v in row] for row in x], aq.float32
    )


def test_clip_0d_and_empty(be):
    be.check(aq.clip(be.arr(5.0), 0.0, 2.0), 2.0, aq.float64)
    be.check(aq.clip(be.arr(np.int16(-5)), 0, 2), 0, aq.int16)
    be.check(aq.clip(be.arr(np.zeros((0, 3), np.float32)), 0.0, 1.0), np.zeros((0, 3)), aq.float32)


def test_elementwise_all_lists_exactly_the_contract_ops():
    # _elementwise.__all__ is spelled out for static tools; it must stay the contract's op tables
    from arrayq import _elementwise

    expected = {*UNARY_OPS, *BINARY_OPS, "positive", "square", "erf", "hypot", "logaddexp", "clip"}
    assert set(_elementwise.__all__) == expected
    assert len(_elementwise.__all__) == len(expected)
