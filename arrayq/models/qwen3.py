"""Qwen3 decoder-only language model on :mod:`arrayq.nn`, loaded from a checkpoint
directory as mlx-community publishes it, or from a GGUF file.

**Checkpoint directory.** ``config.json`` (Hugging Face keys: ``hidden_size``,
``num_hidden_layers``, ``num_attention_heads``, ``num_key_value_heads``, ``head_dim``,
``intermediate_size``, ``vocab_size``, ``rms_norm_eps``, ``rope_theta``,
``tie_word_embeddings``; optional ``"quantization": {"group_size", "bits", "mode"}`` with
per-layer overrides keyed by module path, each a dict of those keys or ``false`` for "not
quantized"), and ``model.safetensors``, or shards listed in
``model.safetensors.index.json``. Tensor names are mlx-lm's: ``model.embed_tokens``,
``model.layers.N.self_attn.{q,k,v,o}_proj``, ``.self_attn.{q,k}_norm``,
``.mlp.{gate,up,down}_proj``, ``.input_layernorm``, ``.post_attention_layernorm``,
``model.norm``, ``lm_head`` (absent when the embeddings are tied). A quantized layer
``<p>`` stores ``<p>.weight`` (uint32 words), ``<p>.scales`` and ``<p>.biases``; a layer
without ``<p>.scales`` is dense.

**GGUF.** A ``general.architecture = "qwen3"`` file: metadata ``qwen3.block_count``,
``qwen3.embedding_length``, ``qwen3.feed_forward_length``, ``qwen3.attention.head_count``,
``qwen3.attention.head_count_kv``, ``qwen3.attention.key_length``,
``qwen3.attention.layer_norm_rms_epsilon``, ``qwen3.rope.freq_base``; tensors
``token_embd``, ``blk.N.attn_{q,k,v,output}``, ``blk.N.attn_{q,k}_norm``,
``blk.N.ffn_{gate,up,down}``, ``blk.N.attn_norm``, ``blk.N.ffn_norm``, ``output_norm``,
``output``. llama.cpp's converter permutes the Q/K rows of *llama*-architecture models
for its interleaved RoPE, but not those of ``qwen3`` (its Qwen3 converter does not derive
from the Llama one, and llama.cpp runs qwen3 with NEOX, i.e. rotate-half, RoPE), so the
GGUF weights are used as they are.

Every inconsistency raises :class:`~arrayq.models.CheckpointError` naming the file and
the tensor. On the NumPy backend the weights stay memory-mapped; other backends get a copy.

This module is the architecture only: the config and its validation rules, the modules and
the forward pass, the name tables, and :data:`ARCHITECTURE`, which hands them to the
generic loader (:mod:`arrayq.models._loader`, which reads the files and builds the weights).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from typing import Any

import arrayq as aq

from .. import nn
from ..quant import QuantizedWeight
from . import _loader
from ._errors import CheckpointError
from ._loader import Architecture, ConfigReader, Progress, WeightBuilder, gguf_config_values
from ._sources import GGUFNames
from .gguf import GGUFFile

#: config.json's model_type and GGUF's general.architecture
MODEL_TYPE = "qwen3"

# ---------------------------------------------------------------------- config


@dataclasses.dataclass
class Qwen3Config:
    """The hyper-parameters of a Qwen3 model (the Hugging Face config.json names)."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1_000_000.0
    tie_word_embeddings: bool = True
    attention_bias: bool = False
    max_position_embeddings: int = 40960
    bos_token_id: int | None = None
    eos_token_id: tuple[int, ...] = ()
    quantization: dict | None = None

    @classmethod
    def from_dict(
        cls, d: Any, path: str | os.PathLike = "config.json", names: dict[str, str] | None = None
    ) -> Qwen3Config:
        """From a parsed config.json: the one place where config values are checked.
        Raises CheckpointError naming ``path`` for a missing key, a value of the wrong type
        or out of range (NaN and inf included), an unsupported model type or rope scaling,
        or inconsistent sizes. ``names``: what the file calls each key, for the messages
        (GGUF metadata keys)."""
        r = ConfigReader(d, path, names)
        r.model_type(MODEL_TYPE)
        required = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
        r.require(*required)
        v: dict[str, Any] = {key: r.integer(key, d[key]) for key in required}
        for key, default in (
            ("num_key_value_heads", v["num_attention_heads"]),
            ("head_dim", v["hidden_size"] // v["num_attention_heads"] or None),
            ("max_position_embeddings", 40960),
        ):
            value = d.get(key)
            v[key] = r.integer(key, default if value is None else value)
        v["rms_norm_eps"] = r.number("rms_norm_eps", d.get("rms_norm_eps", 1e-6))
        # rope_theta <= 1 makes the rotary frequencies grow, to inf (then NaN) for tiny values
        v["rope_theta"] = r.number("rope_theta", d.get("rope_theta", 1_000_000.0), 1.0)
        if v["num_attention_heads"] % v["num_key_value_heads"]:
            raise CheckpointError(
                path,
                f"{r.name('num_attention_heads')} {v['num_attention_heads']} is not a "
                f"multiple of {r.name('num_key_value_heads')} {v['num_key_value_heads']}",
            )
        rope_scaling = d.get("rope_scaling")
        if rope_scaling is not None and not isinstance(rope_scaling, dict):
            raise r.bad("rope_scaling", "null or an object", rope_scaling)
        if rope_scaling and rope_scaling.get("rope_type", rope_scaling.get("type")) not in (None, "default"):
            raise CheckpointError(path, f"rope_scaling {rope_scaling!r} is not supported")
        vocab = v["vocab_size"]
        bos = d.get("bos_token_id")
        if bos is not None:
            r.integer("bos_token_id", bos, 0, vocab - 1)
        eos = r.token_ids("eos_token_id", vocab)
        quant = r.quantization()
        return cls(
            **v,
            tie_word_embeddings=r.flag("tie_word_embeddings", True),
            attention_bias=r.flag("attention_bias", False),
            bos_token_id=bos,
            eos_token_id=eos,
            quantization=quant,
        )

    def num_parameters(self) -> int:
        """Logical parameters of the model (a tied head counted once)."""
        hd, hid = self.head_dim, self.hidden_size
        attn = hid * hd * (2 * self.num_attention_heads + 2 * self.num_key_value_heads) + 2 * hd
        layer = attn + 3 * hid * self.intermediate_size + 2 * hid
        head = 0 if self.tie_word_embeddings else self.vocab_size * hid
        return self.vocab_size * hid + self.num_hidden_layers * layer + hid + head

    def to_dict(self) -> dict:
        """The config.json contents (with model_type and architectures)."""
        out: dict[str, Any] = {"architectures": ["Qwen3ForCausalLM"], "model_type": MODEL_TYPE}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "eos_token_id":
                v = list(v) if len(v) != 1 else v[0]
            if f.name == "quantization" and v is None:
                continue
            out[f.name] = v
        out["hidden_act"] = "silu"
        out["rope_scaling"] = None
        return out


# ---------------------------------------------------------------------- model


@dataclasses.dataclass
class Qwen3Layer:
    """One decoder block: pre-norm attention and pre-norm SwiGLU MLP, each residual."""

    input_layernorm: nn.RMSNorm
    self_attn: nn.Attention
    post_attention_layernorm: nn.RMSNorm
    mlp: nn.SwiGLU

    def __call__(self, x: Any, mask: Any = None, cache: nn.KVCache | None = None, rope_tables: Any = None) -> Any:
        """``x`` (B, L, hidden) → (B, L, hidden); ``mask``: an additive mask on top of the
        causal one, or None (see :class:`~arrayq.nn.Attention`)."""
        return aq.add(*self.residuals(x, self.input_layernorm(x), mask, cache, rope_tables))

    def residuals(self, x: Any, normed: Any, mask: Any, cache: Any, rope_tables: Any) -> tuple[Any, Any]:
        """The two terms whose sum is the layer's output for ``x``, given ``normed``, x
        through ``input_layernorm``: ``h = x + attention(normed)`` and ``mlp(norm(h))`` (so a
        caller can fuse the sum with the next layer's norm: :func:`arrayq.nn.add_rms_norm`)."""
        post = self.post_attention_layernorm
        attended = self.self_attn(normed, mask, cache, rope_tables)
        h, h_normed = nn.add_rms_norm(x, attended, post.weight, post.eps)  # h = x + attended, and its norm
        return h, self.mlp(h_normed)


@dataclasses.dataclass
class Qwen3:
    """A Qwen3 model. ``embed_tokens`` is an Embedding or QuantizedEmbedding; ``lm_head``
    is None when the embeddings are tied (the head is then ``embed_tokens.as_linear``).
    Activations are computed in ``dtype`` (a dtype name, float32 by default)."""

    config: Qwen3Config
    embed_tokens: Any
    layers: list
    norm: nn.RMSNorm
    lm_head: Any = None
    dtype: str = "float32"

    def make_cache(self, capacity: int = 0) -> list[nn.KVCache]:
        """An empty KV cache, one per layer; ``capacity``: the positions to allocate at the
        first call (written in place up to there, then doubled; see :class:`~arrayq.nn.KVCache`)."""
        return [nn.KVCache(capacity=capacity) for _ in self.layers]

    def fused(self) -> Qwen3:
        """This model with each layer's q/k/v projections, and its gate/up projections, each
        stacked into one quantized matmul where their formats match (the same logits,
        fewer calls; :func:`arrayq.nn.fuse_linear`). The other layers are shared."""
        layers = [
            dataclasses.replace(layer, self_attn=layer.self_attn.fused(), mlp=layer.mlp.fused())
            for layer in self.layers
        ]
        return dataclasses.replace(self, layers=layers)

    def hidden(
        self, ids: Any, cache: list[Any] | None = None, *, rope_tables: Any = None, index_mode: str = "raise"
    ) -> Any:
        """Final-layer hidden states (before the last norm) for token ``ids`` (B, L), an
        integer array of any backend; with ``cache`` (one :class:`~arrayq.nn.KVCache` or
        :class:`~arrayq.nn.FixedKVCache` per layer) the tokens follow the cached ones and are
        appended. ``rope_tables``: the (cos, sin) of the L positions (:meth:`arrayq.nn.RoPE.cos_sin`
        on the backend), needed with a FixedKVCache where the backend has no native rope for
        the model's dtype. ``index_mode``: "raise" checks the ids on the host, "clip" does not
        (for sampled ids, and inside :func:`arrayq.compile`; see :func:`arrayq.take`). Returns
        (B, L, hidden) in the model's dtype. Raises ValueError for ids that are not 2-D or a
        cache of the wrong length, IndexError for ids outside the vocabulary (with "raise")."""
        if len(ids.shape) != 2:
            raise ValueError(f"ids must have shape (batch, length), got {tuple(ids.shape)}")
        if cache is not None and len(cache) != len(self.layers):
            raise ValueError(f"the cache has {len(cache)} entries for {len(self.layers)} layers")
        length = int(ids.shape[1])
        h = aq.astype(self.embed_tokens(ids, index_mode), self.dtype, copy=False)
        offset = cache[0].offset if cache else 0
        rope = self.layers[0].self_attn.rope
        first = h
        tables = rope_tables
        if tables is None:  # made once for every layer, and only where the backend has no native rope
            tables = functools.cache(lambda: tuple(aq.asarray(t, like=first) for t in rope.cos_sin(offset, length)))
        # each layer's output sum fused with the next layer's input norm (the same values)
        normed = self.layers[0].input_layernorm(h) if self.layers else None
        for i, layer in enumerate(self.layers):
            h, mlp_out = layer.residuals(h, normed, None, cache[i] if cache is not None else None, tables)
            if i + 1 < len(self.layers):
                norm = self.layers[i + 1].input_layernorm
                h, normed = nn.add_rms_norm(h, mlp_out, norm.weight, norm.eps)
            else:
                h = aq.add(h, mlp_out)
        return h

    def rope_tables(self, position: int, length: int) -> tuple[Any, Any]:
        """Host (cos, sin) tables (length, head_dim/2) for positions ``position`` ..
        ``position+length-1`` (:meth:`arrayq.nn.RoPE.cos_sin`): what :meth:`hidden` takes as
        ``rope_tables`` once moved to the model's backend."""
        return self.layers[0].self_attn.rope.cos_sin(position, length)

    def logits(self, h: Any) -> Any:
        """Next-token logits (..., vocab) for hidden states (..., hidden), in the model's dtype."""
        h = self.norm(h)
        return self.embed_tokens.as_linear(h) if self.lm_head is None else self.lm_head(h)

    def __call__(self, ids: Any, cache: list[nn.KVCache] | None = None) -> Any:
        """Logits (B, L, vocab) for ``ids`` (B, L); see :meth:`hidden`."""
        return self.logits(self.hidden(ids, cache))

    def weight_bytes(self, per_token: bool = False) -> int:
        """Bytes of all weights; with ``per_token``, the bytes one decoded token reads
        (every layer and the head, but only one row of an untied embedding table)."""

        def size(o: Any) -> int:
            if isinstance(o, QuantizedWeight):
                return o.nbytes
            if dataclasses.is_dataclass(o) and not isinstance(o, type):
                return sum(size(getattr(o, f.name)) for f in dataclasses.fields(o) if f.name != "config")
            if isinstance(o, (list, tuple)):
                return sum(size(v) for v in o)
            return int(o.nbytes) if hasattr(o, "nbytes") and hasattr(o, "shape") else 0

        total = size(self)
        if per_token and self.lm_head is not None:
            total -= size(self.embed_tokens)
        return total


# ---------------------------------------------------------------------- names

#: GGUF tensor names → mlx-lm module paths (whole model; then one decoder block)
_GGUF_TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
_GGUF_BLOCK = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GGUF_NAMES = GGUFNames(_GGUF_TOP, _GGUF_BLOCK)

#: config.json key → GGUF metadata key
GGUF_CONFIG_KEYS = {
    "hidden_size": "qwen3.embedding_length",
    "num_hidden_layers": "qwen3.block_count",
    "num_attention_heads": "qwen3.attention.head_count",
    "num_key_value_heads": "qwen3.attention.head_count_kv",
    "head_dim": "qwen3.attention.key_length",
    "intermediate_size": "qwen3.feed_forward_length",
    "rms_norm_eps": "qwen3.attention.layer_norm_rms_epsilon",
    "rope_theta": "qwen3.rope.freq_base",
    "max_position_embeddings": "qwen3.context_length",
    "vocab_size": "qwen3.vocab_size",
    "bos_token_id": "tokenizer.ggml.bos_token_id",
    "eos_token_id": "tokenizer.ggml.eos_token_id",
}


def gguf_to_mlx_name(name: str) -> str:
    """The mlx-lm name of a Qwen3 GGUF tensor name (``blk.3.attn_q.weight`` →
    ``model.layers.3.self_attn.q_proj.weight``); unknown names come back unchanged."""
    return GGUF_NAMES.to_checkpoint(name)


def mlx_to_gguf_name(name: str) -> str:
    """The GGUF name of an mlx-lm Qwen3 tensor name (the inverse of gguf_to_mlx_name)."""
    return GGUF_NAMES.to_gguf(name)


# ---------------------------------------------------------------------- building


def _norm(b: WeightBuilder, module: str, dim: int, what: str, eps: float) -> nn.RMSNorm:
    w = b.dense(f"{module}.weight", (dim,), what)
    b.tick(module)
    return nn.RMSNorm(w, eps)


def _build(b: WeightBuilder, c: Qwen3Config) -> Qwen3:
    """The model, its weights from ``b`` under mlx-lm's names (a quantized or dense matrix
    wherever the checkpoint has one)."""
    hd, h, kv, hidden, inter = (
        c.head_dim,
        c.num_attention_heads,
        c.num_key_value_heads,
        c.hidden_size,
        c.intermediate_size,
    )
    eps = c.rms_norm_eps
    embed = b.linear("model.embed_tokens", c.vocab_size, hidden, "vocab_size x hidden_size", embedding=True)
    rope = nn.RoPE(hd, c.rope_theta)
    layers = []
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}"
        ab = c.attention_bias
        if b.fuse:  # stacked on the host where the weights would be copied anyway: one copy
            b.hold_on_host()
        attn = nn.Attention(
            q_proj=b.linear(f"{p}.self_attn.q_proj", h * hd, hidden, "num_attention_heads*head_dim x hidden_size", ab),
            k_proj=b.linear(f"{p}.self_attn.k_proj", kv * hd, hidden, "num_key_value_heads*head_dim x hidden_size", ab),
            v_proj=b.linear(f"{p}.self_attn.v_proj", kv * hd, hidden, "num_key_value_heads*head_dim x hidden_size", ab),
            o_proj=b.linear(f"{p}.self_attn.o_proj", hidden, h * hd, "hidden_size x num_attention_heads*head_dim"),
            n_heads=h,
            n_kv_heads=kv,
            head_dim=hd,
            rope=rope,
            q_norm=_norm(b, f"{p}.self_attn.q_norm", hd, "head_dim", eps),
            k_norm=_norm(b, f"{p}.self_attn.k_norm", hd, "head_dim", eps),
        )
        mlp = nn.SwiGLU(
            gate_proj=b.linear(f"{p}.mlp.gate_proj", inter, hidden, "intermediate_size x hidden_size"),
            up_proj=b.linear(f"{p}.mlp.up_proj", inter, hidden, "intermediate_size x hidden_size"),
            down_proj=b.linear(f"{p}.mlp.down_proj", hidden, inter, "hidden_size x intermediate_size"),
        )
        layer = Qwen3Layer(
            _norm(b, f"{p}.input_layernorm", hidden, "hidden_size", eps),
            attn,
            _norm(b, f"{p}.post_attention_layernorm", hidden, "hidden_size", eps),
            mlp,
        )
        if b.fuse:  # stacked now, and evaluated: a layer's separate parts are freed before the next is read
            layer = b.to_model(dataclasses.replace(layer, self_attn=attn.fused(), mlp=mlp.fused()))
        layers.append(layer)
    norm = _norm(b, "model.norm", hidden, "hidden_size", eps)
    lm_head = None
    if not c.tie_word_embeddings:
        lm_head = b.linear("lm_head", c.vocab_size, hidden, "vocab_size x hidden_size")
    return Qwen3(c, embed, layers, norm, lm_head, b.dtype)


