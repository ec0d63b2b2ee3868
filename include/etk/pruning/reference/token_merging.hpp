// etk/pruning/reference/token_merging.hpp: the plain twin of tome_merge: cosine
// similarities by double loops, then the same match-and-merge step.
#pragma once

#include "etk/config.hpp"
#include "etk/pruning/token_merging.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

// Also returns the similarity of each A token's best match (for tie-margin checks).
template <typename T>
std::vector<double> tome_merge(ConstMatrixView<T> metric, ConstMatrixView<T> x,
                               const Eigen::Matrix<T, Eigen::Dynamic, 1>& size, const MergeOptions& opt,
                               MergeResult<T>& out) {
  detail::pruning::check_merge_inputs(metric, x, size, opt);
  const std::ptrdiff_t n = x.rows(), n_a = (n + 1) / 2, n_b = n / 2, c = metric.cols();
  const std::vector<unsigned char> prot = detail::pruning::merge_protected(opt, n);
  auto cosine = [&](std::ptrdiff_t i, std::ptrdiff_t j) {
    double dot = 0, ni = 0, nj = 0;
    for (std::ptrdiff_t k = 0; k < c; ++k) {
      dot += double(metric(i, k)) * double(metric(j, k));
      ni += double(metric(i, k)) * double(metric(i, k));
      nj += double(metric(j, k)) * double(metric(j, k));
    }
    return (ni > 0 && nj > 0) ? dot / std::sqrt(ni * nj) : 0.0;
  };
  const double ninf = -std::numeric_limits<double>::infinity();
  std::vector<TokenIndex> best_b(static_cast<std::size_t>(n_a), 0);
  std::vector<double> best_sim(static_cast<std::size_t>(n_a), ninf);
  for (std::ptrdiff_t a = 0; a < n_a; ++a) {
    if (prot[2 * a]) continue;
    for (std::ptrdiff_t b = 0; b < n_b; ++b) {
      if (prot[2 * b + 1]) continue;
      const double s = cosine(2 * a, 2 * b + 1);
      if (s > best_sim[a]) {
        best_sim[a] = s;
        best_b[a] = static_cast<TokenIndex>(b);
      }
    }
  }
  detail::pruning::merge_from_matches(x, size, best_b, best_sim, opt.r, out);
  return best_sim;
}

}  // namespace reference
ETK_END_NAMESPACE
