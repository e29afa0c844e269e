"""Bit packing: codes of ``bits`` bits into MLX's little-endian uint32 words, and back."""

from __future__ import annotations

from ._common import _period, _u32, packed_width


def pack(xp, q, bits):
    """Pack integer codes into uint32 words, exactly as MLX lays them out.

    The codes of a row form one little-endian bit stream: value ``i`` occupies
    stream bits ``[i*bits, (i+1)*bits)`` with its least significant bit first,
    and word ``j`` holds stream bits ``[32*j, 32*j+32)`` (bit 0 = LSB).  For
    bits 3, 5 and 6 values straddle word boundaries.  (MLX's CPU kernel writes
    3- and 6-bit codes in 3-byte units and 5-bit codes in 5-byte units; on a
    little-endian layout that is the same stream.)

    Args:
        xp: array namespace.
        q: integer array of shape ``(..., k)``; values must be in
            ``[0, 2**bits)`` (higher bits are discarded silently).
        bits: bits per value, ``1 <= bits <= 32``.

    Returns:
        uint32 array of shape ``(..., k * bits // 32)``.

    Raises:
        ValueError: bad ``bits``, ``q.ndim == 0`` or ``k * bits % 32 != 0``.
    """
    bits = int(bits)
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in [1, 32], got {bits}")
    if q.ndim < 1:
        raise ValueError("pack needs an array with at least one dimension")
    k = q.shape[-1]
    n_words = packed_width(k, bits)
    n_vals, n_w = _period(bits)
    lead = tuple(q.shape[:-1])
    q = xp.astype(q, xp.uint32)
    if bits < 32:
        q = xp.bitwise_and(q, _u32(xp, (1 << bits) - 1))
    q = xp.reshape(q, lead + (k // n_vals, n_vals))
    words = [None] * n_w
    for j in range(n_vals):
        off = j * bits
        wi, sh = divmod(off, 32)
        v = q[..., j]
        lo = xp.bitwise_left_shift(v, _u32(xp, sh)) if sh else v
        words[wi] = lo if words[wi] is None else xp.bitwise_or(words[wi], lo)
        if sh + bits > 32:
            hi = xp.bitwise_right_shift(v, _u32(xp, 32 - sh))
            words[wi + 1] = hi if words[wi + 1] is None else xp.bitwise_or(words[wi + 1], hi)
    out = xp.stack(words, axis=-1)
    return xp.reshape(out, lead + (n_words,))


def unpack(xp, packed, bits, k=None):
    """Inverse of :func:`pack`.

    Args:
        xp: array namespace.
        packed: uint32 array of shape ``(..., n_words)``.
        bits: bits per value, ``1 <= bits <= 32``.
        k: number of values per row; defaults to ``n_words * 32 // bits``.
            Must equal that value.

    Returns:
        uint32 array of shape ``(..., k)`` with values in ``[0, 2**bits)``.

    Raises:
        ValueError: bad ``bits``/``k`` or ``n_words`` not a whole number of
            packing periods.
    """
    bits = int(bits)
    if not 1 <= bits <= 32:
        raise ValueError(f"bits must be in [1, 32], got {bits}")
    if packed.ndim < 1:
        raise ValueError("unpack needs an array with at least one dimension")
    n_words = packed.shape[-1]
    if (n_words * 32) % bits:
        raise ValueError(f"{n_words} words do not hold whole {bits}-bit values")
    k_full = n_words * 32 // bits
    if k is not None and int(k) != k_full:
        raise ValueError(f"{n_words} uint32 words hold {k_full} values of {bits} bits, not {k}")
    n_vals, n_w = _period(bits)
    if n_words % n_w:
        raise ValueError(f"{bits}-bit packing needs a multiple of {n_w} words, got {n_words}")
    lead = tuple(packed.shape[:-1])
    w = xp.reshape(xp.astype(packed, xp.uint32), lead + (n_words // n_w, n_w))
    mask = _u32(xp, (1 << bits) - 1) if bits < 32 else None
    vals = []
    for j in range(n_vals):
        wi, sh = divmod(j * bits, 32)
        v = w[..., wi]
        if sh:
            v = xp.bitwise_right_shift(v, _u32(xp, sh))
        if sh + bits > 32:
            v = xp.bitwise_or(v, xp.bitwise_left_shift(w[..., wi + 1], _u32(xp, 32 - sh)))
        if mask is not None:
            v = xp.bitwise_and(v, mask)
        vals.append(v)
    out = xp.stack(vals, axis=-1)
    return xp.reshape(out, lead + (k_full,))
