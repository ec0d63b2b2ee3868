// etk/quant/observers.hpp: calibration, i.e. choosing a QuantParams grid from data.
//
//   MinMaxObserver               running min / max (PyTorch MinMax), per tensor or channel
//   MovingAverageMinMaxObserver  min/max smoothed over batches, constant c = 0.01
//   percentile_params            clip at the p-th percentile of |x| (or of x, unsigned)
//   kl_params                    TensorRT's entropy calibrator: the clip threshold whose
//                                2^(b-1)-level histogram is closest in KL divergence
//   aciq_alpha / aciq_params     ACIQ's closed-form model of clipping + rounding noise for
//                                Gaussian / Laplace data, minimised numerically
//   mse_params                   the clip minimising the actual quantization MSE on the data
//                                (exact error on the integer grid, searched)
// All take a [rows, cols] view and a CalibSpec; all reject empty or non-finite data. Clip
// calibrators build a symmetric signed grid [-alpha, alpha] (narrow range), or [0, alpha]
// for unsigned grids (non-negative data such as post-ReLU / post-softmax values).
// per_channel(...) applies any per-tensor calibrator to each row (axis 0) or column (1).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/quant_params.hpp"
#include "etk/quant/uniform.hpp"

ETK_BEGIN_NAMESPACE

// What grid a calibrator should produce.
struct CalibSpec {
  int bits = 8;
  bool is_signed = true;
  // Min-max calibrators only: asymmetric [min, max] grid instead of symmetric [-m, m].
  bool asymmetric = false;
};

namespace detail::quant {
inline void check_calib(const char* name, ConstMatrixView<float> x, const CalibSpec& spec) {
  ETK_CHECK(x.rows() > 0 && x.cols() > 0,
            "argument '" << name << "' is empty ([" << x.rows() << ", " << x.cols() << "])");
  ETK_CHECK((spec.bits >= 2 && spec.bits <= 8) || spec.bits == 16,
            "argument 'spec': bits must be in [2, 8] or 16, got " << spec.bits);
  check::finite(name, x.data(), x.rows(), x.cols(), x.outerStride());
}

// Grid for a clip threshold alpha (see the header comment).
inline QuantParams clip_grid(float alpha, const CalibSpec& spec) {
  if (spec.is_signed) return QuantParams::symmetric(alpha, spec.bits, true);
  return QuantParams::from_range(0.0f, alpha, spec.bits, false);
}

// |x| (signed grid) or max(x, 0) (unsigned grid) of every element.
inline std::vector<float> magnitudes(ConstMatrixView<float> x, const CalibSpec& spec) {
  std::vector<float> v;
  v.reserve(static_cast<std::size_t>(x.size()));
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index c = 0; c < x.cols(); ++c)
      v.push_back(spec.is_signed ? std::fabs(x(r, c)) : std::max(x(r, c), 0.0f));
  return v;
}

// Minimise a unimodal f on [lo, hi] by golden-section search (to ~1e-7 relative).
inline double golden_min(const std::function<double(double)>& f, double lo, double hi) {
  const double g = (std::sqrt(5.0) - 1) / 2;
  double a = lo, b = hi, c = b - g * (b - a), d = a + g * (b - a);
  double fc = f(c), fd = f(d);
  for (int it = 0; it < 200 && (b - a) > 1e-9 * hi; ++it) {
    if (fc < fd) {
      b = d; d = c; fd = fc; c = b - g * (b - a); fc = f(c);
    } else {
      a = c; c = d; fc = fd; d = a + g * (b - a); fd = f(d);
    }
  }
  return (a + b) / 2;
}
}  // namespace detail::quant

// ---- min-max ---------------------------------------------------------------------------
class MinMaxObserver {
 public:
  // axis -1: one range; 0: one per row; 1: one per column.
  explicit MinMaxObserver(CalibSpec spec = {}, int axis = -1) : spec_(spec), axis_(axis) {
    ETK_CHECK(axis >= -1 && axis <= 1, "argument 'axis' must be -1, 0 or 1, got " << axis);
  }
  virtual ~MinMaxObserver() = default;

  void observe(ConstMatrixView<float> x) {
    detail::quant::check_calib("x", x, spec_);
    const std::ptrdiff_t ch = QuantParams::channels_for(axis_, x.rows(), x.cols());
    std::vector<float> lo(static_cast<std::size_t>(ch), std::numeric_limits<float>::infinity());
    std::vector<float> hi(static_cast<std::size_t>(ch), -std::numeric_limits<float>::infinity());
    for (Eigen::Index r = 0; r < x.rows(); ++r)
      for (Eigen::Index c = 0; c < x.cols(); ++c) {
        const std::size_t k = axis_ < 0 ? 0 : static_cast<std::size_t>(axis_ == 0 ? r : c);
        lo[k] = std::min(lo[k], x(r, c));
        hi[k] = std::max(hi[k], x(r, c));
      }
    ETK_CHECK(min_.empty() || min_.size() == lo.size(),
              "argument 'x' has " << lo.size() << " channels, earlier batches had " << min_.size());
    update(lo, hi);
  }

