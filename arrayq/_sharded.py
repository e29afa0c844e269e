"""Tensor-parallel layers (re-exported by :mod:`arrayq.nn`): a model's matrices split over
the processes of an :class:`arrayq.distributed.Group`, written once against the frontend.

* **Column-sharded** (:func:`column_sharded`): a Linear / QuantizedLinear keeps this rank's
  share of the output features (rows of the weight, whole quantization rows: any split of
  N is exact). Its input is the full activation, its output this rank's slice: no
  communication, so the result is a plain layer (and :func:`arrayq.nn.fuse_linear` still
  joins such layers). Layers whose rows are several matrices stacked (q/k/v, gate/up)
  are split block by block, so each rank gets its share of every block.
* **Row-sharded** (:class:`RowShardedLinear`, :func:`row_sharded`): the layer keeps this
  rank's share of the input features (columns of the weight; quantized ones only in
  whole groups) and adds up the partial products of every rank with one ``all_sum``.
* :func:`shard`: a transformer (Qwen3: every layer's attention and SwiGLU MLP) split
  Megatron-style: q/k/v and gate/up column-sharded, o and down row-sharded, so each layer
  communicates twice (two all_sums of (B, L, hidden)); each rank computes its own heads
  and keeps their KV cache. The embedding table and output head are split by vocabulary
  (:class:`VocabShardedEmbedding`, :class:`GatheredLinear`); norms are kept whole.

A split that does not work, a count that does not divide or a quantized input split that
would cut a group, raises ValueError naming the sizes. Sharding itself never communicates,
so a bad split raises on every rank before any collective runs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

import arrayq as aq

from ._functional import _narrow
from .distributed import Group, all_gather, all_sum
from .quant import QuantizedWeight


def _check_linear(layer: Any, op: str) -> None:
    """A Linear or QuantizedLinear (nn re-exports this module, so they are known by their
    fields: a 2-D ``weight``, dense or quantized, and a ``bias``)."""
    w = getattr(layer, "weight", None)
    shape = getattr(w, "shape", None)
    ok = isinstance(w, QuantizedWeight) or (shape is not None and len(shape) == 2)
    if not (dataclasses.is_dataclass(layer) and ok and hasattr(layer, "bias") and len(shape or ()) == 2):
        raise TypeError(f"{op} takes a Linear or QuantizedLinear, got {type(layer).__name__}")


def _check_group(group: Any) -> Group:
    if not isinstance(group, Group):
        raise TypeError(f"group must be an arrayq.distributed.Group (arrayq.distributed.init()), got {group!r}")
    return group


def _even(total: int, size: int, what: str) -> int:
    if total % size:
        raise ValueError(f"cannot split {what} = {total} evenly over {size} processes; it must be a multiple of {size}")
    return total // size


def _rows(w: Any, pieces: Sequence[tuple[int, int]]) -> Any:
    """Rows ``[a, b)`` of each piece of a weight (QuantizedWeight or dense (N, K)), joined."""

    def take(a: Any) -> Any:
        parts = [a[lo:hi] for lo, hi in pieces]
        return parts[0] if len(parts) == 1 else aq.concat(parts, axis=0)

    if isinstance(w, QuantizedWeight):
        biases = None if w.biases is None else take(w.biases)
        return QuantizedWeight(take(w.packed), take(w.scales), biases, w.group_size, w.bits, w.mode, w.dtype)
    return take(w)


def _columns(w: Any, lo: int, hi: int) -> Any:
    """Input features ``[lo, hi)`` of a weight; a quantized one in whole groups (checked)."""
    if not isinstance(w, QuantizedWeight):
        return w[:, lo:hi]
    gs, words = w.group_size, (lo * w.bits // 32, hi * w.bits // 32)
    biases = None if w.biases is None else w.biases[:, lo // gs : hi // gs]
    return QuantizedWeight(
        w.packed[:, words[0] : words[1]], w.scales[:, lo // gs : hi // gs], biases, gs, w.bits, w.mode, w.dtype
    )


def column_sharded(layer: Any, group: Group, blocks: Sequence[int] | None = None) -> Any:
    """``layer`` (a Linear or QuantizedLinear, weight (N, K)) keeping only this rank's
    output features: rows ``rank*N/size .. (rank+1)*N/size`` (and the same of its bias).
    ``blocks``: the row counts of matrices stacked in the weight (e.g. q, k, v of a fused
    projection; their sum is N), each split the same way and this rank's shares joined.
    Input (..., K) → (..., N/size), no communication. ValueError where a block does not
    divide by the group size or the blocks do not add up to N; TypeError for another layer."""
    group = _check_group(group)
    _check_linear(layer, "column_sharded")
    n = layer.out_features
    blocks = [n] if blocks is None else [int(b) for b in blocks]
    if sum(blocks) != n:
        raise ValueError(f"the blocks {blocks} add up to {sum(blocks)}, but the layer has {n} output features")
    pieces, start = [], 0
    for b in blocks:
        share = _even(b, group.size, "a block of output features" if len(blocks) > 1 else "out_features")
        pieces.append((start + group.rank * share, start + (group.rank + 1) * share))
        start += b
    if group.size == 1:
        return layer
    bias = None if layer.bias is None else _rows(layer.bias, pieces)
    return type(layer)(_rows(layer.weight, pieces), bias)


@dataclasses.dataclass
class RowShardedLinear:
    """A linear layer split along its input features: ``inner`` (a Linear or
    QuantizedLinear without bias) holds this rank's columns of the weight, (N, K/size).
    ``layer(x)``: x (..., K/size), this rank's slice of the input (a column-sharded layer's
    output) → (..., N), the sum over the group's ranks of their partial products (one
    :func:`arrayq.distributed.all_sum`), plus ``bias`` (N,) once. Output in x's dtype."""

    inner: Any
    group: Group
    bias: Any = None

    @property
    def in_features(self) -> int:
        return self.inner.in_features * self.group.size

    @property
    def out_features(self) -> int:
        return self.inner.out_features

    def __call__(self, x: Any) -> Any:
        y = all_sum(self.inner(x), self.group)
        return y if self.bias is None else aq.add(y, _narrow(self.bias, aq.dtype(y)))


