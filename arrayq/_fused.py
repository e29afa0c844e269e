"""Fused steps of a decoder layer, each an optional native op of the backend contract with
a reference composed of :mod:`arrayq.nn`'s own functions (so every backend runs it, and the
reference is exactly the unfused layer): ``qkv_heads`` (a fused q/k/v projection's output
split into heads, q and k through their RMS norms and rotary positions) and
``add_rms_norm`` (a residual sum and its RMS norm). ``arrayq.nn`` re-exports both."""

from __future__ import annotations

from typing import Any

import arrayq as aq

from ._dispatch import resolve
from ._functional import check_rope_dims, rms_norm, rope, rope_offset


def qkv_heads(
    qkv: Any,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    *,
    q_weight: Any,
    k_weight: Any,
    eps: float,
    rope_dims: int,
    traditional: bool = False,
    base: float = 10000.0,
    scale: float = 1.0,
    offset: Any = 0,
    tables: Any = None,
) -> tuple[Any, Any, Any]:
    """The heads of a fused q/k/v projection, as :class:`~arrayq.nn.Attention` makes them
    for a layer with per-head q/k RMS norms and rotary positions (Qwen3).

    ``qkv``: (B, L, (n_heads + 2 n_kv_heads) * head_dim) floating, the q, k and v
    projections side by side (:func:`~arrayq.nn.fuse_linear`'s output). ``q_weight``,
    ``k_weight``: the (head_dim,) RMS norm weights of q's and k's heads, ``eps`` their
    epsilon. ``rope_dims``, ``traditional``, ``base``, ``scale``, ``offset``, ``tables``: as
    :func:`~arrayq.nn.rope` takes them. Returns q (B, n_heads, L, head_dim) and k, v
    (B, n_kv_heads, L, head_dim) in qkv's dtype: q = rope(rms_norm(q's heads)), likewise k,
    v's heads as they are.

    The backend's ``qkv_heads`` runs it where it has one (NumPy's native kernels: float32 in
    one pass, bit-identical to the unfused native kernels); the reference is
    :func:`qkv_heads_reference`. Raises ValueError where qkv is not 3-D or its last axis is
    not (n_heads + 2 n_kv_heads) * head_dim, a weight is not (head_dim,), and for rope's
    errors (dims odd, not positive or above head_dim; a negative offset); TypeError where
    qkv is not real floating."""
    shape = tuple(int(n) for n in qkv.shape)
    width = (n_heads + 2 * n_kv_heads) * head_dim
    if len(shape) != 3 or n_heads < 1 or n_kv_heads < 1 or head_dim < 1 or shape[-1] != width:
        raise ValueError(
            f"qkv_heads takes qkv (batch, length, (n_heads + 2 n_kv_heads) * head_dim) = (..., {width}) for "
            f"{n_heads} q heads, {n_kv_heads} kv heads of {head_dim}, got {shape}"
        )
    if not aq.isdtype(aq.dtype(qkv), "real floating"):
        raise TypeError(f"qkv_heads takes a real floating qkv, got {aq.dtype(qkv)}")
    for name, w in (("q_weight", q_weight), ("k_weight", k_weight)):
        if tuple(int(n) for n in w.shape) != (head_dim,):
            raise ValueError(f"qkv_heads {name} must have shape ({head_dim},), got {tuple(w.shape)}")
    check_rope_dims(rope_dims, head_dim)
    backend, (qkv, q_weight, k_weight) = resolve(qkv, q_weight, k_weight)
    offset = rope_offset(backend, offset)
    out = backend.qkv_heads(
        qkv, n_heads, n_kv_heads, head_dim, q_weight, k_weight, float(eps), int(rope_dims), bool(traditional),
        float(base), float(scale), offset,
    )  # fmt: skip
    if out is not NotImplemented:
        return tuple(out)
    rope_args = {"traditional": traditional, "base": base, "scale": scale, "offset": offset, "tables": tables}
    return qkv_heads_reference(qkv, n_heads, n_kv_heads, head_dim, q_weight, k_weight, eps, rope_dims, rope_args)


