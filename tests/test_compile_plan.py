"""arrayq.compile's recorded plans (NumPy: Backend.compile_records_plan): a replay gives what
the function gives eagerly, call after call, for in-place cache writes (donated or not),
constants made inside, native operators and indexing, host reads (eager, with the reason),
new shapes and dtypes (a new signature), and a native op that declines on replay.

Every expectation is the same function run eagerly (``fn.__wrapped__``) on copies of the
inputs, or a value computed by hand; NumPy runs the same kernels both ways, so the results
are compared exactly."""

import numpy as np
import pytest

import arrayq as aq
from arrayq import nn


def _rng(seed=0):
    return np.random.default_rng(seed)


def _f32(shape, seed=0):
    return _rng(seed).standard_normal(shape).astype(np.float32)


def _plans(f):
    return [e.run for e in f._cache.values() if e.native]


def test_replays_match_eager_and_skip_the_python_function():
    calls = []

    def block(x, w, scale):
        calls.append(1)
        h = aq.matmul(x, w)
        return aq.multiply(aq.tanh(h), scale), h[:, :2] * 2.0 - 1.0, -h, abs(h) @ aq.matrix_transpose(w)

    f = aq.compile(block)
    w = _f32((4, 5), 1)
    for i in range(4):
        x = _f32((3, 4), 10 + i)
        for got, want in zip(f(x, w, 0.5), block(x, w, 0.5)):
            np.testing.assert_array_equal(got, want)
    assert len(calls) == 4 + 1  # the eager calls, and the one recording
    assert f.cache_info() == (3, 1, 1, 1) and f.eager_reasons() == []


def _cache_step(cache, new):
    """A decode step's cache update: write at the position, advance it, read the prefix."""
    keys = aq.slice_update(cache["keys"], new, cache["position"], axis=1)
    position = aq.add(cache["position"], 1)
    return aq.sum(keys[:, :4], axis=1), {"keys": keys, "position": position}


@pytest.mark.parametrize("donate", [(), ("cache",)])
def test_in_place_cache_update_replays_over_several_calls(donate):
    f = aq.compile(_cache_step, donate=donate)
    cache = {"keys": np.zeros((2, 6), np.float32), "position": np.asarray(0, np.int32)}
    eager = {k: v.copy() for k, v in cache.items()}
    for step in range(5):
        new = np.full((2, 1), step + 1.0, np.float32)
        given = cache["keys"]
        before = given.copy()
        total, cache = f(cache, new)
        want_total, eager = _cache_step(eager, new)
        np.testing.assert_array_equal(total, want_total)
        np.testing.assert_array_equal(cache["keys"], eager["keys"])
        assert int(cache["position"]) == step + 1
        # the first call records (slice_update copies, as eagerly); replays of a donated cache
        # write into the buffer given, and otherwise leave it as it was
        assert (cache["keys"] is given) == (bool(donate) and step > 0)
        if not donate:
            np.testing.assert_array_equal(given, before)
    # by hand: position p holds p + 1; the sum of the first 4 positions after 5 steps
    np.testing.assert_array_equal(cache["keys"], [[1, 2, 3, 4, 5, 0]] * 2)
    np.testing.assert_array_equal(total, [10.0, 10.0])
    assert f.cache_info().native == 1


def test_a_donated_buffer_read_elsewhere_is_copied():
    def step(buf, new):  # buf is read again after the write: writing it in place would change that
        out = aq.slice_update(buf, new, 1, axis=0)
        return out, aq.sum(buf)

    f = aq.compile(step, donate=("buf",))
    buf = np.arange(4, dtype=np.float32)
    for _ in range(3):
        out, total = f(buf, np.asarray([9.0], np.float32))
        np.testing.assert_array_equal(buf, [0, 1, 2, 3])
        np.testing.assert_array_equal(out, [0, 9, 2, 3])
        assert float(total) == 6.0


def test_donate_names_a_parameter():
    with pytest.raises(ValueError, match=r"names \['cach'\].*not parameters"):
        aq.compile(_cache_step, donate=("cach",))


def test_item_assignment_into_an_input_replays_as_eager_code_does():
    def write(buf, v):
        buf[1:3] = v  # eager code writes the caller's array; a replay writes the array given
        return aq.multiply(buf, 2.0)

    f = aq.compile(write)
    for i in range(3):
        a, b = _f32((4,), i), _f32((4,), i)
        v = np.asarray([i, -i], np.float32)
        np.testing.assert_array_equal(f(a, v), write(b, v))
        np.testing.assert_array_equal(a, b)
    assert f.cache_info().native == 1


