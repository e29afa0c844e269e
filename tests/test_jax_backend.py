"""The JAX backend: what the conformance suite does not show. 64-bit dtypes are gaps (never a
silent narrowing) while jax_enable_x64 is off; indices come in the default integer; out-of-range
indices raise IndexError; division is IEEE division although XLA rewrites ``a / b``; quantize and
dequantize equal the NumPy backend's bit for bit, eagerly and inside ``arrayq.compile``; the fused
quantized matmul equals the reference within float32 rounding; ``arrayq.compile`` is ``jax.jit``.

The whole conformance suite runs on JAX in tests/test_conformance_jax.py (x64 off here, x64 on in a
subprocess)."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import arrayq as aq  # noqa: E402
from arrayq.backend import UnsupportedDTypeError  # noqa: E402

JAX = aq.get_backend("jax")
X64 = bool(jax.config.read("jax_enable_x64"))
needs_x64_off = pytest.mark.skipif(X64, reason="this process runs with JAX_ENABLE_X64 set")


def _jax(a):
    return aq.to_backend(a, "jax")


def test_entry_point_and_lazy_import():
    assert type(JAX).__name__ == "JAXBackend" and JAX.name == "jax"
    assert any(b.name == "jax" and b.available for b in aq.list_backends())
    import subprocess
    import sys

    code = "import sys, arrayq_jax; print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # listing or importing the backend package costs no jax import


@needs_x64_off
def test_64_bit_dtypes_are_declared_gaps_and_never_narrowed():
    gaps = JAX.gaps()
    assert set(gaps) == {"float64", "int64", "uint64", "complex128"}
    assert all("JAX_ENABLE_X64=1" in why for why in gaps.values())
    for dtype in (np.float64, np.int64, np.uint64, np.complex128):
        with pytest.raises(UnsupportedDTypeError, match="JAX_ENABLE_X64=1"):
            _jax(np.ones(3, dtype))  # jax.device_put alone would hand back 32 bits
    with pytest.raises(UnsupportedDTypeError, match="JAX_ENABLE_X64"):
        aq.zeros(3, dtype=aq.float64, like=_jax(np.ones(3, np.float32)))
    assert JAX.default_int == aq.int32 and JAX.default_float == aq.float32


def test_index_results_come_in_the_default_integer():
    x = _jax(np.array([[3.0, 1.0, 2.0], [0.5, 4.0, 4.0]], np.float32))
    want = JAX.default_int
    for got in (
        aq.argmax(x, axis=1),
        aq.argmin(x),
        aq.argsort(x, axis=1),
        aq.searchsorted(_jax(np.array([1.0, 2.0, 3.0], np.float32)), _jax(np.array([2.5], np.float32))),
        *aq.nonzero(x),
        aq.unique_all(x).indices,
        aq.count_nonzero(x),
    ):
        assert JAX.dtype_of(got) == want
    assert aq.to_numpy(aq.argmax(x, axis=1)).tolist() == [0, 1]  # first occurrence of the tie


@pytest.mark.parametrize("op", ["take", "take_along_axis"])
@pytest.mark.parametrize("bad", [3, -4, 2**31 - 1])
def test_out_of_range_indices_raise_index_error(op, bad):
    """jnp.take would give NaN (mode "fill") or clamp; arrayq raises as on NumPy."""
    x = _jax(np.arange(6, dtype=np.float32).reshape(2, 3))
    idx = np.array([[0, bad]], np.int32)
    with pytest.raises(IndexError, match=f"index {bad} is out of range for axis 1 of size 3"):
        if op == "take":
            aq.take(x, _jax(idx[0]), axis=1)
        else:
            aq.take_along_axis(x, _jax(np.repeat(idx, 2, axis=0)), axis=1)
    # in range, negative indices count from the end, as on NumPy
    got = aq.take(x, _jax(np.array([-1, 0], np.int32)), axis=1)
    assert aq.to_numpy(got).tolist() == [[2.0, 0.0], [5.0, 3.0]]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, "bfloat16"])
@pytest.mark.parametrize("divisor", ["scalar", "row", "column", "full"])
def test_division_is_ieee_division_eagerly_and_compiled(dtype, divisor):
    """XLA turns ``a / broadcast(b)`` into ``a * (1 / b)``: 1 ulp off in about a quarter of the elements
    (measured: 66951 of 262144 float32 quotients for a column divisor). NumPy's division is
    IEEE's, correctly rounded: the results must be equal, bit for bit."""
    import ml_dtypes

    dtype = np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    rng = np.random.default_rng(5)
    a = rng.standard_normal((512, 64)).astype(dtype)
    b = {
        "scalar": 3.0,
        "row": rng.uniform(0.1, 3, (1, 64)).astype(dtype),
        "column": rng.uniform(0.1, 3, (512, 1)).astype(dtype),
        "full": rng.uniform(0.1, 3, (512, 64)).astype(dtype),
    }[divisor]
    want = aq.to_numpy(aq.divide(a, b))  # the NumPy backend
    b_jax = b if divisor == "scalar" else _jax(b)
    eager = aq.to_numpy(aq.divide(_jax(a), b_jax))
    compiled = aq.to_numpy(aq.compile(aq.divide)(_jax(a), b_jax))
    for got in (eager, compiled):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


