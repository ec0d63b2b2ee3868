// Tests of etk/quant/piecewise_linear.hpp: code structure and per-region error bounds,
// PWLQ against uniform quantization with the best clipping (the bar: PWLQ wins by the
// margin its expected-error model predicts), closed-form breakpoints close to the searched
// ones, the expected-MSE breakpoint minimising its formula (and, refined, as good as the
// search), bias correction matching mean and std, bad input.
#include <catch2/catch.hpp>
#include <etk/quant/observers.hpp>
#include <etk/quant/piecewise_linear.hpp>

#include <cmath>
#include <limits>

#include "support/quant_util.hpp"

using quant_test::cview;

namespace {
double mse(const etk::RowMatrixXf& a, const etk::RowMatrixXf& b) {
  return (a - b).array().square().mean();
}

// ACIQ-model error of b-bit narrow-range uniform quantization clipped at alpha: clipping
// term for the prior + alpha^2 C(b-1) (L - 1 = 2^(b-1) - 1 steps per side, like a PWLQ
// region), minimised over alpha.
double model_uniform(int bits, etk::Prior prior, double spread, double m) {
  const double l = std::exp2(bits - 1) - 1;
  double best = std::numeric_limits<double>::infinity();
  for (int i = 1; i <= 20000; ++i) {
    const double a = m * i / 20000;
    // aciq_mse's rounding term is a^2 / (3 * 4^B); set B so that it equals a^2 / (12 l^2).
    const double clip = etk::aciq_mse(a, 30, prior, spread) - a * a / (3.0 * std::pow(4.0, 30));
    best = std::min(best, clip + a * a / (12 * l * l));
  }
  return best;
}

double model_pwlq(int bits, etk::Prior prior, double spread, double m) {
  double best = std::numeric_limits<double>::infinity();
  for (int i = 1; i < 20000; ++i) {
    const double p = m * i / 20000;
    const double cdf = prior == etk::Prior::gaussian ? 0.5 * (1 + std::erf(p / (std::sqrt(2.0) * spread)))
                                                     : 1 - 0.5 * std::exp(-p / spread);
    best = std::min(best, etk::pwlq_expected_mse(m, p, cdf, bits));
  }
  return best;
}
}  // namespace

TEST_CASE("PWLQ codes: sign-magnitude b-bit codes plus a region bit, half-step error per region") {
  {
    // A tail value at magnitude step 0 keeps its sign (-p, not +p).
    etk::RowMatrixXf x(1, 3);
    x << -4.0f, -1.05f, 1.05f;
    etk::PwlqParams p;
    p.bits = 4;
    p.range = {4.0f};
    p.breakpoint = {1.0f};
    const etk::RowMatrixXf d = etk::pwlq_fake_quantize(cview(x), p);
    CHECK(d(0, 0) == -4.0f);
    CHECK(d(0, 1) == -1.0f);
    CHECK(d(0, 2) == 1.0f);
  }
  const etk::RowMatrixXf w = quant_test::gaussian(7, 33, 4, 0.05f);
  for (int bits : {2, 3, 4, 8})
    for (int axis : {-1, 0, 1}) {
      const etk::PwlqParams p = etk::pwlq_calibrate(cview(w), bits, axis);
      const etk::PwlqCodes q = etk::pwlq_quantize(cview(w), p);
      const etk::RowMatrixXf d = etk::pwlq_dequantize(q, p);
      const std::int32_t l = p.levels();
      for (Eigen::Index r = 0; r < w.rows(); ++r)
        for (Eigen::Index c = 0; c < w.cols(); ++c) {
          const std::size_t ch = axis < 0 ? 0 : static_cast<std::size_t>(axis == 0 ? r : c);
          REQUIRE(q.code(r, c) < 2 * l);  // b bits
          const bool tail = std::fabs(w(r, c)) > p.breakpoint[ch];
          REQUIRE(q.region(r, c) == (tail ? 1 : 0));
          // Half the region's step, plus float rounding of the decode (a few ulps of m).
          const double step = tail ? p.tail_step(ch) : p.centre_step(ch);
          REQUIRE(std::fabs(w(r, c) - d(r, c)) <= step / 2 + 4e-7 * p.range[ch]);
        }
      CHECK((etk::pwlq_fake_quantize(cview(w), p).array() == d.array()).all());
    }
}