def test_a_constant_made_inside_is_fresh_each_call():
    def f(x):
        return aq.add(x, aq.arange(3, dtype=aq.float32)), aq.zeros(3, dtype=aq.float32)

    g = aq.compile(f)
    x = np.ones(3, np.float32)
    for _ in range(3):
        y, zeros = g(x)
        np.testing.assert_array_equal(y, [1, 2, 3])
        np.testing.assert_array_equal(zeros, [0, 0, 0])
        zeros += 5  # the caller's result is its own: the next call's is zeros again
    assert g.cache_info().native == 1


@pytest.mark.parametrize(
    ("read", "named"),
    [
        (lambda x: float(aq.sum(x)) > 0, "float(x)"),
        (lambda x: bool(aq.sum(x) > 0), "bool(x)"),
        (lambda x: aq.sum(x).item() > 0, "item(x)"),
        (lambda x: aq.to_numpy(aq.sum(x)) > 0, "to_numpy"),
        (lambda x: np.sum(x) > 0, "the array's .sum"),  # (NumPy calls the method)
        (lambda x: np.asarray(x).sum() > 0, "NumPy converting"),
    ],
    ids=["float", "bool", "item", "to_numpy", "np.sum", "np.asarray"],
)
def test_a_host_read_runs_the_signature_eagerly_with_the_reason(read, named):
    @aq.compile
    def branchy(x):
        return x * 2.0 if read(x) else aq.negative(x)

    up, down = np.ones(3, np.float32), -np.ones(3, np.float32)
    for x in (up, down, up, down):  # the branch follows the values: nothing was frozen
        np.testing.assert_array_equal(branchy(x), x * 2.0 if x[0] > 0 else -x)
    assert branchy.cache_info() == (3, 1, 1, 0)
    (reason,) = branchy.eager_reasons()
    assert named in reason


def test_a_value_dependent_shape_runs_eagerly():
    @aq.compile
    def positives(x):
        return x[x > 0]

    x = np.asarray([1.0, -1.0, 2.0], np.float32)
    np.testing.assert_array_equal(positives(x), [1.0, 2.0])
    np.testing.assert_array_equal(positives(-x), [1.0])
    assert "boolean array" in positives.eager_reasons()[0]


def test_new_shapes_and_dtypes_are_new_signatures_not_crashes():
    f = aq.compile(lambda x: aq.sum(aq.multiply(x, x), axis=-1))
    for x in (_f32((3, 4)), _f32((5, 4)), _f32((3, 4)).astype(np.float64), np.arange(6).reshape(2, 3), _f32((3, 4))):
        np.testing.assert_array_equal(f(x), np.sum(x * x, axis=-1))
    assert f.cache_info() == (1, 4, 4, 4)
    with pytest.raises(TypeError):  # not an array at all: the frontend's error, as eagerly
        f("text")


def test_a_native_op_that_declines_on_replay_runs_that_call_eagerly(monkeypatch):
    backend = aq.get_backend("numpy")
    real = type(backend).rms_norm

    def rms_norm(self, x, weight, eps):  # declines for inputs with a negative first value
        return NotImplemented if x.flat[0] < 0 else real(self, x, weight, eps)

    monkeypatch.setattr(type(backend), "rms_norm", rms_norm)
    f = aq.compile(lambda x: nn.rms_norm(x, None, eps=1e-5))
    x = np.abs(_f32((2, 8))) + 0.5
    np.testing.assert_array_equal(f(x), nn.rms_norm(x, None, eps=1e-5))
    np.testing.assert_array_equal(f(-x), nn.rms_norm(-x, None, eps=1e-5))  # declines: the reference
    assert "declined on replay" in f.eager_reasons()[0]
    assert f.cache_info().native == 0


def test_quantized_layers_replay_exactly():
    rng = _rng(3)
    qw = aq.quantize(rng.standard_normal((16, 64)).astype(np.float32), group_size=32, bits=4)
    mlp = nn.SwiGLU(*(nn.QuantizedLinear(aq.quantize(rng.standard_normal(s).astype(np.float32), group_size=32))
                      for s in ((32, 64), (32, 64), (64, 32))))  # fmt: skip

    def f(x, qw, mlp):
        return nn.rms_norm(aq.add(mlp(x), x), None, eps=1e-5), aq.linalg.quantized_matmul(x, qw)

    g = aq.compile(f)
    for i in range(3):
        x = _f32((2, 64), 20 + i)
        for got, want in zip(g(x, qw, mlp), f(x, qw, mlp)):
            np.testing.assert_array_equal(got, want)
    assert g.cache_info().native == 1 and not g.eager_reasons()


