// Tests of LATTE's threshold calibration, soft mask (forward, analytic backward checked
// against finite differences) and the Adam trainer.
// etk:isa-variants (the calibration runs on the kernel's estimate paths)
#include <catch2/catch.hpp>
#include <etk/attention/latte_threshold.hpp>

#include <limits>

#include "support/latte_util.hpp"

using latte_test::Heads;
using latte_test::random_heads;

namespace {

// Queries that attend strongly to a few keys: q_i = a * (k_{i1} + k_{i2}) + noise, like
// the real model's concentrated heads.
void concentrate(Heads& Q, const Heads& K, float a, std::mt19937& rng) {
  std::uniform_int_distribution<std::ptrdiff_t> key(0, K.seq - 1);
  for (std::ptrdiff_t h = 0; h < Q.heads; ++h)
    for (std::ptrdiff_t i = 0; i < Q.seq; ++i) {
      const std::ptrdiff_t j1 = key(rng), j2 = key(rng);
      for (std::ptrdiff_t t = 0; t < Q.dim; ++t)
        Q.row(h, i)[t] += a * (K.row(h, j1)[t] + K.row(h, j2)[t]);
    }
}

// Independent margins of row i of head h (logit units), straight from the definition.
std::vector<double> margins(const Heads& Q, const Heads& K, std::ptrdiff_t h, std::ptrdiff_t i,
                            etk::LatteParams p) {
  p.theta = {0.0f};
  const auto sc = etk::detail::latte::head_scales(p, h, Q.view(), K.view());
  std::vector<long> e(static_cast<std::size_t>(K.seq), 0);
  for (std::ptrdiff_t j = 0; j < K.seq; ++j)
    for (std::ptrdiff_t t = 0; t < Q.dim; ++t)
      e[std::size_t(j)] += etk::detail::latte::nibble_hi(etk::detail::latte::quantize(Q.row(h, i)[t], 1.0f / sc.q)) *
                           etk::detail::latte::nibble_hi(etk::detail::latte::quantize(K.row(h, j)[t], 1.0f / sc.k));
  const long emax = *std::max_element(e.begin(), e.end());
  std::vector<double> mu;
  for (long x : e) mu.push_back(double(emax - x) * 256.0 * double(sc.logit));
  return mu;
}

struct Data {
  Heads Q, K, V;
  Data(std::ptrdiff_t h, std::ptrdiff_t n, std::ptrdiff_t d, std::mt19937& rng, float a = 0.6f)
      : Q(random_heads(h, n, d, rng, 0.5f)), K(random_heads(h, n, d, rng)), V(random_heads(h, n, d, rng)) {
    concentrate(Q, K, a, rng);
  }
  etk::LatteSample sample() const { return {Q.view(), K.view(), V.view()}; }
};

}  // namespace

TEST_CASE("keep-ratio calibration: the smallest theta keeping the target share") {
  std::mt19937 rng(21);
  Data a(3, 70, 15, rng), b(3, 45, 15, rng);
  const std::vector<etk::LatteSample> samples{a.sample(), b.sample()};
  etk::LatteParams base;
  for (double r : {0.5, 0.25, 0.15, 0.1, 1.0}) {
    const auto theta = etk::latte_calibrate_keep_ratio(samples, base, r);
    REQUIRE(theta.size() == 3);
    for (std::size_t h = 0; h < 3; ++h) {
      auto kept_at = [&](float t) {
        std::int64_t kept = 0, total = 0;
        for (const Data* x : {&a, &b})
          for (std::ptrdiff_t i = 0; i < x->Q.seq; ++i)
            for (double mu : margins(x->Q, x->K, std::ptrdiff_t(h), i, base)) {
              total += 1;
              kept += mu <= double(t);
            }
        return std::make_pair(kept, total);
      };
      const auto at = kept_at(theta[h]);
      REQUIRE(double(at.first) >= r * double(at.second) - 1e-9);
      if (theta[h] > 0.0f) {  // one float lower keeps less than the target
        const auto below = kept_at(std::nextafter(theta[h], 0.0f));
        REQUIRE(double(below.first) < r * double(below.second));
      }
      // The kernel agrees with the calibration on the same samples.
      etk::LatteParams p = base;
      p.theta.assign(3, theta[h]);
      Heads O(3, a.Q.seq, a.V.dim);
      etk::LatteStats st;
      etk::latte_attention(a.Q.view(), a.K.view(), a.V.view(), O.mview(), p, &st);
      std::int64_t kept_a = 0;
      for (std::ptrdiff_t i = 0; i < a.Q.seq; ++i)
        for (double mu : margins(a.Q, a.K, std::ptrdiff_t(h), i, base)) kept_a += mu <= double(theta[h]);
      REQUIRE(st.kept[h] == kept_a);
    }
  }
}