FORMATS = [
    ("affine", 64, 4, np.float32),
    ("affine", 32, 3, "bfloat16"),
    ("affine", 128, 8, np.float16),
    ("affine", 64, 5, np.float32),
    ("affine", 32, 1, np.float32),
    ("mxfp4", 32, 4, "bfloat16"),
    ("mxfp8", 32, 8, np.float32),
    ("nvfp4", 16, 4, np.float16),
]


def _weight(dtype, shape=(24, 256), seed=0):
    import ml_dtypes

    dtype = np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    return (np.random.default_rng(seed).standard_normal(shape) * 0.7).astype(dtype)


def _same_bits(got, want):
    got, want = aq.to_numpy(got), aq.to_numpy(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize(("mode", "group_size", "bits", "dtype"), FORMATS)
def test_quantize_and_dequantize_equal_numpy_bit_for_bit(mode, group_size, bits, dtype):
    """Against the NumPy backend (itself held to MLX's output bit for bit by
    tests/test_quant_formats.py), eagerly and inside arrayq.compile, where XLA would otherwise
    contract ``q * s + b`` into a fused multiply-add."""
    w = _weight(dtype, (2, 24, 256))  # a batch of two matrices
    want = aq.quantize(w, group_size=group_size, bits=bits, mode=mode)
    got = aq.quantize(_jax(w), group_size=group_size, bits=bits, mode=mode)
    assert isinstance(got.packed, jax.Array)
    for g, r in zip((got.packed, got.scales, got.biases), (want.packed, want.scales, want.biases)):
        assert (g is None) == (r is None)
        if r is not None:
            _same_bits(g, r)
    for out_dtype in (None, aq.float32, aq.bfloat16):
        reference = aq.dequantize(want, dtype=out_dtype)
        _same_bits(aq.dequantize(got, dtype=out_dtype), reference)
        compiled = aq.compile(lambda qw, d=out_dtype: aq.dequantize(qw, dtype=d))
        _same_bits(compiled(got), reference)
        assert compiled.cache_info().native == 1


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 6, 8])
@pytest.mark.parametrize("transpose", [True, False])
def test_fused_quantized_matmul_matches_the_reference(bits, transpose):
    """The fused dequantize-matmul against arrayq's reference on the NumPy backend: float32
    sums of 256 products in another order, ~1e-6 of the largest output; 1e-5 leaves margin."""
    w = _weight(np.float32, (2, 64, 256), seed=bits)
    qw = aq.quantize(w, group_size=32, bits=bits)
    k = 256 if transpose else 64
    for x in (np.random.default_rng(1).standard_normal((3, k)), np.random.default_rng(2).standard_normal(k)):
        x = x.astype(np.float32)
        want = aq.to_numpy(aq.quant.reference_matmul(x, qw, transpose))
        for fn in (aq.linalg.quantized_matmul, aq.compile(aq.linalg.quantized_matmul)):
            got = aq.to_numpy(fn(_jax(x), aq.to_backend(qw, "jax"), transpose=transpose))
            assert got.shape == want.shape and got.dtype == np.float32
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert aq.capabilities("jax")["quantized_matmul"] == "native"


