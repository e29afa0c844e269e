"""The NumPy backend's float32 row kernels (backends/arrayq_numpy/csrc/rowops.c: rms_norm,
rope, swiglu) against float64 NumPy written here and against the frontend's references;
the NumPy fallback for what the kernels do not take, hostile values, and the kernels' own
argument checks.

Tolerances, per kernel (docs/native-kernels.md states the same):

* rms_norm: the sum of squares in float64, ``1/sqrt(mean + eps)`` rounded once to float32,
  then two float32 products: each output within 3 float32 roundings of the float64 value,
  ``|y - ref| <= 2**-22 * |ref|`` (4 epsilons; a wrong mean or weight is off by far more).
* rope: the reference's float32 operations in its order: bit-identical to
  ``arrayq.nn.rope_reference`` with the same tables.
* swiglu: a polynomial exp within 2 ulp and four float32 roundings after it: within
  ``6 * 2**-24 * |ref|`` of float64 where exp(-|g|) and the result are normal float32; below
  that (g < -87, or a subnormal result) the precision is absolute, float32's subnormal
  spacing 2**-149: ``2**-140 * (1 + |g|) * (1 + |u|)`` more.
"""

from __future__ import annotations

import numpy as np
import pytest

from arrayq import nn
from arrayq_numpy import _native, _rowops

pytestmark = pytest.mark.skipif(
    not _rowops._runs(), reason="the native row kernels are not built or turned off (ARRAYQ_NATIVE)"
)

NORM_RTOL = 2.0**-22
SWIGLU_RTOL = 6 * 2.0**-24
SWIGLU_ATOL = 2.0**-140


def _kernels():
    assert _native._kernels is not None
    return _native._kernels


def _rms_norm64(x: np.ndarray, w: np.ndarray | None, eps: float) -> np.ndarray:
    x64 = x.astype(np.float64)
    out = x64 / np.sqrt(np.mean(x64 * x64, axis=-1, keepdims=True) + eps)
    return out if w is None else out * w.astype(np.float64)


def _swiglu64(g: np.ndarray, u: np.ndarray) -> np.ndarray:
    g64 = g.astype(np.float64)
    with np.errstate(over="ignore"):
        return g64 / (1 + np.exp(-g64)) * u.astype(np.float64)


def _counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list:
    """Calls of the kernel ``name``, counted."""
    calls: list = []
    real = getattr(_kernels(), name)
    monkeypatch.setattr(_kernels(), name, lambda *a: calls.append(a) or real(*a))
    return calls


# ---------------------------------------------------------------------- rms_norm


