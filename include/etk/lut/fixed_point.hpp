// etk/lut/fixed_point.hpp: signed fixed-point formats for table coefficients.
//
// FixedFormat{total_bits, frac_bits} is the signed two's-complement format with
// total_bits bits of which frac_bits are fractional: Q(total-frac).frac, e.g. {8, 6} is
// Q2.6, range [-2, 2 - 2^-6] in steps of 2^-6 (the GQA-LUT default). Conversion rounds
// to nearest (ties away from zero) and SATURATES out-of-range values, telling the caller;
// nothing ever wraps.
#pragma once

#include <cmath>
#include <cstdint>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

struct FixedFormat {
  int total_bits = 8;
  int frac_bits = 6;

  // Limits checked by validate(): 2..16 total bits (one int16 holds a raw value), 0..24
  // fraction bits.
  void validate(const char* arg) const {
    ETK_CHECK(total_bits >= 2 && total_bits <= 16,
              "argument '" << arg << "': total_bits must be in [2, 16], got " << total_bits);
    ETK_CHECK(frac_bits >= 0 && frac_bits <= 24,
              "argument '" << arg << "': frac_bits must be in [0, 24], got " << frac_bits);
  }
  std::int32_t raw_min() const { return -(std::int32_t{1} << (total_bits - 1)); }
  std::int32_t raw_max() const { return (std::int32_t{1} << (total_bits - 1)) - 1; }
  double step() const { return std::ldexp(1.0, -frac_bits); }
  double min() const { return raw_min() * step(); }
  double max() const { return raw_max() * step(); }
};

// The result of converting one real value to a fixed-point raw integer.
struct FixedConversion {
  std::int32_t raw = 0;
  bool saturated = false;  // |value| was outside the format: raw is the nearest limit
  bool rounded = false;    // value was not on the format's grid
};

inline FixedConversion to_fixed(double value, FixedFormat fmt) {
  ETK_CHECK(std::isfinite(value), "argument 'value': cannot convert " << value
                                   << " to fixed point");
  FixedConversion c;
  const double scaled = std::ldexp(value, fmt.frac_bits);
  const double r = std::round(scaled);
  c.rounded = (r != scaled);
  if (r < fmt.raw_min()) {
    c.raw = fmt.raw_min();
    c.saturated = true;
  } else if (r > fmt.raw_max()) {
    c.raw = fmt.raw_max();
    c.saturated = true;
  } else {
    c.raw = static_cast<std::int32_t>(r);
  }
  return c;
}

// value rounded to the format's grid and clamped to its range (no report).
inline double round_to_format(double value, FixedFormat fmt) {
  return std::ldexp(static_cast<double>(to_fixed(value, fmt).raw), -fmt.frac_bits);
}

}  // namespace lut
ETK_END_NAMESPACE
