"""Tests for arrayq.quant: MLX quantization formats written against the array API.

The format code is exercised through NumPy (array_api_compat.numpy plus bfloat16 from
ml_dtypes).  Comparisons against mlx.core are skipped when MLX is not installed; the
hand-built cases need no MLX.
"""

import types
import zlib

import numpy as np
import pytest

ml_dtypes = pytest.importorskip("ml_dtypes")
anp = pytest.importorskip("array_api_compat.numpy")

from arrayq.quant import _codecs, _common, _formats, _packing, _reference  # noqa: E402

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)
FLOATS = [F32, F16, BF16]


def _make_xp():
    """array_api_compat.numpy + bfloat16 + take_along_axis."""
    ns = types.SimpleNamespace(**{k: getattr(anp, k) for k in dir(anp) if not k.startswith("__")})
    ns.bfloat16 = BF16
    if not hasattr(ns, "take_along_axis"):
        ns.take_along_axis = lambda x, indices, /, *, axis=-1: np.take_along_axis(x, indices, axis)
    return ns


xp = _make_xp()

AFFINE = [(gs, b) for gs in (32, 64, 128) for b in (1, 2, 3, 4, 5, 6, 8)]
FP_MODES = [("mxfp4", 32, 4), ("mxfp8", 32, 8), ("nvfp4", 16, 4)]
ALL_FORMATS = [("affine", gs, b) for gs, b in AFFINE] + FP_MODES


def bits_of(a):
    """Raw bits of an array (uint view for floats) for bit-exact comparison."""
    a = np.asarray(a)
    if a.dtype.kind == "f" or a.dtype == BF16:
        return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])
    return a


def assert_same_bits(got, want, allow_nan_payload=False):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    same = bits_of(got) == bits_of(want)
    if allow_nan_payload and (got.dtype.kind == "f" or got.dtype == BF16):
        # NaN payloads are not part of the formats; NaN-ness is.
        same |= np.isnan(got.astype(np.float32)) & np.isnan(want.astype(np.float32))
    if not same.all():
        idx = np.argwhere(~same)[:5]
        pytest.fail(
            f"{(~same).sum()} of {same.size} elements differ; first at {idx.tolist()}: "
            f"got {got[tuple(idx[0])]!r} want {want[tuple(idx[0])]!r}"
        )


def random_weights(rng, shape, dtype, group_size):
    """Random weights with per-row magnitudes spread over many binades plus special groups:
    all-zero, signed zeros, constant, negative-dominant, positive-dominant, tiny, and a
    group whose minimum is a zero of either sign."""
    w = rng.standard_normal(shape).astype(np.float32)
    w *= np.exp(rng.uniform(-5, 5, shape[:-1] + (1,))).astype(np.float32)
    flat = w.reshape(-1, shape[-1])
    g = group_size
    flat[0, :g] = 0.0
    flat[1, :g] = -0.0
    flat[1, 1] = 0.0
    flat[2, :g] = 1.2345
    flat[3, :g] = -np.abs(flat[3, :g]) * 3
    flat[3, 0] = 0.1
    flat[4, :g] = np.abs(flat[4, :g])
    flat[5, :g] = -7.0
    flat[6, :g] *= 1e-6
    flat[7, :g] = -0.0  # the first zero is +0: MLX's running min keeps +0 (NumPy's min gives -0)
    flat[7, 0] = 0.0
    flat[7, 1] = 2.5
    return flat.reshape(shape).astype(dtype)


# ---------------------------------------------------------------------------
# hand-built cases (no MLX)
# ---------------------------------------------------------------------------


def test_pack_4bit_by_hand():
    q = np.array(
        [[1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 15, 0, 0, 0, 0, 0, 0, 0]],
        np.uint32,
    )
    p = _packing.pack(xp, q, 4)
    # first element in the 4 least significant bits
    assert p.dtype == np.uint32 and p.shape == (1, 4)
    assert p.tolist() == [[0x87654321, 0x76543210, 0xFEDCBA98, 0x0000000F]]
    assert np.array_equal(_packing.unpack(xp, p, 4), q)


def test_pack_8_2_1bit_by_hand():
    assert _packing.pack(xp, np.array([[0x11, 0x22, 0x33, 0x44]], np.uint32), 8).tolist() == [[0x44332211]]
    q2 = np.array([[3, 0, 1, 2] + [0] * 12], np.uint32)  # 0b10_01_00_11
    assert _packing.pack(xp, q2, 2).tolist() == [[0b10010011]]
    q1 = np.zeros((1, 32), np.uint32)
    q1[0, [0, 5, 31]] = 1
    assert _packing.pack(xp, q1, 1).tolist() == [[(1 << 0) | (1 << 5) | (1 << 31)]]


