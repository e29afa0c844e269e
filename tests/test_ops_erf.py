"""erf: the contract's polynomial formula (arrayq/backend/_erf.py), on the NumPy backend (which
runs it in cache-sized blocks), on the primitives-only test backend (the contract's default
as written), on the strict example and, for float64, on MLX; against ``math.erf``.

Tolerances, in ulps of the expected value in the dtype under test:

* float64: 2 ulps. The formula's fits are below 3e-17 relative (tools/fit_erf.py), so
  its error is its float64 rounding: measured within 1 ulp of ``math.erf`` over 1.3 million
  points, and the 300 furthest from it within 1.02 ulps of the true value (40-digit mpmath);
  ``math.erf`` (the platform's libm) is within 1 ulp itself.
* float32: 1.5 ulps from ``math.erf`` (whose float64 error is invisible here). Measured 1.25
  at most over every float32 from 2**-30 to 4 (against the float64 formula): NumPy's float32
  ``exp`` is off by up to 2.4 ulps, and above the split point the result carries
  ``exp(-x*x)``'s error scaled by erfc <= 0.21, plus the final rounding.
* float16, bfloat16: computed in float32 and rounded once, so half an ulp of the dtype
  plus the float32 error (1.5 float32 ulps); arithmetic in the narrow dtype itself would
  be several ulps off.

The float16 and bfloat16 checks are exhaustive (every finite value of the dtype).
"""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest

import arrayq as aq
from arrayq.backend import _erf
from arrayq_numpy import ERF_BLOCK
from tests._ops_support import Be, be, quiet  # noqa: F401 (fixture)

_ERF = np.frompyfunc(math.erf, 1, 1)


def _math_erf(x: np.ndarray) -> np.ndarray:
    return _ERF(x.astype(np.float64)).astype(np.float64)


def _tolerance(dtype: np.dtype, want: np.ndarray) -> np.ndarray:
    """The allowed |got - want| per element (see the module docstring)."""
    if dtype == np.float64:
        return 2 * np.spacing(np.abs(want))
    f32 = 1.5 * np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    if dtype == np.float32:
        return f32
    return 0.5 * np.spacing(np.abs(want).astype(dtype)).astype(np.float64) + f32


def _check_close(got: np.ndarray, x: np.ndarray) -> None:
    assert got.dtype == x.dtype and got.shape == x.shape
    want = _math_erf(x)
    g = got.astype(np.float64)
    err = np.abs(g - want)
    bad = err > _tolerance(x.dtype, want)
    assert not bad.any(), (
        f"{int(bad.sum())} of {x.size} values off; worst at x = {x[bad][np.argmax(err[bad])]!r}: "
        f"got {g[bad][np.argmax(err[bad])]!r}, math.erf {want[bad][np.argmax(err[bad])]!r}"
    )


def _grid(dtype: np.dtype) -> np.ndarray:
    """A dense grid over the whole range, both signs, the split and clamp points and their
    neighbours, and magnitudes down to the smallest subnormal."""
    tiny = float(np.finfo(dtype).smallest_subnormal)
    points = [
        np.linspace(0, 7, 400_001),
        np.geomspace(tiny, 1, 20_001),
        np.geomspace(7, float(np.finfo(dtype).max) / 2, 2_001),
    ]
    x = np.concatenate(points).astype(dtype)
    edges = np.array([t.split for t in (_erf.FLOAT32, _erf.FLOAT64)] + [4.0, 6.0], dtype)
    around = (edges[:, None] + np.arange(-8, 9)[None, :] * np.spacing(edges)[:, None]).ravel()
    x = np.concatenate([x, around.astype(dtype)])
    return np.concatenate([x, -x])


def _every_value(dtype: np.dtype) -> np.ndarray:
    bits = np.arange(1 << 16, dtype=np.uint16).view(dtype)
    return bits[np.isfinite(bits.astype(np.float32))]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dense_grid(be: Be, dtype: str) -> None:
    x = _grid(np.dtype(dtype))
    assert x.size > ERF_BLOCK  # so the NumPy backend runs its blocks, with a partial last one
    with quiet():
        _check_close(be.out(aq.erf(be.arr(x))), x)


