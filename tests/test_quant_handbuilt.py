"""Hand-built quantization cases whose answers come from docs/quantization-formats.md, not
from MLX.

tests/test_quant_formats.py compares most of the format code with ``mlx.core``; without MLX
installed a round-half-up, an unrounded mx/nv scale or nvfp4 distances in the wrong dtype
would survive there. Every expectation below is written by hand from the spec (the
derivation is in the comment next to it), or by a few lines of plain Python that restate
a spec formula (the bit stream of section 2, ``round`` = ties to even); none calls
arrayq's helpers. The values are chosen so that every step is exact in the dtype at hand,
hence every comparison is bit for bit (NaN compared as NaN).

The public API runs on the NumPy backend (float32, float16, bfloat16) and on the strict
example backend (float32 only: array_api_strict has no narrow floats), which takes the
generic reference for every quantized op.
"""

import ml_dtypes
import numpy as np
import pytest

import arrayq as aq
from arrayq.quant import _formats

F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)
BF16 = np.dtype(ml_dtypes.bfloat16)
NAMES = {F32: "float32", F16: "float16", BF16: "bfloat16"}

# (backend, dtype) pairs; strict has no float16/bfloat16
TARGETS = [("numpy", F32), ("numpy", F16), ("numpy", BF16), ("strict", F32)]
TARGET_IDS = [f"{b}-{NAMES[d]}" for b, d in TARGETS]


def _backend(name):
    if name == "strict":
        pytest.importorskip("arrayq_strict", reason="install examples/arrayq-strict (CI does)")
    return name


def _f32(x):
    """A float32 value as an exact Python float (so hand-written constants compare exactly)."""
    return float(np.float32(x))


def _bits(a):
    a = np.asarray(a)
    if a.dtype.kind == "f" or a.dtype == BF16:
        return a.view({2: np.uint16, 4: np.uint32}[a.dtype.itemsize])
    return a


def assert_bits(got, want, dtype):
    """``got`` has dtype ``dtype`` and the bits of ``want`` rounded to it (NaN matches NaN).

    The rounding of ``want`` is exact wherever the test uses it: every expected value is
    representable in ``dtype`` (checked here)."""
    got = np.asarray(got)
    assert got.dtype == dtype, (got.dtype, dtype)
    want64 = np.asarray(want, np.float64)
    want_t = want64.astype(dtype)
    finite = np.isfinite(want64)
    assert (want_t.astype(np.float64)[finite] == want64[finite]).all(), "expected value not exact in dtype"
    assert got.shape == want_t.shape, (got.shape, want_t.shape)
    same = (_bits(got) == _bits(want_t)) | (np.isnan(got.astype(np.float32)) & np.isnan(want64))
    assert same.all(), f"got {got[~same].tolist()} want {want_t[~same].tolist()} at {np.argwhere(~same).tolist()}"


