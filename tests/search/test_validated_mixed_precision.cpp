// Tests of validated mixed precision: the uniform candidate, the second-order table, the
// greedy on the real model (never worse than its start, within budget, bounded cost) and
// the choice on validation (best wins, ties to the earlier candidate, errors surface;
// scored in parts, the same choice).
#include <catch2/catch.hpp>
#include <etk/search/validated_mixed_precision.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <vector>

namespace es = etk::search;

namespace {

std::vector<es::QuantTensor> tensors_of(const std::vector<std::int64_t>& sizes) {
  std::vector<es::QuantTensor> t;
  for (std::size_t i = 0; i < sizes.size(); ++i) t.push_back({"w" + std::to_string(i), sizes[i], 0, 8, 0});
  return t;
}

// Damage of tensor i at b bits: scale_i * 4^-b, plus an interaction of tensors 0 and 1
// that an additive table cannot see.
struct Model {
  std::vector<double> scale;
  double interaction = 0;
  es::Damage operator()(const es::BitConfig& c) const {
    es::Damage d;
    for (std::size_t i = 0; i < c.size(); ++i)
      if (c[i] != es::kFloat) d.kl += scale[i] * std::pow(4.0, -c[i]);
    if (c[0] != es::kFloat && c[1] != es::kFloat) d.kl += interaction * std::pow(4.0, -(c[0] + c[1]) / 2.0);
    d.mse = 2 * d.kl;
    return d;
  }
};

}  // namespace

TEST_CASE("the uniform candidate: the highest single width the budget allows") {
  const auto t = tensors_of({100, 300, 50});
  CHECK(es::uniform_configuration(t, {8, 6, 5, 4, 2}, {es::BudgetKind::average_bits, 5}) == es::BitConfig{5, 5, 5});
  CHECK(es::uniform_configuration(t, {2, 8, 4}, {es::BudgetKind::average_bits, 7.9}) == es::BitConfig{4, 4, 4});
  // Model bytes: 450 elements at 6 bits = 338 bytes (ceil per tensor: 75 + 225 + 38).
  CHECK(es::uniform_configuration(t, {8, 6}, {es::BudgetKind::model_bytes, 338}) == es::BitConfig{6, 6, 6});
  CHECK_THROWS_WITH(es::uniform_configuration(t, {8, 6}, {es::BudgetKind::model_bytes, 337}),
                    Catch::Contains("'budget'"));
  CHECK_THROWS_WITH(es::uniform_configuration(t, {}, {es::BudgetKind::average_bits, 4}),
                    Catch::Contains("empty candidate list"));
  CHECK_THROWS_WITH(es::uniform_configuration({}, {8}, {es::BudgetKind::average_bits, 4}),
                    Catch::Contains("'tensors'"));
}

