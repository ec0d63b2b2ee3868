// etk/attention/decode_params.hpp: parameters of a decode step over a KVCache and the
// arithmetic the fast decode (decode.hpp) and its reference twin (reference/decode.hpp)
// must share bit for bit: argument checks, the query quantizer, the visible key range of
// each query, and the logit units of LATTE's estimate with per-block key scales.
//
// LATTE over a cache with per-block key scales: for query i (int8 codes q, scale s_q) and
// key j in block b (codes k, scale s_b), the estimate E_ij = sum_t (q_t >> 4)(k_t >> 4)
// is exact in int32, and its value in logit units is
//     est_ij = float(E_ij) * (256 * ((s_q * s_b) * scale))     (float products, in order)
// The head-wise threshold theta_h (logit units, as produced by latte_calibrate_* and
// latte_train_thresholds) keeps key j iff est_ij >= max_j est_ij - theta_h. With one key
// scale per head this is detail::latte::margin_cut's integer rule; with per-block scales the
// estimates of different blocks are compared in float, with the same products in both
// twins (no sums, so no contraction into FMA can change them). A survivor's logit is
// float(q.k) * ((s_q * s_b) * scale), q.k the exact int8 dot product.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "etk/attention/kv_cache.hpp"
#include "etk/attention/latte_params.hpp"
#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE

struct DecodeParams {
  // LATTE thresholds in logit units, one per query head or one shared; +inf keeps every
  // key. Ignored by dense_decode.
  std::vector<float> theta;
  // Logit = scale * q.k; 0 means 1/sqrt(dim).
  float scale = 0.0f;
};

namespace detail::decode {

// The checked problem of one decode step.
struct Shape {
  std::ptrdiff_t q_heads = 0, kv_heads = 0, group = 0, nq = 0, dim = 0, dv = 0;
  std::ptrdiff_t length = 0;  // cache length; query i sits at position length - nq + i
  float scale = 0.0f;         // resolved
};

// Query heads per KV head a step takes (the rows of one pass over a KV head's planes).
constexpr std::ptrdiff_t kMaxGroup = 32;

inline Shape check_args(const KVCache& cache, const HeadsView<const float>& Q,
                        const HeadsView<float>& O, const DecodeParams& p, bool latte) {
  check::heads_layout("Q", Q);
  check::heads_layout("O", HeadsView<const float>(O));
  check::equal("Q", Q.dim, "dim (= cache dim)", cache.dim());
  ETK_CHECK(Q.heads % cache.kv_heads() == 0,
            "argument 'Q' has " << Q.heads << " heads, not a multiple of the cache's "
                                << cache.kv_heads() << " KV heads (grouped-query attention)");
  ETK_CHECK(Q.heads / cache.kv_heads() <= kMaxGroup,
            "argument 'Q' has " << Q.heads / cache.kv_heads() << " query heads per KV head, at most "
                                << kMaxGroup);
  ETK_CHECK(Q.seq <= KVCache::kMaxQueries,
            "argument 'Q' has " << Q.seq << " queries, at most " << KVCache::kMaxQueries);
  ETK_CHECK(Q.seq <= cache.length(), "argument 'Q' has " << Q.seq
                                         << " queries but the cache holds only "
                                         << cache.length() << " tokens (the queries are the "
                                                              "last appended positions)");
  check::equal("O", O.heads, "heads (= Q.heads)", Q.heads);
  check::equal("O", O.seq, "seq (= Q.seq)", Q.seq);
  check::equal("O", O.dim, "dim (= cache value_dim)", cache.value_dim());
  ETK_CHECK(p.scale == 0.0f || (std::isfinite(p.scale) && p.scale > 0.0f),
            "argument 'params.scale' must be 0 (1/sqrt(dim)) or finite and > 0, got " << p.scale);
  if (latte) {
    ETK_CHECK(p.theta.size() == 1 || p.theta.size() == std::size_t(Q.heads),
              "argument 'params.theta' must hold 1 or " << Q.heads << " thresholds, got "
                                                        << p.theta.size());
    for (float t : p.theta)
      ETK_CHECK(t >= 0.0f, "argument 'params.theta' must be >= 0 (or +inf), got " << t);
  }
  check::finite("Q", Q);
  Shape s;
  s.q_heads = Q.heads;
  s.kv_heads = cache.kv_heads();
  s.group = Q.heads / cache.kv_heads();
  s.nq = Q.seq;
  s.dim = Q.dim;
  s.dv = cache.value_dim();
  s.length = cache.length();
  s.scale = p.scale > 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(Q.dim));
  return s;
}

inline float theta_of(const DecodeParams& p, std::ptrdiff_t hq) {
  return p.theta.size() == 1 ? p.theta[0] : p.theta[std::size_t(hq)];
}

// Keys [first, end) visible to query i: causal (end = its position + 1) and, with a
// window W, the last W positions up to it.
struct KeyRange {
  std::ptrdiff_t first, end;
};
inline KeyRange visible_keys(const KVCache& cache, const Shape& s, std::ptrdiff_t i) {
  const std::ptrdiff_t end = s.length - s.nq + i + 1;
  std::ptrdiff_t first = cache.first_token();
  if (cache.config().window > 0) first = std::max(first, end - cache.config().window);
  return {first, end};
}

// A query's int8 scale: max-abs / 127 of its row (dynamic, per query and head).
inline float query_scale(const float* q, std::ptrdiff_t d) { return detail::latte::maxabs_scale(q, 1, d, d); }

// Logit of one unit of the exact int8 score for query scale sq and key block scale sk.
inline float logit_unit(float sq, float sk, float scale) { return (sq * sk) * scale; }
// Logit of one unit of the estimate (16 * 16 units of the score).
inline float estimate_unit(float sq, float sk, float scale) {
  return 256.0f * logit_unit(sq, sk, scale);
}

}  // namespace detail::decode
ETK_END_NAMESPACE
