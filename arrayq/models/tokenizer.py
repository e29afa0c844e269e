"""Text to token ids with a checkpoint's ``tokenizer.json``, through the optional
``tokenizers`` package (``pip install 'arrayq[tokenizer]'``).

:func:`load_tokenizer` gives a :class:`SentenceTokenizer`, which encodes a batch of texts as
sentence-transformers does for a BERT model: each text stripped of surrounding whitespace
(and lowercased where ``sentence_bert_config.json`` says ``do_lower_case``), the tokenizer's
own normalizer and [CLS] ... [SEP] template, truncated to ``max_length`` tokens specials
included (``max_seq_length``), and right-padded with the pad token to the longest text of
the batch, with the attention mask that marks the padding.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._architectures import read_config
from ._errors import CheckpointError
from ._files import member, open_regular

#: what a missing ``tokenizers`` package raises
TOKENIZERS_MISSING = "the 'tokenizers' package is not installed; pip install 'arrayq[tokenizer]' (or tokenizers)"


def read_tokenizer(folder: str | os.PathLike) -> Any:
    """The ``tokenizers.Tokenizer`` of ``folder``'s tokenizer.json, as the file sets it up.
    Raises CheckpointError for a missing tokenizer.json, one outside the folder or not a
    regular file, or one the package cannot read; ImportError without ``tokenizers``."""
    file = member(folder, "tokenizer.json")
    open_regular(file).close()
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise ImportError(TOKENIZERS_MISSING) from None
    try:
        return Tokenizer.from_file(str(file))
    except Exception as exc:  # the tokenizers package raises plain Exception
        raise CheckpointError(file, f"is not a tokenizer the 'tokenizers' package can read: {exc}") from None


@dataclasses.dataclass
class Batch:
    """Encoded texts, right-padded: ``ids``, ``attention_mask`` (1 for a token, 0 for
    padding) and ``token_type_ids`` (all 0 for single texts), each (B, L) int32 NumPy
    arrays, L the longest encoding of the batch."""

    ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray


class SentenceTokenizer:
    """Batches of texts to padded ids and masks (see the module docstring).

    ``tokenizer``: a ``tokenizers.Tokenizer``; ``max_length``: the most tokens per text,
    specials included (None: no truncation); ``lowercase``: lowercase texts first (on top
    of what the tokenizer's normalizer does). Its own padding and truncation settings are
    replaced (tokenizer.json files often fix a length; sentence-transformers pads to the
    longest text). Raises CheckpointError (naming ``path``) when the tokenizer has no pad
    token, ValueError for a max_length below 1."""

    def __init__(self, tokenizer: Any, max_length: int | None, lowercase: bool = False, path: str = "tokenizer.json"):
        if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
            raise ValueError(f"max_length must be a positive integer or None, got {max_length!r}")
        padding = tokenizer.padding or {}
        pad_token = padding.get("pad_token", "[PAD]")
        pad_id = padding.get("pad_id") if tokenizer.padding else tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise CheckpointError(path, f"has no padding setting and no {pad_token!r} token to pad with")
        self.tokenizer, self.max_length, self.lowercase = tokenizer, max_length, lowercase
        tokenizer.enable_padding(direction="right", pad_id=pad_id, pad_type_id=0, pad_token=pad_token)
        if max_length is None:
            tokenizer.no_truncation()
        else:
            tokenizer.enable_truncation(max_length, strategy="longest_first", direction="right")

    def __call__(self, texts: str | Sequence[str]) -> Batch:
        """Encode ``texts`` (one string or a sequence of them). Raises TypeError for
        anything that is not a string or a sequence of strings, ValueError for none."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            raise ValueError("no texts to encode")
        if not all(isinstance(t, str) for t in texts):
            raise TypeError(f"texts must be strings, got {sorted({type(t).__name__ for t in texts})}")
        texts = [t.strip().lower() if self.lowercase else t.strip() for t in texts]
        encodings = self.tokenizer.encode_batch(texts)

        def array(field: str) -> np.ndarray:
            return np.array([getattr(e, field) for e in encodings], dtype=np.int32)

        return Batch(array("ids"), array("attention_mask"), array("type_ids"))


def load_tokenizer(
    path: str | os.PathLike, *, max_length: int | None = None, lowercase: bool | None = None
) -> SentenceTokenizer:
    """The :class:`SentenceTokenizer` of a checkpoint directory's tokenizer.json.
    ``max_length`` and ``lowercase`` default to the checkpoint's settings where its config
    has them (BERT: sentence_bert_config.json's ``max_seq_length`` and ``do_lower_case``,
    else max_position_embeddings; a model without them: no truncation, as written).
    Raises CheckpointError for a missing or unreadable tokenizer.json or config,
    ImportError without the ``tokenizers`` package."""
    path = Path(path)
    tokenizer = read_tokenizer(path)
    config = read_config(path)
    if max_length is None:
        max_length = getattr(config, "max_seq_length", None)
    if lowercase is None:
        lowercase = bool(getattr(config, "lowercase", False))
    return SentenceTokenizer(tokenizer, max_length, lowercase, str(path / "tokenizer.json"))


class TextStream:
    """Incremental detokenization: :meth:`add` gives the text each new token adds (held
    back while the text ends in an incomplete UTF-8 sequence); :meth:`rest` whatever is
    still held back at the end. ``codec``: anything with ``decode(ids) -> str`` (a
    ``tokenizers.Tokenizer``, the server's ``TextCodec``), or None: each token then shows as
    its id and a space."""

    def __init__(self, codec: Any):
        self.codec, self.shown = codec, 0
        self.ids: list[int] = []

    def add(self, token: int) -> str:
        if self.codec is None:
            return f"{token} "
        self.ids.append(token)
        text = self.codec.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        new, self.shown = text[self.shown :], len(text)
        return new

    def rest(self) -> str:
        if self.codec is None or not self.ids:
            return ""
        text = self.codec.decode(self.ids)
        new, self.shown = text[self.shown :], len(text)
        return new


__all__ = ["Batch", "SentenceTokenizer", "TOKENIZERS_MISSING", "TextStream", "load_tokenizer", "read_tokenizer"]
