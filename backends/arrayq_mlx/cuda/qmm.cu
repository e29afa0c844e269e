//! Fused prefill kernel body (Hopper, sm_90a: wgmma). Inputs x (M, K) T, w (N, K*BITS/32)
//! uint32, scales and biases (N, K/GS); output out (M, N) T. Block: WGS warpgroups, 64*WGS
//! rows of W x NT rows of x. Needs K % 64 == 0 and N % 8 == 0. Header: common.cuh,
//! async_helpers.cuh, qmm_helpers.cuh, the wgmma wrapper for NT and __launch_bounds__
//! (_launch.qmm_header).
//! MLX wraps this body in the __global__ function it generates: the inputs and outputs are its
//! parameters (with x_shape, w_shape, ... where the body names them) and the template
//! arguments are constexpr values or types ahead of it (arrayq_mlx/cuda/_launch.py).

  using SS = cuda::std::remove_cv_t<cuda::std::remove_reference_t<decltype(scales[0])>>;
  using XT = cuda::std::conditional_t<X_BF16, __nv_bfloat16, __half>;
  constexpr int WR = 64 * WGS;              // rows of W per block
  constexpr int NTH = 128 * WGS;
  constexpr int RB = 8 * BITS;              // bytes of codes per row and K tile
  constexpr int CH = RB % 16 == 0 ? 16 : 8; // cp.async size for the codes
  constexpr int CPR = RB / CH;
  constexpr int WST = RB + CH;              // padded shared-memory row of codes
  constexpr int XS = NT * 128;              // one x tile: NT rows of 64 values
  constexpr int SB = (XS + WR * WST + 1023) / 1024 * 1024;
  constexpr int GPT = GS < 64 ? 64 / GS : 1; // groups per K tile
  constexpr float TWO_B = float(1 << BITS);
  // codes dequantized in x's type (aq_deq2h) when the scales are in it too, else in float32
  constexpr bool H2 = cuda::std::is_same_v<SS, XT> && BITS <= (X_BF16 ? 7 : 8);
  constexpr int XCH = NT * 8;               // 16-byte chunks of one x tile
  constexpr int XIT = (XCH + NTH - 1) / NTH;
  constexpr int WCH = WR * CPR;             // chunks of one tile of codes
  constexpr int WIT = (WCH + NTH - 1) / NTH;
  static_assert(STAGES % 2 == 0 && STAGES >= 4, "the K loop is unrolled by STAGES over two A buffers");
  const int M = x_shape[0];
  const int K = x_shape[1];
  const int N = w_shape[0];
  const int KW = K / 32 * BITS;
  const int KG = K / GS;
  const int KTN = K / 64;
  const int mtiles = (M + NT - 1) / NT;
  const int m0 = (blockIdx.x % mtiles) * NT;
  const int n0 = (blockIdx.x / mtiles) * WR;
  const int tid = threadIdx.x;
  const int lane = tid & 31;
  const int t = lane & 3;
  // block-local row of W of a[0], a[2] (a[1], a[3]: rl + 8)
  const int rl = 64 * (tid >> 7) + 16 * ((tid >> 5) & 3) + (lane >> 2);
  extern __shared__ unsigned char aq_smem[];
  const uint32_t sraw = aq_smem_u32(aq_smem);
  const uint32_t sbase = (sraw + 1023u) & ~1023u;
  unsigned char* const sptr = aq_smem + (sbase - sraw);

  // cp.async addresses, fixed but for the K tile: x chunk j of this thread is row
  // xr + j*NTH/8 of the tile, 16-byte column xc (swizzled); rows past M are not loaded (their
  // columns of the product are never stored)
  const int xr = tid >> 3, xc = tid & 7;
  const uint32_t xdst = aq_opaque(sbase + xr * 128 + ((xc ^ (xr & 7)) << 4));
  const unsigned char* const xsrc = reinterpret_cast<const unsigned char*>(x) + ((size_t)(m0 + xr) * K + xc * 8) * 2;
  const size_t xstep = (size_t)(NTH / 8) * K * 2;
  int xjv = 0;  // chunks of this thread inside the tile and inside x
#pragma unroll
  for (int j = 0; j < XIT; ++j) xjv += (tid + j * NTH < XCH && m0 + xr + j * (NTH / 8) < M) ? 1 : 0;
  uint32_t wdst[WIT], wsrc[WIT];  // code chunk j: shared offset, byte offset in w (K tile 0)
