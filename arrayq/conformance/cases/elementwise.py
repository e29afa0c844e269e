"""Elementwise cases: every unary and binary function over its dtypes and shapes, inside
each function's domain, plus a scalar operand, ``clip`` and ``where``.

The op names in ``UNARY`` and ``BINARY`` are the contract's ``UNARY_OPS`` / ``BINARY_OPS``
(less the complex-only ``conj``, ``real``, ``imag``) and the frontend's composites
(``positive``, ``square``, ``erf``, ``hypot``, ``logaddexp``); each entry adds what the
contract does not say, the dtypes and input range. tests/test_conformance.py checks the
names agree with the contract.
"""

from __future__ import annotations

import itertools

from ._common import FLOATS, INTS, Case, _arrays, _is_float, _op

SHAPES = ((), (0,), (3, 4))
# Shapes that broadcast against each other, for binary ops.
BINARY_SHAPES = (((), ()), ((0,), (1,)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)))


# op -> (dtypes, low, high): the input range keeps each function inside its domain.
UNARY = {
    "abs": (FLOATS + INTS[:2], -3, 3),
    "acos": (FLOATS, -0.9, 0.9),
    "acosh": (FLOATS, 1.1, 4),
    "asin": (FLOATS, -0.9, 0.9),
    "asinh": (FLOATS, -3, 3),
    "atan": (FLOATS, -3, 3),
    "atanh": (FLOATS, -0.9, 0.9),
    "bitwise_invert": (INTS + ("bool",), 0, 100),
    "ceil": (FLOATS, -3, 3),
    "cos": (FLOATS, -3, 3),
    "cosh": (FLOATS, -3, 3),
    "exp": (FLOATS, -3, 3),
    "expm1": (FLOATS, -1, 1),
    "floor": (FLOATS, -3, 3),
    "isfinite": (FLOATS, -3, 3),
    "isinf": (FLOATS, -3, 3),
    "isnan": (FLOATS, -3, 3),
    "log": (FLOATS, 0.1, 5),
    "log1p": (FLOATS, -0.5, 3),
    "log2": (FLOATS, 0.1, 5),
    "log10": (FLOATS, 0.1, 5),
    "logical_not": (("bool",), 0, 1),
    "negative": (FLOATS + INTS[:2], -3, 3),
    "positive": (FLOATS + INTS[:2], -3, 3),
    "round": (FLOATS, -3, 3),
    "sign": (FLOATS + INTS[:2], -3, 3),
    "signbit": (FLOATS, -3, 3),
    "sin": (FLOATS, -3, 3),
    "sinh": (FLOATS, -3, 3),
    "sqrt": (FLOATS, 0, 5),
    "square": (FLOATS + INTS[:2], -3, 3),
    "tan": (FLOATS, -1.2, 1.2),
    "tanh": (FLOATS, -3, 3),
    "trunc": (FLOATS, -3, 3),
    "erf": (FLOATS, -3, 3),
}
BINARY = {
    "add": (FLOATS + INTS, -3, 3),
    "subtract": (FLOATS + INTS[:2], -3, 3),
    "multiply": (FLOATS + INTS, -3, 3),
    "divide": (FLOATS, 0.5, 3),
    "floor_divide": (FLOATS + INTS[:2], 1, 9),
    "remainder": (FLOATS + INTS[:2], 1, 9),
    "pow": (FLOATS, 0.5, 2),
    "atan2": (FLOATS, -3, 3),
    "copysign": (FLOATS, -3, 3),
    "hypot": (FLOATS, -3, 3),
    "logaddexp": (FLOATS, -3, 3),
    "maximum": (FLOATS + INTS, -3, 3),
    "minimum": (FLOATS + INTS, -3, 3),
    "equal": (FLOATS + INTS, -2, 2),
    "not_equal": (FLOATS + INTS, -2, 2),
    "greater": (FLOATS + INTS, -3, 3),
    "greater_equal": (FLOATS + INTS, -2, 2),
    "less": (FLOATS + INTS, -3, 3),
    "less_equal": (FLOATS + INTS, -2, 2),
    "logical_and": (("bool",), 0, 1),
    "logical_or": (("bool",), 0, 1),
    "logical_xor": (("bool",), 0, 1),
    "bitwise_and": (INTS + ("bool",), 0, 100),
    "bitwise_or": (INTS + ("bool",), 0, 100),
    "bitwise_xor": (INTS + ("bool",), 0, 100),
    "bitwise_left_shift": (INTS[:2] + ("uint8",), 0, 5),
    "bitwise_right_shift": (INTS[:2] + ("uint8",), 0, 100),
}


def elementwise_cases() -> list[Case]:
    cases = []
    for name, (dtypes, lo, hi) in UNARY.items():
        for dtype, shape in itertools.product(dtypes, SHAPES):
            cases.append(
                Case(
                    f"{name}[{dtype},{shape}]",
                    name,
                    (dtype,),
                    _arrays((shape, dtype, lo, hi)),
                    _op(name),
                    "close" if _is_float(dtype) else "exact",
                    dtype in ("float16", "bfloat16"),
                )
            )
    for name, (dtypes, lo, hi) in BINARY.items():
        for dtype, (s1, s2) in itertools.product(dtypes, BINARY_SHAPES):
            if name == "bitwise_left_shift":  # keep shifted values inside the type
                hi2 = 3
            else:
                hi2 = hi
            make = _arrays(
                (s1, dtype, lo, hi),
                (s2, dtype, lo if name != "bitwise_right_shift" else 0, hi2 if name != "bitwise_right_shift" else 3),
            )
            cases.append(
                Case(
                    f"{name}[{dtype},{s1},{s2}]",
                    name,
                    (dtype,),
                    make,
                    _op(name),
                    "close" if _is_float(dtype) else "exact",
                    dtype in ("float16", "bfloat16"),
                )
            )
    for dtype in ("float32", "int32"):
        cases.append(
            Case(
                f"add[{dtype},scalar]",
                "add",
                (dtype,),
                _arrays(((3,), dtype, -3, 3)),
                lambda aq, x: aq.add(x, 2),
                "exact",
            )
        )
    cases.append(
        Case(
            "clip[float32]",
            "clip",
            ("float32",),
            _arrays(((4, 5), "float32", -3, 3)),
            lambda aq, x: aq.clip(x, -1.0, 0.5),
            "exact",
        )
    )
    cases.append(
        Case(
            "where[float32,broadcast]",
            "where",
            ("float32",),
            _arrays(((3, 1), "bool", 0, 1), ((4,), "float32", -3, 3), ((), "float32", -3, 3)),
            lambda aq, c, a, b: aq.where(c, a, b),
            "exact",
        )
    )
    return cases
