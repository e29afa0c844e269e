"""arrayq's fused model-step CUDA kernels for MLX, qkv_heads and add_rms_norm
(backends/arrayq_mlx/cuda/qkv_heads.cu, add_rms_norm.cu), without a GPU.

The kernels run only on MLX's CUDA device (``benchmarks/gpu_qkv_check.py`` checks them there
against the composed MLX ops). Here: their NumPy emulations (tests/_cuda_emulators.py, the
kernels' rows, lanes, sums, roundings and pair indexing step by step) against independent
float64 computations and against the composed path MLX's CPU runs; the float parameters the
launcher hands them; when the MLX backend takes them (a CUDA device, the kernels' shapes and
dtypes, the switches) and that a model's layers then call them.

The float64 references and the bounds (``BOUND``, ``NORM_BOUND`` u m: u the dtype's unit roundoff, 2**-8
bfloat16, 2**-11 float16, 2**-24 float32, m the row's largest value; the reasoning is in the
script's docstring) are benchmarks/gpu_qkv_check.py's, the device check's.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import arrayq as aq
from arrayq_mlx import cuda as ck
from arrayq_mlx.cuda import _launch as launch
from tests import _cuda_emulators as emu

mx = pytest.importorskip("mlx.core")

RNG = np.random.default_rng(17)
DTYPES = ("bfloat16", "float16", "float32")
ROOT = Path(__file__).resolve().parents[1]


def _script() -> Any:
    """benchmarks/gpu_qkv_check.py as a module: its float64 reference, bounds and check."""
    spec = importlib.util.spec_from_file_location("_aq_gpu_qkv_check", ROOT / "benchmarks" / "gpu_qkv_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECK = _script()
UNIT, BOUND, NORM_BOUND = CHECK.UNIT, CHECK.BOUND, CHECK.NORM_BOUND  # u per dtype; bounds in u m
# (B, L, HQ, HKV, D, rope dims, traditional, offset): qwen3-0.6b's decode and prefill rows,
# grouped heads, rope over a prefix of the features, both pair layouts, positions after a cache
CASES = [
    (1, 1, 16, 8, 128, 128, False, 37),
    (2, 5, 4, 2, 64, 64, True, 0),
    (1, 3, 2, 1, 32, 16, False, 1000),
    (3, 2, 6, 3, 96, 64, True, 5),
]


def inputs(case, dtype):
    """float64 qkv (values ~N(0, 9)) and weights (~1 +- 0.1), each exact in ``dtype``."""
    b, length, hq, hkv, d = case[:5]
    mxd = getattr(mx, dtype)

    def exact(a):
        return np.array(mx.array(a.astype(np.float32)).astype(mxd).astype(mx.float32), dtype=np.float64)

    qkv = exact(3 * RNG.standard_normal((b, length, (hq + 2 * hkv) * d)))
    return qkv, exact(1 + 0.1 * RNG.standard_normal(d)), exact(1 + 0.1 * RNG.standard_normal(d))


def emulate(qkv, qw, kw, case, dtype, eps=1e-6, base=1e6, scale=1.0):
    _, _, hq, hkv, _, dims, traditional, offset = case
    params = launch.qkv_heads_params(eps, base, scale)
    return emu.emulate_qkv_heads(np, qkv, qw, kw, (hq, hkv), params, (dims, traditional), offset, dtype)


def assert_within(got, want, normed_max, dtype, factor=1.0, bound=BOUND):
    """|got - want| <= bound u m per (batch, head, position) row (m: that row's largest value)."""
    limit = factor * bound[dtype] * UNIT[dtype] * normed_max
    excess = np.abs(got - want) - limit
    assert excess.max() <= 0, f"{dtype}: off by {np.abs(got - want).max()} where the bound is {limit.min()}+"


def test_float64_reference_is_arrayq_qkv_heads_on_numpy():
    # anchors the reference's layout and pairing to arrayq's own definition (float64, NumPy)
    for case in CASES:
        b, length, hq, hkv, d, dims, traditional, offset = case
        qkv, qw, kw = inputs(case, "float32")
        with aq.default_backend("numpy"):
            got = aq.nn.qkv_heads(
                aq.asarray(qkv), hq, hkv, d, q_weight=aq.asarray(qw), k_weight=aq.asarray(kw), eps=1e-6,
                rope_dims=dims, traditional=traditional, base=1e6, offset=offset,
            )  # fmt: skip
        want = CHECK.reference(qkv, qw, kw, (hq, hkv), 1e-6, (dims, traditional, 1e6, 1.0), offset)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-12, atol=1e-12)


