// etk/attention/detail/latte_kernels.inl: the LATTE primitives of one dispatch path and,
// for each primitive, the best one that path has (AVX-512 without VNNI takes the AVX2
// primitives); compiled once per path by etk/core/detail/for_each_target.hpp.
#include "etk/attention/detail/latte_scalar.inl"
#include "etk/attention/detail/latte_avx2.inl"
#include "etk/attention/detail/latte_avx512.inl"

namespace detail::latte {
namespace simd {
#if defined(ETK_HAS_AVX512VNNI)
using avx512::estimate_tile;
using avx512::estimate_tile_max;
using avx512::exact_scores;
using avx512::gather_pv;
using avx512::pack_key;
using avx512::pack_query;
using avx512::row_max;
using avx512::score_weights;
using avx512::select;
#elif defined(ETK_HAS_AVX2)
using avx2::estimate_tile;
using avx2::estimate_tile_max;
using avx2::exact_scores;
using avx2::gather_pv;
using avx2::pack_key;
using avx2::pack_query;
using avx2::row_max;
using scalar::score_weights;
using avx2::select;
#else
using scalar::estimate_tile;
using scalar::estimate_tile_max;
using scalar::exact_scores;
using scalar::gather_pv;
using scalar::pack_key;
using scalar::pack_query;
using scalar::row_max;
using scalar::score_weights;
using scalar::select;
#endif
}  // namespace simd
}  // namespace detail::latte
