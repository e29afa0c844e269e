"""BERT (arrayq/models/bert.py) on small random checkpoints, against a float64 NumPy BERT
written here without arrayq (hidden states, padding, pooling, normalisation); its name map
(a ``bert.`` prefix, TensorFlow's gamma/beta), quantized and GGUF checkpoints,
sentence-transformers' folder settings, the registry that picks the architecture, and
what a bad checkpoint gets. The real all-MiniLM-L6-v2 is tests/test_minilm.py's."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import arrayq as aq
from arrayq import models, nn
from arrayq.models import Bert, BertConfig, CheckpointError, bert, safetensors
from arrayq.models import _architectures as registry
from tests import test_gguf

BACKENDS = ["numpy", "mlx", "strict"]
CONFIG = dict(
    model_type="bert",
    architectures=["BertModel"],
    vocab_size=60,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=24,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    hidden_act="gelu",
)
# a float32 forward against the float64 reference: inputs O(1), dot products over at most
# 64 terms, two layers; the differences are a few float32 ulps of O(1) values (measured
# below 1e-6). The tanh GELU instead of the exact one shifts the embeddings by 5e-5, a
# padding mask ignored by 0.5.
ATOL = 5e-6


@pytest.fixture(params=BACKENDS)
def backend(request):
    name = request.param
    if not any(b.name == name and b.available for b in aq.list_backends()):
        pytest.skip(f"{name} is not installed")
    return name


def weights(seed: int = 0, c: dict = CONFIG) -> dict[str, np.ndarray]:
    r = np.random.default_rng(seed)
    hid, inter = c["hidden_size"], c["intermediate_size"]
    w = {
        "embeddings.word_embeddings.weight": r.standard_normal((c["vocab_size"], hid)),
        "embeddings.position_embeddings.weight": 0.5 * r.standard_normal((c["max_position_embeddings"], hid)),
        "embeddings.token_type_embeddings.weight": 0.5 * r.standard_normal((c["type_vocab_size"], hid)),
    }

    def norm(name: str) -> None:
        w[f"{name}.weight"], w[f"{name}.bias"] = 1 + 0.2 * r.standard_normal(hid), 0.2 * r.standard_normal(hid)

    def linear(name: str, n: int, k: int) -> None:
        w[f"{name}.weight"], w[f"{name}.bias"] = r.standard_normal((n, k)) / math.sqrt(k), 0.2 * r.standard_normal(n)

    norm("embeddings.LayerNorm")
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        for part in ("query", "key", "value"):
            linear(f"{p}.attention.self.{part}", hid, hid)
        linear(f"{p}.attention.output.dense", hid, hid)
        norm(f"{p}.attention.output.LayerNorm")
        linear(f"{p}.intermediate.dense", inter, hid)
        linear(f"{p}.output.dense", hid, inter)
        norm(f"{p}.output.LayerNorm")
    return {k: v.astype(np.float32) for k, v in w.items()}


def folder(path, w=None, config=None, pooling="mean_tokens", normalize=True, bert_config=None):
    """A sentence-transformers folder: config.json, model.safetensors, modules.json
    (Transformer, Pooling, and Normalize when ``normalize``), 1_Pooling/config.json."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(CONFIG if config is None else config))
    safetensors.save(path / "model.safetensors", weights() if w is None else w)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    modules.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (path / "modules.json").write_text(json.dumps(modules))
    (path / "1_Pooling").mkdir(exist_ok=True)
    modes = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
    flags = {f"pooling_mode_{m}": m == pooling for m in modes}
    (path / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32, **flags}))
    if bert_config is not None:
        (path / "sentence_bert_config.json").write_text(json.dumps(bert_config))
    return path


# ---------------------------------------------------------------------- the float64 reference


def _layer_norm(x, w, name):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + CONFIG["layer_norm_eps"]) * w[f"{name}.weight"] + w[f"{name}.bias"]


