"""The MLX backend's linear algebra: ``mlx.core.linalg`` for the ops it has.

**On the CPU stream, on every device.** MLX's factorizations (LAPACK underneath: qr, svd,
eigh, cholesky, inv, solve, lu, det, slogdet, solve_triangular) have no GPU kernels; each
call here passes ``stream=mx.cpu``, so they also run when the GPU is MLX's default device
and their results feed GPU ops as any array does (Apple silicon shares the memory; on a
CUDA build MLX copies as needed). The elementwise ones (cross, diagonal, outer, trace,
the non-spectral norms) run on the default device.

**Eager where MLX fails lazily.** MLX raises for a singular matrix only when the result is
evaluated (``RuntimeError: ... failed with error code``), wherever that happens; inv,
solve and solve_triangular therefore evaluate their result here and run the contract's
composite instead when MLX refuses, which marks the matrix with NaN for the frontend to
report as ``LinAlgError``. MLX's Cholesky never fails: a matrix that is not positive
definite gives a factor with a pivot <= 0 (LAPACK's potrf stops there), which the
frontend checks.

The frontend (``arrayq.linalg``) hands these finite float32/float64/complex64 matrices
that are not empty (MLX crashes the process on a 0 x 0 inverse), batch axes broadcast. Not overridden:
matrix_power, matrix_rank, pinv (``mx.linalg.pinv`` takes no rtol), lstsq — their
composites call the native svd and matmul. Complex input takes the composites where MLX
has float types only (all but svd, svdvals, eigh, eigvalsh and the norms).
"""

from __future__ import annotations

from typing import Any

from arrayq.backend import Array, Backend
from arrayq.backend import dtypes as dt
from arrayq_mlx import _composed
from arrayq_mlx import _workarounds as fix


def _lib() -> Any:
    """mlx.core, imported when first used (importing arrayq_mlx must not import MLX)."""
    import mlx.core

    return mlx.core


