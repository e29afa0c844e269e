"""Creation functions (array API chapter "Creation Functions") on both test backends,
against hand-written values and explicit loops."""

import itertools
from fractions import Fraction

import numpy as np
import pytest

import arrayq as aq
from tests._ops_support import be, eps  # noqa: F401 (fixture)

COVERS = {
    "arange",
    "asarray",
    "empty",
    "empty_like",
    "eye",
    "full",
    "full_like",
    "linspace",
    "meshgrid",
    "ones",
    "ones_like",
    "tril",
    "triu",
    "zeros",
    "zeros_like",
}


# ---------------------------------------------------------------------- arange


@pytest.mark.parametrize(
    "args, kwargs, expected, dtype",
    [
        ((5,), {}, [0, 1, 2, 3, 4], aq.int64),
        ((2, 5), {}, [2, 3, 4], aq.int64),
        ((5, 2, -1), {}, [5, 4, 3], aq.int64),
        ((0, 10, 3), {}, [0, 3, 6, 9], aq.int64),
        ((0,), {}, np.zeros(0), aq.int64),
        ((-3,), {}, np.zeros(0), aq.int64),
        ((3, 3), {}, np.zeros(0), aq.int64),
        ((0.0, 1.0, 0.25), {}, [0.0, 0.25, 0.5, 0.75], aq.float64),
        ((1, 2, 0.5), {"dtype": aq.float32}, [1.0, 1.5], aq.float32),
        ((3,), {"dtype": aq.int8}, [0, 1, 2], aq.int8),
        ((4,), {"dtype": "float64"}, [0.0, 1.0, 2.0, 3.0], aq.float64),
    ],
)
def test_arange(be, args, kwargs, expected, dtype):
    with be.creating():
        be.check(aq.arange(*args, **kwargs), expected, dtype)


def test_arange_step_zero_is_an_error(be):
    with be.creating(), pytest.raises(ValueError):
        aq.arange(0, 5, 0)


# ---------------------------------------------------------------------- asarray


@pytest.mark.parametrize(
    "obj, kwargs, expected, dtype",
    [
        ([1, 2, 3], {}, [1, 2, 3], aq.int64),  # Python ints: the default int
        ([1.5, 2], {}, [1.5, 2.0], aq.float64),  # a float anywhere: the default float
        ([True, False], {}, [True, False], aq.bool),
        ([1j, 2], {}, [1j, 2], aq.complex128),
        ([[1, 2], [3, 4]], {}, [[1, 2], [3, 4]], aq.int64),
        (3.5, {}, 3.5, aq.float64),  # a scalar: a 0-d array
        (7, {}, 7, aq.int64),
        (True, {}, True, aq.bool),
        ([], {}, np.zeros(0), aq.float64),
        ([[], []], {}, np.zeros((2, 0)), aq.float64),
        ([1, 2], {"dtype": aq.float32}, [1.0, 2.0], aq.float32),
        (0.5, {"dtype": "float16"}, 0.5, aq.float16),
        ([1, 0, 2], {"dtype": aq.bool}, [True, False, True], aq.bool),
        ([1, 2], {"copy": True}, [1, 2], aq.int64),
    ],
)
def test_asarray_from_python_objects(be, obj, kwargs, expected, dtype):
    with be.creating():
        be.check(aq.asarray(obj, **kwargs), expected, dtype)


def test_asarray_of_a_backend_array_keeps_it_unless_told_to_copy(be):
    x = be.arr([1.0, 2.0, 3.0], aq.float32)
    same = aq.asarray(x)
    assert np.shares_memory(be.out(same), be.out(x))
    assert np.shares_memory(be.out(aq.asarray(x, copy=False)), be.out(x))
    assert np.shares_memory(be.out(aq.asarray(x, dtype=aq.float32, copy=False)), be.out(x))
    copied = aq.asarray(x, copy=True)
    be.check(copied, [1.0, 2.0, 3.0], aq.float32)
    assert not np.shares_memory(be.out(copied), be.out(x))
    be.out(x)[0] = 99.0  # the copy must not see a later change of the original
    be.check(copied, [1.0, 2.0, 3.0], aq.float32)
    be.check(same, [99.0, 2.0, 3.0], aq.float32)


