// etk/pruning/token_merging.hpp: ToMe-style token merging (Bolya et al., ICLR 2023).
//
// Instead of dropping tokens, merge the r most similar pairs (bipartite soft matching):
//  1. metric: one row per token (ToMe: the keys averaged over heads), L2-normalised so
//     similarity is the cosine (a zero row has similarity 0 to everything);
//  2. tokens alternate into two sets, A = even indices, B = odd indices;
//  3. each A token finds its most similar B token (ties: the lower B index);
//  4. the r A tokens with the highest such similarity (ties: the lower A index) are merged
//     into their B match: x_b <- (sum over merged k of size_k x_k) / (sum of size_k),
//     sizes add up (the sizes feed ToMe's proportional attention: add log(size) to
//     the attention logits of the next layers);
//  5. protected tokens (a class token) neither merge away nor absorb others.
// Survivors keep their original order (ToMe itself reorders; an order-preserving result
// suits sequence heads). `source` maps every input token to its output row, so
// unmerge_rows can give every position a value again (e.g. for a CTC head).
// r is clamped to the number of A tokens that can merge (non-protected, with a
// non-protected B partner). Fast path: similarities by one GEMM in T (float: etk's
// dispatched gemm_f32 with B packed; double: Eigen); the reference twin
// (reference/token_merging.hpp) uses double loops.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/gemm_f32.hpp"
#include "etk/core/packed_weights_f32.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/pruning/detail/ranking.hpp"
#include "etk/pruning/selection.hpp"

ETK_BEGIN_NAMESPACE

struct MergeOptions {
  std::ptrdiff_t r = 0;                       // pairs to merge (>= 0, clamped)
  std::vector<TokenIndex> protected_indices;  // e.g. {0} for a class token
};

template <typename T>
struct MergeResult {
  RowMatrix<T> x;                            // [n - r_eff, dim] merged tokens, original order
  Eigen::Matrix<T, Eigen::Dynamic, 1> size;  // tokens represented by each output row
  KeepSet kept;                              // input index of each output row
  std::vector<TokenIndex> source;            // [n] output row each input token went to
  std::ptrdiff_t merged = 0;                 // r_eff
};

namespace detail::pruning {

template <typename T>
void check_merge_inputs(const ConstMatrixView<T>& metric, const ConstMatrixView<T>& x,
                        const Eigen::Matrix<T, Eigen::Dynamic, 1>& size, const MergeOptions& opt) {
  ETK_CHECK(opt.r >= 0, "argument 'r' must be >= 0, got " << opt.r);
  ETK_CHECK(x.rows() > 0 && x.cols() > 0, "argument 'x' is empty (" << x.rows() << " x " << x.cols() << ")");
  ETK_CHECK(x.rows() <= std::numeric_limits<TokenIndex>::max(), "argument 'x' has too many tokens");
  check::equal("metric", metric.rows(), "rows (tokens)", x.rows());
  ETK_CHECK(metric.cols() > 0, "argument 'metric' has no columns");
  check::finite("metric", metric);
  check::finite("x", x);
  if (size.size() > 0) {
    check::equal("size", size.size(), "length (tokens)", x.rows());
    for (Eigen::Index i = 0; i < size.size(); ++i)
      ETK_CHECK(std::isfinite(static_cast<double>(size[i])) && size[i] > 0,
                "argument 'size' must hold finite values > 0, got " << size[i] << " at token " << i);
  }
}

// From the chosen destination of each A token and the similarity ranking, build the result
// (shared by the fast path and the reference: only the similarities differ).
// best_b[a] (B-local index) and best_sim[a] for each A token a; -inf = cannot merge.
template <typename T, typename Acc>
void merge_from_matches(const ConstMatrixView<T>& x, const Eigen::Matrix<T, Eigen::Dynamic, 1>& size_in,
                        const std::vector<TokenIndex>& best_b, const std::vector<Acc>& best_sim,
                        std::ptrdiff_t r, MergeResult<T>& out) {
  const std::ptrdiff_t n = x.rows(), n_a = (n + 1) / 2;
  std::vector<TokenIndex> order;
  for (std::ptrdiff_t a = 0; a < n_a; ++a)
    if (best_sim[a] != -std::numeric_limits<Acc>::infinity()) order.push_back(static_cast<TokenIndex>(a));
  const std::ptrdiff_t r_eff = std::min<std::ptrdiff_t>(r, static_cast<std::ptrdiff_t>(order.size()));
  std::partial_sort(order.begin(), order.begin() + r_eff, order.end(), score_descending(best_sim));
  std::vector<TokenIndex> dst(static_cast<std::size_t>(n), -1);  // input index merged into
  for (std::ptrdiff_t k = 0; k < r_eff; ++k) {
    const TokenIndex a = order[static_cast<std::size_t>(k)];
    dst[static_cast<std::size_t>(2 * a)] = 2 * best_b[static_cast<std::size_t>(a)] + 1;
  }
  out.merged = r_eff;
  out.kept.clear();
  out.source.assign(static_cast<std::size_t>(n), 0);
  for (std::ptrdiff_t i = 0; i < n; ++i)
    if (dst[static_cast<std::size_t>(i)] < 0) {
      out.source[static_cast<std::size_t>(i)] = static_cast<TokenIndex>(out.kept.size());
      out.kept.push_back(static_cast<TokenIndex>(i));
    }
  const auto m = static_cast<Eigen::Index>(out.kept.size());
  out.x.setZero(m, x.cols());
  out.size.setZero(m);
  for (std::ptrdiff_t i = 0; i < n; ++i) {  // sums in input order
    const TokenIndex d = dst[static_cast<std::size_t>(i)];
    if (d >= 0) out.source[static_cast<std::size_t>(i)] = out.source[static_cast<std::size_t>(d)];
    const TokenIndex row = out.source[static_cast<std::size_t>(i)];
    const T s = size_in.size() ? size_in[i] : T(1);
    out.x.row(row) += s * x.row(i);
    out.size[row] += s;
  }
  for (Eigen::Index row = 0; row < m; ++row) out.x.row(row) /= out.size[row];
}

inline std::vector<unsigned char> merge_protected(const MergeOptions& opt, std::ptrdiff_t n) {
  SelectionOptions sel;
  sel.protected_indices = opt.protected_indices;
  std::vector<unsigned char> p = protected_flags(sel, n);
  if (p.empty()) p.assign(static_cast<std::size_t>(n), 0);
  return p;
}

}  // namespace detail::pruning

