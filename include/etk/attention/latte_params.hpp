// etk/attention/latte_params.hpp: parameters, statistics and the shared arithmetic of
// LATTE (head-wise thresholded low-precision attention, arXiv 2404.07519).
//
// Everything both the fast kernel (latte.hpp) and its reference twin
// (reference/latte.hpp) must do identically lives here, once: argument checks, the
// symmetric int8 quantizer, the 4-bit split, the mask geometry and the conversion of the
// logit-unit threshold theta_h into a cut on the integer estimate. Keeping one copy is
// what makes "the fast kept set equals the reference kept set, bit for bit" a property
// of the two kernels rather than of two hand-synchronised formulas.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "etk/attention/params.hpp"
#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE

// How a surviving key's exact score is formed.
enum class LatteScores {
  // From the int8 codes, reusing the estimate: 256*(qH.kH) + 16*(qH.kL + qL.kH) + qL.kL,
  // equal bit for bit to the int8 dot product q.k; then scaled to logits.
  int8_reuse,
  // Recomputed from the float Q and K (for accuracy studies: filter error only).
  fp32,
};

struct LatteParams {
  // Per-head threshold in logit units: key j survives for query i iff
  // est_ij >= max_j est_ij - theta_h. theta >= 0; +inf keeps every key (dense);
  // 0 keeps only the best key(s). Size = heads, or 1 (shared by all heads).
  std::vector<float> theta;
  // Per-head int8 scales (x ~ scale * code). Empty: max-abs / 127 of the head.
  std::vector<float> q_scale;
  std::vector<float> k_scale;
  // Logit = softmax_scale * q.k. 0 means 1/sqrt(dim).
  float softmax_scale = 0.0f;
  // Causal mask: query i (of Nq) sees keys j <= i + (Nk - Nq).
  bool causal = false;
  // Padding mask: keys j >= key_length are padding. -1: every key is valid.
  std::ptrdiff_t key_length = -1;
  LatteScores scores = LatteScores::int8_reuse;
};

// Per head, summed over queries: keys the masks allowed, and keys the filter kept.
struct LatteStats {
  std::vector<std::int64_t> considered;
  std::vector<std::int64_t> kept;
  std::int64_t filtered(std::size_t h) const { return considered[h] - kept[h]; }
  double filtered_fraction(std::size_t h) const {
    return considered[h] ? double(considered[h] - kept[h]) / double(considered[h]) : 0.0;
  }
  double filtered_fraction() const {
    std::int64_t c = 0, k = 0;
    for (std::size_t h = 0; h < considered.size(); ++h) c += considered[h], k += kept[h];
    return c ? double(c - k) / double(c) : 0.0;
  }
};

