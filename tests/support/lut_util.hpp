// tests/support/lut_util.hpp: random piecewise-linear tables for the lut tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include <etk/lut/pwl.hpp>

namespace lut_test {

// A random table of `segments` segments with distinct breakpoints in [lo, hi). With
// `grid_bits` >= 0 the breakpoints sit on the 2^-grid_bits grid and the coefficients on
// the Q(coeff_total - coeff_frac).coeff_frac grid (so they are exactly representable).
inline etk::lut::PwlTable random_table(std::mt19937& rng, int segments, double lo, double hi,
                                       int grid_bits = -1, int coeff_total = 8,
                                       int coeff_frac = 6) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::set<float> points;
  while (static_cast<int>(points.size()) < segments - 1) {
    double b = u(rng);
    if (grid_bits >= 0) b = std::ldexp(std::round(std::ldexp(b, grid_bits)), -grid_bits);
    points.insert(static_cast<float>(b));
  }
  const double cmax = std::ldexp(1.0, coeff_total - 1 - coeff_frac);
  std::uniform_real_distribution<double> c(-cmax, cmax);
  std::vector<float> s, b;
  for (int i = 0; i < segments; ++i) {
    double sv = c(rng), bv = c(rng);
    if (grid_bits >= 0) {
      const double step = std::ldexp(1.0, -coeff_frac);
      sv = std::min(std::round(sv / step) * step, cmax - step);
      bv = std::min(std::round(bv / step) * step, cmax - step);
    }
    s.push_back(static_cast<float>(sv));
    b.push_back(static_cast<float>(bv));
  }
  return etk::lut::PwlTable(std::vector<float>(points.begin(), points.end()), s, b, lo, hi);
}

// The sizes every fast-vs-reference test sweeps (odd, 1, non-multiples of the widths).
inline std::vector<int> test_sizes() {
  std::vector<int> n;
  for (int i = 0; i <= 17; ++i) n.push_back(i);
  for (int i : {31, 33, 63, 65, 127, 129, 1000}) n.push_back(i);
  return n;
}

}  // namespace lut_test