def test_a_compiled_function_called_inside_another_is_part_of_its_plan():
    inner = aq.compile(lambda x: aq.multiply(aq.exp(x), 0.5))

    @aq.compile
    def outer(x):
        return aq.add(inner(x), inner(aq.negative(x)))

    for i in range(3):
        x = _f32((4,), i)
        np.testing.assert_array_equal(outer(x), np.exp(x) * 0.5 + np.exp(-x) * 0.5)
    assert outer.cache_info() == (2, 1, 1, 1) and inner.cache_info().signatures == 0
    np.testing.assert_array_equal(inner(x), np.exp(x) * 0.5)  # called on its own: its own plan
    assert inner.cache_info().signatures == 1


def test_decoding_replays_without_the_frontend(tmp_path, monkeypatch):
    import arrayq.quant
    from arrayq import models

    model = models.load(models.make_checkpoint(tmp_path / "tiny", "tiny"), backend="numpy")
    prompt = [3, 1, 4, 1, 5]
    eager = list(models.generate(model, prompt, 6, compile=False))
    assert list(models.generate(model, prompt, 6)) == eager  # compiled by default: records the step
    checks = []
    real = arrayq.quant._checked_x  # quantized_matmul's validation of x, on every eager call
    monkeypatch.setattr(arrayq.quant, "_checked_x", lambda *a: checks.append(1) or real(*a))
    stats = models.GenerationStats()
    tokens = models.generate(model, prompt, 6, stats=stats)
    first = next(tokens)  # the eager prefill, and the first decode step (already started)
    validated = len(checks)
    assert validated > 0 and [first, *tokens] == eager
    assert len(checks) == validated and stats.compiled  # the other steps: replays, no validation


def test_negative_zero_and_zero_stay_apart():
    f = aq.compile(lambda x: (aq.multiply(x, 0.0), aq.multiply(x, -0.0)))
    x = np.ones(2, np.float32)
    for _ in range(2):
        pos, neg = f(x)
        assert not np.signbit(pos).any() and np.signbit(neg).all()


def test_a_read_only_donated_buffer_is_copied_not_written():
    f = aq.compile(_cache_step, donate=("cache",))
    keys = np.zeros((2, 6), np.float32)
    cache = {"keys": keys, "position": np.asarray(0, np.int32)}
    _, cache = f(cache, np.ones((2, 1), np.float32))  # recorded
    frozen = cache["keys"].copy()
    frozen.setflags(write=False)
    _, out = f({"keys": frozen, "position": cache["position"]}, np.full((2, 1), 2.0, np.float32))
    np.testing.assert_array_equal(frozen, [[1, 0, 0, 0, 0, 0]] * 2)
    np.testing.assert_array_equal(out["keys"], [[1, 2, 0, 0, 0, 0]] * 2)
    assert out["keys"] is not frozen


def test_another_backend_opts_in_with_the_flag(monkeypatch):
    """The strict example (array_api_strict arrays: no NumPy inside) records plans once it sets
    compile_records_plan: the compile conformance cases pass, replayed."""
    pytest.importorskip("arrayq_strict", reason="install examples/arrayq-strict (CI does)")
    from arrayq.conformance import run
    from arrayq.conformance.cases import compiled

    strict = aq.get_backend("strict")
    monkeypatch.setattr(type(strict), "compile_records_plan", True)
    report = run("strict", pattern="compile")
    assert not report.failed and report.counts()["pass"] >= 5, report.table()
    on_strict = [e for f in compiled._COMPILED.values() for key, e in f._cache.items() if key[0] == id(strict)]
    assert sum(e.native for e in on_strict) >= 3  # recorded plans (the host read case runs eagerly)


def test_an_error_on_replay_is_the_backend_s_own(monkeypatch):
    backend = aq.get_backend("numpy")
    real = type(backend).rms_norm

    def rms_norm(self, x, weight, eps):  # fails on inputs with a negative first value
        if x.flat[0] < 0:
            raise RuntimeError("the kernel failed to compile its loop")  # (a message naming compile)
        return real(self, x, weight, eps)

    monkeypatch.setattr(type(backend), "rms_norm", rms_norm)
    f = aq.compile(lambda x: nn.rms_norm(x, None, eps=1e-5))
    x = np.abs(_f32((2, 8))) + 0.5
    f(x)
    with pytest.raises(RuntimeError, match="failed to compile its loop") as raised:
        f(-x)
    assert not isinstance(raised.value, aq.CompileError)
    np.testing.assert_array_equal(f(x), nn.rms_norm(x, None, eps=1e-5))  # the plan is kept
    assert f.cache_info() == (2, 1, 1, 1)