def _layer_views(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """rms_norm inputs as a decoder makes them: a hidden row, heads of a fused qkv output
    (a view whose rows are not evenly spaced at prefill), odd sizes, no weight."""
    qkv = rng.standard_normal((2, 5, 16 * 8 + 2 * 4 * 8)).astype(np.float32)
    return {
        "hidden": (rng.standard_normal((1, 1, 1024)).astype(np.float32), rng.standard_normal(1024).astype(np.float32)),
        "q heads of qkv": (qkv[..., : 16 * 8].reshape(2, 5, 16, 8), rng.standard_normal(8).astype(np.float32)),
        "decode heads": (qkv[:1, :1, :128].reshape(1, 1, 16, 8), rng.standard_normal(8).astype(np.float32)),
        "odd width": (rng.standard_normal((3, 7, 13)).astype(np.float32), None),
        "width 1": (rng.standard_normal((4, 1)).astype(np.float32), np.float32([2.5])),
        "transposed": (rng.standard_normal((6, 9)).astype(np.float32).T, None),
        "reversed rows": (rng.standard_normal((5, 12)).astype(np.float32)[::-1], None),
    }


@pytest.mark.parametrize("case", list(_layer_views(np.random.default_rng(0))))
def test_rms_norm_is_within_three_roundings_of_float64(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    calls = _counting(monkeypatch, "rms_norm")
    x, w = _layer_views(np.random.default_rng(0))[case]
    y = nn.rms_norm(x, w, 1e-6)
    assert calls and y.dtype == np.float32 and y.shape == x.shape
    ref = _rms_norm64(x, w, 1e-6)
    assert np.all(np.abs(y - ref) <= NORM_RTOL * np.abs(ref) + 1e-37)


def test_rms_norm_sums_squares_past_float32s_range() -> None:
    # x**2 overflows float32 (1e20**2): the float64 sum still gives the right scale
    x = np.float32([[1e20, -2e20, 3e20], [1e-20, 2e-20, -3e-20]])
    y = nn.rms_norm(x, None, 0.0)
    ref = _rms_norm64(x, None, 0.0)
    assert np.all(np.abs(y - ref) <= NORM_RTOL * np.abs(ref))


def test_rms_norm_nan_and_inf_stay_in_their_row() -> None:
    x = np.ones((4, 6), np.float32)
    x[1, 2], x[2, 0] = np.nan, np.inf
    y = nn.rms_norm(x, np.full(6, 2, np.float32), 1e-6)
    with np.errstate(invalid="ignore"):
        ref = _rms_norm64(x, np.full(6, 2, np.float32), 1e-6)
    # a NaN row is NaN; an inf row scales by 1/inf = 0: inf * 0 = NaN, the rest 0
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    assert np.isnan(y[1]).all() and np.isnan(y[2, 0]) and (y[2, 1:] == 0).all()
    np.testing.assert_allclose(y[[0, 3]], ref[[0, 3]], rtol=NORM_RTOL)


@pytest.mark.parametrize("shape", [(0, 8), (3, 0), (2, 0, 4)])
def test_rms_norm_of_empty_arrays_takes_numpy(monkeypatch: pytest.MonkeyPatch, shape: tuple[int, ...]) -> None:
    calls = _counting(monkeypatch, "rms_norm")
    x = np.zeros(shape, np.float32)
    w = np.ones(shape[-1], np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        y = nn.rms_norm(x, w, 1e-6)
    assert not calls and y.shape == shape and y.dtype == np.float32


def test_rms_norm_other_dtypes_take_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch, "rms_norm")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 16))
    for dtype, rtol in ((np.float64, 1e-14), (np.float16, 2e-3)):  # float16: its own rounding
        w = np.linspace(0.5, 2, 16).astype(dtype)
        y = nn.rms_norm(x.astype(dtype), w, 1e-6)
        assert y.dtype == dtype
        np.testing.assert_allclose(y.astype(np.float64), _rms_norm64(x.astype(dtype), w, 1e-6), rtol=rtol, atol=1e-3)
    assert not calls


# ---------------------------------------------------------------------- rope


ROPE_CASES = {
    # name: (x, dims, traditional): decode q, prefill q heads as a permuted view, a prefix of
    # the features, interleaved pairs, 2-d and 3-d x
    "decode": ((1, 16, 1, 128), None, 128, False),
    "prefill, permuted view": ((1, 7, 16, 64), (0, 2, 1, 3), 64, False),
    "prefix of the features": ((2, 3, 5, 24), None, 16, False),
    "traditional": ((1, 4, 6, 32), (0, 1, 2, 3), 32, True),
    "2-d": ((9, 10), None, 6, True),
    "3-d": ((3, 4, 12), None, 12, False),
}


@pytest.mark.parametrize("case", list(ROPE_CASES))
def test_rope_is_bit_identical_to_the_reference(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    calls = _counting(monkeypatch, "rope")
    shape, axes, dims, traditional = ROPE_CASES[case]
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    x = x if axes is None else x.transpose(axes)
    for offset in (0, 37, np.asarray(1000, np.int32)):
        y = nn.rope(x, dims, traditional=traditional, base=1e6, offset=offset)
        tables = nn.rope_tables(dims, 1e6, 1.0, int(offset), x.shape[-2])
        np.testing.assert_array_equal(y, nn.rope_reference(x, dims, traditional, tables))
    assert len(calls) == 3


def test_rope_nan_stays_in_its_pair() -> None:
    x = np.ones((1, 1, 2, 8), np.float32)
    x[0, 0, 1, 1] = np.nan
    y = nn.rope(x, 8, offset=3)
    bad = np.zeros(x.shape, bool)
    bad[0, 0, 1, [1, 5]] = True  # feature 1 and its rotate-half partner 1 + 8/2
    assert np.array_equal(np.isnan(y), bad)


def test_rope_outside_the_kernel_takes_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch, "rope")
    x5 = np.random.default_rng(3).standard_normal((2, 1, 2, 3, 8)).astype(np.float32)  # 5-d
    np.testing.assert_array_equal(
        nn.rope(x5, 8, offset=2), nn.rope_reference(x5, 8, False, nn.rope_tables(8, 10000.0, 1.0, 2, 3))
    )
    x64 = x5[0].astype(np.float64)
    y = nn.rope(x64, 8, offset=2)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(
        y, nn.rope_reference(x64, 8, False, nn.rope_tables(8, 10000.0, 1.0, 2, 3, np.float64))
    )
    assert nn.rope(np.zeros((2, 0, 8), np.float32), 8).shape == (2, 0, 8)
    assert not calls


