// etk:isa-variants
// Tests of etk/attention/softmax.hpp: rows sum to 1 within the exp2 polynomial's error,
// masked entries are exactly 0, a fully masked row is zeros, and the max's own term is
// exactly 1, so the unnormalised sum is >= 1 (an older form, 2^fma(m, mult, -m*mult),
// dipped below 1; the header's comment once promised ">= 1" of that form).
#include <catch2/catch.hpp>
#include <etk/attention/softmax.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

TEST_CASE("the max's own term is exactly 1, so every unnormalised row sum is >= 1") {
  for (int i = 1; i < 100000; ++i) {
    float x[1] = {0.001f * float(i)};
    REQUIRE(etk::detail::exp2_shift_sum(x, 1, x[0], etk::detail::kLog2e) == 1.0f);
  }
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 30.0f);
  for (int n : {1, 2, 7, 16, 17, 33, 100}) {
    std::vector<float> x(static_cast<std::size_t>(n));
    for (int t = 0; t < 50; ++t) {
      for (float& v : x) v = nd(rng);
      const float m = *std::max_element(x.begin(), x.end());
      INFO("n = " << n);
      REQUIRE(etk::detail::exp2_shift_sum(x.data(), n, m, etk::detail::kLog2e) >= 1.0f);
    }
  }
}

TEST_CASE("softmax rows: sums, masks, fully masked rows") {
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 4.0f);
  const float inf = std::numeric_limits<float>::infinity();
  for (std::ptrdiff_t n : {1, 3, 15, 16, 17, 33, 100}) {
    std::vector<float> x(static_cast<std::size_t>(n));
    for (auto& v : x) v = nd(rng);
    if (n > 2) x[1] = -inf;
    std::vector<double> ref(x.size());
    double m = -INFINITY, z = 0;
    for (float v : x) m = std::max(m, double(v));
    for (std::size_t j = 0; j < x.size(); ++j) z += (ref[j] = std::exp(double(x[j]) - m));
    etk::softmax_row(x.data(), n);
    double sum = 0;
    for (std::size_t j = 0; j < x.size(); ++j) {
      sum += x[j];
      // Each weight: the exponent rounding (|x - m| * log2e * eps) and the polynomial
      // (2^-16 relative), then one multiply by 1/sum.
      REQUIRE(std::fabs(x[j] - ref[j] / z) <= (std::ldexp(1.0, -15) + 64 * 1.2e-7) * ref[j] / z + 1e-30);
    }
    REQUIRE(std::fabs(sum - 1.0) <= std::ldexp(1.0, -14) + double(n) * 1.2e-7);
    if (n > 2) CHECK(x[1] == 0.0f);
  }
  std::vector<float> masked(5, -inf);
  etk::softmax_row(masked.data(), 5);
  for (float v : masked) CHECK(v == 0.0f);
}

TEST_CASE("softmax with the caller's exponential: std::exp matches the double softmax; bad rows rejected") {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 6.0f);
  const auto std_exp = [](float* v, std::ptrdiff_t n) {
    for (std::ptrdiff_t j = 0; j < n; ++j) v[j] = std::exp(v[j]);
  };
  for (int n : {1, 2, 7, 16, 17, 100, 333}) {
    std::vector<float> x(n);
    for (float& v : x) v = nd(rng);
    const std::vector<float> logits = x;
    std::vector<double> ref(n);
    const double m = *std::max_element(x.begin(), x.end());
    double s = 0.0;
    for (int j = 0; j < n; ++j) s += ref[j] = std::exp(double(x[j]) - m);
    etk::softmax_row_with_exp(x.data(), n, std_exp);
    // Relative error per entry, u = 2^-24: the shift x - m rounds once (absolute error
    // <= |x - m| u, i.e. relative |x - m| u after exp), std::exp (<= 1 ulp: 2u), the float
    // sum ((n - 1) u, entering every entry) and the reciprocal and product (2u); with
    // second-order slack: (|x - m| + n + 8) u.
    const double u = std::ldexp(1.0, -24);
    for (int j = 0; j < n; ++j) {
      const double p = ref[j] / s;
      INFO("n " << n << " j " << j);
      REQUIRE(std::fabs(x[j] - p) <= (std::fabs(logits[j] - m) + n + 8) * u * p);
    }
  }
  std::vector<float> x = {1.0f, 2.0f, 3.0f};
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> bad = {1.0f, -inf};
  CHECK_THROWS_AS(etk::softmax_row_with_exp(bad.data(), 2, std_exp), etk::invalid_argument);
  CHECK_THROWS_AS(etk::softmax_row_with_exp(x.data(), 3, [](float* v, std::ptrdiff_t) { v[1] = -0.5f; }),
                  etk::invalid_argument);
  CHECK_THROWS_AS(etk::softmax_row_with_exp(x.data(), 3, [](float* v, std::ptrdiff_t n) {
                    for (std::ptrdiff_t j = 0; j < n; ++j) v[j] = 0.0f;
                  }),
                  etk::invalid_argument);
  CHECK_THROWS_AS(etk::softmax_row_with_exp(x.data(), 0, std_exp), etk::invalid_argument);
}
