// etk/lut/detail/pwl_float.hpp: vectorised float evaluation of a piecewise-linear table.
//
// The segment index comes from a binary descent over the breakpoints whose thresholds are
// fetched by register permutes (AVX-512: up to 16 segments, 4 compares; AVX2: up to 8
// segments, 3 compares), or for 9..16 segments on AVX2 from a sum of 15 compares; then the
// segment's slope and intercept come from a register permute and y = fma(slope, x,
// intercept). Larger tables, the scalar build and the AVX2 remainder use the reference
// loop, which computes the same segment and the same fma.
#pragma once

#include <cstddef>
#include <limits>

#include "etk/config.hpp"
#include "etk/lut/detail/descent.hpp"
#include "etk/lut/reference/pwl.hpp"

#include "etk/core/isa.hpp"
#if defined(ETK_X86)
#include <immintrin.h>
#endif

#define ETK_TARGET_FILE "etk/lut/detail/pwl_float.inl"
#include "etk/core/detail/for_each_target.hpp"

// The entry point the module calls: forwards to the active path.
ETK_BEGIN_NAMESPACE
namespace lut {
namespace detail {

inline void pwl_eval_float(const float* bp, const float* sl, const float* ic, int segments,
                           const float* x, float* y, std::ptrdiff_t n) {
  ETK_DISPATCH_RETURN(lut::detail::pwl_eval_float(bp, sl, ic, segments, x, y, n));
}

}  // namespace detail
}  // namespace lut
ETK_END_NAMESPACE
