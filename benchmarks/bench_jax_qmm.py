"""Forms of a fused dequantize-matmul under ``jax.jit``, on JAX's default device (CPU or GPU), beside
arrayq's NumPy backend.

    python benchmarks/bench_jax_qmm.py [--quick] [--rows 1,8,32,512] [--dtype float32|bfloat16]

4-bit affine, group size 64, weight (N, K) = (4096, 4096) (``--quick``: 1024 x 1024), x with each
of ``--rows`` rows (1: decoding; default 1 and 32), scales and biases in ``--dtype`` (default
float32). Each form is one jitted function of ``x, packed, scales, biases`` on JAX's default device.
Times are medians of 7 calls after a warm-up (which compiles), ``block_until_ready`` included, as
wall time and as CPU time of the process (all threads): on a shared CPU the CPU time is the steadier
comparison; on a GPU read the wall time. The forms:

* ``dequantize+matmul w.T``: unpack the codes with shifts and masks, ``scale * code + bias`` in
  float32, one ``matmul`` with the whole weight, transposed (``x @ w.T``);
* ``group dot_general``: per group, ``x_g . codes_g`` by ``dot_general`` with the group axis as a
  batch axis, then the scales and biases applied after the dot
  (``sum_g s[n,g] (x_g . q[n,g]) + b[n,g] sum(x_g)``): the weight is never scaled;
* ``row_blocks``, ``reduce``, ``dequantize``: the forms of ``arrayq_jax._quantized`` (see
  ``linear_form`` there): ``lax.map`` over 2 MiB blocks of output rows each contracted by
  ``dot_general``; ``sum(x * w, -1)`` with the dequantization fused into the reduction; the whole
  weight dequantized (in x's dtype for bfloat16) and one ``dot_general`` over both last axes;
* ``arrayq`` (marked with the form it picked): ``arrayq.linalg.quantized_matmul`` on JAX arrays,
  frontend checks included: what runs.

``numpy`` is ``arrayq.linalg.quantized_matmul`` on the NumPy backend (its C kernels where built),
in float32. Every form's result is checked against it before it is timed (float32: 1e-5 of the
largest output, sums of K products in another order; bfloat16: 2e-2, x and the output rounded to
8 significant bits).
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


def reference_forms(jax):
    """The two forms arrayq_jax does not run, written out here (4-bit only)."""
    jnp, lax = jax.numpy, jax.lax
    hi = lax.Precision.HIGHEST
    shifts = np.arange(0, 32, 4, dtype=np.uint32)

    def codes(packed):
        return ((packed[..., None] >> shifts) & np.uint32(15)).reshape(packed.shape[0], -1).astype(jnp.float32)

    def dequantize_dot(x, packed, scales, biases):
        q = codes(packed).reshape(packed.shape[0], scales.shape[1], -1)
        s, b = scales.astype(jnp.float32), biases.astype(jnp.float32)
        w = (q * s[..., None] + b[..., None]).reshape(packed.shape[0], -1)
        return jnp.matmul(x.astype(jnp.float32), w.T, precision=hi).astype(x.dtype)

    def group_dot_general(x, packed, scales, biases):
        n, g = scales.shape
        q = codes(packed).reshape(n, g, -1)  # (N, G, gs)
        xg = x.astype(jnp.float32).reshape(x.shape[0], g, -1)  # (M, G, gs)
        # batch over groups: (G, M, gs) x (G, N, gs) -> (G, M, N)
        part = lax.dot_general(xg, q, (((2,), (2,)), ((1,), (1,))), precision=hi)
        y = jnp.einsum("gmn,ng->mn", part, scales.astype(jnp.float32), precision=hi)
        return (y + jnp.matmul(xg.sum(-1), biases.astype(jnp.float32).T, precision=hi)).astype(x.dtype)

    return {"dequantize+matmul w.T": dequantize_dot, "group dot_general": group_dot_general}


def main() -> None:
    import jax

    from arrayq_jax import _quantized

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", default="1,32", help="rows of x, comma-separated (default 1,32)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = parser.parse_args()
    n = k = 1024 if args.quick else 4096
    rng = np.random.default_rng(0)
    qw = aq.quantize(rng.standard_normal((n, k)).astype(np.float32), group_size=64, bits=4)
    if args.dtype != "float32":  # scales and biases rounded to bfloat16; the reference takes the rounded ones
        import ml_dtypes

        half = [np.asarray(a).astype(ml_dtypes.bfloat16) for a in (qw.scales, qw.biases)]
        qw_jax = aq.to_backend(aq.QuantizedWeight(qw.packed, *half, 64, 4), "jax")
        qw = aq.QuantizedWeight(qw.packed, *(a.astype(np.float32) for a in half), 64, 4)
    else:
        qw_jax = aq.to_backend(qw, "jax")
    on_jax = [qw_jax.packed, qw_jax.scales, qw_jax.biases]
    platform = jax.devices()[0].platform
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({platform}); weight ({n}, {k}) 4-bit affine, "
        f"group 64, x, scales and biases in {args.dtype}"
    )
    forms = {**reference_forms(jax), **_quantized._forms(jax, 64, 4)}
    jitted = {name: jax.jit(fn) for name, fn in forms.items()}
    tolerance = 1e-5 if args.dtype == "float32" else 2e-2
    print("| form | M | wall ms | CPU ms |\n|---|---:|---:|---:|")
    for m in (int(r) for r in args.rows.split(",")):
        x = rng.standard_normal((m, k)).astype(np.float32)
        xj = aq.astype(aq.to_backend(x, "jax"), args.dtype)
        x = np.asarray(aq.to_numpy(aq.astype(xj, "float32")))  # the same (rounded) x for the reference
        want = aq.linalg.quantized_matmul(x, qw)
        scale = float(np.abs(want).max())
        runs = {"numpy (arrayq, C kernels)": lambda x=x: aq.linalg.quantized_matmul(x, qw)}
        for name, fn in jitted.items():
            runs[name] = lambda fn=fn, xj=xj: fn(xj, *on_jax).block_until_ready()
        picked = _quantized.linear_form(platform, m)
        runs[f"arrayq ({picked})"] = lambda xj=xj: aq.linalg.quantized_matmul(xj, qw_jax).block_until_ready()
        for name, run in runs.items():
            got = np.asarray(run(), dtype=np.float32)
            if not name.startswith("numpy"):
                np.testing.assert_allclose(got, want, rtol=0, atol=tolerance * scale, err_msg=name)
            wall, cpu = timed(run)
            print(f"| {name} | {m} | {wall * 1e3:.2f} | {cpu * 1e3:.2f} |", flush=True)


if __name__ == "__main__":
    main()
