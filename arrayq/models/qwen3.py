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
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

import arrayq as aq

from .. import nn
from ..errors import QuantizationError
from ..quant import QuantizedWeight, check_format
from ._errors import CheckpointError
from ._files import member, read_json
from .gguf import AFFINE_TYPES, GGUFFile, is_gguf
from .safetensors import SafetensorsFile

Progress = Callable[[int, int, str], None]
#: Largest integer a config value may take (sizes, counts, token ids).
MAX_CONFIG_INT = 2**31 - 1


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
        if not isinstance(d, dict):
            raise CheckpointError(path, "is not a JSON object")
        names = names or {}

        def bad(key: str, expected: str, value: Any) -> CheckpointError:
            return CheckpointError(path, f"{names.get(key, key)} must be {expected}, got {value!r}")

        def integer(key: str, value: Any, low: int = 1, high: int = MAX_CONFIG_INT) -> int:
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise bad(
                    key,
                    f"a positive integer (at most {high})" if low == 1 else f"an integer from {low} to {high}",
                    value,
                )
            return value

        def number(key: str, value: Any, low: float = 0.0) -> float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or value <= low:
                raise bad(key, f"a finite number > {low:g} (not NaN)", value)
            return float(value)

        def flag(key: str, default: bool) -> bool:
            value = d.get(key, default)
            if not isinstance(value, bool):
                raise bad(key, "true or false", value)
            return value

        model_type = d.get("model_type")
        if model_type is not None and model_type != "qwen3":
            raise CheckpointError(path, f"model_type {model_type!r} is not supported; this loader takes 'qwen3'")
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
            if key not in d:
                raise CheckpointError(path, f"has no {names.get(key, key)!r}")
        v: dict[str, Any] = {
            key: integer(key, d[key])
            for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")
        }
        for key, default in (
            ("num_key_value_heads", v["num_attention_heads"]),
            ("head_dim", v["hidden_size"] // v["num_attention_heads"] or None),
            ("max_position_embeddings", 40960),
        ):
            value = d.get(key)
            v[key] = integer(key, default if value is None else value)
        v["rms_norm_eps"] = number("rms_norm_eps", d.get("rms_norm_eps", 1e-6))
        # rope_theta <= 1 makes the rotary frequencies grow, to inf (then NaN) for tiny values
        v["rope_theta"] = number("rope_theta", d.get("rope_theta", 1_000_000.0), 1.0)
        if v["num_attention_heads"] % v["num_key_value_heads"]:
            raise CheckpointError(
                path,
                f"{names.get('num_attention_heads', 'num_attention_heads')} {v['num_attention_heads']} is not a "
                f"multiple of {names.get('num_key_value_heads', 'num_key_value_heads')} {v['num_key_value_heads']}",
            )
        rope_scaling = d.get("rope_scaling")
        if rope_scaling is not None and not isinstance(rope_scaling, dict):
            raise bad("rope_scaling", "null or an object", rope_scaling)
        if rope_scaling and rope_scaling.get("rope_type", rope_scaling.get("type")) not in (None, "default"):
            raise CheckpointError(path, f"rope_scaling {rope_scaling!r} is not supported")
        vocab = v["vocab_size"]
        bos = d.get("bos_token_id")
        if bos is not None:
            integer("bos_token_id", bos, 0, vocab - 1)
        eos = d.get("eos_token_id")
        eos = () if eos is None else tuple(eos) if isinstance(eos, (list, tuple)) else (eos,)
        for t in eos:
            if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < vocab:
                raise bad("eos_token_id", f"a token id or a list of token ids in [0, {vocab})", d.get("eos_token_id"))
        quant = d.get("quantization")
        if quant is not None and not isinstance(quant, dict):
            raise bad("quantization", "an object", quant)
        qc = d.get("quantization_config")
        if quant is None and isinstance(qc, dict) and "quant_method" in qc:
            raise CheckpointError(
                path,
                f"quantization_config with quant_method {qc['quant_method']!r} is not supported; "
                "this loader takes MLX's packed formats ('quantization')",
            )
        return cls(
            **v,
            tie_word_embeddings=flag("tie_word_embeddings", True),
            attention_bias=flag("attention_bias", False),
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
        out: dict[str, Any] = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"}
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

    def __call__(
        self, x: Any, mask: Any = "causal", cache: nn.KVCache | None = None, rope_tables: tuple[Any, Any] | None = None
    ) -> Any:
        """``x`` (B, L, hidden) → (B, L, hidden)."""
        h = x + self.self_attn(self.input_layernorm(x), mask, cache, rope_tables)
        return h + self.mlp(self.post_attention_layernorm(h))


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

    def make_cache(self) -> list[nn.KVCache]:
        """An empty KV cache, one per layer."""
        return [nn.KVCache() for _ in self.layers]

    def hidden(self, ids: Any, cache: list[nn.KVCache] | None = None) -> Any:
        """Final-layer hidden states (before the last norm) for token ``ids`` (B, L), an
        integer array of any backend; with ``cache`` the tokens follow the cached ones and
        are appended. Returns (B, L, hidden) in the model's dtype. Raises ValueError for
        ids that are not 2-D or a cache of the wrong length."""
        if len(ids.shape) != 2:
            raise ValueError(f"ids must have shape (batch, length), got {tuple(ids.shape)}")
        if cache is not None and len(cache) != len(self.layers):
            raise ValueError(f"the cache has {len(cache)} entries for {len(self.layers)} layers")
        length = int(ids.shape[1])
        h = aq.astype(self.embed_tokens(ids), self.dtype, copy=False)
        offset = cache[0].offset if cache else 0
        rope = self.layers[0].self_attn.rope
        backend = aq.backend_of(h)
        assert backend is not None  # h is an array
        tables = tuple(aq.to_backend(t, backend) for t in rope.cos_sin(offset, length))
        mask = "causal" if length > 1 else None
        for i, layer in enumerate(self.layers):
            h = layer(h, mask, cache[i] if cache is not None else None, tables)
        return h

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


# ---------------------------------------------------------------------- where tensors come from


class _Source:
    """Tensors by (mlx-lm) name for the builder, with the file each comes from."""

    config_path = ""
    #: the file to name when a tensor is missing altogether
    missing_file = ""

    def module_format(self, module: str, quant: _Quantization) -> tuple[bool, tuple[int, int, str] | None]:
        """(whether the format of ``module`` is stated, the format or None for dense)."""
        return quant.lookup(module)

    def names(self) -> Iterable[str]:
        raise NotImplementedError

    def has(self, name: str) -> bool:
        raise NotImplementedError

    def get(self, name: str) -> np.ndarray:
        raise NotImplementedError

    def file_of(self, name: str) -> str:
        raise NotImplementedError

    def label(self, name: str) -> str:
        return name

    def native(self, name: str, backend: str) -> Any:
        """Tensor ``name`` as ``backend``'s own array when the source can give it without
        a NumPy copy; None otherwise."""
        return None

    def release(self, name: str) -> None:
        """Tensor ``name`` has been copied: drop its memory-mapped pages from memory."""


class _SafetensorsSource(_Source):
    def __init__(self, directory: Path):
        self.config_path = str(directory / "config.json")
        index = directory / "model.safetensors.index.json"
        self.where: dict[str, SafetensorsFile] = {}
        self._native: dict[str, dict[str, Any]] = {}
        self.missing_file = str(directory / "model.safetensors")
        if os.path.lexists(index):
            self.missing_file = str(index)
            weight_map = read_json(member(directory, index.name), "the index")
            weight_map = weight_map.get("weight_map") if isinstance(weight_map, dict) else None
            if not isinstance(weight_map, dict):
                raise CheckpointError(index, "is not a valid index: it needs a 'weight_map' object of name -> file")
            for name, shard in weight_map.items():
                if not isinstance(shard, str):
                    raise CheckpointError(index, f"maps a tensor to {shard!r}, not a file name (corrupted?)", name)
            files: dict[str, SafetensorsFile] = {}
            for shard in sorted(set(weight_map.values())):
                path = member(directory, shard, index)
                if not os.path.lexists(path):
                    listed = next(n for n, s in weight_map.items() if s == shard)
                    raise CheckpointError(path, f"is missing (model.safetensors.index.json puts {listed!r} there)")
                files[shard] = SafetensorsFile(path)
            for name, shard in weight_map.items():
                if name not in files[shard]:
                    raise CheckpointError(
                        files[shard].path,
                        "is listed in model.safetensors.index.json for this shard but the shard does not hold it",
                        name,
                    )
            for shard, f in files.items():
                for name in f.keys():
                    if weight_map.get(name) != shard:
                        raise CheckpointError(
                            f.path, "is in this shard but model.safetensors.index.json does not list it here", name
                        )
                    self.where[name] = f
        else:
            paths = sorted(directory.glob("model*.safetensors"))
            if not paths:
                raise CheckpointError(
                    directory, "holds no model.safetensors (nor model.safetensors.index.json with shards)"
                )
            if len(paths) > 1:
                self.missing_file = str(directory)
            for p in paths:
                f = SafetensorsFile(member(directory, p.name))
                for name in f.keys():
                    if name in self.where:
                        raise CheckpointError(p, f"is also in {self.where[name].path}", name)
                    self.where[name] = f

    def names(self) -> Iterable[str]:
        return self.where.keys()

    def has(self, name: str) -> bool:
        return name in self.where

    def get(self, name: str) -> np.ndarray:
        return self.where[name][name]

    def file_of(self, name: str) -> str:
        return self.where[name].path

    def native(self, name: str, backend: str) -> Any:
        # MLX reads safetensors itself, lazily, with plain reads into MLX memory: no page of
        # a memory map stays resident next to the copy (files already checked by our reader)
        if backend != "mlx":
            return None
        import mlx.core as mx

        path = self.where[name].path
        if path not in self._native:
            loaded = mx.load(path)
            assert isinstance(loaded, dict)  # a .safetensors file loads as name -> array
            self._native[path] = loaded
        return self._native[path][name]

    def release(self, name: str) -> None:
        self.where[name].release(name)


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


def gguf_to_mlx_name(name: str) -> str:
    """The mlx-lm name of a Qwen3 GGUF tensor name (``blk.3.attn_q.weight`` →
    ``model.layers.3.self_attn.q_proj.weight``); unknown names come back unchanged."""
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", name)
    if m and m.group(2) in _GGUF_BLOCK:
        return f"model.layers.{m.group(1)}.{_GGUF_BLOCK[m.group(2)]}.{m.group(3)}"
    m = re.fullmatch(r"(\w+)\.(weight|bias)", name)
    if m and m.group(1) in _GGUF_TOP:
        return f"{_GGUF_TOP[m.group(1)]}.{m.group(2)}"
    return name


def mlx_to_gguf_name(name: str) -> str:
    """The GGUF name of an mlx-lm Qwen3 tensor name (the inverse of gguf_to_mlx_name)."""
    m = re.fullmatch(r"model\.layers\.(\d+)\.(.+)\.(weight|bias|scales|biases)", name)
    if m:
        inverse = {v: k for k, v in _GGUF_BLOCK.items()}
        if m.group(2) in inverse:
            return f"blk.{m.group(1)}.{inverse[m.group(2)]}.{m.group(3)}"
    m = re.fullmatch(r"(.+)\.(weight|bias|scales|biases)", name)
    inverse = {v: k for k, v in _GGUF_TOP.items()}
    if m and m.group(1) in inverse:
        return f"{inverse[m.group(1)]}.{m.group(2)}"
    return name


class _GGUFSource(_Source):
    def __init__(self, f: GGUFFile):
        self.f = f
        self.config_path = self.missing_file = f.path
        self.entries: dict[str, tuple[str, str]] = {}  # mlx name -> (gguf name, part)
        self.quantized: dict[str, tuple[int, int, str]] = {}  # module path -> format
        self._cache: tuple[str, Any] | None = None
        for gname, info in f.tensors.items():
            mname = gguf_to_mlx_name(gname)
            if info.type in AFFINE_TYPES and mname.endswith(".weight"):
                base = mname[: -len(".weight")]
                bits, group = AFFINE_TYPES[info.type]
                self.quantized[base] = (group, bits, "affine")
                for part in ("weight", "scales", "biases"):
                    self.entries[f"{base}.{part}"] = (gname, part)
            else:
                self.entries[mname] = (gname, "dense")

    def module_format(self, module: str, quant: _Quantization) -> tuple[bool, tuple[int, int, str] | None]:
        return module in self.quantized, self.quantized.get(module)

    def names(self) -> Iterable[str]:
        return self.entries.keys()

    def has(self, name: str) -> bool:
        return name in self.entries

    def get(self, name: str) -> np.ndarray:
        gname, part = self.entries[name]
        if part == "dense":
            return self.f.dense(gname)
        if self._cache is None or self._cache[0] != gname:
            self._cache = (gname, self.f.affine(gname))
        packed, scales, biases, _, _ = self._cache[1]
        return {"weight": packed, "scales": scales, "biases": biases}[part]

    def file_of(self, name: str) -> str:
        return self.f.path

    def release(self, name: str) -> None:
        self.f.release(self.entries[name][0])

    def label(self, name: str) -> str:
        gname, part = self.entries.get(name, (mlx_to_gguf_name(name), "dense"))
        return gname if part == "dense" else f"{gname} ({part})"


# ---------------------------------------------------------------------- building


class _Quantization:
    """config.json's "quantization": the default format and per-module overrides."""

    def __init__(self, q: Any, path: str):
        self.path = path
        self.default: tuple[int, int, str] | None = None
        self.overrides: dict[str, tuple[int, int, str] | None] = {}
        if q is None:
            return
        if not isinstance(q, dict):
            raise CheckpointError(path, f"'quantization' must be an object, got {q!r}")
        gs, bits, mode = q.get("group_size"), q.get("bits"), q.get("mode", "affine")
        self.default = self._format(gs, bits, mode, None)
        for key, v in q.items():
            if v is False:
                self.overrides[key] = None
            elif isinstance(v, dict):
                self.overrides[key] = self._format(
                    v.get("group_size", gs), v.get("bits", bits), v.get("mode", mode), key
                )

    def _format(self, gs: Any, bits: Any, mode: Any, module: str | None) -> tuple[int, int, str]:
        where = "'quantization'" if module is None else f"'quantization' for {module!r}"
        try:
            g, b = check_format(gs, bits, mode)
        except QuantizationError as exc:
            raise CheckpointError(self.path, f"{where}: {exc}", module) from None
        return g, b, mode

    def lookup(self, module: str) -> tuple[bool, tuple[int, int, str] | None]:
        """(whether the config says anything about this module, its format or None)."""
        if module in self.overrides:
            return True, self.overrides[module]
        return self.default is not None, self.default


_FLOATS = ("float16", "bfloat16", "float32", "float64")


class _Builder:
    def __init__(
        self,
        src: _Source,
        config: Qwen3Config,
        quant: _Quantization,
        backend: str,
        device: Any,
        dtype: str,
        progress: Progress | None,
    ):
        self.src, self.config, self.quant = src, config, quant
        self.backend, self.device, self.dtype = backend, device, dtype
        self.progress = progress
        self.used: set[str] = set()
        self.done = 0
        c = config
        self.total = 2 + (0 if c.tie_word_embeddings else 1) + 11 * c.num_hidden_layers

    def _tick(self, what: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, what)

    def _put(self, name: str, a: np.ndarray, convert: bool = False) -> Any:
        """Source tensor ``name`` (``a``, as the source gives it) on the model's backend, in
        the activations' dtype if ``convert``. NumPy keeps the memory map; other backends
        get the source's native array if it has one (no NumPy copy at all), else a copy,
        after which the source drops the file's pages from memory."""
        dtype = aq.as_dtype(self.dtype).dtype
        if self.backend == "numpy":
            return a.astype(dtype) if convert and a.dtype != dtype else a
        out = self.src.native(name, self.backend)
        if out is None:
            out = aq.to_backend(np.ascontiguousarray(a), self.backend, self.device)
            self.src.release(name)
        return aq.astype(out, self.dtype) if convert and a.dtype != dtype else out

    def _error(self, name: str, message: str) -> CheckpointError:
        return CheckpointError(self.src.file_of(name), message, self.src.label(name))

    def _tensor(self, name: str, shape: tuple[int, ...] | None, kinds: tuple[str, ...], what: str) -> np.ndarray:
        if not self.src.has(name):
            hint = f" ({what})" if what else ""
            raise CheckpointError(self.src.missing_file, f"missing tensor{hint}", self.src.label(name))
        a = self.src.get(name)
        self.used.add(name)
        dtype = aq.as_dtype(a.dtype).name
        if dtype not in kinds:
            raise self._error(name, f"has dtype {dtype}, expected {' or '.join(kinds)}")
        if shape is not None and tuple(a.shape) != shape:
            raise self._error(name, f"has shape {tuple(a.shape)}, expected {shape}{' (' + what + ')' if what else ''}")
        return a

    def _dense(self, name: str, shape: tuple[int, ...], what: str) -> Any:
        a = self._tensor(name, shape, _FLOATS, what)
        return self._put(name, a, convert=True)

    def _quantized(self, module: str, n: int, k: int, fmt: tuple[int, int, str], what: str) -> QuantizedWeight:
        gs, bits, mode = fmt
        fmt_text = f"{bits}-bit {mode} quantization with group size {gs}"
        if k % gs:
            raise self._error(
                f"{module}.weight", f"{what} has {k} input features, not a multiple of the group size {gs}"
            )
        packed = self._tensor(f"{module}.weight", (n, k * bits // 32), ("uint32",), f"{what}, {n}x{k} at {fmt_text}")
        scale_kinds = ("float16", "bfloat16", "float32") if mode == "affine" else ("uint8",)
        scales = self._tensor(f"{module}.scales", (n, k // gs), scale_kinds, f"{what} at {fmt_text}")
        biases = None
        if mode == "affine":
            biases = self._tensor(
                f"{module}.biases", (n, k // gs), (aq.as_dtype(scales.dtype).name,), f"{what} at {fmt_text}"
            )
        elif self.src.has(f"{module}.biases"):
            raise self._error(f"{module}.biases", f"mode {mode!r} has no biases")
        try:
            return QuantizedWeight(
                self._put(f"{module}.weight", packed),
                self._put(f"{module}.scales", scales),
                None if biases is None else self._put(f"{module}.biases", biases),
                gs,
                bits,
                mode,
            )
        except QuantizationError as exc:
            raise self._error(f"{module}.weight", str(exc)) from None

    def linear(self, module: str, n: int, k: int, what: str, bias: bool = False, embedding: bool = False) -> Any:
        """Linear / QuantizedLinear (or Embedding / QuantizedEmbedding) ``module`` of
        logical shape (n, k), quantized or not as the tensors and config say."""
        said, fmt = self.src.module_format(module, self.quant)
        has_scales = self.src.has(f"{module}.scales")
        if has_scales and fmt is None:
            why = "config.json marks it as not quantized" if said else "config.json has no 'quantization' section"
            raise self._error(f"{module}.scales", f"is a quantization scale, but {why}; config and weights disagree")
        if fmt is not None and has_scales:
            layer_weight: Any = self._quantized(module, n, k, fmt, what)
            quantized = True
        else:
            if (
                fmt is not None
                and said
                and self.src.has(f"{module}.weight")
                and aq.as_dtype(self.src.get(f"{module}.weight").dtype).name == "uint32"
            ):
                raise self._error(f"{module}.weight", f"is packed (uint32) but {module}.scales is missing")
            layer_weight = self._dense(f"{module}.weight", (n, k), what)
            quantized = False
        b = self._dense(f"{module}.bias", (n,), f"{what} bias") if bias else None
        self._tick(module)
        if embedding:
            return nn.QuantizedEmbedding(layer_weight) if quantized else nn.Embedding(layer_weight)
        return nn.QuantizedLinear(layer_weight, b) if quantized else nn.Linear(layer_weight, b)

    def norm(self, module: str, dim: int, what: str) -> nn.RMSNorm:
        w = self._dense(f"{module}.weight", (dim,), what)
        self._tick(module)
        return nn.RMSNorm(w, self.config.rms_norm_eps)

    def build(self) -> Qwen3:
        c = self.config
        hd, h, kv, hidden, inter = (
            c.head_dim,
            c.num_attention_heads,
            c.num_key_value_heads,
            c.hidden_size,
            c.intermediate_size,
        )
        embed = self.linear("model.embed_tokens", c.vocab_size, hidden, "vocab_size x hidden_size", embedding=True)
        rope = nn.RoPE(hd, c.rope_theta)
        layers = []
        for i in range(c.num_hidden_layers):
            p = f"model.layers.{i}"
            ab = c.attention_bias
            attn = nn.Attention(
                q_proj=self.linear(
                    f"{p}.self_attn.q_proj", h * hd, hidden, "num_attention_heads*head_dim x hidden_size", ab
                ),
                k_proj=self.linear(
                    f"{p}.self_attn.k_proj", kv * hd, hidden, "num_key_value_heads*head_dim x hidden_size", ab
                ),
                v_proj=self.linear(
                    f"{p}.self_attn.v_proj", kv * hd, hidden, "num_key_value_heads*head_dim x hidden_size", ab
                ),
                o_proj=self.linear(
                    f"{p}.self_attn.o_proj", hidden, h * hd, "hidden_size x num_attention_heads*head_dim"
                ),
                n_heads=h,
                n_kv_heads=kv,
                head_dim=hd,
                rope=rope,
                q_norm=self.norm(f"{p}.self_attn.q_norm", hd, "head_dim"),
                k_norm=self.norm(f"{p}.self_attn.k_norm", hd, "head_dim"),
            )
            mlp = nn.SwiGLU(
                gate_proj=self.linear(f"{p}.mlp.gate_proj", inter, hidden, "intermediate_size x hidden_size"),
                up_proj=self.linear(f"{p}.mlp.up_proj", inter, hidden, "intermediate_size x hidden_size"),
                down_proj=self.linear(f"{p}.mlp.down_proj", hidden, inter, "hidden_size x intermediate_size"),
            )
            layers.append(
                Qwen3Layer(
                    self.norm(f"{p}.input_layernorm", hidden, "hidden_size"),
                    attn,
                    self.norm(f"{p}.post_attention_layernorm", hidden, "hidden_size"),
                    mlp,
                )
            )
        norm = self.norm("model.norm", hidden, "hidden_size")
        lm_head = None
        if not c.tie_word_embeddings:
            lm_head = self.linear("lm_head", c.vocab_size, hidden, "vocab_size x hidden_size")
        self._check_leftovers()
        return Qwen3(c, embed, layers, norm, lm_head, self.dtype)

    def _check_leftovers(self) -> None:
        c = self.config
        for name in self.src.names():
            if name in self.used or name.endswith("rotary_emb.inv_freq"):
                continue
            if c.tie_word_embeddings and name.startswith("lm_head."):
                continue  # a tied checkpoint may still carry the head; mlx-lm drops it too
            m = re.match(r"model\.layers\.(\d+)\.", name)
            if m and int(m.group(1)) >= c.num_hidden_layers:
                why = f"belongs to layer {m.group(1)}, but the config has num_hidden_layers = {c.num_hidden_layers}"
            elif name.startswith("lm_head."):
                why = "is an output head, but the config has tie_word_embeddings = true"
            elif name.endswith(".bias"):
                why = "is a bias, but the config has attention_bias = false"
            else:
                why = "is not part of a Qwen3 model"
            raise self._error(name, f"unexpected tensor: it {why}; config and weights disagree")


# ---------------------------------------------------------------------- loading


def config_from_gguf(f: GGUFFile) -> Qwen3Config:
    """The Qwen3Config a qwen3 GGUF file's metadata describes. CheckpointError for another
    architecture or missing keys."""
    md = f.metadata
    arch = md.get("general.architecture")
    if arch != "qwen3":
        raise CheckpointError(f.path, f"general.architecture is {arch!r}; this loader takes 'qwen3'")

    if "token_embd.weight" not in f.tensors:
        raise CheckpointError(f.path, "the file has no tensor 'token_embd.weight'", "token_embd.weight")
    embd_shape = f.tensors["token_embd.weight"].shape
    if len(embd_shape) != 2:
        raise CheckpointError(
            f.path, f"has shape {embd_shape}, expected (vocab_size, hidden_size)", "token_embd.weight"
        )
    names = {  # config.json key -> GGUF metadata key
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
    d = {key: md[gguf_key] for key, gguf_key in names.items() if gguf_key in md}
    d.setdefault("vocab_size", embd_shape[0])
    d.setdefault("rope_theta", 10000.0)
    d.update(model_type="qwen3", tie_word_embeddings="output.weight" not in f.tensors)
    return Qwen3Config.from_dict(d, f.path, names)


def read_config(path: str | os.PathLike) -> Qwen3Config:
    """The Qwen3Config of a checkpoint directory's config.json (or of a GGUF file)."""
    path = Path(path)
    if path.is_file() and is_gguf(path):
        return config_from_gguf(GGUFFile(path))
    cfg = member(path, "config.json")
    return Qwen3Config.from_dict(read_json(cfg, "the model config"), cfg)


def load(
    path: str | os.PathLike,
    *,
    backend: Any = None,
    device: Any = None,
    dtype: Any = "float32",
    progress: Progress | None = None,
) -> Qwen3:
    """Load a Qwen3 model from a checkpoint directory or a ``.gguf`` file onto ``backend``
    (a name or Backend; default: the current default backend) and ``device``.

    ``dtype``: the activations' dtype (float32 default; dense weights and norms are
    converted to it, quantized weights keep their format). ``progress(done, total, what)``
    is called after each layer is built. Raises CheckpointError for anything wrong with the
    checkpoint (see the module docstring), BackendUnavailableError for a missing backend."""
    path = Path(path)
    backend_obj = aq.get_backend(backend) if backend is not None else aq.current_backend()
    if device is not None:
        backend_obj.check_device(device)
    dtype_name = aq.as_dtype(dtype).name
    if dtype_name not in ("float32", "float16", "bfloat16", "float64"):
        raise ValueError(f"dtype must be a float dtype, got {dtype_name}")
    if not path.exists():
        raise CheckpointError(path, "does not exist")
    if path.is_file():
        if not is_gguf(path):
            raise CheckpointError(path, "is a file but not a GGUF file; pass a checkpoint directory or a .gguf file")
        f = GGUFFile(path)
        config = config_from_gguf(f)
        src: _Source = _GGUFSource(f)
        quant = _Quantization(None, f.path)
    else:
        config = read_config(path)
        src = _SafetensorsSource(path)
        quant = _Quantization(config.quantization, str(path / "config.json"))
    return _Builder(src, config, quant, backend_obj.name, device, dtype_name, progress).build()


__all__ = [
    "Qwen3",
    "Qwen3Config",
    "Qwen3Layer",
    "config_from_gguf",
    "gguf_to_mlx_name",
    "load",
    "mlx_to_gguf_name",
    "read_config",
]
