"""The functional half of :mod:`arrayq.nn`: activations, norms and attention, with the
references the contract's optional native ops fall back to (``rms_norm_reference``,
``attention_reference``). Statistics are computed in float32 (float64 stays float64) and
returned in the input's dtype; arithmetic on arrays is written as calls (``aq.add``), each
the backend's primitive. ``arrayq.nn`` re-exports everything here."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import arrayq as aq

from ._dispatch import resolve

_LOW_PRECISION = ("float16", "bfloat16")


# ---------------------------------------------------------------------- helpers


def _like(a: np.ndarray, x: Any) -> Any:
    """The host (NumPy) array ``a`` on ``x``'s backend and device (``a`` itself for NumPy)."""
    return aq.asarray(a, like=x)


def _wide(x: Any) -> tuple[Any, Any]:
    """``x`` in float32 when it is float16/bfloat16, and the dtype to return results in."""
    dtype = aq.dtype(x)
    return (aq.astype(x, aq.float32), dtype) if dtype.name in _LOW_PRECISION else (x, dtype)


def _narrow(x: Any, dtype: Any) -> Any:
    # (the dtype check first: astype(copy=False) would return x too, after a dispatch)
    return x if aq.dtype(x) == dtype else aq.astype(x, dtype)


# ---------------------------------------------------------------------- functions


