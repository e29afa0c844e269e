"""The NumPy backend's linear algebra: ``numpy.linalg`` (LAPACK) for the ops it has.

The frontend (``arrayq.linalg``) hands these finite, non-empty float32/float64/complex
matrices, batch axes broadcast. Where
LAPACK raises ``numpy.linalg.LinAlgError`` (a singular or indefinite matrix, or no
convergence) the contract's composite runs instead, which marks the matrix the way the
frontend reports (NaN, or a non-positive Cholesky pivot) rather than raising NumPy's type.

Not overridden, so the composites run: ``lu`` (NumPy has no LU; scipy.linalg.lu does),
``lstsq`` for a batch (``numpy.linalg.lstsq`` takes one matrix), and ``matrix_power`` of
bfloat16 (NumPy multiplies it in float32). ``triangular_solve`` runs
``numpy.linalg.solve`` (LAPACK's general solver: NumPy has no triangular one), which is
as accurate on a triangular matrix and O(n^3) in C rather than O(n) Python steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from arrayq.backend import Array, Backend
from arrayq.backend import dtypes as dt


def _arr(x: Any) -> np.ndarray:
    return x if type(x) is np.ndarray else np.asarray(x)


class NumPyLinalg(Backend):
    """numpy.linalg behind the contract's linear algebra ops (NumPyBackend's base)."""

    def _lapack(self, op: str, native: Callable[[], Any], *args: Any) -> Any:
        """``native()`` with arrays for results; the composite ``op`` if LAPACK refuses."""
        try:
            with np.errstate(all="ignore"):
                out = native()
        except np.linalg.LinAlgError:
            with np.errstate(all="ignore"):
                return getattr(Backend, op)(self, *args)
        return tuple(_arr(o) for o in out) if isinstance(out, tuple) else _arr(out)

    def cholesky(self, x: Array, upper: bool) -> Array:
        return self._lapack("cholesky", lambda: np.linalg.cholesky(x, upper=upper), x, upper)

    def cross(self, x1: Array, x2: Array, axis: int) -> Array:
        return _arr(np.linalg.cross(x1, x2, axis=axis))

    def det(self, x: Array) -> Array:
        return self._lapack("det", lambda: np.linalg.det(x), x)

    def diagonal(self, x: Array, offset: int) -> Array:
        return np.linalg.diagonal(x, offset=offset).copy()  # NumPy's is a read-only view

    def eigh(self, x: Array) -> tuple[Array, Array]:
        return self._lapack("eigh", lambda: tuple(np.linalg.eigh(x)), x)

    def eigvalsh(self, x: Array) -> Array:
        return self._lapack("eigvalsh", lambda: np.linalg.eigvalsh(x), x)

    def inv(self, x: Array) -> Array:
        return self._lapack("inv", lambda: np.linalg.inv(x), x)

    def lstsq(self, a: Array, b: Array, rtol: Array | None) -> Array:
        if a.ndim != 2:
            return super().lstsq(a, b, rtol)
        rcond = None if rtol is None else float(rtol)
        return self._lapack("lstsq", lambda: np.linalg.lstsq(a, b, rcond=rcond)[0], a, b, rtol)

    def matrix_norm(self, x: Array, ord: Any, keepdims: bool) -> Array:
        return self._lapack(
            "matrix_norm", lambda: np.linalg.matrix_norm(x, ord=ord, keepdims=keepdims), x, ord, keepdims
        )

    def matrix_power(self, x: Array, n: int) -> Array:
        if self.dtype_of(x) == dt.bfloat16:
            return super().matrix_power(x, n)
        return _arr(np.linalg.matrix_power(x, n))

    def matrix_rank(self, x: Array, rtol: Array | None) -> Array:
        return self._lapack("matrix_rank", lambda: np.linalg.matrix_rank(x, rtol=rtol), x, rtol)

    def outer(self, x1: Array, x2: Array) -> Array:
        return _arr(np.linalg.outer(x1, x2))

    def pinv(self, x: Array, rtol: Array | None) -> Array:
        # rtol=None passed explicitly: NumPy's array API default max(M, N) * eps, not its 1e-15
        # (NumPy's stubs leave None out, which its docs and code take)
        return self._lapack("pinv", lambda: np.linalg.pinv(x, rtol=rtol), x, rtol)  # type: ignore[arg-type]

    def qr(self, x: Array, mode: str) -> tuple[Array, Array]:
        return self._lapack("qr", lambda: tuple(np.linalg.qr(x, mode=mode)), x, mode)  # type: ignore[call-overload]

    def slogdet(self, x: Array) -> tuple[Array, Array]:
        return self._lapack("slogdet", lambda: tuple(np.linalg.slogdet(x)), x)

    def solve(self, x1: Array, x2: Array) -> Array:
        return self._lapack("solve", lambda: np.linalg.solve(x1, x2), x1, x2)

    def svd(self, x: Array, full_matrices: bool) -> tuple[Array, Array, Array]:
        return self._lapack("svd", lambda: tuple(np.linalg.svd(x, full_matrices=full_matrices)), x, full_matrices)

    def svdvals(self, x: Array) -> Array:
        return self._lapack("svdvals", lambda: np.linalg.svdvals(x), x)

    def trace(self, x: Array, offset: int, dtype: dt.DType | None) -> Array:
        native = None if dtype is None else self.native_dtype(dtype)
        return _arr(np.linalg.trace(x, offset=offset, dtype=native))

    def triangular_solve(self, a: Array, b: Array, lower: bool) -> Array:
        return self._lapack("triangular_solve", lambda: np.linalg.solve(a, b), a, b, lower)

    def vector_norm(self, x: Array, axis: tuple[int, ...] | None, keepdims: bool, ord: float) -> Array:
        return _arr(np.linalg.vector_norm(x, axis=axis, keepdims=keepdims, ord=ord))  # type: ignore[arg-type]


__all__ = ["NumPyLinalg"]
