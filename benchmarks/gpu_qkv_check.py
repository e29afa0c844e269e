"""On MLX's CUDA device: arrayq's fused model-step kernels (qkv_heads, add_rms_norm, swiglu) checked
against the composed MLX ops, a decoded token's graph nodes with and without them, and
decode tok/s with and without them.

    python benchmarks/gpu_qkv_check.py --model DIR [--prompt-tokens 128] [--decode-tokens 64]
                                       [--repeat 3] [--rounds 2] [--off LIST] [--skip PARTS]

``--model``: a qwen3 checkpoint directory; where it holds no config.json the ``--preset``
(qwen3-0.6b) random 4-bit checkpoint is written there first. Needs mlx and mlx-cuda, NumPy,
and the repository and its ``backends/`` on PYTHONPATH (mlx-lm optional: its graph and
decode rate as a baseline). ``--skip`` takes a comma list of check, graph, time, mlx-lm.

* **check**: the checkpoint's q/k/v shapes (heads, head_dim, eps, rope base) at B = 1, 8 and
  L = 1, 32, in bfloat16, float16 and float32, at an int offset and a 0-d array offset: the
  kernel's q, k (in u m: u the dtype's unit roundoff 2**-8, 2**-11, 2**-24, m the row's
  largest value) against the composed path MLX runs without it
  (``arrayq.nn.qkv_heads_reference``: slices, reshapes, ``mx.fast.rms_norm``, rope) and
  against float64 on the host (:func:`reference`). Passes where the kernel is within
  :data:`BOUND` u m of float64 and 2 BOUND of the composed path, v is bit-equal, and
  ``arrayq.nn.qkv_heads`` (what the model calls) gives the kernel's bits. add_rms_norm alike
  at the checkpoint's hidden size, 1 to 256 rows, with the norm weight and without; swiglu
  at its intermediate size.
* **graph**: ``decode_graph.arrayq_counts`` (the compiled step, one layer) with the fused
  kernels on, and with each ``--off`` list off (``ARRAYQ_MLX_CUDA_FUSED_OFF``; default: all
  three; ``--off qkv_heads --off add_rms_norm --off swiglu`` measures each alone); mlx-lm's.
* **time**: decode tok/s of the compiled greedy decode (``arrayq.models.generate``: each token
  is the next step's input, a dependent chain; the next step is queued before the current
  token is read), each variant in a process of its own, alternating on, off, on, off
  (``--rounds``); per process a warm-up generation, then ``--repeat`` timed ones; medians.

Tolerance (:data:`BOUND`, in u m: u the dtype's unit roundoff, m the row's largest |value|
in float64): the kernel rounds x * r and then the weight's product to the dtype (a relative
error under 2 u), which the rotation carries by |cos| + |sin| <= sqrt(2) onto outputs that
may be sqrt(2) smaller than the normed row's largest value (4 u m), then rounds once more
(u m): 5 u m, and 6 for the 16-bit dtypes' float32 angles, which as in ``mx.fast.rope`` are
up to ~p 2**-22 radians off at position p (~0.5 u m of float16 at the check's 37 and 1000;
at 40000 a float16 row may be ~20 u m off float64, bfloat16 ~2.5, the composed path alike).
float32 adds rsqrtf's 2 ulp (a relative 6 u before the rotation: 12 u m) and the rounding
of cos, sin, two products and a sum (5 u m): 20 u m. add_rms_norm (:data:`NORM_BOUND`): the
sum rounded once as MLX's add rounds it (so bit-equal), r from the rounded sum, then x * r
and the weight's product rounded: under 4 u m, 5 with float32's sums; float32 adds rsqrtf's
2 ulp: 10 u m. swiglu (:data:`SWIGLU_BOUND`, in u of each value): float32 inside (expf,
a sum, a quotient, a product: a few 2**-24) and one rounding: 1.5 u, 8 u for float32;
the composed ops round sigmoid, g * sigmoid and the product with up to the dtype one by one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

UNIT = {"bfloat16": 2.0**-8, "float16": 2.0**-11, "float32": 2.0**-24}
#: the kernel's bound against float64, in u m (see the module docstring)
BOUND = {"bfloat16": 6.0, "float16": 6.0, "float32": 20.0}
#: add_rms_norm's bound against float64, in u m (see the module docstring)
NORM_BOUND = {"bfloat16": 5.0, "float16": 5.0, "float32": 10.0}
#: swiglu_halves' bound against float64, in u of each value (see the module docstring)
SWIGLU_BOUND = {"bfloat16": 1.5, "float16": 1.5, "float32": 8.0}
FUSED = ("qkv_heads", "add_rms_norm", "swiglu")  # arrayq's fused model-step kernels (arrayq_mlx.cuda.fused_enabled)


def reference(
    qkv: Any, q_weight: Any, k_weight: Any, heads: tuple[int, int], eps: float, rope: tuple, offset: int
) -> tuple[Any, Any, Any]:
    """q, k, v of ``arrayq.nn.qkv_heads`` in float64, written from the definition (not with
    arrayq's code): ``qkv`` (B, L, (HQ + 2 HKV) D) split into heads and moved to (B, heads,
    L, D), q's and k's RMS-normed with their weights, then their first ``dims`` features
    rotated as pairs (2i, 2i+1) (``traditional``) or (i, i + dims/2) by ``(offset + l)
    scale base**(-2i/dims)``. ``rope``: (dims, traditional, base, scale)."""
    (hq, hkv), (dims, traditional, base, scale) = heads, rope
    b, length, width = qkv.shape
    d = width // (hq + 2 * hkv)
    x = np.asarray(qkv, dtype=np.float64).reshape(b, length, hq + 2 * hkv, d).transpose(0, 2, 1, 3)
    angles = ((offset + np.arange(length)) * scale)[:, None] * base ** (-np.arange(0, dims, 2) / dims)
    cos, sin = np.cos(angles), np.sin(angles)

    def rotated(y: Any, w: Any) -> Any:
        y = y / np.sqrt((y**2).mean(-1, keepdims=True) + eps) * np.asarray(w, dtype=np.float64)
        half = dims // 2
        first, second = (slice(0, dims, 2), slice(1, dims, 2)) if traditional else (slice(0, half), slice(half, dims))
        out = y.copy()
        out[..., first] = y[..., first] * cos - y[..., second] * sin
        out[..., second] = y[..., first] * sin + y[..., second] * cos
        return out

    return rotated(x[:, :hq], q_weight), rotated(x[:, hq : hq + hkv], k_weight), x[:, hq + hkv :]


def reference_add_rms_norm(x: Any, y: Any, weight: Any, eps: float) -> tuple[Any, Any]:
    """``arrayq.nn.add_rms_norm`` in float64 from the definition: s = x + y and
    s / sqrt(mean(s**2) + eps) * weight (None: no weight)."""
    s = np.asarray(x, dtype=np.float64) + np.asarray(y, dtype=np.float64)
    normed = s / np.sqrt((s**2).mean(-1, keepdims=True) + eps)
    return s, normed if weight is None else normed * np.asarray(weight, dtype=np.float64)


def reference_swiglu(gate_up: Any) -> Any:
    """``arrayq.nn.swiglu`` of one array in float64 from the definition: silu(gate) * up,
    gate and up the halves of the last axis."""
    n = gate_up.shape[-1] // 2
    g, u = np.asarray(gate_up[..., :n], dtype=np.float64), np.asarray(gate_up[..., n:], dtype=np.float64)
    with np.errstate(over="ignore"):
        return g / (1 + np.exp(-g)) * u


def in_units(got: Any, want: Any, dtype: str) -> float:
    """The largest |got - want| in u m, m the largest |want| of each (batch, head, position) row."""
    m = np.maximum(np.abs(want).max(-1, keepdims=True), np.finfo(np.float64).tiny)
    return float((np.abs(got - want) / (UNIT[dtype] * m)).max())


def _setup(device: str = "gpu") -> Any:
    """mlx.core, with arrayq's MLX backend registered (from the source tree where arrayq is not
    installed) and ``device`` MLX's default; exits where "gpu" is asked and MLX has no CUDA
    device ("cpu": the script's plumbing on a machine without one; the kernel does not run)."""
    import mlx.core as mx

    import arrayq as aq

    try:
        aq.get_backend("mlx")
    except Exception:  # no installed entry point
        from arrayq_mlx import MLXBackend

        aq.register_backend("mlx", MLXBackend, replace=True)
    if device == "gpu" and not mx.cuda.is_available():
        sys.exit("MLX has no CUDA device here (needs mlx-cuda and an NVIDIA GPU)")
    mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)
    return mx


