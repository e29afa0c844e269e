"""Statistical and utility functions (array API chapters "Statistical Functions" and
"Utility Functions", plus diff and count_nonzero) on both test backends, against Python
reductions over explicit index loops.

Sums and products use inputs whose every partial result is exact in the tested dtype
(small multiples of 1/4), so they are compared exactly whatever order the backend adds in.
mean, var and std are compared with exact rational arithmetic (fractions) rounded once:
a float computation of n terms is within about n ulps of that, see ``_stat_rtol``.
"""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

import arrayq as aq
from tests._ops_support import be, eps, quiet  # noqa: F401 (fixture)

COVERS = {"sum", "prod", "max", "min", "all", "any", "mean", "var", "std", "cumulative_sum", "count_nonzero", "diff"}

nan, inf = math.nan, math.inf


def reduce_loops(a, axis, keepdims, fn):
    """``fn`` (a list of Python values -> a value) over ``axis`` of ``a``, by index loops;
    an object array of the kept shape (with 1s for reduced axes if ``keepdims``)."""
    a = np.asarray(a)
    if axis is None:
        axes = tuple(range(a.ndim))
    else:
        axes = tuple(sorted(i % a.ndim for i in ((axis,) if isinstance(axis, int) else axis)))
    kept = [i for i in range(a.ndim) if i not in axes]
    out = np.empty(tuple(a.shape[i] for i in kept), dtype=object)
    for idx in itertools.product(*(range(a.shape[i]) for i in kept)):
        values = []
        for red in itertools.product(*(range(a.shape[i]) for i in axes)):
            full = [0] * a.ndim
            for i, v in zip(kept, idx):
                full[i] = v
            for i, v in zip(axes, red):
                full[i] = v
            v = a[tuple(full)]
            values.append(v.item() if isinstance(v, np.generic) else v)
        out[idx] = fn(values)
    if keepdims:
        out = out.reshape(tuple(1 if i in axes else n for i, n in enumerate(a.shape)))
    return out


def _quarter_data(shape, dtype):
    """Multiples of 1/4 in [-2, 2.75] (ints: -3..4): every partial sum is exact."""
    n = int(np.prod(shape))
    values = [((k * 7) % 12 - 4) * (0.25 if aq.isdtype(dtype, "real floating") else 1) for k in range(n)]
    return np.array(values).reshape(shape).astype(dtype.dtype if dtype.kind != "unsigned" else np.int64)


AXES = [
    ((2, 3, 4), None),
    ((2, 3, 4), 0),
    ((2, 3, 4), 1),
    ((2, 3, 4), -1),
    ((2, 3, 4), (0, 2)),
    ((2, 3, 4), (-1, -3)),
    ((2, 3, 4), (0, 1, 2)),
    ((2, 3, 4), ()),
    ((), None),
    ((), ()),
    ((0, 3), 0),
    ((0, 3), 1),
    ((0, 3), None),
    ((5,), 0),
]
AXES_IDS = [f"{s}-{a}" for s, a in AXES]

# array API: integer sums and products widen to the default integer of their signedness,
# bool counts in the default integer, floats keep their dtype
SUM_DTYPE = {
    "bool": aq.int64,
    "int8": aq.int64,
    "int16": aq.int64,
    "int32": aq.int64,
    "int64": aq.int64,
    "uint8": aq.uint64,
    "uint32": aq.uint64,
    "uint64": aq.uint64,
    "float16": aq.float16,
    "bfloat16": aq.bfloat16,
    "float32": aq.float32,
    "float64": aq.float64,
    "complex64": aq.complex64,
    "complex128": aq.complex128,
}


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", AXES, ids=AXES_IDS)
@pytest.mark.parametrize(
    "dtype", [aq.int8, aq.int32, aq.uint8, aq.float16, aq.bfloat16, aq.float32, aq.float64], ids=lambda d: d.name
)
def test_sum(be, dtype, shape, axis, keepdims):
    data = _quarter_data(shape, dtype)
    if dtype.kind == "unsigned":
        data = np.abs(data).astype(dtype.dtype)
    out_dtype = SUM_DTYPE[dtype.name]
    expected = reduce_loops(data, axis, keepdims, sum)
    be.check(aq.sum(be.arr(data), axis=axis, keepdims=keepdims), expected.astype(out_dtype.dtype), out_dtype)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", AXES, ids=AXES_IDS)
