// etk/lut/pwl.hpp: a piecewise-linear table (GQA-LUT) and its float evaluation.
//
// A table of S segments holds S-1 interior breakpoints b_1 < ... < b_{S-1}, one slope and
// one intercept per segment, and the input range [lo, hi) it was fitted on. It is stored
// as given and never re-derived from its breakpoints (re-deriving secants from rounded
// breakpoints changes coefficients and can double the error, see docs/numerics.md).
//
// Boundary convention (the one etk uses everywhere, float and integer): segments are
// left-closed. Segment i covers [b_i, b_{i+1}) with b_0 = -inf and b_S = +inf, i.e.
//     segment(x) = number of breakpoints b_k with b_k <= x,
// so a value ON a breakpoint belongs to the segment on its right. (The reference trainer,
// np.digitize, does the same; the reference operator, torch.bucketize, does the opposite.)
// Inputs outside [lo, hi) use the outer segments' lines (no clamping). A NaN input selects
// segment 0 and gives NaN: y = fma(slope, x, intercept), evaluated with one rounding.
//
// Float evaluation: the segment index comes from a binary descent over the breakpoints
// (their thresholds fetched by register permutes; AVX-512 up to 16 segments, AVX2 up to 8,
// AVX2 9..16 by summing compares), the slope and intercept from a register permute, then
// one FMA. Tables of more than 16 segments use the scalar path. Every path computes the
// same segment and the same fma, so they agree bit for bit.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "etk/config.hpp"
#include "etk/lut/reference/pwl.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

class PwlTable {
 public:
  // Checks: at least one segment; slopes and intercepts of equal size S; S-1 breakpoints;
  // all values finite; breakpoints strictly increasing (unsorted and duplicate breakpoints
  // are rejected separately); lo < hi, both finite.
  PwlTable(std::vector<float> breakpoints, std::vector<float> slopes,
           std::vector<float> intercepts, double lo, double hi)
      : breakpoints_(std::move(breakpoints)),
        slopes_(std::move(slopes)),
        intercepts_(std::move(intercepts)),
        lo_(lo),
        hi_(hi) {
    ETK_CHECK(!slopes_.empty(), "argument 'slopes': a table needs at least one segment");
    ETK_CHECK(intercepts_.size() == slopes_.size(),
              "argument 'intercepts': size " << intercepts_.size() << " must equal the "
              << slopes_.size() << " slopes");
    ETK_CHECK(breakpoints_.size() + 1 == slopes_.size(),
              "argument 'breakpoints': " << slopes_.size() << " segments need "
              << slopes_.size() - 1 << " interior breakpoints, got " << breakpoints_.size());
    ETK_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi,
              "argument 'range': needs finite lo < hi, got [" << lo << ", " << hi << ")");
    for (std::size_t i = 0; i < slopes_.size(); ++i)
      ETK_CHECK(std::isfinite(slopes_[i]) && std::isfinite(intercepts_[i]),
                "argument 'slopes'/'intercepts': segment " << i << " has a non-finite "
                "coefficient (" << slopes_[i] << ", " << intercepts_[i] << ")");
    for (std::size_t k = 0; k < breakpoints_.size(); ++k) {
      ETK_CHECK(std::isfinite(breakpoints_[k]),
                "argument 'breakpoints': breakpoint " << k << " is not finite");
      if (k == 0) continue;
      ETK_CHECK(breakpoints_[k] != breakpoints_[k - 1],
                "argument 'breakpoints': duplicate breakpoint " << breakpoints_[k]
                << " at positions " << k - 1 << " and " << k);
      ETK_CHECK(breakpoints_[k] > breakpoints_[k - 1],
                "argument 'breakpoints': not sorted, " << breakpoints_[k - 1]
                << " at position " << k - 1 << " is followed by " << breakpoints_[k]);
    }
  }

  int segments() const { return static_cast<int>(slopes_.size()); }
  const std::vector<float>& breakpoints() const { return breakpoints_; }
  const std::vector<float>& slopes() const { return slopes_; }
  const std::vector<float>& intercepts() const { return intercepts_; }
  double lo() const { return lo_; }
  double hi() const { return hi_; }

  // The segment x belongs to under the left-closed convention.
  int segment(float x) const { return reference::segment_index(breakpoints_.data(), segments(), x); }
  // The table's value at x (scalar).
  float operator()(float x) const {
    const int i = segment(x);
    return std::fma(slopes_[i], x, intercepts_[i]);
  }

 private:
  std::vector<float> breakpoints_;
  std::vector<float> slopes_;
  std::vector<float> intercepts_;
  double lo_;
  double hi_;
};

}  // namespace lut
ETK_END_NAMESPACE

#include "etk/lut/detail/pwl_float.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

// A table from sorted (non-decreasing) breakpoints that may repeat: a segment between two
// equal breakpoints is empty under the left-closed convention, so it is dropped together
// with the repeated breakpoint. This is how tables with repeated breakpoints (e.g. the
// reference code's rounded ones) are brought to the strict form PwlTable requires.
inline PwlTable table_dropping_empty_segments(const std::vector<float>& breakpoints,
                                              const std::vector<float>& slopes,
                                              const std::vector<float>& intercepts, double lo,
                                              double hi) {
  ETK_CHECK(!slopes.empty() && slopes.size() == intercepts.size() &&
                breakpoints.size() + 1 == slopes.size(),
            "argument 'slopes': sizes do not match (" << breakpoints.size() << " breakpoints, "
            << slopes.size() << " slopes, " << intercepts.size() << " intercepts)");
  std::vector<float> b, s{slopes[0]}, k{intercepts[0]};
  for (std::size_t i = 0; i < breakpoints.size(); ++i) {
    if (!b.empty() && breakpoints[i] == b.back()) {  // segment i is empty: keep segment i+1
      s.back() = slopes[i + 1];
      k.back() = intercepts[i + 1];
      continue;
    }
    b.push_back(breakpoints[i]);
    s.push_back(slopes[i + 1]);
    k.push_back(intercepts[i + 1]);
  }
  return PwlTable(b, s, k, lo, hi);
}

// y[i] = table(x[i]) for i < n, on the fastest path compiled in. x and y may alias.
inline void pwl_eval(const PwlTable& table, const float* x, float* y, std::ptrdiff_t n) {
  ETK_CHECK(n >= 0, "argument 'n' must be >= 0, got " << n);
  ETK_CHECK(n == 0 || (x != nullptr && y != nullptr), "argument 'x'/'y' is a null pointer");
  detail::pwl_eval_float(table.breakpoints().data(), table.slopes().data(),
                         table.intercepts().data(), table.segments(), x, y, n);
}

}  // namespace lut
ETK_END_NAMESPACE
