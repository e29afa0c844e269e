"""A BERT encoder on :mod:`arrayq.nn` (all-MiniLM-L6-v2 and other BERT checkpoints), giving
token states and sentence embeddings as sentence-transformers computes them.

**Checkpoint directory.** ``config.json`` with Hugging Face's BERT keys (``model_type``
``"bert"``: ``vocab_size``, ``hidden_size``, ``num_hidden_layers``, ``num_attention_heads``,
``intermediate_size``, ``max_position_embeddings``, ``type_vocab_size``, ``layer_norm_eps``,
``hidden_act``; ``position_embedding_type`` must be ``"absolute"``), ``model.safetensors``
(or shards), and, for a sentence-transformers model, ``modules.json`` (its Transformer,
Pooling and Normalize modules), ``<pooling>/config.json`` and ``sentence_bert_config.json``
(``max_seq_length``, ``do_lower_case``). Tensor names are Hugging Face's
(``embeddings.word_embeddings``, ``encoder.layer.N.attention.self.query``, ...); a
``bert.`` prefix (``BertForMaskedLM`` and the like) is dropped and TensorFlow-era
``LayerNorm.gamma`` / ``.beta`` read as ``.weight`` / ``.bias``. Task heads (``pooler``,
``cls``, ``classifier``) are not used. Quantized layers are MLX's format, as for Qwen3.

**GGUF.** A ``general.architecture = "bert"`` file as llama.cpp writes it: metadata
``bert.block_count``, ``bert.embedding_length``, ``bert.feed_forward_length``,
``bert.attention.head_count``, ``bert.attention.layer_norm_epsilon``,
``bert.context_length``, ``bert.pooling_type`` (1 mean, 2 CLS); tensors ``token_embd``,
``token_types``, ``position_embd``, ``token_embd_norm``, ``blk.N.attn_{q,k,v,output}``,
``blk.N.attn_output_norm``, ``blk.N.ffn_{up,down}``, ``blk.N.layer_output_norm``. A GGUF
file does not say whether embeddings are normalised: arrayq normalises them (llama.cpp's
embedding tool does by default).

The architecture only: the config, the modules and the forward pass, the name tables, and
:data:`ARCHITECTURE` for the generic loader (:mod:`arrayq.models._loader`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

import arrayq as aq

from .. import nn
from ._errors import CheckpointError
from ._files import member, read_json
from ._loader import Architecture, ConfigReader, WeightBuilder, gguf_config_values
from ._sources import GGUFNames
from .gguf import GGUFFile

#: config.json's model_type and GGUF's general.architecture
MODEL_TYPE = "bert"
#: config.json ``hidden_act`` → the ``approximate`` of :func:`arrayq.nn.gelu`
ACTIVATIONS = {"gelu": "none", "gelu_new": "tanh", "gelu_pytorch_tanh": "tanh"}
#: llama.cpp's bert.pooling_type values
_GGUF_POOLING = {1: "mean", 2: "cls"}
#: mean pooling's smallest divisor and normalisation's smallest norm (sentence-transformers'
#: clamps): an all-padding row gives zeros, not NaN
_MIN_COUNT, _MIN_NORM = 1e-9, 1e-12

# ---------------------------------------------------------------------- config


@dataclasses.dataclass
class BertConfig:
    """A BERT encoder's hyper-parameters (config.json's names) and, from a
    sentence-transformers folder, how token states become a sentence embedding:
    ``pooling`` ("mean" over the attention mask, "cls" or "max"), ``normalize`` (to unit
    L2 norm), ``max_seq_length`` (the tokens a text is truncated to, [CLS] and [SEP]
    included) and ``lowercase`` (text lowercased before tokenizing). A folder without
    ``modules.json`` gets mean pooling without normalisation, as sentence-transformers
    gives a plain checkpoint."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    pad_token_id: int = 0
    quantization: dict | None = None
    pooling: str = "mean"
    normalize: bool = False
    max_seq_length: int = 512
    lowercase: bool = False

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_dict(
        cls, d: Any, path: str | os.PathLike = "config.json", names: dict[str, str] | None = None
    ) -> BertConfig:
        """From a parsed config.json, every value checked: CheckpointError naming ``path``
        for a missing key, a value of the wrong type or range, an activation other than
        GELU, relative position embeddings, a decoder, or a hidden size that the heads do not
        divide. ``names``: what the file calls each key (GGUF metadata keys)."""
        r = ConfigReader(d, path, names)
        r.model_type(MODEL_TYPE)
        required = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
        r.require(*required)
        v: dict[str, Any] = {key: r.integer(key, d[key]) for key in required}
        for key, default in (("max_position_embeddings", 512), ("type_vocab_size", 2)):
            v[key] = r.integer(key, d.get(key, default))
        v["layer_norm_eps"] = r.number("layer_norm_eps", d.get("layer_norm_eps", 1e-12))
        if v["hidden_size"] % v["num_attention_heads"]:
            raise CheckpointError(
                path,
                f"{r.name('hidden_size')} {v['hidden_size']} is not a multiple of "
                f"{r.name('num_attention_heads')} {v['num_attention_heads']}",
            )
        act = d.get("hidden_act", "gelu")
        if act not in ACTIVATIONS:
            raise r.bad("hidden_act", f"one of {sorted(ACTIVATIONS)}", act)
        position = d.get("position_embedding_type", "absolute")
        if position != "absolute":
            raise r.bad("position_embedding_type", "'absolute' (relative positions are not supported)", position)
        if r.flag("is_decoder", False):
            raise CheckpointError(path, "is_decoder is true; this architecture is BERT's encoder")
        pad = d.get("pad_token_id")
        return cls(
            **v,
            hidden_act=act,
            pad_token_id=0 if pad is None else r.integer("pad_token_id", pad, 0, v["vocab_size"] - 1),
            quantization=r.quantization(),
            max_seq_length=v["max_position_embeddings"],
        )


