"""The fft extension's reference, written once on the primitives: what ``Backend.fftn``,
``ifftn``, ``rfftn`` and ``irfftn`` run on a backend without a native fft.

One-dimensional discrete Fourier transforms of any length ``n`` along the last axis, as
matrix products:

* ``n <= DIRECT_MAX``: one product with the DFT matrix ``W[j, k] = exp(-+2 pi i j k / n)``;
* ``n = n1 * n2`` (``n1`` the largest factor up to ``sqrt(n)``): the four-step split, a DFT
  of length ``n1`` and one of ``n2`` with a twiddle product between them (each recursing);
* ``n`` prime: Bluestein's chirp, which turns the transform into a circular convolution of
  a power-of-two length ``m >= 2n - 1``, done with the four-step transforms.

The cost is ``O(n * (n1 + n2 + ...))`` products per transformed line, ``O(n log n)`` for
smooth lengths; the rounding error grows like ``log n * eps`` (one level of small exact-ish
products per split), as for FFTs generally. The constant matrices (DFT, twiddles, chirps)
are computed on the host in float64 (angles from ``j * k mod n`` in exact integers) and
moved to the backend in the transform's dtype, so a float32 transform starts from
correctly rounded constants.

The n-dimensional transforms apply these along each axis in turn (the frontend has
normalised ``s`` and ``axes``); a real-to-complex transform is the complex one of the real
input cut to its ``n // 2 + 1`` non-redundant outputs, and complex-to-real rebuilds the
Hermitian-symmetric spectrum and keeps the real part (so, as everywhere, the imaginary
parts of the zero and Nyquist terms are ignored).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _dtypes as dt

if TYPE_CHECKING:
    from ._composites import Backend

Array = Any

#: Lengths up to this take one product with the DFT matrix (at most 64 x 64 constants).
DIRECT_MAX = 64

_COMPLEX = {dt.float32: dt.complex64, dt.float64: dt.complex128, dt.complex64: dt.complex64}
_COMPLEX[dt.complex128] = dt.complex128
_REAL = {dt.complex64: dt.float32, dt.complex128: dt.float64}


def _constant(b: Backend, values: np.ndarray, dtype: dt.DType, like: Array) -> Array:
    """The host array ``values`` (complex128) on ``like``'s backend and device, in ``dtype``."""
    return b.from_numpy(values.astype(dtype.dtype), b.device_of(like))


def _phases(rows: int, cols: int, n: int, sign: int) -> np.ndarray:
    """``exp(sign * 2 pi i * r * c / n)`` for r < rows, c < cols, from exact ``r * c mod n``."""
    product = np.outer(np.arange(rows, dtype=np.int64), np.arange(cols, dtype=np.int64)) % n
    return np.exp(sign * 2j * np.pi * product / n)


def _split(n: int) -> int:
    """The largest factor of ``n`` up to ``sqrt(n)`` (1 when ``n`` is prime)."""
    for f in range(math.isqrt(n), 1, -1):
        if n % f == 0:
            return f
    return 1


def dft(b: Backend, v: Array, inverse: bool) -> Array:
    """The unnormalised DFT (``inverse``: with ``exp(+...)``) of complex ``v`` along its
    last axis, of length ``n = v.shape[-1] >= 1``."""
    n = int(v.shape[-1])
    sign = 1 if inverse else -1
    dtype = b.dtype_of(v)
    if n <= DIRECT_MAX:
        return b.matmul(v, _constant(b, _phases(n, n, n, sign), dtype, v))
    n1 = _split(n)
    if n1 == 1:
        return _bluestein(b, v, n, sign)
    n2 = n // n1
    lead = tuple(int(d) for d in v.shape[:-1])
    # input index j = n2 * j1 + j2, output index k = k1 + n1 * k2
    a = b.matrix_transpose(b.reshape(v, (*lead, n1, n2)))  # [..., j2, j1]
    a = dft(b, a, inverse)  # [..., j2, k1]
    a = b.binary("multiply", a, _constant(b, _phases(n2, n1, n, sign), dtype, v))  # twiddles
    a = dft(b, b.matrix_transpose(a), inverse)  # [..., k1, k2]
    return b.reshape(b.matrix_transpose(a), (*lead, n))  # [..., k2, k1] -> k