@pytest.mark.parametrize("dtype", [aq.int16, aq.int64, aq.uint8, aq.float32, aq.float64], ids=lambda d: d.name)
def test_prod(be, dtype, shape, axis, keepdims):
    n = int(np.prod(shape))
    data = np.array([(1, 2, -1, 1, 3, -2)[k % 6] for k in range(n)]).reshape(shape)  # small: no overflow, exact
    data = (np.abs(data) if dtype.kind == "unsigned" else data).astype(dtype.dtype)
    out_dtype = SUM_DTYPE[dtype.name]
    expected = reduce_loops(data, axis, keepdims, math.prod)
    be.check(aq.prod(be.arr(data), axis=axis, keepdims=keepdims), expected.astype(out_dtype.dtype), out_dtype)


def test_sum_and_prod_of_bool_and_complex(be):
    b = be.arr([[True, False, True], [True, True, True]])
    be.check(aq.sum(b), 5, aq.int64)
    be.check(aq.sum(b, axis=1), [2, 3], aq.int64)
    be.check(aq.prod(b, axis=0), [1, 0, 1], aq.int64)
    z = be.arr([1 + 1j, 2 - 1j, 0.5j], aq.complex64)
    be.check(aq.sum(z), 3 + 0.5j, aq.complex64)
    be.check(aq.prod(z), (1 + 1j) * (2 - 1j) * 0.5j, aq.complex64)


@pytest.mark.parametrize(
    "fn, dtype, result",
    [
        ("sum", aq.int8, aq.int8),
        ("sum", aq.int8, aq.int16),
        ("sum", aq.float32, aq.float64),
        ("sum", aq.int32, aq.float64),
        ("prod", aq.uint8, aq.uint8),
        ("prod", aq.float16, aq.float32),
        ("sum", aq.bool, aq.int32),
    ],
)
def test_sum_and_prod_accumulate_in_the_dtype_given(be, fn, dtype, result):
    data = np.array([[1, 2, 1], [2, 1, 1]]).astype(dtype.dtype)
    expected = {"sum": [3, 3, 2], "prod": [2, 2, 1]}[fn]
    if dtype == aq.bool:
        expected = [2, 2, 2]
    be.check(getattr(aq, fn)(be.arr(data), axis=0, dtype=result), np.array(expected).astype(result.dtype), result)


def test_sum_of_0d_and_empty(be):
    be.check(aq.sum(be.arr(3.5)), 3.5, aq.float64)
    be.check(aq.sum(be.arr(np.int8(-3))), -3, aq.int64)
    be.check(aq.sum(be.arr(np.float32(2.0)), keepdims=True), 2.0, aq.float32)
    be.check(aq.prod(be.arr(np.uint8(7))), 7, aq.uint64)
    be.check(aq.sum(be.arr(np.zeros((0,)))), 0.0, aq.float64)
    be.check(aq.prod(be.arr(np.zeros((0,)))), 1.0, aq.float64)
    be.check(aq.sum(be.arr(np.zeros((2, 0), np.int8)), axis=1), [0, 0], aq.int64)
    be.check(aq.prod(be.arr(np.zeros((2, 0), np.float32)), axis=1, keepdims=True), [[1.0], [1.0]], aq.float32)


