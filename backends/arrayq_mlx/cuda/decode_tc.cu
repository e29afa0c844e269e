//! Tensor-core decode kernel body (sm_80+: mma.sync, cp.async). Inputs x (M, K) T, w (N,
//! K*BITS/32) uint32, scales and biases (N, K/GS) S; output out (M, N) T; M <= MT <= 16,
//! K % KS == 0. A warp takes 16 rows of W (the mma's M) and every KSPLIT-th stage of KS
//! values of K, streamed through its own ring of D shared-memory stages by cp.async. The
//! mma multiplies the codes, exact as MAGIC + q in x's 16-bit type, by x (its rows are the
//! mma's N); a second mma with A = ones sums x over the same values; per group of K,
//! s * (acc - MAGIC * sum) + b * sum adds the group in float32.
//! Header: async_helpers.cuh, tc_helpers.cuh.
//! MLX wraps this body in the __global__ function it generates: the inputs and outputs are its
//! parameters (with x_shape, w_shape, ... where the body names them) and the template
//! arguments are constexpr values or types ahead of it (arrayq_mlx/cuda/_launch.py).

  using SS = cuda::std::remove_cv_t<cuda::std::remove_reference_t<decltype(scales[0])>>;
  using XT = cuda::std::remove_cv_t<cuda::std::remove_reference_t<decltype(x[0])>>;
  constexpr int KS = 256;                        // K values per stage (DECODE_TC_KS)
  constexpr int CB = KS * BITS / 8;              // bytes of codes per row and stage
  constexpr int CR = CB / 16;                    // their 16-byte chunks
  constexpr int RW = CB / 4 + 4;                 // shared row of codes in words (padded: the
                                                 // 8 rows a load reads hit different banks)
  constexpr int GST = KS / GS;                   // groups per stage
  constexpr int SB = GST * (int)sizeof(SS);      // bytes of scales per row and stage
  constexpr int SCH = SB < 16 ? SB : 16;
  constexpr int SCR = SB / SCH;
  constexpr int STW = 16 * RW + 2 * 16 * SB / 4; // words per stage
  constexpr int NB = (MT + 7) / 8;               // 8-row tiles of x
  constexpr int SPG = GS / 32;                   // 32-value steps per group
  constexpr float MAGIC_F = X_BF16 ? 128.0f : 1024.0f;
  static_assert((16 * CR) % 32 == 0, "the code chunks of a stage split evenly over the lanes");
  static_assert(4 % KSPLIT == 0 && MT <= 16, "4 warps a block: 4 / KSPLIT tiles; at most 16 rows of x");
  static_assert(BITS <= (X_BF16 ? 7 : 10), "MAGIC + q must be exact in x's 16-bit type");
  // SK (the scales' dtype, in the kernel's name for MLX's name-keyed cache) must match them
  static_assert(SK == (cuda::std::is_same_v<SS, __nv_bfloat16> ? 0 : cuda::std::is_same_v<SS, __half> ? 1 : 2));
  const int M = x_shape[0];
  const int K = x_shape[1];
  const int N = w_shape[0];
  const int KW = K / 32 * BITS;
  const int KG = K / GS;
  const int NST = K / KS;
  const int lane = threadIdx.x & 31;
  const int wib = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int ks = wib % KSPLIT;
  const int row0 = (blockIdx.x * (4 / KSPLIT) + wib / KSPLIT) * 16;
  const int nst = row0 < N && ks < NST ? (NST - ks + KSPLIT - 1) / KSPLIT : 0;
  // static shared memory (MLX's dynamic shared memory costs CPU time on every launch)
  static_assert(4 * D * STW * 4 + 4 * NB * 4 * 32 * 4 <= 48 * 1024, "static shared memory");
  __shared__ __align__(16) uint32_t aq_ring[4 * D * STW];
  uint32_t* const ring = aq_ring + wib * (D * STW);
  const uint32_t ring_s = aq_smem_u32(ring);

  // stage i of this warp (K values (ks + i*KSPLIT)*KS ...) into ring slot i % D; one
  // commit group per call, empty past the last stage
  auto issue = [&](const int i) {
    if (i < nst) {
      const int st = ks + i * KSPLIT;
      const uint32_t slot = ring_s + (i % D) * STW * 4;
#pragma unroll
      for (int j = 0; j < 16 * CR / 32; ++j) {
        const int e = lane + 32 * j, r = e / CR, c = e - (e / CR) * CR;
        const int n = row0 + r;
        aq_cp_async<16>(slot + r * RW * 4 + c * 16, w + (size_t)min(n, N - 1) * KW + st * (CB / 4) + c * 4, n < N);
      }
#pragma unroll
      for (int e = lane; e < 16 * SCR; e += 32) {
        const int r = e / SCR, c = e - (e / SCR) * SCR;
        const size_t off = (size_t)min(row0 + r, N - 1) * KG + st * GST;
        const uint32_t dst = slot + 16 * RW * 4 + r * SB + c * SCH;
        aq_cp_async<SCH>(dst, reinterpret_cast<const char*>(scales + off) + c * SCH, true);
        aq_cp_async<SCH>(dst + 16 * SB, reinterpret_cast<const char*>(biases + off) + c * SCH, true);
      }
    }
    aq_cp_commit();
  };

  const uint32_t magic = aq_magic2<X_BF16>((uint32_t)K >> 31);
  const uint32_t ones = X_BF16 ? 0x3F803F80u : 0x3C003C00u;
  float tot[NB][4];
