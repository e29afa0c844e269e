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

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

import arrayq as aq

from .. import nn
from .._fused import attention_heads
from .._kv_cache import _kv_dtype

#: The fewest positions of the batch cache's buffers and of the compiled step's attention
#: window; both are powers of two (each window and buffer size is a signature of the step).
WINDOW = 256


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
    ``lengths[i]``, the positions row i holds; every position past a row's length is zero
    (as in fresh buffers). Rows beyond ``rows`` and positions grow by doubling; the
    positions are a power of two, at least :data:`WINDOW`. :meth:`add` copies a prefilled
    sequence in as the last row; :meth:`remove` takes a row out, moving the last row into
    its place (the batch order changes: the caller keeps its own list in step, as the
    serving engine does). Buffers of :data:`WINDOW` positions stay when the last row
    leaves, for the next sequences (allocating and zeroing them again cost a single
    client's request more than its decode steps: docs/serving.md, session 11); grown ones
    go, so that a long sequence's memory is not held. ``dtype``: None (the buffers take
    the prefilled caches' dtype), or a floating dtype to store keys and values in (e.g.
    ``"float16"``, half the bytes of float32 for attention to read): every position is
    rounded to it once, when written, as :class:`arrayq.nn.FixedKVCache` does."""

    def __init__(self, layers: int, rows: int = 1, dtype: Any = None):
        """``layers``: the model's layer count; ``rows``: the rows to allocate at the first
        :meth:`add` (the most sequences expected, so that the buffers need not grow);
        ``dtype``: see the class (TypeError for a dtype that is not floating)."""
        self._rows = max(1, int(rows))
        self.dtype = None if dtype is None else _kv_dtype(dtype)
        self.lengths: list[int] = []
        self._keys: list[Any] = [None] * layers
        self._values: list[Any] = [None] * layers
        self._written: list[int] = []  # per free row (index >= len(lengths)): leading positions it may hold
        self._held: tuple[Any, Any] | None = None  # the model and its compiled step (decode_step)

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
        self._zero(row, length, self._written[row])  # what an earlier sequence left past this one
        self.lengths.append(length)

    def remove(self, row: int) -> None:
        """Take row ``row`` out; the last row moves into its place. Buffers of more than
        :data:`WINDOW` positions are freed with the last row."""
        last = len(self.lengths) - 1
        if row != last:
            length, before = self.lengths[last], self.lengths[row]
            for buffers in (self._keys, self._values):
                for b in buffers:
                    b[row : row + 1, :, :length] = b[last : last + 1, :, :length]
            self._zero(row, length, before)
            self.lengths[row] = length
        self._written[last] = max(self._written[last], self.lengths[last])
        self.lengths.pop()
        if not self.lengths and int(self._keys[0].shape[2]) > WINDOW:  # (the next sequences may be shorter)
            self._keys = [None] * len(self._keys)
            self._values = [None] * len(self._values)
            self._written = []

    def _zero(self, row: int, start: int, stop: int) -> None:
        """Positions [start, stop) of ``row`` back to zero, in every buffer."""
        if stop > start:
            for buffers in (self._keys, self._values):
                for b in buffers:
                    b[row : row + 1, :, start:stop] = 0

    def _reserve(self, like: Any, rows: int, positions: int) -> None:
        """Room for ``rows`` rows of ``positions`` positions (doubling), keeping what is held."""
        held = self._keys[0]
        have = (0, 0) if held is None else (int(held.shape[0]), int(held.shape[2]))
        if rows <= have[0] and positions <= have[1]:
            return
        rows, positions = (size if n <= size else max(n, 2 * size) for n, size in zip((rows, positions), have))
        positions = _window(positions)  # (a few sizes: a few signatures of the compiled step)
        shape = (rows, int(like.shape[1]), positions, int(like.shape[3]))
        used, longest = len(self.lengths), max(self.lengths, default=0)
        for buffers in (self._keys, self._values):
            for n, old in enumerate(buffers):
                new = aq.zeros(shape, dtype=aq.dtype(like) if self.dtype is None else self.dtype, like=like)
                if old is not None and used:
                    new[:used, :, :longest] = old[:used, :, :longest]
                buffers[n] = new
        self._written = [0] * rows  # (fresh rows; the rows in use copied, zero past their lengths)

    def compiled_info(self) -> Any:
        """The compiled step's :meth:`arrayq.Compiled.cache_info` (its signatures, plan hits
        and misses), or None before the first compiled :func:`decode_step`."""
        return None if self._held is None else self._held[1].cache_info()

    def _compiled(self, model: Any) -> Any:
        """:func:`_forward` of ``model``, :func:`arrayq.compile`'d, kept here while the model
        is the same object (its weights are closed over, read by identity)."""
        held = self._held
        if held is None or held[0] is not model:
            held = (model, aq.compile(functools.partial(_forward, model)))
            self._held = held
        return held[1]


def _forward(model: Any, ids: Any, keys: list, values: list, step: dict) -> Any:
    """Logits (B, vocab) of the B sequences' next position: ``ids`` (B, 1) their newest
    tokens, ``keys``/``values`` the cache buffers per layer (rows, Hkv, capacity, D), row i
    written at ``step["positions"][i]`` and attended over its first ``step["span"]``
    positions under ``step["mask"]``; the same code eager and traced (:func:`arrayq.compile`)."""
    b, tables = int(ids.shape[0]), step["tables"]
    h = aq.astype(model.embed_tokens(ids, step["index_mode"]), model.dtype, copy=False)
    for n, layer in enumerate(model.layers):
        attn = layer.self_attn
        q, k, v = attn.heads(layer.input_layernorm(h))
        if attn.rope is not None:
            t = tables[(attn.rope.dims, attn.rope.base, attn.rope.scale)]
            q = nn.rope_reference(q, attn.rope.dims, attn.rope.traditional, t)
            k = nn.rope_reference(k, attn.rope.dims, attn.rope.traditional, t)
        stored = aq.dtype(keys[n])  # (a float16 cache: converted first, by the backend's own astype)
        keys[n][step["rows"], :, step["positions"]] = aq.astype(k[:, :, 0], stored, copy=False)
        values[n][step["rows"], :, step["positions"]] = aq.astype(v[:, :, 0], stored, copy=False)
        span = step["span"]
        scale = attn.scale if attn.scale is not None else attn.head_dim**-0.5
        out = nn.scaled_dot_product_attention(
            q, keys[n][:b, :, :span], values[n][:b, :, :span], scale=scale, mask=step["mask"]
        )  # (B, H, 1, hd)
        out = attn.o_proj(aq.reshape(aq.permute_dims(out, (0, 2, 1, 3)), (b, 1, attn.n_heads * attn.head_dim)))
        h = aq.add(h, out)
        h = aq.add(h, layer.mlp(layer.post_attention_layernorm(h)))
    return model.logits(h)[:, 0]


def decode_step(model: Any, tokens: Sequence[int], cache: BatchCache, like: Any, *, compiled: bool = False) -> Any:
    """Logits (B, vocab) of the next position of the B sequences in ``cache``: ``tokens[i]``
    is row i's newest token, appended to its row (its length grows by one). ``like``: an
    array of the model's backend and device, where the ids are made. Each row is the
    logits its sequence alone would get (the same attention over its own keys; the batched
    projections compute each row as its own product).

    ``compiled``: run the step through :func:`arrayq.compile` (for a backend with recorded
    plans, NumPy: the frontend's Python is recorded once per signature and replayed), with
    the ids, the cache buffers (written in place), the rows' positions, rotary tables and
    padding mask as inputs; attention then spans a window of positions, the power of two
    of at least :data:`WINDOW` that holds the longest row, or the buffer where that is
    shorter (the padding mask hides each row's rest), so that a signature serves many
    steps: one per batch size, window and buffer size, all powers of two. The same logits as eager where the backend's
    attention reads only each row's own keys (NumPy's kernel does). Raises ValueError for
    no sequences, a token count other than the cache's rows, or ``compiled`` on a backend
    without recorded plans (a compiler's trace, MLX's or JAX's, does not write the
    buffers in place)."""
    if not tokens or len(tokens) != len(cache):
        raise ValueError(f"need one token per cached sequence and at least one, got {len(tokens)} and {len(cache)}")
    backend = aq.backend_of(like)
    if compiled and not getattr(backend, "compile_records_plan", False):
        name = getattr(backend, "name", None)
        raise ValueError(f"compiled=True needs a backend of recorded plans (NumPy), not {name}")
    positions = list(cache.lengths)
    span = max(positions) + 1
    cache._reserve(cache._keys[0], len(positions), span)
    if compiled:  # a window of positions (hidden past each row's length) instead of the exact span
        span = min(int(cache._keys[0].shape[2]), _window(span))
    lengths = [p + 1 for p in positions]
    # (every row as long as the span: nothing to hide, no mask, as a sequence alone has)
    mask = None if min(lengths) == span else nn.padding_mask(lengths=lengths, length=span, dtype=model.dtype)
    step: dict = {
        "rows": aq.asarray(np.arange(len(positions)), like=like),
        "positions": aq.asarray(np.asarray(positions), like=like),
        "span": span,
        "mask": None if mask is None else aq.asarray(mask, like=like),
        "tables": _tables(model, positions, like),
        "index_mode": "raise",
    }
    ids = aq.asarray([[int(t)] for t in tokens], dtype=aq.int32, like=like)
    if compiled:
        step["index_mode"] = "clip"  # (checked above: in range)
        logits = cache._compiled(model)(ids, cache._keys, cache._values, step)
    else:
        logits = _forward(model, ids, cache._keys, cache._values, step)
    cache.lengths[:] = lengths
    return logits


def token_ids(values: Sequence[int], vocab: int, what: str) -> list[int]:
    """``values`` as a list of ints in [0, vocab); ValueError otherwise."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(f"{what} must be a list of token ids, got {type(values).__name__}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{what} must contain only integer token ids")
    ids = [int(v) for v in values]
    if ids and (min(ids) < 0 or max(ids) >= vocab):
        raise ValueError(f"{what} ids must lie in [0, {vocab}), got values from {min(ids)} to {max(ids)}")
    return ids


def prefill(model: Any, prompts: Sequence[Sequence[int]], cache: BatchCache, like: Any) -> Any:
    """Prefill the B ``prompts`` together in one forward pass and append them to ``cache``
    as its last B rows (row ``len(cache) + i`` holds prompt i, its length the prompt's);
    return the logits (B, vocab) of each prompt's next position. ``like``: an array of the
    model's backend and device.

    The prompts are right-padded to the longest (L tokens): the embedding, the norms, the
    q/k/v heads and rotary positions (the model's own heads, as its attention layer makes them),
    every projection and the MLP run once on (B, L, hidden), one quantized matmul with
    M = B L per weight; attention runs per prompt over exactly its own keys (causal, as a
    prompt alone), and the padding's keys are never written. So each row is the forward
    pass the prompt alone gets, where the backend's quantized matmul computes a row of x
    the same way whatever the number of rows (NumPy with int8 activations does; with float32
    activations its kernel changes at 8 rows, docs/serving.md). Raises ValueError for no
    prompts or an empty one, a prompt that is not a list of integer ids, or ids outside
    the vocabulary (nothing is written then)."""
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
        raise ValueError(f"prefill takes a list of prompts, got {type(prompts).__name__}")
    checked = [token_ids(p, int(model.config.vocab_size), "prompt") for p in prompts]
    if not checked or not all(checked):
        raise ValueError("prefill takes at least one prompt, each of at least one token")
    lengths = [len(p) for p in checked]
    b, longest, first = len(checked), max(lengths), len(cache)
    ids = aq.asarray([p + [p[-1]] * (longest - len(p)) for p in checked], dtype=aq.int32, like=like)
    h = aq.astype(model.embed_tokens(ids, "raise"), model.dtype, copy=False)
    rope, embedded = model.layers[0].self_attn.rope, h
    # (made once, at the first layer that asks: where the backend has no native rope)
    tables = functools.cache(lambda: tuple(aq.asarray(t, like=embedded) for t in rope.cos_sin(0, longest)))
    normed = model.layers[0].input_layernorm(h)
    for n, layer in enumerate(model.layers):
        attn = layer.self_attn
        q, k, v = attention_heads(attn, normed, 0, tables)  # (B, heads, L, head_dim)
        if n == 0:
            cache._reserve(k, max(first + b, cache._rows), longest + 1)
            for row in range(first, first + b):  # (a failure from here leaves these rows dirty)
                cache._written[row] = max(cache._written[row], longest)
        scale = attn.scale if attn.scale is not None else attn.head_dim**-0.5
        rows = []
        for i, length in enumerate(lengths):
            row = first + i
            cache._keys[n][row : row + 1, :, :length] = k[i : i + 1, :, :length]
            cache._values[n][row : row + 1, :, :length] = v[i : i + 1, :, :length]
            out = nn.scaled_dot_product_attention(
                q[i : i + 1, :, :length],
                k[i : i + 1, :, :length],  # (the keys as computed, as a prompt alone attends over them)
                v[i : i + 1, :, :length],
                scale=scale,
                mask="causal" if length > 1 else None,
            )  # (1, H, length, hd): the prompt's own attention
            if length < longest:  # (the padding's rows: zeros, finite, read by no real row)
                out = aq.concat([out, aq.zeros(_padding(out, longest - length), dtype=aq.dtype(out), like=out)], axis=2)
            rows.append(out)
        out = rows[0] if b == 1 else aq.concat(rows, axis=0)
        out = aq.reshape(aq.permute_dims(out, (0, 2, 1, 3)), (b, longest, attn.n_heads * attn.head_dim))
        post = layer.post_attention_layernorm
        h, h_normed = nn.add_rms_norm(h, attn.o_proj(out), post.weight, post.eps)
        mlp_out = layer.mlp(h_normed)
        if n + 1 < len(model.layers):  # (the sum fused with the next layer's norm, as Qwen3.hidden does)
            following = model.layers[n + 1].input_layernorm
            h, normed = nn.add_rms_norm(h, mlp_out, following.weight, following.eps)
        else:
            h = aq.add(h, mlp_out)
    last = h[:, -1] if min(lengths) == longest else aq.stack([h[i, length - 1] for i, length in enumerate(lengths)])
    logits = model.logits(last)
    for i, length in enumerate(lengths):
        cache._zero(first + i, length, cache._written[first + i])  # what an earlier sequence left past it
    cache.lengths.extend(lengths)
    return logits


def _padding(out: Any, positions: int) -> tuple[int, ...]:
    """The shape of ``positions`` more positions of attention output ``out`` (1, H, L, hd)."""
    return (int(out.shape[0]), int(out.shape[1]), positions, int(out.shape[3]))


def _window(positions: int) -> int:
    """The power of two of at least ``positions`` and :data:`WINDOW` positions."""
    return max(WINDOW, 1 << (positions - 1).bit_length())


def _tables(model: Any, positions: list[int], like: Any) -> dict:
    """The (cos, sin) tables (B, 1, 1, dims/2) on ``like``'s backend for row i at
    ``positions[i]``, for each distinct RoPE of the model's layers (keyed by dims, base and
    scale), made once per step."""
    made: dict = {}
    for layer in model.layers:
        rope = layer.self_attn.rope
        key = None if rope is None else (rope.dims, rope.base, rope.scale)
        if key is not None and key not in made:
            rows = [rope.cos_sin(p, 1) for p in positions]
            made[key] = tuple(aq.asarray(np.stack([r[i] for r in rows])[:, None, None, 0], like=like) for i in (0, 1))
    return made


__all__ = ["WINDOW", "BatchCache", "decode_step", "prefill", "supports"]