#pragma unroll
  for (int j = 0; j < WIT; ++j) {
    const int i = min(tid + j * NTH, WCH - 1);
    const int r = i / CPR, c = i - (i / CPR) * CPR;
    wdst[j] = aq_opaque(sbase + XS + r * WST + c * CH);
    wsrc[j] = aq_opaque((uint32_t)min(n0 + r, N - 1) * (uint32_t)KW * 4u + c * CH);
  }
  auto load_stage = [&](const int kt, const int st) {
    const unsigned char* xp = xsrc + kt * 128;
#pragma unroll
    for (int j = 0; j < XIT; ++j) {
      if (j < xjv) aq_cp_async<16>(xdst + st * SB + j * NTH * 16, xp, true);
      xp += xstep;
    }
    const unsigned char* wp = reinterpret_cast<const unsigned char*>(w) + (size_t)kt * RB;
#pragma unroll
    for (int j = 0; j < WIT; ++j) {
      if ((j + 1) * NTH <= WCH || tid + j * NTH < WCH) aq_cp_async<CH>(wdst[j] + st * SB, wp + wsrc[j], true);
    }
  };

  // scales/biases of rows rl and rl + 8 (element offsets of their rows)
  const uint32_t so0 = aq_opaque((uint32_t)min(n0 + rl, N - 1) * (uint32_t)KG);
  const uint32_t so1 = aq_opaque((uint32_t)min(n0 + rl + 8, N - 1) * (uint32_t)KG);
  // raw scales/biases of the next K tile (H2: their 16-bit patterns)
  using RS = cuda::std::conditional_t<H2, uint32_t, SS>;
  RS rs[2][GPT], rb[2][GPT];
  auto raw = [](const SS* p) -> RS {
    if constexpr (H2) {
      return (uint32_t)*reinterpret_cast<const unsigned short*>(p);
    } else {
      return *p;
    }
  };
  auto load_scales = [&](const int kt) {
#pragma unroll
    for (int j = 0; j < GPT; ++j) {
      const uint32_t gi = (uint32_t)((kt * 64) / GS + j);
      rs[0][j] = raw(scales + so0 + gi);
      rb[0][j] = raw(biases + so0 + gi);
      rs[1][j] = raw(scales + so1 + gi);
      rb[1][j] = raw(biases + so1 + gi);
    }
  };
  load_scales(0);
#pragma unroll
  for (int s = 0; s < STAGES - 2; ++s) {
    if (s < KTN) load_stage(s, s);
    aq_cp_commit();
  }
  float d[NT / 2];
#pragma unroll
  for (int i = 0; i < NT / 2; ++i) d[i] = 0.0f;
  // wgmma descriptor of stage 0 (low word: start address >> 4; the stages and k16 steps
  // only add to it)
  const uint64_t desc0 = aq_desc(sbase);
  const uint32_t dlo = (uint32_t)desc0, dhi = (uint32_t)(desc0 >> 32);
  // byte t of a word and of the word >> 4 (4-bit codes: codes 2t and 2t+1 of the word)
  const uint32_t sel4 = aq_opaque((uint32_t)t | ((uint32_t)(4 + t) << 8));
  const uint32_t magic = aq_magic2<X_BF16>((uint32_t)K >> 31);

  // one K tile (stage st = kt % STAGES): A fragments of its 4 k16 steps dequantized (while
  // the previous tile's wgmmas run), then 4 wgmmas in one group; waiting for the group
  // before leaves the other A buffer and the previous stage free
  auto step = [&](const int kt, const int st, uint32_t (&a)[4][4]) {
    float s2[2][GPT], b2[2][GPT];
    uint32_t sh[2][GPT], bh[2][GPT];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
#pragma unroll
      for (int j = 0; j < GPT; ++j) {
        if constexpr (H2) {
          sh[h][j] = aq_dup2(rs[h][j]);
          bh[h][j] = aq_dup2(rb[h][j]);
        } else {
          s2[h][j] = static_cast<float>(rs[h][j]) * TWO_B;
          b2[h][j] = static_cast<float>(rb[h][j]) - s2[h][j];
        }
      }
    }
    if (kt + 1 < KTN) load_scales(kt + 1);
    aq_cp_wait<STAGES - 3>();
    aq_fence_proxy_async();
    __syncthreads();
    if (kt + STAGES - 2 < KTN) load_stage(kt + STAGES - 2, (st + STAGES - 2) % STAGES);
    aq_cp_commit();
    const unsigned char* wrow0 = sptr + st * SB + XS + rl * WST;
    const unsigned char* wrow1 = wrow0 + 8 * WST;
    if constexpr (H2 && BITS == 4) {
      // a lane's codes of a row: byte t of each of the tile's 8 words
      uint32_t c0[8], c1[8];
#pragma unroll
      for (int v = 0; v < 2; ++v) {
        const uint4 u0 = *reinterpret_cast<const uint4*>(wrow0 + 16 * v);
        const uint4 u1 = *reinterpret_cast<const uint4*>(wrow1 + 16 * v);
        c0[4 * v] = u0.x; c0[4 * v + 1] = u0.y; c0[4 * v + 2] = u0.z; c0[4 * v + 3] = u0.w;
        c1[4 * v] = u1.x; c1[4 * v + 1] = u1.y; c1[4 * v + 2] = u1.z; c1[4 * v + 3] = u1.w;
      }
#pragma unroll
      for (int s16 = 0; s16 < 4; ++s16) {
        constexpr int GSTEP = GS < 64 ? GS / 16 : 4;
        const int j = GS < 64 ? s16 / GSTEP : 0;
        a[s16][0] = aq_deq2h<BITS, X_BF16>(c0[2 * s16], sel4, magic, sh[0][j], bh[0][j]);
        a[s16][1] = aq_deq2h<BITS, X_BF16>(c1[2 * s16], sel4, magic, sh[1][j], bh[1][j]);
        a[s16][2] = aq_deq2h<BITS, X_BF16>(c0[2 * s16 + 1], sel4, magic, sh[0][j], bh[0][j]);
        a[s16][3] = aq_deq2h<BITS, X_BF16>(c1[2 * s16 + 1], sel4, magic, sh[1][j], bh[1][j]);
      }
    } else {
      const uint32_t* w0 = reinterpret_cast<const uint32_t*>(wrow0);
      const uint32_t* w1 = reinterpret_cast<const uint32_t*>(wrow1);
#pragma unroll
      for (int s16 = 0; s16 < 4; ++s16) {
        constexpr int GSTEP = GS < 64 ? GS / 16 : 4;
        const int j = GS < 64 ? s16 / GSTEP : 0;
        const int ka = 16 * s16 + 2 * t;
        if constexpr (H2) {
          a[s16][0] = aq_deq2h<BITS, X_BF16>(aq_pair<BITS>(w0, ka), 0x0400u, magic, sh[0][j], bh[0][j]);
          a[s16][1] = aq_deq2h<BITS, X_BF16>(aq_pair<BITS>(w1, ka), 0x0400u, magic, sh[1][j], bh[1][j]);
          a[s16][2] = aq_deq2h<BITS, X_BF16>(aq_pair<BITS>(w0, ka + 8), 0x0400u, magic, sh[0][j], bh[0][j]);
          a[s16][3] = aq_deq2h<BITS, X_BF16>(aq_pair<BITS>(w1, ka + 8), 0x0400u, magic, sh[1][j], bh[1][j]);
        } else {
          a[s16][0] = aq_deq2<BITS, X_BF16>(aq_pair<BITS>(w0, ka), s2[0][j], b2[0][j]);
          a[s16][1] = aq_deq2<BITS, X_BF16>(aq_pair<BITS>(w1, ka), s2[1][j], b2[1][j]);
          a[s16][2] = aq_deq2<BITS, X_BF16>(aq_pair<BITS>(w0, ka + 8), s2[0][j], b2[0][j]);
          a[s16][3] = aq_deq2<BITS, X_BF16>(aq_pair<BITS>(w1, ka + 8), s2[1][j], b2[1][j]);
        }
      }
    }
    // descriptors of the 4 k16 steps (32 bytes apart), made before the fence: no other
    // instruction may define a wgmma input between the wgmmas of one group
    uint64_t desc[4];
