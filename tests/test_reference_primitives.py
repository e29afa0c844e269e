"""The references (quantized formats, quantized matmuls, attention, norms, layers) call a
backend only through its primitives, never through the arrays' own operators.

They run here on the test-only primitives-only backend (tests/_ops_support.py): its arrays,
:class:`PArray`, have no arithmetic or comparison operators and refuse NumPy ufuncs, so a
reference that wrote ``a / b`` or ``a < b`` on arrays instead of ``xp.divide(a, b)`` raises
TypeError, and a result that left the backend fails ``Be.out``. Every optional native op
returns NotImplemented there, so the frontend's reference runs each time.

Expectations are the NumPy backend's results for the same inputs:

* quantize/dequantize: bit for bit (NumPy runs the same reference: the formats are exact);
* float results of the references: bit for bit against the same reference run on NumPy
  arrays (the same NumPy calls, one primitive at a time), and against NumPy's public op
  (its native kernels where it has them) within the bound each comparison states.

The last test is the point of the change: a backend's ``binary("divide")`` sees the
reference's divisions (a backend whose division is reciprocal-then-multiply, as XLA's, used
to be bypassed by ``/`` on its arrays).
"""

from __future__ import annotations

import numpy as np
import pytest

import arrayq as aq
from arrayq import nn
from arrayq.quant import reference_gather_qmm, reference_matmul
from tests._ops_support import Be, PrimitivesOnly, eps

MODES = [
    *(("affine", 64, bits) for bits in (1, 2, 3, 4, 5, 6, 8)),
    ("affine", 32, 4),
    ("affine", 128, 3),
    ("mxfp4", 32, 4),
    ("mxfp8", 32, 8),
    ("nvfp4", 16, 4),
]
#: one of each kind of code for the matmuls: 1-bit, straddling 3-bit, 4-bit affine, and each fp mode
MATMUL_MODES = [
    ("affine", 64, 1),
    ("affine", 64, 3),
    ("affine", 32, 4),
    ("mxfp4", 32, 4),
    ("mxfp8", 32, 8),
    ("nvfp4", 16, 4),
]
MODE_IDS = [f"{m}-g{g}-b{b}" for m, g, b in MODES]
FLOATS = ["float32", "float16", "bfloat16"]


@pytest.fixture(scope="module")
def po() -> Be:
    aq.register_backend("primitives-only", PrimitivesOnly, replace=True)
    try:
        yield Be("primitives-only")
    finally:
        aq.unregister_backend("primitives-only")


def _np(dtype: str) -> np.dtype:
    return np.dtype(aq.as_dtype(dtype).dtype)


