"""arrayq.nn.distill_quantized: a quantized model's affine scales and biases (and its layers'
biases) trained so that its outputs match the float teacher's, the codes kept.

The expectations are computed here in NumPy, independently of the function: the objective
from weights rebuilt by hand (4-bit codes unpacked with shifts and masks from the result's
own packed words, times its scales, plus its biases), and the gradients of the backend hook
from the chain rule written out for one quantized matmul. The real-model measurement
(all-MiniLM-L6-v2) is benchmarks/quantization_quality.py's, not a test.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from typing import Any

import numpy as np
import pytest

import arrayq as aq
from arrayq import QuantizationError, UnsupportedOperationError, nn


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


#: the backends with automatic differentiation (Backend.value_and_grad)
GRAD_BACKENDS = [
    pytest.param(name, marks=pytest.mark.skipif(not _has(name), reason=f"{name} not installed"))
    for name in ("mlx", "jax")
]


@dataclasses.dataclass
class Tiny:
    """``down(tanh(up(x)))``, 32 -> 64 -> 32."""

    up: Any
    down: Any

    def __call__(self, x: Any) -> Any:
        return self.down(aq.tanh(self.up(x)))


def _float_model(rng: np.random.Generator, dtype: str = "float32") -> Tiny:
    def linear(n: int, k: int) -> nn.Linear:
        w = (rng.standard_normal((n, k)) / math.sqrt(k)).astype(np.float32)
        b = (0.1 * rng.standard_normal(n)).astype(np.float32)
        return nn.Linear(aq.astype(aq.asarray(w), dtype), aq.astype(aq.asarray(b), dtype))

    return Tiny(linear(64, 32), linear(32, 64))


def _weight(qw: aq.QuantizedWeight) -> np.ndarray:
    """The 4-bit weight from its own arrays: eight codes a word, lowest bits first
    (MLX's packing), each group's code * scale + bias, in float64."""
    packed = np.asarray(aq.to_numpy(qw.packed)).astype(np.uint64)
    codes = (packed[..., None] >> (4 * np.arange(8, dtype=np.uint64))) & 15
    codes = codes.reshape(packed.shape[0], -1).astype(np.float64)
    scales, biases = (np.asarray(aq.to_numpy(aq.astype(a, "float32")), np.float64) for a in (qw.scales, qw.biases))
    return codes * np.repeat(scales, qw.group_size, axis=1) + np.repeat(biases, qw.group_size, axis=1)


def _layer(layer: Any) -> tuple[np.ndarray, np.ndarray]:
    b = np.asarray(aq.to_numpy(aq.astype(layer.bias, "float32")), np.float64)
    if isinstance(layer, nn.QuantizedLinear):
        return _weight(layer.weight), b
    return np.asarray(aq.to_numpy(aq.astype(layer.weight, "float32")), np.float64), b


def _numpy_forward(model: Tiny, x: np.ndarray) -> np.ndarray:
    (w1, b1), (w2, b2) = _layer(model.up), _layer(model.down)
    return np.tanh(x @ w1.T + b1) @ w2.T + b2


def _objective(model: Tiny, teacher: Tiny, xs: list[np.ndarray]) -> float:
    """The "mse" objective by hand: mean over batches of mean((s - t)^2) / mean(t^2)."""
    values = []
    for x in xs:
        s, t = _numpy_forward(model, x), _numpy_forward(teacher, x)
        values.append(np.mean((s - t) ** 2) / np.mean(t**2))
    return float(np.mean(values))


def _setup(backend: str, dtype: str = "float32", seed: int = 0) -> tuple[Tiny, Tiny, list[np.ndarray], list]:
    rng = np.random.default_rng(seed)
    teacher = _float_model(rng, dtype)
    student = nn.quantize(teacher, bits=4, group_size=32)  # rtn: far from the best scales
    xs = [rng.standard_normal((24, 32)).astype(np.float32) for _ in range(3)]
    on = lambda o: nn.to_backend(o, backend)  # noqa: E731
    batches = [(aq.astype(aq.to_backend(x, backend), dtype),) for x in xs]
    return on(student), on(teacher), xs, batches


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_lowers_its_objective_and_keeps_the_codes(backend: str) -> None:
    pytest.importorskip(backend)
    student, teacher, xs, batches = _setup(backend)
    before = _objective(student, teacher, xs)
    out = nn.distill_quantized(student, teacher, batches, steps=60, lr=2e-3)
    after = _objective(out, teacher, xs)
    # rtn 4-bit leaves a few per cent of the output's energy; 60 steps remove a good part
    assert after < 0.8 * before, (before, after)
    for old, new in ((student.up, out.up), (student.down, out.down)):
        np.testing.assert_array_equal(aq.to_numpy(new.weight.packed), aq.to_numpy(old.weight.packed))
        assert (new.weight.group_size, new.weight.bits, new.weight.mode) == (32, 4, "affine")
    assert out is not student and student.up.weight.scales is not out.up.weight.scales
    assert _objective(student, teacher, xs) == before  # the input model is not modified


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_result_is_mlx_format_in_the_weights_dtype(backend: str, dtype: str) -> None:
    pytest.importorskip(backend)
    student, teacher, xs, batches = _setup(backend, dtype)
    out = nn.distill_quantized(student, teacher, batches, steps=20, lr=2e-3, loss="cosine")
    for layer in (out.up, out.down):
        qw = layer.weight
        assert aq.dtype(qw.scales).name == dtype and aq.dtype(qw.biases).name == dtype
        assert aq.dtype(layer.bias).name == dtype
        # arrayq's dequantize of the result is codes * scale + bias of its own arrays, computed
        # in the scales' dtype as MLX does: the product and the sum each rounded once, so within
        # two half-ulps of the larger of |code * scale| <= 15 |scale| and |bias| (a sum that
        # nearly cancels has a large relative error, but not a large absolute one)
        got = np.asarray(aq.to_numpy(aq.dequantize(qw, dtype="float32")), np.float64)
        eps = {"float16": 2.0**-10, "bfloat16": 2.0**-7}[dtype]
        size = np.repeat(15 * np.abs(_host(qw.scales)) + np.abs(_host(qw.biases)), 32, axis=1)
        assert np.all(np.abs(got - _weight(qw)) <= eps * size)
    assert out.up.weight.scales is not student.up.weight.scales  # trained, not handed back


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_never_worse_than_its_start(backend: str) -> None:
    # a learning rate far too large: the result is the input model unchanged, or better
    pytest.importorskip(backend)
    student, teacher, xs, batches = _setup(backend, seed=1)
    before = _objective(student, teacher, xs)
    out = nn.distill_quantized(student, teacher, batches, steps=5, lr=0.5)
    assert out is student or _objective(out, teacher, xs) < before
    assert nn.distill_quantized(student, teacher, batches, steps=0) is student


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
@pytest.mark.parametrize("rows", [5, 130])  # (MLX's CPU: the quantized kernel, and dequantize + matmul from 128)
def test_backend_gradient_matches_the_chain_rule(backend: str, rows: int) -> None:
    """The backend hook differentiates a quantized matmul with respect to the scales and
    biases: L = sum((x @ W^T - t)^2), W = code * scale + bias per group, so
    dL/dW = 2 (y - t)^T x and each group's dL/dscale = sum(dL/dW * code), dL/dbias = sum(dL/dW)."""
    pytest.importorskip(backend)
    rng = np.random.default_rng(3)
    w = rng.standard_normal((16, 64)).astype(np.float32)
    x, t = rng.standard_normal((rows, 64)).astype(np.float32), rng.standard_normal((rows, 16)).astype(np.float32)
    qw = aq.to_backend(aq.quantize(w, group_size=32, bits=4), backend)
    xb, tb = aq.to_backend(x, backend), aq.to_backend(t, backend)

    def loss(p: list, x: Any, t: Any) -> Any:
        q = aq.QuantizedWeight(qw.packed, p[0], p[1], 32, 4)
        return aq.sum(aq.square(aq.subtract(aq.linalg.quantized_matmul(x, q), t)))

    grad = aq.backend_of(xb).value_and_grad(loss)
    value, (g_scales, g_biases) = grad([qw.scales, qw.biases], xb, tb)
    weight = _weight(qw)
    residual = x.astype(np.float64) @ weight.T - t
    d_w = 2 * residual.T @ x.astype(np.float64)
    codes = (weight - np.repeat(_host(qw.biases), 32, axis=1)) / np.repeat(_host(qw.scales), 32, axis=1)
    want_s = (d_w * codes).reshape(16, 2, 32).sum(-1)
    want_b = d_w.reshape(16, 2, 32).sum(-1)
    # float32 sums of up to ~8000 terms of size ~10: relative 1e-4 of the largest gradient
    np.testing.assert_allclose(float(aq.to_numpy(value)), np.sum(residual**2), rtol=1e-5)
    np.testing.assert_allclose(_host(g_scales), want_s, atol=1e-4 * np.abs(want_s).max())
    np.testing.assert_allclose(_host(g_biases), want_b, atol=1e-4 * np.abs(want_b).max())


def _host(a: Any) -> np.ndarray:
    return np.asarray(aq.to_numpy(a), np.float64)


def test_bad_input() -> None:
    pytest.importorskip("mlx")
    student, teacher, _, batches = _setup("mlx")
    for steps, error in ((-1, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError)):
        with pytest.raises(error, match="steps"):
            nn.distill_quantized(student, teacher, batches, steps=steps)
    for lr, error in ((0.0, ValueError), (-1e-3, ValueError), (math.nan, ValueError), (math.inf, ValueError)):
        with pytest.raises(error, match="lr"):
            nn.distill_quantized(student, teacher, batches, lr=lr)
    for lr in ("1e-3", None, True):
        with pytest.raises(TypeError, match="lr"):
            nn.distill_quantized(student, teacher, batches, lr=lr)
    with pytest.raises(ValueError, match="loss"):
        nn.distill_quantized(student, teacher, batches, loss="kl")
    for inputs in ([], batches[0][0], None):
        with pytest.raises(TypeError, match="inputs"):
            nn.distill_quantized(student, teacher, inputs)
    with pytest.raises(QuantizationError, match="no layer with an affine QuantizedWeight"):
        nn.distill_quantized(teacher, teacher, batches)
    nan = np.ones((4, 32), np.float32)
    nan[1, 3] = np.nan
    with pytest.raises(QuantizationError, match="not all finite"):
        nn.distill_quantized(student, teacher, [(aq.to_backend(nan, "mlx"),)])


def test_a_backend_without_gradients_is_refused() -> None:
    student, teacher, _, _ = _setup("numpy")
    batch = [(aq.asarray(np.ones((4, 32), np.float32)),)]
    with pytest.raises(UnsupportedOperationError, match="no automatic differentiation.*mlx or jax"):
        nn.distill_quantized(student, teacher, batch, steps=1)


def _cosines(a: np.ndarray) -> np.ndarray:
    unit = a / np.linalg.norm(a, axis=-1, keepdims=True)
    return unit @ unit.T


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_similarity_loss_and_weights_match_a_hand_computation(backend: str) -> None:
    """The objective before training (progress's step 0) with one "mse" and one "similarity"
    output weighted 1 and 3: per batch (1 * mse + 3 * sim) / 4, mse = mean((s - t)^2) /
    mean(t^2), sim = mean((C_s - C_t)^2) with C the rows' cosine matrix, computed here in
    NumPy from the weights rebuilt by hand."""
    pytest.importorskip(backend)
    student, teacher, xs, batches = _setup(backend, seed=4)
    seen: dict[int, float] = {}
    nn.distill_quantized(
        student,
        teacher,
        batches,
        forward=lambda m, x: [m(x), m(x)],
        steps=1,
        lr=1e-4,
        loss=["mse", "similarity"],
        weights=[1, 3],
        progress=lambda step, value: seen.setdefault(step, value),
    )
    want = []
    for x in xs:
        s, t = _numpy_forward(student, x), _numpy_forward(teacher, x)
        mse = np.mean((s - t) ** 2) / np.mean(t**2)
        sim = np.mean((_cosines(s) - _cosines(t)) ** 2)
        assert sim > 1e-5  # (the relational term is not negligible here: the test sees it)
        want.append((mse + 3 * sim) / 4)
    # float32 forward and sums: relative 1e-3 of an objective of ~1e-3
    assert seen[0] == pytest.approx(float(np.mean(want)), rel=1e-3)


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_similarity_training_lowers_the_relational_error(backend: str) -> None:
    pytest.importorskip(backend)
    student, teacher, xs, batches = _setup(backend, seed=5)

    def relational(model: Tiny) -> float:
        return float(
            np.mean(
                [np.mean((_cosines(_numpy_forward(model, x)) - _cosines(_numpy_forward(teacher, x))) ** 2) for x in xs]
            )
        )

    out = nn.distill_quantized(student, teacher, batches, steps=100, lr=3e-3, loss="similarity")
    assert relational(out) < 0.8 * relational(student)


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_validation_keeps_the_best_checked_parameters(backend: str) -> None:
    """With ``validation``, the result is the checked parameters of least objective on the
    validation batches: never worse there than the start (the input model itself when no
    check beat it, as with a learning rate far too large), and lower after useful training."""
    pytest.importorskip(backend)
    student, teacher, xs, batches = _setup(backend, seed=6)
    rng = np.random.default_rng(7)
    held_x = [rng.standard_normal((24, 32)).astype(np.float32) for _ in range(2)]
    held = [(aq.to_backend(x, backend),) for x in held_x]
    seen: dict[int, float] = {}
    out = nn.distill_quantized(
        student, teacher, batches, steps=40, lr=2e-3, validation=held, check_every=5, progress=seen.setdefault
    )
    # step 0 reports the validation objective: the hand-computed one on the held-out batches
    assert seen[0] == pytest.approx(_objective(student, teacher, held_x), rel=1e-4)
    assert _objective(out, teacher, held_x) < _objective(student, teacher, held_x)
    wild = nn.distill_quantized(student, teacher, batches, steps=4, lr=0.5, validation=held, check_every=1)
    assert wild is student or _objective(wild, teacher, held_x) < _objective(student, teacher, held_x)


def test_bad_loss_weights_and_validation() -> None:
    pytest.importorskip("mlx")
    student, teacher, _, batches = _setup("mlx")
    two = lambda m, x: [m(x), m(x)]  # noqa: E731
    for loss in (["mse"], ["mse", "kl"], ("mse", "mse", "mse"), 3):
        with pytest.raises(ValueError, match="loss"):
            nn.distill_quantized(student, teacher, batches, forward=two, loss=loss)
    for weights in ([1.0], [1.0, -1.0], [1.0, math.nan], [0, 0], [1.0, math.inf], [True, 1.0], "11", 2.0):
        with pytest.raises(ValueError, match="weights"):
            nn.distill_quantized(student, teacher, batches, forward=two, weights=weights)
    for check, error in ((0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="check_every"):
            nn.distill_quantized(student, teacher, batches, validation=batches, check_every=check)
    for validation in ([], batches[0][0], "batches"):
        with pytest.raises(TypeError, match="validation"):
            nn.distill_quantized(student, teacher, batches, validation=validation)
    nan = np.ones((4, 32), np.float32)
    nan[0, 0] = np.nan
    with pytest.raises(QuantizationError, match="validation batch 0 are not all finite"):
        nn.distill_quantized(student, teacher, batches, validation=[(aq.to_backend(nan, "mlx"),)])


def test_mlx_reads_a_relational_distilled_result_as_its_own_codes_scales_and_biases() -> None:
    """The result of the new options (a per-output loss list with "similarity", weights,
    validation) is still MLX's format: ``mx.dequantize`` of its packed words, scales and
    biases equals code * scale + bias computed here by hand from the same arrays."""
    mx = pytest.importorskip("mlx.core")
    student, teacher, xs, batches = _setup("mlx", seed=8)
    out = nn.distill_quantized(
        student,
        teacher,
        batches,
        forward=lambda m, x: [m(x), m(x)],
        steps=30,
        lr=2e-3,
        loss=["mse", "similarity"],
        weights=[1.0, 2.0],
        validation=batches[1:],  # (trained on too: here only the format is under test)
        check_every=5,
    )
    assert out is not student  # (trained: a validation check beat the start)
    for old, layer in ((student.up, out.up), (student.down, out.down)):
        qw = layer.weight
        np.testing.assert_array_equal(np.asarray(qw.packed), np.asarray(old.weight.packed))  # codes kept
        got = np.asarray(mx.dequantize(qw.packed, qw.scales, qw.biases, group_size=32, bits=4), np.float64)
        # float32: MLX rounds code * scale and the sum once each, the hand version not at all:
        # within two float32 half-ulps of the values' size (|code * scale| + |bias|)
        size = np.repeat(15 * np.abs(_host(qw.scales)) + np.abs(_host(qw.biases)), 32, axis=1)
        assert np.all(np.abs(got - _weight(qw)) <= 2.0**-23 * size)


# ---- learned rounding (learn_rounding=True; arrayq/_rounding.py) ----


def _codes(qw: aq.QuantizedWeight) -> np.ndarray:
    """4-bit codes unpacked by hand (eight a word, lowest bits first, as MLX packs them)."""
    packed = np.asarray(aq.to_numpy(qw.packed)).astype(np.uint64)
    return ((packed[..., None] >> (4 * np.arange(8, dtype=np.uint64))) & 15).reshape(packed.shape[0], -1)


def _packed_by_hand(codes: np.ndarray) -> np.ndarray:
    words = codes.reshape(codes.shape[0], -1, 8).astype(np.uint64) << (4 * np.arange(8, dtype=np.uint64))
    return words.sum(-1).astype(np.uint32)


def test_zero_offsets_give_the_codes_back_and_full_ones_move_one_step_towards_the_float_weight() -> None:
    """The anchors of codes that are not round-to-nearest (rtn's codes moved by -2..2 at
    random, as GPTQ's error feedback moves some): offsets 0 round back to exactly those codes;
    offsets of +-0.5 towards the float weight x = (w - bias) / scale move each code by one
    step towards x, clipped to 0..15, and leave a code where x lies on it."""
    from arrayq import _rounding

    rng = np.random.default_rng(4)
    w = rng.standard_normal((8, 64)).astype(np.float32)
    rtn = aq.quantize(w, group_size=32, bits=4)
    moved = np.clip(_codes(rtn).astype(np.int64) + rng.integers(-2, 3, size=(8, 64)), 0, 15)
    qw = aq.QuantizedWeight(aq.asarray(_packed_by_hand(moved)), rtn.scales, rtn.biases, 32, 4)
    u = _rounding.anchor(qw, aq.asarray(w), "layer")
    zero = _rounding.rounded(u, aq.zeros_like(u), 4)
    np.testing.assert_array_equal(np.asarray(aq.to_numpy(zero)), moved)
    x = (w - np.repeat(_host(rtn.biases), 32, axis=1)) / np.repeat(_host(rtn.scales), 32, axis=1)
    towards = np.sign(x - moved)
    full = _rounding.rounded(u, aq.asarray((0.5 * towards).astype(np.float32)), 4)
    np.testing.assert_array_equal(np.asarray(aq.to_numpy(full)), np.clip(moved + towards, 0, 15))


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_learned_rounding_lowers_the_objective_below_plain_distillation(backend: str) -> None:
    """From rtn's codes on the tiny model: learned rounding changes some codes, each by one
    step at most, and ends with a lower objective (computed here by hand from the result's
    own arrays) than the start and than the same training with the codes kept."""
    pytest.importorskip(backend)
    student, teacher, xs, batches = _setup(backend, seed=5)
    before, start = _objective(student, teacher, xs), _codes(student.up.weight)
    kept = nn.distill_quantized(student, teacher, batches, steps=60, lr=2e-3)
    out = nn.distill_quantized(student, teacher, batches, steps=60, lr=2e-3, learn_rounding=True)
    after = _objective(out, teacher, xs)
    assert after < _objective(kept, teacher, xs) < before, (before, after)
    moves = [
        _codes(new.weight).astype(int) - _codes(old.weight)
        for old, new in ((student.up, out.up), (student.down, out.down))
    ]
    assert all(np.abs(m).max() <= 1 for m in moves) and sum(np.count_nonzero(m) for m in moves) > 0
    np.testing.assert_array_equal(_codes(student.up.weight), start)  # the input model is not modified
    assert _objective(student, teacher, xs) == before


def test_learned_rounding_result_runs_as_mlx_format_on_every_kernel() -> None:
    """The trained codes are packed as MLX packs them: ``mx.dequantize`` of the result's own
    packed words, scales and biases equals code * scale + bias by hand, and arrayq's
    quantized_matmul (the NumPy kernels, through nn.QuantizedLinear) gives x @ that weight."""
    mx = pytest.importorskip("mlx.core")
    backend = "jax" if _has("jax") else "mlx"
    student, teacher, xs, batches = _setup(backend, seed=6)
    out = nn.to_backend(
        nn.distill_quantized(student, teacher, batches, steps=30, lr=2e-3, learn_rounding=True), "numpy"
    )
    assert any(
        np.any(_codes(a.weight) != _codes(b.weight)) for a, b in ((student.up, out.up), (student.down, out.down))
    )
    for layer in (out.up, out.down):
        qw = layer.weight
        assert isinstance(layer, nn.QuantizedLinear) and (qw.bits, qw.group_size, qw.mode) == (4, 32, "affine")
        words, scales, biases = (mx.array(np.asarray(aq.to_numpy(a))) for a in (qw.packed, qw.scales, qw.biases))
        got = np.asarray(mx.dequantize(words, scales, biases, group_size=32, bits=4), np.float64)
        # float32: MLX rounds code * scale and the sum once each, the hand version not at all
        size = np.repeat(15 * np.abs(_host(qw.scales)) + np.abs(_host(qw.biases)), 32, axis=1)
        assert np.all(np.abs(got - _weight(qw)) <= 2.0**-23 * size)
        x = xs[0] if layer is out.up else np.tanh(xs[0] @ _weight(out.up.weight).T + _host(out.up.bias))
        y = np.asarray(aq.to_numpy(layer(aq.asarray(x.astype(np.float32)))), np.float64)
        want = x @ _weight(qw).T + _host(layer.bias)
        # float32 dot products of 32 or 64 terms of size ~1: 1e-5 relative to the largest output
        np.testing.assert_allclose(y, want, atol=1e-5 * np.abs(want).max())


def test_learned_rounding_bad_input() -> None:
    backend = "jax" if _has("jax") else "mlx"
    pytest.importorskip(backend)
    student, teacher, _, batches = _setup(backend)
    with pytest.raises(TypeError, match="learn_rounding must be a bool"):
        nn.distill_quantized(student, teacher, batches, learn_rounding="yes")
    for rate, error in ((0.0, ValueError), (math.nan, ValueError), ("0.1", TypeError)):
        with pytest.raises(error, match="rounding_lr"):
            nn.distill_quantized(student, teacher, batches, learn_rounding=True, rounding_lr=rate)
    with pytest.raises(ValueError, match="steps"):
        nn.distill_quantized(student, teacher, batches, steps=-1, learn_rounding=True)
    rng = np.random.default_rng(0)
    wrong = nn.to_backend(
        dataclasses.replace(teacher, up=nn.Linear(aq.asarray(rng.standard_normal((64, 16)).astype(np.float32)))),
        backend,
    )
    with pytest.raises(ValueError, match="same shape"):
        nn.distill_quantized(student, wrong, batches, steps=1, learn_rounding=True)
    with pytest.raises(ValueError, match="no float weight at 'up'"):
        nn.distill_quantized(student, student, batches, steps=1, learn_rounding=True)
    bad = np.asarray(aq.to_numpy(teacher.down.weight)).copy()
    bad[0, 0] = np.nan
    poisoned = dataclasses.replace(teacher, down=nn.Linear(aq.to_backend(bad, backend), teacher.down.bias))
    with pytest.raises(ValueError, match="'down'.*not all finite"):
        nn.distill_quantized(student, poisoned, batches, steps=1, learn_rounding=True)
    nan = np.ones((4, 32), np.float32)
    nan[1, 3] = np.nan
    with pytest.raises(QuantizationError, match="not all finite"):
        nn.distill_quantized(student, teacher, [(aq.to_backend(nan, backend),)], learn_rounding=True)


@pytest.mark.parametrize("backend", GRAD_BACKENDS)
def test_offsets_gradient_is_the_straight_through_chain_rule(backend: str) -> None:
    """While training, a rounded layer's weight is scale * (code + v - v') + bias with v'
    equal to v but passed as data: its value is the codes' weight, and for
    L = sum((x @ W^T - t)^2) the gradient with respect to v is dL/dW * scale (each weight's
    group scale), dL/dW = 2 (y - t)^T x written out here."""
    from arrayq import _rounding

    pytest.importorskip(backend)
    rng = np.random.default_rng(7)
    w = rng.standard_normal((16, 64)).astype(np.float32)
    x, t = rng.standard_normal((9, 64)).astype(np.float32), rng.standard_normal((9, 16)).astype(np.float32)
    qw = aq.to_backend(aq.quantize(w, group_size=32, bits=4), backend)
    code = aq.to_backend(_codes(qw).astype(np.float32), backend)
    v = aq.to_backend(rng.uniform(-0.5, 0.5, (16, 64)).astype(np.float32), backend)
    xb, tb = aq.to_backend(x, backend), aq.to_backend(t, backend)

    def loss(p: list, x: Any, t: Any, frozen: Any) -> Any:
        weight = _rounding.dense(qw, qw.scales, qw.biases, code, p[0], frozen)
        return aq.sum(aq.square(aq.subtract(aq.matmul(x, aq.matrix_transpose(weight)), t)))

    value, (g_v,) = aq.backend_of(xb).value_and_grad(loss)([v], xb, tb, v)
    weight = _weight(qw)
    residual = x.astype(np.float64) @ weight.T - t
    want = 2 * residual.T @ x.astype(np.float64) * np.repeat(_host(qw.scales), 32, axis=1)
    # float32 sums of 9 terms of size ~10 and the loss of 144: relative 1e-5 of the largest
    np.testing.assert_allclose(float(aq.to_numpy(value)), np.sum(residual**2), rtol=1e-5)
    np.testing.assert_allclose(_host(g_v), want, atol=1e-5 * np.abs(want).max())