class MLXLinalg(Backend):
    """mlx.core.linalg behind the contract's linear algebra ops (MLXBackend's base)."""

    def _cpu(self) -> Any:
        return _lib().cpu

    def _complex(self, *xs: Array) -> bool:
        """Whether any of xs is complex: MLX's qr, inv, cholesky, lu, det, slogdet, solve and
        solve_triangular take float32/float64 only, so complex takes the composite."""
        return any(x.dtype == _lib().complex64 for x in xs)

    def _evaluated(self, op: str, out: Array, *args: Any) -> Array:
        """``out`` evaluated now; the composite ``op`` if MLX's LAPACK call failed."""
        try:
            _lib().eval(out)
        except RuntimeError as exc:
            if "failed" not in str(exc):
                raise
            return getattr(Backend, op)(self, *args)
        return out

    def cholesky(self, x: Array, upper: bool) -> Array:
        if self._complex(x):
            return super().cholesky(x, upper)
        low = _lib().linalg.cholesky(x, upper=False, stream=self._cpu())  # upper=True reads the upper triangle
        return _lib().swapaxes(low, -1, -2) if upper else low

    def cross(self, x1: Array, x2: Array, axis: int) -> Array:
        return _lib().linalg.cross(x1, x2, axis=axis)

    def det(self, x: Array) -> Array:
        if self._complex(x):
            return super().det(x)
        if x.dtype == _lib().float64:
            return fix.det64(_lib(), x)
        return _lib().linalg.det(x, stream=self._cpu())

    def diagonal(self, x: Array, offset: int) -> Array:
        return _lib().diagonal(x, offset, -2, -1)

    def eigh(self, x: Array) -> tuple[Array, Array]:
        w, v = _lib().linalg.eigh(x, UPLO="L", stream=self._cpu())
        return w, v

    def eigvalsh(self, x: Array) -> Array:
        return _lib().linalg.eigvalsh(x, UPLO="L", stream=self._cpu())

    def inv(self, x: Array) -> Array:
        if self._complex(x):
            return super().inv(x)
        return self._evaluated("inv", _lib().linalg.inv(x, stream=self._cpu()), x)

    def lu(self, x: Array) -> tuple[Array, Array, Array]:
        # MLX's p says where each row of x went (x = L[p] @ U); the contract's perm is its
        # inverse, the row of x each row of L @ U came from
        if self._complex(x):
            return super().lu(x)
        p, low, up = _lib().linalg.lu(x, stream=self._cpu())
        return _lib().argsort(p, axis=-1).astype(self.native_dtype(self.default_int)), low, up

    def matrix_norm(self, x: Array, ord: Any, keepdims: bool) -> Array:
        spectral = ord in ("nuc", 2, -2)  # singular values: LAPACK, the CPU stream
        real = _lib().float32 if self._complex(x) else x.dtype  # MLX's norms of complex64 stay complex64
        out = _lib().linalg.norm(x, ord=ord, axis=[-2, -1], keepdims=keepdims, stream=self._cpu() if spectral else None)
        return out if out.dtype == real else out.astype(real)

    def outer(self, x1: Array, x2: Array) -> Array:
        return _lib().outer(x1, x2)

    def qr(self, x: Array, mode: str) -> tuple[Array, Array]:
        if self._complex(x) or (mode == "complete" and x.shape[-2] > x.shape[-1]):
            return super().qr(x, mode)  # (MLX's Q is always the reduced one)
        q, r = _lib().linalg.qr(x, stream=self._cpu())
        return q, r

    def slogdet(self, x: Array) -> tuple[Array, Array]:
        if self._complex(x):
            return super().slogdet(x)
        sign, logabs = _lib().linalg.slogdet(x, stream=self._cpu())
        return sign, logabs

    def solve(self, x1: Array, x2: Array) -> Array:
        if self._complex(x1, x2):
            return super().solve(x1, x2)
        return self._evaluated("solve", _lib().linalg.solve(x1, x2, stream=self._cpu()), x1, x2)

    def svd(self, x: Array, full_matrices: bool) -> tuple[Array, Array, Array]:
        u, s, vh = _lib().linalg.svd(x, stream=self._cpu())  # MLX's U and Vh are always full
        if not full_matrices:
            k = min(x.shape[-2], x.shape[-1])
            u, vh = u[..., :, :k], vh[..., :k, :]
        return u, s, vh

    def svdvals(self, x: Array) -> Array:
        return _lib().linalg.svd(x, compute_uv=False, stream=self._cpu())

    def trace(self, x: Array, offset: int, dtype: dt.DType | None) -> Array:
        if fix.trace_outside(x.shape, offset):
            return super().trace(x, offset, dtype)
        acc = _composed.accumulator(self, x, dtype)  # type: ignore[arg-type]
        return _lib().trace(x, offset, -2, -1, dtype=self.native_dtype(acc))

    def triangular_solve(self, a: Array, b: Array, lower: bool) -> Array:
        if self._complex(a, b):
            return super().triangular_solve(a, b, lower)
        out = _lib().linalg.solve_triangular(a, b, upper=not lower, stream=self._cpu())
        return self._evaluated("triangular_solve", out, a, b, lower)

    def vector_norm(self, x: Array, axis: tuple[int, ...] | None, keepdims: bool, ord: float) -> Array:
        if self._complex(x):
            x = _lib().abs(x)  # MLX's norm of complex64 answers in complex64
        if axis is not None and len(axis) != 1:
            return super().vector_norm(x, axis, keepdims, ord)  # MLX reads two axes as a matrix
        if axis is None:
            flat = _lib().linalg.norm(_lib().reshape(x, (-1,)), ord=ord)
            return _lib().reshape(flat, (1,) * x.ndim) if keepdims else flat
        return _lib().linalg.norm(x, ord=ord, axis=list(axis), keepdims=keepdims)


__all__ = ["MLXLinalg"]
