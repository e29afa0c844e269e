"""One decode step for B sequences of different lengths, each with its own KV cache.

The dense work of a step (the norms, every projection, the MLP and the output head) runs
once on the (B, 1, hidden) activations: one quantized matmul with M = B per weight, where
a single sequence's step is a matrix-vector product. What depends on a sequence's length
runs per sequence on its own slices: the rotary positions (its offset), the KV cache
append and the attention over its keys, through the same ``nn`` calls a single sequence
makes. No padding and no mask: a sequence never sees another's keys, and each one's
attention is the single-sequence computation.

The model is a decoder of the Qwen3/Llama layout: ``embed_tokens``, ``layers`` (each with
``input_layernorm``, ``self_attn`` (an :class:`arrayq.nn.Attention`),
``post_attention_layernorm`` and ``mlp``), ``logits(h)`` and ``dtype``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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


def _attention(attn: nn.Attention, x: Any, caches: Sequence[nn.KVCache]) -> Any:
    """``attn`` on x (B, 1, hidden) whose row i is the next position of the sequence cached
    in ``caches[i]`` (appended there). Projections run batched; rotary positions, cache and
    attention per row."""
    b, hd = int(x.shape[0]), attn.head_dim
    nq, nk = attn.n_heads * hd, attn.n_kv_heads * hd
    if attn.qkv_proj is not None:
        qkv = attn.qkv_proj(x)
        yq, yk, yv = qkv[..., :nq], qkv[..., nq : nq + nk], qkv[..., nq + nk :]
    else:
        yq, yk, yv = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)

    def heads(y: Any, n: int, norm: nn.RMSNorm | None) -> Any:  # (B, 1, n*hd) -> (B, n, 1, hd)
        y = aq.reshape(y, (b, 1, n, hd))
        return aq.permute_dims(y if norm is None else norm(y), (0, 2, 1, 3))

    q, k, v = (
        heads(yq, attn.n_heads, attn.q_norm),
        heads(yk, attn.n_kv_heads, attn.k_norm),
        heads(yv, attn.n_kv_heads, None),
    )
    scale = attn.scale if attn.scale is not None else hd**-0.5
    outs = []
    for i, cache in enumerate(caches):
        qi, ki = q[i : i + 1], k[i : i + 1]
        if attn.rope is not None:
            qi, ki = attn.rope(qi, cache.offset), attn.rope(ki, cache.offset)
        keys, values = cache.update_and_fetch(ki, v[i : i + 1])
        outs.append(nn.scaled_dot_product_attention(qi, keys, values, scale=scale))
    out = aq.concat(outs, axis=0) if b > 1 else outs[0]  # (B, H, 1, hd)
    return attn.o_proj(aq.reshape(aq.permute_dims(out, (0, 2, 1, 3)), (b, 1, nq)))


def decode_step(model: Any, tokens: Sequence[int], caches: Sequence[Sequence[nn.KVCache]], like: Any) -> Any:
    """Logits (B, vocab) of the next position of B sequences: ``tokens[i]`` is sequence i's
    newest token, ``caches[i]`` its per-layer KV caches (holding every earlier position;
    the new one is appended). ``like``: an array of the model's backend and device, where
    the ids are made. The rows are the logits each sequence alone would get (the same
    single-sequence attention; the batched projections compute each row as its own
    product). Raises ValueError for no sequences or a cache of the wrong length."""
    if not tokens or len(tokens) != len(caches):
        raise ValueError(f"need one cache per token and at least one token, got {len(tokens)} and {len(caches)}")
    if any(len(c) != len(model.layers) for c in caches):
        raise ValueError(f"each sequence needs one cache per layer ({len(model.layers)})")
    ids = aq.asarray([[int(t)] for t in tokens], dtype=aq.int32, like=like)
    h = aq.astype(model.embed_tokens(ids), model.dtype, copy=False)
    for n, layer in enumerate(model.layers):
        h = aq.add(h, _attention(layer.self_attn, layer.input_layernorm(h), [c[n] for c in caches]))
        h = aq.add(h, layer.mlp(layer.post_attention_layernorm(h)))
    return model.logits(h)[:, 0]


__all__ = ["decode_step", "supports"]
