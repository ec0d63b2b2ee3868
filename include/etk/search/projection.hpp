// etk/search/projection.hpp: linear dimension reduction of activations for compression.
//
// An activation row x (C channels) is sent as k < C coefficients z = (x - mean) E and
// rebuilt as x' = mean + z D (E: [C, k] encoder, D: [k, C] decoder). Two ways to choose
// them from calibration rows X:
//  * PCA: E = D^T = the top-k eigenvectors of the covariance of X. Minimises the
//    reconstruction error ||X - X'|| of the activation itself.
//  * compression-aware: what the network sees is the next linear layer's output y = x W
//    (W: [C, C_out]), so minimise ||(X - X') W|| instead. Its optimum is the best rank-k
//    approximation of the centred outputs Yc = Xc W. Everything stays C x C (C_out may be
//    large, e.g. a 6625-class head): with R = (W W^T)^(1/2), ||(X - X') W|| = ||(X - X') R||,
//    so with V_k the top-k eigenvectors of R Cov(X) R take E = R V_k and D = V_k^T R^+
//    (R^+ the pseudo-inverse); then (X - X') R = Xc R (I - V_k V_k^T), the best rank-k
//    error. This is the closed-form optimum of the linear objective that the learned
//    projection of the compression-aware papers trains towards; no training loop.
// Coefficients come out ordered by explained variance (of x, or of y), most first.
// Computed in double, stored in float.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE
namespace search {

struct LinearProjection {
  Eigen::RowVectorXf mean;  // [C]
  RowMatrixXf encoder;      // [C, k]
  RowMatrixXf decoder;      // [k, C]
  std::ptrdiff_t channels() const { return encoder.rows(); }
  std::ptrdiff_t reduced_dim() const { return encoder.cols(); }
};

namespace detail {
inline void check_calibration(ConstMatrixView<float> calib, std::ptrdiff_t k) {
  ETK_CHECK(calib.rows() > 0 && calib.cols() > 0,
            "argument 'calib' is empty ([" << calib.rows() << ", " << calib.cols() << "])");
  check::finite("calib", calib.data(), calib.rows(), calib.cols(), calib.outerStride());
  ETK_CHECK(k >= 1 && k <= calib.cols(), "argument 'k' must be in [1, " << calib.cols()
                                                                          << "], got " << k);
}

// Mean (as double) and covariance of the calibration rows.
inline void moments(ConstMatrixView<float> calib, Eigen::RowVectorXd& mean, Eigen::MatrixXd& cov) {
  const Eigen::MatrixXd x = calib.cast<double>();
  mean = x.colwise().mean();
  const Eigen::MatrixXd xc = x.rowwise() - mean;
  cov = xc.transpose() * xc / double(x.rows());
}

// The eigenvectors of a symmetric matrix for its k largest eigenvalues, largest first.
inline Eigen::MatrixXd top_eigenvectors(const Eigen::MatrixXd& s, std::ptrdiff_t k) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(s);
  const Eigen::MatrixXd& v = eig.eigenvectors();  // eigenvalues ascending
  Eigen::MatrixXd top(s.rows(), k);
  for (std::ptrdiff_t j = 0; j < k; ++j) top.col(j) = v.col(s.rows() - 1 - j);
  return top;
}
}  // namespace detail

inline LinearProjection pca_projection(ConstMatrixView<float> calib, std::ptrdiff_t k) {
  detail::check_calibration(calib, k);
  Eigen::RowVectorXd mean;
  Eigen::MatrixXd cov;
  detail::moments(calib, mean, cov);
  const Eigen::MatrixXd p = detail::top_eigenvectors(cov, k);
  LinearProjection r;
  r.mean = mean.cast<float>();
  r.encoder = p.cast<float>();
  r.decoder = p.transpose().cast<float>();
  return r;
}

// next_weight: [C, C_out], the next layer computes y = x W (+ bias, which cancels).
inline LinearProjection compression_aware_projection(ConstMatrixView<float> calib,
                                                     ConstMatrixView<float> next_weight,
                                                     std::ptrdiff_t k) {
  detail::check_calibration(calib, k);
  ETK_CHECK(next_weight.rows() == calib.cols() && next_weight.cols() > 0,
            "argument 'next_weight' must be [" << calib.cols() << ", C_out], got ["
                                               << next_weight.rows() << ", "
                                               << next_weight.cols() << "]");
  check::finite("next_weight", next_weight.data(), next_weight.rows(), next_weight.cols(),
                next_weight.outerStride());
  ETK_CHECK(k <= next_weight.cols(), "argument 'k' (" << k << ") exceeds the next layer's "
                                                      << next_weight.cols() << " outputs");
  Eigen::RowVectorXd mean;
  Eigen::MatrixXd cov;
  detail::moments(calib, mean, cov);
  const Eigen::MatrixXd w = next_weight.cast<double>();
  Eigen::MatrixXd gram = w * w.transpose();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eg(gram);
  // R and R^+ from the eigen-decomposition of W W^T; directions with an eigenvalue below
  // 1e-12 of the largest are the (numerical) null space of W and are dropped.
  const Eigen::VectorXd lambda = eg.eigenvalues().cwiseMax(0.0);
  const double floor = 1e-12 * std::max(lambda.maxCoeff(), 1e-300);
  Eigen::VectorXd root(lambda.size()), inv_root(lambda.size());
  for (Eigen::Index i = 0; i < lambda.size(); ++i) {
    root(i) = lambda(i) > floor ? std::sqrt(lambda(i)) : 0.0;
    inv_root(i) = lambda(i) > floor ? 1.0 / std::sqrt(lambda(i)) : 0.0;
  }
  const Eigen::MatrixXd& u = eg.eigenvectors();
  const Eigen::MatrixXd r_half = u * root.asDiagonal() * u.transpose();
  const Eigen::MatrixXd r_pinv = u * inv_root.asDiagonal() * u.transpose();
  const Eigen::MatrixXd v = detail::top_eigenvectors(r_half * cov * r_half, k);
  LinearProjection r;
  r.mean = mean.cast<float>();
  r.encoder = (r_half * v).cast<float>();
  r.decoder = (v.transpose() * r_pinv).cast<float>();
  return r;
}

}  // namespace search
ETK_END_NAMESPACE
