"""The NumPy backend's attention kernel reading float16 keys and values as they are (a
float16 KV cache): at every SIMD level, the float32 kernel's result on the widened keys and
values bit for bit (each float16 is a float32 exactly, widened as read), and close to an
independent float64 attention over the rounded keys and values. arrayq.nn offers the raw
float16 arrays first and widens them where the kernel declines (a head size that is not a
multiple of 16, more keys than the kernel takes); recorded plans replay both. The serving
batch cache stores float16 on request. Hostile calls: k and v of different dtypes, float16
of another head size, float16 q."""

from __future__ import annotations

import platform

import numpy as np
import pytest

import arrayq as aq
from arrayq import nn
from arrayq_numpy import _native, _rowops

pytestmark = pytest.mark.skipif(
    not _rowops._runs(), reason="the native kernels are not built or turned off (ARRAYQ_NATIVE)"
)

RNG = np.random.default_rng(11)


def _f32(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) * 2).astype(np.float32)


def _same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))  # bit for bit


def _reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, lengths: list[int], scale: float) -> np.ndarray:
    """float64 attention, row b of the batch over its first lengths[b] keys, query head h
    reading kv head h // (H // Hkv); written independently of arrayq."""
    rep = q.shape[1] // k.shape[1]
    out = np.zeros(q.shape[:3] + v.shape[3:])
    for b, n in enumerate(lengths):
        kb = np.repeat(k[b, :, :n].astype(np.float64), rep, axis=0)
        vb = np.repeat(v[b, :, :n].astype(np.float64), rep, axis=0)
        s = q[b].astype(np.float64) @ np.swapaxes(kb, -1, -2) * scale
        p = np.exp(s - s.max(-1, keepdims=True))
        out[b] = (p / p.sum(-1, keepdims=True)) @ vb
    return out


@pytest.mark.parametrize("level", _native.levels())
@pytest.mark.parametrize("d", [16, 64, 128])
def test_float16_kernel_is_the_float32_kernel_on_widened_keys(level, d):
    index = _native.levels().index(level)
    for keys in (1, 3, 4, 7, 8, 9, 31, 100, 257):
        q = _f32(3, 4, 1, d)
        k16, v16 = (_f32(3, 2, keys + 5, d).astype(np.float16)[:, :, :keys] for _ in range(2))  # (windows)
        k32, v32 = k16.astype(np.float32), v16.astype(np.float32)
        lengths = np.array([keys, max(1, keys - 2), 1], np.int64)
        for extra in ((), (lengths,)):
            got, want = np.empty(q.shape, np.float32), np.empty(q.shape, np.float32)
            _native._kernels.attention(index, q, k16, v16, got, 0.125, False, *extra)
            _native._kernels.attention(index, q, k32, v32, want, 0.125, False, *extra)
            _same(got, want)
            seen = list(lengths) if extra else [keys] * 3
            # (float32 dot products of d terms and a softmax over up to 257 keys, against float64
            # over the same rounded keys: outputs are weighted means of values ~N(0, 2), a few
            # float32 ulps of ~2 apart)
            np.testing.assert_allclose(got, _reference(q, k16, v16, seen, 0.125), rtol=1e-5, atol=2e-5)


def test_mixed_or_misshapen_float16_keys_are_refused_by_the_kernel():
    index = _native.levels().index(_native.level())
    q, out = _f32(1, 2, 1, 16), np.empty((1, 2, 1, 16), np.float32)
    k16 = _f32(1, 1, 5, 16).astype(np.float16)
    with pytest.raises(ValueError, match="differ in dtype"):
        _native._kernels.attention(index, q, k16, k16.astype(np.float32), out, 0.25, False)
    q8, out8, k8 = _f32(1, 2, 1, 8), np.empty((1, 2, 1, 8), np.float32), _f32(1, 1, 5, 8).astype(np.float16)
    with pytest.raises(ValueError, match="do not fit"):  # (a head of 8: a scalar tail in a float16 row)
        _native._kernels.attention(index, q8, k8, k8, out8, 0.25, False)
    with pytest.raises(ValueError, match="q must be a 4-d float32 array"):
        _native._kernels.attention(index, q.astype(np.float16), k16, k16, out, 0.25, False)


def _attention(q, k, v, mask=None, key_length=None):
    return nn.scaled_dot_product_attention(q, k, v, scale=0.25, mask=mask, key_length=key_length)


def _counted(monkeypatch: pytest.MonkeyPatch) -> list[list[np.dtype]]:
    """The dtypes of the keys each call of the kernel's wrapper got."""
    calls: list[list[np.dtype]] = []
    real = _native.attention

    def counting(q, k, v, *rest):
        calls.append([k.dtype, v.dtype])
        return real(q, k, v, *rest)

    monkeypatch.setattr(_native, "attention", counting)
    return calls


@pytest.mark.parametrize("key_length", [None, 9])
def test_nn_attention_hands_float16_keys_to_the_kernel_as_they_are(monkeypatch, key_length):
    q, k, v = _f32(2, 4, 1, 32), *(_f32(2, 2, 12, 32).astype(np.float16) for _ in range(2))
    calls = _counted(monkeypatch)
    got = _attention(q, k, v, key_length=key_length)
    assert calls == [[np.float16, np.float16]]
    n = 12 if key_length is None else key_length
    _same(got, _attention(q, k[:, :, :n].astype(np.float32), v[:, :, :n].astype(np.float32)))


