"""The linear algebra extension's composites, written once on the primitives: LU with
partial pivoting, triangular solves, Householder QR, Cholesky, and what is built on them
(solve, inv, det, slogdet), the norms, cross, outer, diagonal, trace, matrix_power. The
Jacobi methods (eigh, the SVD and what is built on it) are in :mod:`._jacobi`.

Each function takes the backend ``b`` first and is the default of the ``Backend`` method
of the same name. Arguments arrive as the frontend (``arrayq._linalg``) leaves them:
float32/float64/complex matrices for the decompositions (half precision was widened to
float32), finite (a matrix holding NaN/inf was replaced by the identity), not empty
where a native library would need that, batch axes already broadcast between operands.

**Cost.** Every algorithm loops in Python over the matrix size and does each step for the
whole batch with primitive ops on (..., n, n) arrays: O(n) primitive calls and O(n^3)
arithmetic per matrix for LU, QR, Cholesky and the triangular solves, which is fine for
the small matrices these defaults are for; a backend with a LAPACK overrides them.

**Singular input never raises here.** A zero pivot gives NaN in ``triangular_solve``,
``solve`` and ``inv``; a matrix that is not positive definite gives a non-positive
diagonal entry in ``cholesky``'s factor. The frontend turns these into ``LinAlgError``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .. import _dtypes as dt

if TYPE_CHECKING:
    from ._composites import Backend

Array = Any


# ---------------------------------------------------------------------- small helpers
def index(b: Backend, values: Any, like: Array) -> Array:
    """An integer index array (the backend's default int) on ``like``'s device."""
    return b.asarray(list(values), b.default_int, b.device_of(like), None)


def positions(b: Backend, n: int, like: Array, shape: tuple[int, ...]) -> Array:
    """``0, 1, ..., n-1`` reshaped to ``shape`` (one entry is n)."""
    return b.reshape(b.arange(0, n, 1, b.default_int, b.device_of(like)), shape)


def const(b: Backend, like: Array, value: Any, dtype: dt.DType | None = None) -> Array:
    """A 0-d array holding ``value`` in ``like``'s dtype (or ``dtype``)."""
    return b.full((), value, dtype or b.dtype_of(like), b.device_of(like))


def eye_batch(b: Backend, batch: tuple[int, ...], n: int, like: Array) -> Array:
    return b.broadcast_to(b.eye(n, n, 0, b.dtype_of(like), b.device_of(like)), batch + (n, n))


def safe(b: Backend, x: Array) -> Array:
    """``x`` with its zeros replaced by ones: a divisor that cannot divide by zero."""
    return b.where(b.binary("equal", x, 0), const(b, x, 1), x)


def is_complex(b: Backend, x: Array) -> bool:
    return b.dtype_of(x).kind == "complex"


def conj(b: Backend, x: Array) -> Array:
    """The complex conjugate (x itself for real x: no op is run)."""
    return b.unary("conj", x) if is_complex(b, x) else x


def adjoint(b: Backend, x: Array) -> Array:
    """The conjugate transpose of the matrices of x (the transpose for real x)."""
    return b.matrix_transpose(conj(b, x))


def abs2(b: Backend, x: Array) -> Array:
    """|x|^2, real."""
    mag = b.unary("abs", x)
    return b.binary("multiply", mag, mag)


def phase(b: Backend, x: Array) -> Array:
    """x / |x| (+1 where x is 0): the sign of a real x, e^(i arg x) of a complex one."""
    mag = b.unary("abs", x)
    return b.where(b.binary("equal", mag, 0), const(b, x, 1), b.binary("divide", x, safe(b, mag)))


def axes(x: Array, *offsets: int) -> tuple[int, ...]:
    """Non-negative axis numbers of x for negative offsets (-1: the last axis)."""
    return tuple(x.ndim + o for o in offsets)


def diagonal(b: Backend, x: Array, offset: int) -> Array:
    m, n = int(x.shape[-2]), int(x.shape[-1])
    if offset >= 0:
        flat = [i * n + i + offset for i in range(max(0, min(m, n - offset)))]
    else:
        flat = [(i - offset) * n + i for i in range(max(0, min(m + offset, n)))]
    batch = tuple(x.shape[:-2])
    if not flat or not x.size:
        return b.zeros(batch + (len(flat),), b.dtype_of(x), b.device_of(x))
    return b.take(b.reshape(x, batch + (m * n,)), index(b, flat, x), len(batch))


def trace(b: Backend, x: Array, offset: int, dtype: dt.DType | None) -> Array:
    d = diagonal(b, x, offset)
    return b.reduce("sum", d, (d.ndim - 1,), False, dtype)


def outer(b: Backend, x1: Array, x2: Array) -> Array:
    return b.binary("multiply", b.reshape(x1, (-1, 1)), b.reshape(x2, (1, -1)))


def cross(b: Backend, x1: Array, x2: Array, axis: int) -> Array:
    def part(x: Array, i: int) -> Array:
        return b.take(x, index(b, [i], x), axis)

    (a0, a1, a2), (b0, b1, b2) = ([part(x, i) for i in range(3)] for x in (x1, x2))

    def minor(u: Array, v: Array, w: Array, z: Array) -> Array:
        return b.binary("subtract", b.binary("multiply", u, v), b.binary("multiply", w, z))

    return b.concat([minor(a1, b2, a2, b1), minor(a2, b0, a0, b2), minor(a0, b1, a1, b0)], axis)


def matrix_power(b: Backend, x: Array, n: int) -> Array:
    result, base = None, x
    while n:  # binary powering: x^13 = x^8 @ x^4 @ x
        if n & 1:
            result = base if result is None else b.matmul(result, base)
        n >>= 1
        if n:
            base = b.matmul(base, base)
    return eye_batch(b, tuple(x.shape[:-2]), int(x.shape[-1]), x) if result is None else result


# ---------------------------------------------------------------------- norms
def _extreme(b: Backend, x: Array, op: str, axis: tuple[int, ...], keepdims: bool) -> Array:
    """max/min of non-negative values over ``axis``; over nothing, 0 (max) or +inf (min)."""
    if x.size:
        return b.reduce(op, x, axis, keepdims, None)
    shape = tuple(1 if i in axis else n for i, n in enumerate(x.shape) if keepdims or i not in axis)
    return b.full(shape, 0.0 if op == "max" else math.inf, b.dtype_of(x), b.device_of(x))


def vector_norm(b: Backend, x: Array, axis: tuple[int, ...] | None, keepdims: bool, ord: float) -> Array:
    mag = b.unary("abs", x)  # real, also for complex x
    axis = tuple(range(x.ndim)) if axis is None else axis
    if ord in (math.inf, -math.inf):
        return _extreme(b, mag, "max" if ord > 0 else "min", axis, keepdims)
    if ord == 0:
        nonzero = b.astype(b.binary("not_equal", mag, 0), b.dtype_of(mag))
        return b.reduce("sum", nonzero, axis, keepdims, None)
    if ord == 1:
        return b.reduce("sum", mag, axis, keepdims, None)
    if ord == 2:
        return b.unary("sqrt", b.reduce("sum", b.binary("multiply", mag, mag), axis, keepdims, None))
    if ord > 0:
        return b.binary("pow", b.reduce("sum", b.binary("pow", mag, float(ord)), axis, keepdims, None), 1.0 / ord)
    # a negative p: 0^p is inf, and a sum of nothing (or with an inf) gives inf^(1/p) = 0
    # and 0^(1/p) = inf; written with where so that no division by zero is asked for
    inf = const(b, mag, math.inf)
    powers = b.where(b.binary("equal", mag, 0), inf, b.binary("pow", safe(b, mag), float(ord)))
    total = b.reduce("sum", powers, axis, keepdims, None)
    return b.where(b.binary("equal", total, 0), inf, b.binary("pow", safe(b, total), 1.0 / ord))


def matrix_norm(b: Backend, x: Array, ord: Any, keepdims: bool) -> Array:
    rows, cols = axes(x, -2, -1)
    if ord == "fro":
        out = vector_norm(b, x, (rows, cols), False, 2)
    elif ord in ("nuc", 2, -2):
        s = b.svdvals(x)
        last = (s.ndim - 1,)
        out = b.reduce("sum", s, last, False, None) if ord == "nuc" else _extreme(b, s, _op(ord), last, False)
    else:  # 1, -1: sums down the columns; inf, -inf: along the rows
        sums = b.reduce("sum", b.unary("abs", x), (rows if abs(ord) == 1 else cols,), False, None)
        out = _extreme(b, sums, _op(ord), (sums.ndim - 1,), False)
    return b.reshape(out, tuple(out.shape) + (1, 1)) if keepdims else out


def _op(ord: Any) -> str:
    return "max" if ord > 0 else "min"


# ---------------------------------------------------------------------- LU and solves
def lu_factor(b: Backend, x: Array) -> tuple[Array, Array, Array, Array]:
    """``(perm, L, U, sign)`` with ``x[..., perm, :] = L @ U``: Doolittle elimination with
    partial pivoting (the largest magnitude in the column, the first on ties), as LAPACK's
    getrf. ``perm`` holds row indices (default int), ``sign`` the permutation's sign
    (x's dtype). A zero pivot column is skipped, leaving a zero on U's diagonal."""
    m, n = int(x.shape[-2]), int(x.shape[-1])
    k, batch, dtype, device = min(m, n), tuple(x.shape[:-2]), b.dtype_of(x), b.device_of(x)
    rows = positions(b, m, x, (m, 1))
    perm = b.broadcast_to(b.reshape(rows, (m,)), batch + (m,))
    low = b.zeros(batch + (m, k), dtype, device)
    sign = b.ones(batch, dtype, device)
    a = x
    for j in range(k if x.size else 0):  # (an empty batch: nothing to eliminate)
        candidates = b.binary("greater_equal", rows, j)
        size = b.unary("abs", a[..., :, j : j + 1])  # real, for complex x too
        mag = b.where(candidates, size, const(b, size, -1))
        p = b.argreduce("argmax", mag, a.ndim - 2, True)  # (..., 1, 1)
        p = b.astype(p, b.default_int)
        at_j, at_p = b.binary("equal", rows, j), b.binary("equal", rows, p)
        swap = b.where(at_j, p, b.where(at_p, const(b, rows, j), rows))  # (..., m, 1)
        a = b.take_along_axis(a, b.broadcast_to(swap, batch + (m, n)), a.ndim - 2)
        low = b.take_along_axis(low, b.broadcast_to(swap, batch + (m, k)), a.ndim - 2)
        perm = b.take_along_axis(perm, b.reshape(b.broadcast_to(swap, batch + (m, 1)), batch + (m,)), len(batch))
        moved = b.reshape(b.binary("not_equal", p, j), batch)
        sign = b.where(moved, b.unary("negative", sign), sign)
        pivot = a[..., j : j + 1, j : j + 1]
        mult = b.where(
            b.binary("greater", rows, j),
            b.binary("divide", a[..., :, j : j + 1], safe(b, pivot)),
            const(b, x, 0),
        )
        a = b.binary("subtract", a, b.binary("multiply", mult, a[..., j : j + 1, :]))
        low = b.where(_is_col(b, k, j, x), mult, low)
    low = b.binary("add", low, b.eye(m, k, 0, dtype, device))
    return perm, low, b.triu(a[..., :k, :], 0), sign


def _is_col(b: Backend, k: int, j: int, like: Array) -> Array:
    """A (1, k) mask that is true in column j."""
    return b.binary("equal", positions(b, k, like, (1, k)), j)


def lu(b: Backend, x: Array) -> tuple[Array, Array, Array]:
    perm, low, up, _ = lu_factor(b, x)
    return perm, low, up


def _forward(b: Backend, a: Array, rhs: Array) -> Array:
    """Solve ``a @ out = rhs`` for lower-triangular ``a`` (..., n, n), rhs (..., n, k), row by
    row; a zero diagonal entry makes its row (and the rows after it) NaN."""
    n = int(a.shape[-1])
    out = b.zeros_like(rhs, None, None)
    rows = positions(b, n, a, (n, 1))
    nan = const(b, rhs, math.nan)
    for i in range(n):
        residual = b.binary("subtract", rhs[..., i : i + 1, :], b.matmul(a[..., i : i + 1, :], out))
        d = a[..., i : i + 1, i : i + 1]
        value = b.where(b.binary("equal", d, 0), nan, b.binary("divide", residual, safe(b, d)))
        out = b.where(b.binary("equal", rows, i), value, out)
    return out


def triangular_solve(b: Backend, a: Array, rhs: Array, lower: bool) -> Array:
    if lower:
        return _forward(b, a, rhs)
    # an upper-triangular system is a lower one read backwards: J U J (J y) = J rhs
    flipped = _forward(b, b.flip(a, axes(a, -2, -1)), b.flip(rhs, axes(rhs, -2)))
    return b.flip(flipped, axes(flipped, -2))


def solve(b: Backend, a: Array, rhs: Array) -> Array:
    perm, low, up, _ = lu_factor(b, a)
    index_rows = b.broadcast_to(b.reshape(perm, tuple(perm.shape) + (1,)), tuple(rhs.shape))
    y = _forward(b, low, b.take_along_axis(rhs, index_rows, rhs.ndim - 2))
    return triangular_solve(b, up, y, False)


def inv(b: Backend, x: Array) -> Array:
    return solve(b, x, eye_batch(b, tuple(x.shape[:-2]), int(x.shape[-1]), x))


def det(b: Backend, x: Array) -> Array:
    _, _, up, sign = lu_factor(b, x)
    d = diagonal(b, up, 0)
    # (+ 0.0 turns the -0.0 of a singular matrix with an odd permutation into 0.0)
    return b.binary("add", b.binary("multiply", sign, b.reduce("prod", d, (d.ndim - 1,), False, None)), 0.0)


def slogdet(b: Backend, x: Array) -> tuple[Array, Array]:
    _, _, up, sign = lu_factor(b, x)
    d = diagonal(b, up, 0)
    last = (d.ndim - 1,)
    zero = b.reduce("any", b.binary("equal", d, 0), last, False, None)
    units = b.where(b.binary("equal", d, 0), const(b, d, 0), phase(b, d))  # sign(d), or d / |d|
    sign = b.binary("multiply", sign, b.reduce("prod", units, last, False, None))
    sign = b.binary("add", sign, 0.0)  # 0.0, not -0.0, for a singular matrix
    logs = b.reduce("sum", b.unary("log", b.unary("abs", safe(b, d))), last, False, None)  # real
    return sign, b.where(zero, const(b, logs, -math.inf), logs)


# ---------------------------------------------------------------------- QR, Cholesky
def qr(b: Backend, x: Array, mode: str) -> tuple[Array, Array]:
    """Householder QR: for each column j, the reflector ``I - beta v v^H`` that zeroes the
    column below the diagonal is applied to R and accumulated into Q, on the whole matrix
    with the rows above j masked out of v. v is built from the column divided by its
    largest magnitude (the reflector does not change), so no square overflows. Complex
    x: ``alpha = -phase(x_j) |x|`` (R's diagonal is then complex; LAPACK's is real)."""
    m, n = int(x.shape[-2]), int(x.shape[-1])
    k, batch = min(m, n), tuple(x.shape[:-2])
    rows = positions(b, m, x, (m, 1))
    zero = const(b, x, 0)
    r, q = x, eye_batch(b, batch, m, x)
    for j in range(k):
        below = b.binary("greater_equal", rows, j)
        col = b.where(below, r[..., :, j : j + 1], zero)
        big = b.reduce("max", b.unary("abs", col), axes(col, -2, -1), True, None)
        v = b.binary("divide", col, safe(b, big))
        norm = b.unary("sqrt", b.reduce("sum", abs2(b, v), axes(v, -2, -1), True, None))
        alpha = b.unary("negative", b.binary("multiply", phase(b, v[..., j : j + 1, :]), norm))
        v = b.binary("subtract", v, b.where(b.binary("equal", rows, j), alpha, zero))
        vtv = b.reduce("sum", abs2(b, v), axes(v, -2, -1), True, None)
        beta = b.where(b.binary("equal", vtv, 0), const(b, vtv, 0), b.binary("divide", 2.0, safe(b, vtv)))
        bv = b.binary("multiply", beta, v)
        vt = adjoint(b, v)
        r = b.binary("subtract", r, b.binary("multiply", bv, b.matmul(vt, r)))
        q = b.binary("subtract", q, b.binary("multiply", b.matmul(q, bv), vt))
    r = b.triu(r, 0)
    if mode == "reduced":
        q, r = q[..., :, :k], r[..., :k, :]
    return q, r


def cholesky(b: Backend, x: Array, upper: bool) -> Array:
    """Column by column (Cholesky-Banachiewicz on the lower triangle): ``L[j, j] = sqrt(d)``
    with ``d = x[j, j] - sum_k<j |L[j, k]|^2``; ``d <= 0`` (not positive definite) leaves a 0
    on the diagonal and zeros below it, which the frontend reports. Complex x is taken as
    Hermitian (``L @ L^H = x``; upper: ``L^H``)."""
    n = int(x.shape[-1])
    rows = positions(b, n, x, (n, 1))
    zero = const(b, x, 0)
    low = b.zeros_like(x, None, None)
    for j in range(n):
        c = b.binary("subtract", x[..., :, j : j + 1], b.matmul(low, adjoint(b, low[..., j : j + 1, :])))
        d = c[..., j : j + 1, :]
        d = b.unary("real", d) if is_complex(b, d) else d
        real_root = b.unary("sqrt", b.binary("maximum", d, const(b, d, 0)))
        root = b.astype(real_root, b.dtype_of(x))
        below = b.where(b.binary("greater", real_root, 0), b.binary("divide", c, safe(b, root)), zero)
        col = b.where(b.binary("equal", rows, j), root, b.where(b.binary("greater", rows, j), below, zero))
        low = b.where(_is_col(b, n, j, x), col, low)
    return adjoint(b, low) if upper else low


__all__ = [
    "cholesky",
    "cross",
    "det",
    "diagonal",
    "inv",
    "lu",
    "lu_factor",
    "matrix_norm",
    "matrix_power",
    "outer",
    "qr",
    "slogdet",
    "solve",
    "trace",
    "triangular_solve",
    "vector_norm",
]
