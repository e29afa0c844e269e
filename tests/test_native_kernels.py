"""The NumPy backend's native kernels (backends/arrayq_numpy/csrc/) against independent
expectations: the weight dequantized by arrayq's reference formats and multiplied in
float64, for every SIMD level this machine runs, every bit width, group size and scale
dtype, decode (fused kernel) and prefill (dequantize + BLAS) row counts, odd shapes and
non-contiguous x; the 8-bit-activation mode against a float64 emulation of its rounding;
and the thread pool (thread counts, threads calling at once, fork), settings and errors.

Tolerances: the kernels accumulate in float32 in another order than the reference, so a
result may differ from the float64 product by a few float32 roundings of the summed
magnitudes: ``|y - ref| <= 2**-16 * (|x| @ |W|.T)`` (about 500 float32 epsilons of the
sum of |products|, far above the ~sqrt(K) epsilons seen, far below any real mistake: a
wrong code, scale or column moves the result by a whole product).
"""

from __future__ import annotations

import multiprocessing
import os
import threading

import numpy as np
import pytest

import arrayq as aq
from arrayq_numpy import _native
from arrayq_numpy._fastpath import affine_matmul

pytestmark = pytest.mark.skipif(
    _native._kernels is None, reason="the native kernels were not built (no C compiler at install time)"
)

BITS = (1, 2, 3, 4, 5, 6, 8)  # every width of MLX's affine format
GROUPS = (32, 64, 128)
SCALE_DTYPES = ("float32", "float16", "bfloat16")
F32_RTOL = 2.0**-16


def _kernels():
    assert _native._kernels is not None
    return _native._kernels


def _weight(rng: np.random.Generator, n: int, k: int, bits: int, group_size: int, scale_dtype: str):
    """A quantized weight (arrayq's own format, bit-exact with MLX) and its float64 value."""
    w = rng.standard_normal((n, k)).astype(np.float32)
    qw = aq.quantize(aq.astype(w, getattr(aq, scale_dtype)), group_size=group_size, bits=bits)
    scales = np.asarray(qw.scales).astype(np.float64)
    biases = np.asarray(qw.biases).astype(np.float64)
    ones = aq.QuantizedWeight(qw.packed, np.ones_like(qw.scales), np.zeros_like(qw.biases), group_size, bits)
    codes = np.asarray(aq.dequantize(ones, dtype=aq.float32)).astype(np.float64)  # exact small integers
    dense = (codes.reshape(n, -1, group_size) * scales[..., None] + biases[..., None]).reshape(n, k)
    return qw, dense, codes


def _expand(per_group: object, group_size: int) -> np.ndarray:
    """(N, G) scales or biases as (N, G * group_size) float64, one value per weight."""
    return np.repeat(np.asarray(per_group).astype(np.float64), group_size, axis=1)


def _close(y: np.ndarray, x: np.ndarray, dense: np.ndarray) -> None:
    x64 = x.astype(np.float64)
    ref = x64 @ dense.T
    bound = F32_RTOL * (np.abs(x64) @ np.abs(dense).T) + 1e-30
    worst = float(np.max(np.abs(y - ref) / bound))
    assert worst <= 1.0, f"error {worst:.2f}x the float32 bound"


def _call(level: int, x: np.ndarray, qw, int8: bool = False) -> np.ndarray:
    """The decode kernel at an explicit level."""
    s, kind = _native._scale_view(np.asarray(qw.scales))
    b, _ = _native._scale_view(np.asarray(qw.biases))
    m, k = x.shape
    n = qw.packed.shape[0]
    out = np.full((m, n), np.nan, np.float32)
    _kernels().gemv(level, np.ascontiguousarray(x), qw.packed, s, b, out, m, n, k, qw.group_size, qw.bits, kind, int8)
    return out


@pytest.fixture(params=_native.levels() or ["none"])
def level(request: pytest.FixtureRequest) -> int:
    return _native.levels().index(request.param)


