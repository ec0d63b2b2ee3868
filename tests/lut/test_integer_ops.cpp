// etk:isa-variants
// Integer-only GELU, softmax and LayerNorm against float, with error bounds derived from
// the tables' own measured accuracy (computed here exhaustively) plus each documented
// rounding step; and their bad inputs.
#include <catch2/catch.hpp>
#include <array>
#include <etk/lut/integer_ops.hpp>
#include <etk/lut/tables.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "support/lut_util.hpp"

using namespace etk::lut;

namespace {
// max |acc(x) 2^-28 / f(x 2^-14) - 1| over the integer inputs [lo, hi] of a unit table.
double unit_relative_error(const TableSet& set, Function f, std::int64_t lo, std::int64_t hi) {
  const IntegerPwl t = quantize_pwl(set.for_scale(14), {14, set.coeff, 28, 32});
  double worst = 0;
  for (std::int64_t x = lo; x <= hi; ++x) {
    const double exact = evaluate(f, std::ldexp(static_cast<double>(x), -14));
    worst = std::max(worst, std::abs(std::ldexp(static_cast<double>(t.accumulate(x)), -28) / exact - 1));
  }
  return worst;
}
}  // namespace

TEST_CASE("integer GELU: equals its table's float path - error vs exact GELU bounded") {
  for (int segments : {8, 16}) {
    for (int j = 0; j <= 6; ++j) {
      const int k = 5;
      const IntegerGelu gelu(j, k, segments);
      const PwlTable& t = shipped_table(Function::gelu, segments).for_scale(j);
      std::vector<std::int8_t> q(256), y(256);
      for (int i = 0; i < 256; ++i) q[i] = static_cast<std::int8_t>(i - 128);
      gelu(q.data(), y.data(), 256);
      double worst_table = 0, worst_out = 0;
      for (int i = 0; i < 256; ++i) {
        const double x = std::ldexp(double(q[i]), -j);
        const double g = evaluate(Function::gelu, x);
        REQUIRE(y[i] == lut_test::float_expected(t, q[i], j, k, 8));
        if (x < -4 || x >= 4 || g * 32 > 127) continue;  // outside the fitted range / saturating
        worst_table = std::max(worst_table, std::abs(double{t(static_cast<float>(x))} - g));
        worst_out = std::max(worst_out, std::abs(std::ldexp(double(y[i]), -k) - g));
      }
      INFO("segments " << segments << " j " << j << ": table max error " << worst_table
                       << ", int8 output max error " << worst_out);
      // Output = table value rounded to 2^-k: error <= table error + half an LSB.
      CHECK(worst_out <= worst_table + std::ldexp(0.5, -k) + 1e-12);
      CHECK(worst_table < (segments == 8 ? 0.05 : 0.03));
    }
  }
}

TEST_CASE("integer softmax: error vs float within the derived bound") {
  const double de = unit_relative_error(tables::exp_ln2_16(), Function::exp, -11357, 0);
  const double dm = unit_relative_error(tables::reciprocal_unit_32(), Function::reciprocal, 16384, 32767);
  INFO("exp table relative error " << de << ", reciprocal table relative error " << dm);
  REQUIRE(de < 1e-3);
  REQUIRE(dm < 1e-3);
  // Per element: exp relative error <= de + 2^-14 (r floored to 2^-14) + 2^-19 (LN2
  // rounded to 2^-24, times z <= 2^9) ; the sum inherits it; 1/m adds dm + 2^-14 (m
  // floored); then |p_int - p 2^14| <= 2^14 p (2 (de + 2^-14 + 2^-19) + dm + 2^-14)
  // + n 2^-14 (e floored by the shift, 2^-28 each, relative to S >= 2^-28 2^28) + 0.5.
  const double rel = 2 * (de + std::ldexp(1.0, -14) + std::ldexp(1.0, -19)) + dm + std::ldexp(1.0, -14);
  std::mt19937 rng(17);
  double worst = 0;
  for (int n : {1, 2, 3, 7, 16, 33, 100, 257}) {
    for (int j : {0, 2, 4, 5, 7}) {
      std::uniform_int_distribution<int> u(-128, 127);
      std::vector<std::int8_t> q(n);
      for (auto& v : q) v = static_cast<std::int8_t>(u(rng));
      std::vector<std::int16_t> p(n);
      IntegerSoftmax softmax(j);
      softmax(q.data(), p.data(), n);
      const int m = *std::max_element(q.begin(), q.end());
      double s = 0;
      for (auto v : q) s += std::exp(std::ldexp(double(v - m), -j));
      for (int i = 0; i < n; ++i) {
        const double pf = std::exp(std::ldexp(double(q[i] - m), -j)) / s;
        const double err = std::abs(p[i] - std::ldexp(pf, 14));
        worst = std::max(worst, err);
        INFO("n " << n << " j " << j << " i " << i << " p " << pf);
        REQUIRE(err <= std::ldexp(pf, 14) * rel + n * std::ldexp(1.0, -14) + 0.5);
      }
    }
  }
  INFO("max |error| " << worst << " LSB of 2^-14");
  CHECK(worst < 4);
}