TEST_CASE("error-budget calibration: dropped mass within epsilon, one step lower exceeds it") {
  std::mt19937 rng(22);
  Data a(2, 60, 16, rng, 0.8f);
  const std::vector<etk::LatteSample> samples{a.sample()};
  etk::LatteParams base;
  for (double eps : {0.001, 0.01, 0.05}) {
    const auto theta = etk::latte_calibrate_error_budget(samples, base, eps);
    for (std::size_t h = 0; h < 2; ++h) {
      auto dropped_at = [&](double t) {
        double mass = 0;
        for (std::ptrdiff_t i = 0; i < a.Q.seq; ++i) {
          const auto mu = margins(a.Q, a.K, std::ptrdiff_t(h), i, base);
          std::vector<double> pr;
          etk::detail::latte::KeySet all;
          all.count = a.K.seq;
          etk::detail::latte::dense_probs_row(samples[0], std::ptrdiff_t(h), i, a.K.seq, all,
                                      1.0 / std::sqrt(16.0), pr);
          for (std::size_t j = 0; j < mu.size(); ++j) mass += mu[j] > t ? pr[j] : 0.0;
        }
        return mass / double(a.Q.seq);
      };
      REQUIRE(dropped_at(theta[h]) <= eps);
      if (theta[h] > 0.0f) REQUIRE(dropped_at(std::nextafter(theta[h], 0.0f)) > eps);
    }
  }
}

TEST_CASE("calibration under a key padding mask sees only the real keys") {
  // Keys [30, 45) padded (with large garbage): both calibrations must give the thresholds
  // of the same samples cut to their 30 real keys.
  std::mt19937 rng(27);
  Data a(2, 45, 16, rng);
  const std::ptrdiff_t real = 30;
  for (std::ptrdiff_t h = 0; h < 2; ++h)
    for (std::ptrdiff_t j = real; j < 45; ++j)
      for (std::ptrdiff_t t = 0; t < 16; ++t) a.K.row(h, j)[t] = 50.0f;
  std::vector<std::uint8_t> pad(45, 0);
  for (std::ptrdiff_t j = real; j < 45; ++j) pad[std::size_t(j)] = 1;
  etk::LatteParams padded;
  padded.attention.key_padding = {pad.data(), 45};
  const std::vector<etk::LatteSample> full{a.sample()};
  const etk::HeadsView<const float> kcut(a.K.data.data(), 2, real, 16, 16, 45 * 16),
      vcut(a.V.data.data(), 2, real, 16, 16, 45 * 16);
  const std::vector<etk::LatteSample> cut{{a.Q.view(), kcut, vcut}};
  for (double r : {0.2, 0.5})
    CHECK(etk::latte_calibrate_keep_ratio(full, padded, r) ==
          etk::latte_calibrate_keep_ratio(cut, {}, r));
  CHECK(etk::latte_calibrate_error_budget(full, padded, 0.01) ==
        etk::latte_calibrate_error_budget(cut, {}, 0.01));
}

TEST_CASE("soft mask: T -> 0 reproduces the hard kernel, theta = +inf dense attention") {
  std::mt19937 rng(23);
  Data a(2, 33, 15, rng);
  etk::LatteParams base;
  base.theta = {0.0f};
  const auto cal = etk::latte_calibrate_keep_ratio({a.sample()}, base, 0.3);
  std::vector<float> theta(2);
  double min_step = 1e30;
  for (std::ptrdiff_t h = 0; h < 2; ++h) {
    const auto sc = etk::detail::latte::head_scales(base, h, a.Q.view(), a.K.view());
    const double step = 256.0 * double(sc.logit);
    min_step = std::min(min_step, step);
    theta[std::size_t(h)] = float(cal[std::size_t(h)] + 0.5 * step);  // mid-grid: no margin near
  }
  Heads Os(2, 33, 15), Oh(2, 33, 15);
  etk::latte_soft_forward(a.sample(), Os.mview(), theta, min_step / 200.0, base);
  etk::LatteParams hard = base;
  hard.theta = theta;
  hard.scores = etk::LatteScores::fp32;
  etk::latte_attention(a.Q.view(), a.K.view(), a.V.view(), Oh.mview(), hard);
  // Soft masks are within e^-100 of 0/1; the hard kernel's fp32 path differs from the
  // double soft path by its float rounding: logits (d+1)*eps*|q||k|*scale (x2 on the
  // weights) and (2n + 8 + Lmax) eps on the softmax and P*V sums, times max|v|.
  const double eps = std::numeric_limits<float>::epsilon();
  const double qk = latte_test::max_row_norm(a.Q) * latte_test::max_row_norm(a.K) / std::sqrt(15.0);
  const double vmax = latte_test::max_abs(a.V.data);
  const double tol = (2.0 * 16.0 * qk + 2.0 * 33 + 8 + qk) * eps * vmax;
  for (std::size_t e = 0; e < Os.data.size(); ++e) REQUIRE(std::abs(Os.data[e] - Oh.data[e]) <= tol);
  // theta = +inf: all masks are 1, dense attention.
  std::vector<double> keep;
  etk::latte_soft_forward(a.sample(), Os.mview(), {std::numeric_limits<float>::infinity()}, 1.0,
                          base, &keep);
  REQUIRE(keep == std::vector<double>{1.0, 1.0});
  for (std::ptrdiff_t h = 0; h < 2; ++h)
    for (std::ptrdiff_t i = 0; i < 33; ++i) {
      const auto ref = latte_test::dense_row(a.Q, a.K, a.V, h, i, 1.0 / std::sqrt(15.0), 33);
      for (std::ptrdiff_t c = 0; c < 15; ++c)
        REQUIRE(std::abs(Os.row(h, i)[c] - ref[std::size_t(c)]) <= 2 * eps * vmax);
    }
}

