// etk/attention/detail/decode_kernels.hpp: the decode primitives (nibble-plane dots,
// survivor selection, weighted value sums) on the active dispatch path (bodies in
// decode_kernels.inl, compiled once per path by etk/core/detail/for_each_target.hpp). Each
// primitive forwards to its path's body; a unit built with ISA flags calls its own path.
//
// A query row is "arranged" to match the nibble planes: for L = ceil(dim/8) lines, bytes
// [4l, 4l+4) hold codes of dims 8l..8l+3 and bytes [4L + 4l, 4L + 4l + 4) dims 8l+4..8l+7
// (zero padded), ldq = 8L bytes. A byte of either plane multiplies its low nibble with
// the first half and its high nibble with the second.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "etk/attention/detail/latte_kernels.hpp"
#include "etk/attention/kv_cache.hpp"
#include "etk/core/isa.hpp"
#if defined(ETK_X86)
#include <immintrin.h>
#endif

#define ETK_TARGET_FILE "etk/attention/detail/decode_kernels.inl"
#include "etk/core/detail/for_each_target.hpp"

ETK_BEGIN_NAMESPACE
namespace detail::decode {

// Arranges codes c[0..d) into out[0..8L).
inline void arrange(const std::int8_t* c, std::ptrdiff_t d, std::ptrdiff_t L, std::int8_t* out) {
  for (std::ptrdiff_t l = 0; l < L; ++l)
    for (std::ptrdiff_t t = 0; t < 4; ++t) {
      const std::ptrdiff_t a = 8 * l + t, b = a + 4;
      out[4 * l + t] = a < d ? c[a] : 0;
      out[4 * L + 4 * l + t] = b < d ? c[b] : 0;
    }
}

namespace simd {

// qmax: a bound on |q| over the rows (8 for MS4B query nibbles, 15 for LS4B ones, 128 for
// codes), which bounds the partial sums a path may keep in int16.
inline void block_dots(const std::uint8_t* hi, std::ptrdiff_t L, const std::int8_t* q,
                       std::ptrdiff_t ldq, int nrows, int qmax, std::int32_t* out, std::ptrdiff_t ldo) {
  ETK_DISPATCH_RETURN(detail::decode::simd::block_dots(hi, L, q, ldq, nrows, qmax, out, ldo));
}

// out[r*ldo + kk] = arranged code row r . (code + 128) of key kk of one 16-key block
// (MS4B lines hi, the block's 16 LS4B rows lo): the exact int8 score plus 128 * sum of the
// row's codes, both planes in one pass.
inline void block_scores(const std::uint8_t* hi, const std::uint8_t* lo, std::ptrdiff_t L,
                         const std::int8_t* q, std::ptrdiff_t ldq, int nrows, std::int32_t* out,
                         std::ptrdiff_t ldo) {
  ETK_DISPATCH_RETURN(detail::decode::simd::block_scores(hi, lo, L, q, ldq, nrows, out, ldo));
}

inline void lo_dots(const std::uint8_t* lo, std::ptrdiff_t L, const std::int32_t* idx,
                    std::ptrdiff_t n, const std::int8_t* q, std::int32_t* out) {
  ETK_DISPATCH_RETURN(detail::decode::simd::lo_dots(lo, L, idx, n, q, out));
}

inline std::ptrdiff_t select_block(const std::int32_t* E, int lo, int hi, std::int32_t corr,
                                   float unit, float cut, std::int32_t base, std::int32_t* idx) {
  ETK_DISPATCH_RETURN(detail::decode::simd::select_block(E, lo, hi, corr, unit, cut, base, idx));
}

inline void weighted_values(KVValueType type, const float* w, const std::int32_t* idx,
                            std::ptrdiff_t n, const std::uint8_t* values, std::ptrdiff_t row_bytes,
                            const float* vscale, std::ptrdiff_t dv, float* o) {
  ETK_DISPATCH_RETURN(detail::decode::simd::weighted_values(type, w, idx, n, values, row_bytes, vscale, dv, o));
}

inline void weighted_values_rows(KVValueType type, const float* w, std::ptrdiff_t ldw, int nrows,
                                 const std::int32_t* idx, std::ptrdiff_t n,
                                 const std::uint8_t* values, std::ptrdiff_t row_bytes,
                                 const float* vscale, std::ptrdiff_t dv, float* o, std::ptrdiff_t ldo) {
  ETK_DISPATCH_RETURN(detail::decode::simd::weighted_values_rows(type, w, ldw, nrows, idx, n, values, row_bytes,
                                                         vscale, dv, o, ldo));
}

}  // namespace simd
}  // namespace detail::decode
ETK_END_NAMESPACE
