"""Linear algebra cases: every function of ``arrayq.linalg`` beyond the matrix products.

**What is compared.** Results that are unique (det, inv, solve, eigenvalues, singular
values, the Cholesky factor, LU with partial pivoting on inputs without ties, pinv,
lstsq of a full-rank system, norms) are compared with the reference's. Factors whose
signs are the backend's choice (Q and R, U and Vh, eigenvectors) are compared by what
every valid answer shares: the reconstruction (``Q @ R``, ``U diag(S) Vh``), the residual
``A v - v w``, orthogonality (``Q^T Q``) and the zero triangle of R, each of which is
close to the same value on every backend.

**Inputs.** Matrices are built from their factors so their condition is known:
``U diag(s) V^T`` with random orthogonal U, V and s in [1, COND] (cond <= COND), symmetric
``Q diag(l) Q^T`` with |l| in [1, COND], triangular ``diag(d) (I + N)`` with d in [2, 3]
and N strictly lower in [-0.25, 0.25] (for n <= 4, ``||N||_2 <= ||N||_F <= 0.62``, so
``cond <= 1.5 * 1.62 / 0.38 < TRI_COND``). Hand cases (2 x 2, diagonal, triangular,
singular) sit next to them, and the empty, NaN and bad-input cases.

**Tolerances** (``tolerance``, relative to max(1, max|reference|) as the runner
measures): a backward-stable result (reconstruction, residual, orthogonality) is within
c n eps |A| of the exact one, a forward result (inverse, solution, determinant,
pseudo-inverse, power) within c n eps cond(A), an eigenvalue or singular value within
c n eps |A| (they are perfectly conditioned: Weyl). Two backends each within the bound
differ by at most twice it: ``2 * C * n * eps * cond`` with C = 8 (the constants of the
bounds for these algorithms are small multiples of n). Half precision is computed in
float32 on every backend and rounded once, so two answers differ by one half-precision
ulp: the dtype's ``TOLERANCE`` (two ulps).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._common import TOLERANCE, Case, _dtype, _values

COND = 4.0
TRI_COND = 8.0
C = 8
_EPS = {"float32": 2.0**-23, "float64": 2.0**-52, "complex64": 2.0**-23, "complex128": 2.0**-52}
COMPLEX = ("complex64", "complex128")


def tolerance(dtype: str, n: int, cond: float = 1.0) -> float:
    """The bound for two backends' results on an n x n problem of condition ``cond``."""
    if dtype not in _EPS:
        return TOLERANCE[dtype]
    return 2 * C * max(n, 1) * _EPS[dtype] * cond


def _orthogonal(rng: np.random.Generator, n: int, cplx: bool = False) -> np.ndarray:
    """A random orthogonal (complex: unitary) n x n matrix."""
    g = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n)) if cplx else 0)
    q, r = np.linalg.qr(g)
    d = np.diag(r)
    return q * np.where(d == 0, 1, np.conj(d) / np.maximum(np.abs(d), 1e-300))


def _one(rng: np.random.Generator, m: int, n: int, kind: str, cplx: bool = False) -> np.ndarray:
    k = min(m, n)
    if kind == "lower":  # |strict| <= 0.25 also for complex entries (each part <= 0.17)
        part = 0.17 if cplx else 0.25
        strict = rng.uniform(-part, part, (n, n)) + (1j * rng.uniform(-part, part, (n, n)) if cplx else 0)
        return np.diag(rng.uniform(2, 3, n)) @ (np.eye(n) + np.tril(strict, -1))
    if kind in ("spd", "symmetric"):  # complex: Hermitian
        lam = rng.uniform(1, COND, n) * (rng.choice([-1.0, 1.0], n) if kind == "symmetric" else 1.0)
        q = _orthogonal(rng, n, cplx)
        return (q * lam) @ q.conj().T
    s = rng.uniform(1, COND, k)
    if kind.startswith("rank"):  # "rank2": the first two singular values, the others 0
        s[int(kind[4:]) :] = 0.0
    return (_orthogonal(rng, m, cplx)[:, :k] * s) @ _orthogonal(rng, n, cplx)[:k]


