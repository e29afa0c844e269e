"""The decompositions and solvers of ``arrayq.linalg`` (the array API's linalg extension,
plus Nx.LinAlg's ``lu``, ``triangular_solve`` and ``lstsq``).

Every function takes a stack of matrices ``(..., M, N)`` and works on each matrix of the
batch. The shared rules — floating input, real or complex (half precision computed in float32),
empty input, NaN/inf matrices (their results are NaN), singular matrices
(``LinAlgError``) — are in :mod:`arrayq._linalg_checks` and docs/linalg.md. Each calls
the backend op of the same name (``arrayq.backend.LINALG_OPS``), whose default is written
on the primitives in ``arrayq/backend/_linalg_composites.py`` and ``_jacobi.py``.
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

from . import _dtypes as dt
from ._linalg_checks import (
    arrays,
    decompose,
    finite,
    floating,
    matrices,
    method,
    narrow,
    not_finite,
    poison,
    raise_where,
    replace,
)
from .backend import Backend, broadcast_shapes


class EighResult(NamedTuple):
    """``eigh``'s result: eigenvalues (..., M) in ascending order and the matching
    orthonormal eigenvectors as the columns of (..., M, M)."""

    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    """``qr``'s result: Q with orthonormal columns and upper-triangular R, ``Q @ R = x``."""

    Q: Any
    R: Any


class SlogdetResult(NamedTuple):
    """``slogdet``'s result: the determinant's sign (1, -1 or 0) and ``log|det|``."""

    sign: Any
    logabsdet: Any


class SVDResult(NamedTuple):
    """``svd``'s result: ``U @ diag(S) @ Vh = x``, S descending and non-negative."""

    U: Any
    S: Any
    Vh: Any


class LUResult(NamedTuple):
    """``lu``'s result: permutation matrix P, unit lower-triangular L, upper-triangular U,
    ``P @ L @ U = x``."""

    P: Any
    L: Any
    U: Any


def _singular(name: str, fix: str) -> Any:
    def check(backend: Backend, outs: list[Any], ok: Any) -> None:
        bad = backend.binary("logical_and", ok, not_finite(backend, outs[0]))
        raise_where(backend, bad, name, "is singular to working precision (a zero pivot)", fix)

    return check


def cholesky(x: Any, /, *, upper: bool = False) -> Any:
    """The Cholesky factor of each symmetric (complex: Hermitian) positive-definite matrix of
    ``x`` (..., M, M): lower-triangular L with ``L @ L^H = x`` (upper: ``U = L^H``,
    ``U^H @ U = x``; ^H is the transpose for real x). Only the lower triangle is read.
    Raises LinAlgError for a matrix that is not positive definite, ValueError for
    non-square input, TypeError for non-float dtypes."""

    def check(backend: Backend, outs: list[Any], ok: Any) -> None:
        d = method(backend, "diagonal", outs[0])(outs[0], 0)
        d = backend.unary("real", d) if backend.dtype_of(d).kind == "complex" else d
        low = backend.reduce("any", backend.binary("less_equal", d, 0), (d.ndim - 1,), False, None)
        bad = backend.binary("logical_and", ok, backend.binary("logical_or", low, not_finite(backend, outs[0])))
        raise_where(backend, bad, "cholesky", "is not positive definite", "eigh shows its eigenvalues")

    return decompose("cholesky", x, lambda b, f, a: f(a, upper), square=True, check=check)[0]


def det(x: Any, /) -> Any:
    """The determinant of each square matrix of ``x`` (..., M, M), shape (...); from the
    LU factorization. A 0 x 0 matrix has determinant 1; a singular one 0. Errors:
    ValueError for non-square input, TypeError for bool or integer input."""
    return decompose("det", x, lambda b, f, a: f(a), square=True)[0]


def slogdet(x: Any, /) -> SlogdetResult:
    """``(sign, logabsdet)`` of each determinant, shapes (...): sign 1 or -1 (complex x: of
    modulus 1, in x's dtype; 0 for a singular matrix, whose logabsdet is -inf), logabsdet
    in the real dtype; ``sign * exp(logabsdet) = det(x)`` without overflow. Errors as
    :func:`det`."""
    return SlogdetResult(*decompose("slogdet", x, lambda b, f, a: f(a), square=True))


