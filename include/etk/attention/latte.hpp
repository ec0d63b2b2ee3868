// etk/attention/latte.hpp: LATTE, head-wise thresholded low-precision attention (fast path).
//
// Per head: Q and K are quantized to int8 (latte_params.hpp). For every query a cheap
// estimate E_ij = qH.kH (the 4 most significant bits of each code) is formed for every
// visible key with 8-bit dot instructions over pre-packed key nibbles; key j survives iff
// 256 * logit * (max_j E_ij - E_ij) <= theta_h, a cut on the logit margin that never needs
// the softmax denominator. Only survivors get an exact score (reusing the estimate:
// S = 256*E + 16*(qH.kL + qL.kH) + qL.kL, equal to the int8 dot product), the softmax and
// the P*V product, which gathers only the kept value rows.
//
// Work is blocked by 8 queries; memory is O((Nq + Nk) * dim) per call (the packed keys of
// one head and an 8 x Nk estimate buffer), never O(Nq * Nk).
#pragma once

#include <Eigen/Core>
#include <vector>

#include "etk/attention/detail/latte_kernels.hpp"
#include "etk/attention/latte_params.hpp"
#include "etk/attention/softmax.hpp"

ETK_BEGIN_NAMESPACE
namespace latte {

constexpr int kQueryTile = 8;

// Reusable buffers for one head (sizes depend on Nk, dim, dv only).
struct Workspace {
  std::ptrdiff_t G = 0, Dp = 0, nblk = 0, ldE = 0;
  std::vector<std::uint8_t> kpack, kl, ql;
  std::vector<std::int8_t> k8, qh, qh16;
  std::vector<std::int32_t> E, idx, scores, corr;
  std::vector<float> w;

