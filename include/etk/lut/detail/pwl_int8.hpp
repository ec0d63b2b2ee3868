// etk/lut/detail/pwl_int8.hpp: SIMD integer evaluation of a table on int8 inputs.
//
// Taken only for IntegerPwl::narrow() tables (int16 lanes cannot overflow, see
// etk/lut/integer_pwl.hpp). AVX-512 (BW): 64 inputs per step, segment index by a binary
// descent of int8 compares (thresholds from in-lane byte shuffles), slope and
// (intercept * 2^j + the rounding half) fetched by vpermw from 16-bit tables, int16 multiply-add, arithmetic
// shift, saturating narrow (vpmovswb). AVX2: 16 inputs per step in int16 lanes, the
// 16-bit table entries fetched by byte shuffles (two 8-entry tables and a blend).
// The remainder and other tables use the reference loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "etk/config.hpp"
#include "etk/lut/detail/descent.hpp"
#include "etk/lut/reference/integer_pwl.hpp"

#include "etk/core/isa.hpp"
#if defined(ETK_X86)
#include <immintrin.h>
#endif

#define ETK_TARGET_FILE "etk/lut/detail/pwl_int8.inl"
#include "etk/core/detail/for_each_target.hpp"

// The entry point the module calls: forwards to the active path.
ETK_BEGIN_NAMESPACE
namespace lut {
namespace detail {

template <typename Table, typename OutT>
void pwl_eval_int8(const Table& t, const std::int8_t* q, OutT* y, std::ptrdiff_t n) {
  ETK_DISPATCH_RETURN(lut::detail::pwl_eval_int8<Table, OutT>(t, q, y, n));
}

}  // namespace detail
}  // namespace lut
ETK_END_NAMESPACE