TEST_CASE("analytic dL/dtheta, dL/dQ, dL/dK, dL/dV match central finite differences") {
  std::mt19937 rng(24);
  Data a(2, 19, 7, rng);
  etk::LatteParams base;
  base.q_scale = {0.03f, 0.03f};  // fixed scales: the estimate is piecewise constant in Q, K
  base.k_scale = {0.03f, 0.03f};
  const double T = 0.7;
  const std::vector<float> theta{1.5f, 3.0f};
  // L = sum c .* O with fixed random c.
  Heads C = random_heads(2, 19, 7, rng);
  auto loss = [&](std::ptrdiff_t h, double th) {
    std::vector<double> out;
    etk::detail::latte::soft_head(a.sample(), base, h, th, T, out, nullptr, nullptr, nullptr, nullptr);
    double l = 0;
    for (std::size_t e = 0; e < out.size(); ++e) l += out[e] * C.data[std::size_t(h) * out.size() + e];
    return l;
  };
  Heads dQ(2, 19, 7), dK(2, 19, 7), dV(2, 19, 7);
  std::vector<double> dtheta;
  etk::latte_soft_backward(a.sample(), C.view(), theta, T, dQ.mview(), dK.mview(), dV.mview(), dtheta,
                           base);
  // Central differences in double with step 1e-4: truncation ~ step^2 * |L'''| ~ 1e-8,
  // rounding ~ 1e-16 / 1e-4; the float-stored analytic gradients carry 1e-7 relative.
  for (std::ptrdiff_t h = 0; h < 2; ++h) {
    const double dl = 1e-4;
    const double fd = (loss(h, theta[std::size_t(h)] + dl) - loss(h, theta[std::size_t(h)] - dl)) / (2 * dl);
    REQUIRE(std::abs(dtheta[std::size_t(h)]) > 1e-3);  // not vacuous
    REQUIRE(std::abs(fd - dtheta[std::size_t(h)]) <= 1e-6 * (1.0 + std::abs(fd)));
  }
  // Inputs: perturb a few entries of Q, K, V.
  std::uniform_int_distribution<int> pick(0, 19 * 7 - 1);
  for (Heads* x : {&a.Q, &a.K, &a.V})
    for (int trial = 0; trial < 6; ++trial) {
      const std::size_t e = std::size_t(pick(rng));  // head 0
      const float keep = x->data[e];
      const float dl = 1e-3f;
      x->data[e] = keep + dl;
      const double up = loss(0, theta[0]);
      x->data[e] = keep - dl;
      const double down = loss(0, theta[0]);
      x->data[e] = keep;
      // The perturbed float values are exactly keep +- dl up to rounding of the sum.
      const double step = double(keep + dl) - double(keep - dl);
      const double fd = (up - down) / step;
      const Heads& g = x == &a.Q ? dQ : x == &a.K ? dK : dV;
      REQUIRE(std::abs(fd - g.data[e]) <= 1e-4 * (1.0 + std::abs(fd)));
    }
}