def test_reductions_reject_bad_axes(be):
    x = be.arr(np.ones((2, 3)))
    for fn in (aq.sum, aq.prod, aq.max, aq.min, aq.all, aq.any, aq.mean, aq.var, aq.std, aq.count_nonzero):
        with pytest.raises(IndexError):
            fn(x, axis=2)
        with pytest.raises(IndexError):
            fn(x, axis=-3)
        with pytest.raises(ValueError):
            fn(x, axis=(0, -2))  # the same axis twice
    with pytest.raises(IndexError):
        aq.sum(be.arr(1.0), axis=-1)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize(
    "shape, axis", [a for a in AXES if 0 not in a[0]], ids=[i for a, i in zip(AXES, AXES_IDS) if 0 not in a[0]]
)
@pytest.mark.parametrize("dtype", [aq.int8, aq.uint16, aq.float32, aq.float64, aq.bfloat16], ids=lambda d: d.name)
def test_max_min(be, dtype, shape, axis, keepdims):
    data = _quarter_data(shape, dtype)
    if dtype.kind == "unsigned":
        data = np.abs(data).astype(dtype.dtype)
    be.check(
        aq.max(be.arr(data), axis=axis, keepdims=keepdims),
        reduce_loops(data, axis, keepdims, max).astype(dtype.dtype),
        dtype,
    )
    be.check(
        aq.min(be.arr(data), axis=axis, keepdims=keepdims),
        reduce_loops(data, axis, keepdims, min).astype(dtype.dtype),
        dtype,
    )


def test_max_min_propagate_nan_and_reject_empty(be):
    x = be.arr([[1.0, nan, 3.0], [4.0, 5.0, -inf]])
    be.check(aq.max(x, axis=1), [nan, 5.0], aq.float64)
    be.check(aq.min(x, axis=1), [nan, -inf], aq.float64)
    be.check(aq.max(x, axis=0), [4.0, nan, 3.0], aq.float64)
    be.check(aq.max(x), nan, aq.float64)
    for fn in (aq.max, aq.min):
        with pytest.raises(ValueError):
            fn(be.arr(np.zeros((0, 2))))
        with pytest.raises(ValueError):
            fn(be.arr(np.zeros((0, 2))), axis=0)
        be.check(fn(be.arr(np.zeros((0, 2))), axis=1), np.zeros(0), aq.float64)  # nothing to reduce over


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", AXES, ids=AXES_IDS)
@pytest.mark.parametrize("dtype", [aq.bool, aq.int8, aq.float32, aq.complex64], ids=lambda d: d.name)
def test_all_any(be, dtype, shape, axis, keepdims):
    n = int(np.prod(shape))
    values = [(1, 0, 2, 1, 1, 0, 1)[k % 7] for k in range(n)]
    if dtype.kind == "float" and n:
        values[-1] = nan  # NaN is not zero: true
    data = np.array(values).reshape(shape).astype(dtype.dtype)
    flags = np.array([bool(v) for v in np.asarray(values, dtype=object).ravel()], dtype=object).reshape(shape)
    be.check(
        aq.all(be.arr(data), axis=axis, keepdims=keepdims),
        reduce_loops(flags, axis, keepdims, all).astype(bool),
        aq.bool,
    )
    be.check(
        aq.any(be.arr(data), axis=axis, keepdims=keepdims),
        reduce_loops(flags, axis, keepdims, any).astype(bool),
        aq.bool,
    )


def test_all_any_of_empty_and_0d(be):
    be.check(aq.all(be.arr(np.zeros(0))), True, aq.bool)
    be.check(aq.any(be.arr(np.zeros(0))), False, aq.bool)
    be.check(aq.all(be.arr(0.0)), False, aq.bool)
    be.check(aq.any(be.arr(nan)), True, aq.bool)


# ---------------------------------------------------------------------- mean, var, std


def _stat_rtol(dtype, n):
    # n terms summed (pairwise or not) and a division: about n + 2 roundings, each of at
    # most one ulp relative to the running magnitude, which these inputs keep near the result
    return (n + 2) * eps(dtype)


