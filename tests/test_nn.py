"""arrayq.nn: each function and layer against a float64 NumPy formula written here, on
NumPy and (where installed) MLX, and the layers as containers (to_backend, eval)."""

import math

import ml_dtypes
import numpy as np
import pytest

import arrayq as aq
from arrayq import _kv_cache, nn

# float32 computations against float64 references. Inputs have magnitude ~1 and the
# reductions here have at most a few hundred terms, so float32 rounding (2**-24 ~ 6e-8
# per operation, growing at most linearly with the number of terms) stays far below 1e-5.
RTOL = 1e-5
ATOL = 1e-5

BACKENDS = ["numpy", "mlx"]


def _has_mlx():
    return any(b.name == "mlx" and b.available for b in aq.list_backends())


@pytest.fixture(params=BACKENDS)
def backend(request):
    if request.param == "mlx" and not _has_mlx():
        pytest.skip("mlx is not installed")
    return request.param


def _on(backend, *arrays):
    out = aq.to_backend(arrays, backend)
    return out if len(arrays) > 1 else out[0]


def _close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(aq.to_numpy(actual).astype(np.float64), expected, rtol=rtol, atol=atol)


rng = np.random.default_rng(0)


def test_activations(backend):
    x64 = np.concatenate([rng.standard_normal(200) * 3, [-100.0, -30.0, 0.0, 30.0, 100.0]])
    x = _on(backend, x64.astype(np.float32))
    _close(nn.sigmoid(x), 1 / (1 + np.exp(-x64)))
    _close(nn.silu(x), x64 / (1 + np.exp(-x64)))
    erf = np.vectorize(math.erf)
    _close(nn.gelu(x), 0.5 * x64 * (1 + erf(x64 / math.sqrt(2))), atol=1e-4)
    _close(
        nn.gelu(x, approximate="tanh"),
        0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3))),
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="approximate"):
        nn.gelu(x, approximate="fast")


def test_softmax(backend):
    x64 = rng.standard_normal((3, 7)) * 10
    x64[0, 2] = -np.inf  # masked entry: probability 0
    e = np.exp(x64 - x64.max(axis=-1, keepdims=True))
    expected = e / e.sum(axis=-1, keepdims=True)
    out = nn.softmax(_on(backend, x64.astype(np.float32)))
    _close(out, expected)
    assert aq.to_numpy(out)[0, 2] == 0
    _close(
        nn.softmax(_on(backend, x64.astype(np.float32)), axis=0),
        np.exp(x64 - x64.max(0)) / np.exp(x64 - x64.max(0)).sum(0),
    )
    # float16 input: computed in float32, returned in float16
    out16 = nn.softmax(_on(backend, np.array([1000.0, 1000.0], np.float16)))
    assert aq.dtype(out16) == aq.float16
    assert aq.to_numpy(out16).tolist() == [0.5, 0.5]


# Norm inputs where the usual slips show: rows of very different magnitude (reducing over
# the wrong axis mixes them), rows whose mean square is comparable to eps (eps outside the
# square root, x / (sqrt(ms) + eps), changes them by tens of percent), a short last axis
# (dividing by D - 1 instead of D scales every row by sqrt(8/7): +7%), a mean offset of
# twice the spread (LayerNorm must subtract the mean), weight and bias of different
# distributions (swapping them is visible). Rows are scale * (standard normal + 2).
NORM_SCALES = np.array([[1e-3, 3e-3, 1e-2, 0.3, 10.0], [2e-3, 0.1, 1.0, 5e-3, 3.0]])[..., None]
NORM_D = 8
# Tolerances relative to each row's output magnitude (the largest |normalized * weight| +
# |bias| of the row; no element cancels below it by more than the inputs' rounding):
# float64 computes in float64 (unit roundoff 1.1e-16; a few ops and an 8-term sum stay
# below 1e-14). float32: unit roundoff 6e-8, at most ~20 roundings per element (mean,
# centring, 8-term sum, sqrt, divide, weight, bias) is ~1.2e-6, so 1e-5. float16 / bfloat16:
# statistics in float32, then the result rounded to the dtype (unit roundoff 2**-11 /
# 2**-8), once or twice (a backend may round before the weight product), so 2**-10 / 2**-7.
# The slips above move some element of each tested row by 5% of the row's magnitude or more.
NORM_RTOL = {"float64": 1e-12, "float32": 1e-5, "float16": 2**-10, "bfloat16": 2**-7}
NORM_DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _rms_norm64(x64, w64, eps):
    return x64 / np.sqrt((x64**2).mean(-1, keepdims=True) + eps) * (1.0 if w64 is None else w64)


