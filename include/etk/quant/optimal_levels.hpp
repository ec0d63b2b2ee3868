// etk/quant/optimal_levels.hpp: the MSE-optimal scalar quantizer with L reconstruction
// levels (Lloyd-Max, found exactly) for a data set summarised by a fine histogram.
//
// Why: it bounds what any L-level (log2 L-bit) scalar quantizer can reach on the data, so
// a quantizer family (uniform, two-scaled, piecewise-linear) can be judged against the
// best possible at the same number of levels (docs/performance.md, quantizer section).
//
// A MomentHistogram keeps per bin the count, sum and sum of squares of the values that
// fell in it, so the exact squared error of any quantizer whose cells are unions of
// consecutive bins (each cell reproduced by its centroid) is known: a cell's error is
// sumsq - sum^2 / count. Bins are uniform in the signed cube root u = cbrt(x) over
// [cbrt(lo), cbrt(hi)], so they are finest near 0, where post-softmax and post-GELU /
// swish data is dense (their optimal cells are narrowest there); values outside [lo, hi]
// land in the end bins (their moments stay exact). The optimum over partitions of
// the bins into at most L cells is found exactly by dynamic programming,
//     E[l][j] = min_{i <= j} E[l-1][i] + cost(bins i..j-1),
// with the divide-and-conquer row optimisation: the cell cost of 1-D squared error obeys
// the quadrangle inequality, so the optimal i is non-decreasing in j (Wu, "Optimal
// quantization by matrix searching", 1991). O(L * B * log B) time, L * (B + 1) argmins.
// The restriction to bin edges makes the result an achievable quantizer, so its MSE is at
// least the true optimum on the raw values; refining the bins shows how close
// (docs/performance.md). Reference twin: reference/optimal_levels.hpp (the plain O(L B^2)
// recursion).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"

ETK_BEGIN_NAMESPACE

class MomentHistogram {
 public:
  MomentHistogram(double lo, double hi, int bins)
      : lo_(lo), hi_(hi), cbrt_lo_(std::cbrt(lo)), cbrt_width_(std::cbrt(hi) - std::cbrt(lo)) {
    ETK_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi,
              "arguments 'lo', 'hi' must be finite with lo < hi, got " << lo << ", " << hi);
    ETK_CHECK(bins >= 1 && bins <= (1 << 24), "argument 'bins' must be in [1, 2^24], got " << bins);
    count_.assign(static_cast<std::size_t>(bins), 0.0);
    sum_ = count_;
    sumsq_ = count_;
  }

  void add(const float* x, std::size_t n) {
    ETK_CHECK(n == 0 || x != nullptr, "argument 'x' is null");
    check::finite("x", x, 1, static_cast<std::ptrdiff_t>(n), static_cast<std::ptrdiff_t>(n));  // all or nothing
    for (std::size_t i = 0; i < n; ++i) {
      const double v = x[i];
      const std::size_t b = bin(v);
      count_[b] += 1;
      sum_[b] += v;
      sumsq_[b] += v * v;
    }
  }

  // The bin of a finite value.
  std::size_t bin(double v) const {
    const double t = (std::cbrt(std::min(std::max(v, lo_), hi_)) - cbrt_lo_) / cbrt_width_;
    return std::min(static_cast<std::size_t>(std::max(t, 0.0) * static_cast<double>(count_.size())), count_.size() - 1);
  }
  std::size_t bins() const { return count_.size(); }
  double lo() const { return lo_; }
  double hi() const { return hi_; }
  const std::vector<double>& count() const { return count_; }
  const std::vector<double>& sum() const { return sum_; }
  const std::vector<double>& sumsq() const { return sumsq_; }
  double total() const {
    double t = 0;
    for (double c : count_) t += c;
    return t;
  }

 private:
  double lo_, hi_;
  double cbrt_lo_, cbrt_width_;  // the bins' coordinate: cbrt over [cbrt(lo), cbrt(hi)]
  std::vector<double> count_, sum_, sumsq_;
};

// The quantizer: cell c covers bins [first_bin[c], first_bin[c+1]) (the last up to the
// end) and reproduces its values as level[c], their mean. Empty cells are dropped, so
// there may be fewer cells than the levels asked for (when the data has fewer values).
struct OptimalLevels {
  std::vector<std::size_t> first_bin;
  std::vector<double> level;
  double sse = 0;  // total squared error over the histogram's values
  double mse = 0;  // sse / count
};

