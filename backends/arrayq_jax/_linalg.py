"""The JAX backend's linear algebra: ``jax.numpy.linalg`` / ``jax.scipy.linalg`` (LAPACK on the CPU,
cuSOLVER on a GPU) for the decompositions and solvers, instead of the contract's composites.

The frontend (``arrayq.linalg``) hands these finite float32/float64/complex matrices that are not
empty, batch axes broadcast. JAX never raises for a singular matrix: its inverse and solutions hold
inf or NaN, and a Cholesky factor of a matrix that is not positive definite holds NaN, which the
frontend reports as ``LinAlgError``, as the contract asks. ``eigh`` and ``cholesky`` read the lower
triangle only (``symmetrize_input=False``). Complex ``lu`` takes the composite: LAPACK chooses
complex pivots by ``|re| + |im|``, the contract by ``|z|``, so tied rows would swap. Not overridden
(their composites call these): lstsq, pinv, matrix_rank, matrix_power, the norms, trace, cross,
outer.
"""

from __future__ import annotations

from typing import Any

from arrayq.backend import Array, Backend


def _lib() -> Any:
    """jax, imported when first used (importing arrayq_jax must not import jax)."""
    import jax

    return jax


class JAXLinalg(Backend):
    """jax.numpy.linalg behind the contract's linear algebra ops (JAXBackend's base)."""

    def cholesky(self, x: Array, upper: bool) -> Array:
        low = _lib().numpy.linalg.cholesky(x, symmetrize_input=False)
        return _lib().numpy.conj(_lib().numpy.swapaxes(low, -1, -2)) if upper else low

    def det(self, x: Array) -> Array:
        return _lib().numpy.linalg.det(x)

    def eigh(self, x: Array) -> tuple[Array, Array]:
        w, v = _lib().numpy.linalg.eigh(x, UPLO="L", symmetrize_input=False)
        return w, v

    def eigvalsh(self, x: Array) -> Array:
        return _lib().numpy.linalg.eigh(x, UPLO="L", symmetrize_input=False)[0]

    def inv(self, x: Array) -> Array:
        return _lib().numpy.linalg.inv(x)

    def lu(self, x: Array) -> tuple[Array, Array, Array]:
        # lax.linalg.lu: the packed factors and the permutation with x[..., perm, :] = L @ U
        jnp = _lib().numpy
        if jnp.iscomplexobj(x):  # LAPACK pivots complex rows on |re| + |im|, the contract on |z|
            return super().lu(x)
        packed, _, perm = _lib().lax.linalg.lu(x)
        m, n = x.shape[-2], x.shape[-1]
        k = min(m, n)
        low = jnp.tril(packed[..., :, :k], -1) + jnp.eye(m, k, dtype=x.dtype)
        up = jnp.triu(packed[..., :k, :])
        return perm.astype(self.native_dtype(self.default_int)), low, up

    def qr(self, x: Array, mode: str) -> tuple[Array, Array]:
        q, r = _lib().numpy.linalg.qr(x, mode="complete" if mode == "complete" else "reduced")
        return q, r

    def slogdet(self, x: Array) -> tuple[Array, Array]:
        sign, logabs = _lib().numpy.linalg.slogdet(x)
        return sign, logabs

    def solve(self, x1: Array, x2: Array) -> Array:
        return _lib().numpy.linalg.solve(x1, x2)

    def svd(self, x: Array, full_matrices: bool) -> tuple[Array, Array, Array]:
        u, s, vh = _lib().numpy.linalg.svd(x, full_matrices=full_matrices)
        return u, s, vh

    def svdvals(self, x: Array) -> Array:
        return _lib().numpy.linalg.svd(x, compute_uv=False)

    def triangular_solve(self, a: Array, b: Array, lower: bool) -> Array:
        return _lib().scipy.linalg.solve_triangular(a, b, lower=lower)


__all__ = ["JAXLinalg"]
