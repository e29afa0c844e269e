"""Token generation with the qwen3-0.6b preset: arrayq on NumPy, arrayq on MLX, and mlx-lm
on the very same checkpoint (when installed), side by side in one run.

    python benchmarks/bench_generate.py [--model DIR] [--prompt-tokens 64] [--decode-tokens 16]
                                        [--engines numpy,numpy-int8,mlx,jax,mlx-lm] [--mlx-lm-prompt-tokens 16]
                                        [--repeat 2] [--threads T] [--llama-bench PATH]
                                        [--device cpu|gpu] [--dtype float32|float16|bfloat16]

Engines: ``numpy``, ``mlx`` and ``jax`` are arrayq on that backend (decoding through a compiled
step: MLX's and JAX's compilers, NumPy's recorded plan); ``numpy-eager``, ``mlx-eager`` and
``jax-eager`` are arrayq on that backend without compiling;
``numpy-int8`` is the NumPy backend with 8-bit activations (arrayq_numpy.activations: its
repacked kernels); ``mlx-lm`` is mlx-lm on the same checkpoint. ``--llama-bench PATH`` (with
``--model`` a GGUF file) also runs llama.cpp's llama-bench on that file with the same
prompt length, new tokens, repetitions and threads, and prints a side-by-side table with
ratios (``arrayq/bench/_llama.py``).

On machines that set OPENBLAS_CORETYPE (an old-OpenBLAS workaround that slows current
NumPy), run it with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`.

Without --model it writes the qwen3-0.6b random-weight checkpoint (the exact on-disk
format of mlx-community/Qwen3-0.6B-4bit) to $ARRAYQ_CACHE or ~/.cache/arrayq first.
Each engine runs in its own process (so peak RSS is its own): a warm-up generation, then
``--repeat`` timed ones (greedy, EOS ignored; the best prefill and decode rates are kept,
since other processes on the machine add noise), then for arrayq an instrumented decode that times every
``arrayq.linalg.quantized_matmul`` call (inputs evaluated before the clock starts, output
evaluated before it stops, so lazy MLX is measured too): the rest of a decoded token's time
is the framework overhead (attention, norms, RoPE, embedding, sampling, Python).
``--device gpu`` puts every arrayq engine's model on its backend's GPU (JAX: the CUDA device
of a CUDA jaxlib; MLX: Metal or CUDA), with bfloat16 activations unless ``--dtype`` says
otherwise; the memory floor and its shares stay the CPU copy's, so read them for CPU runs only.

Memory floor: a decoded token must read every weight once (the tied head reads the whole
embedding table); the floor is weight bytes per token over the copy bandwidth of a large
single-thread ``numpy.copyto`` measured in this run, as bytes copied per second (N / t).
That is the native-kernels issue's definition: its 26.9 GB/s copy bandwidth and 375 MB a
token give its ~71.5 tok/s floor, at which llama.cpp decodes (~100%). Counting the copy's
read and write traffic (2N / t) doubles the bandwidth; the script prints that share too.
mlx-lm's prefill is measured on a shorter prompt by default (it runs ~0.3 tok/s here; its
rate does not improve with length), which flatters it if anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def prompt_ids(n: int, vocab: int) -> list[int]:
    return [(i * 7919) % vocab for i in range(1, n + 1)]


# ---------------------------------------------------------------------- workers (one process each)


def run_arrayq(
    engine: str,
    model_dir: str,
    n_prompt: int,
    n_decode: int,
    repeat: int,
    dtype: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """``engine``: a backend name, or ``numpy-int8`` (the NumPy backend with its native
    decode kernel on 8-bit activations). ``device``: the backend's device name ("cpu",
    "gpu"; None: its default). ``dtype``: the activations' dtype (None: what ``arrayq
    generate`` takes on that device)."""
    backend, _, variant = engine.partition("-")
    if variant == "int8":
        import arrayq_numpy

        with arrayq_numpy.activations("int8"):
            row = _run_arrayq(backend, model_dir, n_prompt, n_decode, repeat, dtype, device)
        return {**row, "engine": f"arrayq {backend} int8"}
    if variant == "eager":
        row = _run_arrayq(backend, model_dir, n_prompt, n_decode, repeat, dtype, device, compile=False)
        return {**row, "engine": f"arrayq {backend} eager"}
    return _run_arrayq(backend, model_dir, n_prompt, n_decode, repeat, dtype, device)


def _run_arrayq(
    backend: str,
    model_dir: str,
    n_prompt: int,
    n_decode: int,
    repeat: int,
    dtype: str | None,
    device: str | None,
    compile: bool | None = None,  # noqa: A002
) -> dict[str, Any]:
    """One engine's row; ``compile``: generate's (None: compiled where the backend can)."""
    import arrayq as aq
    import arrayq.linalg
    from arrayq import models, nn
    from arrayq.models._host import peak_memory_bytes

    device = device or aq.get_backend(backend).devices()[0]
    dtype = dtype or models.default_dtype(device)
    t0 = time.perf_counter()
    model = models.load(model_dir, backend=backend, device=device, dtype=dtype)
    aq.eval(nn.parameters(model))
    load_s = time.perf_counter() - t0
    vocab = model.config.vocab_size
    # warm-up: as long as a timed run, so a compiled decode step is traced for its windows
    list(models.generate(model, prompt_ids(n_prompt, vocab)[::-1], n_decode, compile=compile))
    runs = []
    for _ in range(repeat):
        stats = models.GenerationStats()
        tokens = list(models.generate(model, prompt_ids(n_prompt, vocab), n_decode, stats=stats, compile=compile))
        runs.append(stats)

    # instrumented decode: time spent inside quantized_matmul vs the whole token
    real = arrayq.linalg.quantized_matmul
    inside: list[float] = [0.0, 0]

    def timed(x: Any, w: Any, *args: Any, **kw: Any) -> Any:
        aq.eval(x)
        start = time.perf_counter()
        y = real(x, w, *args, **kw)
        aq.eval(y)
        inside[0] += time.perf_counter() - start
        inside[1] += 1
        return y

    arrayq.linalg.quantized_matmul = timed
    try:
        probe = models.GenerationStats()
        n_probe = min(n_decode, 8)
        # (eager: a compiled step cannot be timed call by call; the overhead is eager decoding's)
        for i, _ in enumerate(models.generate(model, prompt_ids(4, vocab), n_probe, stats=probe, compile=False)):
            if i == 0:  # count decode steps only
                inside[:] = [0.0, 0]
                probe.decode_seconds = 0.0
    finally:
        arrayq.linalg.quantized_matmul = real
    overhead = 1 - inside[0] / probe.decode_seconds if probe.decode_seconds else float("nan")
    return {
        "engine": f"arrayq {backend}",
        "dtype": dtype,
        "device": str(device),
        "prompt_tokens": stats.prompt_tokens,
        "prefill_tps": max(r.prefill_tps for r in runs),
        "decode_tokens": stats.decode_tokens,
        "decode_tps": max(r.decode_tps for r in runs),
        "overhead": overhead,
        "qmm_calls_per_token": inside[1] / max(probe.decode_tokens, 1),
        "peak_rss": peak_memory_bytes(),
        "load_s": load_s,
        "tokens": tokens[:6],
        "weight_bytes_per_token": model.weight_bytes(per_token=True),
        "params": model.config.num_parameters(),
    }


def run_mlx_lm(model_dir: str, n_prompt: int, n_decode: int, repeat: int) -> dict[str, Any]:
    import mlx.core as mx
    from mlx_lm.generate import generate_step
    from mlx_lm.utils import load_model

    from arrayq.models._host import peak_memory_bytes

    t0 = time.perf_counter()
    model, config = load_model(Path(model_dir))
    load_s = time.perf_counter() - t0
    greedy = lambda logits: mx.argmax(logits, axis=-1)  # noqa: E731

    def run(ids: list[int], n: int) -> tuple[list[int], list[float], float]:
        start = time.perf_counter()
        tokens, times = [], []
        for token, _ in generate_step(mx.array(ids), model, max_tokens=n, sampler=greedy):
            tokens.append(int(token))
            times.append(time.perf_counter())
        return tokens, times, start

    run(prompt_ids(2, config["vocab_size"])[::-1], 2)  # warm-up
    prefill, decode = [], []
    for _ in range(repeat):
        tokens, times, start = run(prompt_ids(n_prompt, config["vocab_size"]), n_decode)
        prefill.append(n_prompt / (times[0] - start))
        decode.append((len(tokens) - 1) / (times[-1] - times[0]) if len(tokens) > 1 else 0.0)
    return {
        "engine": "mlx-lm " + __import__("mlx_lm").__version__,
        "prompt_tokens": n_prompt,
        "prefill_tps": max(prefill),
        "decode_tokens": len(tokens) - 1,
        "decode_tps": max(decode),
        "prefill_runs": prefill,
        "decode_runs": decode,
        "overhead": None,
        "peak_rss": peak_memory_bytes(),
        "load_s": load_s,
        "tokens": tokens[:6],
    }


# ---------------------------------------------------------------------- the parent


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _worker(args: argparse.Namespace, engine: str, n_prompt: int) -> dict[str, Any] | None:
    """``engine`` measured in a process of its own (:mod:`arrayq.bench._worker`); its row, or
    None (with its error on stderr) where it failed."""
    cmd = [
        sys.executable,
        "-m",
        "arrayq.bench._worker",
        engine,
        "--model",
        str(Path(args.model).resolve()),
        "--prompt-tokens",
        str(n_prompt),
        "--decode-tokens",
        str(args.decode_tokens),
        "--repeat",
        str(args.repeat),
        *(["--dtype", args.dtype] if args.dtype else []),
        *(["--device", args.device] if getattr(args, "device", None) else []),
    ]
    print(f"running {engine} ...", file=sys.stderr, flush=True)
    # (the parent stays small: a child's maxrss starts from its parent's at exec)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"{engine} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
        return None
    row: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return row


def run_engines(
    model: str | Path,
    engines: list[str],
    prompt_tokens: int = 64,
    decode_tokens: int = 16,
    repeat: int = 2,
    mlx_lm_prompt_tokens: int = 16,
    dtype: str | None = None,
    device: str | None = None,
) -> list[dict[str, Any]]:
    """One row per engine ("numpy", "numpy-int8", "mlx", "mlx-eager", "jax", "jax-eager", "mlx-lm"), each
    in its own process; an engine whose library is missing is skipped with a note on stderr. ``device``:
    arrayq's device ("cpu", "gpu"; None: each backend's default; mlx-lm runs on MLX's default).
    ``dtype``: arrayq's activations (None: float32 on a CPU, bfloat16 on a GPU; mlx-lm computes in the
    checkpoint's). (``arrayq bench --only generate`` calls this.)"""
    args = argparse.Namespace(model=model, decode_tokens=decode_tokens, repeat=repeat, dtype=dtype, device=device)
    rows: list[dict[str, Any]] = []
    for engine in engines:
        if engine == "mlx-lm" and not (_available("mlx_lm") and _available("mlx")):
            print("mlx-lm is not installed: skipped (pip install mlx-lm)", file=sys.stderr)
            continue
        if engine.partition("-")[0] in ("mlx", "jax") and not _available(engine.partition("-")[0]):
            print(f"{engine} is not installed: skipped", file=sys.stderr)
            continue
        row = _worker(args, engine, mlx_lm_prompt_tokens if engine == "mlx-lm" else prompt_tokens)
        if row is not None:
            rows.append(row)
    return rows


