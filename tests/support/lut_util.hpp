// tests/support/lut_util.hpp: random piecewise-linear tables for the lut tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
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

// The float path at x = q 2^-j, rounded half up to 2^-k and saturated to `bits`: what
// the integer path must return. The scaling by powers of two and the +0.5 are exact in
// double for these magnitudes (the float result has at most 24 significant bits).
inline std::int64_t float_expected(const etk::lut::PwlTable& t, int q, int j, int k, int bits) {
  const float x = std::ldexp(static_cast<float>(q), -j);
  float y;
  etk::lut::pwl_eval(t, &x, &y, 1);
  const double r = std::floor(std::ldexp(static_cast<double>(y), k) + 0.5);
  const double lo = -std::ldexp(1.0, bits - 1), hi = std::ldexp(1.0, bits - 1) - 1;
  return static_cast<std::int64_t>(std::min(std::max(r, lo), hi));
}

// The sizes every fast-vs-reference test sweeps (odd, 1, non-multiples of the widths).
inline std::vector<int> test_sizes() {
  std::vector<int> n;
  for (int i = 0; i <= 17; ++i) n.push_back(i);
  for (int i : {31, 33, 63, 65, 127, 129, 1000}) n.push_back(i);
  return n;
}

}  // namespace lut_test

namespace lut_test {

// The reference code's published tables (PingchengDong/GQA-LUT, pretrained/*.json), at
// their finest input scale j = 6: facts to compare against, evaluated under etk's
// left-closed convention with repeated breakpoints' empty segments dropped.
struct ReferenceTable {
  const char* function;
  int segments;
  double lo, hi;
  std::vector<float> breakpoints, slopes, intercepts;
  etk::lut::PwlTable table() const {
    return etk::lut::table_dropping_empty_segments(breakpoints, slopes, intercepts, lo, hi);
  }
};

inline std::vector<ReferenceTable> reference_tables() {
  return {
      {"gelu", 8, -4, 4,
       {-3.015625f, -2.203125f, -0.890625f, -0.421875f, 0.03125f, 0.625f, 2.796875f},
       {-0.0f, -0.03125f, -0.109375f, 0.046875f, 0.359375f, 0.75f, 1.078125f, 1.0f},
       {-0.0f, -0.09375f, -0.265625f, -0.125f, 0.0f, -0.015625f, -0.21875f, -0.0f}},
      {"gelu", 16, -4, 4,
       {-4.0f, -3.359375f, -3.3125f, -2.171875f, -0.90625f, -0.5f, -0.125f, 0.0f, 0.21875f,
        0.515625f, 0.96875f, 1.8125f, 2.421875f, 2.4375f, 3.671875f},
       {-0.0f, -0.0f, -0.0f, -0.03125f, -0.109375f, 0.03125f, 0.265625f, 0.453125f, 0.578125f,
        0.78125f, 0.984375f, 1.109375f, 1.078125f, 1.046875f, 1.015625f, 1.0f},
       {-0.0f, -0.0f, -0.015625f, -0.09375f, -0.265625f, -0.140625f, -0.03125f, 0.0f, 0.0f,
        -0.046875f, -0.15625f, -0.265625f, -0.203125f, -0.125f, -0.046875f, -0.0f}},
      {"hswish", 8, -4, 4,
       {-2.984375f, -2.0f, -1.125f, -0.125f, 0.875f, 1.875f, 3.03125f},
       {-0.0f, -0.328125f, -0.015625f, 0.296875f, 0.625f, 0.953125f, 1.296875f, 1.0f},
       {-0.0f, -1.0f, -0.375f, -0.03125f, 0.015625f, -0.28125f, -0.921875f, 0.0f}},
      {"hswish", 16, -4, 4,
       {-3.296875f, -3.0f, -2.46875f, -2.0625f, -1.6875f, -1.34375f, -0.75f, -0.21875f,
        0.140625f, 0.59375f, 1.015625f, 1.53125f, 1.875f, 2.375f, 2.984375f},
       {0.0f, 0.0f, -0.40625f, -0.25f, -0.125f, -0.0f, 0.15625f, 0.34375f, 0.484375f, 0.625f,
        0.765625f, 0.921875f, 1.0625f, 1.203125f, 1.390625f, 1.0f},
       {0.0f, 0.0f, -1.234375f, -0.84375f, -0.578125f, -0.375f, -0.171875f, -0.03125f, 0.0f,
        -0.015625f, -0.109375f, -0.265625f, -0.46875f, -0.734375f, -1.1875f, -0.0f}},
      {"exp", 8, -8, 0,
       {-5.25f, -3.4375f, -2.328125f, -2.0f, -1.25f, -0.671875f, -0.296875f},
       {0.0f, 0.015625f, 0.0625f, 0.109375f, 0.203125f, 0.390625f, 0.625f, 0.875f},
       {0.0f, 0.078125f, 0.234375f, 0.359375f, 0.53125f, 0.765625f, 0.921875f, 1.0f}},
      {"exp", 16, -8, 0,
       {-5.8125f, -5.78125f, -5.6875f, -5.6875f, -5.640625f, -3.5f, -3.375f, -2.375f,
        -1.640625f, -1.25f, -1.203125f, -0.796875f, -0.375f, -0.3125f, -0.09375f},
       {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.015625f, 0.03125f, 0.0625f, 0.140625f, 0.234375f,
        0.296875f, 0.375f, 0.5625f, 0.703125f, 0.8125f, 0.953125f},
       {0.0f, 0.015625f, 0.015625f, 0.0f, 0.015625f, 0.078125f, 0.140625f, 0.234375f,
        0.421875f, 0.578125f, 0.65625f, 0.75f, 0.890625f, 0.953125f, 0.984375f, 1.0f}},
  };
}

}  // namespace lut_test
