// etk/pruning/ltp.hpp: Learned Token Pruning (Kim et al., KDD 2022).
//
// Inference (hard mask): at layer l keep token j iff s_j >= theta_l (a tie keeps the
// token), where s is the importance score of token_importance.hpp. Protected indices are
// always kept and at least one token always survives (selection.hpp). The LTP reference
// code prunes s_j < max(1e-5, theta_l); set LtpHardOptions::min_threshold = 1e-5 to
// reproduce that floor (default 0: a threshold of 0 keeps every token).
// Threshold schedule: theta_l rises linearly with depth from 0 at layer 0; users may also
// give any per-layer values (each >= 0), e.g. a learned offset added to the schedule.
// Training (soft mask): m_j = sigmoid((s_j - theta_l) / T) with analytic gradients, and the
// keep regulariser lambda * mean(m). The chain to the attention probabilities goes through
// token_importance_backward (token_importance.hpp).
// The calibrator that picks thresholds for a keep-ratio or FLOPs budget: ltp_calibrator.hpp
// (it includes this header; this one does not include it).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/span.hpp"
#include "etk/core/checks.hpp"
#include "etk/pruning/selection.hpp"
#include "etk/pruning/token_importance.hpp"

ETK_BEGIN_NAMESPACE

namespace detail::pruning {
inline void check_threshold(const char* name, double theta) {
  ETK_CHECK(std::isfinite(theta) && theta >= 0,
            "argument '" << name << "' must be a finite threshold >= 0, got " << theta);
}
}  // namespace detail::pruning

struct LtpHardOptions {
  SelectionOptions selection;
  double min_threshold = 0.0;  // effective threshold = max(min_threshold, theta)
};

// Hard mask: the ascending kept indices. `keep` is overwritten (its capacity reused).
template <typename Derived>
void ltp_keep(const Eigen::MatrixBase<Derived>& scores, double theta, KeepSet& keep,
              const LtpHardOptions& opt = {}) {
  using T = typename Derived::Scalar;
  detail::pruning::check_threshold("theta", theta);
  detail::pruning::check_threshold("min_threshold", opt.min_threshold);
  detail::pruning::check_scores("scores", scores);
  const std::vector<unsigned char> prot = detail::pruning::protected_flags(opt.selection, scores.size());
  const T t = static_cast<T>(std::max(theta, opt.min_threshold));
  keep.clear();
  for (Eigen::Index j = 0; j < scores.size(); ++j)
    if (scores[j] >= t || (!prot.empty() && prot[static_cast<std::size_t>(j)]))
      keep.push_back(static_cast<TokenIndex>(j));
  detail::pruning::apply_all_dropped(scores, opt.selection, "the LTP threshold", keep);
}

template <typename Derived>
KeepSet ltp_keep(const Eigen::MatrixBase<Derived>& scores, double theta, const LtpHardOptions& opt = {}) {
  KeepSet keep;
  ltp_keep(scores, theta, keep, opt);
  return keep;
}

// LTP's default schedule: theta_l = theta_final * l / L for l = 0..L-1 (the reference
// code's form: layer 0 never prunes, the last layer reaches theta_final * (L-1)/L).
// With reach_final = true: theta_l = theta_final * l / (L-1), so the last layer uses
// theta_final itself.
inline std::vector<float> ltp_linear_schedule(int num_layers, double theta_final, bool reach_final = false) {
  check::positive("num_layers", num_layers);
  detail::pruning::check_threshold("theta_final", theta_final);
  std::vector<float> theta(static_cast<std::size_t>(num_layers));
  const double den = reach_final ? std::max(1, num_layers - 1) : num_layers;
  for (int l = 0; l < num_layers; ++l) theta[l] = static_cast<float>(theta_final * l / den);
  return theta;
}

// Validates a user-given per-layer schedule (each value finite and >= 0).
inline void check_schedule(Span<float> thresholds) {
  ETK_CHECK(!thresholds.empty(), "argument 'thresholds' is empty (one value per layer expected)");
  for (std::ptrdiff_t l = 0; l < thresholds.size(); ++l)
    ETK_CHECK(std::isfinite(thresholds[l]) && thresholds[l] >= 0,
              "argument 'thresholds' holds " << thresholds[l] << " at layer " << l
                                             << "; each threshold must be finite and >= 0");
}

// ---- Soft mask (training) -----------------------------------------------------------

// m_j = sigmoid((s_j - theta) / T).
template <typename Derived, typename T = typename Derived::Scalar>
void ltp_soft_mask(const Eigen::MatrixBase<Derived>& scores, T theta, T temperature,
                   Eigen::Matrix<T, Eigen::Dynamic, 1>& mask) {
  detail::pruning::check_threshold("theta", theta);
  check::positive_finite("temperature", temperature);
  detail::pruning::check_scores("scores", scores);
  mask.resize(scores.size());
  for (Eigen::Index j = 0; j < scores.size(); ++j)
    mask[j] = T(1) / (T(1) + std::exp(-(scores[j] - theta) / temperature));
}

// Backward of the soft mask. With g = dL/dm and m the forward output:
//   dm_j/ds_j = m_j (1 - m_j) / T,   dm_j/dtheta = -m_j (1 - m_j) / T.
// Writes dL/ds into grad_scores and returns dL/dtheta. For dL/dA chain grad_scores
// through token_importance_backward. NaN/Inf in mask or grad_mask, and gradients that
// overflow, are rejected.
template <typename T>
T ltp_soft_mask_backward(const Eigen::Matrix<T, Eigen::Dynamic, 1>& mask,
                         const Eigen::Matrix<T, Eigen::Dynamic, 1>& grad_mask, T temperature,
                         Eigen::Matrix<T, Eigen::Dynamic, 1>& grad_scores) {
  check::positive_finite("temperature", temperature);
  check::equal("grad_mask", grad_mask.size(), "size", mask.size());
  check::finite("mask", mask);
  check::finite("grad_mask", grad_mask);
  grad_scores.resize(mask.size());
  T d_theta = 0;
  for (Eigen::Index j = 0; j < mask.size(); ++j) {
    const T ds = grad_mask[j] * mask[j] * (T(1) - mask[j]) / temperature;
    grad_scores[j] = ds;
    d_theta -= ds;
  }
  // Finite inputs can still overflow (a huge gradient over a tiny temperature): any
  // infinite ds makes d_theta infinite or NaN.
  ETK_CHECK(std::isfinite(static_cast<double>(d_theta)),
            "arguments 'grad_mask'/'temperature': the gradient overflows (dL/dtheta = " << d_theta
                << "); scale the gradient or raise the temperature");
  return d_theta;
}

// Keep regulariser R = lambda * mean(m); dR/dm_j = lambda / n (returned through grad_mask,
// which is overwritten). Returns R.
template <typename T>
T ltp_keep_regulariser(const Eigen::Matrix<T, Eigen::Dynamic, 1>& mask, T lambda,
                       Eigen::Matrix<T, Eigen::Dynamic, 1>& grad_mask) {
  ETK_CHECK(std::isfinite(lambda) && lambda >= 0, "argument 'lambda' must be finite and >= 0, got " << lambda);
  ETK_CHECK(mask.size() > 0, "argument 'mask' is empty");
  const T n = static_cast<T>(mask.size());
  grad_mask.setConstant(mask.size(), lambda / n);
  return lambda * mask.sum() / n;
}

ETK_END_NAMESPACE

