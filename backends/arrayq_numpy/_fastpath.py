"""The NumPy backend's fast path for affine quantized matmul.

The reference in ``arrayq.quant`` is written against the array API and is the
definition; this is the same arithmetic arranged for NumPy's strengths, and is checked
against the reference in the tests. Work goes block by block over output rows, so the
extra memory of a call stays bounded (a block of float32 codes of ~``BLOCK_ELEMENTS``
values) however large the weight is.

* decode (few rows of x): per group ``g`` of ``group_size`` columns,
  ``y = sum_g scale_g * (codes_g . x_g) + bias_g * sum(x_g)`` — the codes are only
  converted to float32, never scaled, and the dot products run as one batched matmul.
* prefill (many rows): scale a block of float32 codes and hand it to BLAS; the biases
  add ``bias @ sum_g(x)`` once at the end.

Accumulation is in float32; scales and biases are widened to float32 first, so bfloat16
checkpoints lose nothing to the kernel (MLX's CPU kernel accumulates in bfloat16).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

#: Float32 values of one dequantized block (8 MiB): the bound on a call's extra memory.
BLOCK_ELEMENTS = 1 << 21
#: Up to this many rows of x, the grouped-dot (decode) strategy beats dequantize+matmul.
DECODE_MAX_ROWS = 8


def unpack_codes(packed: np.ndarray, bits: int) -> np.ndarray:
    """uint8 codes (..., cols) from MLX's packed uint32 words (..., cols * bits / 32).

    The row is one little-endian bit stream, so every ``bits`` bytes hold exactly 8 codes:
    gather those bytes into one integer and cut it into eight ``bits``-bit fields."""
    data = np.ascontiguousarray(packed).view(np.uint8)
    lead, nbytes = data.shape[:-1], data.shape[-1]
    mask = np.uint8((1 << bits) - 1)
    if 8 % bits == 0:  # 1, 2, 4, 8 bits: fields never cross a byte
        shifts = np.arange(0, 8, bits, dtype=np.uint8)
        codes = (data[..., None] >> shifts) & mask
    else:  # 3, 5, 6 bits: fields cross bytes; 8 codes per `bits` bytes
        units = data.reshape(*lead, nbytes // bits, bits).astype(np.uint64)
        word = np.zeros(units.shape[:-1], np.uint64)
        for i in range(bits):
            word |= units[..., i] << np.uint64(8 * i)
        shifts = np.arange(0, 8 * bits, bits, dtype=np.uint64)
        codes = ((word[..., None] >> shifts) & np.uint64(mask)).astype(np.uint8)
    return codes.reshape(*lead, nbytes * 8 // bits)


@functools.cache
def _byte_table(bits: int) -> np.ndarray:
    """(256, 8 // bits) float32: the codes each byte value holds, lowest bits first."""
    values = np.arange(256, dtype=np.uint16)[:, None] >> np.arange(0, 8, bits, dtype=np.uint16)
    return (values & ((1 << bits) - 1)).astype(np.float32)


def codes_f32(packed: np.ndarray, bits: int) -> np.ndarray:
    """float32 codes (..., cols). For 1, 2, 4 and 8 bits one table lookup per byte
    (NumPy's take is ~4x faster than shifting, masking and converting)."""
    if 8 % bits:
        return unpack_codes(packed, bits).astype(np.float32)
    data = np.ascontiguousarray(packed).view(np.uint8)
    return np.take(_byte_table(bits), data, axis=0).reshape(*data.shape[:-1], -1)


def _dequantize_rows(
    packed: np.ndarray, scales: np.ndarray, biases: np.ndarray, bits: int, group_size: int
) -> np.ndarray:
    """float32 (rows, cols) for a block of rows, scales/biases already float32."""
    codes = codes_f32(packed, bits)
    rows, cols = codes.shape
    grouped = codes.reshape(rows, cols // group_size, group_size)
    grouped *= scales[:, :, None]
    grouped += biases[:, :, None]
    return codes


def dequantize(
    packed: np.ndarray, scales: np.ndarray, biases: np.ndarray, group_size: int, bits: int, dtype: np.dtype
) -> np.ndarray:
    """MLX's affine dequantization in NumPy calls: the reference's arithmetic
    (``arrayq.quant._formats.dequantize``) step for step, ``scale * q`` rounded to the
    scales' dtype, ``+ bias`` rounded again, then cast to ``dtype``; only the unpacking is
    NumPy's own (``codes_f32``: exact small integers either way). packed (..., rows, words),
    scales and biases (..., rows, groups) of one float dtype. Returns (..., rows, cols)."""
    codes = codes_f32(packed, bits)
    lead, cols = codes.shape[:-1], codes.shape[-1]
    t = codes.reshape(*lead, cols // group_size, group_size)
    t *= scales.astype(np.float32)[..., None]
    narrow = scales.dtype
    if narrow != np.float32:  # (as the reference's _round_narrow: to the scales' dtype and back)
        t = t.astype(narrow).astype(np.float32)
    t += biases.astype(np.float32)[..., None]
    return t.astype(narrow).astype(dtype, copy=False).reshape(*lead, cols)


def rows_per_block(cols: int) -> int:
    """Rows of a weight with ``cols`` columns in one float32 block of ``BLOCK_ELEMENTS``."""
    return max(1, BLOCK_ELEMENTS // cols)


def blocks_times(block: Callable[[int, int], np.ndarray], rows: int, cols: int, xt: np.ndarray) -> np.ndarray:
    """``W @ xt`` (rows, M) float32 for a weight W (rows, cols) made block by block:
    ``block(r, n)`` gives rows r .. r+n of W as float32 (n, cols). W_block @ x.T fills
    contiguous rows of the result (BLAS is several times faster this way round than
    x @ W_block.T for blocks of a few hundred rows)."""
    out_t = np.empty((rows, xt.shape[1]), np.float32)
    step = rows_per_block(cols)
    for r in range(0, rows, step):
        n = min(step, rows - r)
        np.matmul(block(r, n), xt, out=out_t[r : r + n])
    return out_t


def affine_matmul(
    x: np.ndarray,
    packed: np.ndarray,
    scales: np.ndarray,
    biases: np.ndarray,
    transpose: bool,
    group_size: int,
    bits: int,
    factored: bool = True,
) -> np.ndarray:
    """``x @ W.T`` (transpose) or ``x @ W`` for an unbatched affine weight W.

    x: (M, K) float32. packed/scales/biases: 2-D as stored. Returns (M, N) float32.
    ``factored`` false (x holds NaN or inf): W's rows are dequantized in full and multiplied,
    without the per-group factoring, which would turn inf into NaN."""
    s32, b32 = scales.astype(np.float32), biases.astype(np.float32)
    rows, cols = packed.shape[0], scales.shape[1] * group_size
    m = x.shape[0]
    block = rows_per_block(cols)
    if not transpose:  # W is (K, N): sum over blocks of K rows
        out = np.zeros((m, cols), np.float32)
        for r in range(0, rows, block):
            out += x[:, r : r + block] @ _dequantize_rows(
                packed[r : r + block], s32[r : r + block], b32[r : r + block], bits, group_size
            )
        return out
    if not factored:

        def dequantized(r: int, n: int) -> np.ndarray:
            return _dequantize_rows(packed[r : r + n], s32[r : r + n], b32[r : r + n], bits, group_size)

        return np.ascontiguousarray(blocks_times(dequantized, rows, cols, np.ascontiguousarray(x.T)).T)
    if m <= DECODE_MAX_ROWS:
        out = np.empty((m, rows), np.float32)
        groups = cols // group_size
        xg = x.reshape(m, groups, group_size)
        xsum = xg.sum(axis=-1)  # (M, G)
        for r in range(0, rows, block):
            codes = codes_f32(packed[r : r + block], bits).reshape(-1, groups, group_size)
            dots = np.einsum("rgk,mgk->mrg", codes, xg)  # (M, R, G)
            out[:, r : r + block] = np.einsum("mrg,rg->mr", dots, s32[r : r + block]) + xsum @ b32[r : r + block].T
        return out
    # prefill: only the scales touch a block; the biases enter once, as bias @ (x summed
    # per group)
    groups = cols // group_size

    def scaled_codes(r: int, n: int) -> np.ndarray:
        w = codes_f32(packed[r : r + n], bits)
        w.reshape(-1, groups, group_size).__imul__(s32[r : r + n, :, None])
        return w

    out_t = blocks_times(scaled_codes, rows, cols, np.ascontiguousarray(x.T))
    out_t += b32 @ x.reshape(m, groups, group_size).sum(axis=-1).T
    return np.ascontiguousarray(out_t.T)
