// etk:isa-variants
// Integer-only table evaluation: the SIMD int8 paths equal the int64 reference bit for
// bit; the integer output equals the float path rounded half up to the output scale on
// all 256 int8 inputs whenever the coefficients are representable; unrepresentable
// coefficients and saturating outputs are clamped and reported, never wrapped.
#include <catch2/catch.hpp>
#include <etk/lut/integer_pwl.hpp>

#include <cmath>

#include "support/paths.hpp"
#include "support/lut_util.hpp"

using etk::lut::IntegerPwlConfig;
using etk::lut::PwlTable;

namespace {
std::vector<std::int8_t> all_int8() {
  std::vector<std::int8_t> q;
  for (int v = -128; v <= 127; ++v) q.push_back(static_cast<std::int8_t>(v));
  return q;
}

}  // namespace

TEST_CASE("integer pwl: int8 fast path equals the reference - narrow and wide tables") {
  paths::for_each([&](etk::Isa) {
  std::mt19937 rng(11);
  int narrow_seen = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int segments = 1 + trial % 17;
    const int j = trial % 8;
    IntegerPwlConfig cfg;
    cfg.input_frac_bits = j;
    cfg.coeff = trial % 5 == 4 ? etk::lut::FixedFormat{12, 8} : etk::lut::FixedFormat{8, 6};
    cfg.output_frac_bits = (trial * 3) % 9;
    const PwlTable t = lut_test::random_table(rng, segments, -300.0 / (1 << j), 300.0 / (1 << j),
                                              j, cfg.coeff.total_bits, cfg.coeff.frac_bits);
    const auto it = etk::lut::quantize_pwl(t, cfg);
    narrow_seen += it.narrow();
    for (int n : lut_test::test_sizes()) {
      std::uniform_int_distribution<int> u(-128, 127);
      std::vector<std::int8_t> q(n);
      for (auto& v : q) v = static_cast<std::int8_t>(u(rng));
      std::vector<std::int8_t> y(n), ref(n);
      etk::lut::pwl_eval_int8(it, q.data(), y.data(), n);
      etk::lut::reference::pwl_eval_int8(it, q.data(), ref.data(), n);
      for (int i = 0; i < n; ++i) {
        INFO("trial " << trial << " n " << n << " i " << i << " q " << int(q[i]));
        REQUIRE(int(y[i]) == int(ref[i]));
      }
    }
  }
  CHECK(narrow_seen > 10);  // the SIMD paths were exercised
  });
}

TEST_CASE("integer pwl: integer output == float output on all 256 int8 inputs") {
  std::mt19937 rng(5);
  const auto q = all_int8();
  for (int trial = 0; trial < 80; ++trial) {
    const int j = trial % 8;
    const int segments = 1 + trial % 16;
    const int bits = trial % 3 == 0 ? 8 : (trial % 3 == 1 ? 16 : 32);
    const int k = bits == 8 ? 4 + trial % 4 : 6 + trial % 10;
    // Breakpoints NOT on the input grid: thresholds are ceil(b 2^j).
    const PwlTable t = lut_test::random_table(rng, segments, -2.5, 2.5, -1);
    std::vector<float> s(t.slopes()), b(t.intercepts());
    for (auto& v : s) v = static_cast<float>(etk::lut::round_to_format(v, {8, 6}));
    for (auto& v : b) v = static_cast<float>(etk::lut::round_to_format(v, {8, 6}));
    const PwlTable tq(t.breakpoints(), s, b, t.lo(), t.hi());
    const auto it = etk::lut::quantize_pwl(tq, {j, {8, 6}, k, bits});
    REQUIRE(it.report().exact());
    std::vector<std::int32_t> y32(256);
    std::vector<std::int16_t> y16(256);
    std::vector<std::int8_t> y8(256);
    if (bits == 8) etk::lut::pwl_eval_int8(it, q.data(), y8.data(), 256);
    if (bits == 16) etk::lut::pwl_eval_int8(it, q.data(), y16.data(), 256);
    if (bits == 32) etk::lut::pwl_eval_int8(it, q.data(), y32.data(), 256);
    for (int i = 0; i < 256; ++i) {
      const std::int64_t got = bits == 8 ? y8[i] : (bits == 16 ? y16[i] : y32[i]);
      INFO("trial " << trial << " q " << int(q[i]) << " j " << j << " k " << k);
      REQUIRE(got == lut_test::float_expected(tq, q[i], j, k, bits));
    }
  }
}

