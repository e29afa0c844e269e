"""The safetensors reader/writer, and every way a checkpoint can be bad: each raises
CheckpointError naming the file and (where one is at fault) the tensor."""

import json
import shutil

import ml_dtypes
import numpy as np
import pytest

from arrayq import models
from arrayq.models import CheckpointError, safetensors


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("pristine") / "tiny", "tiny")


@pytest.fixture
def ckpt(pristine, tmp_path):
    return shutil.copytree(pristine, tmp_path / "tiny")


def _rewrite(directory, change):
    """Apply change(tensors) -> tensors to model.safetensors."""
    path = directory / "model.safetensors"
    tensors = {k: np.array(v) for k, v in safetensors.load(path).items()}
    safetensors.save(path, change(tensors), {"format": "mlx"})


def _config(directory, **changes):
    path = directory / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _fails(directory, file, tensor, *words):
    """Loading fails with a CheckpointError for ``file`` and ``tensor`` (a name, None for
    no tensor, or a prefix ending in '.') whose message holds ``words``."""
    with pytest.raises(CheckpointError) as info:
        models.load(directory)
    err = info.value
    assert isinstance(err, ValueError)
    assert err.path.endswith(file), (err.path, str(err))
    if tensor is not None and tensor.endswith("."):
        assert err.tensor.startswith(tensor), str(err)
        tensor = err.tensor
    assert err.tensor == tensor, str(err)
    assert err.path in str(err) and (tensor is None or tensor in str(err))
    for w in words:
        assert w in str(err), str(err)
    return err


# ---------------------------------------------------------------------- safetensors itself


def test_safetensors_round_trip(tmp_path):
    tensors = {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
        "bf16": np.array([1.5, -2], ml_dtypes.bfloat16),
        "f16": np.array([[0.25]], np.float16),
        "u32": np.array([1, 2**32 - 1], np.uint32),
        "i8": np.array([-1, 2, 3], np.int8),
        "bool": np.array([True, False]),
        "empty": np.zeros((0, 3), np.float32),
        "scalar": np.array(7, np.int64),
        "f64": np.array([np.pi]),
    }
    n = safetensors.save(tmp_path / "t.safetensors", tensors, {"k": "v"})
    assert n == (tmp_path / "t.safetensors").stat().st_size
    f = safetensors.SafetensorsFile(tmp_path / "t.safetensors")
    assert f.metadata == {"k": "v"} and sorted(f.keys()) == sorted(tensors)
    assert f.data_start % 8 == 0
    for name, a in tensors.items():
        b = f[name]
        assert b.dtype == a.dtype and b.shape == a.shape and b.tobytes() == a.tobytes()
        assert f.infos[name].start % a.dtype.itemsize == 0  # every tensor aligned for its dtype
    assert not f["f32"].flags.writeable  # read-only view of the map


def test_safetensors_reads_misaligned_tensors(tmp_path):
    header = {
        "a": {"dtype": "U8", "shape": [3], "data_offsets": [0, 3]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [3, 11]},
    }
    raw = json.dumps(header).encode()
    data = bytes([1, 2, 3]) + np.array([1.5, -4], np.float32).tobytes()
    (tmp_path / "m.safetensors").write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    f = safetensors.SafetensorsFile(tmp_path / "m.safetensors")
    assert f["a"].tolist() == [1, 2, 3] and f["b"].tolist() == [1.5, -4.0]


def test_safetensors_interoperates_with_the_reference_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    tensors = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "q": np.array([3, 4], np.uint32),
        "h": np.array([1, 2], np.float16),
    }
    safetensors.save(tmp_path / "ours.safetensors", tensors)
    theirs = st.load_file(str(tmp_path / "ours.safetensors"))
    assert all(np.array_equal(theirs[k], v) for k, v in tensors.items())
    st.save_file(tensors, str(tmp_path / "theirs.safetensors"))
    ours = safetensors.load(tmp_path / "theirs.safetensors")
    assert all(np.array_equal(ours[k], v) and ours[k].dtype == v.dtype for k, v in tensors.items())


