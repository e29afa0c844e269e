"""``arrayq.nn``: the layers of a transformer language model, written once against arrayq's
frontend, so they run on every backend.

Every layer is a plain dataclass whose fields are the backend's own arrays (or a
:class:`~arrayq.QuantizedWeight`, or other layers), so ``arrayq.to_backend(model, "mlx")``
moves a whole model, ``arrayq.eval(nn.parameters(model))`` evaluates one and
``nn.quantize(model)`` quantizes its Linear and Embedding layers. Calling a layer runs it.
Tensor-parallel layers, split over the processes of an :mod:`arrayq.distributed` group
(:func:`column_sharded`, :func:`row_sharded`, :func:`shard` for a whole model), are in
``arrayq/_sharded.py``.

Conventions: activations are ``(..., features)``; attention works on ``(B, L, hidden)``
input with heads laid out ``(B, heads, L, head_dim)``. Norms, softmax and attention scores
are computed in float32 (float64 stays float64) and returned in the input's dtype.
Linear weights are ``(out_features, in_features)``, as PyTorch, MLX and safetensors
checkpoints store them.

Arithmetic on arrays is written as calls (``aq.add(y, bias)``, not ``y + bias``): each is
the backend's primitive, so these references run on any backend, whatever its arrays'
operators do (tests/test_reference_primitives.py runs them on arrays that have none).

Small constant tables (rotary angles, causal masks) are computed once per call on the host
in float64 with NumPy and moved to the activations' backend: every backend therefore sees
bit-identical tables.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

import arrayq as aq

from . import linalg as _linalg
from ._distill import distill_quantized, reround_quantized
from ._equalize import equalize_attention
from ._functional import (
    _like,
    _narrow,
    attention_reference,
    causal_mask,
    gelu,
    layer_norm,
    padding_mask,
    prefix_mask,
    rms_norm,
    rms_norm_reference,
    rope,
    rope_reference,
    rope_tables,
    scaled_dot_product_attention,
    sigmoid,
    silu,
    softmax,
    swiglu,
    swiglu_reference,
)
from ._fused import add_rms_norm, add_rms_norm_reference, attention_heads, qkv_heads, qkv_heads_reference
from ._kv_cache import FixedKVCache, KVCache
from ._quantize_model import Predicate, quantize
from ._quantize_sequential import sequential as _sequential
from ._sharded import (
    GatheredLinear,
    RowShardedLinear,
    VocabShardedEmbedding,
    bytes_per_token,
    column_sharded,
    row_sharded,
    shard,
    shard_attention,
    shard_swiglu,
    shard_vocab,
    to_backend,
)
from .quant import QuantizedWeight


@dataclasses.dataclass
class Linear:
    """``y = x @ weight.T + bias``. ``weight``: (out_features, in_features); ``bias``:
    (out_features,) or None. Input (..., in_features) → (..., out_features), in the
    promoted dtype of x and weight."""

    weight: Any
    bias: Any = None

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[-1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[-2])

    def __call__(self, x: Any) -> Any:
        y = aq.matmul(x, aq.matrix_transpose(self.weight))
        return y if self.bias is None else aq.add(y, self.bias)

    def quantize(
        self, *, group_size: int | None = None, bits: int | None = None, mode: str = "affine", **options: Any
    ) -> QuantizedLinear:
        """This layer with its weight quantized (see :func:`arrayq.quantize` for the formats,
        the further keyword ``options`` it takes, and the QuantizationError it raises); the
        bias stays as is."""
        qw = aq.quantize(self.weight, group_size=group_size, bits=bits, mode=mode, **options)
        return QuantizedLinear(qw, self.bias)


@dataclasses.dataclass
class QuantizedLinear:
    """:class:`Linear` with a quantized weight: ``y = x @ dequantize(weight).T + bias``,
    computed by :func:`arrayq.linalg.quantized_matmul` without materialising the weight.
    ``weight``: a QuantizedWeight of logical shape (out_features, in_features). The result
    has x's dtype (float32/float16/bfloat16; see quantized_matmul for its errors)."""

    weight: QuantizedWeight
    bias: Any = None

    @property
    def in_features(self) -> int:
        return self.weight.shape[-1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[-2]

    def __call__(self, x: Any) -> Any:
        # looked up at call time, so a profiler can wrap arrayq.linalg.quantized_matmul
        y = _linalg.quantized_matmul(x, self.weight, transpose=True)
        return y if self.bias is None else aq.add(y, _narrow(self.bias, aq.dtype(y)))


@dataclasses.dataclass
class Embedding:
    """A lookup table ``weight`` (num_embeddings, dims). ``emb(ids)``: integer ids of any
    shape → ids.shape + (dims,) in weight's dtype (negative ids count from the end).
    ``emb.as_linear(x)``: x (..., dims) @ weight.T, the tied output head."""

    weight: Any

    def __call__(self, ids: Any, mode: str = "raise") -> Any:
        """``mode``: :func:`arrayq.take`'s (``"clip"`` for ids known to be in range, as a
        sampled token's, or inside :func:`arrayq.compile`)."""
        return aq.take(self.weight, ids, axis=0, mode=mode)

    def as_linear(self, x: Any) -> Any:
        return aq.matmul(x, aq.matrix_transpose(self.weight))

    def quantize(
        self, *, group_size: int | None = None, bits: int | None = None, mode: str = "affine", **options: Any
    ) -> QuantizedEmbedding:
        """This table quantized row by row (groups run along ``dims``; as :meth:`Linear.quantize`)."""
        return QuantizedEmbedding(aq.quantize(self.weight, group_size=group_size, bits=bits, mode=mode, **options))


@dataclasses.dataclass
class QuantizedEmbedding:
    """A quantized lookup table: ``weight`` is a QuantizedWeight of logical shape
    (num_embeddings, dims). ``emb(ids)`` takes only the looked-up rows of the packed words,
    scales and biases and dequantizes those (never the whole table), giving
    ids.shape + (dims,) in ``weight.dtype``, bit-identical to the same rows of
    ``arrayq.dequantize(weight)``. ``emb.as_linear(x)``: quantized_matmul(x, weight), the
    tied output head, in x's dtype."""

    weight: QuantizedWeight

    def __call__(self, ids: Any, mode: str = "raise") -> Any:
        """``mode``: as :meth:`Embedding.__call__`."""
        w = self.weight
        shape = tuple(int(n) for n in ids.shape)
        flat = aq.reshape(ids, (-1,))
        rows = QuantizedWeight(
            aq.take(w.packed, flat, axis=0, mode=mode),
            aq.take(w.scales, flat, axis=0, mode=mode),
            None if w.biases is None else aq.take(w.biases, flat, axis=0, mode=mode),
            w.group_size,
            w.bits,
            w.mode,
            w.dtype,
        )
        return aq.reshape(aq.dequantize(rows), shape + (w.shape[-1],))

    def as_linear(self, x: Any) -> Any:
        return _linalg.quantized_matmul(x, self.weight, transpose=True)


@dataclasses.dataclass
class RMSNorm:
    """Root-mean-square norm over the last axis (:func:`rms_norm`); ``weight``: (D,)."""

    weight: Any
    eps: float = 1e-6

    def __call__(self, x: Any) -> Any:
        return rms_norm(x, self.weight, self.eps)


@dataclasses.dataclass
class LayerNorm:
    """Layer norm over the last axis (:func:`layer_norm`); ``weight``, ``bias``: (D,) or None."""

    weight: Any = None
    bias: Any = None
    eps: float = 1e-5

    def __call__(self, x: Any) -> Any:
        return layer_norm(x, self.weight, self.bias, self.eps)


@dataclasses.dataclass
class RoPE:
    """Rotary position embedding over the first ``dims`` features of the last axis.

    Position p rotates feature pair i by the angle ``p * scale * base**(-2i/dims)``. The
    pairs are ``(i, i + dims/2)`` ("rotate_half", as Llama, Qwen and GGUF's NEOX mode) when
    ``traditional`` is false, and ``(2i, 2i + 1)`` (interleaved) when it is true.
    Angles, cosines and sines are computed in float64 on the host; the rotation runs in
    float32 (float64 for float64 input) and returns x's dtype."""

    dims: int
    base: float = 10000.0
    traditional: bool = False
    scale: float = 1.0

    def cos_sin(self, offset: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Host float32 (length, dims/2) tables for positions offset .. offset+length-1."""
        return rope_tables(self.dims, self.base, self.scale, offset, length)

    def __call__(self, x: Any, offset: int = 0, tables: Any = None) -> Any:
        """``x`` (..., L, D) with positions ``offset`` .. ``offset+L-1`` rotated (:func:`rope`);
        same shape and dtype. ``tables``: (cos, sin) from :meth:`cos_sin` already on x's
        backend, or a function returning them, shared between layers and used where the
        backend has no native rope. Raises ValueError if D < dims or dims is odd."""
        return rope(
            x, self.dims, traditional=self.traditional, base=self.base, scale=self.scale, offset=offset, tables=tables
        )


@dataclasses.dataclass
class Attention:
    """Multi-head self-attention: grouped query heads, optional rotary positions, optional
    per-head q/k RMS norms (Qwen3), causal or not, and a KV cache.

    ``q_proj``: hidden → n_heads*head_dim; ``k_proj``/``v_proj``: hidden → n_kv_heads*head_dim;
    ``o_proj``: n_heads*head_dim → hidden (each a Linear or QuantizedLinear, with or
    without a bias). ``rope``: the RoPE applied to q and k, or None for none (absolute
    position embeddings, as BERT, are added to the input instead). ``q_norm`` /
    ``k_norm``: RMSNorm over head_dim, applied per head before RoPE, or None. ``scale``
    defaults to ``head_dim ** -0.5``. ``causal``: each position sees only itself and the
    ones before it (a decoder; the default), or every position (an encoder, ``False``).
    ``qkv_proj``: q, k and v in one layer (their rows stacked, see :func:`fuse_linear`),
    which runs instead of the three when set (they are then None: :meth:`fused`)."""

    q_proj: Any
    k_proj: Any
    v_proj: Any
    o_proj: Any
    n_heads: int
    n_kv_heads: int
    head_dim: int
    rope: RoPE | None = None
    q_norm: RMSNorm | None = None
    k_norm: RMSNorm | None = None
    scale: float | None = None
    qkv_proj: Any = None
    causal: bool = True

    def fused(self) -> Attention:
        """This layer with q/k/v_proj stacked into ``qkv_proj`` (one quantized matmul instead
        of three), or itself where :func:`fuse_linear` cannot join them."""
        qkv = None if self.qkv_proj is not None else fuse_linear(self.q_proj, self.k_proj, self.v_proj)
        return self if qkv is None else dataclasses.replace(self, q_proj=None, k_proj=None, v_proj=None, qkv_proj=qkv)

    def heads(self, x: Any) -> tuple[Any, Any, Any]:
        """q (B, n_heads, L, head_dim) and k, v (B, n_kv_heads, L, head_dim) for ``x``
        (B, L, hidden): the projections, split into heads, q and k through their norms;
        before rotary positions (the first half of :meth:`__call__`)."""
        b, length = int(x.shape[0]), int(x.shape[1])

        def split(y: Any, n: int, norm: RMSNorm | None) -> Any:
            y = aq.reshape(y, (b, length, n, self.head_dim))
            return aq.permute_dims(y if norm is None else norm(y), (0, 2, 1, 3))

        if self.qkv_proj is not None:
            qkv, nq, nk = self.qkv_proj(x), self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
            yq, yk, yv = qkv[..., :nq], qkv[..., nq : nq + nk], qkv[..., nq + nk :]
        else:
            yq, yk, yv = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        return (
            split(yq, self.n_heads, self.q_norm),
            split(yk, self.n_kv_heads, self.k_norm),
            split(yv, self.n_kv_heads, None),
        )

    def __call__(
        self, x: Any, mask: Any = None, cache: KVCache | FixedKVCache | None = None, rope_tables: Any = None
    ) -> Any:
        """``x`` (B, L, hidden) → (B, L, hidden). ``mask``: None, or an additive array
        broadcasting to (B, n_heads, L, S), S the keys (cached + L), such as
        :func:`padding_mask`'s; a causal layer adds it to its causal mask. With ``cache`` the
        L new positions follow the cached ones and are appended to it. ``rope_tables``:
        shared (cos, sin) for positions cache.offset .. +L (see :meth:`RoPE.cos_sin`), or
        a function returning them, for a backend without a native rope.
        Raises ValueError where the mask does not broadcast (see
        :func:`scaled_dot_product_attention`)."""
        if isinstance(mask, str):
            raise ValueError(
                f"mask must be None or an additive array, got {mask!r} (causality is the layer's `causal`)"
            )
        b, length = int(x.shape[0]), int(x.shape[1])
        offset = cache.offset if cache is not None else 0
        q, k, v = attention_heads(self, x, offset, rope_tables)  # (one fused call where the layer allows)
        if cache is not None:
            k, v = cache.update_and_fetch(k, v)
        scale = self.scale if self.scale is not None else self.head_dim**-0.5
        key_length = None
        if isinstance(cache, FixedKVCache):  # its buffers hold positions not written yet
            causal = self.causal and length > 1
            if mask is None:  # attention over the written keys (a fused kernel where the backend has one)
                mask, key_length = ("causal" if causal else None), cache.position
            else:  # the caller's mask and the written prefix (causal among the new positions) in one array
                prefix = prefix_mask(cache.position, length, int(k.shape[2]), causal=causal, dtype=aq.dtype(q), like=q)
                mask = aq.add(mask, _narrow(_like(prefix, mask), aq.dtype(mask)))
        elif self.causal and length > 1:  # (one new position sees every key: no mask to build)
            total = int(k.shape[2])
            mask = (
                "causal"
                if mask is None
                else aq.add(mask, _narrow(_like(causal_mask(length, total), mask), aq.dtype(mask)))
            )
        out = scaled_dot_product_attention(q, k, v, scale=scale, mask=mask, key_length=key_length)
        if length > 1:  # (B, H, 1, D) is already (B, 1, H, D) in memory order: one graph node less a layer
            out = aq.permute_dims(out, (0, 2, 1, 3))
        out = aq.reshape(out, (b, length, self.n_heads * self.head_dim))
        return self.o_proj(out)


@dataclasses.dataclass
class SwiGLU:
    """The gated MLP of Llama/Qwen: ``down_proj(silu(gate_proj(x)) * up_proj(x))``.
    (..., hidden) → (..., hidden); each projection a Linear or QuantizedLinear.
    ``gate_up_proj``: gate and up in one layer, which runs instead when set (they are then
    None: :meth:`fused`)."""

    gate_proj: Any
    up_proj: Any
    down_proj: Any
    gate_up_proj: Any = None

    def fused(self) -> SwiGLU:
        """This layer with gate/up_proj stacked into ``gate_up_proj``, or itself where
        :func:`fuse_linear` cannot join them."""
        gu = None if self.gate_up_proj is not None else fuse_linear(self.gate_proj, self.up_proj)
        return self if gu is None else dataclasses.replace(self, gate_proj=None, up_proj=None, gate_up_proj=gu)

    def __call__(self, x: Any) -> Any:
        if self.gate_up_proj is None:
            return self.down_proj(swiglu(self.gate_proj(x), self.up_proj(x)))
        return self.down_proj(swiglu(self.gate_up_proj(x)))  # (gate and up: its halves)


def fuse_linear(*layers: Any) -> QuantizedLinear | None:
    """One QuantizedLinear computing ``layers`` (QuantizedLinears of one input size and one
    format) side by side: their packed words, scales, biases (and layer biases) stacked
    along the output rows, so the output's last axis is theirs concatenated, each row
    computed as before. None where they do not all share in_features, group size, bits,
    mode, dtypes, backend and having a bias or not (dense layers are left as they are)."""
    if not layers or not all(isinstance(layer, QuantizedLinear) for layer in layers):
        return None
    ws = [layer.weight for layer in layers]

    def facts(w: QuantizedWeight) -> tuple:
        arrays = (w.packed, w.scales, w.biases)
        kinds = tuple(None if a is None else (aq.dtype(a), aq.backend_of(a), len(a.shape)) for a in arrays)
        return (w.shape[-1], w.group_size, w.bits, w.mode, w.dtype, kinds, len(w.shape))

    first = facts(ws[0])
    if len(ws[0].shape) != 2 or any(facts(w) != first for w in ws[1:]):
        return None
    has_bias = [layer.bias is not None for layer in layers]
    if any(has_bias) and not all(has_bias):
        return None
    if all(has_bias) and len({(aq.dtype(la.bias), aq.backend_of(la.bias)) for la in layers}) != 1:
        return None

    def cat(arrays: list[Any]) -> Any:
        return None if arrays[0] is None else aq.concat(arrays, axis=0)

    weight = QuantizedWeight(
        cat([w.packed for w in ws]),
        cat([w.scales for w in ws]),
        cat([w.biases for w in ws]),
        ws[0].group_size,
        ws[0].bits,
        ws[0].mode,
        ws[0].dtype,
    )
    return QuantizedLinear(weight, cat([layer.bias for layer in layers]) if all(has_bias) else None)


def _leaves(o: Any, out: list) -> list:
    if isinstance(o, (list, tuple)):
        for v in o:
            _leaves(v, out)
    elif isinstance(o, dict):
        for v in o.values():
            _leaves(v, out)
    elif dataclasses.is_dataclass(o) and not isinstance(o, type):
        if isinstance(o, QuantizedWeight):
            out.append(o)
        else:
            for f in dataclasses.fields(o):
                _leaves(getattr(o, f.name), out)
    elif hasattr(o, "shape") and hasattr(o, "dtype") and not isinstance(o, (str, bytes)):
        out.append(o)
    return out


def parameters(layer: Any) -> list:
    """Every array in a layer or model (nested layers, lists, dicts; a QuantizedWeight
    gives its packed words, scales and biases), e.g. for ``arrayq.eval(*parameters(m))``."""
    arrays: list[Any] = []
    for leaf in _leaves(layer, []):
        if isinstance(leaf, QuantizedWeight):
            arrays.extend(a for a in (leaf.packed, leaf.scales, leaf.biases) if a is not None)
        else:
            arrays.append(leaf)
    return arrays


def num_parameters(layer: Any) -> int:
    """Number of logical parameters in a layer or model (a quantized weight counts its
    logical, unpacked shape)."""
    return sum(math.prod(int(n) for n in leaf.shape) for leaf in _leaves(layer, []))


__all__ = [
    "Attention",
    "Embedding",
    "FixedKVCache",
    "GatheredLinear",
    "KVCache",
    "LayerNorm",
    "Linear",
    "QuantizedEmbedding",
    "QuantizedLinear",
    "RMSNorm",
    "RoPE",
    "RowShardedLinear",
    "SwiGLU",
    "VocabShardedEmbedding",
    "add_rms_norm",
    "add_rms_norm_reference",
    "attention_reference",
    "bytes_per_token",
    "causal_mask",
    "column_sharded",
    "distill_quantized",
    "equalize_attention",
    "fuse_linear",
    "gelu",
    "layer_norm",
    "num_parameters",
    "padding_mask",
    "parameters",
    "prefix_mask",
    "qkv_heads",
    "qkv_heads_reference",
    "quantize",
    "reround_quantized",
    "rms_norm",
    "rms_norm_reference",
    "rope",
    "rope_reference",
    "rope_tables",
    "row_sharded",
    "scaled_dot_product_attention",
    "shard",
    "shard_attention",
    "shard_swiglu",
    "shard_vocab",
    "sigmoid",
    "silu",
    "softmax",
    "swiglu",
    "swiglu_reference",
    "to_backend",
]


def quantize_sequential(
    model: Any,
    run: Any,
    *,
    group_size: int | None = None,
    bits: int | None = None,
    predicate: Predicate | None = None,
    mask: Any = None,
    correct_bias: bool = True,
    **options: Any,
) -> Any:
    """A copy of ``model`` with its :class:`Linear` layers quantized by GPTQ into MLX's
    affine format (:class:`QuantizedLinear`), one after the other in the order ``run``
    calls them (docs/quantization-formats.md, section 10).

    ``run(m)`` calls ``m`` (``model`` with some layers replaced) on calibration data, e.g.
    ``lambda m: m(ids, attention_mask)``; its result is ignored. It runs once on the float
    model, recording every chosen layer's float inputs, then once per chosen layer: layer
    ``i`` is calibrated on the inputs it gets while the layers called before it are already
    quantized (``calibration=``) and fitted to the float model's outputs on them
    (``float_calibration=``, :func:`arrayq.quantize`), so it also makes up for the error
    those layers left in its inputs. ``correct_bias``: a layer with a bias then has it
    shifted so that its mean output over the calibration rows is the float layer's
    (``bias + mean(x_float) w^T - mean(x) wq^T``: the mean error, which a bias holds
    exactly; layers without a bias get none). Calibrate on data like the model's real
    inputs, and measure on other data.

    ``mask``: None (every input row calibrates) or a boolean array (any backend) of the
    shape of every chosen layer's inputs without their last axis, choosing the rows that
    calibrate: for a padded batch of sequences (batch, length, features), the attention
    mask (batch, length), so padding is left out. ``predicate``, ``group_size``, ``bits``
    and ``options``: as :func:`quantize`; the predicate is asked about :class:`Linear`
    layers only (default: all of them). Other layers, and chosen ones that ``run`` never
    calls, stay as they are. A layer reached by several paths is quantized once.

    Raises QuantizationError for a layer that cannot be quantized (naming its path), a
    ``mask`` of the wrong shape or kind, and ``method``, ``mode``, ``calibration`` or
    ``float_calibration`` in ``options`` or a predicate's dict (chosen here); TypeError for
    a predicate returning something other than a bool or a dict; ValueError when ``run``
    calls none of the chosen layers; and whatever ``run`` raises."""
    return _sequential(model, run, Linear, group_size, bits, predicate, mask, correct_bias, options)
