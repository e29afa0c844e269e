"""The real all-MiniLM-L6-v2 (the ``minilm`` fixture: downloaded once, skipped with the
reason when the package registry cannot be reached): arrayq's embeddings on every backend
against sentence-transformers' own float32 embeddings, and its tokenization against
sentence-transformers' and the ``tokenizers`` library's. tests/data/minilm_reference.json
holds sentence-transformers' outputs, recorded by tools/minilm_reference.py (versions in the
file). Then the tokenizer on a handmade vocabulary, ``arrayq embed``, and the zip unpacking
the fixture relies on, with hostile archives."""

from __future__ import annotations

import json
import os
import stat
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import arrayq as aq
from arrayq import cli, models
from arrayq.models import CheckpointError
from arrayq.models._files import extract_zip
from arrayq.models.tokenizer import TOKENIZERS_MISSING
from tests import test_bert

REFERENCE = json.loads((Path(__file__).parent / "data" / "minilm_reference.json").read_text(encoding="utf-8"))
TEXTS = REFERENCE["texts"]
EXPECTED = np.array(REFERENCE["embeddings"], dtype=np.float32).astype(np.float64)
# float32 through six layers in two libraries that sum in different orders: measured within
# 3e-7 of sentence-transformers (numpy and mlx); 2e-6 is ~30 float32 ulps of the largest
# components (~0.2). The tanh GELU instead of the exact one moves components by ~1e-4.
ATOL = 2e-6
#: the issue's bar: every text's cosine to sentence-transformers' embedding
MIN_COSINE = 0.99999


