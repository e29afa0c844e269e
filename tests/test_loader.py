"""The generic loader (arrayq/models/_loader.py) with an architecture that is not Qwen3: a
toy encoder (an embedding, a LayerNorm with a bias, a stack of linears) given as its own
config class, name table and build function, loaded from safetensors and from GGUF with
the same checks Qwen3 gets."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import numpy as np
import pytest

import arrayq as aq
from arrayq import models, nn
from arrayq.models import CheckpointError, _loader, safetensors
from arrayq.models._sources import GGUFNames
from tests import test_gguf


@dataclasses.dataclass
class ToyConfig:
    vocab_size: int
    hidden_size: int
    num_layers: int
    layer_norm_eps: float = 1e-12
    quantization: dict | None = None

    @classmethod
    def from_dict(cls, d: Any, path: Any = "config.json", names: dict[str, str] | None = None) -> ToyConfig:
        r = _loader.ConfigReader(d, path, names)
        r.model_type("toy")
        r.require("vocab_size", "hidden_size", "num_layers")
        return cls(
            vocab_size=r.integer("vocab_size", d["vocab_size"]),
            hidden_size=r.integer("hidden_size", d["hidden_size"]),
            num_layers=r.integer("num_layers", d["num_layers"]),
            layer_norm_eps=r.number("layer_norm_eps", d.get("layer_norm_eps", 1e-12)),
            quantization=r.quantization(),
        )


@dataclasses.dataclass
class Toy:
    config: ToyConfig
    embeddings: Any
    norm: nn.LayerNorm
    layers: list

    def __call__(self, ids: Any) -> Any:
        h = self.norm(aq.astype(self.embeddings(ids), "float32"))
        for layer in self.layers:
            h = h + nn.gelu(layer(h))
        return h


GGUF_KEYS = {"hidden_size": "toy.embedding_length", "num_layers": "toy.block_count", "vocab_size": "toy.vocab_size"}


def _build(b: _loader.WeightBuilder, c: ToyConfig) -> Toy:
    embed = b.linear("embeddings.word", c.vocab_size, c.hidden_size, "vocab_size x hidden_size", embedding=True)
    w = b.dense("embeddings.norm.weight", (c.hidden_size,), "hidden_size")
    bias = b.dense("embeddings.norm.bias", (c.hidden_size,), "hidden_size")
    b.tick("embeddings.norm")
    layers = [
        b.linear(f"encoder.layer.{i}.dense", c.hidden_size, c.hidden_size, "hidden_size x hidden_size", bias=True)
        for i in range(c.num_layers)
    ]
    return Toy(c, embed, nn.LayerNorm(w, bias, c.layer_norm_eps), layers)


def _why_unexpected(name: str, c: ToyConfig) -> str | None:
    m = re.match(r"encoder\.layer\.(\d+)\.", name)
    if m and int(m.group(1)) >= c.num_layers:
        return f"belongs to layer {m.group(1)}, but the config has num_layers = {c.num_layers}"
    return "is not part of a toy model"


def _config_from_gguf(f: Any) -> ToyConfig:
    d = _loader.gguf_config_values(f, "toy", GGUF_KEYS)
    return ToyConfig.from_dict({"model_type": "toy", **d}, f.path, GGUF_KEYS)


TOY = _loader.Architecture(
    name="toy",
    config_class=ToyConfig,
    config_from_gguf=_config_from_gguf,
    gguf_names=GGUFNames(
        top={"token_embd": "embeddings.word", "token_embd_norm": "embeddings.norm"},
        block={"ffn_down": "dense"},
        layers="encoder.layer",
    ),
    build=_build,
    count_modules=lambda c: 2 + c.num_layers,
    why_unexpected=_why_unexpected,
)

CONFIG = {"model_type": "toy", "vocab_size": 64, "hidden_size": 64, "num_layers": 2}


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    r = np.random.default_rng(seed)
    w = {
        "embeddings.word.weight": r.standard_normal((64, 64)),
        "embeddings.norm.weight": 1 + 0.1 * r.standard_normal(64),
        "embeddings.norm.bias": 0.1 * r.standard_normal(64),
    }
    for i in range(2):
        w[f"encoder.layer.{i}.dense.weight"] = r.standard_normal((64, 64)) / 8
        w[f"encoder.layer.{i}.dense.bias"] = 0.1 * r.standard_normal(64)
    return {k: v.astype(np.float32) for k, v in w.items()}


def _folder(tmp_path, weights, config=CONFIG):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(config))
    safetensors.save(tmp_path / "model.safetensors", weights)
    return tmp_path


def test_a_second_architecture_loads_from_safetensors(tmp_path):
    w = _weights()
    seen = []
    model = _loader.load(_folder(tmp_path, w), TOY, progress=lambda done, total, what: seen.append((done, total)))
    assert isinstance(model, Toy) and model.config.num_layers == 2 and seen[-1] == (4, 4)
    assert np.array_equal(model.layers[1].bias, w["encoder.layer.1.dense.bias"])
    assert np.array_equal(model.norm.bias, w["embeddings.norm.bias"])
    assert _loader.read_config(tmp_path, TOY) == model.config


def test_a_second_architecture_gets_the_quantization_config(tmp_path):
    w = _weights()
    q = aq.quantize(w["encoder.layer.0.dense.weight"], bits=4, group_size=32)
    w.update({"encoder.layer.0.dense.weight": q.packed, "encoder.layer.0.dense.scales": q.scales})
    w["encoder.layer.0.dense.biases"] = q.biases
    config = {
        **CONFIG,
        "quantization": {"group_size": 32, "bits": 4, "embeddings.word": False, "encoder.layer.1.dense": False},
    }
    model = _loader.load(_folder(tmp_path, w, config), TOY)
    assert isinstance(model.layers[0], nn.QuantizedLinear) and isinstance(model.layers[1], nn.Linear)
    ids = np.array([[1, 2, 3]], dtype=np.int32)
    assert model(ids).shape == (1, 3, 64)


def test_a_second_architecture_gets_the_same_refusals(tmp_path):
    w = _weights()
    with pytest.raises(CheckpointError, match="has shape"):
        _loader.load(_folder(tmp_path / "a", {**w, "embeddings.norm.bias": np.zeros(3, np.float32)}), TOY)
    with pytest.raises(CheckpointError, match="belongs to layer 2, but the config has num_layers = 2"):
        _loader.load(_folder(tmp_path / "b", {**w, "encoder.layer.2.dense.weight": np.zeros(1, np.float32)}), TOY)
    with pytest.raises(CheckpointError, match="model_type 'qwen3' is not supported; this loader takes 'toy'"):
        _loader.load(_folder(tmp_path / "c", w, {**CONFIG, "model_type": "qwen3"}), TOY)
    with pytest.raises(CheckpointError, match="layer_norm_eps must be a finite number"):
        _loader.load(_folder(tmp_path / "d", w, {**CONFIG, "layer_norm_eps": float("nan")}), TOY)


def test_a_second_architecture_loads_from_gguf(tmp_path):
    w = _weights()
    gguf_name = TOY.gguf_names.to_gguf
    kinds = {"encoder.layer.0.dense.weight": "Q8_0"}
    tensors = [
        (gguf_name(n), kinds.get(n, "F32"), a.shape, test_gguf.encode(kinds.get(n, "F32"), a)) for n, a in w.items()
    ]
    metadata = [("general.architecture", test_gguf.STRING, "toy")] + [
        (key, test_gguf.U32, CONFIG[name]) for name, key in GGUF_KEYS.items()
    ]
    path = test_gguf.write_gguf(tmp_path / "toy.gguf", metadata, tensors)
    model = _loader.load(path, TOY)
    assert isinstance(model.layers[0], nn.QuantizedLinear) and isinstance(model.layers[1], nn.Linear)
    assert np.array_equal(model.layers[1].weight, w["encoder.layer.1.dense.weight"])
    deq = np.asarray(aq.dequantize(model.layers[0].weight))
    assert np.abs(deq - w["encoder.layer.0.dense.weight"]).max() < 0.02
    with pytest.raises(
        CheckpointError, match="general.architecture 'toy' is not supported; arrayq.models knows 'bert', 'qwen3'"
    ):
        models.load(path)
    with pytest.raises(CheckpointError, match="general.architecture is 'toy'; this loader takes 'qwen3'"):
        models.qwen3.load(path)


def test_every_weight_is_computed_when_load_returns(tmp_path):
    # on a lazy backend a weight left as a graph (a copy from the file not yet run) would be
    # recomputed inside every step that uses it: the embeddings and the final norm, built
    # outside the layers, once were
    mx = pytest.importorskip("mlx.core")
    import io

    models.make_checkpoint(tmp_path, "tiny")
    for dtype in ("bfloat16", "float32"):
        model = models.load(tmp_path, backend="mlx", dtype=dtype)
        pending = []
        for i, p in enumerate(nn.parameters(model)):
            dot = io.StringIO()
            mx.export_to_dot(dot, p)
            if "label" in dot.getvalue():  # a node to run (an evaluated array is only an input)
                pending.append(i)
        assert pending == [], f"{dtype}: parameters {pending} are not computed"
