"""The NumPy backend's replay forms of its native ops (arrayq_numpy._native_forms): a
compiled function's recorded plan calls the kernel directly for rms_norm, add_rms_norm,
swiglu, rope, qkv_heads, prefix_attention, scaled_dot_product_attention (decode, under a
padding mask) and 8-bit-activation quantized_matmul.

Each replay is checked bit for bit against the same function run eagerly (the backend's
method, on the same values): a form must change no bit. That the form ran, and not the
method, is counted on the helper each method calls and the form does not (the method
path's ``_rowops``/``_native`` function). Hostile replays (another memory layout with the
signature's shapes, non-finite activations, a key count outside the kernel's range,
activations switched to float32, the repacked copies cleared, a subclass's own method, a
mask that is not a padding mask)
must take the method, with its result or its error.
"""

from __future__ import annotations

import numpy as np
import pytest

import arrayq as aq
import arrayq_numpy
from arrayq import nn
from arrayq_numpy import NumPyBackend, _native, _rowops, activations

pytestmark = pytest.mark.skipif(
    not _rowops._runs(), reason="the native kernels are not built or turned off (ARRAYQ_NATIVE)"
)

RNG = np.random.default_rng(7)


def _f32(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) * 2).astype(np.float32)


def _counted(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    """Count calls of ``module.name`` (the method path's helper)."""
    calls = [0]
    real = getattr(module, name)

    def counting(*a: object, **k: object) -> object:
        calls[0] += 1
        return real(*a, **k)

    monkeypatch.setattr(module, name, counting)
    return calls


def _same(got: object, want: object) -> None:
    got, want = (list(v) if isinstance(v, (tuple, list)) else [v] for v in (got, want))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert type(g) is np.ndarray and g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)  # bit for bit (NaN where the method gives NaN)


def _padding(rows: int, keys: int) -> np.ndarray:
    """A padding mask (rows, 1, 1, keys) of random row lengths from 1 to keys."""
    return np.asarray(nn.padding_mask(lengths=RNG.integers(1, keys + 1, rows), length=keys, dtype="float32"))


_W = _f32(64) + 3
_QW, _KW = (_f32(16) + 3 for _ in range(2))
_WEIGHT = aq.quantize(_f32(96, 64), group_size=32, bits=4)

CASES = {
    # name: (the method path's helper, the function, its inputs)
    "rms_norm": ((_rowops, "rms_norm"), lambda x: nn.rms_norm(x, _W, 1e-5), lambda: [_f32(3, 64)]),
    "add_rms_norm": (
        (_rowops, "add_rms_norm"),
        lambda x, y: nn.add_rms_norm(x, y, _W, 1e-5),
        lambda: [_f32(1, 2, 64), _f32(1, 2, 64)],
    ),
    "swiglu": ((_rowops, "swiglu"), nn.swiglu, lambda: [_f32(2, 5, 48), _f32(2, 5, 48)]),
    "swiglu_halves": ((_rowops, "swiglu"), lambda gate_up: nn.swiglu(gate_up), lambda: [_f32(2, 5, 96)]),
    "rope": (
        (_rowops, "rope"),
        lambda x, offset: nn.rope(x, 12, offset=offset),
        lambda: [_f32(1, 4, 3, 16), np.array(RNG.integers(0, 50), np.int32)],
    ),
    "qkv_heads": (
        (_rowops, "qkv_heads"),
        lambda qkv, at: nn.qkv_heads(qkv, 4, 2, 16, q_weight=_QW, k_weight=_KW, eps=1e-6, rope_dims=16, offset=at),
        lambda: [_f32(2, 1, 128), np.array(RNG.integers(0, 50), np.int32)],
    ),
    "prefix_attention": (
        (_native, "attends"),
        lambda q, k, v, n: nn.scaled_dot_product_attention(q, k, v, scale=0.25, mask="causal", key_length=n),
        lambda: [_f32(1, 4, 1, 16), _f32(1, 2, 40, 16), _f32(1, 2, 40, 16), np.array(RNG.integers(1, 41), np.int32)],
    ),
    "scaled_dot_product_attention": (  # (a batched decode step's: 3 rows of their own lengths)
        (_native, "attends"),
        lambda q, k, v, mask: nn.scaled_dot_product_attention(q, k, v, scale=0.25, mask=mask),
        lambda: [_f32(3, 4, 1, 16), _f32(3, 2, 40, 16), _f32(3, 2, 40, 16), _padding(3, 40)],
    ),
    "quantized_matmul": (
        (_native, "matmul_repacked"),
        lambda x: aq.linalg.quantized_matmul(x, _WEIGHT, transpose=True),
        lambda: [_f32(1, 2, 64)],
    ),
}


