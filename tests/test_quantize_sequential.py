"""arrayq.nn.quantize_sequential: GPTQ layer after layer, each layer calibrated on the inputs
it gets from the layers already quantized and fitted to the float model's outputs.

The expectation is built here by hand, independently of the function's walking, recording
and ordering: the same model quantized layer by layer with ``arrayq.quantize`` on inputs
computed here in NumPy (``calibration=`` from the partly quantized model, computed with the
dequantized weights, ``float_calibration=`` from the float one). GPTQ itself is tested in
tests/test_quant_methods.py (the format against MLX, never worse than rtn).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import arrayq as aq
from arrayq import QuantizationError, nn


def _correlated(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    basis = rng.standard_normal((8, k))
    x = (rng.standard_normal((n, 8)) * np.linspace(3.0, 0.3, 8)) @ basis
    return (x + 0.1 * rng.standard_normal((n, k))).astype(np.float32)


@dataclasses.dataclass
class Mlp:
    """``down(tanh(up(x)))``; ``unused`` is never called."""

    up: nn.Linear
    down: nn.Linear
    unused: nn.Linear

    def __call__(self, x: Any) -> Any:
        return self.down(aq.tanh(self.up(x)))


def _mlp(seed: int = 0) -> Mlp:
    rng = np.random.default_rng(seed)

    def linear(out: int, k: int) -> nn.Linear:
        w = (rng.standard_normal((out, k)) / np.sqrt(k)).astype(np.float32)
        return nn.Linear(w, (0.1 * rng.standard_normal(out)).astype(np.float32))

    return Mlp(up=linear(128, 64), down=linear(32, 128), unused=linear(32, 64))


def _hidden(layer: Any, x: np.ndarray) -> np.ndarray:
    """tanh(layer(x)) as the model computes it (the layers' own float32 arithmetic: the
    refitted scales follow their inputs continuously, so the last ulp matters)."""
    return np.asarray(aq.to_numpy(aq.tanh(layer(x))))


def _mean_shift(layer: Any, new: Any, x: np.ndarray, xf: np.ndarray) -> np.ndarray:
    """The float layer's mean output on xf less the quantized one's on x, from the inputs'
    float64 means (the mean of a linear map is the map of the mean; the same rounding as
    the function's, so the next layer's inputs match bit for bit; that the result is the
    mean output error is checked through the layers' outputs below)."""
    w = np.asarray(layer.weight, np.float64)
    wq = np.asarray(aq.to_numpy(aq.dequantize(new.weight, dtype="float32")), np.float64)
    return xf.astype(np.float64).mean(axis=0) @ w.T - x.astype(np.float64).mean(axis=0) @ wq.T


def _by_hand(model: Mlp, x: np.ndarray, bits: int, group_size: int, correct_bias: bool = True) -> tuple:
    """up on x (its float inputs: the first layer's inputs are the same in both models);
    down on tanh(up_q(x)), fitted to tanh(up(x)); with ``correct_bias`` each bias moved by
    the mean output error before the next layer sees it. The two quantized layers."""
    how = {"bits": bits, "group_size": group_size, "method": "gptq"}
    up = nn.QuantizedLinear(aq.quantize(model.up.weight, calibration=x, float_calibration=x, **how), model.up.bias)
    if correct_bias:
        up = nn.QuantizedLinear(up.weight, (model.up.bias + _mean_shift(model.up, up, x, x)).astype(np.float32))
    hidden_q, hidden_f = _hidden(up, x), _hidden(model.up, x)
    down_w = aq.quantize(model.down.weight, calibration=hidden_q, float_calibration=hidden_f, **how)
    down = nn.QuantizedLinear(down_w, model.down.bias)
    if correct_bias:
        shift = _mean_shift(model.down, down, hidden_q, hidden_f)
        down = nn.QuantizedLinear(down_w, (model.down.bias + shift).astype(np.float32))
    return up, down


def _same(got: aq.QuantizedWeight, want: aq.QuantizedWeight) -> None:
    for a, b in ((got.packed, want.packed), (got.scales, want.scales), (got.biases, want.biases)):
        np.testing.assert_array_equal(aq.to_numpy(a), aq.to_numpy(b))


@pytest.mark.parametrize("correct_bias", [True, False])
@pytest.mark.parametrize(("bits", "group_size"), [(4, 64), (3, 32)])
def test_layers_are_quantized_in_order_on_the_partly_quantized_inputs(bits, group_size, correct_bias):
    """Bit for bit the hand-built sequence; the layer run never calls stays dense, the
    float model is not modified."""
    model, x = _mlp(), _correlated(np.random.default_rng(1), 96, 64)
    got = nn.quantize_sequential(model, lambda m: m(x), bits=bits, group_size=group_size, correct_bias=correct_bias)
    want_up, want_down = _by_hand(model, x, bits, group_size, correct_bias)
    assert isinstance(got.up, nn.QuantizedLinear) and isinstance(got.down, nn.QuantizedLinear)
    assert (got.up.weight.bits, got.up.weight.group_size, got.up.weight.mode) == (bits, group_size, "affine")
    for mine, theirs in ((got.up, want_up), (got.down, want_down)):
        _same(mine.weight, theirs.weight)
        np.testing.assert_array_equal(np.asarray(aq.to_numpy(mine.bias)), theirs.bias)
    assert got.unused is model.unused and isinstance(model.up, nn.Linear)
    if not correct_bias:
        assert got.up.bias is model.up.bias and got.down.bias is model.down.bias


def test_corrected_bias_matches_the_mean_output():
    """The first layer's mean output over the calibration rows equals the float layer's,
    within float32 rounding of outputs of size ~1 (measured 1e-7)."""
    model, x = _mlp(9), _correlated(np.random.default_rng(10), 200, 64)
    got = nn.quantize_sequential(model, lambda m: m(x), bits=3, group_size=32)
    mean = np.asarray(aq.to_numpy(got.up(x)), np.float64).mean(axis=0)
    want = np.asarray(aq.to_numpy(model.up(x)), np.float64).mean(axis=0)
    np.testing.assert_allclose(mean, want, atol=2e-6)
    plain = nn.quantize_sequential(model, lambda m: m(x), bits=3, group_size=32, correct_bias=False)
    assert np.abs(np.asarray(aq.to_numpy(plain.up(x)), np.float64).mean(axis=0) - want).max() > 1e-4


def test_mask_leaves_the_unmasked_rows_out():
    """Inputs (batch, length, features) with a (batch, length) mask: what the masked-out rows
    hold does not matter (garbage or zeros, the same result), the first layer gets exactly
    the kept rows (as calibrating on them alone), and without the mask the garbage counts."""
    model, rng = _mlp(2), np.random.default_rng(3)
    kept = _correlated(rng, 40, 64)
    garbage, zeros = 50.0 * rng.standard_normal((24, 64)).astype(np.float32), np.zeros((24, 64), np.float32)
    batch, quiet = (np.concatenate([kept, pad]).reshape(4, 16, 64) for pad in (garbage, zeros))
    mask = (np.arange(64) < 40).reshape(4, 16)
    masked = nn.quantize_sequential(model, lambda m: m(batch), mask=mask)
    same = nn.quantize_sequential(model, lambda m: m(quiet), mask=aq.to_backend(mask, "numpy"))
    _same(masked.up.weight, same.up.weight)
    _same(masked.down.weight, same.down.weight)
    _same(masked.up.weight, nn.quantize_sequential(model, lambda m: m(kept)).up.weight)
    unmasked = nn.quantize_sequential(model, lambda m: m(batch))
    assert not np.array_equal(aq.to_numpy(unmasked.up.weight.packed), aq.to_numpy(masked.up.weight.packed))


def test_predicate_chooses_layers_and_their_options():
    model, x = _mlp(4), _correlated(np.random.default_rng(5), 64, 64)
    seen = []

    def predicate(path, layer):
        seen.append(path)
        return {"bits": 8} if path == "down" else False

    got = nn.quantize_sequential(model, lambda m: m(x), predicate=predicate, correct_bias=False)
    assert seen == ["up", "down", "unused"]
    assert got.up is model.up and got.down.weight.bits == 8
    # down alone is calibrated on the float up's outputs (nothing before it is quantized)
    hidden = _hidden(model.up, x)
    want = aq.quantize(model.down.weight, bits=8, method="gptq", calibration=hidden, float_calibration=hidden)
    _same(got.down.weight, want)


def test_a_shared_layer_is_quantized_once():
    @dataclasses.dataclass
    class Twice:
        layer: nn.Linear
        again: nn.Linear

        def __call__(self, x):
            return self.again(self.layer(x))

    square = _mlp(6).up  # 64 -> 128: not square; build a square one
    w = np.asarray(square.weight)[:64]
    shared = nn.Linear(w, None)
    got = nn.quantize_sequential(Twice(shared, shared), lambda m: m(_correlated(np.random.default_rng(7), 32, 64)))
    assert got.layer is got.again and isinstance(got.layer, nn.QuantizedLinear)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"method": "mse"}, QuantizationError, r"sets \['method'\], which quantize_sequential chooses"),
        ({"calibration": np.ones((4, 64), np.float32)}, QuantizationError, "chooses itself"),
        ({"mode": "mxfp4"}, QuantizationError, r"\['mode'\]"),
        ({"predicate": lambda p, layer: {"float_calibration": 1}}, QuantizationError, "predicate's dict for 'up'"),
        ({"predicate": lambda p, layer: "yes"}, TypeError, "must return a bool or a dict"),
        ({"mask": np.ones((3, 3), bool)}, QuantizationError, r"mask has shape \(3, 3\).*up got inputs"),
        ({"mask": np.array(["a"] * 8)}, QuantizationError, "boolean or numeric"),
        ({"group_size": 128}, QuantizationError, r"cannot quantize up \(Linear\): .*divisible by group_size 128"),
        ({"group_size": 48}, QuantizationError, "takes group_size in"),
        ({"predicate": lambda p, layer: p == "unused"}, ValueError, "called none of the chosen layers"),
    ],
)
def test_refusals(kwargs, error, message):
    x = _correlated(np.random.default_rng(8), 8, 64)
    with pytest.raises(error, match=message):
        nn.quantize_sequential(_mlp(), lambda m: m(x), **kwargs)


def test_what_run_raises_comes_through():
    def run(m):
        raise RuntimeError("no data")

    with pytest.raises(RuntimeError, match="no data"):
        nn.quantize_sequential(_mlp(), run)


def test_narrow_layers_keep_their_dtypes():
    """float16 weights and biases (and activations): the scales, biases and the corrected
    layer bias stay float16."""
    model = _mlp(11)
    half = Mlp(*(nn.Linear(layer.weight.astype(np.float16), layer.bias.astype(np.float16)) for layer in
                 (model.up, model.down, model.unused)))  # fmt: skip
    x = _correlated(np.random.default_rng(12), 64, 64).astype(np.float16)
    got = nn.quantize_sequential(half, lambda m: m(x))
    for layer in (got.up, got.down):
        assert layer.weight.scales.dtype == np.float16 and np.asarray(aq.to_numpy(layer.bias)).dtype == np.float16
