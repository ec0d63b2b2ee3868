// Tests of the mixed-precision search: the exact dynamic programme against brute force on
// synthetic additive problems small enough to enumerate (greedy's gap is printed), the
// greedy path, the cache, the proxy, and every bad input the issue lists. etk:threads
#include <catch2/catch.hpp>
#include <etk/core/context.hpp>
#include <etk/search/mixed_precision.hpp>
#include <etk/search/reference/allocation.hpp>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

namespace es = etk::search;

namespace {

// A synthetic model whose damage is exactly additive over tensors: tensor i at b bits
// adds scale_i * 4^-b (+ a small random wobble so that greedy's local ratios can mislead
// it), float adds nothing.
struct AdditiveModel {
  std::vector<es::QuantTensor> tensors;
  std::vector<std::vector<double>> damage;  // [tensor][bits]

  AdditiveModel(int n, unsigned seed) : damage(n, std::vector<double>(17, 0.0)) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> size(1, 40);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (int i = 0; i < n; ++i) {
      es::QuantTensor t;
      t.name = "w" + std::to_string(i);
      t.elements = 24 * size(rng);
      t.macs = t.elements * (1 + size(rng));
      t.overhead_bytes = 4;
      tensors.push_back(t);
      const double scale = std::exp(6 * u(rng));
      for (int b = 1; b <= 16; ++b) damage[i][b] = scale * std::pow(4.0, -b) * (0.6 + 0.8 * u(rng));
    }
  }
  es::Damage operator()(const es::BitConfig& c) const {
    es::Damage d;
    for (std::size_t i = 0; i < c.size(); ++i)
      if (c[i] != es::kFloat) d.mse += damage[i][c[i]];
    d.kl = 0.5 * d.mse;
    return d;
  }
};