def reference(w, ids, mask, types=None, pooling="mean", normalize=True):
    """Hugging Face's BertModel (eval mode) and sentence-transformers' pooling, in float64:
    (token states (B, L, hidden), sentence embeddings (B, hidden))."""
    w = {k: v.astype(np.float64) for k, v in w.items()}
    b, length = ids.shape
    heads, hid = CONFIG["num_attention_heads"], CONFIG["hidden_size"]
    d = hid // heads
    types = np.zeros_like(ids) if types is None else types
    h = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][np.arange(length)]
    h = _layer_norm(h + w["embeddings.token_type_embeddings.weight"][types], w, "embeddings.LayerNorm")
    erf = np.vectorize(math.erf)
    for i in range(CONFIG["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def lin(x, name, p=p):
            return x @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (
            lin(h, f"attention.self.{n}").reshape(b, length, heads, d).transpose(0, 2, 1, 3)
            for n in ("query", "key", "value")
        )
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + np.where(mask[:, None, None, :] > 0, 0.0, -1e30)
        e = np.exp(s - s.max(-1, keepdims=True))
        a = ((e / e.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(b, length, hid)
        h = _layer_norm(h + lin(a, "attention.output.dense"), w, p + "attention.output.LayerNorm")
        g = lin(h, "intermediate.dense")
        h = _layer_norm(h + lin(0.5 * g * (1 + erf(g / math.sqrt(2))), "output.dense"), w, p + "output.LayerNorm")
    m = (mask > 0)[..., None]
    if pooling == "cls":
        out = h[:, 0]
    elif pooling == "max":
        out = np.where(m, h, -1e9).max(1)
    else:
        out = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    if normalize:
        out = out / np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-12)
    return h, out


def _inputs(seed=1):
    r = np.random.default_rng(seed)
    ids = r.integers(0, CONFIG["vocab_size"], (3, 9)).astype(np.int32)
    mask = (np.arange(9)[None] < np.array([9, 5, 1])[:, None]).astype(np.int32)
    return ids, mask, r.integers(0, 2, (3, 9)).astype(np.int32)


def _np(x):
    return np.asarray(aq.to_numpy(x), dtype=np.float64)


# ---------------------------------------------------------------------- the forward pass


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_matches_the_float64_reference(tmp_path, backend, pooling):
    w = weights()
    model = models.load(
        folder(tmp_path, w, pooling=f"{pooling}_token{'s' if pooling != 'cls' else ''}"), backend=backend
    )
    assert isinstance(model, Bert) and model.config.pooling == pooling and model.config.normalize
    ids, mask, types = _inputs()
    want_h, want = reference(w, ids, mask, types, pooling)
    ids_b, mask_b, types_b = aq.to_backend((ids, mask, types), backend)
    np.testing.assert_allclose(_np(model.hidden(ids_b, mask_b, types_b)), want_h, rtol=0, atol=ATOL)
    got = model(ids_b, mask_b, types_b)
    assert aq.backend_of(got).name == backend and tuple(got.shape) == (3, 32)
    np.testing.assert_allclose(_np(got), want, rtol=0, atol=ATOL)
    host = model(ids, mask, types)  # NumPy inputs move to the model's backend
    assert aq.backend_of(host).name == backend
    np.testing.assert_allclose(_np(host), _np(got), rtol=0, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(_np(got), axis=1), 1, atol=1e-6)  # unit rows (float32 sums)


def test_without_normalize_or_mask(tmp_path):
    w = weights()
    model = models.load(folder(tmp_path, w, normalize=False))
    ids, _, _ = _inputs()
    full = np.ones_like(ids)
    np.testing.assert_allclose(_np(model(ids)), reference(w, ids, full, normalize=False)[1], rtol=0, atol=ATOL)


def test_padding_does_not_change_a_texts_embedding(tmp_path):
    """A text alone and the same text padded in a batch: the same embedding (the padded
    keys get no attention weight, padded positions are not pooled)."""
    model = models.load(folder(tmp_path))
    ids, mask, _ = _inputs()
    alone = _np(model(ids[1:2, :5], mask[1:2, :5]))
    batch = _np(model(ids, mask))
    np.testing.assert_allclose(batch[1:2], alone, rtol=0, atol=1e-6)  # float32, other summation lengths


def test_an_all_padding_row_gives_zeros_not_nan(tmp_path):
    model = models.load(folder(tmp_path))
    ids, mask, _ = _inputs()
    mask[2] = 0
    got = _np(model(ids, mask))
    assert np.all(np.isfinite(got)) and np.all(got[2] == 0)
    np.testing.assert_allclose(got[:2], reference(weights(), ids[:2], mask[:2])[1], rtol=0, atol=ATOL)


def test_float64_activations(tmp_path):
    w = weights()
    model = models.load(folder(tmp_path, w), dtype="float64")
    ids, mask, types = _inputs()
    got = model(ids, mask, types)
    assert aq.dtype(got) == aq.float64
    # float64 throughout: the reference's rounding only (erf from math vs NumPy's)
    np.testing.assert_allclose(_np(got), reference(w, ids, mask, types)[1], rtol=0, atol=1e-12)


def test_bad_inputs(tmp_path):
    model = models.load(folder(tmp_path))
    ids, mask, _ = _inputs()
    with pytest.raises(ValueError, match="ids must have shape"):
        model(ids[0])
    with pytest.raises(ValueError, match="more than max_position_embeddings = 24"):
        model(np.zeros((1, 25), np.int32))
    with pytest.raises(ValueError, match="attention_mask must have the shape of ids"):
        model(ids, mask[:, :4])
    with pytest.raises(IndexError):
        model(np.array([[1, 60]], np.int32))


def test_compiled_forward_records_a_plan_and_matches_eager(tmp_path):
    """index_mode="clip" (ids checked by the caller): arrayq.compile on NumPy records the
    encoder's forward (no host read of the ids) and each replay gives the eager embeddings
    bit for bit; the default "raise" still checks the ids, so compiled it runs eagerly."""
    w = weights()
    model = models.load(folder(tmp_path, w))
    forward = aq.compile(lambda m, ids, mask, types: m(ids, mask, types, index_mode="clip"))
    for seed in (1, 2, 3):
        ids, mask, types = _inputs(seed)
        got = forward(model, ids, mask, types)
        np.testing.assert_array_equal(aq.to_numpy(got), aq.to_numpy(model(ids, mask, types)))
        np.testing.assert_allclose(_np(got), reference(w, ids, mask, types)[1], rtol=0, atol=ATOL)
    assert forward.eager_reasons() == [] and forward.cache_info().native == 1
    assert forward.cache_info().hits == 2
    checked = aq.compile(lambda m, ids: m(ids))
    ids, mask, _ = _inputs()
    np.testing.assert_array_equal(aq.to_numpy(checked(model, ids)), aq.to_numpy(model(ids)))
    assert checked.eager_reasons() and checked.cache_info().native == 0


# ---------------------------------------------------------------------- names, quantized, GGUF


def test_bert_prefix_and_tensorflow_names(tmp_path):
    """BertForMaskedLM-style names (``bert.`` prefix, LayerNorm gamma/beta, an MLM head and
    the pooler, unused): the same model as the plain names."""
    w = weights()
    renamed = {}
    for name, a in w.items():
        name = name.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        renamed["bert." + name] = a
    renamed["cls.predictions.bias"] = np.zeros(60, np.float32)
    renamed["bert.pooler.dense.weight"] = np.zeros((32, 32), np.float32)
    renamed["bert.embeddings.position_ids"] = np.arange(24, dtype=np.int64)[None]
    ids, mask, _ = _inputs()
    plain = models.load(folder(tmp_path / "plain", w))(ids, mask)
    config = {k: v for k, v in CONFIG.items() if k != "model_type"} | {"architectures": ["BertForMaskedLM"]}
    other = models.load(folder(tmp_path / "mlm", renamed, config))
    np.testing.assert_array_equal(_np(other(ids, mask)), _np(plain))
    both = {**renamed, "embeddings.LayerNorm.weight": w["embeddings.LayerNorm.weight"]}
    with pytest.raises(CheckpointError, match="both read as 'embeddings.LayerNorm.weight'"):
        models.load(folder(tmp_path / "both", both))


def test_quantized_checkpoint_fuses_qkv(tmp_path):
    w = weights()
    stored, deq = dict(w), dict(w)
    for name in list(w):
        if name.startswith("encoder.") and name.endswith(".weight") and w[name].ndim == 2:
            q = aq.quantize(w[name], group_size=32, bits=8)
            base = name[: -len(".weight")]
            stored.update({f"{base}.weight": q.packed, f"{base}.scales": q.scales, f"{base}.biases": q.biases})
            deq[name] = np.asarray(aq.dequantize(q))
    config = {**CONFIG, "quantization": {"group_size": 32, "bits": 8}}
    path = folder(tmp_path, stored, config)
    ids, mask, _ = _inputs()
    want = reference(deq, ids, mask)[1]
    fused = models.load(path)
    attention = fused.layers[0].attention
    assert attention.q_proj is None and isinstance(attention.qkv_proj, nn.QuantizedLinear)
    assert isinstance(fused.layers[1].intermediate, nn.QuantizedLinear)
    np.testing.assert_allclose(_np(fused(ids, mask)), want, rtol=0, atol=ATOL)
    plain = models.load(path, fuse=False)
    assert isinstance(plain.layers[0].attention.q_proj, nn.QuantizedLinear)
    np.testing.assert_allclose(_np(plain(ids, mask)), want, rtol=0, atol=ATOL)
    # float64 activations cannot run quantized matmuls: refused before any weight is read
    seen = []
    with pytest.raises(ValueError, match="dtype float64 cannot run this checkpoint's quantized layers"):
        models.load(path, dtype="float64", progress=lambda *a: seen.append(a))
    assert seen == []


def test_sharded_prefixed_checkpoint_and_quantization_keys(tmp_path):
    """Shards with an index, names with the ``bert.`` prefix, and config.json's per-module
    quantization keys written as the file names the modules."""
    w = {f"bert.{k}": v for k, v in weights().items()}
    q = aq.quantize(w["bert.encoder.layer.1.intermediate.dense.weight"], group_size=32, bits=8)
    w["bert.encoder.layer.1.intermediate.dense.weight"] = q.packed
    w["bert.encoder.layer.1.intermediate.dense.scales"], w["bert.encoder.layer.1.intermediate.dense.biases"] = (
        q.scales,
        q.biases,
    )
    path = folder(tmp_path, {}, {**CONFIG, "quantization": {"group_size": 32, "bits": 8}})
    (path / "model.safetensors").unlink()
    names = sorted(w)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for shard, members in shards.items():
        safetensors.save(path / shard, {n: w[n] for n in members})
    index = {"weight_map": {n: shard for shard, members in shards.items() for n in members}}
    (path / "model.safetensors.index.json").write_text(json.dumps(index))
    model = models.load(path)
    assert isinstance(model.layers[1].intermediate, nn.QuantizedLinear)
    assert isinstance(model.layers[0].intermediate, nn.Linear)
    quant = {"group_size": 32, "bits": 8, "bert.encoder.layer.1.intermediate.dense": False}
    (path / "config.json").write_text(json.dumps({**CONFIG, "quantization": quant}))
    with pytest.raises(CheckpointError, match="config.json marks it as not quantized") as info:
        models.load(path)
    assert info.value.tensor == "bert.encoder.layer.1.intermediate.dense.scales"  # as the file names it


def _gguf(path, w, pooling=1, kinds=None):
    from gguf.constants import MODEL_ARCH
    from gguf.tensor_mapping import get_tensor_name_map

    names = get_tensor_name_map(MODEL_ARCH.BERT, CONFIG["num_hidden_layers"])  # gguf-py's map, not arrayq's
    kinds = kinds or {}
    tensors = []
    for name, a in w.items():
        gname = names.get_name(name, try_suffixes=(".weight", ".bias"))
        tensors.append((gname, kinds.get(gname, "F32"), a.shape, test_gguf.encode(kinds.get(gname, "F32"), a)))
    u32, f32 = test_gguf.U32, test_gguf.F32
    metadata = [
        ("general.architecture", test_gguf.STRING, "bert"),
        ("bert.block_count", u32, 2),
        ("bert.embedding_length", u32, 32),
        ("bert.feed_forward_length", u32, 64),
        ("bert.attention.head_count", u32, 4),
        ("bert.attention.layer_norm_epsilon", f32, 1e-12),
        ("bert.context_length", u32, 24),
        ("bert.pooling_type", u32, pooling),
    ]
    return test_gguf.write_gguf(path, metadata, tensors)


def test_gguf_bert(tmp_path):
    """A BERT GGUF named by gguf-py's own map (llama.cpp's names) loads as the same model."""
    pytest.importorskip("gguf")
    w = weights()
    ids, mask, types = _inputs()
    model = models.load(_gguf(tmp_path / "m.gguf", w))
    assert model.config.pooling == "mean" and model.config.normalize and model.config.type_vocab_size == 2
    np.testing.assert_allclose(_np(model(ids, mask, types)), reference(w, ids, mask, types)[1], rtol=0, atol=ATOL)
    cls = models.load(_gguf(tmp_path / "cls.gguf", w, pooling=2))
    np.testing.assert_allclose(_np(cls(ids, mask)), reference(w, ids, mask, pooling="cls")[1], rtol=0, atol=ATOL)
    q8 = models.load(_gguf(tmp_path / "q8.gguf", w, kinds={"blk.1.ffn_up.weight": "Q8_0"}))
    assert isinstance(q8.layers[1].intermediate, nn.QuantizedLinear)
    with pytest.raises(CheckpointError, match="bert.pooling_type 3 is not supported"):
        models.load(_gguf(tmp_path / "last.gguf", w, pooling=3))


def test_gguf_names_match_gguf_py():
    """Every tensor gguf-py defines for llama.cpp's bert architecture that a BERT encoder
    has (not the fused attn_qkv, output_norm or the classifier) maps both ways."""
    pytest.importorskip("gguf")
    from gguf.constants import MODEL_ARCH, MODEL_TENSORS, TENSOR_NAMES
    from gguf.tensor_mapping import get_tensor_name_map

    theirs = get_tensor_name_map(MODEL_ARCH.BERT, 12)
    skip = ("blk.{bid}.attn_qkv", "output_norm", "cls", "cls.output")
    bases = [TENSOR_NAMES[t] for t in MODEL_TENSORS[MODEL_ARCH.BERT] if TENSOR_NAMES[t] not in skip]
    assert len(bases) == 12
    for base in bases:
        for gname in {base.format(bid=b) for b in (0, 11)}:
            for suffix in (".weight", ".bias"):
                hf = bert.GGUF_NAMES.to_checkpoint(gname + suffix)
                assert hf != gname + suffix and theirs.get_name(hf, try_suffixes=(".weight", ".bias")) == gname + suffix
                assert bert.GGUF_NAMES.to_gguf(hf) == gname + suffix


# ---------------------------------------------------------------------- registry and settings


def test_the_registry_picks_the_architecture(tmp_path, monkeypatch):
    path = folder(tmp_path / "b")
    assert models.architecture_of(path) is bert.ARCHITECTURE
    assert isinstance(models.read_config(path), BertConfig)
    assert set(models.architectures()) == {"bert", "qwen3"}
    no_type = {k: v for k, v in CONFIG.items() if k != "model_type"}
    for config, words in [
        (
            {**CONFIG, "model_type": "roberta"},
            "model_type 'roberta' is not supported; arrayq.models knows 'bert', 'qwen3'",
        ),
        ({**CONFIG, "model_type": ["bert"]}, r"model_type \['bert'\] is not supported"),
        ({**no_type, "architectures": ["GPT2LMHeadModel"]}, "without model_type, with architectures"),
        ({**no_type, "architectures": None}, "without model_type"),
    ]:
        (path / "config.json").write_text(json.dumps(config))
        with pytest.raises(CheckpointError, match=words) as info:
            models.load(path)
        assert info.value.path.endswith("config.json")
    (path / "config.json").write_text(json.dumps(no_type))
    assert isinstance(models.load(path), Bert)  # by "architectures": ["BertModel"]
    with pytest.raises(ValueError, match="'bert' is registered already"):
        models.register_architecture(bert.ARCHITECTURE)
    with pytest.raises(TypeError, match="takes an arrayq.models.Architecture"):
        models.register_architecture("bert")
    monkeypatch.setattr(registry, "_ARCHITECTURES", dict(registry._ARCHITECTURES))
    models.register_architecture(bert.ARCHITECTURE, replace=True)
    (path / "config.json").write_text(json.dumps({**CONFIG, "model_type": "roberta"}))
    import dataclasses

    models.register_architecture(dataclasses.replace(bert.ARCHITECTURE, name="roberta"))
    with pytest.raises(CheckpointError, match="this loader takes 'bert'"):  # its config class still checks
        models.load(path)


def test_sentence_transformers_settings(tmp_path):
    path = folder(tmp_path, normalize=False, bert_config={"max_seq_length": 16, "do_lower_case": True})
    c = models.read_config(path)
    assert (c.pooling, c.normalize, c.max_seq_length, c.lowercase) == ("mean", False, 16, True)
    (path / "modules.json").unlink()
    (path / "sentence_bert_config.json").unlink()
    c = models.read_config(path)  # a plain checkpoint: sentence-transformers' defaults for one
    assert (c.pooling, c.normalize, c.max_seq_length, c.lowercase) == ("mean", False, 24, False)


# ---------------------------------------------------------------------- bad checkpoints


def _without(name):
    return {k: v for k, v in weights().items() if k != name}


@pytest.mark.parametrize(
    "w,config,file,words",
    [
        (_without("encoder.layer.1.output.dense.bias"), None, "model.safetensors", "missing tensor"),
        (
            {**weights(), "encoder.layer.0.attention.self.key.weight": np.zeros((32, 16), np.float32)},
            None,
            "model.safetensors",
            r"has shape \(32, 16\), expected \(32, 32\)",
        ),
        (
            {**weights(), "encoder.layer.2.output.dense.bias": np.zeros(32, np.float32)},
            None,
            "model.safetensors",
            "belongs to layer 2",
        ),
        (
            {**weights(), "lm_head.weight": np.zeros(3, np.float32)},
            None,
            "model.safetensors",
            "is not part of a BERT encoder",
        ),
        (None, {"hidden_act": "relu"}, "config.json", "hidden_act must be one of"),
        (None, {"position_embedding_type": "relative_key"}, "config.json", "relative positions are not supported"),
        (None, {"num_attention_heads": 5}, "config.json", "hidden_size 32 is not a multiple of num_attention_heads 5"),
        (None, {"is_decoder": True}, "config.json", "is_decoder is true"),
        (None, {"layer_norm_eps": float("nan")}, "config.json", "layer_norm_eps must be a finite number"),
        (None, {"type_vocab_size": 0}, "config.json", "type_vocab_size must be a positive integer"),
    ],
)
def test_bad_checkpoints(tmp_path, w, config, file, words):
    path = folder(tmp_path, w, None if config is None else {**CONFIG, **config})
    with pytest.raises(CheckpointError, match=words) as info:
        models.load(path)
    assert info.value.path.endswith(file)


@pytest.mark.parametrize(
    "edit,file,words",
    [
        (
            lambda p: (p / "sentence_bert_config.json").write_text('{"max_seq_length": 100}'),
            "sentence_bert_config.json",
            "at most max_position_embeddings",
        ),
        (lambda p: (p / "modules.json").write_text('{"a": 1}'), "modules.json", "must be a list of module objects"),
        (
            lambda p: (p / "modules.json").write_text(
                '[{"type": "sentence_transformers.models.Dense", "path": "2_Dense"}]'
            ),
            "modules.json",
            "'sentence_transformers.models.Dense' at '2_Dense' is not supported",
        ),
        (
            lambda p: (p / "modules.json").write_text(
                '[{"type": "sentence_transformers.models.Pooling", "path": "../elsewhere"}]'
            ),
            "modules.json",
            "outside the checkpoint folder",
        ),
        (
            lambda p: (p / "1_Pooling" / "config.json").write_text('{"pooling_mode_weightedmean_tokens": true}'),
            "config.json",
            "pooling modes \\['pooling_mode_weightedmean_tokens'\\] are not supported",
        ),
        (
            lambda p: (p / "1_Pooling" / "config.json").write_text(
                '{"word_embedding_dimension": 384, "pooling_mode_mean_tokens": true}'
            ),
            "config.json",
            "word_embedding_dimension must be the model's hidden_size 32",
        ),
    ],
)
def test_bad_sentence_transformers_files(tmp_path, edit, file, words):
    path = folder(tmp_path)
    edit(path)
    with pytest.raises(CheckpointError, match=words) as info:
        models.load(path)
    assert info.value.path.endswith(file)
