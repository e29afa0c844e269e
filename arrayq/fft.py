"""``arrayq.fft``: the array API's fft extension (2023.12) on every backend.

* complex to complex: :func:`fft`, :func:`ifft`, :func:`fftn`, :func:`ifftn`;
* real to complex: :func:`rfft`, :func:`rfftn`, :func:`ihfft` (last axis ``n // 2 + 1`` long);
* complex to real: :func:`irfft`, :func:`irfftn`, :func:`hfft`;
* helpers: :func:`fftfreq`, :func:`rfftfreq`, :func:`fftshift`, :func:`ifftshift`.

This module checks and normalises the arguments once, for every backend, then calls one of
four backend composites — ``fftn``, ``ifftn``, ``rfftn``, ``irfftn`` — with ``s`` and
``axes`` resolved to positive lengths and unique non-negative axes. The one-dimensional
functions are those over one axis; ``hfft`` is ``irfft`` of the conjugate and ``ihfft`` the
conjugate of ``rfft``, each with the normalisation's direction swapped (their definitions).
NumPy runs ``numpy.fft``, MLX ``mlx.core.fft``; any other backend runs the reference on its
primitives (:mod:`arrayq.backend._fft`: matrix products, any length).

**Dtypes.** Results keep the input's precision: complex64 <-> float32, complex128 <->
float64. A real floating array is accepted where the standard asks for a complex one (as
the complex array with zero imaginary part); float16 and bfloat16 are computed in float32
(results complex64 or float32). Integer or bool input raises TypeError, and so does a
complex array given to :func:`rfft`, :func:`rfftn` or :func:`ihfft` (its imaginary part
would be lost; take ``arrayq.real`` first). On MLX, which has no complex128, a float64
``rfft``/``rfftn``/``ihfft`` raises UnsupportedDTypeError.

**Normalisation** ``norm``: "backward" (default: no factor on the forward transform, ``1/n``
on the inverse), "ortho" (``1/sqrt(n)`` both ways) or "forward" (``1/n`` on the forward
transform), with ``n`` the product of the transformed lengths. Another value: ValueError.

**Lengths and axes.** ``n`` / ``s`` cut or zero-pad the input along each transformed axis
(``s[i] == -1``: the axis as it is); a length below 1 raises ValueError, as does ``s``
without ``axes``, ``s`` and ``axes`` of different lengths, or an axis named twice; an axis
out of range raises IndexError.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import _dtypes as dt
from ._dispatch import current_backend, default_device, resolve
from ._helpers import maybe_dtype, normalize_axes, normalize_axis

if TYPE_CHECKING:
    from .backend import Backend

_NORMS = ("backward", "ortho", "forward")
_SWAPPED = {"backward": "forward", "ortho": "ortho", "forward": "backward"}


def _prepare(name: str, x: Any, real: bool, norm: str) -> tuple[Backend, Any]:
    """x's backend and x in the dtype the transform computes in (see the module doc)."""
    if norm not in _NORMS:
        raise ValueError(f"{name}: norm must be one of {', '.join(map(repr, _NORMS))}, got {norm!r}")
    backend, (x,) = resolve(x)
    d = backend.dtype_of(x)
    if d.kind not in ("float", "complex"):
        want = "float32 or float64" if real else "complex64 or complex128"
        raise TypeError(f"{name} needs a floating-point array, got {d.name}; cast it to {want} with arrayq.astype")
    if real and d.kind == "complex":
        raise TypeError(
            f"{name} takes a real array, got {d.name} (its imaginary part would be lost); "
            "pass arrayq.real(x), or use fft for complex input"
        )
    double = d in (dt.float64, dt.complex128)
    target = (dt.float64 if double else dt.float32) if real else (dt.complex128 if double else dt.complex64)
    return backend, (x if d == target else backend.astype(x, target))


def _length(name: str, n: Any, what: str) -> int:
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"{name}: {what} must be an int, got {n!r}") from None
    if n < 1:
        raise ValueError(f"{name}: {what} is {n}, but a transform needs at least 1 point; pass a positive length")
    return n


