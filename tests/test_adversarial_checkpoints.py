"""Adversarial checkpoints: property-based (hypothesis, derandomized, bounded) generators of
malformed safetensors, GGUF, config.json and shard-index files: truncated, bytes flipped,
absurd sizes, counts and offsets, wrong types, NaN and inf, deep nesting, paths leaving the
folder. Each must either load (and then give finite logits) or raise CheckpointError whose
message names the file (and the tensor, where one is at fault); nothing else escapes,
nothing outside the checkpoint folder is opened, and nothing hangs (a watchdog ends the
run). MLX loading, the crash-prone part, runs in a subprocess.

Each class counts its cases; the counts are printed at the end of the module's run."""

from __future__ import annotations

import collections
import faulthandler
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from arrayq import models  # noqa: E402
from arrayq.models import CheckpointError, _files, gguf, safetensors  # noqa: E402
from tests.test_gguf import F32, I32, STRING, U32, _metadata, _write_model  # noqa: E402

#: (class, outcome) -> cases run; printed by test_zz_case_counts
COUNTS: collections.Counter[tuple[str, str]] = collections.Counter()
#: per example: generous next to the milliseconds a case takes, on a loaded 2-core machine
DEADLINE_MS = 5000


def cases(n: int) -> settings:
    return settings(
        max_examples=n,
        derandomize=True,
        deadline=DEADLINE_MS,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(autouse=True)
def watchdog():
    """No hang: a test still running after 120 s ends the process with every thread's traceback."""
    faulthandler.dump_traceback_later(120, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("pristine") / "tiny", "tiny")


@pytest.fixture(scope="module")
def pristine_sharded(tmp_path_factory):
    return models.make_checkpoint(tmp_path_factory.mktemp("pristine") / "sharded", "tiny", shard_bytes=100_000)


@pytest.fixture(scope="module")
def pristine_gguf(tmp_path_factory):
    return _write_model(tmp_path_factory.mktemp("gguf") / "tiny.gguf").read_bytes()


@pytest.fixture
def opened(monkeypatch):
    """Every path the readers open, to check that none lies outside the checkpoint."""
    seen: list[str] = []
    real = _files.open_regular

    def spy(path):
        seen.append(os.path.realpath(path))
        return real(path)

    for module in (_files, safetensors, gguf):
        monkeypatch.setattr(module, "open_regular", spy)
    return seen


def _loads_or_refuses(path, file, *, tensors=(), opened=None, folder=None, finite=True):
    """models.load(path): either it loads and gives finite logits, or it raises
    CheckpointError naming ``file`` (a path, a list of acceptable paths, or a folder for
    any file inside it) and, when it
    names a tensor, one in ``tensors`` (if given). Returns "ok" or "refused"."""
    try:
        model = models.load(path)
    except CheckpointError as exc:
        if isinstance(file, (str, os.PathLike)) and os.path.isdir(file):  # any file inside this folder
            root = os.path.realpath(file)
            assert os.path.commonpath([root, os.path.realpath(exc.path)]) == root, (exc.path, str(exc))
        else:
            files = {str(file)} if isinstance(file, (str, os.PathLike)) else {str(f) for f in file}
            assert exc.path in files, (exc.path, str(exc))
        assert str(exc).startswith(exc.path + ":"), str(exc)
        if exc.tensor is not None:
            assert f"tensor {exc.tensor!r}" in str(exc), str(exc)
            if tensors:
                assert exc.tensor.split(" ")[0] in tensors, str(exc)
        return "refused"
    finally:
        if opened is not None and folder is not None:
            root = os.path.realpath(folder)
            assert all(os.path.commonpath([root, p]) == root for p in opened), opened
    logits = np.asarray(model(np.array([[1, 2, 3]], np.int32)))
    # edited weight bytes may hold NaN (arrayq does not scan weights); edited config values may not
    assert not finite or np.isfinite(logits).all(), "loaded, but the logits are not finite"
    return "ok"


# ---------------------------------------------------------------------- strategies

#: values of every JSON type, the awkward ones included
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**63, 2**64 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-320, 1e308]),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _deep(n: int, open_: str = "[", close: str = "]") -> str:
    return open_ * n + close * n


def mutations(size: int):
    """A list of byte edits of a file of ``size`` bytes: flips, overwrites, truncation, insertion."""
    pos = st.integers(0, max(size - 1, 0))
    flip = st.tuples(st.just("flip"), pos, st.integers(1, 255))
    put = st.tuples(st.just("put"), pos, st.binary(min_size=1, max_size=16))
    u64 = st.tuples(
        st.just("u64"),
        pos,
        st.sampled_from([0, 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1, size, size * 4]) | st.integers(0, 2**64 - 1),
    )
    cut = st.tuples(st.just("cut"), pos, st.just(b""))
    ins = st.tuples(st.just("ins"), pos, st.binary(min_size=1, max_size=64))
    return st.lists(st.one_of(flip, put, u64, cut, ins), min_size=1, max_size=4)


