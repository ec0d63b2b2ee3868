// etk:isa-variants
// Float evaluation of piecewise-linear tables: the vectorised path equals the scalar
// reference bit for bit (both compute one fma per element with the same segment), the
// boundary convention holds, NaN propagates and bad tables are rejected.
#include <catch2/catch.hpp>
#include <etk/lut/pwl.hpp>

#include <cstring>
#include <limits>

#include "support/paths.hpp"
#include "support/lut_util.hpp"

using etk::lut::PwlTable;

namespace {
bool same_bits(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::memcmp(&a, &b, sizeof a) == 0;
}
}  // namespace

TEST_CASE("pwl float: fast path equals the reference for 1..20 segments and all sizes") {
  paths::for_each([&](etk::Isa) {
  std::mt19937 rng(7);
  for (int segments = 1; segments <= 20; ++segments) {
    const PwlTable t = lut_test::random_table(rng, segments, -4.0, 4.0);
    for (int n : lut_test::test_sizes()) {
      std::uniform_real_distribution<float> u(-5.0f, 5.0f);
      std::vector<float> x(n), y(n), ref(n);
      for (int i = 0; i < n; ++i) x[i] = u(rng);
      // Put some inputs exactly on breakpoints: the convention must agree there too.
      for (int i = 0; i < n && !t.breakpoints().empty(); i += 3)
        x[i] = t.breakpoints()[i % t.breakpoints().size()];
      etk::lut::pwl_eval(t, x.data(), y.data(), n);
      etk::lut::reference::pwl_eval(t.breakpoints().data(), t.slopes().data(),
                                    t.intercepts().data(), t.segments(), x.data(), ref.data(), n);
      for (int i = 0; i < n; ++i) {
        INFO("segments " << segments << " n " << n << " i " << i << " x " << x[i]);
        REQUIRE(same_bits(y[i], ref[i]));
      }
    }
  }
  });
}

TEST_CASE("pwl float: a value on a breakpoint belongs to the segment on its right") {
  const PwlTable t({-1.0f, 0.0f, 1.0f}, {0.0f, 1.0f, 2.0f, 3.0f}, {10.0f, 20.0f, 30.0f, 40.0f},
                   -2.0, 2.0);
  CHECK(t.segment(-1.0f) == 1);
  CHECK(t.segment(std::nextafter(-1.0f, -2.0f)) == 0);
  CHECK(t.segment(0.0f) == 2);
  CHECK(t.segment(-0.0f) == 2);
  CHECK(t.segment(1.0f) == 3);
  std::vector<float> x = {-1.0f, 0.0f, 1.0f, -5.0f, 5.0f}, y(5);
  etk::lut::pwl_eval(t, x.data(), y.data(), 5);
  CHECK(y[0] == 19.0f);  // segment 1: 1 * -1 + 20
  CHECK(y[1] == 30.0f);  // segment 2
  CHECK(y[2] == 43.0f);  // segment 3
  CHECK(y[3] == 10.0f);  // outside the range: the outer lines extend
  CHECK(y[4] == 55.0f);
}

TEST_CASE("pwl float: NaN input gives NaN on every path - infinities use the outer lines") {
  paths::for_each([&](etk::Isa) {
  const PwlTable t({-1.0f, 1.0f}, {0.5f, 1.0f, 2.0f}, {-1.0f, 0.0f, 1.0f}, -2.0, 2.0);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> x(37, 0.5f), y(37);
  x[3] = nan;
  x[20] = nan;
  x[36] = nan;
  x[5] = inf;
  x[6] = -inf;
  etk::lut::pwl_eval(t, x.data(), y.data(), 37);
  CHECK(std::isnan(y[3]));
  CHECK(std::isnan(y[20]));
  CHECK(std::isnan(y[36]));
  CHECK(y[5] == inf);  // fma(2, +inf, 1)
  CHECK(y[6] == -inf); // fma(0.5, -inf, -1)
  CHECK(y[0] == 0.5f);
  });
}

TEST_CASE("pwl table: bad tables are rejected naming the argument") {
  using V = std::vector<float>;
  CHECK_THROWS_WITH(PwlTable(V{1.0f, 0.0f}, V{1, 1, 1}, V{0, 0, 0}, -2, 2),
                    Catch::Contains("not sorted") && Catch::Contains("'breakpoints'"));
  CHECK_THROWS_WITH(PwlTable(V{0.5f, 0.5f}, V{1, 1, 1}, V{0, 0, 0}, -2, 2),
                    Catch::Contains("duplicate"));
  CHECK_THROWS_WITH(PwlTable(V{}, V{}, V{}, -2, 2), Catch::Contains("at least one segment"));
  CHECK_THROWS_WITH(PwlTable(V{}, V{1}, V{0}, 2, 2), Catch::Contains("'range'"));
  CHECK_THROWS_WITH(PwlTable(V{}, V{1}, V{0}, 3, -3), Catch::Contains("'range'"));
  CHECK_THROWS_WITH(PwlTable(V{}, V{1}, V{0}, std::nan(""), 1), Catch::Contains("'range'"));
  CHECK_THROWS_WITH(PwlTable(V{0.0f}, V{1, 1}, V{0}, -2, 2), Catch::Contains("'intercepts'"));
  CHECK_THROWS_WITH(PwlTable(V{0.0f, 1.0f}, V{1, 1}, V{0, 0}, -2, 2), Catch::Contains("'breakpoints'"));
  CHECK_THROWS_WITH(PwlTable(V{std::nanf("")}, V{1, 1}, V{0, 0}, -2, 2), Catch::Contains("not finite"));
  CHECK_THROWS_WITH(PwlTable(V{0.0f}, V{std::nanf(""), 1}, V{0, 0}, -2, 2), Catch::Contains("non-finite"));
  CHECK_THROWS_AS(PwlTable(V{0.0f}, V{1, 1}, V{0, std::numeric_limits<float>::infinity()}, -2, 2),
                  etk::invalid_argument);
  const PwlTable ok(V{0.0f}, V{1, 1}, V{0, 0}, -2, 2);
  float x = 0;
  CHECK_THROWS_WITH(etk::lut::pwl_eval(ok, &x, &x, -1), Catch::Contains("'n'"));
  CHECK_THROWS_WITH(etk::lut::pwl_eval(ok, nullptr, &x, 1), Catch::Contains("null"));
}