def softmax(x: Any, axis: int = -1) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed stably (the maximum is subtracted
    first) in float32 or wider; same shape and dtype as ``x`` (floating). Entries equal to
    ``-inf`` get probability 0; a slice that is all ``-inf`` gives NaN."""
    xw, dtype = _wide(x)
    e = aq.exp(aq.subtract(xw, aq.max(xw, axis=axis, keepdims=True)))
    return _narrow(aq.divide(e, aq.sum(e, axis=axis, keepdims=True)), dtype)


def sigmoid(x: Any) -> Any:
    """``1 / (1 + exp(-x))`` elementwise, without overflow for large ``|x|``."""
    z = aq.exp(aq.negative(aq.abs(x)))
    d = aq.add(z, 1)
    return aq.where(aq.greater_equal(x, 0), aq.divide(1, d), aq.divide(z, d))


def silu(x: Any) -> Any:
    """SiLU (swish), ``x * sigmoid(x)``, elementwise; same shape and dtype as ``x``."""
    return aq.multiply(x, sigmoid(x))


def swiglu(gate: Any, up: Any = None) -> Any:
    """SwiGLU's gate, ``silu(gate) * up`` elementwise (the gated MLP of Llama/Qwen: the
    input of its down projection). ``gate``, ``up``: floating arrays of one shape and
    dtype; same shape and dtype out. With ``up`` None, ``gate`` holds both, as a fused
    gate/up projection gives them: (..., 2N), gate the first N columns of its last axis and
    up the last N; (..., N) out. Raises ValueError where the shapes or dtypes differ (or
    the one array's last axis is not of even length), TypeError where an argument is not an
    array of a loaded backend or the dtype is not a real floating one.

    The backend's ``swiglu`` (``swiglu_halves`` for one array) runs it where it has one
    (NumPy's native kernels: float32 in one pass); the reference is :func:`swiglu_reference`
    (of the two halves)."""
    if up is None:
        return _swiglu_halves(gate)
    backend, (gate, up) = resolve(gate, up)  # (first: a TypeError naming what is not an array)
    if tuple(gate.shape) != tuple(up.shape) or aq.dtype(gate) != aq.dtype(up):
        raise ValueError(
            f"swiglu takes gate and up of one shape and dtype, got {tuple(gate.shape)} {aq.dtype(gate)} "
            f"and {tuple(up.shape)} {aq.dtype(up)}"
        )
    if not aq.isdtype(aq.dtype(gate), "real floating"):
        raise TypeError(f"swiglu takes real floating arrays, got {aq.dtype(gate)}")
    out = backend.swiglu(gate, up)
    return swiglu_reference(gate, up) if out is NotImplemented else out


def _swiglu_halves(gate_up: Any) -> Any:
    backend, (gate_up,) = resolve(gate_up)
    shape = tuple(gate_up.shape)
    if not shape or shape[-1] % 2:
        raise ValueError(
            f"swiglu of one array takes gate and up side by side, (..., 2N), got shape {shape}: "
            "pass gate and up as two arrays, or an array whose last axis has even length"
        )
    if not aq.isdtype(aq.dtype(gate_up), "real floating"):
        raise TypeError(f"swiglu takes real floating arrays, got {aq.dtype(gate_up)}")
    out = backend.swiglu_halves(gate_up)
    if out is not NotImplemented:
        return out
    n = shape[-1] // 2
    return swiglu(gate_up[..., :n], gate_up[..., n:])


def swiglu_reference(gate: Any, up: Any) -> Any:
    """:func:`swiglu` written with arrayq's array ops (the contract's default):
    ``multiply(silu(gate), up)``."""
    return aq.multiply(silu(gate), up)


def gelu(x: Any, approximate: str = "none") -> Any:
    """GELU elementwise: ``x * Phi(x)`` with the exact normal CDF (``approximate="none"``)
    or the tanh approximation (``"tanh"``). Raises ValueError for another ``approximate``."""
    mul = aq.multiply
    if approximate == "none":
        return mul(mul(x, 0.5), aq.add(aq.erf(mul(x, 1 / math.sqrt(2))), 1))
    if approximate == "tanh":
        inner = aq.add(x, mul(mul(mul(x, 0.044715), x), x))
        return mul(mul(x, 0.5), aq.add(aq.tanh(mul(inner, math.sqrt(2 / math.pi))), 1))
    raise ValueError(f"gelu approximate must be 'none' or 'tanh', got {approximate!r}")


def rms_norm(x: Any, weight: Any, eps: float = 1e-6) -> Any:
    """``x / sqrt(mean(x**2, axis=-1) + eps) * weight``, in float32 or wider, returned in x's
    dtype. ``x``: (..., D) floating; ``weight``: (D,) or None.

    The backend's ``rms_norm`` runs it (the NumPy backend's is a few direct NumPy calls);
    the reference is :func:`rms_norm_reference`."""
    backend, (x, weight) = resolve(x, weight)
    out = backend.rms_norm(x, weight, float(eps))
    return rms_norm_reference(x, weight, float(eps)) if out is NotImplemented else out


def rms_norm_reference(x: Any, weight: Any, eps: float) -> Any:
    """:func:`rms_norm` written with arrayq's array ops: the contract's default."""
    xw, dtype = _wide(x)
    # sum / D is the mean (NumPy's mean is the same division, after more Python)
    mean_sq = aq.divide(aq.sum(aq.multiply(xw, xw), axis=-1, keepdims=True), int(xw.shape[-1]))
    out = aq.multiply(xw, aq.divide(1, aq.sqrt(aq.add(mean_sq, eps))))
    if weight is not None:
        out = aq.multiply(out, _narrow(weight, aq.dtype(out)))
    return _narrow(out, dtype)


def rope_tables(
    dims: int, base: float, scale: float, offset: int, length: int, dtype: Any = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Host (length, dims/2) cosines and sines of the angles
    ``(offset + p) * scale * base**(-2i/dims)``, computed in float64 and rounded once to
    ``dtype`` (a NumPy float dtype: float32, or float64 for float64 activations)."""
    inv_freq = base ** (-np.arange(0, dims, 2, dtype=np.float64) / dims)
    angles = (np.arange(offset, offset + length, dtype=np.float64) * scale)[:, None] * inv_freq[None, :]
    return np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)