def _mean_exact(values):
    return Fraction(sum(Fraction(v) for v in values), len(values)) if values else None


def _var_exact(values, correction):
    if not values:
        return nan
    m = _mean_exact(values)
    ss = sum((Fraction(v) - m) ** 2 for v in values)
    dof = len(values) - Fraction(correction)
    return float(ss / dof) if dof > 0 else (nan if ss == 0 else inf)


STAT_AXES = [a for a in AXES if 0 not in a[0] and a[1] != ()]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", STAT_AXES, ids=[f"{s}-{a}" for s, a in STAT_AXES])
@pytest.mark.parametrize("dtype", [aq.bfloat16, aq.float16, aq.float32, aq.float64], ids=lambda d: d.name)
def test_mean(be, dtype, shape, axis, keepdims):
    data = (np.arange(int(np.prod(shape))).reshape(shape) * 0.37 - 1.1).astype(dtype.dtype)
    expected = reduce_loops(data, axis, keepdims, lambda v: float(_mean_exact(v)))
    n = max(1, data.size // max(1, np.asarray(expected).size))
    be.check(
        aq.mean(be.arr(data), axis=axis, keepdims=keepdims),
        expected.astype(np.float64),
        dtype,
        rtol=_stat_rtol(dtype, n),
    )


@pytest.mark.parametrize("correction", [0, 1, 0.5])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", STAT_AXES, ids=[f"{s}-{a}" for s, a in STAT_AXES])
@pytest.mark.parametrize("dtype", [aq.bfloat16, aq.float16, aq.float32, aq.float64], ids=lambda d: d.name)
def test_var_std(be, dtype, shape, axis, keepdims, correction):
    data = (((np.arange(int(np.prod(shape))) * 5) % 11).reshape(shape) * 0.3 + 2.0).astype(dtype.dtype)
    var = reduce_loops(data, axis, keepdims, lambda v: _var_exact(v, correction)).astype(np.float64)
    n = max(1, data.size // max(1, var.size))
    rtol = 2 * _stat_rtol(dtype, n)  # two passes: the mean, then the squares
    with quiet():
        be.check(aq.var(be.arr(data), axis=axis, keepdims=keepdims, correction=correction), var, dtype, rtol=rtol)
        be.check(
            aq.std(be.arr(data), axis=axis, keepdims=keepdims, correction=correction), np.sqrt(var), dtype, rtol=rtol
        )


def test_mean_var_std_edge_cases(be):
    with quiet():
        be.check(aq.mean(be.arr(np.zeros(0))), nan, aq.float64)  # no values: NaN
        be.check(aq.mean(be.arr(np.zeros((0, 2), np.float32)), axis=0), [nan, nan], aq.float32)
        be.check(aq.var(be.arr([2.0]), correction=1), nan, aq.float64)  # 0 / 0
        be.check(aq.std(be.arr([2.0, 4.0]), correction=2), inf, aq.float64)  # 2 / 0
    be.check(aq.mean(be.arr(2.5)), 2.5, aq.float64)
    be.check(aq.var(be.arr(np.float32(2.5))), 0.0, aq.float32)
    be.check(aq.std(be.arr([1.0, 3.0])), 1.0, aq.float64)
    be.check(aq.var(be.arr([1.0, 2.0, 3.0, 4.0]), correction=1), 5 / 3, aq.float64, rtol=2 * eps(aq.float64))
    be.check(aq.mean(be.arr([[1.0, 2.0], [3.0, 5.0]]), axis=1, keepdims=True), [[1.5], [4.0]], aq.float64)
    be.check(aq.mean(be.arr([1.0, nan])), nan, aq.float64)
    be.check(aq.mean(be.arr([1 + 1j, 3 - 1j], aq.complex128)), 2 + 0j, aq.complex128)


# ---------------------------------------------------------------------- cumulative_sum


def _cumsum_loops(a, axis, include_initial):
    a = np.asarray(a, dtype=object)
    moved = np.moveaxis(a, axis, -1)
    rows = (
        moved.reshape(-1, moved.shape[-1])
        if moved.size
        else np.zeros((int(np.prod(moved.shape[:-1])), moved.shape[-1]), object)
    )
    out = []
    for row in rows:
        acc, run = 0, [0] if include_initial else []
        for v in row:
            acc = acc + v
            run.append(acc)
        out.append(run)
    length = moved.shape[-1] + include_initial
    res = np.array(out, dtype=object).reshape(moved.shape[:-1] + (length,))
    return np.moveaxis(res, -1, axis)


@pytest.mark.parametrize("include_initial", [False, True])
@pytest.mark.parametrize(
    "shape, axis",
    [
        ((5,), None),
        ((5,), 0),
        ((5,), -1),
        ((3, 4), 0),
        ((3, 4), 1),
        ((3, 4), -2),
        ((2, 3, 2), 1),
        ((0,), None),
        ((0, 3), 0),
        ((0, 3), 1),
    ],
    ids=str,
)
@pytest.mark.parametrize(
    "dtype", [aq.int8, aq.uint8, aq.int64, aq.bfloat16, aq.float32, aq.float64, aq.bool], ids=lambda d: d.name
)
def test_cumulative_sum(be, dtype, shape, axis, include_initial):
    data = _quarter_data(shape, dtype if dtype != aq.bool else aq.int8)
    data = (data > 0) if dtype == aq.bool else (np.abs(data) if dtype.kind == "unsigned" else data).astype(dtype.dtype)
    expected = _cumsum_loops(
        data.astype(object) if dtype != aq.bool else data.astype(int).astype(object),
        0 if axis is None else axis,
        include_initial,
    )
    out_dtype = SUM_DTYPE[dtype.name]
    got = aq.cumulative_sum(be.arr(data), axis=axis, include_initial=include_initial)
    be.check(got, expected.astype(out_dtype.dtype), out_dtype)


def test_cumulative_sum_dtype_and_errors(be):
    x = be.arr([100, 100, 100], aq.int8)
    be.check(aq.cumulative_sum(x, dtype=aq.int16), [100, 200, 300], aq.int16)
    be.check(aq.cumulative_sum(be.arr([0.5, 0.25], aq.float32), dtype=aq.float64), [0.5, 0.75], aq.float64)
    with pytest.raises(ValueError):
        aq.cumulative_sum(be.arr(np.ones((2, 2))))  # axis is needed past 1-D
    with pytest.raises(ValueError):
        aq.cumulative_sum(be.arr(1.0))
    with pytest.raises(IndexError):
        aq.cumulative_sum(be.arr(np.ones((2, 2))), axis=2)


# ---------------------------------------------------------------------- count_nonzero


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", AXES, ids=AXES_IDS)
@pytest.mark.parametrize("dtype", [aq.bool, aq.int8, aq.uint32, aq.float32, aq.complex128], ids=lambda d: d.name)
def test_count_nonzero(be, dtype, shape, axis, keepdims):
    n = int(np.prod(shape))
    values = [(0, 1, 0, 3, -2, 0, 5)[k % 7] for k in range(n)]
    if dtype.kind == "unsigned":
        values = [abs(v) for v in values]
    if dtype.kind in ("float", "complex") and n > 2:
        values[2] = nan  # NaN is not zero
    data = np.array(values).reshape(shape).astype(dtype.dtype)
    flags = np.array([v != 0 for v in values], dtype=object).reshape(shape)
    expected = reduce_loops(flags, axis, keepdims, sum).astype(np.int64)
    be.check(aq.count_nonzero(be.arr(data), axis=axis, keepdims=keepdims), expected, aq.int64)


def test_count_nonzero_negative_zero_and_0d(be):
    be.check(aq.count_nonzero(be.arr([-0.0, 0.0, 1e-300])), 1, aq.int64)
    be.check(aq.count_nonzero(be.arr(0.0)), 0, aq.int64)
    be.check(aq.count_nonzero(be.arr(np.int8(4)), keepdims=True), 1, aq.int64)


# ---------------------------------------------------------------------- diff


def _diff_loops(rows, n):
    """rows: a list (the axis) of lists (the other axes, flattened)."""
    for _ in range(n):
        rows = [[b - a for a, b in zip(r0, r1)] for r0, r1 in zip(rows, rows[1:])]
    return rows


def _along(a, axis):
    """``a`` as a list over ``axis`` of the flattened other axes."""
    moved = np.moveaxis(np.asarray(a), axis, 0)
    return [m.ravel().tolist() for m in moved], moved.shape[1:]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7])