def qkv_heads_reference(
    qkv: Any,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    q_weight: Any,
    k_weight: Any,
    eps: float,
    rope_dims: int,
    rope_args: dict[str, Any],
) -> tuple[Any, Any, Any]:
    """:func:`qkv_heads` written with :mod:`arrayq.nn`'s functions (the contract's default),
    as :class:`~arrayq.nn.Attention` computes it unfused: the projection sliced, each part
    reshaped to (B, L, heads, head_dim), q's and k's through :func:`~arrayq.nn.rms_norm`,
    each moved to (B, heads, L, head_dim), q and k through :func:`~arrayq.nn.rope`
    (``rope_args``: its keyword arguments)."""
    b, length = int(qkv.shape[0]), int(qkv.shape[1])
    nq, nk = n_heads * head_dim, n_kv_heads * head_dim

    def heads(y: Any, n: int) -> Any:
        return aq.reshape(y, (b, length, n, head_dim))

    def rotated(y: Any, n: int, weight: Any) -> Any:
        return rope(aq.permute_dims(rms_norm(heads(y, n), weight, eps), (0, 2, 1, 3)), rope_dims, **rope_args)

    q = rotated(qkv[..., :nq], n_heads, q_weight)
    k = rotated(qkv[..., nq : nq + nk], n_kv_heads, k_weight)
    return q, k, aq.permute_dims(heads(qkv[..., nq + nk :], n_kv_heads), (0, 2, 1, 3))


def attention_heads(layer: Any, x: Any, offset: Any, tables: Any) -> tuple[Any, Any, Any]:
    """q, k, v of :class:`~arrayq.nn.Attention` ``layer`` for ``x`` (B, L, hidden), after
    rotary positions at ``offset`` (``tables``: as :meth:`~arrayq.nn.RoPE.__call__` takes
    them): one :func:`qkv_heads` where the layer has ``qkv_proj``, q/k norms with weights and
    one epsilon, and a RoPE; else :meth:`~arrayq.nn.Attention.heads` then the RoPE."""
    qn, kn, r = layer.q_norm, layer.k_norm, layer.rope
    if layer.qkv_proj is not None and qn is not None and kn is not None and r is not None:
        if qn.weight is not None and kn.weight is not None and qn.eps == kn.eps:
            return qkv_heads(
                layer.qkv_proj(x), layer.n_heads, layer.n_kv_heads, layer.head_dim, q_weight=qn.weight,
                k_weight=kn.weight, eps=qn.eps, rope_dims=r.dims, traditional=r.traditional, base=r.base,
                scale=r.scale, offset=offset, tables=tables,
            )  # fmt: skip
    q, k, v = layer.heads(x)
    return (q, k, v) if r is None else (r(q, offset, tables), r(k, offset, tables), v)


def add_rms_norm(x: Any, y: Any, weight: Any, eps: float = 1e-6) -> tuple[Any, Any]:
    """A residual sum and its RMS norm: ``(s, rms_norm(s, weight, eps))`` for ``s = x + y``
    (a pre-norm decoder's ``h = x + attention(...)`` and the MLP's input norm of h).
    ``x``, ``y``: (..., D) floating, one shape and dtype; ``weight``: (D,), or None for
    none. Both results have x's shape and dtype.

    The backend's ``add_rms_norm`` runs it where it has one (NumPy's native kernels: float32
    in one pass, bit-identical to the native add then rms_norm); the reference is
    :func:`add_rms_norm_reference`. Raises ValueError where x and y differ in shape or dtype
    or weight is not (D,), TypeError where they are not real floating."""
    if tuple(x.shape) != tuple(y.shape) or aq.dtype(x) != aq.dtype(y) or not len(x.shape):
        raise ValueError(
            f"add_rms_norm takes x and y of one shape and dtype (at least 1-D), got {tuple(x.shape)} {aq.dtype(x)} "
            f"and {tuple(y.shape)} {aq.dtype(y)}"
        )
    if not aq.isdtype(aq.dtype(x), "real floating"):
        raise TypeError(f"add_rms_norm takes real floating arrays, got {aq.dtype(x)}")
    if weight is not None and tuple(int(n) for n in weight.shape) != (int(x.shape[-1]),):
        raise ValueError(f"add_rms_norm weight must have shape ({int(x.shape[-1])},), got {tuple(weight.shape)}")
    backend, (x, y, weight) = resolve(x, y, weight)
    out = backend.add_rms_norm(x, y, weight, float(eps))
    if out is not NotImplemented:
        return tuple(out)
    return add_rms_norm_reference(x, y, weight, float(eps))


def add_rms_norm_reference(x: Any, y: Any, weight: Any, eps: float) -> tuple[Any, Any]:
    """:func:`add_rms_norm` written with arrayq's ops (the contract's default):
    ``s = add(x, y)``, then :func:`~arrayq.nn.rms_norm` of s."""
    s = aq.add(x, y)
    return s, rms_norm(s, weight, eps)