def test_pack_straddling_by_hand():
    # 3 bits: value 10 occupies stream bits 30..32, value 21 bits 63..65.
    q = np.zeros((1, 32), np.uint32)
    q[0, 10] = 0b101
    q[0, 21] = 0b111
    assert _packing.pack(xp, q, 3).tolist() == [[0x40000000, 0x80000001, 0x00000003]]
    # 5 bits: value 6 occupies bits 30..34; 27 = 0b11011
    q = np.zeros((1, 32), np.uint32)
    q[0, 6] = 27
    assert _packing.pack(xp, q, 5).tolist() == [[0xC0000000, 0x6, 0, 0, 0]]
    # 6 bits: value 5 occupies bits 30..35
    q = np.zeros((1, 16), np.uint32)
    q[0, 5] = 63
    assert _packing.pack(xp, q, 6).tolist() == [[0xC0000000, 0xF, 0]]
    for b, n in ((3, 32), (5, 32), (6, 16)):
        qq = np.zeros((1, n), np.uint32)
        qq[0, 10 if b == 3 else (6 if b == 5 else 5)] = 1
        assert np.array_equal(_packing.unpack(xp, _packing.pack(xp, qq, b), b), qq)


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 8])
def test_pack_roundtrip(bits):
    rng = np.random.default_rng(bits)
    q = rng.integers(0, 2**bits, (3, 2, 64)).astype(np.uint32)
    p = _packing.pack(xp, q, bits)
    assert p.shape == (3, 2, 64 * bits // 32) and p.dtype == np.uint32
    assert np.array_equal(_packing.unpack(xp, p, bits, 64), q)


def test_pack_errors():
    with pytest.raises(ValueError):
        _packing.pack(xp, np.zeros((2, 10), np.uint32), 3)  # 30 bits: not whole words
    with pytest.raises(ValueError):
        _packing.unpack(xp, np.zeros((2, 4), np.uint32), 3)  # 3-bit needs multiples of 3 words
    with pytest.raises(ValueError):
        _packing.unpack(xp, np.zeros((2, 4), np.uint32), 4, k=31)


def test_affine_positive_scale_by_hand():
    # min -3 dominates: scale = 4.5/15 > 0, bias = min (exact), q = (w - min)/scale
    w = np.zeros((1, 32), np.float32)
    w[0, :4] = [-3.0, 1.5, 0.0, 0.6]
    p, s, b = _formats.quantize(xp, w, 32, 4, "affine")
    scale = np.float32(-3.0) / np.float32(-10.0)  # edge / round(edge / (4.5/15))
    assert s.dtype == np.float32 and s[0, 0] == scale and b[0, 0] == -3.0
    q = _packing.unpack(xp, p, 4)[0]
    assert q[:4].tolist() == [0, 15, 10, 12] and set(q[4:].tolist()) == {10}
    d = _formats.dequantize(xp, p, s, b, 32, 4, "affine")
    assert d[0, 0] == -3.0  # the largest-magnitude extreme is exact


def test_affine_negative_scale_by_hand():
    # max 3 dominates: MLX stores a NEGATIVE scale and bias = max, so max is exact.
    w = np.zeros((1, 32), np.float32)
    w[0, :2] = [-1.0, 3.0]
    p, s, b = _formats.quantize(xp, w, 32, 4, "affine")
    # scale0 = -(4/15); q0 = round(3 / scale0) = round(-11.25) = -11; scale = 3 / -11
    assert s[0, 0] == np.float32(3.0) / np.float32(-11.0) and s[0, 0] < 0
    assert b[0, 0] == 3.0
    q = _packing.unpack(xp, p, 4)[0]
    assert q[0] == 15 and q[1] == 0 and q[2] == 11  # (0 - 3) / (-3/11) = 11
    d = _formats.dequantize(xp, p, s, b, 32, 4, "affine")
    assert d[0, 1] == 3.0
    assert d[0, 0] == np.float32(np.float32(15 * s[0, 0]) + np.float32(3.0))  # -1.0909..: min not exact


def test_affine_1bit_by_hand():
    w = np.zeros((1, 32), np.float32)
    w[0, :3] = [-1.0, 2.0, 0.5]  # 0.5 is exactly halfway: round half to even -> 0
    p, s, b = _formats.quantize(xp, w, 32, 1, "affine")
    assert s[0, 0] == 3.0 and b[0, 0] == -1.0  # scale = max - min, bias = min
    q = _packing.unpack(xp, p, 1)[0]
    assert q[:3].tolist() == [0, 1, 0] and set(q[3:].tolist()) == {0}


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_zero_and_constant_groups(dtype):
    w = np.zeros((2, 64), dtype)
    w[1] = 1.5
    p, s, b = _formats.quantize(xp, w, 32, 4, "affine")
    assert s.dtype == dtype and b.dtype == dtype
    assert not p[0].any() and not p[1].any()  # every code 0
    # zero group: scale -eps (eps = float32(1e-7), rounded to dtype), bias 0
    assert s[0, 0] == np.float32(-1e-7).astype(dtype) and b[0, 0] == 0
    assert b[1, 0] == 1.5
    d = _formats.dequantize(xp, p, s, b, 32, 4, "affine")
    assert np.array_equal(d.astype(np.float32), w.astype(np.float32))
    for mode, gs, bits in FP_MODES:
        p, s, none = _formats.quantize(xp, w, gs, bits, mode)
        assert none is None and s.dtype == np.uint8 and not p[0].any()
        # zero group: e8m0 code 127 (2**0) for mx, e4m3 code 0 for nv
        assert (s[0] == (0 if mode == "nvfp4" else 127)).all()
        d = _formats.dequantize(xp, p, s, None, gs, bits, mode, dtype)
        assert np.array_equal(d.astype(np.float32), w.astype(np.float32))


def test_mxfp4_by_hand():
    w = np.zeros((1, 32), np.float32)
    w[0, :6] = [6.0, 3.0, -1.0, 0.25, 0.75, -0.2]
    p, s, _ = _formats.quantize(xp, w, 32, 4, "mxfp4")
    assert s.tolist() == [[127]]  # ceil(log2(6 / 6)) = 0
    # 6 -> 7, 3 -> 5, -1 -> 8|2, 0.25 -> 0 (tie to smaller), 0.75 -> 1 (0.5), -0.2 -> 0 (+0)
    assert p.tolist() == [[0x00010A57, 0, 0, 0]]
    w[0, 0] = 6.5  # scale 6.5/6 > 1 rounds UP to 2: exponent 1, code 128
    p, s, _ = _formats.quantize(xp, w, 32, 4, "mxfp4")
    assert s.tolist() == [[128]]
    assert _packing.unpack(xp, p, 4)[0, :2].tolist() == [5, 3]  # 3.25 -> 3.0, 1.5 -> 1.5


def test_mxfp8_nvfp4_by_hand():
    w = np.zeros((1, 32), np.float32)
    w[0, :3] = [448.0, 1.0, -2.5]
    p, s, _ = _formats.quantize(xp, w, 32, 8, "mxfp8")
    assert s.tolist() == [[127]]
    assert p[0, 0] == 0x7E | (0x38 << 8) | (0xC2 << 16)  # e4m3: 448, 1.0, -2.5
    w = np.zeros((1, 16), np.float32)
    w[0, :3] = [12.0, -3.0, 1.0]
    p, s, _ = _formats.quantize(xp, w, 16, 4, "nvfp4")
    assert s.tolist() == [[0x40]]  # e4m3(12 / 6 = 2.0)
    assert _packing.unpack(xp, p, 4)[0, :3].tolist() == [7, 8 | 3, 1]  # 6, -1.5, 0.5


def test_e4m3_codes_roundtrip():
    codes = np.array([c for c in range(256) if c & 127 != 127], np.uint8)
    vals = _codecs._from_e4m3(xp, codes)
    assert np.array_equal(_codecs._to_e4m3(xp, vals), codes)
    assert vals[codes == 0x7E][0] == 448.0 and vals[codes == 0x01][0] == 2.0**-9
    assert np.isnan(_codecs._from_e4m3(xp, np.array([0x7F, 0xFF], np.uint8))).all()
    # rounding: ties to even, saturation at 448 (no inf/NaN produced)
    v = np.array([2.0**-10, 3 * 2.0**-10, 1.0625, 1.1875, 460.0, 1e30, -1e-30], np.float32)
    assert _codecs._to_e4m3(xp, v).tolist() == [0x00, 0x02, 0x38, 0x3A, 0x7E, 0x7E, 0x80]


def test_e8m0_exponent_is_exact_ceil():
    for name, dt in (("float32", F32), ("float16", F16), ("bfloat16", BF16)):
        k = np.arange(-14, 15)
        exact = (2.0**k).astype(dt)
        above = (2.0**k * (1 + 2.0 ** -(7 if dt == BF16 else 10))).astype(dt)
        s = np.concatenate([exact, above]).astype(np.float32)
        e = _codecs._e8m0_exponent(xp, s, name)
        assert e.tolist() == list(k) + list(k + 1)
    # the smallest float32 subnormal and zero
    assert _codecs._e8m0_exponent(xp, np.array([2.0**-149, 0.0], np.float32), "float32").tolist() == [-149, 0]


@pytest.mark.parametrize(
    "dtype,q,s_bits,b_bits,double,single",
    [
        # q*s rounds to a tie-to-even first; adding the bias then lands one ulp away from
        # the correctly rounded q*s+b.  MLX rounds twice (multiply, then add).
        (F16, 5, 0x3DD2, 0xC965, -3.515625, -3.513671875),
        (BF16, 15, 0x3FC4, 0xC1D0, -3.0, -3.03125),
    ],
)
def test_affine_dequantize_rounds_twice(dtype, q, s_bits, b_bits, double, single):
    s = np.array([[s_bits]], np.uint16).view(dtype)
    b = np.array([[b_bits]], np.uint16).view(dtype)
    assert float((np.float64(q) * s.astype(np.float64) + b.astype(np.float64)).astype(dtype)[0, 0]) == single
    codes = np.full((1, 32), q, np.uint32)
    d = _formats.dequantize(xp, _packing.pack(xp, codes, 4), s, b, 32, 4, "affine")
    assert d.dtype == dtype and float(d[0, 0]) == double


def test_validation_errors():
    w = np.ones((4, 64), np.float32)
    with pytest.raises(ValueError):
        _formats.quantize(xp, w, 32, 7, "affine")
    with pytest.raises(ValueError):
        _formats.quantize(xp, w, 16, 4, "affine")
    with pytest.raises(ValueError):
        _formats.quantize(xp, w, 16, 4, "mxfp4")
    with pytest.raises(ValueError):
        _formats.quantize(xp, w, 32, 4, "int4")
    with pytest.raises(ValueError):
        _formats.quantize(xp, np.ones(64, np.float32), 32, 4, "affine")
    with pytest.raises(ValueError):
        _formats.quantize(xp, np.ones((4, 48), np.float32), 32, 4, "affine")
    with pytest.raises(TypeError):
        _formats.quantize(xp, np.ones((4, 64), np.int32), 32, 4, "affine")
    p, s, b = _formats.quantize(xp, w, 32, 4, "affine")
    with pytest.raises(ValueError):
        _formats.dequantize(xp, p, s[:, :1], b[:, :1], 32, 4, "affine")
    with pytest.raises(ValueError):
        _formats.dequantize(xp, p, s, None, 32, 4, "affine")
    with pytest.raises(ValueError):
        _reference.quantized_matmul_reference(xp, np.ones((2, 63), np.float32), p, s, b, group_size=32, bits=4)
    ps, ss, _ = _formats.quantize(xp, w, 32, 4, "mxfp4")
    with pytest.raises(ValueError):
        _formats.dequantize(xp, ps, ss, ss, 32, 4, "mxfp4")


def test_has_nonfinite():
    w = np.ones((2, 32), np.float32)
    assert not _formats.has_nonfinite(xp, w)
    w[1, 3] = np.inf
    assert _formats.has_nonfinite(xp, w)
    w[1, 3] = np.nan
    assert _formats.has_nonfinite(xp, w.astype(BF16))


def test_defaults():
    assert _common.default_params("affine") == (64, 4)
    assert _common.default_params("mxfp4") == (32, 4)
    assert _common.default_params("mxfp8") == (32, 8)
    assert _common.default_params("nvfp4") == (16, 4)


# ---------------------------------------------------------------------------
# reference matmuls vs float64 NumPy (no MLX)
# ---------------------------------------------------------------------------

U = {F32: 2.0**-24, F16: 2.0**-11, BF16: 2.0**-8}
TINY = {F32: 2.0**-149, F16: 2.0**-24, BF16: 2.0**-133}


def _np_dequant64(packed, scales, biases, gs, bits, mode):
    # quantized_matmul dequantizes affine weights in float32 (scales widened first), not in
    # the scales dtype as dequantize() does
    if mode == "affine":
        scales, biases = scales.astype(np.float32), biases.astype(np.float32)
    return _formats.dequantize(xp, packed, scales, biases, gs, bits, mode, F32).astype(np.float64)


def _check_vs_float64(got, x, w_logical_nk, out_dtype):
    """|got - ref| <= (K + 2) u32 (|x| @ |W|) + u_T |ref| + tiny_T.

    The reference accumulates exact products in float32 (worst-case error of a K-term
    float32 dot product: K * u32 * sum|x||w|, +2 for slack in BLAS blocking) and rounds
    once to the output dtype (half an ulp <= u_T |ref|, or one subnormal step)."""
    x64 = x.astype(np.float64)
    w64 = w_logical_nk
    ref = np.matmul(x64, np.swapaxes(w64, -1, -2))
    mag = np.matmul(np.abs(x64), np.swapaxes(np.abs(w64), -1, -2))
    k = x.shape[-1]
    tol = (k + 2) * 2.0**-24 * mag + U[out_dtype] * np.abs(ref) + TINY[out_dtype]
    assert got.dtype == out_dtype and got.shape == ref.shape
    err = np.abs(got.astype(np.float64) - ref)
    assert (err <= tol).all(), float((err / tol).max())


@pytest.mark.parametrize(
    "mode,gs,bits",
    [("affine", 32, 3), ("affine", 64, 4), ("affine", 128, 1), ("mxfp4", 32, 4), ("mxfp8", 32, 8), ("nvfp4", 16, 4)],
)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_qmm_reference_vs_float64(mode, gs, bits, dtype):
    rng = np.random.default_rng(3)
    K, N = 256, 40
    w = rng.standard_normal((N, K)).astype(dtype)
    p, s, b = _formats.quantize(xp, w, gs, bits, mode)
    W = _np_dequant64(p, s, b, gs, bits, mode)
    for xshape in [(5, K), (K,), (2, 3, K)]:
        x = rng.standard_normal(xshape).astype(dtype)
        # block_rows=7 forces several blocks (and a ragged last one)
        got = _reference.quantized_matmul_reference(
            xp, x, p, s, b, transpose=True, group_size=gs, bits=bits, mode=mode, block_rows=7
        )
        _check_vs_float64(got, x, W, dtype)
    # transpose=False: weight stored as (K, N'), x @ W
    wt = rng.standard_normal((K, 256)).astype(dtype)
    p, s, b = _formats.quantize(xp, wt, gs, bits, mode)
    Wt = _np_dequant64(p, s, b, gs, bits, mode)
    x = rng.standard_normal((3, K)).astype(dtype)
    got = _reference.quantized_matmul_reference(
        xp, x, p, s, b, transpose=False, group_size=gs, bits=bits, mode=mode, block_rows=1
    )
    _check_vs_float64(got, x, Wt.T, dtype)


def test_qmm_reference_batched_weights_and_mixed_dtype():
    rng = np.random.default_rng(4)
    K, N = 128, 24
    w = rng.standard_normal((3, 1, N, K)).astype(np.float32)
    p, s, b = _formats.quantize(xp, w, 64, 4, "affine")
    W = _np_dequant64(p, s, b, 64, 4, "affine")
    x = rng.standard_normal((1, 2, 5, K)).astype(np.float32)
    got = _reference.quantized_matmul_reference(xp, x, p, s, b, group_size=64, bits=4, block_rows=5)
    assert got.shape == (3, 2, 5, N)
    _check_vs_float64(got, x, W, F32)
    # mixed dtypes: the result has x's dtype and the weight is dequantized in float32
    # (MLX would promote the result to float32; see the docstring)
    for xdt, wdt in ((F16, BF16), (BF16, F32), (F32, F16)):
        p, s, b = _formats.quantize(xp, w[0, 0].astype(wdt), 64, 4, "affine")
        got = _reference.quantized_matmul_reference(xp, x[0, 0].astype(xdt), p, s, b, group_size=64, bits=4)
        _check_vs_float64(got, x[0, 0].astype(xdt), _np_dequant64(p, s, b, 64, 4, "affine"), xdt)


def test_block_sizes():
    # default: the float32 copy of a block (all batch matrices) stays within 8 MiB
    assert _reference._rows_per_block(1, 4096, 1) == 512
    assert _reference._rows_per_block(8, 4096, 1) == 64
    assert _reference._rows_per_block(128, 4096, 32) == 32  # at least one unit (whole groups/periods)
    assert _reference._rows_per_block(1, 4096, 96) == 480  # a multiple of the unit, <= the budget
    assert _reference._rows_per_block(1, 4096, 32, block_rows=33) == 64  # explicit: rounded up
    with pytest.raises(ValueError):
        _reference._rows_per_block(1, 4096, 1, block_rows=0)


def test_default_blocking_splits_large_weights(monkeypatch):
    rng = np.random.default_rng(6)
    K, N = 256, 100
    w = rng.standard_normal((N, K)).astype(np.float32)
    p, s, b = _formats.quantize(xp, w, 64, 5, "affine")
    x = rng.standard_normal((3, K)).astype(np.float32)
    calls = []
    real = _formats.dequantize
    monkeypatch.setattr(_reference, "dequantize", lambda *a, **k: calls.append(a[1].shape) or real(*a, **k))
    monkeypatch.setattr(_reference, "_BLOCK_BYTES", 16 * K * 4)  # 16 rows per block
    got = _reference.quantized_matmul_reference(xp, x, p, s, b, group_size=64, bits=5)
    assert len(calls) == 7 and max(c[0] for c in calls) == 16
    _check_vs_float64(got, x, _np_dequant64(p, s, b, 64, 5, "affine"), F32)
    calls.clear()
    _reference.quantized_matmul_reference(xp, x, p, s, b, group_size=64, bits=5, block_rows=1000)
    assert len(calls) == 1


@pytest.mark.parametrize("transpose", [True, False])
def test_gather_reference_vs_loop(transpose):
    rng = np.random.default_rng(5)
    E, N, K, M = 4, 16, 64, 3
    shape = (E, N, K) if transpose else (E, K, N * 4)
    w = rng.standard_normal(shape).astype(np.float32)
    p, s, b = _formats.quantize(xp, w, 32, 4, "affine")
    W = _np_dequant64(p, s, b, 32, 4, "affine")
    if not transpose:
        W = np.swapaxes(W, -1, -2)
    x = rng.standard_normal((6, M, K)).astype(np.float32)
    lhs = np.array([[0, 5, 2], [1, 1, 3]], np.int32)
    rhs = np.array([3, 0, 3], np.uint32)
    got = _reference.gather_qmm_reference(xp, x, p, s, b, lhs, rhs, transpose=transpose, group_size=32, bits=4)
    assert got.shape == (2, 3, M, W.shape[-2])
    for i in range(2):
        for j in range(3):
            _check_vs_float64(got[i, j], x[lhs[i, j]], W[rhs[j]], F32)
    # default indices: all of x's batch against all of w's batch, broadcast
    got = _reference.gather_qmm_reference(xp, x[:4], p, s, b, transpose=transpose, group_size=32, bits=4)
    assert got.shape == (4, M, W.shape[-2])
    for i in range(4):
        _check_vs_float64(got[i], x[i], W[i], F32)


# ---------------------------------------------------------------------------
# comparisons with mlx.core
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mx():
    return pytest.importorskip("mlx.core")


def _mx_dtype(mx, dt):
    return {F32: mx.float32, F16: mx.float16, BF16: mx.bfloat16}[np.dtype(dt)]


def to_mx(mx, a):
    a = np.asarray(a)
    if a.dtype == BF16:
        return mx.array(a.view(np.uint16)).view(mx.bfloat16)
    return mx.array(a)


def to_np(mx, a):
    if a.dtype == mx.bfloat16:
        return np.array(a.view(mx.uint16)).view(BF16)
    return np.array(a)


@pytest.mark.parametrize("mode,gs,bits", ALL_FORMATS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_quantize_dequantize_match_mlx(mx, mode, gs, bits, dtype):
    rng = np.random.default_rng(zlib.crc32(f"{mode}{gs}{bits}{dtype}".encode()))
    w = random_weights(rng, (2, 8, 256), dtype, gs)
    want = mx.quantize(to_mx(mx, w), group_size=gs, bits=bits, mode=mode)
    got = _formats.quantize(xp, w, gs, bits, mode)
    assert_same_bits(got[0], np.array(want[0]))
    assert_same_bits(got[1], to_np(mx, want[1]))
    if mode == "affine":
        assert_same_bits(got[2], to_np(mx, want[2]))
    else:
        assert got[2] is None and len(want) == 2
    biases = want[2] if mode == "affine" else None
    for out in (None, F32, F16, BF16):
        kw = {} if out is None else {"dtype": _mx_dtype(mx, out)}
        d_want = mx.dequantize(want[0], want[1], biases, group_size=gs, bits=bits, mode=mode, **kw)
        d_got = _formats.dequantize(xp, *got, gs, bits, mode, out)
        assert_same_bits(d_got, to_np(mx, d_want))


@pytest.mark.parametrize("mode,gs,bits", FP_MODES)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_fp_modes_exhaustive_vs_mlx(mx, mode, gs, bits, dtype):
    """Every finite value of float16/bfloat16 (random float32) as an element under a fixed
    scale, and as the group maximum (i.e. through the scale computation)."""
    rng = np.random.default_rng(11)
    if dtype == F32:
        v = np.concatenate(
            [
                rng.uniform(0, 8, 20000).astype(np.float32),
                (np.arange(0, 8.25, 0.25)[:, None] + np.arange(-8, 9)[None, :] * 2.0**-21).ravel().astype(np.float32),
            ]
        )
        amax = np.exp(rng.uniform(-95, 85, 20000)).astype(np.float32)
        amax = np.concatenate([amax, np.nextafter(amax, np.float32(np.inf))])
    else:
        top = 0x7C00 if dtype == F16 else 0x7F80
        v = np.arange(0, top, dtype=np.uint16).view(dtype)
        amax = v[1:]
    maxval = 448.0 if bits == 8 else 6.0
    # elements: group max fixed at maxval so the scale is 1
    vv = v[v.astype(np.float32) <= maxval]
    if bits == 8:
        vv = np.concatenate([vv, (vv.astype(np.float32) * 56).astype(dtype)])
        vv = vv[vv.astype(np.float32) <= maxval]
    vv = np.concatenate([vv, -vv])
    n = -(-len(vv) // (gs - 1))
    n += n % 2  # MLX's nvfp4 CPU path needs an even number of 16-groups
    body = np.zeros(n * (gs - 1), dtype)
    body[: len(vv)] = vv
    w_el = np.concatenate([np.full((n, 1), maxval, dtype), body.reshape(n, gs - 1)], axis=1)
    # scales: one group per amax value
    amax = amax[np.isfinite(amax.astype(np.float32))]
    amax = amax[: len(amax) // 2 * 2]
    w_sc = np.zeros((len(amax), gs), dtype)
    w_sc[:, 0] = amax
    w_sc[:, 1] = (-amax.astype(np.float32) / 3).astype(dtype)
    w_sc[:, 2] = (amax.astype(np.float32) / 7).astype(dtype)
    for w in (w_el, w_sc):
        want = mx.quantize(to_mx(mx, w), group_size=gs, bits=bits, mode=mode)
        got = _formats.quantize(xp, w, gs, bits, mode)
        assert_same_bits(got[1], to_np(mx, want[1]))
        assert_same_bits(got[0], np.array(want[0]))


@pytest.mark.parametrize("mode,gs,bits", FP_MODES)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_fp_dequantize_all_codes_vs_mlx(mx, mode, gs, bits, dtype):
    """All 256 scale codes x all element codes (incl. e8m0 255 = 2**128 -> inf, e4m3 0x7F
    -> NaN, and powers of two that flush to 0 or overflow in float16)."""
    n_el = 2**bits
    per_row = gs * max(1, n_el // gs)
    codes = np.tile(np.arange(n_el, dtype=np.uint32), (256, per_row // n_el))
    packed = _packing.pack(xp, codes, bits)
    scales = np.repeat(np.arange(256, dtype=np.uint8)[:, None], per_row // gs, axis=1)
    want = mx.dequantize(
        mx.array(packed), mx.array(scales), group_size=gs, bits=bits, mode=mode, dtype=_mx_dtype(mx, dtype)
    )
    with np.errstate(over="ignore", invalid="ignore"):
        got = _formats.dequantize(xp, packed, scales, None, gs, bits, mode, dtype)
    assert_same_bits(got, to_np(mx, want), allow_nan_payload=True)


@pytest.mark.parametrize("dtype", [F16, BF16], ids=str)
def test_affine_double_rounding_matches_mlx(mx, dtype):
    rng = np.random.default_rng(12)
    scales = rng.uniform(0.5, 2, (512, 1)).astype(dtype)
    biases = (-rng.uniform(0, 40, (512, 1))).astype(dtype)
    codes = rng.integers(0, 16, (512, 32)).astype(np.uint32)
    packed = _packing.pack(xp, codes, 4)
    want = mx.dequantize(mx.array(packed), to_mx(mx, scales), to_mx(mx, biases), group_size=32, bits=4)
    got = _formats.dequantize(xp, packed, scales, biases, 32, 4, "affine")
    assert_same_bits(got, to_np(mx, want))
    # and the data really exercises double rounding
    single = (codes * scales.astype(np.float64) + biases.astype(np.float64)).astype(dtype)
    assert (bits_of(single) != bits_of(got)).any()


def _mlx_tolerance(x, packed, scales, biases, gs, bits, mode, ref, dtype, transpose):
    """Tolerance for |ours - mlx| in the quantized matmuls.

    Both sides use bit-identical dequantized weights (up to MLX's choice of dequantizing in
    float32 or in T, see below), so the difference is accumulation rounding:

    * ours: float32 accumulation, one final rounding to T;
    * MLX's CPU kernels: the SIMD path (transposed 1/2/4/8-bit) dequantizes and accumulates
      in float32; the other paths (transpose=False, 3/5/6-bit, fp modes) evaluate
      ``sum += x * (scale * q + bias)`` entirely in T, rounding after each operation.

    Each of those roundings is at most u_T |value| (u_T = 2**-24, 2**-11, 2**-8 for
    float32, float16, bfloat16): u_T |P_i| for the i-th partial sum and about
    u_T |x_k| (|q_k s_k| + |b_k|) for the dequantize-and-multiply of term k.  Modelled as
    independent zero-mean errors their sum has standard deviation below
    sigma = u_T sqrt(sum_i P_i**2 + sum_k (|x_k| (|q_k s_k| + |b_k|))**2).  We allow
    6 sigma (the largest deviation seen over ~26k outputs of these shapes was ~2 sigma)
    plus both final roundings (2 u_T |ref|) and one subnormal step.  For float32 this is
    ~6e-6 relative and would catch any wrong weight; for float16/bfloat16 MLX's own
    accumulation error dominates (~1% for bfloat16 at K=256), so those cases mainly check
    shapes, dtype promotion and broadcasting -- bit-exactness of the formats is tested
    separately."""
    if mode == "affine":
        codes = _packing.unpack(xp, packed, bits).astype(np.float64)
        qs = np.abs(codes * np.repeat(scales.astype(np.float64), gs, axis=-1)) + np.abs(
            np.repeat(biases.astype(np.float64), gs, axis=-1)
        )
    else:
        qs = np.abs(_formats.dequantize(xp, packed, scales, None, gs, bits, mode, F32).astype(np.float64))
    wlog = _formats.dequantize(xp, packed, scales, biases, gs, bits, mode, F32).astype(np.float64)
    if not transpose:
        qs, wlog = np.swapaxes(qs, -1, -2), np.swapaxes(wlog, -1, -2)
    x64 = x.astype(np.float64)
    if x64.ndim == 1:
        x64 = x64[None]
    prods = x64[..., :, None, :] * wlog[..., None, :, :]  # (..., M, N, K)
    p2 = (np.cumsum(prods, axis=-1) ** 2).sum(axis=-1)
    xq2 = ((np.abs(x64)[..., :, None, :] * qs[..., None, :, :]) ** 2).sum(axis=-1)
    u = U[dtype]
    tol = 6 * u * np.sqrt(p2 + xq2)
    tol = tol.reshape(ref.shape) if ref.ndim < tol.ndim else tol
    return tol + 2 * u * np.abs(ref) + TINY[dtype]


@pytest.mark.parametrize(
    "mode,gs,bits",
    [
        ("affine", 32, 1),
        ("affine", 64, 2),
        ("affine", 32, 3),
        ("affine", 128, 4),
        ("affine", 64, 5),
        ("affine", 32, 6),
        ("affine", 64, 8),
        ("mxfp4", 32, 4),
        ("mxfp8", 32, 8),
        ("nvfp4", 16, 4),
    ],
)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_quantized_matmul_vs_mlx(mx, mode, gs, bits, dtype):
    rng = np.random.default_rng(21)
    K, N = 256, 48
    for transpose, wshape, xshape in [
        (True, (N, K), (4, K)),
        (True, (N, K), (K,)),
        (True, (2, N, K), (2, 3, K)),
        (False, (K, 128), (2, 1, 3, K)),
    ]:
        w = rng.standard_normal(wshape).astype(dtype)
        x = rng.standard_normal(xshape).astype(dtype)
        p, s, b = _formats.quantize(xp, w, gs, bits, mode)
        mb = None if b is None else to_mx(mx, b)
        want = to_np(
            mx,
            mx.quantized_matmul(
                to_mx(mx, x), mx.array(p), to_mx(mx, s), mb, transpose=transpose, group_size=gs, bits=bits, mode=mode
            ),
        )
        got = _reference.quantized_matmul_reference(
            xp, x, p, s, b, transpose=transpose, group_size=gs, bits=bits, mode=mode, block_rows=32
        )
        assert got.dtype == want.dtype and got.shape == want.shape
        ref = np.asarray(got, np.float64)
        tol = _mlx_tolerance(x, p, s, b, gs, bits, mode, ref, dtype, transpose)
        err = np.abs(want.astype(np.float64) - ref)
        assert (err <= tol).all(), (transpose, wshape, xshape, float((err / tol).max()))


@pytest.mark.parametrize("mode,gs,bits", [("affine", 64, 4), ("affine", 32, 3), ("mxfp4", 32, 4), ("nvfp4", 16, 4)])
@pytest.mark.parametrize("dtype", [F32, BF16], ids=str)
@pytest.mark.parametrize("transpose", [True, False])
def test_gather_qmm_vs_mlx(mx, mode, gs, bits, dtype, transpose):
    rng = np.random.default_rng(31)
    E, K, N, M = 5, 128, 64, 2
    w = rng.standard_normal((E, N, K) if transpose else (E, K, N)).astype(dtype)
    p, s, b = _formats.quantize(xp, w, gs, bits, mode)
    x = rng.standard_normal((3, 1, M, K)).astype(dtype)
    lhs = np.array([[0, 2, 1, 1], [2, 0, 0, 1]], np.uint32)
    rhs = np.array([[4, 0, 4, 2], [1, 3, 3, 0]], np.uint32)
    mb = None if b is None else to_mx(mx, b)
    want = to_np(
        mx,
        mx.gather_qmm(
            to_mx(mx, x),
            mx.array(p),
            to_mx(mx, s),
            mb,
            mx.array(lhs),
            mx.array(rhs),
            transpose=transpose,
            group_size=gs,
            bits=bits,
            mode=mode,
        ),
    )
    got = _reference.gather_qmm_reference(
        xp, x, p, s, b, lhs, rhs, transpose=transpose, group_size=gs, bits=bits, mode=mode
    )
    assert got.shape == want.shape == (2, 4, M, N) and got.dtype == want.dtype
    xf = x.reshape(3, M, K)
    for i in range(2):
        for j in range(4):
            e = rhs[i, j]
            ref = np.asarray(got[i, j], np.float64)
            tol = _mlx_tolerance(
                xf[lhs[i, j]], p[e], s[e], None if b is None else b[e], gs, bits, mode, ref, dtype, transpose
            )
            err = np.abs(want[i, j].astype(np.float64) - ref)
            assert (err <= tol).all(), (i, j, float((err / tol).max()))


def test_huge_constant_groups_match_mlx(mx):
    """|w| > ~3.4e31 in a constant group overflows edge/scale in MLX's kernel (scale
    becomes -0, bias = w); codes are 0."""
    for dt in (F32, BF16):
        w = np.full((2, 32), 1e35, np.float32)
        w[1] = -3e38
        w = w.astype(dt)
        for bits in (1, 2, 4, 8):
            want = mx.quantize(to_mx(mx, w), group_size=32, bits=bits)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                got = _formats.quantize(xp, w, 32, bits, "affine")
            for g, m in zip(got, want):
                assert_same_bits(g, to_np(mx, m))


def test_runs_on_mlx_namespace(mx):
    """The format code only uses array API functions: run it with mlx.core as the
    namespace (plus ``signbit``, which MLX 0.32 lacks) and compare with the NumPy run."""
    ns = types.SimpleNamespace(**{k: getattr(mx, k) for k in dir(mx) if not k.startswith("__")})
    if not hasattr(mx, "signbit"):
        ns.signbit = lambda x: mx.logical_or(x < 0, mx.logical_and(x == 0, (1 / x) < 0))
    rng = np.random.default_rng(41)
    for mode, gs, bits in [("affine", 32, 3), ("affine", 64, 1), ("affine", 128, 8)] + FP_MODES:
        for dt in FLOATS:
            w = random_weights(rng, (2, 8, 256), dt, gs)
            want = _formats.quantize(xp, w, gs, bits, mode)
            got = _formats.quantize(ns, to_mx(mx, w), gs, bits, mode)
            for g, m in zip(got, want):
                if m is not None:
                    assert_same_bits(to_np(mx, g), m)
            assert_same_bits(
                to_np(mx, _formats.dequantize(ns, *got, gs, bits, mode, None)),
                _formats.dequantize(xp, *want, gs, bits, mode, None),
            )
        x = rng.standard_normal((2, 3, 256)).astype(np.float32)
        p, s, b = _formats.quantize(xp, rng.standard_normal((2, 40, 256)).astype(np.float32), gs, bits, mode)
        mb = None if b is None else mx.array(b)
        r_np = _reference.quantized_matmul_reference(xp, x, p, s, b, group_size=gs, bits=bits, mode=mode, block_rows=16)
        r_mx = _reference.quantized_matmul_reference(
            ns, mx.array(x), mx.array(p), mx.array(s), mb, group_size=gs, bits=bits, mode=mode, block_rows=16
        )
        np.testing.assert_allclose(np.array(r_mx), r_np, rtol=1e-5, atol=1e-4)  # float32 BLAS order
        li, ri = np.array([1, 0, 1], np.int32), np.array([0, 1, 1], np.int32)
        g_np = _reference.gather_qmm_reference(xp, x, p, s, b, li, ri, group_size=gs, bits=bits, mode=mode)
        g_mx = _reference.gather_qmm_reference(
            ns,
            mx.array(x),
            mx.array(p),
            mx.array(s),
            mb,
            mx.array(li),
            mx.array(ri),
            group_size=gs,
            bits=bits,
            mode=mode,
        )
        np.testing.assert_allclose(np.array(g_mx), g_np, rtol=1e-5, atol=1e-4)
