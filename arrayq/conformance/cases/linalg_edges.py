"""Linear algebra at the edges: hand-written small matrices (2 x 2, diagonal, triangular,
singular, pivot ties), empty matrices and batches, NaN and inf, and bad input.

* **Hand cases** are compared with the reference like the random ones (the values
  themselves are pinned by hand in tests/test_linalg.py); they add structure random
  matrices never have: exact zeros, ties between pivot candidates, repeated eigenvalues.
* **Empty input** follows NumPy: det of a 0 x 0 matrix is 1, slogdet (1, 0), inv 0 x 0, an
  empty batch gives an empty result of the right shape.
* **NaN and inf**: a matrix holding one gives NaN in every element of its results, the
  other matrices of the batch are computed as usual; the runner requires the NaN positions
  to match exactly. Norms built from sums propagate them elementwise (inf stays inf).
* **Bad input** must raise the named type with a message matching the pattern (the
  runner's ``raises``/``match``), the same on every backend because the frontend checks it
  before any backend runs: ValueError for shapes and arguments, TypeError for dtypes,
  UnsupportedDTypeError for complex decompositions, ``LinAlgError`` for singular and
  indefinite matrices and for the rank of a matrix with NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._common import _dtype
from .linalg import Cases, _cholesky, _eigh, _given, _lu, _qr, _svd, matrices, tolerance


def _la(name: str, **kw: Any) -> Callable[..., Any]:
    return lambda aq, *xs: getattr(aq.linalg, name)(*xs, **kw)


def _tuple(name: str, **kw: Any) -> Callable[..., Any]:
    return lambda aq, *xs: tuple(getattr(aq.linalg, name)(*xs, **kw))


def _hand(cases: Cases) -> None:
    add = cases.add
    ties = [[1.0, 2.0, 3.0], [-1.0, 5.0, 1.0], [1.0, -2.0, 4.0]]  # |column 0| ties three ways
    singular = [[1.0, 2.0], [2.0, 4.0]]
    upper = [[2.0, -1.0, 3.0], [0.0, 4.0, 1.0], [0.0, 0.0, -0.5]]
    diag = [[-3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 2.0]]
    table: list[tuple[str, Any, Callable[..., Any], list[Any]]] = [
        ("det", "2x2", _la("det"), [[1.0, 2.0], [3.0, 4.0]]),
        ("det", "singular", _la("det"), singular),
        ("det", "triangular", _la("det"), upper),
        ("slogdet", "singular", _tuple("slogdet"), singular),
        ("slogdet", "negative", _tuple("slogdet"), diag),
        ("inv", "2x2", _la("inv"), [[4.0, 7.0], [2.0, 6.0]]),
        ("inv", "triangular", _la("inv"), upper),
        ("lu", "ties", _lu, ties),
        ("lu", "singular", _lu, singular),
        ("lu", "zero column", _lu, [[0.0, 1.0], [0.0, 2.0]]),
        ("eigh", "diagonal", _eigh, diag),
        ("eigh", "2x2", _eigh, [[2.0, 1.0], [1.0, 2.0]]),
        ("eigh", "repeated", _eigh, [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]),
        ("eigvalsh", "lower triangle read", _la("eigvalsh"), [[2.0, 99.0], [1.0, 2.0]]),
        ("cholesky", "2x2", _cholesky(False), [[4.0, 2.0], [2.0, 3.0]]),
        ("cholesky", "lower triangle read", _cholesky(False), [[4.0, 99.0], [2.0, 3.0]]),
        ("svdvals", "diagonal", _la("svdvals"), diag),
        ("svdvals", "rank 1", _la("svdvals"), [[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]),
        ("svd", "singular", _svd(True), singular),
        ("qr", "triangular", _qr("complete"), upper),
        ("qr", "zero column", _qr("reduced"), [[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]]),
        ("pinv", "singular", _la("pinv"), singular),
        ("matrix_rank", "singular", _la("matrix_rank"), singular),
        ("matrix_rank", "zero", _la("matrix_rank"), [[0.0, 0.0], [0.0, 0.0]]),
        ("matrix_power", "2x2^5", lambda aq, a: aq.linalg.matrix_power(a, 5), [[1.0, 1.0], [1.0, 0.0]]),
    ]
    for dtype in ("float32", "float64"):
        for op, label, call, value in table:
            a = np.array(value, dtype=_dtype(dtype))
            add(op, f"{dtype},{label}", dtype, _given(a), call, tolerance(dtype, a.shape[-1], 4.0))
        make = _given(np.array([[4.0, 7.0], [2.0, 6.0]], _dtype(dtype)), np.array([1.0, 2.0], _dtype(dtype)))
        add("solve", f"{dtype},2x2", dtype, make, _la("solve"), tolerance(dtype, 2, 10.0))
        make = _given(np.array(upper, _dtype(dtype)), np.array([[1.0], [2.0], [3.0]], _dtype(dtype)))
        add(
            "triangular_solve",
            f"{dtype},hand",
            dtype,
            make,
            _la("triangular_solve", lower=False),
            tolerance(dtype, 3, 8),
        )


def _empty(cases: Cases) -> None:
    add = cases.add
    square: list[tuple[str, Callable[..., Any]]] = [
        ("det", _la("det")),
        ("slogdet", _tuple("slogdet")),
        ("inv", _la("inv")),
        ("cholesky", _cholesky(False)),
        ("eigh", _eigh),
        ("eigvalsh", _la("eigvalsh")),
        ("matrix_power", lambda aq, a: aq.linalg.matrix_power(a, 3)),
        ("matrix_power", lambda aq, a: aq.linalg.matrix_power(a, 0)),
        ("trace", _la("trace")),
        ("diagonal", _la("diagonal")),
    ]
    rect: list[tuple[str, Callable[..., Any]]] = [
        ("qr", _qr("reduced")),
        ("qr", _qr("complete")),
        ("svd", _svd(True)),
        ("svd", _svd(False)),
        ("svdvals", _la("svdvals")),
        ("lu", _lu),
        ("pinv", _la("pinv")),
        ("matrix_rank", _la("matrix_rank")),
        *(("matrix_norm", _la("matrix_norm", ord=o)) for o in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf)),
    ]
    for dtype in ("float32", "float64"):
        for op, call in square:
            for shape in ((0, 0), (2, 0, 0), (0, 3, 3)):
                add(op, f"{dtype},empty{shape}", dtype, _given(np.zeros(shape, _dtype(dtype))), call)
        for op, call in rect:
            for shape in ((3, 0), (0, 3), (0, 0), (0, 2, 3)):
                add(op, f"{dtype},empty{shape}", dtype, _given(np.zeros(shape, _dtype(dtype))), call)
        for order in (2, 1, 0, -1, math.inf, -math.inf):
            add(
                "vector_norm",
                f"{dtype},empty,{order}",
                dtype,
                _given(np.zeros((2, 0), _dtype(dtype))),
                _la("vector_norm", axis=1, ord=order),
            )
        z = np.zeros
        for op, a, b in (
            ("solve", z((0, 0)), z((0,))),
            ("solve", z((2, 0, 0)), z((0, 3))),
            ("solve", z((0, 2, 2)), z((2, 1))),
            ("lstsq", z((0, 3)), z((0,))),
            ("lstsq", z((3, 0)), z((3, 2))),
            ("triangular_solve", z((0, 0)), z((0, 2))),
        ):
            add(
                op,
                f"{dtype},empty{a.shape},{b.shape}",
                dtype,
                _given(a.astype(_dtype(dtype)), b.astype(_dtype(dtype))),
                _la(op),
            )
    add("cross", "empty", "float32", _given(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)), _la("cross"))
    add("outer", "empty", "float32", _given(np.zeros(0, np.float32), np.ones(3, np.float32)), _la("outer"))


def _with_bad(shape: tuple[int, ...], dtype: str, kind: str, value: float) -> Callable[[np.random.Generator], Any]:
    """A batch of ``kind`` matrices with ``value`` (NaN or inf) in one element of matrix 1."""
    base = matrices(shape, dtype, kind)

    def make(rng: np.random.Generator) -> list[Any]:
        a = base(rng)
        a[1, -1, 0] = value
        return [a]

    return make


def _nonfinite(cases: Cases) -> None:
    add = cases.add
    ops: list[tuple[str, Callable[..., Any], str, tuple[int, ...]]] = [
        ("det", _la("det"), "general", (3, 3, 3)),
        ("slogdet", _tuple("slogdet"), "general", (3, 3, 3)),
        ("inv", _la("inv"), "general", (3, 3, 3)),
        ("eigh", _eigh, "symmetric", (3, 3, 3)),
        ("eigvalsh", _la("eigvalsh"), "symmetric", (3, 3, 3)),
        ("cholesky", _cholesky(False), "spd", (3, 3, 3)),
        ("qr", _qr("reduced"), "general", (3, 4, 3)),
        ("svd", _svd(False), "general", (3, 3, 4)),
        ("svdvals", _la("svdvals"), "general", (3, 4, 3)),
        ("lu", _lu, "general", (3, 3, 3)),
        ("pinv", _la("pinv"), "general", (3, 4, 3)),
        ("matrix_norm", _la("matrix_norm", ord=2), "general", (3, 3, 3)),
        ("matrix_norm", _la("matrix_norm", ord="fro"), "general", (3, 3, 3)),
        ("matrix_norm", _la("matrix_norm", ord=1), "general", (3, 3, 3)),
        ("vector_norm", _la("vector_norm", axis=(1, 2)), "general", (3, 3, 3)),
        ("vector_norm", _la("vector_norm", axis=-1, ord=math.inf), "general", (3, 3, 3)),
    ]
    for dtype in ("float32", "float64"):
        for value in (math.nan, math.inf):
            for op, call, kind, shape in ops:
                add(
                    op,
                    f"{dtype},holds {value}",
                    dtype,
                    _with_bad(shape, dtype, kind, value),
                    call,
                    tolerance(dtype, 4, 4.0),
                )
            a = _with_bad((3, 3, 3), dtype, "general", value)
            make = lambda rng, a=a, dtype=dtype: [*a(rng), np.ones((3, 2), _dtype(dtype))]  # noqa: E731
            add("solve", f"{dtype},holds {value}", dtype, make, _la("solve"), tolerance(dtype, 3, 4.0))
            add("lstsq", f"{dtype},holds {value}", dtype, make, _la("lstsq"), tolerance(dtype, 3, 4.0))


_F = np.float32


def _errors(cases: Cases) -> None:
    def bad(op: str, why: str, raises: str, match: str, call: Callable[..., Any], *arrays: Any) -> None:
        cases.add(op, why, "float32", _given(*arrays), call, expect="raises", raises=raises, match=match)

    sq, rect, vec = np.eye(3, dtype=_F), np.ones((3, 4), _F), np.ones(3, _F)
    singular = np.array([[1.0, 2.0], [2.0, 4.0]], _F)
    batch_one_singular = np.stack([np.eye(2, dtype=_F), singular])
    for op in ("det", "slogdet", "inv", "eigh", "eigvalsh", "cholesky"):
        bad(op, "not square", "ValueError", r"square matrices .*\(3, 4\)", _la(op), rect)
    for op in ("det", "inv", "qr", "svd", "svdvals", "lu", "pinv", "matrix_rank", "diagonal", "trace", "matrix_norm"):
        bad(op, "1-D", "ValueError", r"stack of matrices .*\(3,\)", _la(op), vec)
    for op in ("det", "inv", "eigh", "cholesky", "qr", "svd", "lu", "pinv", "vector_norm", "matrix_norm"):
        bad(op, "int32", "TypeError", r"floating-point array, got int32", _la(op), np.eye(3, dtype=np.int32))
    bad("det", "a list", "TypeError", r"convert it first with arrayq.asarray", lambda aq, a: aq.linalg.det([[1.0]]), sq)
    bad("det", "a float", "TypeError", r"needs arrays, got float", lambda aq, a: aq.linalg.det(1.0), sq)
    bad("inv", "singular", "LinAlgError", r"singular", _la("inv"), singular)
    bad(
        "inv",
        "one singular in a batch",
        "LinAlgError",
        r"batch index \(1,\) is singular",
        _la("inv"),
        batch_one_singular,
    )
    bad("solve", "singular", "LinAlgError", r"singular", _la("solve"), singular, np.ones(2, _F))
    bad(
        "matrix_power",
        "singular, n < 0",
        "LinAlgError",
        r"singular",
        lambda aq, a: aq.linalg.matrix_power(a, -1),
        singular,
    )
    zero_diag = np.array([[1.0, 0.0], [3.0, 0.0]], _F)
    bad(
        "triangular_solve",
        "zero diagonal",
        "LinAlgError",
        r"singular",
        _la("triangular_solve"),
        zero_diag,
        np.ones(2, _F),
    )
    bad(
        "cholesky",
        "indefinite",
        "LinAlgError",
        r"not positive definite",
        _la("cholesky"),
        np.array([[1.0, 2.0], [2.0, 1.0]], _F),
    )
    bad(
        "cholesky",
        "negative pivot",
        "LinAlgError",
        r"not positive definite",
        _la("cholesky"),
        np.array([[-1.0, 0.0], [0.0, 1.0]], _F),
    )
    bad("cholesky", "semidefinite", "LinAlgError", r"not positive definite", _la("cholesky"), singular)
    with_nan = np.array([[1.0, np.nan], [0.0, 1.0]], _F)
    bad("matrix_rank", "NaN", "LinAlgError", r"NaN or inf", _la("matrix_rank"), with_nan)
    bad("qr", "unknown mode", "ValueError", r"'reduced' or 'complete', got 'r'", _la("qr", mode="r"), sq)
    bad("matrix_norm", "unknown ord", "ValueError", r"ord must be one of .*got 3", _la("matrix_norm", ord=3), sq)
    bad("vector_norm", "string ord", "ValueError", r"ord must be a number", _la("vector_norm", ord="fro"), vec)
    bad("cross", "2-vectors", "ValueError", r"3 elements along axis -1", _la("cross"), np.ones(2, _F), np.ones(2, _F))
    bad("cross", "bool", "TypeError", r"numeric", _la("cross"), np.ones(3, bool), np.ones(3, bool))
    bad("outer", "2-D", "ValueError", r"1-D arrays, got shapes \(3, 3\)", _la("outer"), sq, vec)
    bad("solve", "rows differ", "ValueError", r"3 rows but x2 \(4,\) has 4", _la("solve"), sq, np.ones(4, _F))
    bad("solve", "0-d x2", "ValueError", r"0-d", _la("solve"), sq, np.array(1.0, _F))
    bad(
        "solve",
        "batches clash",
        "ValueError",
        r"broadcast",
        _la("solve"),
        np.ones((2, 3, 3), _F),
        np.ones((3, 3, 1), _F),
    )
    bad("lstsq", "rows differ", "ValueError", r"rows", _la("lstsq"), rect, np.ones(4, _F))
    bad("triangular_solve", "not square", "ValueError", r"square", _la("triangular_solve"), rect, np.ones(3, _F))
    bad("matrix_power", "float power", "TypeError", r"integer power", lambda aq, a: aq.linalg.matrix_power(a, 2.5), sq)
    bad(
        "matrix_power",
        "bool",
        "TypeError",
        r"numeric",
        lambda aq, a: aq.linalg.matrix_power(a, 2),
        np.eye(2, dtype=bool),
    )
    bad("norm", "3-D with an ord", "ValueError", r"1-D or 2-D", _la("norm", ord=2), np.ones((2, 2, 2), _F))
    bad("norm", "three axes", "ValueError", r"one axis .* or two", _la("norm", axis=(0, 1, 2)), np.ones((2, 2, 2), _F))
    bad(
        "pinv",
        "rtol batch clash",
        "ValueError",
        r"broadcast",
        lambda aq, a, r: aq.linalg.pinv(a, rtol=r),
        np.ones((2, 3, 3), _F),
        np.ones(3, _F),
    )


def linalg_edge_cases() -> list[Any]:
    cases = Cases()
    _hand(cases)
    _empty(cases)
    _nonfinite(cases)
    _errors(cases)
    return list(cases)


__all__ = ["linalg_edge_cases"]