TEST_CASE("integer pwl: unrepresentable coefficients saturate and are reported") {
  // Slope 3 and intercept -2.5 do not fit Q2.6 ([-2, 1.984375]); 0.01 is off its grid.
  const PwlTable t({0.0f}, {3.0f, 0.01f}, {-2.5f, 0.5f}, -1.0, 1.0);
  const auto it = etk::lut::quantize_pwl(t, {6, {8, 6}, 6, 8});
  CHECK(it.report().slopes_saturated == 1);
  CHECK(it.report().intercepts_saturated == 1);
  CHECK(it.report().slopes_rounded == 1);
  CHECK_FALSE(it.report().exact());
  CHECK(it.slopes()[0] == 127);       // clamped to the largest Q2.6 value, not wrapped
  CHECK(it.intercepts()[0] == -128);  // clamped to the smallest
  CHECK(it.slopes()[1] == 1);         // 0.01 * 64 = 0.64 rounds to 1
  CHECK(it.report().summary().find("slopes saturated 1") != std::string::npos);
}

TEST_CASE("integer pwl: saturating outputs are clamped and counted - never wrapped") {
  paths::for_each([&](etk::Isa) {
  // y = 1.5 x on [-4, 4) at j = 5: x in [-4, 3.97]; output int8 at 2^-6 holds [-2, 1.98].
  const PwlTable t({}, {1.5f}, {0.0f}, -4.0, 4.0);
  const auto it = etk::lut::quantize_pwl(t, {5, {8, 6}, 6, 8});
  // |1.5 q / 32| * 64 = 3 |q| exceeds 127 for q >= 43 and -128 for q <= -43.
  CHECK(it.report().inputs_saturating == (127 - 43 + 1) + (128 - 43 + 1));
  const auto q = all_int8();
  std::vector<std::int8_t> y(256);
  etk::lut::pwl_eval_int8(it, q.data(), y.data(), 256);
  CHECK(int(y[255]) == 127);  // q = 127
  CHECK(int(y[0]) == -128);   // q = -128
  CHECK(int(y[128 + 42]) == 126);
  });
}

TEST_CASE("integer pwl: bad configurations are rejected naming the argument") {
  const PwlTable t({0.0f}, {1.0f, 1.0f}, {0.0f, 0.0f}, -1.0, 1.0);
  CHECK_THROWS_WITH(etk::lut::quantize_pwl(t, {-1, {8, 6}, 6, 8}), Catch::Contains("'input_frac_bits'"));
  CHECK_THROWS_WITH(etk::lut::quantize_pwl(t, {17, {8, 6}, 6, 8}), Catch::Contains("'input_frac_bits'"));
  CHECK_THROWS_WITH(etk::lut::quantize_pwl(t, {6, {1, 0}, 6, 8}), Catch::Contains("'coeff'"));
  CHECK_THROWS_WITH(etk::lut::quantize_pwl(t, {6, {8, 30}, 6, 8}), Catch::Contains("'coeff'"));
  CHECK_THROWS_WITH(etk::lut::quantize_pwl(t, {6, {8, 6}, 6, 12}), Catch::Contains("'output_bits'"));
  CHECK_THROWS_WITH(etk::lut::quantize_pwl(t, {6, {8, 6}, -1, 8}), Catch::Contains("'output_frac_bits'"));
  const auto it = etk::lut::quantize_pwl(t, {6, {8, 6}, 6, 8});
  std::int8_t q = 0;
  std::int16_t y16 = 0;
  CHECK_THROWS_WITH(etk::lut::pwl_eval_int8(it, &q, &y16, 1), Catch::Contains("'y'"));
  std::int8_t y8 = 0;
  CHECK_THROWS_WITH(etk::lut::pwl_eval_int8(it, &q, &y8, -1), Catch::Contains("'n'"));
}
