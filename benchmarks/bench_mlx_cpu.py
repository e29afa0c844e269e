"""MLX on the CPU: MLX's own quantized kernel fed bfloat16 (as checkpoints ship) against
the arrayq MLX backend's CPU strategy (float32 compute; dequantize + matmul for many rows),
side by side in one run, with the error of each against a float64 NumPy result.

    python benchmarks/bench_mlx_cpu.py
"""

import numpy as np

import arrayq as aq
from arrayq.bench import median_time


def main(n: int = 4096, k: int = 4096) -> None:
    import mlx.core as mx

    rng = np.random.default_rng(0)
    w = mx.array(rng.standard_normal((n, k), dtype=np.float32)).astype(mx.bfloat16)
    packed, scales, biases = mx.quantize(w, group_size=64, bits=4)
    qw = aq.QuantizedWeight(packed, scales, biases, 64, 4, "affine")
    w32 = mx.dequantize(packed, scales.astype(mx.float32), biases.astype(mx.float32), group_size=64, bits=4)
    w64 = np.array(w32, np.float64)
    print(f"{'M':>4} {'mlx native bf16':>16} {'arrayq mlx':>11} {'gain':>6} {'native err':>11} {'arrayq err':>11}")
    for m in (1, 16, 64, 128):
        x = mx.array(rng.standard_normal((m, k), dtype=np.float32)).astype(mx.bfloat16)
        ref = np.array(x.astype(mx.float32), np.float64) @ w64.T

        def native(x=x):
            return mx.eval(mx.quantized_matmul(x, packed, scales, biases, transpose=True, group_size=64, bits=4))

        def ours(x=x):
            return mx.eval(aq.linalg.quantized_matmul(x, qw))

        errs = []
        outs = (
            mx.quantized_matmul(x, packed, scales, biases, group_size=64, bits=4),
            aq.linalg.quantized_matmul(x, qw),
        )
        for out in outs:
            errs.append(np.abs(np.array(out.astype(mx.float32)) - ref).max() / np.abs(ref).max())
        t_native = median_time(native, repeat=3 if m <= 16 else 1)
        t_ours = median_time(ours, repeat=3)
        times = f"{t_native * 1e3:>14.1f}ms {t_ours * 1e3:>9.1f}ms {t_native / t_ours:>5.1f}x"
        print(f"{m:>4} {times} {errs[0]:>11.2e} {errs[1]:>11.2e}")


if __name__ == "__main__":
    main()
