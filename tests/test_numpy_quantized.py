"""The NumPy backend's quantized fast path (backends/arrayq_numpy/_fastpath.py) against
the array-API reference in arrayq.quant (run on the composite default of a
backend that has no fast path), and against hand-built codes."""

import itertools

import ml_dtypes
import numpy as np
import pytest

import arrayq as aq
from arrayq.quant import _packing, reference_gather_qmm, reference_matmul
from arrayq_numpy._fastpath import DECODE_MAX_ROWS, unpack_codes

# The fast path and the reference both accumulate in float32 but in a different order
# (grouped partial sums vs one dot per row); with K <= 256 terms of size ~1, their
# difference stays below ~K * 2**-24 relative to the output's magnitude: 2e-5 leaves room.
RTOL_FLOAT32 = 2e-5


def _reference(x, qw, transpose):
    """The blockwise reference on NumPy arrays."""
    return reference_matmul(x, qw, transpose)


def test_unpack_codes_by_hand():
    # 4-bit: word 0x76543210 holds codes 0..7, lowest nibble first
    assert unpack_codes(np.array([[0x76543210]], np.uint32), 4).tolist() == [list(range(8))]
    # 3-bit: codes 0..7 form the 24-bit stream 0b111_110_101_100_011_010_001_000 = 0xFAC688,
    # and 32 codes fill 3 words; the 11th code straddles words 0 and 1
    codes = np.arange(32, dtype=np.uint32) % 8
    stream = sum(int(c) << (3 * i) for i, c in enumerate(codes))
    words = np.array([[(stream >> (32 * j)) & 0xFFFFFFFF for j in range(3)]], np.uint32)
    assert words[0, 0] & 0xFFFFFF == 0xFAC688
    assert unpack_codes(words, 3).tolist() == [codes.tolist()]


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 8])
def test_unpack_codes_matches_the_reference(bits):
    rng = np.random.default_rng(bits)
    packed = rng.integers(0, 2**32, size=(3, 2 * bits), dtype=np.uint64).astype(np.uint32)
    expected = _packing.unpack(_anp(), packed, bits)
    np.testing.assert_array_equal(unpack_codes(packed, bits), expected)


def _anp():
    import array_api_compat.numpy as anp

    return anp


CASES = list(itertools.product([1, 2, 3, 4, 5, 6, 8], [32, 64, 128], [True, False]))


@pytest.mark.parametrize("bits,group_size,transpose", CASES)
@pytest.mark.parametrize("m", [1, DECODE_MAX_ROWS + 1])
def test_fast_path_matches_reference(bits, group_size, transpose, m):
    rng = np.random.default_rng(bits * 1000 + group_size)
    w = rng.standard_normal((40, 256) if transpose else (256, 128)).astype(np.float32)
    qw = aq.quantize(w.astype(ml_dtypes.bfloat16), group_size=group_size, bits=bits)
    x = rng.standard_normal((m, 256)).astype(np.float32)
    got = aq.linalg.quantized_matmul(x, qw, transpose=transpose)
    want = _reference(x, qw, transpose)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=RTOL_FLOAT32 * np.abs(want).max())


def test_batched_and_non_contiguous_x_and_narrow_dtypes():
    rng = np.random.default_rng(7)
    qw = aq.quantize(rng.standard_normal((24, 128)).astype(np.float32), bits=4, group_size=32)
    x = rng.standard_normal((2, 5, 256)).astype(np.float32)[:, ::2, ::2]  # (2, 3, 128), strided
    got = aq.linalg.quantized_matmul(x, qw)
    want = _reference(np.ascontiguousarray(x), qw, True)
    assert got.shape == (2, 3, 24)
    np.testing.assert_allclose(got, want, rtol=0, atol=RTOL_FLOAT32 * np.abs(want).max())
    for dtype in (np.float16, ml_dtypes.bfloat16):
        # the result is rounded once to x's dtype: half an ulp of it (2**-11, 2**-8)
        y = aq.linalg.quantized_matmul(x.astype(dtype), qw)
        y32 = aq.linalg.quantized_matmul(x.astype(dtype).astype(np.float32), qw)
        assert y.dtype == dtype
        np.testing.assert_allclose(y.astype(np.float32), y32, rtol=2 * float(ml_dtypes.finfo(dtype).eps), atol=1e-6)


