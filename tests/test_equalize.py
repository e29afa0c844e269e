"""arrayq.nn.equalize_attention: AWQ-style scales on attention's output projection, folded
into the value projection.

Expectations: the scales hand-computed for small inputs; the float model's outputs before
equalising (the transformation must keep the function: exact in real arithmetic, so only
float32 rounding separates them); the weights' columns and rows against the original ones
times the hand-derived scales; MLX's own mx.dequantize on the packed format afterwards.
The real-model measurement (all-MiniLM-L6-v2) is benchmarks/quantization_quality.py's.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from typing import Any

import numpy as np
import pytest

import arrayq as aq
from arrayq import QuantizationError, nn
from arrayq._equalize import channel_scales


@dataclasses.dataclass
class Block:
    """A non-causal attention layer on (B, L, hidden); its o_proj's inputs recorded in
    ``seen`` when set."""

    attention: nn.Attention

    def __call__(self, x: Any) -> Any:
        return self.attention(x)


def _linear(rng: np.random.Generator, n: int, k: int, columns: np.ndarray | None = None) -> nn.Linear:
    w = rng.standard_normal((n, k)) / math.sqrt(k)
    if columns is not None:
        w = w * columns[None, :]
    return nn.Linear(aq.asarray(w.astype(np.float32)), aq.asarray((0.1 * rng.standard_normal(n)).astype(np.float32)))


def _model(rng: np.random.Generator, heads: int = 4, kv_heads: int = 2, head_dim: int = 16) -> Block:
    hidden = heads * head_dim
    # value channels of very different sizes, as real models have: what equalising is for
    v_rows = np.exp(rng.uniform(-2.0, 2.0, kv_heads * head_dim))
    v = _linear(rng, kv_heads * head_dim, hidden)
    v = nn.Linear(aq.multiply(v.weight, aq.asarray(v_rows[:, None].astype(np.float32))), v.bias)
    attention = nn.Attention(
        q_proj=_linear(rng, hidden, hidden),
        k_proj=_linear(rng, kv_heads * head_dim, hidden),
        v_proj=v,
        o_proj=_linear(rng, hidden, hidden),
        n_heads=heads,
        n_kv_heads=kv_heads,
        head_dim=head_dim,
        causal=False,
    )
    return Block(attention)


def _o_inputs(block: Block, x: Any) -> np.ndarray:
    """o_proj's inputs on ``x``, (tokens, n_heads * head_dim), recorded by wrapping it."""
    seen: list[np.ndarray] = []
    o = block.attention.o_proj

    def record(a: Any) -> Any:
        seen.append(np.asarray(aq.to_numpy(a)).reshape(-1, int(a.shape[-1])))
        return o(a)

    dataclasses.replace(block.attention, o_proj=record)(x)
    return np.concatenate(seen)


def _np(a: Any) -> np.ndarray:
    return np.asarray(aq.to_numpy(a), np.float64)


def test_channel_scales_by_hand():
    # mean |a| per column: [2, 4]; alpha 1: proportional to it, geometric mean 1
    a = np.array([[1.0, -8.0], [3.0, 0.0]])
    np.testing.assert_allclose(channel_scales(a, 1, 1, 2, 1.0), [2 / math.sqrt(8), 4 / math.sqrt(8)], rtol=1e-12)
    np.testing.assert_allclose(channel_scales(a, 1, 1, 2, 0.5), [(1 / 2) ** 0.25, 2**0.25], rtol=1e-12)
    np.testing.assert_array_equal(channel_scales(a, 1, 1, 2, 0.0), [1.0, 1.0])
    # two query heads share one value head of one channel: their means [2, 4] averaged
    np.testing.assert_array_equal(channel_scales(a, 2, 1, 1, 1.0), [1.0])
    # a channel that is always 0 counts as the smallest non-zero mean (no log of 0)
    z = np.array([[0.0, 2.0, 8.0]])
    cube = 32 ** (1 / 3)  # the geometric mean of [2, 2, 8]
    np.testing.assert_allclose(channel_scales(z, 1, 1, 3, 1.0), [2 / cube, 2 / cube, 8 / cube])


