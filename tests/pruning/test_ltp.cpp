// Tests of ltp.hpp and ltp_calibrator.hpp: hand-computable kept sets (ties kept,
// protected kept, at least one survivor), the schedule, the soft mask's analytic
// gradients against central finite differences, the regulariser, the calibrator, and
// every bad input.
#include <catch2/catch.hpp>
#include <etk/pruning/ltp.hpp>
#include <etk/pruning/ltp_calibrator.hpp>
#include <etk/pruning/reference/token_importance.hpp>
#include <support/pruning_util.hpp>

#include <cmath>
#include <limits>

using etk::KeepSet;
using etk::LtpHardOptions;

TEST_CASE("LTP hard mask on a hand-computed attention matrix") {
  // One head, 4 queries, 4 keys; column means are the scores.
  const std::vector<float> a = {0.25f, 0.25f, 0.5f, 0.0f,  0.5f, 0.0f, 0.5f, 0.0f,
                                0.25f, 0.0f,  0.5f, 0.25f, 0.0f, 0.25f, 0.5f, 0.25f};
  const Eigen::VectorXf s = etk::token_importance(etk::HeadsView<const float>(a.data(), 1, 4, 4));
  // column sums 1.0, 0.5, 2.0, 0.5 -> scores 0.25, 0.125, 0.5, 0.125
  CHECK(etk::ltp_keep(s, 0.2) == KeepSet{0, 2});
  CHECK(etk::ltp_keep(s, 0.125) == KeepSet{0, 1, 2, 3});  // ties with theta are kept
  CHECK(etk::ltp_keep(s, 0.25) == KeepSet{0, 2});         // tie at 0.25 kept
  CHECK(etk::ltp_keep(s, 0.0) == KeepSet{0, 1, 2, 3});
  LtpHardOptions o;
  o.selection.protected_indices = {3};
  CHECK(etk::ltp_keep(s, 0.3, o) == KeepSet{2, 3});  // protected 3 kept despite 0.125
  o.selection.protected_indices = {1, 3};
  CHECK(etk::ltp_keep(s, 0.9, o) == KeepSet{1, 3});  // nothing passes; protected survive
  // Nothing passes and nothing protected: the highest-scoring token survives.
  CHECK(etk::ltp_keep(s, 0.9) == KeepSet{2});
  // The reference code's floor max(1e-5, theta): a token at exactly 0 goes at theta 0.
  Eigen::VectorXf z(3);
  z << 0.5f, 0.0f, 0.5f;
  CHECK(etk::ltp_keep(z, 0.0) == KeepSet{0, 1, 2});
  LtpHardOptions floor;
  floor.min_threshold = 1e-5;
  CHECK(etk::ltp_keep(z, 0.0, floor) == KeepSet{0, 2});
  // Equal best scores: the lowest index is the survivor.
  CHECK(etk::ltp_keep(z, 0.9) == KeepSet{0});
}

TEST_CASE("LTP hard mask rejects bad input") {
  Eigen::VectorXf s(4);
  s << 0.1f, 0.2f, 0.3f, 0.4f;
  CHECK_THROWS_WITH(etk::ltp_keep(s, -0.01), Catch::Contains("'theta'"));
  CHECK_THROWS_WITH(etk::ltp_keep(s, std::nan("")), Catch::Contains("'theta'"));
  LtpHardOptions o;
  o.selection.protected_indices = {4};
  CHECK_THROWS_WITH(etk::ltp_keep(s, 0.1, o), Catch::Contains("'protected_indices'") && Catch::Contains("4"));
  o.selection.protected_indices = {-1};
  CHECK_THROWS_WITH(etk::ltp_keep(s, 0.1, o), Catch::Contains("'protected_indices'"));
  LtpHardOptions strict;
  strict.selection.all_dropped = etk::AllDropped::error;
  CHECK_THROWS_WITH(etk::ltp_keep(s, 0.5, strict), Catch::Contains("drop every one"));
  CHECK(etk::ltp_keep(s, 0.4, strict) == KeepSet{3});
  s[2] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(etk::ltp_keep(s, 0.1), Catch::Contains("'scores'") && Catch::Contains("token 2"));
  CHECK_THROWS_WITH(etk::ltp_keep(Eigen::VectorXf(), 0.1), Catch::Contains("empty"));
  LtpHardOptions badfloor;
  badfloor.min_threshold = -1;
  s[2] = 0.3f;
  CHECK_THROWS_WITH(etk::ltp_keep(s, 0.1, badfloor), Catch::Contains("'min_threshold'"));
}

