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
}  // namespace simd
}  // namespace detail::decode
