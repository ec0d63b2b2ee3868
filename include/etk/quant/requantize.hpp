// etk/quant/requantize.hpp: fixed-point rescaling of int32 accumulators to 8-bit codes,
// gemmlowp / ruy / TFLite style.
//
// A real multiplier m in [2^-32, 2^31) is stored as a Q0.31 mantissa M0 in [2^30, 2^31)
// and a signed shift s in [-31, 31]: m = M0 * 2^-31 * 2^-s. s > 0 is a right shift
// (m < 0.5), s <= 0 a left shift by L = -s (m >= 0.5; m >= 1 needs L >= 1). With
// R = max(s, 0) and L = max(-s, 0), an accumulator x becomes
//     v = rounding_divide_by_pot(srdhm(saturating_left_shift(x, L), M0), R)
//     y = zp + clamp(v, qmin - zp, qmax - zp)          (= clamp(zp + v, qmin, qmax))
// where saturating_left_shift is clamp(x * 2^L) to int32 (it saturates, never wraps),
// srdhm ("saturating rounding doubling high multiply") is round(x * M0 / 2^31) with ties
// upward, and rounding_divide_by_pot rounds x / 2^R half away from zero. Per tensor (one
// M0, s) or per output channel (one per column). These scalar functions are the
// definition; the SIMD epilogues of the int8 GEMM compute the same integers for every
// requantization check::requantization accepts.
//
// Widths of every intermediate (why nothing wraps):
//  * left shift: |x| <= 2^31 and L <= 31, so x * 2^L is exact in int64 (|.| <= 2^62) and
//    is then clamped to int32. The SIMD form compares x with INT32_MAX >> L and
//    INT32_MIN >> L (x * 2^L > INT32_MAX iff x > floor(INT32_MAX / 2^L); x * 2^L <
//    INT32_MIN iff x < -2^(31-L)), writes the int32 limit there and an exact vpsllvd
//    elsewhere: the same value.
//  * srdhm: the int64 product |x * M0| <= 2^31 * (2^31 - 1) < 2^62, plus the 2^30 nudge
//    and (SIMD) doubled, stays below 2^63; the result |.| <= M0 <= 2^31 - 1 fits int32.
//  * rounding_divide_by_pot: x >> R plus at most 1, and the 1 is added only when R >= 1
//    and the remainder passes half, so |.| <= 2^30 + 1 for R >= 1 and = v for R = 0.
//  * zero point: v is clamped to [qmin - zp, qmax - zp] (both in [-383, 383] for an 8-bit
//    grid) before zp is added, so the sum lies in [qmin, qmax]: no int32 add can wrap,
//    whatever M0, s and zp. (Adding zp first, as main did, wrapped for v near 2^31 - 1:
//    -128 where 127 is right; that input needed rejecting, now it is simply exact.)
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/span.hpp"
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

// clamp(x * 2^n) to the int32 range; n in [0, 31].
inline std::int32_t saturating_left_shift(std::int32_t x, int n) {
  const std::int64_t y = static_cast<std::int64_t>(x) * (std::int64_t(1) << n);
  const std::int64_t lo = std::numeric_limits<std::int32_t>::min(), hi = std::numeric_limits<std::int32_t>::max();
  return static_cast<std::int32_t>(y < lo ? lo : (y > hi ? hi : y));
}

// One accumulator through the whole pipeline: left shift (saturating), rescale, right
// shift, clamp to the grid around the zero point, add the zero point.
inline std::int32_t requantize_value(std::int32_t acc, std::int32_t multiplier, std::int32_t shift,
                                     std::int32_t zero_point, std::int32_t qmin, std::int32_t qmax) {
  const int left = shift < 0 ? -shift : 0, right = shift > 0 ? shift : 0;
  const std::int32_t v = rounding_divide_by_pot(
      saturating_rounding_doubling_high_mul(saturating_left_shift(acc, left), multiplier), right);
  const std::int32_t lo = qmin - zero_point, hi = qmax - zero_point;
  return zero_point + (v < lo ? lo : (v > hi ? hi : v));
}

struct Requantization {
  // Q0.31 mantissas in [2^30, 2^31), one per tensor or one per output column.
  std::vector<std::int32_t> multiplier{std::int32_t(1) << 30};
  // Signed shifts in [-31, 31], same length as `multiplier`: > 0 shifts right, < 0 left.
  std::vector<std::int32_t> shift{0};
  // Output grid: zero point and clamp range (e.g. [-128, 127] or [0, 255]).
  std::int32_t zero_point = 0;
  std::int32_t qmin = -128;
  std::int32_t qmax = 127;

  // m = mantissa * 2^-31 * 2^-shift for a real multiplier m in [2^-32, 2^31) (a mantissa
  // that rounds up to 2^31 at the top exponent is rejected too).
  static void quantize_multiplier(double m, std::int32_t& mantissa, std::int32_t& shift) {
    ETK_CHECK(std::isfinite(m) && m >= std::ldexp(1.0, -32) && m < std::ldexp(1.0, 31),
              "argument 'multiplier' must be in [2^-32, 2^31), got " << m);
    int e = 0;
    const double q = std::frexp(m, &e);  // m = q * 2^e, q in [0.5, 1)
    std::int64_t q31 = static_cast<std::int64_t>(std::nearbyint(std::ldexp(q, 31)));
    if (q31 == (std::int64_t(1) << 31)) {  // rounding reached 1.0
      q31 /= 2;
      ++e;
    }
    ETK_CHECK(e <= 31, "argument 'multiplier' " << m << " rounds to 2^31, beyond the largest left shift");
    mantissa = static_cast<std::int32_t>(q31);
    shift = -e;
    if (shift > 31) {  // m < 2^-31: keep the grid, lose the low mantissa bits
      mantissa = static_cast<std::int32_t>(std::nearbyint(std::ldexp(q, 31 - (shift - 31))));
      shift = 31;
    }
  }

  // Requantization from the activation scale, the weight scale(s) (one, or one per output
  // column) and the output grid `out` (per tensor, bits <= 8).
  static Requantization from_scales(double a_scale, Span<float> w_scale,
                                    const QuantParams& out) {
    check::quant_params("out", out);
    ETK_CHECK(out.axis < 0 && out.bits <= 8,
              "argument 'out' must be a per-tensor grid of at most 8 bits");
    check::positive_finite("a_scale", a_scale);
    ETK_CHECK(!w_scale.empty(), "argument 'w_scale' is empty");
    Requantization r;
    r.multiplier.resize(static_cast<std::size_t>(w_scale.size()));
    r.shift.resize(static_cast<std::size_t>(w_scale.size()));
    for (std::ptrdiff_t j = 0; j < w_scale.size(); ++j) {
      check::positive_finite("w_scale", w_scale[j]);
      const auto c = static_cast<std::size_t>(j);
      quantize_multiplier(a_scale * w_scale[j] / out.scale[0], r.multiplier[c], r.shift[c]);
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
    ETK_CHECK(r.shift[j] >= -31 && r.shift[j] <= 31,
              "argument '" << name << "': shift[" << j << "] must be in [-31, 31], got " << r.shift[j]);
  }
  ETK_CHECK(r.qmin <= r.qmax && r.qmin >= -128 && r.qmax <= 255 &&
                r.zero_point >= r.qmin && r.zero_point <= r.qmax,
            "argument '" << name << "': output range [" << r.qmin << ", " << r.qmax
                         << "] with zero point " << r.zero_point << " is not an 8-bit grid");
}
}  // namespace check

ETK_END_NAMESPACE