namespace detail::quant {
// Squared error of bins [i, j) reproduced by their mean, from prefix sums (double: the
// prefix sums of squares of n values in [lo, hi] carry a relative rounding of about
// n * 2^-53, far below any cell error that matters at the sizes used here).
struct CellCost {
  std::vector<double> n, s, q;
  explicit CellCost(const MomentHistogram& h) : n(h.bins() + 1, 0.0), s(n), q(n) {
    for (std::size_t b = 0; b < h.bins(); ++b) {
      n[b + 1] = n[b] + h.count()[b];
      s[b + 1] = s[b] + h.sum()[b];
      q[b + 1] = q[b] + h.sumsq()[b];
    }
  }
  double operator()(std::size_t i, std::size_t j) const {
    const double c = n[j] - n[i];
    if (c <= 0) return 0.0;
    const double sm = s[j] - s[i];
    return std::max(0.0, (q[j] - q[i]) - sm * sm / c);
  }
  double mean(std::size_t i, std::size_t j) const { return (s[j] - s[i]) / (n[j] - n[i]); }
};

inline void check_levels_input(const MomentHistogram& h, int levels) {
  ETK_CHECK(levels >= 1 && levels <= 65536, "argument 'levels' must be in [1, 65536], got " << levels);
  ETK_CHECK(h.total() > 0, "argument 'h' is an empty histogram");
}

// Walk the argmins back from E[L][B] and fill the quantizer.
inline OptimalLevels optimal_levels_from_argmins(const CellCost& cost, const std::vector<std::uint32_t>& arg,
                                                 std::size_t bins, int levels, double sse) {
  OptimalLevels out;
  std::vector<std::size_t> edges{bins};
  std::size_t j = bins;
  for (int l = levels; l >= 1; --l) {
    j = arg[static_cast<std::size_t>(l - 1) * (bins + 1) + j];
    edges.push_back(j);
  }
  for (std::size_t e = edges.size() - 1; e >= 1; --e) {
    const std::size_t a = edges[e], b = edges[e - 1];
    if (cost.n[b] - cost.n[a] <= 0) continue;
    out.first_bin.push_back(out.first_bin.empty() ? 0 : a);
    out.level.push_back(cost.mean(a, b));
  }
  out.sse = sse;
  out.mse = sse / cost.n[bins];
  return out;
}
}  // namespace detail::quant

inline OptimalLevels optimal_levels(const MomentHistogram& h, int levels) {
  detail::quant::check_levels_input(h, levels);
  const detail::quant::CellCost cost(h);
  const std::size_t B = h.bins();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> prev(B + 1, inf), cur(B + 1, inf);
  prev[0] = 0.0;  // no cells: only the empty prefix has a finite error
  std::vector<std::uint32_t> arg(static_cast<std::size_t>(levels) * (B + 1), 0);
  for (int l = 1; l <= levels; ++l) {
    std::uint32_t* a = &arg[static_cast<std::size_t>(l - 1) * (B + 1)];
    // Solve j in [jlo, jhi] knowing the optimal i lies in [ilo, ihi] (explicit stack).
    struct Task {
      std::size_t jlo, jhi, ilo, ihi;
    };
    std::vector<Task> stack{{0, B, 0, B}};
    while (!stack.empty()) {
      const Task t = stack.back();
      stack.pop_back();
      const std::size_t j = t.jlo + (t.jhi - t.jlo) / 2;
      double best = inf;
      std::size_t best_i = t.ilo;
      for (std::size_t i = t.ilo; i <= std::min(j, t.ihi); ++i) {
        const double e = prev[i] + cost(i, j);
        if (e < best) {
          best = e;
          best_i = i;
        }
      }
      cur[j] = best;
      a[j] = static_cast<std::uint32_t>(best_i);
      if (j > t.jlo) stack.push_back({t.jlo, j - 1, t.ilo, best_i});
      if (j < t.jhi) stack.push_back({j + 1, t.jhi, best_i, t.ihi});
    }
    prev.swap(cur);
  }
  return detail::quant::optimal_levels_from_argmins(cost, arg, B, levels, prev[B]);
}

ETK_END_NAMESPACE
