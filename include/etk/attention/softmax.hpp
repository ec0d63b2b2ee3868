// etk/attention/softmax.hpp: numerically stable, vectorised softmax over rows.
//
// softmax_row(x, n) replaces x[0..n) by exp(x_j - max x) / sum_k exp(x_k - max x).
// Entries equal to -inf (masked logits) become exactly 0; a row that is entirely -inf
// becomes all zeros (a fully masked row has no distribution; zeros, never NaN). This is
// the helper every etk kernel that needs a softmax calls (dense attention's probability
// path, token pruning, LATTE's baselines). Inputs must not contain NaN or +inf.
#pragma once

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
  // The max's own term is 2^(fma(m, mult, -m*mult)): 2 to the rounding error of m*mult,
  // through the vectorised exp2 polynomial, so about 1 but not always >= 1 (down to
  // 1 - 5.3e-6 over x in (0, 100), tested); the sum is never near 0.
  const float sum = exp2_shift_sum(x, n, m, mult);
  scale_row(x, n, 1.0f / sum);
}
}  // namespace detail

// In-place softmax of x[0..n).
inline void softmax_row(float* x, std::ptrdiff_t n) {
  detail::softmax_row_base2(x, n, detail::kLog2e);
}

// In-place softmax of every row of a row-major matrix view.
inline void softmax_rows(MatrixView<float> x) {
  for (Eigen::Index r = 0; r < x.rows(); ++r) softmax_row(x.row(r).data(), x.cols());
}

ETK_END_NAMESPACE
