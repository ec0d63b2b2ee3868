// etk/quant/requantize.hpp: fixed-point rescaling of int32 accumulators to 8-bit codes,
// gemmlowp style.
//
// A real multiplier M = S_a * S_w / S_y in (0, 1) is stored as M0 * 2^-n with M0 a Q0.31
// integer in [2^30, 2^31) and a right shift n in [0, 31]. An accumulator x becomes
//     y = clamp(zp_y + rounding_divide_by_pot(srdhm(x, M0), n), qmin, qmax)
// where srdhm ("saturating rounding doubling high multiply") is round(x * M0 / 2^31) with
// ties upward, and rounding_divide_by_pot rounds x / 2^n half away from zero. Per tensor
// (one M0, n) or per output channel (one per column). These scalar functions are the
// definition; the SIMD epilogues of the int8 GEMM match them bit for bit for every
// requantization check::requantization accepts.
//
// int32 range of the zero-point add: |srdhm(x, M0)| <= M0 for every int32 x, and a right
// shift n >= 1 leaves at most (M0 >> n) + 1 <= 2^30 + 1; so zp + (...) fits int32 unless
// n = 0 and M0 + |zp| > 2^31 - 1 (a multiplier within |zp| * 2^-31 of 1). Those are
// rejected (the SIMD epilogues add in int32 and would wrap: -128 where 127 is right).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "etk/config.hpp"
#include "etk/quant/quant_params.hpp"

ETK_BEGIN_NAMESPACE

// round(a * b / 2^31), the gemmlowp definition: the product is nudged by +2^30 (or by
// 1 - 2^30 when negative) and divided with truncation, which rounds ties upward (toward
// +inf: 1.5 -> 2, -1.5 -> -1, -0.5 -> 0). The only overflow, INT32_MIN * INT32_MIN,
// saturates.
inline std::int32_t saturating_rounding_doubling_high_mul(std::int32_t a, std::int32_t b) {
  if (a == b && a == std::numeric_limits<std::int32_t>::min())
    return std::numeric_limits<std::int32_t>::max();
  const std::int64_t ab = static_cast<std::int64_t>(a) * b;
  const std::int64_t nudge = ab >= 0 ? (std::int64_t(1) << 30) : (1 - (std::int64_t(1) << 30));
  return static_cast<std::int32_t>((ab + nudge) / (std::int64_t(1) << 31));
}

// x / 2^n rounded to nearest, ties away from zero; n in [0, 31].
inline std::int32_t rounding_divide_by_pot(std::int32_t x, int n) {
  const std::int32_t mask = static_cast<std::int32_t>((std::int64_t(1) << n) - 1);
  const std::int32_t remainder = x & mask;
  const std::int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> n) + (remainder > threshold ? 1 : 0);
}

// One accumulator through the whole pipeline: rescale, add the zero point, clamp.
inline std::int32_t requantize_value(std::int32_t acc, std::int32_t multiplier, std::int32_t shift,
                                     std::int32_t zero_point, std::int32_t qmin, std::int32_t qmax) {
  const std::int32_t y =
      zero_point + rounding_divide_by_pot(saturating_rounding_doubling_high_mul(acc, multiplier), shift);
  return y < qmin ? qmin : (y > qmax ? qmax : y);
}

struct Requantization {
  // Q0.31 mantissas in [2^30, 2^31), one per tensor or one per output column.
  std::vector<std::int32_t> multiplier{std::int32_t(1) << 30};
  // Right shifts in [0, 31], same length as `multiplier`.
  std::vector<std::int32_t> shift{0};
  // Output grid: zero point and clamp range (e.g. [-128, 127] or [0, 255]).
  std::int32_t zero_point = 0;
  std::int32_t qmin = -128;
  std::int32_t qmax = 127;

