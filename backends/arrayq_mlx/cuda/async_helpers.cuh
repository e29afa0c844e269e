//! arrayq: cp.async copies into shared memory and the 16-bit MAGIC pair, shared by the
//! tensor-core decode kernel and the fused kernel.

#include <cuda/std/type_traits>
__device__ __forceinline__ uint32_t aq_smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
// CH bytes global -> shared, zero-filled when !valid
template <int CH>
__device__ __forceinline__ void aq_cp_async(const uint32_t dst, const void* src, const bool valid) {
  const int n = valid ? CH : 0;
  if constexpr (CH == 16) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(n) : "memory");
  } else {
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(src), "n"(CH), "r"(n) : "memory");
  }
}
__device__ __forceinline__ void aq_cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void aq_cp_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }
// MAGIC (128 in bf16, 1024 in f16: ulp 1) in both halves, as a value in a register, so that
// mask and magic are one LOP3 (zero is a run-time zero, e.g. K >> 31: ptxas would fold a
// constant back into the instruction)
template <bool BF16>
__device__ __forceinline__ uint32_t aq_magic2(const uint32_t zero) {
  return (BF16 ? 0x43004300u : 0x64006400u) | zero;
}
