//! arrayq: device helpers shared by the decode, dequantize and fused kernels (the header of
//! the first two; the first part of the fused kernel's). Read by arrayq_mlx/cuda/_launch.py:
//! these //! lines are dropped, the rest is handed to mx.fast.cuda_kernel byte for byte.

// arrayq: helpers for the affine quantized kernels (bits of one row form a little-endian
// bit stream: value i at bits [i*BITS, (i+1)*BITS) of the row's uint32 words).
template <int WORDS, int VEC>
__device__ __forceinline__ void aq_load_words(const uint32_t* p, uint32_t (&q)[WORDS]) {
  if constexpr (VEC == 4) {
#pragma unroll
    for (int j = 0; j < WORDS / 4; ++j) {
      const uint4 u = __ldg(reinterpret_cast<const uint4*>(p) + j);
      q[4 * j] = u.x; q[4 * j + 1] = u.y; q[4 * j + 2] = u.z; q[4 * j + 3] = u.w;
    }
  } else if constexpr (VEC == 2) {
#pragma unroll
    for (int j = 0; j < WORDS / 2; ++j) {
      const uint2 u = __ldg(reinterpret_cast<const uint2*>(p) + j);
      q[2 * j] = u.x; q[2 * j + 1] = u.y;
    }
  } else {
#pragma unroll
    for (int j = 0; j < WORDS; ++j) q[j] = __ldg(p + j);
  }
}

// 1 + code/2^BITS as a float (exact): the code placed in the top of the mantissa.
template <int BITS, int WORDS>
__device__ __forceinline__ float aq_code_f(const uint32_t (&q)[WORDS], const int i) {
  const int bit = i * BITS;
  const int wi = bit >> 5;
  const int sh = bit & 31;
  uint32_t v = q[wi] >> sh;
  if (sh + BITS > 32 && wi + 1 < WORDS) v = __funnelshift_r(q[wi], q[wi + 1], sh);
  constexpr uint32_t FIELD = ((1u << BITS) - 1u) << (23 - BITS);
  return __uint_as_float(((v << (23 - BITS)) & FIELD) | 0x3F800000u);
}

// 8 values of a 16-bit float type from one 16-byte vector, widened to float32.
template <bool BF16>
__device__ __forceinline__ void aq_widen8(const uint4 u, float* out) {
  const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    if constexpr (BF16) {
      out[2 * j] = __uint_as_float(w[j] << 16);
      out[2 * j + 1] = __uint_as_float(w[j] & 0xFFFF0000u);
    } else {
      out[2 * j] = __half2float(__ushort_as_half((unsigned short)(w[j] & 0xFFFFu)));
      out[2 * j + 1] = __half2float(__ushort_as_half((unsigned short)(w[j] >> 16)));
    }
  }
}

// Two float32 values rounded (to nearest even) into one word of a 16-bit float type.
template <bool BF16>
__device__ __forceinline__ uint32_t aq_narrow2(const float a, const float b) {
  if constexpr (BF16) {
    return (uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(a)) |
           ((uint32_t)__bfloat16_as_ushort(__float2bfloat16_rn(b)) << 16);
  } else {
    return (uint32_t)__half_as_ushort(__float2half_rn(a)) |
           ((uint32_t)__half_as_ushort(__float2half_rn(b)) << 16);
  }
}