@pytest.mark.parametrize("bits", BITS)
def test_decode_kernel_every_format_at_every_level(level: int, bits: int) -> None:
    rng = np.random.default_rng(bits)
    for group_size in GROUPS:
        for scale_dtype in SCALE_DTYPES:
            qw, dense, _ = _weight(rng, 37, 3 * group_size, bits, group_size, scale_dtype)
            for m in (1, 3, 5, _kernels().MAX_ROWS):  # (5 and 8: passes of 4 rows)
                x = rng.standard_normal((m, 3 * group_size)).astype(np.float32)
                _close(_call(level, x, qw), x, dense)


@pytest.mark.parametrize("int8", [False, True])
def test_decode_kernel_rows_do_not_depend_on_m(level: int, int8: bool) -> None:
    """Each row of x gets the same result, bit for bit, alone (M = 1) and among M = 2 to 8
    rows (one pass, or passes of 4 rows over blocks of weight rows): what makes a serving
    batch's greedy tokens those of each request alone. 45 weight rows: blocks of 16 and a
    partial one."""
    rng = np.random.default_rng(8)
    for bits in (4, 3):
        qw, _, _ = _weight(rng, 45, 256, bits, 64, "float16")
        x = rng.standard_normal((_kernels().MAX_ROWS, 256)).astype(np.float32)
        alone = np.concatenate([_call(level, x[i : i + 1], qw, int8) for i in range(len(x))])
        for m in range(2, len(x) + 1):
            np.testing.assert_array_equal(_call(level, x[:m], qw, int8), alone[:m])


@pytest.mark.parametrize("bits", BITS)
def test_dequantize_kernel_every_format_at_every_level(level: int, bits: int) -> None:
    """Rows of W in the kernel's column order; the column order puts them back."""
    rng = np.random.default_rng(10 + bits)
    for group_size in GROUPS:
        for scale_dtype in SCALE_DTYPES:
            qw, dense, codes = _weight(rng, 21, 2 * group_size, bits, group_size, scale_dtype)
            s, kind = _native._scale_view(np.asarray(qw.scales))
            b, _ = _native._scale_view(np.asarray(qw.biases))
            k = 2 * group_size
            out = np.full((9, k), np.nan, np.float32)
            _kernels().dequantize(level, qw.packed, s, b, out, 5, 9, k, group_size, bits, kind)
            order = _native._column_order(level, k, group_size, bits)
            # each weight is s * q + b in float32: at most one rounding of the product and
            # one of the sum, each at most half an epsilon of |s * q| + |b|
            magnitude = np.abs(dense - _expand(qw.biases, group_size)) + np.abs(_expand(qw.biases, group_size))
            assert np.all(np.abs(out[:, np.argsort(order)] - dense[5:14]) <= 2**-23 * magnitude[5:14])


def test_frontend_uses_the_kernels_for_decode_and_prefill() -> None:
    """Through arrayq.linalg.quantized_matmul: M from 1 to above the decode limit, x of
    rank 1 to 3, float32/float16/bfloat16 x, non-contiguous x; the pure-NumPy path (kernels
    off) gives the same within float32 rounding."""
    assert _native.supports(np.zeros((1, 64), np.float32), np.zeros((4, 8), np.uint32), True, 64)
    rng = np.random.default_rng(7)
    qw, dense, _ = _weight(rng, 45, 256, 4, 64, "bfloat16")
    wide = rng.standard_normal((3, 19, 512)).astype(np.float32)
    for x in (wide[0, 0, ::2], wide[0, :5, ::2], wide[:, :, ::2], wide[0, :, 256:], wide[0].T[:256].T):
        y = np.asarray(aq.linalg.quantized_matmul(x, qw))
        assert y.shape == (*x.shape[:-1], 45) and y.dtype == np.float32
        _close(y.reshape(-1, 45), x.reshape(-1, 256), dense)
        pure = affine_matmul(x.reshape(-1, 256), qw.packed, qw.scales, qw.biases, True, 64, 4)
        _close(pure, x.reshape(-1, 256), dense)
    for dtype in (aq.float16, aq.bfloat16):
        x = aq.astype(wide[0, :4, :256], dtype)
        y = aq.linalg.quantized_matmul(x, qw)
        assert aq.dtype(y) == dtype
        ref = np.asarray(x).astype(np.float64) @ dense.T
        np.testing.assert_allclose(np.asarray(y).astype(np.float64), ref, rtol=2**-7, atol=2**-7 * np.abs(ref).max())


