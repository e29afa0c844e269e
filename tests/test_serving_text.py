"""arrayq.serving's text side: chat templates from tokenizer_config.json (rendered in
Jinja's sandbox), hostile templates and configs, incremental detokenization. Expected
prompts are written out by hand from the templates here."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("jinja2")
tokenizers = pytest.importorskip("tokenizers")

from arrayq.models import CheckpointError  # noqa: E402
from arrayq.serving._text import TextStream, load_codec  # noqa: E402

WORDS = ["<s>", "</s>", "user", "assistant", "hi", "there", "é"]


def folder_with(tmp_path, config):
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers import models as tm

    tok = Tokenizer(tm.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="hi"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.add_special_tokens(["<s>", "</s>"])
    tok.save(str(tmp_path / "tokenizer.json"))
    if config is not None:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(config) if not isinstance(config, str) else config)
    return tmp_path


def test_named_templates_take_the_default_one_with_the_special_tokens(tmp_path):
    templates = [
        {"name": "tool_use", "template": "unused"},
        {
            "name": "default",
            "template": "{{ bos_token }}{% for m in messages %} {{ m.role }} {{ m.content }}"
            "{% endfor %}{% if add_generation_prompt %} assistant{% endif %}",
        },
    ]
    codec = load_codec(folder_with(tmp_path, {"chat_template": templates, "bos_token": {"content": "<s>"}}))
    assert codec.chat([{"role": "user", "content": "hi there"}]) == [0, 2, 4, 5, 3]


def test_template_refusals_and_sandbox_escapes_are_value_errors(tmp_path):
    template = (
        "{% if messages[0].role == 'system' %}{{ raise_exception('no system messages') }}{% endif %}"
        "{{ messages.__class__.__mro__ }}"
    )
    codec = load_codec(folder_with(tmp_path, {"chat_template": template}))
    with pytest.raises(ValueError, match="no system messages"):
        codec.chat([{"role": "system", "content": "hi"}])
    with pytest.raises(ValueError, match="refused"):  # the sandbox: no Python internals
        codec.chat([{"role": "user", "content": "hi"}])


def test_without_a_template_chat_is_refused_and_without_a_tokenizer_there_is_no_codec(tmp_path):
    codec = load_codec(folder_with(tmp_path, None))
    assert codec.chat_template is None and codec.encode("hi there") == [4, 5]
    with pytest.raises(ValueError, match="no chat template"):
        codec.chat([{"role": "user", "content": "hi"}])
    assert load_codec(tmp_path / "missing") is None


@pytest.mark.parametrize("config", ["[1, 2]", "{not json", {"chat_template": 5}])
def test_bad_tokenizer_configs(tmp_path, config):
    with pytest.raises(CheckpointError, match="tokenizer_config.json"):
        load_codec(folder_with(tmp_path, config))


def test_text_stream_adds_each_tokens_text_and_holds_back_partial_characters():
    class Bytes:  # a byte-level decoder: ids are UTF-8 bytes
        def decode(self, ids):
            return bytes(ids).decode("utf-8", errors="replace")

    stream = TextStream(Bytes())
    pieces = [stream.add(b) for b in "aé!".encode()]
    assert pieces == ["a", "", "é", "!"]  # é is two bytes: nothing until both are there
    stream = TextStream(Bytes())
    assert stream.add(0xC3) == "" and stream.rest() == "\ufffd"  # a cut-off character at the end
    assert [TextStream(None).add(t) for t in (5, 17)] == ["5 ", "17 "]
