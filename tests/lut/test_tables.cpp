// etk:isa-variants
// Every shipped table: the integer path equals the float path on all 256 int8 inputs, at
// every input scale the set serves (its per-scale tables and its float table), both as
// the exact accumulator (32-bit output at the accumulator's scale) and as int8 output at
// scale 2^-6 (the SIMD path, saturating). Coefficients are representable. The integer
// kernels' range-reduced tables (j = 14) are compared with their exact (double) value.
#include <catch2/catch.hpp>
#include <etk/lut/integer_pwl.hpp>
#include <etk/lut/fit.hpp>
#include <etk/lut/tables.hpp>

#include "support/lut_util.hpp"

using namespace etk::lut;

namespace {
// The table's exact value at q 2^-j, in double (a 16-bit coefficient times an 8-bit input
// plus a 16-bit intercept needs at most ~40 significant bits: exact in double).
double exact_value(const PwlTable& t, int q, int j) {
  const float x = std::ldexp(static_cast<float>(q), -j);
  const int s = t.segment(x);
  return double{t.slopes()[s]} * std::ldexp(double(q), -j) + double{t.intercepts()[s]};
}

// Returns whether the float path is exact for this table and scale (|acc| < 2^24).
bool check_int_equals_float(const PwlTable& t, FixedFormat coeff, int j) {
  std::vector<std::int8_t> q;
  for (int v = -128; v <= 127; ++v) q.push_back(static_cast<std::int8_t>(v));
  const int k_exact = coeff.frac_bits + j;  // shift 0: the output is the accumulator
  const IntegerPwl exact = quantize_pwl(t, {j, coeff, k_exact, 32});
  const QuantizationReport& r = exact.report();
  REQUIRE(r.slopes_saturated + r.intercepts_saturated + r.slopes_rounded + r.intercepts_rounded == 0);
  std::vector<std::int32_t> y32(256);
  pwl_eval_int8(exact, q.data(), y32.data(), 256);
  const IntegerPwl narrow = quantize_pwl(t, {j, coeff, 6, 8});
  std::vector<std::int8_t> y8(256);
  pwl_eval_int8(narrow, q.data(), y8.data(), 256);
  for (int i = 0; i < 256; ++i) {
    INFO("q " << int(q[i]) << " j " << j);
    REQUIRE(y32[i] == std::ldexp(exact_value(t, q[i], j), k_exact));
    if (r.float_exact) {
      REQUIRE(y32[i] == lut_test::float_expected(t, q[i], j, k_exact, 32));
      REQUIRE(y8[i] == lut_test::float_expected(t, q[i], j, 6, 8));
    }
  }
  return r.float_exact;
}
}  // namespace

TEST_CASE("shipped tables: integer path == float path on all 256 int8 inputs") {
  int checked = 0;
  for (const TableSet* set : shipped_tables()) {
    INFO(set->function << "_" << set->segments);
    REQUIRE(set->dense.segments() <= set->segments);
    for (int j = set->min_frac_bits; j <= set->max_frac_bits(); ++j) {
      const PwlTable& t = set->for_scale(j);
      for (float b : t.breakpoints())  // per-scale breakpoints sit on the 2^-j grid
        REQUIRE(std::ldexp(b, j) == std::round(std::ldexp(b, j)));
      const bool a = check_int_equals_float(t, set->coeff, j);
      const bool b = check_int_equals_float(set->dense, set->coeff, j);
      // Every activation table's float path is exact, so integer == float there. The
      // range-reduced kernel tables (Q2.14 at j = 14) need 29-bit results, beyond float:
      // their integer path equals the table's exact value (checked above) instead.
      if (set->min_frac_bits < 14) {
        REQUIRE(a);
        REQUIRE(b);
        ++checked;
      }
    }
  }
  CHECK(checked == 18 * 7);
}

TEST_CASE("shipped tables: lookup by function - bad lookups rejected") {
  CHECK(shipped_table(Function::gelu, 8).segments == 8);
  CHECK(shipped_table(Function::silu, 16).function == "silu");
  CHECK_THROWS_WITH(shipped_table(Function::gelu, 12), Catch::Contains("'function'"));
  CHECK_THROWS_WITH(shipped_table(Function::gelu_tanh, 8), Catch::Contains("gelu_tanh"));
  CHECK_THROWS_WITH(shipped_table(Function::gelu, 8).for_scale(7), Catch::Contains("'frac_bits'"));
}

TEST_CASE("shipped tables: the 8-segment GELU table beats the reference's published one") {
  const Samples dense = dense_samples(Function::gelu, -4.0, 4.0);
  const double ref = table_mse(lut_test::reference_tables()[0].table(), dense);
  const double ours = table_mse(shipped_table(Function::gelu, 8).dense, dense);
  INFO("reference " << ref << ", shipped " << ours);
  CHECK(ours < ref);
}