def test_nn_attention_widens_float16_keys_the_kernel_declines(monkeypatch):
    """A head of 8 (not a multiple of 16): the kernel declines the float16 keys, arrayq.nn
    widens them and the float32 kernel runs, the same bits as widened by hand; past the
    kernel's key limit, the reference over the widened keys."""
    q, k, v = _f32(1, 4, 1, 8), *(_f32(1, 2, 12, 8).astype(np.float16) for _ in range(2))
    calls = _counted(monkeypatch)
    for key_length in (None, 7):
        got = _attention(q, k, v, key_length=key_length)
        n = 12 if key_length is None else key_length
        _same(got, _attention(q, k[:, :, :n].astype(np.float32), v[:, :, :n].astype(np.float32)))
    assert all(dtypes == [np.float32, np.float32] for dtypes in calls) and len(calls) == 4
    monkeypatch.setattr(_native, "ATTENTION_MAX_KEYS", 4)
    q16 = _f32(1, 4, 1, 16)
    k16, v16 = (_f32(1, 2, 12, 16).astype(np.float16) for _ in range(2))
    np.testing.assert_allclose(  # (float32 reference against float64: see the kernel test's tolerance)
        _attention(q16, k16, v16), _reference(q16, k16, v16, [12], 0.25), rtol=1e-5, atol=2e-5
    )


@pytest.mark.parametrize("masked", [False, True])
def test_compiled_float16_attention_equals_eager(masked):
    """Recorded plans (the prefix form, and the padding-mask form of the batched step) take
    float16 keys and replay the eager bits."""
    if masked:

        def fn(q, k, v, mask):  # (the mask an input, as in the batched step)
            return _attention(q, k, v, mask=mask)

    else:

        def fn(q, k, v, n):
            return _attention(q, k, v, mask="causal", key_length=n)

    compiled = aq.compile(fn)
    buffers = [_f32(3, 2, 40, 16).astype(np.float16) for _ in range(2)]
    for _ in range(4):
        q = _f32(3, 4, 1, 16)
        lengths = RNG.integers(1, 41, 3)
        mask = np.asarray(nn.padding_mask(lengths=lengths, length=40, dtype="float32"))
        arg = mask if masked else np.array(lengths[0], np.int32)
        _same(compiled(q, *buffers, arg), fn(q, *buffers, arg))
    assert compiled.cache_info().native == 1


def test_batch_cache_stores_float16_and_its_compiled_step_equals_eager(tmp_path):
    from arrayq import models
    from arrayq.serving import BatchCache, decode_step

    model = models.load(models.make_checkpoint(tmp_path / "tiny", "tiny"), backend="numpy")
    like = model.norm.weight
    caches = {}
    for name, dtype in (("f16 eager", "float16"), ("f16 compiled", "float16"), ("f32", None)):
        caches[name] = BatchCache(len(model.layers), dtype=dtype)
        for i in range(3):
            c = model.make_cache()
            model.hidden(aq.asarray([[1 + i + j for j in range(4 + 3 * i)]], dtype=aq.int32, like=like), c)
            caches[name].add(c)
    assert all(b.dtype == np.float16 for b in caches["f16 eager"]._keys + caches["f16 eager"]._values)
    for _ in range(3):
        eager = aq.to_numpy(decode_step(model, [5, 6, 7], caches["f16 eager"], like))
        compiled = aq.to_numpy(decode_step(model, [5, 6, 7], caches["f16 compiled"], like, compiled=True))
        wide = aq.to_numpy(decode_step(model, [5, 6, 7], caches["f32"], like))
        _same(compiled, eager)
        # (keys and values rounded to float16: 11 significant bits, relative 2**-11 = 4.9e-4 each,
        # through two layers of attention and MLP of a random model: logits of size ~1 move ~1e-3)
        np.testing.assert_allclose(eager, wide, rtol=0, atol=5e-3 * max(1.0, float(np.abs(wide).max())))
    with pytest.raises(TypeError, match="floating"):
        BatchCache(2, dtype="int8")


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # (NumPy's, past 65504)
def test_float16_conversion_is_numpys():
    """The backend's float32 -> float16 astype (F16C where it runs) gives NumPy's float16,
    bit for bit: over a sweep of float32 bit patterns (normal, subnormal, past float16's
    range, infinities, signed zeros) and around float16's ties and its largest finite; an
    array holding a NaN takes NumPy's conversion (payload bits kept)."""
    from arrayq_numpy import NumPyBackend, _rowops

    backend = NumPyBackend()
    sweep = np.arange(0, 2**32, 997, dtype=np.uint64).astype(np.uint32).view(np.float32)
    finite = sweep[~np.isnan(sweep)]
    ties = (np.arange(-4096, 4096, dtype=np.float32) + 0.5) * np.float32(2.0**-10)  # (halfway cases)
    edges = np.array([65504, 65519.99, 65520, -65520, 2.0**-24, 2.0**-25, 3 * 2.0**-26, -0.0, np.inf], np.float32)
    for x in (finite, ties, np.tile(edges, 64), finite[:1000].reshape(10, 100)):
        got = backend.astype(x, aq.float16)
        _same_half(got, x.astype(np.float16))
    if platform.machine().lower() in ("x86_64", "amd64"):  # (F16C: on every x86-64 CPU with AVX2)
        assert _rowops.to_half(finite) is not None
    with_nan = finite[:1000].copy()
    with_nan[7] = np.frombuffer(np.uint32(0x7FC01234).tobytes(), np.float32)[0]
    assert _rowops.to_half(with_nan) is None
    _same_half(backend.astype(with_nan, aq.float16), with_nan.astype(np.float16))


def _same_half(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float16 and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))
