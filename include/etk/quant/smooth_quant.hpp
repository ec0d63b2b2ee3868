// etk/quant/smooth_quant.hpp: SmoothQuant with bias (MPTQ-ViT's SQ-b).
//
// A linear layer y = x W^T + b (W: [out, in]) whose input x comes from a LayerNorm (or any
// layer with a per-channel affine output). Per input channel j:
//     shift  d_j = (max x_j + min x_j) / 2          (SQ-b: removes the asymmetry)
//     smooth s_j = max|x_j - d_j|^alpha / max|W[:, j]|^(1 - alpha)
//     x'_j = (x_j - d_j) / s_j,   W'[:, j] = W[:, j] * s_j,   b' = b + W d
// so x' W'^T + b' = x W^T + b exactly in real arithmetic. The division is folded into the
// LayerNorm affine (gamma' = gamma / s, beta' = (beta - d) / s) and the multiplication and
// shift into the next linear layer, so the float model is unchanged and the activations
// reaching the quantizer are centred and balanced against the weights. alpha is searched
// per layer on calibration data (output MSE of the fake-quantized layer). Plain SmoothQuant
// is the same without the shift.
//
// OPT-m, the data-dependent search of the ratio between two scales, is part of the
// two-scaled quantizers' calibration (two_scaled.hpp: two_scale_calibrate, o2sf_calibrate).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/observers.hpp"
#include "etk/quant/uniform.hpp"

ETK_BEGIN_NAMESPACE

struct SmoothQuantFactors {
  std::vector<float> smooth;  // s_j > 0
  std::vector<float> shift;   // d_j (all zero for plain SmoothQuant)
  float alpha = 0.5f;
};

namespace detail::quant {
inline void check_sq_inputs(ConstMatrixView<float> x, ConstMatrixView<float> w) {
  ETK_CHECK(x.rows() > 0 && x.cols() > 0, "argument 'x' is empty");
  ETK_CHECK(w.rows() > 0 && w.cols() > 0, "argument 'w' is empty");
  check::equal("w", w.cols(), "cols (input channels, = x.cols())", x.cols());
  check::finite("x", x.data(), x.rows(), x.cols(), x.outerStride());
  check::finite("w", w.data(), w.rows(), w.cols(), w.outerStride());
}
inline void check_factors(const SmoothQuantFactors& f, std::ptrdiff_t channels) {
  check::equal("factors.smooth", static_cast<std::ptrdiff_t>(f.smooth.size()), "size", channels);
  check::equal("factors.shift", static_cast<std::ptrdiff_t>(f.shift.size()), "size", channels);
  for (float s : f.smooth) check::positive_finite("factors.smooth", s);
  for (float d : f.shift) ETK_CHECK(std::isfinite(d), "argument 'factors.shift' holds a non-finite value");
}
}  // namespace detail::quant

// Factors for a given alpha in [0, 1] from calibration activations x [tokens, in] and
// weights w [out, in].
inline SmoothQuantFactors smooth_quant_factors(ConstMatrixView<float> x, ConstMatrixView<float> w, float alpha,
                                               bool with_shift = true) {
  detail::quant::check_sq_inputs(x, w);
  ETK_CHECK(alpha >= 0 && alpha <= 1, "argument 'alpha' must be in [0, 1], got " << alpha);
  SmoothQuantFactors f;
  f.alpha = alpha;
  for (Eigen::Index j = 0; j < x.cols(); ++j) {
    const float lo = x.col(j).minCoeff(), hi = x.col(j).maxCoeff();
    const float d = with_shift ? (lo + hi) / 2 : 0.0f;
    const double ax = std::max(std::fabs(hi - d), std::fabs(lo - d));
    const double aw = w.col(j).cwiseAbs().maxCoeff();
    double s = (ax > 0 && aw > 0) ? std::pow(ax, alpha) / std::pow(aw, 1.0 - alpha) : 1.0;
    if (!(std::isfinite(s) && s >= 1e-30 && s <= 1e30)) s = 1.0;  // degenerate channel: leave it
    f.smooth.push_back(static_cast<float>(s));
    f.shift.push_back(d);
  }
  return f;
}