TEST_CASE("trainer: larger lambda filters more and errs more; lambda = 0 stays accurate") {
  std::mt19937 rng(25);
  Data a(2, 40, 15, rng), b(2, 40, 15, rng);
  const std::vector<etk::LatteSample> batches{a.sample(), b.sample()};
  etk::LatteParams base;
  etk::LatteTrainOptions opt;
  opt.steps = 40;
  std::vector<etk::LatteTrainResult> res;
  for (double lambda : {0.0, 0.05, 1.0}) {
    opt.lambda = lambda;
    res.push_back(etk::latte_train_thresholds(batches, base, opt));
  }
  REQUIRE(res[0].rel_error < 1e-3);
  REQUIRE(res[2].keep_ratio < res[1].keep_ratio);
  REQUIRE(res[1].keep_ratio < res[0].keep_ratio);
  REQUIRE(res[2].rel_error > res[0].rel_error);
  for (const auto& r : res)
    for (float t : r.theta) REQUIRE(t >= 0.0f);
  // The trained thresholds filter keys in the hard kernel.
  etk::LatteParams p = base;
  p.theta = res[2].theta;
  Heads O(2, 40, 15);
  etk::LatteStats st;
  etk::latte_attention(a.Q.view(), a.K.view(), a.V.view(), O.mview(), p, &st);
  REQUIRE(st.filtered_fraction() > 0.3);
}

TEST_CASE("threshold APIs reject bad input naming the argument") {
  std::mt19937 rng(26);
  Data a(2, 9, 5, rng);
  Heads K3 = random_heads(3, 9, 5, rng);
  etk::LatteParams base;
  const std::vector<etk::LatteSample> ok{a.sample()};
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double r : {0.0, -0.1, 1.5, nan})
    CHECK_THROWS_WITH(etk::latte_calibrate_keep_ratio(ok, base, r), Catch::Contains("keep_ratio"));
  for (double e : {-0.1, 1.0, nan})
    CHECK_THROWS_WITH(etk::latte_calibrate_error_budget(ok, base, e), Catch::Contains("epsilon"));
  CHECK_THROWS_WITH(etk::latte_calibrate_keep_ratio({}, base, 0.5), Catch::Contains("samples"));
  CHECK_THROWS_WITH(etk::latte_calibrate_keep_ratio({{a.Q.view(), K3.view(), a.V.view()}}, base, 0.5),
                    Catch::Contains("samples.K"));
  etk::LatteParams bad = base;
  bad.q_scale = {1.0f, -1.0f};
  CHECK_THROWS_WITH(etk::latte_calibrate_keep_ratio(ok, bad, 0.5), Catch::Contains("q_scale"));
  Heads Qn = a.Q;
  Qn.data[4] = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(etk::latte_calibrate_keep_ratio({{Qn.view(), a.K.view(), a.V.view()}}, base, 0.5),
                    Catch::Contains("samples.Q"));
  Heads O(2, 9, 5), dQ(2, 9, 5), dK(2, 9, 5), dV(2, 9, 5);
  std::vector<double> dth;
  CHECK_THROWS_WITH(etk::latte_soft_forward(a.sample(), O.mview(), {1.0f, 1.0f}, 0.0, base),
                    Catch::Contains("temperature"));
  CHECK_THROWS_WITH(etk::latte_soft_forward(a.sample(), O.mview(), {1.0f, -1.0f}, 1.0, base),
                    Catch::Contains("theta"));
  CHECK_THROWS_WITH(etk::latte_soft_forward(a.sample(), O.mview(), {1.0f, 1.0f, 1.0f}, 1.0, base),
                    Catch::Contains("theta"));
  Heads Ow(2, 9, 4);
  CHECK_THROWS_WITH(etk::latte_soft_forward(a.sample(), Ow.mview(), {1.0f}, 1.0, base),
                    Catch::Contains("'O'"));
  CHECK_THROWS_WITH(etk::latte_soft_backward(a.sample(), Ow.view(), {1.0f}, 1.0, dQ.mview(), dK.mview(),
                                             dV.mview(), dth, base),
                    Catch::Contains("'dO'"));
  CHECK_THROWS_WITH(etk::latte_soft_backward(a.sample(), O.view(), {1.0f}, 1.0, dQ.mview(), Ow.mview(),
                                             dV.mview(), dth, base),
                    Catch::Contains("'dK'"));
  etk::LatteTrainOptions opt;
  opt.lambda = -1;
  CHECK_THROWS_WITH(etk::latte_train_thresholds(ok, base, opt), Catch::Contains("opt.lambda"));
  opt = {};
  opt.temperature = 0;
  CHECK_THROWS_WITH(etk::latte_train_thresholds(ok, base, opt), Catch::Contains("opt.temperature"));
  opt = {};
  opt.learning_rate = nan;
  CHECK_THROWS_WITH(etk::latte_train_thresholds(ok, base, opt), Catch::Contains("opt.learning_rate"));
  opt = {};
  opt.theta_init = -1.0f;
  CHECK_THROWS_WITH(etk::latte_train_thresholds(ok, base, opt), Catch::Contains("opt.theta_init"));
}
