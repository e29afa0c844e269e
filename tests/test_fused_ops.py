"""The fused decoder-layer ops ``nn.qkv_heads`` and ``nn.add_rms_norm``: the NumPy backend's
native kernels (backends/arrayq_numpy/csrc/rowops.c) against the unfused kernels they fuse
(bit for bit), against float64 NumPy written here, and the reference path; the layers
that use them; bad input.

Tolerances: the native results are checked bit-identical to the unfused native kernels
(rms_norm then rope; an add then rms_norm), whose own precision tests/test_rowops.py
states. Against float64: rms_norm is within 3 float32 roundings, rope adds 3 more (two
products and a sum) on values of the pair's size, so each output is within
``2**-20 * max|ref|`` of float64 for tables computed in float64 (16 float32 epsilons of
the row's scale: a wrong head, weight, position or pair is off by far more).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import arrayq as aq
from arrayq import nn
from arrayq_numpy import _native, _rowops

native = pytest.mark.skipif(
    not _rowops._runs(), reason="the native row kernels are not built or turned off (ARRAYQ_NATIVE)"
)

ROW_TOL = 2.0**-20  # times max|ref| of the row: see the module docstring


def _qkv(rng: np.random.Generator, b: int, length: int, h: int, hkv: int, d: int) -> np.ndarray:
    return rng.standard_normal((b, length, (h + 2 * hkv) * d)).astype(np.float32) * 3


def _weights(rng: np.random.Generator, d: int) -> tuple[np.ndarray, np.ndarray]:
    return tuple(rng.uniform(0.5, 2.0, d).astype(np.float32) for _ in range(2))  # type: ignore[return-value]


def _qkv_heads64(qkv, h, hkv, d, qw, kw, eps, dims, traditional, offset):
    """float64: heads split, q/k RMS-normed and rotated at positions offset.. (angles in float64)."""
    b, length, _ = qkv.shape
    x = qkv.astype(np.float64).reshape(b, length, h + 2 * hkv, d).transpose(0, 2, 1, 3)
    pos = np.arange(offset, offset + length, dtype=np.float64)[:, None]
    angles = pos * 10000.0 ** (-np.arange(0, dims, 2) / dims)
    cos, sin = np.cos(angles), np.sin(angles)

    def norm_rope(y, w):
        y = y / np.sqrt(np.mean(y * y, axis=-1, keepdims=True) + eps) * w.astype(np.float64)
        out = y.copy()
        if traditional:
            x1, x2 = y[..., 0:dims:2], y[..., 1:dims:2]
            out[..., 0:dims:2], out[..., 1:dims:2] = x1 * cos - x2 * sin, x2 * cos + x1 * sin
        else:
            x1, x2 = y[..., : dims // 2], y[..., dims // 2 : dims]
            out[..., : dims // 2], out[..., dims // 2 : dims] = x1 * cos - x2 * sin, x2 * cos + x1 * sin
        return out

    return norm_rope(x[:, :h], qw), norm_rope(x[:, h : h + hkv], kw), x[:, h + hkv :]


def _unfused(qkv, h, hkv, d, qw, kw, eps, dims, traditional, offset):
    rope_args = {"traditional": traditional, "offset": offset}
    return nn.qkv_heads_reference(qkv, h, hkv, d, qw, kw, eps, dims, rope_args)


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list:
    calls: list = []
    kernels = _native._kernels
    real = getattr(kernels, name)
    monkeypatch.setattr(kernels, name, lambda *a: calls.append(a) or real(*a))
    return calls


# ---------------------------------------------------------------------- qkv_heads

QKV_CASES = [  # (B, L, H, Hkv, D, dims, traditional, offset): decode of qwen3-0.6b, prefill, odd sizes
    (1, 1, 16, 8, 128, 128, False, 63),
    (2, 5, 4, 2, 16, 16, False, 0),
    (1, 3, 3, 1, 12, 8, True, 37),
    (3, 1, 2, 2, 10, 6, False, 5),
]


@native
@pytest.mark.parametrize("case", QKV_CASES)
def test_qkv_heads_is_the_unfused_kernels_bit_for_bit(monkeypatch: pytest.MonkeyPatch, case) -> None:
    b, length, h, hkv, d, dims, traditional, offset = case
    rng = np.random.default_rng(d)
    qkv, (qw, kw) = _qkv(rng, b, length, h, hkv, d), _weights(rng, d)
    calls = _counting(monkeypatch, "qkv_heads")
    got = nn.qkv_heads(
        qkv, h, hkv, d, q_weight=qw, k_weight=kw, eps=1e-6, rope_dims=dims, traditional=traditional, offset=offset
    )
    assert len(calls) == 1
    want = _unfused(qkv, h, hkv, d, qw, kw, 1e-6, dims, traditional, offset)  # native rms_norm and rope
    for g, w, heads in zip(got, want, (h, hkv, hkv)):
        assert g.shape == (b, heads, length, d) and g.dtype == np.float32
        np.testing.assert_array_equal(g, w)
    for g, r in zip(got, _qkv_heads64(qkv, h, hkv, d, qw, kw, 1e-6, dims, traditional, offset)):
        scale = np.max(np.abs(r), axis=-1, keepdims=True)
        assert np.all(np.abs(g - r) <= ROW_TOL * scale)


@native
def test_qkv_heads_reads_a_strided_projection_and_keeps_nan_in_its_head() -> None:
    """qkv as a view (every other row of a larger buffer) gives what its copy gives; a NaN in
    one q head stays in that head (each head is normed on its own)."""
    rng = np.random.default_rng(3)
    big = rng.standard_normal((2, 8, (4 + 2 * 2) * 16)).astype(np.float32)
    big[0, 2, 16 + 3] = np.nan  # q head 1 of row (0, 1) of the view
    qkv, (qw, kw) = big[:, ::2], _weights(rng, 16)
    kwargs = {"q_weight": qw, "k_weight": kw, "eps": 1e-6, "rope_dims": 16, "offset": 4}
    got = nn.qkv_heads(qkv, 4, 2, 16, **kwargs)
    for g, w in zip(got, nn.qkv_heads(np.ascontiguousarray(qkv), 4, 2, 16, **kwargs)):
        np.testing.assert_array_equal(g, w)
    nan_rows = np.argwhere(np.isnan(got[0]).any(axis=-1))
    assert nan_rows.tolist() == [[0, 1, 1]]  # (batch 0, head 1, position 1) only
    assert not np.isnan(got[1]).any() and not np.isnan(got[2]).any()


def test_qkv_heads_other_dtypes_and_native_off_take_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    qkv64, (qw, kw) = _qkv(rng, 1, 2, 2, 1, 8).astype(np.float64), _weights(rng, 8)
    qw64, kw64 = qw.astype(np.float64), kw.astype(np.float64)
    calls = _counting(monkeypatch, "qkv_heads") if _native._kernels is not None else []
    kwargs = {"q_weight": qw64, "k_weight": kw64, "eps": 1e-6, "rope_dims": 8, "offset": 3}
    got = nn.qkv_heads(qkv64, 2, 1, 8, **kwargs)
    for g, r in zip(got, _qkv_heads64(qkv64, 2, 1, 8, qw64, kw64, 1e-6, 8, False, 3)):
        assert g.dtype == np.float64
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)  # float64 throughout
    monkeypatch.setattr(_rowops, "_runs", lambda: False)
    qkv32 = qkv64.astype(np.float32)
    got = nn.qkv_heads(qkv32, 2, 1, 8, **{**kwargs, "q_weight": qw, "k_weight": kw})
    for g, w in zip(got, _unfused(qkv32, 2, 1, 8, qw, kw, 1e-6, 8, False, 3)):
        np.testing.assert_array_equal(g, w)
    assert not calls


@pytest.mark.parametrize(
    "qkv_shape,weight_shape,dims,offset,error,match",
    [
        ((1, 1, 63), (8,), 8, 0, ValueError, "qkv_heads takes qkv"),  # not (2 + 2*1) * 8 = 32... wide
        ((1, 32), (8,), 8, 0, ValueError, "qkv_heads takes qkv"),  # 2-D
        ((1, 1, 32), (7,), 8, 0, ValueError, "q_weight must have shape"),
        ((1, 1, 32), (8,), 7, 0, ValueError, "rope dims 7"),
        ((1, 1, 32), (8,), 10, 0, ValueError, "rope dims 10"),
        ((1, 1, 32), (8,), 8, -1, ValueError, "rope offset"),
    ],
)
def test_qkv_heads_rejects_bad_arguments(qkv_shape, weight_shape, dims, offset, error, match) -> None:
    qkv, w = np.ones(qkv_shape, np.float32), np.ones(weight_shape, np.float32)
    with pytest.raises(error, match=match):
        nn.qkv_heads(qkv, 2, 1, 8, q_weight=w, k_weight=np.ones(8, np.float32), eps=1e-6, rope_dims=dims, offset=offset)
    with pytest.raises(TypeError, match="real floating"):
        nn.qkv_heads(np.ones((1, 1, 32), np.int32), 2, 1, 8, q_weight=w, k_weight=w, eps=1e-6, rope_dims=8)


@native
def test_the_fused_kernels_check_their_arrays() -> None:
    k = _native._kernels
    assert k is not None
    qkv, w, tables = np.ones((2, 32), np.float32), np.ones(8, np.float32), np.ones((2, 4), np.float32)
    q, kv = np.empty((1, 2, 2, 8), np.float32), np.empty((1, 1, 2, 8), np.float32)
    k.qkv_heads(qkv, w, w, tables, tables, q, kv, np.empty_like(kv), 1e-6, 8, False)  # fits
    with pytest.raises(ValueError, match="qkv_heads shapes do not fit"):
        k.qkv_heads(qkv[:1], w, w, tables, tables, q, kv, np.empty_like(kv), 1e-6, 8, False)
    with pytest.raises(ValueError, match="qkv_heads shapes do not fit"):
        k.qkv_heads(qkv, w, w, tables, tables, q, kv, np.empty_like(kv), 1e-6, 9, False)
    with pytest.raises(ValueError, match="k must be"):
        k.qkv_heads(qkv, w, w, tables, tables, q, kv[..., :4], np.empty_like(kv), 1e-6, 8, False)
    with pytest.raises(ValueError, match="cos must be"):
        k.qkv_heads(qkv, w, w, tables[:1], tables, q, kv, np.empty_like(kv), 1e-6, 8, False)
    with pytest.raises(ValueError, match="k_weight must be"):
        k.qkv_heads(qkv, w, w[:7], tables, tables, q, kv, np.empty_like(kv), 1e-6, 8, False)
    x = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match="same shape"):
        k.add_rms_norm(x, x[:1], w, np.empty_like(x), np.empty_like(x), 1e-6)
    with pytest.raises(ValueError, match="sum must be"):
        k.add_rms_norm(x, x, w, np.empty((2, 9), np.float32), np.empty_like(x), 1e-6)
    with pytest.raises(ValueError, match="weight must be"):
        k.add_rms_norm(x, x, w[:4], np.empty_like(x), np.empty_like(x), 1e-6)


# ---------------------------------------------------------------------- add_rms_norm


@native
@pytest.mark.parametrize("shape,with_weight", [((1, 1, 1024), True), ((2, 5, 13), False), ((3, 1), True)])
def test_add_rms_norm_is_the_unfused_kernels_bit_for_bit(monkeypatch: pytest.MonkeyPatch, shape, with_weight) -> None:
    rng = np.random.default_rng(shape[-1])
    x, y = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    w = rng.uniform(0.5, 2.0, shape[-1]).astype(np.float32) if with_weight else None
    calls = _counting(monkeypatch, "add_rms_norm")
    total, normed = nn.add_rms_norm(x, y, w, 1e-5)
    assert len(calls) == 1
    np.testing.assert_array_equal(total, x + y)  # float32 sums, exactly NumPy's
    np.testing.assert_array_equal(normed, nn.rms_norm(x + y, w, 1e-5))
    s64 = (x + y).astype(np.float64)
    ref = s64 / np.sqrt(np.mean(s64 * s64, axis=-1, keepdims=True) + 1e-5) * (1.0 if w is None else w)
    np.testing.assert_allclose(normed, ref, rtol=2.0**-22)  # 3 roundings (tests/test_rowops.py)


@native
def test_add_rms_norm_reads_strided_halves() -> None:
    rng = np.random.default_rng(6)
    both = rng.standard_normal((3, 2, 40)).astype(np.float32)
    x, y, w = both[..., :20], both[..., 20:], np.ones(20, np.float32)
    total, normed = nn.add_rms_norm(x, y, w, 1e-6)
    np.testing.assert_array_equal(total, x + y)
    np.testing.assert_array_equal(normed, nn.rms_norm(x + y, w, 1e-6))


def test_add_rms_norm_other_dtypes_take_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    x, y, w = (rng.standard_normal(s) for s in ((2, 6), (2, 6), (6,)))
    total, normed = nn.add_rms_norm(x, y, w, 1e-6)
    assert total.dtype == normed.dtype == np.float64
    np.testing.assert_array_equal(total, x + y)
    ref = (x + y) / np.sqrt(np.mean((x + y) ** 2, axis=-1, keepdims=True) + 1e-6) * w
    np.testing.assert_allclose(normed, ref, rtol=1e-13)  # float64 throughout


@pytest.mark.parametrize(
    "xs,ys,dtypes,ws,error,match",
    [
        ((2, 8), (2, 9), ("float32", "float32"), (8,), ValueError, "one shape and dtype"),
        ((2, 8), (2, 8), ("float32", "float64"), (8,), ValueError, "one shape and dtype"),
        ((2, 8), (2, 8), ("float32", "float32"), (4,), ValueError, "weight must have shape"),
        ((2, 8), (2, 8), ("int32", "int32"), (8,), TypeError, "real floating"),
        ((), (), ("float32", "float32"), (1,), ValueError, "at least 1-D"),
    ],
)
def test_add_rms_norm_rejects_bad_arguments(xs, ys, dtypes, ws, error, match) -> None:
    x, y = np.ones(xs, dtypes[0]), np.ones(ys, dtypes[1])
    with pytest.raises(error, match=match):
        nn.add_rms_norm(x, y, np.ones(ws, np.float32))


# ---------------------------------------------------------------------- the layers using them


def _attention(rng: np.random.Generator, fused: bool) -> nn.Attention:
    h, hkv, d, hidden = 4, 2, 16, 32

    def linear(out: int, inp: int = hidden) -> nn.Linear:
        return nn.Linear(rng.standard_normal((out, inp)).astype(np.float32) / 6)

    layer = nn.Attention(
        linear(h * d), linear(hkv * d), linear(hkv * d), linear(hidden, h * d), h, hkv, d, rope=nn.RoPE(d, base=1e6),
        q_norm=nn.RMSNorm(rng.uniform(0.5, 2, d).astype(np.float32)),
        k_norm=nn.RMSNorm(rng.uniform(0.5, 2, d).astype(np.float32)),
    )  # fmt: skip
    if not fused:
        return layer
    qkv = nn.Linear(np.concatenate([layer.q_proj.weight, layer.k_proj.weight, layer.v_proj.weight]))
    return dataclasses.replace(layer, q_proj=None, k_proj=None, v_proj=None, qkv_proj=qkv)


def test_attention_with_qkv_proj_takes_one_qkv_heads_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fused layer (qkv_proj, q/k norms, RoPE) makes its heads in one qkv_heads call; its
    output is the unfused path's on the same projection (Attention.heads then the RoPE),
    over a cache, at prefill and at a decode step. Norms of different eps (or an unfused
    layer) take the unfused path."""
    layer = _attention(np.random.default_rng(10), fused=True)
    assert layer.qkv_proj is not None
    calls: list = []
    real = nn.qkv_heads
    monkeypatch.setattr("arrayq._fused.qkv_heads", lambda *a, **k: calls.append(a) or real(*a, **k))
    x = np.random.default_rng(11).standard_normal((2, 6, 32)).astype(np.float32)
    cache_a, cache_b = nn.KVCache(), nn.KVCache()
    for part in (x[:, :5], x[:, 5:]):
        got = layer(part, cache=cache_a)
        q, k, v = layer.heads(part)
        assert layer.rope is not None
        q, k = layer.rope(q, cache_b.offset), layer.rope(k, cache_b.offset)
        k, v = cache_b.update_and_fetch(k, v)
        out = nn.scaled_dot_product_attention(q, k, v, scale=16**-0.5, mask="causal" if part.shape[1] > 1 else None)
        want = layer.o_proj(aq.reshape(aq.permute_dims(out, (0, 2, 1, 3)), (2, part.shape[1], 64)))
        np.testing.assert_array_equal(got, want)
    assert len(calls) == 2
    assert layer.q_norm is not None
    other_eps = dataclasses.replace(layer, q_norm=dataclasses.replace(layer.q_norm, eps=1e-5))
    other_eps(x)
    _attention(np.random.default_rng(10), fused=False)(x)
    assert len(calls) == 2


def test_qwen3_layer_takes_add_rms_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Qwen3 decoder layer's attention residual and MLP norm are one add_rms_norm call;
    the layer's output is the unfused h = x + attn, h + mlp(norm(h))."""
    from arrayq.models.qwen3 import Qwen3Layer

    rng = np.random.default_rng(12)
    w = lambda *s: rng.standard_normal(s).astype(np.float32) / 6  # noqa: E731
    mlp = nn.SwiGLU(nn.Linear(w(48, 32)), nn.Linear(w(48, 32)), nn.Linear(w(32, 48)))
    norms = [nn.RMSNorm(rng.uniform(0.5, 2, 32).astype(np.float32)) for _ in range(2)]
    layer = Qwen3Layer(norms[0], _attention(rng, fused=True), norms[1], mlp)
    calls: list = []
    real = nn.add_rms_norm
    monkeypatch.setattr(nn, "add_rms_norm", lambda *a: calls.append(a) or real(*a))
    x = rng.standard_normal((1, 3, 32)).astype(np.float32)
    h = x + layer.self_attn(norms[0](x))
    np.testing.assert_array_equal(layer(x), h + mlp(norms[1](h)))
    assert len(calls) == 1