def _count_modules(c: Qwen3Config) -> int:
    """The modules _build makes: embedding, final norm, untied head, 11 per layer."""
    return 2 + (0 if c.tie_word_embeddings else 1) + 11 * c.num_hidden_layers


def _why_unexpected(name: str, c: Qwen3Config) -> str | None:
    """Why a tensor no module used does not belong, or None to ignore it."""
    if name.endswith("rotary_emb.inv_freq"):
        return None
    if c.tie_word_embeddings and name.startswith("lm_head."):
        return None  # a tied checkpoint may still carry the head; mlx-lm drops it too
    m = re.match(r"model\.layers\.(\d+)\.", name)
    if m and int(m.group(1)) >= c.num_hidden_layers:
        return f"belongs to layer {m.group(1)}, but the config has num_hidden_layers = {c.num_hidden_layers}"
    if name.startswith("lm_head."):
        return "is an output head, but the config has tie_word_embeddings = true"
    if name.endswith(".bias"):
        return "is a bias, but the config has attention_bias = false"
    return "is not part of a Qwen3 model"


# ---------------------------------------------------------------------- loading


def config_from_gguf(f: GGUFFile) -> Qwen3Config:
    """The Qwen3Config a qwen3 GGUF file's metadata describes. CheckpointError for another
    architecture or missing keys."""
    d = gguf_config_values(f, MODEL_TYPE, GGUF_CONFIG_KEYS)
    if "token_embd.weight" not in f.tensors:
        raise CheckpointError(f.path, "the file has no tensor 'token_embd.weight'", "token_embd.weight")
    embd_shape = f.tensors["token_embd.weight"].shape
    if len(embd_shape) != 2:
        raise CheckpointError(
            f.path, f"has shape {embd_shape}, expected (vocab_size, hidden_size)", "token_embd.weight"
        )
    d.setdefault("vocab_size", embd_shape[0])
    d.setdefault("rope_theta", 10000.0)
    d.update(model_type=MODEL_TYPE, tie_word_embeddings="output.weight" not in f.tensors)
    return Qwen3Config.from_dict(d, f.path, GGUF_CONFIG_KEYS)


