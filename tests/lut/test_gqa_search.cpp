// The genetic search: deterministic per seed; the 8-segment GELU table on [-4, 4) is no
// worse than the reference code's published one and the least-squares refinement beats
// it (and the other published tables); least squares under the fixed-point format is the
// exact optimum; every produced coefficient is representable; bad configurations fail.
#include <catch2/catch.hpp>
#include <etk/lut/gqa_search.hpp>
#include <etk/lut/integer_pwl.hpp>

#include "support/lut_util.hpp"

using namespace etk::lut;

namespace {
GqaConfig config_for(const lut_test::ReferenceTable& r, Coefficients coefficients) {
  GqaConfig c;
  c.function = function_from_name(r.function);
  c.lo = r.lo;
  c.hi = r.hi;
  c.segments = r.segments;
  c.coefficients = coefficients;
  return c;
}

void require_representable(const PwlTable& t, FixedFormat fmt) {
  for (int s = 0; s < t.segments(); ++s)
    for (float v : {t.slopes()[s], t.intercepts()[s]}) {
      const auto c = to_fixed(v, fmt);
      REQUIRE_FALSE(c.rounded);
      REQUIRE_FALSE(c.saturated);
    }
}
}  // namespace

TEST_CASE("gqa search: the same seed gives the same table - another seed another") {
  GqaConfig c;
  c.generations = 60;
  c.restarts = 2;
  const GqaResult a = gqa_search(c), b = gqa_search(c);
  REQUIRE(a.table.breakpoints() == b.table.breakpoints());
  REQUIRE(a.table.slopes() == b.table.slopes());
  REQUIRE(a.table.intercepts() == b.table.intercepts());
  REQUIRE(a.mse_dense == b.mse_dense);
  c.seed = 7;
  const GqaResult d = gqa_search(c);
  CHECK(d.table.breakpoints() != a.table.breakpoints());
}

TEST_CASE("gqa search: 8-segment GELU on -4..4 vs the reference's published table") {
  const auto ref = lut_test::reference_tables()[0];
  REQUIRE(std::string(ref.function) == "gelu");
  REQUIRE(ref.segments == 8);
  const Samples dense = dense_samples(Function::gelu, -4.0, 4.0);
  const double ref_mse = table_mse(ref.table(), dense);
  const GqaResult secant = gqa_search(config_for(ref, Coefficients::secant));
  const GqaResult lsq = gqa_search(config_for(ref, Coefficients::least_squares));
  const double refined = table_mse(refine_least_squares(secant.table, dense, {8, 6}), dense);
  INFO("reference " << ref_mse << " secant GA " << secant.mse_dense << " refined " << refined
                    << " least-squares GA " << lsq.mse_dense);
  CHECK(secant.table.segments() == 8);
  CHECK(secant.mse_dense <= ref_mse);
  CHECK(refined < ref_mse);
  CHECK(lsq.mse_dense < ref_mse);
  CHECK(lsq.mse_dense < refined);
  require_representable(secant.table, {8, 6});
  require_representable(lsq.table, {8, 6});
  for (const auto& s : lsq.scales) {  // per-scale tables: breakpoints on the 2^-j grid
    for (float b : s.table.breakpoints()) REQUIRE(std::ldexp(b, s.frac_bits) == std::round(std::ldexp(b, s.frac_bits)));
    require_representable(s.table, {8, 6});
  }
}

TEST_CASE("gqa search: secant search reproduces - least squares beats - every published table") {
  for (const auto& ref : lut_test::reference_tables()) {
    const Function f = function_from_name(ref.function);
    const Samples dense = dense_samples(f, ref.lo, ref.hi);
    const double ref_mse = table_mse(ref.table(), dense);
    const GqaResult secant = gqa_search(config_for(ref, Coefficients::secant));
    const double refined = table_mse(refine_least_squares(secant.table, dense, {8, 6}), dense);
    INFO(ref.function << "-" << ref.segments << ": reference " << ref_mse << " secant GA "
                      << secant.mse_dense << " refined " << refined);
    CHECK(secant.mse_dense <= ref_mse);
    CHECK(refined < ref_mse);
    // Least squares also beats the reference's own breakpoints (the headroom of secants).
    CHECK(table_mse(refine_least_squares(ref.table(), dense, {8, 6}), dense) < ref_mse);
  }
}