  bool empty() const { return min_.empty(); }
  const std::vector<float>& min() const { return min_; }
  const std::vector<float>& max() const { return max_; }

  QuantParams params() const {
    ETK_CHECK(!min_.empty(), "observer has seen no data");
    std::vector<QuantParams> per;
    for (std::size_t k = 0; k < min_.size(); ++k) {
      if (spec_.asymmetric || !spec_.is_signed)
        per.push_back(QuantParams::from_range(min_[k], max_[k], spec_.bits, spec_.is_signed));
      else
        per.push_back(QuantParams::symmetric(std::max(-min_[k], max_[k]), spec_.bits, true));
    }
    return axis_ < 0 ? per.front() : QuantParams::stack(per, axis_);
  }

 protected:
  virtual void update(const std::vector<float>& lo, const std::vector<float>& hi) {
    if (min_.empty()) {
      min_ = lo;
      max_ = hi;
      return;
    }
    for (std::size_t k = 0; k < lo.size(); ++k) {
      min_[k] = std::min(min_[k], lo[k]);
      max_[k] = std::max(max_[k], hi[k]);
    }
  }
  CalibSpec spec_;
  int axis_;
  std::vector<float> min_, max_;
};

// min <- min + c (batch_min - min), max likewise; the first batch initialises.
class MovingAverageMinMaxObserver : public MinMaxObserver {
 public:
  explicit MovingAverageMinMaxObserver(CalibSpec spec = {}, int axis = -1, float averaging_constant = 0.01f)
      : MinMaxObserver(spec, axis), c_(averaging_constant) {
    ETK_CHECK(c_ > 0 && c_ <= 1, "argument 'averaging_constant' must be in (0, 1], got " << c_);
  }

 protected:
  void update(const std::vector<float>& lo, const std::vector<float>& hi) override {
    if (min_.empty()) {
      min_ = lo;
      max_ = hi;
      return;
    }
    for (std::size_t k = 0; k < lo.size(); ++k) {
      min_[k] += c_ * (lo[k] - min_[k]);
      max_[k] += c_ * (hi[k] - max_[k]);
    }
  }

 private:
  float c_;
};

// ---- percentile ------------------------------------------------------------------------
// Clip at the p-th percentile (p in (0, 100]) of |x| (signed) or of max(x, 0) (unsigned),
// linear interpolation between order statistics.
inline QuantParams percentile_params(ConstMatrixView<float> x, double percentile, const CalibSpec& spec = {}) {
  detail::quant::check_calib("x", x, spec);
  ETK_CHECK(percentile > 0 && percentile <= 100,
            "argument 'percentile' must be in (0, 100], got " << percentile);
  std::vector<float> v = detail::quant::magnitudes(x, spec);
  std::sort(v.begin(), v.end());
  const double pos = percentile / 100.0 * static_cast<double>(v.size() - 1);
  const std::size_t i = static_cast<std::size_t>(std::floor(pos));
  const double frac = pos - static_cast<double>(i);
  const double alpha = i + 1 < v.size() ? v[i] + frac * (v[i + 1] - v[i]) : v[i];
  return detail::quant::clip_grid(static_cast<float>(alpha), spec);
}

