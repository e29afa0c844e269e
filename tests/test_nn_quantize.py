"""arrayq.nn.quantize: a model's Linear and Embedding layers replaced by quantized ones,
against the same model quantized by hand (``arrayq.quantize`` on each weight, the layers
rebuilt explicitly); the predicate, its paths and its per-layer keyword arguments; a
layer that cannot be quantized; and, with MLX installed, ``mlx.nn.quantize`` on the same
model (the same layers chosen, the same paths, the same bits, the same refusal)."""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np
import pytest

import arrayq as aq
from arrayq import models, nn
from arrayq.models.qwen3 import Qwen3Layer

rng = np.random.default_rng(0)


def _w(*shape: int) -> np.ndarray:
    return (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)


def _same_weight(got: aq.QuantizedWeight, want: aq.QuantizedWeight) -> None:
    assert (got.group_size, got.bits, got.mode, got.dtype) == (want.group_size, want.bits, want.mode, want.dtype)
    for a, b in ((got.packed, want.packed), (got.scales, want.scales), (got.biases, want.biases)):
        if b is None:
            assert a is None
        else:
            np.testing.assert_array_equal(aq.to_numpy(a), aq.to_numpy(b))


# ---------------------------------------------------------------------- a hand-built model


class Pair(NamedTuple):
    proj: Any
    norm: Any


@dataclasses.dataclass
class Block:
    norm: nn.RMSNorm
    mlp: nn.SwiGLU


@dataclasses.dataclass
class Net:
    """Every kind of container nn.quantize walks: a dataclass, a list, a dict, a named tuple."""

    embed: nn.Embedding
    blocks: list
    heads: dict
    pair: Pair
    out: nn.Linear
    scale: float = 1.0

    def __call__(self, ids: Any) -> Any:
        h = self.embed(ids)
        for block in self.blocks:
            h = aq.add(h, block.mlp(block.norm(h)))
        h = aq.add(self.pair.norm(self.pair.proj(h)), self.heads["a"](h))
        return aq.multiply(self.out(aq.add(h, self.heads["b"](h))), self.scale)


def _net() -> Net:
    def swiglu() -> nn.SwiGLU:
        return nn.SwiGLU(nn.Linear(_w(256, 64)), nn.Linear(_w(256, 64)), nn.Linear(_w(64, 256)))

    blocks = [Block(nn.RMSNorm(np.ones(64, np.float32)), swiglu()) for _ in range(2)]
    heads = {"a": nn.Linear(_w(64, 64), _w(64)), "b": nn.Linear(_w(64, 64))}
    pair = Pair(nn.Linear(_w(64, 64)), nn.LayerNorm(np.ones(64, np.float32), np.zeros(64, np.float32)))
    return Net(nn.Embedding(_w(50, 64)), blocks, heads, pair, nn.Linear(_w(32, 64), _w(32)))


def _by_hand(net: Net, **fmt: Any) -> Net:
    """Net with every weight quantized by arrayq.quantize, the layers rebuilt by hand."""

    def lin(layer: nn.Linear) -> nn.QuantizedLinear:
        return nn.QuantizedLinear(aq.quantize(layer.weight, **fmt), layer.bias)

    blocks = [
        Block(b.norm, nn.SwiGLU(lin(b.mlp.gate_proj), lin(b.mlp.up_proj), lin(b.mlp.down_proj))) for b in net.blocks
    ]
    return Net(
        nn.QuantizedEmbedding(aq.quantize(net.embed.weight, **fmt)),
        blocks,
        {"a": lin(net.heads["a"]), "b": lin(net.heads["b"])},
        Pair(lin(net.pair.proj), net.pair.norm),
        lin(net.out),
        net.scale,
    )


PATHS = {
    "embed",
    *(f"blocks.{i}.mlp.{p}_proj" for i in range(2) for p in ("gate", "up", "down")),
    "heads.a",
    "heads.b",
    "pair.0",
    "out",
}


