"""arrayq.models.qwen3 on the tiny preset: NumPy and MLX agree, one decoder layer matches
an independent float64 implementation, the KV cache matches full recompute, checkpoint
variants load, sampling is seeded, and the CLI's generate / make-checkpoint commands work."""

import json
import math

import numpy as np
import pytest

import arrayq as aq
from arrayq import cli, models, nn
from arrayq.models import safetensors

PROMPT = [1, 2, 3, 4, 5, 6, 7]

# Logits of two float32 computations of the same model (NumPy vs MLX; cached decode vs
# full recompute) differ by summation order and by exp/sqrt implementations: a few float32
# roundings (2**-24 ~ 6e-8 relative) per dot product of <= 384 terms, carried through two
# layers whose residual stream is larger than the logits. Observed: ~1e-6 of the largest
# logit. 5e-5 of the largest logit leaves a 50x margin, and stays well below the gap
# between the two largest logits at every greedy step here (asserted: the smallest gap is
# ~1e-3 of the largest logit), so equal greedy tokens on both backends are not luck.
LOGIT_RTOL = 5e-5


def _has_mlx():
    return any(b.name == "mlx" and b.available for b in aq.list_backends())


needs_mlx = pytest.mark.skipif(not _has_mlx(), reason="mlx is not installed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", "tiny")


@pytest.fixture(scope="module")
def model(tiny):
    return models.load(tiny)


def _greedy(model, prompt, n):
    """Greedy tokens and the logits (per position) of the prompt and of each step."""
    cache = model.make_cache()
    steps = [aq.to_numpy(model(np.array([prompt], np.int32), cache))[0]]
    tokens = []
    for _ in range(n):
        tokens.append(int(np.argmax(steps[-1][-1])))
        steps.append(aq.to_numpy(model(np.array([[tokens[-1]]], np.int32), cache))[0])
    return tokens, steps


