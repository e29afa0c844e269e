"""matmul, tensordot, vecdot (array API main namespace and ``arrayq.linalg``) on both test
backends, against explicit sums over index loops and ``numpy.einsum`` (which neither
backend uses). Inputs are small integers, also in floating dtypes, so every sum of
products is exact whatever order it is added in: the comparisons are exact."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import arrayq as aq
from tests._ops_support import be, build  # noqa: F401 (fixture)

COVERS = {"matmul", "tensordot", "vecdot", "linalg.matmul", "linalg.tensordot", "linalg.vecdot"}

FEW = settings(max_examples=30, derandomize=True, deadline=None, database=None)
DTYPES = [aq.int8, aq.int64, aq.uint8, aq.float16, aq.bfloat16, aq.float32, aq.float64, aq.complex64, aq.complex128]


def _ints(shape, dtype, seed=0):
    """Small integers (and i for complex), so that products and their sums stay exact."""
    n = int(np.prod(shape))
    values = np.array(
        [((k * 7 + seed * 3) % 5) - (0 if aq.as_dtype(dtype).kind == "unsigned" else 2) for k in range(n)]
    )
    if aq.as_dtype(dtype).kind == "complex":
        values = values + 1j * np.array([((k * 3 + seed) % 3) - 1 for k in range(n)])
    return values.reshape(shape).astype(aq.as_dtype(dtype).dtype)


def _matmul_expected(a, b):
    a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a  # (K,) -> (1, K)
    b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b  # (K,) -> (K, 1)
    batch_a, batch_b = a2.shape[:-2], b2.shape[:-2]
    nd = max(len(batch_a), len(batch_b))
    batch = tuple(
        max(x, y) if 0 not in (x, y) else 0
        for x, y in zip((1,) * (nd - len(batch_a)) + batch_a, (1,) * (nd - len(batch_b)) + batch_b)
    )
    m, k, n = a2.shape[-2], a2.shape[-1], b2.shape[-1]

    def pick(arr, bidx):
        off = nd - (arr.ndim - 2)
        return tuple(0 if arr.shape[j] == 1 else bidx[j + off] for j in range(arr.ndim - 2))

    def element(idx):
        bidx, i, j = idx[:-2], idx[-2], idx[-1]
        pa, pb = pick(a2, bidx), pick(b2, bidx)
        return sum(a2[pa + (i, t)].item() * b2[pb + (t, j)].item() for t in range(k))

    out = build(batch + (m, n), element, aq.complex128 if a.dtype.kind == "c" else aq.float64)
    if a.ndim == 1:
        out = out.reshape(out.shape[:-2] + out.shape[-1:])
    if b.ndim == 1:
        out = out.reshape(out.shape[:-1])
    return out


MATMUL_SHAPES = [
    ((2, 3), (3, 4)),
    ((3,), (3, 4)),
    ((2, 3), (3,)),
    ((3,), (3,)),
    ((2, 2, 3), (3, 4)),
    ((2, 1, 2, 3), (3, 4)),
    ((2, 1, 2, 3), (5, 3, 2)),
    ((2, 0), (0, 3)),
    ((0, 3), (3, 2)),
    ((0, 2, 3), (3, 1)),
    ((3, 1), (1, 3)),
    ((4,), (2, 4, 3)),
]


@pytest.mark.parametrize("fn", [aq.matmul, aq.linalg.matmul], ids=["matmul", "linalg.matmul"])
@pytest.mark.parametrize("s1, s2", MATMUL_SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_matmul(be, fn, dtype, s1, s2):
    a, b = _ints(s1, dtype, 1), _ints(s2, dtype, 2)
    expected = _matmul_expected(a, b)
    if dtype.kind == "unsigned":
        expected = expected.astype(np.int64)  # all terms are >= 0: no wrap-around
    be.check(fn(be.arr(a), be.arr(b)), expected.astype(dtype.dtype), dtype)


def test_matmul_promotes(be):
    be.check(aq.matmul(be.arr([[1, 2]], aq.int8), be.arr([[300], [1]], aq.int16)), [[302]], aq.int16)
    be.check(aq.matmul(be.arr([1.5, 2.0], aq.float32), be.arr([2.0, 0.25], aq.float64)), 3.5, aq.float64)


def test_matmul_errors(be):
    with pytest.raises(ValueError):
        aq.matmul(be.arr(2.0), be.arr([1.0]))
    with pytest.raises(ValueError):
        aq.matmul(be.arr(np.ones((2, 3))), be.arr(np.ones((2, 3))))
    with pytest.raises(ValueError):
        aq.matmul(be.arr(np.ones((2, 2, 3))), be.arr(np.ones((3, 3, 2))))


# ---------------------------------------------------------------------- tensordot


def _einsum_tensordot(a, b, axes):
    if isinstance(axes, int):
        axes = (list(range(a.ndim - axes, a.ndim)), list(range(axes)))
    ax_a = [i % a.ndim for i in ((axes[0],) if isinstance(axes[0], int) else axes[0])]
    ax_b = [i % b.ndim for i in ((axes[1],) if isinstance(axes[1], int) else axes[1])]
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    sa = [next(letters) for _ in range(a.ndim)]
    sb = [next(letters) for _ in range(b.ndim)]
    for i, j in zip(ax_a, ax_b):
        sb[j] = sa[i]
    free = [c for i, c in enumerate(sa) if i not in ax_a] + [c for j, c in enumerate(sb) if j not in ax_b]
    work = np.complex128 if a.dtype.kind == "c" else np.float64
    return np.einsum(f"{''.join(sa)},{''.join(sb)}->{''.join(free)}", a.astype(work), b.astype(work))


TENSORDOT_CASES = [
    ((2, 3, 4), (3, 4, 5), 2),
    ((2, 3), (3, 4), 1),
    ((2, 3), (4, 5), 0),
    ((3,), (3,), 1),
    ((), (), 0),
    ((2, 3), (), 0),
    ((2, 3, 4), (4, 3, 2), ([1, 2], [1, 0])),
    ((2, 3, 4), (4, 3, 2), ([-1, 0], [0, -1])),
    ((2, 3), (2, 3), ([0, 1], [0, 1])),
    ((0, 3), (3, 4), 1),
    ((2, 0), (0, 4), 1),
    ((0, 0), (0, 4), 1),
    ((0, 2), (2, 0), 1),
    ((2, 0, 3), (3, 0, 2), ([1, 2], [1, 0])),
    ((2, 3), (3, 2), (1, 0)),
    ((4, 2), (2,), 1),
]


@pytest.mark.parametrize("fn", [aq.tensordot, aq.linalg.tensordot], ids=["tensordot", "linalg.tensordot"])
@pytest.mark.parametrize("s1, s2, axes", TENSORDOT_CASES, ids=str)
@pytest.mark.parametrize(
    "dtype", [aq.int8, aq.float16, aq.bfloat16, aq.float32, aq.float64, aq.complex64], ids=lambda d: d.name
)
def test_tensordot(be, fn, dtype, s1, s2, axes):
    a, b = _ints(s1, dtype, 1), _ints(s2, dtype, 2)
    be.check(fn(be.arr(a), be.arr(b), axes=axes), _einsum_tensordot(a, b, axes).astype(dtype.dtype), dtype)


def test_tensordot_default_axes_is_two(be):
    a, b = _ints((2, 3, 4), aq.int64, 1), _ints((3, 4, 2), aq.int64, 2)
    be.check(aq.tensordot(be.arr(a), be.arr(b)), _einsum_tensordot(a, b, 2).astype(np.int64), aq.int64)


@FEW
@given(data=st.data())
def test_tensordot_property(be, data):
    n1, n2, k = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))
    k = min(k, n1, n2)
    dims = st.integers(0, 3)
    s1 = [data.draw(dims) for _ in range(n1)]
    s2 = [data.draw(dims) for _ in range(n2)]
    ax_a = data.draw(st.permutations(range(n1)))[:k]
    ax_b = data.draw(st.permutations(range(n2)))[:k]
    for i, j in zip(ax_a, ax_b):
        s2[j] = s1[i]
    a, b = _ints(tuple(s1), aq.float64, 1), _ints(tuple(s2), aq.float64, 2)
    axes = (list(ax_a), list(ax_b))
    be.check(aq.tensordot(be.arr(a), be.arr(b), axes=axes), _einsum_tensordot(a, b, axes), aq.float64)


def test_tensordot_errors(be):
    a, b = be.arr(np.ones((2, 3))), be.arr(np.ones((4, 3)))
    with pytest.raises(ValueError):
        aq.tensordot(a, b, axes=1)  # 3 against 4
    with pytest.raises(ValueError):
        aq.tensordot(a, b, axes=3)
    with pytest.raises(ValueError):
        aq.tensordot(a, b, axes=-1)
    with pytest.raises(ValueError):
        aq.tensordot(a, b, axes=([0, 1], [1]))


# ---------------------------------------------------------------------- vecdot


@pytest.mark.parametrize("fn", [aq.vecdot, aq.linalg.vecdot], ids=["vecdot", "linalg.vecdot"])
@pytest.mark.parametrize(
    "s1, s2, axis",
    [
        ((3,), (3,), -1),
        ((2, 3), (3,), -1),
        ((3, 2), (3, 2), 0),
        ((2, 1, 3), (4, 3), -1),
        ((2, 3), (2, 3), 1),
        ((0,), (0,), -1),
        ((2, 0), (2, 0), -1),
        ((0, 3), (3,), -1),
        ((4, 3, 2), (3, 1), -2),
    ],
    ids=str,
)
@pytest.mark.parametrize(
    "dtype",
    [aq.int8, aq.uint8, aq.float16, aq.bfloat16, aq.float32, aq.float64, aq.complex64, aq.complex128],
    ids=lambda d: d.name,
)
def test_vecdot(be, fn, dtype, s1, s2, axis):
    a, b = _ints(s1, dtype, 1), _ints(s2, dtype, 2)
    nd = max(a.ndim, b.ndim)
    ax = axis % nd
    A = np.broadcast_to(a, np.broadcast_shapes(a.shape, b.shape))  # only to line the operands up
    B = np.broadcast_to(b, A.shape)
    result = A.shape[:ax] + A.shape[ax + 1 :]

    def element(idx):  # sum over the axis of conj(x1) * x2
        at = [idx[:ax] + (t,) + idx[ax:] for t in range(A.shape[ax])]
        return (
            sum(complex(A[i]).conjugate() * complex(B[i]) for i in at)
            if dtype.kind == "complex"
            else sum(A[i].item() * B[i].item() for i in at)
        )

    expected = build(result, element, aq.complex128 if dtype.kind == "complex" else aq.float64)
    be.check(fn(be.arr(a), be.arr(b), axis=axis), expected.astype(dtype.dtype), dtype)


def test_vecdot_conjugates_the_first_argument(be):
    x1, x2 = be.arr([1j, 2], aq.complex128), be.arr([1j, 4], aq.complex128)
    be.check(aq.vecdot(x1, x2), (-1j) * 1j + 2 * 4, aq.complex128)
    be.check(aq.vecdot(x2, x1), (-1j) * 1j + 4 * 2, aq.complex128)
    x3 = be.arr([1 + 1j], aq.complex64)
    be.check(aq.vecdot(x3, x3), 2 + 0j, aq.complex64)


def test_vecdot_errors(be):
    with pytest.raises(ValueError):
        aq.vecdot(be.arr(np.ones(3)), be.arr(np.ones(4)))
    with pytest.raises(ValueError):
        aq.vecdot(be.arr(np.ones((2, 3))), be.arr(np.ones(3)), axis=0)  # x2 has no axis to contract there
    with pytest.raises(IndexError):
        aq.vecdot(be.arr(np.ones(3)), be.arr(np.ones(3)), axis=1)