TEST_CASE("LTP threshold schedule") {
  const auto t = etk::ltp_linear_schedule(4, 0.02);
  REQUIRE(t.size() == 4);
  CHECK(t[0] == 0.0f);
  CHECK(t[1] == Approx(0.005).epsilon(1e-6));
  CHECK(t[3] == Approx(0.015).epsilon(1e-6));
  const auto f = etk::ltp_linear_schedule(5, 0.02, true);
  CHECK(f[0] == 0.0f);
  CHECK(f[4] == 0.02f);
  CHECK(etk::ltp_linear_schedule(1, 0.3, true)[0] == 0.0f);
  CHECK_THROWS_WITH(etk::ltp_linear_schedule(0, 0.1), Catch::Contains("'num_layers'"));
  CHECK_THROWS_WITH(etk::ltp_linear_schedule(3, -0.1), Catch::Contains("'theta_final'"));
  CHECK_NOTHROW(etk::check_schedule({0.0f, 0.1f}));
  CHECK_THROWS_WITH(etk::check_schedule({0.0f, -0.1f}), Catch::Contains("layer 1"));
  CHECK_THROWS_WITH(etk::check_schedule({}), Catch::Contains("'thresholds'"));
}

namespace {
// L(A, theta) = sum_j c_j m_j + lambda * mean(m), m = sigmoid((s(A) - theta) / T).
struct SoftLoss {
  std::ptrdiff_t H, Q, K;
  Eigen::VectorXd c;
  double T, lambda;
  etk::ImportanceOptions opt;
  double operator()(const Eigen::VectorXd& a, double theta) const {
    const Eigen::VectorXd s = etk::reference::token_importance(etk::HeadsView<const double>(a.data(), H, Q, K), opt);
    Eigen::VectorXd m, gm;
    etk::ltp_soft_mask(s, theta, T, m);
    return c.dot(m) + etk::ltp_keep_regulariser(m, lambda, gm);
  }
};
}  // namespace

TEST_CASE("soft-mask gradients match central finite differences") {
  std::mt19937 rng(21);
  const std::ptrdiff_t H = 2, Q = 5, K = 6;
  const auto pr = pruning_test::random_probs(H, Q, K, rng, 1.0f);
  const unsigned char valid[5] = {1, 1, 0, 1, 1};
  for (auto norm : {etk::ImportanceNormalization::valid_queries, etk::ImportanceNormalization::padded_length}) {
    SoftLoss f{H, Q, K, Eigen::VectorXd::Random(K), 0.05, 0.1, {}};
    f.opt.normalization = norm;
    f.opt.query_valid = valid;
    Eigen::VectorXd a(H * Q * K);
    for (Eigen::Index k = 0; k < a.size(); ++k) a[k] = pr.data[static_cast<std::size_t>(k)];
    const double theta = 0.15;
    // Analytic gradients.
    const Eigen::VectorXd s = etk::reference::token_importance(etk::HeadsView<const double>(a.data(), H, Q, K), f.opt);
    Eigen::VectorXd m, g_reg, g_s, g_a(a.size());
    etk::ltp_soft_mask(s, theta, f.T, m);
    const double r = etk::ltp_keep_regulariser(m, f.lambda, g_reg);
    CHECK(r == Approx(f.lambda * m.mean()).epsilon(1e-14));
    const Eigen::VectorXd g_m = f.c + g_reg;
    const double d_theta = etk::ltp_soft_mask_backward(m, g_m, f.T, g_s);
    etk::token_importance_backward(g_s, etk::HeadsView<double>(g_a.data(), H, Q, K), f.opt);
    // Central differences, step h. Truncation: |f'''| <= sum|g_m| * w^3 * max|sigma'''| / T^3
    // with max|sigma'''| = 1/8 and w = ds/dx (1 for theta, <= 1/(H*valid) for A), error
    // h^2/6 * |f'''|. Rounding: each loss value is a sum of K terms of size <= sum|g_m|,
    // accurate to about 8 K eps sum|g_m|; the quotient amplifies it by 1/h.
    const double h = 1e-6, eps = std::numeric_limits<double>::epsilon();
    const double cm = g_m.cwiseAbs().sum();
    const double rounding = 8.0 * K * eps * cm / h;
    auto tol = [&](double w) { return h * h / 6 * cm * w * w * w / 8 / (f.T * f.T * f.T) + rounding; };
    const double fd_theta = (f(a, theta + h) - f(a, theta - h)) / (2 * h);
    CHECK(std::abs(fd_theta - d_theta) <= tol(1.0));
    CHECK(std::abs(d_theta) > 0.1);  // a real gradient, not a trivially small one
    for (Eigen::Index k = 0; k < a.size(); ++k) {
      Eigen::VectorXd ap = a, am = a;
      ap[k] += h;
      am[k] -= h;
      const double fd = (f(ap, theta) - f(am, theta)) / (2 * h);
      INFO("entry " << k);
      CHECK(std::abs(fd - g_a[k]) <= tol(1.0 / (H * 4.0)));
    }
  }
}

