"""Searching, sorting and set functions (array API chapters of those names) on both test
backends, against Python's sorted(), bisect and dict bookkeeping in loops. All exact."""

import bisect
import itertools
import math

import numpy as np
import pytest

import arrayq as aq
from tests._ops_support import be, build  # noqa: F401 (fixture)

COVERS = {
    "argmax",
    "argmin",
    "argsort",
    "nonzero",
    "searchsorted",
    "sort",
    "unique_all",
    "unique_counts",
    "unique_inverse",
    "unique_values",
    "where",
}

nan = math.nan


def _index_tuples(shape):
    return list(itertools.product(*(range(n) for n in shape)))


def _lanes(a, axis):
    """For each index of the other axes, the list of (position along axis, value)."""
    rest = [n for k, n in enumerate(a.shape) if k != axis]
    out = {}
    for idx in _index_tuples(tuple(rest)):
        out[idx] = [(i, a[idx[:axis] + (i,) + idx[axis:]].item()) for i in range(a.shape[axis])]
    return out, tuple(rest)


# ---------------------------------------------------------------------- argmax, argmin


def _arg_expected(a, axis, keepdims, pick):
    if axis is None:
        flat = [a[idx].item() for idx in _index_tuples(a.shape)]
        best = flat.index(pick(flat))  # list.index: the first occurrence
        return np.array(best).reshape((1,) * a.ndim if keepdims else ())
    axis %= a.ndim
    lanes, rest = _lanes(a, axis)
    out = build(rest, lambda idx: [v for _, v in lanes[idx]].index(pick([v for _, v in lanes[idx]])), aq.int64)
    return out.reshape(rest[:axis] + (1,) + rest[axis:]) if keepdims else out


ARG_CASES = [
    ((6,), None),
    ((6,), 0),
    ((3, 4), None),
    ((3, 4), 0),
    ((3, 4), 1),
    ((3, 4), -1),
    ((2, 3, 4), 1),
    ((), None),
    ((2, 0), 0),
    ((1, 5), 0),
]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("shape, axis", ARG_CASES, ids=str)
@pytest.mark.parametrize("dtype", [aq.int8, aq.uint8, aq.float32, aq.float64, aq.bool], ids=lambda d: d.name)
def test_argmax_argmin(be, dtype, shape, axis, keepdims):
    values = [(3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5)[k % 11] for k in range(int(np.prod(shape)))]  # ties: first wins
    a = np.array(values).reshape(shape)
    a = (a > 3) if dtype == aq.bool else a.astype(dtype.dtype)
    be.check(aq.argmax(be.arr(a), axis=axis, keepdims=keepdims), _arg_expected(a, axis, keepdims, max), aq.int64)
    be.check(aq.argmin(be.arr(a), axis=axis, keepdims=keepdims), _arg_expected(a, axis, keepdims, min), aq.int64)


def test_argmax_argmin_errors(be):
    for fn in (aq.argmax, aq.argmin):
        with pytest.raises(ValueError):
            fn(be.arr(np.zeros(0)))
        with pytest.raises(ValueError):
            fn(be.arr(np.zeros((2, 0))), axis=1)
        with pytest.raises(IndexError):
            fn(be.arr(np.zeros((2, 3))), axis=2)


# ---------------------------------------------------------------------- where


@pytest.mark.parametrize(
    "sc, s1, s2",
    [
        ((4,), (4,), (4,)),
        ((2, 3), (3,), ()),
        ((2, 1), (1, 3), (2, 3)),
        ((), (), ()),
        ((0, 3), (3,), (1, 3)),
        ((3, 1, 1), (2, 1), (4,)),
    ],
)
def test_where(be, sc, s1, s2):
    cond = (np.arange(int(np.prod(sc))) % 3 == 1).reshape(sc)
    x1 = (np.arange(int(np.prod(s1))) + 10).astype(np.float32).reshape(s1)
    x2 = -(np.arange(int(np.prod(s2))) + 1).astype(np.float32).reshape(s2)
    nd = max(len(sc), len(s1), len(s2))
    result = []
    for k in range(nd):  # the broadcast shape, by its rule: sizes other than 1 must agree
        sizes = {s[k - nd] for s in (sc, s1, s2) if len(s) >= nd - k} - {1}
        assert len(sizes) <= 1
        result.append(sizes.pop() if sizes else 1)
    result = tuple(result)

    def at(a, idx):
        off = len(idx) - a.ndim
        return a[tuple(0 if a.shape[k] == 1 else idx[k + off] for k in range(a.ndim))]

    expected = build(result, lambda idx: at(x1, idx) if at(cond, idx) else at(x2, idx), aq.float32)
    be.check(aq.where(be.arr(cond), be.arr(x1), be.arr(x2)), expected, aq.float32)