def row_sharded(layer: Any, group: Group) -> Any:
    """``layer`` (a Linear or QuantizedLinear, weight (N, K)) keeping only this rank's input
    features ``rank*K/size .. (rank+1)*K/size``, as a :class:`RowShardedLinear` (the layer
    itself on a group of one). ValueError where K does not divide by the group size or,
    for a quantized weight, where K/size is not a whole number of groups (naming both
    sizes); TypeError for another layer."""
    group = _check_group(group)
    _check_linear(layer, "row_sharded")
    k = layer.in_features
    share = _even(k, group.size, "in_features")
    w = layer.weight
    if isinstance(w, QuantizedWeight) and (share % w.group_size or share * w.bits % 32):
        raise ValueError(
            f"cannot split in_features = {k} over {group.size} processes: each would get {share} features, "
            f"which cuts a quantization group of {w.group_size}; a split needs in_features/size to be a "
            f"multiple of the group size"
        )
    if group.size == 1:
        return layer
    lo = group.rank * share
    return RowShardedLinear(type(layer)(_columns(w, lo, lo + share)), group, layer.bias)


def shard_attention(attn: Any, group: Group) -> Any:
    """An :class:`arrayq.nn.Attention` keeping this rank's ``n_heads/size`` query heads and
    ``n_kv_heads/size`` key/value heads (q/k/v column-sharded, fused ``qkv_proj`` block by
    block; o_proj row-sharded): its output is the full layer's, after one all_sum; its
    KV cache holds only its heads. ValueError where the heads do not divide by the group
    size or o_proj's split cuts a quantization group."""
    group = _check_group(group)
    hd = attn.head_dim
    h = _even(attn.n_heads, group.size, "num_attention_heads")
    kv = _even(attn.n_kv_heads, group.size, "num_key_value_heads")
    o_proj = row_sharded(attn.o_proj, group)
    if attn.qkv_proj is not None:
        blocks = (attn.n_heads * hd, attn.n_kv_heads * hd, attn.n_kv_heads * hd)
        parts: dict[str, Any] = {"qkv_proj": column_sharded(attn.qkv_proj, group, blocks)}
    else:
        parts = {name: column_sharded(getattr(attn, name), group) for name in ("q_proj", "k_proj", "v_proj")}
    return dataclasses.replace(attn, o_proj=o_proj, n_heads=h, n_kv_heads=kv, **parts)