def matrices(shape: tuple[int, ...], dtype: str, kind: str = "general") -> Callable[[np.random.Generator], Any]:
    """A maker of one stack of ``kind`` matrices of ``shape`` in ``dtype``."""

    def make(rng: np.random.Generator) -> np.ndarray:
        *batch, m, n = shape
        cplx = dtype in COMPLEX
        out = np.zeros(shape, complex if cplx else float)
        for idx in np.ndindex(*batch):
            out[idx] = _one(rng, m, n, kind, cplx)
        return out.astype(_dtype(dtype))

    return make


def _with(*makers: Callable[[np.random.Generator], Any]) -> Callable[[np.random.Generator], list[Any]]:
    return lambda rng: [m(rng) for m in makers]


def _rhs(shape: tuple[int, ...], dtype: str) -> Callable[[np.random.Generator], Any]:
    if dtype in COMPLEX:
        return lambda rng: (rng.uniform(-2, 2, shape) + 1j * rng.uniform(-2, 2, shape)).astype(dtype)
    return lambda rng: _values(rng, shape, dtype, -2, 2)


def _given(*arrays: Any) -> Callable[[np.random.Generator], list[Any]]:
    return lambda rng: [np.array(a) for a in arrays]


def _t(aq: Any, x: Any) -> Any:
    """The conjugate transpose (the transpose of real x)."""
    return aq.linalg.matrix_transpose(aq.conj(x))


def _f32(aq: Any, *xs: Any) -> list[Any]:
    return [aq.astype(x, aq.float32) if aq.dtype(x) in (aq.float16, aq.bfloat16) else x for x in xs]


# the calls: what each case returns for comparison
def _qr(mode: str) -> Callable[..., Any]:
    def call(aq: Any, a: Any) -> Any:
        q, r = aq.linalg.qr(a, mode=mode)
        return q @ r, _t(aq, q) @ q, aq.tril(r, k=-1)

    return call


def _svd(full: bool) -> Callable[..., Any]:
    def call(aq: Any, a: Any) -> Any:
        u, s, vh = aq.linalg.svd(a, full_matrices=full)
        k = s.shape[-1]
        return s, (u[..., :, :k] * s[..., None, :]) @ vh[..., :k, :], _t(aq, u) @ u, vh @ _t(aq, vh)

    return call


def _eigh(aq: Any, a: Any) -> Any:
    w, v = aq.linalg.eigh(a)
    return w, a @ v - v * w[..., None, :], _t(aq, v) @ v


def _lu(aq: Any, a: Any) -> Any:
    p, low, up = aq.linalg.lu(a)
    return p, low, up, p @ low @ up


def _cholesky(upper: bool) -> Callable[..., Any]:
    def call(aq: Any, a: Any) -> Any:
        f = aq.linalg.cholesky(a, upper=upper)
        (g,) = _f32(aq, f)
        return f, (_t(aq, g) @ g if upper else g @ _t(aq, g))

    return call


def _square_ops() -> list[tuple[str, Callable[..., Any], str, float, bool]]:
    """(op, call, input kind, condition for the bound, whether half precision is run)."""
    return [
        ("det", lambda aq, a: aq.linalg.det(a), "general", COND**4, True),  # a product of n pivots
        ("slogdet", lambda aq, a: tuple(aq.linalg.slogdet(a)), "general", COND, True),
        ("inv", lambda aq, a: aq.linalg.inv(a), "general", COND, True),
        ("eigvalsh", lambda aq, a: aq.linalg.eigvalsh(a), "symmetric", 1.0, True),
        ("eigh", _eigh, "symmetric", 1.0, False),
        ("cholesky", _cholesky(False), "spd", COND, True),
        ("cholesky", _cholesky(True), "spd", COND, False),
        ("matrix_power", lambda aq, a: aq.linalg.matrix_power(a, 3), "general", COND**3, False),
        ("matrix_power", lambda aq, a: aq.linalg.matrix_power(a, -2), "general", COND**3, False),
        ("matrix_power", lambda aq, a: aq.linalg.matrix_power(a, 0), "general", 1.0, False),
    ]