TEST_CASE("soft mask values and bad input") {
  Eigen::VectorXd s(3), m;
  s << 0.1, 0.2, 0.3;
  etk::ltp_soft_mask(s, 0.2, 0.01, m);
  CHECK(m[1] == 0.5);
  CHECK(m[0] == Approx(1.0 / (1.0 + std::exp(10.0))));
  CHECK_THROWS_WITH(etk::ltp_soft_mask(s, -0.1, 0.01, m), Catch::Contains("'theta'"));
  CHECK_THROWS_WITH(etk::ltp_soft_mask(s, 0.1, 0.0, m), Catch::Contains("'temperature'"));
  Eigen::VectorXd g;
  CHECK_THROWS_WITH(etk::ltp_keep_regulariser(m, -1.0, g), Catch::Contains("'lambda'"));
  CHECK_THROWS_WITH(etk::ltp_soft_mask_backward(m, Eigen::VectorXd(2), 0.01, g), Catch::Contains("'grad_mask'"));
  s[0] = std::nan("");
  CHECK_THROWS_WITH(etk::ltp_soft_mask(s, 0.1, 0.01, m), Catch::Contains("'scores'"));
}

TEST_CASE("replayed token counts cascade through the layers") {
  // 3 layers, 5 tokens. Layer scores chosen by hand.
  std::vector<Eigen::VectorXf> sc(3, Eigen::VectorXf(5));
  sc[0] << 0.3f, 0.1f, 0.2f, 0.3f, 0.1f;
  sc[1] << 0.4f, 0.9f, 0.2f, 0.1f, 0.3f;  // token 1 already pruned at layer 0
  sc[2] << 0.5f, 0.0f, 0.3f, 0.2f, 0.0f;
  const etk::TokenCounts c = etk::ltp_replay_counts(sc, {0.0f, 0.15f, 0.25f});
  // layer0: all 5 enter; theta 0 keeps all. layer1: 5 enter; keep >= .15 -> {0,1,2,4}.
  // layer2: 4 enter.
  CHECK(c.per_layer == std::vector<std::ptrdiff_t>{5, 5, 4});
  const etk::TokenCounts d = etk::ltp_replay_counts(sc, {0.15f, 0.25f, 0.0f});
  // layer0 keeps {0,2,3}; layer1 among them keeps >= .25 -> {0}; layer 2: 1 enters.
  CHECK(d.per_layer == std::vector<std::ptrdiff_t>{5, 3, 1});
  LtpHardOptions o;
  o.selection.protected_indices = {4};
  CHECK(etk::ltp_replay_counts(sc, {0.15f, 0.25f, 0.0f}, o).per_layer == std::vector<std::ptrdiff_t>{5, 4, 2});
  CHECK(etk::budget_achieved({d}, etk::LtpBudgetKind::keep_ratio) == Approx(9.0 / 15.0));
  const etk::LayerCostModel quad{0.0, 1.0};
  CHECK(etk::budget_achieved({d}, etk::LtpBudgetKind::flops_ratio, quad) == Approx(35.0 / 75.0));
  CHECK_THROWS_WITH(etk::ltp_replay_counts(sc, {0.1f, 0.2f}), Catch::Contains("'scores'"));
  o.selection.protected_indices = {5};
  CHECK_THROWS_WITH(etk::ltp_replay_counts(sc, {0.15f, 0.25f, 0.0f}, o), Catch::Contains("'protected_indices'"));
}

