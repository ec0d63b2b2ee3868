// etk/lut/reference/pwl.hpp: the plain scalar evaluation of a piecewise-linear table.
//
// The obviously-correct twin of the vectorised paths: count the breakpoints at or below
// x (left-closed segments, see etk/lut/pwl.hpp), then one fma with that segment's line.
#pragma once

#include <cmath>
#include <cstddef>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {
namespace reference {

// Number of breakpoints b_k (k < segments - 1) with b_k <= x. NaN compares false: 0.
inline int segment_index(const float* breakpoints, int segments, float x) {
  int index = 0;
  for (int k = 0; k + 1 < segments; ++k)
    if (breakpoints[k] <= x) ++index;
  return index;
}

inline void pwl_eval(const float* breakpoints, const float* slopes, const float* intercepts,
                     int segments, const float* x, float* y, std::ptrdiff_t n) {
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const int s = segment_index(breakpoints, segments, x[i]);
    y[i] = std::fma(slopes[s], x[i], intercepts[s]);
  }
}

}  // namespace reference
}  // namespace lut
ETK_END_NAMESPACE
