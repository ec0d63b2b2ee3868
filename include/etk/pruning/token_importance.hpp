// etk/pruning/token_importance.hpp: how much attention each token receives.
//
// LTP importance (Kim et al., KDD 2022): from attention probabilities A[h, i, j]
// (heads x queries x keys, each valid row summing to 1),
//     s_j = (1 / (H * Q)) * sum over heads h and valid queries i of A[h, i, j].
// Normalisation Q (ImportanceNormalization):
//  * valid_queries (default): Q = number of valid (unpadded, unpruned) queries, so the
//    scores of a layer sum to 1 over the keys and a threshold means the same thing
//    whatever the padding;
//  * padded_length: Q = n_q, the padded length, as the LTP reference code does (it zeroes
//    the rows of masked queries, then divides by the padded length). Use it to reuse
//    thresholds learned with that code; scores then shrink as padding grows.
// Also the class-token score used by EViT-style methods: the attention one chosen query
// (e.g. CLS) pays to each key, averaged over heads.
//
// The fast path is a blocked column sum (detail/column_sums.hpp), also offered as a
// streaming accumulator (ImportanceAccumulator): an encoder can add each head's
// probability block right after its softmax, while it is in cache, instead of keeping
// all heads' probabilities. A non-finite input always yields a non-finite column
// sum, so checking the n_k sums detects NaN/Inf anywhere in the input at O(n_k) cost.
//
// token_importance runs on the caller's etk::Context: the heads x queries rows are cut
// into tasks by the shape alone (importance_plan), each task sums its rows into its own
// n_k partial (task 0 into `scores`, the others into the context's scratch,
// token_importance_scratch_bytes), and the partials are added in task order. Scores are
// therefore bit-identical for every pool and thread count.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/context.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/pruning/detail/column_sums.hpp"

ETK_BEGIN_NAMESPACE

enum class ImportanceNormalization { valid_queries, padded_length };

struct ImportanceOptions {
  ImportanceNormalization normalization = ImportanceNormalization::valid_queries;
  // n_q flags, nonzero = valid query; nullptr = every query valid. Rows of invalid
  // queries are ignored (never read).
  const unsigned char* query_valid = nullptr;
  // > 0: check that every valid row is non-negative and sums to 1 within this tolerance
  // (costs one extra pass over the input). 0: no check.
  double row_sum_tolerance = 0.0;
};

// Streaming accumulation of column sums over blocks of probability rows.
template <typename T>
class ImportanceAccumulator {
 public:
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  explicit ImportanceAccumulator(std::ptrdiff_t n_keys = 0) { reset(n_keys); }

  void reset(std::ptrdiff_t n_keys) {
    ETK_CHECK(n_keys >= 0, "argument 'n_keys' must be >= 0, got " << n_keys);
    acc_.setZero(n_keys);
  }
  std::ptrdiff_t keys() const { return acc_.size(); }

  // Adds every row of a [rows, n_keys] block (the probabilities of some valid queries of
  // one head).
  void add(const T* rows, std::ptrdiff_t n_rows, std::ptrdiff_t row_stride) {
    detail::pruning::add_column_sums(acc_.data(), rows, n_rows, acc_.size(), row_stride);
  }
  void add(const Eigen::Ref<const RowMatrix<T>, 0, Eigen::OuterStride<>>& block) {
    ETK_CHECK(block.cols() == keys(), "argument 'block' has " << block.cols()
                                          << " columns, expected n_keys = " << keys());
    add(block.data(), block.rows(), block.outerStride());
  }

  // Raw column sums so far.
  const Vector& sums() const { return acc_; }

  // scores = sums / denominator (denominator = heads * counted queries).
  void finish(T denominator, T* scores) const {
    Eigen::Map<Vector>(scores, acc_.size()) = acc_ * (T(1) / denominator);
  }

 private:
  Vector acc_;
};