def rope(
    x: Any,
    dims: int,
    *,
    traditional: bool = False,
    base: float = 10000.0,
    scale: float = 1.0,
    offset: Any = 0,
    tables: Any = None,
) -> Any:
    """Rotary position embedding: ``x`` (..., L, D) floating, with the feature pairs of its
    first ``dims`` features rotated for positions ``offset`` .. ``offset+L-1`` by the angle
    ``position * scale * base**(-2i/dims)``; the pairs are ``(i, i + dims/2)`` (Llama, Qwen,
    GGUF's NEOX mode) or, with ``traditional``, ``(2i, 2i+1)``. Same shape and dtype as x.

    The backend's ``rope`` runs it where it has one (MLX: ``mx.fast.rope`` for float16 and
    bfloat16, whose float32 angles are below their rounding); else :func:`rope_reference`:
    float64 angles, rotation in float32 (float64 for float64). ``tables``: that reference's
    (cos, sin) on x's backend, or a function returning them (:func:`rope_tables` moved
    there), to share between layers. ``offset``: an int, or a 0-d integer array on x's
    backend (a position kept on the device, as in a compiled decode step), which is never
    read on the host: the reference then needs ``tables``. Raises ValueError if dims is odd,
    not positive or more than D, an int offset is negative, or an array offset comes without
    tables where the backend has no native rope for it."""
    check_rope_dims(dims, int(x.shape[-1]) if len(x.shape) else 0)
    backend, (x,) = resolve(x)
    offset = rope_offset(backend, offset)
    out = backend.rope(x, int(dims), bool(traditional), float(base), float(scale), offset)
    if out is not NotImplemented:
        return out
    if callable(tables):
        tables = tables()
    if tables is None:  # float64 tables for float64 x, float32 for the rest (which rotate in float32)
        if not isinstance(offset, int):
            raise ValueError(
                "rope with an array offset needs tables= (the positions' cos and sin, rope_tables) on a backend "
                "without a native rope for this dtype"
            )
        wide = np.float64 if aq.dtype(x) == aq.float64 else np.float32
        tables = tuple(_like(t, x) for t in rope_tables(dims, base, scale, offset, int(x.shape[-2]), wide))
    return rope_reference(x, dims, traditional, tables)


def check_rope_dims(dims: int, features: int) -> None:
    """:func:`rope`'s ``dims`` checked against the feature size: ValueError unless even,
    positive and at most ``features``."""
    if dims <= 0 or dims % 2 or dims > features:
        raise ValueError(f"rope dims {dims} must be even, positive and at most the feature size {features}")


def rope_offset(backend: Any, offset: Any) -> Any:
    """:func:`rope`'s ``offset`` checked: a 0-d integer array of ``backend`` as it is, or a
    non-negative int. Raises ValueError for anything else."""
    if backend.is_array(offset):
        if len(offset.shape) or backend.dtype_of(offset).kind not in ("signed", "unsigned"):
            raise ValueError(f"rope offset must be an int or a 0-d integer array, got shape {tuple(offset.shape)}")
        return offset
    if offset < 0:
        raise ValueError(f"rope offset must be >= 0, got {offset}")
    return int(offset)


def rope_reference(x: Any, dims: int, traditional: bool, tables: tuple[Any, Any]) -> Any:
    """:func:`rope` written with arrayq's array ops (the contract's default), for the
    (cos, sin) ``tables`` of x's positions."""
    d = int(x.shape[-1])
    x, dtype = _wide(x)  # float16/bfloat16 rotate in float32
    cos, sin = (_narrow(t, aq.dtype(x)) for t in tables)
    half = dims // 2
    rot, rest = (x, None) if dims == d else (x[..., :dims], x[..., dims:])
    if traditional:
        pairs = aq.reshape(rot, tuple(int(n) for n in rot.shape[:-1]) + (half, 2))
        x1, x2 = pairs[..., 0], pairs[..., 1]
        out = aq.reshape(aq.stack(_rotate(x1, x2, cos, sin), axis=-1), tuple(int(n) for n in rot.shape))
    else:
        x1, x2 = rot[..., :half], rot[..., half:]
        out = aq.concat(_rotate(x1, x2, cos, sin), axis=-1)
    return _narrow(out if rest is None else aq.concat([out, rest], axis=-1), dtype)


def _rotate(x1: Any, x2: Any, cos: Any, sin: Any) -> list:
    """The feature pairs (x1, x2) rotated: ``[x1 * cos - x2 * sin, x2 * cos + x1 * sin]``."""
    mul = aq.multiply
    return [aq.subtract(mul(x1, cos), mul(x2, sin)), aq.add(mul(x2, cos), mul(x1, sin))]


