"""Load test of `arrayq serve` (and `mlx_lm.server` when installed) on loopback: N concurrent
clients, each sending greedy /v1/completions requests one after another; aggregate
generated tokens per second and p50/p99 request latency for each N.

    python benchmarks/bench_serve.py [--model DIR|PRESET] [--engines numpy,mlx,mlx-lm]
        [--clients 1,2,4,8] [--requests 2] [--prompt-tokens 8] [--tokens 16]
        [--level-seconds 120] [--kernel numpy,mlx] [--step 1,8]
        [--serve-args "OPTIONS"] [--versus "OPTIONS"] [--repeat 1]

Every engine serves the same directory: the checkpoint's files linked into a folder beside
it (``<model>-words``) with a word-level tokenizer whose token i is the word ``t<i>`` (mlx_lm.server
needs a tokenizer; the random-weight presets have none), so the same prompt text is the
same token ids everywhere. Each server runs in its own process, started and stopped here,
with ``--max-batch`` the largest N. A level stops sending new requests after
``--level-seconds``, which also bounds each request (one that takes longer is dropped and
not counted); the rows say how many requests were done. A level's clients send their first
requests together (a barrier), as a burst. ``--serve-args`` passes options to arrayq's
servers; ``--versus`` starts a second arrayq server with more options and interleaves its
levels with the first's (``--repeat`` levels of each client count each), then prints the
median end-to-end rate of each: an A/B comparison on a machine whose load drifts.
Two throughputs, both printed, neither preferred:

* **end-to-end tokens/s**: all completion tokens of the level / its wall time, as a client
  sees it (prefill, HTTP, the gaps between a client's requests included);
* **decode-only tokens/s** (``arrayq serve`` only): from its ``/health`` counters before
  and after the level, tokens decoded / seconds inside the batched decode steps and their
  sampling (prefill, HTTP and idle time left out): the aggregate decode rate the batch
  reaches, which the prefill of short requests hides in the end-to-end rate.

For ``arrayq serve`` each row also splits the server's time in the level (the same
counters): the mean milliseconds of a decode step, the shares spent prefilling
prompts and idle (waiting for requests: HTTP and the clients' turnaround), the prompts a
prefill pass took on average (prompts that arrive together are prefilled together); and the CPU
the level took, in cores busy on average (CPU seconds / wall seconds, from /proc and
this process's own clock): the benchmark's clients, the server's event loop, and the rest
of the server (its worker and the kernels' threads). On a machine of few cores the clients
and the event loop take cores from the kernels: that is the benchmark's own load.

``--kernel numpy,mlx`` also prints the quantized matmul time against M (the rows of x) at
each of the model's weight shapes on those backends: what batching can gain at most here.
``--step 1,8`` times the batched decode step itself (``arrayq.serving.decode_step``) on the
NumPy backend for those batch sizes, eager and compiled (a recorded plan, as the server
runs it), interleaved, and how much of it is inside the quantized-matmul kernels: the
kernels' growth with B bounds the batch's gain.

Short runs only on a shared machine: other processes change every number here.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import selectors
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

START_SECONDS = 600  # loading qwen3-0.6b on a busy machine


def shared_folder(model: Path, into: Path) -> Path:
    """``model``'s files hard-linked (or copied) into ``into`` (arrayq refuses symlinks that
    leave a checkpoint's folder), with a word-level tokenizer t0 .. t<vocab-1>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    into.mkdir(parents=True, exist_ok=True)
    for f in model.iterdir():
        if f.is_file() and not (into / f.name).exists():
            try:
                os.link(f, into / f.name)
            except OSError:
                shutil.copy(f, into / f.name)
    vocab = json.loads((model / "config.json").read_text())["vocab_size"]
    tok = Tokenizer(models.WordLevel({f"t{i}": i for i in range(vocab)}, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.save(str(into / "tokenizer.json"))
    (into / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast"}))
    return into


def start(
    engine: str, folder: Path, max_batch: int, log: Path, extra: Sequence[str] = ()
) -> tuple[subprocess.Popen, str]:
    """Start a server (arrayq's with the further options ``extra``); return its process and
    base URL once it answers."""
    if engine == "mlx-lm":
        port = _free_port()
        cmd = [
            sys.executable,
            "-m",
            "mlx_lm.server",
            "--model",
            str(folder),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        url = f"http://127.0.0.1:{port}"
    else:
        cmd = [sys.executable, "-m", "arrayq.cli", "serve", "--model", str(folder), "--backend", engine, "--port", "0"]
        cmd += ["--max-batch", str(max_batch), "--max-queued", str(4 * max_batch), "--max-tokens", "4096"]
        cmd += list(extra)
        url = ""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True)
    deadline = time.monotonic() + START_SECONDS
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while time.monotonic() < deadline and proc.poll() is None:
        if not url and sel.select(0.5):
            line = proc.stdout.readline()
            if "listening on " in line:
                url = line.split("listening on ")[1].strip()
        if url:
            try:
                if httpx.get(url + "/v1/models", timeout=5).status_code == 200:
                    return proc, url
            except httpx.HTTPError:
                time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"{engine} server did not start; see {log}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(20)


def thread_cpu(pid: int | None) -> tuple[float, float]:
    """CPU seconds so far of process ``pid``'s main thread (``arrayq serve``'s event loop:
    HTTP, JSON, handing tokens over) and of its other threads together (the serving
    worker and the kernels' thread pool), from /proc; NaN where it cannot be read."""
    main = rest = 0.0
    try:
        tick = os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            if int(task.name) == pid:
                main += seconds
            else:
                rest += seconds
    except (OSError, ValueError, IndexError, TypeError):
        return float("nan"), float("nan")
    return main, rest


def level(url: str, n: int, args: argparse.Namespace, prompt: str, pid: int | None = None) -> dict:
    """N clients, ``args.requests`` requests each (fewer once ``level_seconds`` passed).
    With the server's ``pid``, also where the CPU time went: the clients' (this process),
    the server's event loop and its worker with the kernels' threads."""
    stop_at = time.monotonic() + args.level_seconds
    lock, latencies, tokens = threading.Lock(), [], [0]
    body = {"prompt": prompt, "max_tokens": args.tokens, "temperature": 0, "ignore_eos": True}
    ready = threading.Barrier(n)  # (the clients' first requests leave together, as a burst)

    def client(_: int) -> None:
        with httpx.Client(base_url=url, timeout=args.level_seconds) as c:
            ready.wait()
            for _ in range(args.requests):
                if time.monotonic() > stop_at:
                    return
                t0 = time.perf_counter()
                try:
                    r = c.post("/v1/completions", json=body)
                except httpx.TimeoutException:  # (counted out: the row's request count says so)
                    return
                r.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    tokens[0] += r.json()["usage"]["completion_tokens"]

    before = _decode_stats(url)
    cpu0, server0 = time.process_time(), thread_cpu(pid)
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        list(pool.map(client, range(n)))
    wall = time.perf_counter() - t0
    cpu1, server1 = time.process_time(), thread_cpu(pid)
    after = _decode_stats(url)
    lat = sorted(latencies) or [float("nan")]
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
    decode = step_ms = prefill_share = idle_share = per_pass = float("nan")
    if before and after and after["decode_seconds"] > before["decode_seconds"]:
        d = {k: after[k] - before[k] for k in after if k in before}
        decode = d["decoded_tokens"] / d["decode_seconds"]
        step_ms = 1e3 * d["decode_seconds"] / d["decode_steps"]
        if "idle_seconds" in d:  # (servers of this checkout on)
            busy = sum(d[k] for k in ("decode_seconds", "prefill_seconds", "idle_seconds", "other_seconds"))
            prefill_share, idle_share = d["prefill_seconds"] / busy, d["idle_seconds"] / busy
        if d.get("prefill_passes"):  # (servers of prompts prefilled together on)
            per_pass = len(latencies) / d["prefill_passes"]
    return dict(
        clients=n,
        requests=len(latencies),
        tokens=tokens[0],
        seconds=wall,
        tps=tokens[0] / wall,
        p50=q[49],
        p99=q[98],
        decode=decode,
        step_ms=step_ms,
        prefill=prefill_share,
        idle=idle_share,
        per_pass=per_pass,
        client_cpu=(cpu1 - cpu0) / wall,
        loop_cpu=(server1[0] - server0[0]) / wall,
        worker_cpu=(server1[1] - server0[1]) / wall,
    )


def print_row(label: str, row: dict, one: tuple[float, float]) -> None:
    """One level's table row; ``one``: the server's first level's (end-to-end, decode-only) rates."""
    decode = "– | –" if row["decode"] != row["decode"] else f"{row['decode']:.2f} | {row['decode'] / one[1]:.2f}×"
    decode += " | " + " | ".join(
        "–" if v != v else f"{v:.1f}" if k in ("step_ms", "per_pass") else f"{100 * v:.0f}%"
        for k, v in ((k, row[k]) for k in ("step_ms", "prefill", "per_pass", "idle"))
    )
    decode += " | " + " | ".join(f"{row[k]:.2f}" for k in ("client_cpu", "loop_cpu", "worker_cpu"))
    print(
        f"| {label} | {row['clients']} | {row['requests']} | {row['tokens']} | {row['seconds']:.1f} | "
        f"{row['tps']:.2f} | {row['tps'] / one[0]:.2f}× | {row['p50']:.2f} | {row['p99']:.2f} | {decode} |",
        flush=True,
    )


def _decode_stats(url: str) -> dict | None:
    """arrayq serve's decode counters (/health's ``decode``); None for other servers."""
    try:
        return httpx.get(url + "/health", timeout=30).json().get("decode")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None


def kernel_table(model: Path, backends: list[str]) -> None:
    """quantized_matmul time against M at each of layer 0's weight shapes, per backend:
    minimum of 15 interleaved runs (the least disturbed by other processes)."""
    import numpy as np

    import arrayq as aq
    from arrayq import models

    for backend in backends:
        m = models.load(model, backend=backend)
        layer = m.layers[0]
        weights = {"qkv": layer.self_attn.qkv_proj, "o": layer.self_attn.o_proj}
        weights.update(gate_up=layer.mlp.gate_up_proj, down=layer.mlp.down_proj)
        print(f"\n{backend}: quantized_matmul of layer 0's weights, ms a call (× the M = 1 time)")
        print("| weight | N×K | M=1 | M=2 | M=4 | M=8 |\n|---|---|---:|---:|---:|---:|")
        for name, linear in weights.items():
            qw = linear.weight
            xs = {rows: np.random.default_rng(rows).standard_normal((rows, qw.shape[1])) for rows in (1, 2, 4, 8)}
            xs = {rows: aq.asarray(x.astype(np.float32), like=qw.scales) for rows, x in xs.items()}
            times: dict[int, list[float]] = {rows: [] for rows in xs}
            for _ in range(15):
                for rows, x in xs.items():
                    t0 = time.perf_counter()
                    aq.to_numpy(aq.linalg.quantized_matmul(x, qw, transpose=True)[0, 0])
                    times[rows].append(time.perf_counter() - t0)
            best = {rows: min(t) * 1e3 for rows, t in times.items()}
            cells = " | ".join(f"{best[r]:.2f} ({best[r] / best[1]:.1f}×)" for r in xs)
            print(f"| {name} | {qw.shape[0]}×{qw.shape[1]} | {cells} |", flush=True)


def step_table(model: Path, sizes: list[int], rounds: int = 15, kv_dtypes: tuple = (None,)) -> None:
    """decode_step on the NumPy backend at each batch size (sequences of 16+ cached
    positions), eager and compiled (``compiled=True``: a recorded plan), and with each KV
    cache dtype of ``kv_dtypes`` (None: the model's), interleaved: median step time, the
    part inside the quantized-matmul kernels (timed around the extension's calls), and the
    rate against the first size's eager step."""
    import numpy as np
    from _batch_step import filled_caches, timed

    import arrayq as aq
    from arrayq import models
    from arrayq.serving import decode_step
    from arrayq_numpy import _native

    inside = [0.0]
    kernels = _native._kernels
    saved = {name: getattr(kernels, name) for name in ("gemv", "gemv_repacked")}
    m = models.load(model, backend="numpy")
    like = m.layers[0].self_attn.o_proj.weight.scales
    variants = [(b, compiled, kv) for kv in kv_dtypes for b in sizes for compiled in (False, True)]
    caches = {v: filled_caches(m, [v[0]], like, v[2])[v[0]] for v in variants}
    for (b, _, _), cache in caches.items():  # room for every round: no buffer grows while timed
        cache._reserve(cache._keys[0], b, 256)
    times: dict[tuple, list[tuple[float, float]]] = {v: [] for v in variants}
    bound_clock = getattr(kernels, "bound_clock", None)  # (a compiled step's bound C calls time their own kernel)
    try:
        for name, real in saved.items():
            setattr(kernels, name, timed(real, inside))
        if bound_clock is not None:
            bound_clock(1)
        for r in range(rounds + 2):
            for b, compiled, kv in variants:
                inside[0] = 0.0
                if bound_clock is not None:
                    bound_clock(1)  # (drops what came before)
                t0 = time.perf_counter()
                aq.to_numpy(decode_step(m, [5] * b, caches[b, compiled, kv], like, compiled=compiled))
                if bound_clock is not None:
                    inside[0] += bound_clock(1)[0] / 1e9
                if r > 1:  # (the first rounds warm up, and record the compiled step's plan)
                    times[b, compiled, kv].append((time.perf_counter() - t0, inside[0]))
    finally:
        for name, real in saved.items():
            setattr(kernels, name, real)
        if bound_clock is not None:
            bound_clock(0)
    med = {v: np.median(np.array(t), axis=0) for v, t in times.items()}
    first = (sizes[0], False, kv_dtypes[0])
    mode = f"{_native.level()}, {_native.current_activations()} activations"
    print(f"\ndecode_step, NumPy backend ({mode}), median of {rounds} interleaved rounds")
    b0 = sizes[0]
    print(f"| B | step | KV cache | step ms | in the kernels ms | rest ms | kernels vs B={b0} | rate vs B={b0} eager |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for v in variants:
        (b, compiled, kv), (total, kern) = v, med[v]
        print(
            f"| {b} | {'compiled' if compiled else 'eager'} | {kv or 'model'} | {total * 1e3:.1f} | {kern * 1e3:.1f} | "
            f"{(total - kern) * 1e3:.1f} | {kern / med[first][1]:.2f}× | {b / first[0] * med[first][0] / total:.2f}× |",
            flush=True,
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="qwen3-0.6b", help="checkpoint directory or preset (default qwen3-0.6b)")
    p.add_argument("--engines", default="numpy,mlx,mlx-lm")
    p.add_argument("--clients", default="1,2,4,8")
    p.add_argument("--requests", type=int, default=2, help="requests per client per level (default 2)")
    p.add_argument("--prompt-tokens", type=int, default=8)
    p.add_argument("--tokens", type=int, default=16, help="completion tokens per request (default 16)")
    p.add_argument("--level-seconds", type=float, default=120, help="no new requests after this (default 120)")
    p.add_argument("--kernel", help="also time quantized_matmul against M on these backends (e.g. numpy,mlx)")
    p.add_argument(
        "--serve-args",
        default="",
        help="further options of arrayq's servers, e.g. '--activations float32 --no-prefill-together' "
        "(default: none, arrayq serve's defaults)",
    )
    p.add_argument(
        "--prefill-together", action="store_true", help="as --serve-args --prefill-together (earlier sessions' flag)"
    )
    p.add_argument(
        "--versus",
        help="also an arrayq server with these options added to --serve-args (e.g. '--burst-wait-ms 0'), its "
        "levels interleaved with the first's (A B A B ...), --repeat times each",
    )
    p.add_argument("--repeat", type=int, default=1, help="levels of each client count, interleaved (default 1)")
    p.add_argument("--step", help="also time the batched decode step at these batch sizes (e.g. 1,8), NumPy")
    p.add_argument(
        "--kv-dtype",
        default="",
        help="with --step: also a batch KV cache of this dtype (e.g. float16), interleaved with the model's",
    )
    args = p.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    if not counts or min(counts) < 1 or max(counts) > 64 or args.requests < 1 or args.requests > 100:
        p.error("--clients takes 1 to 64 clients a level, --requests 1 to 100")
    from arrayq.serving._cli import model_path

    model = model_path(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        folder = shared_folder(model, model.parent / f"{model.name}-words")
        prompt = " ".join(f"t{100 + 37 * i}" for i in range(args.prompt_tokens))
        print(f"{model.name}: prompt {args.prompt_tokens} tokens, {args.tokens} new tokens a request, greedy")
        columns = ["engine", "clients", "requests", "tokens", "seconds", "end-to-end tokens/s", "vs 1 client"]
        columns += ["p50 latency s", "p99 latency s", "decode-only tokens/s", "vs 1 client", "ms a decode step"]
        columns += [
            "prefill share",
            "prompts a prefill pass",
            "idle share",
            "CPU: clients",
            "CPU: server loop",
            "CPU: server worker",
        ]
        print("| " + " | ".join(columns) + " |")
        print("|---|" + "---:|" * (len(columns) - 1))
        summary: dict[tuple[str, int], list[float]] = {}
        for engine in [e for e in args.engines.split(",") if e]:
            together = ["--prefill-together"] if args.prefill_together else []
            options = [shlex.split(args.serve_args) + together] if engine != "mlx-lm" else [[]]
            if args.versus and engine != "mlx-lm":
                options.append(options[0] + shlex.split(args.versus))
            servers = []
            try:
                for i, extra in enumerate(options):
                    label = engine + (f" {args.versus}" if i else "")
                    try:
                        servers.append(
                            (label, *start(engine, folder, max(counts), Path(tmp) / f"{engine}{i}.log", extra))
                        )
                    except (RuntimeError, OSError) as exc:
                        log = Path(tmp) / f"{engine}{i}.log"
                        tail = log.read_text()[-300:].replace("\n", " ") if log.exists() else ""
                        print(f"| {label} | not run: {exc}: {tail} |||||||||")
                for _, _, url in servers:
                    httpx.post(url + "/v1/completions", json={"prompt": prompt, "max_tokens": 2}, timeout=600)
                ones: dict[str, tuple[float, float]] = {}
                for n in counts:
                    for _ in range(args.repeat):  # (the servers' levels interleaved: A B A B ...)
                        for label, proc, url in servers:
                            row = level(url, n, args, prompt, proc.pid)
                            print_row(label, row, ones.setdefault(label, (row["tps"], row["decode"])))
                            summary.setdefault((label, n), []).append(row["tps"])
            finally:
                for _, proc, _ in servers:
                    stop(proc)
        if args.repeat > 1 or args.versus:
            print(f"\n| server | clients | levels | median end-to-end tokens/s | vs {counts[0]} clients' median |")
            print("|---|---:|---:|---:|---:|")
            for (label, n), values in summary.items():
                base = statistics.median(summary[(label, counts[0])])
                print(
                    f"| {label} | {n} | {len(values)} | {statistics.median(values):.2f} | "
                    f"{statistics.median(values) / base:.2f}× |"
                )
        if any(args.engines.split(",")):
            print(
                "\nend-to-end tokens/s: completion tokens / the level's wall time (prefill, HTTP and the "
                "gaps between requests included); decode-only tokens/s: tokens / seconds inside the "
                "server's decode steps (its /health counters; prefill, HTTP and idle time left out); "
                "shares: of the server's time in the level; prompts a prefill pass: the level's requests / "
                "the server's prefill forward passes; CPU: CPU seconds a wall second in the level "
                "(cores busy) of the benchmark's clients, the server's event loop (its main thread) and "
                "the rest of the server (the worker and the kernels' threads)"
            )
    if args.kernel:
        kernel_table(model, args.kernel.split(","))
    if args.step:
        kv_dtypes = (None, args.kv_dtype) if args.kv_dtype else (None,)
        step_table(model, [int(b) for b in args.step.split(",")], kv_dtypes=kv_dtypes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
