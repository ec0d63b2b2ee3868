// etk/quant/reference/optimal_levels.hpp: the plain twin of etk/quant/optimal_levels.hpp.
// The same dynamic programme over every split point (no row optimisation), each cell's
// error summed directly from the bins (no prefix sums): O(L * B^2), for small histograms.
// Returns the optimal total squared error.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

#include "etk/config.hpp"
#include "etk/quant/optimal_levels.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

inline double optimal_levels_sse(const MomentHistogram& h, int levels) {
  detail::quant::check_levels_input(h, levels);
  const std::size_t B = h.bins();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> prev(B + 1, inf), cur(B + 1);
  prev[0] = 0.0;
  for (int l = 1; l <= levels; ++l) {
    for (std::size_t j = 0; j <= B; ++j) {
      double best = prev[j];  // the empty cell [j, j)
      double n = 0, s = 0, q = 0;
      for (std::size_t i = j; i-- > 0;) {  // cell [i, j), grown one bin at a time
        n += h.count()[i];
        s += h.sum()[i];
        q += h.sumsq()[i];
        const double cell = n > 0 ? std::max(0.0, q - s * s / n) : 0.0;
        best = std::min(best, prev[i] + cell);
      }
      cur[j] = best;
    }
    prev = cur;
  }
  return prev[B];
}

}  // namespace reference
ETK_END_NAMESPACE