// ---- KL divergence (TensorRT entropy calibration) --------------------------------------
// Histogram of |x| in `bins` bins over [0, max|x|]. For each candidate end bin i >= L
// (L = 2^(b-1) levels, or 2^b for unsigned), P = the first i bins with the tail folded
// into bin i-1; Q = P merged into L groups and spread back evenly over each group's
// non-empty bins. The threshold is the upper edge of the i minimising KL(P || Q).
inline float kl_threshold(ConstMatrixView<float> x, const CalibSpec& spec = {}, int bins = 2048) {
  detail::quant::check_calib("x", x, spec);
  const int levels = spec.is_signed ? (1 << (spec.bits - 1)) : (1 << spec.bits);
  ETK_CHECK(bins >= levels, "argument 'bins' (" << bins << ") must be >= the number of levels " << levels);
  const std::vector<float> v = detail::quant::magnitudes(x, spec);
  const auto mm = std::minmax_element(v.begin(), v.end());
  ETK_CHECK(*mm.first < *mm.second, "argument 'x': the histogram holds a single value ("
                                        << *mm.first << "); no threshold can be chosen");
  const double width = *mm.second / bins;
  std::vector<double> hist(static_cast<std::size_t>(bins), 0.0);
  for (float a : v) hist[std::min<std::size_t>(static_cast<std::size_t>(a / width), bins - 1)] += 1;

  double best_kl = std::numeric_limits<double>::infinity();
  int best_i = bins;
  std::vector<double> p, q;
  for (int i = levels; i <= bins; ++i) {
    p.assign(hist.begin(), hist.begin() + i);
    for (int t = i; t < bins; ++t) p[static_cast<std::size_t>(i - 1)] += hist[static_cast<std::size_t>(t)];
    q.assign(static_cast<std::size_t>(i), 0.0);
    for (int g = 0; g < levels; ++g) {
      const int b0 = static_cast<int>(static_cast<std::int64_t>(g) * i / levels);
      const int b1 = static_cast<int>(static_cast<std::int64_t>(g + 1) * i / levels);
      double sum = 0;
      int nonzero = 0;
      for (int t = b0; t < b1; ++t) {
        sum += hist[static_cast<std::size_t>(t)];  // the unfolded counts, as TensorRT does
        nonzero += hist[static_cast<std::size_t>(t)] > 0;
      }
      for (int t = b0; t < b1; ++t)
        if (hist[static_cast<std::size_t>(t)] > 0) q[static_cast<std::size_t>(t)] = sum / nonzero;
    }
    double ps = 0, qs = 0;
    for (int t = 0; t < i; ++t) {
      ps += p[static_cast<std::size_t>(t)];
      qs += q[static_cast<std::size_t>(t)];
    }
    double kl = 0;
    for (int t = 0; t < i; ++t) {
      const double pt = p[static_cast<std::size_t>(t)] / ps;
      if (pt <= 0) continue;
      const double qt = std::max(q[static_cast<std::size_t>(t)] / qs, 1e-12);  // smoothing
      kl += pt * std::log(pt / qt);
    }
    if (kl < best_kl) {
      best_kl = kl;
      best_i = i;
    }
  }
  return static_cast<float>(best_i * width);
}

inline QuantParams kl_params(ConstMatrixView<float> x, const CalibSpec& spec = {}, int bins = 2048) {
  return detail::quant::clip_grid(kl_threshold(x, spec, bins), spec);
}

// ---- ACIQ ------------------------------------------------------------------------------
enum class Prior { gaussian, laplace };

// ACIQ's expected MSE of clipping at alpha: clipping error + the rounding noise of a
// uniform grid over [-alpha, alpha] cut into `intervals` steps, step^2 / 12 =
// alpha^2 / (3 * intervals^2). ACIQ's paper assumes 2^bits steps (intervals = 0 selects
// that); the grids etk builds have fewer (aciq_intervals), which moves the optimal clip.
// `spread` is sigma (Gaussian) or b (Laplace).
inline double aciq_mse(double alpha, int bits, Prior prior, double spread, double intervals = 0) {
  const double steps = intervals > 0 ? intervals : std::pow(2.0, bits);
  const double noise = alpha * alpha / (3.0 * steps * steps);
  if (prior == Prior::laplace) return 2 * spread * spread * std::exp(-alpha / spread) + noise;
  const double s = spread;
  return (alpha * alpha + s * s) * (1 - std::erf(alpha / (std::sqrt(2.0) * s))) -
         std::sqrt(2 / M_PI) * alpha * s * std::exp(-alpha * alpha / (2 * s * s)) + noise;
}

// Steps over [-alpha, alpha] of the grid aciq_params builds: signed codes use the
// symmetric narrow range (2^bits - 1 levels, 2^bits - 2 steps); unsigned codes cover
// [0, alpha] with 2^bits levels (2^bits - 1 steps of alpha / (2^bits - 1), i.e.
// 2^(bits+1) - 2 steps over [-alpha, alpha]).
inline double aciq_intervals(int bits, bool is_signed) {
  return is_signed ? std::pow(2.0, bits) - 2.0 : std::pow(2.0, bits + 1) - 2.0;
}

// The alpha minimising aciq_mse (the model is unimodal in alpha).
inline double aciq_alpha(int bits, Prior prior, double spread = 1.0, double intervals = 0) {
  ETK_CHECK(bits >= 1 && bits <= 16, "argument 'bits' must be in [1, 16], got " << bits);
  check::positive_finite("spread", spread);
  ETK_CHECK(intervals == 0 || (std::isfinite(intervals) && intervals >= 1),
            "argument 'intervals' must be 0 (2^bits) or >= 1, got " << intervals);
  return detail::quant::golden_min([&](double a) { return aciq_mse(a, bits, prior, spread, intervals); },
                                  0.0, 40.0 * spread);
}

