"""arrayq's CUDA kernels for the MLX backend, on a machine without a GPU.

What runs here: the kernel choice (shape/format -> decode, dequantize or MLX's own
kernel), the template constants per bit width and group size, and NumPy emulations of the
kernels' indexing and arithmetic (tests/_cuda_emulators.py) against arrayq's reference formats. The kernels
themselves only compile on a CUDA device (benchmarks/bench_cuda.py --check runs them there);
this file checks that nothing builds or compiles them on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from arrayq.quant import QuantizedWeight, _formats, _packing
from arrayq_mlx import cuda as ck
from arrayq_mlx.cuda import _launch as launch
from tests import _cuda_emulators as emu

RNG = np.random.default_rng(7)
BASE = dict(
    k=4096,
    n=12288,
    bits=4,
    group_size=64,
    mode="affine",
    transpose=True,
    x_dtype="bfloat16",
    scales_dtype="bfloat16",
    weight_ndim=2,
    has_biases=True,
    arch=9,
)


def choose(**kw: object) -> str | None:
    args = {**BASE, **kw}
    return ck.choose(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5, 8, 9, 16])
def test_tensor_core_decode_for_few_rows(rows: int) -> None:
    assert choose(rows=rows) == "decode_tc"
    assert choose(rows=rows, arch=8) == "decode_tc"  # mma.sync: Ampere and Ada too


@pytest.mark.parametrize(
    "kw",
    [
        dict(k=4096 + 64),  # K not a whole number of 256-value stages
        dict(bits=8),  # 8-bit codes do not fit a bfloat16 mantissa
        dict(arch=7),  # no bfloat16 mma.sync
        dict(arch=0),  # compute capability unknown
    ],
)
def test_other_decode_kernel_where_the_tensor_core_one_cannot_run(kw: dict[str, object]) -> None:
    assert choose(rows=1, **kw) == "decode"
    assert choose(rows=4, **kw) == "decode"


def test_tensor_core_decode_takes_8_bit_codes_with_float16_x() -> None:
    # 1024 + q is exact in float16 for q < 1024
    assert choose(rows=1, bits=8, x_dtype="float16") == "decode_tc"
    assert choose(rows=1, bits=8, x_dtype="bfloat16") == "decode"


@pytest.mark.parametrize("rows", [1025, 4096])
def test_dequantize_path_for_many_rows(rows: int) -> None:
    assert choose(rows=rows) == "dequant"


@pytest.mark.parametrize("rows", [5, 6, 7])
def test_fused_kernel_for_5_to_7_rows_else_dequantize(rows: int) -> None:
    # where the tensor-core decode kernel cannot run (K not a multiple of 256 here)
    assert choose(rows=rows, k=4096 + 64) == "qmm"
    assert choose(rows=rows, k=4096 + 64, n=12288 + 4) == "dequant"  # N not a multiple of 8


@pytest.mark.parametrize(
    "rows,kind",
    [(1, "decode_tc"), (16, "decode_tc"), (17, None), (32, None), (127, None)]
    + [(128, "dequant"), (512, "dequant"), (4096, "dequant")],
)
def test_without_hopper_no_fused_kernel(rows: int, kind: str | None) -> None:
    # other GPUs cannot compile wgmma: MLX's kernel up to 127 rows, dequantize + matmul from
    # 128 (and for 5-7 rows where the tensor-core decode kernel does not run)
    assert choose(rows=rows, arch=8) == kind
    assert choose(rows=6, arch=8, k=4096 + 64) == "dequant"
    assert choose(rows=4, arch=7) == "decode" and choose(rows=6, arch=7) == "dequant"


class _FakeMx:
    gpu = "gpu"

    def __init__(self, info: object) -> None:
        self.info = info

    def device_info(self, device: object) -> object:
        if isinstance(self.info, Exception):
            raise self.info
        return self.info


@pytest.mark.parametrize(
    "info,major",
    [
        ({"compute_capability_major": 9, "compute_capability_minor": 0}, 9),
        ({"compute_capability_major": 8, "compute_capability_minor": 9}, 8),
        ({"compute_capability_major": 10}, 10),
        ({"architecture": "sm_90"}, 9),
        ({"architecture": "sm_89"}, 8),
        ({"architecture": "x86_64"}, 0),
        ({}, 0),
        ({"compute_capability_major": "nine"}, 0),
        (RuntimeError("no gpu"), 0),
    ],
)
def test_compute_capability(info: object, major: int) -> None:
    assert ck.compute_capability(_FakeMx(info)) == major


@pytest.mark.parametrize("arch", [8, 10, 12])
@pytest.mark.parametrize("rows", [6, 64, 512])
def test_fused_kernel_only_on_compute_capability_9(arch: int, rows: int) -> None:
    assert choose(rows=rows, k=4096 + 64, arch=9) == "qmm"
    assert choose(rows=rows, k=4096 + 64, arch=arch) != "qmm"


@pytest.mark.parametrize("rows", [32, 48, 64, 128, 129, 256, 512, 1024])
def test_fused_kernel_for_32_to_1024_rows(rows: int) -> None:
    assert choose(rows=rows) == "qmm"
    assert ck.qmm_config(rows, 12288) == (ck.QMM_CONFIGS[1] if rows >= ck.QMM_WIDE_FROM else ck.QMM_CONFIGS[0])


@pytest.mark.parametrize("kw", [dict(k=4096 + 32), dict(n=12288 + 4), dict(k=96, group_size=32)])
def test_fused_kernel_needs_k_tiles_and_n_multiple_of_8(kw: dict[str, object]) -> None:
    got = choose(rows=256, **kw)
    assert got in ("dequant", None) and got != "qmm"


def test_fused_kernel_template_and_name() -> None:
    cfg = ck.QmmConfig(3, 128, 4)
    t = launch.qmm_template(True, 4, 64, cfg)
    assert all(isinstance(v, (int, bool)) for _, v in t)
    assert launch.mlx_kernel_name("arrayq_qmm", t) == "custom_kernel_arrayq_qmm_f_0_4_64_t_3_128_4"
    # K tiles not a multiple of the stages: the variant with the tail steps
    assert dict(launch.qmm_template(True, 4, 64, cfg, "bfloat16", 64 * 6))["TAIL"] is True
    assert dict(launch.qmm_template(True, 4, 64, cfg, "bfloat16", 4096))["TAIL"] is False
    # MLX caches a module by the kernel's name: each scales dtype gets its own
    names = {launch.mlx_kernel_name("q", launch.qmm_template(False, 4, 64, cfg, sd)) for sd in ck.SCALE_DTYPES}
    assert len(names) == len(ck.SCALE_DTYPES)
    assert launch.dtype_name("mlx.core.float16") == "float16"
    head = launch.qmm_header("x", cfg)
    assert "__launch_bounds__(384, 1)" in head and "m64n128k16" in head
    assert "m64n256k16" in launch.qmm_header("y", ck.QmmConfig(2, 256, 4))
    for name in ("BITS", "GS", "X_BF16", "WGS", "NT", "STAGES", "x_shape", "w_shape"):
        assert name in launch.source("qmm.cu")
    # 4 stages of (x tile + padded code rows), 1 KB alignment slack, under the 227 KB limit
    assert ck.qmm_smem_bytes(cfg, 4) == 4 * (16384 + 192 * 48) + 1024
    for c in ck.QMM_CONFIGS:
        for bits in ck.SUPPORTED_BITS:
            assert ck.qmm_smem_bytes(c, bits) <= 227 * 1024


@pytest.mark.parametrize("rows", [17, 24, 31])
def test_mlx_kernel_between(rows: int) -> None:
    assert choose(rows=rows) is None


@pytest.mark.parametrize(
    "kw",
    [
        dict(transpose=False),
        dict(mode="mxfp4"),
        dict(weight_ndim=3),
        dict(has_biases=False),
        dict(bits=1),
        dict(bits=7),
        dict(group_size=16),
        dict(x_dtype="float32"),
        dict(scales_dtype="float64"),
        dict(k=4096 + 32),  # not a whole number of groups
        dict(rows=0),
    ],
)
def test_fallback_to_mlx(kw: dict[str, object]) -> None:
    assert choose(**{"rows": 1, **kw}) is None


@pytest.mark.parametrize("bits", ck.SUPPORTED_BITS)
@pytest.mark.parametrize("gs", ck.SUPPORTED_GROUP_SIZES)
def test_covered_formats(bits: int, gs: int) -> None:
    for x_dtype in ck.X_DTYPES:
        for s_dtype in ck.SCALE_DTYPES:
            got = choose(rows=1, bits=bits, group_size=gs, x_dtype=x_dtype, scales_dtype=s_dtype)
            assert got == ("decode" if (bits, x_dtype) == (8, "bfloat16") else "decode_tc")
            assert choose(rows=1, bits=bits, group_size=gs, x_dtype=x_dtype, scales_dtype=s_dtype, arch=7) == "decode"


@pytest.mark.parametrize("bits", ck.SUPPORTED_BITS)
@pytest.mark.parametrize("gs", ck.SUPPORTED_GROUP_SIZES)
def test_layout(bits: int, gs: int) -> None:
    lay = ck.layout(bits, gs)
    assert lay.vals % 32 == 0 and lay.vals <= gs, "a chunk is whole packing periods inside one group"
    assert lay.words * 32 == lay.vals * bits
    assert lay.words % lay.vec == 0 and lay.vec in (1, 2, 4)
    if bits in (2, 4, 8):
        assert lay.words * 4 >= 16 or gs == 32, "16-byte chunks where the group allows it"
    assert ck.decode_rows_per_warp(bits, gs) in (4, 8)


def test_template_constants() -> None:
    t = dict(launch.decode_template("bf16", "f32", 6, 128, 4, 8, 2))
    assert t == {
        "T": "bf16",
        "S": "f32",
        "X_BF16": False,  # the dtype is named by MLX's dtype object; a plain string is not bfloat16 here
        "BITS": 6,
        "GS": 128,
        "ROWS": 4,
        "MT": 8,
        "KSPLIT": 2,
        "VALS": 32,
        "VEC": 2,
    }
    d = dict(launch.dequant_template("mlx.core.bfloat16", "mlx.core.float16", 2, 64))
    assert (d["X_BF16"], d["BITS"], d["GS"], d["VALS"], d["VEC"]) == (True, 2, 64, 64, 4)
    for name in ("BITS", "GS", "ROWS", "MT", "KSPLIT", "VALS", "VEC", "X_BF16"):
        assert name in launch.source("decode.cu")
    for name in ("BITS", "GS", "VALS", "X_BF16"):
        assert name in launch.source("dequant.cu")
    # MLX adds shape arguments only for the names the source uses
    assert "x_shape" in launch.source("decode.cu") and "w_shape" in launch.source("decode.cu")
    assert "w_shape" in launch.source("dequant.cu") and "scales_shape" in launch.source("dequant.cu")


def test_k_split() -> None:
    assert ck.decode_k_split(12288, 8, 4) == 4  # 1536 row sets, several rows of x
    assert ck.decode_k_split(12288, 8, 1) == 1  # one row of x: no split
    assert ck.decode_k_split(151936, 8, 4) == 1


@pytest.mark.parametrize("rows,tile", [(1, 1), (2, 2), (3, 4), (4, 4), (5, 8), (16, 16)])
def test_decode_m_tile(rows: int, tile: int) -> None:
    assert ck.decode_m_tile(rows) == tile


def _quantized(bits: int, gs: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    w = (RNG.standard_normal((n, k)) * 0.02).astype(np.float32)
    p, s, b = _formats.quantize(np, w, gs, bits, "affine")
    return np.asarray(p), np.asarray(s), np.asarray(b)


@pytest.mark.parametrize("bits", ck.SUPPORTED_BITS)
@pytest.mark.parametrize("gs", ck.SUPPORTED_GROUP_SIZES)
def test_decode_emulation_matches_reference(bits: int, gs: int) -> None:
    n, k = 13, 3 * max(gs, ck.layout(bits, gs).vals)
    p, s, b = _quantized(bits, gs, n, k)
    x = RNG.standard_normal((3, k))
    w = np.asarray(_formats.dequantize(np, p, s, b, gs, bits, "affine", np.float32), dtype=np.float64)
    got = emu.emulate_decode(np, x, p, s, b, bits, gs)
    np.testing.assert_allclose(got, x @ w.T, rtol=1e-5, atol=1e-5 * np.abs(x @ w.T).max())


@pytest.mark.parametrize("bits", ck.SUPPORTED_BITS)
@pytest.mark.parametrize("gs", ck.SUPPORTED_GROUP_SIZES)
def test_dequantize_emulation_matches_reference(bits: int, gs: int) -> None:
    n, k = 5, 3 * max(gs, ck.layout(bits, gs).vals)
    p, s, b = _quantized(bits, gs, n, k)
    codes = np.asarray(_packing.unpack(np, p, bits), dtype=np.float64)
    g = np.arange(k) // gs
    want = s.astype(np.float64)[:, g] * codes + b.astype(np.float64)[:, g]
    np.testing.assert_array_equal(emu.emulate_dequantize(np, p, s, b, bits, gs), want)


def test_env_var_turns_kernels_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    assert ck.enabled()
    for off in ("0", "false", "off"):
        monkeypatch.setenv(ck.ENV_VAR, off)
        assert not ck.enabled()


def test_cpu_backend_never_builds_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    mx = pytest.importorskip("mlx.core")
    from arrayq_mlx import MLXBackend

    backend = MLXBackend()
    x = mx.array(RNG.standard_normal((1, 128)).astype(np.float32)).astype(mx.bfloat16)
    w = mx.array(RNG.standard_normal((8, 128)).astype(np.float32)).astype(mx.bfloat16)
    p, s, b = mx.quantize(w, group_size=64, bits=4)
    args = (x, QuantizedWeight(p, s, b, 64, 4, "affine"), True)
    route = backend._cuda_route
    if not route.available():
        assert route.kernel_for(backend, *args) is None
        with mx.stream(mx.cpu):
            backend.quantized_matmul(*args)
        assert route._kernels is None
    # the choice itself, as it would be on a CUDA device: a decode row takes MLX's kernel
    # unless the decode kernels are asked for; a prefill-sized x takes arrayq's kernel
    monkeypatch.setattr(route, "_available", True)
    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    assert route.kernel_for(backend, *args) is None
    big = (mx.concatenate([x] * 256), *args[1:])
    assert route.kernel_for(backend, *big) in ("qmm", "dequant")
    monkeypatch.setenv(ck.ENV_VAR, "all")
    assert route.kernel_for(backend, *args) == "decode" and ck.decode_enabled()
    monkeypatch.setenv(ck.ENV_VAR, "0")
    assert route.kernel_for(backend, *args) is None and route.kernel_for(backend, *big) is None


@pytest.mark.parametrize("bits", ck.SUPPORTED_BITS)
@pytest.mark.parametrize("gs", ck.SUPPORTED_GROUP_SIZES)
def test_fused_kernel_emulation_matches_reference(bits: int, gs: int) -> None:
    n, k = 16, 3 * 64 if gs <= 64 else 256
    p, s, b = _quantized(bits, gs, n, k)
    w = emu.emulate_qmm_weight(np, p, s, b, bits, gs)
    codes = np.asarray(_packing.unpack(np, p, bits), dtype=np.float64)
    g = np.arange(k) // gs
    exact = s.astype(np.float64)[:, g] * codes + b.astype(np.float64)[:, g]
    # every element of W is made once, and is s*q + b rounded once to bfloat16
    np.testing.assert_allclose(w, exact, rtol=2.0**-8, atol=1e-6 * np.abs(exact).max())
    x = RNG.standard_normal((5, k))
    np.testing.assert_allclose(x @ w.T, x @ exact.T, rtol=0, atol=1e-2 * np.abs(x @ exact.T).max())


def test_fused_kernel_h2_path_choice() -> None:
    # the 16-bit pair path is taken when the scales are in x's dtype and the codes fit the
    # mantissa with ulp 1 (bfloat16: 7 bits, float16: 10)
    src = launch.source("qmm.cu")
    assert "cuda::std::is_same_v<SS, XT> && BITS <= (X_BF16 ? 7 : 8)" in src
    assert "0x43004300u" in launch.source("async_helpers.cuh") and "0x64006400u" in launch.source("async_helpers.cuh")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("bits", ck.SUPPORTED_BITS)
@pytest.mark.parametrize("gs", ck.SUPPORTED_GROUP_SIZES)
def test_fused_kernel_h2_emulation_is_exact(dtype: str, bits: int, gs: int) -> None:
    if dtype == "bfloat16" and bits > 7:
        pytest.skip("8-bit codes with bfloat16 x take the float32 path")
    n, k = 16, 3 * 64 if gs <= 64 else 256
    p, s, b = _quantized(bits, gs, n, k)
    # scales and biases in x's dtype, as MLX stores them for a bfloat16/float16 weight
    s = emu.round_to(np, s.astype(np.float64), dtype)
    b = emu.round_to(np, b.astype(np.float64), dtype)
    w = emu.emulate_qmm_weight_h2(np, p, s, b, bits, gs, dtype)
    codes = np.asarray(_packing.unpack(np, p, bits), dtype=np.float64)
    g = np.arange(k) // gs
    exact = s[:, g] * codes + b[:, g]
    # every element is s*q + b rounded once to x's dtype: bit for bit
    np.testing.assert_array_equal(w, emu.round_to(np, exact, dtype))
    assert np.abs(w - exact).max() <= 2.0**-8 * np.abs(exact).max()


@pytest.mark.parametrize(
    "bits,gs,x_dtype,s_dtype,m,n,k,ksplit",
    [
        (4, 64, "bfloat16", "bfloat16", 1, 20, 512, 2),
        (3, 32, "bfloat16", "float32", 3, 37, 768, 2),  # 3 stages: one warp gets 2, the other 1
        (8, 128, "float16", "float16", 9, 17, 512, 4),  # 2 stages over 4 warps: two warps idle
        (5, 64, "bfloat16", "float16", 16, 33, 768, 1),
        (2, 32, "float16", "bfloat16", 5, 5, 256, 2),  # N below one tile
        (6, 128, "bfloat16", "bfloat16", 8, 16, 256, 4),
    ],
)
def test_tensor_core_decode_emulation_matches_reference(
    bits: int, gs: int, x_dtype: str, s_dtype: str, m: int, n: int, k: int, ksplit: int
) -> None:
    # a wrong pairing of codes and x values (the mma's k columns), fragment layout, tile,
    # K split or output index would not match
    p, s, b = _quantized(bits, gs, n, k)
    s, b = (np.asarray(v, dtype=np.float32).astype(np.float16 if s_dtype == "float16" else np.float32) for v in (s, b))
    if s_dtype == "bfloat16":
        s, b = ((v.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32) for v in (s, b))
    x = RNG.standard_normal((m, k)).astype(np.float16 if x_dtype == "float16" else np.float32)
    if x_dtype == "bfloat16":
        x = (x.view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32)  # exact in bfloat16
    codes = np.asarray(_packing.unpack(np, p, bits), dtype=np.float64)
    g = np.arange(k) // gs
    w = s.astype(np.float64)[:, g] * codes + b.astype(np.float64)[:, g]
    want = x.astype(np.float64) @ w.T
    got = emu.emulate_decode_tc(np, x.astype(np.float64), p, s, b, bits, gs, x_dtype, ksplit)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12 * np.abs(want).max())


def test_tensor_core_decode_source_matches_its_emulation() -> None:
    # the emulation's selectors and pairing are the source's
    src = launch.source("decode_tc.cu")
    assert "__byte_perm(xlo, xhi, 0x5410)" in src and "__byte_perm(xlo, xhi, 0x7632)" in src
    # the emulation's register order: A = pairs (2e, 2e, 2e+1, 2e+1) of rows (g, g+8, g, g+8)
    flat = " ".join(src.split())
    mma = (
        "aq_mma<X_BF16>(acc[nb], aq_code_pair<BITS>(u0, 2 * e, magic), aq_code_pair<BITS>(u1, 2 * e, magic), "
        "aq_code_pair<BITS>(u0, 2 * e + 1, magic), aq_code_pair<BITS>(u1, 2 * e + 1, magic), b0, b1);"
    )
    assert mma in flat and "aq_mma<X_BF16>(sum[nb], ones, ones, ones, ones, b0, b1);" in flat
    assert f"constexpr int KS = {ck.DECODE_TC_KS};" in src
    assert "static_assert(4 * D * STW * 4" in src  # the shared memory fits 48 KB (static)
    t = launch.decode_tc_template(True, "float32", 4, 64, ck.decode_tc_m_tile(3))
    assert dict(t)["MT"] == 8 and dict(t)["SK"] == launch.SCALE_KINDS["float32"]
    assert [ck.decode_tc_m_tile(m) for m in (1, 2, 8, 9, 16)] == [1, 8, 8, 16, 16]
    assert "__launch_bounds__(128, 1)" in launch.decode_tc_header()


@pytest.mark.parametrize(
    "hq,hkv,s,d,n", [(4, 2, 70, 32, 70), (2, 2, 9, 64, 1), (6, 3, 50, 32, 33), (4, 1, 200, 32, 37)]
)
def test_prefix_attention_emulation_matches_reference(hq: int, hkv: int, s: int, d: int, n: int) -> None:
    # runs of keys that end past n, warps without any key (n < U*WARPS) and grouped heads
    q, k, v = (
        RNG.standard_normal((2, hq, 1, d)),
        RNG.standard_normal((2, hkv, s, d)),
        RNG.standard_normal((2, hkv, s, d)),
    )
    k[:, :, n:] = 1e3  # the unwritten tail must not count
    rep = hq // hkv
    kk, vv = np.repeat(k[:, :, :n], rep, 1), np.repeat(v[:, :, :n], rep, 1)
    sc = q @ np.swapaxes(kk, -1, -2) * 0.3
    p = np.exp(sc - sc.max(-1, keepdims=True))
    want = (p / p.sum(-1, keepdims=True)) @ vv
    np.testing.assert_allclose(emu.emulate_prefix_attention(np, q, k, v, 0.3, n), want, rtol=1e-12, atol=1e-12)
