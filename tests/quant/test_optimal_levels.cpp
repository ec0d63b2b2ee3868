// Tests of etk/quant/optimal_levels.hpp: the divide-and-conquer programme finds the same
// optimum as the plain O(L B^2) reference on random histograms of awkward sizes, the
// returned quantizer's cells reproduce the reported error on the raw values, the optimum
// on uniform data is the uniform quantizer's 1 / (12 L^2), bad input.
#include <catch2/catch.hpp>
#include <etk/quant/optimal_levels.hpp>
#include <etk/quant/reference/optimal_levels.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "support/quant_util.hpp"

namespace {

// Softmax-like values (exp of Gaussian logits over a row, normalised): dense near 0.
std::vector<float> softmax_like(std::size_t n, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> logit(0.0f, 2.0f);
  std::vector<float> v;
  while (v.size() < n) {
    std::vector<float> row(17);
    float sum = 0;
    for (float& r : row) sum += (r = std::exp(logit(gen)));
    for (float r : row)
      if (v.size() < n) v.push_back(r / sum);
  }
  return v;
}

double total_sumsq(const etk::MomentHistogram& h) {
  double q = 0;
  for (double x : h.sumsq()) q += x;
  return q;
}

}  // namespace

TEST_CASE("optimal levels: divide and conquer equals the plain programme") {
  std::mt19937 gen(7);
  for (std::ptrdiff_t bins : quant_test::awkward_sizes())
    for (int levels : {1, 2, 3, 5, 8, 17}) {
      const std::vector<float> x = softmax_like(static_cast<std::size_t>(20 * bins + 3), gen());
      etk::MomentHistogram h(0.0, 1.0, static_cast<int>(bins));
      h.add(x.data(), x.size());
      const etk::OptimalLevels fast = etk::optimal_levels(h, levels);
      const double ref = etk::reference::optimal_levels_sse(h, levels);
      // Both sum the same moments, the fast path through prefix differences, the reference
      // bin by bin. A sum of at most B terms, each bounded by the total sum of squares Q
      // (s^2 / n <= q), is off by at most B 2^-53 Q; a cell error has two such terms (q and
      // s^2 / n), each a difference of two rounded prefix sums in the fast path, and the two
      // paths round independently: 2 * 2 * 2 B 2^-53 Q per cell. An optimum adds at most L
      // cells (for equal costs the minimum is the same value): 8 B L 2^-53 Q.
      const double tol = 8.0 * static_cast<double>(bins * levels) * std::ldexp(1.0, -53) * total_sumsq(h);
      INFO("bins " << bins << " levels " << levels << " fast " << fast.sse << " ref " << ref);
      REQUIRE(std::abs(fast.sse - ref) <= tol);
      REQUIRE(static_cast<int>(fast.level.size()) <= levels);
      CHECK(fast.mse == Approx(fast.sse / static_cast<double>(x.size())));
    }
}

TEST_CASE("optimal levels: the cells reproduce the reported error on the raw values") {
  const std::vector<float> x = softmax_like(50000, 3);
  etk::MomentHistogram h(0.0, 1.0, 4096);
  h.add(x.data(), x.size());
  for (int levels : {4, 16, 64}) {
    const etk::OptimalLevels q = etk::optimal_levels(h, levels);
    REQUIRE(q.level.size() == q.first_bin.size());
    REQUIRE(q.first_bin.front() == 0u);
    for (std::size_t c = 1; c < q.level.size(); ++c) {
      REQUIRE(q.first_bin[c] > q.first_bin[c - 1]);
      REQUIRE(q.level[c] > q.level[c - 1]);
    }
    double sse = 0;
    for (float v : x) {
      const std::size_t b = h.bin(v);
      std::size_t c = q.first_bin.size() - 1;
      while (q.first_bin[c] > b) --c;
      sse += (v - q.level[c]) * (v - q.level[c]);
    }
    // Direct sum vs prefix moments: both accumulate the n = 50000 values' terms in double;
    // the cells partition the values, so the rounding over all cells is at most about
    // 2 sides * 2 terms (q, s^2/n) * n 2^-53 Q = 2.2e-11 Q (Q = sum x^2); allowed: 1e-9 Q.
    INFO("levels " << levels << " sse " << q.sse << " direct " << sse);
    CHECK(std::abs(sse - q.sse) <= 1e-9 * total_sumsq(h) + 1e-12);
    // Better than the uniform min-max grid with the same number of levels on this data.
    double uni = 0;
    const double step = 1.0 / (levels - 1);
    for (float v : x) {
      const double d = v - std::nearbyint(v / step) * step;
      uni += d * d;
    }
    CHECK(q.sse < uni);
  }
}

TEST_CASE("optimal levels: uniform data gives the uniform quantizer's error") {
  std::mt19937 gen(11);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(400000);
  for (float& v : x) v = u(gen);
  etk::MomentHistogram h(0.0, 1.0, 1 << 14);
  h.add(x.data(), x.size());
  for (int levels : {4, 16}) {
    const double d = 1.0 / (12.0 * levels * levels);  // step 1/L, error step^2 / 12
    const etk::OptimalLevels q = etk::optimal_levels(h, levels);
    // Sampling: the mean of 4e5 squared errors has relative std ~ 1.1 / sqrt(4e5) = 0.2%;
    // cell edges snap to bins at most 3 / 2^14 wide vs cells 1/L: second order, < 1%.
    INFO("levels " << levels << " mse " << q.mse << " 1/(12 L^2) " << d);
    CHECK(q.mse == Approx(d).epsilon(0.02));
    for (std::size_t c = 0; c < q.level.size(); ++c) CHECK(q.level[c] == Approx((c + 0.5) / levels).margin(0.01));
  }
}

TEST_CASE("optimal levels: bad input") {
  CHECK_THROWS_WITH(etk::MomentHistogram(1.0, 1.0, 8), Catch::Contains("lo < hi"));
  CHECK_THROWS_WITH(etk::MomentHistogram(0.0, std::numeric_limits<double>::infinity(), 8), Catch::Contains("finite"));
  CHECK_THROWS_WITH(etk::MomentHistogram(0.0, 1.0, 0), Catch::Contains("bins"));
  etk::MomentHistogram h(0.0, 1.0, 8);
  CHECK_THROWS_WITH(etk::optimal_levels(h, 4), Catch::Contains("empty"));
  const float bad[2] = {0.5f, std::numeric_limits<float>::quiet_NaN()};
  CHECK_THROWS_WITH(h.add(bad, 2), Catch::Contains("non-finite"));
  h.add(bad, 1);
  CHECK_THROWS_WITH(etk::optimal_levels(h, 0), Catch::Contains("levels"));
  CHECK_THROWS_WITH(etk::reference::optimal_levels_sse(h, 70000), Catch::Contains("levels"));
  CHECK_THROWS_WITH(h.add(nullptr, 3), Catch::Contains("null"));
}