def check(model_dir: str, batches: tuple[int, ...] = (1, 8), lengths: tuple[int, ...] = (1, 32)) -> bool:
    """Part (a) on MLX's default device: prints one row per case; True where every case passes."""
    import mlx.core as mx

    import arrayq as aq
    from arrayq import models
    from arrayq._functional import rope_tables

    cfg = models.read_config(model_dir)
    heads, d = (cfg.num_attention_heads, cfg.num_key_value_heads), cfg.head_dim
    eps, base = cfg.rms_norm_eps, cfg.rope_theta
    rope = (d, False, base, 1.0)
    kernels = aq.get_backend("mlx")._cuda_route.kernels()
    rng = np.random.default_rng(0)
    print(f"\n(a) kernel vs composed path, heads {heads}, head_dim {d}, eps {eps}, base {base}; errors in u m")
    head = f"{'dtype':9} {'B':>2} {'L':>3} {'offset':>12} {'vs composed':>12} {'vs f64':>8}"
    print(head + f" {'composed vs f64':>16}  v  model  ok")
    ok_all = True
    for dtype in ("bfloat16", "float16", "float32"):
        t = getattr(mx, dtype)
        for b in batches:
            for length in lengths:
                for pos, as_array in ((37, False), (1000, True)):
                    width = (heads[0] + 2 * heads[1]) * d
                    qkv = mx.array(3 * rng.standard_normal((b, length, width)).astype(np.float32)).astype(t)
                    qw, kw = (mx.array(1 + 0.1 * rng.standard_normal(d).astype(np.float32)).astype(t) for _ in "qk")
                    offset = mx.array(pos, dtype=mx.int32) if as_array else pos
                    got = kernels.qkv_heads(qkv, qw, kw, heads, eps, rope, offset)
                    model_path = aq.nn.qkv_heads(
                        qkv, *heads, d, q_weight=qw, k_weight=kw, eps=eps, rope_dims=d, base=base, offset=offset
                    )
                    tables = None
                    if dtype == "float32":  # arrayq's reference rope (no native float32 rope): host tables
                        tables = tuple(mx.array(a) for a in rope_tables(d, base, 1.0, pos, length))
                    rope_args = {"traditional": False, "base": base, "scale": 1.0, "offset": offset, "tables": tables}
                    composed = aq.nn.qkv_heads_reference(qkv, *heads, d, qw, kw, eps, d, rope_args)
                    f64 = [np.array(a.astype(mx.float32), dtype=np.float64) for a in (*got, *composed, qkv, qw, kw)]
                    want = reference(f64[6], f64[7], f64[8], heads, eps, rope, pos)
                    vs_comp = max(in_units(f64[i], f64[i + 3], dtype) for i in (0, 1))
                    vs_f64 = max(in_units(f64[i], want[i], dtype) for i in (0, 1))
                    comp_f64 = max(in_units(f64[i + 3], want[i], dtype) for i in (0, 1))
                    v_same = bool(mx.array_equal(got[2], composed[2]).item())
                    same = all(bool(mx.array_equal(g, m).item()) for g, m in zip(got, model_path, strict=True))
                    ok = vs_f64 <= BOUND[dtype] and vs_comp <= 2 * BOUND[dtype] and v_same and same
                    ok_all &= ok
                    where = f"{pos} {'array' if as_array else 'int'}"
                    print(
                        f"{dtype:9} {b:>2} {length:>3} {where:>12} {vs_comp:12.3f} {vs_f64:8.3f} {comp_f64:16.3f}"
                        f"  {'=' if v_same else 'X'}  {'=' if same else 'X':>5}  {'ok' if ok else 'FAIL'}"
                    )
    print(f"bound: {BOUND} u m against float64, twice that against the composed path")
    return ok_all


