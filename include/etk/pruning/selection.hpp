// etk/pruning/selection.hpp: what every token-selection rule shares.
//
// A selection is the ascending list of kept token indices (`KeepSet`), the form that
// compaction (compact.hpp) consumes. LTP thresholds (ltp.hpp), SaiT coverage and top-k
// (adaptive.hpp) differ only in how they pick; the rules below are common to all:
//  * protected indices (a class token, special tokens) are always kept;
//  * at least one token survives: if a rule would drop every token, the policy in
//    `SelectionOptions::all_dropped` applies (keep the highest-scoring token, lowest index
//    on a tie; or report an error);
//  * scores must be finite (a NaN score is an error, never silently kept or dropped).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE

using TokenIndex = std::int32_t;
using KeepSet = std::vector<TokenIndex>;

enum class AllDropped {
  keep_best,  // keep the single highest-scoring token (documented default)
  error,      // throw etk::invalid_argument naming the argument
};

struct SelectionOptions {
  std::vector<TokenIndex> protected_indices;  // always kept; each in [0, n)
  AllDropped all_dropped = AllDropped::keep_best;
};

// 0, 1, ..., n-1: every token kept (the index map of an unpruned sequence).
inline KeepSet all_kept(std::ptrdiff_t n) {
  ETK_CHECK(n > 0 && n <= std::numeric_limits<TokenIndex>::max(),
            "argument 'n' must be in [1, INT32_MAX], got " << n);
  KeepSet k(static_cast<std::size_t>(n));
  for (std::ptrdiff_t j = 0; j < n; ++j) k[static_cast<std::size_t>(j)] = static_cast<TokenIndex>(j);
  return k;
}

namespace detail::pruning {

// Scores: non-empty, finite, at most INT32_MAX tokens.
template <typename Derived>
void check_scores(const char* name, const Eigen::MatrixBase<Derived>& s) {
  static_assert(Derived::ColsAtCompileTime == 1, "scores must be a column vector");
  ETK_CHECK(s.size() > 0, "argument '" << name << "' is empty (no tokens)");
  ETK_CHECK(s.size() <= std::numeric_limits<TokenIndex>::max(),
            "argument '" << name << "' has " << s.size() << " tokens, more than a TokenIndex holds");
  for (Eigen::Index j = 0; j < s.size(); ++j)
    ETK_CHECK(std::isfinite(static_cast<double>(s[j])),
              "argument '" << name << "' holds a non-finite score (" << s[j] << ") at token " << j);
}

// Protected indices: each in [0, n). Returns a per-token flag vector (empty if none).
inline std::vector<unsigned char> protected_flags(const SelectionOptions& opt, Eigen::Index n) {
  std::vector<unsigned char> flags;
  if (opt.protected_indices.empty()) return flags;
  flags.assign(static_cast<std::size_t>(n), 0);
  for (TokenIndex p : opt.protected_indices) {
    ETK_CHECK(p >= 0 && p < n, "argument 'protected_indices' holds " << p
                                   << ", outside [0, " << n << ")");
    flags[static_cast<std::size_t>(p)] = 1;
  }
  return flags;
}

// Applied when a rule kept nothing (only possible without protected indices).
template <typename Derived>
void apply_all_dropped(const Eigen::MatrixBase<Derived>& s,
                       const SelectionOptions& opt, const char* rule, KeepSet& keep) {
  if (!keep.empty()) return;
  ETK_CHECK(opt.all_dropped != AllDropped::error,
            "argument 'scores': " << rule << " would drop every one of the " << s.size()
                                  << " tokens (SelectionOptions::all_dropped is error)");
  Eigen::Index best = 0;
  for (Eigen::Index j = 1; j < s.size(); ++j)
    if (s[j] > s[best]) best = j;
  keep.push_back(static_cast<TokenIndex>(best));
}

}  // namespace detail::pruning

ETK_END_NAMESPACE