def read_sentence_transformers(config: BertConfig, folder: Path) -> BertConfig:
    """``config`` with the pooling, normalisation and tokenizer settings of a
    sentence-transformers folder: ``modules.json`` (a Transformer at the folder itself, then
    Pooling and Normalize modules; any other module is refused), the Pooling module's
    ``config.json``, and ``sentence_bert_config.json``. Each absent file leaves the
    settings as they are. CheckpointError for a malformed file, a pooling mode other than
    mean, CLS or max, a pooling dimension other than hidden_size, or a max_seq_length
    beyond max_position_embeddings."""
    out = dataclasses.replace(config)
    if os.path.lexists(folder / "modules.json"):
        modules_path = member(folder, "modules.json")
        modules = read_json(modules_path, "modules.json")
        if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
            raise CheckpointError(modules_path, "must be a list of module objects")
        for m in modules:
            kind, sub = str(m.get("type", "")).rsplit(".", 1)[-1], m.get("path", "")
            if kind == "Transformer" and sub in ("", None):
                continue
            if kind == "Pooling" and isinstance(sub, str):
                out.pooling = _pooling_mode(member(folder, f"{sub}/config.json", modules_path), config.hidden_size)
            elif kind == "Normalize":
                out.normalize = True
            else:
                raise CheckpointError(
                    modules_path,
                    f"module {m.get('type')!r} at {sub!r} is not supported; arrayq reads a Transformer "
                    "in this folder followed by Pooling and Normalize",
                )
    if os.path.lexists(folder / "sentence_bert_config.json"):
        st_path = member(folder, "sentence_bert_config.json")
        st = read_json(st_path, "sentence_bert_config.json")
        r = ConfigReader(st, st_path)
        out.max_seq_length = r.integer("max_seq_length", st.get("max_seq_length", config.max_seq_length))
        if out.max_seq_length > config.max_position_embeddings:
            raise r.bad(
                "max_seq_length",
                f"at most max_position_embeddings ({config.max_position_embeddings})",
                out.max_seq_length,
            )
        out.lowercase = r.flag("do_lower_case", False)
    return out


#: a sentence-transformers Pooling config's mode flags → arrayq's pooling modes
_POOLING_KEYS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}


def _pooling_mode(path: Path, hidden: int) -> str:
    """The pooling mode of a sentence-transformers Pooling config.json."""
    d = read_json(path, "the pooling config")
    r = ConfigReader(d, path)
    dim = d.get("word_embedding_dimension", hidden)
    if dim != hidden:
        raise r.bad("word_embedding_dimension", f"the model's hidden_size {hidden}", dim)
    modes = [key for key, value in d.items() if key.startswith("pooling_mode_") and value is True]
    if len(modes) != 1 or modes[0] not in _POOLING_KEYS:
        raise CheckpointError(
            path, f"pooling modes {modes} are not supported; arrayq pools with one of {sorted(_POOLING_KEYS)}"
        )
    return _POOLING_KEYS[modes[0]]


# ---------------------------------------------------------------------- model


def _like(a: Any, x: Any) -> Any:
    """Array ``a`` (of any backend, or NumPy's) on ``x``'s backend."""
    backend = aq.backend_of(x)
    return a if aq.backend_of(a) is backend or backend is None else aq.to_backend(a, backend)