namespace detail::pruning {

// The fixed cut of the heads * n_q rows (head-major: row r is head r / n_q, query
// r % n_q) into `tasks` consecutive ranges of `rows_per_task` (the last one shorter):
// at least kMinRows rows a task, at most kMaxTasks tasks; a function of the shape only.
struct ImportancePlan {
  static constexpr std::ptrdiff_t kMinRows = 256;
  static constexpr std::ptrdiff_t kMaxTasks = 64;
  std::ptrdiff_t rows = 0, tasks = 1, rows_per_task = 0;
};

// heads * n_q does not overflow for a view that passed check::heads_layout (its extent
// is at least (heads - 1) * n_q or (n_q - 1) * heads elements); checked here for any input.
inline ImportancePlan importance_plan(std::ptrdiff_t heads, std::ptrdiff_t n_q) {
  ImportancePlan p;
  ETK_CHECK(heads >= 0 && n_q >= 0 && !__builtin_mul_overflow(heads, n_q, &p.rows),
            "token importance: heads " << heads << " x queries " << n_q << " is not a row count");
  p.tasks = std::min(ImportancePlan::kMaxTasks, std::max<std::ptrdiff_t>(1, p.rows / ImportancePlan::kMinRows));
  p.rows_per_task = (p.rows + p.tasks - 1) / p.tasks;
  if (p.rows_per_task > 0) p.tasks = (p.rows + p.rows_per_task - 1) / p.rows_per_task;
  return p;
}

// Rows [r0, r1) of the plan, valid queries only, added into acc (n_k entries).
template <typename T>
void add_importance_rows(T* acc, const HeadsView<const T>& probs, const unsigned char* query_valid,
                         std::ptrdiff_t r0, std::ptrdiff_t r1) {
  for (std::ptrdiff_t r = r0; r < r1;) {
    const std::ptrdiff_t h = r / probs.seq, i0 = r % probs.seq;
    const std::ptrdiff_t i1 = std::min(probs.seq, i0 + (r1 - r));  // within head h
    for (std::ptrdiff_t i = i0; i < i1;) {  // runs of consecutive valid queries
      if (query_valid && !query_valid[i]) {
        ++i;
        continue;
      }
      std::ptrdiff_t e = i + 1;
      while (e < i1 && (!query_valid || query_valid[e])) ++e;
      add_column_sums(acc, probs.row(h, i), e - i, probs.dim, probs.row_stride);
      i = e;
    }
    r += i1 - i0;
  }
}

template <typename T>
std::ptrdiff_t count_valid_queries(const HeadsView<const T>& probs, const ImportanceOptions& opt) {
  if (!opt.query_valid) return probs.seq;
  std::ptrdiff_t n = 0;
  for (std::ptrdiff_t i = 0; i < probs.seq; ++i) n += opt.query_valid[i] ? 1 : 0;
  return n;
}

template <typename T>
T importance_denominator(const HeadsView<const T>& probs, const ImportanceOptions& opt,
                         std::ptrdiff_t valid) {
  const std::ptrdiff_t q =
      opt.normalization == ImportanceNormalization::padded_length ? probs.seq : valid;
  return static_cast<T>(probs.heads) * static_cast<T>(q);
}

template <typename T>
void check_probabilities(const char* name, const HeadsView<const T>& probs,
                         const ImportanceOptions& opt) {
  check::heads_layout(name, probs);
  ETK_CHECK(opt.row_sum_tolerance >= 0 && !std::isnan(opt.row_sum_tolerance),
            "argument 'row_sum_tolerance' must be >= 0, got " << opt.row_sum_tolerance);
  if (opt.row_sum_tolerance == 0) return;
  for (std::ptrdiff_t h = 0; h < probs.heads; ++h)
    for (std::ptrdiff_t i = 0; i < probs.seq; ++i) {
      if (opt.query_valid && !opt.query_valid[i]) continue;
      const T* r = probs.row(h, i);
      double sum = 0;
      for (std::ptrdiff_t j = 0; j < probs.dim; ++j) {
        ETK_CHECK(r[j] >= 0, "argument '" << name << "' holds a negative probability (" << r[j]
                                          << ") at head " << h << ", query " << i << ", key " << j);
        sum += r[j];
      }
      ETK_CHECK(std::abs(sum - 1.0) <= opt.row_sum_tolerance,
                "argument '" << name << "': row (head " << h << ", query " << i << ") sums to "
                             << sum << ", not 1 within " << opt.row_sum_tolerance);
    }
}

}  // namespace detail::pruning

// Scratch of token_importance for [heads, n_q, n_k] probabilities of type T: one n_k
// partial per task after the first (0 when the plan has one task).
template <typename T = float>
std::size_t token_importance_scratch_bytes(std::ptrdiff_t heads, std::ptrdiff_t n_q, std::ptrdiff_t n_k) {
  const detail::pruning::ImportancePlan p = detail::pruning::importance_plan(heads, n_q);
  std::size_t bytes = 0;
  ETK_CHECK(n_k >= 0 && !__builtin_mul_overflow(std::size_t(p.tasks - 1) * sizeof(T), std::size_t(n_k), &bytes),
            "token importance: the scratch of " << n_k << " keys is not representable");
  return bytes;
}