def _layer_norm64(x64, w64, b64, eps):
    mu, var = x64.mean(-1, keepdims=True), ((x64 - x64.mean(-1, keepdims=True)) ** 2).mean(-1, keepdims=True)
    return (x64 - mu) / np.sqrt(var + eps) * w64 + b64


def _close_per_row(actual, expected, rtol, bias=None):
    """|actual - expected| <= rtol * (the row's largest |expected - bias| + |bias|), elementwise."""
    got = aq.to_numpy(actual).astype(np.float64)
    assert got.shape == expected.shape
    terms = np.abs(expected - (0 if bias is None else bias)) + (0 if bias is None else np.abs(bias))
    bound = rtol * terms.max(axis=-1, keepdims=True)
    bad = np.abs(got - expected) > bound
    assert not bad.any(), f"{bad.sum()} elements off; worst excess {(np.abs(got - expected) - bound).max():.3g}"


@pytest.mark.parametrize("dtype", list(NORM_DTYPES))
def test_norms(backend, dtype):
    r = np.random.default_rng(3)
    native = NORM_DTYPES[dtype]
    rtol = NORM_RTOL[dtype]
    # the inputs as the dtype holds them, and their float64 values for the expectations
    x = (NORM_SCALES * (r.standard_normal((2, 5, NORM_D)) + 2)).astype(native)
    w = (1 + 0.5 * r.standard_normal(NORM_D)).astype(native)
    b = (0.3 * r.standard_normal(NORM_D) - 1).astype(native)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    xa, wa, ba = _on(backend, x, w, b)
    for eps in (1e-5, 0.5):  # 1e-5: comparable to the small rows' mean square; 0.5: to the middle rows'
        for out, expected, bias in (
            (nn.RMSNorm(wa, eps)(xa), _rms_norm64(x64, w64, eps), None),
            (nn.rms_norm(xa, wa, eps), _rms_norm64(x64, w64, eps), None),
            (nn.rms_norm(xa, None, eps), _rms_norm64(x64, None, eps), None),
            (nn.LayerNorm(wa, ba, eps)(xa), _layer_norm64(x64, w64, b64, eps), b64),
        ):
            assert aq.dtype(out) == getattr(aq, dtype)
            _close_per_row(out, expected, rtol, bias)
    # the defaults: RMSNorm eps 1e-6, LayerNorm eps 1e-5
    _close_per_row(nn.RMSNorm(wa)(xa), _rms_norm64(x64, w64, 1e-6), rtol)
    _close_per_row(nn.LayerNorm(wa, ba)(xa), _layer_norm64(x64, w64, b64, 1e-5), rtol, b64)
    _close_per_row(nn.LayerNorm()(xa), _layer_norm64(x64, 1.0, 0.0, 1e-5), rtol)


def test_linear_and_quantized_linear(backend):
    w64, b64 = rng.standard_normal((48, 128)) / 10, rng.standard_normal(48)
    x64 = rng.standard_normal((2, 3, 128))
    lin = _on(backend, nn.Linear(w64.astype(np.float32), b64.astype(np.float32)))
    assert (lin.in_features, lin.out_features) == (128, 48)
    x = _on(backend, x64.astype(np.float32))
    _close(lin(x), x64 @ w64.T + b64)
    q = lin.quantize(bits=8, group_size=64)
    assert isinstance(q, nn.QuantizedLinear) and q.weight.shape == (48, 128) and q.weight.bits == 8
    assert (q.in_features, q.out_features) == (128, 48)
    wq = aq.to_numpy(aq.dequantize(q.weight)).astype(np.float64)
    _close(q(x), x64 @ wq.T + b64, rtol=1e-4, atol=1e-4)
    assert np.abs(wq - w64).max() < 0.01  # 8-bit: close to the float weight
    y = q(aq.astype(x, aq.float16))  # result in x's dtype
    assert aq.dtype(y) == aq.float16