@dataclasses.dataclass
class BertEmbeddings:
    """Word + absolute position + token type embeddings (each an Embedding or
    QuantizedEmbedding), then a LayerNorm."""

    word_embeddings: Any
    position_embeddings: Any
    token_type_embeddings: Any
    norm: nn.LayerNorm

    def __call__(self, ids: Any, token_type_ids: Any = None, dtype: Any = "float32", index_mode: str = "raise") -> Any:
        """``ids`` (B, L) → (B, L, hidden) in ``dtype``; positions are 0 .. L-1, token types
        0 unless given ((B, L) integers). ``index_mode``: as :meth:`Bert.hidden`'s."""
        length = int(ids.shape[1])
        h = aq.astype(self.word_embeddings(ids, index_mode), dtype, copy=False)
        types = np.zeros((1, 1), np.int32) if token_type_ids is None else token_type_ids
        positions, types = (_like(a, h) for a in (np.arange(length, dtype=np.int32), types))
        h = aq.add(h, aq.astype(self.position_embeddings(positions), dtype, copy=False))
        h = aq.add(h, aq.astype(self.token_type_embeddings(types, index_mode), dtype, copy=False))
        return self.norm(h)


@dataclasses.dataclass
class BertLayer:
    """One post-LayerNorm encoder block: ``attention_norm(x + attention(x))``, then
    ``output_norm(h + output(gelu(intermediate(h))))``."""

    attention: nn.Attention
    attention_norm: nn.LayerNorm
    intermediate: Any
    output: Any
    output_norm: nn.LayerNorm
    approximate: str = "none"

    def __call__(self, x: Any, mask: Any = None) -> Any:
        """``x`` (B, L, hidden) → (B, L, hidden); ``mask``: additive (B, 1, 1, L) or None."""
        h = self.attention_norm(aq.add(x, self.attention(x, mask)))
        return self.output_norm(aq.add(h, self.output(nn.gelu(self.intermediate(h), self.approximate))))


@dataclasses.dataclass
class Bert:
    """A BERT encoder. ``model(ids, attention_mask)`` gives sentence embeddings (pooled and
    normalised as ``config`` says); :meth:`hidden` the token states. Activations are
    computed in ``dtype`` (a dtype name, float32 by default)."""

    config: BertConfig
    embeddings: BertEmbeddings
    layers: list
    dtype: str = "float32"

    def hidden(
        self, ids: Any, attention_mask: Any = None, token_type_ids: Any = None, *, index_mode: str = "raise"
    ) -> Any:
        """Final-layer token states (B, L, hidden) in the model's dtype for token ``ids``
        (B, L), integers of any backend. ``attention_mask`` (B, L): nonzero for tokens, 0 for
        padding (keys that no token attends to), or None for none; ``token_type_ids``
        (B, L) or None for all 0. ``index_mode``: "raise" checks the ids and token types
        on the host (IndexError for one outside the vocabulary or token types); "clip" does
        not (:func:`arrayq.take`), for ids already checked, and inside
        :func:`arrayq.compile`, where the host check would make the call run eagerly. Raises
        ValueError for ids that are not 2-D, a sequence longer than max_position_embeddings,
        or masks and types of another shape."""
        if len(ids.shape) != 2:
            raise ValueError(f"ids must have shape (batch, length), got {tuple(ids.shape)}")
        length, limit = int(ids.shape[1]), self.config.max_position_embeddings
        if length > limit:
            raise ValueError(f"{length} tokens is more than max_position_embeddings = {limit}; truncate the input")
        for name, a in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if a is not None and tuple(a.shape) != tuple(ids.shape):
                raise ValueError(f"{name} must have the shape of ids {tuple(ids.shape)}, got {tuple(a.shape)}")
        h = self.embeddings(ids, token_type_ids, self.dtype, index_mode)
        # (on the activations' backend: a fused attention takes only its own arrays as masks)
        mask = None if attention_mask is None else nn.padding_mask(_like(attention_mask, h), dtype=self.dtype)
        for layer in self.layers:
            h = layer(h, mask)
        return h

    def pool(self, hidden: Any, attention_mask: Any = None) -> Any:
        """Sentence embeddings (B, hidden) from token states (B, L, hidden): the
        ``config.pooling`` of the tokens the mask keeps (all when None), L2-normalised
        when ``config.normalize``; in the states' dtype, pooled in float32 or wider. An
        all-padding row gives zeros (mean) as sentence-transformers does."""
        dtype = aq.dtype(hidden)
        h = aq.astype(hidden, "float32") if dtype.name in ("float16", "bfloat16") else hidden
        if self.config.pooling == "cls":
            out = h[:, 0, :]
        else:
            b, length = int(h.shape[0]), int(h.shape[1])
            m = attention_mask if attention_mask is not None else np.ones((b, length), np.int32)
            keep = aq.expand_dims(aq.astype(aq.not_equal(m, 0), aq.dtype(h)), axis=-1)  # (B, L, 1)
            if self.config.pooling == "max":  # sentence-transformers sets padding to -1e9 first
                out = aq.max(aq.add(aq.multiply(h, keep), aq.multiply(aq.subtract(1, keep), -1e9)), axis=1)
            else:
                total = aq.sum(aq.multiply(h, keep), axis=1)
                out = aq.divide(total, aq.maximum(aq.sum(keep, axis=1), _MIN_COUNT))
        if self.config.normalize:
            norm = aq.sqrt(aq.sum(aq.multiply(out, out), axis=-1, keepdims=True))
            out = aq.divide(out, aq.maximum(norm, _MIN_NORM))
        return aq.astype(out, dtype, copy=False)

    def __call__(
        self, ids: Any, attention_mask: Any = None, token_type_ids: Any = None, *, index_mode: str = "raise"
    ) -> Any:
        """Sentence embeddings (B, hidden) for ``ids`` (B, L): :meth:`pool` of
        :meth:`hidden` (see both for the arguments and errors)."""
        return self.pool(self.hidden(ids, attention_mask, token_type_ids, index_mode=index_mode), attention_mask)