def mutate(raw: bytes, edits) -> bytes:
    b = bytearray(raw)
    for kind, at, arg in edits:
        at = min(at, max(len(b) - 1, 0))
        if kind == "flip" and b:
            b[at] ^= arg
        elif kind == "put":
            b[at : at + len(arg)] = arg
        elif kind == "u64":
            b[at : at + 8] = struct.pack("<Q", arg)
        elif kind == "cut":
            del b[at:]
        elif kind == "ins":
            b[at:at] = arg
    return bytes(b)


# ---------------------------------------------------------------------- safetensors


def _small_safetensors(path):
    tensors = {
        "a": np.arange(12, dtype=np.float32).reshape(3, 4),
        "b": np.arange(6, dtype=np.uint8),
        "c": np.ones((2, 2), np.float16),
        "empty": np.zeros((0, 5), np.int64),
    }
    safetensors.save(path, tensors)
    return path


def _read_all(path):
    f = safetensors.SafetensorsFile(path)
    for name in f.keys():
        a = f[name]
        assert a.shape == f.infos[name].shape and a.nbytes == f.infos[name].stop - f.infos[name].start
        np.asarray(a).tobytes()  # touch every byte
    return f


@given(data=st.data())
@cases(300)
def test_safetensors_byte_mutations(tmp_path, data):
    base = _small_safetensors(tmp_path / "base.safetensors").read_bytes()
    edits = data.draw(mutations(len(base)))
    path = tmp_path / "m.safetensors"
    path.write_bytes(mutate(base, edits))
    try:
        _read_all(path)
        COUNTS["safetensors bytes", "ok"] += 1
    except CheckpointError as exc:
        COUNTS["safetensors bytes", "refused"] += 1
        assert exc.path == str(path) and str(exc).startswith(str(path))


dtypes = st.sampled_from(["F32", "F16", "BF16", "U8", "I64", "U32", "BOOL", "F8", "f32", "", "Q4"]) | json_values
dims = st.sampled_from([0, 1, 2, 3, 4, 2**31, 2**40, 2**62, 2**64, -1]) | json_values
shapes = st.lists(dims, max_size=10) | json_values
offsets = st.lists(st.sampled_from([0, 4, 8, 12, 48, 2**63, -4]) | json_values, max_size=3) | json_values


@given(
    entries=st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.fixed_dictionaries({"dtype": dtypes, "shape": shapes, "data_offsets": offsets}) | json_values,
        max_size=4,
    ),
    metadata=json_values,
    depth=st.sampled_from([0, 0, 0, 40, 5000]),
    data=st.binary(max_size=64),
)
@cases(300)
def test_safetensors_malformed_headers(tmp_path, entries, metadata, depth, data):
    header: dict = dict(entries)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header)
    if depth:
        text = text[:-1] + (", " if header else "") + f'"deep": {_deep(depth)}' + "}"
    raw = text.encode()
    path = tmp_path / "h.safetensors"
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    try:
        _read_all(path)
        COUNTS["safetensors headers", "ok"] += 1
    except CheckpointError as exc:
        COUNTS["safetensors headers", "refused"] += 1
        assert exc.path == str(path)
        assert exc.tensor is None or exc.tensor in header, str(exc)
        if depth > _files.MAX_JSON_DEPTH:
            assert "nests" in str(exc)


@given(data=st.data())
@cases(120)
def test_checkpoint_weight_mutations(pristine, tmp_path, data, opened):
    """Byte edits of a whole model.safetensors: load it or refuse it; never a wrong type."""
    d = tmp_path / "c"
    if not d.exists():
        shutil.copytree(pristine, d)
    raw = (pristine / "model.safetensors").read_bytes()
    header_end = 8 + int.from_bytes(raw[:8], "little")
    edits = data.draw(mutations(header_end + 64))  # the header, where edits matter, and the first tensor
    (d / "model.safetensors").write_bytes(mutate(raw, edits))
    opened.clear()
    COUNTS[
        "model.safetensors bytes", _loads_or_refuses(d, d / "model.safetensors", opened=opened, folder=d, finite=False)
    ] += 1


# ---------------------------------------------------------------------- config.json

CONFIG_KEYS = [
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "rms_norm_eps",
    "rope_theta",
    "tie_word_embeddings",
    "attention_bias",
    "max_position_embeddings",
    "bos_token_id",
    "eos_token_id",
    "quantization",
    "rope_scaling",
    "model_type",
    "quantization_config",
]


