"""The fft extension on MLX: ``mlx.core.fft``, which takes ``s``, ``axes`` and ``norm`` as
the array API does and computes in complex64 (float32 for the real side).

MLX has no complex128, so the transforms whose result would be complex128 from a float64
input (``rfft``, ``rfftn``, ``ihfft``) raise UnsupportedDTypeError instead of returning
complex64 silently; complex128 input cannot exist on MLX. (The frontend, ``arrayq.fft``,
has already made ``x`` complex64 or real float32/float64 and resolved ``s`` and ``axes``;
``hfft`` and ``ihfft``, which MLX lacks, are ``irfftn`` and ``rfftn`` there.)
"""

from __future__ import annotations

from typing import Any, Protocol

from arrayq.backend import Array, UnsupportedDTypeError


class _MLXBackend(Protocol):
    mx: Any  # mlx.core
    name: str


class FFT:
    """Mixed into :class:`arrayq_mlx.MLXBackend`: its overrides of the fft composites."""

    def fftn(self: _MLXBackend, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        return self.mx.fft.fftn(x, s=list(s), axes=list(axes), norm=norm)

    def ifftn(self: _MLXBackend, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        return self.mx.fft.ifftn(x, s=list(s), axes=list(axes), norm=norm)

    def rfftn(self: _MLXBackend, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        if x.dtype == self.mx.float64:
            raise UnsupportedDTypeError(
                f"backend {self.name!r} (MLX) has no complex128 for the transform of a float64 array; "
                "cast it to float32, or use the numpy backend"
            )
        return self.mx.fft.rfftn(x, s=list(s), axes=list(axes), norm=norm)

    def irfftn(self: _MLXBackend, x: Array, s: tuple[int, ...], axes: tuple[int, ...], norm: str) -> Array:
        return self.mx.fft.irfftn(x, s=list(s), axes=list(axes), norm=norm)