@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 4), (4, 2)])
def test_keeps_the_function_and_scales_the_weights(heads, kv_heads):
    rng = np.random.default_rng(0)
    block = _model(rng, heads, kv_heads)
    x = aq.asarray(rng.standard_normal((3, 7, heads * 16)).astype(np.float32))
    inputs = _o_inputs(block, x)
    out, alphas = nn.equalize_attention(block, {"attention.o_proj": inputs}, alpha=0.5)
    assert alphas == {"attention.o_proj": 0.5}
    before, after = _np(block(x)), _np(out(x))
    # float32: the products reassociate (scale, then matmul), so a few ulps of the output's
    # size per accumulated term; 1e-5 of the output's norm is far above that and far below
    # any real change (the scales span e^-2..e^2 here)
    assert np.linalg.norm(after - before) <= 1e-5 * np.linalg.norm(before)
    # the weights: o_proj's columns times s (per value head, repeated over its query heads),
    # v_proj's rows and bias divided by it
    s = channel_scales(inputs, heads, kv_heads, 16, 0.5)
    per_query = np.tile(s.reshape(kv_heads, 1, 16), (1, heads // kv_heads, 1)).reshape(-1)
    a, b = block.attention, out.attention
    np.testing.assert_allclose(_np(b.o_proj.weight), _np(a.o_proj.weight) * per_query, rtol=1e-6)
    np.testing.assert_allclose(_np(b.v_proj.weight), _np(a.v_proj.weight) / s[:, None], rtol=1e-6)
    np.testing.assert_allclose(_np(b.v_proj.bias), _np(a.v_proj.bias) / s, rtol=1e-6)
    assert b.q_proj is a.q_proj and b.k_proj is a.k_proj and b.o_proj.bias is a.o_proj.bias
    assert np.ptp(np.log(s)) > 1.0  # the test's channels really differ, so it shows something


def test_search_lowers_the_quantized_output_error():
    rng = np.random.default_rng(1)
    block = _model(rng, 4, 4)
    x = aq.asarray(rng.standard_normal((4, 16, 64)).astype(np.float32))
    inputs = _o_inputs(block, x)
    options = {"bits": 3, "group_size": 32}
    out, alphas = nn.equalize_attention(block, {"attention.o_proj": inputs}, alpha=[0.0, 0.5, 1.0], options=options)
    assert alphas["attention.o_proj"] in (0.0, 0.5, 1.0)

    def error(b: Block) -> float:  # the whole layer's output error once o_proj is quantized
        q = dataclasses.replace(b.attention, o_proj=b.attention.o_proj.quantize(**options))
        return float(np.mean(np.square(_np(q(x)) - _np(block(x)))))

    assert error(out) <= error(block)
    if alphas["attention.o_proj"] > 0:
        assert error(out) < error(block)


def test_quantized_result_is_mlx_format():
    mx = pytest.importorskip("mlx.core")
    rng = np.random.default_rng(2)
    block = _model(rng)
    x = aq.asarray(rng.standard_normal((2, 5, 64)).astype(np.float32))
    out, _ = nn.equalize_attention(block, {"attention.o_proj": _o_inputs(block, x)}, alpha=0.75)
    q = nn.quantize(out, bits=4, group_size=32).attention.o_proj.weight
    theirs = mx.dequantize(
        *(mx.array(np.asarray(aq.to_numpy(a))) for a in (q.packed, q.scales, q.biases)), group_size=32, bits=4
    )
    np.testing.assert_array_equal(np.asarray(theirs), np.asarray(aq.to_numpy(aq.dequantize(q))))


def test_equalizes_every_named_layer_of_a_model():
    rng = np.random.default_rng(3)
    layers = [_model(rng), _model(rng)]
    x = aq.asarray(rng.standard_normal((2, 5, 64)).astype(np.float32))
    inputs = {f"{i}.attention.o_proj": _o_inputs(b, x) for i, b in enumerate(layers)}
    out, alphas = nn.equalize_attention(layers, {"1.attention.o_proj": inputs["1.attention.o_proj"]}, alpha=1.0)
    assert out[0] is layers[0] and out[1] is not layers[1] and alphas == {"1.attention.o_proj": 1.0}


@pytest.mark.parametrize("alpha", [-0.5, math.nan, math.inf, True, "0.5", []])
def test_bad_alpha(alpha):
    block = _model(np.random.default_rng(4))
    with pytest.raises(ValueError, match="alpha"):
        nn.equalize_attention(block, {"attention.o_proj": np.ones((2, 64))}, alpha=alpha)


def test_bad_arguments():
    rng = np.random.default_rng(5)
    block = _model(rng)
    good = np.ones((3, 64))
    with pytest.raises(ValueError, match="options="):
        nn.equalize_attention(block, {"attention.o_proj": good}, alpha=[0.0, 0.5])
    with pytest.raises(ValueError, match="no attention layer's o_proj"):
        nn.equalize_attention(block, {"layers.0.attention.o_proj": good})
    for bad in (np.ones((3, 63)), np.ones((0, 64)), np.full((3, 64), np.nan), np.ones(64)):
        with pytest.raises(QuantizationError, match=r"\(tokens, 64\)"):
            nn.equalize_attention(block, {"attention.o_proj": bad})
    quantized = nn.quantize(block, bits=4, group_size=32)
    with pytest.raises(QuantizationError, match="dense v_proj and o_proj"):
        nn.equalize_attention(quantized, {"attention.o_proj": good})


@pytest.mark.skipif(importlib.util.find_spec("mlx") is None, reason="mlx not installed")
def test_same_result_on_mlx():
    rng = np.random.default_rng(6)
    block = _model(rng)
    x = aq.asarray(rng.standard_normal((2, 5, 64)).astype(np.float32))
    inputs = _o_inputs(block, x)
    ours, _ = nn.equalize_attention(block, {"attention.o_proj": inputs}, alpha=0.5)
    there, _ = nn.equalize_attention(nn.to_backend(block, "mlx"), {"attention.o_proj": inputs}, alpha=0.5)
    assert aq.backend_of(there.attention.o_proj.weight).name == "mlx"
    # the same float32 products on both backends (a scale times a weight: exact rounding)
    np.testing.assert_array_equal(_np(there.attention.o_proj.weight), _np(ours.attention.o_proj.weight))