def _words(codes, bits):
    """Section 2, literally: code i occupies stream bits [i*b, (i+1)*b), LSB first, and word
    j holds stream bits [32j, 32j+32)."""
    stream = sum(int(c) << (bits * i) for i, c in enumerate(codes))
    return [(stream >> (32 * j)) & 0xFFFFFFFF for j in range(len(codes) * bits // 32)]


def _rint(x):
    """Round to integer, ties to even (Python's round on floats)."""
    return round(x)


def _quantize(w, backend, mode, gs, bits):
    qw = aq.quantize(aq.to_backend(w, _backend(backend)), group_size=gs, bits=bits, mode=mode)
    packed = aq.to_numpy(qw.packed)
    scales = aq.to_numpy(qw.scales)
    biases = None if qw.biases is None else aq.to_numpy(qw.biases)
    assert packed.dtype == np.uint32
    return qw, packed, scales, biases


def _dequantize(qw, dtype):
    return aq.to_numpy(aq.dequantize(qw, dtype=NAMES[dtype]))


def _row(values, size, fill=0.0, dtype=F32):
    """A (1, size) weight: ``values`` first, then ``fill``."""
    w = np.full((1, size), fill, np.float64)
    w[0, : len(values)] = values
    w_t = w.astype(dtype)
    assert (w_t.astype(np.float64) == w).all(), "hand-picked weight not exact in dtype"
    return w_t


def test_word_helper_matches_the_spec_examples():
    # docs section 2: codes [1..8] at 4 bits pack into 0x87654321; 3-bit code #10 = 0b101
    # sets bit 30 of word 0 and bit 0 of word 1; 5-bit #6 starts at bit 30; 6-bit #5 at 30
    assert _words([1, 2, 3, 4, 5, 6, 7, 8], 4) == [0x87654321]
    c3 = [0] * 32
    c3[10] = 0b101
    assert _words(c3, 3) == [1 << 30, 1, 0]
    c5 = [0] * 32
    c5[6] = 0b11011
    assert _words(c5, 5) == [0b11 << 30, 0b110, 0, 0, 0]
    c6 = [0] * 16
    c6[5] = 0b111111
    assert _words(c6, 6) == [0b11 << 30, 0b1111, 0]


# ---------------------------------------------------------------------------
# affine (docs section 3)
# ---------------------------------------------------------------------------

# Group with w_min = -7.5, w_max = 0, 4 bits: |w_min| > |w_max|, so scale0 = 7.5 / 15 = 0.5,
# edge = -7.5, q0 = rint(-7.5 / 0.5) = -15, scale = -7.5 / -15 = 0.5 (> 0), bias = -7.5.
# code = rint((w + 7.5) / 0.5); the first eight values land on k + 0.5 or on exact codes:
#   -7.5 -> 0      -7.25 -> 0.5 -> 0 (even)    -6.75 -> 1.5 -> 2    -6.25 -> 2.5 -> 2 (even)
#   -5.75 -> 3.5 -> 4    -5.25 -> 4.5 -> 4 (even)    -0.75 -> 13.5 -> 14    -0.25 -> 14.5 -> 14
# and the 24 zeros -> 15.  Round-half-up would give 0 1 2 3 4 5 14 15 (0xFE543210).
TIES_4BIT = [-7.5, -7.25, -6.75, -6.25, -5.75, -5.25, -0.75, -0.25]
TIES_4BIT_WORDS = [0xEE442200, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF]
TIES_4BIT_DEQ = [-7.5, -7.5, -6.5, -6.5, -5.5, -5.5, -0.5, -0.5]


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_affine_code_ties_round_half_to_even(backend, dtype):
    w = _row(TIES_4BIT, 32, dtype=dtype)
    qw, p, s, b = _quantize(w, backend, "affine", 32, 4)
    assert p.tolist() == [TIES_4BIT_WORDS]
    assert_bits(s, [[0.5]], dtype)
    assert_bits(b, [[-7.5]], dtype)
    # dequantize: RN(RN(code * 0.5) - 7.5), exact here
    assert_bits(_dequantize(qw, dtype), [TIES_4BIT_DEQ + [0.0] * 24], dtype)


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_affine_negative_scale_mirrors_the_ties(backend, dtype):
    # The mirrored group: w_max = 7.5 dominates, so the scale is NEGATIVE: scale0 = -0.5,
    # edge = 7.5, q0 = rint(7.5 / -0.5) = -15, scale = 7.5 / -15 = -0.5, bias = 7.5 (the
    # maximum, not the minimum). code = rint((w - 7.5) / -0.5): the same codes as above.
    w = _row([-v for v in TIES_4BIT], 32, dtype=dtype)
    qw, p, s, b = _quantize(w, backend, "affine", 32, 4)
    assert p.tolist() == [TIES_4BIT_WORDS]
    assert_bits(s, [[-0.5]], dtype)
    assert_bits(b, [[7.5]], dtype)
    assert_bits(_dequantize(qw, dtype), [[-v for v in TIES_4BIT_DEQ] + [0.0] * 24], dtype)


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_affine_equal_magnitudes_take_the_negative_scale_and_q0_ties_to_even(backend, dtype):
    # [-7.5, 7.5, 0 x 30], 4 bits: |w_min| == |w_max| goes to the w_max side ("ties go here
    # too"): scale0 = -(15 / 15) = -1, edge = 7.5, q0 = rint(7.5 / -1) = rint(-7.5) = -8
    # (even; half-up would give -7), scale = 7.5 / -8 = -0.9375, bias = 7.5.
    # codes: -7.5 -> (-15) / -0.9375 = 16 -> clip 15;  7.5 -> 0;  0 -> 8.
    w = _row([-7.5, 7.5], 32, dtype=dtype)
    qw, p, s, b = _quantize(w, backend, "affine", 32, 4)
    assert p.tolist() == [[0x8888880F, 0x88888888, 0x88888888, 0x88888888]]
    assert_bits(s, [[-0.9375]], dtype)
    assert_bits(b, [[7.5]], dtype)
    # 15 * -0.9375 = -14.0625 (exact in every dtype), + 7.5 = -6.5625; 8 * -0.9375 + 7.5 = 0
    assert_bits(_dequantize(qw, dtype), [[-6.5625, 7.5] + [0.0] * 30], dtype)


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_affine_3bit_q0_tie_and_code_ties(backend, dtype):
    # 3 bits (n = 7), group [4.5, -2.5, 1.6875, 0.5625, 3.9375, 0 x 27]: w_max = 4.5 dominates,
    # scale0 = -(7 / 7) = -1, edge = 4.5, q0 = rint(-4.5) = -4 (even; rounding away from
    # zero gives -5), scale = 4.5 / -4 = -1.125, bias = 4.5.  code = rint((w - 4.5) / -1.125):
    #   4.5 -> 0;  -2.5 -> 6.22 -> 6;  1.6875 -> 2.5 -> 2;  0.5625 -> 3.5 -> 4;
    #   3.9375 -> 0.5 -> 0;  0 -> 4.
    w = _row([4.5, -2.5, 1.6875, 0.5625, 3.9375], 32, dtype=dtype)
    qw, p, s, b = _quantize(w, backend, "affine", 32, 3)
    codes = [0, 6, 2, 4, 0] + [4] * 27
    # by hand: 6 << 3 | 2 << 6 | 4 << 9 = 0x8B0, codes 5..9 (4 = 0b100) set bits 17, 20, 23, 26,
    # 29 -> word 0 = 0x249208B0; code #10 straddles: its bit 2 is bit 0 of word 1
    words = [0x249208B0, 0x49249249, 0x92492492]
    assert _words(codes, 3) == words
    assert p.tolist() == [words]
    assert_bits(s, [[-1.125]], dtype)
    assert_bits(b, [[4.5]], dtype)
    # dequantize: 6 * -1.125 = -6.75 + 4.5 = -2.25; 2 -> 2.25; 4 -> 0
    assert_bits(_dequantize(qw, dtype), [[4.5, -2.25, 2.25, 0.0, 4.5] + [0.0] * 27], dtype)


# Codes 0..n (wrapping) with the last code n: the weight w = -n/2 + 0.5 * code has
# w_min = -n/2 (code 0) and w_max = 0 (code n), so scale = 0.5 and bias = -n/2 exactly and
# every code comes back as written.  The words were worked out from section 2 by hand
# (e.g. 3 bits: codes 0..7 make the 24-bit unit 0xFAC688, then codes 0, 1, 2 sit at bits
# 24, 27 and 30 -> word 0 = 0x88FAC688; 6 bits: code 5 = 0b000101 starts at bit 30).
PACKING = {
    2: [0xE4E4E4E4, 0xE4E4E4E4],
    3: [0x88FAC688, 0xC688FAC6, 0xFAC688FA],
    4: [0x76543210, 0xFEDCBA98, 0x76543210, 0xFEDCBA98],
    5: [0x8A418820, 0xC5A92839, 0xCA307B9A, 0x38BDAB49, 0xFFBBCDEB],
    6: [0x440C2040, 0xA2481C61, 0x3CE34C2C, 0x544D2450, 0xA6585D65, 0xFDE75C6D],
    8: [0x03020100, 0x07060504, 0x0B0A0908, 0x0F0E0D0C, 0x13121110, 0x17161514, 0x1B1A1918, 0xFF1E1D1C],
}


def _packing_codes(bits):
    n = (1 << bits) - 1
    codes = [i % (n + 1) for i in range(32)]
    codes[-1] = n
    return codes


@pytest.mark.parametrize("bits", sorted(PACKING))
@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_affine_known_codes_pack_into_known_words(backend, dtype, bits):
    n = (1 << bits) - 1
    codes = _packing_codes(bits)
    assert _words(codes, bits) == PACKING[bits]
    w = _row([-n / 2 + 0.5 * c for c in codes], 32, dtype=dtype)
    qw, p, s, b = _quantize(w, backend, "affine", 32, bits)
    assert p.tolist() == [PACKING[bits]]
    assert_bits(s, [[0.5]], dtype)
    assert_bits(b, [[-n / 2]], dtype)
    assert_bits(_dequantize(qw, dtype), w.astype(np.float64), dtype)


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_affine_ties_every_bit_width(backend, dtype, bits):
    # As above (scale 0.5, bias -n/2), plus values at code k + 0.5 for k = 0, 1, ...:
    # rint gives k for even k and k + 1 for odd k.
    n = (1 << bits) - 1
    ks = list(range(min(n, 30)))
    if dtype == BF16 and bits == 8:
        ks = list(range(128, 158))  # bfloat16 spacing is 0.5 beyond 64: take codes from 128 (-63.25)
    vals = [-n / 2, 0.0] + [-n / 2 + 0.5 * (k + 0.5) for k in ks]
    codes = [0, n] + [k if k % 2 == 0 else k + 1 for k in ks]
    vals += [0.0] * (32 - len(vals))
    codes += [n] * (32 - len(codes))
    w = _row(vals, 32, dtype=dtype)
    _, p, s, b = _quantize(w, backend, "affine", 32, bits)
    assert p.tolist() == [_words(codes, bits)]
    assert_bits(s, [[0.5]], dtype)
    assert_bits(b, [[-n / 2]], dtype)


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_affine_1bit_midpoint_and_zero_sign(backend, dtype):
    # 1 bit: scale = w_max - w_min = 3, bias = w_min = -1; (0.5 + 1) / 3 = 0.5 -> 0 (even),
    # (0 + 1) / 3 -> 0, 2 -> 1.  Group 2 is [+0, -0, ...]: bias is +0, the first zero.
    w = np.zeros((1, 64), np.float64)
    w[0, :3] = [-1.0, 2.0, 0.5]
    w[0, 33::2] = -0.0
    w = w.astype(dtype)
    qw, p, s, b = _quantize(w, backend, "affine", 32, 1)
    assert p.tolist() == [[1 << 1, 0]]
    eps = _f32(1e-7)  # scale max(0, float32(1e-7)) for the zero group
    assert_bits(s, [[3.0, float(np.float64(eps).astype(dtype))]], dtype)
    assert_bits(b, [[-1.0, 0.0]], dtype)  # +0.0 (bits compared)
    assert_bits(_dequantize(qw, dtype)[0, :3], [-1.0, 2.0, -1.0], dtype)


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_affine_zero_and_constant_groups(backend, dtype):
    # zeros: scale = max(0 / 15, eps) = eps, |0| > |0| is false -> scale = -eps, edge = 0,
    # q0 = 0 -> bias = 0, codes 0.  Constant c: scale0 = -eps, q0 = rint(c / -eps) != 0,
    # scale = c / q0 (about -1e-7, negative for either sign of c), bias = c exactly, codes 0.
    w = np.zeros((1, 128), np.float64)
    w[0, 32:64] = -0.0
    w[0, 64:96] = 1.5
    w[0, 96:] = -3.0
    w = w.astype(dtype)
    qw, p, s, b = _quantize(w, backend, "affine", 32, 4)
    assert not p.any()
    eps = np.float32(1e-7)

    def refit(c):  # float32 steps of section 3.1, then RN_T
        c = np.float32(c)
        q0 = np.float32(round(float(c / -eps)))
        return float((c / q0).astype(dtype))

    want_s = [float((-eps).astype(dtype))] * 2 + [refit(1.5), refit(-3.0)]
    assert all(v < 0 for v in want_s)
    assert_bits(s, [want_s], dtype)
    assert_bits(b, [[0.0, 0.0, 1.5, -3.0]], dtype)
    assert_bits(_dequantize(qw, dtype), [[0.0] * 64 + [1.5] * 32 + [-3.0] * 32], dtype)


def test_affine_dequantize_rounds_twice():
    # section 3.3's own example: code 5, float16 scale 0x3DD2 (1.455078125), bias 0xC965
    # (-10.7890625): 5 * s = 7.275390625 -> 7.2734375 (tie, to even), + b = -3.515625, while
    # one rounding of 5 s + b gives -3.513671875.
    s = np.array([[0x3DD2]], np.uint16).view(F16)
    b = np.array([[0xC965]], np.uint16).view(F16)
    assert float(s[0, 0]) == 1.455078125 and float(b[0, 0]) == -10.7890625
    packed = np.array([[0x55555555] * 4], np.uint32)  # code 5 everywhere
    qw = aq.QuantizedWeight(packed, s, b, 32, 4, "affine")
    assert_bits(_dequantize(qw, F16), [[-3.515625] * 32], F16)


# ---------------------------------------------------------------------------
# mxfp4 / mxfp8 / nvfp4 (docs section 4)
# ---------------------------------------------------------------------------

# e2m1 codes: bit 3 sign, magnitudes [0, 0.5, 1, 1.5, 2, 3, 4, 6].  With a scale of exactly 1
# the values are the elements themselves.  Ties go to the smaller magnitude (first minimum
# of |v - lut|), negative values that round to 0 give +0 (code 0):
FP4_CASES = [
    (6.0, 0x7),
    (-6.0, 0xF),
    (0.25, 0x0),  # 0 or 0.5 -> 0
    (0.75, 0x1),  # 0.5 or 1 -> 0.5
    (1.25, 0x2),  # 1 or 1.5 -> 1
    (1.75, 0x3),  # 1.5 or 2 -> 1.5
    (2.5, 0x4),  # 2 or 3 -> 2
    (3.5, 0x5),  # 3 or 4 -> 3
    (5.0, 0x6),  # 4 or 6 -> 4
    (-0.25, 0x0),  # -> +0, never 0x8
    (-0.75, 0x9),
    (-5.0, 0xE),
    (-0.0, 0x0),
    (0.125, 0x0),
    (2.625, 0x5),  # nearer 3
    (-1.0, 0xA),
]
FP4_VALUE = dict(enumerate([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]))
FP4_VALUE.update({c | 8: -v for c, v in list(FP4_VALUE.items())})


def _fp4(code):
    return FP4_VALUE[code]


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_mxfp4_element_ties_with_unit_scale(backend, dtype):
    # max |w| = 6 -> s = 6 / 6 = 1 = 2**0 exactly -> e = 0, scale code 127; v = w.
    w_t = _row([v for v, _ in FP4_CASES], 32, dtype=dtype)
    codes = [c for _, c in FP4_CASES] + [0] * (32 - len(FP4_CASES))
    qw, p, s, _ = _quantize(w_t, backend, "mxfp4", 32, 4)
    assert s.tolist() == [[127]]
    assert p.tolist() == [_words(codes, 4)]
    assert_bits(_dequantize(qw, dtype), [[_fp4(c) for c in codes]], dtype)


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_nvfp4_element_ties_with_unit_scale(backend, dtype):
    # max |w| = 6 -> s = 1 -> e4m3 code 0x38 (exponent 7, mantissa 0), sd = 1; v = w.
    cases = FP4_CASES[:16]
    w = _row([v for v, _ in cases], 16, dtype=dtype)
    codes = [c for _, c in cases]
    qw, p, s, _ = _quantize(w, backend, "nvfp4", 16, 4)
    assert s.tolist() == [[0x38]]
    assert p.tolist() == [_words(codes, 4)]
    assert_bits(_dequantize(qw, dtype), [[_fp4(c) for c in codes]], dtype)


# mx scales: s = RN_T(max|w| / 6), e = ceil(log2 s) (the smallest power of two >= s),
# scale code e + 127, elements v = w / 2**e.
MX_SCALE_CASES = [
    # (max |w|, e, element w -> code)
    (6.0, 0, [(6.0, 0x7), (3.0, 0x5)]),  # s = 1 exactly: e = 0, not 1
    (12.0, 1, [(12.0, 0x7), (5.0, 0x4)]),  # s = 2 exactly; 5 / 2 = 2.5 -> 2
    (3.0, -1, [(3.0, 0x7), (0.375, 0x1)]),  # s = 0.5 exactly; 0.75 -> 0.5
    (7.0, 1, [(7.0, 0x5), (-3.0, 0xB)]),  # s = 7/6 -> e = 1 (round(log2) would say 0); 3.5 -> 3
    (4.125, 0, [(4.125, 0x6), (2.25, 0x4)]),  # s = 0.6875 -> e = 0 (round(log2) would say -1)
    (5.0, 0, [(5.0, 0x6), (1.25, 0x2)]),  # s = 0.833 -> e = 0 (floor would say -1)
    (6.5, 1, [(6.5, 0x5), (1.5, 0x1)]),  # s = 1.083 -> e = 1; 3.25 -> 3, 0.75 -> 0.5
]


@pytest.mark.parametrize("case", range(len(MX_SCALE_CASES)))
@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_mxfp4_scale_is_the_next_power_of_two(backend, dtype, case):
    amax, e, elems = MX_SCALE_CASES[case]
    w = _row([amax] + [v for v, _ in elems[1:]], 32, dtype=dtype)
    qw, p, s, _ = _quantize(w, backend, "mxfp4", 32, 4)
    codes = [c for _, c in elems] + [0] * (32 - len(elems))
    assert s.tolist() == [[127 + e]]
    assert p.tolist() == [_words(codes, 4)]
    assert_bits(_dequantize(qw, dtype), [[_fp4(c) * 2.0**e for c in codes]], dtype)


def _ulp1(dtype):
    """The spacing of ``dtype`` in [1, 2)."""
    return {F32: 2.0**-23, F16: 2.0**-10, BF16: 2.0**-7}[dtype]


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_mx_scale_just_above_a_power_of_two_rounds_up(backend, dtype):
    # The neighbours of 6 in T are 6 +- 4 ulp1 (spacing in [4, 8)).  max|w| = 6 + 4 ulp1:
    # s = RN_T(1 + 2/3 ulp1) = 1 + ulp1 > 1 -> e = 1 (code 128), v = w / 2 = 3 + 2 ulp1 -> 3
    # (code 5).  max|w| = 6 - 4 ulp1: s = RN_T(1 - 2/3 ulp1) < 1 -> e = 0 (code 127), -> 6.
    u = _ulp1(dtype)
    w = _row([6.0 + 4 * u], 64, dtype=dtype)
    w[0, 32] = 6.0 - 4 * u
    _, p, s, _ = _quantize(w, backend, "mxfp4", 32, 4)
    assert s.tolist() == [[128, 127]]
    assert p[0, [0, 4]].tolist() == [0x5, 0x7]
    # mxfp8, maxval 448 (spacing 256 ulp1 there): 448 + 256 ulp1 -> s = 1 + ulp1 after
    # rounding (4/7 ulp1 above 1) -> code 128, v = 224 + 128 ulp1 -> 224 (0x76);
    # 448 - 256 ulp1 -> s < 1 -> code 127, v -> 448 (0x7E: the spacing of e4m3 is 32 there)
    w = _row([448.0 + 256 * u], 64, dtype=dtype)
    w[0, 32] = 448.0 - 256 * u
    _, p, s, _ = _quantize(w, backend, "mxfp8", 32, 8)
    assert s.tolist() == [[128, 127]]
    assert p[0, [0, 8]].tolist() == [0x76, 0x7E]


@pytest.mark.parametrize("backend", ["numpy"])
def test_mx_scale_is_rounded_to_the_weight_dtype_first(backend):
    # float16, where s = max|w| / maxval lands among float16 subnormals (multiples of 2**-24):
    # mxfp4: max|w| = 7 * 2**-24 -> max/6 = 1.17 * 2**-24 -> RN_f16 = 2**-24 -> e = -24
    #   (code 103); unrounded, e would be -23.  v = 7 * 2**-24 / 2**-24 = 7 -> 6 (code 7).
    w = _row([7 * 2.0**-24, 3 * 2.0**-24], 32, dtype=F16)
    qw, p, s, _ = _quantize(w, backend, "mxfp4", 32, 4)
    assert s.tolist() == [[127 - 24]]
    assert p[0, 0] == 0x7 | (0x5 << 4)  # 3 -> 3
    assert_bits(_dequantize(qw, F16)[0, :2], [6 * 2.0**-24, 3 * 2.0**-24], F16)
    # mxfp8: max|w| = 2**-20 -> 2**-20 / 448 < 2**-25 -> RN_f16 = 0 -> e = 0 (code 127), and
    #   v = 2**-20 is below half the smallest e4m3 subnormal (2**-10) -> code 0.  Unrounded,
    #   s would give e = -28 and v = 2**8 = 256 (code 0x78).
    w = _row([2.0**-20], 32, dtype=F16)
    qw, p, s, _ = _quantize(w, backend, "mxfp8", 32, 8)
    assert s.tolist() == [[127]]
    assert not p.any()


# e4m3 (fp8 e4m3fn): sign, 4 exponent bits (bias 7), 3 mantissa bits; subnormals m * 2**-9.
# Round to nearest, ties to even; the sign bit is kept for zeros and underflows.
E4M3_CASES = [
    (448.0, 0x7E),
    (1.0, 0x38),
    (-2.5, 0xC2),  # -(2 * 1.25): exponent 8, mantissa 2
    (2.0**-9, 0x01),  # smallest subnormal
    (3 * 2.0**-10, 0x02),  # 1.5 * 2**-9: tie between 1 and 2 -> 2 (even)
    (2.0**-10, 0x00),  # 0.5 * 2**-9: tie between 0 and 1 -> 0 (even)
    (-(2.0**-10), 0x80),  # underflow keeps the sign
    (5 * 2.0**-10, 0x02),  # 2.5 * 2**-9 -> 2 (even)
    (7 * 2.0**-10, 0x04),  # 3.5 * 2**-9 -> 4 (even)
    (7 * 2.0**-9, 0x07),  # largest subnormal
    (15 * 2.0**-10, 0x08),  # 7.5 * 2**-9: tie between 0x07 and 2**-6 (0x08) -> 0x08
    (2.0**-6, 0x08),  # smallest normal
    (1.0625, 0x38),  # tie between 1 and 1.125 -> 1 (mantissa 0)
    (1.1875, 0x3A),  # tie between 1.125 and 1.25 -> 1.25 (mantissa 2)
    (432.0, 0x7E),  # tie between 416 (m 5) and 448 (m 6) -> 448
    (240.0, 0x77),  # 128 * 1.875: exponent 14, mantissa 7
    (-0.0, 0x80),
    (0.0, 0x00),
    (-(2.0**-9), 0x81),
]
E4M3_VALUE = {0x7E: 448.0, 0x38: 1.0, 0xC2: -2.5, 0x77: 240.0, 0x3A: 1.25, 0x80: -0.0, 0x00: 0.0}
E4M3_VALUE.update({c: c * 2.0**-9 for c in range(1, 9)})
E4M3_VALUE[0x81] = -(2.0**-9)


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_mxfp8_elements_subnormals_and_ties(backend, dtype):
    # max |w| = 448 -> s = 1 -> e = 0 (code 127); v = w.
    vals = [v for v, _ in E4M3_CASES]
    w = _row(vals, 32, dtype=dtype)
    codes = [c for _, c in E4M3_CASES] + [0] * (32 - len(E4M3_CASES))
    qw, p, s, _ = _quantize(w, backend, "mxfp8", 32, 8)
    assert s.tolist() == [[127]]
    assert p.tolist() == [_words(codes, 8)]
    assert_bits(_dequantize(qw, dtype), [[E4M3_VALUE[c] for c in codes]], dtype)


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_mxfp8_scaled_elements_become_subnormal(backend, dtype):
    # max |w| = 1792 = 448 * 4 -> s = 4 -> e = 2 (code 129); v = w / 4:
    #   2**-8 -> 2**-10: tie -> 0x00;  3 * 2**-8 -> 1.5 * 2**-9 -> 0x02;  -(2**-7) -> -(2**-9): 0x81
    w = _row([1792.0, 2.0**-8, 3 * 2.0**-8, -(2.0**-7)], 32, dtype=dtype)
    qw, p, s, _ = _quantize(w, backend, "mxfp8", 32, 8)
    assert s.tolist() == [[129]]
    assert p[0, 0] == 0x7E | (0x00 << 8) | (0x02 << 16) | (0x81 << 24)
    # 0x02 = 2 * 2**-9, times 4 = 2**-6
    assert_bits(_dequantize(qw, dtype)[0, :4], [1792.0, 0.0, 2.0**-6, -(2.0**-7)], dtype)


# nvfp4: s = RN_T(max|w| / 6) rounded to e4m3 (section 4.3 rounding) -> sd; v = RN_T(w / sd).
NV_SCALE_CASES = [
    # (max |w|, scale code, sd, [(w, code)])
    # s = 1.0625: tie between 1 and 1.125 -> 1 (0x38).  1.3125 / 1 -> 1.5 (code 3), while
    # 1.3125 / 1.0625 = 1.235 would give 1 (code 2); 2.625 -> 3 (code 5), vs 2.47 -> 2.
    (6.375, 0x38, 1.0, [(6.375, 0x7), (1.3125, 0x3), (2.625, 0x5)]),
    # s = 1.1875: tie between 1.125 and 1.25 -> 1.25 (0x3A).  3.125 / 1.25 = 2.5 -> 2
    # (code 4), while 3.125 / 1.1875 = 2.63 would give 3; 7.125 / 1.25 = 5.7 -> 6.
    # -1.5625 / 1.25 = -1.25: tie -> -1 (code 0xA)
    (7.125, 0x3A, 1.25, [(7.125, 0x7), (3.125, 0x4), (-1.5625, 0xA)]),
    # s = 6.5 / 6 = 1.083 -> 1.125 (0x39); 1.375 / 1.125 = 1.22 -> 1 (vs 1.27 -> 1.5)
    (6.5, 0x39, 1.125, [(6.5, 0x7), (1.375, 0x2)]),
    # subnormal e4m3 scales (m * 2**-9):
    # s = 0.75 * 2**-9 -> 1 * 2**-9 (0x01); v = 0.0087890625 / 2**-9 = 4.5 -> 4 (code 6)
    (6 * 0.75 * 2.0**-9, 0x01, 2.0**-9, [(6 * 0.75 * 2.0**-9, 0x6)]),
    # s = 1.5 * 2**-9: tie -> 2 * 2**-9 (0x02); v = 4.5 -> 4
    (6 * 1.5 * 2.0**-9, 0x02, 2.0**-8, [(6 * 1.5 * 2.0**-9, 0x6)]),
    # s = 2.5 * 2**-9: tie -> 2 * 2**-9 (0x02); v = 7.5 -> 6 (code 7)
    (6 * 2.5 * 2.0**-9, 0x02, 2.0**-8, [(6 * 2.5 * 2.0**-9, 0x7)]),
    # s = 0.5 * 2**-9 (max|w| = 6 * 2**-10): tie -> 0 (code 0), and the whole group is 0
    (6 * 2.0**-10, 0x00, 0.0, [(6 * 2.0**-10, 0x0), (-3 * 2.0**-10, 0x0)]),
]


@pytest.mark.parametrize("case", range(len(NV_SCALE_CASES)))
@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_nvfp4_scale_is_rounded_to_e4m3(backend, dtype, case):
    amax, scale_code, sd, elems = NV_SCALE_CASES[case]
    w = _row([v for v, _ in elems], 16, dtype=dtype)
    qw, p, s, _ = _quantize(w, backend, "nvfp4", 16, 4)
    codes = [c for _, c in elems] + [0] * (16 - len(elems))
    assert s.tolist() == [[scale_code]]
    assert p.tolist() == [_words(codes, 4)]
    assert_bits(_dequantize(qw, dtype), [[_fp4(c) * sd for c in codes]], dtype)


@pytest.mark.parametrize("backend,dtype", TARGETS, ids=TARGET_IDS)
def test_nvfp4_saturated_scale_and_distance_dtype(backend, dtype):
    # The e4m3 scale saturates at 448 (code 0x7E) and v = RN_T(w / 448) can be huge.  The
    # distances |v - lut[j]| are computed in FLOAT32 for nvfp4 (section 4.3):
    # * w = +-2**20: v = RN_T(+-2340.57...) (bfloat16: +-2336).  In float32 the nearest
    #   table value is +-6 (code 0x7 / 0xF); in bfloat16 arithmetic (spacing 16 there) all
    #   sixteen distances would round to 2336 and the first, code 0, would win.  (float16
    #   cannot hold 2**20; it gets 2**15 -> v = 73.1 -> +-6 as well.)
    # * w = 2**40 (not float16): v ~ 2.45e9, whose float32 spacing is 256: all float32
    #   distances round to the same value and code 0 wins (MLX's argmin).
    big = 2.0**15 if dtype == F16 else 2.0**20
    vals, codes = [big, -big], [0x7, 0xF]
    if dtype != F16:
        vals.append(2.0**40)
        codes.append(0x0)
    w = _row(vals, 16, dtype=dtype)
    # arrayq.quantize refuses magnitudes above 448 * 6 (they clip); the format itself, the
    # format code that MLX's quantize matches bit for bit, still defines what they become
    with pytest.raises(aq.QuantizationError, match="up to 2688"):
        _quantize(w, backend, "nvfp4", 16, 4)
    with aq.default_backend(_backend(backend)):  # the format code's tables land there too
        packed, scales, _ = _formats.quantize(aq, aq.to_backend(w, backend), 16, 4, "nvfp4")
    p, s = aq.to_numpy(packed), aq.to_numpy(scales)
    qw = aq.QuantizedWeight(packed, scales, None, 16, 4, "nvfp4", NAMES[dtype])
    codes += [0] * (16 - len(codes))
    assert s.tolist() == [[0x7E]]
    assert p.tolist() == [_words(codes, 4)]
    assert_bits(_dequantize(qw, dtype), [[_fp4(c) * 448.0 for c in codes]], dtype)


# ---------------------------------------------------------------------------
# dequantize from hand-made codes (docs section 4.4)
# ---------------------------------------------------------------------------


def _fp_weight(codes, scale_codes, mode, bits, gs):
    packed = np.array([_words(codes, bits)], np.uint32)
    return aq.QuantizedWeight(packed, np.array([scale_codes], np.uint8), None, gs, bits, mode)


@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply:RuntimeWarning")  # 0 * inf
def test_mx_dequantize_rounds_the_power_of_two_to_the_output_dtype():
    # fp4 codes 7 (6.0) and 1 (0.5) in two groups with scale codes 101 (2**-26) and 143
    # (2**16).  In float16, 2**-26 rounds to 0 (below half the smallest subnormal), so
    # 6 * 0 = 0 although 6 * 2**-26 = 1.5 * 2**-24 would round to 2**-23; and 2**16 is
    # inf, so 0.5 * inf = inf although 0.5 * 2**16 = 32768 is finite.  bfloat16 and float32
    # hold both powers exactly.
    qw = _fp_weight([7, 1] + [0] * 30 + [7, 1] + [0] * 30, [101, 143], "mxfp4", 4, 32)
    got = _dequantize(qw, F16)
    assert_bits(got[0, [0, 1, 32, 33]], [0.0, 0.0, np.inf, np.inf], F16)
    for dtype in (BF16, F32):
        want = [6 * 2.0**-26, 2.0**-27, 6 * 2.0**16, 2.0**15]
        assert_bits(_dequantize(qw, dtype)[0, [0, 1, 32, 33]], want, dtype)


@pytest.mark.parametrize("dtype", [F32, F16, BF16], ids=str)
def test_e4m3_dequantize_subnormals_and_nan(dtype):
    # mxfp8 with scale code 127 (2**0): the values are the e4m3 values themselves
    codes = [0x01, 0x07, 0x08, 0x80, 0x81, 0x7E, 0xFE, 0x7F, 0xFF, 0x3A, 0x77] + [0] * 21
    want = [2.0**-9, 7 * 2.0**-9, 2.0**-6, -0.0, -(2.0**-9), 448.0, -448.0, np.nan, np.nan, 1.25, 240.0]
    qw = _fp_weight(codes, [127], "mxfp8", 8, 32)
    assert_bits(_dequantize(qw, dtype), [want + [0.0] * 21], dtype)
    # nvfp4: e4m3 scale codes 0x01 (2**-9), 0x7E (448), 0x7F (NaN)
    qw = _fp_weight(
        [7, 15, 1, 9] + [0] * 12 + [7, 15, 1, 9] + [0] * 12 + [7] + [0] * 15, [0x01, 0x7E, 0x7F], "nvfp4", 4, 16
    )
    got = _dequantize(qw, dtype)
    assert_bits(got[0, :4], [6 * 2.0**-9, -6 * 2.0**-9, 2.0**-10, -(2.0**-10)], dtype)
    assert_bits(got[0, 16:20], [2688.0, -2688.0, 224.0, -224.0], dtype)
    assert np.isnan(got[0, 32].astype(np.float32))


# ---------------------------------------------------------------------------
# quantized_matmul on hand-built weights (docs section 6)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_quantized_matmul_affine_handbuilt(backend):
    # The tie group's weight (scale 0.5, bias -7.5) times one-hot rows: x @ W.T picks
    # W's entries.  Every product and sum is exact in float32, so the result is exact
    # whatever the accumulation order.
    qw = aq.QuantizedWeight(np.array([TIES_4BIT_WORDS], np.uint32), np.float32([[0.5]]), np.float32([[-7.5]]), 32, 4)
    qw = aq.to_backend(qw, _backend(backend))
    want = np.array([TIES_4BIT_DEQ + [0.0] * 24]).T
    for m in (1, 7, 32):  # NumPy takes different kernels for decode-sized and larger x
        x = aq.to_backend(np.eye(32, dtype=np.float32)[:m], backend)
        assert_bits(aq.to_numpy(aq.linalg.quantized_matmul(x, qw)), want[:m], F32)
    # transpose=False: the same words as a (K = 1, N = 32) weight; x (2, 1) = [[1], [-2]]
    x = aq.to_backend(np.float32([[1.0], [-2.0]]), backend)
    got = aq.to_numpy(aq.linalg.quantized_matmul(x, qw, transpose=False))
    row = np.array(TIES_4BIT_DEQ + [0.0] * 24)
    assert_bits(got, np.stack([row, -2 * row + 0.0]), F32)  # a sum of products: +0, not -0


def test_quantized_matmul_dequantizes_affine_in_float32():
    # bfloat16 scale 0x3FC4 (1.53125) and bias 0xC1D0 (-26), code 15: in float32
    # 15 * 1.53125 - 26 = -3.03125 exactly (what quantized_matmul uses), while dequantize
    # rounds 22.96875 to bfloat16 (23.0) first and returns -3.0.
    s = np.array([[0x3FC4]], np.uint16).view(BF16)
    b = np.array([[0xC1D0]], np.uint16).view(BF16)
    qw = aq.QuantizedWeight(np.array([[0xFFFFFFFF] * 4], np.uint32), s, b, 32, 4)
    assert_bits(_dequantize(qw, BF16), [[-3.0] * 32], BF16)
    got = aq.to_numpy(aq.linalg.quantized_matmul(np.eye(32, dtype=np.float32), qw))
    assert_bits(got, [[-3.03125]] * 32, F32)


@pytest.mark.parametrize("backend", ["numpy", "strict"])
def test_quantized_matmul_fp_modes_handbuilt(backend):
    # mxfp4 codes 7, 0xD (-3), 1 with scale code 126 (2**-1): W = [3, -1.5, 0.25, 0...];
    # nvfp4 codes with e4m3 scale 0x3A (1.25); mxfp8 e4m3 subnormals with scale 2**3.
    x = aq.to_backend(np.float32([[1.0] * 16 + [2.0] * 16]), _backend(backend))
    qw = aq.to_backend(_fp_weight([7, 0xD, 1] + [0] * 29, [126], "mxfp4", 4, 32), backend)
    got = aq.to_numpy(aq.linalg.quantized_matmul(x, qw))
    assert_bits(got, [[3.0 - 1.5 + 0.25]], F32)
    qw = aq.to_backend(_fp_weight([7, 0xD] + [0] * 14 + [1] + [0] * 15, [0x3A, 0x3A], "nvfp4", 4, 16), backend)
    got = aq.to_numpy(aq.linalg.quantized_matmul(x, qw))
    assert_bits(got, [[(6 - 3) * 1.25 + 2 * 0.5 * 1.25]], F32)
    qw = aq.to_backend(_fp_weight([0x01, 0x81, 0x07] + [0] * 29, [130], "mxfp8", 8, 32), backend)
    got = aq.to_numpy(aq.linalg.quantized_matmul(x, qw))
    assert_bits(got, [[(1 - 1 + 7) * 2.0**-9 * 8]], F32)
