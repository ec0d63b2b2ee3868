// etk/lut/integer_ops.hpp: integer-only GELU, softmax and LayerNorm built from GQA-LUT
// tables, in the manner of I-BERT (Kim et al. 2021): int8 in, integer arithmetic only.
//
// GELU: the shipped GELU table for the input scale, evaluated by the int8 path.
//
// Softmax over a row of int8 logits at scale 2^-j, output int16 at scale 2^-14:
//   d = q - max(q) <= 0; at scale 2^-24, d = -z ln2 + r with r in (-ln2, 0]
//   (LN2 = round(ln2 2^24)); exp(r) from the 16-segment table on [-ln2, 0) (input 2^-14,
//   coefficients Q2.14, exp_ln2_16); e = exp(r) >> z at scale 2^-28; S = sum e;
//   S = m 2^E with m in [1, 2); 1/m from the 32-segment table on [1, 2)
//   (reciprocal_unit_32); p = e * (1/m) >> (E + 14), rounded, saturated to int16.
//
// LayerNorm over a row of int8 values at scale 2^-j, output int8 at scale 2^-k:
//   c = n x - sum(x) (= n 2^j (x - mean)); W = sum(c^2) / n + round(eps n^2 4^j)
//   (= (n 2^j)^2 (var + eps)); W = m 4^E with m in [1, 4); 1/sqrt(m) from the 32-segment
//   table on [1, 4) (rsqrt_unit_32); y = c / sqrt(W) at scale 2^-12; out = gamma y + beta
//   with gamma in Q4.12 (|gamma| < 8) and beta at the output scale, rounded, saturated.
//
// Accumulator widths (all int64): softmax |d 2^(24-j)| <= 255 2^24 < 2^32, e <= 2^28 + 2^15
// per element, S < 2^29 n (n < 2^34 accepted), e * (1/m) < 2^29 * 2^28.1 < 2^58.
// LayerNorm |c| <= 255 n, sum c^2 <= 2^16 n^3 < 2^58 for n <= 2^14 (checked);
// eps n^2 4^j <= 2^42 for eps <= 1, j <= 7 (checked); c * (1/sqrt m) < 2^22 * 2^29;
// gamma * y < 2^15 * 2^20. Errors against float are measured in tests/lut/test_integer_ops.cpp
// and documented in docs/numerics.md.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/span.hpp"
#include "etk/lut/integer_pwl.hpp"
#include "etk/lut/tables/exp_ln2_16.hpp"
#include "etk/lut/tables/gelu_16.hpp"
#include "etk/lut/tables/gelu_8.hpp"
#include "etk/lut/tables/reciprocal_unit_32.hpp"
#include "etk/lut/tables/rsqrt_unit_32.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

// GELU on int8 inputs at scale 2^-j (j in [0, 6]) -> int8 at scale 2^-k, from the
// shipped 8- or 16-segment table for that scale.
class IntegerGelu {
 public:
  IntegerGelu(int input_frac_bits, int output_frac_bits, int segments = 16)
      : table_(quantize_pwl(pick(segments).for_scale(input_frac_bits),
                            {input_frac_bits, pick(segments).coeff, output_frac_bits, 8})) {}
  void operator()(const std::int8_t* q, std::int8_t* y, std::ptrdiff_t n) const {
    pwl_eval_int8(table_, q, y, n);
  }
  const IntegerPwl& table() const { return table_; }

 private:
  static const TableSet& pick(int segments) {
    ETK_CHECK(segments == 8 || segments == 16,
              "argument 'segments': shipped GELU tables have 8 or 16 segments, got " << segments);
    return segments == 8 ? tables::gelu_8() : tables::gelu_16();
  }
  IntegerPwl table_;
};

namespace detail {
constexpr int kUnitFrac = 14;  // the range-reduced tables' input scale and coefficient fraction

inline IntegerPwl unit_table(const TableSet& set) {
  // 64-bit output: the raw accumulator at scale 2^-28 (no requantization shift).
  return quantize_pwl(set.for_scale(kUnitFrac), {kUnitFrac, set.coeff, 2 * kUnitFrac, 32});
}
inline int floor_log2(std::uint64_t v) {
  int e = -1;
  while (v) {
    v >>= 1;
    ++e;
  }
  return e;
}
inline std::int64_t round_shift(std::int64_t v, int sh) {  // round half up, sh >= 1
  return (v + (std::int64_t{1} << (sh - 1))) >> sh;
}
}  // namespace detail

// Row-wise softmax of int8 logits at scale 2^-j (j in [0, 14]) -> int16 at scale 2^-14.
class IntegerSoftmax {
 public:
  static constexpr int kOutputFracBits = 14;
  explicit IntegerSoftmax(int input_frac_bits)
      : j_(input_frac_bits),
        exp_(detail::unit_table(tables::exp_ln2_16())),
        recip_(detail::unit_table(tables::reciprocal_unit_32())) {
    ETK_CHECK(j_ >= 0 && j_ <= 14, "argument 'input_frac_bits' must be in [0, 14], got " << j_);
  }

