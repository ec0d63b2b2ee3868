// etk/quant/piecewise_linear.hpp: PWLQ, piecewise linear post-training quantization of
// weights (Fang et al., ECCV 2020).
//
// Bell-shaped weights are dense near 0 and sparse in long tails. With m = max|w| and a
// breakpoint p in (0, m), the centre [-p, p] and the tails [-m, -p) U (p, m] each get a
// b-bit signed uniform grid on the magnitude: L = 2^(b-1) levels (0 .. L-1 steps),
//     centre: q = sign(w) * rne(|w| / s_c) * s_c,               s_c = p / (L - 1)
//     tails:  q = sign(w) * (p + rne((|w| - p) / s_t) * s_t),    s_t = (m - p) / (L - 1)
// stored as a b-bit sign-magnitude code (sign in bit b-1, magnitude 0..L-1 below it; the
// sign of a zero-magnitude tail value matters: it is -p or +p) plus one region bit.
// Expected error for a density with CDF F (uniform rounding noise per region):
//     E(p) = C(b-1) [ (m - p)^2 + m (2p - m)(2F(p) - 1) ],   C(b) = 1 / (12 (2^b - 1)^2)
// The breakpoint is found by exact search of the data's quantization error (a scan of
// 202 breakpoints, each a pass over the channel), by minimising E(p) with the channel's
// own empirical distribution (one sort: between two consecutive magnitudes G = P(|w| <= p)
// is constant and E is the convex quadratic p^2 G + (m - p)^2 (1 - G), up to C, whose
// minimum is at p = m (1 - G), so the exact minimiser of E is one of n + 1 clamped
// points), by that minimiser refined by the actual error of 38 breakpoints around it
// (E(p) assumes uniform rounding noise, which few levels per region do not give), or by
// the paper's closed forms for a Gaussian / Laplacian fit in units of sigma:
//     Gaussian  p* = ln(0.8614 m + 0.6079),   Laplacian  p* = 0.8030 sqrt(m) - 0.3167.
// Per tensor or per channel (axis 0: rows, 1: columns). Bias correction then matches each
// channel's mean and standard deviation to the float weights.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/quant_params.hpp"
#include "etk/quant/reference/uniform.hpp"

ETK_BEGIN_NAMESPACE

enum class PwlqBreakpoint {
  search,    // minimise the actual quantization MSE of the data
  expected,  // minimise the expected MSE E(p) under the data's empirical distribution
  refined,   // `expected`, then the actual MSE scanned near it (39 breakpoints, not 202)
  gaussian,  // closed form for a Gaussian fit
  laplace,   // closed form for a Laplacian fit
};

struct PwlqParams {
  int bits = 4;                 // code bits per region (sign included), 2..8
  int axis = -1;                // -1 per tensor, 0 per row, 1 per column
  std::vector<float> range;     // m = max|w| per channel
  std::vector<float> breakpoint;  // p per channel, 0 <= p <= m

  std::int32_t levels() const { return std::int32_t(1) << (bits - 1); }
  float centre_step(std::size_t c) const { return breakpoint[c] / static_cast<float>(levels() - 1); }
  float tail_step(std::size_t c) const { return (range[c] - breakpoint[c]) / static_cast<float>(levels() - 1); }
};

// Codes: b-bit sign-magnitude patterns, and the region bit (0 centre, 1 tail).
struct PwlqCodes {
  RowMatrix<std::uint8_t> code;
  RowMatrix<std::uint8_t> region;
};