TEST_CASE("gqa search: least squares under the format is the exhaustive optimum") {
  // A small format (Q3.3: 64 slopes x 64 intercepts) makes brute force cheap.
  const FixedFormat fmt{6, 3};
  std::mt19937 rng(3);
  std::uniform_real_distribution<double> u(-3.0, 3.0);
  const Samples s = dense_samples(Function::gelu, -3.0, 3.0, 0.01);
  for (int trial = 0; trial < 40; ++trial) {
    double a = u(rng), b = u(rng);
    if (a > b) std::swap(a, b);
    const auto m = s.moments(s.first_at_or_above(a), s.first_at_or_above(b));
    const Line best = least_squares_line(m, fmt, {});
    double brute = -1;
    for (int rs = fmt.raw_min(); rs <= fmt.raw_max(); ++rs)
      for (int rb = fmt.raw_min(); rb <= fmt.raw_max(); ++rb) {
        const double e = m.error(rs * fmt.step(), rb * fmt.step());
        if (brute < 0 || e < brute) brute = e;
      }
    INFO("segment [" << a << ", " << b << ")");
    CHECK(m.error(best.slope, best.intercept) <= brute * (1 + 1e-12) + 1e-15);
  }
}

TEST_CASE("gqa search: quantization-aware tables fit the int8 grid better") {
  GqaConfig c;
  c.coefficients = Coefficients::least_squares;
  c.restarts = 2;
  c.generations = 200;
  const GqaResult dense = gqa_search(c);
  c.fitness = Fitness::int8_grid;
  const GqaResult aware = gqa_search(c);
  REQUIRE(aware.scales.size() == 7);
  for (std::size_t i = 0; i < aware.scales.size(); ++i) {
    INFO("j = " << aware.scales[i].frac_bits << ": dense-fitted " << dense.scales[i].mse_int8
                << ", int8-fitted " << aware.scales[i].mse_int8);
    CHECK(aware.scales[i].mse_int8 <= dense.scales[i].mse_int8);
    // Representable and on the grid: the integer path is exact for these tables.
    const auto it = quantize_pwl(aware.scales[i].table, {aware.scales[i].frac_bits, {8, 6}, 6, 32});
    CHECK(it.report().exact());
  }
}

TEST_CASE("gqa search: bad configurations are rejected naming the argument") {
  GqaConfig c;
  c.generations = 1;
  auto with = [&](auto change) {
    GqaConfig d = c;
    change(d);
    return d;
  };
  CHECK_THROWS_WITH(gqa_search(with([](GqaConfig& d) { d.lo = 4; d.hi = -4; })), Catch::Contains("'range'"));
  CHECK_THROWS_WITH(gqa_search(with([](GqaConfig& d) { d.lo = 1; d.hi = 1; })), Catch::Contains("'range'"));
  CHECK_THROWS_WITH(gqa_search(with([](GqaConfig& d) { d.hi = std::nan(""); })), Catch::Contains("'range'"));
  CHECK_THROWS_WITH(gqa_search(with([](GqaConfig& d) { d.segments = 0; })), Catch::Contains("'segments'"));
  CHECK_THROWS_WITH(gqa_search(with([](GqaConfig& d) { d.coeff = {40, 6}; })), Catch::Contains("'coeff'"));
  CHECK_THROWS_WITH(gqa_search(with([](GqaConfig& d) { d.population = 1; })), Catch::Contains("'population'"));
  CHECK_THROWS_WITH(gqa_search(with([](GqaConfig& d) { d.min_frac_bits = 5; d.max_frac_bits = 2; })),
                    Catch::Contains("'frac_bits'"));
  CHECK_THROWS_WITH(gqa_search(with([](GqaConfig& d) { d.mutation_prob = 1.5; })), Catch::Contains("'probability'"));
  // rsqrt is not finite at x <= 0.
  CHECK_THROWS_WITH(gqa_search(with([](GqaConfig& d) { d.function = Function::rsqrt; d.lo = -1; d.hi = 1; })),
                    Catch::Contains("not finite"));
  CHECK_THROWS_WITH(function_from_name("softplus"), Catch::Contains("unsupported function"));
  CHECK(function_from_name("swish") == Function::silu);
  // One segment is a valid (if poor) table: the search just fits one line.
  const GqaResult one = gqa_search(with([](GqaConfig& d) { d.segments = 1; }));
  CHECK(one.table.segments() == 1);
}