def check_add_norm(model_dir: str, rows: tuple[int, ...] = (1, 8, 32, 256)) -> bool:
    """Part (a) for add_rms_norm on MLX's default device: the kernel's sum against MLX's add
    (bit for bit) and its norm against the composed ``mx.fast.rms_norm`` and float64, at the
    checkpoint's hidden size, with the norm weight and without; True where all pass."""
    import mlx.core as mx

    import arrayq as aq
    from arrayq import models

    d, eps = models.read_config(model_dir).hidden_size, 1e-6
    kernels = aq.get_backend("mlx")._cuda_route.kernels()
    rng = np.random.default_rng(1)
    print(f"\n(a) add_rms_norm, hidden {d}: sum vs MLX's add; norm in u m vs composed, vs float64")
    ok_all = True
    for dtype in ("bfloat16", "float16", "float32"):
        t = getattr(mx, dtype)
        for n in rows:
            for with_weight in (True, False):
                x, y = (mx.array(rng.standard_normal((1, n, d)).astype(np.float32)).astype(t) for _ in "xy")
                w = mx.array(1 + 0.1 * rng.standard_normal(d).astype(np.float32)).astype(t) if with_weight else None
                got = kernels.add_rms_norm(x, y, w, eps)
                model_path = aq.nn.add_rms_norm(x, y, w, eps)
                composed = (mx.add(x, y), aq.nn.rms_norm(mx.add(x, y), w, eps))
                f64 = [f64_or_none(a) for a in (*got, *composed)]
                want = reference_add_rms_norm(*(f64_or_none(a) for a in (x, y, w)), eps)
                sum_same = bool(np.array_equal(f64[0], f64[2]))
                vs_comp, vs_f64 = in_units(f64[1], f64[3], dtype), in_units(f64[1], want[1], dtype)
                same = all(bool(mx.array_equal(g, m).item()) for g, m in zip(got, model_path, strict=True))
                ok = sum_same and same and vs_f64 <= NORM_BOUND[dtype] and vs_comp <= 2 * NORM_BOUND[dtype]
                ok_all &= ok
                print(
                    f"{dtype:9} rows {n:>4} {'weight' if with_weight else 'none':>6}  sum {'=' if sum_same else 'X'}"
                    f"  vs composed {vs_comp:6.3f}  vs f64 {vs_f64:6.3f}  model {'=' if same else 'X'}"
                    f"  {'ok' if ok else 'FAIL'}"
                )
    print(f"bound: {NORM_BOUND} u m against float64, twice that against the composed path")
    return ok_all


