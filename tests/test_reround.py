"""arrayq.nn.reround_quantized: the codes of a quantized model chosen again by GPTQ for its
own (e.g. distilled) scales and biases, which stay as they are.

Expectations are computed here in NumPy: the weight rebuilt by hand from the result's own
packed words (4-bit codes unpacked with shifts and masks), scales and biases; the GPTQ
objective ``(w - wq) H (w - wq)^T`` written out; MLX's mx.dequantize on the result.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

import arrayq as aq
from arrayq import QuantizationError, nn


@dataclasses.dataclass
class Two:
    up: Any
    down: Any

    def __call__(self, x: Any) -> Any:
        return self.down(aq.tanh(self.up(x)))


def _float_model(rng: np.random.Generator) -> Two:
    def linear(n: int, k: int) -> nn.Linear:
        w = (rng.standard_normal((n, k)) / math.sqrt(k)).astype(np.float32)
        return nn.Linear(aq.asarray(w), aq.asarray((0.1 * rng.standard_normal(n)).astype(np.float32)))

    return Two(linear(64, 64), linear(32, 64))


def _weight(qw: aq.QuantizedWeight) -> np.ndarray:
    """4-bit: eight codes a word, lowest bits first, times each group's scale plus its bias."""
    packed = np.asarray(aq.to_numpy(qw.packed)).astype(np.uint64)
    codes = ((packed[..., None] >> (4 * np.arange(8, dtype=np.uint64))) & 15).reshape(packed.shape[0], -1)
    s, b = (np.repeat(np.asarray(aq.to_numpy(a), np.float64), qw.group_size, axis=1) for a in (qw.scales, qw.biases))
    return codes * s + b


def _objective(w: np.ndarray, wq: np.ndarray, x: np.ndarray) -> np.ndarray:
    e = w - wq
    return np.einsum("rk,kj,rj->r", e, x.T @ x / len(x), e)


def _setup(seed: int = 0, shift: float = 1.0):
    rng = np.random.default_rng(seed)
    model = _float_model(rng)
    x = rng.standard_normal((200, 64)) * np.exp(rng.uniform(-1, 1, 64))  # inputs of unequal size, as real ones
    h = np.tanh(x @ np.asarray(aq.to_numpy(model.up.weight)).T.astype(np.float64))
    calibration = {"up": x.astype(np.float32), "down": h.astype(np.float32)}
    quantized = nn.quantize(model, bits=4, group_size=32)
    if shift != 1.0:  # a moved grid, as distillation leaves it: the old codes no longer fit it

        def move(path: str, layer: Any) -> Any:
            w = layer.weight
            scales = aq.multiply(w.scales, shift)
            return dataclasses.replace(
                layer, weight=aq.QuantizedWeight(w.packed, scales, w.biases, w.group_size, w.bits, w.mode, w.dtype)
            )

        quantized = Two(move("up", quantized.up), move("down", quantized.down))
    return model, quantized, calibration


@pytest.mark.parametrize("shift", [1.0, 1.15])
def test_keeps_the_grid_and_never_raises_the_objective(shift):
    model, quantized, calibration = _setup(shift=shift)
    out = nn.reround_quantized(quantized, model, calibration)
    for name in ("up", "down"):
        before, after = getattr(quantized, name).weight, getattr(out, name).weight
        # the grid is the input's, bit for bit; only the packed codes change
        for a, b in ((before.scales, after.scales), (before.biases, after.biases)):
            np.testing.assert_array_equal(np.asarray(aq.to_numpy(a)), np.asarray(aq.to_numpy(b)))
        w = np.asarray(aq.to_numpy(getattr(model, name).weight), np.float64)
        x = calibration[name].astype(np.float64)
        old, new = _objective(w, _weight(before), x), _objective(w, _weight(after), x)
        # per row never worse (float64 sums of the same products: 1e-12 relative slack)
        assert np.all(new <= old * (1 + 1e-12))
        if shift != 1.0:  # stale codes on a moved grid: GPTQ finds much better ones
            assert new.sum() < 0.5 * old.sum()
    assert out.up.bias is quantized.up.bias


def test_result_is_mlx_format():
    mx = pytest.importorskip("mlx.core")
    model, quantized, calibration = _setup(1, shift=0.9)
    qw = nn.reround_quantized(quantized, model, calibration).up.weight
    arrays = (mx.array(np.asarray(aq.to_numpy(a))) for a in (qw.packed, qw.scales, qw.biases))
    theirs = mx.dequantize(*arrays, group_size=32, bits=4)
    np.testing.assert_array_equal(np.asarray(theirs), np.asarray(aq.to_numpy(aq.dequantize(qw))))
    # MLX rounds q*s and +b to float32 (values ~0.1: ulp 7e-9 each); our sum is float64
    np.testing.assert_allclose(np.asarray(theirs), _weight(qw), rtol=0, atol=1e-7)


def test_only_named_layers_change():
    model, quantized, calibration = _setup(2, shift=1.2)
    out = nn.reround_quantized(quantized, model, {"down": calibration["down"]})
    assert out.up is quantized.up and out.down is not quantized.down


def test_bad_arguments():
    model, quantized, calibration = _setup(3)
    with pytest.raises(ValueError, match="no affine quantized layer"):
        nn.reround_quantized(quantized, model, {"side": calibration["up"]})
    with pytest.raises(ValueError, match="no dense layer of shape"):
        nn.reround_quantized(quantized, Two(model.down, model.down), calibration)
    with pytest.raises(TypeError, match="dict"):
        nn.reround_quantized(quantized, model, [calibration["up"]])
    for bad in (np.ones((5, 63), np.float32), np.full((5, 64), np.nan, np.float32), np.ones((0, 64), np.float32)):
        with pytest.raises(QuantizationError, match="calibration"):
            nn.reround_quantized(quantized, model, {"up": bad})
    for damping in (0.0, -1.0, math.nan):
        with pytest.raises(QuantizationError, match="damping"):
            nn.reround_quantized(quantized, model, calibration, damping=damping)
