"""The NumPy backend's kernels on a serving batch (arrayq.serving: B sequences' decode step
at once): the repacked 8-bit-activation kernel with M = 2 to 8 rows of x in one pass over
the weights (the rows' activation codes interleaved by four columns, csrc/repack.c), and
the attention kernel over B sequences of different lengths on the thread pool
(csrc/attention.c), at every SIMD level this machine runs.

Expectations are independent of the kernels: the float64 product of arrayq's own
dequantized weight with x as the kernel documents rounding it (8-bit codes per group of
x, ``max|x_g| / 127`` scale, half to even), within float32's summation error
``2**-16 * (|x| @ |W|.T)``; and the exact float64 product within the error 8-bit
activations can cause (half a code step per element of x: ``max|x_g| / 254`` times the
group's ``sum |w|``). That bound is the precision of int8 activations (about 0.5%
relative for Gaussian data), not float32's: the float32 path is tested exact in
test_native_kernels.py and is not touched here.
"""

from __future__ import annotations

import numpy as np
import pytest

import arrayq as aq
import arrayq_numpy
from arrayq_numpy import _native

pytestmark = pytest.mark.skipif(
    _native._kernels is None, reason="the native kernels were not built (no C compiler at install time)"
)

F32_RTOL = 2.0**-16  # float32 sums in another order than float64's (see test_native_kernels.py)


@pytest.fixture(params=_native.levels() or ["none"])
def level(request: pytest.FixtureRequest) -> int:
    return _native.levels().index(request.param)


def _dense(qw: aq.QuantizedWeight) -> np.ndarray:
    """W in float64 from arrayq's dequantize of the codes (scale 1, bias 0) and the stored
    scales and biases: scale * code + bias per group."""
    ones = aq.QuantizedWeight(qw.packed, np.ones_like(qw.scales), np.zeros_like(qw.biases), qw.group_size, qw.bits)
    codes = np.asarray(aq.dequantize(ones, dtype=aq.float32)).astype(np.float64)
    n, k = codes.shape
    s = np.asarray(qw.scales).astype(np.float64)[..., None]
    b = np.asarray(qw.biases).astype(np.float64)[..., None]
    return (codes.reshape(n, -1, qw.group_size) * s + b).reshape(n, k)


def _rounded_x(x: np.ndarray, group_size: int) -> np.ndarray:
    """x as the kernel rounds it, back in float64: dx * round_half_even(x / dx)."""
    xg = x.reshape(x.shape[0], -1, group_size)
    amax = np.abs(xg).max(-1, keepdims=True)
    inv = np.where(amax > 0, np.float32(127) / np.where(amax > 0, amax, 1), 0).astype(np.float32)
    dx = (amax / np.float32(127)).astype(np.float64)
    return (np.rint(xg * inv).astype(np.float64) * dx).reshape(x.shape)


def _check(y: np.ndarray, x: np.ndarray, qw: aq.QuantizedWeight, what: object) -> None:
    dense, g = _dense(qw), qw.group_size
    f32 = F32_RTOL * (np.abs(x).astype(np.float64) @ np.abs(dense).T) + 1e-30
    assert np.all(np.abs(y - _rounded_x(x, g) @ dense.T) <= f32), ("emulation", what)
    m, n = x.shape[0], dense.shape[0]
    half_step = np.abs(x.astype(np.float64)).reshape(m, -1, g).max(-1) / 254  # (m, G)
    int8 = half_step @ np.abs(dense).reshape(n, -1, g).sum(-1).T  # the int8 activations' error
    assert np.all(np.abs(y - x.astype(np.float64) @ dense.T) <= int8 + f32), ("exact", what)


def _run(level: int, x: np.ndarray, qw: aq.QuantizedWeight) -> np.ndarray:
    data, kind, symmetric = _native.repack(qw.packed, qw.scales, qw.biases, qw.group_size, qw.bits, level)
    n = qw.packed.shape[0]
    out = np.full((x.shape[0], n), np.nan, np.float32)
    _native._kernels.gemv_repacked(
        level, x, data, out, x.shape[0], n, x.shape[1], qw.group_size, qw.bits, kind, symmetric
    )
    return out


