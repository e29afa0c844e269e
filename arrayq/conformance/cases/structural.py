"""Structural cases: reductions, manipulation, searching, sorting, sets, linear algebra
(matmul, tensordot, vecdot) and creation.

The reductions cover the contract's ``REDUCE_OPS`` (tests/test_conformance.py checks it)
and the statistical functions built on them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from ._common import Case, _arrays, _is_float


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
        "take",
        lambda aq, x: aq.take(x, aq.asarray([[-4, 0], [2, 9]], dtype=aq.int32), axis=1, mode="clip"),
        [(2, 3)],
        exact,
        "exact",
        variant="(mode=clip)",
    )
    # slice_update: a known start, a device start (inside, and clamped from both sides), the
    # whole axis, and a middle axis (a decode step's KV cache write)
    for start, variant in ((1, "(start=1)"), (3, "(start=3,last)")):
        cases += _simple(
            "slice_update",
            lambda aq, x, u, s=start: aq.slice_update(x, u, s, axis=1),
            [[(2, 5, 3), (2, 2, 3)]],
            exact,
            "exact",
            variant=variant,
        )
    for start in (2, -3, 9):
        cases += _simple(
            "slice_update",
            lambda aq, x, u, s=start: aq.slice_update(x, u, aq.asarray(s, dtype=aq.int32, like=x), axis=2),
            [[(1, 2, 6, 4), (1, 2, 1, 4)]],
            exact,
            "exact",
            variant=f"(array start={start})",
        )
    cases += _simple(
        "slice_update",
        lambda aq, x, u: aq.slice_update(x, u, aq.asarray(0, dtype=aq.int32, like=x)),
        [[(4,), (4,)]],
        exact,
        "exact",
        variant="(whole axis)",
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
