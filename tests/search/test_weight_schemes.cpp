// Tests of etk/search/weight_schemes.hpp: over awkward shapes and every stored width, the
// returned weights are the lower-error one of the two schemes computed directly, their
// error is their own, bias correction holds (multi-column) or is skipped (one column),
// 2 stored bits is uniform only, and bad input is refused.
#include <catch2/catch.hpp>
#include <etk/quant/observers.hpp>
#include <etk/quant/piecewise_linear.hpp>
#include <etk/quant/uniform.hpp>
#include <etk/search/weight_schemes.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "support/quant_util.hpp"

using quant_test::cview;

namespace {
etk::RowMatrixXf corrected(const etk::RowMatrixXf& w, const etk::RowMatrixXf& q) {
  return w.cols() > 1 ? etk::bias_correct(cview(w), cview(q), 0) : q;
}
}  // namespace

TEST_CASE("best_weight_scheme returns the lower-error scheme, bias corrected") {
  std::uint32_t seed = 7;
  int pwlq_wins = 0, uniform_wins = 0;
  for (std::ptrdiff_t rows : {1, 3, 7})
    for (std::ptrdiff_t cols : {1, 5, 33, 130})
      for (int stored = 2; stored <= 8; ++stored) {
        const etk::RowMatrixXf w =
            (seed % 2) ? quant_test::laplace(rows, cols, ++seed, 0.05f) : quant_test::gaussian(rows, cols, ++seed, 0.05f);
        const etk::search::CodedWeights got = etk::search::best_weight_scheme(cview(w), stored);
        const etk::CalibSpec spec{stored, true, false};
        const etk::RowMatrixXf u = corrected(w, etk::fake_quantize(cview(w), etk::per_channel(cview(w), 0, [&](etk::ConstMatrixView<float> r) {
                                                                      return etk::mse_params(r, spec, 32);
                                                                    })));
        const double eu = double((u - w).squaredNorm());
        double ep = std::numeric_limits<double>::infinity();
        etk::RowMatrixXf p;
        if (stored >= 3) {
          p = corrected(w, etk::pwlq_fake_quantize(cview(w), etk::pwlq_calibrate(cview(w), stored - 1, 0,
                                                                                 etk::PwlqBreakpoint::refined)));
          ep = double((p - w).squaredNorm());
        }
        INFO(rows << "x" << cols << " at " << stored << " bits: uniform " << eu << " PWLQ " << ep << ", got "
                  << got.scheme << " " << got.error);
        REQUIRE(got.w.rows() == rows);
        REQUIRE(got.w.cols() == cols);
        CHECK(got.error == double((got.w - w).squaredNorm()));
        const bool pwlq = ep < eu;
        CHECK(std::string(got.scheme) == (pwlq ? "PWLQ" : "uniform"));
        CHECK(got.w == (pwlq ? p : u));
        (pwlq ? pwlq_wins : uniform_wins)++;
        if (cols > 1)
          for (std::ptrdiff_t r = 0; r < rows; ++r) {
            const double mw = w.row(r).mean(), mq = got.w.row(r).mean();
            CHECK(std::fabs(mq - mw) <= 1e-5 * (1 + w.row(r).cwiseAbs().maxCoeff()));
          }
      }
  // Both schemes occur, so the comparison is exercised both ways.
  CHECK(pwlq_wins > 0);
  CHECK(uniform_wins > 0);
}

TEST_CASE("best_weight_scheme rejects bad input") {
  etk::RowMatrixXf w = quant_test::gaussian(3, 8, 2);
  CHECK_THROWS_AS(etk::search::best_weight_scheme(cview(w), 1), etk::invalid_argument);
  CHECK_THROWS_AS(etk::search::best_weight_scheme(cview(w), 9), etk::invalid_argument);
  w(1, 2) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(etk::search::best_weight_scheme(cview(w), 4), etk::invalid_argument);
}
