"""The ``arrayq serve`` command (wired up in :mod:`arrayq.cli`)."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

from .._cli_common import CommandError, add_activations_argument, add_placement_arguments, chosen_activations

SERVE_MISSING = "arrayq serve needs Starlette and uvicorn: pip install 'arrayq[serve]'"


def model_path(model: str | None) -> Path:
    """The checkpoint ``--model`` names: a directory or GGUF file, or a preset name of
    ``arrayq make-checkpoint`` (its random-weight checkpoint in the cache folder, written
    on first use; ``tiny`` without ``--model``, as ``arrayq generate``)."""
    from ..models import make_checkpoint
    from ..models._host import cache_dir
    from ..models.checkpoint import PRESETS

    if model is not None and (Path(model).exists() or model not in PRESETS):
        return Path(model)
    preset = model or "tiny"
    if cache_dir().exists() and not cache_dir().is_dir():
        raise CommandError(f"the cache folder {cache_dir()} (ARRAYQ_CACHE or ~/.cache/arrayq) is not a folder")
    path = cache_dir() / preset
    if not (path / "config.json").is_file():
        print(f"arrayq: writing the {preset} random-weight checkpoint to {path}", file=sys.stderr)
        make_checkpoint(path, preset)
    return path


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the model, then serve it over HTTP until interrupted. Prints
    ``arrayq serve: listening on http://HOST:PORT`` on stdout once the port is open."""
    try:
        import uvicorn

        from ._http import create_app
    except ImportError:
        raise CommandError(SERVE_MISSING) from None
    import arrayq as aq

    from ..models import default_dtype, load
    from ..models._cli import _for_task, _use_device, progress_bar
    from . import Limits, Serving
    from ._text import load_codec

    limits = Limits(args.max_batch, args.max_queued, args.max_tokens, args.max_context)
    limits.prefill_together, limits.burst_wait = args.prefill_together, args.burst_wait_ms / 1000
    limits.check()
    try:  # the socket is ours, so the port is known (--port 0: any free one) before serving starts
        sock = socket.create_server((args.host, args.port))
    except (OSError, OverflowError) as exc:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {exc}") from None
    host, port = sock.getsockname()[:2]
    path = model_path(args.model)
    _for_task(path, "generate", "arrayq serve")
    backend = aq.get_backend(args.backend) if args.backend else aq.current_backend()
    _use_device(backend, args.device)
    activations = chosen_activations(backend, args.activations)
    codec = load_codec(path)
    device = args.device or backend.devices()[0]

    def load_model() -> Any:  # on the serving thread (MLX's arrays belong to the thread that made them)
        _use_device(backend, args.device)
        dtype = args.dtype or default_dtype(device)
        return load(
            path, backend=backend, device=args.device, dtype=dtype, progress=progress_bar(f"loading {path.name}")
        )

    with Serving(load_model, limits, activations=activations, kv_dtype=args.kv_dtype) as serving:
        app = create_app(serving, args.model_name or path.name, codec)
        config = uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=2)
        prefill = "prompts together" if serving.prefill_together else "each prompt alone"
        print(
            f"arrayq serve: {path.name} on {backend.name} ({device}), {'tokenizer' if codec else 'token ids only'}, "
            f"{serving.activations} activations, prefill {prefill}",
            file=sys.stderr,
        )
        print(f"arrayq serve: listening on http://{host}:{port}", flush=True)
        uvicorn.Server(config).run(sockets=[sock])
    return 0


def add_parser(sub: Any) -> None:
    """Add the serve subcommand to an argparse subparsers object."""
    srv = sub.add_parser(
        "serve",
        help="serve a Qwen3 checkpoint over an OpenAI-compatible HTTP API, with continuous batching",
        description="Serve a model at /v1/completions, /v1/chat/completions, /v1/models and /health "
        "(needs pip install 'arrayq[serve]').",
    )
    srv.add_argument(
        "--model",
        help="checkpoint directory, .gguf file, or a preset name of make-checkpoint (its random "
        "checkpoint in $ARRAYQ_CACHE or ~/.cache/arrayq; default: tiny)",
    )
    add_placement_arguments(srv, "activations' dtype (default as arrayq generate)")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    srv.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free port, printed)")
    srv.add_argument("--model-name", help="the model's id in the API (default: the checkpoint's folder name)")
    srv.add_argument("--max-batch", type=int, default=8, help="sequences decoded together (default 8)")
    srv.add_argument("--max-queued", type=int, default=32, help="requests waiting beyond the batch (default 32)")
    srv.add_argument("--max-tokens", type=int, default=2048, help="most new tokens per request (default 2048)")
    srv.add_argument("--max-context", type=int, help="most prompt + new tokens per request (default: the model's)")
    add_activations_argument(srv)
    srv.add_argument(
        "--prefill-together",
        action=argparse.BooleanOptionalAction,
        help="prefill the prompts that arrive together in one forward pass (faster) or each alone (default: together "
        "where that gives each prompt's own logits bit for bit: NumPy's int8 activations, MLX's CPU device; with "
        "float32 activations on NumPy rounding could differ, docs/serving.md)",
    )
    srv.add_argument(
        "--kv-dtype",
        choices=["float16", "bfloat16", "float32"],
        help="dtype the batch's KV cache is stored in (default: the activations'; float16 halves a float32 cache, "
        "as arrayq generate's --kv-dtype, whose tokens it gives)",
    )
    srv.add_argument(
        "--burst-wait-ms",
        type=float,
        default=0.0,
        help="woken from an empty batch, wait for more requests while they keep arriving within this many ms of each "
        "other (at most 4x it), so that requests sent at once start together (default 0: start at the first; e.g. 5)",
    )
    srv.add_argument(
        "--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"), help="uvicorn's"
    )
    srv.set_defaults(func=cmd_serve)
