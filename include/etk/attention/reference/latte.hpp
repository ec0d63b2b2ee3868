// etk/attention/reference/latte.hpp: the plain LATTE twin the fast kernel is tested against.
//
// Written to be obviously correct, not fast: per query it forms the MS4B estimate
// E_ij = sum_t (q_t >> 4) * (k_t >> 4) for every visible key, keeps key j iff
// 256 * logit * (max_j E_ij - E_ij) <= theta_h (via detail::latte::margin_cut), computes each
// survivor's exact score as the plain int8 dot product (no reuse: that is what the fast
// path's reuse must reproduce) or as the float dot product, and takes the softmax and
// P*V over the survivors in double precision.
#pragma once

#include <vector>

#include "etk/attention/latte_params.hpp"
#include "etk/core/context.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

// Same arguments as etk::latte_attention; the context is accepted for symmetry and unused.
inline void latte_attention(HeadsView<const float> Q, HeadsView<const float> K,
                            HeadsView<const float> V, HeadsView<float> O,
                            const LatteParams& params, LatteStats* stats = nullptr,
                            const Context& = {}) {
  detail::latte::check_args(Q, K, V, O, params);
  detail::latte::reset_stats(stats, Q.heads);
  const std::ptrdiff_t nq = Q.seq, nk = K.seq, d = Q.dim, dv = V.dim;
  std::vector<std::int8_t> q8(static_cast<std::size_t>(d)), k8(static_cast<std::size_t>(nk * d));
  std::vector<std::int64_t> est(static_cast<std::size_t>(nk));
  std::vector<double> logits(static_cast<std::size_t>(nk));
  std::vector<double> out(static_cast<std::size_t>(dv));
  for (std::ptrdiff_t h = 0; h < Q.heads; ++h) {
    const detail::latte::HeadScales sc = detail::latte::head_scales(params, h, Q, K);
    const std::uint8_t* pad = detail::key_padding_row(params.attention, h, nk);
    for (std::ptrdiff_t j = 0; j < nk; ++j)
      for (std::ptrdiff_t t = 0; t < d; ++t)
        k8[std::size_t(j * d + t)] = detail::latte::quantize(K.row(h, j)[t], 1.0f / sc.k);
    for (std::ptrdiff_t i = 0; i < nq; ++i) {
      const float* qf = Q.row(h, i);
      for (std::ptrdiff_t t = 0; t < d; ++t) q8[std::size_t(t)] = detail::latte::quantize(qf[t], 1.0f / sc.q);
      // Visible keys: before the causal end and not padding.
      const std::ptrdiff_t end = detail::visible_key_end(params.attention, i, nq, nk);
      const auto masked = [&](std::ptrdiff_t j) { return pad && pad[j]; };
      std::ptrdiff_t n = 0;
      for (std::ptrdiff_t j = 0; j < end; ++j) n += !masked(j);
      float* o = O.row(h, i);
      if (n == 0) {
        for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] = 0.0f;
        continue;
      }
      std::int64_t emax = std::numeric_limits<std::int64_t>::min();
      for (std::ptrdiff_t j = 0; j < end; ++j) {
        if (masked(j)) continue;
        std::int64_t e = 0;
        for (std::ptrdiff_t t = 0; t < d; ++t)
          e += detail::latte::nibble_hi(q8[std::size_t(t)]) * detail::latte::nibble_hi(k8[std::size_t(j * d + t)]);
        est[std::size_t(j)] = e;
        emax = std::max(emax, e);
      }
      double lmax = -std::numeric_limits<double>::infinity();
      std::int64_t kept = 0;
      for (std::ptrdiff_t j = 0; j < end; ++j) {
        if (masked(j) || emax - est[std::size_t(j)] > sc.cut) continue;
        ++kept;
        double l;
        if (params.scores == LatteScores::int8_reuse) {
          std::int64_t s = 0;
          for (std::ptrdiff_t t = 0; t < d; ++t)
            s += std::int64_t(q8[std::size_t(t)]) * k8[std::size_t(j * d + t)];
          // The same float product the fast path forms: exact integer -> float, times logit.
          l = double(static_cast<float>(s) * sc.logit);
        } else {
          double s = 0;
          for (std::ptrdiff_t t = 0; t < d; ++t) s += double(qf[t]) * double(K.row(h, j)[t]);
          l = s * double(sc.softmax_scale);
        }
        logits[std::size_t(j)] = l;
        lmax = std::max(lmax, l);
      }
      double z = 0;
      std::fill(out.begin(), out.end(), 0.0);
      for (std::ptrdiff_t j = 0; j < end; ++j) {
        if (masked(j) || emax - est[std::size_t(j)] > sc.cut) continue;
        const double p = std::exp(logits[std::size_t(j)] - lmax);
        z += p;
        for (std::ptrdiff_t c = 0; c < dv; ++c) out[std::size_t(c)] += p * double(V.row(h, j)[c]);
      }
      for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] = static_cast<float>(out[std::size_t(c)] / z);
      if (stats) {
        stats->considered[std::size_t(h)] += n;
        stats->kept[std::size_t(h)] += kept;
      }
    }
  }
}

}  // namespace reference
ETK_END_NAMESPACE