def eigh(x: Any, /) -> EighResult:
    """Eigenvalues (ascending, (..., M), in the real dtype) and orthonormal eigenvectors
    (columns of (..., M, M)) of each symmetric (complex: Hermitian) matrix of ``x``, read
    from its lower triangle. Each eigenvector's sign (complex: phase) is the backend's
    choice. Errors as :func:`det`."""
    return EighResult(*decompose("eigh", x, lambda b, f, a: f(a), square=True))


def eigvalsh(x: Any, /) -> Any:
    """The eigenvalues of each symmetric (complex: Hermitian) matrix of ``x`` (lower
    triangle), ascending, (..., M), in the real dtype. Errors as :func:`det`."""
    return decompose("eigvalsh", x, lambda b, f, a: f(a), square=True)[0]


def inv(x: Any, /) -> Any:
    """The inverse of each square matrix of ``x`` (..., M, M). Raises LinAlgError for a
    singular matrix (a zero pivot of its LU factorization, or an inverse that overflows);
    otherwise errors as :func:`det`."""
    check = _singular("inv", "linalg.pinv gives a pseudo-inverse")
    return decompose("inv", x, lambda b, f, a: f(a), square=True, check=check)[0]


def _permutation(backend: Backend, perm: Any, like: Any) -> Any:
    """The permutation matrix P with ``P[perm[c], c] = 1``, in like's dtype."""
    m = int(perm.shape[-1])
    rows = backend.reshape(backend.arange(0, m, 1, backend.dtype_of(perm), backend.device_of(perm)), (m, 1))
    hit = backend.binary("equal", rows, backend.reshape(perm, tuple(perm.shape[:-1]) + (1, m)))
    return backend.astype(hit, backend.dtype_of(like))


def lu(x: Any, /) -> LUResult:
    """LU factorization with partial pivoting (the largest magnitude of the column is the
    pivot) of each matrix of ``x`` (..., M, N): ``P @ L @ U = x`` with P (..., M, M) a
    permutation matrix, L (..., M, K) unit lower-triangular with ``|L| <= 1``, U (..., K, N)
    upper-triangular, K = min(M, N); all in x's dtype. A singular matrix is fine (U has a
    zero on its diagonal). Like Nx.LinAlg.lu and scipy.linalg.lu. Errors: ValueError for
    fewer than 2 axes, TypeError for bool or integer input."""

    def call(backend: Backend, f: Any, a: Any) -> tuple[Any, Any, Any]:
        perm, low, up = f(a)
        return _permutation(backend, backend.astype(perm, backend.default_int), low), low, up

    return LUResult(*decompose("lu", x, call, square=False))


def qr(x: Any, /, *, mode: str = "reduced") -> QRResult:
    """QR factorization of each matrix of ``x`` (..., M, N): Q (..., M, K) with orthonormal
    columns and upper-triangular R (..., K, N), K = min(M, N) (``mode="reduced"``), or
    Q (..., M, M) and R (..., M, N) (``mode="complete"``). The signs of R's diagonal are
    the backend's choice. ValueError for another mode; otherwise errors as :func:`lu`."""
    if mode not in ("reduced", "complete"):
        raise ValueError(f"linalg.qr mode must be 'reduced' or 'complete', got {mode!r}")
    return QRResult(*decompose("qr", x, lambda b, f, a: f(a, mode), square=False))


def svd(x: Any, /, *, full_matrices: bool = True) -> SVDResult:
    """Singular value decomposition of each matrix of ``x`` (..., M, N): ``U @ diag(S) @ Vh
    = x``, S (..., K) descending in the real dtype, K = min(M, N); U (..., M, M) and Vh
    (..., N, N) with ``full_matrices`` (the default), else (..., M, K) and (..., K, N). The signs of the
    singular vectors are the backend's choice. Errors as :func:`lu`."""
    return SVDResult(*decompose("svd", x, lambda b, f, a: f(a, bool(full_matrices)), square=False))


def svdvals(x: Any, /) -> Any:
    """The singular values of each matrix of ``x`` (..., M, N), descending, (..., min(M, N)).
    Errors as :func:`lu`."""
    return decompose("svdvals", x, lambda b, f, a: f(a), square=False)[0]


def _rtol(backend: Backend, rtol: Any, a: Any) -> Any:
    """rtol as None or an array of a's dtype shaped like a's batch."""
    if rtol is None:
        return None
    batch, real = tuple(a.shape[:-2]), dt.finfo(backend.dtype_of(a)).dtype  # (complex64: float32)
    value = backend.astype(rtol, real) if backend.is_array(rtol) else None
    if value is None:
        value = backend.full((), float(rtol), real, backend.device_of(a))
    return backend.broadcast_to(value, batch)


