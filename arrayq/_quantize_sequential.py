"""``arrayq.nn.quantize_sequential``: GPTQ for a whole model, layer after layer, each layer
calibrated on the inputs it gets once the layers before it are quantized and fitted to the
float model's outputs (re-exported by :mod:`arrayq.nn`; its own module because it walks
and runs any model)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from ._quantize_model import Predicate, _rebuilt
from .errors import QuantizationError


class _Recording:
    """A layer that appends the NumPy rows of its input to ``sink`` (``mask`` selecting
    the rows), and ``key`` to ``calls`` on its first call, then computes as the layer does."""

    def __init__(self, layer: Any, path: str, sink: list, mask: np.ndarray | None, key: int, calls: list) -> None:
        self.layer, self.path, self.sink, self.mask, self.key, self.calls = layer, path, sink, mask, key, calls

    def __call__(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        import arrayq as aq

        rows = np.asarray(aq.to_numpy(x))
        if self.mask is None:
            rows = rows.reshape(-1, rows.shape[-1]) if rows.ndim else rows
        elif rows.shape[:-1] != self.mask.shape:
            raise QuantizationError(
                f"mask has shape {self.mask.shape}, but {self.path} got inputs of shape {rows.shape}: the mask "
                "must have the shape of every chosen layer's inputs without their last axis (e.g. the attention "
                "mask (batch, length) for inputs (batch, length, features)), or be None to keep every row"
            )
        else:
            rows = rows[self.mask]
        self.sink.append(rows)
        if self.key not in self.calls:
            self.calls.append(self.key)
        return self.layer(x, *args, **kwargs)


def sequential(
    model: Any,
    run: Callable[[Any], Any],
    linear: type,
    group_size: int | None,
    bits: int | None,
    predicate: Predicate | None,
    mask: Any,
    correct_bias: bool,
    options: dict,
) -> Any:
    """:func:`arrayq.nn.quantize_sequential` (its docstring says what this does), with
    ``linear`` the layer class whose instances it quantizes (``nn.Linear``)."""
    fixed = {"method", "mode", "calibration", "float_calibration"}

    def check_options(given: dict, where: str) -> None:
        clash = sorted(fixed & set(given))
        if clash:
            raise QuantizationError(
                f"{where} sets {clash}, which quantize_sequential chooses itself (GPTQ, affine, on the recorded "
                "inputs); use arrayq.nn.quantize for other methods"
            )

    check_options(options, "the call")
    rows_mask = None if mask is None else _host_mask(mask)
    chosen: dict[int, tuple[str, Any, dict]] = {}  # id(layer) -> (first path, layer, its keyword arguments)

    def choose(path: str, layer: Any) -> Any:
        if not isinstance(layer, linear) or id(layer) in chosen:
            return layer
        pick = True if predicate is None else predicate(path, layer)
        if pick:
            extra = pick if isinstance(pick, dict) else {}
            if pick is not True and not isinstance(pick, dict):
                raise TypeError(f"the predicate returned {pick!r} for {path!r}; it must return a bool or a dict")
            check_options(extra, f"the predicate's dict for {path!r}")
            chosen[id(layer)] = (path, layer, {"group_size": group_size, "bits": bits, **options, **extra})
        return layer

    _rebuilt(model, "", choose)

    def recorded(sinks: dict[int, list], swap: Callable[[Any], Any]) -> list[int]:
        """Runs the model with ``swap`` applied to the chosen layers and the layers of
        ``sinks`` recording; the keys of the recorded layers in the order of their first call."""
        calls: list[int] = []

        def wrap(path: str, layer: Any) -> Any:
            if id(layer) not in chosen:
                return layer
            if id(layer) in sinks:
                return _Recording(swap(layer), path, sinks[id(layer)], rows_mask, id(layer), calls)
            return swap(layer)

        run(_rebuilt(model, "", wrap))
        return calls

    float_sinks: dict[int, list] = {key: [] for key in chosen}
    order = recorded(float_sinks, lambda layer: layer)  # layers run never called stay dense
    if not order:
        raise ValueError("run(model) called none of the chosen layers: it must run the model on calibration data")
    done: dict[int, Any] = {}
    for key in order:
        sinks: dict[int, list] = {key: []}
        recorded(sinks, lambda layer: done.get(id(layer), layer))
        path, layer, kwargs = chosen[key]
        x, xf = np.concatenate(sinks[key]), np.concatenate(float_sinks[key])
        try:
            new = layer.quantize(mode="affine", method="gptq", calibration=x, float_calibration=xf, **kwargs)
        except QuantizationError as exc:
            raise QuantizationError(f"cannot quantize {path} ({type(layer).__name__}): {exc}") from exc
        if correct_bias and new.bias is not None:
            new = dataclasses.replace(new, bias=_corrected_bias(layer, new, x, xf))
        done[key] = new
    return _rebuilt(model, "", lambda path, layer: done.get(id(layer), layer))


def _corrected_bias(layer: Any, new: Any, x: np.ndarray, xf: np.ndarray) -> Any:
    """``new``'s bias shifted so that its mean output over the calibration rows ``x`` equals
    the float ``layer``'s over the float rows ``xf``: ``bias + mean(xf) w^T - mean(x) wq^T``
    (in float64; the result in the bias's dtype, backend and device)."""
    import arrayq as aq

    w = np.asarray(aq.to_numpy(aq.astype(layer.weight, "float32")), np.float64)
    wq = np.asarray(aq.to_numpy(aq.dequantize(new.weight, dtype="float32")), np.float64)
    shift = np.asarray(xf, np.float64).mean(axis=0) @ w.T - np.asarray(x, np.float64).mean(axis=0) @ wq.T
    bias = new.bias
    host = np.asarray(aq.to_numpy(aq.astype(bias, "float32")), np.float64) + shift
    return aq.astype(aq.asarray(host.astype(np.float32), like=bias), aq.dtype(bias))


def _host_mask(mask: Any) -> np.ndarray:
    """``mask`` as a NumPy bool array (nonzero: keep the row)."""
    import arrayq as aq

    try:
        host = np.asarray(aq.to_numpy(mask)) if not isinstance(mask, np.ndarray) else mask
    except TypeError:
        host = np.asarray(mask)
    if host.dtype.kind not in "biuf":
        raise QuantizationError(f"mask must be a boolean or numeric array, got dtype {host.dtype}")
    return host != 0
