// etk:isa-variants
// Tests of etk/attention/softmax.hpp: rows sum to 1 within the exp2 polynomial's error,
// masked entries are exactly 0, a fully masked row is zeros, and the max's own term (on
// main documented as ">= 1") is 2^(rounding error of m*mult): about 1, sometimes below.
#include <catch2/catch.hpp>
#include <etk/attention/softmax.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

TEST_CASE("the max's own term is about 1, never near 0") {
  float lowest = 2.0f;
  for (int i = 1; i < 100000; ++i) {
    float x[1] = {0.001f * float(i)};
    const float s = etk::detail::exp2_shift_sum(x, 1, x[0], etk::detail::kLog2e);
    lowest = std::min(lowest, s);
    // 2^e with |e| <= ulp(m*mult)/2 <= 2^-17 for m*mult < 256, times the polynomial's
    // relative error (< 2^-16 at these arguments): within 2^-15 of 1.
    REQUIRE(std::fabs(s - 1.0f) <= std::ldexp(1.0f, -15));
  }
  INFO("lowest sum of a one-entry row: " << lowest);
  CHECK(lowest > 0.99f);
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