def _one_axis(name: str, x: Any, n: Any, axis: Any, inverse_real: bool = False) -> tuple[tuple[int], tuple[int]]:
    """``((n,), (axis,))`` resolved; ``inverse_real``: n defaults to ``2 * (m - 1)``."""
    ax = normalize_axis(axis, len(x.shape))
    if n is None:
        m = int(x.shape[ax])
        return (_length(name, 2 * (m - 1) if inverse_real else m, f"the default n (axis {ax} has {m} points)"),), (ax,)
    return (_length(name, n, "n"),), (ax,)


def _many_axes(
    name: str, x: Any, s: Any, axes: Any, inverse_real: bool = False
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(s, axes)`` resolved: axes None means all axes; s None (or an entry -1) means the
    input's lengths (``inverse_real``: ``2 * (m - 1)`` on the last axis)."""
    ndim = len(x.shape)
    if axes is None:
        if s is not None:
            raise ValueError(f"{name}: s was given without axes; pass axes= naming the axis each length of s is for")
        axes = tuple(range(ndim))
    else:
        axes = tuple(normalize_axis(a, ndim) for a in axes)
        if len(set(axes)) != len(axes):
            raise ValueError(f"{name}: axes {axes} name an axis more than once")
    if s is not None:
        s = tuple(s)
        if len(s) != len(axes):
            raise ValueError(f"{name}: s has {len(s)} lengths but axes names {len(axes)} axes")
    lengths = []
    for i, a in enumerate(axes):
        given = None if s is None or s[i] == -1 else s[i]
        m = int(x.shape[a])
        if given is None:
            last = inverse_real and i == len(axes) - 1
            lengths.append(_length(name, 2 * (m - 1) if last else m, f"the length of axis {a} ({m} points)"))
        else:
            lengths.append(_length(name, given, f"s[{i}]"))
    return tuple(lengths), axes


def _needs_axes(name: str, axes: tuple[int, ...]) -> None:
    if not axes:
        raise ValueError(f"{name} needs at least one axis to transform (the last one is the real axis)")


def fft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The one-dimensional DFT of ``x`` along ``axis``, cut or zero-padded to ``n`` points.
    Result: x's shape with ``n`` along ``axis``; complex64 or complex128 (module doc)."""
    backend, x = _prepare("fft", x, False, norm)
    return backend.fftn(x, *_one_axis("fft", x, n, axis), norm)


def ifft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The one-dimensional inverse DFT (``ifft(fft(x)) == x``); shapes and dtypes as :func:`fft`."""
    backend, x = _prepare("ifft", x, False, norm)
    return backend.ifftn(x, *_one_axis("ifft", x, n, axis), norm)


def fftn(
    x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> Any:
    """The n-dimensional DFT over ``axes`` (None: all), each cut or zero-padded to ``s``.
    Result: x's shape with ``s[i]`` along ``axes[i]``; complex dtype of x's precision."""
    backend, x = _prepare("fftn", x, False, norm)
    s, axes = _many_axes("fftn", x, s, axes)
    return backend.fftn(x, s, axes, norm) if axes else x


def ifftn(
    x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> Any:
    """The n-dimensional inverse DFT; shapes and dtypes as :func:`fftn`."""
    backend, x = _prepare("ifftn", x, False, norm)
    s, axes = _many_axes("ifftn", x, s, axes)
    return backend.ifftn(x, s, axes, norm) if axes else x


def rfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The DFT of real ``x`` along ``axis`` (``n`` points): its ``n // 2 + 1`` non-negative
    frequencies. Result complex64 for float32 input, complex128 for float64."""
    backend, x = _prepare("rfft", x, True, norm)
    return backend.rfftn(x, *_one_axis("rfft", x, n, axis), norm)


def irfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The real signal of ``n`` points (default ``2 * (m - 1)``) whose :func:`rfft` is
    ``x`` (m points along ``axis``, cut or padded to ``n // 2 + 1``). Result float32 for
    complex64, float64 for complex128."""
    backend, x = _prepare("irfft", x, False, norm)
    return backend.irfftn(x, *_one_axis("irfft", x, n, axis, inverse_real=True), norm)


def rfftn(
    x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> Any:
    """The n-dimensional DFT of real ``x``; the last of ``axes`` keeps ``s[-1] // 2 + 1``
    outputs. ValueError for no axes."""
    backend, x = _prepare("rfftn", x, True, norm)
    s, axes = _many_axes("rfftn", x, s, axes)
    _needs_axes("rfftn", axes)
    return backend.rfftn(x, s, axes, norm)


def irfftn(
    x: Any, /, *, s: Sequence[int] | None = None, axes: Sequence[int] | None = None, norm: str = "backward"
) -> Any:
    """The real inverse of :func:`rfftn`: ``s`` are the output lengths (default: x's, and
    ``2 * (m - 1)`` on the last axis). ValueError for no axes."""
    backend, x = _prepare("irfftn", x, False, norm)
    s, axes = _many_axes("irfftn", x, s, axes, inverse_real=True)
    _needs_axes("irfftn", axes)
    return backend.irfftn(x, s, axes, norm)


def hfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The DFT of a signal with Hermitian symmetry given by its first half ``x``: ``n``
    real outputs (default ``2 * (m - 1)``). Dtypes as :func:`irfft`."""
    backend, x = _prepare("hfft", x, False, norm)
    return backend.irfftn(backend.unary("conj", x), *_one_axis("hfft", x, n, axis, inverse_real=True), _SWAPPED[norm])


def ihfft(x: Any, /, *, n: int | None = None, axis: int = -1, norm: str = "backward") -> Any:
    """The inverse of :func:`hfft` for real ``x``: ``n // 2 + 1`` outputs. Dtypes as :func:`rfft`."""
    backend, x = _prepare("ihfft", x, True, norm)
    return backend.unary("conj", backend.rfftn(x, *_one_axis("ihfft", x, n, axis), _SWAPPED[norm]))


def _frequencies(name: str, n: Any, d: Any, dtype: Any, device: Any, half: bool) -> Any:
    n = _length(name, n, "n")
    dtype = maybe_dtype(dtype)
    if dtype is not None and dtype.kind != "float":
        raise TypeError(f"{name}: dtype must be a real floating dtype, got {dtype.name}")
    backend = current_backend()
    device = default_device(backend, device)
    dtype = dtype or backend.default_float
    k = backend.arange(0, n // 2 + 1 if half else n, 1, backend.default_int, device)
    if not half:  # indices n - n // 2 and up stand for the negative frequencies
        k = backend.where(backend.binary("less", k, n - n // 2), k, backend.binary("subtract", k, n))
    return backend.binary("divide", backend.astype(k, dtype), n * d)


def fftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> Any:
    """The sample frequencies of an ``n``-point DFT with sample spacing ``d``:
    ``[0, 1, ..., -(n // 2), ..., -1] / (d * n)``, shape (n,), the default floating dtype
    (or ``dtype``), on the default backend. ValueError for n < 1."""
    return _frequencies("fftfreq", n, d, dtype, device, half=False)


def rfftfreq(n: int, /, *, d: float = 1.0, dtype: Any = None, device: Any = None) -> Any:
    """The sample frequencies of :func:`rfft`'s output: ``[0, 1, ..., n // 2] / (d * n)``,
    shape (n // 2 + 1,). Dtype and errors as :func:`fftfreq`."""
    return _frequencies("rfftfreq", n, d, dtype, device, half=True)


def _shift(x: Any, axes: Any, sign: int) -> Any:
    backend, (x,) = resolve(x)
    axes = normalize_axes(tuple(range(len(x.shape))) if axes is None else axes, len(x.shape))
    if not axes:
        return x
    return backend.roll(x, tuple(sign * (int(x.shape[a]) // 2) for a in axes), axes)


def fftshift(x: Any, /, *, axes: int | Sequence[int] | None = None) -> Any:
    """``x`` with the zero frequency moved to the centre of ``axes`` (None: every axis):
    a roll by ``m // 2`` along each. Same shape and dtype. ValueError for an axis named twice."""
    return _shift(x, axes, 1)


def ifftshift(x: Any, /, *, axes: int | Sequence[int] | None = None) -> Any:
    """The inverse of :func:`fftshift`: a roll by ``-(m // 2)`` along each of ``axes``."""
    return _shift(x, axes, -1)


__all__ = [
    "fft",
    "fftfreq",
    "fftn",
    "fftshift",
    "hfft",
    "ifft",
    "ifftn",
    "ifftshift",
    "ihfft",
    "irfft",
    "irfftn",
    "rfft",
    "rfftfreq",
    "rfftn",
]
