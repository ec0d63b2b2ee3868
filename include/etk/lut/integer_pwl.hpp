// etk/lut/integer_pwl.hpp: integer-only evaluation of a piecewise-linear table.
//
// The input is an integer x at a power-of-two scale 2^-j (int8 for the fast paths), the
// slopes S and intercepts B are raw integers of a signed fixed-point format with f
// fraction bits (Q2.6 by default), and the output is an integer at scale 2^-k:
//     segment  = number of thresholds T_m <= x,   T_m = ceil(b_m * 2^j)
//     acc      = S * x + B * 2^j                      (exact, scale 2^-(f+j))
//     y        = saturate((acc + 2^(sh-1)) >> sh)     sh = f + j - k  (round half up)
// (for sh <= 0, y = saturate(acc * 2^-sh)). Since x >= b_m * 2^j <=> x >= ceil(b_m 2^j)
// for integer x, the segment is the one the float path picks for x * 2^-j under the
// left-closed convention of etk/lut/pwl.hpp. When every coefficient of the float table
// is representable (report.exact()) and |acc| < 2^24 for every int8 input, the float
// path's fma(s, x 2^-j, b) equals acc * 2^-(f+j) exactly, so the integer output equals
// the float output rounded half up to the output scale, on every int8 input.
//
// Accumulators: the scalar path uses int64 (|S| <= 2^15, |x| <= 2^30, |B 2^j| <= 2^39:
// no overflow). The SIMD int8 paths use int16 lanes and are taken only when
// max over segments of |S| * 128 + |B * 2^j + 2^(sh-1)| <= 32767 (checked when the table
// is quantized), with 0 <= sh <= 15, int8 output and at most 16 segments.
//
// Saturation is reported, never silent: coefficients outside the format are clamped and
// counted in the report, and the report lists how many int8 inputs saturate the output.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "etk/config.hpp"
#include "etk/lut/fixed_point.hpp"
#include "etk/lut/pwl.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

struct IntegerPwlConfig {
  int input_frac_bits = 6;     // j: the input's scale is 2^-j, j in [0, 16]
  FixedFormat coeff{8, 6};     // slopes and intercepts (Q2.6)
  int output_frac_bits = 6;    // k: the output's scale is 2^-k, k in [0, 30]
  int output_bits = 8;         // 8, 16 or 32: the output integer type
};

struct QuantizationReport {
  int slopes_saturated = 0;      // slopes outside the coefficient format (clamped)
  int intercepts_saturated = 0;  // intercepts outside the coefficient format (clamped)
  int slopes_rounded = 0;        // slopes not on the format's grid (rounded to nearest)
  int intercepts_rounded = 0;
  int inputs_saturating = 0;     // int8 inputs whose output saturates the output type
  bool float_exact = true;       // |acc| < 2^24 on every int8 input

  // The integer path reproduces the float table exactly (up to the output rounding).
  bool exact() const {
    return slopes_saturated == 0 && intercepts_saturated == 0 && slopes_rounded == 0 &&
           intercepts_rounded == 0 && float_exact;
  }
  std::string summary() const {
    std::ostringstream s;
    s << "slopes saturated " << slopes_saturated << ", intercepts saturated "
      << intercepts_saturated << ", slopes rounded " << slopes_rounded
      << ", intercepts rounded " << intercepts_rounded << ", int8 inputs saturating the output "
      << inputs_saturating << (float_exact ? "" : ", accumulator exceeds 2^24");
    return s.str();
  }
};

class IntegerPwl {
 public:
  int segments() const { return static_cast<int>(slopes_.size()); }
  const IntegerPwlConfig& config() const { return config_; }
  const QuantizationReport& report() const { return report_; }
  const std::vector<std::int32_t>& thresholds() const { return thresholds_; }
  const std::vector<std::int32_t>& slopes() const { return slopes_; }      // raw, f frac bits
  const std::vector<std::int32_t>& intercepts() const { return intercepts_; }
  int shift() const { return config_.coeff.frac_bits + config_.input_frac_bits - config_.output_frac_bits; }
  std::int64_t output_min() const { return -(std::int64_t{1} << (config_.output_bits - 1)); }
  std::int64_t output_max() const { return (std::int64_t{1} << (config_.output_bits - 1)) - 1; }
  // The int16-lane SIMD paths are exact for this table (see the header comment).
  bool narrow() const { return narrow_; }

  int segment(std::int64_t x) const {
    int index = 0;
    for (std::int32_t t : thresholds_)
      if (t <= x) ++index;
    return index;
  }
  // acc = S x + B 2^j at scale 2^-(f+j).
  std::int64_t accumulate(std::int64_t x) const {
    const int s = segment(x);
    return std::int64_t{slopes_[s]} * x + std::int64_t{intercepts_[s]} * (std::int64_t{1} << config_.input_frac_bits);
  }
  // acc requantized to the output scale, before saturation.
  std::int64_t unsaturated_output(std::int64_t x) const {
    const std::int64_t acc = accumulate(x);
    const int sh = shift();
    if (sh > 0) return (acc + (std::int64_t{1} << (sh - 1))) >> sh;  // arithmetic shift
    return acc * (std::int64_t{1} << -sh);
  }
  std::int64_t output(std::int64_t x) const {
    return std::min(std::max(unsaturated_output(x), output_min()), output_max());
  }

