"""The compiled decode path (issue: fast end to end): arrayq.slice_update and take(mode="clip")
against hand-computed results, nn.FixedKVCache against nn.KVCache, rope with an array
offset against an int one, and generate(compile=True) giving the tokens of eager decoding
(greedy and sampled) on NumPy (a recorded plan) and MLX (mx.compile), with the compiled step
kept on the model and traced anew when its arrays change."""

import sys

import numpy as np
import pytest

import arrayq as aq
import arrayq.models.generate
from arrayq import models, nn

PROMPT = [3, 1, 4, 1, 5, 9, 2, 6]


def _has_mlx():
    return any(b.name == "mlx" and b.available for b in aq.list_backends())


BACKENDS = ["numpy", pytest.param("mlx", marks=pytest.mark.skipif(not _has_mlx(), reason="mlx is not installed"))]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny")


# ---------------------------------------------------------------------- the ops


@pytest.mark.parametrize("backend", BACKENDS)
def test_slice_update_by_hand(backend):
    x = aq.to_backend(np.arange(12, dtype=np.float32).reshape(2, 6), backend)
    u = aq.to_backend(np.array([[-1, -2], [-3, -4]], np.float32), backend)
    want = np.arange(12, dtype=np.float32).reshape(2, 6)
    want[:, 3:5] = [[-1, -2], [-3, -4]]
    np.testing.assert_array_equal(aq.to_numpy(aq.slice_update(x, u, 3, axis=1)), want)
    # a device start is clamped into [0, 4]: -5 writes at 0, 7 at 4
    for start, at in ((-5, 0), (7, 4), (2, 2)):
        s = aq.asarray(start, dtype=aq.int32, like=x)
        w = np.arange(12, dtype=np.float32).reshape(2, 6)
        w[:, at : at + 2] = [[-1, -2], [-3, -4]]
        np.testing.assert_array_equal(aq.to_numpy(aq.slice_update(x, u, s, axis=-1)), w)
    # the inputs are not written into; an empty update gives x back
    np.testing.assert_array_equal(aq.to_numpy(x), np.arange(12, dtype=np.float32).reshape(2, 6))
    assert aq.to_numpy(aq.slice_update(x, u[:, :0], 6, axis=1)).tolist() == aq.to_numpy(x).tolist()
    # a NumPy start with an MLX x moves to x's backend, as in any op
    moved = aq.slice_update(x, u, np.array(1, np.int64), axis=1)
    assert aq.backend_of(moved).name == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_slice_update_refuses(backend):
    x = aq.to_backend(np.zeros((2, 3), np.float32), backend)
    u = aq.to_backend(np.ones((2, 1), np.float32), backend)
    with pytest.raises(TypeError, match="int or a 0-d integer array"):
        aq.slice_update(x, u, True, axis=1)
    with pytest.raises(TypeError, match="int or a 0-d integer array"):
        aq.slice_update(x, u, aq.asarray([1], dtype=aq.int32, like=x), axis=1)
    with pytest.raises(TypeError, match="int or a 0-d integer array"):
        aq.slice_update(x, u, 1.0, axis=1)
    with pytest.raises(IndexError, match=r"start -1 must lie in \[0, 2\]"):
        aq.slice_update(x, u, -1, axis=1)
    with pytest.raises(ValueError, match="does not fit"):
        aq.slice_update(x, aq.reshape(u, (2,)), 0, axis=1)
    with pytest.raises(TypeError, match="cast update"):
        aq.slice_update(x, aq.astype(u, aq.int32), 0, axis=1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_take_clip_by_hand(backend):
    x = aq.to_backend(np.array([10, 20, 30], np.int32), backend)
    i = aq.to_backend(np.array([-7, -1, 0, 2, 3, 99], np.int32), backend)
    assert aq.to_numpy(aq.take(x, i, mode="clip")).tolist() == [10, 10, 10, 30, 30, 30]
    assert int(aq.to_numpy(aq.take(x, 5, mode="clip"))) == 30
    with pytest.raises(IndexError):  # the default still checks
        aq.take(x, i)
    with pytest.raises(ValueError, match="axis 0 is empty"):
        aq.take(x[:0], aq.to_backend(np.array([0], np.int32), backend), mode="clip")
    with pytest.raises(ValueError, match="'raise' or 'clip'"):
        aq.take(x, i, mode="wrap")


@pytest.mark.parametrize("backend", BACKENDS)
def test_rope_array_offset_matches_int_offset(backend):
    rng = np.random.default_rng(0)
    x = aq.to_backend(rng.standard_normal((1, 2, 3, 16)).astype(np.float32), backend)
    want = aq.to_numpy(nn.rope(x, 16, base=1e4, offset=37))
    offset = aq.asarray(37, dtype=aq.int32, like=x)
    tables = tuple(aq.asarray(t, like=x) for t in nn.rope_tables(16, 1e4, 1.0, 37, 3))
    # the same float64-derived tables: the same products (exactly on NumPy; MLX float32 has no native rope)
    np.testing.assert_array_equal(aq.to_numpy(nn.rope(x, 16, base=1e4, offset=offset, tables=tables)), want)
    if backend == "mlx":
        with pytest.raises(ValueError, match="needs tables"):
            nn.rope(x, 16, offset=offset)
        half = aq.astype(x, aq.bfloat16)  # mx.fast.rope takes the array offset itself
        np.testing.assert_array_equal(
            aq.to_numpy(aq.astype(nn.rope(half, 16, base=1e4, offset=offset), aq.float32)),
            aq.to_numpy(aq.astype(nn.rope(half, 16, base=1e4, offset=37), aq.float32)),
        )
    with pytest.raises(ValueError, match="0-d integer array"):
        nn.rope(x, 16, offset=aq.asarray([1, 2], dtype=aq.int32, like=x), tables=tables)


# ---------------------------------------------------------------------- the cache


@pytest.mark.parametrize("backend", BACKENDS)
def test_fixed_cache_attention_matches_growing_cache(backend):
    rng = np.random.default_rng(1)
    d, heads, kv, hd = 32, 4, 2, 8

    def linear(n, k):
        return nn.Linear(aq.to_backend((rng.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32), backend))

    attn = nn.Attention(
        linear(heads * hd, d), linear(kv * hd, d), linear(kv * hd, d), linear(d, heads * hd), heads, kv, hd, nn.RoPE(hd)
    )
    x = aq.to_backend(rng.standard_normal((1, 9, d)).astype(np.float32), backend)
    growing = nn.KVCache(capacity=12)
    attn(x[:, :5], cache=growing)
    fixed = nn.FixedKVCache.from_cache(growing, 12, 9)  # the window holds every position written below
    assert int(aq.to_numpy(fixed.position)) == 5 and tuple(fixed.keys.shape) == (1, kv, 12, hd)
    for p in range(5, 9):
        want = aq.to_numpy(attn(x[:, p : p + 1], cache=growing))
        tables = tuple(aq.asarray(t, like=x) for t in attn.rope.cos_sin(p, 1))
        got = aq.to_numpy(attn(x[:, p : p + 1], cache=fixed, rope_tables=tables))
        # the same products; softmax sums also run over the masked (exactly zero) positions,
        # which may reorder a float32 sum of <= 9 terms: a few ulps
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert int(aq.to_numpy(fixed.position)) == 9
    # the mask by hand: after writing 2 positions at 3, query i sees keys 0 .. 3 + i
    fixed.position = aq.asarray(5, dtype=aq.int32, like=x)
    m = aq.to_numpy(fixed.mask(2, aq.float32))[0, 0]
    assert m.shape == (2, 9)
    assert (m == 0).tolist() == [[j <= 3 + i for j in range(9)] for i in range(2)]
    assert np.isneginf(m[m != 0]).all()
    # not causal: every query sees the keys written so far (0 .. 4)
    m = aq.to_numpy(fixed.mask(2, aq.float32, causal=False))[0, 0]
    assert (m == 0).tolist() == [[j <= 4 for j in range(9)]] * 2
    with pytest.raises(ValueError, match="window"):
        nn.FixedKVCache.from_cache(growing, 12, 4)  # the window must hold the 9 cached positions


# ---------------------------------------------------------------------- generation


def _steps(model):
    return vars(model)["_arrayq_decode_steps"][1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_generation_gives_eager_tokens(tiny, backend, monkeypatch):
    model = models.load(tiny, backend=backend)
    eager = list(models.generate(model, PROMPT, 20, compile=False))
    assert len(set(eager)) > 1
    # windows grow by 8: the fed positions 8 .. 26 (of a capacity of 28) take 3 (16, 24, 28)
    monkeypatch.setattr(sys.modules["arrayq.models.generate"], "WINDOW_STEP", 8)
    assert list(models.generate(model, PROMPT, 20, compile=True)) == eager
    (step,) = _steps(model).values()
    assert step.cache_info().signatures == 3
    assert step.cache_info().native == 3  # MLX: mx.compile; NumPy: recorded plans
    # a second call replays the same compiled versions
    assert list(models.generate(model, PROMPT, 20, compile=True)) == eager
    assert step.cache_info().signatures == 3 and step.cache_info().hits > step.cache_info().misses
    # sampled: the same draws from the same seed
    kw = dict(temperature=0.9, top_k=40, top_p=0.9, seed=3)
    assert list(models.generate(model, PROMPT, 12, compile=True, **kw)) == list(
        models.generate(model, PROMPT, 12, compile=False, **kw)
    )
    # the default compiles where the backend compiles: a hook (MLX) or recorded plans (NumPy)
    hits = step.cache_info().hits
    list(models.generate(model, PROMPT, 3))
    assert step.cache_info().hits > hits


@pytest.mark.parametrize("backend", BACKENDS)
def test_replaced_weights_give_the_new_tokens(tiny, backend):
    model = models.load(tiny, backend=backend)
    first = list(models.generate(model, PROMPT, 6, compile=True))
    step = _steps(model)[(0.0, 0, 1.0)]
    # a new final norm of the same shape (negated) must give the new model's tokens
    model.norm = nn.RMSNorm(aq.multiply(model.norm.weight, -1.0), model.norm.eps)
    again = list(models.generate(model, PROMPT, 6, compile=True))
    assert again == list(models.generate(model, PROMPT, 6, compile=False))
    assert again != first
    # weights as inputs (a backend whose compile copies captured arrays: JAX) replay the held
    # step; closed over (MLX, NumPy's recorded plans) the new arrays are traced anew
    copies = aq.get_backend(backend).compile_copies_captured_arrays
    assert (_steps(model)[(0.0, 0, 1.0)] is step) == copies
    step = _steps(model)[(0.0, 0, 1.0)]
    # a changed static field (the norm's eps) is another model: a step of its own
    model.norm = nn.RMSNorm(model.norm.weight, model.norm.eps * 2)
    assert list(models.generate(model, PROMPT, 6, compile=True)) == list(
        models.generate(model, PROMPT, 6, compile=False)
    )
    assert _steps(model)[(0.0, 0, 1.0)] is not step


def test_compile_needs_a_model_that_can(tiny):
    model = models.load(tiny)

    class NoTables:  # generate's basic protocol only
        config = model.config
        make_cache = model.make_cache
        logits = model.logits

        def hidden(self, ids, cache=None, **kw):
            return model.hidden(ids, cache, **kw)

    with pytest.raises(ValueError, match="compile=False"):
        list(models.generate(NoTables(), PROMPT, 3, compile=True))
    assert list(models.generate(NoTables(), PROMPT, 3)) == list(models.generate(model, PROMPT, 3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_generate_compiles_where_the_backend_does(tiny, backend, capsys):
    from arrayq import cli

    runs = {}
    for flag in ([], ["--no-compile"], ["--compile"]):
        assert (
            cli.main(
                [
                    "generate",
                    "--model",
                    str(tiny),
                    "--backend",
                    backend,
                    "--prompt-ids",
                    "1,2,3",
                    "--max-tokens",
                    "6",
                    *flag,
                ]
            )
            == 0
        )
        out, err = capsys.readouterr()
        runs[tuple(flag)] = (out.split(), "compiled decode" in err)
    assert runs[()][1] and not runs[("--no-compile",)][1] and runs[("--compile",)][1]
    assert runs[()][0] == runs[("--no-compile",)][0] == runs[("--compile",)][0]
