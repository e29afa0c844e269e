"""GGUF: the reader against a GGUF writer written here (and against the `gguf` package
where installed), Q4_0 / Q4_1 / Q8_0 mapped exactly onto arrayq's affine format, a Qwen3
GGUF file running through the same decoder as a safetensors checkpoint, and bad files.

Q/K weights: llama.cpp's converter permutes the rows of attn_q/attn_k only for llama-arch
models (its interleaved RoPE); Qwen3's converter class does not derive from the Llama one
and llama.cpp runs qwen3 with NEOX (rotate-half) RoPE, so a qwen3 GGUF holds them in
Hugging Face order. The file written here does the same, and the model built from it must
equal the one built from the same weights in safetensors form.
"""

import json
import struct

import ml_dtypes
import numpy as np
import pytest

import arrayq as aq
from arrayq import models, nn
from arrayq.models import CheckpointError, gguf, safetensors

GGML = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 8, "Q4_K": 12, "Q6_K": 14, "Q5_K": 13, "BF16": 30}
U32, I32, F32, BOOL, STRING, ARRAY, U64 = 4, 5, 6, 7, 8, 9, 10


# ---------------------------------------------------------------------- a GGUF writer, llama.cpp's block formats


def quantize_q8_0(x):
    """llama.cpp's reference Q8_0: per block of 32, d = amax / 127, q = round(x / d)."""
    blocks = x.astype(np.float32).reshape(-1, 32)
    d = np.abs(blocks).max(axis=1, keepdims=True) / 127
    q = np.round(np.divide(blocks, d, out=np.zeros_like(blocks), where=d > 0)).astype(np.int8)
    return b"".join(d16.tobytes() + qb.tobytes() for d16, qb in zip(d.astype(np.float16), q))


def quantize_q4_0(x):
    """Q4_0: d = (signed value of largest magnitude) / -8, q = min(15, floor(x / d + 8.5)),
    element j in the low nibble of byte j, element j + 16 in its high nibble."""
    out = []
    for block in x.astype(np.float32).reshape(-1, 32):
        m = block[np.argmax(np.abs(block))]
        d = m / -8
        q = np.minimum(15, np.floor(block / d + 8.5) if d else np.full(32, 8.0)).astype(np.uint8)
        out.append(np.float16(d).tobytes() + (q[:16] | (q[16:] << 4)).astype(np.uint8).tobytes())
    return b"".join(out)


def quantize_q4_1(x):
    """Q4_1: d = (max - min) / 15, m = min, q = min(15, floor((x - min) / d + 0.5))."""
    out = []
    for block in x.astype(np.float32).reshape(-1, 32):
        lo, hi = block.min(), block.max()
        d = (hi - lo) / 15
        q = np.minimum(15, np.floor((block - lo) / d + 0.5) if d else np.zeros(32)).astype(np.uint8)
        out.append(
            np.float16(d).tobytes() + np.float16(lo).tobytes() + (q[:16] | (q[16:] << 4)).astype(np.uint8).tobytes()
        )
    return b"".join(out)


def dequantize_reference(raw, kind, shape):
    """llama.cpp's dequantization in float32, from the block bytes."""
    if kind in ("F32", "F16", "BF16"):
        return (
            np.frombuffer(raw, {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16}[kind])
            .astype(np.float32)
            .reshape(shape)
        )
    size = {"Q8_0": 34, "Q4_0": 18, "Q4_1": 20}[kind]
    blocks = np.frombuffer(raw, np.uint8).reshape(-1, size)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    if kind == "Q8_0":
        return (blocks[:, 2:].view(np.int8).astype(np.float32) * d).reshape(shape)
    qs = blocks[:, 4:] if kind == "Q4_1" else blocks[:, 2:]
    q = np.concatenate([qs & 15, qs >> 4], axis=1).astype(np.float32)
    if kind == "Q4_0":
        return ((q - 8) * d).reshape(shape)
    m = blocks[:, 2:4].copy().view(np.float16).astype(np.float32)
    return (q * d + m).reshape(shape)