@pytest.mark.parametrize(
    "fmt", [{}, {"group_size": 32, "bits": 3}, {"mode": "mxfp4"}], ids=["default", "gs32-b3", "mxfp4"]
)
def test_a_hand_built_model_equals_quantizing_each_weight_by_hand(fmt: dict) -> None:
    net = _net()
    ids = np.array([[3, 0, 49], [7, 7, 1]], np.int32)
    before = net(ids)
    q = nn.quantize(net, **fmt)
    want = _by_hand(net, **fmt)
    np.testing.assert_array_equal(q(ids), want(ids))
    assert q.embed.weight.shape == (50, 64) and isinstance(q.embed, nn.QuantizedEmbedding)
    for got, ref in zip(nn.parameters(q), nn.parameters(want)):
        np.testing.assert_array_equal(got, ref)
    _same_weight(q.heads["a"].weight, want.heads["a"].weight)
    assert q.heads["a"].bias is net.heads["a"].bias and type(q.pair) is Pair
    # what was not quantized is shared, not copied; the input model is unchanged
    assert q.blocks[0].norm is net.blocks[0].norm and q.pair.norm is net.pair.norm
    assert isinstance(net.out, nn.Linear) and isinstance(net.blocks[1].mlp.up_proj, nn.Linear)
    np.testing.assert_array_equal(net(ids), before)
    # quantizing again changes nothing: quantized layers have no quantize()
    again = nn.quantize(q)
    assert again is q


def test_the_predicate_sees_every_layer_by_path_and_chooses() -> None:
    net = _net()
    seen = []

    def predicate(path: str, layer: Any) -> Any:
        seen.append((path, type(layer).__name__))
        if path.startswith("blocks.1"):
            return False
        if path == "embed":
            return {"bits": 8}
        if path == "out":
            return {"group_size": 32, "mode": "affine"}
        return True

    q = nn.quantize(net, bits=4, group_size=64, predicate=predicate)
    assert {p for p, _ in seen} == PATHS and len(seen) == len(PATHS)
    assert dict(seen)["embed"] == "Embedding" and dict(seen)["heads.a"] == "Linear"
    assert isinstance(q.blocks[1].mlp.gate_proj, nn.Linear) and q.blocks[1] is net.blocks[1]
    _same_weight(q.embed.weight, aq.quantize(net.embed.weight, bits=8, group_size=64))
    _same_weight(q.out.weight, aq.quantize(net.out.weight, bits=4, group_size=32))
    _same_weight(q.blocks[0].mlp.down_proj.weight, aq.quantize(net.blocks[0].mlp.down_proj.weight))
    # falsy answers of any kind leave the layer dense; anything but a bool or dict is refused
    assert nn.quantize(net, predicate=lambda p, m: None) is net
    assert nn.quantize(net, predicate=lambda p, m: {}) is net
    with pytest.raises(TypeError, match=r"returned 'yes' for 'embed'.*bool, or a dict"):
        nn.quantize(net, predicate=lambda p, m: "yes")


def test_a_layer_that_cannot_be_quantized_is_an_error_naming_it() -> None:
    net = dataclasses.replace(_net(), out=nn.Linear(_w(32, 100)))  # 100 inputs: not a multiple of 64
    with pytest.raises(aq.QuantizationError, match=r"cannot quantize out \(Linear, weight shape \(32, 100\)\).*"
                       r"divisible by group_size 64.*predicate return False"):  # fmt: skip
        nn.quantize(net)
    q = nn.quantize(net, predicate=lambda path, layer: layer.weight.shape[-1] % 64 == 0)
    assert q.out is net.out and isinstance(q.heads["b"], nn.QuantizedLinear)
    assert isinstance(nn.quantize(net, group_size=32, predicate=lambda p, m: p != "out").embed, nn.QuantizedEmbedding)
    with pytest.raises(aq.QuantizationError, match="cannot quantize heads.a"):
        bad = dataclasses.replace(net, heads={"a": nn.Linear(np.full((4, 64), np.nan, np.float32))})
        nn.quantize(bad, predicate=lambda p, m: p == "heads.a")
    # a single layer is a model too; its path is ""
    assert isinstance(nn.quantize(nn.Linear(_w(8, 64))), nn.QuantizedLinear)
    with pytest.raises(aq.QuantizationError, match="cannot quantize the model"):
        nn.quantize(nn.Linear(_w(8, 10)))


