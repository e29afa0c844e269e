"""The reference quantized matmuls: blockwise dequantize-then-matmul on any array-API
namespace, so that a call's extra memory stays bounded whatever the weight's size."""

from __future__ import annotations

import math

from ._common import _BLOCK_BYTES, _period, _prod, _require_float, _same_dtype, default_params
from ._formats import dequantize


def _check_quantized_weight(xp, packed, scales, biases, mode, group_size, bits):
    if not _same_dtype(xp.uint32, packed.dtype):
        raise TypeError(f"packed weight must be uint32, got {packed.dtype}")
    if packed.ndim < 2:
        raise ValueError("packed weight must have at least 2 dimensions")
    if scales.ndim != packed.ndim or tuple(scales.shape[:-1]) != tuple(packed.shape[:-1]):
        raise ValueError(f"scales shape {tuple(scales.shape)} does not match packed weight shape {tuple(packed.shape)}")
    if (packed.shape[-1] * 32) % bits or (packed.shape[-1] * 32 // bits != scales.shape[-1] * group_size):
        raise ValueError(
            f"packed weight {tuple(packed.shape)} and scales "
            f"{tuple(scales.shape)} are inconsistent with group_size="
            f"{group_size}, bits={bits}"
        )
    if mode == "affine":
        if biases is None or tuple(biases.shape) != tuple(scales.shape):
            raise ValueError("affine mode needs biases shaped like scales")
    elif biases is not None:
        raise ValueError(f"{mode} mode has no biases")


def _out_dtype(xp, x):
    _require_float(xp, x.dtype, "x")
    return x.dtype


def _rows_per_block(batch, inner, unit, block_rows=None):
    """Output rows per dequantized block in the matmul references.

    Default: as many rows as keep the float32 copy of the block (``batch``
    matrices x rows x ``inner`` x 4 bytes) within ``_BLOCK_BYTES`` (8 MiB),
    at least one unit.  The result is a positive multiple of ``unit``.
    """
    if block_rows is None:
        block = _BLOCK_BYTES // max(1, batch * inner * 4)
    else:
        block = int(block_rows)
        if block < 1:
            raise ValueError(f"block_rows must be positive, got {block_rows}")
    if block < unit:
        return unit
    return block // unit * unit if block_rows is None else -(-block // unit) * unit


def quantized_matmul_reference(
    xp, x, packed, scales, biases=None, *, transpose=True, group_size=None, bits=None, mode="affine", block_rows=None
):
    """Reference for ``mlx.core.quantized_matmul``: ``x @ W.T`` or ``x @ W``.

    ``W`` is the dequantized weight; its logical shape is ``(..., N, K)`` when
    ``transpose`` (packed ``(..., N, K*bits/32)``, scales ``(..., N, K/gs)``)
    and ``(..., K, N)`` otherwise (packed ``(..., K, N*bits/32)``, scales
    ``(..., K, N/gs)``).

    Semantics: ``x @ W(.T)`` accumulated in float32 and cast to ``x.dtype``,
    where ``W`` is the weight dequantized in float32: for affine, scales and
    biases are widened to float32 first and ``scale * q + bias`` is computed in
    float32 (not rounded to the scales dtype as :func:`dequantize` does), as
    MLX's GPU kernels do; fp modes decode exactly.  The weight is dequantized
    block by block along its output dimension (``N``) and multiplied with
    ``x`` cast to float32; the partial results are concatenated.  By default a block holds as many
    rows as keep its float32 copy (over all batch matrices) within 8 MiB;
    ``block_rows`` overrides that.  When ``transpose`` is False blocks are
    whole groups and whole packing periods (e.g. 32 columns for 3-bit).
    Peak extra memory is a small multiple of one block plus the float32
    copies of ``x`` and of the output.

    Args:
        x: float array ``(..., M, K)`` or ``(K,)``.
        packed, scales, biases: quantized weight (see :func:`quantize`);
            leading batch dims broadcast against those of ``x`` like
            ``matmul``.
        transpose, group_size, bits, mode: as in MLX.
        block_rows: optional block size along ``N``.

    Returns:
        array ``broadcast(x_batch, w_batch) + (M, N)`` (``(..., N)`` for 1-D
        ``x``) of dtype ``x.dtype``.

    Differences from MLX 0.32: for affine weights whose scales dtype differs
    from ``x.dtype``, MLX promotes (float16 x with float32 scales gives a
    float32 result) and casts scales/biases to that dtype before
    dequantizing; arrayq keeps ``x.dtype`` and dequantizes in float32.  MLX
    ignores all but the first weight matrix when ``w`` is batched
    but ``x`` has fewer than 3 dimensions; this function broadcasts like
    ``matmul``.  Accumulation order and precision differ (MLX's CPU kernels
    accumulate some paths in the input dtype), so results agree only to
    rounding error.

    Raises:
        TypeError / ValueError: bad dtypes, shapes or quantization params.
    """
    group_size, bits = default_params(mode, group_size, bits)
    _check_quantized_weight(xp, packed, scales, biases, mode, group_size, bits)
    if x.ndim < 1:
        raise ValueError("x must have at least one dimension")
    out_dtype = _out_dtype(xp, x)

    k_cols = packed.shape[-1] * 32 // bits
    if transpose:
        inner, outer = k_cols, packed.shape[-2]
    else:
        inner, outer = packed.shape[-2], k_cols
    if x.shape[-1] != inner:
        raise ValueError(
            f"x has inner dimension {x.shape[-1]} but the quantized weight "
            f"{'(N, K)' if transpose else '(K, N)'} = "
            f"{(outer, inner) if transpose else (inner, outer)} needs {inner}"
        )

    x32 = xp.astype(x, xp.float32)
    deq_dtype = xp.float32

    def widened(a):  # affine scale/bias blocks in float32, so W is computed in float32
        return a if a is None or mode != "affine" else xp.astype(a, xp.float32)

    # Block unit along N: one row when transposed; whole groups and whole
    # packing periods otherwise.
    if transpose:
        unit = 1
    else:
        n_vals, _ = _period(bits)
        unit = group_size * n_vals // math.gcd(group_size, n_vals)
    block = _rows_per_block(_prod(packed.shape[:-2]), inner, unit, block_rows)

    parts = []
    for n0 in range(0, outer, block):
        n1 = min(outer, n0 + block)
        if transpose:
            wb = dequantize(
                xp,
                packed[..., n0:n1, :],
                widened(scales[..., n0:n1, :]),
                None if biases is None else widened(biases[..., n0:n1, :]),
                group_size,
                bits,
                mode,
                deq_dtype,
            )
            wb = xp.matrix_transpose(xp.astype(wb, xp.float32))
        else:
            w0, w1 = n0 * bits // 32, n1 * bits // 32
            g0, g1 = n0 // group_size, n1 // group_size
            wb = dequantize(
                xp,
                packed[..., w0:w1],
                widened(scales[..., g0:g1]),
                None if biases is None else widened(biases[..., g0:g1]),
                group_size,
                bits,
                mode,
                deq_dtype,
            )
            wb = xp.astype(wb, xp.float32)
        parts.append(xp.matmul(x32, wb))
    if not parts:  # N == 0
        out = xp.matmul(x32, xp.zeros((inner, 0), dtype=xp.float32))
    elif len(parts) == 1:
        out = parts[0]
    else:
        out = xp.concat(parts, axis=-1)
    return xp.astype(out, out_dtype)


def gather_qmm_reference(
    xp,
    x,
    packed,
    scales,
    biases=None,
    lhs_indices=None,
    rhs_indices=None,
    *,
    transpose=True,
    group_size=None,
    bits=None,
    mode="affine",
):
    """Reference for ``mlx.core.gather_qmm`` (matrix-level gather + qmm).

    ``x`` has shape ``(*Bx, M, K)`` and the quantized weight ``(*Bw, N, K)``
    (``transpose``) or ``(*Bw, K, N)``, e.g. one matrix per expert.
    ``lhs_indices`` (default ``arange(prod(Bx)).reshape(Bx)``) and
    ``rhs_indices`` (default ``arange(prod(Bw)).reshape(Bw)``) are integer
    arrays of flat indices into the batch dims of ``x`` and ``w``; they are
    broadcast together to a shape ``S`` and

        out[s] = x_flat[lhs[s]] @ W_flat[rhs[s]](.T)

    computed as :func:`quantized_matmul_reference` does.  The gathered
    packed weights are processed in chunks so that temporary copies stay
    bounded.

    Returns:
        array of shape ``S + (M, N)`` and dtype ``x.dtype``.

    Raises:
        TypeError / ValueError: bad dtypes, shapes or parameters, or
        ``x.ndim < 2``.  Out-of-range indices give unspecified results.
    """
    group_size, bits = default_params(mode, group_size, bits)
    _check_quantized_weight(xp, packed, scales, biases, mode, group_size, bits)
    if x.ndim < 2:
        raise ValueError("gather_qmm needs x with at least 2 dimensions")
    out_dtype = _out_dtype(xp, x)
    bx = tuple(x.shape[:-2])
    bw = tuple(packed.shape[:-2])
    nx, nw = _prod(bx), _prod(bw)
    m, kx = x.shape[-2], x.shape[-1]
    x_flat = xp.reshape(x, (nx, m, kx))

    def flat_w(a):
        return None if a is None else xp.reshape(a, (nw,) + tuple(a.shape[-2:]))

    pw, sw, bwt = flat_w(packed), flat_w(scales), flat_w(biases)

    if lhs_indices is None:
        lhs_indices = xp.reshape(xp.arange(nx, dtype=xp.int32), bx)
    if rhs_indices is None:
        rhs_indices = xp.reshape(xp.arange(nw, dtype=xp.int32), bw)
    for name_, ind in (("lhs_indices", lhs_indices), ("rhs_indices", rhs_indices)):
        if not xp.isdtype(ind.dtype, "integral"):
            raise TypeError(f"{name_} must be an integer array, got {ind.dtype}")
    lhs, rhs = xp.broadcast_arrays(lhs_indices, rhs_indices)
    out_batch = tuple(lhs.shape)
    p = _prod(out_batch)
    lhs = xp.reshape(xp.astype(lhs, xp.int32), (p,))
    rhs = xp.reshape(xp.astype(rhs, xp.int32), (p,))

    k_cols = packed.shape[-1] * 32 // bits
    n_out = packed.shape[-2] if transpose else k_cols
    k_in = k_cols if transpose else packed.shape[-2]
    if kx != k_in:
        raise ValueError(f"x has inner dimension {kx} but the quantized weight needs {k_in}")
    if p == 0:
        return xp.zeros(out_batch + (m, n_out), dtype=out_dtype)

    # Chunk the gathered problems so that the per-chunk copies (packed
    # weights, float32 x, float32 output) stay around _BLOCK_BYTES; inside a
    # chunk quantized_matmul_reference bounds the dequantized blocks.
    per_problem = 4 * (_prod(packed.shape[-2:]) + m * kx + m * n_out)
    chunk = max(1, _BLOCK_BYTES // per_problem)
    outs = []
    for p0 in range(0, p, chunk):
        p1 = min(p, p0 + chunk)
        li, ri = lhs[p0:p1], rhs[p0:p1]
        xg = xp.take(x_flat, li, axis=0)
        y = quantized_matmul_reference(
            xp,
            xg,
            xp.take(pw, ri, axis=0),
            xp.take(sw, ri, axis=0),
            None if bwt is None else xp.take(bwt, ri, axis=0),
            transpose=transpose,
            group_size=group_size,
            bits=bits,
            mode=mode,
        )
        outs.append(y)
    out = outs[0] if len(outs) == 1 else xp.concat(outs, axis=0)
    return xp.reshape(out, out_batch + (m, n_out))