TEST_CASE("predicted damage sums the table; the second-order table scales one probe") {
  Model m{{1.0, 30.0, 500.0}};
  es::SensitivityCache cache(m, 3);
  const auto table = es::measure_sensitivity(cache, {8, 6, 4, 2});
  const es::BitConfig c{8, 4, 2};
  CHECK(es::predicted_damage(table, c, es::Metric::kl) ==
        Approx(m(c).kl).epsilon(1e-12));
  CHECK_THROWS_WITH(es::predicted_damage(table, {8, 5, 2}, es::Metric::kl), Catch::Contains("5 bits"));
  CHECK_THROWS_WITH(es::predicted_damage(table, {8, 4}, es::Metric::kl), Catch::Contains("2 entries"));
  // Weight errors proportional to 4^-b: the quadratic model is then exact, from any probe.
  std::vector<std::vector<double>> err(3);
  for (std::size_t i = 0; i < 3; ++i)
    for (int b : table.bits[i]) err[i].push_back(7.0 * (double(i) + 1) * std::pow(4.0, -b));
  for (int probe : {8, 4}) {
    const auto so = es::second_order_sensitivity(table, err, probe);
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t k = 0; k < table.bits[i].size(); ++k) {
        CHECK(so.damage[i][k].kl == Approx(table.damage[i][k].kl).epsilon(1e-12));
        CHECK(so.damage[i][k].mse == Approx(table.damage[i][k].mse).epsilon(1e-12));
      }
  }
  // Errors growing twice as fast as the damage: the extrapolation from 6 bits says so.
  auto fast = err;
  for (std::size_t i = 0; i < 3; ++i) fast[i][3] *= 2;  // 2 bits
  const auto so = es::second_order_sensitivity(table, fast, 6);
  CHECK(so.damage[1][3].kl == Approx(2 * table.damage[1][3].kl).epsilon(1e-12));
  CHECK(so.damage[1][2].kl == Approx(table.damage[1][2].kl).epsilon(1e-12));
  // A probe that changed no weight gives zero curvature, not a division by zero.
  auto zero = err;
  zero[0].assign(4, 0.0);
  CHECK(es::second_order_sensitivity(table, zero, 6).damage[0][3].kl == 0.0);
  CHECK_THROWS_WITH(es::second_order_sensitivity(table, err, 5), Catch::Contains("'probe_bits'"));
  auto bad = err;
  bad[2][1] = -1;
  CHECK_THROWS_WITH(es::second_order_sensitivity(table, bad, 6), Catch::Contains("'errors'"));
  CHECK_THROWS_WITH(es::second_order_sensitivity(table, {err[0]}, 6), Catch::Contains("1 rows"));
}

TEST_CASE("a table measured at the probe alone for some tensors, completed from it") {
  Model m{{1.0, 30.0, 500.0}};
  es::SensitivityCache cache(m, 3);
  const std::vector<int> widths = {8, 6, 4, 2};
  const auto full = es::measure_sensitivity(cache, widths);
  // Tensors 0 and 2 at the probe alone: 2 evaluations instead of 8.
  es::SensitivityCache fresh(m, 3);
  const auto part = es::measure_sensitivity(fresh, {{6}, widths, {6}});
  CHECK(fresh.evaluations() == 6);
  std::vector<std::vector<double>> err(3);
  for (std::size_t i = 0; i < 3; ++i)
    for (int b : widths) err[i].push_back(3.0 * (double(i) + 1) * std::pow(4.0, -b));
  err[1].clear();  // the fully measured row is not read
  const auto t = es::fill_from_probe(part, {2, 4, 8, 6}, err, 6);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(t.bits[i] == widths);
    // Errors proportional to 4^-b, as the model's damage: the estimate is exact.
    for (std::size_t k = 0; k < widths.size(); ++k) CHECK(t.damage[i][k].kl == Approx(full.damage[i][k].kl).epsilon(1e-12));
  }
  // The measured row is kept bit for bit, the probe itself too.
  for (std::size_t k = 0; k < widths.size(); ++k) CHECK(t.damage[1][k].kl == part.damage[1][k].kl);
  CHECK(t.damage[2][1].kl == part.damage[2][0].kl);
  // The same numbers as the second-order table of the full measurement.
  auto err_full = err;
  err_full[1] = err[0];
  const auto so = es::second_order_sensitivity(full, err_full, 6);
  CHECK(t.damage[0][3].kl == so.damage[0][3].kl);
  // Bad inputs, by name.
  CHECK_THROWS_WITH(es::fill_from_probe(part, {8, 4, 2}, err, 6), Catch::Contains("probe width"));
  CHECK_THROWS_WITH(es::fill_from_probe(es::measure_sensitivity(fresh, {{4}, widths, {6}}), widths, err, 6),
                    Catch::Contains("not at the probe"));
  auto short_row = err;
  short_row[2].pop_back();
  CHECK_THROWS_WITH(es::fill_from_probe(part, widths, short_row, 6), Catch::Contains("expected 4"));
  auto negative = err;
  negative[0][2] = -1;
  CHECK_THROWS_WITH(es::fill_from_probe(part, widths, negative, 6), Catch::Contains("'errors'"));
  CHECK_THROWS_WITH(es::fill_from_probe(part, widths, {err[0]}, 6), Catch::Contains("1 rows"));
}

