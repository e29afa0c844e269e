"""A QuantizedWeight's facts (its checks, logical shape, batch, backend) are computed once,
when it is built; the quantized ops check only their other arguments per call, and still
refuse every bad x with the same QuantizationError. Behaviour, not timing (the timing is
``arrayq bench --only dispatch``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

import arrayq as aq
import arrayq.quant as quant
from arrayq import QuantizationError
from arrayq._registry import forget_types

CALLS = 25


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """Count calls of ``arrayq.quant.<name>`` (the module's own global, as its code calls it)."""
    real = getattr(quant, name)
    count = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(quant, name, counted)
    return count


def _weights(lib: str) -> tuple[Any, Any, Any]:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 96, 128), dtype=np.float32)
    x = rng.standard_normal((1, 128), dtype=np.float32)
    if lib == "mlx":
        mx = pytest.importorskip("mlx.core")
        w, x = mx.array(w), mx.array(x)
    experts = aq.quantize(w, group_size=64, bits=4)
    return x, experts, aq.QuantizedWeight(experts.packed[1], experts.scales[1], experts.biases[1], 64, 4)


@pytest.mark.parametrize("lib", ["numpy", "mlx"])
def test_weight_checks_and_facts_run_once_not_per_call(monkeypatch: pytest.MonkeyPatch, lib: str) -> None:
    x, experts, _ = _weights(lib)
    facts, formats, arrays = (_counting(monkeypatch, n) for n in ("_weight_facts", "check_format", "_check_array"))
    qw = aq.QuantizedWeight(experts.packed[2], experts.scales[2], experts.biases[2], 64, 4)
    assert (facts[0], formats[0], arrays[0]) == (1, 1, 3)  # packed, scales, biases
    layer = aq.nn.QuantizedLinear(qw)
    idx = aq.to_backend(np.array([3, 0], np.uint32), lib)
    x3 = aq.expand_dims(x, axis=0)
    for call in range(CALLS + 1):
        if call == 1:  # (the first call may meet x's dtype for the first time in this process)
            arrays[0] = 0
        aq.linalg.quantized_matmul(x, qw)
        aq.linalg.quantized_matmul(x[0], qw)
        layer(x)
        aq.dequantize(qw)
        aq.linalg.gather_qmm(x3, experts, rhs_indices=idx)
    assert (facts[0], formats[0]) == (1, 1), "the weight was re-validated per call"
    assert arrays[0] == CALLS  # only gather_qmm's index array, per call: x's checks are cheap
    expected = aq.to_numpy(aq.dequantize(qw)) @ aq.to_numpy(x)[0]
    np.testing.assert_allclose(aq.to_numpy(aq.linalg.quantized_matmul(x[0], qw)), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("lib", ["numpy", "mlx"])
def test_x_is_still_checked_on_every_call(lib: str) -> None:
    """After many good calls (the fast path warm), each bad x still raises its message."""
    x, experts, qw = _weights(lib)
    for _ in range(CALLS):
        aq.linalg.quantized_matmul(x, qw)
        aq.linalg.gather_qmm(aq.expand_dims(x, axis=0), experts)
    bad = [
        (x[:, :64], "x's last dimension is 64 but the weight expects K = 128"),
        (aq.astype(x, aq.int32), "takes x of dtype"),
        (x[0, 0], "at least 1 dimension"),
        ([1.0] * 128, "must be an array"),
    ]
    if lib == "numpy":
        bad.append((np.asarray(x).astype(">f4"), "non-native byte order"))
    for bad_x, message in bad:
        with pytest.raises(QuantizationError, match=message):
            aq.linalg.quantized_matmul(bad_x, qw)
        with pytest.raises(QuantizationError, match=message):
            aq.nn.QuantizedLinear(qw)(bad_x)
    with pytest.raises(QuantizationError, match="x's last dimension is 96 but the weight expects K = 128"):
        aq.linalg.quantized_matmul(aq.zeros((1, 96), dtype=aq.float32), qw)  # K of transpose=False would be 96
    aq.linalg.quantized_matmul(aq.zeros((1, 96), dtype=aq.float32), qw, transpose=False)
    with pytest.raises(QuantizationError, match="at least 2 dimensions"):
        aq.linalg.gather_qmm(x[0], experts)
    with pytest.raises(QuantizationError, match=r"rhs_indices must lie in \[0, 4\)"):
        aq.linalg.gather_qmm(aq.expand_dims(x, axis=0), experts, rhs_indices=aq.asarray(np.array([4], np.int32)))


def test_facts_follow_a_rebuilt_weight_and_a_changed_registry() -> None:
    x, experts, qw = _weights("numpy")
    first = aq.to_numpy(aq.linalg.quantized_matmul(x, qw))
    half = dataclasses.replace(qw, packed=qw.packed[:48], scales=qw.scales[:48], biases=qw.biases[:48])
    assert half.shape == (48, 128) and qw.shape == (96, 128)
    assert aq.linalg.quantized_matmul(x, half).shape == (1, 48)
    forget_types()  # the type -> backend cache dropped (as when a backend is registered)
    np.testing.assert_array_equal(aq.to_numpy(aq.linalg.quantized_matmul(x, qw)), first)
    np.testing.assert_array_equal(aq.to_numpy(aq.dequantize(qw)), aq.to_numpy(aq.dequantize(experts)[1]))


def test_mixed_backends_still_resolve() -> None:
    """x on NumPy meets a weight on MLX (and a weight whose arrays are split between the two):
    NumPy gives way, as before; the weight's cached facts do not skip that."""
    mx = pytest.importorskip("mlx.core")
    x, _, qw = _weights("numpy")
    expected = aq.to_numpy(aq.linalg.quantized_matmul(x, qw))
    on_mlx = aq.to_backend(qw, "mlx")
    split = aq.QuantizedWeight(qw.packed, on_mlx.scales, on_mlx.biases, 64, 4)
    for w in (on_mlx, split):
        out = aq.linalg.quantized_matmul(x, w)
        assert isinstance(out, mx.array)
        np.testing.assert_allclose(aq.to_numpy(out), expected, rtol=1e-4, atol=1e-4)
        assert isinstance(aq.dequantize(w), mx.array)
