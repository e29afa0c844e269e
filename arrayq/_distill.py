"""``arrayq.nn.distill_quantized``: the scales and biases of a quantized model's affine
weights (and its quantized layers' biases) trained with Adam so that its outputs match a
float teacher's, the integer codes kept as they are (re-exported by :mod:`arrayq.nn`; its own
module because it walks and differentiates any model)."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import arrayq as aq

from . import _rounding
from ._quantize_model import _rebuilt
from .errors import QuantizationError, UnsupportedOperationError
from .quant import QuantizedWeight

#: The objectives: how an output of the student is compared with the teacher's.
LOSSES = ("mse", "cosine", "similarity")
#: Adam's moment decays and its denominator's guard.
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8


def _outputs(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _cosines(a: Any) -> Any:
    """The cosine similarity of every pair of rows of ``a`` (..., B, D): (..., B, B)."""
    unit = aq.divide(a, aq.maximum(aq.linalg.vector_norm(a, axis=-1, keepdims=True), 1e-30))
    return aq.matmul(unit, aq.matrix_transpose(unit))


def _term(s: Any, t: Any, loss: str) -> Any:
    """One output's objective: ``mean((s - t)^2) / mean(t^2)`` ("mse": every output weighs
    alike whatever its scale), ``1 - mean cosine`` along the last axis ("cosine"), or the
    mean squared difference of the rows' pairwise cosine matrices ("similarity": how the
    samples of a batch lie to each other, as a nearest-neighbour search sees them)."""
    s = aq.astype(s, "float32", copy=False)
    if loss == "mse":
        err = aq.mean(aq.square(aq.subtract(s, t)))
        return aq.divide(err, aq.maximum(aq.mean(aq.square(t)), 1e-30))
    if loss == "similarity":
        return aq.mean(aq.square(aq.subtract(_cosines(s), _cosines(t))))
    dot = aq.sum(aq.multiply(s, t), axis=-1)
    norms = aq.multiply(aq.linalg.vector_norm(s, axis=-1), aq.linalg.vector_norm(t, axis=-1))
    return aq.subtract(1.0, aq.mean(aq.divide(dot, aq.maximum(norms, 1e-30))))


def _objective(student: list, teacher: list, losses: Sequence[str], weights: Sequence[float]) -> Any:
    """The weighted mean over outputs of each output's :func:`_term`."""
    total: Any = 0.0
    for s, t, loss, w in zip(student, teacher, losses, weights):
        total = aq.add(total, aq.multiply(_term(s, t, loss), float(w)))
    return aq.divide(total, float(sum(weights)))