// Merges r pairs of tokens of x [n, dim] using metric [n, c]. size: current token sizes
// (empty = all 1).
template <typename T>
void tome_merge(ConstMatrixView<T> metric, ConstMatrixView<T> x, const Eigen::Matrix<T, Eigen::Dynamic, 1>& size,
                const MergeOptions& opt, MergeResult<T>& out) {
  detail::pruning::check_merge_inputs(metric, x, size, opt);
  const std::ptrdiff_t n = x.rows(), n_a = (n + 1) / 2, n_b = n / 2;
  const std::vector<unsigned char> prot = detail::pruning::merge_protected(opt, n);
  // Normalised A and B rows.
  RowMatrix<T> a(n_a, metric.cols()), b(n_b, metric.cols());
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const T norm = metric.row(i).norm();
    auto dstrow = (i % 2 == 0) ? a.row(i / 2) : b.row(i / 2);
    if (norm > 0) dstrow = metric.row(i) / norm; else dstrow.setZero();
  }
  RowMatrix<T> sim(n_a, n_b);  // [n_a, n_b] = A·B^T
  if constexpr (std::is_same_v<T, float>) {
    if (n_b > 0)
      gemm_f32(matrix_view(static_cast<const float*>(a.data()), n_a, a.cols(), a.cols()),
               PackedWeightsF32(matrix_view(static_cast<const float*>(b.data()), n_b, b.cols(), b.cols())),
               matrix_view(sim.data(), n_a, n_b, n_b));
  } else {
    sim.noalias() = a * b.transpose();
  }
  const T ninf = -std::numeric_limits<T>::infinity();
  std::vector<TokenIndex> best_b(static_cast<std::size_t>(n_a), 0);
  std::vector<T> best_sim(static_cast<std::size_t>(n_a), ninf);
  for (std::ptrdiff_t i = 0; i < n_a; ++i) {
    if (prot[static_cast<std::size_t>(2 * i)]) continue;
    for (std::ptrdiff_t j = 0; j < n_b; ++j) {
      if (prot[static_cast<std::size_t>(2 * j + 1)]) continue;
      if (sim(i, j) > best_sim[static_cast<std::size_t>(i)]) {
        best_sim[static_cast<std::size_t>(i)] = sim(i, j);
        best_b[static_cast<std::size_t>(i)] = static_cast<TokenIndex>(j);
      }
    }
  }
  detail::pruning::merge_from_matches(x, size, best_b, best_sim, opt.r, out);
}

// full[i, :] = merged[source[i], :]: every input position gets its merged token's value.
template <typename T>
void unmerge_rows(ConstMatrixView<T> merged, const std::vector<TokenIndex>& source, MatrixView<T> full) {
  check::equal("full", full.rows(), "rows (tokens)", static_cast<std::ptrdiff_t>(source.size()));
  check::equal("full", full.cols(), "cols", merged.cols());
  for (std::size_t i = 0; i < source.size(); ++i) {
    ETK_CHECK(source[i] >= 0 && source[i] < merged.rows(),
              "argument 'source' holds " << source[i] << " at " << i << ", outside [0, " << merged.rows() << ")");
    full.row(static_cast<Eigen::Index>(i)) = merged.row(source[i]);
  }
}

ETK_END_NAMESPACE