@pytest.mark.parametrize("dtype", [np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)], ids=["float16", "bfloat16"])
def test_every_narrow_value(be: Be, dtype: np.dtype) -> None:
    x = _every_value(dtype)
    _check_close(be.out(aq.erf(be.arr(x))), x)


SPECIAL = [
    # (x, erf(x)) exactly, in every dtype
    (0.0, 0.0),
    (math.inf, 1.0),
    (-math.inf, -1.0),
    (6.0, 1.0),
    (27.0, 1.0),
    (-60000.0, -1.0),
]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_special_values(be: Be, dtype: str) -> None:
    x = np.array([v for v, _ in SPECIAL] + [-0.0, math.nan, -math.nan], aq.as_dtype(dtype).dtype)
    with quiet():
        got = be.out(aq.erf(be.arr(x))).astype(np.float64)
    np.testing.assert_array_equal(got[: len(SPECIAL)], [w for _, w in SPECIAL])
    assert got[len(SPECIAL)] == 0 and np.signbit(got[len(SPECIAL)]), "erf(-0.0) must be -0.0"
    assert np.isnan(got[-2:]).all()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tiny_values_keep_their_relative_accuracy(be: Be, dtype: str) -> None:
    # erf(x) = 2x/sqrt(pi) to working precision for tiny x: a formula with an absolute error
    # (1 - poly * exp(-x*x), as Abramowitz-Stegun 7.1.26) would give 0 or noise here
    info = np.finfo(dtype)
    x = np.array([info.smallest_subnormal, 3 * info.smallest_subnormal, info.smallest_normal, 1e-20], dtype)
    x = np.concatenate([x, -x])
    got = be.out(aq.erf(be.arr(x)))
    assert (np.sign(got) == np.sign(x)).all()
    _check_close(got, x)


def test_shapes_views_and_empty_on_numpy() -> None:
    """The NumPy backend's blocks: any shape, a strided view, a 0-d array and an empty one."""
    r = np.random.default_rng(0)
    x = (r.standard_normal((3, 2 * ERF_BLOCK // 3 + 7)) * 2).astype(np.float32)
    view = x.T[::2]
    got = aq.erf(view)
    assert got.shape == view.shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, aq.erf(np.ascontiguousarray(view)))
    _check_close(got, np.ascontiguousarray(view))
    zero_d = aq.erf(np.array(0.5, np.float32))
    assert type(zero_d) is np.ndarray and zero_d.shape == ()
    assert aq.erf(np.zeros((0, 3), np.float64)).shape == (0, 3)


def test_numpy_blocks_give_the_contracts_bits() -> None:
    """Blocks change nothing elementwise: the same bits as the contract's default on the whole array."""
    x = np.random.default_rng(1).standard_normal(3 * ERF_BLOCK + 5) * 3
    for dtype in (np.float64, np.float32, np.float16):
        xs = x.astype(dtype)
        np.testing.assert_array_equal(aq.erf(xs), aq.Backend.erf(aq.get_backend("numpy"), xs))


def test_strict_example() -> None:
    pytest.importorskip("array_api_strict")
    strict = aq.get_backend("strict")
    for dtype in ("float64", "float32"):
        x = _grid(np.dtype(dtype))[::7]
        with quiet():
            _check_close(np.asarray(aq.to_numpy(aq.erf(aq.to_backend(x, strict)))), x)


def test_mlx_float64_runs_the_contracts_formula() -> None:
    mx = pytest.importorskip("mlx.core")
    x = _grid(np.dtype("float64"))[::5]
    with mx.stream(mx.cpu):
        got = aq.erf(mx.array(x, dtype=mx.float64))
        _check_close(np.array(got), x)