@pytest.mark.parametrize("bits,group_size", [(4, 64), (4, 32), (2, 128), (8, 32), (3, 64), (6, 128)])
def test_every_batch_size_at_every_level(level: int, bits: int, group_size: int) -> None:
    """M = 1 to 9 rows (one pass of 2..8 rows and, past the level's pass, several), K an
    odd number of groups and N a partial last tile; each row is also the one-row result,
    bit for bit (integer dots are exact, and every row's floats are summed in one order)."""
    rng = np.random.default_rng(bits * 1000 + group_size)
    k, n = 3 * group_size, 21
    qw = aq.quantize(
        aq.astype(rng.standard_normal((n, k), dtype=np.float32), aq.bfloat16), group_size=group_size, bits=bits
    )
    x = rng.standard_normal((9, k)).astype(np.float32)
    x[2, group_size : 2 * group_size] *= 1e3  # rows of very different magnitudes side by side
    x[5, :group_size] = 0  # an all-zero group: scale 0
    alone = np.concatenate([_run(level, x[i : i + 1], qw) for i in range(len(x))])
    for m in range(1, len(x) + 1):
        y = _run(level, x[:m], qw)
        np.testing.assert_array_equal(y, alone[:m], err_msg=f"M={m}")
        _check(y, x[:m], qw, (bits, group_size, m))


@pytest.mark.parametrize("threads", [1, 2])
def test_tiles_run_in_pairs_over_any_range(level: int, threads: int) -> None:
    """The AVX-512 level runs two tiles of 8 weight rows at once (tile t beside t + h, h half
    the range a thread takes in one go, rounded up: an odd range's last tile alone). 363
    rows are 46 tiles: blocks of 32 and 14 on one thread, two parts of 23 (odd) on two.
    Each of M = 2..8 rows of x gives its one-row result (the one-tile body) bit for bit."""
    rng = np.random.default_rng(23)
    n, k = 8 * 45 + 3, 192  # a partly filled last tile; three groups of 64
    qw = aq.quantize(aq.astype(rng.standard_normal((n, k), dtype=np.float32), aq.bfloat16), group_size=64, bits=4)
    x = rng.standard_normal((8, k)).astype(np.float32)
    before = _native.num_threads()
    try:
        arrayq_numpy.set_num_threads(threads)
        alone = np.concatenate([_run(level, x[i : i + 1], qw) for i in range(len(x))])
        for m in range(2, len(x) + 1):
            y = _run(level, x[:m], qw)
            np.testing.assert_array_equal(y, alone[:m], err_msg=f"M={m}")
            _check(y, x[:m], qw, (threads, m))
    finally:
        arrayq_numpy.set_num_threads(before)


def test_the_frontend_takes_empty_and_strided_x_at_int8() -> None:
    """M = 0 gives an empty (0, N) result; a transposed or strided x, the result of its
    contiguous copy."""
    rng = np.random.default_rng(11)
    qw = aq.quantize(rng.standard_normal((40, 256), dtype=np.float32), group_size=64, bits=4)
    wide = rng.standard_normal((8, 512)).astype(np.float32)
    with arrayq_numpy.activations("int8"):
        empty = np.asarray(aq.linalg.quantized_matmul(np.zeros((0, 256), np.float32), qw))
        assert empty.shape == (0, 40) and empty.dtype == np.float32
        for x in (wide[:, ::2], np.asfortranarray(wide[:, :256]), wide[::2, 100:356]):
            assert not x.flags.c_contiguous
            got = np.asarray(aq.linalg.quantized_matmul(x, qw))
            want = np.asarray(aq.linalg.quantized_matmul(np.ascontiguousarray(x), qw))
            np.testing.assert_array_equal(got, want)
            if _native.level() is not None:
                _check(got, np.ascontiguousarray(x), qw, x.strides)