def test_where_promotes_and_checks_shapes(be):
    cond = be.arr([True, False])
    be.check(aq.where(cond, be.arr([1, 2], aq.int8), be.arr([300, 400], aq.int16)), [1, 400], aq.int16)
    be.check(aq.where(cond, be.arr([1.5, 2.5], aq.float32), be.arr([0.25, 0.5], aq.float64)), [1.5, 0.5], aq.float64)
    with pytest.raises(ValueError):
        aq.where(be.arr([True, False, True]), be.arr([1, 2]), be.arr([3, 4]))


# ---------------------------------------------------------------------- nonzero


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2), (0,), (2, 0), (1, 1)])
@pytest.mark.parametrize("dtype", [aq.bool, aq.int16, aq.float64, aq.complex64], ids=lambda d: d.name)
def test_nonzero(be, shape, dtype):
    values = [(0, 2, 0, 0, 5, -1, 0)[k % 7] for k in range(int(np.prod(shape)))]
    a = np.array(values).reshape(shape).astype(dtype.dtype)
    hits = [idx for idx in _index_tuples(shape) if a[idx] != 0]  # row-major order
    got = aq.nonzero(be.arr(a))
    assert isinstance(got, tuple) and len(got) == len(shape)
    for k, g in enumerate(got):
        be.check(g, np.array([h[k] for h in hits], dtype=np.int64), aq.int64)


def test_nonzero_counts_nan_and_rejects_0d(be):
    (got,) = aq.nonzero(be.arr([0.0, nan, -0.0, 1e-300]))
    be.check(got, [1, 3], aq.int64)
    with pytest.raises(ValueError):
        aq.nonzero(be.arr(1.0))


# ---------------------------------------------------------------------- searchsorted

SORTED = [1.0, 2.0, 2.0, 2.0, 3.5, 7.0]


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("x2", [[2.0], [0.0, 1.0, 2.0, 2.5, 3.5, 7.0, 9.0], [[2.0, 7.5], [-1.0, 3.5]], 2.0, []])
def test_searchsorted(be, side, x2):
    find = bisect.bisect_left if side == "left" else bisect.bisect_right
    q = np.array(x2)
    expected = build(q.shape, lambda idx: find(SORTED, float(q[idx])), aq.int64)
    be.check(aq.searchsorted(be.arr(SORTED), be.arr(x2), side=side), expected, aq.int64)


def test_searchsorted_default_side_sorter_and_ints(be):
    x1 = [30, 10, 20, 10]
    order = [1, 3, 2, 0]  # x1[order] = [10, 10, 20, 30]
    ordered = [x1[i] for i in order]
    q = [5, 10, 25, 30, 40]
    be.check(
        aq.searchsorted(be.arr(x1, aq.int32), be.arr(q, aq.int32), sorter=be.arr(order)),
        [bisect.bisect_left(ordered, v) for v in q],
        aq.int64,
    )
    be.check(
        aq.searchsorted(be.arr(x1, aq.int32), be.arr(q, aq.int32), side="right", sorter=be.arr(order)),
        [bisect.bisect_right(ordered, v) for v in q],
        aq.int64,
    )
    be.check(aq.searchsorted(be.arr([1, 2, 3], aq.uint8), be.arr([2], aq.uint8)), [1], aq.int64)


def test_searchsorted_errors(be):
    with pytest.raises(ValueError):
        aq.searchsorted(be.arr([1.0, 2.0]), be.arr([1.0]), side="middle")
    with pytest.raises(ValueError):
        aq.searchsorted(be.arr([[1.0, 2.0]]), be.arr([1.0]))


# ---------------------------------------------------------------------- sort, argsort


def _nan_last_key(v):
    return (math.isnan(v), v) if isinstance(v, float) else (False, v)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize(
    "shape, axis",
    [
        ((8,), -1),
        ((8,), 0),
        ((3, 5), 1),
        ((3, 5), 0),
        ((3, 5), -2),
        ((2, 3, 4), 1),
        ((0,), 0),
        ((2, 0), 1),
        ((2, 0), 0),
    ],
    ids=str,
)
@pytest.mark.parametrize("dtype", [aq.int8, aq.uint16, aq.float32, aq.float64, aq.bool], ids=lambda d: d.name)
def test_sort_and_argsort(be, dtype, shape, axis, descending):
    values = [(5, 3, 8, 3, 1, 9, 3, 0, 7, 5, 2)[k % 11] for k in range(int(np.prod(shape)))]
    a = np.array(values).reshape(shape)
    a = (a > 4) if dtype == aq.bool else a.astype(dtype.dtype)
    ax = axis % len(shape)
    lanes, rest = _lanes(a, ax)
    # Python's sort is stable: equal values keep their order, ascending or descending
    order = {
        idx: [i for i, _ in sorted(lane, key=lambda iv: -iv[1] if descending else iv[1])] for idx, lane in lanes.items()
    }
    ordered = {
        idx: [v for _, v in sorted(lane, key=lambda iv: -iv[1] if descending else iv[1])] for idx, lane in lanes.items()
    }
    expect_sort = build(a.shape, lambda idx: ordered[idx[:ax] + idx[ax + 1 :]][idx[ax]], aq.as_dtype(a.dtype))
    expect_args = build(a.shape, lambda idx: order[idx[:ax] + idx[ax + 1 :]][idx[ax]], aq.int64)
    be.check(aq.sort(be.arr(a), axis=axis, descending=descending), expect_sort, aq.as_dtype(a.dtype))
    be.check(aq.argsort(be.arr(a), axis=axis, descending=descending), expect_args, aq.int64)
    be.check(aq.argsort(be.arr(a), axis=axis, descending=descending, stable=True), expect_args, aq.int64)
    # unstable: any order of ties, but it must sort
    idx = be.out(aq.argsort(be.arr(a), axis=axis, descending=descending, stable=False))
    assert idx.shape == a.shape and aq.as_dtype(idx.dtype) == aq.int64
    np.testing.assert_array_equal(np.take_along_axis(a, idx, axis=ax), expect_sort)
    be.check(aq.sort(be.arr(a), axis=axis, descending=descending, stable=False), expect_sort, aq.as_dtype(a.dtype))


