// etk/attention/dense.hpp: multi-head scaled dot-product attention, the fast fp32 kernel
// every efficient attention of etk is measured against.
//
//   out = softmax(scale * q·k^T + mask) · v      per head
//
// Arguments, shapes and masks are described in etk/attention/params.hpp; the reference
// twin with the same signatures is etk/attention/reference/dense.hpp.
//  * dense_attention: blocked over queries and keys with an online softmax, Eigen GEMMs
//    on blocks, a vectorised base-2 exponential; never materialises [n_q, n_k] (memory:
//    dense_attention_workspace_floats per thread, which does not depend on n_q and grows
//    with n_k only by one float per key when a padding mask is given).
//  * attention_probs / dense_attention_with_probs: the same attention that also returns
//    the probability matrix [heads, n_q, n_k] (into the caller's buffer), for callers that
//    need it. For a single head pass one-head views (etk::heads_slice(q, h), ...).
// All three check their arguments (etk::invalid_argument naming the argument), run their
// tasks (one per head and block of queries, sized from the cache sizes: dense_blocked.hpp) on ctx's pool with one workspace
// per worker from ctx's scratch (dense_attention_scratch_bytes; results bit-identical for
// every pool, since a task's arithmetic does not depend on which worker runs it), give
// fully masked queries zero rows. Rejected besides bad shapes: an output that shares
// memory with an input or the other output (check::no_overlap), NaN/Inf inputs and
// logits beyond float range (params.hpp, check_finite_and_logit_range).
#pragma once

#include <cstddef>

#include "etk/attention/detail/dense_blocked.hpp"
#include "etk/attention/detail/dense_probs.hpp"
#include "etk/attention/params.hpp"
#include "etk/attention/softmax.hpp"
#include "etk/config.hpp"
#include "etk/core/context.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE

namespace detail {

inline AttentionShape attention_shape(std::ptrdiff_t n_q, std::ptrdiff_t n_k, std::ptrdiff_t dk,
                                      std::ptrdiff_t dv) {
  AttentionShape sh;
  sh.n_q = n_q;
  sh.n_k = n_k;
  sh.dk = dk;
  sh.dv = dv;
  return sh;
}

// Runs job(h, block, workspace) for every head and block of b.queries queries of sh on
// ctx, each worker with its own workspace of `floats` floats carved from one lease.
template <typename Job>
void for_each_query_block(const Context& ctx, const AttentionShape& sh, const DenseBlocks& b,
                          std::ptrdiff_t floats, const Job& job) {
  const std::ptrdiff_t bq = std::min(sh.n_q, b.queries);
  const std::ptrdiff_t blocks = (sh.n_q + bq - 1) / bq;
  const std::ptrdiff_t stride = (floats + 15) / 16 * 16;  // 64-byte aligned per worker
  ScratchLease lease(ctx, std::size_t(stride * ctx.concurrency()) * sizeof(float));
  float* base = lease.data<float>();
  parallel_for(ctx, sh.heads * blocks, [&](std::ptrdiff_t task, int worker) {
    job(task / blocks, task % blocks, base + std::ptrdiff_t(worker) * stride);
  });
}

inline std::ptrdiff_t per_worker_bytes(std::ptrdiff_t floats) {
  return (floats + 15) / 16 * 16 * std::ptrdiff_t(sizeof(float));
}

// dense_attention with the given block sizes (both > 0) instead of the cache-derived ones.
inline void dense_attention_blocks(HeadsView<const float> q, HeadsView<const float> k, HeadsView<const float> v,
                                   HeadsView<float> out, const AttentionParams& params, const Context& ctx,
                                   const DenseBlocks* blocks) {
  const auto sh = check_attention(q, k, &v, params);
  check_output("out", out, sh.heads, sh.n_q, "seq (= q.seq)", sh.dv, "dim (= v.dim)", q, k, &v);
  const DenseBlocks b = blocks ? *blocks : dense_blocks(sh);
  ETK_CHECK(b.queries > 0 && b.keys > 0, "block sizes must be > 0, got " << b.queries << " x " << b.keys);
  const auto w = blocked_workspace(sh, params.key_padding.data != nullptr, b);
  for_each_query_block(ctx, sh, b, w.total, [&](std::ptrdiff_t h, std::ptrdiff_t block, float* ws) {
    blocked_attention_block(q, k, v, out, sh, params, b, h, block, ws);
  });
}

// attention_probs (v, out null) or dense_attention_with_probs with the given block sizes
// (null: the cache-derived ones).
inline void probs_attention_blocks(HeadsView<const float> q, HeadsView<const float> k, const HeadsView<const float>* v,
                                   HeadsView<float>* out, HeadsView<float> probs, const AttentionParams& params,
                                   const Context& ctx, const DenseBlocks* blocks) {
  const auto sh = check_attention(q, k, v, params);
  if (out) check_output("out", *out, sh.heads, sh.n_q, "seq (= q.seq)", sh.dv, "dim (= v.dim)", q, k, v);
  check_output("probs", probs, sh.heads, sh.n_q, "seq (= q.seq)", sh.n_k, "dim (= k.seq)", q, k, v);
  if (out) check::no_overlap("out", *out, "probs", probs);
  const DenseBlocks b = blocks ? *blocks : dense_blocks(sh);
  ETK_CHECK(b.queries > 0 && b.keys > 0, "block sizes must be > 0, got " << b.queries << " x " << b.keys);
  const auto ws = probs_workspace_floats(sh, params.key_padding.data != nullptr, b);
  for_each_query_block(ctx, sh, b, ws, [&](std::ptrdiff_t h, std::ptrdiff_t block, float* w) {
    probs_attention_block(q, k, v, probs, out, sh, params, b, h, block, w);
  });
}

}  // namespace detail

