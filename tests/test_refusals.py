"""What arrayq refuses, one test per class of defect (issue 15): make_checkpoint never
deletes what it did not write; every file a checkpoint names stays inside its folder;
config values (config.json, GGUF, presets) are checked in one place, NaN and inf
included; GGUF tensors may not share bytes; non-regular files are refused before they
are opened for good; malformed files raise CheckpointError within explicit bounds; the
CLI turns every user error into one `arrayq: error:` line and exit status 2."""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from arrayq import cli, models
from arrayq.models import CheckpointError, gguf, safetensors
from arrayq.models._files import MAX_ARRAY_DEPTH, MAX_DIMS, MAX_JSON_DEPTH
from tests.test_gguf import ARRAY, F32, I32, STRING, U32, _metadata, _weights, _write_model, encode, write_gguf


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("pristine") / "tiny", "tiny")


@pytest.fixture
def ckpt(pristine, tmp_path):
    return shutil.copytree(pristine, tmp_path / "tiny", symlinks=True)


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory):
    return _write_model(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def _refused(path, file, *words, tensor=None, **load_kw):
    """models.load(path) raises CheckpointError naming ``file`` (a path suffix) and holding ``words``."""
    with pytest.raises(CheckpointError) as info:
        models.load(path, **load_kw)
    err = info.value
    assert err.path.endswith(str(file)), (err.path, str(err))
    assert err.path in str(err)
    if tensor is not None:
        assert err.tensor == tensor and tensor in str(err), str(err)
    for w in words:
        assert w in str(err), str(err)
    return err


# ---------------------------------------------------------------------- make_checkpoint: no lost file


def test_make_checkpoint_refuses_folders_with_files_it_did_not_write(tmp_path, monkeypatch):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty.*never deletes"):
        models.make_checkpoint(user)
    assert os.listdir(user) == ["notes.txt"]
    monkeypatch.chdir(user)  # `.`: the current folder is not emptied
    with pytest.raises(FileExistsError):
        models.make_checkpoint(".")
    assert os.listdir(user) == ["notes.txt"]
    # a real (downloaded) checkpoint that arrayq did not write is not overwritten either
    downloaded = shutil.copytree(models.make_checkpoint(tmp_path / "src"), tmp_path / "downloaded")
    (downloaded / models.checkpoint.MARKER).unlink()
    before = {p.name: p.read_bytes() for p in downloaded.iterdir()}
    with pytest.raises(FileExistsError):
        models.make_checkpoint(downloaded, seed=1)
    assert {p.name: p.read_bytes() for p in downloaded.iterdir()} == before


def test_make_checkpoint_refuses_files_and_paths_below_files(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        models.make_checkpoint(tmp_path / "file")
    with pytest.raises(NotADirectoryError, match="is a file"):
        models.make_checkpoint(tmp_path / "file" / "sub" / "ckpt")
    assert (tmp_path / "file").read_text() == "x"


def test_make_checkpoint_replaces_only_its_own_files(tmp_path, monkeypatch):
    d = models.make_checkpoint(tmp_path / "c", shard_bytes=100_000)
    shards = sorted(p.name for p in d.glob("model-*.safetensors"))
    assert len(shards) > 1
    (d / "tokenizer.json").write_text("{}")  # the user's own file
    models.make_checkpoint(d, seed=1)  # now one file: the old shards and index go, the tokenizer stays
    names = sorted(os.listdir(d))
    assert names == ["arrayq-checkpoint.json", "config.json", "model.safetensors", "tokenizer.json"]
    assert (d / "tokenizer.json").read_text() == "{}"
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    models.make_checkpoint(".")  # an empty current folder is filled in place
    assert models.load(empty).config.num_hidden_layers == 2


# ---------------------------------------------------------------------- reads outside the checkpoint


def _index(d, change):
    """Shard ``d`` and rewrite its index's weight_map with change(weight_map)."""
    path = d / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    change(index["weight_map"])
    path.write_text(json.dumps(index))


@pytest.mark.parametrize(
    "target",
    ["../outside.safetensors", "/etc/passwd", "sub/../../outside.safetensors", "", 7, None, ["a"], {"x": 1}],
    ids=["dotdot", "absolute", "dotdot-deep", "empty", "int", "null", "list", "object"],
)
def test_index_names_must_be_files_inside_the_folder(tmp_path, target):
    d = models.make_checkpoint(tmp_path / "c", shard_bytes=100_000)
    shutil.copy(next(d.glob("model-*.safetensors")), tmp_path / "outside.safetensors")
    _index(d, lambda wm: wm.update({"model.norm.weight": target}))
    err = _refused(d, "model.safetensors.index.json")
    assert "outside" in str(err) or "absolute" in str(err) or "not a file name" in str(err)


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json", "shard"])
def test_symlinks_leaving_the_folder_are_refused(ckpt, tmp_path, name):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    named_by = name
    if name == "shard":
        models.make_checkpoint(tmp_path / "s", shard_bytes=100_000)
        shutil.rmtree(ckpt)
        ckpt = shutil.copytree(tmp_path / "s", tmp_path / "tiny")
        name = next(p.name for p in ckpt.glob("model-*.safetensors"))
        named_by = "model.safetensors.index.json"  # the file that names the shard is at fault
    src = ckpt / name
    if src.exists():
        shutil.move(src, outside / name)
    else:
        (outside / name).write_text("{}")
    os.symlink(outside / name, ckpt / name)
    if name == "tokenizer.json":  # read by the CLI
        assert cli.main(["generate", "--model", str(ckpt), "--prompt", "hi"]) == 2
        return
    _refused(ckpt, named_by, name, "outside the checkpoint folder")


def test_symlinks_inside_the_folder_and_hugging_face_snapshots_load(tmp_path, pristine):
    # the Hugging Face cache layout: snapshots/REV/* are symlinks into ../../blobs
    repo = tmp_path / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    for p in pristine.iterdir():
        shutil.copy(p, repo / "blobs" / p.name)
        os.symlink(os.path.join("..", "..", "blobs", p.name), snap / p.name)
    assert models.load(snap).config.vocab_size == 512
    # ... but a blob outside the repository folder is refused
    os.unlink(snap / "config.json")
    os.symlink(pristine / "config.json", snap / "config.json")
    _refused(snap, "config.json", "outside the checkpoint folder")


# ---------------------------------------------------------------------- config values: one validator


BAD_NUMBERS = [math.nan, math.inf, -math.inf, -1e-6, 0, "1e-6", True, None, [1e-6], {"v": 1}]
BAD_INTS = [0, -1, 1.5, 2.0, "128", True, math.nan, 2**40, [128], {"v": 1}]


@pytest.mark.parametrize("key", ["rms_norm_eps", "rope_theta"])
@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_config_json_float_values(ckpt, key, value):
    if value is None:
        return  # null means the default
    _config(ckpt, **{key: value})
    _refused(ckpt, "config.json", key, "a finite number >")


@pytest.mark.parametrize("value", [1.0, 0.5, 1e-320])
def test_rope_theta_at_most_one_is_refused(ckpt, value):
    """Rotary frequencies theta**(-2i/d) grow for theta < 1: inf, then NaN logits, for tiny theta."""
    _config(ckpt, rope_theta=value)
    _refused(ckpt, "config.json", "rope_theta must be a finite number > 1")


@pytest.mark.parametrize("key", ["hidden_size", "vocab_size", "num_key_value_heads", "head_dim"])
@pytest.mark.parametrize("value", BAD_INTS, ids=repr)
def test_config_json_integer_values(ckpt, key, value):
    _config(ckpt, **{key: value})
    _refused(ckpt, "config.json", key, "positive integer")


@pytest.mark.parametrize(
    "key,value,words",
    [
        ("rope_scaling", "linear", "rope_scaling must be null or an object"),
        ("rope_scaling", [1, 2], "rope_scaling must be null or an object"),
        ("rope_scaling", {"rope_type": "yarn", "factor": 4}, "not supported"),
        ("eos_token_id", "511", "eos_token_id must be"),
        ("eos_token_id", [511, "x"], "eos_token_id must be"),
        ("eos_token_id", 512, "eos_token_id must be"),
        ("eos_token_id", -1, "eos_token_id must be"),
        ("eos_token_id", 1.0, "eos_token_id must be"),
        ("bos_token_id", "0", "bos_token_id must be"),
        ("tie_word_embeddings", "false", "tie_word_embeddings must be true or false"),
        ("attention_bias", 0, "attention_bias must be true or false"),
        ("quantization", [64, 4], "quantization must be an object"),
    ],
)
def test_config_json_types(ckpt, key, value, words):
    _config(ckpt, **{key: value})
    _refused(ckpt, "config.json", words)


def _config(d, **changes):
    path = d / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))  # json writes NaN / Infinity, as Python's reader accepts


