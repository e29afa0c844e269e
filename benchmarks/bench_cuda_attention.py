"""arrayq's decode-attention kernel on MLX's CUDA device (``backends/arrayq_mlx/cuda/attention.cu``):
its error against a float64 reference, and its time beside MLX's fused attention.

    python benchmarks/bench_cuda_attention.py

Checks (B, HQ, HKV, S, D, n) shapes in bfloat16, float16 and float32: grouped heads, 1 to all
n keys written of an S-position buffer, up to 4096 positions. Times 28 dependent calls (as a
decode step makes them: 16 query heads, 8 kv heads, head_dim 128, 192 of 256 positions
written), median of 30 evaluations after 5 warm-ups, per call: the kernel, MLX's fused
attention with the mask array a fixed-size cache needs, and MLX's with exactly the written
keys and no mask (what a cache that slices to its length, as mlx-lm's, runs).
"""

from __future__ import annotations

import time

import numpy as np

import arrayq as aq
from arrayq.nn import prefix_mask

SHAPES = [(1, 16, 8, 256, 128, 129), (1, 32, 8, 192, 128, 1), (2, 4, 4, 300, 64, 300), (1, 8, 2, 4096, 128, 3000)]
SHAPES += [(1, 6, 3, 64, 256, 17), (1, 4, 1, 40, 32, 40)]


def main() -> int:
    import mlx.core as mx

    be = aq.get_backend("mlx")
    if not (be._cuda_route.available() and be._devices.targets_gpu()):
        print("needs MLX's CUDA device")
        return 1
    rng = np.random.default_rng(0)
    print("| B, HQ, HKV, S, D, keys | dtype | max error / max |reference| |\n|---|---|---:|")
    for b, hq, hkv, s, d, n in SHAPES:
        for dt in (mx.bfloat16, mx.float16, mx.float32):
            q, k, v = (
                mx.array(rng.standard_normal(shape).astype(np.float32)).astype(dt)
                for shape in ((b, hq, 1, d), (b, hkv, s, d), (b, hkv, s, d))
            )
            got = be.prefix_attention(q, k, v, 0.088, mx.array(n, dtype=mx.int32), False)
            q64, k64, v64 = (np.array(a.astype(mx.float32)).astype(np.float64) for a in (q, k, v))
            k64, v64 = (np.repeat(a[:, :, :n], hq // hkv, 1) for a in (k64, v64))
            sc = q64 @ np.swapaxes(k64, -1, -2) * 0.088
            p = np.exp(sc - sc.max(-1, keepdims=True))
            ref = p / p.sum(-1, keepdims=True) @ v64
            err = np.abs(np.array(got.astype(mx.float32)) - ref).max() / np.abs(ref).max()
            print(f"| {b}, {hq}, {hkv}, {s}, {d}, {n} | {dt} | {err:.1e} |")
    q = mx.random.normal((1, 16, 1, 128)).astype(mx.bfloat16)
    k, v = (mx.random.normal((1, 8, 256, 128)).astype(mx.bfloat16) for _ in range(2))
    nk = mx.array(192, dtype=mx.int32)
    mask = prefix_mask(nk, 1, 256, causal=False, dtype=aq.bfloat16, like=nk)
    forms = {
        "arrayq prefix_attention (256-position buffer, 192 keys)": lambda x: be.prefix_attention(
            x, k, v, 0.088, nk, False
        ),
        "mx.fast attention, mask array (256 positions)": lambda x: mx.fast.scaled_dot_product_attention(
            x, k, v, scale=0.088, mask=mask
        ),
        "mx.fast attention, no mask (exactly 192 keys)": lambda x: mx.fast.scaled_dot_product_attention(
            x, k[:, :, :192], v[:, :, :192], scale=0.088
        ),
    }
    print("\n| attention, 28 chained calls | µs per call |\n|---|---:|")
    for name, fn in forms.items():
        times = []
        for i in range(35):
            t = time.perf_counter()
            x = q
            for _ in range(28):
                x = fn(x)
            mx.eval(x)
            if i >= 5:
                times.append(time.perf_counter() - t)
        print(f"| {name} | {np.median(times) / 28 * 1e6:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