# ---------------------------------------------------------------------- names


def checkpoint_name(name: str) -> str:
    """The name this architecture reads a checkpoint's tensor ``name`` under: without a
    ``bert.`` prefix, and TensorFlow's ``LayerNorm.gamma`` / ``.beta`` as ``.weight`` /
    ``.bias``; other names unchanged."""
    name = name[len("bert.") :] if name.startswith("bert.") else name
    return re.sub(
        r"(LayerNorm)\.(gamma|beta)$", lambda m: f"{m.group(1)}.{'weight' if m.group(2) == 'gamma' else 'bias'}", name
    )


#: GGUF tensor names (llama.cpp's "bert" architecture) → checkpoint module paths
GGUF_NAMES = GGUFNames(
    top={
        "token_embd": "embeddings.word_embeddings",
        "position_embd": "embeddings.position_embeddings",
        "token_types": "embeddings.token_type_embeddings",
        "token_embd_norm": "embeddings.LayerNorm",
    },
    block={
        "attn_q": "attention.self.query",
        "attn_k": "attention.self.key",
        "attn_v": "attention.self.value",
        "attn_output": "attention.output.dense",
        "attn_output_norm": "attention.output.LayerNorm",
        "ffn_up": "intermediate.dense",
        "ffn_down": "output.dense",
        "layer_output_norm": "output.LayerNorm",
    },
    layers="encoder.layer",
)

#: config.json key → GGUF metadata key
GGUF_CONFIG_KEYS = {
    "hidden_size": "bert.embedding_length",
    "num_hidden_layers": "bert.block_count",
    "num_attention_heads": "bert.attention.head_count",
    "intermediate_size": "bert.feed_forward_length",
    "layer_norm_eps": "bert.attention.layer_norm_epsilon",
    "max_position_embeddings": "bert.context_length",
}

# ---------------------------------------------------------------------- building


def _norm(b: WeightBuilder, module: str, dim: int, eps: float) -> nn.LayerNorm:
    weight, bias = b.dense(f"{module}.weight", (dim,), "hidden_size"), b.dense(f"{module}.bias", (dim,), "hidden_size")
    b.tick(module)
    return nn.LayerNorm(weight, bias, eps)