@pytest.mark.parametrize(
    "key,vtype,value",
    [
        ("qwen3.attention.layer_norm_rms_epsilon", F32, math.nan),
        ("qwen3.attention.layer_norm_rms_epsilon", F32, math.inf),
        ("qwen3.attention.layer_norm_rms_epsilon", F32, -1.0),
        ("qwen3.attention.layer_norm_rms_epsilon", STRING, "1e-6"),
        ("qwen3.rope.freq_base", F32, math.nan),
        ("qwen3.embedding_length", STRING, "64"),
        ("qwen3.embedding_length", F32, 64.0),
        ("qwen3.attention.head_count", ARRAY, (U32, [4, 4])),
        ("qwen3.attention.head_count", U32, 0),
        ("qwen3.block_count", I32, -2),
        ("tokenizer.ggml.eos_token_id", STRING, "95"),
        ("tokenizer.ggml.eos_token_id", U32, 96),
    ],
)
def test_gguf_config_values(tmp_path, key, vtype, value):
    path = _write_model(tmp_path / "bad.gguf", metadata=_metadata(**{key: (vtype, value)}))
    _refused(path, "bad.gguf", key)  # the message names the GGUF key


def test_presets_go_through_the_same_validator(tmp_path):
    with pytest.raises(CheckpointError, match="rms_norm_eps"):
        models.make_checkpoint(tmp_path / "x", rms_norm_eps=math.nan)
    with pytest.raises(TypeError, match="unknown config fields"):
        models.preset_config("tiny", hiden_size=3)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "kw",
    [
        dict(temperature=math.nan),
        dict(temperature=math.inf),
        dict(temperature=-1.0),
        dict(temperature="1"),
        dict(top_p=math.nan),
        dict(top_p=0.0),
        dict(top_k=-1),
        dict(top_k=1.5),
    ],
    ids=repr,
)
def test_sampling_parameters(pristine, kw):
    model = models.load(pristine)
    with pytest.raises(ValueError, match="finite temperature"):
        list(models.generate(model, [1, 2], 2, **kw))
    with pytest.raises(ValueError, match="finite temperature"):
        models.sample(np.zeros(4), **{"temperature": 1.0, **kw})


