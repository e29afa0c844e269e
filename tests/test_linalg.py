"""arrayq.linalg on every backend (numpy, primitives-only, strict, mlx) against values
computed by hand or in exact rational arithmetic, and against the defining properties of
each decomposition on random well-conditioned matrices (bounds: c n eps cond).

The rules shared by all functions (dtypes, NaN, empty input, errors) are in
tests/test_linalg_rules.py; the conformance suite compares the backends with the
reference composites case by case (arrayq/conformance/cases/linalg*.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import arrayq as aq
from tests._linalg_support import arr, bound, conditioned, fraction_det, fraction_lu, host, lb, orthogonal  # noqa: F401

L = aq.linalg
COVERS = {
    f"linalg.{n}"
    for n in (
        "cholesky cross det diagonal eigh eigvalsh inv lstsq lu matrix_norm matrix_power matrix_rank norm outer "
        "pinv qr slogdet solve svd svdvals trace triangular_solve vector_norm"
    ).split()
}
F64 = aq.float64
TIGHT = dict(rtol=1e-13, atol=1e-13)  # float64 on 2 x 2 and 3 x 3 hand cases: a few ulps


# ---------------------------------------------------------------------- hand-computed values


def test_det_and_slogdet_by_hand(lb):
    assert host(L.det(arr(lb, [[1.0, 2.0], [3.0, 4.0]]))) == pytest.approx(-2.0, abs=1e-14)
    upper = [[2.0, -1.0, 3.0], [0.0, 4.0, 1.0], [0.0, 0.0, -0.5]]
    assert host(L.det(arr(lb, upper))) == pytest.approx(-4.0, abs=1e-14)  # the diagonal's product
    assert host(L.det(arr(lb, [[1.0, 2.0], [2.0, 4.0]]))) == 0.0  # exact: the pivot cancels to 0
    sign, logabs = L.slogdet(arr(lb, np.diag([-3.0, 1.0, 2.0])))
    assert host(sign) == -1.0 and host(logabs) == pytest.approx(math.log(6.0), abs=1e-14)
    sign, logabs = L.slogdet(arr(lb, [[1.0, 2.0], [2.0, 4.0]]))
    assert host(sign) == 0.0 and host(logabs) == -np.inf


def test_det_of_random_matrices_is_exact_to_rounding(lb):
    rng = np.random.default_rng(0)
    a = rng.integers(-4, 5, (3, 4, 4)).astype(np.float64)
    want = np.array([float(fraction_det(m)) for m in a])
    # integer entries: the exact determinant is an integer; LU rounds on the way (cond <~ 100)
    np.testing.assert_allclose(host(L.det(arr(lb, a))), want, rtol=0, atol=bound(F64, 4, 100) * 64)


def test_inv_and_solve_by_hand(lb):
    a = arr(lb, [[4.0, 7.0], [2.0, 6.0]])  # det 10: inverse [[6, -7], [-2, 4]] / 10
    np.testing.assert_allclose(host(L.inv(a)), [[0.6, -0.7], [-0.2, 0.4]], **TIGHT)
    np.testing.assert_allclose(host(L.solve(a, arr(lb, [1.0, 2.0]))), [-0.8, 0.6], **TIGHT)
    b = arr(lb, [[1.0, 0.0], [2.0, 1.0]])
    np.testing.assert_allclose(host(L.solve(a, b)), [[-0.8, -0.7], [0.6, 0.4]], **TIGHT)


def test_lu_by_hand_and_in_fractions(lb):
    p, low, up = L.lu(arr(lb, [[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(host(p), [[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(host(low), [[1.0, 0.0], [1 / 3, 1.0]], **TIGHT)
    np.testing.assert_allclose(host(up), [[3.0, 4.0], [0.0, 2 / 3]], **TIGHT)
    # ties in |column|: the first candidate row wins, as LAPACK's getrf (and fraction_lu)
    for a in ([[1.0, 2.0, 3.0], [-1.0, 5.0, 1.0], [1.0, -2.0, 4.0]], np.arange(12.0).reshape(4, 3) % 5 - 2):
        perm, low_f, up_f = fraction_lu(a)
        p, low, up = L.lu(arr(lb, a))
        want_p = np.zeros((len(perm), len(perm)))
        want_p[perm, range(len(perm))] = 1.0
        np.testing.assert_array_equal(host(p), want_p)
        np.testing.assert_allclose(host(low), np.array(low_f, dtype=float), **TIGHT)
        np.testing.assert_allclose(host(up), np.array(up_f, dtype=float), **TIGHT)


def test_lu_of_a_singular_matrix_leaves_a_zero_pivot(lb):
    p, low, up = L.lu(arr(lb, [[0.0, 1.0], [0.0, 2.0]]))  # a zero column: nothing to eliminate
    np.testing.assert_array_equal(host(up)[:, 0], [0.0, 0.0])
    np.testing.assert_allclose(host(p) @ host(low) @ host(up), [[0.0, 1.0], [0.0, 2.0]], **TIGHT)


def test_cholesky_by_hand(lb):
    a = arr(lb, [[4.0, 2.0], [2.0, 3.0]])
    np.testing.assert_allclose(host(L.cholesky(a)), [[2.0, 0.0], [1.0, math.sqrt(2)]], **TIGHT)
    np.testing.assert_allclose(host(L.cholesky(a, upper=True)), [[2.0, 1.0], [0.0, math.sqrt(2)]], **TIGHT)
    # only the lower triangle is read (NumPy's and LAPACK's UPLO="L")
    np.testing.assert_allclose(host(L.cholesky(arr(lb, [[4.0, 99.0], [2.0, 3.0]]))), host(L.cholesky(a)), **TIGHT)


def test_eigh_by_hand(lb):
    w, v = L.eigh(arr(lb, [[2.0, 1.0], [1.0, 2.0]]))  # eigenvalues 1 and 3, vectors (1, -1), (1, 1) / sqrt 2
    np.testing.assert_allclose(host(w), [1.0, 3.0], **TIGHT)
    np.testing.assert_allclose(np.abs(host(v)), np.full((2, 2), 1 / math.sqrt(2)), **TIGHT)
    assert host(v)[0, 0] * host(v)[1, 0] < 0 < host(v)[0, 1] * host(v)[1, 1]
    np.testing.assert_allclose(host(L.eigvalsh(arr(lb, [[2.0, 99.0], [1.0, 2.0]]))), [1.0, 3.0], **TIGHT)
    w, v = L.eigh(arr(lb, np.diag([3.0, -1.0, 2.0])))
    np.testing.assert_allclose(host(w), [-1.0, 2.0, 3.0], **TIGHT)  # ascending
    np.testing.assert_allclose(np.abs(host(v)), [[0, 0, 1], [1, 0, 0], [0, 1, 0]], **TIGHT)


def test_svd_by_hand(lb):
    np.testing.assert_allclose(host(L.svdvals(arr(lb, np.diag([-3.0, 1.0, 2.0])))), [3.0, 2.0, 1.0], **TIGHT)
    rank1 = [[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]  # (1, 2, 3)^T (1, 2): sigma = sqrt(14) sqrt(5)
    np.testing.assert_allclose(host(L.svdvals(arr(lb, rank1))), [math.sqrt(70.0), 0.0], rtol=1e-14, atol=1e-14)
    u, s, vh = L.svd(arr(lb, rank1))
    np.testing.assert_allclose(np.abs(host(u)[:, 0]), np.array([1.0, 2.0, 3.0]) / math.sqrt(14), **TIGHT)
    np.testing.assert_allclose(np.abs(host(vh)[0]), np.array([1.0, 2.0]) / math.sqrt(5), **TIGHT)


def test_qr_by_hand(lb):
    q, r = L.qr(arr(lb, [[3.0], [4.0]]))
    assert abs(host(r)[0, 0]) == pytest.approx(5.0, abs=1e-14)
    np.testing.assert_allclose(host(q)[:, 0] * np.sign(host(r)[0, 0]), [0.6, 0.8], **TIGHT)
    q, r = L.qr(arr(lb, [[3.0], [4.0]]), mode="complete")
    assert host(q).shape == (2, 2) and host(r).shape == (2, 1) and host(r)[1, 0] == 0.0


def test_pinv_rank_and_lstsq_by_hand(lb):
    singular = arr(lb, [[1.0, 2.0], [2.0, 4.0]])  # rank 1, u v^T with |A|_F^2 = 25: pinv = A^T / 25
    np.testing.assert_allclose(host(L.pinv(singular)), np.array([[1.0, 2.0], [2.0, 4.0]]) / 25, **TIGHT)
    assert host(L.matrix_rank(singular)) == 1 and host(L.matrix_rank(arr(lb, np.zeros((2, 3))))) == 0
    graded = arr(lb, np.diag([1.0, 1e-3]))
    assert host(L.matrix_rank(graded)) == 2 and host(L.matrix_rank(graded, rtol=1e-2)) == 1
    assert host(L.pinv(graded, rtol=1e-2))[1, 1] == 0.0  # the cut-off value counts as zero
    line = arr(lb, [[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]])  # y = 1 + 2 x through 3 points exactly
    np.testing.assert_allclose(host(L.lstsq(line, arr(lb, [1.0, 3.0, 5.0]))), [1.0, 2.0], **TIGHT)
    # underdetermined and rank-deficient: the minimum-norm solution
    np.testing.assert_allclose(host(L.lstsq(arr(lb, [[1.0, 1.0]]), arr(lb, [2.0]))), [1.0, 1.0], **TIGHT)
    np.testing.assert_allclose(host(L.lstsq(singular, arr(lb, [[1.0], [2.0]]))), [[0.2], [0.4]], **TIGHT)


def test_triangular_solve_by_hand(lb):
    low = arr(lb, [[2.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(host(L.triangular_solve(low, arr(lb, [2.0, 3.0]))), [1.0, 2.0], **TIGHT)
    # x L = b, i.e. L^T x = b: [[2, 1], [0, 1]] x = (2, 3)
    np.testing.assert_allclose(host(L.triangular_solve(low, arr(lb, [2.0, 3.0]), left=False)), [-0.5, 3.0], **TIGHT)
    np.testing.assert_allclose(host(L.triangular_solve(low, arr(lb, [2.0, 3.0]), transpose=True)), [-0.5, 3.0], **TIGHT)
    noisy = arr(lb, [[5.0, 99.0], [1.0, 7.0]])  # unit diagonal, upper triangle ignored: [[1, 0], [1, 1]]
    got = L.triangular_solve(noisy, arr(lb, [[2.0], [3.0]]), unit_diagonal=True)
    np.testing.assert_allclose(host(got), [[2.0], [1.0]], **TIGHT)
    up = arr(lb, [[2.0, 1.0], [-99.0, 1.0]])
    np.testing.assert_allclose(host(L.triangular_solve(up, arr(lb, [3.0, 1.0]), lower=False)), [1.0, 1.0], **TIGHT)
    # right side with a matrix: X (2 x 2) @ [[2, 1], [0, 1]] = B
    b = np.array([[2.0, 3.0], [4.0, 1.0]])
    want = b @ np.linalg.inv(np.array([[2.0, 1.0], [0.0, 1.0]]))  # (inverse of a 2 x 2 by hand: exact here)
    np.testing.assert_allclose(host(L.triangular_solve(up, arr(lb, b), lower=False, left=False)), want, **TIGHT)


def test_matrix_power_by_hand(lb):
    fib = [[1.0, 1.0], [1.0, 0.0]]
    np.testing.assert_array_equal(host(L.matrix_power(arr(lb, fib), 10)), [[89.0, 55.0], [55.0, 34.0]])
    np.testing.assert_array_equal(host(L.matrix_power(arr(lb, fib), 0)), np.eye(2))
    np.testing.assert_allclose(host(L.matrix_power(arr(lb, fib), -3)), [[-1.0, 2.0], [2.0, -3.0]], **TIGHT)
    ints = L.matrix_power(arr(lb, fib, aq.int32), 10)
    assert aq.dtype(ints) == aq.int32
    np.testing.assert_array_equal(host(ints), [[89, 55], [55, 34]])


def test_cross_outer_diagonal_trace_by_hand(lb):
    for dtype in (aq.int32, aq.float64):
        got = L.cross(arr(lb, [1, 2, 3], dtype), arr(lb, [4, 5, 6], dtype))
        np.testing.assert_array_equal(host(got), [-3, 6, -3])
        assert aq.dtype(got) == dtype
    columns = L.cross(arr(lb, [[1, 0], [0, 1], [0, 0]]), arr(lb, [[0], [1], [0]]), axis=0)  # e1 x e2, e2 x e2
    np.testing.assert_array_equal(host(columns), [[0, 0], [0, 0], [1, 0]])
    np.testing.assert_array_equal(
        host(L.outer(arr(lb, [1, 2], aq.int32), arr(lb, [3, 4, 5], aq.int32))), [[3, 4, 5], [6, 8, 10]]
    )
    m = arr(lb, np.arange(12.0).reshape(3, 4))  # rows 0-3, 4-7, 8-11
    for offset, want in ((0, [0, 5, 10]), (1, [1, 6, 11]), (3, [3]), (-1, [4, 9]), (-2, [8]), (4, []), (-3, [])):
        np.testing.assert_array_equal(host(L.diagonal(m, offset=offset)), want)
        assert host(L.trace(m, offset=offset)) == sum(want)
    assert host(L.diagonal(arr(lb, np.ones((2, 3, 4))))).shape == (2, 3)


def test_trace_dtypes(lb):
    default = aq.get_backend(lb).default_int
    i8 = L.trace(arr(lb, np.full((3, 3), 100), aq.int8))  # 300: the default int holds it
    assert aq.dtype(i8) == default and host(i8) == 300
    u8 = L.trace(arr(lb, np.full((3, 3), 200), aq.uint8))
    assert aq.dtype(u8) == aq.as_dtype("u" + default.name) and host(u8) == 600
    assert aq.dtype(L.trace(arr(lb, np.eye(2), aq.int8), dtype=aq.float32)) == aq.float32


def test_norms_by_hand(lb):
    v = arr(lb, [3.0, -4.0])
    for order, want in (
        (2, 5.0),
        (1, 7.0),
        (math.inf, 4.0),
        (-math.inf, 3.0),
        (0, 2.0),
        (3, 91 ** (1 / 3)),
        (-1, 12 / 7),
    ):
        assert host(L.vector_norm(v, ord=order)) == pytest.approx(want, rel=1e-14), order
    m = arr(lb, [[1.0, -2.0], [3.0, 4.0]])  # A^T A = [[10, 10], [10, 20]]: sigma^2 = 15 +- 5 sqrt 5
    s1, s2 = math.sqrt(15 + 5 * math.sqrt(5)), math.sqrt(15 - 5 * math.sqrt(5))
    table = (
        ("fro", math.sqrt(30)),
        (1, 6.0),
        (-1, 4.0),
        (math.inf, 7.0),
        (-math.inf, 3.0),
        (2, s1),
        (-2, s2),
        ("nuc", s1 + s2),
    )
    for order, want in table:
        assert host(L.matrix_norm(m, ord=order)) == pytest.approx(want, rel=1e-14), order
    assert host(L.matrix_norm(m, keepdims=True)).shape == (1, 1)
    x = arr(lb, np.arange(24.0).reshape(2, 3, 4) - 12)
    flat = np.arange(24.0) - 12
    assert host(L.norm(x)) == pytest.approx(math.sqrt(float(flat @ flat)), rel=1e-14)
    assert host(L.norm(x, keepdims=True)).shape == (1, 1, 1)
    np.testing.assert_allclose(host(L.norm(x, ord=1, axis=1)), np.abs(flat.reshape(2, 3, 4)).sum(axis=1), **TIGHT)
    by_pair = host(L.norm(x, ord=math.inf, axis=(2, 0), keepdims=True))  # matrices (axis 2 rows, axis 0 columns)
    want = np.abs(flat.reshape(2, 3, 4)).sum(axis=0).max(axis=1)  # row sums over axis 0, the largest over axis 2
    np.testing.assert_allclose(by_pair.reshape(3), want, **TIGHT)
    assert by_pair.shape == (1, 3, 1)
    np.testing.assert_allclose(host(L.norm(arr(lb, [1.0, 2.0, 2.0]), ord=1)), 5.0, **TIGHT)


# ---------------------------------------------------------------------- properties on random input

DTYPES = [aq.float32, aq.float64]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(4, 4), (6, 3), (3, 6), (2, 3, 5, 4)], ids=str)
def test_factorizations_reconstruct_and_are_orthogonal(lb, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    *batch, m, n = shape
    a = np.stack([conditioned(rng, m, n) for _ in range(int(np.prod(batch)))]).reshape(shape)
    x, k, tol = arr(lb, a, dtype), min(m, n), bound(dtype, max(m, n), 4.0)
    swap = lambda t: np.swapaxes(t, -1, -2)  # noqa: E731
    for mode in ("reduced", "complete"):
        q, r = (host(t) for t in L.qr(x, mode=mode))
        np.testing.assert_allclose(q @ r, a, atol=tol * 4)
        np.testing.assert_allclose(
            swap(q) @ q, np.broadcast_to(np.eye(q.shape[-1]), q.shape[:-2] + (q.shape[-1],) * 2), atol=tol
        )
        assert np.all(np.tril(r, -1) == 0)
    for full in (True, False):
        u, s, vh = (host(t) for t in L.svd(x, full_matrices=full))
        assert u.shape[-1] == (m if full else k) and vh.shape[-2] == (n if full else k)
        np.testing.assert_allclose((u[..., :k] * s[..., None, :]) @ vh[..., :k, :], a, atol=tol * 4)
        np.testing.assert_allclose(
            swap(u) @ u, np.broadcast_to(np.eye(u.shape[-1]), u.shape[:-2] + (u.shape[-1],) * 2), atol=tol
        )
        assert np.all(s[..., :-1] >= s[..., 1:]) and np.all(s >= 0)
    p, low, up = (host(t) for t in L.lu(x))
    np.testing.assert_allclose(p @ low @ up, a, atol=tol * 4)
    assert np.all(np.abs(low) <= 1) and np.all(np.triu(low, 1) == 0) and np.all(np.tril(up, -1) == 0)
    assert set(np.unique(p)) <= {0.0, 1.0} and np.all(p.sum(-1) == 1) and np.all(p.sum(-2) == 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_symmetric_factorizations(lb, dtype):
    rng = np.random.default_rng(7)
    q = np.stack([orthogonal(rng, 5) for _ in range(3)])
    lam = np.stack([np.sort(rng.uniform(1, 4, 5) * rng.choice([-1, 1], 5)) for _ in range(3)])
    sym = (q * lam[:, None, :]) @ np.swapaxes(q, -1, -2)
    tol = bound(dtype, 5, 4.0)
    w, v = (host(t) for t in L.eigh(arr(lb, sym, dtype)))
    np.testing.assert_allclose(w, lam, atol=tol * 4)  # eigenvalues are perfectly conditioned
    np.testing.assert_allclose(sym @ v - v * w[:, None, :], 0, atol=tol * 4)
    np.testing.assert_allclose(np.swapaxes(v, -1, -2) @ v, np.broadcast_to(np.eye(5), (3, 5, 5)), atol=tol)
    spd = (q * np.abs(lam)[:, None, :]) @ np.swapaxes(q, -1, -2)
    c = host(L.cholesky(arr(lb, spd, dtype)))
    np.testing.assert_allclose(c @ np.swapaxes(c, -1, -2), spd, atol=tol * 4)
    assert np.all(np.triu(c, 1) == 0) and np.all(np.diagonal(c, axis1=-2, axis2=-1) > 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_solvers_satisfy_their_equations(lb, dtype):
    rng = np.random.default_rng(3)
    sigma = rng.uniform(1, 4, (2, 4))
    a = np.stack([conditioned(rng, 4, 4, s) for s in sigma])
    b = rng.uniform(-2, 2, (3, 1, 4, 2))  # batch (3, 1) broadcasts against (2,)
    tol = bound(dtype, 4, 4.0)
    x = host(L.solve(arr(lb, a, dtype), arr(lb, b, dtype)))
    assert x.shape == (3, 2, 4, 2)
    np.testing.assert_allclose(a @ x, np.broadcast_to(b, x.shape), atol=tol * 8)
    np.testing.assert_allclose(a @ host(L.inv(arr(lb, a, dtype))), np.broadcast_to(np.eye(4), a.shape), atol=tol * 4)
    # |det| is the product of the singular values the matrices were built from
    np.testing.assert_allclose(np.abs(host(L.det(arr(lb, a, dtype)))), sigma.prod(axis=-1), rtol=tol * 4)
    tall = conditioned(rng, 7, 3)
    y = rng.uniform(-2, 2, 7)
    sol = host(L.lstsq(arr(lb, tall, dtype), arr(lb, y, dtype)))
    np.testing.assert_allclose(tall.T @ (tall @ sol - y), 0, atol=tol * 16)  # the normal equations hold
    pinv = host(L.pinv(arr(lb, tall, dtype)))
    np.testing.assert_allclose(tall @ pinv @ tall, tall, atol=tol * 8)
    np.testing.assert_allclose(pinv @ tall, np.eye(3), atol=tol * 8)


def test_small_singular_values_keep_their_accuracy(lb):
    """One-sided Jacobi (and LAPACK) find sigma = 1e-9 next to 1 to ~1e-16 absolute; an SVD
    through the eigenvalues of A^T A could not (its rounding is eps * sigma_max^2 there,
    sqrt of which is 1e-8)."""
    a = conditioned(np.random.default_rng(11), 5, 3, s=[1.0, 1e-6, 1e-9])
    s = host(L.svdvals(arr(lb, a)))
    np.testing.assert_allclose(s, [1.0, 1e-6, 1e-9], rtol=0, atol=bound(F64, 5) * 4)


def test_a_larger_eigenproblem_converges(lb):
    if lb == "strict":
        pytest.skip("the composites on array_api_strict take seconds at n = 16; the others cover them")
    rng = np.random.default_rng(5)
    g = rng.standard_normal((16, 16))
    sym = g + g.T
    w, v = (host(t) for t in L.eigh(arr(lb, sym)))
    scale = np.abs(sym).sum()
    np.testing.assert_allclose(sym @ v - v * w, 0, atol=bound(F64, 16) * scale)
    np.testing.assert_allclose(v.T @ v, np.eye(16), atol=bound(F64, 16))
