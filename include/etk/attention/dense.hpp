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
// All three check their arguments (etk::invalid_argument naming the argument), run
// params.threads std::threads over heads (results bit-identical for any thread count),
// give fully masked queries zero rows. Rejected besides bad shapes: an output that shares
// memory with an input or the other output (check::no_overlap), NaN/Inf inputs and
// logits beyond float range (params.hpp, check_logit_range).
#pragma once

#include <cstddef>

#include "etk/attention/detail/dense_blocked.hpp"
#include "etk/attention/detail/dense_probs.hpp"
#include "etk/attention/detail/parallel_heads.hpp"
#include "etk/attention/params.hpp"
#include "etk/attention/softmax.hpp"
#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE

// Floats of workspace each thread of dense_attention allocates for this problem size.
inline std::ptrdiff_t dense_attention_workspace_floats(std::ptrdiff_t n_q, std::ptrdiff_t n_k,
                                                       std::ptrdiff_t dk, std::ptrdiff_t dv,
                                                       bool key_padding = false) {
  detail::AttentionShape sh;
  sh.n_q = n_q;
  sh.n_k = n_k;
  sh.dk = dk;
  sh.dv = dv;
  return detail::blocked_workspace(sh, key_padding).total;
}

// out [heads, n_q, dv] = attention(q [heads, n_q, dk], k [heads, n_k, dk], v [heads, n_k, dv]).
inline void dense_attention(HeadsView<const float> q, HeadsView<const float> k,
                            HeadsView<const float> v, HeadsView<float> out,
                            const AttentionParams& params = {}) {
  const auto sh = detail::check_attention(q, k, &v, params);
  detail::check_output("out", out, sh.heads, sh.n_q, "seq (= q.seq)", sh.dv, "dim (= v.dim)", q, k, &v);
  const auto w = detail::blocked_workspace(sh, params.key_padding.data != nullptr);
  detail::for_each_head(sh.heads, params.threads, w.total, [&](std::ptrdiff_t h, float* ws) {
    detail::blocked_attention_head(q, k, v, out, sh, params, h, ws);
  });
}

// probs [heads, n_q, n_k] = softmax(scale * q·k^T + mask).
inline void attention_probs(HeadsView<const float> q, HeadsView<const float> k,
                            HeadsView<float> probs, const AttentionParams& params = {}) {
  const auto sh = detail::check_attention(q, k, nullptr, params);
  detail::check_output("probs", probs, sh.heads, sh.n_q, "seq (= q.seq)", sh.n_k, "dim (= k.seq)", q, k, nullptr);
  const auto ws = detail::probs_workspace_floats(sh, params.key_padding.data != nullptr);
  detail::for_each_head(sh.heads, params.threads, ws, [&](std::ptrdiff_t h, float* w) {
    detail::probs_attention_head(q, k, nullptr, probs, nullptr, sh, params, h, w);
  });
}

// Both: probs as attention_probs, out = probs · v as dense_attention.
inline void dense_attention_with_probs(HeadsView<const float> q, HeadsView<const float> k,
                                       HeadsView<const float> v, HeadsView<float> out,
                                       HeadsView<float> probs,
                                       const AttentionParams& params = {}) {
  const auto sh = detail::check_attention(q, k, &v, params);
  detail::check_output("out", out, sh.heads, sh.n_q, "seq (= q.seq)", sh.dv, "dim (= v.dim)", q, k, &v);
  detail::check_output("probs", probs, sh.heads, sh.n_q, "seq (= q.seq)", sh.n_k, "dim (= k.seq)", q, k, &v);
  check::no_overlap("out", out, "probs", probs);
  const auto ws = detail::probs_workspace_floats(sh, params.key_padding.data != nullptr);
  detail::for_each_head(sh.heads, params.threads, ws, [&](std::ptrdiff_t h, float* w) {
    detail::probs_attention_head(q, k, &v, probs, &out, sh, params, h, w);
  });
}

ETK_END_NAMESPACE