# ---------------------------------------------------------------------- GGUF: overlapping tensors


def test_gguf_tensors_may_not_share_bytes(tmp_path):
    """Two tensors whose data ranges overlap (partly or wholly) are refused, as in safetensors."""
    a = np.arange(64, dtype=np.float32)
    tensors = [("a.weight", "F32", (64,), encode("F32", a)), ("b.weight", "F32", (64,), encode("F32", a))]
    path = write_gguf(tmp_path / "ok.gguf", [], tensors)
    assert set(gguf.GGUFFile(path).tensors) == {"a.weight", "b.weight"}
    raw = bytearray(path.read_bytes())
    second = raw.index(b"b.weight") + len(b"b.weight") + 4 + 8 + 4  # name, n_dims, ne[0], type -> offset
    for offset in (0, 64, 192):
        struct.pack_into("<Q", raw, second, offset)
        (tmp_path / "bad.gguf").write_bytes(raw + bytes(256))
        with pytest.raises(CheckpointError, match="overlap") as info:
            gguf.GGUFFile(tmp_path / "bad.gguf")
        assert info.value.tensor in ("a.weight", "b.weight")


# ---------------------------------------------------------------------- non-regular files


FIFO_NAMES = ["model.safetensors", "config.json", "model.safetensors.index.json", "x.gguf", "alone.safetensors"]
# each (folder, name) of argv in turn: a FIFO made there, then opened as that file; a read that
# blocks is cut by the alarm (and the whole run by the parent's timeout) instead of hanging
HANG_SCRIPT = """
import os, signal, sys
from arrayq import models
from arrayq.models import CheckpointError, gguf, safetensors

def blocked(signum, frame):
    raise TimeoutError("blocked")

signal.signal(signal.SIGALRM, blocked)
for d, name in zip(sys.argv[1::2], sys.argv[2::2]):
    os.mkfifo(os.path.join(d, name))
    signal.alarm(20)
    try:
        if name == "x.gguf":
            gguf.GGUFFile(os.path.join(d, name))
        elif name == "alone.safetensors":
            safetensors.SafetensorsFile(os.path.join(d, name))
        else:
            models.load(d)
        print(name, "LOADED")
    except CheckpointError as exc:
        print(name, "REFUSED", str(exc).replace(chr(10), " "))
    except TimeoutError:
        print(name, "BLOCKED")
    finally:
        signal.alarm(0)
"""