def test_tiny_checkpoint_on_disk(tiny):
    config = json.loads((tiny / "config.json").read_text())
    assert config["model_type"] == "qwen3" and config["quantization"] == {"group_size": 64, "bits": 4}
    assert config["tie_word_embeddings"] is True
    f = safetensors.SafetensorsFile(tiny / "model.safetensors")
    assert f.metadata == {"format": "mlx"}
    assert f.infos["model.layers.0.self_attn.q_proj.weight"].dtype == "U32"
    assert f.infos["model.layers.0.self_attn.q_proj.weight"].shape == (4 * 64, 128 * 4 // 32)
    assert f.infos["model.layers.0.self_attn.q_proj.scales"].dtype == "BF16"
    assert f.infos["model.layers.0.self_attn.q_proj.biases"].shape == (256, 2)
    assert f.infos["model.embed_tokens.scales"].shape == (512, 2)
    assert "lm_head.weight" not in f.infos
    # deterministic: the same seed writes the same bytes
    again = models.make_checkpoint(tiny.parent / "again", "tiny")
    assert (again / "model.safetensors").read_bytes() == (tiny / "model.safetensors").read_bytes()


def test_qwen3_8b_preset_shapes():
    c = models.preset_config("qwen3-8b")
    assert (
        c.hidden_size,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.head_dim,
        c.intermediate_size,
        c.vocab_size,
        c.tie_word_embeddings,
    ) == (4096, 36, 32, 8, 128, 12288, 151936, False)
    assert 8.1e9 < c.num_parameters() < 8.3e9  # Qwen3-8B: 8.19B with its own head


def test_qwen3_0_6b_preset_shapes():
    c = models.preset_config("qwen3-0.6b")
    assert (
        c.hidden_size,
        c.num_hidden_layers,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.head_dim,
        c.intermediate_size,
        c.vocab_size,
        c.tie_word_embeddings,
    ) == (1024, 28, 16, 8, 128, 3072, 151936, True)
    assert 590e6 < c.num_parameters() < 600e6  # Qwen3-0.6B: 596M with the tied head


def test_model_structure_and_memory_mapping(tiny, model):
    assert isinstance(model.embed_tokens, nn.QuantizedEmbedding) and model.lm_head is None
    # by default q/k/v and gate/up are fused, one quantized matmul each
    fused_attn, fused_mlp = model.layers[0].self_attn, model.layers[0].mlp
    assert fused_attn.q_proj is None and fused_attn.qkv_proj.weight.shape == (256 + 128 + 128, 128)
    assert fused_mlp.gate_proj is None and fused_mlp.gate_up_proj.weight.shape == (2 * 384, 128)
    model = models.load(tiny, fuse=False)
    attn = model.layers[0].self_attn
    assert isinstance(attn.q_proj, nn.QuantizedLinear) and attn.q_proj.weight.shape == (256, 128)
    assert (attn.n_heads, attn.n_kv_heads, attn.head_dim) == (4, 2, 64)
    assert attn.q_norm.weight.dtype == np.float32  # norms converted to the activations' dtype
    packed = attn.q_proj.weight.packed
    assert not packed.flags.writeable and not packed.flags.owndata  # a view of the memory map
    assert model.weight_bytes() == model.weight_bytes(per_token=True) > 0
    logits = model(np.array([PROMPT], np.int32))
    assert logits.shape == (1, len(PROMPT), 512) and logits.dtype == np.float32


@needs_mlx
def test_greedy_tokens_and_logits_agree_on_numpy_and_mlx(tiny, model):
    import mlx.core as mx

    mlx_model = models.load(tiny, backend="mlx")
    assert isinstance(mlx_model.layers[1].mlp.down_proj.weight.packed, mx.array)
    tokens_np, logits_np = _greedy(model, PROMPT, 16)
    tokens_mx, logits_mx = _greedy(mlx_model, PROMPT, 16)
    assert tokens_np == tokens_mx
    assert len(set(tokens_np)) > 1  # not one token repeated throughout
    scale = max(np.abs(a).max() for a in logits_np)
    for a, b in zip(logits_np, logits_mx):
        np.testing.assert_allclose(b, a, rtol=0, atol=LOGIT_RTOL * scale)
    for step in logits_np:
        top2 = np.sort(step[-1])[-2:]
        assert top2[1] - top2[0] > 4 * LOGIT_RTOL * scale
    # generate() gives the same tokens on both
    assert list(models.generate(model, PROMPT, 16)) == tokens_np == list(models.generate(mlx_model, PROMPT, 16))
    # a whole model moves with to_backend: the same arrays as loading onto MLX
    moved = aq.to_backend(model, "mlx")
    assert isinstance(moved.embed_tokens.weight.scales, mx.array) and moved.config == model.config
    assert np.array_equal(
        aq.to_numpy(moved(np.array([PROMPT], np.int32))), aq.to_numpy(mlx_model(np.array([PROMPT], np.int32)))
    )


def _unpack_4bit(words):
    """MLX 4-bit packing, written independently: code i in bits 4*(i % 8) of word i // 8."""
    w = words.astype(np.uint64)[..., None] >> (4 * np.arange(8, dtype=np.uint64))
    return (w & 15).reshape(*words.shape[:-1], -1).astype(np.float64)


def _decoder_layer_float64(t, i, x, config):
    """One Qwen3 decoder layer in float64 from the raw tensors ``t``; x (L, hidden)."""
    p = f"model.layers.{i}"
    eps, hd = config["rms_norm_eps"], config["head_dim"]
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]

    def weight(name):
        s = t[f"{p}.{name}.scales"].astype(np.float64)
        b = t[f"{p}.{name}.biases"].astype(np.float64)
        codes = _unpack_4bit(t[f"{p}.{name}.weight"])
        n, k = codes.shape
        return (codes.reshape(n, s.shape[1], -1) * s[..., None] + b[..., None]).reshape(n, k)

    def rms(v, name):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * t[f"{p}.{name}.weight"].astype(np.float64)

    length = x.shape[0]
    h = rms(x, "input_layernorm")
    q = rms((h @ weight("self_attn.q_proj").T).reshape(length, heads, hd), "self_attn.q_norm")
    k = rms((h @ weight("self_attn.k_proj").T).reshape(length, kv, hd), "self_attn.k_norm")
    v = (h @ weight("self_attn.v_proj").T).reshape(length, kv, hd)
    inv = config["rope_theta"] ** (-np.arange(0, hd, 2) / hd)
    ang = np.arange(length)[:, None, None] * inv  # (L, 1, hd/2)
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(a):  # rotate_half: pairs (j, j + hd/2)
        a1, a2 = a[..., : hd // 2], a[..., hd // 2 :]
        return np.concatenate([a1 * cos - a2 * sin, a2 * cos + a1 * sin], -1)

    q, k = rope(q), rope(k)
    k, v = np.repeat(k, heads // kv, axis=1), np.repeat(v, heads // kv, axis=1)
    scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(hd)
    scores = np.where(np.tril(np.ones((length, length), bool)), scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    attn = np.einsum("hqk,khd->qhd", probs, v).reshape(length, heads * hd)
    x = x + attn @ weight("self_attn.o_proj").T
    h = rms(x, "post_attention_layernorm")
    g = h @ weight("mlp.gate_proj").T
    return x + ((g / (1 + np.exp(-g))) * (h @ weight("mlp.up_proj").T)) @ weight("mlp.down_proj").T


@pytest.mark.parametrize("backend", ["numpy", "mlx"])
def test_decoder_layer_matches_an_independent_float64_implementation(tiny, backend):
    if backend == "mlx" and not _has_mlx():
        pytest.skip("mlx is not installed")
    config = json.loads((tiny / "config.json").read_text())
    tensors = safetensors.load(tiny / "model.safetensors")
    x = np.random.default_rng(3).standard_normal((9, 128))
    expected = _decoder_layer_float64(tensors, 1, x, config)
    layer = models.load(tiny, backend=backend).layers[1]
    out = aq.to_numpy(layer(aq.to_backend(x[None].astype(np.float32), backend)))[0]
    # float32 against float64 with exact weights (4-bit codes times bfloat16 scales are
    # exact in float32): rounding of the float32 input and of each op, dot products of
    # <= 384 terms; observed ~1e-6 of the output's scale, allowed 1e-4.
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("backend", ["numpy", "mlx"])
def test_kv_cache_decode_equals_full_recompute(tiny, backend):
    if backend == "mlx" and not _has_mlx():
        pytest.skip("mlx is not installed")
    m = models.load(tiny, backend=backend)
    tokens, steps = _greedy(m, PROMPT, 6)
    full = aq.to_numpy(m(np.array([PROMPT + tokens], np.int32)))[0]
    cached = np.concatenate(list(steps[:-1]), axis=0)  # the prompt, then one row per step
    np.testing.assert_allclose(cached, full[: len(cached)], rtol=0, atol=LOGIT_RTOL * np.abs(full).max())
    # chunked prefill gives the same tokens as one pass
    assert list(models.generate(m, PROMPT, 6, prefill_chunk=2)) == tokens == list(models.generate(m, PROMPT, 6))


@pytest.mark.parametrize("backend", ["numpy", "mlx"])
def test_fused_projections_equal_the_unfused_model(tiny, backend):
    """q/k/v and gate/up stacked into one quantized matmul each: the same logits (float32
    rounding) at prefill and at each cached decode step, and the same weight bytes."""
    if backend == "mlx" and not _has_mlx():
        pytest.skip("mlx is not installed")
    plain = models.load(tiny, backend=backend, fuse=False)
    fused = plain.fused()
    assert fused.layers[0].self_attn.qkv_proj is not None and fused.layers[0].mlp.gate_up_proj is not None
    assert fused.weight_bytes() == plain.weight_bytes()
    assert nn.num_parameters(fused) == nn.num_parameters(plain)
    caches = plain.make_cache(), fused.make_cache(16)
    ids = [np.array([PROMPT], np.int32)] + [np.array([[t]], np.int32) for t in (5, 77, 300)]
    for step in ids:
        want, got = (aq.to_numpy(m(aq.to_backend(step, backend), c)) for m, c in zip((plain, fused), caches))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_activations(tiny, model, dtype):
    backend = "mlx" if _has_mlx() else "numpy"
    low = models.load(tiny, backend=backend, dtype=dtype)
    assert low.dtype == dtype and aq.dtype(low.layers[0].input_layernorm.weight).name == dtype
    out = low(aq.to_backend(np.array([PROMPT], np.int32), backend))
    assert aq.dtype(out).name == dtype
    ref = model(np.array([PROMPT], np.int32))
    # 8 (bfloat16) or 11 (float16) significant bits per activation, through two layers
    err = np.abs(aq.to_numpy(out).astype(np.float32) - ref).max() / np.abs(ref).max()
    assert err < (0.08 if dtype == "bfloat16" else 0.01)


def test_sampling_is_seeded(model):
    run = lambda seed, **kw: list(models.generate(model, PROMPT, 12, temperature=1.0, seed=seed, **kw))  # noqa: E731
    assert run(1) == run(1)
    assert run(1) != run(2)
    greedy = list(models.generate(model, PROMPT, 12))
    assert run(5, top_k=1) == greedy  # top-k 1 is greedy
    assert run(5, top_p=1e-9) == greedy  # so is a vanishing top-p
    assert list(models.generate(model, PROMPT, 12, temperature=0.0, seed=9)) == greedy


def test_sample_filters():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    draw = lambda **kw: {models.sample(logits, rng=rng, **kw) for _ in range(400)}  # noqa: E731
    rng = np.random.default_rng(0)
    assert draw(temperature=1.0) == {0, 1, 2, 3}
    assert draw(temperature=1.0, top_k=2) == {0, 1}
    assert draw(temperature=1.0, top_p=0.79) == {0, 1}  # 0.5 + 0.3 reaches 0.79
    assert draw(temperature=1.0, top_p=0.81) == {0, 1, 2}
    assert draw(temperature=1.0, top_p=0.5) == {0}
    assert models.sample(logits) == 0
    for bad in ({"temperature": -1}, {"top_p": 0}, {"top_p": 1.5}, {"top_k": -2}):
        with pytest.raises(ValueError):
            models.sample(logits, **bad)


@pytest.mark.parametrize("backend", ["numpy", "mlx"])
def test_sampling_runs_on_the_backend(backend, monkeypatch, tmp_path):
    """The token id comes back as a 0-d array of the logits' backend, the same draw as the
    host float64 computation of the same rule (original vocabulary order without top-p),
    and generate starts each next token with Backend.async_eval."""
    if backend == "mlx" and not _has_mlx():
        pytest.skip("mlx is not installed")
    from arrayq.models.generate import sample_array

    r = np.random.default_rng(4)
    for trial in range(20):
        logits = r.standard_normal(300) * 3
        kw = {"temperature": 0.7, "top_k": (0, 5, 50)[trial % 3]}
        token = sample_array(aq.to_backend(logits.astype(np.float32), backend), rng=np.random.default_rng(trial), **kw)
        assert aq.backend_of(token).name == backend and tuple(token.shape) == ()
        v = logits.astype(np.float32).astype(np.float64) / 0.7
        if kw["top_k"]:
            v = np.where(v >= np.sort(v)[-kw["top_k"]], v, -np.inf)
        cdf = np.cumsum(np.exp(v - v.max()))
        want = min(int(np.searchsorted(cdf, np.random.default_rng(trial).random() * cdf[-1], side="right")), 299)
        assert int(aq.to_numpy(token)) == want
    calls = []
    b = aq.get_backend(backend)
    real = type(b).async_eval
    monkeypatch.setattr(type(b), "async_eval", lambda self, *xs: calls.append(len(xs)) or real(self, *xs))
    m = models.load(models.make_checkpoint(tmp_path / "t", "tiny"), backend=backend)
    assert len(list(models.generate(m, PROMPT, 5))) == 5 and len(calls) == 5


def test_generate_stops_and_reports(model):
    tokens = list(models.generate(model, PROMPT, 10))
    stats = models.GenerationStats()
    stopped = list(models.generate(model, PROMPT, 10, stop_ids=[tokens[3]], stats=stats))
    assert stopped == tokens[: tokens.index(tokens[3])]
    assert stats.prompt_tokens == len(PROMPT) and stats.generated_tokens == len(stopped)
    assert stats.prefill_tps > 0 and stats.decode_seconds >= 0
    assert list(models.generate(model, PROMPT, 0)) == []
    with pytest.raises(ValueError, match="lie in"):
        list(models.generate(model, [512], 3))
    with pytest.raises(ValueError, match="at least one"):
        list(models.generate(model, [], 3))


def test_checkpoint_variants(tmp_path, model):
    logits = model(np.array([PROMPT], np.int32))
    # sharded with an index: the same tensors, so the same logits bit for bit
    sharded = models.make_checkpoint(tmp_path / "sharded", "tiny", shard_bytes=100_000)
    assert (
        len(list(sharded.glob("model-*-of-*.safetensors"))) > 1 and (sharded / "model.safetensors.index.json").is_file()
    )
    assert np.array_equal(models.load(sharded)(np.array([PROMPT], np.int32)), logits)
    # untied head
    untied = models.load(models.make_checkpoint(tmp_path / "untied", "tiny", tie_word_embeddings=False))
    assert isinstance(untied.lm_head, nn.QuantizedLinear)
    assert untied.weight_bytes(per_token=True) < untied.weight_bytes()
    assert untied(np.array([PROMPT], np.int32)).shape == (1, 7, 512)
    # dense (no quantization)
    dense = models.load(models.make_checkpoint(tmp_path / "dense", "tiny", quantization=None))
    assert isinstance(dense.embed_tokens, nn.Embedding) and isinstance(dense.layers[0].mlp.up_proj, nn.Linear)
    assert np.isfinite(dense(np.array([PROMPT], np.int32))).all()
    # attention biases
    biased = models.load(models.make_checkpoint(tmp_path / "bias", "tiny", attention_bias=True), fuse=False)
    assert biased.layers[0].self_attn.k_proj.bias.shape == (128,) and biased.layers[0].self_attn.o_proj.bias is None
    assert np.isfinite(biased(np.array([PROMPT], np.int32))).all()
    fused_biased = biased.fused()
    assert fused_biased.layers[0].self_attn.qkv_proj.bias.shape == (256 + 2 * 128,)
    np.testing.assert_allclose(
        fused_biased(np.array([PROMPT], np.int32)), biased(np.array([PROMPT], np.int32)), rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="affine"):
        models.make_checkpoint(tmp_path / "mx", "tiny", quantization={"group_size": 32, "bits": 4, "mode": "mxfp4"})
    # per-layer overrides: 8-bit down_proj in layer 0, an unquantized v_proj in layer 1
    quant = {
        "group_size": 64,
        "bits": 4,
        "model.layers.0.mlp.down_proj": {"group_size": 32, "bits": 8},
        "model.layers.1.self_attn.v_proj": False,
    }
    mixed = models.load(models.make_checkpoint(tmp_path / "mixed", "tiny", quantization=quant))
    down = mixed.layers[0].mlp.down_proj.weight
    assert (down.bits, down.group_size, down.shape) == (8, 32, (128, 384))
    assert isinstance(mixed.layers[1].self_attn.v_proj, nn.Linear)
    assert mixed.layers[1].self_attn.q_proj.weight.bits == 4
    # fused where the formats match: layer 1's attention (a dense v_proj) stays as it was
    assert mixed.layers[0].self_attn.qkv_proj is not None and mixed.layers[1].self_attn.qkv_proj is None
    assert mixed.layers[1].mlp.gate_up_proj is not None


def as_cli(fn):
    """``fn()`` in the activation mode ``arrayq generate`` takes by default (``--activations
    auto``: the backend's first ``activation_modes()``, int8 on NumPy's native kernels)."""
    backend = aq.current_backend()
    with backend.activations(backend.activation_modes()[0]):
        return fn()


def test_cli_generate(tiny, model, capsys):
    assert cli.main(["generate", "--model", str(tiny), "--prompt-ids", "1,2,3,4,5,6,7", "--max-tokens", "8"]) == 0
    out, err = capsys.readouterr()
    assert [int(t) for t in out.split()] == as_cli(lambda: list(models.generate(model, PROMPT, 8)))
    assert "prefill: 7 tokens" in err and "decode:  8 tokens" in err and "peak memory" in err
    assert "loading tiny" in err
    assert (
        cli.main(
            [
                "generate",
                "--model",
                str(tiny),
                "--prompt-ids",
                "1,2,3",
                "--max-tokens",
                "5",
                "--temperature",
                "0.7",
                "--top-p",
                "0.9",
                "--top-k",
                "50",
                "--seed",
                "4",
            ]
        )
        == 0
    )
    sampled = [int(t) for t in capsys.readouterr()[0].split()]
    assert sampled == as_cli(
        lambda: list(models.generate(model, [1, 2, 3], 5, temperature=0.7, top_p=0.9, top_k=50, seed=4))
    )


def test_cli_generate_dtype(tiny, capsys):
    """--dtype sets the activations' dtype; on a CPU device the default is float32 (on a GPU,
    bfloat16: the dtype arrayq's CUDA kernels take)."""
    args = ["generate", "--model", str(tiny), "--prompt-ids", "1,2,3", "--max-tokens", "3"]
    assert cli.main(args) == 0
    assert "float32 activations" in capsys.readouterr().err
    assert cli.main([*args, "--dtype", "bfloat16"]) == 0
    out, err = capsys.readouterr()
    bf16 = models.load(tiny, dtype="bfloat16")
    assert "bfloat16 activations" in err
    assert [int(t) for t in out.split()] == as_cli(lambda: list(models.generate(bf16, [1, 2, 3], 3)))
    assert cli.main([*args, "--dtype", "int8"]) == 2
    assert "invalid choice: 'int8'" in capsys.readouterr().err


def test_cli_generate_without_model_makes_the_tiny_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ARRAYQ_CACHE", str(tmp_path / "cache"))
    assert cli.main(["generate", "--prompt-ids", "1,2,3", "--max-tokens", "4"]) == 0
    out, err = capsys.readouterr()
    assert (tmp_path / "cache" / "tiny" / "config.json").is_file() and "wrote the tiny" in err
    assert len(out.split()) == 4
    assert cli.main(["generate", "--prompt-ids", "1,2,3", "--max-tokens", "4"]) == 0
    assert capsys.readouterr()[0] == out and "wrote" not in err.split("\n")[-1]


def test_cli_errors(tiny, capsys):
    assert cli.main(["generate", "--model", str(tiny), "--prompt", "hello", "--max-tokens", "2"]) == 2
    assert "--prompt-ids" in capsys.readouterr()[1]
    assert cli.main(["generate", "--model", str(tiny), "--prompt-ids", "1,x", "--max-tokens", "2"]) == 2
    assert "comma-separated" in capsys.readouterr()[1]
    assert cli.main(["generate", "--model", str(tiny / "nowhere"), "--prompt-ids", "1", "--max-tokens", "2"]) == 2
    assert "does not exist" in capsys.readouterr()[1]
    assert cli.main(["generate", "--model", str(tiny), "--prompt-ids", "1", "--device", "tpu"]) == 2
    assert "no device" in capsys.readouterr()[1]


def test_cli_make_checkpoint(tmp_path, capsys):
    assert cli.main(["make-checkpoint", "--preset", "tiny", str(tmp_path / "m"), "--seed", "3"]) == 0
    assert "wrote" in capsys.readouterr()[0]
    assert models.load(tmp_path / "m").config.num_hidden_layers == 2


def test_cli_streams_text_with_a_tokenizer(tiny, tmp_path, capsys):
    tokenizers = pytest.importorskip("tokenizers")
    import shutil

    d = shutil.copytree(tiny, tmp_path / "with-tokenizer")
    vocab = {f"w{i}": i for i in range(512)}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="w0"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(str(d / "tokenizer.json"))
    assert cli.main(["generate", "--model", str(d), "--prompt", "w1 w2 w3", "--max-tokens", "6"]) == 0
    out = capsys.readouterr()[0]
    expected = list(models.generate(models.load(d), [1, 2, 3], 6))
    assert out.split() == [f"w{t}" for t in expected]
