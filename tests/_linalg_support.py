"""Shared by tests/test_linalg*.py: the backends every linalg test runs on, and independent
expectations.

Backends: ``numpy`` (numpy.linalg natively), ``primitives-only`` (the NumPy backend with
every composite put back to the contract's default: the composites on NumPy's primitives,
:class:`tests._ops_support.PrimitivesOnly`), ``strict`` (the example third-party backend:
the composites on array_api_strict) and ``mlx`` (mlx.core.linalg natively), each skipped
where not installed.

Expectations never come from the function under test: hand-computed values, exact
rational arithmetic (:func:`fraction_lu`), and the defining properties (``Q @ R = A``,
``Q^T Q = I``...) with bounds from the algorithms' error analysis.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import pytest

import arrayq as aq
from tests._ops_support import PrimitivesOnly

BACKENDS = ["numpy", "primitives-only", "strict", "mlx"]
EPS = {"float32": 2.0**-23, "float64": 2.0**-52}


@pytest.fixture(scope="module", params=BACKENDS)
def lb(request: Any) -> Any:
    """The name of the backend under test (primitives-only registered while it runs)."""
    name = request.param
    if name == "mlx":
        pytest.importorskip("mlx.core")
    if name == "strict":
        pytest.importorskip("arrayq_strict", reason="install examples/arrayq-strict (CI does)")
    if name == "primitives-only":
        aq.register_backend(name, PrimitivesOnly, replace=True)
        try:
            yield name
        finally:
            aq.unregister_backend(name)
        return
    yield name


def arr(backend: str, data: Any, dtype: Any = aq.float64) -> Any:
    """``data`` as an array of ``backend`` in ``dtype``."""
    x = aq.to_backend(np.asarray(data, dtype=aq.as_dtype(dtype).dtype), backend)
    assert aq.backend_of(x) is aq.get_backend(backend)
    return x


def host(x: Any) -> np.ndarray:
    return np.asarray(aq.to_numpy(x))


def bound(dtype: Any, n: int, cond: float = 1.0, c: float = 8.0) -> float:
    """``c * n * eps * cond``: the error bound of a backward-stable algorithm on an n x n
    problem (forward errors also scale with the condition number)."""
    return c * max(n, 1) * EPS[aq.as_dtype(dtype).name] * cond


def orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def conditioned(rng: np.random.Generator, m: int, n: int, s: Any = None) -> np.ndarray:
    """``U diag(s) V^T`` with random orthogonal U, V; s uniform in [1, 4] unless given."""
    k = min(m, n)
    s = rng.uniform(1, 4, k) if s is None else np.asarray(s, dtype=np.float64)
    return (orthogonal(rng, m)[:, :k] * s) @ orthogonal(rng, n)[:k]


def fraction_lu(a: Any) -> tuple[list[int], list[list[Fraction]], list[list[Fraction]]]:
    """LU with partial pivoting (first largest magnitude) in exact arithmetic: (perm, L, U)
    with ``a[perm] = L @ U``, written here independently of arrayq."""
    rows = [[Fraction(v) for v in row] for row in np.asarray(a, dtype=np.float64).tolist()]
    m, n = len(rows), len(rows[0])
    perm, low = list(range(m)), [[Fraction(0)] * min(m, n) for _ in range(m)]
    for j in range(min(m, n)):
        p = max(range(j, m), key=lambda i: (abs(rows[i][j]), -i))
        rows[j], rows[p] = rows[p], rows[j]
        low[j], low[p] = low[p], low[j]
        perm[j], perm[p] = perm[p], perm[j]
        for i in range(j + 1, m):
            f = rows[i][j] / rows[j][j] if rows[j][j] else Fraction(0)
            low[i][j] = f
            rows[i] = [u - f * w for u, w in zip(rows[i], rows[j])]
    for i in range(min(m, n)):
        low[i][i] = Fraction(1)
    return perm, low, rows[: min(m, n)]


def fraction_det(a: Any) -> Fraction:
    perm, _, up = fraction_lu(a)
    sign = 1
    seen = list(perm)
    for i in range(len(seen)):  # the parity of the permutation, by sorting it with swaps
        while seen[i] != i:
            j = seen[i]
            seen[i], seen[j] = seen[j], seen[i]
            sign = -sign
    out = Fraction(sign)
    for i in range(len(up)):
        out *= up[i][i]
    return out
