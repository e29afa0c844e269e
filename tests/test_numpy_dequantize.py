"""The NumPy backend's own affine ``dequantize`` (``_fastpath.dequantize``, a handful of
NumPy calls where the array-API reference takes dozens of backend calls: a compiled decode
step's embedding row was 45 plan steps) against two independent definitions, bit for bit:

* the reference, ``arrayq.quant._formats.dequantize``, run on the NumPy backend's
  primitives (what every backend without a native op runs);
* MLX's own ``mx.dequantize`` (the format's definition), where MLX is installed.

Both round ``scale * q`` to the scales' dtype and ``+ bias`` again: a fused or float32-only
product differs from them in the last bit of bfloat16/float16 scales, which these tests see.
"""

from __future__ import annotations

import itertools

import ml_dtypes
import numpy as np
import pytest

import arrayq as aq
from arrayq.quant import QuantizedWeight, _fallback, _formats
from arrayq_numpy import _fastpath

BITS = (2, 3, 4, 5, 6, 8)
SCALE_DTYPES = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _weight(
    rng: np.random.Generator, lead: tuple[int, ...], cols: int, group_size: int, bits: int, sd: object
) -> QuantizedWeight:
    """Random codes (every value of the width) with scales and biases of dtype ``sd``."""
    rows = lead[-1]
    codes = rng.integers(0, 1 << bits, size=(*lead, cols), dtype=np.uint32)
    packed = _formats_pack(codes.reshape(-1, cols), bits).reshape(*lead, cols * bits // 32)
    scales = (rng.standard_normal((*lead, cols // group_size)) * 0.1).astype(sd)
    biases = (rng.standard_normal((*lead, cols // group_size)) * 0.5).astype(sd)
    assert rows == packed.shape[-2]
    return QuantizedWeight(packed, scales, biases, group_size, bits)


def _formats_pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """MLX's packing written out: each row one little-endian bit stream of ``bits``-bit
    codes, cut into uint32 words (Python integers: independent of the packers under test)."""
    words = []
    for row in codes:
        stream = sum(int(c) << (bits * i) for i, c in enumerate(row))
        words.append([(stream >> (32 * j)) & 0xFFFFFFFF for j in range(len(row) * bits // 32)])
    return np.array(words, np.uint32)


def _reference(qw: QuantizedWeight, dtype: object) -> np.ndarray:
    backend = aq.get_backend("numpy")
    out = _fallback._run_reference(
        backend, _formats.dequantize, qw.packed, qw.scales, qw.biases, qw.group_size, qw.bits, qw.mode, dtype
    )
    return np.asarray(out)


def _bits_equal(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    width = {2: np.uint16, 4: np.uint32}[got.dtype.itemsize]
    np.testing.assert_array_equal(got.view(width), want.view(width))


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("scale_dtype", list(SCALE_DTYPES))
def test_matches_the_reference_bit_for_bit(bits: int, scale_dtype: str) -> None:
    rng = np.random.default_rng(bits)
    for group_size, lead, out in itertools.product((32, 64, 128), ((5,), (2, 3)), (None, "float32", "bfloat16")):
        qw = _weight(rng, lead, 256, group_size, bits, SCALE_DTYPES[scale_dtype])
        dtype = None if out is None else getattr(aq, out)
        got = np.asarray(aq.dequantize(qw, dtype=dtype))
        _bits_equal(got, _reference(qw, dtype))


def test_non_finite_and_overflowing_scales_as_the_reference() -> None:
    """NaN and inf scales or biases, and a product past the scales' dtype's range (inf in
    bfloat16 and float16 after the first rounding), bit for bit as the reference."""
    rng = np.random.default_rng(3)
    for sd in SCALE_DTYPES.values():
        qw = _weight(rng, (4,), 128, 32, 4, sd)
        scales, biases = np.array(qw.scales), np.array(qw.biases)
        scales[0, 0], scales[1, 1], biases[2, 2] = np.nan, np.inf, -np.inf
        scales[3, 0] = np.finfo(sd).max  # (times a code of 2 or more: past the range)
        qw = QuantizedWeight(qw.packed, scales, biases, 32, 4)
        got = np.asarray(aq.dequantize(qw))
        _bits_equal(got, _reference(qw, None))
        assert np.isinf(got[3, :32]).any() and np.isnan(got[0, :32]).any()


def test_the_backend_takes_affine_weights_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Affine weights run the NumPy calls; the other modes keep the reference."""
    w = np.random.default_rng(5).standard_normal((8, 64)).astype(np.float32)
    affine, mx = aq.quantize(w, group_size=32, bits=4), aq.quantize(w, mode="mxfp4")
    calls: list[int] = []
    real = _fastpath.dequantize
    monkeypatch.setattr(_fastpath, "dequantize", lambda *a: calls.append(1) or real(*a))
    aq.dequantize(affine)
    assert calls == [1]
    aq.dequantize(mx)
    assert calls == [1]


def test_matches_mlx() -> None:
    mx = pytest.importorskip("mlx.core")
    rng = np.random.default_rng(11)
    for bits, group_size, sd in itertools.product(BITS, (32, 64), ("float32", "float16", "bfloat16")):
        dtype = SCALE_DTYPES[sd]
        qw = _weight(rng, (6,), 128, group_size, bits, dtype)
        got = np.asarray(aq.dequantize(qw))
        as_mx = {"bfloat16": lambda a: mx.array(a.astype(np.float32)).astype(mx.bfloat16)}.get(sd, mx.array)
        want = mx.dequantize(mx.array(qw.packed), as_mx(qw.scales), as_mx(qw.biases), group_size=group_size, bits=bits)
        want_np = np.asarray(want.astype(mx.float32)).astype(dtype)  # (exact: a narrow value widened and back)
        _bits_equal(got, want_np)


def test_a_compiled_embedding_lookup_is_one_dequantize_step() -> None:
    """A quantized embedding's rows, compiled on NumPy: one ``dequantize`` step in the plan
    (the reference's unpacking and rounding were ~45 steps a decode token), the eager
    result bit for bit."""
    from arrayq import nn

    rng = np.random.default_rng(23)
    table = rng.standard_normal((50, 128)).astype(np.float32)
    emb = nn.QuantizedEmbedding(aq.quantize(table.astype(ml_dtypes.bfloat16), group_size=64, bits=4))
    compiled = aq.compile(lambda ids: emb(ids, "clip"))  # (as generate's step: "raise" reads ids on the host)
    compiled(np.array([[3, 41]], np.int32))
    got = compiled(np.array([[7, 0]], np.int32))
    _bits_equal(np.asarray(got), np.asarray(emb(np.array([[7, 0]], np.int32), "clip")))
    (entry,) = compiled._cache.values()
    names = entry.run.names
    assert names.count("backend.dequantize") == 1 and "backend.binary" not in names, names
