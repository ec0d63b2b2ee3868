// etk/lut/fit.hpp: sample grids, table error, and per-segment line fits under a
// fixed-point format (secants as in GQA-LUT, and the least-squares refinement).
//
// A fit is measured on a sorted sample set: a dense grid x_i = lo + i * step (each point
// one double multiply-add from lo, every i with x_i < hi), or the int8 input grid x = q 2^-j inside [lo, hi) (what an
// integer engine actually feeds the table). Prefix sums of 1, x, x^2, y, xy, y^2 give any
// segment's squared error for any line in O(1):
//   E(s, b) = Syy - 2 s Sxy - 2 b Sy + s^2 Sxx + 2 s b Sx + n b^2.
//
// Least squares under the fixed-point constraint: for a fixed slope s the error is a
// quadratic in b, so the best representable b is the grid point nearest the continuous
// optimum (Sy - s Sx) / n, clamped to the format. Minimising over b, the error in s grows
// like n var(x) (s - s*)^2 around the continuous least-squares slope s*, while the nearest
// grid slope costs at most n (var(x) + 1) step^2 / 4, so only slopes within
// step/2 * sqrt(1 + 1/var(x)) + step of s* can win; all of those are tried. The result is
// the exact optimum per segment, hence per table (segments are independent for fixed
// breakpoints).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "etk/config.hpp"
#include "etk/lut/fixed_point.hpp"
#include "etk/lut/functions.hpp"
#include "etk/lut/pwl.hpp"

ETK_BEGIN_NAMESPACE
namespace lut {

// Sorted sample points of a function with prefix sums for O(1) segment errors.
class Samples {
 public:
  Samples(Function f, std::vector<double> x) : x_(std::move(x)) {
    ETK_CHECK(!x_.empty(), "argument 'x': the sample grid is empty");
    std::sort(x_.begin(), x_.end());
    const std::size_t n = x_.size();
    y_.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      y_[i] = evaluate(f, x_[i]);
      ETK_CHECK(std::isfinite(y_[i]), "argument 'range': " << name(f) << "(" << x_[i]
                                                           << ") is not finite");
    }
    for (auto* v : {&sx_, &sxx_, &sy_, &sxy_, &syy_}) v->assign(n + 1, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      const double x = x_[i], y = y_[i];
      sx_[i + 1] = sx_[i] + x;
      sxx_[i + 1] = sxx_[i] + x * x;
      sy_[i + 1] = sy_[i] + y;
      sxy_[i + 1] = sxy_[i] + x * y;
      syy_[i + 1] = syy_[i] + y * y;
    }
  }

  std::size_t size() const { return x_.size(); }
  const std::vector<double>& x() const { return x_; }
  const std::vector<double>& y() const { return y_; }
  // Index of the first sample >= v (samples of a left-closed segment [a, b) are
  // [first_at_or_above(a), first_at_or_above(b))).
  std::size_t first_at_or_above(double v) const {
    return static_cast<std::size_t>(std::lower_bound(x_.begin(), x_.end(), v) - x_.begin());
  }

  struct Moments {
    double n = 0, sx = 0, sxx = 0, sy = 0, sxy = 0, syy = 0;
    double error(double s, double b) const {
      const double e = syy - 2 * s * sxy - 2 * b * sy + s * s * sxx + 2 * s * b * sx + n * b * b;
      return e > 0 ? e : 0.0;
    }
  };
  Moments moments(std::size_t begin, std::size_t end) const {
    Moments m;
    m.n = static_cast<double>(end - begin);
    m.sx = sx_[end] - sx_[begin];
    m.sxx = sxx_[end] - sxx_[begin];
    m.sy = sy_[end] - sy_[begin];
    m.sxy = sxy_[end] - sxy_[begin];
    m.syy = syy_[end] - syy_[begin];
    return m;
  }

 private:
  std::vector<double> x_, y_;
  std::vector<double> sx_, sxx_, sy_, sxy_, syy_;
};

// x_i = lo + i * step (in double, from lo each time) for every i with x_i < hi; the
// reference trainer's step is 0.01. This is not numpy's np.arange(lo, hi, step), which
// fills lo + i * d with d = (lo + step) - lo rounded, and takes ceil((hi - lo) / step)
// points: its points differ from these in the last bits, and so on which side of a
// breakpoint a sample falls (a few percent of MSE on the j = 0 GELU table).
inline Samples dense_samples(Function f, double lo, double hi, double step = 0.01) {
  ETK_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi,
            "argument 'range': needs finite lo < hi, got [" << lo << ", " << hi << ")");
  ETK_CHECK(std::isfinite(step) && step > 0 && (hi - lo) / step <= 1e7,
            "argument 'step' must be > 0 and give at most 1e7 points, got " << step);
  std::vector<double> x;
  for (long i = 0;; ++i) {
    const double v = lo + static_cast<double>(i) * step;
    if (v >= hi) break;
    x.push_back(v);
  }
  return Samples(f, std::move(x));
}

