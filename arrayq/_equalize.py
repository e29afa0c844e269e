"""``arrayq.nn.equalize_attention``: activation-aware equalisation of attention's output
projection (AWQ-style scaling) folded exactly into the value projection, so the float model
computes the same function and the quantized model stays in MLX's format (re-exported by
:mod:`arrayq.nn`; its own module because it walks any model).

Why only there. AWQ scales a Linear's input channels by ``s`` and folds ``1/s`` into the
layer producing them. In a post-LayerNorm encoder (BERT) every LayerNorm output also feeds
the residual stream, so a scale folded into a LayerNorm changes the model; GELU stands
between the FFN's two Linears. The attention output is linear in the values (each output
row is a convex combination of value rows, the value bias included, because the attention
weights of a query sum to 1), so ``o_proj``'s input channel ``c`` can be multiplied by
``1/s_c`` in ``v_proj`` (its row and bias) and ``s_c`` in ``o_proj`` (its column). Scaling
``v_proj``'s rows does not change how they quantize (a row's groups scale with it), so the
effect is on ``o_proj``'s groups: channels with large inputs get larger weights and so a
finer share of their group's range.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

import arrayq as aq

from ._quantize_model import _rebuilt
from .errors import QuantizationError
from .quant import QuantizedWeight


def _host(a: Any) -> np.ndarray:
    return np.asarray(aq.to_numpy(aq.astype(a, "float32")) if aq.backend_of(a) is not None else a, np.float64)


def channel_scales(inputs: Any, n_heads: int, n_kv_heads: int, head_dim: int, alpha: float) -> np.ndarray:
    """The scales ``s`` (n_kv_heads * head_dim,), one per value channel, float64:
    ``mean|a|^alpha`` over the tokens of ``inputs`` (tokens, n_heads * head_dim), the
    attention output ``o_proj`` reads, averaged over the query heads that share a value head;
    normalised to a geometric mean of 1 (alpha 0: all ones). A channel that is 0 on every
    token counts as the smallest non-zero mean."""
    a = np.abs(_host(inputs)).mean(axis=0).reshape(n_kv_heads, n_heads // n_kv_heads, head_dim).mean(axis=1)
    a = a.reshape(-1)
    positive = a[a > 0]
    floor = positive.min() if positive.size else 1.0
    log = alpha * np.log(np.maximum(a, floor))
    return np.exp(log - log.mean())


def scaled(attention: Any, s: np.ndarray) -> Any:
    """``attention`` (an ``nn.Attention`` with dense ``v_proj`` and ``o_proj``) with
    ``v_proj``'s rows and bias divided by ``s`` (n_kv_heads * head_dim,) and ``o_proj``'s
    columns multiplied by it (repeated for the query heads of each value head): the same
    function in exact arithmetic."""
    v, o = attention.v_proj, attention.o_proj
    group = attention.n_heads // attention.n_kv_heads
    per_query = np.tile(s.reshape(attention.n_kv_heads, 1, attention.head_dim), (1, group, 1)).reshape(-1)

    def times(a: Any, factor: np.ndarray) -> Any:  # on a's backend, in a's dtype
        return aq.astype(aq.multiply(a, aq.asarray(factor.astype(np.float32), like=a)), aq.dtype(a))

    inv = 1.0 / s
    bias = None if v.bias is None else times(v.bias, inv)
    new_v = dataclasses.replace(v, weight=times(v.weight, inv[:, None]), bias=bias)
    new_o = dataclasses.replace(o, weight=times(o.weight, per_query[None, :]))
    return dataclasses.replace(attention, v_proj=new_v, o_proj=new_o)


def _is_attention(o: Any) -> bool:
    """An ``nn.Attention`` (by its fields: this module cannot import :mod:`arrayq.nn`, which
    re-exports it)."""
    fields = ("v_proj", "o_proj", "n_heads", "n_kv_heads", "head_dim", "qkv_proj")
    return dataclasses.is_dataclass(o) and not isinstance(o, type) and all(hasattr(o, f) for f in fields)


def _dense(layer: Any) -> bool:
    """A dense Linear: a dataclass whose ``weight`` is a 2-D array (not a QuantizedWeight)."""
    w = getattr(layer, "weight", None)
    if not (dataclasses.is_dataclass(layer) and hasattr(layer, "bias")) or isinstance(w, QuantizedWeight):
        return False
    return w is not None and len(getattr(w, "shape", ())) == 2


def _check_alphas(alpha: Any) -> list[float]:
    many = isinstance(alpha, (list, tuple))
    values = list(alpha) if many else [alpha]
    if not values:
        raise ValueError("alpha must be a number of 0 or more, or a non-empty list of them, got []")
    for a in values:
        if isinstance(a, bool) or not isinstance(a, numbers.Real) or not (math.isfinite(a) and float(a) >= 0):
            raise ValueError(f"alpha must be a finite number of 0 or more (or a list of them), got {a!r}")
    return [float(a) for a in values]


def equalize_attention(
    model: Any,
    inputs: Mapping[str, Any],
    *,
    alpha: float | Sequence[float] = 0.5,
    options: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, float]]:
    """A copy of ``model`` in which every ``nn.Attention`` whose ``o_proj`` has its inputs in
    ``inputs`` is equalised for quantization (AWQ-style, see the module's docstring):
    ``o_proj``'s input channel ``c`` is multiplied by ``s_c`` and ``v_proj``'s row ``c``
    and bias by ``1/s_c``, with ``s`` = :func:`channel_scales` (``mean|a|^alpha``,
    geometric mean 1). In exact arithmetic the model computes the same function; in float32
    its outputs change by rounding only. Quantize the result afterwards (``nn.quantize``,
    any method; for GPTQ record its calibration inputs from the equalised model, since
    ``o_proj``'s inputs are divided by ``s``).

    ``inputs``: ``o_proj``'s path in ``model`` (as :func:`arrayq.nn.quantize` names it, e.g.
    ``"layers.0.attention.o_proj"``) -> its inputs from the float model, (tokens,
    n_heads * head_dim), any backend or NumPy. ``alpha``: a number of 0 or more (0 changes
    nothing), or a list of candidates: then each layer takes the candidate whose quantized
    ``o_proj`` has the least output error on its inputs, ``||a W^T - (a/s) Q(W s)^T||²``,
    ``Q`` being :func:`arrayq.quantize` with ``options`` (e.g. ``{"bits": 4, "group_size": 64,
    "method": "gptq"}``; GPTQ is calibrated on ``a/s``); AWQ's grid search. Returns the model
    and, per equalised ``o_proj`` path, the alpha used.

    Raises ValueError for a bad ``alpha``, a list of candidates without ``options``, or an
    ``inputs`` path that names no attention layer's ``o_proj``; QuantizationError for an
    attention layer whose ``v_proj`` or ``o_proj`` is not a dense ``nn.Linear`` (equalise
    before quantizing or fusing q/k/v), for inputs of the wrong shape, or not finite."""
    alphas = _check_alphas(alpha)
    if len(alphas) > 1 and options is None:
        raise ValueError("alpha as a list of candidates needs options= (the quantization to compare them with)")
    chosen: dict[str, float] = {}

    def swap(path: str, attention: Any) -> Any:
        key = f"{path}.o_proj" if path else "o_proj"
        if key not in inputs:
            return attention
        if not (_dense(attention.v_proj) and _dense(attention.o_proj)):
            raise QuantizationError(
                f"{path or 'the model'}: equalize_attention needs dense v_proj and o_proj (nn.Linear); equalise the "
                "float model before quantizing it or fusing q/k/v"
            )
        a = _host(inputs[key])
        width = attention.n_heads * attention.head_dim
        if a.ndim != 2 or a.shape[1] != width or a.shape[0] == 0 or not np.all(np.isfinite(a)):
            raise QuantizationError(
                f"inputs[{key!r}] must be (tokens, {width}) finite numbers (o_proj's inputs), got shape {a.shape}"
            )
        heads = (attention.n_heads, attention.n_kv_heads, attention.head_dim)
        best = min(alphas, key=lambda al: _error(attention.o_proj, a, channel_scales(a, *heads, al), heads, options))
        chosen[key] = best
        return scaled(attention, channel_scales(a, *heads, best))

    unknown = [p for p in inputs if not isinstance(p, str)]
    if unknown:
        raise ValueError(f"inputs' keys must be o_proj paths (str), got {unknown[:3]!r}")
    result = _rebuilt(model, "", swap, _is_attention)
    missing = sorted(set(inputs) - set(chosen))
    if missing:
        raise ValueError(
            f"inputs name no attention layer's o_proj for {missing[:3]!r}; use the paths nn.quantize gives "
            "(e.g. 'layers.0.attention.o_proj')"
        )
    return result, chosen


def _error(o: Any, a: np.ndarray, s: np.ndarray, heads: tuple[int, int, int], options: Any) -> float:
    """``o``'s (dense) output error on ``a`` once its columns are scaled by ``s`` and the
    weight quantized with ``options`` (0 without options: nothing to compare)."""
    if options is None:
        return 0.0
    n_heads, n_kv, head_dim = heads
    per_query = np.tile(s.reshape(n_kv, 1, head_dim), (1, n_heads // n_kv, 1)).reshape(-1)
    w = _host(o.weight)
    x = (a / per_query).astype(np.float32)
    extra = {"calibration": x} if options.get("method") == "gptq" else {}
    q = aq.quantize(aq.asarray((w * per_query).astype(np.float32), like=o.weight), **options, **extra)
    wq = _host(aq.dequantize(q))
    return float(np.mean(np.square(a @ w.T - x.astype(np.float64) @ wq.T)))