def _cosines(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return (got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)


@pytest.fixture(scope="module")
def batch(minilm):
    pytest.importorskip("tokenizers")
    return models.load_tokenizer(minilm)(TEXTS)


def test_tokenization_matches_sentence_transformers(batch):
    """Lowercased by tokenizer.json's normalizer, [CLS] ... [SEP], the long text truncated
    to max_seq_length = 256, the rest right-padded to the longest: sentence-transformers'
    own input ids and attention mask."""
    assert REFERENCE["max_seq_length"] == 256 and batch.ids.shape == (len(TEXTS), 256)
    np.testing.assert_array_equal(batch.ids, REFERENCE["input_ids"])
    np.testing.assert_array_equal(batch.attention_mask, REFERENCE["attention_mask"])
    assert not batch.token_type_ids.any()


def test_tokenization_matches_the_tokenizers_library(minilm, batch):
    """Each text encoded alone by ``tokenizers`` itself (no padding, truncation at 256) is
    the unpadded start of its row."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(256)
    for row, mask, text in zip(batch.ids, batch.attention_mask, TEXTS):
        ids = tok.encode(text).ids
        assert ids[0] == tok.token_to_id("[CLS]") and ids[-1] == tok.token_to_id("[SEP]")
        assert row[: len(ids)].tolist() == ids and mask.sum() == len(ids) and not row[len(ids) :].any()
    assert tok.encode(TEXTS[5]).ids == tok.encode(TEXTS[5].lower()).ids  # lowercasing is the normalizer's


@pytest.mark.parametrize("backend", test_bert.BACKENDS)
def test_embeddings_match_sentence_transformers(minilm, batch, backend):
    """The short texts as one padded batch, the long one (truncated to 256 tokens) alone:
    the same embeddings as sentence-transformers' (which ran the twelve as one batch; the
    padding changes nothing but rounding)."""
    if not any(b.name == backend and b.available for b in aq.list_backends()):
        pytest.skip(f"{backend} is not installed")
    model = models.load(minilm, backend=backend)
    assert model.config.pooling == "mean" and model.config.normalize and model.config.max_seq_length == 256
    got = []
    for rows in (slice(0, -1), slice(-1, None)):
        ids, mask = batch.ids[rows], batch.attention_mask[rows]
        length = int(mask.sum(1).max())  # the padding sentence-transformers added for the long text, dropped
        out = model(*aq.to_backend((ids[:, :length], mask[:, :length]), backend))
        assert aq.backend_of(out).name == backend
        got.append(np.asarray(aq.to_numpy(out), dtype=np.float64))
    got = np.concatenate(got)
    assert _cosines(got, EXPECTED).min() >= MIN_COSINE
    np.testing.assert_allclose(got, EXPECTED, rtol=0, atol=ATOL)


def test_embed_command(minilm, capsys):
    pytest.importorskip("tokenizers")
    assert cli.main(["embed", "--model", str(minilm), "--text", TEXTS[0], "--text", TEXTS[1]]) == 0
    out, err = capsys.readouterr()
    printed = np.array([[float(v) for v in line.split()] for line in out.splitlines()])
    np.testing.assert_allclose(printed, EXPECTED[:2], rtol=1e-6, atol=ATOL)  # 7 significant digits printed
    assert "2 texts" in err and "384 dims, mean pooling, normalized" in err
    assert cli.main(["embed", "--model", str(minilm), "--similarity", "--text", TEXTS[0], "--text", TEXTS[1]]) == 0
    sims = np.array([[float(v) for v in line.split()] for line in capsys.readouterr()[0].splitlines()])
    unit = EXPECTED[:2] / np.linalg.norm(EXPECTED[:2], axis=1, keepdims=True)
    np.testing.assert_allclose(sims, unit @ unit.T, atol=2e-6)  # 6 decimals printed


# ---------------------------------------------------------------------- the tokenizer, handmade

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "cat", "dog", "##s", "the"]


def _tokenizer_folder(path: Path, **bert_config) -> Path:
    """A BERT folder (tests/test_bert.py's weights) with a WordPiece tokenizer.json made by
    the ``tokenizers`` library, whose tokenizer.json fixes padding and truncation at 128
    (as all-MiniLM-L6-v2's does)."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models as tm
    from tokenizers import normalizers, pre_tokenizers, processors

    tok = tokenizers.Tokenizer(tm.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.enable_padding(length=128, pad_id=0, pad_token="[PAD]")
    tok.enable_truncation(128)
    test_bert.folder(path, bert_config=bert_config or None)
    tok.save(str(path / "tokenizer.json"))
    return path


def test_tokenizer_pads_and_truncates(tmp_path):
    path = _tokenizer_folder(tmp_path / "t", max_seq_length=5, do_lower_case=True)
    batch = models.load_tokenizer(path)(["  The cats ", "a b a b a b", "DOG"])
    # [CLS]=2 [SEP]=3 [PAD]=0; "cats" = cat ##s; truncated to 5 with [SEP] kept; lowercased
    assert batch.ids.tolist() == [[2, 9, 6, 8, 3], [2, 4, 5, 4, 3], [2, 7, 3, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    assert batch.ids.dtype == np.int32
    unlimited = models.load_tokenizer(path, max_length=24, lowercase=False)(["a b a b a b", "DOG"])
    assert unlimited.ids.tolist() == [[2, 4, 5, 4, 5, 4, 5, 3], [2, 1, 3, 0, 0, 0, 0, 0]]  # "DOG": [UNK]
    tok = models.load_tokenizer(path)
    with pytest.raises(ValueError, match="no texts"):
        tok([])
    with pytest.raises(TypeError, match="texts must be strings"):
        tok(["a", 3])
    with pytest.raises(ValueError, match="max_length must be a positive integer"):
        models.load_tokenizer(path, max_length=0)


def test_embed_command_errors(tmp_path, capsys, monkeypatch):
    path = _tokenizer_folder(tmp_path / "t")
    qwen = models.make_checkpoint(tmp_path / "q", "tiny")
    assert cli.main(["embed", "--model", str(qwen), "--text", "x"]) == 2
    assert "is a qwen3 model, which arrayq embed does not run; use arrayq generate" in capsys.readouterr().err
    assert cli.main(["generate", "--model", str(path), "--prompt-ids", "1"]) == 2
    assert "is a bert model, which arrayq generate does not run; use arrayq embed" in capsys.readouterr().err
    assert cli.main(["embed", "--model", str(tmp_path / "absent"), "--text", "x"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (path / "tokenizer.json").unlink()
    assert cli.main(["embed", "--model", str(path), "--text", "x"]) == 2
    assert "tokenizer.json: cannot read" in capsys.readouterr().err
    _tokenizer_folder(tmp_path / "t")
    monkeypatch.setitem(__import__("sys").modules, "tokenizers", None)  # as if not installed
    assert cli.main(["embed", "--model", str(path), "--text", "x"]) == 2
    assert TOKENIZERS_MISSING in capsys.readouterr().err


def test_embed_command_on_a_small_model(tmp_path, capsys):
    path = _tokenizer_folder(tmp_path / "t")
    assert cli.main(["embed", "--model", str(path), "--text", "the cat", "--text", "a dog", "--backend", "numpy"]) == 0
    printed = np.array([[float(v) for v in line.split()] for line in capsys.readouterr()[0].splitlines()])
    ids = np.array([[2, 9, 6, 3], [2, 4, 7, 3]])
    want = test_bert.reference(test_bert.weights(), ids, np.ones_like(ids))[1]
    np.testing.assert_allclose(printed, want, rtol=1e-6, atol=test_bert.ATOL)


# ---------------------------------------------------------------------- unpacking zip archives


def _zip(path: Path, members: list[tuple[str, bytes]], symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of a duplicate name; it is the point
        for name, data in members:
            zf.writestr(name, data)
        if symlink is not None:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def test_extract_zip(tmp_path):
    good = _zip(tmp_path / "good.zip", [("config.json", b"{}"), ("1_Pooling/", b""), ("1_Pooling/config.json", b"[]")])
    out = extract_zip(good, tmp_path / "out")
    assert (out / "config.json").read_bytes() == b"{}" and (out / "1_Pooling" / "config.json").read_bytes() == b"[]"


@pytest.mark.parametrize(
    "members,symlink,words",
    [
        ([("../evil.txt", b"x")], None, "outside the checkpoint folder"),
        ([("a/../../evil.txt", b"x")], None, "outside the checkpoint folder"),
        ([("/tmp/evil.txt", b"x")], None, "an absolute path"),
        ([("ok.txt", b"x")], "link", "is a symlink or special file"),
        ([("ok.txt", b"x"), ("ok.txt", b"y")], None, "holds member 'ok.txt' twice"),
        ([("big.bin", bytes(2048))], None, "unpacks to 2048 bytes; at most 1024"),
    ],
)
def test_extract_zip_refuses(tmp_path, members, symlink, words):
    archive = _zip(tmp_path / "bad.zip", members, symlink)
    with pytest.raises(CheckpointError, match=words) as info:
        extract_zip(archive, tmp_path / "out" / "model", max_bytes=1024)
    assert info.value.path == str(archive)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "model").exists()  # nothing written


def test_extract_zip_refuses_broken_archives(tmp_path):
    (tmp_path / "not.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(CheckpointError, match="not a readable zip archive"):
        extract_zip(tmp_path / "not.zip", tmp_path / "a")
    archive = _zip(tmp_path / "crc.zip", [("data.bin", b"0123456789" * 100)])
    raw = bytearray(archive.read_bytes())
    at = raw.index(b"0123456789")
    raw[at] ^= 1  # stored uncompressed: one flipped bit fails the CRC
    archive.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="cannot be unpacked"):
        extract_zip(archive, tmp_path / "b")


def test_minilm_folder_is_the_packaged_one(minilm):
    """What the fixture unpacked: a sentence-transformers folder whose files stay inside it."""
    assert {"config.json", "model.safetensors", "tokenizer.json", "modules.json"} <= set(os.listdir(minilm))
    assert models.read_config(minilm).num_hidden_layers == 6