@given(
    changes=st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values, min_size=1, max_size=3),
    drop=st.lists(st.sampled_from(CONFIG_KEYS), max_size=2),
    whole=st.none() | json_values | st.sampled_from([_deep(40, '{"a":', "}"), _deep(5000)]),
)
@cases(250)
def test_config_json(pristine, tmp_path, changes, drop, whole):
    d = tmp_path / "c"
    if not d.exists():
        shutil.copytree(pristine, d)
    config = json.loads((pristine / "config.json").read_text())
    config.update(changes)
    for key in drop:
        config.pop(key, None)
    if whole is None:
        text = json.dumps(config)
    elif isinstance(whole, str) and whole.startswith(("[[", "{")):
        text = whole + "1" if whole.startswith("{") else whole
    else:
        text = json.dumps(whole)
    (d / "config.json").write_text(text)
    outcome = _loads_or_refuses(d, [d / "config.json", d / "model.safetensors"])  # config, or weights disagreeing
    COUNTS["config.json", outcome] += 1
    if outcome == "ok":
        c = models.read_config(d)
        assert math.isfinite(c.rms_norm_eps) and c.rms_norm_eps > 0 and math.isfinite(c.rope_theta)
        assert all(isinstance(t, int) and 0 <= t < c.vocab_size for t in c.eos_token_id)


# ---------------------------------------------------------------------- the shard index


@given(
    edits=st.dictionaries(
        st.text(min_size=1, max_size=12) | st.sampled_from(["model.norm.weight", "model.embed_tokens.weight"]),
        st.sampled_from(
            [
                "../outside.safetensors",
                "/etc/hostname",
                "sub/../../outside.safetensors",
                "link-out.safetensors",
                "link-in.safetensors",
                "model.safetensors.index.json",
                "config.json",
                ".",
                "",
                "a\x00b",
                "x" * 300,
            ]
        )
        | json_values,
        max_size=3,  # none: the index as written, which loads
    ),
    whole=st.none() | json_values,
)
@cases(200)
def test_shard_index(pristine_sharded, tmp_path, edits, whole, opened):
    d = tmp_path / "c"
    if not d.exists():
        shutil.copytree(pristine_sharded, d)
        shutil.copy(next(d.glob("model-*.safetensors")), tmp_path / "outside.safetensors")
        os.symlink(tmp_path / "outside.safetensors", d / "link-out.safetensors")
        os.symlink(next(d.glob("model-*.safetensors")).name, d / "link-in.safetensors")
    index = json.loads((pristine_sharded / "model.safetensors.index.json").read_text())
    if whole is None:
        index["weight_map"].update(edits)
    else:
        index = {"weight_map": whole} if isinstance(whole, dict) else whole
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    opened.clear()
    COUNTS["shard index", _loads_or_refuses(d, d, opened=opened, folder=d)] += (
        1  # refused naming a file inside the folder
    )


# ---------------------------------------------------------------------- GGUF


@given(data=st.data())
@cases(200)
def test_gguf_byte_mutations(pristine_gguf, tmp_path, data):
    # the header (metadata and tensor infos) is the first few kilobytes: edit there mostly
    head = pristine_gguf.index(b"token_embd.weight") + 2048
    edits = data.draw(mutations(head))
    path = tmp_path / "m.gguf"
    path.write_bytes(mutate(pristine_gguf, edits))
    COUNTS["gguf bytes", _loads_or_refuses(path, path, finite=False)] += 1


GGUF_KEYS = [
    "qwen3.block_count",
    "qwen3.context_length",
    "qwen3.embedding_length",
    "qwen3.feed_forward_length",
    "qwen3.attention.head_count",
    "qwen3.attention.head_count_kv",
    "qwen3.attention.key_length",
    "qwen3.attention.layer_norm_rms_epsilon",
    "qwen3.rope.freq_base",
    "qwen3.vocab_size",
    "tokenizer.ggml.eos_token_id",
    "tokenizer.ggml.bos_token_id",
    "general.architecture",
    "general.alignment",
]
U64, I64, F64, BOOL8, ARR = 10, 11, 12, 7, 9
gguf_values = st.one_of(
    st.tuples(st.just(U32), st.sampled_from([0, 1, 2, 4, 32, 64, 95, 96, 2**31, 2**32 - 1])),
    st.tuples(st.just(I32), st.sampled_from([-1, 0, 64, -(2**31)])),
    st.tuples(st.just(U64), st.sampled_from([0, 2**63, 2**64 - 1, 64])),
    st.tuples(st.just(F32), st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e-6, 3e38, 64.0])),
    st.tuples(st.just(F64), st.floats(allow_nan=True, allow_infinity=True)),
    st.tuples(st.just(BOOL8), st.booleans()),
    st.tuples(st.just(STRING), st.text(max_size=6)),
    st.tuples(st.just(ARR), st.tuples(st.just(U32), st.lists(st.sampled_from([0, 4, 64]), max_size=3))),
    st.tuples(st.just(ARR), st.tuples(st.just(F32), st.lists(st.just(math.nan), max_size=2))),
)


