//! Decode attention over the written prefix of a fixed-size KV cache: one query row per
//! (batch, query head) over the first n keys. Inputs q (B, HQ, 1, D) T, k and v (B, HKV, S, D)
//! T, n_keys () int32 (read on the device, clamped to 0..S), scale (1,) float32; output out
//! (B, HQ, 1, D) T. One block of WARPS warps per (batch, query head), query head h reading kv
//! head h / (HQ / HKV); each warp takes runs of keys with an online softmax in float32
//! (each lane holds D / 32 features; U keys at a time), and warp 0 merges the warps' partial
//! sums at the end. Template: T, D (a multiple of 32, at most 256), WARPS, U. No header.

  constexpr int E = D / 32;
  const float neg_inf = __int_as_float(0xff800000);
  const int HQ = q_shape[1];
  const int HKV = k_shape[1];
  const int S = k_shape[2];
  const int bh = blockIdx.x;
  const int b = bh / HQ;
  const int kvh = (bh - b * HQ) / (HQ / HKV);
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int n = min(max(n_keys[0], 0), S);
  const float sc = scale[0];
  const size_t kv0 = ((size_t)b * HKV + kvh) * S * D + lane * E;
  float qr[E], acc[E];
#pragma unroll
  for (int e = 0; e < E; ++e) {
    qr[e] = static_cast<float>(q[(size_t)bh * D + lane * E + e]) * sc;
    acc[e] = 0.0f;
  }
  float m = neg_inf, l = 0.0f;
  // warp w takes keys in runs of U: j0 = U*w, U*w + U*WARPS, ...; the U keys' loads and
  // dot products are independent, so their memory latencies overlap
  for (int j0 = warp * U; j0 < n; j0 += WARPS * U) {
    float s[U], vv[U][E];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const size_t row = kv0 + (size_t)min(j0 + u, n - 1) * D;
      s[u] = 0.0f;
#pragma unroll
      for (int e = 0; e < E; ++e) {
        s[u] += qr[e] * static_cast<float>(k[row + e]);
        vv[u][e] = static_cast<float>(v[row + e]);
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
#pragma unroll
      for (int u = 0; u < U; ++u) s[u] += __shfl_xor_sync(0xffffffffu, s[u], o);
    float m2 = m;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (j0 + u >= n) s[u] = neg_inf;  // past the written keys (key j0 always counts)
      m2 = fmaxf(m2, s[u]);
    }
    const float c = __expf(m - m2);
    l *= c;
#pragma unroll
    for (int e = 0; e < E; ++e) acc[e] *= c;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const float p = __expf(s[u] - m2);
      l += p;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[e] += p * vv[u][e];
    }
    m = m2;
  }
  __shared__ float part_m[WARPS], part_l[WARPS], part_acc[WARPS][D];
  if (lane == 0) {
    part_m[warp] = m;
    part_l[warp] = l;
  }
#pragma unroll
  for (int e = 0; e < E; ++e) part_acc[warp][lane * E + e] = acc[e];
  __syncthreads();
  if (warp == 0) {
    float mt = neg_inf;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) mt = fmaxf(mt, part_m[w]);
    float wt[WARPS], lt = 0.0f;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) {
      wt[w] = part_m[w] == neg_inf ? 0.0f : __expf(part_m[w] - mt);  // a warp that saw no key
      lt += part_l[w] * wt[w];
    }
    const float inv = 1.0f / lt;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      float a = 0.0f;
#pragma unroll
      for (int w = 0; w < WARPS; ++w) a += part_acc[w][lane * E + e] * wt[w];
      out[(size_t)bh * D + lane * E + e] = static_cast<T>(a * inv);
    }
  }