#: Qwen3 as the generic loader takes it.
ARCHITECTURE: Architecture[Qwen3Config, Qwen3] = Architecture(
    name=MODEL_TYPE,
    config_class=Qwen3Config,
    config_from_gguf=config_from_gguf,
    gguf_names=GGUF_NAMES,
    build=_build,
    count_modules=_count_modules,
    why_unexpected=_why_unexpected,
)


def read_config(path: str | os.PathLike) -> Qwen3Config:
    """The Qwen3Config of a checkpoint directory's config.json (or of a GGUF file)."""
    return _loader.read_config(path, ARCHITECTURE)


def load(
    path: str | os.PathLike,
    *,
    backend: Any = None,
    device: Any = None,
    dtype: Any = "float32",
    progress: Progress | None = None,
    fuse: bool = True,
    shard: Any = None,
) -> Qwen3:
    """Load a Qwen3 model from a checkpoint directory or a ``.gguf`` file onto ``backend``
    (a name or Backend; default: the current default backend) and ``device``.

    ``dtype``: the activations' dtype (float32 default; dense weights and norms are
    converted to it, quantized weights keep their format). ``progress(done, total, what)``
    is called after each layer is built. ``fuse``: stack each layer's q/k/v and gate/up
    quantized weights into one matmul each (:meth:`Qwen3.fused`; on NumPy the stacked
    weights are copied into memory instead of staying memory-mapped). ``shard``: an
    :class:`arrayq.distributed.Group`, to load only this rank's share of each layer,
    tensor-parallel (:func:`arrayq.nn.shard`). Raises CheckpointError
    for anything wrong with the checkpoint (see the module docstring),
    BackendUnavailableError for a missing backend."""
    return _loader.load(
        path, ARCHITECTURE, backend=backend, device=device, dtype=dtype, progress=progress, fuse=fuse, shard=shard
    )


__all__ = [
    "ARCHITECTURE",
    "GGUF_CONFIG_KEYS",
    "GGUF_NAMES",
    "MODEL_TYPE",
    "Qwen3",
    "Qwen3Config",
    "Qwen3Layer",
    "config_from_gguf",
    "gguf_to_mlx_name",
    "load",
    "mlx_to_gguf_name",
    "read_config",
]