namespace latte {

// Largest accepted head dim. Bounds (numerics.md, LATTE): |q.k| <= 128*128*dim and
// |qH.(kH+8)| <= 8*15*dim fit int32 with a wide margin; the survivor's remainder terms
// 16*qH.kL + qL.k are each <= 1920*dim in magnitude.
constexpr std::ptrdiff_t kMaxDim = 8192;
// A margin cut at least this large keeps every key (margins are < 2 * 64 * kMaxDim).
constexpr std::int64_t kKeepAll = std::int64_t(1) << 40;

// Symmetric int8 code of x for a scale whose reciprocal is inv_scale: round to nearest
// (ties to even), saturate to [-127, 127].
inline std::int8_t quantize(float x, float inv_scale) {
  float r = std::nearbyint(x * inv_scale);
  r = std::min(127.0f, std::max(-127.0f, r));
  return static_cast<std::int8_t>(r);
}

// The 4-bit split x = 16*hi + lo: hi = x >> 4 (arithmetic, in [-8, 7]), lo = x & 15.
inline int nibble_hi(std::int8_t x) { return static_cast<int>(x) >> 4; }
inline int nibble_lo(std::int8_t x) { return static_cast<int>(x) & 15; }

// Max-abs / 127 of a [rows, cols] block; 1 for an all-zero block (any scale codes it).
inline float maxabs_scale(const float* data, std::ptrdiff_t rows, std::ptrdiff_t cols,
                          std::ptrdiff_t stride) {
  const float m = matrix_view(data, rows, cols, stride).cwiseAbs().maxCoeff();
  return m > 0.0f ? m / 127.0f : 1.0f;
}

// Keys [0, allowed_keys) are visible to query i after the causal and padding masks.
inline std::ptrdiff_t allowed_keys(std::ptrdiff_t i, std::ptrdiff_t nq, std::ptrdiff_t nk,
                                   const LatteParams& p) {
  std::ptrdiff_t n = p.key_length < 0 ? nk : p.key_length;
  if (p.causal) n = std::min(n, detail::causal_key_end(i, nq, nk));  // dense's convention
  return std::max<std::ptrdiff_t>(n, 0);
}

// Resolved per-head quantities.
struct HeadScales {
  float q = 1.0f, k = 1.0f;
  float logit = 1.0f;          // logit of an int8 score S: S * logit (= q * k * softmax_scale)
  float softmax_scale = 1.0f;  // logit of a float dot product
  std::int64_t cut = kKeepAll; // kept iff (max_j E_ij) - E_ij <= cut, E = qH.kH
};

inline float theta_of(const LatteParams& p, std::ptrdiff_t h) {
  return p.theta.size() == 1 ? p.theta[0] : p.theta[static_cast<std::size_t>(h)];
}

// The margin cut: the largest integer m with m * step <= theta, where step = 256 * logit
// is one unit of qH.kH in logits. Computed in double and then verified against the same
// predicate, so the rule "256*logit*(Emax - E) <= theta" is applied exactly as written.
inline std::int64_t margin_cut(double theta, double step) {
  if (!(theta < double(kKeepAll) * step)) return kKeepAll;  // +inf, or beyond any margin
  auto m = static_cast<std::int64_t>(std::floor(theta / step));
  while (double(m + 1) * step <= theta) ++m;
  while (m > 0 && double(m) * step > theta) --m;
  return m;
}

template <typename T>
HeadScales head_scales(const LatteParams& p, std::ptrdiff_t h, const HeadsView<T>& Q,
                       const HeadsView<T>& K) {
  HeadScales s;
  const auto hh = static_cast<std::size_t>(h);
  s.q = p.q_scale.empty() ? maxabs_scale(Q.row(h, 0), Q.seq, Q.dim, Q.row_stride)
                          : p.q_scale[hh];
  s.k = p.k_scale.empty() ? maxabs_scale(K.row(h, 0), K.seq, K.dim, K.row_stride)
                          : p.k_scale[hh];
  s.softmax_scale =
      p.softmax_scale > 0.0f ? p.softmax_scale : 1.0f / std::sqrt(static_cast<float>(Q.dim));
  // Finite inputs must give finite softmax differences (see detail::kMaxLogit): every
  // int8 score is within 127^2 * dim codes, so |logit| <= 127^2 * dim * q * k * scale;
  // the fp32 scores also form the unscaled dot product, bounded by dim * max|q| * max|k|.
  const double dim = static_cast<double>(Q.dim), ss = static_cast<double>(s.softmax_scale);
  const double int8_bound = 127.0 * 127.0 * dim * double(s.q) * double(s.k) * ss;
  double fp32_bound = 0.0;
  if (p.scores == LatteScores::fp32)
    fp32_bound = dim * detail::head_max_abs(Q, h) * detail::head_max_abs(K, h) * std::max(1.0, ss);
  detail::check_logit_bound("Q'/'K'/'params", h, std::max(int8_bound, fp32_bound));
  s.logit = s.q * s.k * s.softmax_scale;
  s.cut = margin_cut(double(theta_of(p, h)), 256.0 * double(s.logit));
  return s;
}

// Validates every argument of a LATTE call; names the one that is wrong.
template <typename T>
void check_args(const HeadsView<T>& Q, const HeadsView<T>& K, const HeadsView<T>& V,
                const HeadsView<float>& O, const LatteParams& p) {
  check::heads_layout("Q", Q);
  check::heads_layout("K", K);
  check::heads_layout("V", V);
  check::heads_layout("O", O);
  check::equal("K", K.heads, "heads (as Q)", Q.heads);
  check::equal("V", V.heads, "heads (as Q)", Q.heads);
  check::equal("O", O.heads, "heads (as Q)", Q.heads);
  check::equal("K", K.dim, "dim (as Q)", Q.dim);
  check::equal("V", V.seq, "seq (as K)", K.seq);
  check::equal("O", O.seq, "seq (as Q)", Q.seq);
  check::equal("O", O.dim, "dim (as V)", V.dim);
  check::no_overlap("O", O, "Q", Q);
  check::no_overlap("O", O, "K", K);
  check::no_overlap("O", O, "V", V);
  ETK_CHECK(Q.dim <= kMaxDim, "argument 'Q' has dim " << Q.dim << ", LATTE accepts at most "
                                                      << kMaxDim << " (int32 bounds)");
  ETK_CHECK(p.theta.size() == 1 || p.theta.size() == static_cast<std::size_t>(Q.heads),
            "argument 'params.theta' must hold 1 or " << Q.heads << " thresholds, got "
                                                      << p.theta.size());
  for (float t : p.theta)
    ETK_CHECK(t >= 0.0f, "argument 'params.theta' must be >= 0 (or +inf), got " << t);
  for (const auto* sc : {&p.q_scale, &p.k_scale}) {
    const char* name = sc == &p.q_scale ? "params.q_scale" : "params.k_scale";
    ETK_CHECK(sc->empty() || sc->size() == static_cast<std::size_t>(Q.heads),
              "argument '" << name << "' must be empty or hold " << Q.heads
                           << " scales, got " << sc->size());
    for (float s : *sc) check::positive_finite(name, s);
  }
  ETK_CHECK(std::isfinite(p.softmax_scale) && p.softmax_scale >= 0.0f,
            "argument 'params.softmax_scale' must be finite and >= 0 (0 = 1/sqrt(dim)), got "
                << p.softmax_scale);
  ETK_CHECK(p.key_length >= -1 && p.key_length <= K.seq,
            "argument 'params.key_length' must be -1 or in [0, " << K.seq << "], got "
                                                                 << p.key_length);
  check::finite("Q", Q);
  check::finite("K", K);
  check::finite("V", V);
}

inline void reset_stats(LatteStats* st, std::ptrdiff_t heads) {
  if (!st) return;
  st->considered.assign(static_cast<std::size_t>(heads), 0);
  st->kept.assign(static_cast<std::size_t>(heads), 0);
}

}  // namespace latte
ETK_END_NAMESPACE