class _Trainable:
    """The affine quantized layers of a model: their paths, their float32 master parameters
    (scales, biases, and each layer's bias when trained), and the model rebuilt from them.
    With a ``teacher`` (learned rounding), each layer also has its rounding offsets ``v``
    (a parameter) and anchors (:mod:`arrayq._rounding`): ``rounding[id(layer)]`` is
    ``(index in the codes list, v's slot, anchors, bits)``."""

    def __init__(self, model: Any, train_bias: bool, teacher: Any = None) -> None:
        self.model = model
        self.layers: dict[int, tuple[str, Any, list[int]]] = {}
        self.params: list = []
        self.rounding: dict[int, tuple[int, int, Any, int]] = {}
        floats: dict[str, Any] = {}
        if teacher is not None:  # the float weight at each path, for the anchors
            _rebuilt(teacher, "", lambda p, o: floats.setdefault(p, o), lambda o: hasattr(o, "weight"))

        def take(path: str, layer: Any) -> Any:
            if id(layer) not in self.layers:
                w = layer.weight
                slots = [len(self.params), len(self.params) + 1]
                self.params += [aq.astype(w.scales, "float32"), aq.astype(w.biases, "float32")]
                if train_bias and layer.bias is not None:
                    slots.append(len(self.params))
                    self.params.append(aq.astype(layer.bias, "float32"))
                if teacher is not None:
                    source = getattr(floats.get(path), "weight", None)
                    if source is None or isinstance(source, QuantizedWeight):
                        raise ValueError(
                            f"learn_rounding: the teacher has no float weight at {path!r}; pass the float model the "
                            "student was quantized from as teacher"
                        )
                    u = _rounding.anchor(w, source, path)
                    self.rounding[id(layer)] = (len(self.rounding), len(self.params), u, w.bits)
                    self.params.append(aq.zeros_like(u))
                self.layers[id(layer)] = (path, layer, slots)
            return layer

        _rebuilt(model, "", take, self.is_layer)

    def codes(self, params: Sequence[Any]) -> list:
        """Each rounded layer's ``(codes, v)`` for ``params``' offsets, as data for
        :meth:`build` (the straight-through estimate; :mod:`arrayq._rounding`)."""
        return [(_rounding.rounded(u, params[slot], bits), params[slot]) for _, slot, u, bits in self.rounding.values()]

    @staticmethod
    def is_layer(o: Any) -> bool:
        w = getattr(o, "weight", None)
        return isinstance(w, QuantizedWeight) and w.mode == "affine" and callable(o) and hasattr(o, "bias")

    def build(self, params: Sequence[Any], codes: Sequence[Any] | None = None) -> Any:
        """The model with each layer's scales and biases (and bias) from ``params``, in the
        layer's own dtypes; the packed codes unchanged, or with learned rounding the codes
        that ``params``' offsets give, packed, or with ``codes`` (:meth:`codes`, for
        training) each rounded layer as a dense :class:`arrayq._rounding.Dense`."""

        def swap(path: str, layer: Any) -> Any:
            _, _, slots = self.layers[id(layer)]
            w = layer.weight
            scales, biases = (aq.astype(params[i], w.dtype) for i in slots[:2])
            bias = aq.astype(params[slots[2]], aq.dtype(layer.bias)) if len(slots) > 2 else layer.bias
            packed = w.packed
            if id(layer) in self.rounding:
                index, slot, u, _ = self.rounding[id(layer)]
                if codes is not None:
                    code, frozen = codes[index]
                    weight = _rounding.dense(w, scales, biases, code, params[slot], frozen)
                    return _rounding.Dense(aq.astype(weight, w.dtype), bias)
                packed = _rounding.packed(w, _rounding.rounded(u, params[slot], w.bits))
            new = QuantizedWeight(packed, scales, biases, w.group_size, w.bits, w.mode, w.dtype)
            return dataclasses.replace(layer, weight=new, bias=bias)

        return _rebuilt(self.model, "", swap, self.is_layer)


def _check_arguments(steps: Any, lr: Any, batches: Any, what: str = "inputs") -> list[tuple]:
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
        raise TypeError(f"steps must be an int, got {type(steps).__name__} {steps!r}")
    if steps < 0:
        raise ValueError(f"steps must be 0 or more, got {steps}")
    _rate("lr", lr)
    return _batches(batches, what)


def _rate(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and float(value) > 0):
        raise ValueError(f"{name} must be a finite number above 0, got {value!r}")


def _batches(batches: Any, what: str) -> list[tuple]:
    if not isinstance(batches, (list, tuple)) or not batches:
        raise TypeError(
            f"{what} must be a non-empty list of batches, each a tuple of forward's arguments, got "
            f"{type(batches).__name__}"
        )
    return [tuple(b) if isinstance(b, (list, tuple)) else (b,) for b in batches]


def _per_output(loss: Any, weights: Any, count: int) -> tuple[list[str], list[float]]:
    """``loss`` and ``weights`` as one entry per output of ``count``, checked."""
    losses = [loss] * count if isinstance(loss, str) else list(loss) if isinstance(loss, (list, tuple)) else None
    if losses is None or len(losses) != count or any(x not in LOSSES for x in losses):
        raise ValueError(
            f"loss must be one of {list(LOSSES)}, or a list of them with one per output of forward ({count}), "
            f"got {loss!r}"
        )
    if weights is None:
        return losses, [1.0] * count
    if not isinstance(weights, (list, tuple)) or len(weights) != count:
        raise ValueError(f"weights must be a list with one number per output of forward ({count}), got {weights!r}")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (math.isfinite(w) and float(w) >= 0):
            raise ValueError(f"weights must be finite numbers of 0 or more, got {w!r}")
    if not sum(weights) > 0:
        raise ValueError(f"weights must not all be 0, got {weights!r}")
    return losses, [float(w) for w in weights]


def _finite(value: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(aq.to_numpy(aq.astype(value, "float32"))))))


def _targets(run: Callable[..., Any], teacher: Any, batches: list[tuple], what: str) -> list[list]:
    """The teacher's outputs (float32) on every batch; QuantizationError where not finite."""
    targets = []
    for i, batch in enumerate(batches):
        outs = [aq.astype(t, "float32") for t in _outputs(run(teacher, *batch))]
        if not all(_finite(t) for t in outs):
            raise QuantizationError(
                f"the teacher's outputs on {what} batch {i} are not all finite (NaN or inf): check the inputs and "
                "the teacher's weights"
            )
        targets.append(outs)
    return targets