@dataclasses.dataclass
class Recorder:
    """A layer of one's own that joins by defining quantize(); records what it was given."""

    weight: Any
    calls: list = dataclasses.field(default_factory=list)

    def quantize(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        return "quantized"


def test_options_reach_each_layer_and_shared_layers_stay_shared() -> None:
    shared = Recorder(_w(4, 64))
    model = {"x": shared, "y": [shared, Recorder(_w(4, 64))]}
    q = nn.quantize(model, bits=5, method="for-the-future", predicate=lambda p, m: {"calib": p} if p == "y.1" else True)
    assert q == {"x": "quantized", "y": ["quantized", "quantized"]}
    assert shared.calls == [{"group_size": None, "bits": 5, "mode": "affine", "method": "for-the-future"}]
    assert model["y"][1].calls == [{"group_size": None, "bits": 5, "mode": "affine", "method": "for-the-future",
                                    "calib": "y.1"}]  # fmt: skip
    # nn.Linear passes options to arrayq.quantize, whose errors come through unchanged
    with pytest.raises(TypeError, match="for_the_future"):
        nn.quantize({"z": nn.Linear(_w(4, 64))}, for_the_future=1)


# ---------------------------------------------------------------------- Qwen3


@pytest.fixture(scope="module")
def dense_tiny(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("dense") / "tiny", "tiny", quantization=None)


@pytest.mark.parametrize("backend", ["numpy", "mlx"])
def test_a_qwen3_model_equals_quantizing_each_weight_by_hand(dense_tiny, backend: str) -> None:
    if backend == "mlx":
        pytest.importorskip("mlx.core")
    model = models.load(dense_tiny, backend=backend)
    assert isinstance(model.layers[0].self_attn.q_proj, nn.Linear) and isinstance(model.embed_tokens, nn.Embedding)
    seen = []
    q = nn.quantize(model, predicate=lambda path, layer: seen.append(path) or True)
    names = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
             "mlp.up_proj", "mlp.down_proj")  # fmt: skip
    assert sorted(seen) == sorted(["embed_tokens", *(f"layers.{i}.{n}" for i in range(2) for n in names)])

    def lin(layer: nn.Linear) -> nn.QuantizedLinear:
        return nn.QuantizedLinear(aq.quantize(layer.weight), layer.bias)

    def layer_by_hand(layer: Qwen3Layer) -> Qwen3Layer:
        a, m = layer.self_attn, layer.mlp
        attn = dataclasses.replace(
            a, q_proj=lin(a.q_proj), k_proj=lin(a.k_proj), v_proj=lin(a.v_proj), o_proj=lin(a.o_proj)
        )
        mlp = nn.SwiGLU(lin(m.gate_proj), lin(m.up_proj), lin(m.down_proj))
        return Qwen3Layer(layer.input_layernorm, attn, layer.post_attention_layernorm, mlp)

    want = dataclasses.replace(
        model,
        embed_tokens=nn.QuantizedEmbedding(aq.quantize(model.embed_tokens.weight)),
        layers=[layer_by_hand(layer) for layer in model.layers],
    )
    ids = np.array([[1, 5, 9, 200, 3]], np.int32)
    got_logits = aq.to_numpy(q(aq.asarray(ids, like=model.norm.weight)))
    want_logits = aq.to_numpy(want(aq.asarray(ids, like=model.norm.weight)))
    np.testing.assert_array_equal(got_logits, want_logits)
    assert q.config is model.config and q.norm is model.norm
    # quantized: the logits move, but not far (4-bit of random weights: a few percent)
    dense = aq.to_numpy(model(aq.asarray(ids, like=model.norm.weight)))
    assert 0 < np.abs(got_logits - dense).max() < 0.5 * np.abs(dense).max()
    # and the quantized model fuses as a loaded quantized one does
    fused = q.fused()
    assert fused.layers[0].self_attn.qkv_proj is not None and fused.layers[0].mlp.gate_up_proj is not None


