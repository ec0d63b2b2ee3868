// etk/search/weight_schemes.hpp: the scheme a mixed-precision search gives one weight
// tensor at a stored width, so that a search chooses schemes as well as widths.
//
// At `stored` bits per weight two schemes compete, per output channel (rows of w):
//  * uniform, symmetric, with the clip that minimises each channel's own MSE (a scan of
//    `clip_candidates` clips whose last is min-max, etk mse_params);
//  * PWLQ with a (stored - 1)-bit code plus its region bit (so the budget counts that
//    bit), breakpoint from `breakpoint` (by default the minimiser of the expected MSE
//    under each channel's own distribution refined by the actual MSE of 38 breakpoints
//    near it, instead of a scan of 202); only when stored - 1 >= 2.
// Both get the per-channel bias correction (every channel keeps the float channel's mean
// and standard deviation), except single-column tensors, which it would restore to float.
// The lower squared weight error ||Q(W) - W||^2 wins (uniform on a tie).
#pragma once

#include <utility>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/observers.hpp"
#include "etk/quant/piecewise_linear.hpp"
#include "etk/quant/uniform.hpp"

ETK_BEGIN_NAMESPACE
namespace search {

struct CodedWeights {
  RowMatrixXf w;             // the dequantized weights, bias corrected
  const char* scheme = "";   // "uniform" or "PWLQ"
  double error = 0;          // ||Q(W) - W||^2
};

inline CodedWeights best_weight_scheme(ConstMatrixView<float> w, int stored,
                                       PwlqBreakpoint breakpoint = PwlqBreakpoint::refined,
                                       int clip_candidates = 32) {
  check::bits_in_range("stored", stored, 2, 8);
  ETK_CHECK(w.rows() > 0 && w.cols() > 0, "argument 'w' is empty ([" << w.rows() << ", " << w.cols() << "])");
  const RowMatrixXf x = w;
  auto finish = [&](RowMatrixXf q, const char* scheme) {
    if (x.cols() > 1) q = bias_correct(w, matrix_view(static_cast<const float*>(q.data()), q.rows(), q.cols(), q.cols()), 0);
    const double e = static_cast<double>((q - x).squaredNorm());
    return CodedWeights{std::move(q), scheme, e};
  };
  const CalibSpec spec{stored, true, false};
  CodedWeights best = finish(fake_quantize(w, per_channel(w, 0, [&](ConstMatrixView<float> row) {
                                             return mse_params(row, spec, clip_candidates);
                                           })),
                             "uniform");
  if (stored - 1 >= 2) {
    CodedWeights p = finish(pwlq_fake_quantize(w, pwlq_calibrate(w, stored - 1, 0, breakpoint)), "PWLQ");
    if (p.error < best.error) best = std::move(p);
  }
  return best;
}

}  // namespace search
ETK_END_NAMESPACE
