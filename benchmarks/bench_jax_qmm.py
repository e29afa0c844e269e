"""Three forms of a fused dequantize-matmul under ``jax.jit`` on the CPU, beside arrayq's NumPy backend.

    python benchmarks/bench_jax_qmm.py [--quick]

4-bit affine, group size 64, float32 activations and scales, weight (N, K) = (4096, 4096)
(``--quick``: 1024 x 1024), x with M = 1 (decode) and 32 rows. Each form is one jitted function of
``x, packed, scales, biases``; times are the median of 5 calls after a warm-up (which compiles),
``block_until_ready`` included. The forms:

* ``dequantize+dot``: unpack the codes with shifts and masks, ``scale * code + bias`` in float32,
  one ``matmul`` with the whole (N, K) weight (what ``arrayq_jax`` runs);
* ``group dot_general``: per group, ``x_g . codes_g`` by ``dot_general`` with the group axis as a
  batch axis, then the scales and biases applied after the dot
  (``sum_g s[n,g] (x_g . q[n,g]) + b[n,g] sum(x_g)``): the weight is never scaled;
* ``lax.map rows``: ``lax.map`` over blocks of 512 output rows, each block dequantized and
  multiplied (bounded temporaries).

``numpy`` is ``arrayq.linalg.quantized_matmul`` on the NumPy backend (its C kernels where built).
Every form's result is checked against the NumPy one (float32 tolerance) before it is timed.
The machine this ran on may be shared: numbers are indicative.
"""

from __future__ import annotations

import argparse

import numpy as np

import arrayq as aq
from arrayq.bench import median_time


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

    def lax_map_rows(x, packed, scales, biases, block=512):
        n = packed.shape[0]
        blocks = (packed.reshape(n // block, block, -1), scales.reshape(n // block, block, -1),
                  biases.reshape(n // block, block, -1))  # fmt: skip

        def one(args):
            return dequantize_dot(x, *args)  # (M, block)

        out = lax.map(one, blocks)  # (n/block, M, block)
        return jnp.moveaxis(out, 0, 1).reshape(x.shape[0], n)

    return {
        "dequantize+dot": jax.jit(dequantize_dot),
        "group dot_general": jax.jit(group_dot_general),
        "lax.map rows": jax.jit(lax_map_rows),
    }


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
    print(f"{'form':<20} {'M':>4} {'ms / call':>10}")
    for m in (1, 32):
        x = rng.standard_normal((m, k)).astype(np.float32)
        want = aq.linalg.quantized_matmul(x, qw)
        scale = float(np.abs(want).max())
        t = median_time(lambda x=x: aq.linalg.quantized_matmul(x, qw))
        print(f"{'numpy (arrayq)':<20} {m:>4} {t * 1e3:>10.3f}")
        xj = jax.device_put(x)
        for name, fn in forms(jax).items():
            got = np.asarray(fn(xj, *on_jax))
            # float32 sums of 4096 products in another order: ~1e-6 of the largest output
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale, err_msg=name)
            t = median_time(lambda fn=fn, xj=xj: fn(xj, *on_jax).block_until_ready())
            print(f"{name:<20} {m:>4} {t * 1e3:>10.3f}")


if __name__ == "__main__":
    main()
