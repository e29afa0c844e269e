//! SwiGLU of a fused gate/up projection's halves in one launch (arrayq.nn.swiglu of one
//! array): out = silu(gate) * up, gate the first N values of each row of gu and up the last
//! N. Input gu (..., 2N) T; output out (..., N) T. One thread per output value. Numerics:
//! float32 in one pass, g / (1 + exp(-g)) * u, rounded once to T (the composed ops round
//! sigmoid, its product with g and the product with u to T one by one). Template: T, N.
//! No header.

  size_t total = N;
  for (int a = 0; a + 1 < gu_ndim; ++a) total *= gu_shape[a];
  const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const size_t row = i / N;
  const size_t c = i - row * N;
  const float g = static_cast<float>(gu[row * 2 * N + c]);
  const float u = static_cast<float>(gu[row * 2 * N + N + c]);
  out[i] = static_cast<T>(g / (1.0f + expf(-g)) * u);