def test_embedding_looks_up_rows_without_dequantizing_the_table(backend):
    table = rng.standard_normal((100, 64)).astype(np.float32)
    emb = _on(backend, nn.Embedding(table))
    ids = np.array([[3, 99, 0], [-1, 5, 5]], np.int32)
    assert aq.to_numpy(emb(_on(backend, ids))).tolist() == table[ids].tolist()
    _close(emb.as_linear(_on(backend, table[:2])), table[:2].astype(np.float64) @ table.T.astype(np.float64), atol=1e-4)
    qemb = emb.quantize(bits=4, group_size=32)
    assert isinstance(qemb, nn.QuantizedEmbedding)
    full = aq.to_numpy(aq.dequantize(qemb.weight))
    rows = aq.to_numpy(qemb(_on(backend, ids)))
    assert rows.shape == (2, 3, 64) and rows.dtype == full.dtype
    assert rows.tobytes() == full[ids].tobytes()  # bit-identical to the table's rows
    _close(qemb.as_linear(_on(backend, table[:2])), table[:2].astype(np.float64) @ full.T.astype(np.float64), atol=1e-4)


@pytest.mark.parametrize("mode", ["mxfp4", "nvfp4"])
def test_quantized_embedding_without_biases(backend, mode):
    table = rng.standard_normal((40, 64)).astype(np.float32)
    qemb = _on(backend, nn.Embedding(table).quantize(mode=mode))
    assert qemb.weight.biases is None
    ids = np.array([7, 0, 39], np.int32)
    full = aq.to_numpy(aq.dequantize(qemb.weight))
    assert aq.to_numpy(qemb(_on(backend, ids))).tobytes() == full[ids].tobytes()


def test_quantized_embedding_reads_only_the_rows_it_needs(monkeypatch):
    """The lookup dequantizes a (n_ids, dims) weight, never the (vocab, dims) table."""
    import arrayq.nn as module

    qemb = nn.Embedding(rng.standard_normal((1000, 64)).astype(np.float32)).quantize()
    shapes = []
    real = module.aq.dequantize
    monkeypatch.setattr(module.aq, "dequantize", lambda w, *a, **k: shapes.append(w.shape) or real(w, *a, **k))
    qemb(np.array([1, 2, 3]))
    assert shapes == [(3, 64)]


def _rope_reference(x, offset, base, traditional):
    d = x.shape[-1]
    inv = base ** (-np.arange(0, d, 2) / d)
    ang = (offset + np.arange(x.shape[-2]))[:, None] * inv[None]
    cos, sin = np.cos(ang), np.sin(ang)
    if traditional:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = x1 * cos - x2 * sin, x2 * cos + x1 * sin
        return out
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    rotate_half = np.concatenate([-x2, x1], axis=-1)
    return x * np.concatenate([cos, cos], -1) + rotate_half * np.concatenate([sin, sin], -1)


@pytest.mark.parametrize("traditional", [False, True])
def test_rope(backend, traditional):
    x64 = rng.standard_normal((1, 2, 5, 32))
    rope = nn.RoPE(32, base=10000.0, traditional=traditional)
    _close(rope(_on(backend, x64.astype(np.float32)), offset=7), _rope_reference(x64, 7, 10000.0, traditional))
    # partial rotation: only the first dims features turn
    part = nn.RoPE(16, base=500.0)(_on(backend, x64.astype(np.float32)), offset=2)
    _close(part, np.concatenate([_rope_reference(x64[..., :16], 2, 500.0, False), x64[..., 16:]], -1))
    with pytest.raises(ValueError, match="dims"):
        nn.RoPE(64)(_on(backend, x64.astype(np.float32)))