def _int8_emulation(x: np.ndarray, codes: np.ndarray, qw, group_size: int) -> np.ndarray:
    """What the 8-bit-activation kernel computes, in float64: x rounded per group to
    int8 codes (half to even) with scale max|x_g| / 127 in float32, exact integer dots."""
    m, k = x.shape
    xg = x.reshape(m, -1, group_size)
    amax = np.abs(xg).max(-1, keepdims=True)
    dx = amax / np.float32(127)
    inv = np.where(amax > 0, np.float32(127) / np.where(amax > 0, amax, 1), 0).astype(np.float32)
    xi = np.rint(xg * inv).astype(np.float64)
    scales = np.asarray(qw.scales).astype(np.float64)
    biases = np.asarray(qw.biases).astype(np.float64)
    dots = np.einsum("ngk,mgk->mng", codes.reshape(codes.shape[0], -1, group_size), xi)
    return (dots * dx[..., 0][:, None, :] * scales).sum(-1) + (xi.sum(-1) * dx[..., 0]) @ biases.T


@pytest.mark.parametrize("bits", BITS)
def test_int8_activations_match_their_emulation(level: int, bits: int) -> None:
    rng = np.random.default_rng(20 + bits)
    name = _native.levels()[level]
    for group_size in GROUPS:
        qw, dense, codes = _weight(rng, 29, 2 * group_size, bits, group_size, "bfloat16")
        for m in (1, 4):
            x = rng.standard_normal((m, 2 * group_size)).astype(np.float32)
            x[0, :group_size] = 0  # an all-zero group: scale 0, codes 0
            y = _call(level, x, qw, int8=True)
            if not _kernels().int8_runs(level, bits, group_size):
                assert name == "avx2" and bits > 6, (name, bits, group_size)
                np.testing.assert_array_equal(y, _call(level, x, qw))  # float32 instead
                continue
            ref = _int8_emulation(x, codes, qw, group_size)
            bound = F32_RTOL * (np.abs(x).astype(np.float64) @ np.abs(dense).T) + 1e-30
            assert np.all(np.abs(y - ref) <= bound), (name, bits, group_size, m)


def test_int8_activations_cost_about_half_a_percent() -> None:
    """The documented accuracy of the opt-in mode (Gaussian weights and activations)."""
    rng = np.random.default_rng(3)
    qw, dense, _ = _weight(rng, 256, 2048, 4, 64, "bfloat16")
    x = rng.standard_normal((1, 2048)).astype(np.float32)
    with _native.activations("int8"):
        assert _native.current_activations() == "int8"
        y8 = np.asarray(aq.linalg.quantized_matmul(x, qw))
    assert _native.current_activations() == _native._default_activations()
    ref = x.astype(np.float64) @ dense.T
    err = np.linalg.norm(y8 - ref) / np.linalg.norm(ref)
    assert 1e-4 < err < 0.01, err  # not float32-exact, but well under 1%


def test_activation_mode_is_checked_and_scoped() -> None:
    with pytest.raises(ValueError, match="activations must be one of"):
        with _native.activations("int4"):
            pass
    seen = []
    with _native.activations("int8"):
        t = threading.Thread(target=lambda: seen.append(_native.current_activations()))
        t.start()
        t.join()
    assert seen == [_native._default_activations()]  # another thread keeps its own setting