def generate(quick: bool = False) -> list[dict[str, Any]]:
    """Token generation per engine (arrayq on NumPy, arrayq on MLX, mlx-lm when installed),
    each engine in its own process (:func:`run_engines`), as ``arrayq bench`` rows: prefill
    and decode tokens per second. ``quick``: the tiny preset, a 16-token prompt, 8 decoded
    tokens, one timed run, no mlx-lm; else the qwen3-0.6b preset with :func:`main`'s
    defaults. The preset's checkpoint is written to the cache first where it is missing."""
    from arrayq.models import make_checkpoint
    from arrayq.models._host import cache_dir

    preset = "tiny" if quick else "qwen3-0.6b"
    model = cache_dir() / preset
    if not (model / "config.json").is_file():
        print(f"writing the {preset} checkpoint to {model} ...", file=sys.stderr)
        make_checkpoint(model, preset)
    kw: dict[str, Any]
    if quick:
        engines, kw = ["numpy", "mlx"], {"prompt_tokens": 16, "decode_tokens": 8, "repeat": 1}
    else:
        engines, kw = ["numpy", "mlx", "mlx-lm"], {}
    rows = []
    for r in run_engines(model, engines, **kw):
        for phase in ("prefill", "decode"):
            rows.append(
                {
                    "bench": "generate",
                    "case": f"{phase}, {preset}",
                    "name": r["engine"],
                    "tokens_per_s": r[f"{phase}_tps"],
                    "tokens": r["prompt_tokens" if phase == "prefill" else "decode_tokens"],
                    "peak_rss_MiB": r["peak_rss"] / 2**20,
                }
            )
    return rows