def distill_quantized(
    model: Any,
    teacher: Any,
    inputs: Sequence[Any],
    *,
    forward: Callable[..., Any] | None = None,
    steps: int = 200,
    lr: float = 1e-4,
    loss: str | Sequence[str] = "mse",
    weights: Sequence[float] | None = None,
    train_bias: bool = True,
    validation: Sequence[Any] | None = None,
    check_every: int = 20,
    progress: Callable[[int, float], Any] | None = None,
    learn_rounding: bool = False,
    rounding_lr: float | None = None,
) -> Any:
    """A copy of ``model`` whose affine quantized layers have their scales and biases (and,
    with ``train_bias``, their own bias vectors) trained so that ``model``'s outputs match
    ``teacher``'s on ``inputs``; the packed integer codes stay as they are, so the result is
    in MLX's format and every kernel runs it unchanged (what mlx-lm calls DWQ, distilled
    weight quantization). Start from good codes: ``arrayq.nn.quantize(..., method="gptq")``
    or :func:`arrayq.nn.quantize_sequential` (docs/quantization-formats.md, section 10).

    ``model``: a model built from arrayq layers (as :func:`arrayq.nn.quantize` walks them)
    holding layers with an affine :class:`~arrayq.QuantizedWeight` ``weight`` and a
    ``bias`` (``nn.QuantizedLinear``); the others stay as they are. ``teacher``: the
    float model, run once per batch for the targets. ``inputs``: a non-empty list of
    batches, each a tuple of arguments for ``forward`` (a single array is a 1-tuple).
    ``forward(m, *batch)`` returns an array or a list/tuple of arrays (e.g. each block's
    hidden states, padding zeroed); default ``m(*batch)``. Step ``i`` (from 1) trains on
    batch ``(i - 1) % len(inputs)``.

    ``loss``, for each output: ``"mse"``, its mean squared error divided by the teacher's
    mean square (outputs of any scale weigh alike); ``"cosine"``, one minus the mean cosine
    of its rows (last axis) to the teacher's; or ``"similarity"``, for an output (..., B, D)
    of B samples (e.g. sentence embeddings), the mean squared difference between the
    student's and the teacher's (B, B) matrices of cosines between its rows: how the samples
    lie to each other, which a nearest-neighbour search reads (relational distillation). A
    single name applies to every output, a list gives one per output. ``weights``: one
    number (0 or more, not all 0) per output; the objective is the weighted mean of the
    outputs' terms (default: the plain mean). ``steps`` Adam steps (betas 0.9, 0.999) with
    learning rate ``lr`` decayed to 0 along a half cosine, on float32 copies of the
    parameters (cast to their own dtypes, float16 or bfloat16 as given, in every forward
    and in the result).

    Which parameters are returned: without ``validation``, the objective over all of
    ``inputs`` is computed before and after training, and ``model`` itself is returned if
    training did not lower it. With ``validation`` (batches as ``inputs``, of samples not
    trained on), the objective over them is computed before training, every
    ``check_every`` steps and after the last, and the parameters at the check where it was
    least are returned (early stopping; ``model`` itself if that is before training).
    ``progress(step, value)``: called with step 0 and the objective over all batches (the
    validation batches when given) before training, then after each step with that step's
    batch's objective.

    ``learn_rounding``: train the integer codes too (SignRound's learned rounding, module
    :mod:`arrayq._rounding`). Each weight gets an offset in [-0.5, 0.5], starting at 0,
    that may move its code one step towards the float weight's side of the grid (read from
    ``teacher``'s float layer at the same path, which must exist with the same shape); the
    offsets move by signed gradient descent (straight-through estimate of the rounding) at
    ``rounding_lr`` (default ``1 / steps``) with the same cosine decay, while Adam trains
    the scales and biases as above. While training, each such layer runs as a dense matmul
    of its dequantized weight; the result is packed in MLX's format again (the codes that
    the kept offsets give), so every kernel runs it unchanged. Offsets 0 give the starting
    codes exactly, so the start is among the checked candidates as above.

    Needs a backend with automatic differentiation (``Backend.value_and_grad``: MLX and
    JAX); ``model``, ``teacher`` and the batches must be on it (:func:`arrayq.nn.to_backend`).
    On JAX the step is compiled (``jax.jit``): ``forward`` must not read values on the host,
    as inside :func:`arrayq.compile` (e.g. start a BERT from its embedding output rather than
    its token ids, whose range check reads them).

    Raises TypeError for ``steps`` or ``check_every`` that is not an int, ``lr`` or a given
    ``rounding_lr`` that is not a number, ``learn_rounding`` that is not a bool, or
    ``inputs`` or ``validation`` that is not a non-empty list; ValueError for negative
    ``steps``, ``check_every`` below 1, an ``lr`` or ``rounding_lr`` that is not a finite
    number above 0, with ``learn_rounding`` a teacher without a finite float weight of the
    layer's (2-D) shape at one of its paths, an unknown ``loss``, or ``loss`` and
    ``weights`` lists that do not give one valid entry per output (weights: finite, 0 or
    more, not all 0); QuantizationError when ``model`` has no affine quantized layer, the
    teacher's outputs or the starting objective are not finite (NaN or inf inputs), or the
    objective becomes non-finite while training (lower ``lr``);
    :class:`~arrayq.UnsupportedOperationError` on a backend without gradients; and whatever
    ``forward`` raises."""
    batches = _check_arguments(steps, lr, inputs)
    held = None if validation is None else _batches(validation, "validation")
    if isinstance(check_every, bool) or not isinstance(check_every, numbers.Integral):
        raise TypeError(f"check_every must be an int, got {type(check_every).__name__} {check_every!r}")
    if check_every < 1:
        raise ValueError(f"check_every must be 1 or more, got {check_every}")
    if isinstance(loss, str) and loss not in LOSSES:
        raise ValueError(f"loss must be one of {list(LOSSES)}, got {loss!r}")
    if not isinstance(learn_rounding, bool):
        raise TypeError(f"learn_rounding must be a bool, got {type(learn_rounding).__name__} {learn_rounding!r}")
    if rounding_lr is not None:
        _rate("rounding_lr", rounding_lr)
    run = forward if forward is not None else (lambda m, *args: m(*args))
    trainable = _Trainable(model, train_bias, teacher if learn_rounding else None)
    if not trainable.layers:
        raise QuantizationError(
            "the model has no layer with an affine QuantizedWeight to distill; quantize it first "
            "(arrayq.nn.quantize or quantize_sequential, mode='affine')"
        )
    params = trainable.params
    backend = aq.backend_of(params[0])
    assert backend is not None  # (params are arrays)
    targets = _targets(run, teacher, batches, "input")
    held_targets = None if held is None else _targets(run, teacher, held, "validation")
    losses, scale = _per_output(loss, weights, len(targets[0]))

    def objective(p: list, batch: tuple, target: list, codes: list) -> Any:
        student = trainable.build(p, codes if trainable.rounding else None)
        return _objective(_outputs(run(student, *batch)), target, losses, scale)

    if steps == 0:
        return model
    grad = backend.value_and_grad(objective)
    if grad is NotImplemented:
        raise UnsupportedOperationError(
            f"backend {backend.name!r} has no automatic differentiation, which distill_quantized needs; move "
            "the model, the teacher and the inputs to a backend that has it (mlx or jax) with "
            "arrayq.nn.to_backend / arrayq.to_backend, distill, and move the result back"
        )
    checked = list(zip(held, held_targets)) if held is not None and held_targets is not None else None

    def total(p: list) -> float:  # (through grad: one compiled function per batch shape on JAX)
        pairs = checked if checked is not None else zip(batches, targets)
        codes = trainable.codes(p)
        return float(np.mean([float(aq.to_numpy(grad(p, b, t, codes)[0])) for b, t in pairs]))

    start = total(params)
    if not math.isfinite(start):
        raise QuantizationError("the quantized model's objective is not finite at the start; check the inputs")
    if progress is not None:
        progress(0, start)
    best, best_value = params, start
    first = [aq.zeros_like(p) for p in params]
    second = [aq.zeros_like(p) for p in params]
    current = list(params)
    offsets = {slot for _, slot, _, _ in trainable.rounding.values()}
    offset_lr = 1.0 / steps if rounding_lr is None else float(rounding_lr)
    for step in range(1, steps + 1):
        i = (step - 1) % len(batches)
        value, grads = grad(current, batches[i], targets[i], trainable.codes(current))
        value = float(aq.to_numpy(value))
        if not math.isfinite(value):
            raise QuantizationError(f"the objective became {value} at step {step}; lower lr (it was {lr})")
        if progress is not None:
            progress(step, value)
        decay = 0.5 * (1.0 + math.cos(math.pi * (step - 1) / steps))  # cosine decay to 0
        rate = lr * decay
        c1, c2 = 1.0 - BETA1**step, 1.0 - BETA2**step
        for k, g in enumerate(grads):
            if k in offsets:  # learned rounding: signed steps (Adam's moments stay unused)
                current[k] = _rounding.sign_step(current[k], g, offset_lr * decay)
                continue
            first[k] = aq.add(aq.multiply(first[k], BETA1), aq.multiply(g, 1.0 - BETA1))
            second[k] = aq.add(aq.multiply(second[k], BETA2), aq.multiply(aq.square(g), 1.0 - BETA2))
            move = aq.divide(aq.divide(first[k], c1), aq.add(aq.sqrt(aq.divide(second[k], c2)), EPS))
            current[k] = aq.subtract(current[k], aq.multiply(move, rate))
        aq.eval(*current, *first, *second)
        if step == steps or (checked is not None and step % check_every == 0):
            now = total(current)
            if now < best_value:
                best, best_value = list(current), now
    return model if best is params else trainable.build(best)


