// etk/attention/detail/decode_avx512.hpp: AVX-512 VNNI decode primitives (contracts and
// layouts of decode_scalar.hpp).
#pragma once

#include "etk/attention/detail/decode_scalar.hpp"

#if defined(ETK_HAS_AVX512VNNI)
#include <immintrin.h>

ETK_BEGIN_NAMESPACE
namespace decode {
namespace avx512 {
using scalar::block_dots;
using scalar::hi_dots;
using scalar::lo_dots;
using scalar::weighted_values;
}  // namespace avx512
}  // namespace decode
ETK_END_NAMESPACE
#endif
