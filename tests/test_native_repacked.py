"""The NumPy backend's repacked 8-bit-activation decode kernel (csrc/repack.c,
csrc/repacked_simd.inc) at every SIMD level this machine runs, against independent
expectations computed in float64 from arrayq's own dequantization:

* its emulation: x rounded as the kernel documents (per group, scale max|x_g| / 127 in
  float32, codes rounded half to even), exact integer dot products, float64 sums. The
  kernel sums in float32 in another order, so the bound is the float32 one of the other
  kernel tests, ``2**-16 * (|x| @ |W|.T)``;
* the exact product x @ W.T, within the error int8 activations can cause: each x_i moves
  by at most half a code step, ``max|x_g| / 254``, so
  ``|y - x @ W.T| <= sum_g (max|x_g| / 254) * sum_{i in g} |w_i|`` plus the float32 bound.
  That is the precision of 8-bit activations (about 0.5% relative error for Gaussian data,
  measured below), not float32's; the float32 path stays exact (test_native_kernels.py).
"""

from __future__ import annotations

import gc
import mmap

import numpy as np
import pytest

import arrayq as aq
import arrayq_numpy
from arrayq_numpy import _native

pytestmark = pytest.mark.skipif(
    _native._kernels is None, reason="the native kernels were not built (no C compiler at install time)"
)

BITS = (1, 2, 3, 4, 5, 6, 8)
GROUPS = (32, 64, 128)
F32_RTOL = 2.0**-16  # float32 accumulation in another order (see test_native_kernels.py)


@pytest.fixture(params=_native.levels() or ["none"])
def level(request: pytest.FixtureRequest) -> int:
    return _native.levels().index(request.param)


def _codes(qw: aq.QuantizedWeight) -> np.ndarray:
    """The weight's codes as float64, through arrayq's dequantize (scale 1, bias 0)."""
    ones = aq.QuantizedWeight(qw.packed, np.ones_like(qw.scales), np.zeros_like(qw.biases), qw.group_size, qw.bits)
    return np.asarray(aq.dequantize(ones, dtype=aq.float32)).astype(np.float64)


def _dense(qw: aq.QuantizedWeight) -> np.ndarray:
    n, k = qw.packed.shape[0], qw.packed.shape[1] * 32 // qw.bits
    s = np.asarray(qw.scales).astype(np.float64)[..., None]
    b = np.asarray(qw.biases).astype(np.float64)[..., None]
    return (_codes(qw).reshape(n, -1, qw.group_size) * s + b).reshape(n, k)


def _rounded_x(x: np.ndarray, group_size: int) -> np.ndarray:
    """x as the kernel rounds it, dequantized (float64): dx * round_half_even(x / dx)."""
    xg = x.reshape(x.shape[0], -1, group_size)
    amax = np.abs(xg).max(-1, keepdims=True)
    dx = amax / np.float32(127)
    inv = np.where(amax > 0, np.float32(127) / np.where(amax > 0, amax, 1), 0).astype(np.float32)
    return (np.rint(xg * inv).astype(np.float64) * dx.astype(np.float64)).reshape(x.shape)


def _int8_bound(x: np.ndarray, dense: np.ndarray, group_size: int) -> np.ndarray:
    """Largest |y - x @ W.T| that rounding x to 8 bits per group can cause (+ float32)."""
    m, n = x.shape[0], dense.shape[0]
    half_step = np.abs(x.astype(np.float64)).reshape(m, -1, group_size).max(-1) / 254  # (m, G)
    wsum = np.abs(dense).reshape(n, -1, group_size).sum(-1)  # (n, G)
    return half_step @ wsum.T + F32_RTOL * (np.abs(x).astype(np.float64) @ np.abs(dense).T)


def _run(level: int, x: np.ndarray, qw: aq.QuantizedWeight) -> tuple[np.ndarray, int]:
    """The repacked kernel at an explicit level; also returns the repacked size."""
    data, kind, symmetric = _native.repack(qw.packed, qw.scales, qw.biases, qw.group_size, qw.bits, level)
    m, k = x.shape
    n = qw.packed.shape[0]
    out = np.full((m, n), np.nan, np.float32)
    _native._kernels.gemv_repacked(level, x, data, out, m, n, k, qw.group_size, qw.bits, kind, symmetric)
    return out, data.nbytes


