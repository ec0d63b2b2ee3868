// etk/attention/latte_params.hpp: parameters, statistics and the shared arithmetic of
// LATTE (head-wise thresholded low-precision attention, arXiv 2404.07519).
//
// LATTE takes the attention contract of every etk attention (AttentionParams, params.hpp:
// scale, causal, per-head key padding, finiteness check; one argument check, one default
// scale) and adds its own knobs beside it (theta, the int8 scales, the score mode).
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
  // The shared contract: logit scale (0 = default_attention_scale(dim)), causal mask,
  // key padding (n_k or heads * n_k bytes, e.g. a padded batch folded into the heads),
  // finiteness check.
  AttentionParams attention;
  // Per-head threshold in logit units: key j survives for query i iff
  // est_ij >= max_j est_ij - theta_h. theta >= 0; +inf keeps every key (dense);
  // 0 keeps only the best key(s). Size = heads, or 1 (shared by all heads).
  std::vector<float> theta;
  // Per-head int8 scales (x ~ scale * code). Empty: max-abs / 127 of the head.
  std::vector<float> q_scale;
  std::vector<float> k_scale;
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

namespace detail::latte {

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

// The scale of a block whose max-abs is m: m / 127; 1 for an all-zero block (any scale
// codes it).
inline float scale_of_maxabs(float m) { return m > 0.0f ? m / 127.0f : 1.0f; }

// Max-abs / 127 of a [rows, cols] block (scale_of_maxabs).
inline float maxabs_scale(const float* data, std::ptrdiff_t rows, std::ptrdiff_t cols,
                          std::ptrdiff_t stride) {
  return scale_of_maxabs(matrix_view(data, rows, cols, stride).cwiseAbs().maxCoeff());
}

// Max-abs / 127 of head h's keys the padding row pad (null: none) leaves; 1 when none
// is left or all are zero. Padding keys never reach a query, so they do not set the scale.
template <typename T>
float key_maxabs_scale(const HeadsView<T>& K, std::ptrdiff_t h, const std::uint8_t* pad) {
  if (!pad) return maxabs_scale(K.row(h, 0), K.seq, K.dim, K.row_stride);
  float m = 0.0f;
  for (std::ptrdiff_t j = 0; j < K.seq; ++j)
    if (!pad[j]) m = std::max(m, matrix_view(K.row(h, j), 1, K.dim, K.dim).cwiseAbs().maxCoeff());
  return scale_of_maxabs(m);
}

// The keys of one head the padding mask leaves, in increasing order: key c of the set is
// original key index[c]; before[j] keys of the set precede original key j (j in
// [0, n_k]). Null arrays: no padding, the identity.
struct KeySet {
  const std::int32_t* index = nullptr;
  const std::int32_t* before = nullptr;
  std::ptrdiff_t count = 0;
  std::ptrdiff_t original(std::ptrdiff_t c) const { return index ? index[c] : c; }
  // Keys of the set query i sees: those before its causal end.
  std::ptrdiff_t visible(const AttentionParams& p, std::ptrdiff_t i, std::ptrdiff_t nq,
                         std::ptrdiff_t nk) const {
    const std::ptrdiff_t end = detail::visible_key_end(p, i, nq, nk);
    return before ? before[end] : end;
  }
};

// Fills index (room for nk) and before (room for nk + 1) from head h's padding row (if
// any) and returns the key set.
inline KeySet key_set(const AttentionParams& p, std::ptrdiff_t h, std::ptrdiff_t nk,
                      std::int32_t* index, std::int32_t* before) {
  KeySet s;
  const std::uint8_t* pad = detail::key_padding_row(p, h, nk);
  if (!pad) {
    s.count = nk;
    return s;
  }
  std::int32_t c = 0;
  for (std::ptrdiff_t j = 0; j < nk; ++j) {
    before[j] = c;
    if (!pad[j]) index[c++] = static_cast<std::int32_t>(j);
  }
  before[nk] = c;
  s.index = index;
  s.before = before;
  s.count = c;
  return s;
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

// known (optional, or empty): the heads' max |Q| and |K| from the call's finiteness check
// (detail::HeadMaxAbs), used instead of scanning Q and K again; the scales are the same
// floats either way (K's with a padding row still scans the keys it leaves).
template <typename T>
HeadScales head_scales(const LatteParams& p, std::ptrdiff_t h, const HeadsView<T>& Q,
                       const HeadsView<T>& K, const detail::HeadMaxAbs* known = nullptr) {
  HeadScales s;
  const auto hh = static_cast<std::size_t>(h);
  const bool have = known && !known->q.empty();
  const std::uint8_t* pad = detail::key_padding_row(p.attention, h, K.seq);
  if (!p.q_scale.empty()) s.q = p.q_scale[hh];
  else s.q = have ? scale_of_maxabs(known->q[hh]) : maxabs_scale(Q.row(h, 0), Q.seq, Q.dim, Q.row_stride);
  if (!p.k_scale.empty()) s.k = p.k_scale[hh];
  else s.k = have && !pad ? scale_of_maxabs(known->k[hh]) : key_maxabs_scale(K, h, pad);
  s.softmax_scale = p.attention.scale == 0.0f ? default_attention_scale(Q.dim) : p.attention.scale;
  // Finite inputs must give finite softmax differences (see detail::kMaxLogit): every
  // int8 score is within 127^2 * dim codes, so |logit| <= 127^2 * dim * q * k * scale;
  // the fp32 scores also form the unscaled dot product, bounded by dim * max|q| * max|k|.
  const double dim = static_cast<double>(Q.dim), ss = static_cast<double>(s.softmax_scale);
  const double int8_bound = 127.0 * 127.0 * dim * double(s.q) * double(s.k) * ss;
  double fp32_bound = 0.0;
  if (p.scores == LatteScores::fp32)
    fp32_bound = dim * (have ? double(known->q[hh]) : detail::head_max_abs(Q, h)) *
                 (have ? double(known->k[hh]) : detail::head_max_abs(K, h)) * std::max(1.0, ss);
  detail::check_logit_bound("Q'/'K'/'params", h, std::max(int8_bound, fp32_bound));
  s.logit = s.q * s.k * s.softmax_scale;
  s.cut = margin_cut(double(theta_of(p, h)), 256.0 * double(s.logit));
  return s;
}

// Checks LATTE's own knobs for `heads` heads of dimension `dim`.
inline void check_knobs(std::ptrdiff_t heads, std::ptrdiff_t dim, const LatteParams& p) {
  ETK_CHECK(dim <= kMaxDim, "argument 'q' has dim " << dim << ", LATTE accepts at most "
                                                    << kMaxDim << " (int32 bounds)");
  ETK_CHECK(p.theta.size() == 1 || p.theta.size() == static_cast<std::size_t>(heads),
            "argument 'params.theta' must hold 1 or " << heads << " thresholds, got "
                                                      << p.theta.size());
  for (float t : p.theta)
    ETK_CHECK(t >= 0.0f, "argument 'params.theta' must be >= 0 (or +inf), got " << t);
  for (const auto* sc : {&p.q_scale, &p.k_scale}) {
    const char* name = sc == &p.q_scale ? "params.q_scale" : "params.k_scale";
    ETK_CHECK(sc->empty() || sc->size() == static_cast<std::size_t>(heads),
              "argument '" << name << "' must be empty or hold " << heads << " scales, got "
                           << sc->size());
    for (float s : *sc) check::positive_finite(name, s);
  }
}

// Validates every argument of a LATTE call (the shared attention check, then LATTE's
// own knobs); names the one that is wrong. Returns the resolved shape.
inline detail::AttentionShape check_args(const HeadsView<const float>& Q,
                                         const HeadsView<const float>& K,
                                         const HeadsView<const float>& V,
                                         const HeadsView<float>& O, const LatteParams& p,
                                         detail::HeadMaxAbs* maxabs = nullptr) {
  const auto sh = detail::check_attention(Q, K, &V, p.attention, maxabs);
  detail::check_output("out", O, sh.heads, sh.n_q, "seq (= q.seq)", sh.dv, "dim (= v.dim)", Q, K, &V);
  check_knobs(sh.heads, sh.dk, p);
  return sh;
}

inline void reset_stats(LatteStats* st, std::ptrdiff_t heads) {
  if (!st) return;
  st->considered.assign(static_cast<std::size_t>(heads), 0);
  st->kept.assign(static_cast<std::size_t>(heads), 0);
}

}  // namespace detail::latte
ETK_END_NAMESPACE