def _with_rtol(name: str, x: Any, rtol: Any) -> Any:
    if rtol is not None and not isinstance(rtol, (int, float)):
        _, (x, rtol) = arrays(name, x, rtol)
        broadcast_shapes(tuple(rtol.shape), tuple(x.shape[:-2]))
    return x, rtol


def pinv(x: Any, /, *, rtol: Any = None) -> Any:
    """The Moore-Penrose pseudo-inverse of each matrix of ``x`` (..., M, N), shape
    (..., N, M), from the SVD: singular values at most ``rtol * max(S)`` count as zero.
    ``rtol`` a float or an array broadcasting against x's batch (ValueError if it does
    not); None: ``max(M, N) * eps``. Otherwise errors as :func:`lu`."""
    x, rtol = _with_rtol("pinv", x, rtol)
    return decompose("pinv", x, lambda b, f, a: f(a, _rtol(b, rtol, a)), square=False)[0]


def matrix_rank(x: Any, /, *, rtol: Any = None) -> Any:
    """The number of singular values above ``rtol * max(S)`` for each matrix of ``x``
    (..., M, N), shape (...) in the default integer dtype; rtol as for :func:`pinv`. Raises
    LinAlgError for a matrix holding NaN or inf (its rank is undefined); otherwise errors
    as :func:`pinv`."""

    def check(backend: Backend, outs: list[Any], ok: Any) -> None:
        why = "holds NaN or inf, so its rank is undefined"
        raise_where(backend, backend.unary("logical_not", ok), "matrix_rank", why, "check the input")

    x, rtol = _with_rtol("matrix_rank", x, rtol)
    return decompose("matrix_rank", x, lambda b, f, a: f(a, _rtol(b, rtol, a)), square=False, check=check)[0]


def matrix_power(x: Any, n: int, /) -> Any:
    """``x`` multiplied by itself ``n`` times, for each square matrix of ``x`` (..., M, M):
    the identity for n = 0 (any numeric dtype), ``inv(x)`` to the power -n for n < 0
    (floating x; LinAlgError if singular). TypeError if n is not an int or x is bool;
    ValueError for non-square input."""
    if isinstance(n, bool) or not isinstance(n, int):
        try:
            n = operator.index(n)
        except TypeError:
            raise TypeError(f"linalg.matrix_power needs an integer power, got {n!r}") from None
    backend, (x,) = arrays("matrix_power", x)
    matrices("matrix_power", x, square=True)
    if backend.dtype_of(x) == dt.bool_:
        raise TypeError("linalg.matrix_power needs a numeric array, got bool")
    if n < 0:
        x, n = inv(x), -n
    return method(backend, "matrix_power", x)(x, n)


def _system(name: str, a: Any, b: Any, square: bool) -> tuple[Backend, Any, Any, dt.DType, bool]:
    """Check ``a`` (..., M, N) and ``b`` (M,) or (..., M, K) of a linear system: both in
    one float dtype, batch axes broadcast, a vector b as one column. Returns
    (backend, a, b, result dtype, whether b was a vector)."""
    backend, (a, b) = arrays(name, a, b)
    matrices(name, a, square, "x1")
    if not b.ndim:
        raise ValueError(f"linalg.{name} needs x2 as a vector (M,) or matrices (..., M, K), got a 0-d array")
    (a, da), (b, db) = floating(name, backend, a), floating(name, backend, b)
    dtype = dt.result_type(da, db)
    work = dt.float32 if dtype in (dt.float16, dt.bfloat16) else dtype
    a, b = backend.astype(a, work, copy=False), backend.astype(b, work, copy=False)
    m, vector = int(a.shape[-2]), b.ndim == 1
    rows = int(b.shape[0] if vector else b.shape[-2])
    if rows != m:
        raise ValueError(
            f"linalg.{name}: x1 {tuple(a.shape)} has {m} rows but x2 {tuple(b.shape)} has {rows}; they must match"
        )
    if vector:
        b = backend.reshape(b, (m, 1))
    batch = broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2]))
    a = backend.broadcast_to(a, batch + tuple(a.shape[-2:]))
    b = backend.broadcast_to(b, batch + tuple(b.shape[-2:]))
    return backend, a, b, dtype, vector


