"""Token generation with the qwen3-0.6b preset: arrayq on NumPy, arrayq on MLX, and mlx-lm
on the very same checkpoint (when installed), side by side in one run.

    python benchmarks/bench_generate.py [--model DIR] [--prompt-tokens 64] [--decode-tokens 16]
                                        [--engines numpy,numpy-int8,mlx,jax,mlx-lm] [--mlx-lm-prompt-tokens 16]
                                        [--repeat 2] [--device cpu|gpu] [--dtype bfloat16]

A command line over ``arrayq.bench`` (``arrayq bench --only generate`` runs the same
engines); what it measures and prints is described there (``arrayq/bench/_generate.py``).

On machines that set OPENBLAS_CORETYPE (an old-OpenBLAS workaround that slows current
NumPy), run it with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`.
"""

import sys

from arrayq.bench import generate_main

if __name__ == "__main__":
    sys.exit(generate_main())