def shard_swiglu(mlp: Any, group: Group) -> Any:
    """An :class:`arrayq.nn.SwiGLU` keeping this rank's share of the intermediate features
    (gate/up column-sharded, a fused ``gate_up_proj`` block by block; down_proj
    row-sharded, one all_sum). ValueError as :func:`row_sharded`."""
    group = _check_group(group)
    down = row_sharded(mlp.down_proj, group)
    if mlp.gate_up_proj is not None:
        inter = mlp.gate_up_proj.out_features // 2
        return dataclasses.replace(
            mlp, gate_up_proj=column_sharded(mlp.gate_up_proj, group, (inter, inter)), down_proj=down
        )
    gate, up = column_sharded(mlp.gate_proj, group), column_sharded(mlp.up_proj, group)
    return dataclasses.replace(mlp, gate_proj=gate, up_proj=up, down_proj=down)


def _gather_last(y: Any, group: Group) -> Any:
    """Every rank's ``y`` (..., n) joined along the last axis: (..., size*n)."""
    return aq.moveaxis(all_gather(aq.moveaxis(y, -1, 0), group), 0, -1)


@dataclasses.dataclass
class VocabShardedEmbedding:
    """An embedding table split by rows (the vocabulary): ``inner`` (an Embedding or
    QuantizedEmbedding) holds rows ``start .. start + rows`` of ``vocab_size``.
    ``emb(ids)``: ids of any shape → ids.shape + (dims,): each rank looks up the ids in its
    rows (zeros for the others) and one all_sum joins them, so every rank gets every row,
    bit for bit. ``emb.as_linear(x)`` (the tied output head): x (..., dims) → (..., vocab),
    each rank's logits for its rows joined with one all_gather."""

    inner: Any
    start: int
    vocab_size: int
    group: Group

    def __call__(self, ids: Any, mode: str = "raise") -> Any:
        """``mode``: as :meth:`arrayq.nn.Embedding.__call__` ("raise" checks the ids against
        the whole vocabulary on the host; "clip" trusts them, as inside a compiled step)."""
        if mode == "raise":
            host = aq.to_numpy(ids)
            if host.size and (host.min() < -self.vocab_size or host.max() >= self.vocab_size):
                raise IndexError(
                    f"token ids must lie in [-{self.vocab_size}, {self.vocab_size}), got {host.min()}..{host.max()}"
                )
            ids = aq.where(aq.less(ids, 0), aq.add(ids, self.vocab_size), ids)  # negative ids count from the end
        local = aq.subtract(ids, self.start)
        rows = int(self.inner.weight.shape[0])
        mine = aq.logical_and(aq.greater_equal(local, 0), aq.less(local, rows))
        found = self.inner(aq.where(mine, local, aq.zeros_like(local)), "clip")
        found = aq.where(aq.expand_dims(mine, axis=-1), found, aq.zeros_like(found))
        return all_sum(found, self.group)

    def as_linear(self, x: Any) -> Any:
        return _gather_last(self.inner.as_linear(x), self.group)


@dataclasses.dataclass
class GatheredLinear:
    """A column-sharded layer whose outputs are joined again: ``inner`` holds this rank's
    rows (output features) of a (N, K) weight; ``layer(x)``: x (..., K) → (..., N), with
    one all_gather (an untied output head split by vocabulary)."""

    inner: Any
    group: Group

    def __call__(self, x: Any) -> Any:
        return _gather_last(self.inner(x), self.group)


def shard_vocab(model: Any, group: Group) -> dict[str, Any]:
    """The ``embed_tokens`` (:class:`VocabShardedEmbedding`) and ``lm_head``
    (:class:`GatheredLinear`, when untied) of ``model`` split by vocabulary over ``group``;
    nothing (they stay whole) where the vocabulary does not divide by the group size."""
    emb: Any = getattr(model, "embed_tokens", None)
    head: Any = getattr(model, "lm_head", None)
    weight = getattr(emb, "weight", None)
    if weight is None or int(weight.shape[0]) % group.size:
        return {}
    vocab = int(weight.shape[0])
    share = vocab // group.size
    start = group.rank * share
    out: dict[str, Any] = {
        "embed_tokens": VocabShardedEmbedding(type(emb)(_rows(weight, [(start, start + share)])), start, vocab, group)
    }
    if head is not None:
        out["lm_head"] = GatheredLinear(column_sharded(head, group), group)
    return out


