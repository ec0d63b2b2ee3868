// Tests of etk/lut/pwl_rsqrt.hpp: the range reduction is exact, so every positive float
// gets table(m) * 2^-e bit for bit (m, e derived here independently, from ilogb), and
// the relative error at x is the table's relative error at m; bad inputs are rejected.
#include <catch2/catch.hpp>
#include <etk/lut/functions.hpp>
#include <etk/lut/pwl_rsqrt.hpp>
#include <etk/lut/tables.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace {

// x = m * 4^e with m in [1, 4): e = floor(ilogb(x) / 2) (ilogb is exact, denormals too).
void reduce(float x, float& m, int& e) {
  const int lg = std::ilogb(x);
  e = lg >= 0 ? lg / 2 : -((1 - lg) / 2);
  m = std::ldexp(x, -2 * e);
}

std::vector<float> positive_floats(std::mt19937& rng, int n) {
  std::vector<float> x = {std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                          std::numeric_limits<float>::max(), 1.0f, 4.0f, std::nextafter(4.0f, 0.0f),
                          2.0f, 0.25f, 1e-6f};
  std::uniform_int_distribution<std::uint32_t> bits(1u, 0x7f7fffffu);  // every positive finite pattern
  while (int(x.size()) < n) {
    const std::uint32_t b = bits(rng);
    float v;
    std::memcpy(&v, &b, sizeof v);
    x.push_back(v);
  }
  return x;
}

}  // namespace

TEST_CASE("pwl_rsqrt: table(m) * 2^-e for every positive float, relative error that of the table at m") {
  std::mt19937 rng(11);
  for (int segments : {8, 16}) {
    const etk::lut::PwlTable& t = etk::lut::shipped_table(etk::lut::Function::rsqrt, segments).dense;
    const std::vector<float> x = positive_floats(rng, 20000);
    std::vector<float> y(x.size());
    etk::lut::pwl_rsqrt(t, x.data(), y.data(), std::ptrdiff_t(x.size()));
    for (std::size_t i = 0; i < x.size(); ++i) {
      float m;
      int e;
      reduce(x[i], m, e);
      INFO("segments " << segments << " x " << x[i] << " m " << m << " e " << e);
      REQUIRE(m >= 1.0f);
      REQUIRE(m < 4.0f);
      const float expect = std::ldexp(t(m), -e);
      REQUIRE(std::memcmp(&expect, &y[i], sizeof expect) == 0);
      const double rel_x = std::fabs(double(y[i]) * std::sqrt(double(x[i])) - 1.0);
      const double rel_m = std::fabs(double(t(m)) * std::sqrt(double(m)) - 1.0);
      REQUIRE(rel_x == Approx(rel_m).margin(1e-12));
    }
  }
}

TEST_CASE("pwl_rsqrt: in place, empty, and bad input") {
  const etk::lut::PwlTable& t = etk::lut::shipped_table(etk::lut::Function::rsqrt, 16).dense;
  std::vector<float> x = {0.5f, 3.0f, 1e10f}, copy = x, y(3);
  etk::lut::pwl_rsqrt(t, copy.data(), y.data(), 3);
  etk::lut::pwl_rsqrt(t, x.data(), x.data(), 3);
  CHECK(x == y);
  etk::lut::pwl_rsqrt(t, nullptr, nullptr, 0);
  const float inf = std::numeric_limits<float>::infinity();
  for (float bad : {0.0f, -0.0f, -1.0f, inf, std::numeric_limits<float>::quiet_NaN()}) {
    float v = bad, out;
    CHECK_THROWS_AS(etk::lut::pwl_rsqrt(t, &v, &out, 1), etk::invalid_argument);
  }
  float v = 1.0f, out;
  CHECK_THROWS_AS(etk::lut::pwl_rsqrt(t, &v, &out, -1), etk::invalid_argument);
  CHECK_THROWS_AS(etk::lut::pwl_rsqrt(t, nullptr, &out, 1), etk::invalid_argument);
  const etk::lut::PwlTable narrow({2.0f}, {0.0f, 0.0f}, {1.0f, 0.5f}, 1.0, 3.0);
  CHECK_THROWS_WITH(etk::lut::pwl_rsqrt(narrow, &v, &out, 1), Catch::Contains("does not cover"));
}