def test_compile_is_jax_jit_and_host_reads_raise_compile_error():
    traces = []

    @aq.compile
    def f(x, k):
        traces.append(1)
        return aq.multiply(aq.exp(x), k)

    x = _jax(np.linspace(-1, 1, 8, dtype=np.float32))
    for _ in range(3):
        got = f(x, 2.0)
    assert isinstance(got, jax.Array) and len(traces) == 1  # traced once, replayed by XLA
    assert f.cache_info().native == 1
    np.testing.assert_allclose(aq.to_numpy(got), 2 * np.exp(np.linspace(-1, 1, 8, dtype=np.float32)), rtol=1e-6)

    @aq.compile
    def reads(x):
        return x * float(aq.max(x))

    with pytest.raises(aq.CompileError, match="reads an array's value on the host"):
        reads(x)

    @aq.compile
    def looks_up(x, i):
        return aq.take(x, i)  # the bounds check reads the indices

    with pytest.raises(aq.CompileError):
        looks_up(x, _jax(np.array([1], np.int32)))


def test_row_block_form_covers_every_row():
    """A weight large enough for the row-block form (lax.map over blocks of rows) whose row count
    is not a multiple of the block: the blocks and the tail together give every output row."""
    from arrayq_jax._quantized import block_rows

    n, k = 200, 8192
    block = block_rows(n, k)
    assert block and n % block  # the form runs, with a tail
    qw = aq.quantize(_weight(np.float32, (n, k), seed=3), group_size=64, bits=4)
    x = np.random.default_rng(4).standard_normal((2, 3, k)).astype(np.float32)  # batch axes on x
    want = aq.to_numpy(aq.quant.reference_matmul(x, qw))
    got = aq.to_numpy(aq.linalg.quantized_matmul(_jax(x), aq.to_backend(qw, "jax")))
    # float32 sums of 8192 products in another order: ~2e-6 of the largest output; 1e-5 leaves margin
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("form", ["row_blocks", "reduce", "dequantize"])
@pytest.mark.parametrize("bits", [3, 4, 8])
def test_every_linear_form_matches_the_reference(form, bits):
    """Each form a platform may run (arrayq_jax._quantized.linear_form), run here on the CPU:
    float32 x against the reference within float32 rounding (sums of 256 products in another
    order, ~1e-6 of the largest output; 1e-5 leaves margin); bfloat16 x and scales, against the
    reference on the same (rounded) values: bfloat16 keeps 8 significant bits, and the output
    (and, in the dequantize form, the weight) is rounded to it once, ~4e-3 of the largest output
    at most; 1e-2 leaves margin."""
    import ml_dtypes

    from arrayq_jax import _quantized

    run = jax.jit(_quantized._forms(jax, 32, bits)[form])
    w = _weight(np.float32, (64, 256), seed=bits)
    qw = aq.quantize(w, group_size=32, bits=bits)
    for dtype, tolerance in ((np.float32, 1e-5), (ml_dtypes.bfloat16, 1e-2)):
        scales, biases = (np.asarray(a).astype(dtype) for a in (qw.scales, qw.biases))
        rounded = aq.QuantizedWeight(qw.packed, scales.astype(np.float32), biases.astype(np.float32), 32, bits)
        for rows in ((1,), (3,), (2, 5)):
            x = np.random.default_rng(1).standard_normal((*rows, 256)).astype(dtype)
            want = aq.to_numpy(aq.quant.reference_matmul(x.astype(np.float32), rounded))
            got = run(*(jax.numpy.asarray(a) for a in (x, qw.packed, scales, biases)))
            assert got.shape == want.shape and got.dtype == dtype
            np.testing.assert_allclose(np.asarray(got, np.float32), want, rtol=0, atol=tolerance * np.abs(want).max())


