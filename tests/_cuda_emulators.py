"""NumPy emulations of arrayq's CUDA kernels for MLX (``backends/arrayq_mlx/cuda/*.cu``), for
the tests on a machine without a GPU (tests/test_mlx_cuda_kernels.py): each follows its
kernel's indexing and arithmetic step by step, so that a wrong offset, shift, pairing or
fragment layout shows against arrayq's reference formats. The kernels themselves run in
``benchmarks/bench_cuda.py --check`` on a CUDA device.
"""

from __future__ import annotations

from typing import Any

from arrayq_mlx.cuda import (
    ATTENTION_KEYS_PER_STEP,
    ATTENTION_WARPS,
    DECODE_TC_KS,
    DECODE_TC_KSPLIT,
    decode_tc_m_tile,
    layout,
)


def emulate_decode(xp: Any, x: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int) -> Any:
    """A NumPy emulation of the decode kernel's indexing and arithmetic, chunk by chunk:
    the same word offsets, shifts, funnel shifts, mantissa trick and per-chunk
    ``s*2**bits * sum(f*x) + (b - s*2**bits) * sum(x)``, in float64 (so it checks the
    math, not the rounding). ``xp`` is NumPy; x ``(M, K)``, returns ``(M, N)``."""
    lay = layout(bits, group_size)
    n, kw = packed.shape
    k = kw * 32 // bits
    words = xp.asarray(packed, dtype=xp.uint64).reshape(n, k // lay.vals, lay.words)
    field = ((1 << bits) - 1) << (23 - bits)
    codes_f = []
    for i in range(lay.vals):
        bit = i * bits
        wi, sh = bit >> 5, bit & 31
        v = words[:, :, wi] >> xp.uint64(sh)
        if sh + bits > 32 and wi + 1 < lay.words:  # __funnelshift_r(lo, hi, sh)
            v = ((words[:, :, wi + 1] << xp.uint64(32)) | words[:, :, wi]) >> xp.uint64(sh)
        v = v & xp.uint64(0xFFFFFFFF)
        mant = ((v << xp.uint64(23 - bits)) & xp.uint64(field)) | xp.uint64(0x3F800000)
        codes_f.append(mant.astype(xp.uint32).view(xp.float32).astype(xp.float64))
    f = xp.stack(codes_f, axis=-1)  # (N, chunks, VALS): 1 + q / 2**bits
    xs = xp.asarray(x, dtype=xp.float64).reshape(x.shape[0], k // lay.vals, lay.vals)
    per_chunk = lay.vals // group_size if lay.vals >= group_size else 1
    assert per_chunk == 1, "a chunk lies inside one group"
    chunk_group = (xp.arange(k // lay.vals) * lay.vals) // group_size
    s = xp.asarray(scales, dtype=xp.float64)[:, chunk_group]
    b = xp.asarray(biases, dtype=xp.float64)[:, chunk_group]
    s2 = s * 2.0**bits
    b2 = b - s2
    d = xp.einsum("ncv,mcv->mnc", f, xs)
    sx = xs.sum(-1)  # (M, chunks)
    return (s2[None] * d + b2[None] * sx[:, None, :]).sum(-1)


def emulate_dequantize(xp: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int) -> Any:
    """A NumPy emulation of the dequantize kernel's indexing: thread ``t`` -> chunk, part
    ``j`` of 8 values, the two words at ``(8*j*bits) >> 5`` read as one 64-bit window and
    shifted by ``(8*j*bits) & 31``, codes ``(window >> i*bits) & mask``; returns W ``(N, K)``
    as float64 ``s*q + b``."""
    lay = layout(bits, group_size)
    n, kw = packed.shape
    k = kw * 32 // bits
    words = xp.asarray(packed, dtype=xp.uint64).reshape(n, k // lay.vals, lay.words)
    words = xp.concatenate([words, xp.zeros((n, k // lay.vals, 1), dtype=xp.uint64)], axis=-1)  # "hi = 0"
    parts = []
    for j in range(lay.vals // 8):
        bit0 = 8 * j * bits
        wi = bit0 >> 5
        win = ((words[:, :, wi + 1] << xp.uint64(32)) | words[:, :, wi]) >> xp.uint64(bit0 & 31)
        for i in range(8):
            parts.append((win >> xp.uint64(i * bits)) & xp.uint64((1 << bits) - 1))
    q = xp.stack(parts, axis=-1).reshape(n, k).astype(xp.float64)
    g = xp.arange(k) // group_size
    return xp.asarray(scales, dtype=xp.float64)[:, g] * q + xp.asarray(biases, dtype=xp.float64)[:, g]


def emulate_qmm_weight(xp: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int) -> Any:
    """A NumPy emulation of the fused kernel's A fragments: for each K tile of 64, k16 step
    and lane ``t`` (``lane & 3``), the code pairs at ``16*s16 + 2t`` and ``+ 8`` of a row are
    shifted out of the tile's words (a funnel shift of two words where a pair straddles
    them), turned into ``1 + q/2**bits`` and ``s2*f + b2`` (float32), and rounded to
    bfloat16. Returns W ``(N, K)`` as float64; asserts each element is made exactly once."""
    n, kw = packed.shape
    k = kw * 32 // bits
    words = xp.asarray(packed, dtype=xp.uint64)
    tile_words = 2 * bits  # 64 values
    w = xp.full((n, k), xp.nan)
    s = xp.asarray(scales, dtype=xp.float32)
    b = xp.asarray(biases, dtype=xp.float32)
    field = ((1 << bits) - 1) << (23 - bits)

    def bf16(v: Any) -> Any:  # float32 -> bfloat16 (round to nearest even), as float64
        u = xp.asarray(v, dtype=xp.float32).view(xp.uint32).astype(xp.uint64)
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16
        return u.astype(xp.uint32).view(xp.float32).astype(xp.float64)

    for kt in range(k // 64):
        tw = words[:, kt * tile_words : (kt + 1) * tile_words]
        tw = xp.concatenate([tw, xp.zeros((n, 1), dtype=xp.uint64)], axis=1)  # the row's padding
        for s16 in range(4):
            for t in range(4):
                for ka in (16 * s16 + 2 * t, 16 * s16 + 2 * t + 8):
                    bit = ka * bits
                    wi, sh = bit >> 5, bit & 31
                    v = ((tw[:, wi + 1] << xp.uint64(32)) | tw[:, wi]) >> xp.uint64(sh)
                    v = v & xp.uint64(0xFFFFFFFF)
                    g = (kt * 64 + ka) // group_size
                    s2 = s[:, g] * xp.float32(1 << bits)
                    b2 = b[:, g] - s2
                    for e in range(2):
                        mant = ((v << xp.uint64(23 - bits - e * bits)) & xp.uint64(field)) | xp.uint64(0x3F800000)
                        f = mant.astype(xp.uint32).view(xp.float32)
                        col = kt * 64 + ka + e
                        assert xp.isnan(w[:, col]).all(), "made twice"
                        w[:, col] = bf16((s2.astype(xp.float64) * f + b2).astype(xp.float32))
    assert not xp.isnan(w).any(), "every element made"
    return w


def round_to(xp: Any, v: Any, dtype: str) -> Any:
    """float64 ``v`` rounded once (to nearest even) to bfloat16 or float16, as float64
    (normal range; what ``fma.rn.bf16x2``/``fma.rn.f16x2`` do to the exact ``s*q + b``)."""
    v = xp.asarray(v, dtype=xp.float64)
    if dtype == "float16":
        return v.astype(xp.float16).astype(xp.float64)
    u = v.view(xp.uint64)
    u = (u + xp.uint64(2**44 - 1) + ((u >> xp.uint64(45)) & xp.uint64(1))) & ~xp.uint64(2**45 - 1)
    return u.view(xp.float64)


def _half_bits(xp: Any, v: Any, dtype: str) -> Any:
    """Bit patterns (uint64) of float64 values exact in ``dtype`` (bfloat16 or float16)."""
    if dtype == "float16":
        return xp.asarray(v, dtype=xp.float16).view(xp.uint16).astype(xp.uint64)
    return (xp.asarray(v, dtype=xp.float32).view(xp.uint32) >> xp.uint32(16)).astype(xp.uint64)


def _half_value(xp: Any, bits16: Any, dtype: str) -> Any:
    """float64 values of 16-bit patterns of ``dtype``."""
    if dtype == "float16":
        return bits16.astype(xp.uint16).view(xp.float16).astype(xp.float64)
    return (bits16.astype(xp.uint32) << xp.uint32(16)).view(xp.float32).astype(xp.float64)


def emulate_qmm_weight_h2(
    xp: Any, packed: Any, scales: Any, biases: Any, bits: int, group_size: int, dtype: str = "bfloat16"
) -> Any:
    """A NumPy emulation of the fused kernel's A fragments when x and the scales/biases share
    the 16-bit ``dtype`` (``aq_deq2h``): per K tile, k16 step and lane ``t``, the word(s) the
    kernel reads, ``__byte_perm(v, v >> bits, sel)`` (4-bit: ``v`` the tile's word ``2*s16``
    or ``2*s16 + 1`` and ``sel = t | (4 + t) << 8``; otherwise ``v`` the code pair shifted to
    bit 0 and ``sel = 0x0400``), the mask and the magic number (128 in bfloat16, 1024 in
    float16), its exact subtraction (asserted), and one fma rounded once to ``dtype``.
    ``scales``/``biases`` must be exact in ``dtype``. Returns W ``(N, K)`` as float64."""
    n, kw = packed.shape
    k = kw * 32 // bits
    words = xp.asarray(packed, dtype=xp.uint64)
    tile_words = 2 * bits
    magic16 = 0x4300 if dtype == "bfloat16" else 0x6400
    magic = xp.uint64(magic16 * 0x10001)
    mask = xp.uint64(((1 << bits) - 1) * 0x10001)
    magic_v = float(_half_value(xp, xp.asarray([magic16], dtype=xp.uint64), dtype)[0])
    s = xp.asarray(scales, dtype=xp.float64)
    b = xp.asarray(biases, dtype=xp.float64)
    assert (_half_value(xp, _half_bits(xp, s, dtype), dtype) == s).all(), "scales exact in dtype"
    w = xp.full((n, k), xp.nan)

    for kt in range(k // 64):
        tw = words[:, kt * tile_words : (kt + 1) * tile_words]
        tw = xp.concatenate([tw, xp.zeros((n, 1), dtype=xp.uint64)], axis=1)  # the row's padding
        for s16 in range(4):
            for t in range(4):
                for ka in (16 * s16 + 2 * t, 16 * s16 + 2 * t + 8):
                    if bits == 4:
                        v, sel = tw[:, ka // 8], t | (4 + t) << 8
                    else:
                        bit = ka * bits
                        wi, sh = bit >> 5, bit & 31
                        v = (((tw[:, wi + 1] << xp.uint64(32)) | tw[:, wi]) >> xp.uint64(sh)) & xp.uint64(0xFFFFFFFF)
                        sel = 0x0400
                    r = (_byte_perm(v, v >> xp.uint64(bits), sel) & mask) | magic
                    g = (kt * 64 + ka) // group_size
                    for e in range(2):
                        m = _half_value(xp, (r >> xp.uint64(16 * e)) & xp.uint64(0xFFFF), dtype)
                        q = m - magic_v
                        assert (round_to(xp, q, dtype) == q).all(), "magic subtracted exactly"
                        col = kt * 64 + ka + e
                        assert xp.isnan(w[:, col]).all(), "made twice"
                        w[:, col] = round_to(xp, s[:, g] * q + b[:, g], dtype)
    assert not xp.isnan(w).any(), "every element made"
    return w


def _byte_perm(lo: Any, hi: Any, sel: int) -> Any:
    """CUDA's ``__byte_perm(lo, hi, sel)`` (selector nibbles 0-7) on Python ints or uint64
    arrays."""
    src = [(lo >> (8 * i)) & 255 for i in range(4)] + [(hi >> (8 * i)) & 255 for i in range(4)]
    return sum(src[(sel >> (4 * i)) & 7] << (8 * i) for i in range(4))


#: Fragment layouts of ``mma.sync.m16n8k16`` (PTX ISA) for lane ``(g, t) = (lane >> 2,
#: lane & 3)``: the (row, column) of the low half of each A register, the (k, column) of the
#: low half of each B register (the high half is the next column / k), and the (row,
#: column) of each C element.
def _mma_a(g: int, t: int) -> tuple[tuple[int, int], ...]:
    return ((g, 2 * t), (g + 8, 2 * t), (g, 2 * t + 8), (g + 8, 2 * t + 8))


def _mma_b(g: int, t: int) -> tuple[tuple[int, int], ...]:
    return ((2 * t, g), (2 * t + 8, g))


def _mma_c(g: int, t: int) -> tuple[tuple[int, int], ...]:
    return ((g, 2 * t), (g, 2 * t + 1), (g + 8, 2 * t), (g + 8, 2 * t + 1))


def emulate_decode_tc(
    xp: Any,
    x: Any,
    packed: Any,
    scales: Any,
    biases: Any,
    bits: int,
    group_size: int,
    dtype: str = "bfloat16",
    ksplit: int = DECODE_TC_KSPLIT,
) -> Any:
    """A lane-level NumPy emulation of the tensor-core decode kernel (``decode_tc.cu``):
    blocks of 4 warps, each warp's tile of 16 rows and its share of the K stages, the stage in
    shared memory (rows past N zero, padding words garbage), each lane's registers as the
    source builds them (``aq_codes8``, ``aq_code_pair``, the x words and their
    ``__byte_perm`` selectors), every mma's A and B assembled from the 32 lanes' registers by
    the PTX fragment layouts (each element exactly once) and its C scattered back to the
    lanes, the group epilogue with the scales of the clamped rows, the K split's partial sums,
    and the output indexing (each element written exactly once). x ``(M, K)`` holds values
    exact in ``dtype`` (bfloat16 or float16); float64 arithmetic (it checks the indexing and
    the algebra, not float32 rounding); returns ``(M, N)``."""
    n_rows, _ = packed.shape
    m_rows, k = x.shape
    mt = decode_tc_m_tile(m_rows)
    nbt = (mt + 7) // 8
    stages, groups = k // DECODE_TC_KS, DECODE_TC_KS // group_size
    stage_words = DECODE_TC_KS * bits // 32
    words = xp.asarray(packed, dtype=xp.uint64)
    xbits = _half_bits(xp, x, dtype)
    magic16 = 0x4300 if dtype == "bfloat16" else 0x6400
    magic = float(_half_value(xp, xp.asarray([magic16], dtype=xp.uint64), dtype)[0])
    s = xp.asarray(scales, dtype=xp.float64)
    b = xp.asarray(biases, dtype=xp.float64)
    mask = (1 << bits) - 1
    garbage = xp.random.default_rng(0)
    out = xp.full((m_rows, n_rows), xp.nan)
    written = xp.zeros((m_rows, n_rows), dtype=int)

    def half(v: int) -> float:
        return float(_half_value(xp, xp.asarray([v & 0xFFFF], dtype=xp.uint64), dtype)[0])

    def codes8(row: list[int], first: int) -> int:  # aq_codes8
        bit = first * bits
        if 8 * bits <= 32 and 32 % (8 * bits) == 0:
            return row[bit >> 5] >> (bit & 31)
        return (row[bit >> 5] | (row[(bit >> 5) + 1] << 32)) >> (bit & 31)

    def code_pair(u: int, i: int) -> int:  # aq_code_pair
        v = u >> (i * bits)
        lo = v & 0xFFFFFFFF
        hi = (v >> (4 * bits - 16)) & 0xFFFFFFFF if 4 * bits >= 16 else (lo << (16 - 4 * bits)) & 0xFFFFFFFF
        return (lo & mask) | (hi & (mask << 16)) | (magic16 * 0x10001)

    tiles = -(-n_rows // 16)
    for block in range(-(-tiles // (4 // ksplit))):
        tot = xp.zeros((4, 32, nbt, 4))
        for wib in range(4):
            ks, row0 = wib % ksplit, (block * (4 // ksplit) + wib // ksplit) * 16
            nst = (stages - ks + ksplit - 1) // ksplit if row0 < n_rows and ks < stages else 0
            for i in range(nst):
                st = ks + i * ksplit
                smem = []
                for r in range(16):
                    n = row0 + r
                    codes = [int(w) for w in words[n, st * stage_words : (st + 1) * stage_words]] if n < n_rows else []
                    smem.append((codes or [0] * stage_words) + [int(w) for w in garbage.integers(0, 2**32, 4)])
                for gi in range(groups):
                    acc = xp.zeros((32, nbt, 4))
                    sums = xp.zeros((32, nbt, 4))
                    for p in range(gi * group_size // 32, (gi + 1) * group_size // 32):
                        for nb in range(nbt):
                            for e in range(2):
                                a_mat = xp.full((16, 16), xp.nan)
                                b_mat = xp.full((16, 8), xp.nan)
                                for lane in range(32):
                                    g, t = lane >> 2, lane & 3
                                    u0, u1 = codes8(smem[g], 32 * p + 8 * t), codes8(smem[g + 8], 32 * p + 8 * t)
                                    a_regs = [code_pair(u0, 2 * e), code_pair(u1, 2 * e)]
                                    a_regs += [code_pair(u0, 2 * e + 1), code_pair(u1, 2 * e + 1)]
                                    m, k0 = 8 * nb + g, st * DECODE_TC_KS + 32 * p + 8 * t
                                    xs = [int(xbits[m, k0 + j]) if m < m_rows else 0 for j in range(8)]
                                    xw = [xs[2 * j] | xs[2 * j + 1] << 16 for j in range(4)]
                                    xlo, xhi = (xw[1], xw[3]) if e else (xw[0], xw[2])
                                    b_regs = (_byte_perm(xlo, xhi, 0x5410), _byte_perm(xlo, xhi, 0x7632))
                                    for reg, (r, c) in zip(a_regs, _mma_a(g, t)):
                                        assert xp.isnan(a_mat[r, c : c + 2]).all(), "A element given twice"
                                        a_mat[r, c], a_mat[r, c + 1] = half(reg), half(reg >> 16)
                                    for reg, (kk, c) in zip(b_regs, _mma_b(g, t)):
                                        assert xp.isnan(b_mat[kk : kk + 2, c]).all(), "B element given twice"
                                        b_mat[kk, c], b_mat[kk + 1, c] = half(reg), half(reg >> 16)
                                assert not (xp.isnan(a_mat).any() or xp.isnan(b_mat).any()), "fragments complete"
                                c_mat, s_mat = a_mat @ b_mat, xp.ones((16, 16)) @ b_mat
                                for lane in range(32):
                                    for j, (r, c) in enumerate(_mma_c(lane >> 2, lane & 3)):
                                        acc[lane, nb, j] += c_mat[r, c]
                                        sums[lane, nb, j] += s_mat[r, c]
                    grp = st * groups + gi
                    for lane in range(32):
                        g = lane >> 2
                        rows = (min(row0 + g, n_rows - 1), min(row0 + g + 8, n_rows - 1))
                        for nb in range(nbt):
                            for j in range(4):
                                if 8 * nb + (j & 1) < mt:
                                    sx, r = sums[lane, nb, j & 1], rows[j >> 1]
                                    tot[wib, lane, nb, j] += (
                                        s[r, grp] * (acc[lane, nb, j] - magic * sx) + b[r, grp] * sx
                                    )
        for wib in range(0, 4, ksplit):  # the warps with ks == 0 add their tile's partial sums
            row0 = (block * (4 // ksplit) + wib // ksplit) * 16
            part = tot[wib : wib + ksplit].sum(0)
            for lane in range(32):
                g, t = lane >> 2, lane & 3
                for nb in range(nbt):
                    for j in range(4):
                        m, n = 8 * nb + 2 * t + (j & 1), row0 + g + 8 * (j >> 1)
                        if m < m_rows and n < n_rows:
                            out[m, n] = part[lane, nb, j]
                            written[m, n] += 1
    assert (written == 1).all(), "every output element written once"
    return out


def emulate_prefix_attention(xp: Any, q: Any, k: Any, v: Any, scale: float, n_keys: int) -> Any:
    """A NumPy emulation of attention.cu: each of WARPS warps takes runs of U keys
    (``j0 = U*w + U*WARPS*t``), keeps a running maximum, sum and weighted value sum (the
    online softmax, rescaled once per run), and the warps' partial results are merged with
    the global maximum; keys past ``n_keys`` in a run are dropped. In float64, so it checks the
    indexing and the merging, not the rounding. q ``(B, HQ, 1, D)``, k/v ``(B, HKV, S, D)``."""
    warps, u_run = ATTENTION_WARPS, ATTENTION_KEYS_PER_STEP
    b, hq, _, d = q.shape
    hkv, s = k.shape[1], k.shape[2]
    n = min(max(n_keys, 0), s)
    out = xp.zeros(q.shape)
    for bi in range(b):
        for h in range(hq):
            kvh = h // (hq // hkv)
            qs = xp.asarray(q[bi, h, 0], dtype=xp.float64) * scale
            parts = []
            for w in range(warps):
                m, total, acc = -xp.inf, 0.0, xp.zeros(d)
                for j0 in range(w * u_run, n, warps * u_run):
                    rows = [min(j0 + u, n - 1) for u in range(u_run)]
                    sc = xp.array([qs @ k[bi, kvh, r] for r in rows], dtype=xp.float64)
                    sc[[j0 + u >= n for u in range(u_run)]] = -xp.inf
                    m2 = max(m, sc.max())
                    c = xp.exp(m - m2)
                    p = xp.exp(sc - m2)
                    total = total * c + p.sum()
                    acc = acc * c + (p[:, None] * xp.asarray(v[bi, kvh, rows], dtype=xp.float64)).sum(0)
                    m = m2
                parts.append((m, total, acc))
            mt = max(pm for pm, _, _ in parts)
            wt = [0.0 if pm == -xp.inf else xp.exp(pm - mt) for pm, _, _ in parts]
            lt = sum(pl * wi for (_, pl, _), wi in zip(parts, wt, strict=True))
            out[bi, h, 0] = sum(pa * wi for (_, _, pa), wi in zip(parts, wt, strict=True)) / lt
    return out


def _f32(xp: Any, v: Any) -> Any:
    """float64 values rounded to float32 (one float32 operation's result), as float64."""
    return xp.asarray(v, dtype=xp.float64).astype(xp.float32).astype(xp.float64)


def emulate_qkv_heads(
    xp: Any,
    qkv: Any,
    q_weight: Any,
    k_weight: Any,
    heads: tuple[int, int],
    params: list[float],
    rope: tuple[int, bool],
    offset: int,
    dtype: str,
) -> tuple[Any, Any, Any]:
    """A NumPy emulation of qkv_heads.cu: row ``(b * L + l) * H + h`` of the projection, lane
    ``t``'s float32 sum of squares of features t, t + 32, ... and the warp's xor-butterfly sum,
    ``x * rsqrt(ss / D + eps)`` rounded to ``dtype`` then times the weight rounded again, each
    rotated pair's partner, the float32 (16-bit dtypes) or float64 (float32) angles from the
    launcher's ``params`` (``_launch.qkv_heads_params``), and each output row's place in
    q/k/v; every float32 operation rounded (an FMA's one rounding aside). ``qkv`` (B, L, (HQ +
    2 HKV) * D) float64 values exact in ``dtype``; ``heads`` (HQ, HKV); ``rope`` (dims,
    traditional). Returns float64 q (B, HQ, L, D), k and v (B, HKV, L, D); asserts each output
    element is written once."""
    hq, hkv = heads
    dims, traditional = rope
    eps, log2_base, scale, base_hi, base_lo, scale_lo = params
    b_n, length, width = qkv.shape
    h_n = hq + 2 * hkv
    d = width // h_n
    half = dims // 2

    def to_t(v: Any) -> Any:
        return _f32(xp, v) if dtype == "float32" else round_to(xp, _f32(xp, v), dtype)

    rows = xp.asarray(qkv, dtype=xp.float64).reshape(b_n * length * h_n, d)
    outs = {name: xp.full((b_n, n, length, d), xp.nan) for name, n in (("q", hq), ("k", hkv), ("v", hkv))}
    j = xp.arange(d)
    first = (j % 2 == 0) if traditional else (j < half)
    pair = (j // 2) if traditional else xp.where(first, j, j - half)
    mate = (xp.where(first, j + 1, j - 1)) if traditional else xp.where(first, j + half, j - half)
    for row in range(rows.shape[0]):
        h, b, pos = row % h_n, row // h_n // length, row // h_n % length
        x = rows[row]
        name, hh = ("q", h) if h < hq else ("k", h - hq) if h < hq + hkv else ("v", h - hq - hkv)
        dst = outs[name][b, hh, pos]
        assert xp.isnan(dst).all(), "written twice"
        if name == "v":
            dst[:] = x
            continue
        lanes = xp.zeros(32)
        for e in range(d // 32):
            lanes = _f32(xp, lanes + _f32(xp, x[32 * e : 32 * e + 32] ** 2))
        for o in (16, 8, 4, 2, 1):
            lanes = _f32(xp, lanes + lanes[xp.arange(32) ^ o])
        r = _f32(xp, 1 / xp.sqrt(_f32(xp, _f32(xp, lanes[0] / d) + eps)))
        w = xp.asarray(q_weight if name == "q" else k_weight, dtype=xp.float64)
        normed = to_t(w * to_t(x * r))
        pos += offset
        if dtype == "float32":
            angle = pos * (scale + scale_lo) * (base_hi + base_lo) ** (-(2.0 * pair) / dims)
            c, s = _f32(xp, xp.cos(angle)), _f32(xp, xp.sin(angle))
            own, other = _f32(xp, normed * c), _f32(xp, normed[mate] * s)  # x1 c, x2 s (x2 c, x1 s)
            rotated = _f32(xp, xp.where(first, own - other, own + other))
        else:
            inv = _f32(xp, 2.0 ** _f32(xp, -_f32(xp, pair / half) * log2_base))
            theta = _f32(xp, _f32(xp, scale * pos) * inv)
            c, s = _f32(xp, xp.cos(theta)), _f32(xp, xp.sin(theta))
            x1 = xp.where(first, normed, normed[mate])
            x2 = xp.where(first, normed[mate], normed)
            rotated = _f32(xp, xp.where(first, x1 * c - x2 * s, x1 * s + x2 * c))
        dst[:] = to_t(xp.where(j < dims, rotated, normed))
    for out in outs.values():
        assert not xp.isnan(out).any(), "every output element written"
    return outs["q"], outs["k"], outs["v"]


def emulate_add_rms_norm(xp: Any, x: Any, y: Any, weight: Any, eps: float, block: int, dtype: str) -> tuple[Any, Any]:
    """A NumPy emulation of add_rms_norm.cu: s = x + y rounded once to ``dtype``; thread t of
    a ``block``-thread row sums the squares of its features t, t + block, ... in order in
    float32, each warp by xor shuffles, then the warps' sums in warp order; ``s * rsqrt(ss /
    D + eps)`` rounded to ``dtype``, times the weight (None: none) rounded again. x, y (..., D)
    float64 values exact in ``dtype``; returns float64 (s, normed) of x's shape."""
    d = x.shape[-1]

    def to_t(v: Any) -> Any:
        return _f32(xp, v) if dtype == "float32" else round_to(xp, _f32(xp, v), dtype)

    exact = xp.asarray(x, dtype=xp.float64) + xp.asarray(y, dtype=xp.float64)
    s = _f32(xp, exact) if dtype == "float32" else round_to(xp, exact, dtype)  # T's +: rounded once
    rows = s.reshape(-1, d)
    threads = xp.zeros((rows.shape[0], block))
    for i in range(-(-d // block)):
        part = rows[:, i * block : (i + 1) * block]
        threads[:, : part.shape[1]] = _f32(xp, threads[:, : part.shape[1]] + _f32(xp, part**2))
    lanes = threads.reshape(rows.shape[0], block // 32, 32)
    for o in (16, 8, 4, 2, 1):
        lanes = _f32(xp, lanes + lanes[..., xp.arange(32) ^ o])
    ss = xp.zeros(rows.shape[0])
    for w in range(block // 32):
        ss = _f32(xp, ss + lanes[:, w, 0])
    r = _f32(xp, 1 / xp.sqrt(_f32(xp, _f32(xp, ss / d) + eps)))
    normed = to_t(rows * r[:, None])
    if weight is not None:
        normed = to_t(xp.asarray(weight, dtype=xp.float64) * normed)
    return s, normed.reshape(s.shape)


def emulate_swiglu_halves(xp: Any, gate_up: Any, dtype: str) -> Any:
    """A NumPy emulation of swiglu_halves.cu: output value i of row r from gate_up[r, c] and
    gate_up[r, N + c] (c = i - r N), ``g / (1 + exp(-g)) * u`` with each float32 operation
    rounded (expf's error aside), rounded once to ``dtype``. float64 in and out."""
    n = gate_up.shape[-1] // 2
    g, u = (xp.asarray(gate_up, dtype=xp.float64).reshape(-1, 2 * n)[:, part] for part in (slice(0, n), slice(n, None)))
    with xp.errstate(over="ignore"):  # (exp(-g) overflows to inf for g < -88: silu -> -0, as on the GPU)
        silu = _f32(xp, g / _f32(xp, 1 + _f32(xp, xp.exp(-g))))
    out = _f32(xp, silu * u)
    out = out if dtype == "float32" else round_to(xp, out, dtype)
    return out.reshape(*gate_up.shape[:-1], n)