@pytest.mark.parametrize("traditional", [False, True])
def test_rope_float64_far_into_the_sequence(traditional):
    """float64 activations rotate by float64 angles (tables rounded once to float64, on the
    NumPy backend's own rope and on the reference a primitives-only backend runs): 1e-12
    here, where float32 tables would be off by ~1e-7 of |x| at every position."""
    x64 = rng.standard_normal((1, 2, 3, 16))
    expected = _rope_reference(x64, 40_000, 10000.0, traditional)
    native = nn.rope(x64, 16, traditional=traditional, offset=40_000)
    reference = nn.rope_reference(x64, 16, traditional, nn.rope_tables(16, 10000.0, 1.0, 40_000, 3, np.float64))
    for got in (native, reference):
        _close(got, expected, rtol=0, atol=1e-12)


def _attention_reference(q, k, v, scale, causal, mask=None):
    rep = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)  # head h reads kv head h // rep
    s = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None:
        s = s + mask  # broadcasting to (B, H, L, S)
    if causal:
        length, total = q.shape[2], k.shape[2]
        s = np.where(np.arange(total)[None] <= (total - length + np.arange(length))[:, None], s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


@pytest.mark.parametrize("length,total", [(6, 6), (1, 9), (3, 8)])
def test_grouped_query_attention(backend, length, total):
    q64 = rng.standard_normal((2, 8, length, 16))
    k64, v64 = rng.standard_normal((2, 2, total, 16)), rng.standard_normal((2, 2, total, 16))
    q, k, v = _on(backend, q64.astype(np.float32), k64.astype(np.float32), v64.astype(np.float32))
    out = nn.scaled_dot_product_attention(q, k, v, scale=0.25, mask="causal")
    _close(out, _attention_reference(q64, k64, v64, 0.25, causal=True))
    _close(
        nn.scaled_dot_product_attention(q, k, v, scale=0.25), _attention_reference(q64, k64, v64, 0.25, causal=False)
    )
    with pytest.raises(ValueError, match="do not fit"):
        nn.scaled_dot_product_attention(q, q, v, scale=1.0)


@pytest.mark.parametrize("mask_shape", [(2, 1, 1, 7), (1, 8, 3, 7), (2, 8, 3, 7), (3, 7)])
def test_attention_masks_broadcast_to_batch_heads_queries_keys(backend, mask_shape):
    # a padding mask per batch entry, a bias per query head, a full mask: each lines up with
    # (B, H, L, S), whatever the grouping of query heads onto kv heads
    q64 = rng.standard_normal((2, 8, 3, 16))
    k64, v64 = rng.standard_normal((2, 2, 7, 16)), rng.standard_normal((2, 2, 7, 16))
    mask = rng.standard_normal(mask_shape).astype(np.float32)
    mask[..., -1] = -np.inf  # a key no query may see (every row keeps others)
    q, k, v = _on(backend, q64.astype(np.float32), k64.astype(np.float32), v64.astype(np.float32))
    out = nn.scaled_dot_product_attention(q, k, v, scale=0.25, mask=mask)
    _close(out, _attention_reference(q64, k64, v64, 0.25, causal=False, mask=mask.astype(np.float64)))


def test_causal_mask():
    m = nn.causal_mask(2, 4)
    assert m.dtype == np.float32 and m.tolist() == [[0, 0, 0, -np.inf], [0, 0, 0, 0]]


def test_padding_mask(backend):
    """0 for tokens, the dtype's most negative finite value for padding, (B, 1, 1, S), on
    the mask's backend, from lengths or from a 0/1 attention mask."""
    for dtype in ("float32", "float16", "float64") if backend == "numpy" else ("float32", "bfloat16"):
        low = float(aq.finfo(dtype).min)
        want = np.array([[0, 0, 0], [0, 0, low], [low, low, low]]).reshape(3, 1, 1, 3)
        attention = _on(backend, np.array([[1, 1, 1], [1, 1, 0], [0, 0, 0]], np.int32))
        for got in (
            nn.padding_mask(attention, dtype=dtype),
            nn.padding_mask(aq.astype(attention, "bool"), dtype=dtype),
            nn.padding_mask(lengths=_on(backend, np.array([3, 2, 0], np.int32)), dtype=dtype),
        ):
            assert aq.backend_of(got).name == backend and aq.dtype(got) == aq.as_dtype(dtype)
            np.testing.assert_array_equal(aq.to_numpy(aq.astype(got, "float64")), want)
    host = nn.padding_mask(lengths=[2, 1], length=4)  # Python ints: a NumPy array
    assert isinstance(host, np.ndarray) and host.shape == (2, 1, 1, 4) and host.dtype == np.float32
    np.testing.assert_array_equal(host[:, 0, 0] < 0, [[0, 0, 1, 1], [0, 1, 1, 1]])


@pytest.mark.parametrize(
    "kwargs,error,words",
    [
        ({}, ValueError, "one of attention_mask"),
        ({"attention_mask": np.ones((2, 3)), "lengths": [3, 3]}, ValueError, "one of attention_mask"),
        ({"attention_mask": np.ones(3)}, ValueError, "shape \\(batch, length\\)"),
        ({"lengths": [3, -1]}, ValueError, "from 0 to length"),
        ({"lengths": [3, 5], "length": 4}, ValueError, "from 0 to length=4"),
        ({"lengths": [1.5]}, ValueError, "1-D sequence of integers"),
        ({"lengths": [[1, 2]]}, ValueError, "1-D sequence of integers"),
        ({"lengths": [1], "dtype": "int32"}, TypeError, "floating"),
    ],
)
def test_padding_mask_refuses(kwargs, error, words):
    with pytest.raises(error, match=words):
        nn.padding_mask(**kwargs)


def test_a_fully_padded_row_is_finite(backend):
    """Every key of batch row 1 is padding: with padding_mask's finite minimum the weights
    are uniform (the mean of v), where -inf would give NaN (exp(-inf - -inf))."""
    r = np.random.default_rng(4)
    q, k, v = (r.standard_normal((2, 2, 3, 8)).astype(np.float32) for _ in range(3))
    mask = nn.padding_mask(np.array([[1, 1, 0], [0, 0, 0]], np.int32))
    out = aq.to_numpy(nn.scaled_dot_product_attention(*_on(backend, q, k, v), scale=0.3, mask=_on(backend, mask)))
    np.testing.assert_allclose(
        out[1], np.broadcast_to(v[1].mean(axis=1, keepdims=True), (2, 3, 8)), rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(
        out[0], _attention_reference(q[:1], k[:1], v[:1], 0.3, False, mask[:1])[0], rtol=RTOL, atol=ATOL
    )
    with np.errstate(invalid="ignore"):
        assert np.isnan(_attention_reference(q, k, v, 0.3, False, np.where(mask < 0, -np.inf, 0.0))[1]).all()


@pytest.mark.parametrize("causal", [False, True])
def test_attention_without_rope_and_a_padding_mask(backend, causal):
    """An encoder's attention (no RoPE, biases, not causal) and a causal one, each with a
    padding mask, against the projections and attention written in float64 here."""
    r = np.random.default_rng(5)
    hidden, heads, hd = 32, 4, 8
    ws = [(r.standard_normal((hidden, hidden)) / 6, r.standard_normal(hidden) / 4) for _ in range(4)]
    lin = [nn.Linear(w.astype(np.float32), b.astype(np.float32)) for w, b in ws]
    attn = _on(backend, nn.Attention(*lin, n_heads=heads, n_kv_heads=heads, head_dim=hd, causal=causal))
    x64 = r.standard_normal((2, 5, hidden))
    mask = nn.padding_mask(lengths=[5, 3])
    got = attn(_on(backend, x64.astype(np.float32)), _on(backend, mask))

    def proj(x, i):
        return x @ ws[i][0].T + ws[i][1]

    q, k, v = (proj(x64, i).reshape(2, 5, heads, hd).transpose(0, 2, 1, 3) for i in range(3))
    o = _attention_reference(q, k, v, hd**-0.5, causal, mask.astype(np.float64))
    _close(got, proj(o.transpose(0, 2, 1, 3).reshape(2, 5, hidden), 3))
    with pytest.raises(ValueError, match="causality is the layer's"):
        attn(_on(backend, x64.astype(np.float32)), "causal")


def _attention_layer(seed=1, hidden=64, heads=4, kv=2, hd=16):
    r = np.random.default_rng(seed)
    lin = lambda n, k: nn.Linear((r.standard_normal((n, k)) / np.sqrt(k)).astype(np.float32))  # noqa: E731
    norm = lambda d: nn.RMSNorm((1 + 0.1 * r.standard_normal(d)).astype(np.float32))  # noqa: E731
    return nn.Attention(
        lin(heads * hd, hidden),
        lin(kv * hd, hidden),
        lin(kv * hd, hidden),
        lin(hidden, heads * hd),
        heads,
        kv,
        hd,
        nn.RoPE(hd, 1e6),
        norm(hd),
        norm(hd),
    )


def test_attention_with_cache_equals_full_sequence(backend):
    attn = _on(backend, _attention_layer())
    x = _on(backend, rng.standard_normal((1, 7, 64)).astype(np.float32))
    full = aq.to_numpy(attn(x))
    cache = nn.KVCache()
    parts = [aq.to_numpy(attn(x[:, :4], cache=cache))]
    assert cache.offset == 4
    parts += [aq.to_numpy(attn(x[:, i : i + 1], cache=cache)) for i in range(4, 7)]
    assert cache.offset == 7 and tuple(cache.keys.shape) == (1, 2, 7, 16)
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, rtol=1e-4, atol=1e-5)


def test_swiglu(backend):
    r = np.random.default_rng(2)
    g, u, d = (r.standard_normal(s) / 8 for s in ((96, 32), (96, 32), (32, 96)))
    mlp = _on(
        backend,
        nn.SwiGLU(nn.Linear(g.astype(np.float32)), nn.Linear(u.astype(np.float32)), nn.Linear(d.astype(np.float32))),
    )
    x64 = r.standard_normal((3, 32))
    gx = x64 @ g.T
    _close(mlp(_on(backend, x64.astype(np.float32))), (gx / (1 + np.exp(-gx)) * (x64 @ u.T)) @ d.T)


def test_layers_are_containers_that_move_between_backends():
    if not _has_mlx():
        pytest.skip("mlx is not installed")
    import mlx.core as mx

    attn = _attention_layer()
    qattn = nn.Attention(**{**attn.__dict__, "q_proj": attn.q_proj.quantize(group_size=64)})
    moved = aq.to_backend(qattn, "mlx")
    assert isinstance(moved.q_proj.weight.packed, mx.array) and isinstance(moved.o_proj.weight, mx.array)
    assert isinstance(moved.q_norm.weight, mx.array) and moved.rope == qattn.rope
    arrays = nn.parameters(moved)
    assert len(arrays) == 3 + 3 + 2 and all(isinstance(a, mx.array) for a in arrays)
    aq.eval(arrays)
    x = rng.standard_normal((1, 5, 64)).astype(np.float32)
    np.testing.assert_allclose(aq.to_numpy(moved(aq.to_backend(x, "mlx"))), qattn(x), rtol=1e-4, atol=1e-5)
    assert nn.num_parameters(qattn) == nn.num_parameters(attn) == 4 * 64 * 64 - 2 * 64 * 32 + 2 * 16


@pytest.mark.parametrize("capacity", [0, 28, 12])
@pytest.mark.parametrize("in_place", [True, False])
def test_kv_cache_appends_equal_one_concatenation(backend, in_place, capacity, monkeypatch):
    """Prompt, then one position at a time past several doublings of the buffer; the
    concatenation fallback (immutable arrays) gives the same; so does a buffer preallocated
    for all positions (28, never reallocated) or for fewer (12, then doubled)."""
    if not in_place:
        monkeypatch.setattr(_kv_cache, "_writable", lambda x: False)
    r = np.random.default_rng(9)
    steps = [r.standard_normal((2, 3, n, 4)).astype(np.float32) for n in [5] + [1] * 20 + [3]]
    cache = nn.KVCache(capacity=capacity)
    buffers = set()
    given = [(_on(backend, step), _on(backend, -step)) for step in steps]
    for i, (k_in, v_in) in enumerate(given):
        k, v = cache.update_and_fetch(k_in, v_in)
        want = np.concatenate(steps[: i + 1], axis=2)
        np.testing.assert_array_equal(aq.to_numpy(k), want)
        np.testing.assert_array_equal(aq.to_numpy(v), -want)
        assert cache.offset == want.shape[2] and tuple(cache.keys.shape) == want.shape
        buffers.add(id(cache._keys))
    assert cache._in_place == in_place
    if in_place and capacity == 28:  # preallocated: written in place from the first call on
        assert len(buffers) == 1 and int(cache._keys.shape[2]) == 28
    for step, (k_in, _) in zip(steps, given):  # the caller's arrays are never written into
        np.testing.assert_array_equal(aq.to_numpy(k_in), step)


@pytest.mark.parametrize("as_array", [False, True])
@pytest.mark.parametrize(
    "length,total,n,causal", [(1, 9, 4, False), (1, 9, 9, False), (3, 8, 5, True), (2, 6, 6, True)]
)
def test_attention_over_a_key_prefix(backend, as_array, length, total, n, causal):
    # key_length n: keys n.. (a fixed-size cache's unwritten tail) must not matter, so
    # they are filled with huge values; the expectation is attention over the first n keys
    q64 = rng.standard_normal((2, 4, length, 16))
    k64, v64 = rng.standard_normal((2, 2, total, 16)), rng.standard_normal((2, 2, total, 16))
    k64[:, :, n:], v64[:, :, n:] = 1e4, -1e4
    q, k, v = _on(backend, q64.astype(np.float32), k64.astype(np.float32), v64.astype(np.float32))
    key_length = aq.asarray(n, dtype=aq.int32, like=q) if as_array else n
    out = nn.scaled_dot_product_attention(q, k, v, scale=0.25, mask="causal" if causal else None, key_length=key_length)
    expected = _attention_reference(q64, k64[:, :, :n], v64[:, :, :n], 0.25, causal=causal)
    _close(out, expected)
    # a caller's additive mask on top of the prefix (the mask-array path on every backend)
    extra = rng.standard_normal((1, 1, length, total))
    out = nn.scaled_dot_product_attention(
        q, k, v, scale=0.25, mask=_on(backend, extra.astype(np.float32)), key_length=key_length
    )
    _close(out, _attention_reference(q64, k64[:, :, :n], v64[:, :, :n], 0.25, causal=False, mask=extra[..., :n]))


def test_prefix_mask_by_hand():
    # 3 keys written of a 5-key buffer, 2 new queries (positions 1 and 2): causal sees j <= 1 + i
    m = aq.to_numpy(nn.prefix_mask(3, 2, 5, causal=True, dtype=aq.float32, like=aq.asarray(0)))
    inf = -np.inf
    assert m.shape == (1, 1, 2, 5)
    np.testing.assert_array_equal(m[0, 0], [[0, 0, inf, inf, inf], [0, 0, 0, inf, inf]])
    m = aq.to_numpy(nn.prefix_mask(3, 2, 5, causal=False, dtype=aq.float32, like=aq.asarray(0)))
    np.testing.assert_array_equal(m[0, 0], [[0, 0, 0, inf, inf]] * 2)


@pytest.mark.parametrize("bad", [0, 10, -1, True, 2.0, "3", [3]])
def test_key_length_refused(backend, bad):
    q, k = _on(backend, np.ones((1, 2, 1, 4), np.float32), np.ones((1, 2, 9, 4), np.float32))
    with pytest.raises(ValueError, match="key_length"):
        nn.scaled_dot_product_attention(q, k, k, scale=1.0, key_length=bad)


def test_numpy_reads_and_checks_an_array_key_length():
    # NumPy is eager, so its prefix_attention can check the count that a lazy backend cannot
    q, k = np.ones((1, 2, 1, 4), np.float32), np.ones((1, 2, 9, 4), np.float32)
    with pytest.raises(ValueError, match="key_length"):
        nn.scaled_dot_product_attention(q, k, k, scale=1.0, key_length=np.asarray(12, dtype=np.int32))