# ---------------------------------------------------------------------- swiglu


def _swiglu_close(y: np.ndarray, g: np.ndarray, u: np.ndarray) -> None:
    ref = _swiglu64(g, u)
    # relative where everything is a normal float32; the absolute part covers exp(-|g|) or
    # the products below float32's normal range (g < -87 or a subnormal result)
    bound = SWIGLU_RTOL * np.abs(ref) + SWIGLU_ATOL * (1 + np.abs(g)) * (1 + np.abs(u))
    assert np.all(np.abs(y - ref) <= bound)


def test_swiglu_across_float32s_range(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch, "swiglu")
    rng = np.random.default_rng(4)
    g = np.concatenate([np.linspace(-110, 110, 200_000), -np.logspace(-40, 2, 20_000), np.logspace(-40, 2, 20_000)])
    g = g.astype(np.float32).reshape(-1, 240)
    u = rng.standard_normal(g.shape).astype(np.float32)
    y = nn.swiglu(g, u)
    assert len(calls) == 1 and y.dtype == np.float32
    _swiglu_close(y, g, u)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 16, 17, 40, 3072])
def test_swiglu_every_tail_length(n: int) -> None:
    # 16 lanes at a time, then 8, then a padded copy of the rest
    rng = np.random.default_rng(n)
    g, u = (rng.standard_normal((2, n)).astype(np.float32) * 4 for _ in range(2))
    _swiglu_close(nn.swiglu(g, u), g, u)


def test_swiglu_reads_the_halves_of_a_fused_projection_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch, "swiglu")
    gu = np.random.default_rng(5).standard_normal((3, 4, 2 * 24)).astype(np.float32)
    g, u = gu[..., :24], gu[..., 24:]
    y = nn.swiglu(g, u)
    assert np.shares_memory(calls[0][0], gu) and np.shares_memory(calls[0][1], gu)  # no copies
    _swiglu_close(y, g, u)
    # the one array itself (nn.swiglu(gu)): the same kernel on the same halves, no copies
    halves = nn.swiglu(gu)
    assert len(calls) == 2 and all(np.shares_memory(a, gu) for a in calls[1][:2])
    np.testing.assert_array_equal(halves, y)


@pytest.mark.parametrize("shape", [(2, 7), (), (1, 1, 0)])
def test_swiglu_of_one_array_needs_an_even_last_axis(shape: tuple) -> None:
    gu = np.zeros(shape, np.float32)
    if shape == (1, 1, 0):  # (0 is even: empty halves, an empty result)
        assert nn.swiglu(gu).shape == (1, 1, 0)
        return
    with pytest.raises(ValueError, match="swiglu of one array takes gate and up side by side"):
        nn.swiglu(gu)


def test_swiglu_special_values_match_the_reference() -> None:
    g = np.float32([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-45, -88, -104, -105, 88, 3])
    u = np.float32([1, 2, 3, 4, 5, 6, 7, 8, 9, np.inf, np.nan])
    y = nn.swiglu(g, u)
    with np.errstate(invalid="ignore", over="ignore"):
        ref = nn.swiglu_reference(g, u)  # silu(-inf) = -inf * 0: NaN; silu(88) * inf: inf
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))
    finite = np.isfinite(ref)
    np.testing.assert_allclose(y[finite], ref[finite], rtol=SWIGLU_RTOL, atol=SWIGLU_ATOL)
    assert np.signbit(y[4]) == np.signbit(ref[4])  # silu(-0) = -0


def test_swiglu_computes_each_row_on_its_own() -> None:
    rng = np.random.default_rng(6)
    g, u = (rng.standard_normal((64, 1024)).astype(np.float32) for _ in range(2))
    whole = nn.swiglu(g, u)
    rows = np.concatenate([nn.swiglu(g[i : i + 1], u[i : i + 1]) for i in range(64)])
    np.testing.assert_array_equal(whole, rows)


def test_swiglu_other_dtypes_take_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch, "swiglu")
    rng = np.random.default_rng(7)
    g, u = rng.standard_normal((2, 10)) * 4, rng.standard_normal((2, 10))
    np.testing.assert_allclose(nn.swiglu(g, u), _swiglu64(g, u), rtol=1e-14)  # float64: exact formula
    half = nn.swiglu(g.astype(np.float16), u.astype(np.float16))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, _swiglu64(g.astype(np.float16), u.astype(np.float16)), rtol=4e-3, atol=1e-3)
    assert nn.swiglu(np.zeros((0, 4), np.float32), np.zeros((0, 4), np.float32)).shape == (0, 4)
    assert not calls