def _rect_ops() -> list[tuple[str, Callable[..., Any], str, float]]:
    return [
        ("qr", _qr("reduced"), "general", 1.0),
        ("qr", _qr("complete"), "general", 1.0),
        ("svd", _svd(True), "general", 1.0),
        ("svd", _svd(False), "general", 1.0),
        ("svdvals", lambda aq, a: aq.linalg.svdvals(a), "general", 1.0),
        ("lu", _lu, "general", COND),
        ("pinv", lambda aq, a: aq.linalg.pinv(a), "general", COND),
        ("pinv", lambda aq, a: aq.linalg.pinv(a), "rank2", COND),
        ("matrix_rank", lambda aq, a: aq.linalg.matrix_rank(a), "rank2", 1.0),
        ("matrix_rank", lambda aq, a: aq.linalg.matrix_rank(a), "general", 1.0),
    ]


SQUARE = [(3, 3), (2, 4, 4)]
RECT = [(4, 4), (5, 3), (3, 5), (2, 5, 4)]


class Cases(list[Case]):
    """The cases being collected; ``add`` names each ``linalg.OP[LABEL]`` (a repeated
    label gets ``#2``...)."""

    def add(self, op: str, label: str, dtype: str, make: Any, call: Any, tol: float = 0.0, **kw: Any) -> None:
        base = f"linalg.{op}[{label}]"
        cid, i = base, 1
        while any(c.id == cid for c in self):
            i += 1
            cid = f"linalg.{op}#{i}[{label}]"
        self.append(Case(cid, op, (dtype,), make, call, tolerance=tol, **kw))


def linalg_cases() -> list[Case]:
    cases = Cases()
    add = cases.add
    floats = ("float32", "float64")
    for op, call, kind, cond, half in _square_ops():
        for dtype in floats + COMPLEX + (("float16", "bfloat16") if half else ()):
            for shape in SQUARE if dtype in floats + COMPLEX else SQUARE[:1]:
                tol = tolerance(dtype, shape[-1], cond)
                add(op, f"{dtype},{kind},{shape}", dtype, _with(matrices(shape, dtype, kind)), call, tol)
    for op, call, kind, cond in _rect_ops():
        for dtype in floats + COMPLEX:
            for shape in RECT:
                tol = tolerance(dtype, max(shape[-2:]), cond)
                add(op, f"{dtype},{kind},{shape}", dtype, _with(matrices(shape, dtype, kind)), call, tol)
    _systems(cases)
    _elementwise(cases)
    return cases


def _systems(cases: Cases) -> None:
    """solve, lstsq, triangular_solve: matrices and right-hand sides, batch broadcast."""
    add = cases.add
    for dtype in ("float32", "float64", *COMPLEX):
        tol = tolerance(dtype, 4, COND)
        for a_shape, b_shape in (((4, 4), (4,)), ((4, 4), (4, 2)), ((2, 4, 4), (4, 3)), ((3, 1, 4, 4), (2, 4, 1))):
            make = _with(matrices(a_shape, dtype), _rhs(b_shape, dtype))
            add("solve", f"{dtype},{a_shape},{b_shape}", dtype, make, lambda aq, a, b: aq.linalg.solve(a, b), tol)
        for a_shape, b_shape in (((6, 3), (6,)), ((6, 3), (6, 2)), ((2, 5, 4), (5, 2))):
            make = _with(matrices(a_shape, dtype), _rhs(b_shape, dtype))
            add("lstsq", f"{dtype},{a_shape},{b_shape}", dtype, make, lambda aq, a, b: aq.linalg.lstsq(a, b), tol)
        tri_tol = tolerance(dtype, 4, TRI_COND)
        for lower in (True, False):
            for left in (True, False):
                for transpose in (False, True):
                    for unit in (False, True):
                        flags = dict(lower=lower, left=left, transpose=transpose, unit_diagonal=unit)
                        b_shape = (2, 4, 3) if left else (2, 3, 4)
                        make = _with(_triangular(lower, dtype), _rhs(b_shape, dtype))
                        label = f"{dtype},{','.join(k for k, v in flags.items() if v) or 'upper,right'}"

                        def call(aq: Any, a: Any, b: Any, f: dict[str, bool] = flags) -> Any:
                            return aq.linalg.triangular_solve(a, b, **f)

                        add("triangular_solve", label, dtype, make, call, tri_tol)
        make = _with(_triangular(True, dtype), _rhs((4,), dtype))
        add(
            "triangular_solve",
            f"{dtype},vector",
            dtype,
            make,
            lambda aq, a, b: aq.linalg.triangular_solve(a, b),
            tri_tol,
        )