def test_results_do_not_depend_on_the_thread_count() -> None:
    rng = np.random.default_rng(5)
    qw, _, _ = _weight(rng, 301, 512, 4, 64, "bfloat16")
    x1 = rng.standard_normal((1, 512)).astype(np.float32)
    x40 = rng.standard_normal((40, 512)).astype(np.float32)
    before = _native.num_threads()
    try:
        results = []
        for threads in (1, 2, 3, 5):
            _native.set_num_threads(threads)
            assert _native.num_threads() == threads
            results.append([np.asarray(aq.linalg.quantized_matmul(x, qw)) for x in (x1, x40)])
        for got in results[1:]:
            for a, b in zip(got, results[0]):
                np.testing.assert_array_equal(a, b)  # rows are split, never a row's sum
    finally:
        _native.set_num_threads(0 if "ARRAYQ_NUM_THREADS" not in os.environ else before)


def test_threads_calling_at_once_get_their_own_results() -> None:
    rng = np.random.default_rng(6)
    qw, dense, _ = _weight(rng, 515, 256, 4, 64, "float32")
    xs = [rng.standard_normal((m, 256)).astype(np.float32) for m in (1, 2, 8, 12, 1, 3)]
    expected = [np.asarray(aq.linalg.quantized_matmul(x, qw)) for x in xs]
    got: dict[int, list[np.ndarray]] = {}

    def work(i: int) -> None:
        got[i] = [np.asarray(aq.linalg.quantized_matmul(xs[i], qw)) for _ in range(20)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, runs in got.items():
        for y in runs:
            np.testing.assert_array_equal(y, expected[i])


def _child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    rng = np.random.default_rng(8)
    qw, dense, _ = _weight(rng, 300, 256, 4, 64, "float32")
    x = rng.standard_normal((1, 256)).astype(np.float32)
    y = np.asarray(aq.linalg.quantized_matmul(x, qw))
    queue.put(float(np.max(np.abs(y - x.astype(np.float64) @ dense.T))))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_its_own_pool() -> None:
    rng = np.random.default_rng(8)
    qw, _, _ = _weight(rng, 300, 256, 4, 64, "float32")
    aq.linalg.quantized_matmul(rng.standard_normal((1, 256)).astype(np.float32), qw)  # the pool runs
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) < 1e-3


def test_the_pool_probe_reads_every_word_once() -> None:
    """pool_probe (the benchmark's bandwidth probe) XORs a buffer's whole 64-bit words on the
    pool: the same as NumPy's XOR of them at every thread and part count (a word read twice
    or skipped changes it); empty gives 0; a buffer not 8-byte aligned is refused."""
    k = _kernels()
    rng = np.random.default_rng(14)
    words = rng.integers(0, 2**63, size=100_003, dtype=np.uint64)
    expected = int(np.bitwise_xor.reduce(words))
    before = _native.num_threads()
    try:
        for threads in (1, 2, 3):
            _native.set_num_threads(threads)
            for parts in (1, 2, 7, 1 << 30):
                assert k.pool_probe(words, parts) == expected, (threads, parts)
    finally:
        _native.set_num_threads(before)
    assert k.pool_probe(words[:0], 8) == 0
    raw = np.zeros(8 * 17, np.uint8)
    with pytest.raises(ValueError, match="aligned"):
        k.pool_probe(raw[1:129], 4)