@pytest.mark.parametrize(
    "damage,words",
    [
        (lambda b: b[:5], "too short"),
        (lambda b: b[:40], "header length"),
        (lambda b: b[:8] + b"x" + b[9:], "not valid JSON"),
        (lambda b: (10**12).to_bytes(8, "little") + b[8:], "header length"),
    ],
)
def test_safetensors_damaged_headers(tmp_path, damage, words):
    good = tmp_path / "good.safetensors"
    safetensors.save(good, {"x": np.zeros(4, np.float32)})
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(CheckpointError, match=words) as info:
        safetensors.SafetensorsFile(bad)
    assert info.value.path == str(bad)


@pytest.mark.parametrize(
    "entry,words",
    [
        ({"dtype": "F8_E5M2", "shape": [1], "data_offsets": [0, 1]}, "unsupported dtype"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}, "needs 8"),
        ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, "shape"),
        ({"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}, "data_offsets"),
        ({"dtype": "F32", "shape": [1]}, "lacks"),
    ],
)
def test_safetensors_corrupted_entries_name_the_tensor(tmp_path, entry, words):
    raw = json.dumps({"bad": entry}).encode()
    path = tmp_path / "c.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(16))
    with pytest.raises(CheckpointError, match=words) as info:
        safetensors.SafetensorsFile(path)
    assert info.value.tensor == "bad"


def test_safetensors_overlapping_tensors(tmp_path):
    raw = json.dumps(
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
        }
    ).encode()
    path = tmp_path / "o.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(8))
    with pytest.raises(CheckpointError, match="overlap"):
        safetensors.SafetensorsFile(path)


# ---------------------------------------------------------------------- checkpoints


def test_missing_tensor(ckpt):
    name = "model.layers.1.post_attention_layernorm.weight"
    _rewrite(ckpt, lambda t: {k: v for k, v in t.items() if k != name})
    _fails(ckpt, "model.safetensors", name, "missing tensor")


def test_wrong_shape(ckpt):
    name = "model.layers.0.self_attn.k_norm.weight"
    _rewrite(ckpt, lambda t: {**t, name: t[name][:32]})
    _fails(ckpt, "model.safetensors", name, "shape (32,)", "expected (64,)")


def test_wrong_dtype(ckpt):
    name = "model.layers.0.mlp.up_proj.weight"
    _rewrite(ckpt, lambda t: {**t, name: t[name].view(np.int32)})
    _fails(ckpt, "model.safetensors", name, "dtype int32", "uint32")


def test_scales_and_biases_of_different_dtypes(ckpt):
    name = "model.layers.1.mlp.up_proj.biases"
    _rewrite(ckpt, lambda t: {**t, name: t[name].astype(np.float16)})
    _fails(ckpt, "model.safetensors", name, "dtype float16", "bfloat16")


def test_truncated_file(ckpt):
    path = ckpt / "model.safetensors"
    f = safetensors.SafetensorsFile(path)
    last = max(f.infos.values(), key=lambda i: i.stop).name
    path.write_bytes(path.read_bytes()[:-10])
    _fails(ckpt, "model.safetensors", last, "truncated")


def test_corrupted_header(ckpt):
    path = ckpt / "model.safetensors"
    raw = bytearray(path.read_bytes())
    raw[20:24] = b"\xff\xfe\x00}"
    path.write_bytes(bytes(raw))
    _fails(ckpt, "model.safetensors", None, "corrupted")


@pytest.mark.parametrize(
    "quant,tensor,words",
    [
        ({"group_size": 64, "bits": 4, "mode": "int4"}, None, "unknown quantization mode 'int4'"),
        ({"group_size": 48, "bits": 4}, None, "group_size"),
        (
            {"group_size": 64, "bits": 4, "model.layers.0.mlp.down_proj": {"mode": "fp3"}},
            "model.layers.0.mlp.down_proj",
            "unknown quantization mode 'fp3'",
        ),
    ],
)
def test_bad_quantization_config(ckpt, quant, tensor, words):
    _config(ckpt, quantization=quant)
    _fails(ckpt, "config.json", tensor, words)


def test_config_bits_disagree_with_weights(ckpt):
    _config(ckpt, quantization={"group_size": 64, "bits": 8})
    _fails(ckpt, "model.safetensors", "model.embed_tokens.weight", "shape (512, 16)", "expected (512, 32)", "8-bit")


def test_config_without_quantization_but_quantized_weights(ckpt):
    _config(ckpt, quantization=None)
    _fails(ckpt, "model.safetensors", "model.embed_tokens.scales", "no 'quantization'", "disagree")