TEST_CASE("the calibrator meets a keep-ratio and a FLOPs budget") {
  std::mt19937 rng(99);
  const int L = 6;
  // Recorded dense scores of 8 calibration inputs of 40..64 tokens.
  std::vector<std::vector<Eigen::VectorXf>> recorded;
  for (int input = 0; input < 8; ++input) {
    const std::ptrdiff_t n = 40 + 3 * input;
    std::vector<Eigen::VectorXf> layers;
    for (int l = 0; l < L; ++l) {
      const auto pr = pruning_test::random_probs(2, n, n, rng, 1.5f);
      layers.push_back(etk::token_importance(pr.view()));
    }
    recorded.push_back(layers);
  }
  auto measure = [&](const std::vector<float>& th) {
    std::vector<etk::TokenCounts> out;
    for (const auto& r : recorded) out.push_back(etk::ltp_replay_counts(r, th));
    return out;
  };
  etk::LtpCalibratorOptions opt;
  opt.tolerance = 0.01;
  for (double target : {0.9, 0.7, 0.5}) {
    const auto cal = etk::calibrate_ltp(L, {etk::LtpBudgetKind::keep_ratio, target}, measure, opt);
    INFO("target " << target);
    CHECK(cal.achieved <= target);
    CHECK(cal.achieved >= target - 0.01);
    CHECK(cal.achieved == Approx(etk::budget_achieved(measure(cal.thresholds), etk::LtpBudgetKind::keep_ratio)));
    CHECK(cal.thresholds[0] == 0.0f);
    CHECK(cal.thresholds[L - 1] > cal.thresholds[1]);
  }
  opt.cost = etk::LayerCostModel::transformer(64, 256);
  const auto fl = etk::calibrate_ltp(L, {etk::LtpBudgetKind::flops_ratio, 0.6}, measure, opt);
  CHECK(fl.achieved <= 0.6);
  CHECK(fl.achieved >= 0.59);
  // A target of 1 is met without pruning.
  CHECK(etk::calibrate_ltp(L, {etk::LtpBudgetKind::keep_ratio, 1.0}, measure).theta_final == 0.0);
  CHECK_THROWS_WITH(etk::calibrate_ltp(L, {etk::LtpBudgetKind::keep_ratio, 0.0}, measure), Catch::Contains("'budget.target'"));
  CHECK_THROWS_WITH(etk::calibrate_ltp(L, {etk::LtpBudgetKind::keep_ratio, 1.5}, measure), Catch::Contains("'budget.target'"));
}

TEST_CASE("ltp_soft_mask_backward rejects NaN/Inf inputs and gradients that overflow") {
  Eigen::VectorXd m(3), g(3), gs;
  m << 0.2, 0.5, 0.9;
  g << 1.0, -2.0, 0.5;
  CHECK_NOTHROW(etk::ltp_soft_mask_backward(m, g, 0.1, gs));
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    Eigen::VectorXd gb = g, mb = m;
    gb[1] = bad;
    mb[2] = bad;
    CHECK_THROWS_WITH(etk::ltp_soft_mask_backward(m, gb, 0.1, gs), Catch::Contains("'grad_mask'"));
    CHECK_THROWS_WITH(etk::ltp_soft_mask_backward(mb, g, 0.1, gs), Catch::Contains("'mask'"));
  }
  Eigen::VectorXd huge = Eigen::VectorXd::Constant(3, std::numeric_limits<double>::max());
  CHECK_THROWS_WITH(etk::ltp_soft_mask_backward(m, huge, 1e-300, gs), Catch::Contains("overflows"));
  Eigen::VectorXf mf = m.cast<float>(), gf = g.cast<float>(), gsf;
  gf[0] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(etk::ltp_soft_mask_backward(mf, gf, 0.1f, gsf), Catch::Contains("'grad_mask'"));
}