def _weight(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    # rows of very different magnitudes, a constant group and zeros: every branch of the formats
    r = np.random.default_rng(seed)
    w = r.standard_normal(shape) * np.exp(r.uniform(-4, 4, shape[:-1] + (1,)))
    w[..., 0, :16] = 0.75
    w[..., 1, :8] = 0.0
    return w.astype(_np(dtype))


def _same(got: np.ndarray, want: np.ndarray) -> None:
    """Bit for bit: shapes, dtypes and every bit of the values (NaNs included)."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    assert got.tobytes() == want.tobytes(), np.flatnonzero(got.view(np.uint8) != want.view(np.uint8))[:5]


def _within(got: np.ndarray, want: np.ndarray, bound: np.ndarray) -> None:
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = ~(diff <= bound)
    assert not bad.any(), (
        f"{int(bad.sum())} of {bad.size} differ beyond the bound; first at {np.argwhere(bad)[0]}: "
        f"got {got[bad][0]!r}, NumPy {want[bad][0]!r}, bound {np.broadcast_to(bound, bad.shape)[bad][0]:.3g}"
    )


def _rounding_bound(want: np.ndarray, terms: np.ndarray, n: int, dtype: str) -> np.ndarray:
    """How far two float32 evaluations of the same sums may lie apart once rounded to ``dtype``.

    ``terms``: per output element, the sum of the magnitudes of what was added up (float64);
    ``n``: the number of terms in one sum. Two summation orders in float32 each lie within
    ``n * eps32 * terms`` of the exact sum (the classic gamma_n bound), so within twice that
    of each other; rounding to ``dtype`` then adds up to one ulp of ``dtype`` on each side."""
    return 2 * n * eps("float32") * terms + 2 * eps(dtype) * np.abs(want.astype(np.float64))


# ---------------------------------------------------------------------- quantize / dequantize


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode, group_size, bits", MODES, ids=MODE_IDS)
def test_quantize_and_dequantize_match_numpy_bit_for_bit(po, mode, group_size, bits, dtype):
    w = _weight((2, 5, 256), dtype)
    if mode == "nvfp4":
        w = np.clip(w, -2000, 2000)  # nvfp4 refuses magnitudes beyond 448 * 6
    fmt = dict(group_size=group_size, bits=bits, mode=mode)
    want = aq.quantize(w, **fmt)
    got = aq.quantize(po.arr(w), **fmt)
    for g, e in ((got.packed, want.packed), (got.scales, want.scales), (got.biases, want.biases)):
        if e is None:
            assert g is None
        else:
            _same(po.out(g), e)
    _same(po.out(aq.dequantize(got)), aq.dequantize(want))
    for out_dtype in FLOATS:
        _same(po.out(aq.dequantize(got, dtype=out_dtype)), aq.dequantize(want, dtype=out_dtype))


# ---------------------------------------------------------------------- quantized matmuls


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("mode, group_size, bits", MATMUL_MODES, ids=str)
def test_quantized_matmul_reference_path(po, mode, group_size, bits, dtype, transpose):
    r = np.random.default_rng(1)
    n, k = 64, 128
    qw_np = aq.quantize(
        _weight((n, k) if transpose else (k, n), "float32", 2), group_size=group_size, bits=bits, mode=mode
    )
    qw_po = aq.to_backend(qw_np, "primitives-only")
    w32 = aq.dequantize(qw_np, dtype="float32").astype(np.float64)
    w_kn = w32.T if transpose else w32
    for shape in ((k,), (1, k), (2, 3, k)):
        x = r.standard_normal(shape).astype(_np(dtype))
        got = po.out(aq.linalg.quantized_matmul(po.arr(x), qw_po, transpose=transpose))
        # the same reference on NumPy arrays: the same NumPy calls, so the same bits
        _same(got, reference_matmul(x, qw_np, transpose))
        # NumPy's own op (its native kernels where they apply): float32 sums over K in another order
        terms = np.abs(x.astype(np.float64)) @ np.abs(w_kn)
        want = aq.linalg.quantized_matmul(x, qw_np, transpose=transpose)
        _within(got, want, _rounding_bound(want, terms, k, dtype))


@pytest.mark.parametrize("mode, group_size, bits", [("affine", 64, 4), ("mxfp8", 32, 8), ("nvfp4", 16, 4)], ids=str)
def test_gather_qmm_reference_path(po, mode, group_size, bits):
    r = np.random.default_rng(2)
    experts, n, k = 4, 32, 64
    qw_np = aq.quantize(_weight((experts, n, k), "float32", 3), group_size=group_size, bits=bits, mode=mode)
    qw_po = aq.to_backend(qw_np, "primitives-only")
    w64 = aq.dequantize(qw_np, dtype="float32").astype(np.float64)
    x = r.standard_normal((4, 2, k)).astype(np.float32)
    lhs = np.array([[0, 1], [2, 2], [3, 0]], np.int32)
    rhs = np.array([[3, 0], [1, 1], [2, 3]], np.int32)
    for li, ri in ((lhs, rhs), (None, np.array([3, 0, 1, 1], np.int32)), (lhs[:, :1], None), (None, None)):
        got = aq.linalg.gather_qmm(
            po.arr(x),
            qw_po,
            lhs_indices=None if li is None else po.arr(li),
            rhs_indices=None if ri is None else po.arr(ri),
        )
        got = po.out(got)
        _same(got, reference_gather_qmm(x, qw_np, li, ri, True))
        want = aq.linalg.gather_qmm(x, qw_np, lhs_indices=li, rhs_indices=ri)
        lhs_b, rhs_b = np.broadcast_arrays(np.arange(4) if li is None else li, np.arange(experts) if ri is None else ri)
        terms = np.abs(x.astype(np.float64))[lhs_b] @ np.abs(np.swapaxes(w64[rhs_b], -1, -2))
        _within(got, want, _rounding_bound(want, terms, k, "float32"))


# ---------------------------------------------------------------------- norms and attention


@pytest.mark.parametrize("dtype", FLOATS)
def test_norms(po, dtype):
    r = np.random.default_rng(4)
    d = 96
    x = (r.standard_normal((2, 5, d)) * np.exp(r.uniform(-3, 3, (2, 5, 1))) + 0.5).astype(_np(dtype))
    w = (1 + 0.5 * r.standard_normal(d)).astype(_np(dtype))
    b = (0.3 * r.standard_normal(d) - 1).astype(_np(dtype))
    xp_, wp, bp = po.arr(x), po.arr(w), po.arr(b)
    for eps_ in (1e-6, 0.5):
        got = po.out(nn.rms_norm(xp_, wp, eps_))
        _same(got, nn.rms_norm_reference(x, w, eps_))
        _same(po.out(nn.rms_norm(xp_, None, eps_)), nn.rms_norm_reference(x, None, eps_))
        _same(po.out(nn.RMSNorm(wp, eps_)(xp_)), got)
        # NumPy's native rms_norm: the mean square sums D float32 squares in another order and
        # the reciprocal square root differs by an ulp; then one rounding to the dtype
        want = nn.rms_norm(x, w, eps_)
        bound = 2 * (d + 2) * eps("float32") * np.abs(want.astype(np.float64)) + 2 * eps(dtype) * np.abs(
            want.astype(np.float64)
        )
        _within(got, want, bound)
        # LayerNorm has no native op: NumPy runs the same reference with its native mean
        # (the same pairwise sum, then one division), so the same bits
        _same(po.out(nn.LayerNorm(wp, bp, eps_)(xp_)), nn.LayerNorm(w, b, eps_)(x))
        _same(po.out(nn.layer_norm(xp_, None, None, eps_)), nn.layer_norm(x, None, None, eps_))


@pytest.mark.parametrize(
    "length, total, mask",
    [
        (1, 9, None),
        (1, 9, "causal"),
        (4, 4, "causal"),
        (3, 8, "causal"),
        (3, 8, None),
        (3, 8, (2, 1, 1, 8)),
        (3, 8, (1, 8, 3, 8)),
        (3, 8, (3, 8)),
    ],
    ids=str,
)
def test_attention(po, length, total, mask):
    r = np.random.default_rng(5)
    q = r.standard_normal((2, 8, length, 16)).astype(np.float32)
    k, v = (r.standard_normal((2, 2, total, 16)).astype(np.float32) for _ in range(2))
    m = mask
    if isinstance(mask, tuple):
        m = r.standard_normal(mask).astype(np.float32)
        m[..., 0] = -np.inf  # a key no query may see
    mp = po.arr(m) if isinstance(m, np.ndarray) else m
    got = po.out(nn.scaled_dot_product_attention(po.arr(q), po.arr(k), po.arr(v), scale=0.25, mask=mp))
    _same(got, nn.attention_reference(q, k, v, 0.25, m))
    # a host (NumPy) mask meets primitives-only arrays: NumPy gives way, same result
    if isinstance(m, np.ndarray):
        _same(po.out(nn.scaled_dot_product_attention(po.arr(q), po.arr(k), po.arr(v), scale=0.25, mask=m)), got)
    # NumPy's own op (a fused kernel for float32 decode): scores sum D products, the output S
    # probabilities times values, each in float32 in another order; exp and the softmax's sum
    # and division add a few ulps of the probabilities
    want = nn.scaled_dot_product_attention(q, k, v, scale=0.25, mask=m)
    bound = 4 * (16 + total + 4) * eps("float32") * np.abs(v).max() * np.ones(want.shape)
    _within(got, want, bound)


# ---------------------------------------------------------------------- activations and layers


@pytest.mark.parametrize("dtype", FLOATS)
def test_activations_and_layers(po, dtype):
    r = np.random.default_rng(6)
    x = np.concatenate([r.standard_normal((2, 5, 30)) * 3, np.full((2, 5, 2), 40.0)], axis=-1).astype(_np(dtype))
    xp_ = po.arr(x)
    # no native op and no composite NumPy overrides: the same NumPy calls, the same bits
    for fn in (nn.sigmoid, nn.silu, nn.softmax, lambda a: nn.softmax(a, axis=1), lambda a: nn.gelu(a, "tanh")):
        _same(po.out(fn(xp_)), fn(x))
    # gelu's erf: NumPy runs the contract's formula in blocks, elementwise: the same bits
    _same(po.out(nn.gelu(xp_)), nn.gelu(x))

    for traditional in (False, True):
        rope = nn.RoPE(8, traditional=traditional)
        h = r.standard_normal((2, 3, 5, 12)).astype(_np(dtype))
        _same(po.out(rope(po.arr(h), offset=7)), rope(h, offset=7))

    w1, w2, w3 = (r.standard_normal(s).astype(_np(dtype)) / 5 for s in ((24, 32), (24, 32), (32, 24)))
    bias = r.standard_normal(24).astype(_np(dtype))
    lin = nn.Linear(w1, bias)
    _same(po.out(aq.to_backend(lin, "primitives-only")(xp_)), lin(x))
    mlp = nn.SwiGLU(nn.Linear(w1), nn.Linear(w2), nn.Linear(w3))
    got = po.out(aq.to_backend(mlp, "primitives-only")(xp_))
    gated = nn.swiglu_reference(nn.Linear(w1)(x), nn.Linear(w2)(x))
    _same(got, nn.Linear(w3)(gated))  # the reference's silu(gate) * up: the same NumPy calls
    # NumPy's swiglu (native for float32): each gated value within 8 float32 roundings of the
    # reference's (3 for the kernel, 4 for the reference's exp and products), then one matmul
    terms = np.abs(gated.astype(np.float64)) @ np.abs(w3.astype(np.float64)).T
    want = mlp(x)
    _within(got, want, 8 * eps("float32") * terms + _rounding_bound(want, terms, 24, dtype))
    emb = nn.Embedding(w1)
    ids = np.array([[3, 0], [23, 7]], np.int32)
    _same(po.out(aq.to_backend(emb, "primitives-only")(po.arr(ids))), emb(ids))

    qemb = emb.quantize(group_size=32, bits=4)
    _same(po.out(aq.to_backend(qemb, "primitives-only")(po.arr(ids))), qemb(ids))
    qlin = lin.quantize(group_size=32, bits=4)
    got = po.out(aq.to_backend(qlin, "primitives-only")(xp_))
    _same(got, aq.add(reference_matmul(x, qlin.weight), bias))
    # NumPy's native quantized_matmul: float32 sums over K in another order, then the bias
    # added in the dtype (one more rounding each side)
    want = qlin(x)
    terms = np.abs(x.astype(np.float64)) @ np.abs(aq.dequantize(qlin.weight, dtype="float32").astype(np.float64)).T
    _within(got, want, _rounding_bound(want, terms + np.abs(bias.astype(np.float64)), 32, dtype) * 2)


def test_attention_layer_with_a_cache(po):
    """A whole attention block (quantized projections, q/k norms, RoPE, grouped heads, a KV
    cache that concatenates because PArrays take no slice assignment) on primitives-only."""
    r = np.random.default_rng(7)
    hidden, heads, kv_heads, head_dim = 32, 4, 2, 8

    layer = nn.Attention(
        nn.Linear((r.standard_normal((heads * head_dim, hidden)) / 6).astype(np.float32)).quantize(group_size=32),
        nn.Linear((r.standard_normal((kv_heads * head_dim, hidden)) / 6).astype(np.float32)).quantize(group_size=32),
        nn.Linear((r.standard_normal((kv_heads * head_dim, hidden)) / 6).astype(np.float32)),
        nn.Linear((r.standard_normal((hidden, heads * head_dim)) / 6).astype(np.float32)).quantize(group_size=32),
        heads,
        kv_heads,
        head_dim,
        nn.RoPE(head_dim),
        nn.RMSNorm((1 + r.standard_normal(head_dim) / 4).astype(np.float32)),
        nn.RMSNorm((1 + r.standard_normal(head_dim) / 4).astype(np.float32)),
    )
    layer_po = aq.to_backend(layer, "primitives-only")
    cache_np, cache_po = nn.KVCache(), nn.KVCache()
    for length in (5, 1, 2):
        x = r.standard_normal((2, length, hidden)).astype(np.float32)
        got = po.out(layer_po(po.arr(x), cache=cache_po))
        want = layer(x, cache=cache_np)
        # NumPy's native quantized_matmul, rms_norm and attention sum in other orders, and
        # the differences pass through four projections: a few hundred float32 ulps of the
        # output's scale
        _within(got, want, 512 * eps("float32") * (np.abs(want).max() + 1))
    assert cache_po.offset == cache_np.offset == 8


# ---------------------------------------------------------------------- the backend's division


@pytest.fixture
def divisions(po, monkeypatch):
    """The primitives-only backend with its ``binary`` instrumented: the list of the
    operand shapes of every division it is asked for."""
    backend = po.backend
    seen = []
    plain = backend.binary

    def binary(op, x1, x2):
        if op == "divide":
            seen.append(tuple(tuple(getattr(a, "shape", ())) for a in (x1, x2)))
        return plain(op, x1, x2)

    monkeypatch.setattr(backend, "binary", binary)
    return seen


@pytest.mark.parametrize(
    "run",
    [
        pytest.param(lambda w, x: aq.quantize(w, bits=4), id="quantize-affine"),
        pytest.param(lambda w, x: aq.quantize(w, mode="mxfp4"), id="quantize-mxfp4"),
        pytest.param(lambda w, x: aq.quantize(w, mode="nvfp4"), id="quantize-nvfp4"),
        pytest.param(lambda w, x: nn.rms_norm(x, None), id="rms_norm"),
        pytest.param(lambda w, x: nn.layer_norm(x, None, None), id="layer_norm"),
        pytest.param(lambda w, x: nn.softmax(x), id="softmax"),
        pytest.param(lambda w, x: nn.sigmoid(x), id="sigmoid"),
    ],
)
def test_the_backend_sees_the_references_divisions(po, divisions, run):
    """The point of going through the primitives: a backend that divides its own way (XLA
    divides by multiplying with a reciprocal) is asked for every division of the reference,
    so its results are its own and a conformance failure names its ``binary("divide")``."""
    r = np.random.default_rng(8)
    w = po.arr(r.standard_normal((4, 64)).astype(np.float32))
    x = po.arr(r.standard_normal((3, 64)).astype(np.float32))
    out = run(w, x)
    po.out(out.packed if isinstance(out, aq.QuantizedWeight) else out)
    assert divisions, "the reference divided without the backend's binary('divide')"


def test_a_whole_qwen3_model(po, tmp_path):
    """The tiny Qwen3 checkpoint (quantized projections, tied quantized embeddings, residual
    adds) runs a prompt and two cached decode steps on primitives-only."""
    from arrayq import models

    model = models.load(models.make_checkpoint(tmp_path / "tiny", "tiny"))
    model_po = aq.to_backend(model, "primitives-only")
    cache_np, cache_po = model.make_cache(), model_po.make_cache()
    for ids in ([[1, 5, 9, 2]], [[7]], [[3]]):
        ids = np.array(ids, np.int32)
        got = po.out(model_po(po.arr(ids), cache_po))
        want = model(ids, cache_np)
        # NumPy's native quantized matmuls, rms_norm and attention sum in other orders; the
        # differences pass through every layer: a few hundred float32 ulps of the logits' scale
        _within(got, want, 512 * eps("float32") * (np.abs(want).max() + 1))