  // M = mantissa * 2^-shift for a real multiplier in [2^-32, 1).
  static void quantize_multiplier(double m, std::int32_t& mantissa, std::int32_t& shift) {
    ETK_CHECK(std::isfinite(m) && m >= std::ldexp(1.0, -32) && m < 1.0,
              "argument 'multiplier' must be in [2^-32, 1), got " << m);
    int e = 0;
    const double q = std::frexp(m, &e);  // m = q * 2^e, q in [0.5, 1)
    std::int64_t q31 = static_cast<std::int64_t>(std::nearbyint(std::ldexp(q, 31)));
    if (q31 == (std::int64_t(1) << 31)) {  // rounding reached 1.0
      q31 /= 2;
      ++e;
    }
    mantissa = static_cast<std::int32_t>(q31);
    shift = -e;
    if (shift > 31) {  // m < 2^-31: keep the grid, lose the low mantissa bits
      mantissa = static_cast<std::int32_t>(std::nearbyint(std::ldexp(q, 31 - (shift - 31))));
      shift = 31;
    }
  }

  // Requantization from the activation scale, the weight scale(s) (one, or one per output
  // column) and the output grid `out` (per tensor, bits <= 8).
  static Requantization from_scales(double a_scale, const std::vector<float>& w_scale,
                                    const QuantParams& out) {
    check::quant_params("out", out);
    ETK_CHECK(out.axis < 0 && out.bits <= 8,
              "argument 'out' must be a per-tensor grid of at most 8 bits");
    check::positive_finite("a_scale", a_scale);
    ETK_CHECK(!w_scale.empty(), "argument 'w_scale' is empty");
    Requantization r;
    r.multiplier.resize(w_scale.size());
    r.shift.resize(w_scale.size());
    for (std::size_t j = 0; j < w_scale.size(); ++j) {
      check::positive_finite("w_scale", w_scale[j]);
      quantize_multiplier(a_scale * w_scale[j] / out.scale[0], r.multiplier[j], r.shift[j]);
    }
    r.zero_point = out.zero_point[0];
    r.qmin = out.qmin();
    r.qmax = out.qmax();
    return r;
  }

  std::int32_t apply(std::int32_t acc, std::size_t column) const {
    const std::size_t c = multiplier.size() == 1 ? 0 : column;
    return requantize_value(acc, multiplier[c], shift[c], zero_point, qmin, qmax);
  }
};

namespace check {
inline void requantization(const char* name, const Requantization& r, std::ptrdiff_t columns) {
  ETK_CHECK(!r.multiplier.empty() && r.multiplier.size() == r.shift.size(),
            "argument '" << name << "': needs as many shifts as multipliers, at least one");
  ETK_CHECK(r.multiplier.size() == 1 || static_cast<std::ptrdiff_t>(r.multiplier.size()) == columns,
            "argument '" << name << "': needs 1 or " << columns << " multipliers, got "
                         << r.multiplier.size());
  for (std::size_t j = 0; j < r.multiplier.size(); ++j) {
    ETK_CHECK(r.multiplier[j] >= (std::int32_t(1) << 30) || r.shift[j] == 31,
              "argument '" << name << "': multiplier[" << j << "] = " << r.multiplier[j]
                           << " is not a normalised Q0.31 mantissa in [2^30, 2^31)");
    ETK_CHECK(r.multiplier[j] > 0, "argument '" << name << "': multiplier[" << j << "] must be > 0");
    ETK_CHECK(r.shift[j] >= 0 && r.shift[j] <= 31,
              "argument '" << name << "': shift[" << j << "] must be in [0, 31], got " << r.shift[j]);
    const std::int64_t zp_abs = r.zero_point < 0 ? -std::int64_t(r.zero_point) : r.zero_point;
    ETK_CHECK(r.shift[j] > 0 || r.multiplier[j] + zp_abs <= std::numeric_limits<std::int32_t>::max(),
              "argument '" << name << "': multiplier[" << j << "] = " << r.multiplier[j]
                           << " with shift 0 and zero point " << r.zero_point
                           << " can overflow int32 when the zero point is added (needs multiplier + "
                              "|zero point| <= 2^31 - 1)");
  }
  ETK_CHECK(r.qmin <= r.qmax && r.qmin >= -128 && r.qmax <= 255 &&
                r.zero_point >= r.qmin && r.zero_point <= r.qmax,
            "argument '" << name << "': output range [" << r.qmin << ", " << r.qmax
                         << "] with zero point " << r.zero_point << " is not an 8-bit grid");
}
}  // namespace check

ETK_END_NAMESPACE