def check_swiglu(model_dir: str, rows: tuple[int, ...] = (1, 8, 32, 256)) -> bool:
    """Part (a) for swiglu_halves on MLX's default device: the kernel against float64 (each
    value within SWIGLU_BOUND u of it) and the composed ops (4 SWIGLU_BOUND u m: they round
    three times), at the checkpoint's intermediate size; True where all pass."""
    import mlx.core as mx

    import arrayq as aq
    from arrayq import models

    n = models.read_config(model_dir).intermediate_size
    kernels = aq.get_backend("mlx")._cuda_route.kernels()
    rng = np.random.default_rng(2)
    print(f"\n(a) swiglu of the gate/up halves, intermediate {n}: in u of each value vs f64, u m vs composed")
    ok_all = True
    for dtype in ("bfloat16", "float16", "float32"):
        for r in rows:
            gate_up = mx.array(4 * rng.standard_normal((1, r, 2 * n)).astype(np.float32)).astype(getattr(mx, dtype))
            got = kernels.swiglu_halves(gate_up)
            same = bool(mx.array_equal(got, aq.nn.swiglu(gate_up)).item())
            composed = aq.nn.swiglu(gate_up[..., :n], gate_up[..., n:])  # (two arrays: the composed ops)
            f64 = [f64_or_none(a) for a in (got, composed, gate_up)]
            want = reference_swiglu(f64[2])
            slack = 2.0**-25 if dtype == "float16" else np.finfo(np.float32).tiny  # (float16 subnormals)
            vs_f64 = float((np.abs(f64[0] - want) / (UNIT[dtype] * np.abs(want) + slack)).max())
            vs_comp = in_units(f64[0], f64[1], dtype)
            ok = same and vs_f64 <= SWIGLU_BOUND[dtype] and vs_comp <= 4 * SWIGLU_BOUND[dtype]
            ok_all &= ok
            print(
                f"{dtype:9} rows {r:>4}  vs f64 {vs_f64:6.3f}  vs composed {vs_comp:6.3f}"
                f"  model {'=' if same else 'X'}  {'ok' if ok else 'FAIL'}"
            )
    print(f"bound: {SWIGLU_BOUND} u against float64, 4 times that (u m) against the composed path")
    return ok_all