def test_the_form_follows_the_platform_the_program_is_lowered_for():
    """lax.platform_dependent picks the form when XLA lowers the program (the arrays' device, also
    inside an outer jax.jit): exported for the CPU the linear layer loops over row blocks (a while
    loop around a dot); for CUDA, one decoded row is a fused reduction (no loop, no dot) and 32 rows a dot."""
    from arrayq_jax import _quantized

    assert [_quantized.linear_form("cpu", m) for m in (1, 512)] == ["row_blocks"] * 2
    assert [_quantized.linear_form(p, m) for p, m in (("cuda", 1), ("rocm", 8), ("cuda", 9))] == [
        "reduce",
        "reduce",
        "dequantize",
    ]
    qw = aq.quantize(_weight(np.float32, (4096, 256), seed=5), group_size=64, bits=4)
    fused = _quantized._fused(jax, 64, 4, True)
    cases = ((1, "cpu", {"while", "dot_general"}), (1, "cuda", {"reduce"}), (32, "cuda", {"dot_general"}))
    for rows, platform, want in cases:
        weight = (jax.numpy.asarray(a) for a in (qw.packed, qw.scales, qw.biases))
        args = (jax.numpy.ones((rows, 256), np.float32), *weight)
        program = jax.export.export(fused, platforms=[platform])(*args).mlir_module()
        found = {op for op in ("while", "reduce", "dot_general") if f"stablehlo.{op}" in program}
        assert found == want, (rows, platform, found)


def test_gpu_device_names_map_to_jax_gpu_devices():
    """With a CUDA jaxlib, jax's default backend is "gpu" and its arrays report the platform
    "gpu": this backend then lists ["gpu", "cpu"], puts an array asked for on "gpu" on jax's first
    GPU device (and one for "cpu" on the CPU), names a GPU array's device "gpu", and refuses a
    device it lacks. No GPU here: jax's device functions are replaced by stand-ins that record
    where arrays are put (the rest of jax is the real one)."""
    import types

    real = JAX.jax
    gpu = types.SimpleNamespace(platform="gpu", id=0)
    cpu = real.devices("cpu")[0]
    put = []

    def devices(platform=None):
        return [gpu] if platform in (None, "gpu") else real.devices(platform)

    def device_put(a, device=None):
        put.append(device)
        return real.device_put(a)

    backend = type(JAX)()
    backend.jax = types.SimpleNamespace(
        **{n: getattr(real, n) for n in ("Array", "core", "numpy", "lax", "config")},
        default_backend=lambda: "gpu",
        devices=devices,
        device_put=device_put,
    )
    assert backend.devices() == ["gpu", "cpu"]
    backend.from_numpy(np.ones(2, np.float32), "gpu")
    backend.from_numpy(np.ones(2, np.float32), "cpu")
    backend.from_numpy(np.ones(2, np.float32))
    assert put == [gpu, cpu, None]  # None: jax's default device (the GPU)
    with pytest.raises(ValueError, match="has no device 'tpu'"):
        backend.from_numpy(np.ones(2, np.float32), "tpu")
    on_gpu = types.SimpleNamespace(devices=lambda: {gpu})
    assert backend.device_of(on_gpu) == "gpu" and backend.device_of(_jax(np.ones(2, np.float32))) == "cpu"
    from arrayq import models

    assert models.default_dtype(backend.devices()[0]) == "bfloat16"
