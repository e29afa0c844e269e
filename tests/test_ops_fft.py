"""``arrayq.fft`` on both test backends (NumPy, whose overrides call numpy.fft, and
primitives-only, which runs the reference of ``arrayq/backend/_fft.py``: DFT matrices,
the four-step split and Bluestein's chirp), against expectations that use neither:

* the DFT's definition as an explicit sum, one output element at a time with ``cmath``
  (small lengths, every argument combination);
* the same definition as a product with the DFT matrix in float64 (``numpy.einsum``), for
  the lengths that take the reference's four-step and Bluestein paths;
* hand-computed transforms (an impulse, a constant, one pure frequency).

Tolerances, on ``max|got - expected| / max|expected|``: complex128/float64 1e-12 (the
expectation's own float64 sums carry about n * 2.2e-16, at most 6e-14 for n <= 257; an
FFT's error is about log2(n) * 2.2e-16); complex64/float32 1e-5 (log2(n) levels of a few
float32 ulps, 1.2e-7, plus rounding the inputs and constants: ~80 ulp of room). A wrong
sign, index, twiddle or normalisation is an O(1) error, far outside either.
"""

import cmath
import itertools
import math

import numpy as np
import pytest

import arrayq as aq
from tests._ops_support import be, build  # noqa: F401 (fixture)

COVERS = {
    f"fft.{name}"
    for name in (
        *("fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft"),
        *("fftfreq", "rfftfreq", "fftshift", "ifftshift"),
    )
}

TOL = {"complex128": 1e-12, "float64": 1e-12, "complex64": 1e-5, "float32": 1e-5}
NORMS = ("backward", "ortho", "forward")


def _close(be, got, want, dtype):
    """``got`` is an array of the backend, of ``dtype`` and want's shape, within TOL."""
    out = be.out(got)
    assert out.shape == want.shape, f"shape {out.shape}, expected {want.shape}"
    assert out.dtype == aq.as_dtype(dtype).dtype, f"dtype {out.dtype}, expected {dtype}"
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    err = float(np.max(np.abs(out.astype(np.complex128) - want), initial=0.0)) / scale
    assert err <= TOL[dtype], f"error {err:.3g} > {TOL[dtype]} for {dtype}"


def _signal(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, shape)
    if aq.as_dtype(dtype).kind == "complex":
        x = x + 1j * rng.uniform(-1, 1, shape)
    return x.astype(aq.as_dtype(dtype).dtype)


def _factor(n, norm, inverse):
    plain = "forward" if inverse else "backward"
    return 1.0 if norm == plain else 1 / math.sqrt(n) if norm == "ortho" else 1 / n


def _fit(x, n, axis):
    """x cut or zero-padded to n along axis (the standard's rule for n / s)."""
    x = np.moveaxis(np.asarray(x, dtype=np.complex128), axis, -1)[..., :n]
    pad = np.zeros(x.shape[:-1] + (n - x.shape[-1],))
    return np.moveaxis(np.concatenate([x, pad], -1), -1, axis)


def _dft_loop(x, n, axis, norm, inverse):
    """The definition, element by element: out[k] = f * sum_j x[j] exp(-+2 pi i j k / n)."""
    x = _fit(x, n, axis)
    sign = 1 if inverse else -1
    f = _factor(n, norm, inverse)

    def element(idx):
        pick = list(idx)
        total = 0j
        for j in range(n):
            pick[axis] = j
            total += x[tuple(pick)] * cmath.exp(sign * 2j * math.pi * ((j * idx[axis]) % n) / n)
        return f * total

    return build(x.shape, element, aq.complex128)


def _dft_matrix(x, n, axis, norm, inverse):
    """The definition as one product with the float64 DFT matrix."""
    x = _fit(x, n, axis)
    jk = np.outer(np.arange(n), np.arange(n)) % n
    w = np.exp((1 if inverse else -1) * 2j * np.pi * jk / n)
    out = np.einsum("...j,jk->...k", np.moveaxis(x, axis, -1), w)
    return np.moveaxis(out, -1, axis) * _factor(n, norm, inverse)


