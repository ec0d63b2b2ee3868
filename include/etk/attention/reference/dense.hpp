// etk/attention/reference/dense.hpp: the plain multi-head attention every fast attention
// kernel of etk is tested against.
//
// For each head and query, in double precision: logits s_j = scale * q·k_j, masked
// logits removed, p_j = exp(s_j - max) / sum, o = sum_j p_j v_j. Obviously correct,
// O(n_k) memory per query, no blocking, no SIMD. Same arguments, checks and mask
// conventions as etk/attention/dense.hpp (see etk/attention/params.hpp); params.threads
// is ignored.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "etk/attention/params.hpp"
#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {
namespace impl {

// Probabilities of query i of head h into p[0..n_k) (all zero if every key is masked).
inline void query_probs(const HeadsView<const float>& q, const HeadsView<const float>& k,
                        const AttentionParams& params, const detail::AttentionShape& s,
                        std::ptrdiff_t h, std::ptrdiff_t i, std::vector<double>& p) {
  const std::uint8_t* pad = detail::key_padding_row(params, h, s.n_k);
  const std::ptrdiff_t end =
      params.causal ? detail::causal_key_end(i, s.n_q, s.n_k) : s.n_k;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  double max = neg_inf;
  const float* qi = q.row(h, i);
  for (std::ptrdiff_t j = 0; j < s.n_k; ++j) {
    p[j] = neg_inf;
    if (j >= end || (pad && pad[j])) continue;
    const float* kj = k.row(h, j);
    double dot = 0.0;
    for (std::ptrdiff_t d = 0; d < s.dk; ++d) dot += double(qi[d]) * double(kj[d]);
    p[j] = double(s.scale) * dot;
    max = std::max(max, p[j]);
  }
  if (max == neg_inf) {
    std::fill(p.begin(), p.begin() + s.n_k, 0.0);
    return;
  }
  double sum = 0.0;
  for (std::ptrdiff_t j = 0; j < s.n_k; ++j) {
    p[j] = p[j] == neg_inf ? 0.0 : std::exp(p[j] - max);
    sum += p[j];
  }
  for (std::ptrdiff_t j = 0; j < s.n_k; ++j) p[j] /= sum;
}

}  // namespace impl

// probs[h, i, j] = softmax_j(scale * q_i·k_j + mask), a [heads, n_q, n_k] view.
inline void attention_probs(HeadsView<const float> q, HeadsView<const float> k,
                            HeadsView<float> probs, const AttentionParams& params = {}) {
  const auto s = detail::check_attention(q, k, nullptr, params);
  detail::check_output("probs", probs, s.heads, s.n_q, "seq (= q.seq)", s.n_k,
                              "dim (= k.seq)", q, k, nullptr);
  std::vector<double> p(s.n_k);
  for (std::ptrdiff_t h = 0; h < s.heads; ++h)
    for (std::ptrdiff_t i = 0; i < s.n_q; ++i) {
      impl::query_probs(q, k, params, s, h, i, p);
      float* row = probs.row(h, i);
      for (std::ptrdiff_t j = 0; j < s.n_k; ++j) row[j] = static_cast<float>(p[j]);
    }
}

// out[h, i, :] = sum_j probs[h, i, j] * v[h, j, :], a [heads, n_q, dv] view.
inline void dense_attention(HeadsView<const float> q, HeadsView<const float> k,
                            HeadsView<const float> v, HeadsView<float> out,
                            const AttentionParams& params = {}) {
  const auto s = detail::check_attention(q, k, &v, params);
  detail::check_output("out", out, s.heads, s.n_q, "seq (= q.seq)", s.dv,
                              "dim (= v.dim)", q, k, &v);
  std::vector<double> p(s.n_k), o(s.dv);
  for (std::ptrdiff_t h = 0; h < s.heads; ++h)
    for (std::ptrdiff_t i = 0; i < s.n_q; ++i) {
      impl::query_probs(q, k, params, s, h, i, p);
      std::fill(o.begin(), o.end(), 0.0);
      for (std::ptrdiff_t j = 0; j < s.n_k; ++j) {
        if (p[j] == 0.0) continue;
        const float* vj = v.row(h, j);
        for (std::ptrdiff_t d = 0; d < s.dv; ++d) o[d] += p[j] * double(vj[d]);
      }
      float* row = out.row(h, i);
      for (std::ptrdiff_t d = 0; d < s.dv; ++d) row[d] = static_cast<float>(o[d]);
    }
}

}  // namespace reference
ETK_END_NAMESPACE
