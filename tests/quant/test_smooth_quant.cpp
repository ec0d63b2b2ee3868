// Tests of etk/quant/smooth_quant.hpp: folding leaves the float layer unchanged (the
// output of LayerNorm -> linear before and after folding agrees to float rounding), SQ-b
// lowers the quantized layer's error on data with outlier and asymmetric channels, more so
// than SmoothQuant without the shift, the alpha search picks the best alpha, bad input.
#include <catch2/catch.hpp>
#include <etk/quant/smooth_quant.hpp>

#include <cmath>
#include <limits>

#include "support/quant_util.hpp"

using quant_test::cview;

namespace {
// LayerNorm over each row with affine gamma, beta.
etk::RowMatrixXf layer_norm(const etk::RowMatrixXf& h, const std::vector<float>& gamma, const std::vector<float>& beta) {
  etk::RowMatrixXf out(h.rows(), h.cols());
  for (Eigen::Index r = 0; r < h.rows(); ++r) {
    const float mean = h.row(r).mean();
    const float var = (h.row(r).array() - mean).square().mean();
    for (Eigen::Index c = 0; c < h.cols(); ++c)
      out(r, c) = (h(r, c) - mean) / std::sqrt(var + 1e-5f) * gamma[static_cast<std::size_t>(c)] + beta[static_cast<std::size_t>(c)];
  }
  return out;
}

etk::RowMatrixXf linear(const etk::RowMatrixXf& x, const etk::RowMatrixXf& w, const std::vector<float>& b) {
  etk::RowMatrixXf y = x * w.transpose();
  for (Eigen::Index r = 0; r < y.rows(); ++r)
    for (Eigen::Index o = 0; o < y.cols(); ++o) y(r, o) += b[static_cast<std::size_t>(o)];
  return y;
}

// A LayerNorm whose affine creates a few outlier channels and per-channel offsets.
struct Layer {
  etk::RowMatrixXf h;  // LayerNorm input [tokens, C]
  std::vector<float> gamma, beta;
  etk::RowMatrixXf w;  // next linear [out, C]
  std::vector<float> bias;
};
Layer make_layer(std::uint32_t seed) {
  Layer l;
  const int c = 96, out = 64, tokens = 200;
  l.h = quant_test::gaussian(tokens, c, seed);
  std::mt19937 gen(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (int j = 0; j < c; ++j) {
    l.gamma.push_back(j % 16 == 0 ? 30.0f : 1.0f + 0.2f * n(gen));
    l.beta.push_back(j % 7 == 0 ? 6.0f : 0.3f * n(gen));
  }
  l.w = quant_test::gaussian(out, c, seed + 1, 0.05f);
  for (int o = 0; o < out; ++o) l.bias.push_back(0.1f * n(gen));
  return l;
}
}  // namespace

TEST_CASE("folding SQ-b into LayerNorm and the next linear leaves the float output unchanged") {
  const Layer l = make_layer(1);
  const etk::RowMatrixXf x = layer_norm(l.h, l.gamma, l.beta);
  const etk::RowMatrixXf y = linear(x, l.w, l.bias);
  for (bool shift : {true, false})
    for (float alpha : {0.0f, 0.5f, 0.8f, 1.0f}) {
      const etk::SmoothQuantFactors f = etk::smooth_quant_factors(cview(x), cview(l.w), alpha, shift);
      std::vector<float> gamma = l.gamma, beta = l.beta, bias = l.bias;
      etk::RowMatrixXf w = l.w;
      etk::fold_into_layernorm(f, gamma, beta);
      etk::fold_into_linear(f, quant_test::view(w), bias);
      const etk::RowMatrixXf y2 = linear(layer_norm(l.h, gamma, beta), w, bias);
      // Each output is a 96-term dot product of values up to ~40 * 0.2 plus a bias; the
      // reassociation (x - d)/s * (w s) + w d changes rounding by a few ulps of the
      // largest partial sums: bound by 96 * 2^-23 * max|x| * max|w| * 8.
      const double tol = 96 * std::ldexp(1.0, -23) * x.cwiseAbs().maxCoeff() * l.w.cwiseAbs().maxCoeff() * 8;
      INFO("alpha " << alpha << " shift " << shift);
      CHECK((y2 - y).cwiseAbs().maxCoeff() <= tol);
      if (shift) {
        // The smoothed activations are centred: max + min == 0 per channel.
        const etk::RowMatrixXf xs = layer_norm(l.h, gamma, beta);
        for (Eigen::Index j = 0; j < xs.cols(); ++j)
          CHECK(std::fabs(xs.col(j).maxCoeff() + xs.col(j).minCoeff()) <= 1e-4 * xs.col(j).cwiseAbs().maxCoeff() + 1e-6);
      }
    }
}

TEST_CASE("SQ-b lowers the quantized layer's error, more than plain SmoothQuant") {
  const Layer l = make_layer(2);
  const etk::RowMatrixXf x = layer_norm(l.h, l.gamma, l.beta);
  const std::size_t c = static_cast<std::size_t>(x.cols());
  const etk::SmoothQuantFactors none{std::vector<float>(c, 1.0f), std::vector<float>(c, 0.0f), 0.0f};
  for (int bits : {8, 6}) {
    const double e_none = etk::smooth_quant_error(cview(x), cview(l.w), none, bits, 8);
    const etk::SmoothQuantFactors sq = etk::smooth_quant_search(cview(x), cview(l.w), false, bits, 8);
    const etk::SmoothQuantFactors sqb = etk::smooth_quant_search(cview(x), cview(l.w), true, bits, 8);
    const double e_sq = etk::smooth_quant_error(cview(x), cview(l.w), sq, bits, 8);
    const double e_sqb = etk::smooth_quant_error(cview(x), cview(l.w), sqb, bits, 8);
    INFO("A" << bits << "W8 none " << e_none << " SQ " << e_sq << " (alpha " << sq.alpha << ") SQ-b " << e_sqb << " (alpha "
             << sqb.alpha << ")");
    CHECK(e_sq < e_none);
    CHECK(e_sqb < e_sq);
    // The search's alpha is the best of its grid.
    for (int i = 0; i <= 20; ++i)
      CHECK(e_sqb <= etk::smooth_quant_error(cview(x), cview(l.w), etk::smooth_quant_factors(cview(x), cview(l.w), i / 20.0f, true), bits, 8));
    WARN("A" << bits << "W8 output MSE: no smoothing " << e_none << ", SmoothQuant " << e_sq << ", SQ-b " << e_sqb);
  }
}

TEST_CASE("SmoothQuant rejects bad input") {
  const Layer l = make_layer(3);
  const etk::RowMatrixXf x = layer_norm(l.h, l.gamma, l.beta);
  CHECK_THROWS_WITH(etk::smooth_quant_factors(cview(x), cview(l.w), 1.5f), Catch::Contains("alpha"));
  const etk::RowMatrixXf w_bad(4, 5);
  CHECK_THROWS_WITH(etk::smooth_quant_factors(cview(x), cview(w_bad), 0.5f), Catch::Contains("input channels"));
  etk::RowMatrixXf xn = x;
  xn(3, 3) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_WITH(etk::smooth_quant_factors(cview(xn), cview(l.w), 0.5f), Catch::Contains("non-finite"));
  CHECK_THROWS_WITH(etk::smooth_quant_search(cview(x), cview(l.w), true, 1, 8), Catch::Contains("act_bits"));
  CHECK_THROWS_WITH(etk::smooth_quant_factors(etk::matrix_view(static_cast<const float*>(x.data()), 0, x.cols(), x.cols()),
                                              cview(l.w), 0.5f),
                    Catch::Contains("empty"));
  etk::SmoothQuantFactors f = etk::smooth_quant_factors(cview(x), cview(l.w), 0.5f);
  std::vector<float> gamma = l.gamma, beta(3);
  CHECK_THROWS_WITH(etk::fold_into_layernorm(f, gamma, beta), Catch::Contains("beta"));
  f.smooth[0] = 0.0f;
  beta = l.beta;
  CHECK_THROWS_WITH(etk::fold_into_layernorm(f, gamma, beta), Catch::Contains("smooth"));
}