namespace detail::quant {
namespace pwlq {

struct Coded {
  std::int32_t magnitude;
  bool negative;
  bool tail;
};

// One magnitude-uniform step: code of |x| on [0, step * (L-1)] (0 when the region is empty).
inline std::int32_t magnitude_code(float mag, float step, std::int32_t levels) {
  if (!(step >= std::numeric_limits<float>::min())) return 0;
  return reference::quantize_value(mag, step, 0, 0, levels - 1);
}

inline Coded encode(float x, float m, float p, std::int32_t levels) {
  const float mag = std::fabs(x);
  const float sc = p / static_cast<float>(levels - 1), st = (m - p) / static_cast<float>(levels - 1);
  const bool tail = mag > p;
  const std::int32_t q = tail ? magnitude_code(mag - p, st, levels) : magnitude_code(mag, sc, levels);
  return {q, x < 0, tail};
}

inline float decode(Coded c, float m, float p, std::int32_t levels) {
  const float sc = p / static_cast<float>(levels - 1), st = (m - p) / static_cast<float>(levels - 1);
  const float mag = c.tail ? p + static_cast<float>(c.magnitude) * st : static_cast<float>(c.magnitude) * sc;
  return c.negative ? -mag : mag;
}

// Values of one channel, copied out.
inline std::vector<float> channel(ConstMatrixView<float> w, int axis, std::ptrdiff_t c) {
  std::vector<float> v;
  if (axis < 0) {
    for (Eigen::Index r = 0; r < w.rows(); ++r)
      for (Eigen::Index k = 0; k < w.cols(); ++k) v.push_back(w(r, k));
  } else if (axis == 0) {
    for (Eigen::Index k = 0; k < w.cols(); ++k) v.push_back(w(c, k));
  } else {
    for (Eigen::Index r = 0; r < w.rows(); ++r) v.push_back(w(r, c));
  }
  return v;
}

inline double mse(const std::vector<float>& v, float m, float p, std::int32_t levels) {
  double e = 0;
  for (float x : v) {
    const double d = static_cast<double>(x) - decode(encode(x, m, p, levels), m, p, levels);
    e += d * d;
  }
  return e / static_cast<double>(v.size());
}

inline float search_breakpoint(const std::vector<float>& v, float m, std::int32_t levels) {
  const int n = 100;
  double best = std::numeric_limits<double>::infinity();
  float best_p = m / 2;
  auto scan = [&](double lo, double hi) {
    for (int i = 0; i <= n; ++i) {
      const float p = static_cast<float>(lo + (hi - lo) * i / n);
      if (!(p > 0 && p < m)) continue;
      const double e = mse(v, m, p, levels);
      if (e < best) {
        best = e;
        best_p = p;
      }
    }
  };
  scan(0.0, m);
  scan(std::max(0.0, best_p - m / static_cast<double>(n)), std::min<double>(m, best_p + m / static_cast<double>(n)));
  return best_p;
}

// The exact minimiser of E(p) / C = p^2 G(p) + (m - p)^2 (1 - G(p)) over 0 < p < m, with
// G(p) the fraction of |v| <= p: on [a_k, a_{k+1}) (sorted magnitudes, a_0 = 0,
// a_{n+1} = m) G = k / n and the convex quadratic is least at m (1 - G) clamped to the
// interval.
inline float expected_breakpoint(const std::vector<float>& v, float m) {
  std::vector<double> a(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(static_cast<double>(v[i]));
  std::sort(a.begin(), a.end());
  const double n = static_cast<double>(a.size()), mm = m;
  double best = std::numeric_limits<double>::infinity(), best_p = mm / 2;
  double lo = 0;
  for (std::size_t k = 0; k <= a.size(); ++k) {
    const double hi = k < a.size() ? a[k] : mm;
    const double g = static_cast<double>(k) / n;
    const double p = std::min(std::max(mm * (1 - g), lo), hi);
    const double e = p * p * g + (mm - p) * (mm - p) * (1 - g);
    if (p > 0 && p < mm && e < best) {
      best = e;
      best_p = p;
    }
    lo = hi;
  }
  return static_cast<float>(best_p);
}

// The expected-MSE breakpoint p0, then the least actual MSE of p0 and the 25 breakpoints
// of a grid over [p0 - m/8, p0 + m/8], then of 13 over one grid step either side of the
// best (38 scanned besides p0).
inline float refined_breakpoint(const std::vector<float>& v, float m, std::int32_t levels) {
  float best_p = expected_breakpoint(v, m);
  double best = mse(v, m, best_p, levels);
  auto scan = [&](double centre, double half, int n) {
    for (int i = 0; i <= n; ++i) {
      const float p = static_cast<float>(centre - half + 2 * half * i / n);
      if (!(p > 0 && p < m)) continue;
      const double e = mse(v, m, p, levels);
      if (e < best) {
        best = e;
        best_p = p;
      }
    }
  };
  const double half = m / 8.0;
  scan(best_p, half, 24);
  scan(best_p, 2 * half / 24, 12);
  return best_p;
}

inline float closed_form_breakpoint(const std::vector<float>& v, float m, PwlqBreakpoint how) {
  double mean = 0, var = 0;
  for (float x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (float x : v) var += (x - mean) * (x - mean);
  const double sigma = std::sqrt(var / static_cast<double>(v.size()));
  if (!(sigma > 0)) return m / 2;
  const double mu = m / sigma;  // range in units of sigma
  const double p = how == PwlqBreakpoint::gaussian ? std::log(0.8614 * mu + 0.6079)
                                                   : 0.8030 * std::sqrt(mu) - 0.3167;
  return static_cast<float>(std::min(std::max(p * sigma, 0.0), static_cast<double>(m)));
}

inline void check_input(ConstMatrixView<float> w, int axis) {
  ETK_CHECK(w.rows() > 0 && w.cols() > 0, "argument 'w' is empty ([" << w.rows() << ", " << w.cols() << "])");
  ETK_CHECK(axis >= -1 && axis <= 1, "argument 'axis' must be -1, 0 or 1, got " << axis);
  check::finite("w", w.data(), w.rows(), w.cols(), w.outerStride());
}

template <typename F>
void for_each(const PwlqParams& p, std::ptrdiff_t rows, std::ptrdiff_t cols, F&& f) {
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    for (std::ptrdiff_t c = 0; c < cols; ++c)
      f(r, c, p.axis < 0 ? 0 : static_cast<std::size_t>(p.axis == 0 ? r : c));
}

}  // namespace pwlq
}  // namespace detail::quant

// Choose m and p per tensor or per channel.
inline PwlqParams pwlq_calibrate(ConstMatrixView<float> w, int bits, int axis = -1,
                                 PwlqBreakpoint how = PwlqBreakpoint::search) {
  namespace pw = detail::quant::pwlq;
  pw::check_input(w, axis);
  check::bits_in_range("bits", bits, 2, 8);
  ETK_CHECK(static_cast<int>(how) >= static_cast<int>(PwlqBreakpoint::search) &&
                static_cast<int>(how) <= static_cast<int>(PwlqBreakpoint::laplace),
            "argument 'how' " << static_cast<int>(how) << " is not an etk::PwlqBreakpoint");
  PwlqParams p;
  p.bits = bits;
  p.axis = axis;
  const std::ptrdiff_t channels = QuantParams::channels_for(axis, w.rows(), w.cols());
  for (std::ptrdiff_t c = 0; c < channels; ++c) {
    const std::vector<float> v = pw::channel(w, axis, c);
    float m = 0;
    for (float x : v) m = std::max(m, std::fabs(x));
    p.range.push_back(m);
    p.breakpoint.push_back(m <= 0 ? 0.0f
                           : how == PwlqBreakpoint::search   ? pw::search_breakpoint(v, m, p.levels())
                           : how == PwlqBreakpoint::expected ? pw::expected_breakpoint(v, m)
                           : how == PwlqBreakpoint::refined  ? pw::refined_breakpoint(v, m, p.levels())
                                                           : pw::closed_form_breakpoint(v, m, how));
  }
  return p;
}

namespace detail::quant {
namespace pwlq {
inline void check_params(const PwlqParams& p, std::ptrdiff_t rows, std::ptrdiff_t cols) {
  check::bits_in_range("p.bits", p.bits, 2, 8);
  ETK_CHECK(p.axis >= -1 && p.axis <= 1, "argument 'p': axis must be -1, 0 or 1, got " << p.axis);
  const std::ptrdiff_t want = QuantParams::channels_for(p.axis, rows, cols);
  ETK_CHECK(static_cast<std::ptrdiff_t>(p.range.size()) == want && p.breakpoint.size() == p.range.size(),
            "argument 'p' needs " << want << " ranges and breakpoints, got " << p.range.size() << " and "
                                  << p.breakpoint.size());
  for (std::size_t c = 0; c < p.range.size(); ++c)
    ETK_CHECK(std::isfinite(p.range[c]) && p.breakpoint[c] >= 0 && p.breakpoint[c] <= p.range[c],
              "argument 'p': channel " << c << " needs 0 <= breakpoint <= range, got "
                                       << p.breakpoint[c] << ", " << p.range[c]);
}
}  // namespace pwlq
}  // namespace detail::quant

inline PwlqCodes pwlq_quantize(ConstMatrixView<float> w, const PwlqParams& p) {
  namespace pw = detail::quant::pwlq;
  pw::check_input(w, p.axis);
  pw::check_params(p, w.rows(), w.cols());
  PwlqCodes out{RowMatrix<std::uint8_t>(w.rows(), w.cols()), RowMatrix<std::uint8_t>(w.rows(), w.cols())};
  pw::for_each(p, w.rows(), w.cols(), [&](std::ptrdiff_t r, std::ptrdiff_t c, std::size_t ch) {
    const pw::Coded q = pw::encode(w(r, c), p.range[ch], p.breakpoint[ch], p.levels());
    out.code(r, c) = static_cast<std::uint8_t>((q.negative ? p.levels() : 0) | q.magnitude);
    out.region(r, c) = q.tail ? 1 : 0;
  });
  return out;
}

inline RowMatrixXf pwlq_dequantize(const PwlqCodes& q, const PwlqParams& p) {
  namespace pw = detail::quant::pwlq;
  ETK_CHECK(q.code.rows() == q.region.rows() && q.code.cols() == q.region.cols() && q.code.size() > 0,
            "argument 'q': codes and region bits must have the same non-empty shape");
  pw::check_params(p, q.code.rows(), q.code.cols());
  RowMatrixXf out(q.code.rows(), q.code.cols());
  pw::for_each(p, q.code.rows(), q.code.cols(), [&](std::ptrdiff_t r, std::ptrdiff_t c, std::size_t ch) {
    const std::int32_t code = q.code(r, c);
    out(r, c) = pw::decode({code & (p.levels() - 1), (code & p.levels()) != 0, q.region(r, c) != 0},
                           p.range[ch], p.breakpoint[ch], p.levels());
  });
  return out;
}

inline RowMatrixXf pwlq_fake_quantize(ConstMatrixView<float> w, const PwlqParams& p) {
  return pwlq_dequantize(pwlq_quantize(w, p), p);
}

// Expected PWLQ error E(p) of the header comment for a given CDF value F(p).
inline double pwlq_expected_mse(double m, double p, double cdf_at_p, int bits) {
  const double l = std::exp2(bits - 1) - 1;
  return ((m - p) * (m - p) + m * (2 * p - m) * (2 * cdf_at_p - 1)) / (12 * l * l);
}

// Bias correction: per channel (axis 0 rows, 1 columns, -1 whole tensor), an affine map
// wq <- (wq - mean(wq)) * std(w) / std(wq) + mean(w) so that the quantized channel has the
// float channel's mean and standard deviation. (The PWLQ reference code scales after
// adding the mean shift, which matches the mean only for zero-mean channels.) Returns the
// corrected weights; the per-channel gain and offset are written to `gain` / `offset` if
// given (wq' = gain * wq + offset), so that integer kernels can fold them into scales.
inline RowMatrixXf bias_correct(ConstMatrixView<float> w, ConstMatrixView<float> wq, int axis,
                                std::vector<float>* gain = nullptr, std::vector<float>* offset = nullptr) {
  detail::quant::pwlq::check_input(w, axis);
  check::equal("wq", wq.rows(), "rows", w.rows());
  check::equal("wq", wq.cols(), "cols", w.cols());
  const std::ptrdiff_t channels = QuantParams::channels_for(axis, w.rows(), w.cols());
  RowMatrixXf out = wq;
  if (gain) gain->assign(static_cast<std::size_t>(channels), 1.0f);
  if (offset) offset->assign(static_cast<std::size_t>(channels), 0.0f);
  for (std::ptrdiff_t c = 0; c < channels; ++c) {
    const std::vector<float> a = detail::quant::pwlq::channel(w, axis, c);
    const std::vector<float> b = detail::quant::pwlq::channel(wq, axis, c);
    double ma = 0, mb = 0, va = 0, vb = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      ma += a[i];
      mb += b[i];
    }
    ma /= static_cast<double>(a.size());
    mb /= static_cast<double>(b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      va += (a[i] - ma) * (a[i] - ma);
      vb += (b[i] - mb) * (b[i] - mb);
    }
    const double g = vb > 0 ? std::sqrt(va / vb) : 1.0;
    const double o = ma - g * mb;
    if (gain) (*gain)[static_cast<std::size_t>(c)] = static_cast<float>(g);
    if (offset) (*offset)[static_cast<std::size_t>(c)] = static_cast<float>(o);
    const std::ptrdiff_t r0 = axis == 0 ? c : 0, r1 = axis == 0 ? c + 1 : w.rows();
    const std::ptrdiff_t k0 = axis == 1 ? c : 0, k1 = axis == 1 ? c + 1 : w.cols();
    for (std::ptrdiff_t r = r0; r < r1; ++r)
      for (std::ptrdiff_t k = k0; k < k1; ++k) out(r, k) = static_cast<float>(g * wq(r, k) + o);
  }
  return out;
}

ETK_END_NAMESPACE
