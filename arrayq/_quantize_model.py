"""``arrayq.nn.quantize``: quantize every chosen layer of a model built from arrayq layers
(re-exported by :mod:`arrayq.nn`; its own module because it walks any model and needs
no layer class)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .errors import QuantizationError
from .quant import QuantizedWeight

#: A predicate: (path, layer) -> True (quantize with the call's arguments), a dict (quantize
#: with these keyword arguments on top of them), or a false value (leave the layer as it is).
Predicate = Callable[[str, Any], Any]


def _quantizable(o: Any) -> bool:
    """A layer that knows its quantized version (``nn.Linear``, ``nn.Embedding``, or any
    object with a ``quantize(*, group_size, bits, mode, **options)`` method)."""
    return not isinstance(o, type) and callable(getattr(o, "quantize", None))


def _rebuilt(o: Any, path: str, swap: Callable[[str, Any], Any], match: Callable[[Any], bool] = _quantizable) -> Any:
    """``o`` with every layer inside that ``match``es (default: quantizable ones) replaced
    by ``swap(path, layer)``: dataclasses (through ``dataclasses.replace``), lists, tuples
    and dicts are rebuilt where something inside changed and returned as they are (shared)
    where nothing did."""
    if match(o):
        return swap(path, o)
    prefix = f"{path}." if path else ""
    if isinstance(o, (QuantizedWeight, type)):
        return o
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        changes = {}
        for f in dataclasses.fields(o):
            if f.init:  # (a field the constructor does not take cannot hold a layer to replace)
                value = getattr(o, f.name)
                new = _rebuilt(value, prefix + f.name, swap, match)
                if new is not value:
                    changes[f.name] = new
        return dataclasses.replace(o, **changes) if changes else o
    if isinstance(o, (list, tuple)):
        items = [_rebuilt(v, f"{prefix}{i}", swap, match) for i, v in enumerate(o)]
        if all(a is b for a, b in zip(items, o)):
            return o
        return type(o)(*items) if isinstance(o, tuple) and hasattr(o, "_fields") else type(o)(items)
    if isinstance(o, dict):
        entries = {k: _rebuilt(v, f"{prefix}{k}", swap, match) for k, v in o.items()}
        return o if all(entries[k] is v for k, v in o.items()) else type(o)(entries)
    return o


def quantize(
    model: Any,
    *,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
    predicate: Predicate | None = None,
    **options: Any,
) -> Any:
    """A copy of ``model`` with its ``nn.Linear`` and ``nn.Embedding`` layers replaced by
    ``nn.QuantizedLinear`` / ``nn.QuantizedEmbedding``, as ``mlx.nn.quantize`` does for MLX
    modules.

    ``model``: any model built from arrayq layers (dataclasses, lists, tuples and dicts of
    them, nested), or a single layer. A layer is quantizable when it has a
    ``quantize(*, group_size, bits, mode, **options)`` method returning its quantized
    version (``nn.Linear``, ``nn.Embedding``; a layer of your own can join by defining
    one); layers already quantized have none and stay as they are.

    ``group_size``, ``bits``, ``mode``: the format (:func:`arrayq.quantize`; None: the
    mode's defaults, 64 and 4 for affine). ``predicate(path, layer)`` chooses: a false value
    leaves the layer dense, ``True`` quantizes it with the call's arguments, and a dict
    quantizes it with those keyword arguments put over the call's (e.g.
    ``{"bits": 8}`` for the embeddings; MLX passes the dict alone). ``path`` is the
    layer's place in ``model``: attribute names, list indices and dict keys joined by
    ``"."`` (``"layers.0.self_attn.q_proj"`` in a Qwen3 model; ``""`` for the model
    itself). No predicate: every quantizable layer. ``options``: further keyword arguments
    for :func:`arrayq.quantize`, through each layer's ``quantize`` method — the place for a
    quantization method's parameters (a predicate's dict can vary them per layer, e.g. a
    calibrated method's statistics for that path).

    The result shares everything it did not change with ``model``, which is not modified
    (its containers and layers are rebuilt with ``dataclasses.replace`` only along the
    paths to quantized layers). A layer reached by several paths is quantized once, as its
    first path (depth-first, in field order) decides, and stays shared. The model's own
    metadata (such as ``Qwen3.config.quantization``) is left as it is.

    Raises, as ``mlx.nn.quantize`` does, rather than skipping a chosen layer that cannot be
    quantized: :class:`~arrayq.QuantizationError` naming the layer's path for a weight
    whose last axis is not a multiple of ``group_size`` (leave such layers out with the
    predicate, as mlx-lm does: ``lambda path, layer: layer.weight.shape[-1] % 64 == 0``),
    an unsupported format, a non-float, non-finite or overflowing weight; TypeError for a
    predicate that returns something other than a bool, a dict or a false value."""
    done: dict[int, Any] = {}

    def swap(path: str, layer: Any) -> Any:
        if id(layer) in done:
            return done[id(layer)]
        chosen = True if predicate is None else predicate(path, layer)
        if not chosen:
            return layer
        kwargs: dict[str, Any] = {"group_size": group_size, "bits": bits, "mode": mode, **options}
        if isinstance(chosen, dict):
            kwargs.update(chosen)
        elif chosen is not True:
            raise TypeError(
                f"the predicate returned {chosen!r} for {path or 'the model'!r}; it must return a bool, "
                "or a dict of keyword arguments for the layer's quantize()"
            )
        try:
            new = layer.quantize(**kwargs)
        except QuantizationError as exc:
            shape = getattr(getattr(layer, "weight", None), "shape", None)
            shape = "" if shape is None else f", weight shape {tuple(shape)}"
            raise QuantizationError(
                f"cannot quantize {path or 'the model'} ({type(layer).__name__}{shape}): {exc}; "
                "to leave it dense, make the predicate return False for it"
            ) from exc
        done[id(layer)] = new
        return new

    return _rebuilt(model, "", swap)