def test_config_marks_layer_unquantized_but_it_is(ckpt):
    _config(ckpt, quantization={"group_size": 64, "bits": 4, "model.layers.1.mlp.gate_proj": False})
    _fails(ckpt, "model.safetensors", "model.layers.1.mlp.gate_proj.scales", "not quantized")


def test_packed_weight_without_scales(ckpt):
    name = "model.layers.0.self_attn.o_proj"
    _rewrite(
        ckpt, lambda t: {k: v for k, v in t.items() if not k.startswith(name + ".s") and not k.startswith(name + ".b")}
    )
    _fails(ckpt, "model.safetensors", name + ".weight", "packed", "scales is missing")


def test_config_has_fewer_layers_than_the_weights(ckpt):
    _config(ckpt, num_hidden_layers=1)
    _fails(ckpt, "model.safetensors", "model.layers.1.", "unexpected tensor", "num_hidden_layers = 1")


def test_config_has_more_layers_than_the_weights(ckpt):
    _config(ckpt, num_hidden_layers=3)
    _fails(ckpt, "model.safetensors", "model.layers.2.self_attn.q_proj.weight", "missing tensor")


def test_config_hidden_size_disagrees(ckpt):
    _config(ckpt, hidden_size=256)
    _fails(ckpt, "model.safetensors", "model.embed_tokens.weight", "shape (512, 16)", "expected (512, 32)")


def test_untied_config_without_head(ckpt):
    _config(ckpt, tie_word_embeddings=False)
    _fails(ckpt, "model.safetensors", "lm_head.weight", "missing tensor")


def test_unexpected_tensor(ckpt):
    _rewrite(ckpt, lambda t: {**t, "model.layers.0.self_attn.q_proj.bias": np.zeros(256, ml_dtypes.bfloat16)})
    _fails(ckpt, "model.safetensors", "model.layers.0.self_attn.q_proj.bias", "attention_bias = false")


@pytest.mark.parametrize(
    "change,words",
    [
        ({"model_type": "llama"}, "model_type 'llama'"),
        ({"hidden_size": "128"}, "hidden_size must be a positive integer"),
        ({"num_key_value_heads": 3}, "multiple of"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4}}, "rope_scaling"),
        ({"quantization_config": {"quant_method": "gptq", "bits": 4}, "quantization": None}, "gptq"),
    ],
)
def test_bad_config_values(ckpt, change, words):
    _config(ckpt, **change)
    _fails(ckpt, "config.json", None, words)


def test_missing_or_invalid_config(ckpt):
    (ckpt / "config.json").write_text("{not json")
    _fails(ckpt, "config.json", None, "not valid JSON")
    (ckpt / "config.json").unlink()
    _fails(ckpt, "config.json", None, "cannot read")


def test_missing_weights(ckpt):
    (ckpt / "model.safetensors").unlink()
    _fails(ckpt, "tiny", None, "no model.safetensors")


def test_sharded_checkpoint_errors(tmp_path):
    d = models.make_checkpoint(tmp_path / "sharded", "tiny", shard_bytes=100_000)
    index = json.loads((d / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    # a shard missing from disk
    (d / shards[-1]).rename(d / "moved.safetensors")
    _fails(d, shards[-1], None, "is missing")
    (d / "moved.safetensors").rename(d / shards[-1])
    # the index puts a tensor in the wrong shard
    name = next(n for n, s in index["weight_map"].items() if s == shards[0])
    index["weight_map"][name] = shards[1]
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    _fails(d, shards[1], name, "does not hold it")
    # an index that is not one
    (d / "model.safetensors.index.json").write_text("[]")
    _fails(d, "model.safetensors.index.json", None, "weight_map")


def test_missing_tensor_of_a_sharded_checkpoint_names_the_index(tmp_path):
    d = models.make_checkpoint(tmp_path / "sharded", "tiny", shard_bytes=100_000)
    _config(d, tie_word_embeddings=False)
    _fails(d, "model.safetensors.index.json", "lm_head.weight", "missing tensor")


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        models.load(tmp_path / "absent")
    (tmp_path / "file.bin").write_bytes(b"hello")
    with pytest.raises(CheckpointError, match="not a GGUF"):
        models.load(tmp_path / "file.bin")