def encode(kind, x):
    return {
        "F32": lambda a: a.astype(np.float32).tobytes(),
        "F16": lambda a: a.astype(np.float16).tobytes(),
        "BF16": lambda a: a.astype(ml_dtypes.bfloat16).tobytes(),
        "Q8_0": quantize_q8_0,
        "Q4_0": quantize_q4_0,
        "Q4_1": quantize_q4_1,
    }[kind](x)


def _string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _value(vtype, v):
    if vtype == STRING:
        return _string(v)
    if vtype == ARRAY:
        etype, items = v
        return struct.pack("<IQ", etype, len(items)) + b"".join(_value(etype, i) for i in items)
    return struct.pack({U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q"}[vtype], v)


def write_gguf(path, metadata, tensors, alignment=32, version=3):
    """metadata: [(key, type, value)]; tensors: [(name, ggml type name, numpy shape, raw bytes)]."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    for key, vtype, v in metadata:
        head += _string(key) + struct.pack("<I", vtype) + _value(vtype, v)
    offset, data = 0, b""
    for name, kind, shape, raw in tensors:
        ne = list(reversed(shape))
        head += _string(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
        head += struct.pack("<IQ", GGML[kind], offset)
        pad = -len(raw) % alignment
        data += raw + bytes(pad)
        offset += len(raw) + pad
    head += bytes(-len(head) % alignment)
    path.write_bytes(head + data)
    return path


# ---------------------------------------------------------------------- a tiny Qwen3 in GGUF

CONFIG = dict(
    vocab_size=96,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    intermediate_size=128,
    rms_norm_eps=1e-6,
    rope_theta=1e6,
)
KINDS = {
    "attn_q": "Q4_0",
    "attn_k": "BF16",
    "attn_v": "F16",
    "attn_output": "Q4_0",
    "ffn_gate": "Q4_1",
    "ffn_up": "Q8_0",
    "ffn_down": "Q4_0",
}


def _weights(seed=0):
    """GGUF name -> (kind, float32 array), the shapes of CONFIG, Hugging Face row order."""
    r = np.random.default_rng(seed)
    c = CONFIG
    hid, hd, inter = c["hidden_size"], c["head_dim"], c["intermediate_size"]
    w = {
        "token_embd.weight": ("Q8_0", r.standard_normal((c["vocab_size"], hid)) * 0.4),
        "output_norm.weight": ("F32", 1 + 0.1 * r.standard_normal(hid)),
    }
    shapes = {
        "attn_q": (4 * hd, hid),
        "attn_k": (2 * hd, hid),
        "attn_v": (2 * hd, hid),
        "attn_output": (hid, 4 * hd),
        "ffn_gate": (inter, hid),
        "ffn_up": (inter, hid),
        "ffn_down": (hid, inter),
    }
    for i in range(c["num_hidden_layers"]):
        for key, shape in shapes.items():
            w[f"blk.{i}.{key}.weight"] = (KINDS[key], r.standard_normal(shape) / np.sqrt(shape[1]))
        for key, dim in (("attn_q_norm", hd), ("attn_k_norm", hd), ("attn_norm", hid), ("ffn_norm", hid)):
            w[f"blk.{i}.{key}.weight"] = ("F32", 1 + 0.1 * r.standard_normal(dim))
    return {k: (kind, a.astype(np.float32)) for k, (kind, a) in w.items()}


def _metadata(**changes):
    c = CONFIG
    md = {
        "general.architecture": (STRING, "qwen3"),
        "general.name": (STRING, "tiny test"),
        "qwen3.block_count": (U32, c["num_hidden_layers"]),
        "qwen3.context_length": (U32, 4096),
        "qwen3.embedding_length": (U32, c["hidden_size"]),
        "qwen3.feed_forward_length": (U32, c["intermediate_size"]),
        "qwen3.attention.head_count": (U32, c["num_attention_heads"]),
        "qwen3.attention.head_count_kv": (U32, c["num_key_value_heads"]),
        "qwen3.attention.key_length": (U32, c["head_dim"]),
        "qwen3.attention.value_length": (U32, c["head_dim"]),
        "qwen3.attention.layer_norm_rms_epsilon": (F32, c["rms_norm_eps"]),
        "qwen3.rope.freq_base": (F32, c["rope_theta"]),
        "tokenizer.ggml.model": (STRING, "gpt2"),
        "tokenizer.ggml.eos_token_id": (U32, 95),
        "tokenizer.ggml.tokens": (ARRAY, (STRING, [f"t{i}" for i in range(c["vocab_size"])])),
        "tokenizer.ggml.token_type": (ARRAY, (I32, [1] * c["vocab_size"])),
    }
    md.update(changes)
    return [(k, t, v) for k, (t, v) in md.items() if t is not None]


def _write_model(path, weights=None, metadata=None, drop=(), **kw):
    weights = weights or _weights()
    tensors = [(name, kind, a.shape, encode(kind, a)) for name, (kind, a) in weights.items() if name not in drop]
    return write_gguf(path, metadata or _metadata(), tensors, **kw)


@pytest.fixture(scope="module")
def gguf_model(tmp_path_factory):
    return _write_model(tmp_path_factory.mktemp("gguf") / "tiny-qwen3.gguf")


# ---------------------------------------------------------------------- tests


def test_reader_parses_header_metadata_and_tensor_infos(gguf_model):
    f = gguf.GGUFFile(gguf_model)
    assert f.version == 3 and f.alignment == 32 and f.data_start % 32 == 0
    assert f.metadata["general.architecture"] == "qwen3" and f.metadata["qwen3.block_count"] == 2
    assert (
        f.metadata["tokenizer.ggml.tokens"][:2] == ["t0", "t1"] and len(f.metadata["tokenizer.ggml.token_type"]) == 96
    )
    assert abs(f.metadata["qwen3.attention.layer_norm_rms_epsilon"] - 1e-6) < 1e-12
    info = f.tensors["blk.0.attn_q.weight"]
    assert (info.shape, info.type) == ((128, 64), "Q4_0")
    assert f.tensors["token_embd.weight"].shape == (96, 64)


@pytest.mark.parametrize("kind", ["Q4_0", "Q4_1", "Q8_0"])
def test_block_formats_map_exactly_onto_affine(tmp_path, kind):
    x = (np.random.default_rng(1).standard_normal((6, 128)) * 3).astype(np.float32)
    x[0, :32] = 0  # an all-zero block
    x[1, 32:64] = 1.25  # a constant block
    raw = encode(kind, x)
    path = write_gguf(tmp_path / "t.gguf", [("general.architecture", STRING, "test")], [("w", kind, x.shape, raw)])
    packed, scales, biases, group, bits = gguf.GGUFFile(path).affine("w")
    assert (group, bits) == (32, {"Q8_0": 8}.get(kind, 4)) and scales.dtype == biases.dtype == np.float32
    qw = aq.QuantizedWeight(packed, scales, biases, group, bits)
    assert qw.shape == x.shape
    expected = dequantize_reference(raw, kind, x.shape)
    assert np.array_equal(aq.to_numpy(aq.dequantize(qw)), expected)  # bit for bit
    assert np.abs(expected - x).max() < np.abs(x).max() / (4 if bits == 4 else 60)
    # quantized_matmul with the mapped weight equals x @ W.T with llama.cpp's weights
    v = np.random.default_rng(2).standard_normal((3, 128)).astype(np.float32)
    np.testing.assert_allclose(aq.linalg.quantized_matmul(v, qw), v @ expected.T, rtol=1e-5, atol=1e-4)


def test_dense_types_are_memory_mapped(gguf_model):
    f = gguf.GGUFFile(gguf_model)
    w = f.dense("blk.0.attn_v.weight")
    assert w.dtype == np.float16 and w.shape == (64, 64) and not w.flags.writeable
    assert f.dense("blk.1.attn_k.weight").dtype == ml_dtypes.bfloat16
    with pytest.raises(CheckpointError, match="not a plain"):
        f.dense("blk.0.attn_q.weight")


def test_qwen3_gguf_runs_through_the_same_decoder(gguf_model, tmp_path):
    """The model loaded from GGUF equals one loaded from a dense safetensors checkpoint
    holding llama.cpp's dequantization of the same tensors."""
    model = models.load(gguf_model)
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_key_value_heads, c.head_dim, c.vocab_size) == (2, 64, 2, 32, 96)
    assert c.tie_word_embeddings and c.eos_token_id == (95,) and c.rope_theta == 1e6
    assert isinstance(model.embed_tokens, nn.QuantizedEmbedding) and model.embed_tokens.weight.bits == 8
    attn = model.layers[0].self_attn
    assert attn.q_proj.weight.bits == 4 and attn.q_proj.weight.group_size == 32
    assert isinstance(attn.k_proj, nn.Linear) and isinstance(attn.v_proj, nn.Linear)
    # the same weights as a dense safetensors checkpoint, under mlx-lm names
    f = gguf.GGUFFile(gguf_model)
    tensors = {}
    for name, info in f.tensors.items():
        raw = bytes(f._map[info.start : info.stop])
        tensors[models.qwen3.gguf_to_mlx_name(name)] = dequantize_reference(raw, info.type, info.shape)
    d = tmp_path / "dense"
    d.mkdir()
    safetensors.save(d / "model.safetensors", tensors)
    (d / "config.json").write_text(json.dumps({"model_type": "qwen3", "tie_word_embeddings": True, **CONFIG}))
    dense = models.load(d)
    ids = np.array([[5, 17, 3, 90, 42]], np.int32)
    ref = dense(ids)
    np.testing.assert_allclose(model(ids), ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    assert list(models.generate(model, [5, 17, 3], 8)) == list(models.generate(dense, [5, 17, 3], 8))


def test_gguf_on_mlx(gguf_model):
    if not any(b.name == "mlx" and b.available for b in aq.list_backends()):
        pytest.skip("mlx is not installed")
    ids = np.array([[5, 17, 3, 90, 42]], np.int32)
    ref = models.load(gguf_model)(ids)
    np.testing.assert_allclose(
        aq.to_numpy(models.load(gguf_model, backend="mlx")(ids)), ref, rtol=0, atol=5e-5 * np.abs(ref).max()
    )


def test_cli_generate_with_gguf(gguf_model, capsys):
    from arrayq import cli

    assert (
        cli.main(
            ["generate", "--model", str(gguf_model), "--prompt-ids", "5,17,3", "--max-tokens", "4", "--ignore-eos"]
            + ["--activations", "float32"]  # (the float32 tokens below; the default, auto, tests/test_qwen3.py)
        )
        == 0
    )
    assert [int(t) for t in capsys.readouterr()[0].split()] == list(
        models.generate(models.load(gguf_model), [5, 17, 3], 4)
    )


def test_untied_gguf(tmp_path):
    w = _weights()
    w["output.weight"] = ("Q8_0", np.random.default_rng(5).standard_normal((96, 64)).astype(np.float32))
    model = models.load(_write_model(tmp_path / "untied.gguf", w))
    assert not model.config.tie_word_embeddings and isinstance(model.lm_head, nn.QuantizedLinear)


def test_against_the_gguf_package(tmp_path):
    """Cross-check: a file written by the `gguf` package's writer reads back the same
    metadata and dequantizes to the package's own dequantization."""
    pkg = pytest.importorskip("gguf")
    path = tmp_path / "pkg.gguf"
    writer = pkg.GGUFWriter(str(path), "qwen3")
    writer.add_block_count(2)
    writer.add_string("general.name", "from-package")
    writer.add_array("tokenizer.ggml.tokens", ["a", "b", "c"])
    r = np.random.default_rng(7)
    arrays = {}
    for name, qtype in (
        ("q8", pkg.GGMLQuantizationType.Q8_0),
        ("q4", pkg.GGMLQuantizationType.Q4_0),
        ("q41", pkg.GGMLQuantizationType.Q4_1),
        ("f16", pkg.GGMLQuantizationType.F16),
        ("f32", pkg.GGMLQuantizationType.F32),
    ):
        x = r.standard_normal((8, 64)).astype(np.float32)
        if qtype == pkg.GGMLQuantizationType.F16:
            data = x.astype(np.float16)
        elif qtype == pkg.GGMLQuantizationType.F32:
            data = x
        else:
            data = pkg.quants.quantize(x, qtype)
        writer.add_tensor(name, data, raw_dtype=qtype)
        arrays[name] = (qtype, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    f = gguf.GGUFFile(path)
    assert f.metadata["qwen3.block_count"] == 2 and f.metadata["general.name"] == "from-package"
    assert f.metadata["tokenizer.ggml.tokens"] == ["a", "b", "c"]
    for name, (qtype, data) in arrays.items():
        assert f.tensors[name].shape == (8, 64)
        expected = pkg.quants.dequantize(data, qtype).astype(np.float32)
        if f.tensors[name].type in gguf.AFFINE_TYPES:
            packed, scales, biases, group, bits = f.affine(name)
            got = aq.to_numpy(aq.dequantize(aq.QuantizedWeight(packed, scales, biases, group, bits)))
        else:
            got = f.dense(name).astype(np.float32)
        np.testing.assert_array_equal(got, expected.reshape(8, 64))


def test_tensor_names_match_gguf_py():
    """arrayq's Qwen3 GGUF <-> Hugging Face (mlx-lm) tensor names against gguf-py's own name
    map for the architecture, the one llama.cpp's converter writes qwen3 files with (the
    dense model in test_qwen3_gguf_runs_through_the_same_decoder is named with arrayq's
    table, so it cannot see a wrong table entry)."""
    pytest.importorskip("gguf")
    from gguf.constants import MODEL_ARCH, MODEL_TENSOR, MODEL_TENSORS, TENSOR_NAMES
    from gguf.tensor_mapping import get_tensor_name_map

    n_blocks = 12  # two-digit block numbers too
    theirs = get_tensor_name_map(MODEL_ARCH.QWEN3, n_blocks)
    suffixes = (".weight", ".bias")

    def gguf_py_name(hf_name):
        return theirs.get_name(hf_name, try_suffixes=suffixes)

    # every tensor gguf-py defines for qwen3 (rope_freqs aside: precomputed RoPE frequencies,
    # which Qwen3 checkpoints do not hold and arrayq computes) maps to the Hugging Face name
    # gguf-py maps back to it, in both of arrayq's directions
    bases = []
    for tensor in MODEL_TENSORS[MODEL_ARCH.QWEN3]:
        if tensor != MODEL_TENSOR.ROPE_FREQS:
            name = TENSOR_NAMES[tensor]
            bases += [name.format(bid=b) for b in (0, 1, n_blocks - 1)] if "{bid}" in name else [name]
    assert {"blk.0.attn_norm", "blk.0.ffn_norm", "blk.11.attn_k_norm", "output", "token_embd"} <= set(bases)
    for base in bases:
        for suffix in suffixes:
            name = base + suffix
            hf = models.qwen3.gguf_to_mlx_name(name)
            assert hf != name, f"arrayq does not map {name}"
            assert gguf_py_name(hf) == name, f"arrayq maps {name} to {hf}, which gguf-py maps to {gguf_py_name(hf)}"
            assert models.qwen3.mlx_to_gguf_name(hf) == name
            for part in ("scales", "biases"):  # mlx-lm's quantized parts keep the GGUF tensor's name
                assert models.qwen3.mlx_to_gguf_name(hf.rsplit(".", 1)[0] + "." + part) == f"{base}.{part}"
    # the reverse: every Hugging Face name arrayq's tables know gets gguf-py's GGUF name
    hf_names = [f"{hf}.weight" for hf in models.qwen3._GGUF_TOP.values()] + [
        f"model.layers.{b}.{hf}.weight" for hf in models.qwen3._GGUF_BLOCK.values() for b in (0, n_blocks - 1)
    ]
    assert len(hf_names) == len(set(hf_names))  # no two GGUF names share one Hugging Face name
    for hf in hf_names:
        name = models.qwen3.mlx_to_gguf_name(hf)
        assert name != hf and name == gguf_py_name(hf), f"arrayq maps {hf} to {name}, gguf-py to {gguf_py_name(hf)}"
        assert models.qwen3.gguf_to_mlx_name(name) == hf


# ---------------------------------------------------------------------- bad files


def _fails(path, tensor, *words):
    with pytest.raises(CheckpointError) as info:
        models.load(path)
    err = info.value
    assert err.path == str(path) and err.tensor == tensor, str(err)
    for w in words:
        assert w in str(err), str(err)


def test_bad_magic_version_and_endianness(gguf_model, tmp_path):
    raw = gguf_model.read_bytes()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + struct.pack("<I", 1) + raw[8:])
    _fails(bad, None, "unsupported GGUF version 1")
    bad.write_bytes(b"GGUF" + struct.pack(">I", 3) + raw[8:])
    _fails(bad, None, "big-endian")
    bad.write_bytes(b"GGUF")
    _fails(bad, None, "truncated")
    bad.write_bytes(b"GGML" + raw[4:])
    with pytest.raises(CheckpointError, match="not a GGUF"):
        gguf.GGUFFile(bad)


def test_truncated_gguf(gguf_model, tmp_path):
    raw = gguf_model.read_bytes()
    f = gguf.GGUFFile(gguf_model)
    last = max(f.tensors.values(), key=lambda i: i.stop).name
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(raw[:-40])
    _fails(bad, last, "truncated")
    bad.write_bytes(raw[:300])  # inside the metadata
    _fails(bad, None, "truncated or corrupted")


def test_corrupted_gguf(gguf_model, tmp_path):
    bad = tmp_path / "corrupt.gguf"
    raw = bytearray(gguf_model.read_bytes())
    raw[16:24] = struct.pack("<Q", 10**15)  # absurd metadata count
    bad.write_bytes(bytes(raw))
    _fails(bad, None, "corrupted")
    t = _weights()
    tensors = [(n, kind, a.shape, encode(kind, a)) for n, (kind, a) in t.items()]
    write_gguf(bad, _metadata(), tensors, alignment=32)
    raw = bytearray(bad.read_bytes())
    f = gguf.GGUFFile(bad)
    # shift one tensor's offset off the alignment: its uint64 offset ends right before the next name
    name = "blk.0.ffn_up.weight"
    pos = raw.index(name.encode()) + len(name) + 4 + 16 + 4
    raw[pos : pos + 8] = struct.pack("<Q", f.tensors[name].start - f.data_start + 2)
    bad.write_bytes(bytes(raw))
    _fails(bad, name, "alignment")


def test_unsupported_tensor_type(tmp_path):
    w = _weights()
    tensors = [(n, kind, a.shape, encode(kind, a)) for n, (kind, a) in w.items() if n != "blk.1.ffn_down.weight"]
    tensors.append(("blk.1.ffn_down.weight", "Q5_K", (64, 256), bytes(64 * 176)))
    path = write_gguf(tmp_path / "k.gguf", _metadata(), tensors)
    _fails(path, "blk.1.ffn_down.weight", "Q5_K is not supported")


def _k_quant_blocks(rng, kind, rows, blocks):
    """Random K-quant super-blocks (every code, scale and min byte random) with float16
    d (and dmin) in a realistic range."""
    size = {"Q4_K": 144, "Q6_K": 210}[kind]
    raw = rng.integers(0, 256, (rows, blocks, size), dtype=np.uint8)
    halves = [(0, 2), (2, 4)] if kind == "Q4_K" else [(208, 210)]
    for start, stop in halves:
        raw[..., start:stop] = (
            rng.uniform(1e-3, 2e-2, (rows, blocks)).astype(np.float16).view(np.uint8).reshape(rows, blocks, 2)
        )
    return raw


@pytest.mark.parametrize("kind", ["Q4_K", "Q6_K"])
def test_k_quants_against_the_gguf_package(tmp_path, kind):
    """Q4_K maps exactly onto 4-bit group-32 affine (bit for bit the gguf package's
    dequantization); Q6_K is requantized to 8-bit group 32, within one 8-bit step
    (range / 255 of each group of 32) of the package's values."""
    pkg = pytest.importorskip("gguf")
    rows, blocks = 6, 2
    raw = _k_quant_blocks(np.random.default_rng(11), kind, rows, blocks)
    qtype = getattr(pkg.GGMLQuantizationType, kind)
    expected = pkg.quants.dequantize(raw.reshape(rows, -1), qtype).reshape(rows, 256 * blocks).astype(np.float32)
    meta = [("general.architecture", STRING, "test")]
    path = write_gguf(tmp_path / "k.gguf", meta, [("w", kind, (rows, 256 * blocks), raw.tobytes())])
    packed, scales, biases, group, bits = gguf.GGUFFile(path).affine("w")
    assert (group, bits) == (32, 4 if kind == "Q4_K" else 8)
    got = aq.to_numpy(aq.dequantize(aq.QuantizedWeight(packed, scales, biases, group, bits)))
    if kind == "Q4_K":
        assert np.array_equal(got, expected)
    else:
        step = np.ptp(expected.reshape(rows, -1, 32), axis=-1, keepdims=True) / 255
        assert np.all(np.abs(got - expected).reshape(rows, -1, 32) <= step * (1 + 1e-6))


@pytest.mark.parametrize(
    ("kind", "at"), [("Q4_0", 0), ("Q4_1", 2), ("Q8_0", 0), ("Q4_K", 0), ("Q4_K", 2), ("Q6_K", 208)]
)
@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_non_finite_block_scales_are_refused(tmp_path, kind, at, bad):
    """A NaN or infinite float16 scale field (d, m, dmin) in any block type is refused naming
    the tensor, never loaded as NaN weights (nor, for Q6_K, met as a QuantizationError)."""
    size, per = {"Q4_0": (18, 32), "Q4_1": (20, 32), "Q8_0": (34, 32), "Q4_K": (144, 256), "Q6_K": (210, 256)}[kind]
    raw = np.random.default_rng(5).integers(0, 256, (2, 256 // per, size), dtype=np.uint8)
    for field in (0, 2) if kind in ("Q4_1", "Q4_K") else (at,):  # finite scales everywhere first
        raw[..., field : field + 2] = np.float16(0.01).reshape(1).view(np.uint8)
    raw[1, -1, at : at + 2] = np.float16(bad).reshape(1).view(np.uint8)
    path = write_gguf(
        tmp_path / "n.gguf", [("general.architecture", STRING, "test")], [("w", kind, (2, 256), raw.tobytes())]
    )
    with pytest.raises(CheckpointError, match="NaN or infinite float16 scale") as e:
        gguf.GGUFFile(path).affine("w")
    assert "'w'" in str(e.value)


def test_wrong_architecture_and_missing_metadata(tmp_path):
    _fails(
        _write_model(tmp_path / "a.gguf", metadata=_metadata(**{"general.architecture": (STRING, "llama")})),
        None,
        "'llama'",
    )
    _fails(
        _write_model(tmp_path / "b.gguf", metadata=_metadata(**{"qwen3.block_count": (None, None)})),
        None,
        "qwen3.block_count",
    )


def test_missing_and_misshapen_tensors(tmp_path):
    _fails(
        _write_model(tmp_path / "m.gguf", drop=("blk.1.ffn_norm.weight",)), "blk.1.ffn_norm.weight", "missing tensor"
    )
    w = _weights()
    w["blk.0.attn_k.weight"] = ("BF16", w["blk.0.attn_k.weight"][1][:32])
    _fails(_write_model(tmp_path / "s.gguf", w), "blk.0.attn_k.weight", "shape (32, 64)", "expected (64, 64)")
    w = _weights()
    w["blk.0.attn_q.weight"] = ("Q8_0", w["blk.0.attn_q.weight"][1][:96])
    _fails(_write_model(tmp_path / "q.gguf", w), "blk.0.attn_q.weight (weight)", "shape (96, 16)")
    w = _weights()
    w["blk.2.attn_norm.weight"] = ("F32", np.ones(64, np.float32))
    _fails(_write_model(tmp_path / "x.gguf", w), "blk.2.attn_norm.weight", "unexpected tensor")
