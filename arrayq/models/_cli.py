"""The ``arrayq make-checkpoint``, ``arrayq generate`` and ``arrayq embed`` commands (wired
up in :mod:`arrayq.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .._cli_common import (
    CommandError,
    add_activations_argument,
    add_placement_arguments,
    chosen_activations,
    positive_number,
)
from ._host import cache_dir, peak_memory_bytes


def progress_bar(label: str, stream: TextIO | None = None) -> Callable[[int, int, str], None]:
    """A one-line text progress bar on ``stream`` (default: sys.stderr at call time):
    redrawn in place on a terminal; elsewhere only the finished bar is written."""

    def show(done: int, total: int, what: str = "") -> None:
        out = stream if stream is not None else sys.stderr
        done = min(done, total)
        if not out.isatty() and done != total:
            return
        width = 30
        filled = width * done // max(total, 1)
        tail = f" {what}" if what and done != total else ""
        out.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{tail[:40]:<41}")
        if done == total:
            out.write("\n")
        out.flush()

    return show


def _format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def cmd_make_checkpoint(args: argparse.Namespace) -> int:
    """Write a random-weight checkpoint of a preset to a directory."""
    from . import make_checkpoint, preset_config

    config = preset_config(args.preset)
    shard = max(int(args.shard_mb * 2**20), 1) if args.shard_mb is not None else None
    path = make_checkpoint(
        args.directory, args.preset, seed=args.seed, shard_bytes=shard, progress=progress_bar(f"writing {args.preset}")
    )
    files = sorted(p for p in path.iterdir() if p.suffix == ".safetensors")
    size = sum(p.stat().st_size for p in files)
    q = config.quantization
    fmt = f"{q['bits']}-bit group {q['group_size']}" if q else "dense bfloat16"
    params = config.num_parameters()
    print(
        f"wrote {path}: preset {args.preset}, {config.num_hidden_layers} layers, {params / 1e6:.0f}M parameters, "
        f"{fmt}, {_format_bytes(size)} in {len(files)} file{'s' if len(files) != 1 else ''}"
    )
    return 0


def _tokenizer(path: Path) -> Any:
    """The folder's tokenizer.json through ``tokenizers``, or None (with a note on stderr
    where the package is missing) to print token ids."""
    from .tokenizer import read_tokenizer

    if not path.is_dir() or not os.path.lexists(path / "tokenizer.json"):
        return None
    try:
        return read_tokenizer(path)
    except ImportError as exc:
        print(f"arrayq: {path / 'tokenizer.json'} found but {exc}; printing token ids", file=sys.stderr)
        return None


def _for_task(path: Path, task: str, command: str) -> None:
    """Refuse a checkpoint whose architecture runs under another command."""
    from . import architecture_of

    arch = architecture_of(path)
    if arch.task != task:
        other = {"generate": "arrayq generate", "embed": "arrayq embed"}.get(arch.task, arch.task)
        raise CommandError(f"{path} is a {arch.name} model, which {command} does not run; use {other}")


def _parse_ids(text: str) -> list[int]:
    try:
        ids = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise ValueError(f"--prompt-ids takes comma-separated integers, got {text!r}") from None
    if not ids:
        raise ValueError("--prompt-ids needs at least one id")
    return ids


def _use_device(backend: Any, device: str | None) -> None:
    """Make ``device`` where the model's ops run. For MLX that is MLX's default device
    (arrayq's device argument only places creation functions)."""
    if device is None:
        return
    backend.check_device(device)
    if backend.name == "mlx":
        import mlx.core as mx

        mx.set_default_device(mx.gpu if device == "gpu" else mx.cpu)


def cmd_generate(args: argparse.Namespace) -> int:
    """Load a model (making the tiny checkpoint first when no --model is given), stream
    generated tokens to stdout, then print prefill/decode speed and peak memory to stderr."""
    import arrayq as aq

    from .. import distributed, nn
    from . import CheckpointError, GenerationStats, default_dtype, generate, load, make_checkpoint
    from .generate import check_sampling
    from .tokenizer import TextStream

    out, err = sys.stdout, sys.stderr
    if args.max_tokens < 0:
        raise CommandError(f"--max-tokens must be >= 0, got {args.max_tokens}")
    check_sampling(args.temperature, args.top_k, args.top_p)  # before loading anything
    if args.model is None:
        if cache_dir().exists() and not cache_dir().is_dir():
            raise CommandError(
                f"the cache folder {cache_dir()} (ARRAYQ_CACHE or ~/.cache/arrayq) is not a folder; "
                "point ARRAYQ_CACHE at a folder or pass --model"
            )
        path = cache_dir() / "tiny"
        if not (path / "config.json").is_file():
            make_checkpoint(path, "tiny")
            print(f"arrayq: no --model given; wrote the tiny random-weight checkpoint to {path}", file=err)
    else:
        path = Path(args.model)
    _for_task(path, "generate", "arrayq generate")
    backend = aq.get_backend(args.backend) if args.backend else aq.current_backend()
    _use_device(backend, args.device)
    activations = chosen_activations(backend, args.activations)
    tokenizer = _tokenizer(path)
    if args.prompt is not None:
        if tokenizer is None:
            raise CheckpointError(
                path,
                "has no usable tokenizer.json (with the 'tokenizers' package) "
                "to encode --prompt; pass --prompt-ids instead",
            )
        prompt = tokenizer.encode(args.prompt).ids
    else:
        prompt = _parse_ids(args.prompt_ids)
    device = args.device or backend.devices()[0]
    dtype = args.dtype or default_dtype(device)
    # started by a launcher (mlx.launch -n N): one rank of a tensor-parallel model; rank 0 prints
    group = distributed.init(backend) if distributed.launched_size() > 1 else None
    if group is not None and group.rank != 0:
        out = err = open(os.devnull, "w")
    model = load(
        path,
        backend=backend,
        device=args.device,
        dtype=dtype,
        progress=progress_bar(f"loading {path.name}", err),
        shard=group,
    )
    stop = () if args.ignore_eos else model.config.eos_token_id
    stats = GenerationStats()
    text = TextStream(tokenizer)
    with backend.activations(activations):  # (as arrayq serve's worker: the same tokens)
        for token in generate(
            model,
            prompt,
            args.max_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=args.seed,
            stop_ids=stop,
            stats=stats,
            compile=args.compile,
            kv_dtype=args.kv_dtype,
        ):
            out.write(text.add(token))
            out.flush()
    out.write("\n")
    out.flush()
    compiled = "compiled decode" if stats.compiled else "eager decode"
    mode = f"{model.dtype} activations ({activations} into quantized matmuls)"
    print(f"backend {backend.name} ({device}), {mode}, {compiled}", file=err)
    print(f"prefill: {stats.prompt_tokens} tokens, {stats.prefill_tps:.2f} tok/s", file=err)
    print(f"decode:  {stats.generated_tokens} tokens, {stats.decode_tps:.2f} tok/s", file=err)
    peak = [peak_memory_bytes()]
    if group is not None:  # every rank's peak, gathered to rank 0
        print(
            f"sharded over {group.size} processes: {nn.bytes_per_token(model, group):,} bytes communicated "
            "per token per rank (collectives' payloads)",
            file=err,
        )
        peak = [int(v) for v in aq.to_numpy(distributed.all_gather(aq.asarray(peak, dtype="int64"), group))]
    print(
        f"peak memory: {', '.join(_format_bytes(p) for p in peak)} (max resident set size"
        f"{', per rank' if group is not None else ''})",
        file=err,
    )
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Load an encoder and its tokenizer, print one sentence embedding per --text (or, with
    --similarity, their cosine similarities) to stdout and a summary to stderr."""
    import time

    import numpy as np

    import arrayq as aq

    from . import load, load_tokenizer

    path = Path(args.model)
    _for_task(path, "embed", "arrayq embed")
    try:
        tokenizer = load_tokenizer(path)
    except ImportError as exc:
        raise CommandError(f"arrayq embed needs the model's tokenizer.json: {exc}") from None
    backend = aq.get_backend(args.backend) if args.backend else aq.current_backend()
    _use_device(backend, args.device)
    model = load(path, backend=backend, device=args.device, dtype=args.dtype)
    batch = tokenizer(args.text)
    start = time.perf_counter()
    emb = model(*(aq.to_backend(a, backend) for a in (batch.ids, batch.attention_mask, batch.token_type_ids)))
    emb = np.asarray(aq.to_numpy(aq.astype(emb, "float32")), dtype=np.float64)
    seconds = time.perf_counter() - start
    if args.similarity:
        unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        rows = unit @ unit.T
    else:
        rows = emb
    for row in rows:
        print(" ".join(f"{v:.6f}" if args.similarity else f"{v:.7g}" for v in row))
    c = model.config
    print(
        f"{len(args.text)} texts, {batch.ids.shape[1]} tokens (padded), {emb.shape[1]} dims, {c.pooling} pooling"
        f"{', normalized' if c.normalize else ''}; backend {backend.name}, {model.dtype}; "
        f"forward {seconds * 1000:.1f} ms",
        file=sys.stderr,
    )
    return 0


def add_parsers(sub: Any) -> None:
    """Add the make-checkpoint, generate and embed subcommands to an argparse subparsers object."""
    from .checkpoint import PRESETS

    mk = sub.add_parser("make-checkpoint", help="write a checkpoint of random weights (mlx-community Qwen3 format)")
    mk.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="model shape (default: tiny)")
    mk.add_argument("directory", help="where to write config.json and the safetensors file(s)")
    mk.add_argument("--seed", type=int, default=0, help="random seed of the weights (default 0)")
    mk.add_argument("--shard-mb", type=positive_number, help="split the weights into shards of at most this many MiB")
    mk.set_defaults(func=cmd_make_checkpoint)

    gen = sub.add_parser("generate", help="generate tokens with a Qwen3 checkpoint (safetensors directory or GGUF)")
    gen.add_argument(
        "--model",
        help="checkpoint directory or .gguf file (default: a tiny random checkpoint, "
        "made on first use in $ARRAYQ_CACHE or ~/.cache/arrayq)",
    )
    add_placement_arguments(
        gen, "activations' dtype (default: float32 on a CPU, bfloat16 on a GPU, where arrayq's CUDA kernels take it)"
    )
    prompt = gen.add_mutually_exclusive_group(required=True)
    prompt.add_argument("--prompt", help="prompt text (needs tokenizer.json in the model directory)")
    prompt.add_argument("--prompt-ids", help="prompt token ids, comma-separated, e.g. 1,2,3")
    gen.add_argument("--max-tokens", type=int, default=32, help="tokens to generate (default 32)")
    gen.add_argument("--temperature", type=float, default=0.0, help="0 (default) is greedy")
    gen.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1: off)")
    gen.add_argument("--top-k", type=int, default=0, help="sample among the k most likely (default 0: off)")
    gen.add_argument("--seed", type=int, help="sampling seed")
    gen.add_argument("--ignore-eos", action="store_true", help="do not stop at the end-of-sequence token")
    gen.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="decode through one compiled step (default: where the backend compiles: MLX, JAX, NumPy's recorded plans)",
    )
    add_activations_argument(gen)
    gen.add_argument(
        "--kv-dtype",
        choices=["float16", "bfloat16", "float32"],
        help="dtype the compiled decode step's KV cache is stored in (default: the activations' dtype; "
        "float16 halves a float32 cache's memory)",
    )
    gen.set_defaults(func=cmd_generate)

    emb = sub.add_parser(
        "embed",
        help="sentence embeddings with an encoder checkpoint (a BERT / sentence-transformers folder)",
        description="Print one sentence embedding per --text, one line each (or their cosine similarities).",
    )
    emb.add_argument(
        "--model", required=True, help="checkpoint directory with tokenizer.json (a sentence-transformers folder)"
    )
    emb.add_argument("--text", action="append", required=True, help="a text to embed; repeat for several")
    add_placement_arguments(emb, "activations' dtype (default float32)", "float32")
    emb.add_argument(
        "--similarity", action="store_true", help="print the texts' cosine-similarity matrix instead of the embeddings"
    )
    emb.set_defaults(func=cmd_embed)