def test_sort_puts_nan_last(be):
    x = be.arr([3.0, nan, -1.0, math.inf, nan, -math.inf])
    be.check(aq.sort(x), [-math.inf, -1.0, 3.0, math.inf, nan, nan], aq.float64)
    be.check(aq.argsort(x), [5, 2, 0, 3, 1, 4], aq.int64)


def test_sort_errors(be):
    with pytest.raises(IndexError):
        aq.sort(be.arr(np.ones((2, 3))), axis=2)
    with pytest.raises(IndexError):
        aq.argsort(be.arr(1.0))  # a 0-d array has no axis -1


# ---------------------------------------------------------------------- unique_*


def _unique_expected(flat):
    """Sorted distinct values; NaNs are each distinct (they compare unequal), and last."""
    values, first, counts = [], [], []
    for i, v in enumerate(flat):
        for j, u in enumerate(values):
            if u == v:  # never true for a NaN
                counts[j] += 1
                break
        else:
            values.append(v)
            first.append(i)
            counts.append(1)
    order = sorted(range(len(values)), key=lambda j: _nan_last_key(values[j]) + (first[j],))
    rank = {j: r for r, j in enumerate(order)}
    inverse = []
    for v in flat:
        hit = [j for j, u in enumerate(values) if u == v]
        inverse.append(rank[hit[0]] if hit else None)
    for j, (i, v) in enumerate(zip(first, values)):  # a NaN maps to its own entry
        if isinstance(v, float) and math.isnan(v):
            inverse[i] = rank[j]
    return ([values[j] for j in order], [first[j] for j in order], inverse, [counts[j] for j in order])


@pytest.mark.parametrize(
    "data, dtype",
    [
        ([[3, 1], [3, 2]], aq.int64),
        ([5, 5, 5], aq.int8),
        ([2.5, -1.0, 2.5, 0.0, -1.0, 7.0], aq.float32),
        ([True, False, True], aq.bool),
        (7, aq.uint8),
        (np.zeros((0, 3)), aq.float64),
        ([[[1, 2], [2, 1]]], aq.uint16),
        ([2.0, nan, 1.0, nan, 2.0], aq.float64),
    ],
)
def test_unique(be, data, dtype):
    a = np.array(data).astype(dtype.dtype)
    flat = [a[idx].item() for idx in _index_tuples(a.shape)]
    values, first, inverse, counts = _unique_expected(flat)
    values_arr = np.array(values, dtype=dtype.dtype)
    inverse_arr = np.array(inverse, dtype=np.int64).reshape(a.shape)

    got = aq.unique_all(be.arr(a))
    assert isinstance(got, tuple) and len(got) == 4
    # named tuples, with the array API's field names
    assert got._fields == ("values", "indices", "inverse_indices", "counts")
    assert got.values is got[0] and got.inverse_indices is got[2]
    assert aq.unique_counts(be.arr(a))._fields == ("values", "counts")
    assert aq.unique_inverse(be.arr(a))._fields == ("values", "inverse_indices")
    be.check(got[0], values_arr, dtype)
    be.check(got[1], first, aq.int64)
    be.check(got[2], inverse_arr, aq.int64)
    be.check(got[3], counts, aq.int64)

    v, c = aq.unique_counts(be.arr(a))
    be.check(v, values_arr, dtype)
    be.check(c, counts, aq.int64)
    v, inv = aq.unique_inverse(be.arr(a))
    be.check(v, values_arr, dtype)
    be.check(inv, inverse_arr, aq.int64)
    be.check(aq.unique_values(be.arr(a)), values_arr, dtype)
