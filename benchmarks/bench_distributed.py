"""Qwen3 generation in one process vs sharded tensor-parallel over N processes (MLX's
distributed engine: the ring backend over loopback on CPUs, NCCL with one GPU per rank).

    python benchmarks/bench_distributed.py [--preset qwen3-0.6b] [--processes 1,2]
                                           [--device cpu|gpu] [--engine ring|nccl]
                                           [--prompt-tokens 32] [--decode-tokens 16]

Prints one table row per process count: prefill and decode tokens/s, bytes each rank
communicates per decoded token, weights, peak RSS and MLX peak memory per rank, and
whether the greedy tokens equal the 1-process run's. A command line over
``arrayq/bench/_distributed.py`` (which describes each column); docs/distributed.md
records its results and the 2-GPU command.
"""

import sys

from arrayq.bench._distributed import main

if __name__ == "__main__":
    sys.exit(main())
