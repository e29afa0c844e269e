//! The heads of a fused q/k/v projection in one launch (arrayq.nn.qkv_heads): q's and k's
//! heads through their RMS norms and rotary positions, v's as they are, each written in the
//! (B, heads, L, D) layout attention reads. Inputs qkv (B, L, (HQ + 2 HKV) * D) T, q_weight and
//! k_weight (D,) T, offset () int32 (the first position, read on the device), params (6,)
//! float32: eps, log2(base), scale, then base as hi + lo and scale's lo part (float64 angles).
//! Outputs q (B, HQ, L, D), k and v (B, HKV, L, D), T. One warp per (batch, position, head)
//! row; lane l holds features l, l + 32, ... (E = D / 32); the normed row goes through
//! shared memory so that a lane reads the partner of each of its rotated pairs.
//! Numerics: mx.fast.rms_norm's (sum of squares in float32, rsqrt, x * r rounded to T, times
//! the weight rounded to T); then for 16-bit T mx.fast.rope's (float32 angles
//! (scale * pos) * exp2(-i / (DIMS / 2) * log2(base)), the rotation in float32, rounded once),
//! for float32 T arrayq's reference rope's (angles and their cos/sin in float64, rounded to
//! float32; each product and sum of the rotation rounded, as separate ops round them).
//! Template: T, D (a multiple of 32, at most 256), HQ, HKV, DIMS (even, at most D), TRAD
//! (pairs (2i, 2i + 1), else (i, i + DIMS / 2)), WARPS. No header.

  constexpr int E = D / 32;
  constexpr int H = HQ + 2 * HKV;
  constexpr int HALF = DIMS / 2;
  const int B = qkv_shape[0];
  const int L = qkv_shape[1];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int row = blockIdx.x * WARPS + warp;  // (b * L + l) * H + h
  if (row >= B * L * H) return;  // the whole warp leaves together
  const int h = row % H;
  const int b = row / H / L;
  const int l = row / H - b * L;
  const T* src = qkv + (size_t)row * D;
  if (h >= HQ + HKV) {  // a v head: moved, not changed
    T* dst = v + (((size_t)b * HKV + (h - HQ - HKV)) * L + l) * D;
#pragma unroll
    for (int e = 0; e < E; ++e) dst[lane + 32 * e] = src[lane + 32 * e];
    return;
  }
  const bool is_q = h < HQ;
  const T* w = is_q ? q_weight : k_weight;
  T* dst = is_q ? q + (((size_t)b * HQ + h) * L + l) * D : k + (((size_t)b * HKV + (h - HQ)) * L + l) * D;
  float xs[E];
  float ss = 0.0f;
#pragma unroll
  for (int e = 0; e < E; ++e) {
    xs[e] = static_cast<float>(src[lane + 32 * e]);
    ss += xs[e] * xs[e];
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  const float r = rsqrtf(ss / static_cast<float>(D) + params[0]);
  __shared__ float normed[WARPS][D];
#pragma unroll
  for (int e = 0; e < E; ++e) {
    const int j = lane + 32 * e;
    const T y = static_cast<T>(xs[e] * r);
    normed[warp][j] = static_cast<float>(static_cast<T>(static_cast<float>(w[j]) * static_cast<float>(y)));
  }
  __syncwarp();
  const int pos = offset[0] + l;
#pragma unroll
  for (int e = 0; e < E; ++e) {
    const int j = lane + 32 * e;
    float y = normed[warp][j];
    if (j < DIMS) {
      const bool first = TRAD ? (j & 1) == 0 : j < HALF;  // x1 of its pair, else x2
      const int i = TRAD ? j >> 1 : (first ? j : j - HALF);
      const int mate = TRAD ? (first ? j + 1 : j - 1) : (first ? j + HALF : j - HALF);
      const float x1 = first ? y : normed[warp][mate];
      const float x2 = first ? normed[warp][mate] : y;
      if constexpr (sizeof(T) == 4) {
        const double base = static_cast<double>(params[3]) + static_cast<double>(params[4]);
        const double scale = static_cast<double>(params[2]) + static_cast<double>(params[5]);
        const double angle = (static_cast<double>(pos) * scale) * pow(base, -static_cast<double>(2 * i) / DIMS);
        const float c = static_cast<float>(cos(angle));
        const float s = static_cast<float>(sin(angle));
        y = first ? __fsub_rn(__fmul_rn(x1, c), __fmul_rn(x2, s)) : __fadd_rn(__fmul_rn(x2, c), __fmul_rn(x1, s));
      } else {
        const float d = static_cast<float>(i) / static_cast<float>(HALF);
        const float theta = (params[2] * static_cast<float>(pos)) * exp2f(-d * params[1]);
        const float c = cosf(theta);
        const float s = sinf(theta);
        y = first ? x1 * c - x2 * s : x1 * s + x2 * c;
      }
    }
    dst[j] = static_cast<T>(y);
  }
