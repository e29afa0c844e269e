//! arrayq: helpers of the tensor-core decode kernel (mma.sync m16n8k16 and the code pairs in
//! a 16-bit mantissa); its header is async_helpers.cuh + this file + __launch_bounds__.

// D += A B for one m16n8k16 tile (A row-major 16x16, B column-major 16x8, 16-bit, f32 acc)
template <bool BF16>
__device__ __forceinline__ void aq_mma(float (&d)[4], const uint32_t a0, const uint32_t a1, const uint32_t a2,
                                       const uint32_t a3, const uint32_t b0, const uint32_t b1) {
  if constexpr (BF16) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
}
// the 8 codes of a row from code `first` on (row's words at wr): code j at bits j*BITS
template <int BITS>
__device__ __forceinline__ uint64_t aq_codes8(const uint32_t* wr, const int first) {
  const int bit = first * BITS;
  if constexpr (8 * BITS <= 32 && 32 % (8 * BITS) == 0) {
    return wr[bit >> 5] >> (bit & 31);  // never crosses a word (2 and 4 bits)
  } else {
    const uint64_t u = (uint64_t)wr[bit >> 5] | ((uint64_t)wr[(bit >> 5) + 1] << 32);
    return u >> (bit & 31);
  }
}
// codes i and i+4 of the 8 (u: see aq_codes8) as the 16-bit pair (MAGIC + q_i, MAGIC + q_i+4):
// each code in the mantissa of MAGIC (128 in bf16, 1024 in f16: ulp 1), exact
template <int BITS>
__device__ __forceinline__ uint32_t aq_code_pair(const uint64_t u, const int i, const uint32_t magic) {
  constexpr uint32_t M = (1u << BITS) - 1u;
  const uint64_t v = u >> (i * BITS);
  const uint32_t lo = (uint32_t)v;
  const uint32_t hi = 4 * BITS >= 16 ? (uint32_t)(v >> (4 * BITS - 16)) : lo << (16 - 4 * BITS);
  return (lo & M) | (hi & (M << 16)) | magic;
}