def _attention64(q: np.ndarray, k: np.ndarray, v: np.ndarray, scale: float) -> np.ndarray:
    rep = q.shape[1] // k.shape[1]
    k64, v64 = (np.repeat(a.astype(np.float64), rep, axis=1) for a in (k, v))
    s = np.einsum("bhld,bhsd->bhls", q.astype(np.float64), k64) * scale
    p = np.exp(s - s.max(-1, keepdims=True))
    return np.einsum("bhls,bhsd->bhld", p / p.sum(-1, keepdims=True), v64)


def test_batch_attention_is_each_sequence_alone(level: int) -> None:
    """A serving batch's shapes: 8 sequences of 1 to 300 keys, 16 query heads on 8
    key/value heads (qwen3's), in a padded cache holding NaN past each row's length. Each
    row equals the kernel on its sequence alone bit for bit, and the float64 reference
    within float32 rounding."""
    rng = np.random.default_rng(21)
    lengths = np.array([300, 1, 77, 150, 2, 299, 31, 64], np.int64)
    b, h, hkv, d, cap = len(lengths), 16, 8, 128, 320
    q = rng.standard_normal((b, h, 1, d)).astype(np.float32)
    k = np.full((b, hkv, cap, d), np.nan, np.float32)
    v = np.full((b, hkv, cap, d), np.nan, np.float32)
    for i, n in enumerate(lengths):
        k[i, :, :n] = rng.standard_normal((hkv, n, d))
        v[i, :, :n] = rng.standard_normal((hkv, n, d))
    span, kernels = int(lengths.max()), _native._kernels
    out = np.full((b, h, 1, d), np.nan, np.float32)
    kernels.attention(level, q, k[:, :, :span], v[:, :, :span], out, 0.09, False, lengths)
    for i, n in enumerate(lengths):
        alone = np.empty((1, h, 1, d), np.float32)
        kernels.attention(level, q[i : i + 1], k[i : i + 1, :, :n], v[i : i + 1, :, :n], alone, 0.09, False)
        np.testing.assert_array_equal(out[i : i + 1], alone, err_msg=f"row {i}")
        ref = _attention64(q[i : i + 1], k[i : i + 1, :, :n], v[i : i + 1, :, :n], 0.09)
        # float32 dot products over d and sums over the keys: a few hundred epsilons at most
        assert np.max(np.abs(alone - ref)) <= 2e-6 * max(1.0, float(np.max(np.abs(ref))))


def test_remembered_key_lengths_follow_the_mask_bytes() -> None:
    """KeyLengths (the backend's attention reads a padding mask's key counts through it)
    answers as key_lengths, whose expectations are the lengths the mask was made from:
    for a new mask, for an equal one (another object: the remembered answer), for the same
    object written in place (new bytes: checked anew, including into a mask that is not a
    padding mask, None), and for another shape."""
    from arrayq import nn

    remember = _native.KeyLengths()
    mask = np.asarray(nn.padding_mask(lengths=[3, 1, 5], length=5, dtype="float32"))
    assert remember(mask, 3, 5).tolist() == [3, 1, 5]
    again = remember(mask.copy(), 3, 5)
    assert again.tolist() == [3, 1, 5] and not again.flags.writeable
    mask[1, 0, 0, 1] = 0.0  # row 1 now sees 2 keys
    assert remember(mask, 3, 5).tolist() == [3, 2, 5]
    mask[0, 0, 0, 0] = np.finfo(np.float32).min  # a hole before row 0's last key: not padding
    assert remember(mask, 3, 5) is None
    other = np.asarray(nn.padding_mask(lengths=[2, 4], length=4, dtype="float32"))
    assert remember(other, 2, 4).tolist() == [2, 4]
    assert remember(mask.tolist(), 3, 5) is None  # not an array