def test_hand_computed_row():
    # one q head of 32 ones, weight 2: the norm gives 2 everywhere (1 / sqrt(1 + eps) rounds to
    # 1 in bfloat16); at position 3, pair i = 0 turns by 3 radians: (2 cos 3 - 2 sin 3,
    # 2 sin 3 + 2 cos 3) = (-2.2622, -1.6977), bfloat16 -2.265625 and -1.6953125
    qkv = np.zeros((1, 1, 3 * 32))
    qkv[..., :32] = 1.0
    q, k, v = emulate(qkv, np.full(32, 2.0), np.ones(32), (1, 1, 1, 1, 32, 32, False, 3), "bfloat16")
    assert (q[0, 0, 0, 0], q[0, 0, 0, 16]) == (-2.265625, -1.6953125)
    assert not k.any() and not v.any()  # zeros stay zeros (rsqrt(eps) times 0)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("case", CASES)
def test_emulation_within_bound_of_float64(case, dtype):
    qkv, qw, kw = inputs(case, dtype)
    hq, hkv, dims, traditional, offset = case[2], case[3], case[5], case[6], case[7]
    got = emulate(qkv, qw, kw, case, dtype)
    want = CHECK.reference(qkv, qw, kw, (hq, hkv), 1e-6, (dims, traditional, 1e6, 1.0), offset)
    for g, w in zip(got[:2], want[:2], strict=True):
        assert_within(g, w, np.abs(w).max(-1, keepdims=True), dtype)
    np.testing.assert_array_equal(got[2], want[2])  # v is moved, not changed


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("case", CASES[:2])
def test_emulation_against_the_composed_path_on_mlx_cpu(case, dtype):
    # what the MLX backend falls back to (slices, reshapes, mx.fast.rms_norm, rope): each
    # within the bound of float64, so within twice the bound of each other; v exactly
    b, length, hq, hkv, d, dims, traditional, offset = case
    qkv, qw, kw = inputs(case, dtype)
    mxd = getattr(mx, dtype)
    with aq.default_backend("mlx", device="cpu"):
        got = aq.nn.qkv_heads(
            mx.array(qkv.astype(np.float32)).astype(mxd), hq, hkv, d, q_weight=mx.array(qw).astype(mxd),
            k_weight=mx.array(kw).astype(mxd), eps=1e-6, rope_dims=dims, traditional=traditional, base=1e6,
            offset=offset,
        )  # fmt: skip
    composed = [np.array(t.astype(mx.float32), dtype=np.float64) for t in got]
    emulated = emulate(qkv, qw, kw, case, dtype)
    for c, e in zip(composed[:2], emulated[:2], strict=True):
        assert_within(e, c, np.abs(c).max(-1, keepdims=True), dtype, factor=2.0)
    np.testing.assert_array_equal(composed[2], emulated[2])


def test_params_are_mlx_rope_floats_and_float64_pairs():
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    eps, log2_base, scale, base_hi, base_lo, scale_lo = launch.qkv_heads_params(1e-6, 1e6, 1.0)
    assert (eps, scale, base_hi, base_lo, scale_lo) == (f32(1e-6), 1.0, 1e6, 0.0, 0.0)
    assert log2_base == f32(math.log2(1e6))  # std::log2 of MLX's float32 base, rounded to float32
    p = launch.qkv_heads_params(1e-5, math.pi * 1e4, 1 / 3)
    assert abs((p[3] + p[4]) - math.pi * 1e4) <= math.pi * 1e4 * 2.0**-47
    assert abs((p[2] + p[5]) - 1 / 3) <= 2.0**-49
    assert all(v == f32(v) for v in p)  # each a float32


