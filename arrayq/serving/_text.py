"""Text in and out of a served model: the checkpoint's tokenizer, its chat template, and
incremental detokenization for streaming.

The chat template is the Jinja template Hugging Face checkpoints carry in
``tokenizer_config.json`` (``"chat_template"``: a string, or a list of named templates of
which ``"default"`` is used) or in ``chat_template.jinja``; it is rendered in Jinja's
sandbox with ``messages``, ``add_generation_prompt=True``, ``bos_token`` and
``eos_token``, and the result is tokenized without adding special tokens (the template
writes them), as ``transformers``' ``apply_chat_template`` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..models._errors import CheckpointError
from ..models._files import member, open_regular, read_json
from ..models.tokenizer import TextStream


class TextCodec:
    """A checkpoint's tokenizer (a ``tokenizers.Tokenizer``) and chat template (a string
    or None)."""

    def __init__(self, tokenizer: Any, chat_template: str | None, special: dict[str, str]):
        self.tokenizer, self.chat_template, self.special = tokenizer, chat_template, special
        self._render: Any = None

    def encode(self, text: str, *, special_tokens: bool = True) -> list[int]:
        """Token ids of ``text`` (``special_tokens``: let the tokenizer add its own, such as
        a BOS token)."""
        return list(self.tokenizer.encode(text, add_special_tokens=special_tokens).ids)

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids`` (special tokens left out)."""
        return str(self.tokenizer.decode(ids))

    def chat(self, messages: list[dict[str, str]]) -> list[int]:
        """Prompt ids of a conversation ``messages`` (each ``{"role", "content"}``, content
        a string) through the chat template, ending with the assistant's turn. Raises
        ValueError without a template, or when the template rejects the conversation."""
        if self.chat_template is None:
            raise ValueError("this model has no chat template (tokenizer_config.json); use /v1/completions")
        if self._render is None:
            self._render = _compile(self.chat_template)
        try:
            text = self._render(messages=messages, add_generation_prompt=True, **self.special)
        except Exception as exc:  # a template's raise_exception and its own errors alike
            raise ValueError(f"the chat template refused the messages: {exc}") from None
        return self.encode(text, special_tokens=False)


def _compile(template: str) -> Any:
    """The template's render function, in Jinja's immutable sandbox (templates come with
    checkpoints: they may not touch Python objects), with the helpers HF templates use."""
    import json
    from datetime import datetime

    from jinja2.exceptions import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda v, indent=None: json.dumps(v, ensure_ascii=False, indent=indent)
    env.globals.update(raise_exception=raise_exception, strftime_now=lambda fmt: datetime.now().strftime(fmt))
    try:
        return env.from_string(template).render
    except TemplateError as exc:
        raise ValueError(f"the chat template does not compile: {exc}") from None


def _token_text(value: Any) -> str:
    """A special token's text from tokenizer_config.json (a string or ``{"content": ...}``)."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else ""


def load_codec(folder: str | os.PathLike) -> TextCodec | None:
    """The :class:`TextCodec` of a checkpoint folder with a tokenizer.json, or None for one
    without (a GGUF file or a folder of weights only: requests then pass token ids).
    Raises CheckpointError for an unreadable tokenizer or config, ImportError without the
    ``tokenizers`` package."""
    from ..models.tokenizer import read_tokenizer

    folder = Path(folder)
    if not folder.is_dir() or not os.path.lexists(folder / "tokenizer.json"):
        return None
    tokenizer = read_tokenizer(folder)
    config: dict = {}
    if os.path.lexists(folder / "tokenizer_config.json"):
        config = read_json(member(folder, "tokenizer_config.json"), "tokenizer_config.json")
        if not isinstance(config, dict):
            raise CheckpointError(folder / "tokenizer_config.json", "is not a JSON object")
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    if template is None and os.path.lexists(folder / "chat_template.jinja"):
        with open_regular(member(folder, "chat_template.jinja")) as fh:
            template = fh.read().decode("utf-8", errors="replace")
    if template is not None and not isinstance(template, str):
        raise CheckpointError(
            folder / "tokenizer_config.json", f"chat_template must be a string, got {template!r}"[:200]
        )
    special = {key: _token_text(config.get(key)) for key in ("bos_token", "eos_token")}
    return TextCodec(tokenizer, template, special)


__all__ = ["TextCodec", "TextStream", "load_codec"]