def _build(b: WeightBuilder, c: BertConfig) -> Bert:
    """The model, its weights from ``b`` under Hugging Face's names."""
    hid, inter, eps = c.hidden_size, c.intermediate_size, c.layer_norm_eps

    def table(name: str, rows: int, what: str) -> Any:
        return b.linear(f"embeddings.{name}", rows, hid, f"{what} x hidden_size", embedding=True)

    embeddings = BertEmbeddings(
        table("word_embeddings", c.vocab_size, "vocab_size"),
        table("position_embeddings", c.max_position_embeddings, "max_position_embeddings"),
        table("token_type_embeddings", c.type_vocab_size, "type_vocab_size"),
        _norm(b, "embeddings.LayerNorm", hid, eps),
    )
    square, up, down = "hidden_size x hidden_size", "intermediate_size x hidden_size", "hidden_size x intermediate_size"
    layers = []
    for i in range(c.num_hidden_layers):
        p = f"encoder.layer.{i}"
        if b.fuse:  # stacked on the host where the weights would be copied anyway: one copy
            b.hold_on_host()
        attention = nn.Attention(
            q_proj=b.linear(f"{p}.attention.self.query", hid, hid, square, bias=True),
            k_proj=b.linear(f"{p}.attention.self.key", hid, hid, square, bias=True),
            v_proj=b.linear(f"{p}.attention.self.value", hid, hid, square, bias=True),
            o_proj=b.linear(f"{p}.attention.output.dense", hid, hid, square, bias=True),
            n_heads=c.num_attention_heads,
            n_kv_heads=c.num_attention_heads,
            head_dim=c.head_dim,
            causal=False,
        )
        layer = BertLayer(
            attention,
            _norm(b, f"{p}.attention.output.LayerNorm", hid, eps),
            b.linear(f"{p}.intermediate.dense", inter, hid, up, bias=True),
            b.linear(f"{p}.output.dense", hid, inter, down, bias=True),
            _norm(b, f"{p}.output.LayerNorm", hid, eps),
            ACTIVATIONS[c.hidden_act],
        )
        if b.fuse:  # q/k/v stacked now (quantized layers of one format) and evaluated
            layer = b.to_model(dataclasses.replace(layer, attention=attention.fused()))
        layers.append(layer)
    return Bert(c, embeddings, layers, b.dtype)


def _count_modules(c: BertConfig) -> int:
    """The modules _build makes: three tables and a norm, then 8 per layer."""
    return 4 + 8 * c.num_hidden_layers


#: tensors a BERT checkpoint may carry that the encoder does not use: task heads, buffers
_UNUSED = re.compile(r"(pooler|cls|classifier)\.|embeddings\.position_ids$")


def _why_unexpected(name: str, c: BertConfig) -> str | None:
    """Why a tensor no module used does not belong, or None to ignore it."""
    if _UNUSED.match(name):
        return None
    m = re.match(r"encoder\.layer\.(\d+)\.", name)
    if m and int(m.group(1)) >= c.num_hidden_layers:
        return f"belongs to layer {m.group(1)}, but the config has num_hidden_layers = {c.num_hidden_layers}"
    return "is not part of a BERT encoder"


def config_from_gguf(f: GGUFFile) -> BertConfig:
    """The BertConfig a bert GGUF file's metadata describes (vocabulary and token types
    from the tables' shapes; pooling from ``bert.pooling_type``, normalised).
    CheckpointError for another architecture, missing keys or tables, or a pooling type
    other than mean or CLS."""
    d = gguf_config_values(f, MODEL_TYPE, GGUF_CONFIG_KEYS)
    for key, tensor in (("vocab_size", "token_embd.weight"), ("type_vocab_size", "token_types.weight")):
        info = f.tensors.get(tensor)
        if info is None or len(info.shape) != 2:
            raise CheckpointError(f.path, "is missing or not a 2-D table", tensor)
        d[key] = info.shape[0]
    pooling = f.metadata.get("bert.pooling_type", 1)
    if pooling not in _GGUF_POOLING:
        raise CheckpointError(
            f.path, f"bert.pooling_type {pooling!r} is not supported; arrayq takes 1 (mean) or 2 (CLS)"
        )
    config = BertConfig.from_dict({**d, "model_type": MODEL_TYPE}, f.path, GGUF_CONFIG_KEYS)
    return dataclasses.replace(config, pooling=_GGUF_POOLING[pooling], normalize=True)


#: BERT as the generic loader takes it.
ARCHITECTURE: Architecture[BertConfig, Bert] = Architecture(
    name=MODEL_TYPE,
    config_class=BertConfig,
    config_from_gguf=config_from_gguf,
    gguf_names=GGUF_NAMES,
    build=_build,
    count_modules=_count_modules,
    why_unexpected=_why_unexpected,
    hf_architectures=("BertModel", "BertForMaskedLM", "BertForPreTraining"),
    checkpoint_name=checkpoint_name,
    folder_settings=read_sentence_transformers,
    task="embed",
)

__all__ = [
    "ARCHITECTURE",
    "Bert",
    "BertConfig",
    "BertEmbeddings",
    "BertLayer",
    "GGUF_CONFIG_KEYS",
    "GGUF_NAMES",
    "MODEL_TYPE",
    "checkpoint_name",
    "config_from_gguf",
    "read_sentence_transformers",
]