@pytest.mark.parametrize(
    "shape, axis",
    [
        ((6,), -1),
        ((6,), 0),
        ((3, 5), 0),
        ((3, 5), 1),
        ((3, 5), -1),
        ((2, 4, 3), 1),
        ((0,), 0),
        ((2, 0), 1),
        ((2, 0), 0),
    ],
    ids=str,
)
@pytest.mark.parametrize("dtype", [aq.int8, aq.int64, aq.float32, aq.float64], ids=lambda d: d.name)
def test_diff(be, dtype, shape, axis, n):
    data = np.array([(k * k * 3) % 17 - 8 for k in range(int(np.prod(shape)))]).reshape(shape).astype(dtype.dtype)
    rows, rest = _along(data, axis)
    out = _diff_loops(rows, n)
    expected = np.moveaxis(np.array(out, dtype=np.float64).reshape((len(out),) + rest), 0, axis)
    be.check(aq.diff(be.arr(data), axis=axis, n=n), expected.astype(dtype.dtype), dtype)


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("where", ["prepend", "append", "both"])
def test_diff_with_prepend_and_append(be, axis, where):
    data = np.array([[1, 4, 9, 16], [2, 3, 5, 7], [0, -1, -3, -6]], np.int16)
    shape = list(data.shape)
    shape[axis] = 2
    pre = np.full(shape, 10, np.int16)
    shape[axis] = 1
    app = np.full(shape, -5, np.int16)
    pieces = [pre] * (where != "append") + [data] + [app] * (where != "prepend")
    joined = [r for p in pieces for r in _along(p, axis)[0]]
    rest = _along(data, axis)[1]
    for n in (1, 2):
        out = _diff_loops(joined, n)
        expected = np.moveaxis(np.array(out, dtype=np.int64).reshape((len(out),) + rest), 0, axis)
        kwargs = {"prepend": be.arr(pre)} if where != "append" else {}
        if where != "prepend":
            kwargs["append"] = be.arr(app)
        be.check(aq.diff(be.arr(data), axis=axis, n=n, **kwargs), expected, aq.int16)


def test_diff_1d_prepend_append_and_errors(be):
    x = be.arr([1.0, 4.0, 9.0])
    be.check(aq.diff(x, prepend=be.arr([0.0])), [1.0, 3.0, 5.0], aq.float64)
    be.check(aq.diff(x, append=be.arr([16.0, 25.0])), [3.0, 5.0, 7.0, 9.0], aq.float64)
    be.check(aq.diff(x, prepend=be.arr([0.0]), append=be.arr([16.0]), n=2), [2.0, 2.0, 2.0], aq.float64)
    be.check(aq.diff(x, prepend=be.arr(np.zeros(0))), [3.0, 5.0], aq.float64)
    be.check(aq.diff(x, n=0), [1.0, 4.0, 9.0], aq.float64)
    with pytest.raises(ValueError):
        aq.diff(x, n=-1)
    with pytest.raises(IndexError):
        aq.diff(x, axis=1)