def _mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"


def main(argv: list[str] | None = None) -> int:
    """``python benchmarks/bench_generate.py``: every engine's row, as a table against mlx-lm
    and decode's memory floor."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint directory (default: the qwen3-0.6b preset in the cache)")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--decode-tokens", type=int, default=16)
    parser.add_argument(
        "--mlx-lm-prompt-tokens",
        type=int,
        default=16,
        help="prompt length for mlx-lm (default 16: its prefill runs ~0.3 tok/s here)",
    )
    parser.add_argument("--engines", default="numpy,numpy-int8,mlx,mlx-lm")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per engine; the best is kept (default 2)")
    parser.add_argument("--dtype", help="arrayq's activations (default: float32 on a CPU, bfloat16 on a GPU)")
    parser.add_argument(
        "--device", help="arrayq's device for every arrayq engine, e.g. cpu or gpu (default: each backend's default)"
    )
    parser.add_argument(
        "--llama-bench", metavar="PATH", help="also run llama.cpp's llama-bench on --model (a GGUF file)"
    )
    parser.add_argument(
        "--threads", type=int, help="threads for every engine (sets ARRAYQ_NUM_THREADS; llama-bench -t)"
    )
    args = parser.parse_args(argv)
    if args.llama_bench and not (args.model and str(args.model).endswith(".gguf")):
        parser.error("--llama-bench needs --model FILE.gguf: llama.cpp reads GGUF files only")
    if args.threads is not None:
        os.environ["ARRAYQ_NUM_THREADS"] = str(args.threads)  # the engines' processes inherit it

    from arrayq import models
    from arrayq.models._host import cache_dir

    if args.model is None:
        args.model = cache_dir() / "qwen3-0.6b"
        if not (args.model / "config.json").is_file():
            print(f"writing the qwen3-0.6b checkpoint to {args.model} ...", file=sys.stderr)
            models.make_checkpoint(args.model, "qwen3-0.6b")
    config = models.read_config(args.model)
    # in its own process: its 1 GiB must not count in the others' peak RSS
    measured = _worker(args, "bandwidth", 0)
    if measured is None:
        return 1
    bandwidth = measured["bandwidth"]

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    rows = run_engines(
        args.model,
        engines,
        args.prompt_tokens,
        args.decode_tokens,
        args.repeat,
        args.mlx_lm_prompt_tokens,
        args.dtype,
        args.device,
    )
    if not rows:
        return 1

    # (nan where no arrayq engine ran: mlx-lm alone)
    per_token = next((r["weight_bytes_per_token"] for r in rows if "weight_bytes_per_token" in r), float("nan"))
    copied = bandwidth / 2  # the worker measures read + write traffic; bytes copied per second
    floor_tps = copied / per_token if per_token else float("nan")
    q = config.quantization or {}
    print(
        f"\nqwen3 checkpoint {args.model}: {config.num_parameters() / 1e6:.0f}M parameters, "
        f"{q.get('bits', 16)}-bit group {q.get('group_size', '-')}, {config.num_hidden_layers} layers, "
        f"vocab {config.vocab_size}"
    )
    print(
        f"weights read per decoded token: {per_token / 1e6:.1f} MB; copy bandwidth (np.copyto, one thread, "
        f"bytes copied): {copied / 1e9:.1f} GB/s -> memory floor {1000 / floor_tps:.1f} ms/token "
        f"= {floor_tps:.1f} tok/s"
    )
    # the same copy counted as read + write traffic (2N / t): a floor twice as high
    shares = ", ".join(f"{r['engine']} {r['decode_tps'] / (2 * floor_tps):.0%}" for r in rows)
    print(
        f"(counting the copy's read and write traffic, {bandwidth / 1e9:.1f} GB/s: floor {2 * floor_tps:.1f} tok/s; "
        f"decode at {shares} of it)\n"
    )
    ref = next((r for r in rows if r["engine"].startswith("mlx-lm")), None)
    head = (
        f"{'engine':<16}{'prompt':>7}{'prefill tok/s':>15}{'decode tok/s':>14}{'vs mlx-lm prefill':>19}"
        f"{'vs mlx-lm decode':>18}{'% of floor':>12}{'overhead':>10}{'peak RSS':>10}  first tokens"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        pre = f"{r['prefill_tps'] / ref['prefill_tps']:.1f}x" if ref else "-"
        dec = f"{r['decode_tps'] / ref['decode_tps']:.1f}x" if ref else "-"
        over = f"{r['overhead']:.1%}" if r.get("overhead") is not None else "-"
        print(
            f"{r['engine']:<16}{r['prompt_tokens']:>7}{r['prefill_tps']:>15.2f}{r['decode_tps']:>14.2f}{pre:>19}"
            f"{dec:>18}{r['decode_tps'] / floor_tps:>12.1%}{over:>10}{_mib(r['peak_rss']):>10}  "
            f"{' '.join(map(str, r['tokens']))}"
        )
    print(
        f"\nbest of {args.repeat} timed runs after a warm-up; decode: {args.decode_tokens} tokens after the first; "
        "overhead: share of a decoded token's time outside quantized_matmul (instrumented run, up to 8 tokens);"
    )
    print("peak RSS: getrusage maxrss of the engine's own process (weights memory-mapped on NumPy).")
    placed = ", ".join(f"{r['engine']} on {r['device']} in {r['dtype']}" for r in rows if "device" in r)
    if placed:
        print(f"devices and activations: {placed}.")
    if ref:
        print("mlx-lm's first tokens come from its own (shorter) prompt, computed in bfloat16 (arrayq: float32).")
    if args.llama_bench:
        import arrayq as aq

        from ._llama import llama_bench, side_by_side

        threads = args.threads or os.cpu_count() or 1
        llama = llama_bench(
            args.llama_bench, str(args.model), args.prompt_tokens, args.decode_tokens, threads, args.repeat
        )
        note = aq.get_backend("numpy").notes()[0]  # "quantized matmul: native kernels, LEVEL (...)"
        level = re.search(r"native kernels, (\w+)", note)
        simd = f"NumPy backend's native kernels at the {level.group(1)} level" if level else note
        print(
            "\nside by side on the same GGUF file:\n"
            + side_by_side(rows, llama, args.prompt_tokens, args.decode_tokens, simd)
        )
    return 0
