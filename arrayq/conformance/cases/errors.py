"""Bad-input cases: the backend must raise what the reference raises. A quantized op's bad
input must raise arrayq.QuantizationError (``QUANTIZED_OPS``), and the message must match
the pattern in ``ERROR_MESSAGES`` for its reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._common import Case, _arrays, _values

#: Ops whose bad input must raise arrayq.QuantizationError on every backend (never a
#: backend's own error standing in for a missing check).
QUANTIZED_OPS = ("quantize", "dequantize", "quantized_matmul", "gather_qmm")
#: What each bad-input message must say (a regular expression): the expected value and
#: the one given, so the user can see what to change.
ERROR_MESSAGES = {
    "index past the end": r"index 5 .*\[-5, 5\)",
    "index before the start": r"index -6 .*\[-5, 5\)",
    "index past the end of the axis": r"index 4 .*\[-4, 4\)",
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


def _qw_parts(
    rng: np.random.Generator, mode: str = "affine", gs: int = 64, bits: int = 4, shape: tuple[int, ...] = (8, 256)
) -> list[Any]:
    from ... import quant as quantization

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
        # a backend that reads past the end (garbage, NaN, a crash) must not pass
        (
            "take",
            "index past the end",
            lambda rng: [_values(rng, (5, 3), "float32"), np.array([0, 5], np.int32)],
            lambda aq, x, i: aq.take(x, i, axis=0),
        ),
        (
            "take",
            "index before the start",
            lambda rng: [_values(rng, (5, 3), "float32"), np.array([-6], np.int32)],
            lambda aq, x, i: aq.take(x, i, axis=0),
        ),
        (
            "take",
            "unknown index mode",
            lambda rng: [_values(rng, (5, 3), "float32"), np.array([0], np.int32)],
            lambda aq, x, i: aq.take(x, i, axis=0, mode="wrap"),
        ),
        (
            "slice_update",
            "update longer than x",
            _arrays(((2, 3), "float32", -1, 1), ((2, 4), "float32", -1, 1)),
            lambda aq, x, u: aq.slice_update(x, u, 0, axis=1),
        ),
        (
            "slice_update",
            "shapes differ off the axis",
            _arrays(((2, 3), "float32", -1, 1), ((3, 1), "float32", -1, 1)),
            lambda aq, x, u: aq.slice_update(x, u, 0, axis=1),
        ),
        (
            "slice_update",
            "dtypes differ",
            _arrays(((2, 3), "float32", -1, 1), ((2, 1), "float64", -1, 1)),
            lambda aq, x, u: aq.slice_update(x, u, 0, axis=1),
        ),
        (
            "slice_update",
            "int start past the end",
            _arrays(((2, 3), "float32", -1, 1), ((2, 2), "float32", -1, 1)),
            lambda aq, x, u: aq.slice_update(x, u, 2, axis=1),
        ),
        (
            "slice_update",
            "float start",
            _arrays(((2, 3), "float32", -1, 1), ((2, 1), "float32", -1, 1)),
            lambda aq, x, u: aq.slice_update(x, u, aq.asarray(1.0, like=x), axis=1),
        ),
        (
            "take_along_axis",
            "index past the end of the axis",
            lambda rng: [_values(rng, (2, 4), "float32"), np.array([[0], [4]], np.int32)],
            lambda aq, x, i: aq.take_along_axis(x, i, axis=1),
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
