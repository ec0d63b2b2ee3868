// Tests of the projections: each is the optimum of its own objective (the sum of the
// discarded eigenvalues), PCA wins on the activation, compression-aware on the next
// layer's output, and bad inputs are rejected.
#include <catch2/catch.hpp>
#include <etk/search/projection.hpp>

#include "support/search_util.hpp"

#include <limits>
#include <random>

namespace es = etk::search;
using etk::RowMatrixXf;

namespace {
RowMatrixXf activations(std::ptrdiff_t rows, std::ptrdiff_t channels, unsigned seed) {
  return search_test::activations(rows, channels, seed, false);
}
using search_test::random_matrix;
using search_test::view;
}  // namespace

TEST_CASE("PCA minimises the activation error, compression-aware the next layer's") {
  // A narrow next layer (C_out < C) and a wide one (C_out > C, like a classifier head).
  const std::ptrdiff_t out = GENERATE(16, 40);
  const std::ptrdiff_t C = 24, k = 6;
  const RowMatrixXf calib = activations(600, C, 9);
  const RowMatrixXf w = random_matrix(C, out, 10);
  const auto pca = es::pca_projection(view(calib), k);
  const auto ca = es::compression_aware_projection(view(calib), view(w), k);
  auto rebuild = [&](const es::LinearProjection& p) -> RowMatrixXf {
    return ((calib.rowwise() - p.mean) * p.encoder * p.decoder).rowwise() + p.mean;
  };
  const RowMatrixXf xp = rebuild(pca), xc = rebuild(ca);
  const double pca_x = (xp - calib).squaredNorm(), ca_x = (xc - calib).squaredNorm();
  const double pca_y = ((xp - calib) * w).squaredNorm(), ca_y = ((xc - calib) * w).squaredNorm();
  CHECK(pca_x < ca_x);
  CHECK(ca_y < pca_y);
  // Both are the optimum of their objective: the sum of the discarded eigenvalues (times
  // N). Computed in double, stored in float: relative error ~ C * 2^-24 per product.
  const Eigen::MatrixXd xd = calib.cast<double>();
  const Eigen::MatrixXd xcen = xd.rowwise() - xd.colwise().mean();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ex(xcen.transpose() * xcen);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ey((xcen * w.cast<double>()).transpose() * (xcen * w.cast<double>()));
  CHECK(pca_x == Approx(ex.eigenvalues().head(C - k).sum()).epsilon(1e-3));
  CHECK(ca_y == Approx(ey.eigenvalues().head(out - k).sum()).epsilon(1e-3));
  // With every dimension kept, PCA is lossless up to float rounding.
  const auto full = es::pca_projection(view(calib), C);
  CHECK(((((calib.rowwise() - full.mean) * full.encoder * full.decoder).rowwise() + full.mean) - calib)
            .cwiseAbs()
            .maxCoeff() < 1e-4f * calib.cwiseAbs().maxCoeff());
}


TEST_CASE("projection bad inputs are rejected by name") {
  const RowMatrixXf x = activations(20, 8, 1), w = random_matrix(8, 5, 2), w_bad = random_matrix(7, 5, 3);
  CHECK_THROWS_WITH(es::pca_projection(view(x), 0), Catch::Contains("'k'"));
  CHECK_THROWS_WITH(es::pca_projection(view(x), 9), Catch::Contains("'k'"));
  CHECK_THROWS_WITH(es::compression_aware_projection(view(x), view(w_bad), 3),
                    Catch::Contains("'next_weight'"));
  CHECK_THROWS_WITH(es::compression_aware_projection(view(x), view(w), 6), Catch::Contains("exceeds"));
  RowMatrixXf bad = x;
  bad(2, 2) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_WITH(es::pca_projection(view(bad), 2), Catch::Contains("'calib'"));
}