def layer_norm(x: Any, weight: Any, bias: Any, eps: float = 1e-5) -> Any:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis, in float32 or
    wider, returned in x's dtype. ``weight`` and ``bias``: (D,) or None."""
    xw, dtype = _wide(x)
    centered = aq.subtract(xw, aq.mean(xw, axis=-1, keepdims=True))
    var = aq.mean(aq.multiply(centered, centered), axis=-1, keepdims=True)
    out = aq.multiply(centered, aq.divide(1, aq.sqrt(aq.add(var, eps))))
    if weight is not None:
        out = aq.multiply(out, _narrow(weight, aq.dtype(out)))
    if bias is not None:
        out = aq.add(out, _narrow(bias, aq.dtype(out)))
    return _narrow(out, dtype)


def causal_mask(length: int, total: int) -> np.ndarray:
    """Additive float32 mask (length, total) for ``length`` new queries at the end of a
    sequence of ``total`` positions: 0 where query i may see key j (j <= total - length + i),
    ``-inf`` elsewhere. A host (NumPy) array; it mixes with any backend's arrays."""
    offset = total - length
    allowed = np.arange(total)[None, :] <= (offset + np.arange(length))[:, None]
    return np.where(allowed, np.float32(0), np.float32(-np.inf))


def padding_mask(
    attention_mask: Any = None, *, lengths: Any = None, length: int | None = None, dtype: Any = "float32"
) -> Any:
    """The additive attention mask that hides padding keys: shape (B, 1, 1, S), which
    broadcasts against attention scores (B, heads, L, S) (the ``mask`` of
    :func:`scaled_dot_product_attention` and of :class:`~arrayq.nn.Attention`).

    Give one of:

    * ``attention_mask``: a (B, S) array of any backend, bool, integer or floating, nonzero
      for a real token and 0 for padding (the ``attention_mask`` a tokenizer returns);
    * ``lengths``: B non-negative integers (a sequence or a 1-D integer array), each row's
      number of real tokens, which come first (right padding); ``length`` is S (default:
      the largest length).

    The result is 0 for a real token and ``finfo(dtype).min`` for padding, in ``dtype``
    (give the activations' dtype: float32 by default), on the mask's backend (on the
    lengths' backend, or a NumPy array for a sequence of ints). Large negative rather than
    ``-inf``: a row whose every key is padding then gets finite, uniform attention weights
    instead of NaN, and a ``-inf`` causal mask can still be added on top.

    Raises ValueError for both or neither of ``attention_mask`` and ``lengths``, an
    ``attention_mask`` that is not 2-D, lengths that are not non-negative integers of at
    most ``length``; TypeError for a ``dtype`` that is not floating."""
    fmin = aq.finfo(dtype).min  # (TypeError for a non-floating dtype)
    if (attention_mask is None) == (lengths is None):
        raise ValueError("padding_mask takes one of attention_mask (B, S) or lengths (B,)")
    if attention_mask is not None:
        if len(attention_mask.shape) != 2:
            raise ValueError(f"attention_mask must have shape (batch, length), got {tuple(attention_mask.shape)}")
        pad = aq.equal(attention_mask, 0)
    else:
        backend = None if isinstance(lengths, (list, tuple)) else aq.backend_of(lengths)
        host = np.asarray(aq.to_numpy(lengths) if backend is not None else lengths)
        if host.ndim != 1 or not (host.dtype.kind in "iu" or host.size == 0):
            raise ValueError(f"lengths must be a 1-D sequence of integers, got {lengths!r}")
        total = int(host.max(initial=0)) if length is None else length
        if not isinstance(total, int) or isinstance(total, bool) or (host < 0).any() or (host > total).any():
            raise ValueError(f"lengths must be integers from 0 to length={total!r}, got {host.tolist()}")
        pad = np.arange(total)[None, :] >= host[:, None]
        pad = pad if backend is None else aq.to_backend(pad, backend)
    b, s = (int(n) for n in pad.shape)
    return aq.reshape(aq.multiply(aq.astype(pad, dtype), fmin), (b, 1, 1, s))