TEST_CASE("integer LayerNorm: error vs float within the derived bound") {
  const double ds = unit_relative_error(tables::rsqrt_unit_32(), Function::rsqrt, 16384, 65535);
  INFO("rsqrt table relative error " << ds);
  REQUIRE(ds < 1e-3);
  std::mt19937 rng(23);
  double worst = 0;
  for (int n : {2, 3, 8, 17, 64, 65, 768}) {
    for (int j : {0, 3, 5}) {
      for (int k : {3, 5}) {
        std::normal_distribution<float> g(1.0f, 0.5f), b(0.0f, 0.5f);
        std::vector<float> gamma(n), beta(n);
        for (int i = 0; i < n; ++i) {
          gamma[i] = g(rng);
          beta[i] = b(rng);
        }
        const IntegerLayerNorm ln(gamma, beta, j, k);
        std::uniform_int_distribution<int> u(-128, 127);
        std::vector<std::int8_t> x(n), y(n);
        for (auto& v : x) v = static_cast<std::int8_t>(u(rng));
        ln(x.data(), y.data());
        double mean = 0, var = 0;
        for (auto v : x) mean += std::ldexp(double(v), -j);
        mean /= n;
        for (auto v : x) var += std::pow(std::ldexp(double(v), -j) - mean, 2);
        var /= n;
        for (int i = 0; i < n; ++i) {
          const double yn = (std::ldexp(double(x[i]), -j) - mean) / std::sqrt(var + 1e-5);
          const double yf = gamma[i] * yn + beta[i];
          // Error before the final rounding, in output LSBs: |gamma| |yn| (ds + 2^-15
          // (mantissa floored) + 2^-20 (sum c^2 / n floored, eps rounded)) + |gamma| 2^-13
          // (yn rounded to 2^-12) + |yn| 2^-13 (gamma rounded) + 2^-k-1 (beta rounded).
          const double e = std::ldexp(std::abs(gamma[i]) * std::abs(yn) * (ds + std::ldexp(1.0, -15) + std::ldexp(1.0, -20)) +
                                          std::abs(gamma[i]) * std::ldexp(1.0, -13) + std::abs(yn) * std::ldexp(1.0, -13), k) + 0.5;
          const double target = std::min(std::max(std::ldexp(yf, k), -128.0), 127.0);
          const double err = std::abs(y[i] - target);
          worst = std::max(worst, err);
          INFO("n " << n << " j " << j << " k " << k << " i " << i);
          REQUIRE(err <= e + 0.5);
        }
      }
    }
  }
  INFO("max |error| " << worst << " output LSB");
  CHECK(worst <= 1.0);
}

TEST_CASE("integer ops: bad inputs are rejected naming the argument") {
  CHECK_THROWS_WITH(IntegerGelu(7, 5), Catch::Contains("'frac_bits'"));
  CHECK_THROWS_WITH(IntegerGelu(3, 5, 12), Catch::Contains("'segments'"));
  CHECK_THROWS_WITH(IntegerSoftmax(15), Catch::Contains("'input_frac_bits'"));
  std::int8_t q = 0;
  std::int16_t p = 0;
  CHECK_THROWS_WITH(IntegerSoftmax(3)(&q, &p, 0), Catch::Contains("'n'"));
  CHECK_THROWS_WITH(IntegerSoftmax(3)(nullptr, &p, 1), Catch::Contains("null"));
  const std::vector<float> one(4, 1.0f), zero(4, 0.0f);
  {  // gamma and beta as Eigen vectors and a std::array (on main: std::vector only)
    const std::vector<float> g{0.5f, 1.0f, 1.5f}, b{0.0f, 0.25f, -0.25f};
    Eigen::VectorXf ge(3);
    ge << 0.5f, 1.0f, 1.5f;
    const std::array<float, 3> ba{0.0f, 0.25f, -0.25f};
    const IntegerLayerNorm from_vectors(g, b, 3, 3), from_eigen(ge, ba, 3, 3);
    std::vector<std::int8_t> x{10, -20, 30}, y1(3), y2(3);
    from_vectors(x.data(), y1.data());
    from_eigen(x.data(), y2.data());
    CHECK(y1 == y2);
  }
  CHECK_THROWS_WITH(IntegerLayerNorm({}, {}, 3, 3), Catch::Contains("'gamma'"));
  CHECK_THROWS_WITH(IntegerLayerNorm(one, std::vector<float>(3, 0.0f), 3, 3), Catch::Contains("'beta'"));
  CHECK_THROWS_WITH(IntegerLayerNorm(std::vector<float>(4, 9.0f), zero, 3, 3), Catch::Contains("'gamma'"));
  CHECK_THROWS_WITH(IntegerLayerNorm(std::vector<float>(4, std::nanf("")), zero, 3, 3), Catch::Contains("'gamma'"));
  CHECK_THROWS_WITH(IntegerLayerNorm(one, std::vector<float>(4, std::nanf("")), 3, 3), Catch::Contains("'beta'"));
  CHECK_THROWS_WITH(IntegerLayerNorm(one, zero, 8, 3), Catch::Contains("'input_frac_bits'"));
  CHECK_THROWS_WITH(IntegerLayerNorm(one, zero, 3, -1), Catch::Contains("'output_frac_bits'"));
  CHECK_THROWS_WITH(IntegerLayerNorm(one, zero, 3, 3, -1.0), Catch::Contains("'eps'"));
  // A constant row with eps = 0 normalises to 0: the output is beta.
  const IntegerLayerNorm ln(one, std::vector<float>(4, 0.5f), 3, 3, 0.0);
  std::vector<std::int8_t> x(4, 7), y(4);
  ln(x.data(), y.data());
  for (auto v : y) CHECK(int(v) == 4);
}
