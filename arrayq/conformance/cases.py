"""The conformance cases: what every backend must do, as data.

A :class:`Case` makes its inputs as NumPy arrays from a seeded generator, runs one call
through the arrayq frontend on the NumPy reference backend and on the backend under test
(inputs moved there with ``arrayq.to_backend``), and compares the two results.

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

import itertools
import zlib
from collections.abc import Callable, Iterator, Sequence
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
SHAPES = ((), (0,), (3, 4))
# Shapes that broadcast against each other, for binary ops.
BINARY_SHAPES = (((), ()), ((0,), (1,)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)))


@dataclass(frozen=True)
class Case:
    """One check. ``call(aq, *args)`` runs the op through the frontend ``aq``; ``make(rng)``
    gives the NumPy inputs. ``expect`` is "close" (float tolerance), "exact", or "raises":
    the backend must raise the type the reference raises, and if ``raises`` names a type,
    both must raise that type (or a subclass), with a message matching the regular
    expression ``match``."""

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


# ---- elementwise ---------------------------------------------------------------------

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


def _op(name: str) -> Callable[..., Any]:
    return lambda aq, *args: getattr(aq, name)(*args)


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


# ---- reductions, manipulation, searching, linear algebra ------------------------------


def _simple(
    op: str,
    call: Callable[..., Any],
    shapes: Sequence[Any],
    dtypes: Sequence[str] = ("float32", "float64", "int32"),
    expect: str | None = None,
    lo: float = -3,
    hi: float = 3,
    variant: str = "",
) -> list[Case]:
    out = []
    for dtype, shape in itertools.product(dtypes, shapes):
        specs = shape if isinstance(shape, list) else [shape]
        make = _arrays(*((s, dtype, lo, hi) for s in specs))
        e = expect or ("close" if _is_float(dtype) else "exact")
        out.append(Case(f"{op}{variant}[{dtype},{','.join(map(str, specs))}]", op, (dtype,), make, call, e))
    return out


def structural_cases() -> list[Case]:
    S = [(), (0,), (3, 4), (2, 3, 4)]
    cases = []
    for red in ("sum", "prod", "max", "min", "mean", "var", "std", "count_nonzero"):
        dtypes = ("float32", "float64") if red in ("mean", "var", "std") else ("float32", "float64", "int32")
        shapes = [s for s in S if (red not in ("max", "min") or 0 not in s)]
        cases += _simple(red, lambda aq, x, r=red: getattr(aq, r)(x), shapes, dtypes, lo=-2, hi=2)
        cases += _simple(
            red,
            lambda aq, x, r=red: getattr(aq, r)(x, axis=-1, keepdims=True),
            [(3, 4), (2, 3, 4)],
            dtypes,
            lo=-2,
            hi=2,
            variant="(axis=-1,keepdims)",
        )
        cases += _simple(
            red,
            lambda aq, x, r=red: getattr(aq, r)(x, axis=(0, 2)),
            [(2, 3, 4)],
            dtypes,
            lo=-2,
            hi=2,
            variant="(axis=(0,2))",
        )
    for red in ("all", "any"):
        cases += _simple(red, lambda aq, x, r=red: getattr(aq, r)(x, axis=0), [(0,), (3, 4)], ("bool",), "exact")
    cases += _simple(
        "var", lambda aq, x: aq.var(x, axis=0, correction=1), [(5, 3)], ("float32",), variant="(correction=1)"
    )
    for arg in ("argmax", "argmin"):
        cases += _simple(
            arg,
            lambda aq, x, a=arg: getattr(aq, a)(x, axis=1, keepdims=True),
            [(3, 4)],
            ("float32", "int32"),
            "exact",
            -2,
            2,
        )
        cases += _simple(
            arg, lambda aq, x, a=arg: getattr(aq, a)(x), [(5,), (2, 3)], ("float32", "int32"), "exact", -2, 2, "(flat)"
        )
    cases += _simple(
        "cumulative_sum",
        lambda aq, x: aq.cumulative_sum(x, axis=1, include_initial=True),
        [(3, 4)],
        ("float32", "int32"),
    )
    cases += _simple(
        "cumulative_sum", lambda aq, x: aq.cumulative_sum(x), [(0,), (5,)], ("float32", "int32"), variant="(1-D)"
    )
    exact = ("float32", "int32", "bool")
    cases += _simple("reshape", lambda aq, x: aq.reshape(x, (4, -1)), [(2, 3, 4), (0, 4)], exact, "exact")
    cases += _simple("permute_dims", lambda aq, x: aq.permute_dims(x, (2, 0, 1)), [(2, 3, 4)], exact, "exact")
    cases += _simple("matrix_transpose", lambda aq, x: aq.matrix_transpose(x), [(2, 3, 4), (0, 3)], exact, "exact")
    cases += _simple("broadcast_to", lambda aq, x: aq.broadcast_to(x, (2, 3, 4)), [(3, 1), (), (4,)], exact, "exact")
    cases += _simple("broadcast_arrays", lambda aq, x, y: aq.broadcast_arrays(x, y), [[(3, 1), (4,)]], exact, "exact")
    cases += _simple(
        "concat", lambda aq, x, y: aq.concat([x, y], axis=1), [[(2, 3), (2, 0)], [(2, 3), (2, 5)]], exact, "exact"
    )
    cases += _simple(
        "concat", lambda aq, x, y: aq.concat([x, y], axis=None), [[(2, 3), (4,)]], exact, "exact", variant="(axis=None)"
    )
    cases += _simple("stack", lambda aq, x, y: aq.stack([x, y], axis=-1), [[(2, 3), (2, 3)], [(), ()]], exact, "exact")
    cases += _simple("unstack", lambda aq, x: aq.unstack(x, axis=1), [(2, 3)], exact, "exact")
    cases += _simple("expand_dims", lambda aq, x: aq.expand_dims(x, axis=-1), [(), (2, 3)], exact, "exact")
    cases += _simple("squeeze", lambda aq, x: aq.squeeze(x, axis=(0, 2)), [(1, 3, 1)], exact, "exact")
    cases += _simple("flip", lambda aq, x: aq.flip(x, axis=1), [(2, 3, 4)], exact, "exact")
    cases += _simple("flip", lambda aq, x: aq.flip(x), [(2, 3), (0,)], exact, "exact", variant="(all)")
    cases += _simple("moveaxis", lambda aq, x: aq.moveaxis(x, 0, -1), [(2, 3, 4)], exact, "exact")
    cases += _simple("roll", lambda aq, x: aq.roll(x, 2, axis=1), [(2, 5)], exact, "exact")
    cases += _simple("roll", lambda aq, x: aq.roll(x, -3), [(2, 5), (0,)], exact, "exact", variant="(flat)")
    cases += _simple("tile", lambda aq, x: aq.tile(x, (2, 1, 3)), [(2, 3), ()], exact, "exact")
    cases += _simple("repeat", lambda aq, x: aq.repeat(x, 2, axis=1), [(2, 3)], exact, "exact")
    cases += _simple(
        "take", lambda aq, x: aq.take(x, aq.asarray([2, 0, 2], dtype=aq.int32), axis=1), [(2, 3)], exact, "exact"
    )
    cases += _simple(
        "take_along_axis",
        lambda aq, x: aq.take_along_axis(x, aq.argsort(x, axis=1), axis=1),
        [(3, 4)],
        ("float32", "int32"),
        "exact",
    )
    cases += _simple("sort", lambda aq, x: aq.sort(x, axis=-1), [(3, 5), (0,)], ("float32", "int32"), "exact")
    cases += _simple(
        "sort",
        lambda aq, x: aq.sort(x, axis=0, descending=True),
        [(4, 3)],
        ("float32", "int32"),
        "exact",
        variant="(descending)",
    )
    cases += _simple("argsort", lambda aq, x: aq.argsort(x, axis=-1, stable=True), [(3, 6)], ("int32",), "exact", -2, 2)
    cases += _simple(
        "searchsorted",
        lambda aq, x, v: aq.searchsorted(aq.sort(x), v, side="right"),
        [[(6,), (4,)]],
        ("int32", "float32"),
        "exact",
        -3,
        3,
    )
    cases += _simple("nonzero", lambda aq, x: aq.nonzero(x), [(3, 4)], ("int32",), "exact", -1, 1)
    cases += _simple("unique_values", lambda aq, x: aq.unique_values(x), [(3, 4)], ("int32",), "exact", -2, 2)
    cases += _simple("unique_counts", lambda aq, x: aq.unique_counts(x), [(7,)], ("int32",), "exact", -2, 2)
    cases += _simple("unique_all", lambda aq, x: aq.unique_all(x), [(7,)], ("int32",), "exact", -2, 2)
    cases += _simple("diff", lambda aq, x: aq.diff(x, axis=1, n=2), [(3, 5)], ("float32", "int32"))
    cases += _simple("tril", lambda aq, x: aq.tril(x, k=-1), [(3, 4), (2, 3, 3)], exact, "exact")
    cases += _simple("triu", lambda aq, x: aq.triu(x, k=1), [(3, 4)], exact, "exact")
    mat = ("float32", "float64", "float16", "bfloat16")
    for dtype in mat:
        up = dtype in ("float16", "bfloat16")
        for s1, s2 in (
            ((3, 8), (8, 5)),
            ((2, 3, 8), (8, 5)),
            ((8,), (8, 5)),
            ((2, 1, 3, 8), (4, 8, 2)),
            ((0, 8), (8, 5)),
        ):
            cases.append(
                Case(
                    f"matmul[{dtype},{s1},{s2}]",
                    "matmul",
                    (dtype,),
                    _arrays((s1, dtype, -2, 2), (s2, dtype, -2, 2)),
                    lambda aq, a, b: aq.matmul(a, b),
                    upcast=up,
                )
            )
    cases += _simple(
        "tensordot",
        lambda aq, a, b: aq.tensordot(a, b, axes=([1, 2], [0, 1])),
        [[(2, 3, 4), (3, 4, 5)]],
        ("float32", "float64"),
    )
    cases += _simple(
        "tensordot", lambda aq, a, b: aq.tensordot(a, b, axes=0), [[(2,), (3,)]], ("float32",), variant="(outer)"
    )
    cases += _simple(
        "vecdot", lambda aq, a, b: aq.vecdot(a, b), [[(3, 4), (4,)], [(0, 4), (4,)]], ("float32", "float64")
    )
    for dtype in ("float32", "float64"):
        cases.append(
            Case(
                f"linspace[{dtype}]",
                "linspace",
                (dtype,),
                lambda rng: [],
                lambda aq, dt=dtype: aq.linspace(-1.0, 2.0, 7, dtype=getattr(aq, dt)),
            )
        )
        cases.append(
            Case(
                f"eye[{dtype}]",
                "eye",
                (dtype,),
                lambda rng: [],
                lambda aq, dt=dtype: aq.eye(3, 4, k=1, dtype=getattr(aq, dt)),
                "exact",
            )
        )
    call: Callable[..., Any]
    for name, call in (
        ("arange", lambda aq: aq.arange(2, 11, 3, dtype=aq.int32)),
        ("zeros", lambda aq: aq.zeros((2, 3), dtype=aq.float32)),
        ("ones", lambda aq: aq.ones((0, 3), dtype=aq.int32)),
        ("full", lambda aq: aq.full((2,), 7, dtype=aq.int32)),
        ("meshgrid", lambda aq: aq.meshgrid(aq.arange(3, dtype=aq.int32), aq.arange(2, dtype=aq.int32))),
        ("asarray", lambda aq: aq.asarray([[1, 2], [3, 4]], dtype=aq.float32)),
    ):
        cases.append(Case(f"{name}[creation]", name, (), lambda rng: [], call, "exact"))
    for name, call in (
        ("zeros_like", lambda aq, x: aq.zeros_like(x)),
        ("ones_like", lambda aq, x: aq.ones_like(x)),
        ("full_like", lambda aq, x: aq.full_like(x, 3)),
        ("astype", lambda aq, x: aq.astype(x, aq.float32)),
    ):
        cases += _simple(name, call, [(2, 3), ()], ("int32",), "exact")
    return cases


ALL_OPS_FAMILY = ("elementwise", "structural", "quantized", "errors", "movement")


# ---- quantized linear algebra ----------------------------------------------------------


def _formats() -> Iterator[tuple[str, int, int]]:
    from ..quant import MODES

    for mode, (_, _, sizes, widths) in MODES.items():
        for group_size, bits in itertools.product(sizes, widths):
            yield mode, group_size, bits


def _weight(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    w = rng.standard_normal(shape).astype(np.float32)
    w[..., :2, :] = 0.0  # an all-zero row: groups with nothing to scale
    w[..., 2, :] = 0.75  # a constant row
    return w.astype(_dtype(dtype))


def quantized_cases() -> list[Case]:
    cases = []
    n, k = 8, 256
    for (mode, gs, bits), dtype in itertools.product(_formats(), ("float32", "float16", "bfloat16")):
        tag = f"{mode},gs{gs},b{bits},{dtype}"

        def make_weight(rng: np.random.Generator, d: str = dtype) -> list[Any]:
            return [_weight(rng, (n, k), d)]

        cases.append(
            Case(
                f"quantize[{tag}]",
                "quantize",
                (dtype,),
                make_weight,
                lambda aq, w, m=mode, g=gs, b=bits: aq.quantize(w, group_size=g, bits=b, mode=m),
                "exact",
            )
        )
        cases.append(
            Case(
                f"dequantize[{tag}]",
                "dequantize",
                (dtype,),
                make_weight,
                lambda aq, w, m=mode, g=gs, b=bits: aq.dequantize(aq.quantize(w, group_size=g, bits=b, mode=m)),
                "exact",
            )
        )
    # matmul: every format x x-dtype x batch rank x transpose, on a weight quantized on the
    # reference so that only the matmul is under test here.
    for (mode, gs, bits), xdtype, xshape, transpose in itertools.product(
        _formats(), ("float32", "float16", "bfloat16"), ((k,), (3, k), (2, 3, k)), (True, False)
    ):
        wshape = (n, k) if transpose else (k, 128)  # groups run along the last axis

        def make_matmul(
            rng: np.random.Generator,
            xs: tuple[int, ...] = xshape,
            xd: str = xdtype,
            ws: tuple[int, int] = wshape,
            m: str = mode,
            g: int = gs,
            b: int = bits,
        ) -> list[Any]:
            from .. import quant as quantization

            w = _weight(rng, ws, "float32")
            qw = quantization.quantize(w, group_size=g, bits=b, mode=m)
            return [rng.uniform(-1, 1, xs).astype(_dtype(xd)), qw]

        cases.append(
            Case(
                f"quantized_matmul[{mode},gs{gs},b{bits},x{xdtype}{xshape},T={transpose}]",
                "quantized_matmul",
                (xdtype,),
                make_matmul,
                lambda aq, x, qw, t=transpose: aq.linalg.quantized_matmul(x, qw, transpose=t),
                upcast=xdtype != "float32",
            )
        )
    for mode, gs, bits in (("affine", 64, 4), ("affine", 32, 8), ("mxfp4", 32, 4)):

        def make_gather(rng: np.random.Generator, m: str = mode, g: int = gs, b: int = bits) -> list[Any]:
            from .. import quant as quantization

            qw = quantization.quantize(_weight(rng, (4, n, k), "float32"), group_size=g, bits=b, mode=m)
            return [
                rng.uniform(-1, 1, (3, 2, k)).astype(np.float32),
                qw,
                np.array([[0], [2], [1]], np.int32),
                np.array([[3, 0], [1, 1], [2, 3]], np.int32),
            ]

        cases.append(
            Case(
                f"gather_qmm[{mode},gs{gs},b{bits}]",
                "gather_qmm",
                ("float32",),
                make_gather,
                lambda aq, x, qw, li, ri: aq.linalg.gather_qmm(x, qw, lhs_indices=li, rhs_indices=ri),
            )
        )

        def make_pair(rng: np.random.Generator, mk: Callable[..., list[Any]] = make_gather) -> list[Any]:
            return mk(rng)[:2]  # x and the batched weight

        cases.append(
            Case(
                f"quantized_matmul[{mode},gs{gs},b{bits},batched-weight]",
                "quantized_matmul",
                ("float32",),
                make_pair,
                lambda aq, x, qw: aq.linalg.quantized_matmul(x[:1, ...], qw),
            )
        )
    return cases


# ---- bad input: the backend must raise what the reference raises ------------------------


def _qw_parts(
    rng: np.random.Generator, mode: str = "affine", gs: int = 64, bits: int = 4, shape: tuple[int, ...] = (8, 256)
) -> list[Any]:
    from .. import quant as quantization

    qw = quantization.quantize(rng.standard_normal(shape).astype(np.float32), group_size=gs, bits=bits, mode=mode)
    return [qw.packed, qw.scales, qw.biases]


def error_cases() -> list[Case]:
    def x_and(
        shape_x: tuple[int, ...] = (2, 256), dtype: str = "float32", **kw: Any
    ) -> Callable[[np.random.Generator], list[Any]]:
        return lambda rng: [_values(rng, shape_x, dtype), *_qw_parts(rng, **kw)]

    qmm = lambda aq, x, p, s, b: aq.linalg.quantized_matmul(x, p, s, b)  # noqa: E731
    table: list[tuple[Any, ...]] = [
        (
            "quantize",
            "K not divisible by group_size",
            _arrays(((4, 100), "float32", -1, 1)),
            lambda aq, w: aq.quantize(w, group_size=64),
        ),
        ("quantize", "unsupported bits", _arrays(((4, 128), "float32", -1, 1)), lambda aq, w: aq.quantize(w, bits=7)),
        (
            "quantize",
            "unsupported group size",
            _arrays(((4, 128), "float32", -1, 1)),
            lambda aq, w: aq.quantize(w, group_size=48),
        ),
        ("quantize", "unknown mode", _arrays(((4, 128), "float32", -1, 1)), lambda aq, w: aq.quantize(w, mode="int4")),
        (
            "quantize",
            "mxfp4 with group size 64",
            _arrays(((4, 128), "float32", -1, 1)),
            lambda aq, w: aq.quantize(w, mode="mxfp4", group_size=64),
        ),
        ("quantize", "1-D weight", _arrays(((128,), "float32", -1, 1)), lambda aq, w: aq.quantize(w)),
        ("quantize", "integer weight", _arrays(((4, 128), "int32", -1, 1)), lambda aq, w: aq.quantize(w)),
        (
            "quantize",
            "NaN in weight",
            lambda rng: [np.where(np.arange(128) == 5, np.nan, 1.0).astype(np.float32).reshape(1, 128)],
            lambda aq, w: aq.quantize(w),
        ),
        ("quantized_matmul", "x last dim != K", x_and((2, 128)), qmm),
        ("quantized_matmul", "integer x", x_and(dtype="int32"), qmm),
        ("quantized_matmul", "float64 x", x_and(dtype="float64"), qmm, ("float64",)),
        (
            "quantized_matmul",
            "biases missing for affine",
            x_and(),
            lambda aq, x, p, s, b: aq.linalg.quantized_matmul(x, p, s, None),
        ),
        (
            "quantized_matmul",
            "biases given for mxfp4",
            lambda rng: [
                _values(rng, (2, 256), "float32"),
                *_qw_parts(rng, "mxfp4", 32, 4)[:2],
                _values(rng, (8, 8), "float32"),
            ],
            lambda aq, x, p, s, b: aq.linalg.quantized_matmul(x, p, s, b, mode="mxfp4"),
        ),
        (
            "quantized_matmul",
            "scales with a wrong row count",
            x_and(),
            lambda aq, x, p, s, b: aq.linalg.quantized_matmul(x, p, s[:4, ...], b[:4, ...]),
        ),
        (
            "quantized_matmul",
            "scales with a wrong group count",
            x_and(),
            lambda aq, x, p, s, b: aq.linalg.quantized_matmul(x, p, s, b, group_size=32),
        ),
        (
            "quantized_matmul",
            "packed weight not uint32",
            x_and(),
            lambda aq, x, p, s, b: aq.linalg.quantized_matmul(x, aq.astype(p, aq.int32), s, b),
        ),
        (
            "quantized_matmul",
            "biases dtype differs from scales",
            x_and(),
            lambda aq, x, p, s, b: aq.linalg.quantized_matmul(x, p, s, aq.astype(b, aq.float16)),
            ("float16",),
        ),
        (
            "gather_qmm",
            "expert index out of range",
            lambda rng: [
                _values(rng, (1, 2, 256), "float32"),
                *_qw_parts(rng, shape=(3, 8, 256)),
                np.array([3], np.int32),
            ],
            lambda aq, x, p, s, b, r: aq.linalg.gather_qmm(x, p, s, b, rhs_indices=r),
        ),
        ("reshape", "size mismatch", _arrays(((2, 3), "float32", -1, 1)), lambda aq, x: aq.reshape(x, (4, 2))),
        ("sum", "axis out of range", _arrays(((2, 3), "float32", -1, 1)), lambda aq, x: aq.sum(x, axis=2)),
        (
            "matmul",
            "inner dimensions differ",
            _arrays(((2, 3), "float32", -1, 1), ((4, 2), "float32", -1, 1)),
            lambda aq, a, b: aq.matmul(a, b),
        ),
        (
            "concat",
            "shapes differ off the axis",
            _arrays(((2, 3), "float32", -1, 1), ((3, 3), "float32", -1, 1)),
            lambda aq, a, b: aq.concat([a, b], axis=1),
        ),
        (
            "broadcast_to",
            "incompatible shape",
            _arrays(((3,), "float32", -1, 1)),
            lambda aq, x: aq.broadcast_to(x, (2, 4)),
        ),
    ]
    return [
        Case(
            f"error:{op}[{why}]",
            op,
            dtypes[0] if dtypes else (),
            make,
            call,
            "raises",
            tags=("error",),
            raises="QuantizationError" if op in QUANTIZED_OPS else "",
            match=ERROR_MESSAGES.get(why, ""),
        )
        for op, why, make, call, *dtypes in table
    ]


#: Ops whose bad input must raise arrayq.QuantizationError on every backend (never a
#: backend's own error standing in for a missing check).
QUANTIZED_OPS = ("quantize", "dequantize", "quantized_matmul", "gather_qmm")
#: What each bad-input message must say (a regular expression): the expected value and
#: the one given, so the user can see what to change.
ERROR_MESSAGES = {
    "K not divisible by group_size": r"\b100\b.*group_size 64",
    "unsupported bits": r"bits in \(.*\), got 7",
    "unsupported group size": r"group_size in \(.*\), got 48",
    "unknown mode": r"'int4'.*'affine'",
    "mxfp4 with group size 64": r"group_size in \(32,\), got 64",
    "1-D weight": r"\(128,\)",
    "integer weight": r"float32.*got int32",
    "NaN in weight": r"NaN",
    "x last dim != K": r"\b128\b.*K = 256",
    "integer x": r"float32.*got int32",
    "float64 x": r"float32.*got float64",
    "biases missing for affine": r"needs biases",
    "biases given for mxfp4": r"no biases",
    "scales with a wrong row count": r"shape \(8, 4\).*got \(4, 4\)",
    "scales with a wrong group count": r"shape \(8, 8\).*got \(8, 4\)",
    "packed weight not uint32": r"uint32, got int32",
    "biases dtype differs from scales": r"float32 and float16",
    "expert index out of range": r"\[0, 3\).*\b3\b",
}


def empty_x_cases() -> list[Case]:
    """M = 0 must give an empty result (it crashes some kernels)."""

    def make(rng: np.random.Generator) -> list[Any]:
        from .. import quant as quantization

        return [np.zeros((0, 256), np.float32), quantization.quantize(rng.standard_normal((8, 256)).astype(np.float32))]

    def make_experts(rng: np.random.Generator) -> list[Any]:
        from .. import quant as quantization

        qw = quantization.quantize(rng.standard_normal((3, 8, 256)).astype(np.float32))
        return [np.zeros((2, 0, 256), np.float32), qw, np.array([0, 1], np.int32), np.array([2, 0], np.int32)]

    return [
        Case(
            "quantized_matmul[empty x]",
            "quantized_matmul",
            ("float32",),
            make,
            lambda aq, x, qw: aq.linalg.quantized_matmul(x, qw),
            "exact",
        ),
        Case(
            "gather_qmm[empty x]",
            "gather_qmm",
            ("float32",),
            make_experts,
            lambda aq, x, qw, li, ri: aq.linalg.gather_qmm(x, qw, lhs_indices=li, rhs_indices=ri),
            "exact",
        ),
    ]


def random_cases(count: int = 40, seed: int = 2026) -> list[Case]:
    """Property-style cases: shapes, formats and dtypes drawn from a seeded generator (so
    runs are repeatable and bounded; hypothesis is not a runtime dependency). Each draws
    broadcast-compatible operands for a binary op, or a random quantized matmul problem."""
    rng = np.random.default_rng(seed)
    formats = list(_formats())
    cases = []
    for i in range(count):
        ndim = int(rng.integers(0, 4))
        shape = tuple(int(n) for n in rng.integers(0, 5, size=ndim))
        other = tuple(n if rng.random() < 0.6 else 1 for n in shape[int(rng.integers(0, ndim + 1)) :])
        name = str(rng.choice(["add", "multiply", "maximum", "atan2", "logaddexp", "less"]))
        dtype = str(rng.choice(["float32", "float64", "bfloat16"]))
        cases.append(
            Case(
                f"random:{name}[{i},{dtype},{shape},{other}]",
                name,
                (dtype,),
                _arrays((shape, dtype, -3, 3), (other, dtype, -3, 3)),
                _op(name),
                upcast=dtype == "bfloat16",
            )
        )
        mode, gs, bits = formats[int(rng.integers(len(formats)))]
        n, k = int(rng.integers(1, 6)) * 8, gs * int(rng.integers(1, 4)) * 2
        batch = tuple(int(b) for b in rng.integers(1, 3, size=int(rng.integers(0, 3))))
        m = int(rng.integers(1, 12))

        def make(
            r: np.random.Generator,
            mode: str = mode,
            gs: int = gs,
            bits: int = bits,
            n: int = n,
            k: int = k,
            batch: tuple[int, ...] = batch,
            m: int = m,
        ) -> list[Any]:
            from .. import quant as quantization

            qw = quantization.quantize(_weight(r, (n, k), "float32"), group_size=gs, bits=bits, mode=mode)
            return [r.uniform(-1, 1, batch + (m, k)).astype(np.float32), qw]

        cases.append(
            Case(
                f"random:quantized_matmul[{i},{mode},gs{gs},b{bits},x{batch + (m, k)},w({n},{k})]",
                "quantized_matmul",
                ("float32",),
                make,
                lambda aq, x, qw: aq.linalg.quantized_matmul(x, qw),
            )
        )
    return cases


# ---- fused model ops --------------------------------------------------------------------

#: (B, H, Hkv, L, S, D, mask) for scaled_dot_product_attention: decode (one query row,
#: grouped heads), a causal prefill chunk after cached keys, additive masks (the mask's
#: shape: one for all, one per batch entry as padding masks are, one per query head),
#: no grouping.
ATTENTION_SHAPES: tuple[tuple[int, int, int, int, int, int, Any], ...] = (
    (1, 4, 2, 1, 9, 16, None),
    (2, 2, 1, 3, 5, 8, "causal"),
    (1, 2, 2, 2, 4, 8, (1, 1, 2, 4)),
    (2, 4, 2, 1, 6, 8, (2, 1, 1, 6)),
    (1, 4, 2, 2, 5, 8, (1, 4, 2, 5)),
    (1, 3, 3, 4, 4, 32, None),
)


def nn_cases() -> list[Case]:
    """The model composites arrayq.nn calls. (Run on NumPy itself, these compare its
    overrides with themselves; tests/test_nn.py and tests/test_native_kernels.py check them
    against float64 NumPy written independently.)"""
    cases = []
    for (b, h, hkv, length, s, d, mask), dtype in itertools.product(ATTENTION_SHAPES, FLOATS):
        specs = [((b, h, length, d), dtype, -2, 2), ((b, hkv, s, d), dtype, -2, 2), ((b, hkv, s, d), dtype, -2, 2)]
        if isinstance(mask, tuple):  # an additive mask with a -inf entry (a key a query must not see)
            specs.append((mask, "float32", -1, 1))
            mask = "array"

        def call(aq: Any, q: Any, k: Any, v: Any, *m: Any, mask: Any = mask) -> Any:
            if m:
                m = (aq.where(aq.reshape(aq.arange(m[0].size), m[0].shape) == 1, -float("inf"), m[0]),)
            return aq.nn.scaled_dot_product_attention(q, k, v, scale=0.25, mask=m[0] if m else mask)

        cases.append(
            Case(
                f"scaled_dot_product_attention[{dtype},q{(b, h, length, d)},kv{(b, hkv, s, d)},"
                f"{'mask' + str(specs[3][0]) if mask == 'array' else mask}]",
                "scaled_dot_product_attention",
                (dtype,),
                _arrays(*specs),
                call,
                upcast=dtype in ("float16", "bfloat16"),
            )
        )
    for (shape, with_weight), dtype in itertools.product((((3, 8), True), ((2, 1, 4, 16), False)), FLOATS):
        norm_specs: list[tuple[tuple[int, ...], str, float, float]] = [(shape, dtype, -3, 3)]
        if with_weight:
            norm_specs.append(((shape[-1],), dtype, -2, 2))
        cases.append(
            Case(
                f"rms_norm[{dtype},x{shape},{'weight' if with_weight else 'no weight'}]",
                "rms_norm",
                (dtype,),
                _arrays(*norm_specs),
                lambda aq, x, *w: aq.nn.rms_norm(x, w[0] if w else None, eps=1e-5),
                upcast=dtype in ("float16", "bfloat16"),
            )
        )
    bad = {  # what the call must reject, with the reference's exception
        "kv heads not dividing q heads": ((1, 3, 1, 4), (1, 2, 2, 4), (1, 2, 2, 4), None),
        "k and v lengths differ": ((1, 2, 1, 4), (1, 2, 3, 4), (1, 2, 2, 4), None),
        "no kv heads": ((1, 2, 1, 4), (1, 0, 3, 4), (1, 0, 3, 4), None),
        "unknown mask": ((1, 2, 1, 4), (1, 2, 3, 4), (1, 2, 3, 4), "full"),
        "causal with more queries than keys": ((1, 2, 3, 4), (1, 2, 2, 4), (1, 2, 2, 4), "causal"),
    }
    for what, (qs, ks, vs, mask) in bad.items():
        cases.append(
            Case(
                f"error:scaled_dot_product_attention[{what}]",
                "scaled_dot_product_attention",
                ("float32",),
                _arrays((qs, "float32", -1, 1), (ks, "float32", -1, 1), (vs, "float32", -1, 1)),
                lambda aq, q, k, v, mask=mask: aq.nn.scaled_dot_product_attention(q, k, v, scale=1.0, mask=mask),
                expect="raises",
            )
        )
    return cases


def all_cases() -> list[Case]:
    return (
        elementwise_cases()
        + structural_cases()
        + quantized_cases()
        + error_cases()
        + empty_x_cases()
        + random_cases()
        + nn_cases()
    )
