// etk/attention/detail/decode_kernels.hpp: picks, per decode primitive, the best path the
// translation unit was compiled for (AVX-512 VNNI, else scalar). The choice is made at
// compile time: a plain -O2 unit (runtime dispatch, etk/core/isa.hpp) gets the scalar
// decode primitives; moving them to per-target bodies (.inl) is the next step.
#pragma once

#include "etk/attention/detail/decode_avx512.hpp"
#include "etk/attention/detail/decode_scalar.hpp"

ETK_BEGIN_NAMESPACE
namespace decode {
namespace simd {
#if defined(ETK_HAS_AVX512VNNI)
using avx512::block_dots;
using avx512::hi_dots;
using avx512::lo_dots;
using avx512::select_block;
using avx512::weighted_values;
using avx512::weighted_values_rows;
#else
using scalar::block_dots;
using scalar::hi_dots;
using scalar::lo_dots;
using scalar::select_block;
using scalar::weighted_values;
using scalar::weighted_values_rows;
#endif
}  // namespace simd
}  // namespace decode
ETK_END_NAMESPACE