def _hermitian(x, n, axis):
    """The full n-point spectrum of a real signal from its first n // 2 + 1 terms (the
    imaginary parts of the zero and Nyquist terms dropped, as irfft's definition does)."""
    half = np.moveaxis(_fit(x, n // 2 + 1, axis), axis, -1).copy()
    half[..., 0] = half[..., 0].real
    if n % 2 == 0:
        half[..., -1] = half[..., -1].real
    full = np.concatenate([half, np.conj(half[..., 1 : n - n // 2][..., ::-1])], -1)
    return np.moveaxis(full, -1, axis)


# ---------------------------------------------------------------------- one-dimensional transforms

CASES_1D = [((8,), None, -1), ((5,), 8, 0), ((3, 7), 4, 1), ((3, 6), None, 0), ((2, 3, 5), 6, 1), ((1,), None, -1)]


@pytest.mark.parametrize("shape, n, axis", CASES_1D, ids=str)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_fft_and_ifft_follow_the_definition(be, shape, n, axis, norm, dtype):
    x = _signal(shape, dtype)
    m = n or shape[axis]
    for fn, inverse in ((aq.fft.fft, False), (aq.fft.ifft, True)):
        got = fn(be.arr(x), **({} if n is None else {"n": n}), axis=axis, norm=norm)
        _close(be, got, _dft_loop(x, m, axis % len(shape), norm, inverse), dtype)


@pytest.mark.parametrize("shape, n, axis", CASES_1D, ids=str)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_rfft_and_ihfft_are_the_first_half_of_the_dft(be, shape, n, axis, norm, dtype):
    x = _signal(shape, dtype)
    m = n or shape[axis]
    ax = axis % len(shape)
    keep = tuple(slice(0, m // 2 + 1) if i == ax else slice(None) for i in range(len(shape)))
    wide = "complex64" if dtype == "float32" else "complex128"
    kw = {} if n is None else {"n": n}
    _close(be, aq.fft.rfft(be.arr(x), **kw, axis=axis, norm=norm), _dft_loop(x, m, ax, norm, False)[keep], wide)
    # ihfft(x) = conj(rfft(x)) with the normalisation's direction swapped: the inverse DFT's first half
    _close(be, aq.fft.ihfft(be.arr(x), **kw, axis=axis, norm=norm), _dft_loop(x, m, ax, norm, True)[keep], wide)


@pytest.mark.parametrize("shape, n, axis", [((5,), None, -1), ((4,), 7, 0), ((3, 6), 10, 1), ((6, 2), 3, 0)], ids=str)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_irfft_and_hfft_are_the_dft_of_the_hermitian_spectrum(be, shape, n, axis, norm, dtype):
    x = _signal(shape, dtype)
    m = n or 2 * (shape[axis] - 1)
    ax = axis % len(shape)
    full = _hermitian(x, m, ax)
    real_dtype = "float32" if dtype == "complex64" else "float64"
    kw = {} if n is None else {"n": n}
    _close(be, aq.fft.irfft(be.arr(x), **kw, axis=axis, norm=norm), _dft_loop(full, m, ax, norm, True).real, real_dtype)
    # hfft: the forward DFT of the Hermitian signal whose first half is x
    _close(be, aq.fft.hfft(be.arr(x), **kw, axis=axis, norm=norm), _dft_loop(full, m, ax, norm, False).real, real_dtype)


@pytest.mark.parametrize("n", [1, 2, 7, 64, 65, 67, 100, 128, 134, 210, 257])
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_every_length_path(be, n, dtype):
    # n <= 64: one DFT matrix; 65 = 5 * 13, 100, 128, 210 = 14 * 15: the four-step split;
    # 67, 257 (primes): Bluestein; 134 = 2 * 67: the split with Bluestein inside
    x = _signal((2, n), dtype, seed=n)
    for norm in NORMS:
        _close(be, aq.fft.fft(be.arr(x), norm=norm), _dft_matrix(x, n, 1, norm, False), dtype)
        _close(be, aq.fft.ifft(be.arr(x), norm=norm), _dft_matrix(x, n, 1, norm, True), dtype)


def test_hand_computed_transforms(be):
    n = 12
    impulse = np.zeros(n, dtype=np.complex128)
    impulse[0] = 1
    be.check(aq.fft.fft(be.arr(impulse)), np.ones(n), aq.complex128, atol=1e-15)
    be.check(aq.fft.fft(be.arr(np.ones(n, dtype=np.complex128))), np.eye(1, n)[0] * n, aq.complex128, atol=1e-13)
    # one pure frequency k0 = 3: all of it lands in bin 3 (bin n - 3 for the conjugate)
    wave = np.array([cmath.exp(2j * math.pi * 3 * j / n) for j in range(n)])
    be.check(aq.fft.fft(be.arr(wave)), np.eye(1, n, 3)[0] * n, aq.complex128, atol=1e-12)
    be.check(aq.fft.ifft(be.arr(wave), norm="forward"), np.eye(1, n, n - 3)[0] * n, aq.complex128, atol=1e-12)
    # a real cosine: half its weight in bin 2 of rfft; ortho keeps the energy (Parseval)
    cosine = np.array([math.cos(2 * math.pi * 2 * j / n) for j in range(n)])
    be.check(aq.fft.rfft(be.arr(cosine)), np.eye(1, n // 2 + 1, 2)[0] * n / 2, aq.complex128, atol=1e-12)
    spectrum = be.out(aq.fft.fft(be.arr(wave + 0.5), norm="ortho"))
    assert abs(np.sum(np.abs(spectrum) ** 2) - np.sum(np.abs(wave + 0.5) ** 2)) < 1e-12


@pytest.mark.parametrize("m, n", [(8, None), (9, None), (5, 9), (5, 8)])
def test_irfft_inverts_rfft(be, m, n):
    x = _signal((3, m), "float64")
    back = aq.fft.irfft(aq.fft.rfft(be.arr(x), n=n), n=n or m)
    be.check(back, _fit(x, n or m, 1).real, aq.float64, atol=1e-14)


# ---------------------------------------------------------------------- n-dimensional transforms

ND = [
    ((3, 4, 5), None, None),
    ((3, 4, 5), None, (2, 0)),
    ((3, 4, 5), (2, 6), (0, 2)),
    ((3, 4, 5), (-1, 7), (1, -1)),
    ((2, 6), (5,), (0,)),
    ((4, 3), (3, 4), (-1, -2)),
]


def _nd(x, s, axes, norm, inverse):
    axes = tuple(range(x.ndim)) if axes is None else tuple(a % x.ndim for a in axes)
    s = tuple(x.shape[a] for a in axes) if s is None else tuple(x.shape[a] if v == -1 else v for a, v in zip(axes, s))
    out = np.asarray(x, dtype=np.complex128)
    for n, a in zip(s, axes):
        out = _dft_loop(out, n, a, norm, inverse)
    return out, s, axes


@pytest.mark.parametrize("shape, s, axes", ND, ids=str)
@pytest.mark.parametrize("norm", NORMS)
def test_fftn_and_ifftn_are_the_dft_along_each_axis(be, shape, s, axes, norm):
    x = _signal(shape, "complex128")
    for fn, inverse in ((aq.fft.fftn, False), (aq.fft.ifftn, True)):
        want, _, _ = _nd(x, s, axes, norm, inverse)
        _close(be, fn(be.arr(x), s=s, axes=axes, norm=norm), want, "complex128")


@pytest.mark.parametrize("shape, s, axes", ND, ids=str)
@pytest.mark.parametrize("norm", NORMS)
def test_rfftn_keeps_half_of_the_last_axis(be, shape, s, axes, norm):
    x = _signal(shape, "float32")
    want, lengths, resolved = _nd(x, s, axes, norm, False)
    keep = tuple(slice(0, lengths[-1] // 2 + 1) if i == resolved[-1] else slice(None) for i in range(len(shape)))
    _close(be, aq.fft.rfftn(be.arr(x), s=s, axes=axes, norm=norm), want[keep], "complex64")


IRFFTN = [((3, 4, 5), None, None), ((3, 4, 5), (2, 7), (0, 2)), ((4, 3), (5, 4), (1, 0))]


@pytest.mark.parametrize("shape, s, axes", IRFFTN, ids=str)
@pytest.mark.parametrize("norm", NORMS)
def test_irfftn_is_the_inverse_over_the_hermitian_last_axis(be, shape, s, axes, norm):
    x = _signal(shape, "complex128")
    resolved = tuple(range(len(shape))) if axes is None else tuple(a % len(shape) for a in axes)
    lengths = tuple(shape[a] for a in resolved[:-1]) + (2 * (shape[resolved[-1]] - 1),) if s is None else tuple(s)
    # the other axes first, then the real (last) axis from its Hermitian completion
    out = np.asarray(x)
    for n, a in zip(lengths[:-1], resolved[:-1]):
        out = _dft_loop(out, n, a, norm, True)
    want = _dft_loop(_hermitian(out, lengths[-1], resolved[-1]), lengths[-1], resolved[-1], norm, True).real
    _close(be, aq.fft.irfftn(be.arr(x), s=s, axes=axes, norm=norm), want, "float64")


def test_no_axes(be):
    x = _signal((2, 3), "complex64")
    be.check(aq.fft.fftn(be.arr(x), axes=()), x, aq.complex64)  # nothing to transform
    with pytest.raises(ValueError, match="at least one axis"):
        aq.fft.rfftn(be.arr(x.real), axes=())


def test_empty_batch_and_0d(be):
    x = np.zeros((0, 4), dtype=np.complex128)
    be.check(aq.fft.fft(be.arr(x)), x, aq.complex128)
    be.check(aq.fft.rfft(be.arr(x.real), n=6), np.zeros((0, 4)), aq.complex128)
    be.check(aq.fft.fft(be.arr(np.zeros(0, dtype=np.complex128)), n=3), np.zeros(3), aq.complex128)  # all padding
    with pytest.raises(IndexError):
        aq.fft.fft(be.arr(np.array(1j)))


# ---------------------------------------------------------------------- dtypes and bad input


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_narrow_and_real_inputs_compute_in_float32(be, dtype):
    x = np.array([1.0, 2.0, -1.0, 0.5], dtype=aq.as_dtype(dtype).dtype)
    want = _dft_loop(x.astype(np.float64), 4, 0, "backward", False)
    _close(be, aq.fft.fft(be.arr(x)), want, "complex64")  # real input: zero imaginary part
    _close(be, aq.fft.rfft(be.arr(x)), want[:3], "complex64")
    _close(be, aq.fft.irfft(be.arr(x)), _dft_loop(_hermitian(x, 6, 0), 6, 0, "backward", True).real, "float32")


def test_bad_input_raises(be):
    c = be.arr(_signal((4, 5), "complex128"))
    r = be.arr(_signal((4, 5), "float64"))
    bad = [
        (TypeError, "floating-point", lambda: aq.fft.fft(be.arr(np.arange(4)))),
        (TypeError, "floating-point", lambda: aq.fft.rfft(be.arr(np.array([True, False])))),
        (TypeError, "real array", lambda: aq.fft.rfft(c)),
        (TypeError, "real array", lambda: aq.fft.ihfft(c)),
        (TypeError, "real array", lambda: aq.fft.rfftn(c)),
        (ValueError, "norm must be", lambda: aq.fft.fft(c, norm="both")),
        (ValueError, "at least 1 point", lambda: aq.fft.fft(c, n=0)),
        (ValueError, "at least 1 point", lambda: aq.fft.irfft(be.arr(np.ones((3, 1), dtype=complex)))),
        (ValueError, "at least 1 point", lambda: aq.fft.fft(be.arr(np.zeros((2, 0), dtype=complex)))),
        (TypeError, "n must be an int", lambda: aq.fft.fft(c, n=2.5)),
        (IndexError, "out of range", lambda: aq.fft.fft(c, axis=2)),
        (IndexError, "out of range", lambda: aq.fft.fftn(c, axes=(0, -3))),
        (ValueError, "without axes", lambda: aq.fft.fftn(c, s=(4, 5))),
        (ValueError, "more than once", lambda: aq.fft.ifftn(c, axes=(1, -1))),
        (ValueError, "2 axes", lambda: aq.fft.rfftn(r, s=(3,), axes=(0, 1))),
        (ValueError, r"s\[1\] is -2", lambda: aq.fft.irfftn(c, s=(3, -2), axes=(0, 1))),
        (ValueError, "more than once", lambda: aq.fft.fftshift(c, axes=(0, 0))),
        (ValueError, "at least 1 point", lambda: aq.fft.fftfreq(0)),
        (TypeError, "real floating", lambda: aq.fft.rfftfreq(4, dtype=aq.int32)),
    ]
    for exc, match, call in bad:
        with pytest.raises(exc, match=match):
            call()


# ---------------------------------------------------------------------- frequencies and shifts


@pytest.mark.parametrize("n", [1, 2, 5, 8])
@pytest.mark.parametrize("d", [1.0, 0.25])
def test_fftfreq_and_rfftfreq(be, n, d):
    # bin k is frequency k / (n d) up to n // 2 (fftfreq: from ceil(n / 2) on, k - n)
    full = [(k if k < n - n // 2 else k - n) / (n * d) for k in range(n)]
    half = [k / (n * d) for k in range(n // 2 + 1)]
    with be.creating():
        be.check(aq.fft.fftfreq(n, d=d), full, aq.float64, rtol=1e-15)
        be.check(aq.fft.rfftfreq(n, d=d), half, aq.float64, rtol=1e-15)
        be.check(aq.fft.fftfreq(n, d=d, dtype=aq.float32), np.float32(full), aq.float32, rtol=1e-7)


SHIFTS = [((5,), None), ((4, 5), None), ((4, 5), 1), ((4, 5, 3), (0, -1)), ((), None)]


@pytest.mark.parametrize("shape, axes", SHIFTS, ids=str)
def test_fftshift_moves_the_zero_frequency_to_the_middle(be, shape, axes):
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    picked = range(len(shape)) if axes is None else [a % len(shape) for a in np.atleast_1d(axes)]

    def moved(idx, sign):
        return x[tuple((i - sign * (n // 2)) % n if a in picked else i for a, (i, n) in enumerate(zip(idx, shape)))]

    be.check(aq.fft.fftshift(be.arr(x), axes=axes), build(shape, lambda idx: moved(idx, 1), aq.float32), aq.float32)
    be.check(aq.fft.ifftshift(be.arr(x), axes=axes), build(shape, lambda idx: moved(idx, -1), aq.float32), aq.float32)
    # the zero frequency of fftfreq ends up at index n // 2
    with be.creating():
        centred = be.out(aq.fft.fftshift(aq.fft.fftfreq(7)))
    assert centred[7 // 2] == 0 and np.all(np.diff(centred) > 0)


# ---------------------------------------------------------------------- MLX and the strict example
# numpy.fft is the second implementation here: MLX runs mlx.core.fft, the strict example the
# reference on array_api_strict's primitives. MLX computes in complex64 only.


@pytest.fixture(params=["mlx", "strict"])
def other(request):
    pytest.importorskip({"mlx": "mlx.core", "strict": "arrayq_strict"}[request.param])
    return aq.get_backend(request.param)


def test_other_backends_follow_numpy_fft(other):
    dtypes = ["complex64"] if other.name == "mlx" else ["complex64", "complex128"]
    for dtype, norm, (shape, n, axis) in itertools.product(dtypes, NORMS, CASES_1D):
        real = "float32" if dtype == "complex64" else "float64"
        x, xr = _signal(shape, dtype), _signal(shape, real)
        mx_x, mx_r = aq.to_backend(x, other), aq.to_backend(xr, other)
        ref = {"n": n, "axis": axis, "norm": norm}
        kw = {k: v for k, v in ref.items() if v is not None}
        for name, arg, host in (("fft", mx_x, x), ("ifft", mx_x, x), ("rfft", mx_r, xr), ("ihfft", mx_r, xr)):
            got = getattr(aq.fft, name)(arg, **kw)
            assert aq.backend_of(got) is other
            want = getattr(np.fft, name)(host.astype(np.complex128 if host.dtype.kind == "c" else np.float64), **ref)
            _check_other(got, want, dtype)
        if shape[axis] > 1:
            for name in ("irfft", "hfft"):
                want = getattr(np.fft, name)(x.astype(np.complex128), **ref)
                _check_other(getattr(aq.fft, name)(mx_x, **kw), want, real)
    x = _signal((3, 4, 6), dtypes[-1])
    for s, axes in ((None, None), ((5, 3), (2, 0)), ((4, 7), (0, -1))):
        for name in ("fftn", "ifftn", "rfftn", "irfftn"):
            host = x.real if name == "rfftn" else x
            want = getattr(np.fft, name)(host.astype(np.complex128 if name != "rfftn" else np.float64), s=s, axes=axes)
            dtype = dtypes[-1] if name != "irfftn" else ("float32" if dtypes[-1] == "complex64" else "float64")
            _check_other(getattr(aq.fft, name)(aq.to_backend(host, other), s=s, axes=axes), want, dtype)


def _check_other(got, want, dtype):
    out = aq.to_numpy(got)
    assert out.dtype == aq.as_dtype(dtype).dtype and out.shape == want.shape, (out.dtype, out.shape, want.shape)
    err = float(np.max(np.abs(out - want), initial=0.0)) / max(1.0, float(np.max(np.abs(want), initial=0.0)))
    assert err <= TOL[dtype], f"error {err:.3g} > {TOL[dtype]}"


def test_other_backends_frequencies_and_shifts(other):
    with aq.default_backend(other):
        freq = aq.fft.fftfreq(6, d=0.5)
        assert aq.backend_of(freq) is other and aq.dtype(freq) == other.default_float
        np.testing.assert_allclose(aq.to_numpy(freq), [0, 1 / 3, 2 / 3, -1, -2 / 3, -1 / 3], rtol=1e-7)
        np.testing.assert_allclose(aq.to_numpy(aq.fft.rfftfreq(5)), [0, 0.2, 0.4], rtol=1e-7)
    x = aq.to_backend(np.arange(10, dtype=np.float32).reshape(2, 5), other)
    np.testing.assert_array_equal(aq.to_numpy(aq.fft.fftshift(x, axes=1)), [[3, 4, 0, 1, 2], [8, 9, 5, 6, 7]])
    np.testing.assert_array_equal(aq.to_numpy(aq.fft.ifftshift(aq.fft.fftshift(x))), aq.to_numpy(x))


def test_mlx_refuses_a_float64_real_transform():
    pytest.importorskip("mlx.core")
    x = aq.to_backend(np.arange(4.0), "mlx", device="cpu")  # float64 lives on MLX's CPU only
    for fn in (aq.fft.rfft, aq.fft.ihfft, aq.fft.rfftn):
        with pytest.raises(aq.UnsupportedDTypeError, match="complex128"):
            fn(x)