double brute_force_damage(const std::vector<es::QuantTensor>& tensors, const es::SensitivityTable& t,
                          const es::Budget& b, es::Metric m) {
  es::OptionTable o(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i)
    for (std::size_t k = 0; k < t.bits[i].size(); ++k)
      o[i].push_back({es::tensor_cost(tensors[i], b.kind, t.bits[i][k]),
                      es::metric_value(t.damage[i][k], m)});
  auto r = es::reference::brute_force_allocate(o, es::budget_limit(tensors, b));
  return r.budget_met ? r.damage : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace

TEST_CASE("exact search equals brute force on enumerable additive problems; greedy's gap") {
  const std::vector<int> cands = {8, 6, 5, 4, 3, 2};
  double worst_gap = 0;
  int greedy_optimal = 0, runs = 0;
  for (unsigned seed = 1; seed <= 6; ++seed) {
    AdditiveModel model(6, seed);  // 6^6 = 46656 configurations
    es::SensitivityCache cache(model, model.tensors.size());
    const auto table = es::measure_sensitivity(cache, cands);
    CHECK(cache.evaluations() == model.tensors.size() * cands.size());
    for (auto kind : {es::BudgetKind::average_bits, es::BudgetKind::model_bytes,
                      es::BudgetKind::bit_operations}) {
      const auto all8 = es::exact_mixed_precision(model.tensors, table, {kind, 1e18});
      const auto all2 = es::greedy_mixed_precision(model.tensors, table, {kind, 1e18});
      const double hi = all8.choice.cost;
      const double lo = all2.pareto.back().cost;
      for (double frac : {0.1, 0.3, 0.5, 0.7, 0.9}) {
        es::Budget b{kind, 0};
        const double limit = lo + frac * (hi - lo);
        b.value = kind == es::BudgetKind::average_bits
                      ? limit / (es::budget_limit(model.tensors, {kind, 1.0}))
                      : std::floor(limit);
        const auto exact = es::exact_mixed_precision(model.tensors, table, b);
        const auto greedy = es::greedy_mixed_precision(model.tensors, table, b);
        const double brute = brute_force_damage(model.tensors, table, b, es::Metric::kl);
        REQUIRE(exact.budget_met);
        REQUIRE(greedy.budget_met);
        CHECK(exact.exact);
        CHECK(exact.choice.cost <= es::budget_limit(model.tensors, b) * (1 + 1e-12));
        CHECK(greedy.choice.cost <= es::budget_limit(model.tensors, b) * (1 + 1e-12));
        // Same summed damage (sums of the same doubles in the same order: exact).
        CHECK(exact.choice.predicted == Approx(brute).epsilon(1e-12));
        CHECK(greedy.choice.predicted >= exact.choice.predicted * (1 - 1e-12));
        const double gap = greedy.choice.predicted / exact.choice.predicted - 1;
        worst_gap = std::max(worst_gap, gap);
        greedy_optimal += gap <= 1e-12;
        ++runs;
      }
    }
  }
  std::printf("greedy vs exact on %d synthetic budgets: optimal in %d, worst gap %.2f%%\n", runs,
              greedy_optimal, 100 * worst_gap);
}

TEST_CASE("greedy records the whole path from highest to lowest bits") {
  AdditiveModel model(5, 11);
  es::SensitivityCache cache(model, 5);
  const auto table = es::measure_sensitivity(cache, {2, 4, 8});  // any order: sorted inside
  CHECK(table.bits[0] == std::vector<int>{8, 4, 2});
  const auto r = es::greedy_mixed_precision(model.tensors, table, {es::BudgetKind::average_bits, 5.0});
  REQUIRE(r.pareto.size() == 1 + 5 * 2);
  CHECK(r.pareto.front().bits == es::BitConfig(5, 8));
  CHECK(r.pareto.back().bits == es::BitConfig(5, 2));
  for (std::size_t k = 1; k < r.pareto.size(); ++k) {
    CHECK(r.pareto[k].cost < r.pareto[k - 1].cost);
    CHECK(r.pareto[k].predicted >= r.pareto[k - 1].predicted);
  }
  CHECK(r.choice.average_bits <= 5.0);
  // A later budget reuses every cached evaluation.
  const auto again = es::measure_sensitivity(cache, {2, 4, 8});
  CHECK(cache.evaluations() == 15);
  CHECK(cache.hits() == 15);
  CHECK(again.damage[3][1].mse == table.damage[3][1].mse);
}

TEST_CASE("exact search with rounded cells stays feasible and near the optimum") {
  AdditiveModel model(6, 5);
  es::SensitivityCache cache(model, 6);
  const auto table = es::measure_sensitivity(cache, {8, 6, 4, 3, 2});
  const es::Budget b{es::BudgetKind::model_bytes, 0.55 * es::exact_mixed_precision(
                                                            model.tensors, table,
                                                            {es::BudgetKind::model_bytes, 1e18})
                                                            .choice.cost};
  es::ExactOptions few;
  few.max_cells = 64;
  const auto coarse = es::exact_mixed_precision(model.tensors, table, b, es::Metric::mse, few);
  const double brute = brute_force_damage(model.tensors, table, b, es::Metric::mse);
  CHECK_FALSE(coarse.exact);
  REQUIRE(coarse.budget_met);
  CHECK(coarse.choice.cost <= b.value);
  CHECK(coarse.choice.predicted >= brute * (1 - 1e-12));
  const auto fine = es::exact_mixed_precision(model.tensors, table, b, es::Metric::mse);
  CHECK(fine.exact);
  CHECK(fine.choice.predicted == Approx(brute).epsilon(1e-12));
}

TEST_CASE("verify runs the real forward pass of the chosen configuration") {
  AdditiveModel model(4, 3);
  int calls = 0;
  // Not additive: an interaction term the prediction cannot see.
  es::SensitivityCache cache(
      [&](const es::BitConfig& c) {
        ++calls;
        es::Damage d = model(c);
        if (c[0] != es::kFloat && c[1] != es::kFloat) d.kl += 1e-3 / (c[0] * c[1]);
        return d;
      },
      4);
  const auto table = es::measure_sensitivity(cache, {8, 4, 2});
  const auto r = es::greedy_mixed_precision(model.tensors, table, {es::BudgetKind::average_bits, 4});
  const int before = calls;
  const es::Damage measured = es::verify(cache, r);
  CHECK(calls == before + 1);
  CHECK(measured.kl == Approx(r.choice.predicted + 1e-3 / (r.choice.bits[0] * r.choice.bits[1])));
  es::verify(cache, r);
  CHECK(calls == before + 1);
}

TEST_CASE("a budget below the lowest bit-widths says so and returns the closest") {
  AdditiveModel model(4, 2);
  es::SensitivityCache cache(model, 4);
  const auto table = es::measure_sensitivity(cache, {8, 4, 3});
  const es::Budget b{es::BudgetKind::average_bits, 2.5};
  const auto g = es::greedy_mixed_precision(model.tensors, table, b);
  const auto e = es::exact_mixed_precision(model.tensors, table, b);
  for (const auto* r : {&g, &e}) {
    CHECK_FALSE(r->budget_met);
    CHECK_THAT(r->note, Catch::Contains("below the cheapest"));
    CHECK(r->choice.bits == es::BitConfig(4, 3));
    CHECK(r->choice.average_bits == 3.0);
  }
}

TEST_CASE("empty candidate lists and bad widths are rejected by name") {
  AdditiveModel model(3, 1);
  es::SensitivityCache cache(model, 3);
  CHECK_THROWS_WITH(es::measure_sensitivity(cache, std::vector<int>{}),
                    Catch::Contains("empty candidate list"));
  CHECK_THROWS_WITH(es::measure_sensitivity(cache, {{8, 4}, {}, {8}}),
                    Catch::Contains("tensor 1 has an empty candidate list"));
  CHECK_THROWS_WITH(es::measure_sensitivity(cache, std::vector<int>{8, 0}),
                    Catch::Contains("bit-width 0"));
  CHECK_THROWS_AS(es::measure_sensitivity(cache, std::vector<int>{17}), etk::invalid_argument);
  CHECK_THROWS_WITH(es::greedy_allocate({}, 1.0), Catch::Contains("'options' is empty"));
  CHECK_THROWS_WITH(es::exact_allocate({{{2, 0}}, {}}, 1.0),
                    Catch::Contains("item 1 has an empty candidate list"));
  CHECK_THROWS_WITH(es::greedy_allocate({{{1, 0}, {2, 0}}}, 1.0),
                    Catch::Contains("must not increase"));
  CHECK_THROWS_WITH(es::exact_allocate({{{1, std::nan("")}}}, 1.0), Catch::Contains("damage"));
  CHECK_THROWS_WITH(es::greedy_mixed_precision(model.tensors, es::SensitivityTable{},
                                               {es::BudgetKind::average_bits, 4}),
                    Catch::Contains("'table'"));
  CHECK_THROWS_WITH(cache.evaluate({8, 8}), Catch::Contains("'config'"));
}

TEST_CASE("an evaluator that throws or returns NaN: clear error, model left unchanged") {
  std::vector<float> weights = {0.3f, -1.7f, 2.2f, 0.05f};
  const std::vector<float> original = weights;
  const std::vector<float> float_out = {1.0f, 2.0f};
  bool fail = false, nan = false;
  es::ModelHooks hooks;
  hooks.apply = [&](const es::BitConfig& c) {
    for (std::size_t i = 0; i < c.size(); ++i)
      if (c[i] != es::kFloat) {
        const float step = 4.0f / float((1 << c[i]) - 1);
        weights[i] = step * std::nearbyint(weights[i] / step);
      }
  };
  hooks.forward = [&]() {
    if (fail) throw std::runtime_error("engine ran out of memory");
    double e = 0;
    for (std::size_t i = 0; i < weights.size(); ++i) e += double(weights[i] - original[i]) * (weights[i] - original[i]);
    return es::Damage{nan ? std::nan("") : e, 0.1 * e};
  };
  hooks.restore = [&]() { weights = original; };
  es::SensitivityCache cache(es::make_evaluator(hooks), 4);

  const es::Damage ok = cache.evaluate({3, 0, 0, 0});
  CHECK(ok.mse > 0);
  CHECK(weights == original);

  fail = true;
  CHECK_THROWS_WITH(cache.evaluate({0, 2, 0, 0}),
                    Catch::Contains("engine ran out of memory") && Catch::Contains("[0,2,0,0]"));
  CHECK_THROWS_AS(es::measure_sensitivity(cache, std::vector<int>{4, 2}), etk::invalid_argument);
  CHECK(weights == original);

  fail = false;
  nan = true;
  CHECK_THROWS_WITH(cache.evaluate({0, 0, 5, 0}), Catch::Contains("mse nan") &&
                                                      Catch::Contains("[0,0,5,0]"));
  CHECK(weights == original);
  // The refused answer was not cached: a healthy engine is asked again.
  nan = false;
  const std::size_t before = cache.evaluations();
  CHECK(cache.evaluate({0, 0, 5, 0}).mse > 0);
  CHECK(cache.evaluations() == before + 1);
  // The earlier good answer still comes from the cache.
  CHECK(cache.evaluate({3, 0, 0, 0}).mse == ok.mse);
}

TEST_CASE("proxy sensitivity: weighted quantization error, falls with bits") {
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> a(257), b(33);
  for (float& x : a) x = g(rng);
  for (float& x : b) x = 3 * g(rng);
  // Symmetric max-abs uniform quantize-dequantize, standing in for the engine's quantizer.
  es::Quantizer q = [](const float* in, float* out, std::size_t n, int bits) {
    float m = 0;
    for (std::size_t k = 0; k < n; ++k) m = std::max(m, std::fabs(in[k]));
    const float levels = float((1 << (bits - 1)) - 1);
    const float s = levels > 0 ? m / levels : m;
    for (std::size_t k = 0; k < n; ++k) out[k] = levels > 0 ? s * std::nearbyint(in[k] / s) : 0.0f;
  };
  const auto t = es::proxy_sensitivity({{a.data(), a.size(), 1.0}, {b.data(), b.size(), 2.0}},
                                       {{8, 6, 4, 3, 2}, {8, 4, 2}}, q);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t k = 1; k < t.bits[i].size(); ++k)
      CHECK(t.damage[i][k].mse > t.damage[i][k - 1].mse);
  // Importance scales the damage linearly.
  const auto t1 = es::proxy_sensitivity({{b.data(), b.size(), 1.0}}, {{8, 4, 2}}, q);
  CHECK(t.damage[1][2].mse == Approx(2 * t1.damage[0][2].mse).epsilon(1e-12));
  CHECK_THROWS_WITH(es::proxy_sensitivity({{a.data(), 0, 1.0}}, {{8}}, q), Catch::Contains("empty"));
  CHECK_THROWS_WITH(es::proxy_sensitivity({{a.data(), a.size(), -1.0}}, {{8}}, q),
                    Catch::Contains("importance"));
  es::Quantizer bad = [](const float*, float* out, std::size_t n, int) {
    for (std::size_t k = 0; k < n; ++k) out[k] = std::numeric_limits<float>::quiet_NaN();
  };
  CHECK_THROWS_WITH(es::proxy_sensitivity({{a.data(), a.size(), 1.0}}, {{8}}, bad),
                    Catch::Contains("non-finite"));
}