TEST_CASE("4-bit PWLQ beats uniform 4-bit with the best clipping, by the predicted margin") {
  // 1e5 samples; predicted ratio from the expected-error models of both quantizers with
  // the true prior and the sample's m, measured ratio from the actual errors.
  for (etk::Prior prior : {etk::Prior::gaussian, etk::Prior::laplace}) {
    const bool g = prior == etk::Prior::gaussian;
    const etk::RowMatrixXf w = g ? quant_test::gaussian(1, 100000, 21) : quant_test::laplace(1, 100000, 22);
    const double spread = 1.0;  // sigma = 1 or b = 1
    const double m = w.cwiseAbs().maxCoeff();
    const int bits = 4;
    const etk::PwlqParams p = etk::pwlq_calibrate(cview(w), bits);
    const double e_pwlq = mse(w, etk::pwlq_fake_quantize(cview(w), p));
    const double e_unif = etk::quantization_mse(cview(w), etk::mse_params(cview(w), etk::CalibSpec{bits, true}, 400));
    const double measured = e_pwlq / e_unif;
    const double predicted = model_pwlq(bits, prior, spread, m) / model_uniform(bits, prior, spread, m);
    INFO((g ? "gaussian" : "laplace") << ": m " << m << " breakpoint " << p.breakpoint[0] << " PWLQ mse " << e_pwlq
                                      << " uniform mse " << e_unif << " measured ratio " << measured
                                      << " predicted " << predicted);
    CHECK(measured < 1.0);
    // The models assume uniform rounding noise, which 7 steps per region only
    // approximate; agree within 15% of the ratio.
    CHECK(measured == Approx(predicted).epsilon(0.15));
    WARN((g ? "gaussian" : "laplace") << " 4-bit: PWLQ/uniform-best-clip MSE ratio measured " << measured
                                      << ", predicted " << predicted);
  }
}

TEST_CASE("closed-form breakpoints are close to the searched optimum on matching data") {
  for (etk::Prior prior : {etk::Prior::gaussian, etk::Prior::laplace}) {
    const bool g = prior == etk::Prior::gaussian;
    const etk::RowMatrixXf w = g ? quant_test::gaussian(1, 50000, 31, 0.02f) : quant_test::laplace(1, 50000, 32, 0.02f);
    const etk::PwlqParams searched = etk::pwlq_calibrate(cview(w), 4);
    const etk::PwlqParams closed =
        etk::pwlq_calibrate(cview(w), 4, -1, g ? etk::PwlqBreakpoint::gaussian : etk::PwlqBreakpoint::laplace);
    const double es = mse(w, etk::pwlq_fake_quantize(cview(w), searched));
    const double ec = mse(w, etk::pwlq_fake_quantize(cview(w), closed));
    INFO("searched p " << searched.breakpoint[0] << " closed p " << closed.breakpoint[0]);
    CHECK(es <= ec);
    CHECK(ec <= 1.1 * es);
  }
}

TEST_CASE("the expected-MSE breakpoint minimises E(p) under the data's distribution; refined, it matches the search") {
  for (etk::Prior prior : {etk::Prior::gaussian, etk::Prior::laplace})
    for (int bits : {2, 3, 4, 7}) {
      const bool g = prior == etk::Prior::gaussian;
      const etk::RowMatrixXf w = g ? quant_test::gaussian(3, 4001, 40 + bits) : quant_test::laplace(3, 4001, 50 + bits);
      const etk::PwlqParams expected = etk::pwlq_calibrate(cview(w), bits, 0, etk::PwlqBreakpoint::expected);
      const etk::PwlqParams searched = etk::pwlq_calibrate(cview(w), bits, 0);
      for (Eigen::Index c = 0; c < w.rows(); ++c) {
        const etk::RowMatrixXf row = w.row(c);
        const double m = row.cwiseAbs().maxCoeff();
        auto e_of = [&](double p) {
          // The symmetric CDF whose 2F - 1 is the fraction of |w| <= p.
          const double cdf = 0.5 * (1 + double((row.array().abs() <= float(p)).count()) / double(row.size()));
          return etk::pwlq_expected_mse(m, p, cdf, bits);
        };
        const double p = expected.breakpoint[size_t(c)];
        REQUIRE(p > 0);
        REQUIRE(p < m);
        double grid = std::numeric_limits<double>::infinity();
        for (int i = 1; i < 2000; ++i) grid = std::min(grid, e_of(m * i / 2000));
        INFO((g ? "gaussian" : "laplace") << " " << bits << " bits, channel " << c << ": p " << p << " of m " << m);
        // E at p is the formula's value on p's interval; at p itself one more magnitude
        // may count as centre, which moves E by at most m^2 / n times C.
        CHECK(e_of(p) <= grid + etk::pwlq_expected_mse(m, 0, 0.0, bits) / double(row.size()));
        const double ee = mse(row, etk::pwlq_fake_quantize(cview(row), etk::PwlqParams{bits, -1, {float(m)}, {float(p)}}));
        const double es = mse(row, etk::pwlq_fake_quantize(
                                       cview(row), etk::PwlqParams{bits, -1, {searched.range[size_t(c)]},
                                                                   {searched.breakpoint[size_t(c)]}}));
        CHECK(ee <= 1.15 * es);
        const etk::PwlqParams refined = etk::pwlq_calibrate(cview(row), bits, -1, etk::PwlqBreakpoint::refined);
        const double er = mse(row, etk::pwlq_fake_quantize(cview(row), refined));
        CHECK(er <= ee);
        CHECK(er <= 1.01 * es);
      }
    }
}