def f64_or_none(a: Any) -> Any:
    """An MLX array's values as a float64 NumPy array (None stays None)."""
    import mlx.core as mx

    return None if a is None else np.array(a.astype(mx.float32), dtype=np.float64)


def graph_worker(model_dir: str, prompt_tokens: int, dtype: str) -> dict[str, Any]:
    """Part (b) in this process (its environment says which kernels are off)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import decode_graph

    from arrayq import models

    model = models.load(model_dir, backend="mlx", dtype=dtype)
    prompt = list(range(1, prompt_tokens + 1))
    return {name: dict(c) for name, c in decode_graph.arrayq_counts(model, prompt).items()}


def mlx_lm_graph_worker(model_dir: str, prompt_tokens: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import decode_graph

    counts = decode_graph.mlx_lm_counts(model_dir, list(range(1, prompt_tokens + 1)))
    return {name: dict(c) for name, c in counts.items()}


def time_worker(model_dir: str, prompt_tokens: int, decode_tokens: int, repeat: int, dtype: str) -> dict[str, Any]:
    """Part (c) in this process: prefill and decode tok/s of each timed generation."""
    import arrayq as aq
    from arrayq import models, nn
    from arrayq.bench._generate import prompt_ids

    model = models.load(model_dir, backend="mlx", dtype=dtype)
    aq.eval(nn.parameters(model))
    prompt = prompt_ids(prompt_tokens, model.config.vocab_size)
    list(models.generate(model, prompt[::-1], decode_tokens))  # warm-up: compiles and traces
    runs = []
    for _ in range(repeat):
        stats = models.GenerationStats()
        tokens = list(models.generate(model, prompt, decode_tokens, stats=stats))
        runs.append((stats.prefill_tps, stats.decode_tps))
    kernels = aq.get_backend("mlx")._cuda_route._kernels
    fused = (("qkv_heads", "_qkv"), ("add_rms_norm", "_add_norm"), ("swiglu", "_swiglu"))  # (built on first use)
    built = [name for name, attr in fused if getattr(kernels, attr, None) is not None]
    return {"prefill": [r[0] for r in runs], "decode": [r[1] for r in runs], "tokens": tokens[:8], "kernels": built}


def mlx_lm_time_worker(model_dir: str, prompt_tokens: int, decode_tokens: int, repeat: int) -> dict[str, Any]:
    from arrayq.bench._generate import run_mlx_lm

    row = run_mlx_lm(model_dir, prompt_tokens, decode_tokens, repeat)
    return {"prefill": row["prefill_runs"], "decode": row["decode_runs"], "tokens": row["tokens"]}


def _worker(args: argparse.Namespace, part: str, off: str | None) -> dict[str, Any] | None:
    """``part`` in a process of its own with ``ARRAYQ_MLX_CUDA_FUSED_OFF=off``; its JSON, or None."""
    cmd = [sys.executable, __file__, "--worker", part, "--model", args.model, "--dtype", args.dtype]
    cmd += ["--prompt-tokens", str(args.prompt_tokens), "--decode-tokens", str(args.decode_tokens)]
    cmd += ["--repeat", str(args.repeat), "--device", args.device]
    env = dict(os.environ)
    env.pop("ARRAYQ_MLX_CUDA_FUSED_OFF", None)
    env["ARRAYQ_MLX_CUDA_FUSED"] = "1"  # (off by default until run on a GPU)
    if off:
        env["ARRAYQ_MLX_CUDA_FUSED_OFF"] = off
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.worker_timeout)
    except subprocess.TimeoutExpired:
        print(f"{part} (off: {off or 'none'}) took over {args.worker_timeout} s: stopped", file=sys.stderr)
        return None
    if proc.returncode != 0:
        print(f"{part} (off: {off or 'none'}) failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
        return None
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def _label(off: str) -> str:
    return "fused on" if not off else f"off: {off}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", required=True, help="qwen3 checkpoint directory (written with --preset if empty)")
    parser.add_argument("--preset", default="qwen3-0.6b")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--decode-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="timed generations per process (default 3)")
    parser.add_argument("--rounds", type=int, default=2, help="processes per variant, alternating (default 2)")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="gpu", help="gpu (default), or cpu to try the script without a GPU")
    parser.add_argument(
        "--off", action="append", help=f"a variant with these fused kernels off (comma list; default {','.join(FUSED)})"
    )
    parser.add_argument("--worker-timeout", type=float, default=300, help="seconds a worker process may take")
    parser.add_argument("--skip", default="", help="comma list of parts to skip: check, graph, time, mlx-lm")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _setup(args.device)
        run = {
            "graph": lambda: graph_worker(args.model, args.prompt_tokens, args.dtype),
            "mlx-lm-graph": lambda: mlx_lm_graph_worker(args.model, args.prompt_tokens),
            "time": lambda: time_worker(args.model, args.prompt_tokens, args.decode_tokens, args.repeat, args.dtype),
            "mlx-lm-time": lambda: mlx_lm_time_worker(args.model, args.prompt_tokens, args.decode_tokens, args.repeat),
        }[args.worker]
        print(json.dumps(run()))
        return 0
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    variants = [""] + (args.off or [",".join(FUSED)])
    if not (Path(args.model) / "config.json").is_file():
        from arrayq.models import make_checkpoint

        print(f"writing the {args.preset} checkpoint to {args.model} ...", file=sys.stderr)
        make_checkpoint(args.model, args.preset)
    os.environ.pop("ARRAYQ_MLX_CUDA_FUSED_OFF", None)  # (the check compares the model's path with the kernel)
    os.environ["ARRAYQ_MLX_CUDA_FUSED"] = "1"
    mx = _setup(args.device)
    info = mx.device_info() if args.device == "gpu" else {"device_name": "cpu"}
    print(f"device: {info.get('device_name', info.get('architecture', '?'))}; mlx {mx.__version__}; {time.ctime()}")
    ok = True
    if args.device != "gpu":
        skip.add("check")  # (the kernels run on MLX's CUDA device only)
    if "check" not in skip:
        for part in (check, check_add_norm, check_swiglu):
            try:
                ok = part(args.model) and ok
            except Exception as e:  # (a kernel that does not compile or launch: say so, go on)
                print(f"\n{part.__name__} FAILED with {type(e).__name__}: {e}", flush=True)
                ok = False
    if "graph" not in skip:
        print(f"\n(b) nodes of one decoded token ({args.prompt_tokens}-token prompt, {args.dtype})")
        rows = {}
        for off in variants:
            got = _worker(args, "graph", off)
            for name, c in (got or {}).items():
                rows[f"{name} ({_label(off)})"] = c
        if "mlx-lm" not in skip:
            rows.update(_worker(args, "mlx-lm-graph", None) or {})
        for name, c in rows.items():
            ops = ", ".join(f"{op} {n}" for op, n in sorted(c.items(), key=lambda kv: -kv[1]))
            print(f"{name:34} {sum(c.values()):5}: {ops}")
    if "time" not in skip:
        print(f"\n(c) decode, {args.prompt_tokens}-token prompt, {args.decode_tokens} new tokens, greedy, compiled")
        runs: dict[str, list[dict[str, Any]]] = {}
        parts = [("time", off) for off in variants] + ([] if "mlx-lm" in skip else [("mlx-lm-time", None)])
        for _ in range(args.rounds):
            for part, off in parts:
                name = "mlx-lm" if part == "mlx-lm-time" else _label(off or "")
                got = _worker(args, part, off)
                if got is not None:
                    runs.setdefault(name, []).append(got)
                    print(f"  {name:28} decode {' '.join(f'{r:7.1f}' for r in got['decode'])} tok/s", flush=True)
        print(f"\n{'variant':30} {'decode tok/s (median)':>22} {'prefill tok/s':>14}  first tokens  kernels built")
        medians = {}
        for name, rs in runs.items():
            medians[name] = statistics.median(r for got in rs for r in got["decode"])
            prefill = statistics.median(r for got in rs for r in got["prefill"])
            ran = {",".join(got.get("kernels", ["-"])) or "none" for got in rs}
            print(f"{name:30} {medians[name]:22.1f} {prefill:14.1f}  {rs[0]['tokens'][:6]}  {ran}")
        base = medians.get("fused on")
        for name, m in medians.items():
            if base and name != "fused on":
                print(f"fused on / {name}: {base / m:.3f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