// LTP importance of each key: probs is [heads, n_q, n_k] (HeadsView seq = n_q,
// dim = n_k); scores has n_k entries. Tasks on ctx's pool, partials in ctx's scratch
// (see the top of this file); the same scores for every ctx.
template <typename T>
void token_importance(HeadsView<const T> probs, T* scores, const ImportanceOptions& opt = {},
                      const Context& ctx = {}) {
  detail::pruning::check_probabilities("probs", probs, opt);
  ETK_CHECK(scores != nullptr, "argument 'scores' is a null pointer");
  const std::ptrdiff_t valid = detail::pruning::count_valid_queries(probs, opt);
  ETK_CHECK(valid > 0, "argument 'query_valid' marks no query as valid (n_q = " << probs.seq << ")");
  const detail::pruning::ImportancePlan plan = detail::pruning::importance_plan(probs.heads, probs.seq);
  const ScratchLease scratch(ctx, token_importance_scratch_bytes<T>(probs.heads, probs.seq, probs.dim));
  T* const partials = scratch.data<T>();
  const std::ptrdiff_t n_k = probs.dim;
  parallel_for(ctx, plan.tasks, [&](std::ptrdiff_t t, int) {
    T* acc = t == 0 ? scores : partials + (t - 1) * n_k;
    std::fill(acc, acc + n_k, T(0));
    const std::ptrdiff_t r0 = t * plan.rows_per_task;
    detail::pruning::add_importance_rows(acc, probs, opt.query_valid, r0, std::min(plan.rows, r0 + plan.rows_per_task));
  });
  Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>> s(scores, n_k);
  for (std::ptrdiff_t t = 1; t < plan.tasks; ++t)  // in task order, whatever ran where
    s += Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(partials + (t - 1) * n_k, n_k);
  s *= T(1) / detail::pruning::importance_denominator(probs, opt, valid);
  for (std::ptrdiff_t j = 0; j < probs.dim; ++j)
    ETK_CHECK(std::isfinite(static_cast<double>(scores[j])),
              "argument 'probs' holds a non-finite value in key column " << j);
}

template <typename T>
Eigen::Matrix<T, Eigen::Dynamic, 1> token_importance(HeadsView<const T> probs,
                                                     const ImportanceOptions& opt = {},
                                                     const Context& ctx = {}) {
  Eigen::Matrix<T, Eigen::Dynamic, 1> s(probs.dim > 0 ? probs.dim : 0);
  token_importance(probs, s.data(), opt, ctx);
  return s;
}

// Adjoint of token_importance: given dL/ds (n_k), writes dL/dA[h, i, j] =
// grad_scores[j] / denominator for valid queries and 0 for invalid ones, into grad_probs
// (same shape as the probabilities the scores came from).
template <typename T>
void token_importance_backward(const Eigen::Matrix<T, Eigen::Dynamic, 1>& grad_scores,
                               HeadsView<T> grad_probs, const ImportanceOptions& opt = {}) {
  check::heads_layout("grad_probs", grad_probs);
  check::equal("grad_scores", grad_scores.size(), "size (n_k)", grad_probs.dim);
  const HeadsView<const T> shape(grad_probs);
  const std::ptrdiff_t valid = detail::pruning::count_valid_queries(shape, opt);
  ETK_CHECK(valid > 0, "argument 'query_valid' marks no query as valid (n_q = " << shape.seq << ")");
  const T inv = T(1) / detail::pruning::importance_denominator(shape, opt, valid);
  for (std::ptrdiff_t h = 0; h < grad_probs.heads; ++h)
    for (std::ptrdiff_t i = 0; i < grad_probs.seq; ++i) {
      Eigen::Map<Eigen::Matrix<T, 1, Eigen::Dynamic>> row(grad_probs.row(h, i), grad_probs.dim);
      if (opt.query_valid && !opt.query_valid[i])
        row.setZero();
      else
        row = grad_scores.transpose() * inv;
    }
}

// Class-token score (EViT): c_j = (1/H) * sum_h A[h, query, j].
template <typename T>
Eigen::Matrix<T, Eigen::Dynamic, 1> class_token_score(HeadsView<const T> probs, std::ptrdiff_t query = 0) {
  check::heads_layout("probs", probs);
  ETK_CHECK(query >= 0 && query < probs.seq,
            "argument 'query' is " << query << ", outside [0, " << probs.seq << ")");
  Eigen::Matrix<T, Eigen::Dynamic, 1> c = Eigen::Matrix<T, Eigen::Dynamic, 1>::Zero(probs.dim);
  for (std::ptrdiff_t h = 0; h < probs.heads; ++h)
    c += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(probs.row(h, query), probs.dim);
  c /= static_cast<T>(probs.heads);
  for (std::ptrdiff_t j = 0; j < probs.dim; ++j)
    ETK_CHECK(std::isfinite(static_cast<double>(c[j])),
              "argument 'probs' holds a non-finite value in key column " << j << " of query " << query);
  return c;
}

ETK_END_NAMESPACE