def _bluestein(b: Backend, v: Array, n: int, sign: int) -> Array:
    # j * k = (j^2 + k^2 - (k - j)^2) / 2: the DFT is chirp * (chirp * v  convolved with
    # conj(chirp)), and the convolution is circular of a length m >= 2n - 1 (power of two).
    dtype = b.dtype_of(v)
    m = 1 << (2 * n - 2).bit_length()
    j = np.arange(n, dtype=np.int64)
    chirp = np.exp(sign * 1j * np.pi * ((j * j) % (2 * n)) / n)
    kernel = np.zeros(m, dtype=np.complex128)
    kernel[:n] = np.conj(chirp)
    kernel[m - n + 1 :] = np.conj(chirp[1:][::-1])
    spectrum = dft(b, _constant(b, kernel, dtype, v), False)
    a = _fit(b, b.binary("multiply", v, _constant(b, chirp, dtype, v)), m)
    conv = dft(b, b.binary("multiply", dft(b, a, False), spectrum), True)
    return b.binary("multiply", conv[..., :n], _constant(b, chirp / m, dtype, v))


def _fit(b: Backend, v: Array, n: int) -> Array:
    """``v`` cut or zero-padded to length ``n`` along its last axis."""
    m = int(v.shape[-1])
    if m > n:
        return v[..., :n]
    if m < n:
        pad = b.full((*(int(d) for d in v.shape[:-1]), n - m), 0, b.dtype_of(v), b.device_of(v))
        return b.concat([v, pad], -1)
    return v


def _along(b: Backend, x: Array, axis: int, fn: Any) -> Array:
    """``fn`` applied along ``axis`` of ``x`` (moved last and back)."""
    last = x.ndim - 1
    if axis == last:
        return fn(x)
    order = [i for i in range(x.ndim) if i != axis] + [axis]
    back = list(range(x.ndim - 1))
    back.insert(axis, last)
    return b.permute_dims(fn(b.permute_dims(x, tuple(order))), tuple(back))


def _scale(b: Backend, x: Array, n: int, norm: str, inverse: bool) -> Array:
    """Apply the normalisation ``norm`` for a transform of ``n`` points."""
    scaled = "forward" if inverse else "backward"  # the direction with no factor
    if norm == scaled:
        return x
    return b.binary("multiply", x, 1 / math.sqrt(n) if norm == "ortho" else 1 / n)


def c2c(b: Backend, x: Array, s: Sequence[int], axes: Sequence[int], norm: str, inverse: bool) -> Array:
    """``fftn`` (``ifftn`` if ``inverse``) of complex ``x`` over ``axes`` with lengths ``s``."""
    for n, axis in zip(s, axes):
        x = _along(b, x, axis, lambda v, n=n: dft(b, _fit(b, v, n), inverse))
    return _scale(b, x, math.prod(s), norm, inverse)


def r2c(b: Backend, x: Array, s: Sequence[int], axes: Sequence[int], norm: str) -> Array:
    """``rfftn`` of real ``x``: the last axis keeps ``s[-1] // 2 + 1`` outputs."""
    z = b.astype(x, _COMPLEX[b.dtype_of(x)])
    n = s[-1]
    z = _along(b, z, axes[-1], lambda v: dft(b, _fit(b, v, n), False)[..., : n // 2 + 1])
    z = c2c(b, z, s[:-1], axes[:-1], "backward", False)
    return _scale(b, z, math.prod(s), norm, False)


def c2r(b: Backend, x: Array, s: Sequence[int], axes: Sequence[int], norm: str) -> Array:
    """``irfftn`` of complex ``x``: ``s[-1]`` real outputs along the last axis, from its
    first ``s[-1] // 2 + 1`` inputs."""
    x = c2c(b, x, s[:-1], axes[:-1], "forward", True)
    n = s[-1]

    def last(v: Array) -> Array:
        half = _fit(b, v, n // 2 + 1)
        # the spectrum of a real signal: X[n - k] = conj(X[k]) for 0 < k < n - n // 2
        mirrored = b.unary("conj", b.flip(half[..., 1 : n - n // 2], (v.ndim - 1,)))
        return b.unary("real", dft(b, b.concat([half, mirrored], -1), True))

    out = _along(b, x, axes[-1], last)
    out = b.astype(out, _REAL[b.dtype_of(x)], copy=False)
    return _scale(b, out, math.prod(s), norm, True)