#pragma unroll
    for (int s16 = 0; s16 < 4; ++s16) desc[s16] = aq_pack64(dlo + ((st * SB + 32 * s16) >> 4), dhi);
    aq_wgmma_fence();
#pragma unroll
    for (int s16 = 0; s16 < 4; ++s16) aq_wgmma<X_BF16>(d, a[s16], desc[s16]);
    aq_wgmma_commit();
    aq_wgmma_wait<1>();
  };
  uint32_t a[2][4][4];
  // the K loop unrolled by STAGES, so stages and A buffers are compile-time (no branch
  // inside the loop either: ptxas would then serialize the wgmmas); the last tiles after it
  int kt = 0;
  for (; kt + STAGES <= KTN; kt += STAGES) {
#pragma unroll
    for (int u = 0; u < STAGES; ++u) step(kt + u, u, a[u & 1]);
  }
  if constexpr (TAIL) {  // a variant of its own: with these branches ptxas may serialize wgmmas
#pragma unroll
    for (int u = 0; u < STAGES - 1; ++u) {
      if (kt + u < KTN) step(kt + u, u, a[u & 1]);
    }
  }
  aq_wgmma_wait<0>();
  aq_fence_acc(d);
  aq_cp_wait<0>();
  __syncthreads();
  // output tile through shared memory: ot[token][row of W], then 16-byte stores
  constexpr int LDO = WR + 8;
  uint16_t* const ot = reinterpret_cast<uint16_t*>(sptr);
#pragma unroll
  for (int j = 0; j < NT / 8; ++j) {
    const int tok = 8 * j + 2 * t;
    const uint32_t p0 = aq_pack2<X_BF16>(d[4 * j], d[4 * j + 2]);
    const uint32_t p1 = aq_pack2<X_BF16>(d[4 * j + 1], d[4 * j + 3]);
    ot[tok * LDO + rl] = (uint16_t)(p0 & 0xFFFFu);
    ot[tok * LDO + rl + 8] = (uint16_t)(p0 >> 16);
    ot[(tok + 1) * LDO + rl] = (uint16_t)(p1 & 0xFFFFu);
    ot[(tok + 1) * LDO + rl + 8] = (uint16_t)(p1 >> 16);
  }
  __syncthreads();
  for (int i = tid; i < NT * (WR / 8); i += NTH) {
    const int tok = i / (WR / 8), c = i - (i / (WR / 8)) * (WR / 8);
    const int m = m0 + tok, n = n0 + 8 * c;
    if (m < M && n < N) {
      *reinterpret_cast<uint4*>(out + (size_t)m * N + n) = *reinterpret_cast<const uint4*>(ot + tok * LDO + 8 * c);
    }
  }
