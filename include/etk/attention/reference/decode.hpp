// etk/attention/reference/decode.hpp: the plain twin of decode.hpp, reading the cache only
// through its accessors (key_code, key_scale, value). Per query head and query: quantize
// the query, form E_j = sum_t (q_t >> 4)(k_t >> 4) and its logit value for every visible
// key, keep the keys within theta of the maximum (decode_params.hpp's rule, the same float
// products), score survivors by the plain int8 dot product, and take softmax and P*V in
// double. theta = +inf (or dense = true) keeps every visible key. kept_sets (optional)
// receives, for row hq * nq + i, the kept key positions in increasing order.
#pragma once

#include <cmath>
#include <limits>
#include <vector>

#include "etk/attention/decode_params.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

inline void decode_attention(const KVCache& cache, HeadsView<const float> Q, HeadsView<float> O,
                             const DecodeParams& params, bool dense, LatteStats* stats = nullptr,
                             std::vector<std::vector<std::ptrdiff_t>>* kept_sets = nullptr) {
  const detail::decode::Shape s = detail::decode::check_args(cache, Q, O, params, !dense);
  detail::latte::reset_stats(stats, s.q_heads);
  if (kept_sets) kept_sets->assign(std::size_t(s.q_heads * s.nq), {});
  std::vector<std::int8_t> q8(std::size_t(s.dim));
  std::vector<float> est;
  std::vector<double> acc(std::size_t(s.dv));
  for (std::ptrdiff_t hq = 0; hq < s.q_heads; ++hq) {
    const std::ptrdiff_t g = hq / s.group;
    for (std::ptrdiff_t i = 0; i < s.nq; ++i) {
      const float* q = Q.row(hq, i);
      const float qs = detail::decode::query_scale(q, s.dim);
      for (std::ptrdiff_t t = 0; t < s.dim; ++t) q8[std::size_t(t)] = detail::latte::quantize(q[t], 1.0f / qs);
      const detail::decode::KeyRange k = detail::decode::visible_keys(cache, s, i);
      est.assign(std::size_t(k.end - k.first), 0.0f);
      float emax = -std::numeric_limits<float>::infinity();
      for (std::ptrdiff_t j = k.first; j < k.end; ++j) {
        std::int32_t e = 0;
        for (std::ptrdiff_t t = 0; t < s.dim; ++t)
          e += detail::latte::nibble_hi(q8[std::size_t(t)]) * detail::latte::nibble_hi(cache.key_code(g, j, t));
        const float x = float(e) * detail::decode::estimate_unit(qs, cache.key_scale(g, j), s.scale);
        est[std::size_t(j - k.first)] = x;
        emax = std::max(emax, x);
      }
      const float cutoff = dense ? -std::numeric_limits<float>::infinity()
                                 : emax - detail::decode::theta_of(params, hq);
      std::vector<double> logit;
      std::vector<std::ptrdiff_t> kept;
      for (std::ptrdiff_t j = k.first; j < k.end; ++j) {
        if (!(est[std::size_t(j - k.first)] >= cutoff)) continue;
        std::int32_t dot = 0;
        for (std::ptrdiff_t t = 0; t < s.dim; ++t)
          dot += std::int32_t(q8[std::size_t(t)]) * cache.key_code(g, j, t);
        kept.push_back(j);
        logit.push_back(double(float(dot) * detail::decode::logit_unit(qs, cache.key_scale(g, j), s.scale)));
      }
      double lmax = -std::numeric_limits<double>::infinity(), z = 0.0;
      for (double l : logit) lmax = std::max(lmax, l);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (std::size_t u = 0; u < kept.size(); ++u) {
        const double p = std::exp(logit[u] - lmax);
        z += p;
        for (std::ptrdiff_t c = 0; c < s.dv; ++c) acc[std::size_t(c)] += p * double(cache.value(g, kept[u], c));
      }
      float* o = O.row(hq, i);
      for (std::ptrdiff_t c = 0; c < s.dv; ++c) o[c] = float(acc[std::size_t(c)] / z);
      if (kept_sets) (*kept_sets)[std::size_t(hq * s.nq + i)] = kept;
      if (stats) {
        stats->considered[std::size_t(hq)] += k.end - k.first;
        stats->kept[std::size_t(hq)] += std::int64_t(kept.size());
      }
    }
  }
}

}  // namespace reference
ETK_END_NAMESPACE
