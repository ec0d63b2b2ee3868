// etk/pruning/reference/token_importance.hpp: the plain twin of token_importance.hpp.
//
// Straight loops in double: s_j = (1 / denominator) * sum over heads h and valid
// queries i of A[h, i, j]. Obviously correct; the fast path is tested against it.
#pragma once

#include <Eigen/Core>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/pruning/token_importance.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

template <typename T>
Eigen::Matrix<T, Eigen::Dynamic, 1> token_importance(HeadsView<const T> probs,
                                                     const ImportanceOptions& opt = {}) {
  std::vector<double> sum(static_cast<std::size_t>(probs.dim), 0.0);
  std::ptrdiff_t valid = 0;
  for (std::ptrdiff_t i = 0; i < probs.seq; ++i) {
    if (opt.query_valid && !opt.query_valid[i]) continue;
    ++valid;
    for (std::ptrdiff_t h = 0; h < probs.heads; ++h)
      for (std::ptrdiff_t j = 0; j < probs.dim; ++j) sum[j] += probs.row(h, i)[j];
  }
  const double queries =
      opt.normalization == ImportanceNormalization::padded_length ? double(probs.seq) : double(valid);
  Eigen::Matrix<T, Eigen::Dynamic, 1> s(probs.dim);
  for (std::ptrdiff_t j = 0; j < probs.dim; ++j)
    s[j] = static_cast<T>(sum[j] / (double(probs.heads) * queries));
  return s;
}

}  // namespace reference
ETK_END_NAMESPACE
