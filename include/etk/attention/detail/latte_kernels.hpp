// etk/attention/detail/latte_kernels.hpp: picks, per LATTE primitive, the best path the
// translation unit was compiled for (AVX-512 VNNI, else AVX2, else scalar).
#pragma once

#include "etk/attention/detail/latte_avx2.hpp"
#include "etk/attention/detail/latte_avx512.hpp"
#include "etk/attention/detail/latte_scalar.hpp"

ETK_BEGIN_NAMESPACE
namespace latte {
namespace simd {
#if defined(ETK_HAS_AVX512VNNI)
using avx512::estimate_tile;
using avx512::estimate_tile_max;
using avx512::exact_scores;
using avx512::gather_pv;
using avx512::pack_key;
using avx512::pack_query;
using avx512::row_max;
using avx512::select;
#elif defined(ETK_HAS_AVX2)
using avx2::estimate_tile;
using avx2::estimate_tile_max;
using avx2::exact_scores;
using avx2::row_max;
using scalar::gather_pv;
using scalar::pack_key;
using scalar::pack_query;
using scalar::select;
#else
using scalar::estimate_tile;
using scalar::estimate_tile_max;
using scalar::exact_scores;
using scalar::gather_pv;
using scalar::pack_key;
using scalar::pack_query;
using scalar::row_max;
using scalar::select;
#endif
}  // namespace simd
}  // namespace latte
ETK_END_NAMESPACE
