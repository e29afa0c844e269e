//! Dequantize kernel body. Inputs w (N, K*BITS/32) uint32, scales and biases (N, K/GS) S;
//! output out (N, K) T, out = s*q + b in float32 rounded once. One thread per 8 values
//! (one 16-byte store; a warp writes 512 contiguous bytes): it reads the two words that
//! hold its 8*BITS bits as one 64-bit window. Header: common.cuh.
//! MLX wraps this body in the __global__ function it generates: the inputs and outputs are its
//! parameters (with x_shape, w_shape, ... where the body names them) and the template
//! arguments are constexpr values or types ahead of it (arrayq_mlx/cuda/_launch.py).

  constexpr int WORDS = VALS * BITS / 32;
  constexpr int PARTS = VALS / 8;
  constexpr uint32_t MASK = (1u << BITS) - 1u;
  const int N = w_shape[0];
  const int KG = scales_shape[1];
  const int K = KG * GS;
  const int KW = K / 32 * BITS;
  const int NCH = K / VALS;
  const size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= (size_t)N * NCH * PARTS) return;
  const size_t ch = t / PARTS;
  const int j = (int)(t - ch * PARTS);
  const size_t n = ch / NCH;
  const int c = (int)(ch - n * NCH);
  const int bit0 = 8 * j * BITS;
  const uint32_t* wp = w + n * KW + (size_t)c * WORDS + (bit0 >> 5);
  const uint32_t lo = __ldg(wp);
  const uint32_t hi = (bit0 >> 5) + 1 < WORDS ? __ldg(wp + 1) : 0u;
  const uint64_t win = ((((uint64_t)hi) << 32) | lo) >> (bit0 & 31);
  const size_t g = n * KG + (c * VALS) / GS;
  const float s = static_cast<float>(scales[g]);
  const float b = static_cast<float>(biases[g]);
  float v[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    // the code as a float without a conversion instruction: 2^23 + code, minus 2^23
    const uint32_t code = (uint32_t)(win >> (i * BITS)) & MASK;
    v[i] = fmaf(s, __uint_as_float(0x4B000000u | code) - 8388608.0f, b);
  }
  uint4 u;
  u.x = aq_narrow2<X_BF16>(v[0], v[1]);
  u.y = aq_narrow2<X_BF16>(v[2], v[3]);
  u.z = aq_narrow2<X_BF16>(v[4], v[5]);
  u.w = aq_narrow2<X_BF16>(v[6], v[7]);
  reinterpret_cast<uint4*>(out + n * K + (size_t)c * VALS)[j] = u;
