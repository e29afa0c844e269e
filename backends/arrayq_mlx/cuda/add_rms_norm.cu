//! A residual sum and its RMS norm in one launch (arrayq.nn.add_rms_norm): s = x + y and
//! rms_norm(s, weight, eps). Inputs x, y (..., D) T, weight (D,) T (ignored without HAS_W),
//! eps (1,) float32; outputs s and normed, x's shape, T. One block of BLOCK threads per row;
//! thread t holds features t, t + BLOCK, ... (N of them, in registers). Numerics: the sum
//! as MLX's add rounds it (T's own +: the exact sum rounded once), then mx.fast.rms_norm's
//! (the sum of squares of s in float32, rsqrt, s * r rounded to T, times the weight rounded
//! to T). The sum of squares: each thread's in order, each warp's by xor shuffles, then
//! every thread adds the warps' sums in warp order. Template: T, D, BLOCK (a multiple of
//! 32, at most 1024), HAS_W. No header.

  constexpr int N = (D + BLOCK - 1) / BLOCK;
  constexpr int WARPS = BLOCK / 32;
  const size_t row = blockIdx.x;
  const int t = threadIdx.x;
  const T* xr = x + row * D;
  const T* yr = y + row * D;
  T sv[N];
  float ss = 0.0f;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const int j = t + i * BLOCK;
    if (j < D) {
      sv[i] = xr[j] + yr[j];
      s[row * D + j] = sv[i];
      const float f = static_cast<float>(sv[i]);
      ss += f * f;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  __shared__ float part[WARPS];
  if ((t & 31) == 0) part[t >> 5] = ss;
  __syncthreads();
  ss = 0.0f;
#pragma unroll
  for (int w = 0; w < WARPS; ++w) ss += part[w];
  const float r = rsqrtf(ss / static_cast<float>(D) + eps[0]);
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const int j = t + i * BLOCK;
    if (j < D) {
      const T yt = static_cast<T>(static_cast<float>(sv[i]) * r);
      normed[row * D + j] = HAS_W ? static_cast<T>(static_cast<float>(weight[j]) * static_cast<float>(yt)) : yt;
    }
  }