// Floats of workspace each worker of dense_attention uses for this problem size.
inline std::ptrdiff_t dense_attention_workspace_floats(std::ptrdiff_t n_q, std::ptrdiff_t n_k,
                                                       std::ptrdiff_t dk, std::ptrdiff_t dv,
                                                       bool key_padding = false) {
  const auto sh = detail::attention_shape(n_q, n_k, dk, dv);
  return detail::blocked_workspace(sh, key_padding, detail::dense_blocks(sh)).total;
}

// Bytes of scratch dense_attention takes from ctx (reserve an arena to this, then call).
inline std::size_t dense_attention_scratch_bytes(std::ptrdiff_t n_q, std::ptrdiff_t n_k,
                                                 std::ptrdiff_t dk, std::ptrdiff_t dv,
                                                 bool key_padding, const Context& ctx) {
  return std::size_t(detail::per_worker_bytes(
                         dense_attention_workspace_floats(n_q, n_k, dk, dv, key_padding)) *
                     ctx.concurrency());
}

// Bytes of scratch attention_probs and dense_attention_with_probs take from ctx.
inline std::size_t attention_probs_scratch_bytes(std::ptrdiff_t n_q, std::ptrdiff_t n_k,
                                                 std::ptrdiff_t dk, bool key_padding,
                                                 const Context& ctx) {
  const auto sh = detail::attention_shape(n_q, n_k, dk, 0);
  return std::size_t(detail::per_worker_bytes(detail::probs_workspace_floats(sh, key_padding, detail::dense_blocks(sh))) *
                     ctx.concurrency());
}

// out [heads, n_q, dv] = attention(q [heads, n_q, dk], k [heads, n_k, dk], v [heads, n_k, dv]).
inline void dense_attention(HeadsView<const float> q, HeadsView<const float> k,
                            HeadsView<const float> v, HeadsView<float> out,
                            const AttentionParams& params = {}, const Context& ctx = {}) {
  detail::dense_attention_blocks(q, k, v, out, params, ctx, nullptr);
}

// probs [heads, n_q, n_k] = softmax(scale * q·k^T + mask).
inline void attention_probs(HeadsView<const float> q, HeadsView<const float> k,
                            HeadsView<float> probs, const AttentionParams& params = {},
                            const Context& ctx = {}) {
  detail::probs_attention_blocks(q, k, nullptr, nullptr, probs, params, ctx, nullptr);
}

// Both: probs as attention_probs, out = probs · v as dense_attention.
inline void dense_attention_with_probs(HeadsView<const float> q, HeadsView<const float> k,
                                       HeadsView<const float> v, HeadsView<float> out,
                                       HeadsView<float> probs, const AttentionParams& params = {},
                                       const Context& ctx = {}) {
  detail::probs_attention_blocks(q, k, &v, &out, probs, params, ctx, nullptr);
}

ETK_END_NAMESPACE