def _solve_system(name: str, a: Any, b: Any, call: Any, square: bool, singular: str | None) -> Any:
    backend, a, b, dtype, vector = _system(name, a, b, square)
    ok = backend.binary("logical_and", finite(backend, a), finite(backend, b))
    a, b = replace(backend, a, ok, True), replace(backend, b, ok, False)
    out = call(backend, method(backend, name, a, b), a, b)
    if singular is not None:
        _singular(name, singular)(backend, [out], ok)
    (out,) = narrow(backend, poison(backend, [out], ok), dtype)
    return backend.reshape(out, tuple(out.shape[:-1])) if vector else out


def solve(x1: Any, x2: Any, /) -> Any:
    """The solution X of ``x1 @ X = x2`` for each square matrix of ``x1`` (..., M, M) and
    ``x2`` (..., M, K), batch axes broadcast, shape (..., M, K); a 1-D ``x2`` (M,) is one
    right-hand side for every matrix, giving (..., M). LinAlgError for a singular x1;
    ValueError for mismatched shapes or batches; TypeError as :func:`det`. The result's
    dtype is the promoted dtype of x1 and x2."""
    fix = "linalg.lstsq gives a least-squares solution"
    return _solve_system("solve", x1, x2, lambda be, f, a, b: f(a, b), True, fix)


def lstsq(x1: Any, x2: Any, /, *, rtol: Any = None) -> Any:
    """The minimum-norm least-squares solution X of ``x1 @ X = x2`` for x1 (..., M, N) and
    x2 (..., M, K) or (M,): shape (..., N, K) or (..., N). Singular values at most
    ``rtol * max(S)`` count as zero (None: ``max(M, N) * eps``), so rank-deficient systems
    are fine. Unlike numpy.linalg.lstsq, only the solution is returned (matrix_rank and
    svdvals give the rest). ValueError for mismatched rows or batches; TypeError as
    :func:`det`."""
    if rtol is not None and not isinstance(rtol, (int, float)):
        raise TypeError(f"linalg.lstsq takes rtol as a float or None, got {type(rtol).__name__}")
    return _solve_system("lstsq", x1, x2, lambda be, f, a, b: f(a, b, _rtol(be, rtol, a)), False, None)


def triangular_solve(
    a: Any, b: Any, /, *, lower: bool = True, left: bool = True, transpose: bool = False, unit_diagonal: bool = False
) -> Any:
    """Solve a triangular system for each matrix ``a`` (..., M, M) and right-hand side ``b``:
    ``op(a) @ X = b`` if ``left`` (b (..., M, K), or (M,) for one vector), else
    ``X @ op(a) = b`` (b (..., K, M), or (M,)), where ``op(a)`` is ``a`` or, with
    ``transpose``, ``a^T``. Only the ``lower`` (or upper) triangle of a is read;
    ``unit_diagonal`` takes its diagonal as ones without reading it. Batch axes broadcast.
    LinAlgError for a zero on the diagonal; ValueError and TypeError as :func:`solve`.
    (Nx's ``triangular_solve`` with ``left_side`` and ``transform_a``; scipy's
    ``solve_triangular``.)"""
    backend, (a,) = arrays("triangular_solve", a)
    matrices("triangular_solve", a, square=True, what="a")
    a = backend.tril(a, 0) if lower else backend.triu(a, 0)
    if unit_diagonal:
        n = int(a.shape[-1])
        eye = backend.eye(n, n, 0, dt.bool_, backend.device_of(a))
        a = backend.where(eye, backend.full((), 1, backend.dtype_of(a), backend.device_of(a)), a)
    flip = bool(transpose) != (not left)  # the matrix the backend solves with is a^T
    if flip:
        a, lower = backend.matrix_transpose(a), not lower
    rhs = b if left or getattr(b, "ndim", 0) < 2 else _transposed(b)
    out = _solve_system(
        "triangular_solve", a, rhs, lambda be, f, a_, b_: f(a_, b_, bool(lower)), True, "check its diagonal"
    )
    return out if left or out.ndim < 2 else _transposed(out)


def _transposed(x: Any) -> Any:
    backend, (x,) = arrays("triangular_solve", x)
    return backend.matrix_transpose(x)


__all__ = [
    "EighResult",
    "LUResult",
    "QRResult",
    "SVDResult",
    "SlogdetResult",
    "cholesky",
    "det",
    "eigh",
    "eigvalsh",
    "inv",
    "lstsq",
    "lu",
    "matrix_power",
    "matrix_rank",
    "pinv",
    "qr",
    "slogdet",
    "solve",
    "svd",
    "svdvals",
    "triangular_solve",
]