def _gather_reference(x, qw, lhs, rhs, transpose):
    return reference_gather_qmm(x, qw, lhs, rhs, transpose)


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize(
    "x_shape,w_batch",
    [((3, 64), (4,)), ((2, 1, 3, 64), (4,)), ((4, 2, 64), (4,)), ((64,), (2, 3)), ((5, 1, 2, 64), (1, 3))],
)
def test_batched_weight_runs_the_fast_path_per_matrix(x_shape, w_batch, transpose):
    # x's and the weight's batch axes broadcast as in matmul; each weight matrix goes through
    # the 2-D fast path (native kernel or NumPy), checked against the blockwise reference
    rng = np.random.default_rng(len(x_shape) + len(w_batch))
    w = rng.standard_normal(w_batch + ((48, 64) if transpose else (64, 96))).astype(np.float32)
    qw = aq.quantize(w, group_size=32, bits=4)
    x = rng.standard_normal(x_shape).astype(np.float32)
    got = aq.linalg.quantized_matmul(x, qw, transpose=transpose)
    want = _reference(x, qw, transpose)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=RTOL_FLOAT32, atol=RTOL_FLOAT32 * np.abs(want).max())


@pytest.mark.parametrize("x_dtype", [np.float32, ml_dtypes.bfloat16])
def test_gather_qmm_groups_problems_by_weight_matrix(x_dtype):
    # a mixture-of-experts decode: 6 tokens, each routed to 2 of 4 experts, in no order and
    # with repeats; the fast path stacks each expert's tokens into one call
    rng = np.random.default_rng(5)
    experts = rng.standard_normal((4, 40, 64)).astype(np.float32)
    qw = aq.quantize(experts, group_size=64, bits=4)
    x = rng.standard_normal((6, 1, 64)).astype(x_dtype)
    lhs = np.repeat(np.arange(6), 2).reshape(6, 2).astype(np.int32)
    rhs = np.array([[3, 1], [1, 1], [0, 2], [2, 3], [3, 0], [1, 2]], np.int64)
    got = aq.linalg.gather_qmm(x, qw, lhs_indices=lhs, rhs_indices=rhs)
    want = _gather_reference(x, qw, lhs, rhs, True)
    assert got.shape == (6, 2, 1, 40) and got.dtype == x.dtype
    tol = RTOL_FLOAT32 if x_dtype == np.float32 else 2.0**-8  # bfloat16 output: one rounding
    np.testing.assert_allclose(
        got.astype(np.float32), want.astype(np.float32), rtol=tol, atol=tol * np.abs(want.astype(np.float32)).max()
    )
    # default indices: every x entry with the weight entry at the same (broadcast) position
    x2 = rng.standard_normal((4, 3, 64)).astype(np.float32)
    got2 = aq.linalg.gather_qmm(x2, qw, rhs_indices=np.array([2, 0, 0, 3]))
    want2 = _gather_reference(x2, qw, None, np.array([2, 0, 0, 3]), True)
    np.testing.assert_allclose(got2, want2, rtol=RTOL_FLOAT32, atol=RTOL_FLOAT32 * np.abs(want2).max())


@pytest.mark.parametrize("transpose", [True, False])
def test_batched_and_gathered_empty_weights_give_zeros(transpose):
    # N = 0 or K = 0 pass the frontend's checks; the result is empty or zeros, not a crash
    for n, k in ((0, 64), (64, 0)):
        shape = (3, n, k) if transpose else (3, k, n)
        qw = aq.quantize(np.zeros(shape, np.float32), group_size=64, bits=4)
        x = np.ones((3, 2, k), np.float32)
        got = aq.linalg.quantized_matmul(x, qw, transpose=transpose)
        assert got.shape == (3, 2, n) and not got.any()
        got = aq.linalg.gather_qmm(x, qw, rhs_indices=np.array([0, 2, 2]), transpose=transpose)
        assert got.shape == (3, 2, n) and not got.any()
        got2d = aq.linalg.quantized_matmul(
            x[0], aq.quantize(np.zeros(shape[1:], np.float32), group_size=64, bits=4), transpose=transpose
        )
        assert got2d.shape == (2, n) and not got2d.any()


# ---------------------------------------------------------------------- which path runs
# The paths below give the same numbers (within float32 rounding), so only these tests see a
# changed threshold or condition. The thresholds are measured choices (PER_MATRIX_MIN_WEIGHTS
# in arrayq_numpy, the 8-row decode limit of the kernels and of _fastpath): a deliberate
# change goes with new measurements and an update here.