def shard(model: Any, group: Group, vocab: bool = True) -> Any:
    """``model`` (a dataclass with ``layers``, each with an :class:`arrayq.nn.Attention`
    ``self_attn`` and an :class:`arrayq.nn.SwiGLU` ``mlp``: :class:`arrayq.models.Qwen3`)
    split over ``group`` tensor-parallel: this rank's heads and intermediate features in
    every layer (:func:`shard_attention`, :func:`shard_swiglu`) and, with ``vocab``, its
    share of the vocabulary's embedding rows and output head (:func:`shard_vocab`: one
    all_sum of (B, L, hidden) and one all_gather of the logits more); norms shared. Same
    call signature and logits as the model (within the all_sums' rounding); run it on
    every rank with the same inputs. Slices are views where the backend has them (NumPy:
    of the memory-mapped checkpoint), so sharding a model loaded on NumPy and then moving
    it (:func:`to_backend`) copies only this rank's share. Every split is checked first:
    ValueError naming the sizes, TypeError for another kind of model; the model itself on
    a group of one."""
    group = _check_group(group)
    layers = getattr(model, "layers", None)
    if not dataclasses.is_dataclass(model) or isinstance(model, type) or not isinstance(layers, list):
        raise TypeError(f"shard takes a model with a list of layers (such as Qwen3), got {type(model).__name__}")
    for i, layer in enumerate(layers):  # nn re-exports this module: its layers are known by their fields
        attn, mlp = getattr(layer, "self_attn", None), getattr(layer, "mlp", None)
        if not (hasattr(attn, "n_kv_heads") and hasattr(attn, "qkv_proj") and hasattr(mlp, "gate_up_proj")):
            raise TypeError(f"shard: layer {i} needs an nn.Attention self_attn and an nn.SwiGLU mlp")
    if group.size == 1:
        return model
    new = [
        dataclasses.replace(
            layer, self_attn=shard_attention(layer.self_attn, group), mlp=shard_swiglu(layer.mlp, group)
        )
        for layer in layers
    ]
    return dataclasses.replace(model, layers=new, **(shard_vocab(model, group) if vocab else {}))


def bytes_per_token(model: Any, group: Group) -> int:
    """The bytes this rank hands to ``group``'s collectives for one token through a sharded
    language model (``model(ids, cache)``: its layers and output head), counted on one eager
    forward pass of one token with a fresh cache. (Inside :func:`arrayq.compile`'d code the
    group counts a collective once, when it is traced: count this way instead.)"""
    ids = aq.to_backend(np.zeros((1, 1), np.int32), group.backend)
    before = group.payload_bytes
    aq.eval(model(ids, model.make_cache()))
    counted = group.payload_bytes - before
    group.payload_bytes = before
    return counted


def to_backend(model: Any, backend: Any, device: Any = None) -> Any:
    """:func:`arrayq.to_backend` for a model holding :class:`~arrayq.distributed.Group`
    objects (a sharded one): every array moved to ``backend`` and ``device``, the groups
    kept as they are (they belong to the job, not to a backend)."""
    if isinstance(model, Group):
        return model
    if isinstance(model, list):
        return [to_backend(v, backend, device) for v in model]
    if dataclasses.is_dataclass(model) and not isinstance(model, (type, QuantizedWeight)):
        changes = {
            f.name: to_backend(getattr(model, f.name), backend, device) for f in dataclasses.fields(model) if f.init
        }
        return dataclasses.replace(model, **changes)
    return aq.to_backend(model, backend, device)


__all__ = [
    "GatheredLinear",
    "RowShardedLinear",
    "VocabShardedEmbedding",
    "bytes_per_token",
    "column_sharded",
    "row_sharded",
    "shard",
    "shard_attention",
    "shard_swiglu",
    "shard_vocab",
    "to_backend",
]