def test_asarray_converts_dtype_of_a_backend_array(be):
    x = be.arr([1, 2], aq.int16)
    be.check(aq.asarray(x, dtype=aq.float64), [1.0, 2.0], aq.float64)
    be.check(aq.asarray(x, dtype=aq.int16), [1, 2], aq.int16)


def test_asarray_copy_false_refuses_to_copy(be):
    x = be.arr([1, 2], aq.int16)
    with pytest.raises(ValueError):
        aq.asarray(x, dtype=aq.float64, copy=False)  # a dtype change is a copy
    with be.creating(), pytest.raises(ValueError):
        aq.asarray([1, 2], copy=False)  # a list is always copied
    empty = be.arr(np.zeros((0, 3)))
    assert be.out(aq.asarray(empty, copy=False)).shape == (0, 3)  # nothing to copy


def test_asarray_empty_and_0d_backend_arrays(be):
    be.check(aq.asarray(be.arr(np.zeros((0, 3), np.int8))), np.zeros((0, 3)), aq.int8)
    be.check(aq.asarray(be.arr(2.5)), 2.5, aq.float64)
    be.check(aq.asarray(be.arr(2.5), copy=True), 2.5, aq.float64)


def test_asarray_of_numpy_data_on_the_numpy_backend():
    # NumPy scalars and arrays belong to the NumPy backend: they keep their dtype
    for obj, dtype in ((np.float32(1.5), aq.float32), (np.int8(-3), aq.int8), (np.bool_(True), aq.bool)):
        out = aq.asarray(obj)
        assert type(out) is np.ndarray and out.shape == () and aq.dtype(out) == dtype and out == obj
    with pytest.raises(ValueError):
        aq.asarray(np.float32(1.5), copy=False)  # a scalar is not an array: making one copies
    a = np.arange(6, dtype=np.uint16).reshape(2, 3)
    assert aq.asarray(a) is a


# ---------------------------------------------------------------------- zeros, ones, empty, full