// x = q 2^-j for the int8 values q with lo <= x < hi.
inline Samples int8_samples(Function f, double lo, double hi, int j) {
  ETK_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi,
            "argument 'range': needs finite lo < hi, got [" << lo << ", " << hi << ")");
  ETK_CHECK(j >= 0 && j <= 16, "argument 'frac_bits' must be in [0, 16], got " << j);
  std::vector<double> x;
  for (int q = -128; q <= 127; ++q) {
    const double v = std::ldexp(static_cast<double>(q), -j);
    if (v >= lo && v < hi) x.push_back(v);
  }
  ETK_CHECK(!x.empty(), "argument 'range': [" << lo << ", " << hi << ") holds no int8 input at "
                        "scale 2^-" << j);
  return Samples(f, std::move(x));
}

// Mean squared error of the float table (as evaluated by pwl_eval) over the samples.
inline double table_mse(const PwlTable& table, const Samples& samples) {
  double sum = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const double d = double{table(static_cast<float>(samples.x()[i]))} - samples.y()[i];
    sum += d * d;
  }
  return sum / static_cast<double>(samples.size());
}

struct Line {
  double slope = 0;
  double intercept = 0;
};

// The secant through f at a and b, both coefficients rounded to the format (saturating).
// A zero-width segment gets the zero line, as in the reference code, and so does a
// secant through a non-finite value.
inline Line secant_line(Function f, double a, double b, FixedFormat fmt) {
  if (!(b > a)) return {};
  const double fa = evaluate(f, a), fb = evaluate(f, b);
  const double s = (fb - fa) / (b - a);
  if (!std::isfinite(s) || !std::isfinite(fa - a * s)) return {};  // e.g. 1/x at 0
  return {round_to_format(s, fmt), round_to_format(fa - a * s, fmt)};
}

// The least-squares line over the moments with both coefficients on the format's grid
// (exact optimum, see the header comment). `fallback` is returned for an empty segment.
inline Line least_squares_line(const Samples::Moments& m, FixedFormat fmt, Line fallback) {
  if (m.n == 0) return fallback;
  const double step = fmt.step();
  const double mx = m.sx / m.n;
  const double var = std::max(m.sxx / m.n - mx * mx, 0.0);
  double s_star = fallback.slope;
  if (m.n >= 2 && var > 1e-300) s_star = (m.sxy / m.n - mx * m.sy / m.n) / var;
  const double reach = var > 0 ? 0.5 * std::sqrt(1.0 + 1.0 / var) + 1.0 : 1.0;
  const long window = static_cast<long>(std::min(std::ceil(reach), 4096.0));
  const long centre = std::lround(std::min(std::max(s_star / step, double(fmt.raw_min())),
                                           double(fmt.raw_max())));
  Line best = fallback;
  double best_err = -1;
  for (long r = std::max<long>(centre - window, fmt.raw_min());
       r <= std::min<long>(centre + window, fmt.raw_max()); ++r) {
    const double s = r * step;
    const double b = round_to_format((m.sy - s * m.sx) / m.n, fmt);
    const double e = m.error(s, b);
    if (best_err < 0 || e < best_err) {
      best_err = e;
      best = {s, b};
    }
  }
  return best;
}

// Sum of squared errors of a table given by breakpoints and lines over the samples.
inline double segments_sse(const Samples& samples, const std::vector<double>& breakpoints,
                           const std::vector<Line>& lines) {
  double sse = 0;
  std::size_t begin = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::size_t end = i < breakpoints.size()
                                ? std::max(begin, samples.first_at_or_above(breakpoints[i]))
                                : samples.size();
    sse += samples.moments(begin, end).error(lines[i].slope, lines[i].intercept);
    begin = end;
  }
  return sse;
}

// The table with the same breakpoints and each segment's line replaced by its
// least-squares line on `samples` under `fmt` (segments without samples keep theirs).
inline PwlTable refine_least_squares(const PwlTable& table, const Samples& samples,
                                     FixedFormat fmt) {
  fmt.validate("fmt");
  std::vector<float> s(table.slopes()), b(table.intercepts());
  std::size_t begin = 0;
  for (int i = 0; i < table.segments(); ++i) {
    const std::size_t end =
        i + 1 < table.segments()
            ? std::max(begin, samples.first_at_or_above(table.breakpoints()[i]))
            : samples.size();
    const Line fallback{round_to_format(s[i], fmt), round_to_format(b[i], fmt)};
    const Line l = least_squares_line(samples.moments(begin, end), fmt, fallback);
    s[i] = static_cast<float>(l.slope);
    b[i] = static_cast<float>(l.intercept);
    begin = end;
  }
  return PwlTable(table.breakpoints(), s, b, table.lo(), table.hi());
}

}  // namespace lut
ETK_END_NAMESPACE