def scaled_dot_product_attention(
    q: Any, k: Any, v: Any, *, scale: float, mask: Any = None, key_length: Any = None
) -> Any:
    """Multi-head attention ``softmax(q @ k.T * scale + mask) @ v`` with grouped query heads.

    ``q``: (B, H, L, D); ``k``, ``v``: (B, Hkv, S, D) with H a multiple of Hkv: query head h
    reads key/value head ``h // (H // Hkv)`` (the grouping of Llama/Qwen checkpoints).
    ``mask``: None, ``"causal"`` (the last L of S positions, see :func:`causal_mask`), or
    an additive array broadcasting to (B, H, L, S). ``key_length``: None (all S keys), or
    the number n of keys that exist: an int from 1 to S, or a 0-d integer array on q's
    backend that is never read on the host (a fixed-size cache's position, inside
    :func:`arrayq.compile`); keys n .. S-1 are ignored, and ``"causal"`` then places the L
    queries at positions n-L .. n-1 (:func:`prefix_mask`). An array n must lie in
    L .. S (causal) or 1 .. S; nothing can check it. Scores and softmax are in float32;
    the result is (B, H, L, D) in q's dtype. Keys and values in a narrower floating dtype
    than q's (a float16 :class:`~arrayq.nn.FixedKVCache`) give attention over those rounded
    keys and values, as if converted to q's dtype (exactly: every float16 is a float32).
    Raises ValueError for mismatched shapes, an unknown mask string, a causal mask with more
    queries than keys, or a key_length that is not such an int or array.

    The backend's ``scaled_dot_product_attention`` runs it (a backend may fuse it: the
    NumPy backend's native kernels do for float32 decode, reading float16 keys and values
    as they are), with ``key_length`` its ``prefix_attention`` where it has one (else the
    prefix becomes a mask); narrower keys and values are offered to the backend as they are,
    and converted to q's dtype where it declines them; the reference
    is :func:`attention_reference`."""
    b, h, length, d = (int(n) for n in q.shape)
    hkv, s = int(k.shape[1]), int(k.shape[2])
    if hkv < 1 or h % hkv or tuple(k.shape) != (b, hkv, s, d) or tuple(v.shape)[:3] != (b, hkv, s):
        raise ValueError(f"attention shapes do not fit: q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if isinstance(mask, str) and mask != "causal":
        raise ValueError(f"mask must be None, 'causal' or an array, got {mask!r}")
    if isinstance(mask, str) and length > s:
        raise ValueError(f"a causal mask needs at least as many keys ({s}) as queries ({length})")
    if key_length is None or isinstance(key_length, (int, np.integer)):
        backend, (q, k, v) = resolve(q, k, v)
    elif hasattr(key_length, "shape") and hasattr(key_length, "dtype"):
        backend, (q, k, v, key_length) = resolve(q, k, v, key_length)
    else:
        raise ValueError(f"key_length must be an int or a 0-d integer array, got {key_length!r}")
    # (narrower K/V go to the backend as they are first; where it declines, widened)
    narrow = any(_narrower(backend.dtype_of(x), backend.dtype_of(q)) for x in (k, v))
    if key_length is not None:
        causal = isinstance(mask, str)  # (only "causal" gets here)
        key_length = _checked_key_length(backend, key_length, length, s, causal)
        if mask is None or causal:
            out = backend.prefix_attention(q, k, v, float(scale), key_length, causal)
            if out is NotImplemented and narrow:
                (k, v), narrow = _widened_kv(backend, q, k, v), False
                out = backend.prefix_attention(q, k, v, float(scale), key_length, causal)
            if out is not NotImplemented:
                return out
        prefix = prefix_mask(key_length, length, s, causal=causal, dtype=aq.dtype(q), like=q)
        mask = prefix if mask is None or causal else aq.add(mask, _narrow(prefix, aq.dtype(mask)))
    out = backend.scaled_dot_product_attention(q, k, v, float(scale), mask)
    if out is NotImplemented and narrow:
        k, v = _widened_kv(backend, q, k, v)
        out = backend.scaled_dot_product_attention(q, k, v, float(scale), mask)
    return attention_reference(q, k, v, float(scale), mask) if out is NotImplemented else out


def _widened_kv(backend: Any, q: Any, k: Any, v: Any) -> tuple[Any, Any]:
    """k and v, each widened to q's dtype where narrower (see :func:`_widened`)."""
    target = backend.dtype_of(q)
    return _widened(backend, k, target), _widened(backend, v, target)


def _narrower(have: Any, target: Any) -> bool:
    """Whether ``have`` is a narrower floating dtype than ``target`` (float16 against float32)."""
    return have != target and have.kind == "float" and target.kind == "float" and have.bits < target.bits


def _widened(backend: Any, x: Any, target: Any) -> Any:
    """``x`` converted to ``target`` where it is a narrower floating dtype (a float16 KV
    cache read by float32 queries); else ``x`` itself."""
    return backend.astype(x, target, True) if _narrower(backend.dtype_of(x), target) else x


def _checked_key_length(backend: Any, n: Any, length: int, total: int, causal: bool) -> Any:
    if backend.is_array(n):
        if len(n.shape) or backend.dtype_of(n).kind not in ("signed", "unsigned"):
            raise ValueError(f"key_length must be an int or a 0-d integer array, got shape {tuple(n.shape)}")
        return n
    low = length if causal else 1
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or not low <= int(n) <= total:
        raise ValueError(f"key_length must be an int from {low} to the {total} keys, or a 0-d integer array; got {n!r}")
    return int(n)


def prefix_mask(key_length: Any, length: int, total: int, *, causal: bool, dtype: Any, like: Any) -> Any:
    """The additive mask (1, 1, L, S) in ``dtype`` on ``like``'s backend that lets query i
    of ``length`` L see key j of ``total`` S when j < n (``key_length``, an int or a 0-d
    integer array, not read on the host) and, with ``causal``, j <= n - L + i: 0 there,
    ``-inf`` elsewhere. What :func:`scaled_dot_product_attention` adds for ``key_length``
    where the backend has no ``prefix_attention``."""
    # aranges and scalars only, so that a compiler sees the same computation in every layer
    # sharing one position and makes it once
    n = aq.asarray(key_length, dtype=aq.int32, like=like) if isinstance(key_length, int) else key_length
    keys = aq.reshape(aq.arange(total, dtype=aq.dtype(n), like=n), (1, total))
    last = aq.subtract(n, length)
    if causal and length > 1:
        last = aq.add(last, aq.reshape(aq.arange(length, dtype=aq.dtype(n), like=n), (length, 1)))
    else:
        last = aq.add(last, length - 1)
    visible = aq.broadcast_to(aq.less_equal(keys, last), (length, total))
    zero = aq.zeros((), dtype=dtype, like=n)
    return aq.reshape(aq.where(visible, zero, -math.inf), (1, 1, length, total))


def attention_reference(q: Any, k: Any, v: Any, scale: float, mask: Any) -> Any:
    """:func:`scaled_dot_product_attention` written with arrayq's array ops (arguments
    checked there): the contract's default, which runs on every backend."""
    b, h, length, d = (int(n) for n in q.shape)
    hkv, s = int(k.shape[1]), int(k.shape[2])
    rep = h // hkv
    # (B, Hkv, rep*L, D): the rep query heads sharing a kv head become extra query rows
    qg = aq.reshape(q, (b, hkv, rep * length, d))
    scores = aq.multiply(_wide(aq.matmul(qg, aq.matrix_transpose(k)))[0], scale)
    if isinstance(mask, str):
        mask = _like(causal_mask(length, s), scores) if length > 1 else None
    if mask is not None:
        if any(int(n) != 1 for n in getattr(mask, "shape", ())[:-2]):  # batch or head axes: as (B, Hkv, rep, L, S),
            # query head h being (kv head h // rep, h % rep); an (L, S) mask broadcasts as it is
            mask = aq.reshape(aq.broadcast_to(mask, (b, h, length, s)), (b, hkv, rep, length, s))
        scores = aq.reshape(aq.add(aq.reshape(scores, (b, hkv, rep, length, s)), mask), (b, hkv, rep * length, s))
    probs = _narrow(softmax(scores, axis=-1), aq.dtype(v))
    out = aq.matmul(probs, v)  # (B, Hkv, rep*L, Dv)
    return _narrow(aq.reshape(out, (b, h, length, int(v.shape[-1]))), aq.dtype(q))


# ---------------------------------------------------------------------- layers