# ---------------------------------------------------------------------- against mlx.nn.quantize


def test_the_same_layers_as_mlx_nn_quantize() -> None:
    mx = pytest.importorskip("mlx.core")
    mlx_nn = pytest.importorskip("mlx.nn")

    class MLXNet(mlx_nn.Module):
        def __init__(self, head_in: int) -> None:
            super().__init__()
            self.embed = mlx_nn.Embedding(50, 64)
            self.layers = [mlx_nn.Linear(64, 128), mlx_nn.Linear(128, 64, bias=False)]
            self.norm = mlx_nn.RMSNorm(64)
            self.head = mlx_nn.Linear(head_in, 10)

    @dataclasses.dataclass
    class Same:
        embed: nn.Embedding
        layers: list
        norm: nn.RMSNorm
        head: nn.Linear

    def ours(m: Any) -> Same:
        def lin(layer: Any) -> nn.Linear:
            bias = np.array(layer.bias) if "bias" in layer else None
            return nn.Linear(np.array(layer.weight), bias)

        return Same(
            nn.Embedding(np.array(m.embed.weight)),
            [lin(x) for x in m.layers],
            nn.RMSNorm(np.array(m.norm.weight)),
            lin(m.head),
        )

    def predicate(path: str, layer: Any) -> Any:
        if path == "layers.1":
            return {"group_size": 32, "bits": 8}
        return path != "head"

    mx.random.seed(0)
    theirs = MLXNet(64)
    mine = nn.quantize(ours(theirs), predicate=predicate)
    mlx_seen, our_seen = [], []

    def theirs_predicate(path: str, module: Any) -> Any:
        # MLX asks about every leaf module (the norm too) and refuses a True for one without
        # to_quantized; arrayq asks only about the layers it can quantize
        if not hasattr(module, "to_quantized"):
            return False
        mlx_seen.append(path)
        return predicate(path, module)

    mlx_nn.quantize(theirs, class_predicate=theirs_predicate)
    nn.quantize(ours(MLXNet(64)), predicate=lambda p, m: our_seen.append(p) or False)
    assert sorted(mlx_seen) == sorted(our_seen) == ["embed", "head", "layers.0", "layers.1"]
    assert isinstance(theirs.head, mlx_nn.Linear) and isinstance(mine.head, nn.Linear)
    for theirs_q, mine_q in (
        (theirs.embed, mine.embed),
        (theirs.layers[0], mine.layers[0]),
        (theirs.layers[1], mine.layers[1]),
    ):
        assert type(theirs_q).__name__ == type(mine_q).__name__  # QuantizedEmbedding, QuantizedLinear
        w = mine_q.weight
        assert (theirs_q.group_size, theirs_q.bits) == (w.group_size, w.bits)
        np.testing.assert_array_equal(np.array(theirs_q.weight), w.packed)
        np.testing.assert_array_equal(np.array(theirs_q.scales), w.scales)
        np.testing.assert_array_equal(np.array(theirs_q.biases), w.biases)
    # a chosen layer whose input size is not a multiple of the group size: both refuse
    with pytest.raises(ValueError, match="divisible by the quantization group size"):
        mlx_nn.quantize(MLXNet(100))
    with pytest.raises(aq.QuantizationError, match="cannot quantize head"):
        nn.quantize(ours(MLXNet(100)))
