// etk/pruning/reference/adaptive.hpp: the plain twin of keep_top_k (adaptive.hpp): sort
// every candidate by (score descending, index ascending), take the first ones.
#pragma once

#include <algorithm>

#include "etk/config.hpp"
#include "etk/pruning/adaptive.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

template <typename Derived>
KeepSet keep_top_k(const Eigen::MatrixBase<Derived>& scores, double keep_rate, const SelectionOptions& opt = {}) {
  const std::ptrdiff_t n = scores.size();
  const std::ptrdiff_t k = std::max<std::ptrdiff_t>(1, static_cast<std::ptrdiff_t>(std::llround(
                                                          std::ceil(keep_rate * double(n) * (1 - 1e-9)))));
  std::vector<bool> prot(static_cast<std::size_t>(n), false);
  for (TokenIndex p : opt.protected_indices) prot[static_cast<std::size_t>(p)] = true;
  KeepSet keep, cand;
  for (std::ptrdiff_t j = 0; j < n; ++j) (prot[j] ? keep : cand).push_back(static_cast<TokenIndex>(j));
  std::stable_sort(cand.begin(), cand.end(),
                   [&](TokenIndex a, TokenIndex b) { return scores[a] > scores[b]; });
  for (std::size_t i = 0; i < cand.size() && static_cast<std::ptrdiff_t>(keep.size()) < k; ++i)
    keep.push_back(cand[i]);
  std::sort(keep.begin(), keep.end());
  return keep;
}

}  // namespace reference
ETK_END_NAMESPACE