@pytest.mark.parametrize(
    "g,u",
    [
        (np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)),
        (np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32)),
        (np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float64)),
    ],
)
def test_swiglu_rejects_mismatched_arguments(g: np.ndarray, u: np.ndarray) -> None:
    with pytest.raises(ValueError, match="swiglu takes gate and up of one shape and dtype"):
        nn.swiglu(g, u)


def test_swiglu_rejects_integers() -> None:
    with pytest.raises(TypeError, match="swiglu takes real floating arrays, got arrayq.int32"):
        nn.swiglu(np.zeros(3, np.int32), np.zeros(3, np.int32))


@pytest.mark.parametrize(
    "args",
    [([1.0, 2.0],), ([1.0], [2.0]), (np.zeros(2, np.float32), [2.0, 3.0]), ([1.0, 2.0], np.zeros(2, np.float32))],
)
def test_swiglu_names_an_argument_that_is_not_an_array(args: tuple) -> None:
    # a list is not an array of any backend: the frontend's own TypeError, not an AttributeError
    with pytest.raises(TypeError, match="no loaded backend recognises as an array"):
        nn.swiglu(*args)


def test_swiglu_layer_computes_the_gated_mlp() -> None:
    rng = np.random.default_rng(8)
    w = [rng.standard_normal(s).astype(np.float32) * 0.2 for s in ((12, 8), (12, 8), (8, 12))]
    mlp = nn.SwiGLU(*(nn.Linear(a) for a in w))
    x = rng.standard_normal((2, 3, 8)).astype(np.float32)
    x64, (wg, wu, wd) = x.astype(np.float64), (a.astype(np.float64) for a in w)
    ref = _swiglu64(x64 @ wg.T, x64 @ wu.T) @ wd.T
    np.testing.assert_allclose(mlp(x), ref, rtol=1e-5, atol=1e-6)  # float32 matmuls around it


# ---------------------------------------------------------------------- the kernels' own checks


def test_the_row_kernels_check_their_arrays() -> None:
    k = _kernels()
    x = np.ones((2, 8), np.float32)
    with pytest.raises(ValueError, match="2-d float32"):
        k.rms_norm(x.astype(np.float64), None, np.empty((2, 8), np.float32), 1e-6)
    with pytest.raises(ValueError, match="out must be a C-contiguous"):
        k.rms_norm(x, None, np.empty((2, 9), np.float32), 1e-6)
    with pytest.raises(ValueError, match="weight must be a C-contiguous"):
        k.rms_norm(x, np.ones(7, np.float32), np.empty((2, 8), np.float32), 1e-6)
    with pytest.raises(ValueError, match="contiguous last axis"):
        k.swiglu(np.ones((2, 16), np.float32)[:, ::2], x, np.empty((2, 8), np.float32))
    with pytest.raises(ValueError, match="same shape"):
        k.swiglu(x, x[:1], np.empty((2, 8), np.float32))
    x4, tables = np.ones((1, 1, 3, 8), np.float32), np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="rope dims 7"):
        k.rope(x4, tables, tables, np.empty_like(x4), 7, False)
    with pytest.raises(ValueError, match="cos must be"):
        k.rope(x4, tables[:2], tables, np.empty_like(x4), 8, False)
    with pytest.raises(ValueError, match="out must be"):
        k.rope(x4, tables, tables, np.empty((1, 1, 3, 8), np.float32)[..., ::-1], 8, False)
    with pytest.raises(ValueError, match="read-only"):
        readonly = np.empty((2, 8), np.float32)
        readonly.setflags(write=False)
        k.swiglu(x, x, readonly)


def test_native_off_takes_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_rowops, "_runs", lambda: False)
    calls = [_counting(monkeypatch, name) for name in ("rms_norm", "rope", "swiglu")]
    x = np.random.default_rng(9).standard_normal((2, 3, 16)).astype(np.float32)
    np.testing.assert_allclose(nn.rms_norm(x, None), _rms_norm64(x, None, 1e-6), rtol=1e-6)
    np.testing.assert_array_equal(
        nn.rope(x, 16, offset=4), nn.rope_reference(x, 16, False, nn.rope_tables(16, 10000.0, 1.0, 4, 3))
    )
    np.testing.assert_array_equal(nn.swiglu(x, x), nn.swiglu_reference(x, x))
    assert not any(calls)
