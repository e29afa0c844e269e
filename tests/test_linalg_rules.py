"""The rules every arrayq.linalg function follows on every backend (numpy, primitives-only,
strict, mlx): dtypes (half precision computed in float32, integers and complex refused
where the op needs real floats), NaN/inf matrices (NaN results, the batch untouched, no
warnings), empty input (as NumPy), errors (the same type and message everywhere:
LinAlgError for singular and indefinite matrices), named results, capabilities."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import arrayq as aq
from arrayq.backend import COMPOSITES, LINALG_OPS
from tests._linalg_support import arr, bound, conditioned, host, lb, orthogonal  # noqa: F401

L = aq.linalg


def _has_half(backend: str) -> bool:
    return "float16" not in aq.get_backend(backend).gaps(None)


def _batch(kind: str, rng: np.random.Generator, n: int = 3) -> np.ndarray:
    if kind == "spd":
        qs = [orthogonal(rng, n) for _ in range(3)]
        return np.stack([(q * rng.uniform(1, 4, n)) @ q.T for q in qs])
    return np.stack([conditioned(rng, n, n) for _ in range(3)])


# (op, call, input kind): one-matrix ops whose float results a NaN matrix poisons
ONE_MATRIX = [
    ("det", lambda a: [L.det(a)], "general"),
    ("slogdet", lambda a: list(L.slogdet(a)), "general"),
    ("inv", lambda a: [L.inv(a)], "general"),
    ("eigh", lambda a: list(L.eigh(a)), "spd"),
    ("eigvalsh", lambda a: [L.eigvalsh(a)], "spd"),
    ("cholesky", lambda a: [L.cholesky(a)], "spd"),
    ("qr", lambda a: list(L.qr(a)), "general"),
    ("svd", lambda a: list(L.svd(a)), "general"),
    ("svdvals", lambda a: [L.svdvals(a)], "general"),
    ("lu", lambda a: list(L.lu(a)), "general"),
    ("pinv", lambda a: [L.pinv(a)], "general"),
    ("matrix_norm(2)", lambda a: [L.matrix_norm(a, ord=2)], "general"),
]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf], ids=str)
@pytest.mark.parametrize("name, call, kind", ONE_MATRIX, ids=[c[0] for c in ONE_MATRIX])
def test_a_nonfinite_matrix_gives_nan_and_leaves_the_batch_alone(lb, name, call, kind, value):
    a = _batch(kind, np.random.default_rng(1))
    bad = a.copy()
    bad[1, 2, 0] = value
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value" warnings from the composites either
        got = [host(t) for t in call(arr(lb, bad))]
    clean = [host(t) for t in call(arr(lb, a))]
    for g, c in zip(got, clean):
        assert np.isnan(g[1]).all(), name
        np.testing.assert_allclose(g[[0, 2]], c[[0, 2]], rtol=1e-12, atol=1e-12)


def test_nonfinite_systems_and_norms(lb):
    a = _batch("general", np.random.default_rng(2))
    a[0, 0, 0] = math.nan
    b = np.ones((3, 3, 2))
    b[2, 1, 1] = math.inf
    for call in (L.solve, L.lstsq, L.triangular_solve):
        out = host(call(arr(lb, a), arr(lb, b)))
        assert np.isnan(out[0]).all() and np.isnan(out[2]).all() and np.isfinite(out[1]).all()
    # norms from sums propagate elementwise: inf stays inf, NaN stays NaN
    v = arr(lb, [1.0, math.inf, 2.0])
    assert host(L.vector_norm(v)) == math.inf and host(L.vector_norm(v, ord=-math.inf)) == 1.0
    assert host(L.matrix_norm(arr(lb, [[1.0, math.inf], [0.0, 1.0]]))) == math.inf
    assert math.isnan(host(L.vector_norm(arr(lb, [1.0, math.nan]), ord=1)))


@pytest.mark.parametrize("dtype", [aq.float16, aq.bfloat16], ids=lambda d: d.name)
def test_half_precision_is_computed_in_float32_and_rounded(lb, dtype):
    if not _has_half(lb):
        pytest.skip(f"{lb} has no {dtype.name}")
    a = _batch("spd", np.random.default_rng(4))
    x = arr(lb, a, dtype)
    wide = aq.astype(x, aq.float32)
    for call in (L.inv, L.det, L.eigvalsh, L.cholesky, L.svdvals, L.matrix_norm, L.vector_norm):
        got = call(x)
        assert aq.dtype(got) == dtype
        want = aq.astype(call(wide), dtype)
        np.testing.assert_array_equal(host(got).astype(np.float32), host(want).astype(np.float32))
    u, s, vh = L.svd(x)
    assert aq.dtype(u) == aq.dtype(s) == aq.dtype(vh) == dtype
    assert aq.dtype(L.solve(x, arr(lb, np.ones(3), dtype))) == dtype


FLOAT_ONLY = [
    "cholesky",
    "det",
    "eigh",
    "eigvalsh",
    "inv",
    "lu",
    "pinv",
    "qr",
    "slogdet",
    "svd",
    "svdvals",
    "matrix_rank",
]


@pytest.mark.parametrize("dtype", [aq.int32, aq.bool], ids=lambda d: d.name)
def test_integer_and_bool_input_is_refused_where_floats_are_needed(lb, dtype):
    x = arr(lb, np.eye(3), dtype)
    for name in FLOAT_ONLY + ["vector_norm", "matrix_norm"]:
        with pytest.raises(TypeError, match=rf"linalg.{name} needs a floating-point array, got {dtype.name}"):
            getattr(L, name)(x)
    for name in ("solve", "lstsq", "triangular_solve"):
        with pytest.raises(TypeError, match="floating-point"):
            getattr(L, name)(x, arr(lb, np.ones(3)))
    with pytest.raises(TypeError, match="floating-point"):
        L.matrix_power(arr(lb, np.eye(3), aq.int32), -1)  # n < 0 needs the inverse
    if dtype == aq.bool:
        with pytest.raises(TypeError, match="numeric"):
            L.trace(x)


def test_complex_input(lb):
    """Complex matrices are Hermitian where real ones are symmetric; values and vectors in
    the real dtype come back real (eigenvalues, singular values, logabsdet, norms). Hand
    values: (iJ)^-1 = -iJ for the swap J; [[2, i], [-i, 2]] has eigenvalues 2 -+ 1;
    [[4, 2i], [-2i, 3]] = L L^H with L = [[2, 0], [-i, sqrt 2]]."""
    c = aq.complex64 if lb == "mlx" else aq.complex128
    real = aq.float32 if c == aq.complex64 else aq.float64
    tol = dict(rtol=1e-6, atol=1e-6) if c == aq.complex64 else dict(rtol=1e-14, atol=1e-14)
    close = dict(rel=tol["rtol"], abs=tol["atol"])  # pytest.approx's names
    assert host(L.det(arr(lb, [[1j, 0], [0, 2]], c))) == pytest.approx(2j, **close)
    np.testing.assert_allclose(host(L.inv(arr(lb, [[0, 1j], [1j, 0]], c))), [[0, -1j], [-1j, 0]], **tol)
    w, v = L.eigh(arr(lb, [[2, 0], [-1j, 2]], c))  # only the lower triangle is read
    assert aq.dtype(w) == real and aq.dtype(v) == c
    np.testing.assert_allclose(host(w), [1.0, 3.0], **tol)
    h = np.array([[2, 1j], [-1j, 2]])
    np.testing.assert_allclose(h @ host(v) - host(v) * host(w), 0, atol=1e-5)
    chol = L.cholesky(arr(lb, [[4, 2j], [-2j, 3]], c))
    np.testing.assert_allclose(host(chol), [[2, 0], [-1j, math.sqrt(2)]], **tol)
    np.testing.assert_allclose(
        host(L.cholesky(arr(lb, [[4, 2j], [-2j, 3]], c), upper=True)), [[2, 1j], [0, math.sqrt(2)]], **tol
    )
    sign, logabs = L.slogdet(arr(lb, [[1j, 0], [0, -2]], c))  # det = -2i
    assert aq.dtype(sign) == c and aq.dtype(logabs) == real
    assert host(sign) == pytest.approx(-1j, **close) and host(logabs) == pytest.approx(math.log(2), **close)
    s = L.svdvals(arr(lb, [[3j, 0], [0, -4]], c))
    assert aq.dtype(s) == real
    np.testing.assert_allclose(host(s), [4.0, 3.0], **tol)
    assert host(L.matrix_rank(arr(lb, [[1, 1j], [1j, -1]], c))) == 1  # row 2 = i * row 1
    got = L.vector_norm(arr(lb, [3 + 4j, 0], c))
    assert aq.dtype(got) == real and host(got) == pytest.approx(5.0, rel=1e-6)
    x = arr(lb, [[3 + 4j, 0], [0, 1j]], c)
    assert host(L.matrix_norm(x)) == pytest.approx(math.sqrt(26.0), rel=1e-6)
    assert host(L.matrix_norm(x, ord=2)) == pytest.approx(5.0, rel=1e-6)
    assert aq.dtype(L.matrix_norm(x, ord=2)) == real
    assert host(L.trace(x)) == pytest.approx(3 + 5j, rel=1e-6)


@pytest.mark.parametrize("cname", ["complex64", "complex128"])
def test_complex_factorizations(lb, cname):
    if lb == "mlx" and cname == "complex128":
        pytest.skip("MLX has no complex128")
    c = aq.as_dtype(cname)
    eps = 2.0**-23 if cname == "complex64" else 2.0**-52
    tol = 8 * 5 * eps * 4  # c n eps cond, n <= 5, cond <= 4
    rng = np.random.default_rng(9)

    def unitary(n):
        q, _ = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
        return q

    s = np.array([4.0, 2.5, 1.0])
    a = (unitary(5)[:, :3] * s) @ unitary(3)  # 5 x 3, singular values s
    x = arr(lb, a, c)
    H = lambda t: np.conj(np.swapaxes(t, -1, -2))  # noqa: E731
    q, r = (host(t) for t in L.qr(x))
    np.testing.assert_allclose(q @ r, a, atol=tol * 4)
    np.testing.assert_allclose(H(q) @ q, np.eye(3), atol=tol)
    u, sv, vh = (host(t) for t in L.svd(x))
    np.testing.assert_allclose(sv, s, atol=tol * 4)
    np.testing.assert_allclose((u[:, :3] * sv) @ vh, a, atol=tol * 4)
    np.testing.assert_allclose(H(u) @ u, np.eye(5), atol=tol)
    pa = host(L.pinv(x))
    np.testing.assert_allclose(a @ pa @ a, a, atol=tol * 8)
    p, low, up = (host(t) for t in L.lu(x))
    np.testing.assert_allclose(p @ low @ up, a, atol=tol * 4)
    assert np.all(np.abs(low) <= 1 + tol)
    sq = (unitary(3) * s) @ unitary(3)  # |det| = 10
    assert abs(host(L.det(arr(lb, sq, c)))) == pytest.approx(10.0, rel=tol * 4)
    b = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    np.testing.assert_allclose(sq @ host(L.solve(arr(lb, sq, c), arr(lb, b, c))), b, atol=tol * 16)
    uu = unitary(3)
    herm = (uu * np.array([-2.0, 1.0, 3.0])) @ H(uu)
    w, v = (host(t) for t in L.eigh(arr(lb, herm, c)))
    np.testing.assert_allclose(w, [-2.0, 1.0, 3.0], atol=tol * 4)
    np.testing.assert_allclose(herm @ v - v * w, 0, atol=tol * 4)
    pd = (uu * s) @ H(uu)
    chol = host(L.cholesky(arr(lb, pd, c)))
    np.testing.assert_allclose(chol @ H(chol), pd, atol=tol * 4)


def test_empty_input_follows_numpy(lb):
    e = arr(lb, np.zeros((0, 0)))
    assert host(L.det(e)) == 1.0
    sign, logabs = L.slogdet(e)
    assert host(sign) == 1.0 and host(logabs) == 0.0
    assert host(L.inv(e)).shape == (0, 0) and host(L.cholesky(e)).shape == (0, 0)
    assert [host(t).shape for t in L.eigh(e)] == [(0,), (0, 0)]
    u, s, vh = (host(t) for t in L.svd(arr(lb, np.zeros((0, 3)))))
    assert u.shape == (0, 0) and s.shape == (0,)
    np.testing.assert_array_equal(vh, np.eye(3))  # as numpy.linalg.svd: a full orthonormal basis
    q, r = (host(t) for t in L.qr(arr(lb, np.zeros((3, 0))), mode="complete"))
    np.testing.assert_array_equal(q, np.eye(3))
    assert r.shape == (3, 0)
    assert [host(t).shape for t in L.lu(arr(lb, np.zeros((0, 3))))] == [(0, 0), (0, 0), (0, 3)]
    batch = arr(lb, np.zeros((0, 3, 3)))
    assert host(L.det(batch)).shape == (0,) and host(L.inv(batch)).shape == (0, 3, 3)
    assert [host(t).shape for t in L.svd(batch, full_matrices=False)] == [(0, 3, 3), (0, 3), (0, 3, 3)]
    np.testing.assert_array_equal(host(L.matrix_rank(arr(lb, np.zeros((2, 0, 3))))), [0, 0])
    assert host(L.solve(batch, arr(lb, np.zeros(3)))).shape == (0, 3)
    assert host(L.pinv(arr(lb, np.zeros((3, 0))))).shape == (0, 3)
    # the norm of nothing: 0, and inf for the negative orders (min over nothing; 0^(1/p))
    empty = arr(lb, np.zeros(0))
    for order, want in ((2, 0.0), (1, 0.0), (0, 0.0), (math.inf, 0.0), (-math.inf, math.inf), (-1, math.inf)):
        assert host(L.vector_norm(empty, ord=order)) == want, order
    assert host(L.matrix_norm(e, ord=2)) == 0.0 and host(L.matrix_norm(e)) == 0.0


def test_singular_and_indefinite_matrices_raise_linalgerror(lb):
    singular = [[1.0, 2.0], [2.0, 4.0]]
    batch = arr(lb, [np.eye(2), singular])
    assert issubclass(aq.LinAlgError, ValueError) and issubclass(aq.LinAlgError, aq.ArrayqError)
    assert L.LinAlgError is aq.LinAlgError
    with pytest.raises(aq.LinAlgError, match=r"linalg.inv: the matrix is singular .*linalg.pinv"):
        L.inv(arr(lb, singular))
    with pytest.raises(aq.LinAlgError, match=r"the matrix at batch index \(1,\) is singular"):
        L.inv(batch)
    with pytest.raises(aq.LinAlgError, match=r"linalg.solve: .*singular.*linalg.lstsq"):
        L.solve(batch, arr(lb, [1.0, 1.0]))
    with pytest.raises(aq.LinAlgError, match="singular"):
        L.matrix_power(arr(lb, singular), -2)
    with pytest.raises(aq.LinAlgError, match="singular"):
        L.triangular_solve(arr(lb, [[1.0, 0.0], [5.0, 0.0]]), arr(lb, [1.0, 1.0]))
    for indefinite in ([[1.0, 2.0], [2.0, 1.0]], [[-1.0, 0.0], [0.0, 1.0]], singular, [[0.0, 0.0], [0.0, 0.0]]):
        with pytest.raises(aq.LinAlgError, match="linalg.cholesky: the matrix is not positive definite"):
            L.cholesky(arr(lb, indefinite))
    with pytest.raises(aq.LinAlgError, match=r"batch index \(1,\) holds NaN or inf"):
        L.matrix_rank(arr(lb, [np.eye(2), [[1.0, math.nan], [0.0, 1.0]]]))
    # singular is fine where the answer exists
    assert host(L.det(arr(lb, singular))) == 0.0 and host(L.matrix_rank(arr(lb, singular))) == 1
    np.testing.assert_allclose(host(L.pinv(arr(lb, singular))), np.array(singular) / 25, rtol=1e-14)


def test_bad_shapes_and_arguments(lb):
    rect, vec = arr(lb, np.ones((3, 4))), arr(lb, np.ones(3))
    with pytest.raises(ValueError, match=r"linalg.inv needs square matrices \(\.\.\., M, M\), got x of shape \(3, 4\)"):
        L.inv(rect)
    with pytest.raises(
        ValueError, match=r"linalg.qr needs x as a stack of matrices \(\.\.\., M, N\), got shape \(3,\)"
    ):
        L.qr(vec)
    with pytest.raises(ValueError, match=r"x1 \(3, 3\) has 3 rows but x2 \(4,\) has 4"):
        L.solve(arr(lb, np.eye(3)), arr(lb, np.ones(4)))
    with pytest.raises(ValueError, match="broadcast"):
        L.solve(arr(lb, np.ones((2, 3, 3))), arr(lb, np.ones((3, 3, 1))))
    with pytest.raises(ValueError, match="'reduced' or 'complete'"):
        L.qr(arr(lb, np.eye(2)), mode="raw")
    with pytest.raises(ValueError, match="ord must be one of"):
        L.matrix_norm(arr(lb, np.eye(2)), ord=0)
    with pytest.raises(ValueError, match="3 elements along axis -1"):
        L.cross(arr(lb, np.ones((2, 4))), arr(lb, np.ones((2, 4))))
    with pytest.raises(IndexError):
        L.cross(vec, vec, axis=3)
    with pytest.raises(ValueError, match="1-D arrays"):
        L.outer(rect, vec)
    with pytest.raises(TypeError, match="integer power"):
        L.matrix_power(arr(lb, np.eye(2)), 1.5)
    with pytest.raises(TypeError, match="needs arrays, got float"):
        L.det(2.0)
    with pytest.raises(ValueError, match="ord 'fro' is for matrices"):
        L.norm(vec, ord="fro", axis=0)


def test_results_are_the_standards_named_tuples(lb):
    x = arr(lb, np.eye(2) * 2)
    assert L.eigh(x)._fields == ("eigenvalues", "eigenvectors")
    assert L.qr(x)._fields == ("Q", "R") and L.svd(x)._fields == ("U", "S", "Vh")
    assert L.slogdet(x)._fields == ("sign", "logabsdet") and L.lu(x)._fields == ("P", "L", "U")
    assert isinstance(L.svd(x), tuple) and host(L.svd(x).S).tolist() == [2.0, 2.0]


def test_mixed_backends_move_numpy_arrays(lb):
    a = arr(lb, np.eye(2) * 2)
    out = L.solve(a, np.array([2.0, 4.0]))  # NumPy gives way
    assert aq.backend_of(out) is aq.get_backend(lb)
    np.testing.assert_allclose(host(out), [1.0, 2.0])


def test_capabilities_name_the_native_linalg_ops():
    assert set(LINALG_OPS) <= set(COMPOSITES)
    caps = aq.capabilities("numpy")
    assert {op for op in LINALG_OPS if caps[op] == "fallback"} == {"lu"}
    try:
        mlx_caps = aq.capabilities("mlx")
    except aq.BackendUnavailableError:
        return
    fallbacks = {op for op in LINALG_OPS if mlx_caps[op] == "fallback"}
    assert fallbacks == {"lstsq", "matrix_power", "matrix_rank", "pinv"}


def test_the_docs_table_of_native_ops_is_the_capabilities():
    import pathlib

    text = (pathlib.Path(__file__).resolve().parents[1] / "docs" / "linalg.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0] in LINALG_OPS:
            rows[cells[0]] = cells[1:]
    assert set(rows) == set(LINALG_OPS)
    for i, name in enumerate(("numpy", "mlx", "strict")):
        try:
            caps = aq.capabilities(name)
        except aq.BackendUnavailableError:
            continue
        for op in LINALG_OPS:
            assert rows[op][i] == ("native" if caps[op] == "native" else "composite"), (name, op)


def test_strict_runs_every_linalg_op_on_the_composites():
    pytest.importorskip("arrayq_strict")
    caps = aq.capabilities("strict")
    assert all(caps[op] == "fallback" for op in LINALG_OPS)


def test_composite_cost_stays_small_for_small_matrices(lb):
    """Not a timing claim: the Jacobi sweeps stop at convergence (well before MAX_SWEEPS)."""
    from arrayq.backend import _jacobi

    sweeps = []
    original = _jacobi._converged

    def counting(b, measure, tol):
        done = original(b, measure, tol)
        sweeps.append(done)
        return done

    _jacobi._converged = counting
    try:
        L.svdvals(arr(lb, conditioned(np.random.default_rng(0), 6, 6)))
    finally:
        _jacobi._converged = original
    if lb in ("numpy", "mlx"):
        assert sweeps == []  # native: no Jacobi at all
    else:
        assert sweeps and sweeps[-1] and len(sweeps) < 12


def test_inv_inside_compile_on_mlx_is_refused_clearly():
    """The singular-matrix check reads the result on the host, which MLX cannot do while
    tracing (docs/linalg.md); decompositions without a check compile."""
    mx = pytest.importorskip("mlx.core")
    x = mx.array(np.eye(3, dtype=np.float32) * 2)
    with pytest.raises(aq.CompileError):
        aq.compile(L.inv)(x)
    q, r = aq.compile(lambda a: tuple(L.qr(a)))(x)
    np.testing.assert_allclose(np.abs(np.array(r)), np.eye(3) * 2, atol=1e-6)
