"""The benchmarks' child processes: ``python -m arrayq.bench._worker WHAT ...`` measures one
thing in a process of its own and prints it as one line of JSON.

* ``numpy``, ``numpy-int8``, ``mlx``, ``mlx-eager``, ``jax``, ``jax-eager`` (arrayq on that backend) or
  ``mlx-lm`` with ``--model DIR --prompt-tokens N --decode-tokens N --repeat N`` (and for arrayq
  ``--dtype`` and ``--device``): one engine's generation row
  (:mod:`._generate`; its own process, so that its peak RSS is its own).
* ``bandwidth``: the copy bandwidth of 512 MiB (its memory must not count in the engines').
* ``pure-numpy DIR``: quantized matmul on the NumPy backend's pure-NumPy path, started with
  ``ARRAYQ_NATIVE=off`` (:func:`._quantized.pure_numpy_times` writes DIR).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arrayq.bench._worker")
    parser.add_argument("what")
    parser.add_argument("directory", nargs="?")
    parser.add_argument("--model")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--decode-tokens", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dtype")
    parser.add_argument("--device")
    args = parser.parse_args(argv)

    result: dict
    if args.what == "bandwidth":
        from ._timing import copy_bandwidth

        result = {"bandwidth": copy_bandwidth(1 << 29)}
    elif args.what == "pure-numpy":
        from ._quantized import run_pure_numpy

        result = run_pure_numpy(Path(args.directory))
    elif args.what == "mlx-lm":
        from ._generate import run_mlx_lm

        result = run_mlx_lm(args.model, args.prompt_tokens, args.decode_tokens, args.repeat)
    else:
        from ._generate import run_arrayq

        result = run_arrayq(
            args.what, args.model, args.prompt_tokens, args.decode_tokens, args.repeat, args.dtype, args.device
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
