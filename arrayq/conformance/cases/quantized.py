"""Quantized cases: quantize and dequantize in every format and dtype, quantized_matmul
over x dtypes, batch ranks and transpose, gather_qmm, an empty x, and the seeded random
cases (which draw a broadcasting binary op and a quantized matmul problem per step, from
one generator, so they stay together here).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._common import Case, _arrays, _dtype, _op


def _formats() -> Iterator[tuple[str, int, int]]:
    from ...quant import MODES

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
            from ... import quant as quantization

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
            from ... import quant as quantization

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


def empty_x_cases() -> list[Case]:
    """M = 0 must give an empty result (it crashes some kernels)."""

    def make(rng: np.random.Generator) -> list[Any]:
        from ... import quant as quantization

        return [np.zeros((0, 256), np.float32), quantization.quantize(rng.standard_normal((8, 256)).astype(np.float32))]

    def make_experts(rng: np.random.Generator) -> list[Any]:
        from ... import quant as quantization

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
            from ... import quant as quantization

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
