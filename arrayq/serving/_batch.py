"""One decode step for B sequences of different lengths, in one padded KV cache.

The dense work of a step (the norms, every projection, the MLP and the output head) runs
once on the (B, 1, hidden) activations: one quantized matmul with M = B per weight, where
a single sequence's step is a matrix-vector product. Attention runs once per layer too,
over a :class:`BatchCache`: per layer one buffer (B, Hkv, capacity, D) of keys and one of
values, row i holding sequence i's positions followed by padding, and a padding mask
(:func:`arrayq.nn.padding_mask`) that hides each row's padding. Rotary positions take
each row's own position from one table per step. The masked keys get exactly zero
weight, so a row's attention is the single-sequence one; the NumPy backend's attention
kernel reads each row's own keys only, as it does for a sequence alone.

The model is a decoder of the Qwen3/Llama layout: ``embed_tokens``, ``layers`` (each with
``input_layernorm``, ``self_attn`` (an :class:`arrayq.nn.Attention`),
``post_attention_layernorm`` and ``mlp``), ``logits(h)`` and ``dtype``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

import arrayq as aq

from .. import nn


def supports(model: Any) -> bool:
    """Whether :func:`decode_step` can run ``model`` (the layout in the module docstring);
    others are stepped one sequence at a time through ``model.hidden``."""
    layers = getattr(model, "layers", None)
    needed = ("input_layernorm", "self_attn", "post_attention_layernorm", "mlp")
    return (
        isinstance(layers, (list, tuple))
        and hasattr(model, "embed_tokens")
        and all(all(hasattr(layer, n) for n in needed) for layer in layers)
        and all(isinstance(layer.self_attn, nn.Attention) and layer.self_attn.causal for layer in layers)
    )


class BatchCache:
    """The KV caches of the sequences a decode step carries, row i for sequence i: per
    layer, keys and values (rows, Hkv, capacity, D) in one buffer each, written in place
    (the backend's arrays must take slice assignment, as NumPy's and MLX's do), and
    ``lengths[i]``, the positions row i holds. Rows beyond ``rows`` and positions grow by
    doubling.
    :meth:`add` copies a prefilled sequence in as the last row; :meth:`remove` takes a row
    out, moving the last row into its place (the batch order changes: the caller keeps its
    own list in step, as the serving engine does)."""

    def __init__(self, layers: int, rows: int = 1):
        """``layers``: the model's layer count; ``rows``: the rows to allocate at the first
        :meth:`add` (the most sequences expected, so that the buffers need not grow)."""
        self._rows = max(1, int(rows))
        self.lengths: list[int] = []
        self._keys: list[Any] = [None] * layers
        self._values: list[Any] = [None] * layers

    def __len__(self) -> int:
        return len(self.lengths)

    def add(self, cache: Sequence[nn.KVCache]) -> None:
        """Sequence ``cache`` (its per-layer caches, each holding B = 1 and at least one
        position) as the last row. ValueError for another number of layers or an empty
        cache."""
        if len(cache) != len(self._keys) or cache[0].keys is None or int(cache[0].keys.shape[0]) != 1:
            raise ValueError(f"need a prefilled cache of one sequence with {len(self._keys)} layers")
        row, length = len(self.lengths), cache[0].offset
        self._reserve(cache[0].keys, max(row + 1, self._rows), length + 1)
        for n, c in enumerate(cache):
            self._keys[n][row : row + 1, :, :length] = c.keys
            self._values[n][row : row + 1, :, :length] = c.values
        self.lengths.append(length)

    def remove(self, row: int) -> None:
        """Take row ``row`` out; the last row moves into its place. The buffers are freed
        with the last row."""
        last = len(self.lengths) - 1
        if row != last:
            length = self.lengths[last]
            for buffers in (self._keys, self._values):
                for b in buffers:
                    b[row : row + 1, :, :length] = b[last : last + 1, :, :length]
            self.lengths[row] = length
        self.lengths.pop()
        if not self.lengths:  # the buffers go with the last sequence (the next one may be shorter)
            self._keys = [None] * len(self._keys)
            self._values = [None] * len(self._values)

    def _reserve(self, like: Any, rows: int, positions: int) -> None:
        """Room for ``rows`` rows of ``positions`` positions (doubling), keeping what is held."""
        held = self._keys[0]
        have = (0, 0) if held is None else (int(held.shape[0]), int(held.shape[2]))
        if rows <= have[0] and positions <= have[1]:
            return
        rows, positions = (size if n <= size else max(n, 2 * size) for n, size in zip((rows, positions), have))
        shape = (rows, int(like.shape[1]), positions, int(like.shape[3]))
        used, longest = len(self.lengths), max(self.lengths, default=0)
        for buffers in (self._keys, self._values):
            for n, old in enumerate(buffers):
                new = aq.zeros(shape, dtype=aq.dtype(like), like=like)
                if old is not None and used:
                    new[:used, :, :longest] = old[:used, :, :longest]
                buffers[n] = new

    def _step(self, layer: int, keys: Any, values: Any, rows: Any, positions: Any, span: int) -> tuple[Any, Any]:
        """Write each row's new key/value (B, Hkv, 1, D) at its position; return the first
        ``span`` positions of every row."""
        b = len(self.lengths)
        self._keys[layer][rows, :, positions] = keys[:, :, 0]
        self._values[layer][rows, :, positions] = values[:, :, 0]
        return self._keys[layer][:b, :, :span], self._values[layer][:b, :, :span]


def _attention(attn: nn.Attention, x: Any, layer: int, cache: BatchCache, step: dict) -> Any:
    """``attn`` on x (B, 1, hidden) whose row i is the next position of the cache's row i
    (written there): the projections, rotary positions and attention each run once."""
    b, hd = int(x.shape[0]), attn.head_dim
    q, k, v = attn.heads(x)
    if attn.rope is not None:
        tables = step["rope"](attn.rope)
        q = nn.rope_reference(q, attn.rope.dims, attn.rope.traditional, tables)
        k = nn.rope_reference(k, attn.rope.dims, attn.rope.traditional, tables)
    keys, values = cache._step(layer, k, v, step["rows"], step["positions"], step["span"])
    scale = attn.scale if attn.scale is not None else hd**-0.5
    out = nn.scaled_dot_product_attention(q, keys, values, scale=scale, mask=step["mask"])  # (B, H, 1, hd)
    return attn.o_proj(aq.reshape(aq.permute_dims(out, (0, 2, 1, 3)), (b, 1, attn.n_heads * hd)))


def decode_step(model: Any, tokens: Sequence[int], cache: BatchCache, like: Any) -> Any:
    """Logits (B, vocab) of the next position of the B sequences in ``cache``: ``tokens[i]``
    is row i's newest token, appended to its row (its length grows by one). ``like``: an
    array of the model's backend and device, where the ids are made. Each row is the
    logits its sequence alone would get (the same attention over its own keys; the batched
    projections compute each row as its own product). Raises ValueError for no sequences
    or a token count other than the cache's rows."""
    if not tokens or len(tokens) != len(cache):
        raise ValueError(f"need one token per cached sequence and at least one, got {len(tokens)} and {len(cache)}")
    positions = list(cache.lengths)
    span = max(positions) + 1
    cache._reserve(cache._keys[0], len(positions), span)
    lengths = [p + 1 for p in positions]
    # (every row as long as the span: nothing to hide, no mask, as a sequence alone has)
    mask = None if min(lengths) == span else nn.padding_mask(lengths=lengths, length=span, dtype=model.dtype)
    step: dict = {
        "rows": aq.asarray(np.arange(len(positions)), like=like),
        "positions": aq.asarray(np.asarray(positions), like=like),
        "span": span,
        "mask": None if mask is None else aq.asarray(mask, like=like),
        "rope": _tables(positions, like),
    }
    ids = aq.asarray([[int(t)] for t in tokens], dtype=aq.int32, like=like)
    h = aq.astype(model.embed_tokens(ids), model.dtype, copy=False)
    for n, layer in enumerate(model.layers):
        h = aq.add(h, _attention(layer.self_attn, layer.input_layernorm(h), n, cache, step))
        h = aq.add(h, layer.mlp(layer.post_attention_layernorm(h)))
    cache.lengths[:] = lengths
    return model.logits(h)[:, 0]


def _tables(positions: list[int], like: Any) -> Any:
    """A function of a RoPE returning (cos, sin) (B, 1, 1, dims/2) on ``like``'s backend for
    row i at ``positions[i]``, made once per step (every layer's RoPE is the same)."""
    made: dict = {}

    def tables(rope: nn.RoPE) -> tuple[Any, Any]:
        key = (rope.dims, rope.base, rope.scale)
        if key not in made:
            rows = [rope.cos_sin(p, 1) for p in positions]
            made[key] = tuple(aq.asarray(np.stack([r[i] for r in rows])[:, None, None, 0], like=like) for i in (0, 1))
        return made[key]

    return tables


__all__ = ["BatchCache", "decode_step", "supports"]