def _gguf_value(vtype, v):
    if vtype == ARR:
        etype, items = v
        return struct.pack("<IQ", etype, len(items)) + b"".join(_gguf_value(etype, i) for i in items)
    if vtype == STRING:
        return struct.pack("<Q", len(v.encode())) + v.encode()
    return struct.pack({U32: "<I", I32: "<i", U64: "<Q", I64: "<q", F32: "<f", F64: "<d", BOOL8: "<?"}[vtype], v)


@given(changes=st.dictionaries(st.sampled_from(GGUF_KEYS), gguf_values, min_size=1, max_size=3))
@cases(200)
def test_gguf_metadata_values(tmp_path, changes):
    from tests import test_gguf

    saved = test_gguf._value
    test_gguf._value = _gguf_value  # the test writer, with 64-bit and float64 types
    try:
        path = _write_model(tmp_path / "md.gguf", metadata=_metadata(**changes))
    finally:
        test_gguf._value = saved
    # general.alignment moves the data: a wrong one reads other bytes as weights, like edited bytes
    outcome = _loads_or_refuses(path, path, finite="general.alignment" not in changes)
    COUNTS["gguf metadata", outcome] += 1
    if outcome == "refused":
        with pytest.raises(CheckpointError) as info:
            models.load(path)
        message = str(info.value)
        # the message names what is wrong: a metadata key, a tensor, or the format itself
        assert any(k in message for k in GGUF_KEYS) or info.value.tensor or "alignment" in message, message


# ---------------------------------------------------------------------- MLX: the crash-prone part, in a subprocess

MLX_SCRIPT = r"""
import sys, numpy as np
import arrayq as aq
from arrayq import models
from arrayq.models import CheckpointError
for path in sys.argv[1:]:
    try:
        model = models.load(path, backend="mlx")
        out = np.asarray(aq.to_numpy(model(np.array([[1, 2, 3]], np.int32))))
        print("ok" if np.isfinite(out).all() else "NONFINITE", path, flush=True)
    except CheckpointError as exc:
        print("refused", path, flush=True)
    except Exception as exc:
        print("ESCAPED", type(exc).__name__, path, exc, flush=True)
"""


def test_mlx_loads_mutated_checkpoints_in_a_subprocess(pristine, tmp_path):
    pytest.importorskip("mlx.core")
    rng = np.random.default_rng(15)
    raw = (pristine / "model.safetensors").read_bytes()
    header_end = 8 + int.from_bytes(raw[:8], "little")
    config = json.loads((pristine / "config.json").read_text())
    paths = []
    for i in range(40):
        d = shutil.copytree(pristine, tmp_path / f"c{i}")
        b = bytearray(raw)
        for _ in range(rng.integers(1, 4)):
            at = int(rng.integers(8, header_end if i % 2 else len(b)))
            b[at] ^= int(rng.integers(1, 256))
        (d / "model.safetensors").write_bytes(bytes(b))
        if i % 5 == 0:
            key = ["vocab_size", "hidden_size", "rms_norm_eps", "head_dim", "eos_token_id"][i // 5 % 5]
            value = [0, 2**31, math.nan, 3, "x", -1, 1e300, 511][i // 5 % 8]
            (d / "config.json").write_text(json.dumps({**config, key: value}))
        paths.append(str(d))
    proc = subprocess.run([sys.executable, "-c", MLX_SCRIPT, *paths], capture_output=True, text=True, timeout=300)
    lines = proc.stdout.splitlines()
    for line in lines:
        COUNTS["mlx subprocess", line.split()[0]] += 1
    assert proc.returncode == 0, f"the process died ({proc.returncode}) after {lines[-1:]}: {proc.stderr[-2000:]}"
    assert len(lines) == len(paths) and all(line.split()[0] in ("ok", "refused") for line in lines), proc.stdout


def test_zz_case_counts(capsys):
    """Runs last in this module: prints how many cases each class ran (and how many loaded)."""
    classes = sorted({c for c, _ in COUNTS})
    with capsys.disabled():
        print("\nadversarial cases (class: run = loaded + refused):")
        for c in classes:
            ok, refused = COUNTS[c, "ok"], COUNTS[c, "refused"]
            print(f"  {c:<24} {ok + refused:>4} = {ok:>4} + {refused:>4}")