def _plan_fns(compiled: aq.Compiled) -> list[str]:
    (entry,) = compiled._cache.values()
    return [getattr(fn, "__qualname__", "") for fn, _, _ in entry.run.steps]


@pytest.mark.parametrize("name", sorted(CASES))
def test_form_replays_the_method_bit_for_bit(name, monkeypatch):
    (module, helper), fn, inputs = CASES[name]
    compiled = aq.compile(fn)
    with activations("int8"):
        first = inputs()
        _same(compiled(*first), fn(*first))  # recorded (eager) == eager
        assert f"_{name}.<locals>.{name}" in _plan_fns(compiled)  # the form is in the plan
        calls = _counted(monkeypatch, module, helper)
        for _ in range(3):  # new values of the signature's shapes
            args = inputs()
            got = compiled(*args)
            assert calls[0] == 0, "the replay called the method's path"
            _same(got, fn(*args))
            assert calls[0] == 1  # (the eager call)
            calls[0] = 0
    assert compiled.cache_info().signatures == 1 and compiled.cache_info().native == 1


def _strided(a: np.ndarray) -> np.ndarray:
    """``a``'s values in a layout that is not C-contiguous, of a's shape and dtype."""
    wide = np.zeros((*a.shape[:-1], a.shape[-1] * 2), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


@pytest.mark.parametrize("name", sorted(CASES))
def test_another_layout_takes_the_method(name, monkeypatch):
    (module, helper), fn, inputs = CASES[name]
    compiled = aq.compile(fn)
    with activations("int8"):
        compiled(*inputs())
        args = [_strided(a) if a.ndim else a for a in inputs()]
        assert not args[0].flags.c_contiguous
        calls = _counted(monkeypatch, module, helper)
        got = compiled(*args)
        assert calls[0] >= 1  # the method ran
        _same(got, fn(*args))  # (the method on this layout: for attention, its reference)


def _misaligned(a: np.ndarray) -> np.ndarray:
    """``a``'s values C-contiguous but one byte off float32's alignment (an array made by
    ``np.frombuffer`` at an odd offset): a layout the kernels refuse."""
    raw = np.zeros(a.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, a.dtype, a.size, offset=1).reshape(a.shape)
    out[...] = a
    assert out.flags.c_contiguous and not out.flags.aligned
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_misaligned_array_gives_the_aligned_result(name):
    """C-contiguous but misaligned inputs, eagerly and in a replay: the method's result on
    them, which is the aligned arrays' (before, the row ops handed them to the kernel,
    which raised ValueError "must be a 2-d float32 array")."""
    _, fn, inputs = CASES[name]
    compiled = aq.compile(fn)
    with activations("int8"):
        args = inputs()
        compiled(*args)
        odd = [_misaligned(a) if a.ndim else a for a in args]
        want = fn(*odd)
        _same(compiled(*odd), want)
        if name.endswith("attention"):  # (the kernel's layout only: the reference composite, float32
            # roundings of 16-term dot products and a softmax apart from the kernel's; under a
            # padding mask the reference also sums the masked keys' zero weights, and outputs of
            # values ~N(0, 2) weighted over up to 40 keys differ by a few float32 ulps of ~2)
            atol = 1e-6 if name == "prefix_attention" else 5e-6
            np.testing.assert_allclose(want, fn(*args), rtol=1e-5, atol=atol)
        else:  # (an aligned copy for the kernel, or the method: the same bits)
            _same(want, fn(*args))


def test_attention_reads_a_window_of_a_longer_cache_without_the_method(monkeypatch):
    """generate's caches: k and v are the first `window` positions of longer buffers (not
    C-contiguous, a contiguous last axis): the kernel's layout, so the form takes them."""
    _, fn, inputs = CASES["prefix_attention"]

    def windowed(q, k, v, n):
        return fn(q, k[:, :, :40], v[:, :, :40], n)

    compiled = aq.compile(windowed)
    buffers = [_f32(1, 2, 96, 16) for _ in range(2)]
    q = _f32(1, 4, 1, 16)
    compiled(q, *buffers, np.array(7, np.int32))
    calls = _counted(monkeypatch, _native, "attends")
    for n in (1, 23, 40):
        got = compiled(q, *buffers, np.array(n, np.int32))
        assert calls[0] == 0
        _same(got, windowed(q, *buffers, np.array(n, np.int32)))
        calls[0] = 0


def test_attention_key_count_outside_the_range_takes_the_method():
    _, fn, inputs = CASES["prefix_attention"]
    compiled = aq.compile(fn)
    q, k, v, _ = inputs()
    compiled(q, k, v, np.array(5, np.int32))
    with pytest.raises(ValueError, match="key_length must be from 1 to the 40 keys, got 41"):
        compiled(q, k, v, np.array(41, np.int32))
    with pytest.raises(ValueError, match="got 0"):
        compiled(q, k, v, np.array(0, np.int32))
    _same(compiled(q, k, v, np.array(40, np.int32)), fn(q, k, v, np.array(40, np.int32)))


def test_attention_past_the_kernels_key_limit_takes_the_reference(monkeypatch):
    """Keys beyond ATTENTION_MAX_KEYS: the method's reference composite, not the kernel."""
    _, fn, inputs = CASES["prefix_attention"]
    compiled = aq.compile(fn)
    q, k, v, _ = inputs()
    compiled(q, k, v, np.array(3, np.int32))
    monkeypatch.setattr(_native, "ATTENTION_MAX_KEYS", 8)  # (the method reads it per call)
    calls = _counted(monkeypatch, _native, "attention")
    got = compiled(q, k, v, np.array(30, np.int32))
    want = fn(q, k, v, np.array(30, np.int32))
    assert calls[0] == 0  # neither took the kernel past the limit
    _same(got, want)


def test_attention_under_a_mask_that_is_not_a_padding_mask_takes_the_reference(monkeypatch):
    """A replay whose mask is not a padding mask (a key hidden in the middle of a row, or
    an additive mask of other values): the method declines and the frontend's reference
    runs, as eagerly; the plan does not decline (a step with a form never does)."""
    _, fn, inputs = CASES["scaled_dot_product_attention"]
    compiled = aq.compile(fn)
    q, k, v, mask = inputs()
    compiled(q, k, v, mask)
    holed = _padding(3, 40)
    holed[1, 0, 0, 0] = np.finfo(np.float32).min  # (row 1 cannot see its first key)
    calls = _counted(monkeypatch, _native, "attention")
    for other in (holed, _f32(3, 1, 1, 40)):
        got, want = compiled(q, k, v, other), fn(q, k, v, other)
        assert calls[0] == 0  # neither took the kernel
        _same(got, want)
    assert compiled.cache_info().signatures == 1 and compiled.cache_info().native == 1


def test_attention_form_reads_each_rows_own_keys_from_a_window(monkeypatch):
    """The batched step's call: k and v a window of longer buffers (not C-contiguous), each
    row seeing its first keys; the form takes the kernel (the method's helper is not
    called) and equals, row by row, each sequence's attention over its own keys alone."""
    _, fn, _ = CASES["scaled_dot_product_attention"]

    def windowed(q, k, v, mask):
        return fn(q, k[:, :, :32], v[:, :, :32], mask)

    compiled = aq.compile(windowed)
    buffers = [_f32(3, 2, 64, 16) for _ in range(2)]
    q = _f32(3, 4, 1, 16)
    compiled(q, *buffers, _padding(3, 32))
    calls = _counted(monkeypatch, _native, "attends")
    for lengths in ([1, 32, 7], [32, 32, 2], [5, 1, 1]):
        mask = np.asarray(nn.padding_mask(lengths=lengths, length=32, dtype="float32"))
        got = compiled(q, *buffers, mask)
        assert calls[0] == 0
        _same(got, windowed(q, *buffers, mask))
        calls[0] = 0
        for b, n in enumerate(lengths):  # (one sequence alone: its own n keys, no mask)
            alone = [a[b : b + 1, :, :n] for a in buffers]
            _same(got[b : b + 1], fn(q[b : b + 1], *alone, None))
        calls[0] = 0


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # (NaN activations)
def test_quantized_matmul_guards(monkeypatch):
    _, fn, inputs = CASES["quantized_matmul"]
    compiled = aq.compile(fn)
    backend = aq.get_backend("numpy")
    with activations("int8"):
        compiled(*inputs())
    calls = _counted(monkeypatch, _native, "matmul_repacked")
    # float32 activations in this thread: the float32 kernel, as eagerly
    with activations("float32"):
        x = inputs()[0]
        got = compiled(x)
        assert calls[0] == 0
        _same(got, fn(x))
    with activations("int8"):
        # non-finite activations: the kernel reports them and the method's unfactored path
        # gives the result, as eagerly (inf, NaN): the dequantized weight times x, so an inf
        # gives +-inf where the factored kernel's 0 * inf gives NaN
        factored: list[bool] = []
        real_affine = arrayq_numpy.affine_matmul

        def affine(*a: object, **k: object) -> object:
            factored.append(bool(k["factored"]))
            return real_affine(*a, **k)

        monkeypatch.setattr(arrayq_numpy, "affine_matmul", affine)
        x = inputs()[0]
        x[0, 1, 5] = np.inf
        got = compiled(x)
        assert np.isinf(got[0, 1]).any()
        _same(got, fn(x))
        x[0, 0, 3] = np.nan
        _same(compiled(x), fn(x))
        x = inputs()[0]
        x[0, 0, 7] = -np.inf
        _same(compiled(x), fn(x))
        assert factored == [False] * 6  # (three replays, three eager calls)
        # finite, but large (3e19 squared is past float32's 3.4e38): the form's own kernel
        # call, not the method, as eagerly the repacked kernel
        calls[0] = 0
        x = inputs()[0]
        x[0, 1, 2] = 3e19
        got = compiled(x)
        assert calls[0] == 0
        _same(got, fn(x))
        assert calls[0] == 1 and factored == [False] * 6
        calls[0] = 0
        # the repacked copies cleared: the method builds them anew, the next replay uses them
        backend.repacked.clear()
        x = inputs()[0]
        got = compiled(x)
        assert calls[0] == 1 and backend.repacked.nbytes() > 0
        _same(got, fn(x))
        calls[0] = 0
        x = inputs()[0]
        got = compiled(x)
        assert calls[0] == 0
        _same(got, fn(x))
        # another RepackedWeights on the backend: the method (which uses it)
        monkeypatch.setattr(backend, "repacked", _native.RepackedWeights())
        calls[0] = 0  # (the eager call above counted)
        got = compiled(x)
        assert calls[0] == 1 and backend.repacked.nbytes() > 0
        _same(got, fn(x))


def test_repacked_copy_is_not_kept_alive_by_a_plan():
    import gc
    import weakref

    weight = aq.quantize(_f32(64, 64), group_size=32, bits=4)
    compiled = aq.compile(lambda x: aq.linalg.quantized_matmul(x, weight, transpose=True))
    backend = aq.get_backend("numpy")
    with activations("int8"):
        compiled(_f32(1, 64))
        index = _native._chosen_level()
        data = weakref.ref(backend.repacked.get(weight.packed, weight.scales, weight.biases, 32, 4, index)[0])
        backend.repacked.clear()
        gc.collect()
        assert data() is None


def test_no_form_for_a_subclass_method_or_other_dtypes():
    class Own(NumPyBackend):
        def rms_norm(self, x, weight, eps):  # a backend's own method: replayed as it is
            return super().rms_norm(x, weight, eps)

    x, w = _f32(2, 8), _f32(8)
    assert Own().replay_form("rms_norm", (x, w, 1e-5), (False, True, True), x) is None
    backend = aq.get_backend("numpy")
    assert backend.replay_form("rms_norm", (x, w, 1e-5), (False, True, True), x) is not None
    x64 = x.astype(np.float64)  # (not the float32 kernel's)
    assert backend.replay_form("rms_norm", (x64, w.astype(np.float64), 1e-5), (False, True, True), x64) is None
    # a weight that is an input of the plan, or an eps that is: the method
    assert backend.replay_form("rms_norm", (x, w, 1e-5), (False, False, True), x) is None
    # an empty array, a non-contiguous one when recorded
    e = np.zeros((0, 8), np.float32)
    assert backend.replay_form("rms_norm", (e, w, 1e-5), (False, True, True), e) is None
    assert backend.replay_form("rms_norm", (_strided(x), w, 1e-5), (False, True, True), x) is None


def test_no_form_for_a_method_patched_onto_the_class(monkeypatch):
    backend = aq.get_backend("numpy")
    x, w = _f32(2, 8), _f32(8)
    monkeypatch.setattr(NumPyBackend, "rms_norm", lambda self, x, weight, eps: x)
    assert backend.replay_form("rms_norm", (x, w, 1e-5), (False, True, True), x) is None


def test_quantized_matmul_replays_one_bound_c_call():
    """The plan's step is the C object (csrc/bound.c) itself, not a Python function around
    the kernel; its result is a new array on every replay (a returned array stays fresh)."""
    _, fn, inputs = CASES["quantized_matmul"]
    compiled = aq.compile(fn)
    with activations("int8"):
        compiled(*inputs())
        (entry,) = compiled._cache.values()
        (step,) = [f for f, _, _ in entry.run.steps if type(f).__name__ == "RepackedMatmul"]
        x = inputs()[0]
        first, second = step(x), step(x)
        assert first is not second and not np.shares_memory(first, second)
        _same(first, fn(x))


def test_bound_quantized_matmul_refuses_wrong_calls():
    _, fn, inputs = CASES["quantized_matmul"]
    compiled = aq.compile(fn)
    with activations("int8"):
        compiled(*inputs())
        (entry,) = compiled._cache.values()
        (step,) = [f for f, _, _ in entry.run.steps if type(f).__name__ == "RepackedMatmul"]
        with pytest.raises(TypeError, match="one argument"):
            step()
        with pytest.raises(TypeError, match="one argument"):
            step(inputs()[0], inputs()[0])
        with pytest.raises(TypeError, match="one argument"):
            step(x=inputs()[0])
        # another shape of the same dtype (a plan never gives one): the method's result for it
        x = _f32(3, 64)
        _same(step(x), fn(x))
        # float16 of the recorded bytes' count: not read as float32, the method's result
        x16 = _f32(1, 4, 64).astype(np.float16)
        _same(step(x16), aq.get_backend("numpy").quantized_matmul(x16, _WEIGHT, True))
    kinds = type(step)
    ref = step  # (not a weakref)
    with pytest.raises(TypeError, match="weakref"):
        kinds(0, 1, 96, 64, 32, 4, ref, 0, False, None, None, _native._activations, "int8", np.ndarray, np.empty,
              (1, 96), np.float32, fn, fn, "x")  # fmt: skip
    import weakref

    data = np.zeros(8, np.uint8)
    for level, group_size, m in ((99, 32, 1), (0, 48, 1), (0, 32, 0)):
        with pytest.raises(ValueError):
            kinds(level, m, 96, 64, group_size, 4, weakref.ref(data), 0, False, None, None, _native._activations,
                  "int8", np.ndarray, np.empty, (1, 96), np.float32, fn, fn, "x")  # fmt: skip
    unready = kinds.__new__(kinds)  # (never initialised: refuses calls, does not crash)
    with pytest.raises(TypeError):
        unready(np.zeros((1, 64), np.float32))


def test_bound_clock_times_and_stubs_the_bound_kernels():
    """The profiles' hook (benchmarks/profile_*.py): mode 1 counts the bound kernel calls,
    mode 2 also writes zeros instead of running them; off again, the kernel's result."""
    _, fn, inputs = CASES["quantized_matmul"]
    compiled = aq.compile(fn)
    kernels = _native._kernels
    with activations("int8"):
        compiled(*inputs())
        x = inputs()[0]
        kernels.bound_clock(1)
        compiled(x)
        compiled(x)
        assert kernels.bound_clock(2)[1] == 2
        assert not compiled(x).any()
        ns, calls = kernels.bound_clock(0)
        assert calls == 1 and ns >= 0
        _same(compiled(x), fn(x))
        assert kernels.bound_clock(0) == (0, 0)
    with pytest.raises(ValueError, match="bound_clock"):
        kernels.bound_clock(3)


def _bound_step(name: str) -> tuple[object, object, object]:
    """A compiled CASES function recorded once (int8), its bound C step and its inputs."""
    _, fn, inputs = CASES[name]
    compiled = aq.compile(fn)
    with activations("int8"):
        compiled(*inputs())
    (entry,) = compiled._cache.values()
    (step,) = [f for f, _, _ in entry.run.steps if type(f).__name__ == "RowsCall"]
    return step, fn, inputs


@pytest.mark.parametrize("name", ["add_rms_norm", "swiglu_halves", "qkv_heads"])
def test_row_ops_replay_one_bound_c_call(name):
    """add_rms_norm, swiglu_halves and qkv_heads replay as one C object (csrc/bound.c) with
    fresh outputs on each call; another dtype or size falls back to the method."""
    step, fn, inputs = _bound_step(name)
    args = inputs()
    first, second = step(*args), step(*args)
    for a, b in zip(*(r if isinstance(r, tuple) else (r,) for r in (first, second))):
        assert a is not b and not np.shares_memory(a, b)
    _same(first, fn(*args))
    with pytest.raises(TypeError, match="positional arguments"):
        step(*args, args[0])
    wider = [np.concatenate([args[0], args[0]], axis=0), *args[1:]]  # (another size: the method's result)
    if name == "add_rms_norm":
        wider[1] = np.concatenate([args[1], args[1]], axis=0)
    _same(step(*wider), fn(*wider))


def test_row_ops_bound_refuses_bad_construction():
    step, fn, inputs = _bound_step("add_rms_norm")
    kind, w = type(step), _f32(64)
    common = (np.ndarray, np.empty, np.float32, ((1, 64), (1, 64)), fn, "x")
    with pytest.raises(ValueError, match="binds"):
        kind("matmul", 1, 64, (w,), 1e-5, *common)
    with pytest.raises(ValueError, match="weight"):
        kind("add_rms_norm", 1, 64, (_f32(32),), 1e-5, *common)  # (not d long)
    with pytest.raises(ValueError, match="weight"):
        kind("add_rms_norm", 1, 64, (w.astype(np.float64)[:32],), 1e-5, *common)  # (the bytes, not float32)
    with pytest.raises(ValueError, match="sizes"):
        kind("add_rms_norm", 0, 64, (w,), 1e-5, *common)
    with pytest.raises(ValueError, match="sizes"):
        kind("add_rms_norm", 2**40, 2**40, (w,), 1e-5, *common)
    with pytest.raises(TypeError):
        kind("add_rms_norm", 1, 64, (w, w, w), 1e-5, *common)
    with pytest.raises(TypeError):  # (qkv_heads: two weights and the tables)
        kind("qkv_heads", 1, 16, (w,), 1e-5, *common, B=1, L=1, hq=4, hkv=2, dims=16)
    unready = kind.__new__(kind)
    with pytest.raises(TypeError):
        unready(_f32(1, 64), _f32(1, 64))
    # a bound call's qkv tables of another size than recorded: an error, not a read past them
    qstep, qfn, qinputs = _bound_step("qkv_heads")
    bad = kind("qkv_heads", 2, 16, (_QW, _KW), 1e-6, np.ndarray, np.empty, np.float32,
               ((2, 4, 1, 16), (2, 2, 1, 16), (2, 2, 1, 16)), qfn, "q", B=2, L=1, hq=4, hkv=2, dims=16,
               tables=lambda offset: (np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32)))  # fmt: skip
    with pytest.raises(ValueError, match="tables"):
        bad(*qinputs())


