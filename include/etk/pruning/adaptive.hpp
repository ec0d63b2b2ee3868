// etk/pruning/adaptive.hpp: per-input (SaiT) and fixed-rate (top-k) token selection (the
// run-time policy over every mode is etk/pruning/policy.hpp, a client of this header).
//
//  * coverage (SaiT-style adaptive sparsity): keep the smallest set of tokens whose
//    importance covers `fraction` of the total, so the number kept adapts to the input.
//    Protected tokens are kept first and their importance counts; then tokens in order of
//    decreasing score until the covered sum reaches fraction * total (sums in double).
//    Tokens tied with the last one admitted are kept too (as LTP keeps ties), so the set
//    does not depend on index order. fraction = 1 keeps every token (no pruning).
//  * top_k (fixed keep rate, the baseline): keep k = ceil(rate * n) tokens (computed with a
//    1e-9 relative slack, so 0.3 * 10 gives 3), protected ones first, then the highest
//    scores; equal scores go to the lower index so exactly k are kept. rate = 1 keeps
//    every token, which makes the pruned model exactly the dense one.
// Fast path of top_k: std::nth_element (O(n)); its reference twin (reference/adaptive.hpp)
// sorts every candidate.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "etk/config.hpp"
#include "etk/pruning/detail/ranking.hpp"
#include "etk/pruning/ltp.hpp"
#include "etk/pruning/selection.hpp"

ETK_BEGIN_NAMESPACE

namespace detail::pruning {
inline void check_unit_interval(const char* name, double v) {
  ETK_CHECK(v > 0 && v <= 1, "argument '" << name << "' must be in (0, 1], got " << v);
}
inline std::ptrdiff_t keep_count(double rate, std::ptrdiff_t n) {
  const double k = std::ceil(rate * double(n) * (1 - 1e-9));
  return std::max<std::ptrdiff_t>(1, std::min<std::ptrdiff_t>(n, static_cast<std::ptrdiff_t>(k)));
}
// Splits 0..n-1 into kept protected indices and the remaining candidates.
inline void split_protected(const std::vector<unsigned char>& prot, std::ptrdiff_t n, KeepSet& keep,
                            KeepSet& candidates) {
  keep.clear();
  candidates.clear();
  for (std::ptrdiff_t j = 0; j < n; ++j)
    (!prot.empty() && prot[static_cast<std::size_t>(j)] ? keep : candidates).push_back(static_cast<TokenIndex>(j));
}
}  // namespace detail::pruning

// Top-k with k = ceil(keep_rate * n). `keep` receives the ascending kept indices.
template <typename Derived>
void keep_top_k(const Eigen::MatrixBase<Derived>& scores, double keep_rate, KeepSet& keep,
                const SelectionOptions& opt = {}) {
  detail::pruning::check_unit_interval("keep_rate", keep_rate);
  detail::pruning::check_scores("scores", scores);
  const std::ptrdiff_t n = scores.size();
  KeepSet cand;
  detail::pruning::split_protected(detail::pruning::protected_flags(opt, n), n, keep, cand);
  const std::ptrdiff_t extra = detail::pruning::keep_count(keep_rate, n) - static_cast<std::ptrdiff_t>(keep.size());
  if (extra > 0) {
    const auto by_score = detail::pruning::score_descending(scores.derived());
    if (extra < static_cast<std::ptrdiff_t>(cand.size()))
      std::nth_element(cand.begin(), cand.begin() + (extra - 1), cand.end(), by_score);
    // After nth_element the first `extra` candidates are exactly the top ones (the order
    // is total: score, then index).
    keep.insert(keep.end(), cand.begin(), cand.begin() + std::min<std::ptrdiff_t>(extra, cand.size()));
    std::sort(keep.begin(), keep.end());
  }
}

template <typename Derived>
KeepSet keep_top_k(const Eigen::MatrixBase<Derived>& scores, double keep_rate, const SelectionOptions& opt = {}) {
  KeepSet keep;
  keep_top_k(scores, keep_rate, keep, opt);
  return keep;
}

// SaiT coverage: the smallest set covering `fraction` of the total importance.
template <typename Derived>
void keep_coverage(const Eigen::MatrixBase<Derived>& scores, double fraction, KeepSet& keep,
                   const SelectionOptions& opt = {}) {
  detail::pruning::check_unit_interval("fraction", fraction);
  detail::pruning::check_scores("scores", scores);
  const std::ptrdiff_t n = scores.size();
  double total = 0;
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    ETK_CHECK(scores[j] >= 0, "argument 'scores' holds a negative importance (" << scores[j]
                                                                               << ") at token " << j);
    total += scores[j];
  }
  KeepSet cand;
  detail::pruning::split_protected(detail::pruning::protected_flags(opt, n), n, keep, cand);
  if (fraction == 1.0) {
    keep = all_kept(n);
    return;
  }
  double covered = 0;
  for (TokenIndex p : keep) covered += scores[p];
  const double goal = fraction * total;
  std::sort(cand.begin(), cand.end(), detail::pruning::score_descending(scores.derived()));
  std::size_t taken = 0;
  while (taken < cand.size() && covered < goal) covered += scores[cand[taken++]];
  while (taken > 0 && taken < cand.size() && scores[cand[taken]] == scores[cand[taken - 1]]) ++taken;
  keep.insert(keep.end(), cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(taken));
  std::sort(keep.begin(), keep.end());
  detail::pruning::apply_all_dropped(scores, opt, "the coverage target", keep);
}

template <typename Derived>
KeepSet keep_coverage(const Eigen::MatrixBase<Derived>& scores, double fraction, const SelectionOptions& opt = {}) {
  KeepSet keep;
  keep_coverage(scores, fraction, keep, opt);
  return keep;
}

ETK_END_NAMESPACE