  void resize(std::ptrdiff_t nk, std::ptrdiff_t d) {
    G = (d + 3) / 4;
    Dp = (d + 63) / 64 * 64;
    nblk = (nk + 15) / 16;
    ldE = nblk * 16;
    kpack.assign(std::size_t(nblk * G * 64), 8);
    k8.assign(std::size_t(nk * Dp), 0);
    kl.assign(std::size_t(nk * Dp), 0);
    qh.assign(std::size_t(kQueryTile * 4 * G), 0);
    qh16.assign(std::size_t(kQueryTile * Dp), 0);
    ql.assign(std::size_t(kQueryTile * Dp), 0);
    corr.assign(kQueryTile, 0);
    E.resize(std::size_t(kQueryTile * ldE));
    idx.resize(std::size_t(ldE + 16));
    scores.resize(std::size_t(ldE + 16));
    w.resize(std::size_t(ldE + 16));
  }
};

// Softmax weights in place over n logits: w <- exp(w - max); returns their sum. Uses
// the shared vectorised softmax pieces of etk/attention/softmax.hpp (base-2 exponent).
inline float exp_shifted(float* w, std::ptrdiff_t n) {
  return detail::exp2_shift_sum(w, n, detail::row_max(w, nullptr, n), detail::kLog2e);
}

// Packs head h's keys, then walks the queries in tiles of kQueryTile, forming the offset
// estimates E'_ij = qH.(kH + 8) of every visible key and their row maximum. It calls
// row(i, n, r, E, emax) with n visible keys and the tile row r (whose query codes are in
// ws.qh / ws.qh16 / ws.ql / ws.corr); rows with no visible key get n = 0, E = nullptr. Shared by the kernel and by the threshold calibration/training.
template <typename RowFn>
void for_each_estimate_row(const HeadsView<const float>& Q, const HeadsView<const float>& K,
                           const LatteParams& params, std::ptrdiff_t h, const HeadScales& sc,
                           Workspace& ws, RowFn&& row) {
  const std::ptrdiff_t nq = Q.seq, nk = K.seq, d = Q.dim;
  ws.resize(nk, d);
  for (std::ptrdiff_t j = 0; j < nk; ++j)
    simd::pack_key(K.row(h, j), d, 1.0f / sc.k, j, ws.G, ws.Dp, ws.kpack.data(), ws.k8.data(),
                   ws.kl.data());
  for (std::ptrdiff_t i0 = 0; i0 < nq; i0 += kQueryTile) {
    const int nr = int(std::min<std::ptrdiff_t>(kQueryTile, nq - i0));
    std::ptrdiff_t nmax = 0, nvalid[kQueryTile];
    std::int32_t rmax[kQueryTile];
    for (int r = 0; r < nr; ++r) {
      ws.corr[std::size_t(r)] =
          simd::pack_query(Q.row(h, i0 + r), d, 1.0f / sc.q, ws.qh.data() + r * 4 * ws.G,
                           ws.qh16.data() + r * ws.Dp, ws.ql.data() + r * ws.Dp);
      nvalid[r] = allowed_keys(i0 + r, nq, nk, params);
      nmax = std::max(nmax, nvalid[r]);
    }
    simd::estimate_tile_max(ws.qh.data(), 4 * ws.G, nr, ws.kpack.data(), ws.G, (nmax + 15) / 16,
                            ws.E.data(), ws.ldE, nvalid, rmax);
    for (int r = 0; r < nr; ++r)
      row(i0 + r, nvalid[r], r, nvalid[r] ? ws.E.data() + r * ws.ldE : nullptr, rmax[r]);
  }
}

// One head of LATTE, arguments already checked.
inline void head(const HeadsView<const float>& Q, const HeadsView<const float>& K,
                 const HeadsView<const float>& V, const HeadsView<float>& O,
                 const LatteParams& params, std::ptrdiff_t h, Workspace& ws,
                 LatteStats* stats) {
  const std::ptrdiff_t d = Q.dim, dv = V.dim;
  const HeadScales sc = head_scales(params, h, Q, K);
  const float* vbase = V.row(h, 0);
  for_each_estimate_row(Q, K, params, h, sc, ws, [&](std::ptrdiff_t i, std::ptrdiff_t n, int r,
                                                     const std::int32_t* E, std::int32_t emax) {
    float* o = O.row(h, i);
    if (n == 0) {
      for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] = 0.0f;
      return;
    }
    const std::int64_t cut = std::int64_t(emax) - sc.cut;
    const auto cut32 = static_cast<std::int32_t>(
        std::max<std::int64_t>(cut, std::numeric_limits<std::int32_t>::min()));
    std::int32_t* idx = ws.idx.data();
    const std::ptrdiff_t m = simd::select(E, n, cut32, idx);
    float* w = ws.w.data();
    if (params.scores == LatteScores::int8_reuse) {
      std::int32_t* S = ws.scores.data();
      simd::exact_scores(ws.qh16.data() + r * ws.Dp, ws.ql.data() + r * ws.Dp, ws.k8.data(),
                         ws.kl.data(), ws.Dp, E, idx, m, ws.corr[std::size_t(r)], S);
      for (std::ptrdiff_t s = 0; s < m; ++s) w[s] = static_cast<float>(S[s]) * sc.logit;
    } else {
      const float* q = Q.row(h, i);
      for (std::ptrdiff_t s = 0; s < m; ++s) {
        const float* k = K.row(h, idx[s]);
        float acc = 0.0f;
        for (std::ptrdiff_t t = 0; t < d; ++t) acc += q[t] * k[t];
        w[s] = acc * sc.softmax_scale;
      }
    }
    const float inv_z = 1.0f / exp_shifted(w, m);
    simd::gather_pv(w, idx, m, vbase, V.row_stride, dv, o);
    for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] *= inv_z;
    if (stats) {
      stats->considered[std::size_t(h)] += n;
      stats->kept[std::size_t(h)] += m;
    }
  });
}

}  // namespace latte

// LATTE attention over [heads, seq, dim] views: O = softmax over survivors of the
// thresholded estimate, times V. Q [H, Nq, d], K [H, Nk, d], V [H, Nk, dv], O [H, Nq, dv].
// A query with no visible key (fully masked) gets a zero output row. stats (optional)
// receives per head the keys considered and kept.
inline void latte_attention(HeadsView<const float> Q, HeadsView<const float> K,
                            HeadsView<const float> V, HeadsView<float> O,
                            const LatteParams& params, LatteStats* stats = nullptr) {
  latte::check_args(Q, K, V, O, params);
  latte::reset_stats(stats, Q.heads);
  latte::Workspace ws;
  for (std::ptrdiff_t h = 0; h < Q.heads; ++h) latte::head(Q, K, V, O, params, h, ws, stats);
}

ETK_END_NAMESPACE