def test_per_matrix_threshold_counts_weights():
    from arrayq_numpy import _per_matrix_pays

    def pays(n, k, bits):  # a batch of 3 (N, K) matrices; packed holds K * bits / 32 uint32 per row
        return _per_matrix_pays(np.zeros((3, n, k * bits // 32), np.uint32), bits)

    # from 4096 weights per matrix, whatever the bits per weight
    assert [pays(64, 64, 4), pays(63, 64, 4), pays(32, 128, 8), pays(31, 128, 8)] == [True, False, True, False]
    assert [pays(43, 96, 3), pays(42, 96, 3), pays(64, 64, 1), pays(2, 64, 1)] == [True, False, True, False]


def _record(monkeypatch, log, owner, name):
    real = getattr(owner, name)

    def recorded(*args, **kwargs):
        log.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, recorded)


@pytest.mark.parametrize("n", [32, 64])  # 2048 and 4096 weights per matrix
def test_batched_weight_takes_the_per_matrix_path_from_the_threshold(monkeypatch, n):
    import arrayq_numpy

    qw = aq.quantize(np.random.default_rng(3).standard_normal((3, n, 64)).astype(np.float32), group_size=32, bits=4)
    x = np.random.default_rng(4).standard_normal((3, 5, 64)).astype(np.float32)
    log = []
    _record(monkeypatch, log, aq.quant, "reference_matmul")
    _record(monkeypatch, log, aq.quant, "reference_gather_qmm")
    _record(monkeypatch, log, arrayq_numpy.NumPyBackend, "_per_weight")
    got = aq.linalg.quantized_matmul(x, qw)
    idx = np.arange(3)
    got_gather = aq.linalg.gather_qmm(x, qw, lhs_indices=idx, rhs_indices=idx)
    monkeypatch.undo()
    assert log == (["_per_weight", "_per_weight"] if n == 64 else ["reference_matmul", "reference_gather_qmm"])
    ref = _reference(x, qw, True)
    np.testing.assert_allclose(got, ref, rtol=RTOL_FLOAT32, atol=RTOL_FLOAT32 * np.abs(ref).max())
    np.testing.assert_allclose(got_gather, got, rtol=RTOL_FLOAT32, atol=RTOL_FLOAT32 * np.abs(ref).max())


@pytest.mark.parametrize("m", [1, 8, 9, 40])
@pytest.mark.parametrize("route", ["native", "numpy", "numpy, transpose=False"])
def test_fast_path_routing(monkeypatch, route, m):
    """Native kernels for ``x @ W.T`` where built (their GEMV up to 8 rows, the prefill above),
    else the pure-NumPy path (its decode form up to 8 rows, the blockwise prefill above);
    ``transpose=False`` always the pure-NumPy path."""
    import arrayq_numpy
    from arrayq_numpy import _fastpath, _native

    if route == "native" and _native._kernels is None:
        pytest.skip("the native kernels were not built")
    if route != "native":
        monkeypatch.setattr(_native, "_chosen_level", lambda: None)  # as with ARRAYQ_NATIVE=0
    transpose = route != "numpy, transpose=False"
    rng = np.random.default_rng(5)
    qw = aq.quantize(rng.standard_normal((48, 128) if transpose else (128, 64)).astype(np.float32), group_size=64)
    x = rng.standard_normal((m, 128)).astype(np.float32)
    log = []
    _record(monkeypatch, log, arrayq_numpy, "affine_matmul")
    _record(monkeypatch, log, _native, "matmul")
    _record(monkeypatch, log, _fastpath, "blocks_times")
    if _native._kernels is not None:
        _record(monkeypatch, log, _native._kernels, "gemv")
    got = aq.linalg.quantized_matmul(x, qw, transpose=transpose)
    monkeypatch.undo()
    if route == "native":
        expected = ["matmul", "gemv"] if m <= 8 else ["matmul"]
    elif transpose:
        expected = ["affine_matmul"] if m <= 8 else ["affine_matmul", "blocks_times"]
    else:
        expected = ["affine_matmul"]
    assert log == expected
    ref = _reference(x, qw, transpose)  # outputs of size ~sqrt(K): the tolerance relative to the largest
    np.testing.assert_allclose(got, ref, rtol=RTOL_FLOAT32, atol=RTOL_FLOAT32 * np.abs(ref).max())
