// etk/attention/softmax.hpp: numerically stable, vectorised softmax over rows.
//
// softmax_row(x, n) replaces x[0..n) by exp(x_j - max x) / sum_k exp(x_k - max x).
// Entries equal to -inf (masked logits) become exactly 0; a row that is entirely -inf
// becomes all zeros (a fully masked row has no distribution; zeros, never NaN). This is
// the helper every etk kernel that needs a softmax calls (dense attention's probability
// path, token pruning, LATTE's baselines). Inputs must not contain NaN or +inf.
//
// softmax_row_with_exp(x, n, exp_in_place) is the same softmax with the caller's
// exponential (a GQA-LUT table through lut::pwl_eval, say, to study its effect): the
// shifted logits x_j - max x (all <= 0) are handed to exp_in_place(x, n), which replaces
// each by its exponential; the row is then divided by its sum. Inputs must be finite, and
// the caller's values must be finite and >= 0 with a positive sum: anything else is an
// etk::invalid_argument, never a silent NaN row.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "etk/attention/detail/softmax_kernels.hpp"
#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE

namespace detail {
// Softmax of the row x * (mult / log2(e)), i.e. 2^((x_j - max) * mult) normalised:
// mult = log2(e) is the ordinary softmax, mult = 1 the softmax of logits already given
// in base 2. With a bias row (0 or -inf per entry, e.g. a padding mask), x + bias is
// used. Fully -inf rows become zeros.
inline void softmax_row_base2(float* x, std::ptrdiff_t n, float mult,
                              const float* bias = nullptr) {
  const float m = row_max(x, bias, n);
  if (!(m > -std::numeric_limits<float>::infinity())) {
    for (std::ptrdiff_t j = 0; j < n; ++j) x[j] = 0.0f;
    return;
  }
  // The max's own term is exactly 1: (m - m) * mult = 0, and exp2_nonpositive(0) is the
  // polynomial's constant 1 times 2^0. The other terms are >= 0, so sum >= 1 (tested on
  // every path) and 1 / sum cannot overflow.
  const float sum = exp2_shift_sum(x, n, m, mult);
  scale_row(x, n, 1.0f / sum);
}
}  // namespace detail

// In-place softmax of x[0..n).
inline void softmax_row(float* x, std::ptrdiff_t n) {
  detail::softmax_row_base2(x, n, detail::kLog2e);
}

// In-place softmax of x[0..n) with the caller's exponential (see the top of this file).
template <typename ExpInPlace>
void softmax_row_with_exp(float* x, std::ptrdiff_t n, ExpInPlace&& exp_in_place) {
  ETK_CHECK(n > 0, "argument 'n' must be > 0, got " << n);
  ETK_CHECK(x != nullptr, "argument 'x' is a null pointer");
  float m = x[0];
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    ETK_CHECK(std::isfinite(x[j]), "argument 'x': logit " << x[j] << " at " << j << " is not finite");
    m = std::max(m, x[j]);
  }
  for (std::ptrdiff_t j = 0; j < n; ++j) x[j] -= m;
  exp_in_place(x, n);
  float sum = 0.0f;  // sequential float sum: relative error <= (n - 1) u
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    ETK_CHECK(std::isfinite(x[j]) && x[j] >= 0.0f,
              "the caller's exponential returned " << x[j] << " at " << j << " (needs finite values >= 0)");
    sum += x[j];
  }
  ETK_CHECK(sum > 0.0f && std::isfinite(sum), "the caller's exponential returned a row whose sum is " << sum);
  const float inv = 1.0f / sum;
  for (std::ptrdiff_t j = 0; j < n; ++j) x[j] *= inv;
}

// In-place softmax of every row of a row-major matrix view.
inline void softmax_rows(MatrixView<float> x) {
  for (Eigen::Index r = 0; r < x.rows(); ++r) softmax_row(x.row(r).data(), x.cols());
}

ETK_END_NAMESPACE