 private:
  friend IntegerPwl quantize_pwl(const PwlTable& table, const IntegerPwlConfig& config);
  IntegerPwlConfig config_;
  QuantizationReport report_;
  std::vector<std::int32_t> thresholds_;
  std::vector<std::int32_t> slopes_;
  std::vector<std::int32_t> intercepts_;
  bool narrow_ = false;
};

// The integer form of `table` for inputs at scale 2^-config.input_frac_bits.
inline IntegerPwl quantize_pwl(const PwlTable& table, const IntegerPwlConfig& config) {
  ETK_CHECK(config.input_frac_bits >= 0 && config.input_frac_bits <= 16,
            "argument 'input_frac_bits' must be in [0, 16], got " << config.input_frac_bits);
  ETK_CHECK(config.output_frac_bits >= 0 && config.output_frac_bits <= 30,
            "argument 'output_frac_bits' must be in [0, 30], got " << config.output_frac_bits);
  ETK_CHECK(config.output_bits == 8 || config.output_bits == 16 || config.output_bits == 32,
            "argument 'output_bits' must be 8, 16 or 32, got " << config.output_bits);
  config.coeff.validate("coeff");
  const int sh = config.coeff.frac_bits + config.input_frac_bits - config.output_frac_bits;
  ETK_CHECK(sh >= -16, "argument 'output_frac_bits': output scale 2^-" << config.output_frac_bits
            << " is more than 2^16 finer than the accumulator's (shift " << sh << ")");

  IntegerPwl p;
  p.config_ = config;
  const int j = config.input_frac_bits;
  // Thresholds: ceil(b 2^j), clamped to +-2^30 (the documented input bound).
  const double bound = std::ldexp(1.0, 30);
  for (float b : table.breakpoints()) {
    const double t = std::min(std::max(std::ceil(std::ldexp(double{b}, j)), -bound), bound);
    p.thresholds_.push_back(static_cast<std::int32_t>(t));
  }
  for (int s = 0; s < table.segments(); ++s) {
    const FixedConversion cs = to_fixed(table.slopes()[s], config.coeff);
    const FixedConversion cb = to_fixed(table.intercepts()[s], config.coeff);
    p.report_.slopes_saturated += cs.saturated;
    p.report_.slopes_rounded += cs.rounded && !cs.saturated;
    p.report_.intercepts_saturated += cb.saturated;
    p.report_.intercepts_rounded += cb.rounded && !cb.saturated;
    p.slopes_.push_back(cs.raw);
    p.intercepts_.push_back(cb.raw);
  }
  for (int q = -128; q <= 127; ++q) {
    const std::int64_t u = p.unsaturated_output(q);
    if (u < p.output_min() || u > p.output_max()) ++p.report_.inputs_saturating;
    const std::int64_t acc = p.accumulate(q);
    if (acc >= (std::int64_t{1} << 24) || acc <= -(std::int64_t{1} << 24)) p.report_.float_exact = false;
  }
  std::int64_t worst = 0;  // the int16-lane bound of the header comment
  const std::int64_t half = sh > 0 ? (std::int64_t{1} << (sh - 1)) : 0;
  for (int s = 0; s < p.segments(); ++s)
    worst = std::max(worst, std::int64_t{std::abs(p.slopes_[s])} * 128 +
                                std::abs(std::int64_t{p.intercepts_[s]} * (std::int64_t{1} << j) + half));
  p.narrow_ = worst <= 32767 && sh >= 0 && sh <= 15 && config.output_bits == 8 &&
              p.segments() <= 16;
  return p;
}

}  // namespace lut
ETK_END_NAMESPACE

#include "etk/lut/detail/pwl_int8.hpp"
#include "etk/lut/reference/integer_pwl.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

// y[i] = table's integer output for the int8 input q[i], i < n. OutT must be the integer
// type of config.output_bits bits. Saturating outputs are clamped (see report()).
template <typename OutT>
void pwl_eval_int8(const IntegerPwl& table, const std::int8_t* q, OutT* y, std::ptrdiff_t n) {
  static_assert(std::is_same<OutT, std::int8_t>::value || std::is_same<OutT, std::int16_t>::value ||
                    std::is_same<OutT, std::int32_t>::value,
                "output must be int8_t, int16_t or int32_t");
  ETK_CHECK(table.config().output_bits == static_cast<int>(8 * sizeof(OutT)),
            "argument 'y': the table outputs " << table.config().output_bits
            << "-bit integers, the output array holds " << 8 * sizeof(OutT) << "-bit ones");
  ETK_CHECK(n >= 0, "argument 'n' must be >= 0, got " << n);
  ETK_CHECK(n == 0 || (q != nullptr && y != nullptr), "argument 'q'/'y' is a null pointer");
  detail::pwl_eval_int8(table, q, y, n);
}

}  // namespace lut
ETK_END_NAMESPACE