def _check(y: np.ndarray, x: np.ndarray, qw: aq.QuantizedWeight, what: object) -> None:
    dense = _dense(qw)
    emulated = _rounded_x(x, qw.group_size) @ dense.T
    bound = F32_RTOL * (np.abs(x).astype(np.float64) @ np.abs(dense).T) + 1e-30
    assert np.all(np.abs(y - emulated) <= bound), ("emulation", what)
    exact = x.astype(np.float64) @ dense.T
    assert np.all(np.abs(y - exact) <= _int8_bound(x, dense, qw.group_size) + 1e-30), ("exact", what)


@pytest.mark.parametrize("bits", BITS)
def test_every_format_at_every_level(level: int, bits: int) -> None:
    rng = np.random.default_rng(100 + bits)
    for group_size in GROUPS:
        for scale_dtype in ("float32", "float16", "bfloat16"):
            # 29 rows: a last tile only partly filled at every level (8 or 4 rows a tile)
            w = rng.standard_normal((29, 3 * group_size)).astype(np.float32)
            qw = aq.quantize(aq.astype(w, getattr(aq, scale_dtype)), group_size=group_size, bits=bits)
            for m in (1, 3, 6, 33):  # 33 rows of x: several passes of the kernel (4 or 8 rows each)
                x = rng.standard_normal((m, 3 * group_size)).astype(np.float32)
                x[0, :group_size] = 0  # an all-zero group: scale 0, codes 0
                x[-1, group_size : 2 * group_size] *= 1000  # one group of a far larger magnitude
                y, _ = _run(level, x, qw)
                _check(y, x, qw, (bits, group_size, scale_dtype, m))
                if m == 3:  # one row of x alone takes the M = 1 body: the same floats as in a pass of 3
                    alone, _ = _run(level, x[1:2], qw)
                    np.testing.assert_array_equal(alone, y[1:2], err_msg=str((bits, group_size, scale_dtype)))


@pytest.mark.parametrize("bits", [4, 8])  # (8 bits: codes stored signed on AVX2)
def test_rows_do_not_depend_on_m(level: int, bits: int) -> None:
    """Each row of x gets the same result, bit for bit, alone and among M = 2 to 12 rows
    (one pass of the kernel, or several of 4 or 8 rows): a serving batch's greedy tokens
    are each request's alone."""
    rng = np.random.default_rng(9)
    qw = aq.quantize(rng.standard_normal((37, 256)).astype(np.float32), group_size=64, bits=bits)
    x = rng.standard_normal((12, 256)).astype(np.float32)
    alone = np.concatenate([_run(level, x[i : i + 1], qw)[0] for i in range(len(x))])
    for m in range(2, len(x) + 1):
        np.testing.assert_array_equal(_run(level, x[:m], qw)[0], alone[:m])