def test_the_kernels_check_their_buffers() -> None:
    k = _kernels()
    x = np.zeros((1, 64), np.float32)
    packed = np.zeros((4, 8), np.uint32)
    s = np.ones((4, 1), np.float32)
    out = np.zeros((1, 4), np.float32)
    with pytest.raises(ValueError, match="packed holds"):
        k.gemv(0, x, packed[:2], s, s, out, 1, 4, 64, 64, 4, 0)
    with pytest.raises(ValueError, match="out holds"):
        k.gemv(0, x, packed, s, s, out[:, :2], 1, 4, 64, 64, 4, 0)
    with pytest.raises(ValueError, match="rows of x"):
        k.gemv(0, np.zeros((9, 64), np.float32), packed, s, s, np.zeros((9, 4), np.float32), 9, 4, 64, 64, 4, 0)
    with pytest.raises(ValueError, match="unsupported format"):
        k.gemv(0, x, packed, s, s, out, 1, 4, 64, 64, 9, 0)
    with pytest.raises(ValueError, match="level index"):
        k.gemv(99, x, packed, s, s, out, 1, 4, 64, 64, 4, 0)
    with pytest.raises(ValueError, match="threads must be"):
        _native.set_num_threads(-1)


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    def chosen() -> str | None:
        _native._chosen_level.cache_clear()
        return _native.level()

    try:
        monkeypatch.setenv("ARRAYQ_NATIVE", "off")
        assert chosen() is None
        assert "turned off by ARRAYQ_NATIVE" in _native.status()
        assert not _native.supports(np.zeros((1, 64), np.float32), np.zeros((4, 8), np.uint32), True, 64)
        monkeypatch.setenv("ARRAYQ_NATIVE", _native.levels()[-1])
        assert chosen() == _native.levels()[-1]
        monkeypatch.setenv("ARRAYQ_NATIVE", "avx9000")
        with pytest.raises(ValueError, match="ARRAYQ_NATIVE='avx9000'"):
            chosen()
        monkeypatch.setenv("ARRAYQ_NATIVE", "auto")
        monkeypatch.setenv("ARRAYQ_NUM_THREADS", "two")
        with pytest.raises(ValueError, match="ARRAYQ_NUM_THREADS"):
            chosen()
    finally:
        monkeypatch.undo()
        _native._chosen_level.cache_clear()
    assert _native.level() == _native.levels()[0]


def test_sizes_that_overflow_and_misaligned_buffers_raise() -> None:
    k = _kernels()
    x = np.zeros((1, 32), np.float32)
    packed = np.zeros((8,), np.uint32)
    s = np.ones((1,), np.float32)
    out = np.zeros((1,), np.float32)
    with pytest.raises(ValueError, match="overflow"):
        k.gemv(0, x, packed, s, s, out, 1, 2**61, 32, 32, 8, 0)
    with pytest.raises(ValueError, match="overflow"):
        k.dequantize(0, packed, s, s, np.zeros(32, np.float32), 2**61 - 1, 1, 32, 32, 8, 0)
    with pytest.raises(ValueError, match="overflow"):
        k.slot_order(0, 2**61, 32, 4)
    raw = np.zeros(4 * 32 + 1, np.uint8)
    shifted = raw[1:].view(np.float32).reshape(1, 32)  # one byte off float alignment
    with pytest.raises(ValueError, match="not aligned"):
        k.gemv(0, shifted, np.zeros((1, 4), np.uint32), s, s, out, 1, 1, 32, 32, 4, 0)


def test_misaligned_x_through_the_frontend_is_copied() -> None:
    rng = np.random.default_rng(11)
    qw, dense, _ = _weight(rng, 16, 64, 4, 64, "float32")
    values = rng.standard_normal(64).astype(np.float32)
    raw = np.zeros(4 * 64 + 1, np.uint8)
    x = raw[1:].view(np.float32).reshape(1, 64)
    x[...] = values
    assert not x.flags.aligned
    _close(np.asarray(aq.linalg.quantized_matmul(x, qw)), values.reshape(1, 64), dense)


def test_nan_in_x_gives_nan_with_int8_activations_too() -> None:
    rng = np.random.default_rng(12)
    qw, _, _ = _weight(rng, 24, 128, 4, 64, "bfloat16")
    x = rng.standard_normal((2, 128)).astype(np.float32)
    x[0, 5] = np.nan
    for mode in ("float32", "int8"):
        with _native.activations(mode):
            y = np.asarray(aq.linalg.quantized_matmul(x, qw))
        assert np.isnan(y[0]).all() and np.isfinite(y[1]).all(), mode


