"""An opt-in float16 KV cache (nn.FixedKVCache(dtype=...)): buffers stored in float16, values
rounded once when written, attention over the rounded keys and values in the query's dtype.
Checked against an independent float64 NumPy attention over K/V rounded to float16, eager
against compiled, on NumPy and MLX; the strict backend (no float16) and bad dtypes refused."""

import numpy as np
import pytest

import arrayq as aq
from arrayq import nn


def _has_mlx():
    return any(b.name == "mlx" and b.available for b in aq.list_backends())


BACKENDS = ["numpy", pytest.param("mlx", marks=pytest.mark.skipif(not _has_mlx(), reason="mlx is not installed"))]
B, H, HKV, D, CAP = 1, 4, 2, 16, 12


def _reference(q, k, v, n):
    """float64 attention of q (B, H, L, D) over the first n keys (B, Hkv, *, D), each query
    seeing every one of them (decode: L = 1), the kv head of query head h being h // (H // Hkv)."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    rep = q.shape[1] // k.shape[1]
    k, v = np.repeat(k[:, :, :n], rep, axis=1), np.repeat(v[:, :, :n], rep, axis=1)
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def _step(q, k, v, cache):
    keys, values = cache.update_and_fetch(k, v)
    out = nn.scaled_dot_product_attention(q, keys, values, scale=D**-0.5, key_length=cache.position)
    return out, cache


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("compiled", [False, True])
def test_float16_cache_decode_matches_rounded_reference(backend, compiled):
    rng = np.random.default_rng(0)
    prefill = 5
    k0 = rng.standard_normal((B, HKV, CAP, D)).astype(np.float32)
    v0 = rng.standard_normal((B, HKV, CAP, D)).astype(np.float32)
    k0[:, :, prefill:], v0[:, :, prefill:] = 0, 0
    cache = nn.FixedKVCache(
        aq.to_backend(k0, backend),
        aq.to_backend(v0, backend),
        aq.asarray(prefill, dtype=aq.int32, like=aq.to_backend(k0, backend)),
        CAP,
        dtype="float16",
    )
    assert cache.dtype == "float16" and aq.dtype(cache.keys) == aq.float16 == aq.dtype(cache.values)
    step = aq.compile(_step) if compiled else _step
    keys, values = k0.astype(np.float16), v0.astype(np.float16)  # what the cache must hold
    for n in range(prefill + 1, CAP + 1):
        q = rng.standard_normal((B, H, 1, D)).astype(np.float32)
        k = rng.standard_normal((B, HKV, 1, D)).astype(np.float32)
        v = rng.standard_normal((B, HKV, 1, D)).astype(np.float32)
        keys[:, :, n - 1 : n], values[:, :, n - 1 : n] = k.astype(np.float16), v.astype(np.float16)
        args = [aq.to_backend(a, backend) for a in (q, k, v)]
        out, cache = step(*args, cache)
        assert aq.dtype(out) == aq.float32 and aq.dtype(cache.keys) == aq.float16
        # the buffers hold exactly the float16 rounding of what was written (rounded once)
        np.testing.assert_array_equal(aq.to_numpy(cache.keys), keys)
        np.testing.assert_array_equal(aq.to_numpy(cache.values), values)
        # float32 scores/softmax/sum over <= 12 keys of D = 16 against float64 on the same
        # rounded K/V: float32 rounding only (~1e-7 relative a step, a few dozen steps)
        np.testing.assert_allclose(aq.to_numpy(out), _reference(q, keys, values, n), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float16_cache_compiled_equals_eager(backend):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in [(B, HKV, CAP, D)] * 2]
    results = []
    for step in (_step, aq.compile(_step)):
        k0, v0 = (aq.to_backend(a, backend) for a in arrays)
        cache = nn.FixedKVCache(k0, v0, aq.asarray(3, dtype=aq.int32, like=k0), 8, dtype=aq.float16)
        r = np.random.default_rng(2)
        outs = []
        for _ in range(4):
            q, k, v = (r.standard_normal(s).astype(np.float32) for s in [(B, H, 1, D), (B, HKV, 1, D), (B, HKV, 1, D)])
            out, cache = step(*(aq.to_backend(a, backend) for a in (q, k, v)), cache)
            outs.append(aq.to_numpy(out))
        results.append(outs)
    for eager, compiled in zip(*results):
        np.testing.assert_array_equal(compiled, eager)


def test_from_cache_and_default_unchanged():
    keys = np.random.default_rng(3).standard_normal((1, 2, 4, 8)).astype(np.float32)
    cache = nn.KVCache()
    cache.update_and_fetch(aq.to_backend(keys, "numpy"), aq.to_backend(-keys, "numpy"))
    plain = nn.FixedKVCache.from_cache(cache, 6, 5)
    assert plain.dtype is None and aq.dtype(plain.keys) == aq.float32
    half = nn.FixedKVCache.from_cache(cache, 6, 5, dtype="float16")
    np.testing.assert_array_equal(aq.to_numpy(half.values)[:, :, :4], (-keys).astype(np.float16))
    assert aq.to_numpy(half.keys).shape == (1, 2, 6, 8)


@pytest.mark.parametrize("dtype", ["int32", aq.int8, "float17", True, aq.bool, "bool", "complex64", 3])
def test_bad_dtype_refused(dtype):
    k = aq.zeros((1, 1, 4, 2), dtype=aq.float32)
    with pytest.raises(TypeError, match="dtype"):
        nn.FixedKVCache(k, k, aq.asarray(0, dtype=aq.int32, like=k), 4, dtype=dtype)


def test_strict_backend_without_float16_refuses():
    # (array_api_strict has no float16: the example backend declares it unsupported)
    k = aq.to_backend(np.zeros((1, 1, 4, 2), np.float32), "strict")
    with pytest.raises(aq.UnsupportedDTypeError):
        nn.FixedKVCache(k, k, aq.asarray(0, dtype=aq.int32, like=k), 4, dtype="float16")


# ---------------------------------------------------------------------- generate


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from arrayq import models

    return models.make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny")


PROMPT = [3, 1, 4, 1, 5, 9, 2, 6]


@pytest.mark.parametrize("backend", BACKENDS)
def test_generate_float16_cache_gives_tokens_of_rounded_eager_decode(tiny, backend, monkeypatch):
    """The second implementation: eager decoding whose float32 cache hands each one-token
    step its keys and values rounded to float16 and back (the prefill, as in generate, reads
    them unrounded): the same greedy tokens as the compiled step over a float16 cache."""
    from arrayq import models

    model = models.load(tiny, backend=backend)
    made, from_cache = [], nn.FixedKVCache.from_cache.__func__

    def spied(cls, *args, **kwargs):
        made.append(from_cache(cls, *args, **kwargs))
        return made[-1]

    monkeypatch.setattr(nn.FixedKVCache, "from_cache", classmethod(spied))
    compiled = list(models.generate(model, PROMPT, 12, compile=True, kv_dtype="float16"))
    assert made and all(aq.dtype(c.keys) == aq.float16 == aq.dtype(c.values) for c in made)  # the step's buffers
    monkeypatch.undo()
    original = nn.KVCache.update_and_fetch

    def rounded(self, keys, values):
        k, v = original(self, keys, values)
        if int(keys.shape[2]) > 1:
            return k, v
        return tuple(aq.astype(aq.astype(x, aq.float16), aq.float32) for x in (k, v))

    monkeypatch.setattr(nn.KVCache, "update_and_fetch", rounded)
    assert compiled == list(models.generate(model, PROMPT, 12, compile=False))
    monkeypatch.undo()
    # float32 named: the default's cache, so the default's tokens
    assert list(models.generate(model, PROMPT, 6, kv_dtype="float32")) == list(models.generate(model, PROMPT, 6))


def test_generate_kv_dtype_refused(tiny):
    from arrayq import models

    model = models.load(tiny, backend="numpy")
    with pytest.raises(ValueError, match="compiled decode step"):
        list(models.generate(model, PROMPT, 2, compile=False, kv_dtype="float16"))
    with pytest.raises(TypeError, match="floating dtype"):
        list(models.generate(model, PROMPT, 2, kv_dtype="int8"))


def test_cli_kv_dtype(tiny, capsys):
    from arrayq.cli import main

    args = ["generate", "--model", str(tiny), "--backend", "numpy", "--prompt-ids", "3,1,4", "--max-tokens", "4"]
    assert main([*args, "--kv-dtype", "float16"]) == 0
    assert "compiled decode" in capsys.readouterr().err
    assert main([*args, "--kv-dtype", "float16", "--no-compile"]) != 0
    assert "needs the compiled decode step" in capsys.readouterr().err
    assert main([*args, "--kv-dtype", "int8"]) != 0  # not one of the choices
    assert "invalid choice: 'int8'" in capsys.readouterr().err