// gamma' = gamma / s, beta' = (beta - d) / s, in place (the caller's LayerNorm affine).
inline void fold_into_layernorm(const SmoothQuantFactors& f, std::vector<float>& gamma, std::vector<float>& beta) {
  detail::quant::check_factors(f, static_cast<std::ptrdiff_t>(gamma.size()));
  check::equal("beta", static_cast<std::ptrdiff_t>(beta.size()), "size", static_cast<std::ptrdiff_t>(gamma.size()));
  for (std::size_t j = 0; j < gamma.size(); ++j) {
    gamma[j] /= f.smooth[j];
    beta[j] = (beta[j] - f.shift[j]) / f.smooth[j];
  }
}

// W'[:, j] = W[:, j] * s_j and b' = b + W d (with the original W), in place.
inline void fold_into_linear(const SmoothQuantFactors& f, MatrixView<float> w, std::vector<float>& bias) {
  detail::quant::check_factors(f, w.cols());
  check::equal("bias", static_cast<std::ptrdiff_t>(bias.size()), "size (= w.rows())", w.rows());
  for (Eigen::Index o = 0; o < w.rows(); ++o) {
    double add = 0;
    for (Eigen::Index j = 0; j < w.cols(); ++j) {
      add += static_cast<double>(w(o, j)) * f.shift[static_cast<std::size_t>(j)];
      w(o, j) *= f.smooth[static_cast<std::size_t>(j)];
    }
    bias[static_cast<std::size_t>(o)] += static_cast<float>(add);
  }
}

// x' = (x - d) / s, for inputs that do not come from a foldable layer.
inline RowMatrixXf smooth_activations(ConstMatrixView<float> x, const SmoothQuantFactors& f) {
  detail::quant::check_factors(f, x.cols());
  RowMatrixXf out(x.rows(), x.cols());
  for (Eigen::Index j = 0; j < x.cols(); ++j)
    out.col(j) = (x.col(j).array() - f.shift[static_cast<std::size_t>(j)]) / f.smooth[static_cast<std::size_t>(j)];
  return out;
}

// Output MSE of the layer with activations fake-quantized per tensor (symmetric signed,
// min-max) and weights per output channel (symmetric signed, min-max), after smoothing.
inline double smooth_quant_error(ConstMatrixView<float> x, ConstMatrixView<float> w, const SmoothQuantFactors& f,
                                 int act_bits = 8, int weight_bits = 8) {
  detail::quant::check_sq_inputs(x, w);
  const RowMatrixXf xs = smooth_activations(x, f);
  RowMatrixXf ws = w;
  std::vector<float> bias(static_cast<std::size_t>(w.rows()), 0.0f);
  fold_into_linear(f, matrix_view(ws.data(), ws.rows(), ws.cols(), ws.cols()), bias);
  const QuantParams pa = QuantParams::symmetric(xs.cwiseAbs().maxCoeff(), act_bits);
  std::vector<QuantParams> pw;
  for (Eigen::Index o = 0; o < ws.rows(); ++o) pw.push_back(QuantParams::symmetric(ws.row(o).cwiseAbs().maxCoeff(), weight_bits));
  const RowMatrixXf xq = fake_quantize(matrix_view(static_cast<const float*>(xs.data()), xs.rows(), xs.cols(), xs.cols()), pa);
  const RowMatrixXf wq = fake_quantize(matrix_view(static_cast<const float*>(ws.data()), ws.rows(), ws.cols(), ws.cols()),
                                       QuantParams::stack(pw, 0));
  const Eigen::Map<const Eigen::VectorXf> b(bias.data(), static_cast<Eigen::Index>(bias.size()));
  const RowMatrixXf ref = x * w.transpose();
  RowMatrixXf got = xq * wq.transpose();
  got.rowwise() += b.transpose();
  return (got - ref).array().square().mean();
}

// alpha in {0, 0.05, ..., 1} minimising smooth_quant_error on calibration data.
inline SmoothQuantFactors smooth_quant_search(ConstMatrixView<float> x, ConstMatrixView<float> w, bool with_shift = true,
                                              int act_bits = 8, int weight_bits = 8) {
  check::bits_in_range("act_bits", act_bits, 2, 8);
  check::bits_in_range("weight_bits", weight_bits, 2, 8);
  SmoothQuantFactors best;
  double best_err = std::numeric_limits<double>::infinity();
  for (int i = 0; i <= 20; ++i) {
    const SmoothQuantFactors f = smooth_quant_factors(x, w, static_cast<float>(i) / 20, with_shift);
    const double e = smooth_quant_error(x, w, f, act_bits, weight_bits);
    if (e < best_err) {
      best_err = e;
      best = f;
    }
  }
  return best;
}

ETK_END_NAMESPACE
