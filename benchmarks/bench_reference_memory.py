"""Peak extra memory of the blockwise reference quantized matmul (``arrayq.quant.reference_matmul``,
the path of mxfp4/mxfp8/nvfp4 on NumPy and of every format on backends without a fused
kernel), per mode, on NumPy and the strict example backend.

    python benchmarks/bench_reference_memory.py [N]     # N x N weight, default 8192

Measured with ``arrayq.bench.peak_extra_bytes`` (tracemalloc: what the call allocates beyond
its result). The bound is 64 MiB whatever the weight's size (docs/benchmarks.md).
"""

import sys

import numpy as np

import arrayq as aq
from arrayq.bench import peak_extra_bytes
from arrayq.quant import QuantizedWeight, reference_matmul

FORMATS = [("affine", 64, 4), ("mxfp4", 32, 4), ("mxfp8", 32, 8), ("nvfp4", 16, 4)]


def measure(backend_name: str, n: int, m: int) -> list[tuple[str, float]]:
    """(mode, MiB) for x (m, n) times a random n x n weight of each format."""
    rng = np.random.default_rng(0)

    rows = []
    for mode, gs, bits in FORMATS:
        packed = rng.integers(0, 2**32, (n, n * bits // 32), dtype=np.uint32)
        if mode == "affine":
            scales = rng.random((n, n // gs), dtype=np.float32) * 0.01
            biases = -scales
        else:  # e8m0 / e4m3 codes of moderate scales
            scales, biases = rng.integers(100, 127, (n, n // gs), dtype=np.uint8), None
        x = rng.standard_normal((m, n)).astype(np.float32)
        args = [None if a is None else aq.to_backend(a, backend_name) for a in (x, packed, scales, biases)]

        qw = QuantizedWeight(*args[1:], gs, bits, mode)

        def call(x: object = args[0], qw: QuantizedWeight = qw) -> object:
            return reference_matmul(x, qw)

        rows.append((mode, peak_extra_bytes(call) / 2**20))
    return rows


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 8192
    print(f"{'backend':<8} {'x rows':>6} {'mode':<7} {'peak extra':>11}")
    for name in ("numpy", "strict"):
        for rows_of_x in (1, 16):
            for mode, mib in measure(name, size, rows_of_x):
                print(f"{name:<8} {rows_of_x:>6} {mode:<7} {mib:>7.1f} MiB")