@pytest.fixture(scope="module")
def fifo_outcomes(pristine, tmp_path_factory):
    """What opening each of FIFO_NAMES as a FIFO gave, one line per name, from one subprocess
    (a FIFO that is opened blocks until a writer comes: never in this process)."""
    args = []
    for name in FIFO_NAMES:
        folder = shutil.copytree(pristine, tmp_path_factory.mktemp("fifo") / "tiny", symlinks=True)
        if name in ("model.safetensors", "config.json"):
            (folder / name).unlink()
        args += [str(folder), name]
    proc = subprocess.run([sys.executable, "-c", HANG_SCRIPT, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {line.split(" ", 1)[0]: line for line in proc.stdout.splitlines()}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("name", FIFO_NAMES)
def test_fifos_are_refused_without_blocking(fifo_outcomes, name):
    line = fifo_outcomes.get(name, "")
    assert line.startswith(f"{name} REFUSED") and "FIFO" in line and name in line.split("REFUSED", 1)[1], line


def test_a_folder_named_like_a_weights_file_is_refused(ckpt):
    (ckpt / "model.safetensors").unlink()
    (ckpt / "model.safetensors").mkdir()
    _refused(ckpt, "model.safetensors", "is a folder")


# ---------------------------------------------------------------------- malformed files: bounded, typed


def _safetensors_with_header(path, header: bytes, data: bytes = b""):
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)
    return path


def test_deeply_nested_json_is_refused_before_parsing(tmp_path, ckpt, pristine):
    deep = b"[" * 100_000 + b"]" * 100_000
    path = _safetensors_with_header(tmp_path / "deep.safetensors", b'{"a": ' + deep + b"}")
    with pytest.raises(CheckpointError, match="nests 100001 levels"):
        safetensors.SafetensorsFile(path)
    ok = b'{"a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}, "__metadata__": {"k": "[[[["}}'
    assert safetensors.SafetensorsFile(_safetensors_with_header(tmp_path / "ok.safetensors", ok, bytes(4))).keys()
    (ckpt / "config.json").write_text('{"x": ' + "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1) + "}")
    _refused(ckpt, "config.json", "nests")
    shutil.copy(pristine / "config.json", ckpt / "config.json")
    (ckpt / "model.safetensors.index.json").write_text("[" * 5000 + "]" * 5000)
    _refused(ckpt, "model.safetensors.index.json", "nests")


def test_deeply_nested_gguf_arrays_are_refused(tmp_path):
    def nested(levels):  # `levels` arrays, each holding the next
        value = (U32, [1])
        for _ in range(levels - 1):
            value = (ARRAY, [value])
        return value

    path = write_gguf(tmp_path / "fine.gguf", [("k", ARRAY, nested(MAX_ARRAY_DEPTH))], [])
    assert str(gguf.GGUFFile(path).metadata["k"]) == "[" * MAX_ARRAY_DEPTH + "1" + "]" * MAX_ARRAY_DEPTH
    path = write_gguf(tmp_path / "nested.gguf", [("k", ARRAY, nested(MAX_ARRAY_DEPTH + 1))], [])
    with pytest.raises(CheckpointError, match="nests arrays deeper") as info:
        gguf.GGUFFile(path)
    assert "nested.gguf" in str(info.value) and "'k'" in str(info.value)
    deep = struct.pack("<IQ", ARRAY, 1) * 100_000 + struct.pack("<IQI", U32, 1, 1)  # no RecursionError
    path = tmp_path / "deep.gguf"
    path.write_bytes(
        b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<I", ARRAY) + deep
    )
    with pytest.raises(CheckpointError, match="nests arrays deeper"):
        gguf.GGUFFile(path)


@pytest.mark.parametrize(
    "shape",
    [[2**40, 2**40, 0], [0, 2**62], [1] * (MAX_DIMS + 1), [1.5], ["2"], [True], [-1], None, 3, [[2]]],
    ids=repr,
)
def test_absurd_safetensors_shapes(tmp_path, shape):
    header = json.dumps({"t": {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}}).encode()
    with pytest.raises(CheckpointError) as info:
        safetensors.SafetensorsFile(_safetensors_with_header(tmp_path / "s.safetensors", header))
    assert info.value.tensor == "t" and "shape" in str(info.value)


@pytest.mark.parametrize("ne", [[2**40, 2**40, 0], [0, 2**63], []], ids=repr)
def test_absurd_and_zero_dimensional_gguf_shapes(tmp_path, ne):
    weights = _weights()
    tensors = [(n, k, a.shape, encode(k, a)) for n, (k, a) in weights.items() if n != "token_embd.weight"]
    tensors.insert(0, ("token_embd.weight", "F32", tuple(reversed(ne)), bytes(4 if not ne else 0)))
    path = write_gguf(tmp_path / "m.gguf", _metadata(), tensors)
    err = _refused(path, "m.gguf", tensor="token_embd.weight")
    assert "shape" in str(err)


def test_zero_dimensional_tensors_where_matrices_belong(ckpt):
    path = ckpt / "model.safetensors"
    tensors = {k: np.array(v) for k, v in safetensors.load(path).items()}
    tensors["model.layers.0.mlp.up_proj.weight"] = np.array(7, np.uint32)
    safetensors.save(path, tensors)
    _refused(ckpt, "model.safetensors", "shape ()", tensor="model.layers.0.mlp.up_proj.weight")


# ---------------------------------------------------------------------- the CLI: one error path


def _cli_fails(argv, *words, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr()[1]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("arrayq: error: "), err
    for w in words:
        assert w in err, err
    return err


def test_cli_make_checkpoint_errors(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("x")
    _cli_fails(["make-checkpoint", str(tmp_path / "file")], "not a folder", capsys=capsys)
    _cli_fails(["make-checkpoint", str(tmp_path / "file" / "x")], "is a file", capsys=capsys)
    _cli_fails(["make-checkpoint", str(tmp_path / "full")], "never deletes", capsys=capsys)
    monkeypatch.chdir(tmp_path / "full")
    _cli_fails(["make-checkpoint", "."], "not empty", capsys=capsys)
    assert os.listdir(tmp_path / "full") == ["notes.txt"]
    for bad in ("inf", "nan", "-1", "0", "x"):
        _cli_fails(["make-checkpoint", "--shard-mb", bad, str(tmp_path / "s")], "--shard-mb", capsys=capsys)
    _cli_fails(["make-checkpoint", "--preset", "huge", str(tmp_path / "s")], "invalid choice", capsys=capsys)
    assert not (tmp_path / "s").exists()


def test_cli_generate_errors(pristine, tmp_path, capsys, monkeypatch):
    ids = ["--prompt-ids", "1,2"]
    for flag, bad in (("--temperature", "nan"), ("--temperature", "inf"), ("--top-p", "nan"), ("--top-k", "-1")):
        _cli_fails(["generate", "--model", str(pristine), *ids, flag, bad], "finite temperature", capsys=capsys)
    _cli_fails(["generate", "--model", str(pristine), *ids, "--max-tokens", "-1"], "--max-tokens", capsys=capsys)
    (tmp_path / "cachefile").write_text("x")
    monkeypatch.setenv("ARRAYQ_CACHE", str(tmp_path / "cachefile"))
    _cli_fails(["generate", *ids], "ARRAYQ_CACHE", capsys=capsys)
    monkeypatch.setenv("ARRAYQ_CACHE", str(tmp_path / "cachefile" / "below"))
    _cli_fails(["generate", *ids], "is a file", capsys=capsys)
    _cli_fails(["generate", "--model", str(tmp_path), *ids, "--bogus"], "unrecognized arguments", capsys=capsys)


def test_cli_output_paths_are_checked_before_the_work(tmp_path, capsys, monkeypatch):
    from arrayq import bench
    from arrayq.conformance import runner

    def never(*a, **k):
        raise AssertionError("ran the work before checking the output path")

    monkeypatch.setattr(runner, "run", never)
    monkeypatch.setattr(bench, "run", never)
    missing = str(tmp_path / "nowhere" / "out.json")
    _cli_fails(["conformance", "numpy", "--json", missing], "does not exist", capsys=capsys)
    _cli_fails(["conformance", "numpy", "--json", str(tmp_path)], "is a folder", capsys=capsys)
    _cli_fails(["bench", "--json", missing], "does not exist", capsys=capsys)


def test_cli_conformance_pattern_matching_nothing_fails(capsys):
    _cli_fails(["conformance", "numpy", "-k", "no-such-op-anywhere"], "matches no conformance case", capsys=capsys)


def test_cli_errors_never_print_tracebacks(tmp_path):
    """As a user runs it: one line, status 2, for a bad checkpoint too."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text('{"rms_norm_eps": NaN}')
    proc = subprocess.run(
        [sys.executable, "-m", "arrayq.cli", "generate", "--model", str(bad), "--prompt-ids", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("arrayq: error: ") and "config.json" in proc.stderr
