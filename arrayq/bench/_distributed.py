"""Token generation with a Qwen3 model sharded tensor-parallel over N processes
(``arrayq.nn.shard`` on ``arrayq.distributed``, MLX's engine), beside the same model in
one process: ``benchmarks/bench_distributed.py`` is its command line.

Each row is one run of ``python -m arrayq.bench._distributed worker ...``: one process, or
N local ranks (:func:`._launch.run_local`: the ring backend over loopback on CPUs, NCCL
with one GPU per rank). Every rank loads only its share of the checkpoint
(``models.load(shard=group)``), generates greedily (one warm-up run, then the timed one)
and reports its memory; rank 0 prints the row as JSON:

* ``prefill_tps`` / ``decode_tps``: tokens per second (:class:`~arrayq.models.GenerationStats`);
* ``bytes_per_token``: the bytes each rank hands to the collectives for one decoded
  token (one position through the model and its output head: two all_sums of ``hidden``
  values per layer, one for the embedding lookup, and the all_gather of this rank's
  share of the logits); a ring all-sum puts about ``2 (N-1)/N`` times its payload on the
  wire;
* ``weight_bytes``: the bytes of the weights each rank holds; ``peak_rss``: each rank's
  peak resident memory (loading and generating); ``peak_device``: MLX's peak memory;
* ``tokens``: the greedy tokens, for the "same as 1 process" column.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ._launch import run_local

_COLUMNS = (
    "processes",
    "prefill tok/s",
    "decode tok/s",
    "bytes/token/rank",
    "weights/rank MiB",
    "peak RSS/rank MiB",
    "MLX peak/rank MiB",
    "tokens = 1 proc",
)


def worker(args: argparse.Namespace) -> int:
    """One rank: load its share, generate, report (rank 0 prints one JSON line)."""
    import mlx.core as mx
    import numpy as np

    import arrayq as aq
    from arrayq import distributed, models, nn
    from arrayq.models._host import peak_memory_bytes

    mx.set_default_device(mx.gpu if args.device == "gpu" else mx.cpu)
    group = distributed.init("mlx", args.engine)
    dtype = args.dtype or models.default_dtype(args.device)
    model = models.load(args.model, backend="mlx", dtype=dtype, shard=group if group.size > 1 else None)
    weight_bytes = sum(int(a.nbytes) for a in nn.parameters(model))
    vocab = model.config.vocab_size
    prompt = [int(t) for t in np.random.default_rng(0).integers(0, vocab, args.prompt_tokens)]
    list(models.generate(model, prompt[:8], 2))  # warm-up: kernels, connections
    stats = models.GenerationStats()
    tokens = list(models.generate(model, prompt, args.decode_tokens, stats=stats))
    per_token = nn.bytes_per_token(model, group)
    mine = aq.asarray([weight_bytes, peak_memory_bytes(), int(mx.get_peak_memory())], dtype="int64")
    ranks = aq.to_numpy(distributed.all_gather(aq.reshape(aq.to_backend(mine, "mlx"), (1, 3)), group))
    if group.rank == 0:
        row = {
            "processes": group.size,
            "prefill_tps": stats.prefill_tps,
            "decode_tps": stats.decode_tps,
            "bytes_per_token": per_token,
            "weight_bytes": [int(v) for v in ranks[:, 0]],
            "peak_rss": [int(v) for v in ranks[:, 1]],
            "peak_device": [int(v) for v in ranks[:, 2]],
            "tokens": tokens,
            "device": args.device,
            "dtype": dtype,
        }
        print(json.dumps(row), flush=True)
    return 0


def run(processes: int, argv: list[str], engine: str, timeout: float) -> dict[str, Any]:
    """The row of one run of the worker (``argv``: its arguments) with ``processes`` ranks."""
    cmd = [sys.executable, "-m", "arrayq.bench._distributed", "worker", *argv, "--engine", engine]
    if processes == 1:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        out, err, ok = p.stdout, p.stderr, p.returncode == 0
    else:
        results = run_local(processes, cmd, engine=engine, timeout=timeout)
        out, err = results[0].stdout, "\n".join(f"[rank {r.rank}] {r.stderr}" for r in results)
        ok = all(r.returncode == 0 for r in results)
    if not ok:
        raise RuntimeError(f"the {processes}-process run failed:\n{err[-4000:]}")
    return json.loads(out.strip().splitlines()[-1])


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (per-rank values joined with " / ")."""
    mib = 2.0**20

    def per_rank(values: list[int]) -> str:
        return " / ".join(f"{v / mib:.0f}" for v in values)

    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    first = rows[0]["tokens"] if rows else None
    for r in rows:
        cells = (
            str(r["processes"]),
            f"{r['prefill_tps']:.1f}",
            f"{r['decode_tps']:.1f}",
            f"{r['bytes_per_token']:,}",
            per_rank(r["weight_bytes"]),
            per_rank(r["peak_rss"]),
            per_rank(r["peak_device"]),
            "yes" if r["tokens"] == first else "NO",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench_distributed.py", description="Qwen3 generation: 1 process vs N processes, tensor-parallel"
    )
    parser.add_argument("mode", nargs="?", default="bench", choices=("bench", "worker"))
    parser.add_argument("--model", help="checkpoint folder (default: --preset's random checkpoint in the cache)")
    parser.add_argument("--preset", default="qwen3-0.6b", help="preset written to the cache if missing")
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts (default 1,2)")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--engine", choices=("ring", "nccl"), help="default: ring on cpu, nccl on gpu")
    parser.add_argument("--dtype", help="activations (default: float32 on cpu, bfloat16 on gpu)")
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--decode-tokens", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=550.0, help="seconds per run")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    args.engine = args.engine or ("nccl" if args.device == "gpu" else "ring")
    if args.mode == "worker":
        return worker(args)
    from ..models import make_checkpoint
    from ..models._host import cache_dir

    model = Path(args.model) if args.model else cache_dir() / args.preset
    if not (model / "config.json").is_file():
        print(f"writing the {args.preset} checkpoint to {model} ...", file=sys.stderr)
        make_checkpoint(model, args.preset)
    worker_argv = [
        "--model",
        str(model),
        "--device",
        args.device,
        "--prompt-tokens",
        str(args.prompt_tokens),
        "--decode-tokens",
        str(args.decode_tokens),
    ] + (["--dtype", args.dtype] if args.dtype else [])
    rows = []
    for n in (int(v) for v in args.processes.split(",")):
        rows.append(run(n, worker_argv, args.engine, args.timeout))
        print(f"{n} process(es) done", file=sys.stderr)
    print(
        f"{model.name}, {args.device} ({rows[0]['dtype']}), engine {args.engine}, "
        f"{args.prompt_tokens}-token prompt, {args.decode_tokens} decoded tokens"
    )
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