  void operator()(const std::int8_t* q, std::int16_t* p, std::ptrdiff_t n) const {
    ETK_CHECK(n > 0, "argument 'n': softmax of an empty row (n = " << n << ")");
    ETK_CHECK(n < (std::ptrdiff_t{1} << 34), "argument 'n' must be < 2^34, got " << n);
    ETK_CHECK(q != nullptr && p != nullptr, "argument 'q'/'p' is a null pointer");
    constexpr std::int64_t kLn2 = 11629080;  // round(ln2 2^24)
    int m = q[0];
    for (std::ptrdiff_t i = 1; i < n; ++i) m = q[i] > m ? q[i] : m;
    std::vector<std::int64_t> e(static_cast<std::size_t>(n));
    std::int64_t sum = 0;
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const std::int64_t x = -(std::int64_t{m - q[i]} << (24 - j_));  // <= 0, scale 2^-24
      const std::int64_t z = (-x) / kLn2;
      const std::int64_t r = (x + z * kLn2) >> 10;  // in (-ln2, 0], scale 2^-14 (floor)
      const std::int64_t ex = exp_.accumulate(r);   // exp(r), scale 2^-28
      e[i] = z >= 62 ? 0 : (ex >> z);
      sum += e[i];
    }
    const int top = detail::floor_log2(static_cast<std::uint64_t>(sum));  // sum = m 2^top
    const std::int64_t mant = top >= detail::kUnitFrac ? (sum >> (top - detail::kUnitFrac))
                                                       : (sum << (detail::kUnitFrac - top));
    const std::int64_t inv = recip_.accumulate(mant);  // 1/m, scale 2^-28
    // p = e 2^-28 / (m 2^(top - 28)) = e * inv 2^-28 2^-top at scale 2^-14.
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const std::int64_t v = detail::round_shift(e[i] * inv, top + 28 - kOutputFracBits);
      p[i] = static_cast<std::int16_t>(v > 32767 ? 32767 : v);
    }
  }

 private:
  int j_;
  IntegerPwl exp_;
  IntegerPwl recip_;
};

// LayerNorm of int8 rows at scale 2^-j (j in [0, 7]) -> int8 at scale 2^-k (k in [0, 7]).
class IntegerLayerNorm {
 public:
  static constexpr int kGammaFrac = 12;
  IntegerLayerNorm(Span<float> gamma, Span<float> beta,
                   int input_frac_bits, int output_frac_bits, double eps = 1e-5)
      : j_(input_frac_bits), k_(output_frac_bits), rsqrt_(detail::unit_table(tables::rsqrt_unit_32())) {
    const std::ptrdiff_t n = gamma.size();
    ETK_CHECK(n > 0 && n <= (std::ptrdiff_t{1} << 14),
              "argument 'gamma': row length must be in [1, 16384], got " << n);
    ETK_CHECK(beta.size() == n, "argument 'beta': size " << beta.size() << " != gamma's " << n);
    ETK_CHECK(j_ >= 0 && j_ <= 7, "argument 'input_frac_bits' must be in [0, 7], got " << j_);
    ETK_CHECK(k_ >= 0 && k_ <= 7, "argument 'output_frac_bits' must be in [0, 7], got " << k_);
    ETK_CHECK(std::isfinite(eps) && eps >= 0 && eps <= 1, "argument 'eps' must be in [0, 1], got " << eps);
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      ETK_CHECK(std::isfinite(gamma[i]) && std::fabs(gamma[i]) < 8.0f,
                "argument 'gamma': element " << i << " = " << gamma[i] << " is outside (-8, 8)");
      ETK_CHECK(std::isfinite(beta[i]) && std::fabs(beta[i]) < 1e6f,
                "argument 'beta': element " << i << " = " << beta[i] << " is not finite or too large");
      gamma_.push_back(static_cast<std::int64_t>(std::lround(std::ldexp(gamma[i], kGammaFrac))));
      beta_.push_back(static_cast<std::int64_t>(std::llround(std::ldexp(double{beta[i]}, k_))));
    }
    const double nn = static_cast<double>(n);
    eps_ = static_cast<std::int64_t>(std::llround(eps * nn * nn * std::ldexp(1.0, 2 * j_)));
  }

  std::ptrdiff_t size() const { return static_cast<std::ptrdiff_t>(gamma_.size()); }

  void operator()(const std::int8_t* x, std::int8_t* y) const {
    ETK_CHECK(x != nullptr && y != nullptr, "argument 'x'/'y' is a null pointer");
    const std::int64_t n = size();
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < n; ++i) sum += x[i];
    std::int64_t ss = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t c = n * x[i] - sum;
      ss += c * c;
    }
    const std::int64_t w = ss / n + eps_;
    if (w == 0) {  // a constant row with eps = 0: the normalised value is 0
      for (std::int64_t i = 0; i < n; ++i) y[i] = saturate(beta_[i]);
      return;
    }
    const int e = detail::floor_log2(static_cast<std::uint64_t>(w)) / 2;  // w = m 4^e
    const std::int64_t mant = 2 * e >= detail::kUnitFrac ? (w >> (2 * e - detail::kUnitFrac))
                                                         : (w << (detail::kUnitFrac - 2 * e));
    const std::int64_t inv = rsqrt_.accumulate(mant);  // 1/sqrt(m), scale 2^-28
    // c / sqrt(w) = c * inv 2^-28 2^-e at scale 2^-12.
    const int sh = 28 + e - kGammaFrac;
    const int out_sh = 2 * kGammaFrac - k_;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t yn = detail::round_shift((n * x[i] - sum) * inv, sh);
      y[i] = saturate(detail::round_shift(gamma_[i] * yn, out_sh) + beta_[i]);
    }
  }

 private:
  static std::int8_t saturate(std::int64_t v) {
    return static_cast<std::int8_t>(v < -128 ? -128 : (v > 127 ? 127 : v));
  }
  int j_, k_;
  IntegerPwl rsqrt_;
  std::vector<std::int64_t> gamma_, beta_;
  std::int64_t eps_ = 0;
};

}  // namespace lut
ETK_END_NAMESPACE
