//! Decode (GEMV) kernel body, on the CUDA cores. Inputs x (M, K) T, w (N, K*BITS/32) uint32,
//! scales and biases (N, K/GS) S; output out (M, N) T. One warp per ROWS rows of W, M <= MT.
//! Header: common.cuh.
//! MLX wraps this body in the __global__ function it generates: the inputs and outputs are its
//! parameters (with x_shape, w_shape, ... where the body names them) and the template
//! arguments are constexpr values or types ahead of it (arrayq_mlx/cuda/_launch.py).

  constexpr int WORDS = VALS * BITS / 32;
  constexpr float TWO_B = float(1 << BITS);
  const int M = x_shape[0];
  const int K = x_shape[1];
  const int N = w_shape[0];
  const int KW = K / 32 * BITS;
  const int KG = K / GS;
  const int NCH = K / VALS;
  // a block is 4 warps: 4 / KSPLIT sets of ROWS rows, KSPLIT warps splitting K for each
  const int lane = threadIdx.x & 31;
  const int wib = threadIdx.x >> 5;
  const int ks = wib % KSPLIT;
  const int row0 = (blockIdx.x * (4 / KSPLIT) + wib / KSPLIT) * ROWS;
  const bool active = row0 < N;
  float acc[MT][ROWS];
#pragma unroll
  for (int m = 0; m < MT; ++m)
#pragma unroll
    for (int r = 0; r < ROWS; ++r) acc[m][r] = 0.0f;
#pragma unroll 2
  for (int c = ks * 32 + lane; active && c < NCH; c += 32 * KSPLIT) {
    uint32_t q[ROWS][WORDS];
    float s2[ROWS], b2[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      const int n = min(row0 + r, N - 1);
      aq_load_words<WORDS, VEC>(w + (size_t)n * KW + (size_t)c * WORDS, q[r]);
      const size_t g = (size_t)n * KG + (c * VALS) / GS;
      const float s = static_cast<float>(scales[g]);
      s2[r] = s * TWO_B;
      b2[r] = static_cast<float>(biases[g]) - s2[r];
    }
#pragma unroll
    for (int m = 0; m < MT; ++m) {
      if (m < M) {
        float xv[VALS];
        const uint4* xp = reinterpret_cast<const uint4*>(x + (size_t)m * K + (size_t)c * VALS);
#pragma unroll
        for (int j = 0; j < VALS / 8; ++j) aq_widen8<X_BF16>(__ldg(xp + j), xv + 8 * j);
        float sx = 0.0f;
#pragma unroll
        for (int i = 0; i < VALS; ++i) sx += xv[i];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) {
          float d = 0.0f;
#pragma unroll
          for (int i = 0; i < VALS; ++i) d = fmaf(aq_code_f<BITS, WORDS>(q[r], i), xv[i], d);
          acc[m][r] = fmaf(s2[r], d, fmaf(b2[r], sx, acc[m][r]));
        }
      }
    }
  }
  __shared__ float part[4][MT * ROWS];
#pragma unroll
  for (int m = 0; m < MT; ++m) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      float v = acc[m][r];
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
      if (lane == 0) part[wib][m * ROWS + r] = v;
    }
  }
  __syncthreads();
  if (!active || ks != 0) return;
  for (int e = lane; e < MT * ROWS; e += 32) {
    const int m = e / ROWS;
    const int r = e - m * ROWS;
    float v = 0.0f;
#pragma unroll
    for (int j = 0; j < KSPLIT; ++j) v += part[wib + j][e];
    if (m < M && row0 + r < N) out[(size_t)m * N + row0 + r] = static_cast<T>(v);
  }