def reround_quantized(model: Any, reference: Any, calibration: Any, *, damping: float | None = None) -> Any:
    """A copy of ``model`` whose affine quantized layers named in ``calibration`` have their
    integer codes chosen again by GPTQ for their own scales and biases, which stay as they
    are (as distilled by :func:`distill_quantized`, for instance); the rest of the model is
    unchanged and the result is in MLX's format. Alternating the two is coordinate descent:
    distillation moves the grid for fixed codes, re-rounding picks the codes for the new grid
    (docs/quantization-formats.md, section 10).

    ``reference``: the float model ``model`` was quantized from (the same structure; its
    dense layer at each path gives the weight ``w`` (R, K) to approach). ``calibration``: a
    dict, layer path (as :func:`arrayq.nn.quantize` names it) -> that layer's inputs in the
    float model, (n_samples, K), any backend. Each row of each layer keeps whichever codes,
    new or old, give the smaller GPTQ objective ``(w_r - wq_r) H (w_r - wq_r)^T`` on them
    (``H = X^T X / n``; never worse there). ``damping``: GPTQ's (None: its default).

    Raises ValueError for a ``calibration`` path that names no affine quantized layer of
    ``model`` or no dense layer of ``reference`` of the same shape; QuantizationError for
    calibration of the wrong shape or not finite, or a bad ``damping``."""
    from .quant import _gptq, _methods, _search

    if not isinstance(calibration, dict):
        raise TypeError(f"calibration must be a dict of layer path -> inputs, got {type(calibration).__name__}")
    _methods.check_method("gptq", "affine", np.zeros((1, 1)), None, damping)
    dense: dict[str, Any] = {}

    def collect(path: str, layer: Any) -> Any:
        dense[path] = layer
        return layer

    _rebuilt(reference, "", collect, lambda o: hasattr(o, "weight") and callable(getattr(o, "quantize", None)))
    done: set[str] = set()

    def swap(path: str, layer: Any) -> Any:
        if path not in calibration:
            return layer
        qw = layer.weight
        if len(qw.shape) != 2:
            raise ValueError(f"{path!r}: reround_quantized takes 2-D weights, got shape {tuple(qw.shape)}")
        rows, k = (int(d) for d in qw.shape)
        ref = dense.get(path)
        if ref is None or tuple(int(d) for d in ref.weight.shape) != (rows, k):
            raise ValueError(f"reference has no dense layer of shape ({rows}, {k}) at {path!r} to re-round towards")
        x = _methods.host_calibration(aq.asarray(calibration[path]), k)
        current = (
            _rounding.codes_of(qw),
            _rounding.host(qw.scales, rows),
            _rounding.host(qw.biases, rows),
        )
        damp = _gptq.DAMPING if damping is None else float(damping)
        stored = _search.narrow_dtype(aq.dtype(qw.scales).name)
        w = _rounding.host(ref.weight, rows)
        q, _, _ = _gptq.gptq(w, x, current, qw.bits, qw.group_size, stored, None, damp, grid=True)
        done.add(path)
        new = QuantizedWeight(_rounding.packed(qw, q), qw.scales, qw.biases, qw.group_size, qw.bits, qw.mode, qw.dtype)
        return dataclasses.replace(layer, weight=new)

    result = _rebuilt(model, "", swap, _Trainable.is_layer)
    missing = sorted(set(calibration) - done)
    if missing:
        raise ValueError(f"calibration names no affine quantized layer of the model at {missing[:3]!r}")
    return result
