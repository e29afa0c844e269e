"""Three forms of a fused dequantize-matmul under ``jax.jit`` on the CPU, beside arrayq's NumPy backend.

    python benchmarks/bench_jax_qmm.py [--quick]

4-bit affine, group size 64, float32 activations and scales, weight (N, K) = (4096, 4096)
(``--quick``: 1024 x 1024), x with M = 1 (decode) and 32 rows. Each form is one jitted function of
``x, packed, scales, biases``. Times are medians of 7 calls after a warm-up (which compiles),
``block_until_ready`` included, as wall time and as CPU time of the process (all threads): on a
shared machine the CPU time is the steadier comparison. The forms:

* ``dequantize+matmul``: unpack the codes with shifts and masks, ``scale * code + bias`` in float32,
  one ``matmul`` with the whole weight, transposed (``x @ w.T``);
* ``group dot_general``: per group, ``x_g . codes_g`` by ``dot_general`` with the group axis as a
  batch axis, then the scales and biases applied after the dot
  (``sum_g s[n,g] (x_g . q[n,g]) + b[n,g] sum(x_g)``): the weight is never scaled;
* ``lax.map row blocks``: ``lax.map`` over blocks of output rows (``arrayq_jax._quantized.block_rows``:
  2 MiB of float32 each), each block dequantized and contracted with x by ``dot_general`` over both
  last axes (no transpose) — what ``arrayq_jax`` runs, timed here through arrayq
  (``arrayq.linalg.quantized_matmul`` on JAX arrays, frontend checks included).

``numpy`` is ``arrayq.linalg.quantized_matmul`` on the NumPy backend (its C kernels where built).
Every form's result is checked against the NumPy one (float32 tolerance) before it is timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import arrayq as aq


def timed(fn, repeat=7):
    """(median wall seconds, median process CPU seconds) of ``fn()`` after one warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def forms(jax):
    jnp, lax = jax.numpy, jax.lax
    hi = lax.Precision.HIGHEST
    shifts = np.arange(0, 32, 4, dtype=np.uint32)

    def codes(packed):
        return ((packed[..., None] >> shifts) & np.uint32(15)).reshape(packed.shape[0], -1).astype(jnp.float32)

    def dequantize_dot(x, packed, scales, biases):
        q = codes(packed).reshape(packed.shape[0], scales.shape[1], -1)
        w = (q * scales[..., None] + biases[..., None]).reshape(packed.shape[0], -1)
        return jnp.matmul(x, w.T, precision=hi)

    def group_dot_general(x, packed, scales, biases):
        n, g = scales.shape
        q = codes(packed).reshape(n, g, -1)  # (N, G, gs)
        xg = x.reshape(x.shape[0], g, -1)  # (M, G, gs)
        # batch over groups: (G, M, gs) x (G, N, gs) -> (G, M, N)
        part = lax.dot_general(xg, q, (((2,), (2,)), ((1,), (1,))), precision=hi)
        y = jnp.einsum("gmn,ng->mn", part, scales, precision=hi)
        return y + jnp.matmul(xg.sum(-1), biases.T, precision=hi)

    return {"dequantize+matmul": jax.jit(dequantize_dot), "group dot_general": jax.jit(group_dot_general)}


def main() -> None:
    import jax

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n = k = 1024 if args.quick else 4096
    rng = np.random.default_rng(0)
    qw = aq.quantize(rng.standard_normal((n, k)).astype(np.float32), group_size=64, bits=4)
    on_jax = [jax.device_put(a) for a in (qw.packed, qw.scales, qw.biases)]
    print(f"jax {jax.__version__} on {jax.default_backend()}; weight ({n}, {k}) 4-bit affine, group 64, float32")
    qw_jax = aq.to_backend(qw, "jax")
    print("| form | M | wall ms | CPU ms |\n|---|---:|---:|---:|")
    for m in (1, 32):
        x = rng.standard_normal((m, k)).astype(np.float32)
        want = aq.linalg.quantized_matmul(x, qw)
        scale = float(np.abs(want).max())
        xj = jax.device_put(x)
        runs = {"numpy (arrayq, C kernels)": lambda x=x: aq.linalg.quantized_matmul(x, qw)}
        for name, fn in forms(jax).items():
            runs[name] = lambda fn=fn, xj=xj: fn(xj, *on_jax).block_until_ready()
        runs["lax.map row blocks (arrayq_jax)"] = lambda xj=xj: aq.linalg.quantized_matmul(
            xj, qw_jax
        ).block_until_ready()
        for name, run in runs.items():
            # float32 sums of 4096 products in another order: ~1e-6 of the largest output
            np.testing.assert_allclose(np.asarray(run()), want, rtol=0, atol=1e-5 * scale, err_msg=name)
            wall, cpu = timed(run)
            print(f"| {name} | {m} | {wall * 1e3:.2f} | {cpu * 1e3:.2f} |")


if __name__ == "__main__":
    main()