def test_prefix_attention_replays_one_bound_c_call_and_refuses_wrong_calls():
    (_, _), fn, inputs = CASES["prefix_attention"]
    compiled = aq.compile(fn)
    with activations("int8"):
        compiled(*inputs())
    (entry,) = compiled._cache.values()
    (step,) = [f for f, _, _ in entry.run.steps if type(f).__name__ == "PrefixAttention"]
    args = inputs()
    first, second = step(*args), step(*args)
    assert first is not second and not np.shares_memory(first, second)
    _same(first, fn(*args))
    with pytest.raises(TypeError, match="key count"):
        step(*args[:3])
    # keys of float16 where float32 was recorded (a plan never gives them): the method's result
    half = [args[0], args[1].astype(np.float16), args[2].astype(np.float16), args[3]]
    _same(step(*half), fn(*half))
    kind = type(step)
    common = (np.ndarray, np.empty, np.float32, fn, "p")
    for shapes in (((1, 4, 1), (1, 2, 40, 16)), ((1, 4, 1, 16), (1, 2, 0, 16))):  # (not 4-d; no keys)
        with pytest.raises(ValueError, match="PrefixAttention"):
            kind(0, *shapes, 16, 4, 1, 0.25, False, _native, *common)
    with pytest.raises(ValueError, match="PrefixAttention"):  # (an element size of neither float)
        kind(0, (1, 4, 1, 16), (1, 2, 40, 16), 16, 8, 1, 0.25, False, _native, *common)
    with pytest.raises(ValueError, match="level"):
        kind(99, (1, 4, 1, 16), (1, 2, 40, 16), 16, 4, 1, 0.25, False, _native, *common)
    unready = kind.__new__(kind)
    with pytest.raises(TypeError):
        unready(*args)
