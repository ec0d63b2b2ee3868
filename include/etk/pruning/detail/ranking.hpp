// etk/pruning/detail/ranking.hpp: the order every ranking rule uses: higher score first,
// the lower index first on equal scores (so results never depend on sort stability).
#pragma once

#include "etk/config.hpp"
#include "etk/pruning/selection.hpp"

ETK_BEGIN_NAMESPACE
namespace detail::pruning {

template <typename Scores>
struct ScoreDescending {
  const Scores& s;
  bool operator()(TokenIndex a, TokenIndex b) const {
    return s[a] > s[b] || (s[a] == s[b] && a < b);
  }
};
template <typename Scores>
ScoreDescending<Scores> score_descending(const Scores& s) { return {s}; }

}  // namespace detail::pruning
ETK_END_NAMESPACE