// The evaluations run as tasks on the caller's etk::Context pool (etk:threads: this case
// also runs under ThreadSanitizer): the table, the evaluation and hit counts, the error
// and what stays cached after it are the same with no pool, a sequential pool and pools
// of 2 and 3 threads. On main, measure_sensitivity created its own std::threads.
TEST_CASE("sensitivity on the caller's pool equals one thread; errors still surface", "[threads]") {
  AdditiveModel model(5, 21);
  es::SensitivityCache serial(model, 5);
  const auto a = es::measure_sensitivity(serial, {8, 5, 3, 2});
  etk::SequentialPool sequential;
  etk::SimpleThreadPool two(2), three(3);
  for (etk::ThreadPool* pool : {static_cast<etk::ThreadPool*>(nullptr), static_cast<etk::ThreadPool*>(&sequential),
                                static_cast<etk::ThreadPool*>(&two), static_cast<etk::ThreadPool*>(&three)}) {
    const etk::Context ctx{pool};
    INFO("pool concurrency " << ctx.concurrency());
    std::atomic<int> calls{0};
    es::SensitivityCache parallel(
        [&](const es::BitConfig& c) {
          ++calls;
          return model(c);
        },
        5);
    const auto b = es::measure_sensitivity(parallel, {8, 5, 3, 2}, ctx);
    CHECK(calls.load() == 20);
    CHECK(parallel.evaluations() == 20);
    CHECK(parallel.hits() == 0);
    REQUIRE(b.bits == a.bits);
    for (std::size_t i = 0; i < 5; ++i)
      for (std::size_t k = 0; k < 4; ++k) {
        CHECK(a.damage[i][k].kl == b.damage[i][k].kl);
        CHECK(a.damage[i][k].mse == b.damage[i][k].mse);
      }
    es::measure_sensitivity(parallel, {8, 5, 3, 2}, ctx);
    CHECK(parallel.evaluations() == 20);
    CHECK(parallel.hits() == 20);
    es::SensitivityCache failing(
        [&](const es::BitConfig& c) {
          if (c[2] == 3) throw std::runtime_error("bad kernel three");
          if (c[4] == 3) throw std::runtime_error("bad kernel five");
          return model(c);
        },
        5);
    // The first failing configuration in the table's order is reported, whichever thread
    // finished first.
    CHECK_THROWS_WITH(es::measure_sensitivity(failing, {8, 3}, ctx),
                      Catch::Contains("bad kernel three") && Catch::Contains("[0,0,3,0,0]"));
    // Everything that succeeded was cached: only the failing configurations are retried.
    CHECK(failing.evaluations() == 10);
    CHECK_THROWS(failing.evaluate({0, 0, 3, 0, 0}));
    CHECK(failing.evaluations() == 11);
    CHECK_THROWS_WITH(failing.prefetch({{0, 0, 0, 0, 3}, {0, 0, 3, 0, 0}}, ctx), Catch::Contains("bad kernel five"));
    CHECK(failing.evaluations() == 13);
  }
}