TEST_CASE("bias correction matches each channel's mean and standard deviation") {
  etk::RowMatrixXf w = quant_test::laplace(6, 200, 8, 0.1f);
  w.row(3).array() += 0.05f;  // a channel with a non-zero mean
  const etk::PwlqParams p = etk::pwlq_calibrate(cview(w), 3, 0);
  const etk::RowMatrixXf wq = etk::pwlq_fake_quantize(cview(w), p);
  std::vector<float> gain, offset;
  const etk::RowMatrixXf bc = etk::bias_correct(cview(w), cview(wq), 0, &gain, &offset);
  for (Eigen::Index r = 0; r < w.rows(); ++r) {
    const double mw = w.row(r).mean(), mb = bc.row(r).mean();
    const double sw = std::sqrt((w.row(r).array() - mw).square().mean());
    const double sb = std::sqrt((bc.row(r).array() - mb).square().mean());
    // Float sums of 200 values: relative error a few 1e-6.
    CHECK(mb == Approx(mw).margin(1e-5));
    CHECK(sb == Approx(sw).epsilon(1e-4));
    CHECK(bc(r, 7) == Approx(gain[static_cast<std::size_t>(r)] * wq(r, 7) + offset[static_cast<std::size_t>(r)]));
  }
}

TEST_CASE("PWLQ rejects bad input") {
  etk::RowMatrixXf w = quant_test::gaussian(3, 8, 2);
  for (int bits : {1, 9, 16}) CHECK_THROWS_WITH(etk::pwlq_calibrate(cview(w), bits), Catch::Contains("bits"));
  CHECK_THROWS_WITH(etk::pwlq_calibrate(cview(w), 4, 2), Catch::Contains("axis"));
  CHECK_THROWS_WITH(etk::pwlq_calibrate(cview(w), 4, 0, static_cast<etk::PwlqBreakpoint>(5)), Catch::Contains("'how'"));
  CHECK_THROWS_WITH(etk::pwlq_calibrate(cview(w), 4, 0, static_cast<etk::PwlqBreakpoint>(-1)), Catch::Contains("'how'"));
  CHECK_THROWS_WITH(etk::pwlq_calibrate(etk::matrix_view(static_cast<const float*>(w.data()), 0, 8, 8), 4),
                    Catch::Contains("empty"));
  etk::RowMatrixXf bad = w;
  bad(1, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(etk::pwlq_calibrate(cview(bad), 4), Catch::Contains("non-finite"));
  etk::PwlqParams p = etk::pwlq_calibrate(cview(w), 4, 0);
  p.breakpoint[1] = p.range[1] * 2;
  CHECK_THROWS_WITH(etk::pwlq_quantize(cview(w), p), Catch::Contains("breakpoint"));
  p = etk::pwlq_calibrate(cview(w), 4, 0);
  p.range.pop_back();
  CHECK_THROWS_WITH(etk::pwlq_quantize(cview(w), p), Catch::Contains("ranges"));
  etk::RowMatrixXf other(3, 7);
  CHECK_THROWS_WITH(etk::bias_correct(cview(w), cview(other), 0), Catch::Contains("'wq'"));
  // An all-zero channel quantizes to zeros.
  w.row(2).setZero();
  const etk::PwlqParams z = etk::pwlq_calibrate(cview(w), 4, 0);
  CHECK(etk::pwlq_fake_quantize(cview(w), z).row(2).isZero());
}