#pragma unroll
  for (int nb = 0; nb < NB; ++nb)
#pragma unroll
    for (int j = 0; j < 4; ++j) tot[nb][j] = 0.0f;
#pragma unroll
  for (int i = 0; i < D - 1; ++i) issue(i);
  for (int i = 0; i < nst; ++i) {
    issue(i + D - 1);  // into the slot read in the previous pass
    aq_cp_wait<D - 1>();
    __syncwarp();
    const uint32_t* cw = ring + (i % D) * STW;
    const SS* sc = reinterpret_cast<const SS*>(cw + 16 * RW);
    const SS* bi = sc + 16 * GST;
    const XT* xs = x + (ks + i * KSPLIT) * KS + 8 * t;
#pragma unroll
    for (int gi = 0; gi < GST; ++gi) {
      float acc[NB][4], sum[NB][4];
#pragma unroll
      for (int nb = 0; nb < NB; ++nb)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[nb][j] = sum[nb][j] = 0.0f;
#pragma unroll
      for (int pp = 0; pp < SPG; ++pp) {
        const int p = gi * SPG + pp;  // values 32p .. 32p+31 of the stage; this lane's: 32p+8t ..
        const uint64_t u0 = aq_codes8<BITS>(cw + g * RW, 32 * p + 8 * t);
        const uint64_t u1 = aq_codes8<BITS>(cw + (g + 8) * RW, 32 * p + 8 * t);
#pragma unroll
        for (int nb = 0; nb < NB; ++nb) {
          const int m = 8 * nb + g;
          uint4 xv = make_uint4(0u, 0u, 0u, 0u);
          if (m < M) xv = __ldg(reinterpret_cast<const uint4*>(xs + (size_t)m * K + 32 * p));
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            // k16 step e: mma column k of (2t, 2t+1, 2t+8, 2t+9) holds code (2e, 2e+4, 2e+1,
            // 2e+5) of this lane's 8, and x at the same K positions
            const uint32_t xlo = e ? xv.y : xv.x, xhi = e ? xv.w : xv.z;
            const uint32_t b0 = __byte_perm(xlo, xhi, 0x5410), b1 = __byte_perm(xlo, xhi, 0x7632);
            aq_mma<X_BF16>(acc[nb], aq_code_pair<BITS>(u0, 2 * e, magic), aq_code_pair<BITS>(u1, 2 * e, magic),
                           aq_code_pair<BITS>(u0, 2 * e + 1, magic), aq_code_pair<BITS>(u1, 2 * e + 1, magic),
                           b0, b1);
            aq_mma<X_BF16>(sum[nb], ones, ones, ones, ones, b0, b1);
          }
        }
      }
      // acc: rows g, g+8 (j >> 1) x rows 8nb + 2t + (j & 1) of x; sum: x summed (every row)
      const float s[2] = {static_cast<float>(sc[g * GST + gi]), static_cast<float>(sc[(g + 8) * GST + gi])};
      const float b[2] = {static_cast<float>(bi[g * GST + gi]), static_cast<float>(bi[(g + 8) * GST + gi])};
#pragma unroll
      for (int nb = 0; nb < NB; ++nb)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (8 * nb + (j & 1) < MT) {
            const float sx = sum[nb][j & 1];
            tot[nb][j] = fmaf(s[j >> 1], fmaf(-MAGIC_F, sx, acc[nb][j]), fmaf(b[j >> 1], sx, tot[nb][j]));
          }
        }
    }
    __syncwarp();  // every lane is done with the slot before the next pass refills it
  }
  if constexpr (KSPLIT > 1) {
    __shared__ float part[4][NB * 4][32];
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int j = 0; j < 4; ++j) part[wib][nb * 4 + j][lane] = tot[nb][j];
    __syncthreads();
    if (ks != 0) return;
#pragma unroll
    for (int nb = 0; nb < NB; ++nb)
#pragma unroll
      for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int q = 1; q < KSPLIT; ++q) tot[nb][j] += part[wib + q][nb * 4 + j][lane];
  }
#pragma unroll
  for (int nb = 0; nb < NB; ++nb)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int m = 8 * nb + 2 * t + (j & 1), n = row0 + g + 8 * (j >> 1);
      if (m < M && n < N) out[(size_t)m * N + n] = static_cast<XT>(tot[nb][j]);
    }
