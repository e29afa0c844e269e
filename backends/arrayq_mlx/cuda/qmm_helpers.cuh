//! arrayq: the fused kernel's helpers (after common.cuh and async_helpers.cuh): wgmma
//! fences and descriptors, code pairs dequantized into A's 16-bit pairs. The wgmma
//! instruction itself depends on the tile's N and is written by _launch.py (_wgmma_helper).

__device__ __forceinline__ void aq_fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void aq_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void aq_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void aq_wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// wgmma descriptor of a K-major tile in shared memory, 128-byte swizzle: rows of 128 bytes,
// 8-row groups 1024 bytes apart (SBO), tile base 1024-byte aligned
__device__ __forceinline__ uint64_t aq_desc(const uint32_t addr) {
  return (uint64_t)((addr & 0x3FFFFu) >> 4) | ((uint64_t)1 << 16) | ((uint64_t)(1024 >> 4) << 32) |
         ((uint64_t)1 << 62);
}
// the value, computed here (a volatile asm stays before the volatile asm that follows it)
__device__ __forceinline__ uint64_t aq_pin(const uint64_t v) {
  uint64_t r;
  asm volatile("mov.b64 %0, %1;\n" : "=l"(r) : "l"(v));
  return r;
}
// a 64-bit value of two words, computed here (see aq_pin)
__device__ __forceinline__ uint64_t aq_pack64(const uint32_t lo, const uint32_t hi) {
  uint64_t r;
  asm volatile("mov.b64 %0, {%1, %2};\n" : "=l"(r) : "r"(lo), "r"(hi));
  return r;
}
// codes k and k+1 (k even) of a row whose words start at wr: code k at bit 0, k+1 at bit BITS
template <int BITS>
__device__ __forceinline__ uint32_t aq_pair(const uint32_t* wr, const int k) {
  const int bit = k * BITS;
  if constexpr (32 % (2 * BITS) == 0) {
    return wr[bit >> 5] >> (bit & 31);
  } else {
    return __funnelshift_r(wr[bit >> 5], wr[(bit >> 5) + 1], bit & 31);
  }
}
// two floats rounded (to nearest even) into one word of a 16-bit float type, lo in bits 0-15
template <bool BF16>
__device__ __forceinline__ uint32_t aq_pack2(const float lo, const float hi) {
  uint32_t r;
  if constexpr (BF16) {
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.f16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  }
  return r;
}
// the pair v (see aq_pair) dequantized: s2 * (1 + q/2^BITS) + b2 with s2 = s*2^BITS, b2 = b - s2
template <int BITS, bool BF16>
__device__ __forceinline__ uint32_t aq_deq2(const uint32_t v, const float s2, const float b2) {
  constexpr uint32_t FIELD = ((1u << BITS) - 1u) << (23 - BITS);
  const float f0 = __uint_as_float(((v << (23 - BITS)) & FIELD) | 0x3F800000u);
  const float f1 = __uint_as_float(((v << (23 - 2 * BITS)) & FIELD) | 0x3F800000u);
  return aq_pack2<BF16>(fmaf(s2, f0, b2), fmaf(s2, f1, b2));
}
// v, as a value the compiler cannot recompute (so it stays in a register rather than being
// rematerialized inside the K loop)
__device__ __forceinline__ uint32_t aq_opaque(uint32_t v) {
  asm volatile("" : "+r"(v));
  return v;
}
// pair arithmetic in x's 16-bit type (sm_90: bf16x2 sub; fma: exact product and sum, one rounding)
template <bool BF16>
__device__ __forceinline__ uint32_t aq_sub2(const uint32_t a, const uint32_t b) {
  uint32_t r;
  if constexpr (BF16) {
    asm("sub.rn.bf16x2 %0, %1, %2;\n" : "=r"(r) : "r"(a), "r"(b));
  } else {
    asm("sub.rn.f16x2 %0, %1, %2;\n" : "=r"(r) : "r"(a), "r"(b));
  }
  return r;
}
template <bool BF16>
__device__ __forceinline__ uint32_t aq_fma2(const uint32_t a, const uint32_t b, const uint32_t c) {
  uint32_t r;
  if constexpr (BF16) {
    asm("fma.rn.bf16x2 %0, %1, %2, %3;\n" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  } else {
    asm("fma.rn.f16x2 %0, %1, %2, %3;\n" : "=r"(r) : "r"(a), "r"(b), "r"(c));
  }
  return r;
}
// the 16-bit pattern v (a scale or bias) as the pair (v, v)
__device__ __forceinline__ uint32_t aq_dup2(const uint32_t v) { return __byte_perm(v, 0u, 0x1010); }
// codes k and k+1 dequantized in x's 16-bit type, scales and biases in it too: code k is the
// low BITS bits of byte sel&7 of {v >> BITS, v}, code k+1 those of byte (sel>>8)&7; each is
// put in the mantissa of MAGIC (128 in bf16, 1024 in f16: ulp 1), MAGIC subtracted (exact),
// then one fma: s*q + b, rounded once to x's type (s2 = (s, s), b2 = (b, b))
template <int BITS, bool BF16>
__device__ __forceinline__ uint32_t aq_deq2h(const uint32_t v, const uint32_t sel, const uint32_t magic,
                                             const uint32_t s2, const uint32_t b2) {
  constexpr uint32_t MASK = ((1u << BITS) - 1u) * 0x10001u;
  const uint32_t r = (__byte_perm(v, v >> BITS, sel) & MASK) | magic;
  return aq_fma2<BF16>(aq_sub2<BF16>(r, magic), s2, b2);
}