// Fit the prior to x (Laplace b = mean |x - mean|, Gaussian sigma = std) and clip at ACIQ's
// alpha (about the mean for signed grids, which are symmetric about 0: alpha + |mean|).
inline QuantParams aciq_params(ConstMatrixView<float> x, Prior prior, const CalibSpec& spec = {}) {
  detail::quant::check_calib("x", x, spec);
  const double n = static_cast<double>(x.size());
  double mean = 0;
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index c = 0; c < x.cols(); ++c) mean += x(r, c);
  mean /= n;
  double spread = 0;
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index c = 0; c < x.cols(); ++c) {
      const double d = x(r, c) - mean;
      spread += prior == Prior::laplace ? std::fabs(d) : d * d;
    }
  spread = prior == Prior::laplace ? spread / n : std::sqrt(spread / n);
  ETK_CHECK(spread > 0, "argument 'x' has no spread (all values equal)");
  // The clip derived for the grid clip_grid builds (aciq_intervals), not for ACIQ's 2^bits
  // steps: on 10^5 Laplace samples ACIQ's own clip gives 19% more MSE than this grid's
  // optimum at 2 bits, 3.9% at 3; this clip 0.7% and 0.007% (tests/quant/test_observers).
  const double alpha =
      aciq_alpha(spec.bits, prior, spread, aciq_intervals(spec.bits, spec.is_signed));
  return detail::quant::clip_grid(static_cast<float>(alpha + std::fabs(mean)), spec);
}

// ---- exact MSE search ------------------------------------------------------------------
// Mean squared error of fake-quantizing x on grid p.
inline double quantization_mse(ConstMatrixView<float> x, const QuantParams& p) {
  const RowMatrixXf y = fake_quantize(x, p);
  double e = 0;
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index c = 0; c < x.cols(); ++c) {
      const double d = static_cast<double>(x(r, c)) - y(r, c);
      e += d * d;
    }
  return e / static_cast<double>(x.size());
}

// The clip alpha in (0, max] minimising the true MSE of the quantized data: a scan of
// `candidates` evenly spaced alphas, then a finer scan around the best one (the error is
// not convex in alpha, so no bisection).
inline QuantParams mse_params(ConstMatrixView<float> x, const CalibSpec& spec = {}, int candidates = 200) {
  detail::quant::check_calib("x", x, spec);
  ETK_CHECK(candidates >= 2, "argument 'candidates' must be >= 2, got " << candidates);
  const std::vector<float> v = detail::quant::magnitudes(x, spec);
  const float top = *std::max_element(v.begin(), v.end());
  if (top <= 0) return detail::quant::clip_grid(0.0f, spec);
  double best = std::numeric_limits<double>::infinity();
  float best_alpha = top;
  auto scan = [&](double lo, double hi) {
    for (int i = 0; i < candidates; ++i) {
      const float alpha = static_cast<float>(lo + (hi - lo) * (i + 1) / candidates);
      if (!(alpha > 0)) continue;
      const double e = quantization_mse(x, detail::quant::clip_grid(alpha, spec));
      if (e < best) {
        best = e;
        best_alpha = alpha;
      }
    }
  };
  scan(0.0, top);
  const double step = static_cast<double>(top) / candidates;
  scan(std::max(0.0, best_alpha - step), std::min<double>(top, best_alpha + step));
  return detail::quant::clip_grid(best_alpha, spec);
}

// ---- per channel -----------------------------------------------------------------------
// Apply a per-tensor calibrator to each row (axis 0) or column (axis 1) and stack the grids.
inline QuantParams per_channel(ConstMatrixView<float> x, int axis,
                               const std::function<QuantParams(ConstMatrixView<float>)>& calibrate) {
  ETK_CHECK(axis == 0 || axis == 1, "argument 'axis' must be 0 or 1, got " << axis);
  ETK_CHECK(x.rows() > 0 && x.cols() > 0, "argument 'x' is empty");
  std::vector<QuantParams> per;
  if (axis == 0) {
    for (Eigen::Index r = 0; r < x.rows(); ++r)
      per.push_back(calibrate(matrix_view(x.data() + r * x.outerStride(), 1, x.cols(), x.cols())));
  } else {
    RowMatrixXf col(1, x.rows());
    for (Eigen::Index c = 0; c < x.cols(); ++c) {
      col = x.col(c).transpose();
      per.push_back(calibrate(matrix_view(static_cast<const float*>(col.data()), 1, x.rows(), x.rows())));
    }
  }
  return QuantParams::stack(per, axis);
}

ETK_END_NAMESPACE