def _triangular(lower: bool, dtype: str) -> Callable[[np.random.Generator], Any]:
    def make(rng: np.random.Generator) -> Any:
        a = np.stack([_one(rng, 4, 4, "lower", dtype in COMPLEX) for _ in range(2)])
        a = a if lower else np.swapaxes(a, -1, -2)
        # the other triangle holds noise the solve must not read
        noise = rng.uniform(-9, 9, a.shape) + (1j * rng.uniform(-9, 9, a.shape) if dtype in COMPLEX else 0)
        a = a + (np.triu(noise, 1) if lower else np.tril(noise, -1))
        return a.astype(_dtype(dtype))

    return make


def _elementwise(cases: Cases) -> None:
    """cross, outer, diagonal, trace and the norms: exact for integers, dtype bound for floats."""
    add = cases.add
    for dtype in ("int32", "float32", "float64"):
        exact = "exact" if dtype == "int32" else "close"
        make = _with(_rhs((2, 3), dtype), _rhs((2, 3), dtype))
        add("cross", f"{dtype},(2, 3)", dtype, make, lambda aq, a, b: aq.linalg.cross(a, b), 0.0, expect=exact)
        make = _with(_rhs((3, 2), dtype), _rhs((3, 1), dtype))  # broadcast, vectors down axis 0
        add("cross", f"{dtype},axis0", dtype, make, lambda aq, a, b: aq.linalg.cross(a, b, axis=0), 0.0, expect=exact)
        make = _with(_rhs((4,), dtype), _rhs((3,), dtype))
        add("outer", f"{dtype}", dtype, make, lambda aq, a, b: aq.linalg.outer(a, b), 0.0, expect=exact)
        for offset in (0, 1, -2, 7):
            make = _with(_rhs((2, 3, 4), dtype))
            add(
                "diagonal",
                f"{dtype},{offset}",
                dtype,
                make,
                lambda aq, a, o=offset: aq.linalg.diagonal(a, offset=o),
                0.0,
                expect="exact",
            )
            add(
                "trace",
                f"{dtype},{offset}",
                dtype,
                make,
                lambda aq, a, o=offset: aq.linalg.trace(a, offset=o),
                0.0,
                expect=exact,
            )
    for dtype in ("int8", "uint8"):
        make = _with(_rhs((3, 3), dtype))
        add("trace", f"{dtype}", dtype, make, lambda aq, a: aq.linalg.trace(a), 0.0, expect="exact")
    for dtype in ("float32", "float64", "float16", "bfloat16", *COMPLEX):
        x = _with(_rhs((2, 3, 4), dtype))
        for order in (2, 1, 0, 3, -1, math.inf, -math.inf):
            for axis in (None, -1, (0, 2)):
                call = lambda aq, a, o=order, ax=axis: aq.linalg.vector_norm(a, axis=ax, ord=o)  # noqa: E731
                add("vector_norm", f"{dtype},{order},{axis}", dtype, x, call, 0.0)
        add(
            "vector_norm",
            f"{dtype},keepdims",
            dtype,
            x,
            lambda aq, a: aq.linalg.vector_norm(a, axis=1, keepdims=True),
            0.0,
        )
        for matrix_ord in ("fro", "nuc", 1, -1, 2, -2, math.inf, -math.inf):
            tol = tolerance(dtype, 4) if matrix_ord in ("nuc", 2, -2) else 0.0  # singular values of 3 x 4
            norm = lambda aq, a, o=matrix_ord: aq.linalg.matrix_norm(a, ord=o)  # noqa: E731
            add("matrix_norm", f"{dtype},{matrix_ord}", dtype, x, norm, tol)
        add("matrix_norm", f"{dtype},keepdims", dtype, x, lambda aq, a: aq.linalg.matrix_norm(a, keepdims=True), 0.0)