SHAPES = [(3,), (2, 3), (), (0,), (0, 3), (2, 1, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fn, value", [("zeros", 0), ("ones", 1), ("empty", 0)])  # arrayq's empty gives zeros
def test_zeros_ones_empty(be, fn, value, shape):
    with be.creating():
        be.check(getattr(aq, fn)(shape), np.full(shape, value, np.float64), aq.float64)
        be.check(getattr(aq, fn)(shape, dtype=aq.int8), np.full(shape, value, np.int8), aq.int8)
        be.check(getattr(aq, fn)(shape, dtype="complex64"), np.full(shape, value, np.complex64), aq.complex64)
        be.check(getattr(aq, fn)(shape, dtype=aq.bool), np.full(shape, bool(value)), aq.bool)


def test_shape_may_be_an_int_and_must_not_be_negative(be):
    with be.creating():
        be.check(aq.zeros(4), [0.0] * 4, aq.float64)
        be.check(aq.ones(0, dtype=aq.uint8), np.zeros(0), aq.uint8)
        for fn in (aq.zeros, aq.ones, aq.empty):
            with pytest.raises(ValueError):
                fn((2, -1))
        with pytest.raises(ValueError):
            aq.full((-1,), 1.0)


@pytest.mark.parametrize(
    "fill, kwargs, dtype",
    [
        (True, {}, aq.bool),
        (3, {}, aq.int64),  # Python int: the default int
        (2.5, {}, aq.float64),  # Python float: the default float
        (1 + 2j, {}, aq.complex128),  # Python complex: the default complex
        (3, {"dtype": aq.int8}, aq.int8),
        (0.5, {"dtype": aq.float32}, aq.float32),
        (1j, {"dtype": aq.complex64}, aq.complex64),
        (float("nan"), {}, aq.float64),
        (float("-inf"), {"dtype": aq.float16}, aq.float16),
    ],
)
@pytest.mark.parametrize("shape", [(2, 3), (), (0,)])
def test_full(be, fill, kwargs, dtype, shape):
    with be.creating():
        be.check(aq.full(shape, fill, **kwargs), np.full(shape, fill, dtype.dtype), dtype)


# ---------------------------------------------------------------------- *_like

LIKE_INPUTS = [
    (np.arange(6, dtype=np.float32).reshape(2, 3), aq.float32),
    (np.array(-4, np.int16), aq.int16),
    (np.zeros((0, 2), bool), aq.bool),
    (np.array([1 + 1j, 2], np.complex64), aq.complex64),
    (np.array([[7]], np.uint8), aq.uint8),
]


@pytest.mark.parametrize("data, dtype", LIKE_INPUTS)
def test_zeros_ones_empty_like(be, data, dtype):
    x = be.arr(data)
    be.check(aq.zeros_like(x), np.zeros(data.shape), dtype)
    be.check(aq.ones_like(x), np.ones(data.shape), dtype)
    be.check(aq.empty_like(x), np.zeros(data.shape), dtype)  # arrayq's empty gives zeros
    be.check(aq.zeros_like(x, dtype=aq.float64), np.zeros(data.shape), aq.float64)
    be.check(aq.ones_like(x, dtype="int8"), np.ones(data.shape), aq.int8)
    be.check(aq.empty_like(x, dtype=aq.bool), np.zeros(data.shape, bool), aq.bool)


@pytest.mark.parametrize("data, dtype", LIKE_INPUTS)
def test_full_like(be, data, dtype):
    x = be.arr(data)
    fill = True if dtype == aq.bool else 3
    be.check(aq.full_like(x, fill), np.full(data.shape, fill), dtype)
    be.check(aq.full_like(x, 0.5, dtype=aq.float32), np.full(data.shape, 0.5), aq.float32)
    be.check(aq.full_like(x, -2, dtype=aq.int64), np.full(data.shape, -2), aq.int64)


# ---------------------------------------------------------------------- eye


@pytest.mark.parametrize(
    "n_rows, n_cols, k",
    [
        (3, None, 0),
        (2, 3, 1),
        (3, 2, -1),
        (3, 3, 5),
        (3, 3, -3),
        (3, 3, 2),
        (4, 2, -2),
        (0, None, 0),
        (1, 0, 0),
        (0, 3, 1),
        (1, None, 0),
    ],
)
@pytest.mark.parametrize("dtype", [None, aq.int8, aq.bool, aq.float32, aq.complex64])
def test_eye(be, n_rows, n_cols, k, dtype):
    cols = n_rows if n_cols is None else n_cols
    expected = [[1 if j - i == k else 0 for j in range(cols)] for i in range(n_rows)]
    expected = np.array(expected, dtype=np.int64).reshape(n_rows, cols)
    with be.creating():
        be.check(aq.eye(n_rows, n_cols, k=k, dtype=dtype), expected, dtype or aq.float64)


def test_eye_rejects_negative_sizes(be):
    with be.creating(), pytest.raises(ValueError):
        aq.eye(-1)


# ---------------------------------------------------------------------- linspace


def _linspace_exact(start, stop, num, endpoint):
    """The exact points, as Fractions (real or complex pairs), rounded once to Python numbers."""
    div = (num - 1) if endpoint else num
    out = []
    for i in range(num):
        parts = []
        for a, b in (
            ((start.real, stop.real), (start.imag, stop.imag))
            if isinstance(start + stop, complex)
            else ((start, stop),)
        ):
            a, b = Fraction(a), Fraction(b)
            parts.append(float(a + (b - a) * i / div) if div else float(a))
        out.append(complex(*parts) if len(parts) == 2 else parts[0])
    return out


@pytest.mark.parametrize(
    "start, stop, num, kwargs, dtype",
    [
        (0, 1, 5, {}, aq.float64),
        (0, 1, 5, {"endpoint": False}, aq.float64),
        (-1, 1, 7, {}, aq.float64),
        (3, -3, 4, {}, aq.float64),
        (0.1, 0.7, 11, {}, aq.float64),
        (2, 1, 1, {}, aq.float64),  # one point: start
        (1, 2, 1, {"endpoint": False}, aq.float64),
        (2, 1, 0, {}, aq.float64),  # no points
        (0, 1, 2, {}, aq.float64),
        (0, 10, 4, {"dtype": aq.float32}, aq.float32),
        (-2.5, 7.25, 9, {"dtype": aq.float32, "endpoint": False}, aq.float32),
        (0, 1j, 3, {}, aq.complex128),  # a complex end: the default complex
        (1 + 1j, 2 - 1j, 5, {"dtype": aq.complex64}, aq.complex64),
    ],
)
def test_linspace(be, start, stop, num, kwargs, dtype):
    with be.creating():
        got = aq.linspace(start, stop, num, **kwargs)
    expected = np.array(_linspace_exact(start, stop, num, kwargs.get("endpoint", True)), dtype=dtype.dtype).reshape(num)
    # start + i * step rounds twice (step, then the product and sum): a few ulps of the
    # largest endpoint, absolute, since points near 0 have no relative accuracy to speak of
    scale = max(abs(start), abs(stop), 1)
    out = be.check(got, expected, dtype, atol=3 * eps(dtype) * scale)
    if num:
        assert out[0] == np.asarray(start, dtype.dtype)  # the first point is start exactly
    if num > 1 and kwargs.get("endpoint", True):
        assert out[-1] == np.asarray(stop, dtype.dtype)  # and the last is stop exactly


def test_linspace_rejects_negative_num(be):
    with be.creating(), pytest.raises(ValueError):
        aq.linspace(0, 1, -1)


# ---------------------------------------------------------------------- meshgrid


def _meshgrid_loops(arrays, indexing):
    sizes = [len(a) for a in arrays]
    swap = indexing == "xy" and len(arrays) >= 2
    shape = [sizes[1], sizes[0], *sizes[2:]] if swap else sizes
    outs = [np.zeros(shape, np.asarray(a).dtype) for a in arrays]
    for pos in itertools.product(*(range(n) for n in shape)):
        ij = (pos[1], pos[0], *pos[2:]) if swap else pos
        for k, a in enumerate(arrays):
            outs[k][pos] = a[ij[k]]
    return outs


@pytest.mark.parametrize("sizes", [(3,), (2, 3), (2, 3, 4), (3, 0), (1, 2, 1, 2)])
@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid(be, sizes, indexing):
    data = [np.arange(n, dtype=np.int16) * (10**i) + i for i, n in enumerate(sizes)]
    got = aq.meshgrid(*(be.arr(a) for a in data), indexing=indexing)
    assert isinstance(got, list) and len(got) == len(sizes)
    for g, e in zip(got, _meshgrid_loops(data, indexing)):
        be.check(g, e, aq.int16)


def test_meshgrid_keeps_each_dtype_and_defaults_to_xy(be):
    x, y = be.arr([1.0, 2.0], aq.float32), be.arr([1.0, 2.0, 3.0], aq.float32)
    gx, gy = aq.meshgrid(x, y)
    be.check(gx, [[1.0, 2.0]] * 3, aq.float32)
    be.check(gy, [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]], aq.float32)


def test_meshgrid_errors_and_no_arrays(be):
    assert aq.meshgrid() == []
    with pytest.raises(ValueError):
        aq.meshgrid(be.arr([1, 2]), indexing="yx")
    with pytest.raises(ValueError):
        aq.meshgrid(be.arr([[1, 2]]))


# ---------------------------------------------------------------------- tril, triu


def _triangle_loops(a, k, lower):
    out = a.copy()
    for idx in itertools.product(*(range(n) for n in a.shape)):
        i, j = idx[-2], idx[-1]
        if (j - i > k) if lower else (j - i < k):
            out[idx] = 0
    return out


@pytest.mark.parametrize("shape", [(3, 3), (2, 4), (4, 2), (2, 3, 3), (0, 3), (3, 0), (1, 1), (2, 1, 2, 3)])
@pytest.mark.parametrize("k", [-2, -1, 0, 1, 3])
@pytest.mark.parametrize("fn", ["tril", "triu"])
def test_tril_triu(be, fn, shape, k):
    data = np.arange(1, 1 + int(np.prod(shape)), dtype=np.int8).reshape(shape)
    expected = _triangle_loops(data, k, fn == "tril")
    be.check(getattr(aq, fn)(be.arr(data), k=k), expected, aq.int8)
    be.check(getattr(aq, fn)(be.arr(data.astype(np.float32)), k=k), expected, aq.float32)
    be.check(getattr(aq, fn)(be.arr(data % 2 == 1), k=k), expected % 2 == 1, aq.bool)


def test_tril_triu_default_k_is_the_main_diagonal(be):
    x = be.arr(np.ones((2, 2)))
    be.check(aq.tril(x), [[1.0, 0.0], [1.0, 1.0]], aq.float64)
    be.check(aq.triu(x), [[1.0, 1.0], [0.0, 1.0]], aq.float64)


def test_tril_triu_need_two_dimensions(be):
    for fn in (aq.tril, aq.triu):
        with pytest.raises(ValueError):
            fn(be.arr([1.0, 2.0]))
        with pytest.raises(ValueError):
            fn(be.arr(1.0))
