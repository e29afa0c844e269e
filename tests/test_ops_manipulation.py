"""Manipulation functions and indexing (array API chapter "Manipulation Functions", take,
take_along_axis) on both test backends. Every expectation is an explicit index loop
(``build``): the element at each output index, read from the input by hand. All of these
ops only move elements, so every comparison is exact."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import arrayq as aq
from tests._ops_support import be, build  # noqa: F401 (fixture)

COVERS = {
    "broadcast_arrays",
    "broadcast_to",
    "concat",
    "expand_dims",
    "flip",
    "matrix_transpose",
    "moveaxis",
    "permute_dims",
    "repeat",
    "reshape",
    "roll",
    "slice_update",
    "squeeze",
    "stack",
    "take",
    "take_along_axis",
    "tile",
    "unstack",
    "linalg.matrix_transpose",
}

FEW = settings(max_examples=25, derandomize=True, deadline=None, database=None)
small_shapes = st.lists(st.integers(0, 3), min_size=0, max_size=4).map(tuple)


def _data(shape, dtype=np.int32):
    """Distinct values, so that any misplaced element shows."""
    return (np.arange(int(np.prod(shape))) * 3 + 1).astype(dtype).reshape(shape)


def _flat(a):
    """The elements of ``a`` in row-major order, by loops."""
    return [a[idx] for idx in itertools.product(*(range(n) for n in a.shape))]


# ---------------------------------------------------------------------- reshape


@pytest.mark.parametrize(
    "shape, new, result",
    [
        ((2, 3, 4), (4, 6), (4, 6)),
        ((2, 3, 4), (-1,), (24,)),
        ((2, 3, 4), (2, -1, 3), (2, 4, 3)),
        ((), (1,), (1,)),
        ((1, 1), (), ()),
        ((6,), 6, (6,)),
        ((0, 3), (3, 0), (3, 0)),
        ((0, 3), (0,), (0,)),
        ((0,), (2, 0, 5), (2, 0, 5)),
        ((3, 1, 2), (2, 3), (2, 3)),
        ((4,), (1, -1, 1), (1, 4, 1)),
    ],
)
def test_reshape(be, shape, new, result):
    a = _data(shape)
    flat = _flat(a)
    expected = build(result, lambda idx: flat[int(np.ravel_multi_index(idx, result))] if flat else 0, aq.int32)
    be.check(aq.reshape(be.arr(a), new), expected, aq.int32)
    be.check(aq.reshape(be.arr(a), new, copy=None), expected, aq.int32)


def test_reshape_copy_true_copies(be):
    x = be.arr(np.arange(6.0))
    copied = aq.reshape(x, (2, 3), copy=True)
    assert not np.shares_memory(be.out(copied), be.out(x))
    be.out(x)[0] = 99.0  # a later change of the input does not show in the copy
    be.check(copied, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], aq.float64)
    be.check(aq.reshape(be.arr(5), (1, 1), copy=True), [[5]], aq.int64)


@pytest.mark.parametrize(
    "shape, new", [((2, 3), (4,)), ((2, 3), (-1, -1)), ((2, 3), (-2, 3)), ((0, 3), (-1, 0)), ((6,), (4, -1))]
)
def test_reshape_errors(be, shape, new):
    with pytest.raises(ValueError):
        aq.reshape(be.arr(_data(shape)), new)


# ---------------------------------------------------------------------- permute_dims, matrix_transpose, moveaxis


@pytest.mark.parametrize(
    "shape, axes",
    [
        ((2, 3, 4), (2, 0, 1)),
        ((2, 3, 4), (0, 1, 2)),
        ((2, 3, 4), (-1, 0, -2)),
        ((2, 3), (1, 0)),
        ((), ()),
        ((0, 2), (1, 0)),
        ((1, 2, 1, 3), (3, 1, 0, 2)),
    ],
)
def test_permute_dims(be, shape, axes):
    a = _data(shape, np.float32)
    norm = [ax % len(shape) for ax in axes]
    result = tuple(shape[ax] for ax in norm)

    def element(idx):
        src = [0] * len(shape)
        for j, ax in enumerate(norm):
            src[ax] = idx[j]
        return a[tuple(src)]

    be.check(aq.permute_dims(be.arr(a), axes), build(result, element, aq.float32), aq.float32)


def test_permute_dims_rejects_a_non_permutation(be):
    for axes in ((0, 0, 1), (0, 1), (0, 1, 3)):
        with pytest.raises((ValueError, IndexError)):
            aq.permute_dims(be.arr(_data((2, 3, 4))), axes)


@pytest.mark.parametrize("fn", [aq.matrix_transpose, aq.linalg.matrix_transpose])
@pytest.mark.parametrize("shape", [(2, 3), (4, 2, 3), (2, 1, 3, 2), (0, 3), (2, 0, 1)])
def test_matrix_transpose(be, fn, shape):
    a = _data(shape, np.int8)
    result = shape[:-2] + (shape[-1], shape[-2])
    be.check(fn(be.arr(a)), build(result, lambda idx: a[idx[:-2] + (idx[-1], idx[-2])], aq.int8), aq.int8)


def test_matrix_transpose_needs_two_dimensions(be):
    for data in ([1, 2], 3):
        with pytest.raises(ValueError):
            aq.matrix_transpose(be.arr(data))


def _moveaxis_expected(a, source, destination):
    nd = a.ndim
    src = [s % nd for s in ((source,) if isinstance(source, int) else source)]
    dst = [d % nd for d in ((destination,) if isinstance(destination, int) else destination)]
    # result axis dst[i] is a's axis src[i]; the other result axes are a's other axes, in order
    rest = iter(ax for ax in range(nd) if ax not in src)
    order = [src[dst.index(j)] if j in dst else next(rest) for j in range(nd)]

    def element(idx):
        at = [0] * nd
        for j, ax in enumerate(order):
            at[ax] = idx[j]
        return a[tuple(at)]

    return build(tuple(a.shape[ax] for ax in order), element, aq.as_dtype(a.dtype))


@pytest.mark.parametrize(
    "shape, source, destination",
    [
        ((2, 3, 4), 0, 2),
        ((2, 3, 4), 2, 0),
        ((2, 3, 4), -1, 1),
        ((2, 3, 4), (0, 1), (2, 0)),
        ((2, 3, 4), (0, 1, 2), (2, 1, 0)),
        ((2, 3, 4, 5), (3, 0), (0, 3)),
        ((5,), 0, -1),
        ((0, 2, 1), 0, 1),
    ],
)
def test_moveaxis(be, shape, source, destination):
    a = _data(shape)
    be.check(aq.moveaxis(be.arr(a), source, destination), _moveaxis_expected(a, source, destination), aq.int32)


@FEW
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=5).map(tuple), data=st.data())
def test_moveaxis_property(be, shape, data):
    nd = len(shape)
    k = data.draw(st.integers(1, nd))
    source = data.draw(st.permutations(range(nd)))[:k]
    destination = data.draw(st.permutations(range(-nd, 0)))[:k]
    a = _data(shape)
    got = be.out(aq.moveaxis(be.arr(a), tuple(source), tuple(destination)))
    # np.moveaxis is not what either backend runs (moveaxis is the reference default on both)
    np.testing.assert_array_equal(got, np.moveaxis(a, source, destination))
    np.testing.assert_array_equal(got, _moveaxis_expected(a, tuple(source), tuple(destination)))


def test_moveaxis_errors(be):
    x = be.arr(_data((2, 3)))
    with pytest.raises(ValueError):
        aq.moveaxis(x, (0, 1), (0,))
    with pytest.raises(ValueError):
        aq.moveaxis(x, (0, 0), (0, 1))
    with pytest.raises(IndexError):
        aq.moveaxis(x, 2, 0)


# ---------------------------------------------------------------------- broadcast_to, broadcast_arrays


def _broadcast_element(a, result):
    off = len(result) - a.ndim
    return lambda idx: a[tuple(0 if a.shape[k] == 1 else idx[k + off] for k in range(a.ndim))]


@pytest.mark.parametrize(
    "shape, result",
    [
        ((3,), (2, 3)),
        ((1,), (4,)),
        ((), (2, 2)),
        ((2, 1), (2, 3)),
        ((1, 3), (0, 3)),
        ((), ()),
        ((2, 3), (2, 3)),
        ((1,), (2, 0)),
        ((3, 1, 2), (4, 3, 5, 2)),
    ],
)
def test_broadcast_to(be, shape, result):
    a = _data(shape, np.int16)
    be.check(aq.broadcast_to(be.arr(a), result), build(result, _broadcast_element(a, result), aq.int16), aq.int16)


def test_broadcast_to_errors(be):
    for shape, result in (((3,), (4,)), ((2, 3), (3,)), ((2,), (2, 0))):
        with pytest.raises(ValueError):
            aq.broadcast_to(be.arr(_data(shape)), result)


@pytest.mark.parametrize(
    "shapes, result",
    [
        ([(3,), (2, 1)], (2, 3)),
        ([(), (2,), (3, 1)], (3, 2)),
        ([(2, 3)], (2, 3)),
        ([(1, 0), (3, 1)], (3, 0)),
        ([(4, 1, 2), (3, 1), ()], (4, 3, 2)),
    ],
)
def test_broadcast_arrays(be, shapes, result):
    arrays = [_data(s, np.float64) + i for i, s in enumerate(shapes)]
    got = aq.broadcast_arrays(*(be.arr(a) for a in arrays))
    assert len(got) == len(arrays)
    for g, a in zip(got, arrays):
        be.check(g, build(result, _broadcast_element(a, result), aq.float64), aq.float64)


def test_broadcast_arrays_edge_cases(be):
    assert list(aq.broadcast_arrays()) == []
    with pytest.raises(ValueError):
        aq.broadcast_arrays(be.arr(np.ones(2)), be.arr(np.ones(3)))
    mixed = aq.broadcast_arrays(be.arr([1, 2], aq.int8), be.arr([[True], [False]]))
    be.check(mixed[0], [[1, 2], [1, 2]], aq.int8)  # each keeps its dtype
    be.check(mixed[1], [[True, True], [False, False]], aq.bool)


# ---------------------------------------------------------------------- concat, stack, unstack


def _concat_expected(arrays, axis):
    if axis is None:
        return np.array([v for a in arrays for v in _flat(a)])
    axis %= arrays[0].ndim
    sizes = [a.shape[axis] for a in arrays]
    shape = list(arrays[0].shape)
    shape[axis] = sum(sizes)

    def element(idx):
        i = idx[axis]
        for a, n in zip(arrays, sizes):
            if i < n:
                return a[idx[:axis] + (i,) + idx[axis + 1 :]]
            i -= n

    return build(tuple(shape), element, aq.float64)


@pytest.mark.parametrize(
    "shapes, axis",
    [
        ([(2, 3), (1, 3), (4, 3)], 0),
        ([(2, 3), (2, 1)], 1),
        ([(2, 3), (2, 0), (2, 2)], -1),
        ([(2, 3)], 0),
        ([(2, 3), (4,)], None),
        ([(), (), ()], None),
        ([(0, 3), (0, 3)], 0),
        ([(2, 1, 2), (2, 3, 2)], 1),
        ([(5,), (0,)], 0),
    ],
)
def test_concat(be, shapes, axis):
    arrays = [_data(s, np.float64) * (i + 1) for i, s in enumerate(shapes)]
    be.check(aq.concat([be.arr(a) for a in arrays], axis=axis), _concat_expected(arrays, axis), aq.float64)
    be.check(aq.concat(tuple(be.arr(a) for a in arrays), axis=axis), _concat_expected(arrays, axis), aq.float64)


def test_concat_default_axis_and_promotion(be):
    be.check(aq.concat([be.arr([1, 2], aq.int8), be.arr([300], aq.int16)]), [1, 2, 300], aq.int16)
    be.check(aq.concat([be.arr([0.5], aq.float32), be.arr([0.25], aq.float64)]), [0.5, 0.25], aq.float64)
    be.check(aq.concat([be.arr([[1.5]], aq.float16), be.arr([[2.0]], aq.float16)], axis=1), [[1.5, 2.0]], aq.float16)


def test_concat_errors(be):
    with pytest.raises(ValueError):
        aq.concat([])
    with pytest.raises(ValueError):
        aq.concat([be.arr(np.ones((2, 3))), be.arr(np.ones((2, 2)))], axis=0)
    with pytest.raises(ValueError):
        aq.concat([be.arr(np.ones((2, 3))), be.arr(np.ones(3))], axis=0)
    with pytest.raises(IndexError):
        aq.concat([be.arr(np.ones((2, 3)))], axis=2)


@pytest.mark.parametrize(
    "shape, n, axis",
    [
        ((3,), 2, 0),
        ((3,), 2, 1),
        ((3,), 2, -1),
        ((2, 3), 4, 1),
        ((2, 3), 1, 0),
        ((), 3, 0),
        ((), 3, -1),
        ((0, 2), 2, 1),
        ((2, 0), 3, 2),
    ],
)
def test_stack(be, shape, n, axis):
    arrays = [_data(shape, np.int64) + 100 * i for i in range(n)]
    nd = len(shape) + 1
    ax = axis % nd
    result = shape[:ax] + (n,) + shape[ax:]
    expected = build(result, lambda idx: arrays[idx[ax]][idx[:ax] + idx[ax + 1 :]], aq.int64)
    be.check(aq.stack([be.arr(a) for a in arrays], axis=axis), expected, aq.int64)


def test_stack_default_axis_promotion_and_errors(be):
    be.check(aq.stack([be.arr([1, 2], aq.uint8), be.arr([3, 4], aq.uint16)]), [[1, 2], [3, 4]], aq.uint16)
    with pytest.raises(ValueError):
        aq.stack([be.arr([1, 2]), be.arr([1, 2, 3])])
    with pytest.raises(ValueError):
        aq.stack([])
    with pytest.raises(IndexError):
        aq.stack([be.arr([1, 2])], axis=2)


@pytest.mark.parametrize(
    "shape, axis", [((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1), ((3,), 0), ((0, 3), 0), ((0, 3), 1), ((1, 2), -2)]
)
def test_unstack(be, shape, axis):
    a = _data(shape, np.float32)
    ax = axis % len(shape)
    got = aq.unstack(be.arr(a), axis=axis)
    assert isinstance(got, tuple) and len(got) == shape[ax]
    rest = shape[:ax] + shape[ax + 1 :]
    for i, g in enumerate(got):
        be.check(g, build(rest, lambda idx, i=i: a[idx[:ax] + (i,) + idx[ax:]], aq.float32), aq.float32)


def test_unstack_default_axis_and_errors(be):
    parts = aq.unstack(be.arr([[1, 2], [3, 4]], aq.int8))
    be.check(parts[0], [1, 2], aq.int8)
    be.check(parts[1], [3, 4], aq.int8)
    with pytest.raises(IndexError):
        aq.unstack(be.arr([1, 2]), axis=1)


# ---------------------------------------------------------------------- expand_dims, squeeze, flip


@pytest.mark.parametrize(
    "shape, axis", [((2, 3), 0), ((2, 3), 1), ((2, 3), 2), ((2, 3), -1), ((2, 3), -3), ((), 0), ((), -1), ((0,), 1)]
)
def test_expand_dims(be, shape, axis):
    a = _data(shape, np.uint8)
    ax = axis % (len(shape) + 1)
    result = shape[:ax] + (1,) + shape[ax:]
    be.check(
        aq.expand_dims(be.arr(a), axis=axis), build(result, lambda idx: a[idx[:ax] + idx[ax + 1 :]], aq.uint8), aq.uint8
    )


def test_expand_dims_default_and_errors(be):
    be.check(aq.expand_dims(be.arr([1.0, 2.0])), [[1.0, 2.0]], aq.float64)
    be.check(aq.expand_dims(be.arr([1.0, 2.0]), 1), [[1.0], [2.0]], aq.float64)  # axis positionally (2023.12)
    for axis in (3, -4):
        with pytest.raises(IndexError):
            aq.expand_dims(be.arr(np.ones((2, 3))), axis=axis)


@pytest.mark.parametrize(
    "shape, axis",
    [
        ((1, 2, 1), 0),
        ((1, 2, 1), (0, 2)),
        ((1, 2, 1), -1),
        ((1, 2, 1), ()),
        ((1,), 0),
        ((1, 1), (1, 0)),
        ((0, 1), 1),
        ((), ()),
    ],
)
def test_squeeze(be, shape, axis):
    a = _data(shape)
    axes = {ax % max(len(shape), 1) for ax in ((axis,) if isinstance(axis, int) else axis)}
    result = tuple(n for i, n in enumerate(shape) if i not in axes)

    def element(idx):
        it = iter(idx)
        return a[tuple(0 if i in axes else next(it) for i in range(len(shape)))]

    be.check(aq.squeeze(be.arr(a), axis=axis), build(result, element, aq.int32), aq.int32)


def test_squeeze_errors(be):
    x = be.arr(np.ones((1, 2, 1)))
    with pytest.raises(ValueError):
        aq.squeeze(x, axis=1)
    with pytest.raises(IndexError):
        aq.squeeze(x, axis=3)


@pytest.mark.parametrize(
    "shape, axis",
    [
        ((2, 3, 4), None),
        ((2, 3, 4), 0),
        ((2, 3, 4), -1),
        ((2, 3, 4), (0, 2)),
        ((5,), None),
        ((), None),
        ((0, 3), 1),
        ((2, 3), ()),
    ],
)
def test_flip(be, shape, axis):
    a = _data(shape, np.int16)
    axes = (
        set(range(len(shape)))
        if axis is None
        else {ax % len(shape) for ax in ((axis,) if isinstance(axis, int) else axis)}
    )
    expected = build(
        shape, lambda idx: a[tuple(shape[k] - 1 - i if k in axes else i for k, i in enumerate(idx))], aq.int16
    )
    be.check(aq.flip(be.arr(a), axis=axis), expected, aq.int16)


# ---------------------------------------------------------------------- repeat, tile, roll


def _repeat_expected(a, counts, axis):
    if axis is None:
        a, axis = np.array(_flat(a), a.dtype).reshape(-1), 0
    axis %= a.ndim
    counts = [counts] * a.shape[axis] if isinstance(counts, int) else counts
    source = [i for i, c in enumerate(counts) for _ in range(c)]
    result = a.shape[:axis] + (len(source),) + a.shape[axis + 1 :]
    return build(result, lambda idx: a[idx[:axis] + (source[idx[axis]],) + idx[axis + 1 :]], aq.as_dtype(a.dtype))


@pytest.mark.parametrize(
    "shape, repeats, axis",
    [
        ((3,), 2, None),
        ((2, 3), 2, None),
        ((2, 3), 3, 0),
        ((2, 3), 2, 1),
        ((2, 3), 2, -1),
        ((2, 3), 0, 1),
        ((3,), [0, 2, 1], 0),
        ((2, 3), [1, 0, 3], 1),
        ((2, 3), [2, 1], 0),
        ((0, 2), 3, 0),
        ((), 3, None),
    ],
)
def test_repeat(be, shape, repeats, axis):
    a = _data(shape, np.int8)
    counts = repeats if isinstance(repeats, int) else be.arr(repeats, aq.int64)
    be.check(aq.repeat(be.arr(a), counts, axis=axis), _repeat_expected(a, repeats, axis), aq.int8)


def test_repeat_with_a_single_count_array_broadcasts(be):
    # array API: an array of repeats must broadcast to the length of the axis
    x = be.arr([[1, 2, 3], [4, 5, 6]], aq.int16)
    for counts in (be.arr(2, aq.int64), be.arr([2], aq.int64)):
        be.check(aq.repeat(x, counts, axis=1), [[1, 1, 2, 2, 3, 3], [4, 4, 5, 5, 6, 6]], aq.int16)
        be.check(aq.repeat(x, counts), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6], aq.int16)


def test_repeat_errors(be):
    x = be.arr([1, 2, 3])
    with pytest.raises(ValueError):
        aq.repeat(x, -1)
    with pytest.raises(ValueError):
        aq.repeat(x, be.arr([1, -1, 2], aq.int64))
    with pytest.raises(ValueError):
        aq.repeat(x, be.arr([1, 2], aq.int64))
    with pytest.raises(IndexError):
        aq.repeat(x, 2, axis=1)


def _tile_expected(a, reps):
    nd = max(a.ndim, len(reps))
    reps = (1,) * (nd - len(reps)) + tuple(reps)
    shape = (1,) * (nd - a.ndim) + a.shape
    src = a.reshape(shape)
    return build(
        tuple(r * n for r, n in zip(reps, shape)),
        lambda idx: src[tuple(i % n for i, n in zip(idx, shape))],
        aq.as_dtype(a.dtype),
    )


@pytest.mark.parametrize(
    "shape, reps",
    [
        ((3,), (2,)),
        ((1, 2), (2,)),
        ((1, 2), (2, 1, 3)),
        ((2, 3), (2, 2)),
        ((2, 3), (0, 2)),
        ((), (3,)),
        ((), ()),
        ((2,), ()),
        ((0, 2), (2, 2)),
        ((2, 1, 2), (1, 3, 1)),
    ],
)
def test_tile(be, shape, reps):
    a = _data(shape, np.float32)
    be.check(aq.tile(be.arr(a), reps), _tile_expected(a, reps), aq.float32)


@FEW
@given(shape=small_shapes, reps=st.lists(st.integers(0, 3), min_size=0, max_size=4))
def test_tile_property(be, shape, reps):
    a = _data(shape)
    be.check(aq.tile(be.arr(a), tuple(reps)), _tile_expected(a, reps), aq.int32)


def test_tile_rejects_negative_repetitions(be):
    with pytest.raises(ValueError):
        aq.tile(be.arr([1, 2]), (-1,))


def _roll_expected(a, shift, axis):
    if axis is None:
        flat = _flat(a)
        n = len(flat)
        out = [flat[(i - shift) % n] for i in range(n)] if n else []
        return np.array(out, a.dtype).reshape(a.shape)
    axes = (axis,) if isinstance(axis, int) else axis
    shifts = (shift,) * len(axes) if isinstance(shift, int) else shift
    total = [0] * a.ndim
    for s, ax in zip(shifts, axes):
        total[ax % a.ndim] += s  # an axis named twice moves by the sum

    return build(
        a.shape, lambda idx: a[tuple((i - total[k]) % a.shape[k] for k, i in enumerate(idx))], aq.as_dtype(a.dtype)
    )


@pytest.mark.parametrize(
    "shape, shift, axis",
    [
        ((5,), 2, None),
        ((5,), -7, None),
        ((2, 3), 1, None),
        ((2, 3), 4, None),
        ((2, 3), 1, 0),
        ((2, 3), -1, 1),
        ((2, 3), 5, -1),
        ((2, 3), (1, 2), (0, 1)),
        ((2, 3, 4), (1, -2), (2, 0)),
        ((2, 3), 0, 0),
        ((), 3, None),
        ((0, 3), 2, 0),
        ((0, 3), 2, 1),
        ((0, 3), 1, None),
        ((3, 4), (1, 1), (1, 1)),
    ],
)
def test_roll(be, shape, shift, axis):
    a = _data(shape, np.int64)
    be.check(aq.roll(be.arr(a), shift, axis=axis), _roll_expected(a, shift, axis), aq.int64)


@FEW
@given(shape=small_shapes, data=st.data())
def test_roll_property(be, shape, data):
    a = _data(shape)
    if data.draw(st.booleans()) or not shape:
        shift, axis = data.draw(st.integers(-10, 10)), None
    else:
        axis = tuple(data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3)))
        shift = tuple(data.draw(st.lists(st.integers(-10, 10), min_size=len(axis), max_size=len(axis))))
    be.check(aq.roll(be.arr(a), shift, axis=axis), _roll_expected(a, shift, axis), aq.int32)


def test_roll_errors(be):
    x = be.arr(np.ones((2, 3)))
    with pytest.raises(ValueError):
        aq.roll(x, (1, 2), axis=0)
    with pytest.raises(ValueError):
        aq.roll(x, (1, 2))  # several shifts need as many axes
    with pytest.raises(IndexError):
        aq.roll(x, 1, axis=2)


# ---------------------------------------------------------------------- take, take_along_axis


@pytest.mark.parametrize(
    "shape, indices, axis",
    [
        ((5,), [0, 4, 2, 2], None),
        ((5,), [-1, -5, 0], 0),
        ((3, 4), [2, 0], 0),
        ((3, 4), [3, 3, 1], 1),
        ((3, 4), [-1], -1),
        ((5,), [], 0),
        ((3, 4), [[0, 1], [2, 0]], 0),
        ((2, 3, 4), [1, 0, 1], 1),
        ((5,), 3, 0),
        ((0, 3), [1, 2], 1),
    ],
)
@pytest.mark.parametrize("index_dtype", [aq.int64, aq.int32])
def test_take(be, shape, indices, axis, index_dtype):
    a = _data(shape, np.float64)
    idx_arr = np.array(indices, dtype=np.int64)
    ax = 0 if axis is None else axis % a.ndim
    result = a.shape[:ax] + idx_arr.shape + a.shape[ax + 1 :]
    k = idx_arr.ndim

    def element(idx):
        j = int(idx_arr[idx[ax : ax + k]]) % a.shape[ax]
        return a[idx[:ax] + (j,) + idx[ax + k :]]

    be.check(
        aq.take(be.arr(a), be.arr(indices, index_dtype), axis=axis), build(result, element, aq.float64), aq.float64
    )


@pytest.mark.parametrize(
    "shape, ushape, start, axis", [((3, 4, 2), (3, 2, 2), 1, 1), ((5,), (2,), 3, 0), ((2, 3), (1, 3), 1, 0)]
)
def test_slice_update(be, shape, ushape, start, axis):
    a, u = _data(shape, np.float64), -_data(ushape, np.float64) - 1
    length = ushape[axis]

    def element(idx):  # position p along axis takes u[p - start] inside the slice
        p = idx[axis]
        inside = start <= p < start + length
        return u[idx[:axis] + (p - start,) + idx[axis + 1 :]] if inside else a[idx]

    want = build(shape, element, aq.float64)
    be.check(aq.slice_update(be.arr(a), be.arr(u), start, axis=axis), want, aq.float64)
    on_device = aq.asarray(start, dtype=aq.int32, like=be.arr(a))
    be.check(aq.slice_update(be.arr(a), be.arr(u), on_device, axis=axis), want, aq.float64)


def test_take_errors(be):
    with pytest.raises(ValueError):
        aq.take(be.arr(np.ones((2, 3))), be.arr([0]))  # axis is needed past 1-D
    with pytest.raises(IndexError):
        aq.take(be.arr(np.ones((2, 3))), be.arr([0]), axis=2)


@pytest.mark.parametrize(
    "shape, indices, axis",
    [
        ((3, 4), [[1, 0, 3], [2, 2, 0], [0, 0, 0]], 1),
        ((3, 4), [[2, 0, 1, 1]], 0),
        ((3, 4), [[1], [0], [3]], -1),
        ((2, 3, 2), np.zeros((2, 3, 1), int), 2),
        ((2, 3, 2), [[[1, 0]], [[2, 2]]], 1),
        ((5,), [4, 0, 0, 3], 0),
        ((3, 4), np.zeros((3, 0), int), 1),
        ((3, 4), [[2], [1], [0]], 1),
    ],
)
def test_take_along_axis(be, shape, indices, axis):
    a = _data(shape, np.int16)
    ind = np.array(indices, dtype=np.int64)
    ax = axis % a.ndim
    result = tuple(ind.shape[k] if k == ax else max(a.shape[k], ind.shape[k]) for k in range(a.ndim))

    def element(idx):
        # both x and indices broadcast on the other axes: a length-1 axis is read at 0
        picked = int(ind[tuple(0 if ind.shape[k] == 1 and k != ax else idx[k] for k in range(a.ndim))])
        return a[tuple(picked if k == ax else 0 if a.shape[k] == 1 else idx[k] for k in range(a.ndim))]

    be.check(aq.take_along_axis(be.arr(a), be.arr(ind), axis=axis), build(result, element, aq.int16), aq.int16)


def test_take_along_axis_default_axis_and_errors(be):
    x = be.arr([[10, 20, 30], [40, 50, 60]], aq.int32)
    be.check(aq.take_along_axis(x, be.arr([[2, 0], [1, 1]])), [[30, 10], [50, 50]], aq.int32)
    with pytest.raises(ValueError):
        aq.take_along_axis(x, be.arr([0, 1]))  # indices need x's number of dimensions
    with pytest.raises(IndexError):
        aq.take_along_axis(x, be.arr([[0]]), axis=2)


def test_results_of_manipulation_are_arrays_even_when_0d(be):
    # NumPy's indexing and some of its functions give scalars for 0-d results; arrayq must not
    x = be.arr([1.5, 2.5, 3.5])
    be.check(aq.take(x, be.arr(1)), 2.5, aq.float64)
    be.check(aq.flip(be.arr(4.0)), 4.0, aq.float64)
    for part, value in zip(aq.unstack(x), (1.5, 2.5, 3.5)):
        be.check(part, value, aq.float64)
    be.check(aq.reshape(be.arr([7]), ()), 7, aq.int64)
    be.check(aq.squeeze(be.arr([[7.0]]), axis=(0, 1)), 7.0, aq.float64)
    be.check(aq.roll(be.arr(7.0), 1), 7.0, aq.float64)
    be.check(aq.tile(be.arr(7.0), ()), 7.0, aq.float64)
    be.check(aq.permute_dims(be.arr(7.0), ()), 7.0, aq.float64)
    be.check(aq.broadcast_to(be.arr(7.0), ()), 7.0, aq.float64)
    assert math.isfinite(float(be.out(aq.take(x, be.arr(-1)))))