@pytest.mark.parametrize(
    "kw,fits",
    [
        (dict(), True),
        (dict(dtype="float16", weights=("float16", "float16")), True),
        (dict(dtype="float32", weights=("float32", "float32")), True),
        (dict(weights=("bfloat16", "float32")), False),  # MLX's rms_norm takes weights in x's dtype
        (dict(dtype="float64", weights=("float64", "float64")), False),
        (dict(head_dim=48), False),  # not a multiple of 32 (a lane's features)
        (dict(head_dim=288), False),
        (dict(size=0), False),
        (dict(size=2**31), False),
    ],
)
def test_kernel_takes_its_shapes_and_dtypes_only(kw, fits):
    args = {"dtype": "bfloat16", "weights": ("bfloat16", "bfloat16"), "head_dim": 128, "size": 4096, **kw}
    assert ck.qkv_heads_fits(args["dtype"], args["weights"], args["head_dim"], args["size"]) is fits


class _EmulatedKernels:
    """Stands in for CudaKernels: qkv_heads, add_rms_norm and swiglu_halves through the
    emulators, calls recorded (``calls``, ``norm_calls``, ``swiglu_calls``)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.norm_calls: list[tuple] = []
        self.swiglu_calls: list[tuple] = []

    def add_rms_norm(self, x, y, weight, eps):
        self.norm_calls.append((tuple(x.shape), weight is not None, eps))
        name = str(x.dtype).rsplit(".", 1)[-1]
        f64 = [None if a is None else np.array(a.astype(mx.float32), dtype=np.float64) for a in (x, y, weight)]
        out = emu.emulate_add_rms_norm(np, *f64, eps, ck.add_norm_block(int(x.shape[-1])), name)
        return tuple(mx.array(o.astype(np.float32)).astype(x.dtype) for o in out)

    def swiglu_halves(self, gate_up):
        self.swiglu_calls.append(tuple(gate_up.shape))
        name = str(gate_up.dtype).rsplit(".", 1)[-1]
        out = emu.emulate_swiglu_halves(np, np.array(gate_up.astype(mx.float32), dtype=np.float64), name)
        return mx.array(out.astype(np.float32)).astype(gate_up.dtype)

    def qkv_heads(self, qkv, q_weight, k_weight, heads, eps, rope, offset):
        self.calls.append((tuple(qkv.shape), heads, eps, rope, offset))
        name = str(qkv.dtype).rsplit(".", 1)[-1]
        f64 = [np.array(a.astype(mx.float32), dtype=np.float64) for a in (qkv, q_weight, k_weight)]
        pos = offset if isinstance(offset, int) else int(offset.item())
        params = launch.qkv_heads_params(eps, rope[2], rope[3])
        out = emu.emulate_qkv_heads(np, *f64, heads, params, rope[:2], pos, name)
        return tuple(mx.array(o.astype(np.float32)).astype(qkv.dtype) for o in out)


@pytest.fixture
def cuda_route(monkeypatch):
    return _route(monkeypatch)


def _route(monkeypatch):
    """The MLX backend as if MLX targeted a CUDA device, with the emulated qkv_heads kernel
    (quantized matmuls keep MLX's kernel); the test's ops still run on the CPU."""
    backend = aq.get_backend("mlx")
    kernels = _EmulatedKernels()
    monkeypatch.setattr(backend._devices, "targets_gpu", lambda device=None: True)
    monkeypatch.setattr(backend._cuda_route, "_available", True)
    monkeypatch.setattr(backend._cuda_route, "_kernels", kernels)
    monkeypatch.setattr(backend._cuda_route, "kernel_for", lambda *a, **k: None)
    monkeypatch.delenv(ck.ENV_VAR, raising=False)
    monkeypatch.delenv(ck.FUSED_OFF_VAR, raising=False)
    monkeypatch.setenv(ck.FUSED_ON_VAR, "1")
    return kernels


def _call(dtype="bfloat16", d=64, weight_dtype=None, offset=4):
    mxd = getattr(mx, dtype)
    qkv = mx.array(RNG.standard_normal((1, 2, 4 * d)).astype(np.float32)).astype(mxd)
    w = mx.ones((d,), dtype=getattr(mx, weight_dtype or dtype))
    return aq.nn.qkv_heads(qkv, 2, 1, d, q_weight=w, k_weight=w, eps=1e-6, rope_dims=d, base=1e6, offset=offset)


def test_mlx_backend_runs_the_kernel_on_cuda(cuda_route):
    q, k, v = _call()
    assert cuda_route.calls == [((1, 2, 256), (2, 1), 1e-6, (64, False, 1e6, 1.0), 4)]
    assert (q.shape, k.shape, v.shape) == ((1, 2, 2, 64), (1, 1, 2, 64), (1, 1, 2, 64))
    offset = mx.array(7, dtype=mx.int32)  # a position kept on the device goes as it is
    _call(offset=offset)
    assert cuda_route.calls[-1][-1] is offset


@pytest.mark.parametrize(
    "why",
    [
        "fused not asked for",
        "fused off",
        "kernels off",
        "weights in float32",
        "head_dim 48",
        "no cuda device",
        "cpu target",
    ],
)
def test_mlx_backend_composes_where_the_kernel_does_not_run(cuda_route, monkeypatch, why):
    backend = aq.get_backend("mlx")
    kw: dict = {}
    if why == "fused not asked for":  # (off by default until run on a GPU)
        monkeypatch.delenv(ck.FUSED_ON_VAR)
    elif why == "fused off":
        monkeypatch.setenv(ck.FUSED_OFF_VAR, "add_rms_norm, qkv_heads")
    elif why == "kernels off":
        monkeypatch.setenv(ck.ENV_VAR, "0")
    elif why == "weights in float32":
        kw = {"weight_dtype": "float32"}
    elif why == "head_dim 48":
        kw = {"d": 48}
    elif why == "no cuda device":
        monkeypatch.setattr(backend._cuda_route, "_available", False)
    else:
        monkeypatch.setattr(backend._devices, "targets_gpu", lambda device=None: False)
    q, k, v = _call(**kw)
    assert cuda_route.calls == []
    assert q.shape[1:] == (2, 2, kw.get("d", 64))


def test_model_layers_call_the_kernels(monkeypatch, tmp_path):
    # a fused qwen3 (the tiny preset, 2 layers) on the emulated kernels: qkv_heads and swiglu
    # once a layer, add_rms_norm after each attention and between layers (the last sum is a
    # plain add); hidden states as close to float32's as the composed ops' are (bfloat16 rounding
    # through two layers puts both ~4% from float32 here, and ~2% from each other)
    from arrayq import models

    models.make_checkpoint(tmp_path, "tiny")
    model = models.load(tmp_path, backend="mlx", device="cpu", dtype="bfloat16")
    ids = aq.asarray([[3, 1, 4]], dtype=aq.int32, like=aq.nn.parameters(model)[0])
    wide = np.array(models.load(tmp_path, backend="mlx", device="cpu", dtype="float32").hidden(ids))
    kernels = _route(monkeypatch)  # (the quantized matmuls then take their GPU path too)
    fused = np.array(model.hidden(ids).astype(mx.float32))
    monkeypatch.setenv(ck.FUSED_OFF_VAR, "qkv_heads,add_rms_norm,swiglu")
    composed = np.array(model.hidden(ids).astype(mx.float32))
    layers = len(model.layers)
    assert len(kernels.calls) == layers and len(kernels.norm_calls) == 2 * layers - 1
    assert kernels.swiglu_calls == [(1, 3, 2 * 384)] * layers
    assert all(call[1] == (4, 2) and call[3][:2] == (64, False) for call in kernels.calls)
    assert all(call == ((1, 3, 128), True, 1e-6) for call in kernels.norm_calls)
    assert np.isfinite(fused).all() and not np.array_equal(fused, composed)
    assert np.linalg.norm(fused - wide) <= 1.25 * np.linalg.norm(composed - wide)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
@pytest.mark.parametrize("shape", [(1, 1, 64), (2, 3, 1000), (1, 1, 4096), (3, 8192), (1, 1, 1024)])
@pytest.mark.parametrize("with_weight", [True, False])
def test_add_rms_norm_emulation(shape, dtype, with_weight):
    # the sum bit for bit MLX's add; the norm within NORM_BOUND u m of float64 (m: the row's
    # largest |normed|) and twice that of mx.fast.rms_norm on MLX's CPU; blocks of 32 to 1024
    # threads, rows that are not a multiple of the block
    mxd = getattr(mx, dtype)
    x, y = (mx.array(RNG.standard_normal(shape).astype(np.float32)).astype(mxd) for _ in "xy")
    w = mx.array(1 + 0.1 * RNG.standard_normal(shape[-1]).astype(np.float32)).astype(mxd) if with_weight else None
    f64 = [None if a is None else np.array(a.astype(mx.float32), dtype=np.float64) for a in (x, y, w)]
    s, normed = emu.emulate_add_rms_norm(np, *f64, 1e-6, ck.add_norm_block(shape[-1]), dtype)
    with aq.default_backend("mlx", device="cpu"):
        cs, cn = (np.array(a.astype(mx.float32), dtype=np.float64) for a in aq.nn.add_rms_norm(x, y, w, 1e-6))
    np.testing.assert_array_equal(s, cs)
    want = CHECK.reference_add_rms_norm(f64[0], f64[1], f64[2], 1e-6)[1]
    m = np.abs(want).max(-1, keepdims=True)
    assert_within(normed, want, m, dtype, bound=NORM_BOUND)
    assert_within(normed, cn, m, dtype, factor=2.0, bound=NORM_BOUND)


def test_add_rms_norm_runs_the_kernel_on_cuda(cuda_route, monkeypatch):
    x = mx.array(RNG.standard_normal((2, 1, 256)).astype(np.float32)).astype(mx.bfloat16)
    w = mx.ones((256,), dtype=mx.bfloat16)
    s, normed = aq.nn.add_rms_norm(x, x, w, 1e-5)
    aq.nn.add_rms_norm(x, x, None, 1e-5)
    assert cuda_route.norm_calls == [((2, 1, 256), True, 1e-5), ((2, 1, 256), False, 1e-5)]
    assert s.shape == normed.shape == x.shape and s.dtype == normed.dtype == mx.bfloat16
    aq.nn.add_rms_norm(x, x, w.astype(mx.float32), 1e-5)  # a wider weight: the composed ops
    big = mx.zeros((1, ck.ADD_NORM_MAX_D + 1), dtype=mx.bfloat16)
    aq.nn.add_rms_norm(big, big, None, 1e-5)
    monkeypatch.setenv(ck.FUSED_OFF_VAR, "add_rms_norm")
    aq.nn.add_rms_norm(x, x, w, 1e-5)
    assert len(cuda_route.norm_calls) == 2


@pytest.mark.parametrize("d,block", [(64, 32), (128, 32), (129, 64), (1024, 256), (4096, 1024), (16384, 1024)])
def test_add_norm_block(d, block):
    assert ck.add_norm_block(d) == block
    assert -(-d // block) <= 16  # values a thread holds in registers


def test_device_check_passes_on_the_emulated_kernels(monkeypatch, tmp_path, capsys):
    # the device script's part (a) end to end (its kernel calls, composed paths, float64
    # references and pass rules) on the tiny preset's shapes, with the emulations as kernels
    from arrayq import models

    models.make_checkpoint(tmp_path, "tiny")
    kernels = _route(monkeypatch)
    assert CHECK.check(str(tmp_path), batches=(1, 2), lengths=(1, 3))
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(DTYPES)]
    assert len(rows) == 3 * 2 * 2 * 2 and all(row.endswith(" ok") for row in rows), out
    assert len(kernels.calls) == 2 * 3 * 2 * 2 * 2  # the kernel, and the model's path to it
    assert CHECK.check_add_norm(str(tmp_path), rows=(1, 5))
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(DTYPES)]
    assert len(rows) == 3 * 2 * 2 and all(row.endswith(" ok") for row in rows)
    assert len(kernels.norm_calls) == 2 * 3 * 2 * 2
    assert CHECK.check_swiglu(str(tmp_path), rows=(1, 5))
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(DTYPES)]
    assert len(rows) == 3 * 2 and all(row.endswith(" ok") for row in rows)
    assert len(kernels.swiglu_calls) == 2 * 3 * 2


def test_device_script_times_each_variant_on_a_cpu(tmp_path, capsys):
    # the script's part (c) plumbing (worker processes, the switch, medians) on MLX's CPU,
    # where the kernels do not run: every variant gets a rate and the same greedy tokens
    from arrayq import models

    models.make_checkpoint(tmp_path, "tiny")
    argv = ["--model", str(tmp_path), "--device", "cpu", "--skip", "graph,mlx-lm", "--rounds", "1", "--repeat", "1"]
    assert CHECK.main([*argv, "--prompt-tokens", "4", "--decode-tokens", "3"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("decode tok/s (median)") :].splitlines()[1:]
    rows = [line.split() for line in table if line.startswith(("fused on ", "off: ")) and " / " not in line]
    assert [r[:2] for r in rows] == [["fused", "on"], ["off:", ",".join(CHECK.FUSED)]]
    assert all(float(r[2]) > 0 and "{'none'}" in " ".join(r) for r in rows)
    assert f"fused on / off: {','.join(CHECK.FUSED)}:" in out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 2 * 3072), (2, 3, 2 * 100), (5, 2 * 33)])
def test_swiglu_halves_emulation(shape, dtype):
    # within SWIGLU_BOUND u of each value of float64 silu(gate) * up, and within SWIGLU_BOUND
    # u m (m: the row's largest) of MLX's composed ops on its CPU; gates out to -120 (exp
    # overflows: silu is -0) and +120
    mxd = getattr(mx, dtype)
    a = 4 * RNG.standard_normal(shape)
    a[..., 0], a[..., 1] = -120.0, 120.0
    gate_up = mx.array(a.astype(np.float32)).astype(mxd)
    f64 = np.array(gate_up.astype(mx.float32), dtype=np.float64)
    got = emu.emulate_swiglu_halves(np, f64, dtype)
    want = CHECK.reference_swiglu(f64)
    # (absolute slack: float16's subnormal rounding, 2**-25; silu(-120) underflows to -0)
    tiny = 2.0**-25 if dtype == "float16" else np.finfo(np.float32).tiny
    assert (np.abs(got - want) <= CHECK.SWIGLU_BOUND[dtype] * UNIT[dtype] * np.abs(want) + tiny).all()
    with aq.default_backend("mlx", device="cpu"):
        composed = np.array(aq.nn.swiglu(gate_up).astype(mx.float32), dtype=np.float64)
    assert_within(got, composed, np.abs(want).max(-1, keepdims=True), dtype, bound=CHECK.SWIGLU_BOUND)


def test_swiglu_runs_the_kernel_on_cuda(cuda_route, monkeypatch):
    gate_up = mx.array(RNG.standard_normal((2, 1, 64)).astype(np.float32)).astype(mx.bfloat16)
    out = aq.nn.swiglu(gate_up)
    assert cuda_route.swiglu_calls == [(2, 1, 64)] and out.shape == (2, 1, 32) and out.dtype == mx.bfloat16
    monkeypatch.setenv(ck.FUSED_OFF_VAR, "swiglu")
    aq.nn.swiglu(gate_up)
    monkeypatch.delenv(ck.FUSED_OFF_VAR)
    aq.nn.swiglu(gate_up[..., :32], gate_up[..., 32:])  # two arrays: the composed ops
    assert len(cuda_route.swiglu_calls) == 1