def _symmetric_weight(rng: np.random.Generator, n: int, k: int, bits: int, f16: bool = True) -> aq.QuantizedWeight:
    """GGUF's Q4_0 (bits 4) or Q8_0 (bits 8) as the GGUF reader gives them: group 32,
    float32 scales (float16 values unless f16 is False), biases -2**(bits-1) * scale."""
    zero = 1 << (bits - 1)
    g = rng.standard_normal((n, k // 32, 32))
    d = (np.abs(g).max(-1) / (zero - 1)).astype(np.float32)
    if f16:
        d = d.astype(np.float16).astype(np.float32)
    codes = np.clip(np.rint(g / d[..., None]) + zero, 0, 2 * zero - 1).astype(np.uint32).reshape(n, -1, 32 // bits)
    packed = (codes << (bits * np.arange(32 // bits, dtype=np.uint32))).sum(-1, dtype=np.uint32)
    return aq.QuantizedWeight(packed, d, d * np.float32(-zero), 32, bits)


@pytest.mark.parametrize("bits", (4, 8))
def test_symmetric_weights_read_as_many_bytes_as_gguf_blocks(level: int, bits: int) -> None:
    rng = np.random.default_rng(7 + bits)
    n, k = 37, 256
    tile = 4 if _native.levels()[level] == "portable" else 8  # rows a tile: one per 32-bit lane
    rows = -(-n // tile) * tile
    block = 2 + 32 * bits // 8  # llama.cpp's Q4_0 / Q8_0 block: float16 scale + codes
    for f16, scale_bytes in ((True, 2), (False, 4)):
        qw = _symmetric_weight(rng, n, k, bits, f16)
        for m in (1, 2):  # decode's body and the general one
            x = rng.standard_normal((m, k)).astype(np.float32)
            y, nbytes = _run(level, x, qw)
            assert nbytes == rows * (k // 32) * (block - 2 + scale_bytes)  # no biases stored
            _check(y, x, qw, (bits, f16, m))


def test_results_do_not_depend_on_the_thread_count() -> None:
    rng = np.random.default_rng(3)
    qw = aq.quantize(rng.standard_normal((1000, 512), dtype=np.float32), group_size=64, bits=4)
    before = _native.num_threads()
    for m in (1, 2):
        x = rng.standard_normal((m, 512)).astype(np.float32)
        try:
            arrayq_numpy.set_num_threads(1)
            one, _ = _run(0, x, qw)
            arrayq_numpy.set_num_threads(2)
            two, _ = _run(0, x, qw)
        finally:
            arrayq_numpy.set_num_threads(before)
        np.testing.assert_array_equal(one, two)


def test_x_rounds_half_to_even_and_a_non_finite_x_gives_non_finite_rows(level: int) -> None:
    """The quantization of x (vectorized in C): with max|x_g| = 127 the code step is exactly
    1, so x / dx = x and halves are ties, which round to even (hand-written codes below; half
    away from zero would move each tie by a whole code). A NaN or an infinity in x makes
    every output of its row non-finite, as float32 arithmetic would."""
    rng = np.random.default_rng(13)
    qw = aq.quantize(rng.standard_normal((16, 64), dtype=np.float32), group_size=64, bits=4)
    ties = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5]
    x = np.array([[127.0, *ties * 9]], np.float32)
    codes = np.array([127.0, *[0, 2, 2, 0, -2, -2, 4] * 9])  # round half to even, by hand
    dense = _dense(qw)
    y, _ = _run(level, x, qw)
    expected = codes @ dense.T  # dx = 127 / 127 = 1
    assert np.all(np.abs(y[0] - expected) <= F32_RTOL * (np.abs(codes) @ np.abs(dense).T))
    for bad in (np.nan, np.inf, -np.inf):
        xb = rng.standard_normal((1, 64)).astype(np.float32)
        xb[0, 5] = bad
        y, _ = _run(level, xb, qw)
        assert not np.isfinite(y).any(), bad


def test_the_kernel_reports_whether_x_is_finite(level: int) -> None:
    """gemv_repacked returns True for finite x and False where any element of any row is
    NaN or +-inf (the replay form and the method send such x to the unfactored path), in
    the first and last column of each group; a finite x near float32's largest value is
    finite (its square is not, which the form's check was once about)."""
    rng = np.random.default_rng(17)
    qw = aq.quantize(rng.standard_normal((16, 128), dtype=np.float32), group_size=64, bits=4)
    data, kind, symmetric = _native.repack(qw.packed, qw.scales, qw.biases, 64, 4, level)

    def finite(x: np.ndarray) -> object:
        out = np.empty((x.shape[0], 16), np.float32)
        return _native._kernels.gemv_repacked(level, x, data, out, x.shape[0], 16, 128, 64, 4, kind, symmetric)

    x = rng.standard_normal((3, 128)).astype(np.float32)
    assert finite(x) is True and finite(x[:1]) is True
    big = x.copy()
    big[1, 70] = 3e38
    assert finite(big) is True
    for bad in (np.nan, np.inf, -np.inf):
        for row in range(3):
            for col in (0, 63, 64, 127):
                xb = x.copy()
                xb[row, col] = bad
                assert finite(xb) is False, (bad, row, col)
                assert finite(np.ascontiguousarray(xb[row : row + 1])) is False, (bad, row, col)


def test_int8_decode_through_the_frontend_keeps_one_copy_per_weight() -> None:
    backend = aq.get_backend("numpy")
    rng = np.random.default_rng(4)
    qw = aq.quantize(rng.standard_normal((64, 256), dtype=np.float32), group_size=64, bits=4)
    x = rng.standard_normal((1, 256)).astype(np.float32)
    backend.repacked.clear()
    aq.linalg.quantized_matmul(x, qw)
    prefill32 = np.asarray(aq.linalg.quantized_matmul(np.repeat(x, 9, axis=0), qw))
    assert backend.repacked.nbytes() == 0  # float32 activations: no copy
    with arrayq_numpy.activations("int8"):
        y8 = np.asarray(aq.linalg.quantized_matmul(x, qw))
        size = backend.repacked.nbytes()
        again = np.asarray(aq.linalg.quantized_matmul(x, qw))
        assert backend.repacked.nbytes() == size > 0  # the same copy, not a second one
        x9 = np.concatenate([x, rng.standard_normal((8, 256)).astype(np.float32)])
        prefill = np.asarray(aq.linalg.quantized_matmul(x9, qw))  # 9 rows: three passes, the same copy
        assert backend.repacked.nbytes() == size
    np.testing.assert_array_equal(y8, again)
    np.testing.assert_array_equal(prefill[:1], y8)  # a row's result does not depend on the others
    assert not np.array_equal(prefill, prefill32)  # not the float32 path
    _check(prefill, x9, qw, "prefill")
    if _native.level() is not None:
        expected, _ = _run(_native.levels().index(_native.level()), x, qw)
        np.testing.assert_array_equal(y8, expected)
        _check(y8, x, qw, "frontend")
    del qw
    gc.collect()
    assert backend.repacked.nbytes() == 0  # dropped with its weight


@pytest.mark.skipif(not hasattr(mmap, "MADV_HUGEPAGE"), reason="huge-page maps: Linux only")
def test_the_arena_hands_out_copies_one_after_another_and_unmaps_with_them() -> None:
    arena = _native.HugePageArena()
    a, b = arena.take(1000), arena.take(5000)
    assert a.ctypes.data % 64 == 0 and a.flags.writeable and (a.nbytes, b.nbytes) == (1000, 5000)
    assert b.ctypes.data == a.ctypes.data + 1024  # the next 64-byte boundary in the same map
    big = arena.take(arena.CHUNK + 1)  # larger than a chunk: a map of its own
    c = arena.take(10)
    assert big.nbytes == arena.CHUNK + 1 and c.ctypes.data == a.ctypes.data + 6080  # 1024 + 5000, aligned
    a[:], b[:], c[:], big[-1] = 1, 2, 3, 4  # all writable, none overlapping
    assert (a == 1).all() and (b == 2).all() and (c == 3).all()
    del a, b, c
    gc.collect()
    assert arena._region is not None and arena._region() is None  # no copy left: the map is gone
    d = arena.take(10)  # a fresh map
    assert d.nbytes == 10


def test_int8_costs_about_half_a_percent_on_gaussian_data() -> None:
    rng = np.random.default_rng(5)
    qw = aq.quantize(rng.standard_normal((512, 1024), dtype=np.float32), group_size=64, bits=4)
    x = rng.standard_normal((1, 1024)).astype(np.float32)
    exact = x.astype(np.float64) @ _dense(qw).T
    y, _ = _run(0, x, qw)
    rel = np.linalg.norm(y - exact) / np.linalg.norm(exact)
    assert 1e-3 < rel < 1e-2  # measured ~0.5%; float32 activations give ~1e-7


def test_the_kernel_checks_its_buffers() -> None:
    k = _native._kernels
    rng = np.random.default_rng(6)
    qw = aq.quantize(rng.standard_normal((16, 64), dtype=np.float32), group_size=32, bits=4)
    data, kind, sym = _native.repack(qw.packed, qw.scales, qw.biases, 32, 4, 0)
    x = np.zeros((1, 64), np.float32)
    out = np.zeros((1, 16), np.float32)
    with pytest.raises(ValueError, match="data holds"):
        k.gemv_repacked(0, x, data[:-1], out, 1, 16, 64, 32, 4, kind, sym)
    with pytest.raises(ValueError, match="out holds"):
        k.gemv_repacked(0, x, data, out[:, :-1], 1, 16, 64, 32, 4, kind, sym)
    with pytest.raises(ValueError, match="rows of x"):
        k.gemv_repacked(0, x, data, out, 0, 16, 64, 32, 4, kind, sym)
    with pytest.raises(ValueError, match="x holds"):
        k.gemv_repacked(0, x, data, np.zeros((2, 16), np.float32), 2, 16, 64, 32, 4, kind, sym)
    with pytest.raises(ValueError, match="unsupported format"):
        k.repacked_size(0, 16, 64, 48, 4, kind, sym)
    with pytest.raises(ValueError, match="overflow"):
        k.repacked_size(0, 2**62, 2**20, 32, 8, 0, False)
    with pytest.raises(ValueError, match="out holds"):
        k.repack(0, qw.packed, qw.scales, qw.biases, np.zeros(data.nbytes - 1, np.uint8), 16, 64, 32, 4, 0, False)
