// etk/core/detail/gemm_f32_kernels.hpp: the fp32 GEMM block driver on the active dispatch
// path (bodies in gemm_f32_kernels.inl, compiled once per path), and the blocking it uses.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "etk/config.hpp"
#include "etk/core/cache_sizes.hpp"
#include "etk/core/isa.hpp"
#include "etk/core/packed_weights_f32.hpp"
#if defined(ETK_X86)
#include <immintrin.h>
#endif

#define ETK_TARGET_FILE "etk/core/detail/gemm_f32_kernels.inl"
#include "etk/core/detail/for_each_target.hpp"

ETK_BEGIN_NAMESPACE
namespace detail::gemm_f32 {

// Depth block: one panel's kc x 32 floats fill L1d (etk/core/cache_sizes.hpp: read at
// run time, 32 KiB when unknown), at least 64 and at most 512 depths: kc = L1d / 128 B,
// 256 on a 32 KiB L1d, 384 on this project's Intel Xeon (48 KiB). Measured on Zen 4 (32
// KiB L1d, bench/peers, 128x768x768 to 1024^3): kc = 256 beat 128 by 5-30% and 384 by
// 0-25%; on the Xeon (512x768x3072, one thread) 384 beat 128 / 192 / 256 by 11 / 6 / 2%.
// (Those sweeps predate the tile-outer loop order of gemm_block, where a tile's kc x MR
// values of A stay in L1 while the panels stream past; kc = 256 / 384 / 512 were within
// noise of each other there at 128x768x768 to 1024^3 on the Xeon.)
// The block size never changes a result (see gemm_f32_kernels.inl; tested).
inline std::ptrdiff_t depth_block_for(std::ptrdiff_t l1d_bytes) {
  return std::clamp<std::ptrdiff_t>(l1d_bytes / (gemm_f32_layout::kNR * std::ptrdiff_t(sizeof(float))), 64, 512);
}

inline std::ptrdiff_t depth_block() {
  static const std::ptrdiff_t kc = depth_block_for(cache_sizes::get().l1d);
  return kc;
}

// Rows [i0, i1) x panels [p0, p1) of C = (acc ? C : 0) + A·B on the active path; A(i, t) =
// a[i*rs + t*cs], B as gemm_f32_kernels.inl's gemm_block reads it, C row stride ldc; depth
// blocks of kc (> 0); col_max (null: none) as the .inl's gemm_block says.
inline void gemm_block(const float* a, std::ptrdiff_t rs, std::ptrdiff_t cs, std::ptrdiff_t k,
                       const float* bp, std::ptrdiff_t ldb, std::ptrdiff_t panel_stride, std::ptrdiff_t n,
                       float* c, std::ptrdiff_t ldc, bool acc, std::ptrdiff_t i0, std::ptrdiff_t i1,
                       std::ptrdiff_t p0, std::ptrdiff_t p1, std::ptrdiff_t kc = depth_block(),
                       float* col_max = nullptr) {
  ETK_DISPATCH_RETURN(
      detail::gemm_f32::gemm_block(a, rs, cs, k, bp, ldb, panel_stride, n, c, ldc, acc, i0, i1, p0, p1, kc, col_max));
}

// dst <- packed panels of B [k, n] * scale with B(t, j) = src[j*ld + t] (the rows of src
// as B's columns), on the active path; the same bits as
// gemm_f32_layout::pack_panels(src, 1, ld, k, n, scale, dst).
inline void pack_transposed(const float* src, std::ptrdiff_t ld, std::ptrdiff_t k, std::ptrdiff_t n, float scale,
                            float* dst) {
  ETK_DISPATCH_RETURN(detail::gemm_f32::pack_transposed(src, ld, k, n, scale, dst));
}

// All of C = (acc ? C : 0) + A [m, k]·B on the calling thread, B packed (k x n).
inline void gemm_packed(const float* a, std::ptrdiff_t rs, std::ptrdiff_t cs, std::ptrdiff_t m,
                        std::ptrdiff_t k, const float* bp, std::ptrdiff_t n, float* c, std::ptrdiff_t ldc,
                        bool acc) {
  gemm_block(a, rs, cs, k, bp, 32, 32 * k, n, c, ldc, acc, 0, m, 0, gemm_f32_layout::panels(n));
}

// gemm_packed with acc = false that also folds C's column maxima into col_max (n floats):
// col_max[j] = max(col_max[j], max_i C[i][j]), from the kernels' registers, no second pass
// over C (dense attention's score maxima).
inline void gemm_packed_column_max(const float* a, std::ptrdiff_t rs, std::ptrdiff_t cs, std::ptrdiff_t m,
                                   std::ptrdiff_t k, const float* bp, std::ptrdiff_t n, float* c, std::ptrdiff_t ldc,
                                   float* col_max) {
  gemm_block(a, rs, cs, k, bp, 32, 32 * k, n, c, ldc, false, 0, m, 0, gemm_f32_layout::panels(n), depth_block(),
             col_max);
}

// The same with B a row-major [k, n] matrix read in place; the row padding up to the next
// multiple of 32 columns readable (its values never reach C), ldb >= that width.
inline void gemm_rowmajor_b(const float* a, std::ptrdiff_t rs, std::ptrdiff_t cs, std::ptrdiff_t m,
                            std::ptrdiff_t k, const float* b, std::ptrdiff_t ldb, std::ptrdiff_t n, float* c,
                            std::ptrdiff_t ldc, bool acc) {
  ETK_DEBUG_ASSERT(ldb >= gemm_f32_layout::panels(n) * 32);
  gemm_block(a, rs, cs, k, b, ldb, 32, n, c, ldc, acc, 0, m, 0, gemm_f32_layout::panels(n));
}

}  // namespace detail::gemm_f32
ETK_END_NAMESPACE