TEST_CASE("the greedy on the model: never worse than its start, within budget, bounded cost") {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 20; ++trial) {
    const int n = 3 + trial % 5;
    std::vector<std::int64_t> sizes;
    Model m;
    for (int i = 0; i < n; ++i) {
      sizes.push_back(1 + std::int64_t(40 * u(rng)));
      m.scale.push_back(std::exp(8 * u(rng)));
    }
    m.interaction = trial % 2 ? 50 * m.scale[0] : 0;
    const auto t = tensors_of(sizes);
    es::SensitivityCache cache(m, std::size_t(n));
    const auto table = es::measure_sensitivity(cache, {8, 6, 5, 4, 3, 2});
    const es::Budget b{es::BudgetKind::average_bits, 4.0 + trial % 3};
    const es::BitConfig start = es::uniform_configuration(t, {8, 6, 5, 4, 3, 2}, b);
    es::RefineOptions o;
    o.max_evaluations = 10;
    etk::SimpleThreadPool pool(1 + trial % 2);
    const std::size_t before = cache.evaluations();
    const es::RefineResult r = es::refine_on_model(cache, t, table, b, start, o, etk::Context{&pool});
    CHECK(r.start.kl == m(start).kl);
    CHECK(r.damage.kl == m(r.bits).kl);  // the measured damage of what is returned
    CHECK(r.damage.kl <= r.start.kl);
    CHECK(r.evaluations <= o.max_evaluations + 1);
    CHECK(cache.evaluations() - before <= r.evaluations);
    CHECK(es::average_bits(t, r.bits) <= b.value + 1e-9);
    for (std::size_t i = 0; i < r.bits.size(); ++i)
      CHECK(std::count(table.bits[i].begin(), table.bits[i].end(), r.bits[i]) == 1);
    // Scales spread over e^8: uniform is far from the optimum and a kept move lowers the damage.
    if (r.accepted > 0) CHECK(r.damage.kl < r.start.kl);
  }
  // A case where uniform is plainly suboptimal: one tensor 10^6 times more sensitive.
  Model m{{1e6, 1.0, 1.0, 1.0}};
  const auto t = tensors_of({10, 10, 10, 10});
  es::SensitivityCache cache(m, 4);
  const auto table = es::measure_sensitivity(cache, {8, 6, 5, 4, 3, 2});
  const es::Budget b{es::BudgetKind::average_bits, 5};
  const auto r = es::refine_on_model(cache, t, table, b, {5, 5, 5, 5});
  CHECK(r.accepted >= 1);
  CHECK(r.bits[0] > 5);
  CHECK(r.damage.kl < 0.1 * r.start.kl);
  // Bad inputs, by name.
  CHECK_THROWS_WITH(es::refine_on_model(cache, t, table, b, {6, 6, 6, 6}), Catch::Contains("above the budget"));
  CHECK_THROWS_WITH(es::refine_on_model(cache, t, table, b, {7, 5, 5, 3}), Catch::Contains("candidate list"));
  CHECK_THROWS_WITH(es::refine_on_model(cache, t, table, b, {5, 5, 5}), Catch::Contains("'start'"));
  es::RefineOptions bad;
  bad.batch = 0;
  CHECK_THROWS_WITH(es::refine_on_model(cache, t, table, b, {5, 5, 5, 5}, bad), Catch::Contains("batch"));
}

