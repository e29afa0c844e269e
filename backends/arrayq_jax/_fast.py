"""The JAX backend's model ops: arrayq's own references (``arrayq.nn.rms_norm_reference``,
``arrayq.nn.attention_reference``), traced once per shape by ``jax.jit``.

Eagerly, each array op is a small XLA program of its own, dispatched from Python (and compiled
for every new shape); jitted, a norm or an attention is one program, with its elementwise chains
fused. The arithmetic is the reference's, so the results are the reference's up to XLA's fusion
(a few float32 ulps: conformance tolerances). Inside ``arrayq.compile`` the jitted function is
inlined into the outer trace. An additive attention mask that is not this backend's array (or a
weight that is not) takes the reference eagerly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from arrayq import nn
from arrayq.backend import Array

if TYPE_CHECKING:
    from arrayq_jax import JAXBackend

_JITTED: dict[tuple[Any, ...], Callable[..., Any]] = {}


def _jitted(backend: JAXBackend, key: tuple[Any, ...], make: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    fn = _JITTED.get(key)
    if fn is None:
        fn = _JITTED[key] = backend.jax.jit(make())
    return fn


def rms_norm(backend: JAXBackend, x: Array, weight: Array | None, eps: float) -> Any:
    if weight is None:
        return _jitted(backend, ("rms_norm", eps), lambda: lambda x: nn.rms_norm_reference(x, None, eps))(x)
    if not backend.is_array(weight):
        return NotImplemented
    return _jitted(backend, ("rms_norm_w", eps), lambda: lambda x, w: nn.rms_norm_reference(x, w, eps))(x, weight)


def scaled_dot_product_attention(backend: JAXBackend, q: Array, k: Array, v: Array, scale: float, mask: Any) -> Any:
    if k.dtype != q.dtype or v.dtype != q.dtype:  # (narrower keys and values: arrayq.nn converts them)
        return NotImplemented
    if mask is None or isinstance(mask, str):
        return _jitted(
            backend, ("attention", scale, mask), lambda: lambda q, k, v: nn.attention_reference(q, k, v, scale, mask)
        )(q, k, v)
    if not backend.is_array(mask):
        return NotImplemented
    return _jitted(
        backend, ("attention_masked", scale), lambda: lambda q, k, v, m: nn.attention_reference(q, k, v, scale, m)
    )(q, k, v, mask)
