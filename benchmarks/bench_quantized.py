"""Quantized matmul on this CPU: arrayq's NumPy path vs MLX's CPU kernel vs dense NumPy.

    python benchmarks/bench_quantized.py [--quick]

On machines that set OPENBLAS_CORETYPE (an old-OpenBLAS workaround that slows current
NumPy), run it with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`.
"""

import sys

from arrayq import bench

if __name__ == "__main__":
    print(bench.format_table(bench.quantized_matmul(quick="--quick" in sys.argv)))
