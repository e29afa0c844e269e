"""Lowering of recorded plans (arrayq/_replay.py, the NumPy backend's replay forms): steps
that change nothing are dropped, thin backend wrappers replay as the NumPy call they end
in, and a replay still gives exactly what the function gives eagerly.

Every expectation is the function run eagerly (``fn.__wrapped__``) on copies of the same
inputs, or a count of steps worked out by hand from the function's code; the NumPy
backend runs the same kernels both ways, so results are compared exactly (values, dtype
and type)."""

import operator
from collections import Counter

import ml_dtypes
import numpy as np
import pytest

import arrayq as aq
from arrayq._replay import _Step, describe


def _plan(f):
    (plan,) = [e.run for e in f._cache.values() if e.native]
    return plan


def _f32(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _same(got, want):
    for g, w in zip(got, want, strict=True):
        assert type(g) is type(w) is np.ndarray and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


def _replays_match_eager(f, *make_args, calls=3):
    for i in range(calls):
        args = [make(i) for make in make_args]
        _same(f(*[np.copy(a) for a in args]), f.__wrapped__(*args))


def test_thin_wrappers_replay_as_numpy_calls_with_eager_results():
    def fn(x, p):
        h = aq.permute_dims(aq.reshape(x, (2, 3, 4)), (1, 0, 2))  # reshape, permute_dims
        h = aq.expand_dims(aq.squeeze(aq.expand_dims(h, axis=0), axis=0), axis=1)  # composites: reshapes
        h = aq.multiply(aq.add(h, 1.5), aq.astype(h, aq.float64))  # binary with a scalar, astype
        n = aq.clip(aq.add(p, 1), 0, 5)  # 0-d: binary with out=..., clip with Python bounds
        return aq.negative(h), aq.clip(x, -0.5, 0.5), n, aq.astype(n, aq.int64, copy=False)

    f = aq.compile(fn)
    _replays_match_eager(f, lambda i: _f32((6, 4), i), lambda i: np.asarray(i * 3, np.int32), calls=4)
    plan = _plan(f)
    kinds = Counter((name, type(fn).__name__) for name, (fn, _, _) in zip(plan.names, plan.steps))
    # counted from fn: reshape + 3 composites; permute_dims; the astypes; the ufuncs (0-d: a partial
    # with out=...); both clips (a partial of np.clip with the bounds bound)
    assert kinds[("backend.reshape", "methodcaller")] == 1
    assert kinds[("backend.expand_dims", "methodcaller")] == 2 and kinds[("backend.squeeze", "methodcaller")] == 1
    assert kinds[("backend.permute_dims", "methodcaller")] == 1
    assert kinds[("backend.astype", "methodcaller")] == 2
    assert kinds[("backend.binary", "ufunc")] == 2 and kinds[("backend.binary", "partial")] == 1
    assert kinds[("backend.unary", "ufunc")] == 1 and kinds[("backend.clip", "partial")] == 2
    assert len(plan) == sum(kinds.values()) == 13


def test_steps_that_change_nothing_are_dropped():
    def fn(x):
        same = aq.reshape(aq.permute_dims(x[:, :], (0, 1)), x.shape)  # three no-ops
        kept = aq.astype(aq.astype(same, aq.float32, copy=False), aq.float32)  # no copy: dropped; copy: kept
        return aq.exp(kept), x[:, :3], aq.broadcast_to(x, (3, 4))

    f = aq.compile(fn)
    _replays_match_eager(f, lambda i: _f32((3, 4), i))
    # by hand: the copying astype, exp, x[:, :3] (not all of x); broadcast_to to x's own shape
    # is an output: kept (a result stays a new array)
    kept = {"backend.astype": 1, "backend.unary": 1, "indexing": 1, "backend.broadcast_to": 1}
    assert Counter(_plan(f).names) == kept


def test_a_no_op_returned_as_a_result_stays_a_new_array():
    f = aq.compile(lambda x: (aq.reshape(x, x.shape), x[...]))
    x = _f32((2, 3))
    for _ in range(2):
        a, b = f(x)
        assert a is not x and b is not x
        np.testing.assert_array_equal(a, x)
    assert len(_plan(f)) == 2


def test_indexing_that_reverses_or_shortens_is_not_a_no_op():
    f = aq.compile(lambda x: (aq.exp(x[::-1]), aq.exp(x[1:]), aq.exp(x[-3:])))
    _replays_match_eager(f, lambda i: _f32((3,), i))
    assert Counter(_plan(f).names) == {"indexing": 2, "backend.unary": 3}  # x[-3:] is all of x


@pytest.mark.parametrize("view", [lambda b: b[:, :], lambda b: aq.reshape(b, b.shape), lambda b: b[:, :4]])
def test_a_view_of_a_donated_buffer_read_after_the_write_sees_the_old_values(view):
    """The buffer is read (through a view, dropped or not) after its slice_update: writing it in
    place would change what that read sees, so the update copies, as eagerly."""

    def step(buf, new, position):
        before = view(buf)
        out = aq.slice_update(buf, new, position, axis=1)
        return aq.sum(before, axis=1), out

    f = aq.compile(step, donate=("buf",))
    for i in range(4):
        buf = np.arange(12, dtype=np.float32).reshape(2, 6)
        given = buf.copy()
        got = f(buf, np.full((2, 1), -1.0, np.float32), np.asarray(i, np.int32))
        want = step(given, np.full((2, 1), -1.0, np.float32), np.asarray(i, np.int32))
        _same(got, want)
        assert got[1] is not buf
        np.testing.assert_array_equal(buf, given)  # not written


def test_a_donated_buffer_read_only_through_a_dropped_view_is_written_in_place():
    """A no-op view of the buffer as the slice_update's operand: dropped, the update writes the
    donated buffer in place (donation allows it); the values are the eager ones."""

    def step(buf, new):
        return aq.slice_update(buf[:, :], new, 2, axis=1)

    f = aq.compile(step, donate=("buf",))
    f(np.zeros((2, 6), np.float32), np.ones((2, 1), np.float32))  # recorded
    buf = np.zeros((2, 6), np.float32)
    out = f(buf, np.ones((2, 1), np.float32))
    np.testing.assert_array_equal(out, step(np.zeros((2, 6), np.float32), np.ones((2, 1), np.float32)))
    assert out is buf


def test_nothing_is_dropped_in_a_plan_that_writes_into_an_array():
    def fn(x):
        y = x[:, :]  # eagerly a view: the write below reaches x
        y[0, 0] = 7.0
        return aq.exp(x)

    f = aq.compile(fn)
    for i in range(3):
        x, xe = _f32((2, 3), i), _f32((2, 3), i)
        _same([f(x)], [fn(xe)])
        np.testing.assert_array_equal(x, xe)  # the caller's array written alike
    assert Counter(_plan(f).names) == {"indexing": 1, "x[...] = v": 1, "backend.unary": 1}


def test_other_strides_of_the_same_shape_replay_as_eager():
    """A replay's input may be laid out differently (here a transposed view): the forms make no
    choice from the layout (reshape copies where it must)."""

    def fn(x):
        return aq.reshape(x, (12,)), aq.permute_dims(aq.reshape(x, (2, 2, 3)), (2, 0, 1))

    f = aq.compile(fn)
    f(_f32((4, 3)))  # recorded on a C-ordered array
    for i in range(3):
        x = _f32((3, 4), i).T  # (4, 3), Fortran-ordered
        _same(f(x), fn(x))


def test_bfloat16_with_a_python_float_keeps_the_backend_method():
    bf16 = np.dtype(ml_dtypes.bfloat16)
    f = aq.compile(lambda x: aq.multiply(x, 0.1))
    x = _f32((5,)).astype(bf16)
    for _ in range(2):
        got = f(x)
        assert got.dtype == bf16
        np.testing.assert_array_equal(got, f.__wrapped__(x))
    ((fn, _, _),) = _plan(f).steps
    assert getattr(fn, "__name__", "") == "binary"  # the array API's promotion: not the bare ufunc


def test_a_numpy_scalar_and_a_0d_array_are_different_signatures():
    f = aq.compile(lambda x: aq.reshape(aq.astype(x, aq.float64), (1,)))
    for x in (np.asarray(2.5, np.float32), np.float32(2.5), np.asarray(1.5, np.float32), np.float32(1.5)):
        _same([f(x)], [f.__wrapped__(x)])
    assert f.cache_info().signatures == 2


def test_integer_clip_bounds_outside_the_dtype_keep_the_method():
    f = aq.compile(lambda x: (aq.clip(x, -1000, 100), aq.clip(x, 0, None)))
    _replays_match_eager(f, lambda i: np.arange(-5, 5, dtype=np.int8) * (i + 1))
    kinds = [type(fn).__name__ for fn, _, _ in _plan(f).steps]
    assert kinds == ["method", "partial"]  # -1000 is below int8's range: array-api-compat drops it


class _Numpy:
    """Just enough of a backend for :func:`describe`, whose replay form drops ``x``."""

    def is_array(self, x):
        return isinstance(x, np.ndarray)

    def dtype_of(self, x):
        return x.dtype

    def replay_form(self, method, args, fixed, result):
        return operator.neg, (0,)  # takes args[0] (the fixed op name), not the array


def test_a_replay_form_that_drops_an_array_argument_is_refused():
    step = _Step(lambda op, x: -x, (0, 1), 2, "backend.unary")
    with pytest.raises(TypeError, match=r"every argument that is not fixed.*missing: \[1\]"):
        describe(step, _Numpy(), "unary", ("negative", np.ones(3)), (True, False), -np.ones(3))


def test_a_plan_replays_tuple_results_with_gaps_constants_and_inputs():
    """Plan on hand-made steps: a step giving (a, None, b) (a place of -1 for the None), a
    constant, an input returned as it is; worked out by hand."""
    from arrayq._replay import Plan

    split = _Step(lambda x: (x + 1, None, x * 2), (0,), (2, -1, 3), "split")
    add = _Step(np.add, (2, 1), 4, "add")  # place 1: the constant 10.0
    plan = Plan(1, [None, 10.0], [split, add], [4, 3, 0], {1})
    x = np.arange(3.0)
    got = plan(x)
    np.testing.assert_array_equal(got[0], x + 11)
    np.testing.assert_array_equal(got[1], x * 2)
    assert got[2] is x and len(plan) == 2


def test_indexing_a_0d_array_to_a_numpy_scalar_is_not_a_no_op():
    """``x[()]`` of a 0-d array keeps its shape but gives a NumPy scalar: another type, so
    not the argument's values as they were (kept; ``x[...]`` is a 0-d array: dropped)."""
    f = aq.compile(lambda x: (x[()] * 2.0, x[...] * 3.0))
    for v in (1.5, -2.0):
        x = np.asarray(v, np.float32)
        got, want = f(x), f.__wrapped__(x)
        assert [type(g) for g in got] == [type(w) for w in want] and got == want
    assert _plan(f).names == ["indexing", "mul", "mul"]


def test_a_replay_warns_as_eager_code_does():
    """NumPy's floating-point warnings of the steps (called directly from the generated
    replay) still come, one per overflowing call, as eagerly."""
    import warnings

    def fn(x):
        return aq.exp(x), aq.multiply(aq.exp(aq.add(x, 1.0)), 2.0)

    f = aq.compile(fn)
    x = np.full(3, 100.0, np.float32)  # exp(100) overflows float32
    for run in (f, f, f, fn):  # recorded, replayed twice, eager
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            got = run(x)
        assert [str(w.message) for w in seen] == ["overflow encountered in exp"] * 2
        assert np.isinf(got[0]).all() and np.isinf(got[1]).all()