def test_set_num_threads_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARRAYQ_NUM_THREADS", "1")
    monkeypatch.setattr(_native, "_threads_set_by_call", False)
    try:
        _native._chosen_level.cache_clear()
        _native.set_num_threads(3)
        assert _native.num_threads() == 3  # the first use does not bring back the variable's 1
    finally:
        monkeypatch.undo()
        _native._chosen_level.cache_clear()
        _native.set_num_threads(0)
        _native._threads_set_by_call = False


# ---------------------------------------------------------------------- attention (decode)


def _attention64(q, k, v, scale: float, causal: bool) -> np.ndarray:
    """softmax(scale * q k^T [+ causal]) v in float64, kv heads repeated for the groups."""
    rep = q.shape[1] // k.shape[1]
    k64, v64 = (np.repeat(np.asarray(a, np.float64), rep, axis=1) for a in (k, v))
    scores = np.einsum("bhld,bhsd->bhls", np.asarray(q, np.float64), k64) * scale
    if causal:
        length, total = q.shape[2], k.shape[2]
        scores = np.where(np.arange(total) <= (total - length + np.arange(length))[:, None], scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    return np.einsum("bhls,bhsd->bhld", p / p.sum(-1, keepdims=True), v64)


@pytest.mark.parametrize(
    "b,h,hkv,length,total,d,dv",
    [(1, 16, 8, 1, 100, 128, 128), (2, 4, 2, 3, 7, 20, 13), (1, 2, 1, 8, 8, 5, 3), (1, 3, 3, 2, 300, 64, 72)],
)
def test_attention_kernel_at_every_level(level: int, b, h, hkv, length, total, d, dv) -> None:
    # keys and values as views into larger cache buffers (rows `capacity` apart), as the KV
    # cache hands them over; head dims that are not a multiple of any vector width
    rng = np.random.default_rng(total)
    q = rng.standard_normal((b, h, length, d)).astype(np.float32)
    k = rng.standard_normal((b, hkv, total + 9, d)).astype(np.float32)[:, :, :total]
    v = rng.standard_normal((b, hkv, total + 9, dv)).astype(np.float32)[:, :, :total]
    for causal in (False, True):
        out = np.full((b, h, length, dv), np.nan, np.float32)
        _kernels().attention(level, q, k, v, out, 0.3, causal)
        ref = _attention64(q, k, v, 0.3, causal)
        # float32 dot products over d and sums over the keys: a few hundred epsilons at most
        assert np.max(np.abs(out - ref)) <= 2e-6 * max(1.0, float(np.max(np.abs(ref))))


def test_attention_runs_native_for_float32_decode_only(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    calls = []
    real = _native.attention

    def counted(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(_native, "attention", counted)
    q1 = rng.standard_normal((1, 4, 1, 16)).astype(np.float32)
    q2 = rng.standard_normal((1, 4, 2, 16)).astype(np.float32)
    kv = rng.standard_normal((1, 2, 9, 16)).astype(np.float32)
    long_kv = rng.standard_normal((1, 2, _native.ATTENTION_MAX_KEYS + 1, 16)).astype(np.float32)
    mask = np.zeros((9, 9), np.float32)
    for q, keys, m, dtype, native in [
        (q1, kv, None, np.float32, True),
        (q1, kv, "causal", np.float32, True),
        (q2, kv, "causal", np.float32, False),  # several query rows: BLAS through the reference
        (q1, long_kv, None, np.float32, False),  # a long context: the same
        (q1, kv, mask[:1], np.float32, False),  # an additive mask
        (q1, kv, None, np.float64, False),
    ]:
        calls.clear()
        qd, kvd = q.astype(dtype), keys.astype(dtype)
        out = aq.nn.scaled_dot_product_attention(qd, kvd, kvd, scale=1.0, mask=m)
        assert bool(calls) == native
        assert out.dtype == dtype
        np.testing.assert_allclose(out, aq.nn.attention_reference(qd, kvd, kvd, 1.0, m), rtol=1e-5, atol=1e-6)


def test_attention_kernel_propagates_nan_and_checks_its_arrays() -> None:
    q = np.ones((1, 2, 1, 8), np.float32)
    k = np.ones((1, 1, 4, 8), np.float32)
    k[0, 0, 2, 3] = np.nan
    out = np.empty((1, 2, 1, 8), np.float32)
    _kernels().attention(0, q, k, k, out, 1.0, False)
    assert np.isnan(out).all()
    with pytest.raises(ValueError, match="contiguous last axis"):
        _kernels().attention(0, q, k[..., ::2], k, out, 1.0, False)
    with pytest.raises(ValueError, match="shapes do not fit"):
        _kernels().attention(0, q, k, k[:, :, :3], out, 1.0, False)
    with pytest.raises(ValueError, match="shapes do not fit"):  # (no keys: no softmax to take)
        _kernels().attention(0, q, k[:, :, :0], k[:, :, :0], out, 1.0, False)
    with pytest.raises(ValueError, match="4-d float32"):
        _kernels().attention(0, q.astype(np.float64), k, k, out, 1.0, False)


def test_attention_kernel_with_lengths_reads_each_rows_own_keys(level: int) -> None:
    """A batch of 3 sequences of 5, 1 and 12 keys in one padded buffer (the serving batch
    cache): each row equals the kernel on that sequence alone, bit for bit (the same
    arithmetic on the same keys), and the float64 reference within float32 rounding. The
    padding holds NaN: a read of it would show."""
    rng = np.random.default_rng(7)
    lengths = np.array([5, 1, 12], np.int64)
    q = rng.standard_normal((3, 4, 1, 24)).astype(np.float32)
    k = np.full((3, 2, 16, 24), np.nan, np.float32)
    v = np.full((3, 2, 16, 20), np.nan, np.float32)
    for b, n in enumerate(lengths):
        k[b, :, :n] = rng.standard_normal((2, n, 24))
        v[b, :, :n] = rng.standard_normal((2, n, 20))
    out = np.empty((3, 4, 1, 20), np.float32)
    _kernels().attention(level, q, k[:, :, :12], v[:, :, :12], out, 0.3, False, lengths)
    for b, n in enumerate(lengths):
        alone = np.empty((1, 4, 1, 20), np.float32)
        _kernels().attention(level, q[b : b + 1], k[b : b + 1, :, :n], v[b : b + 1, :, :n], alone, 0.3, False)
        np.testing.assert_array_equal(out[b : b + 1], alone)
        ref = _attention64(q[b : b + 1], k[b : b + 1, :, :n], v[b : b + 1, :, :n], 0.3, False)
        assert np.max(np.abs(out[b : b + 1] - ref)) <= 2e-6 * max(1.0, float(np.max(np.abs(ref))))


@pytest.mark.parametrize("b,h,hkv,total,lengths", [(1, 16, 8, 256, None), (8, 16, 8, 96, "ragged"), (3, 4, 4, 5, None)])
def test_attention_kernel_is_the_same_on_any_number_of_threads(level: int, b, h, hkv, total, lengths) -> None:
    """Decode shapes large enough to be split over the pool (16 heads against 256 keys; a
    serving batch of 8 with its own key counts) and one too small to be: every thread count
    gives the one-thread result bit for bit (each row computed whole by one thread), and
    the float64 reference within float32 rounding. Unread padding keys hold NaN."""
    rng = np.random.default_rng(total)
    q = rng.standard_normal((b, h, 1, 128)).astype(np.float32)
    k, v = (rng.standard_normal((b, hkv, total + 4, 128)).astype(np.float32) for _ in range(2))
    counts = None
    if lengths == "ragged":
        counts = rng.integers(1, total + 1, size=b).astype(np.int64)
        for row, n in enumerate(counts):
            k[row, :, n:], v[row, :, n:] = np.nan, np.nan
    extra = () if counts is None else (counts,)
    before = _native.num_threads()
    results = []
    try:
        for threads in (1, 2, 3, 8):
            _native.set_num_threads(threads)
            out = np.full((b, h, 1, 128), np.nan, np.float32)
            _kernels().attention(level, q, k[:, :, :total], v[:, :, :total], out, 0.3, False, *extra)
            results.append(out)
    finally:
        _native.set_num_threads(0 if "ARRAYQ_NUM_THREADS" not in os.environ else before)
    for out in results[1:]:
        np.testing.assert_array_equal(out, results[0])
    for row in range(b):
        n = total if counts is None else int(counts[row])
        ref = _attention64(q[row : row + 1], k[row : row + 1, :, :n], v[row : row + 1, :, :n], 0.3, False)
        assert np.max(np.abs(results[0][row : row + 1] - ref)) <= 2e-6 * max(1.0, float(np.max(np.abs(ref))))


def test_attention_kernel_refuses_bad_lengths() -> None:
    q = np.ones((2, 2, 1, 8), np.float32)
    k = np.ones((2, 1, 4, 8), np.float32)
    out = np.empty((2, 2, 1, 8), np.float32)
    for lengths, causal in [([1, 5], False), ([0, 2], False), ([1, 2, 3], False), ([1, 2], True)]:
        with pytest.raises(ValueError, match="lengths must be B int64 key counts"):
            _kernels().attention(0, q, k, k, out, 1.0, causal, np.array(lengths, np.int64))
    q2 = np.ones((2, 2, 2, 8), np.float32)  # two query rows
    with pytest.raises(ValueError, match="one query row"):
        _kernels().attention(0, q2, k, k, np.empty((2, 2, 2, 8), np.float32), 1.0, False, np.ones(2, np.int64))


def test_a_padding_mask_takes_the_kernel_and_other_masks_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """nn.padding_mask's masks (rows of different lengths: a serving batch) run the kernel
    with each row's key count; masks of another form (a hidden key in the middle, a row
    with no key, a finite -1e9 in place of float32's lowest) take the reference.
    Either way the result is the reference's: 1e-5 relative, float32 sums over 9 keys."""
    rng = np.random.default_rng(4)
    seen = []
    real = _native.attention

    def counted(*args):
        seen.append(None if len(args) < 6 else list(args[5]))
        return real(*args)

    monkeypatch.setattr(_native, "attention", counted)
    q = rng.standard_normal((3, 4, 1, 16)).astype(np.float32)
    kv = rng.standard_normal((3, 2, 9, 16)).astype(np.float32)
    pad = np.asarray(aq.nn.padding_mask(lengths=[4, 9, 1], length=9))
    middle = pad.copy()
    middle[0, ..., 2] = np.finfo(np.float32).min
    empty = np.asarray(aq.nn.padding_mask(lengths=[4, 0, 1], length=9))
    for m, native in [
        (pad, [4, 9, 1]),
        (pad[:1], [4, 4, 4]),  # one row's mask for every row
        (np.where(pad < 0, -np.inf, 0).astype(np.float32), [4, 9, 1]),
        (middle, None),
        (empty, None),
        (np.where(pad < 0, -1e9, 0).astype(np.float32), None),
        (pad.astype(np.float64), [4, 9, 1]),
    ]:
        seen.clear()
        out = aq.nn.scaled_dot_product_attention(q, kv, kv, scale=1.0, mask=m)
        assert seen == ([] if native is None else [native])
        np.testing.assert_allclose(out, aq.nn.attention_reference(q, kv, kv, 1.0, m), rtol=1e-5, atol=1e-6)