TEST_CASE("the choice on validation: the best, ties to the earlier, errors surface") {
  const std::vector<es::ValidationScore> s = {{3, 0.5}, {2, 0.9}, {2, 0.4}, {2, 0.4}, {7, 0.0}};
  auto pick = [&](const etk::Context& ctx) {
    return es::choose_on_validation(s.size(), [&](std::size_t i) { return s[i]; }, ctx);
  };
  etk::SimpleThreadPool pool(2);
  etk::Context two;
  two.pool = &pool;
  for (const etk::Context& ctx : {etk::Context{}, two}) {
    const auto c = pick(ctx);
    CHECK(c.best == 2);
    REQUIRE(c.scores.size() == s.size());
    for (std::size_t i = 0; i < s.size(); ++i) CHECK(c.scores[i].secondary == s[i].secondary);
  }
  // Uniform first, a candidate equal to it: uniform stays.
  CHECK(es::choose_on_validation(2, [](std::size_t) { return es::ValidationScore{1, 1}; }).best == 0);
  CHECK_THROWS_WITH(es::choose_on_validation(0, [](std::size_t) { return es::ValidationScore{}; }),
                    Catch::Contains("'candidates'"));
  CHECK_THROWS_WITH(
      es::choose_on_validation(3, [](std::size_t i) { return es::ValidationScore{i == 1 ? NAN : 0.0, 0}; }),
      Catch::Contains("candidate 1"));
  CHECK_THROWS_WITH(es::choose_on_validation(
                        4,
                        [](std::size_t i) -> es::ValidationScore {
                          if (i == 3) throw std::runtime_error("forward failed");
                          return {};
                        },
                        two),
                    Catch::Contains("forward failed"));
}

TEST_CASE("the choice on validation in parts: the same answer as whole scores, fewer evaluations") {
  std::mt19937 rng(16);
  etk::SimpleThreadPool pool(2);
  etk::Context two;
  two.pool = &pool;
  for (int trial = 0; trial < 40; ++trial) {
    const std::size_t n = 1 + rng() % 9, parts = 1 + rng() % 5;
    // Integer errors per part (ties likely), a KL-like secondary.
    std::vector<std::vector<es::ValidationScore>> part(n, std::vector<es::ValidationScore>(parts));
    for (auto& c : part)
      for (auto& p : c) p = {double(rng() % 4), double(rng() % 1000) / 1000.0};
    auto whole = [&](std::size_t i) {
      es::ValidationScore s;
      for (const auto& p : part[i]) {
        s.primary += p.primary;
        s.secondary += p.secondary;
      }
      return s;
    };
    const es::ValidationChoice ref = es::choose_on_validation(n, whole);
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (const etk::Context& ctx : {etk::Context{}, two}) {
      const auto got = es::choose_on_validation_in_parts(
          n, parts, [&](std::size_t i, std::size_t k) { return part[i][k]; }, order, ctx);
      CHECK(got.best == ref.best);
      CHECK(got.parts_scored[got.best] == parts);
      CHECK(got.scores[got.best].primary == ref.scores[ref.best].primary);
      CHECK(got.evaluations <= n * parts);
      std::size_t sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        sum += got.parts_scored[i];
        if (got.parts_scored[i] < parts) CHECK(got.scores[i].primary > ref.scores[ref.best].primary);
      }
      CHECK(sum == got.evaluations);
    }
  }
  // The expected best first: every other candidate stops after its first part.
  const auto c = es::choose_on_validation_in_parts(
      4, 3, [](std::size_t i, std::size_t) { return es::ValidationScore{i == 2 ? 0.0 : 5.0, 0}; }, {2, 0, 1, 3});
  CHECK(c.best == 2);
  CHECK(c.evaluations == 3 + 3);
  CHECK_THROWS_WITH(es::choose_on_validation_in_parts(
                        3, 2, [](std::size_t, std::size_t) { return es::ValidationScore{}; }, {0, 0, 1}),
                    Catch::Contains("'order'"));
  CHECK_THROWS_WITH(es::choose_on_validation_in_parts(
                        2, 2, [](std::size_t, std::size_t) { return es::ValidationScore{-1, 0}; }),
                    Catch::Contains("negative"));
  CHECK_THROWS_WITH(es::choose_on_validation_in_parts(
                        2, 0, [](std::size_t, std::size_t) { return es::ValidationScore{}; }),
                    Catch::Contains("'parts'"));
}
