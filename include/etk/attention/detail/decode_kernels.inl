// etk/attention/detail/decode_kernels.inl: the decode primitives of one dispatch path and,
// for each primitive, the best body that path has (AVX-512 without VNNI takes the AVX2
// bodies); compiled once per path by etk/core/detail/for_each_target.hpp.
#include "etk/attention/detail/decode_scalar.inl"
#include "etk/attention/detail/decode_avx2.inl"
#include "etk/attention/detail/decode_avx512.inl"

namespace detail::decode {
namespace simd {
#if defined(ETK_HAS_AVX512VNNI)
using avx512::block_dots;
using avx512::block_scores;
using avx512::lo_dots;
using avx512::select_block;
using avx512::weighted_values;
using avx512::weighted_values_rows;
#elif defined(ETK_HAS_AVX2)
using avx2::block_dots;
using avx2::lo_dots;
using avx2::weighted_values;
using avx2::weighted_values_rows;
using scalar::select_block;
#else
using scalar::block_dots;
using scalar::lo_dots;
using scalar::select_block;
using scalar::weighted_values;
using scalar::weighted_values_rows;
#endif

#if !defined(ETK_HAS_AVX512VNNI)
// out[r * ldo + kk] = arranged code row r of q (nrows <= kMaxGroup rows, ldq apart) .
// (code + 128) of key kk of one 16-key block, from its MS4B lines hi and its 16 LS4B rows
// lo: 16 * (q . (MS4B + 8)) + q . LS4B, both exact in int32 (bounds in decode_scalar.inl).
inline void block_scores(const std::uint8_t* hi, const std::uint8_t* lo, std::ptrdiff_t L,
                         const std::int8_t* q, std::ptrdiff_t ldq, int nrows, std::int32_t* out,
                         std::ptrdiff_t ldo) {
  static constexpr std::int32_t keys[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  block_dots(hi, L, q, ldq, nrows, 128, out, ldo);
  for (int r = 0; r < nrows; ++r) {
    std::int32_t l16[16];
    lo_dots(lo, L, keys, 16, q + r * ldq, l16);
    for (int kk = 0; kk < 16; ++kk) out[r * ldo + kk] = 16 * out[r * ldo + kk] + l16[kk];
  }
}
#endif
}  // namespace simd
}  // namespace detail::decode
