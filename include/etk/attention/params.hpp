// etk/attention/params.hpp: what every multi-head attention entry point of etk takes
// besides its tensors, and the one place their arguments are checked.
//
// Tensors are HeadsView<const float> (etk/core/tensor_view.hpp): q [heads, n_q, dk],
// k [heads, n_k, dk], v [heads, n_k, dv], out [heads, n_q, dv], probs [heads, n_q, n_k].
// n_q may differ from n_k and dv from dk; any row and head strides the view allows.
//
// Masks (both optional, combined by "masked if either says so"):
//  * causal: query i sees key j iff j <= i + (n_k - n_q), i.e. the queries are the last
//    n_q positions of the key sequence (the usual causal mask when n_q == n_k; a decoder
//    step with a KV cache when n_q < n_k). With n_q > n_k the first n_q - n_k queries
//    see no key at all.
//  * key padding: one byte per key, nonzero = this key is masked out for every query.
//    `size` is n_k (one mask shared by all heads) or heads * n_k (row h for head h, e.g.
//    a batch folded into the heads dimension, each batch with its own padding).
// A query that sees no key (fully masked row) gets an output row of zeros and a
// probability row of zeros; never NaN.
//
// This is the one contract of every attention of etk: dense_attention, attention_probs
// and dense_attention_with_probs (dense.hpp) take it, LATTE takes it inside LatteParams
// (latte_params.hpp, beside its own knobs), and their reference twins take the same. One
// argument check (detail::check_attention) and one default scale (default_attention_scale)
// serve them all. Threads and scratch come from the trailing `const Context&` argument
// of every entry point (etk/core/context.hpp); results are bit-identical for every pool.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE

// Per-key padding mask: data[h_row * n_k + j] != 0 masks key j (see above).
struct KeyPaddingMask {
  const std::uint8_t* data = nullptr;  // null: no key padding
  std::ptrdiff_t size = 0;             // n_k or heads * n_k
};

struct AttentionParams {
  float scale = 0.0f;           // logits are scale * q·k; 0 selects default_attention_scale(dk)
  bool causal = false;          // causal mask, aligned as documented above
  KeyPaddingMask key_padding;   // optional per-key mask
  bool check_finite = true;     // reject NaN/Inf in q, k, v and logits beyond float
                                // range (check_finite_and_logit_range; O(size) scans)
};

// The default logit scale 1/sqrt(dk): the double quotient rounded once to float (the
// float closest to the true value for every dk tested, 1..4096; 1.0f / std::sqrt(float(dk))
// rounds twice and is one ulp off for some dk, 96 and 112 among them).
inline float default_attention_scale(std::ptrdiff_t dk) {
  return static_cast<float>(1.0 / std::sqrt(static_cast<double>(dk)));
}

namespace detail {

// The checked, resolved problem size of one attention call.
struct AttentionShape {
  std::ptrdiff_t heads = 0, n_q = 0, n_k = 0, dk = 0, dv = 0;
  float scale = 0.0f;  // resolved (never 0)
};

// Exclusive end of the keys query i can see under the causal mask, in [0, n_k].
inline std::ptrdiff_t causal_key_end(std::ptrdiff_t i, std::ptrdiff_t n_q, std::ptrdiff_t n_k) {
  const std::ptrdiff_t end = i + (n_k - n_q) + 1;
  return end < 0 ? 0 : (end > n_k ? n_k : end);
}

// The key padding row for head h, or null.
inline const std::uint8_t* key_padding_row(const AttentionParams& p, std::ptrdiff_t h,
                                           std::ptrdiff_t n_k) {
  if (!p.key_padding.data) return nullptr;
  return p.key_padding.data + (p.key_padding.size == n_k ? 0 : h * n_k);
}

// Exclusive end of the keys query i can see under params' causal mask (n_k without it).
inline std::ptrdiff_t visible_key_end(const AttentionParams& p, std::ptrdiff_t i,
                                      std::ptrdiff_t n_q, std::ptrdiff_t n_k) {
  return p.causal ? causal_key_end(i, n_q, n_k) : n_k;
}

// Largest |x| in head h of a view (0 for an all-zero head), in double.
inline double head_max_abs(const HeadsView<const float>& v, std::ptrdiff_t h) {
  return static_cast<double>(v.head(h).cwiseAbs().maxCoeff());
}

// Largest magnitude bit pattern (the float's bits without the sign) of n floats: for
// finite floats these order as their values, and NaN or +-Inf are exactly the patterns
// >= 0x7F800000. Integer max lanes (vectorised by the compiler), so no floating-point
// mode (-ffast-math included) changes the answer.
inline std::uint32_t max_magnitude_bits(const float* x, std::ptrdiff_t n) {
  std::uint32_t m = 0;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    std::uint32_t u;
    std::memcpy(&u, x + i, sizeof u);
    u &= 0x7FFFFFFFu;
    m = u > m ? u : m;
  }
  return m;
}

// The same as head_max_abs, after rejecting a NaN or infinity in the head as check::finite
// does (its message and location), in one read of each row (before: a max pass and an
// x * 0 sum pass, 22 us of the ~450 us of dense attention at 12 x 128 x 64 on the Xeon).
inline double finite_head_max_abs(const char* name, const HeadsView<const float>& v, std::ptrdiff_t h) {
  const float* base = v.data + h * v.head_stride;
  std::uint32_t m = 0;
  const bool flat = v.row_stride == v.dim;  // the head is one contiguous vector
  for (std::ptrdiff_t r = 0; r < (flat ? 1 : v.seq); ++r) {
    const std::uint32_t row = max_magnitude_bits(base + r * v.row_stride, flat ? v.seq * v.dim : v.dim);
    m = row > m ? row : m;
  }
  if (m >= 0x7F800000u) check::finite(name, base, v.seq, v.dim, v.row_stride);
  float f;
  std::memcpy(&f, &m, sizeof f);
  return static_cast<double>(f);
}

// The largest logit magnitude the kernels accept, in the base-2 units they compute in:
// softmax differences of two such logits (<= 2 * kMaxLogit) stay finite after any
// further factor below 4, so no finite input yields inf - inf = NaN or a lost maximum.
constexpr double kMaxLogit = std::numeric_limits<float>::max() / 8.0;

// Rejects head h when its logits (natural units) can reach `bound`, i.e. when
// bound * log2(e) > kMaxLogit: finite inputs that would overflow float are rejected
// rather than answered with inf or NaN.
inline void check_logit_bound(const char* args, std::ptrdiff_t h, double bound) {
  constexpr double log2e = 1.4426950408889634;
  ETK_CHECK(bound * log2e <= kMaxLogit,
            "arguments '" << args << "': the logits of head " << h << " can reach " << bound
                          << " (dim * max|q| * max|k| * scale), beyond the float range attention "
                          << "accepts (" << kMaxLogit / log2e << "); scale the queries or keys down");
}

// Rejects NaN/Inf in q, k and v (if not null), in that order, then logits out of range:
// dense attention forms q * scale first, then its dot products with k, both bounded per
// head by max|q| * scale and dk * max|q| * max|k| * scale.
// Per head, the largest |q| and |k| that check_finite_and_logit_range found (empty when the
// call did not check): its by-product, which LATTE's quantization scales reuse instead of
// scanning the heads a second time.
struct HeadMaxAbs {
  std::vector<float> q, k;
};

inline void check_finite_and_logit_range(const HeadsView<const float>& q, const HeadsView<const float>& k,
                                         const HeadsView<const float>* v, double scale,
                                         HeadMaxAbs* maxabs = nullptr) {
  HeadMaxAbs own;
  HeadMaxAbs& m = maxabs ? *maxabs : own;
  m.q.resize(static_cast<std::size_t>(q.heads));
  m.k.resize(static_cast<std::size_t>(k.heads));
  // finite_head_max_abs's double holds a float exactly: the casts lose nothing.
  for (std::ptrdiff_t h = 0; h < q.heads; ++h) m.q[std::size_t(h)] = static_cast<float>(finite_head_max_abs("q", q, h));
  for (std::ptrdiff_t h = 0; h < k.heads; ++h) m.k[std::size_t(h)] = static_cast<float>(finite_head_max_abs("k", k, h));
  if (v) check::finite("v", *v);
  for (std::ptrdiff_t h = 0; h < q.heads; ++h) {
    const double a = static_cast<double>(m.q[std::size_t(h)]) * scale;
    check_logit_bound("q'/'k'/'params.scale", h,
                      std::max(a, a * static_cast<double>(m.k[std::size_t(h)]) * static_cast<double>(q.dim)));
  }
}

// An output view of the right shape that shares no element with the inputs q, k, v
// (v may be null): an output never aliases an input.
inline void check_output(const char* name, const HeadsView<float>& out, std::ptrdiff_t heads,
                         std::ptrdiff_t rows, const char* rows_what, std::ptrdiff_t cols,
                         const char* cols_what, const HeadsView<const float>& q,
                         const HeadsView<const float>& k, const HeadsView<const float>* v) {
  check::heads_layout(name, HeadsView<const float>(out));
  check::equal(name, out.heads, "heads (= q.heads)", heads);
  check::equal(name, out.seq, rows_what, rows);
  check::equal(name, out.dim, cols_what, cols);
  check::no_overlap(name, out, "q", q);
  check::no_overlap(name, out, "k", k);
  if (v) check::no_overlap(name, out, "v", *v);
}

// Checks q, k, (v unless null) and p; returns the resolved shape. maxabs (optional)
// receives the heads' max |q| and |k| when p.check_finite (else it is left empty).
inline AttentionShape check_attention(const HeadsView<const float>& q,
                                      const HeadsView<const float>& k,
                                      const HeadsView<const float>* v,
                                      const AttentionParams& p, HeadMaxAbs* maxabs = nullptr) {
  check::heads_layout("q", q);
  check::heads_layout("k", k);
  check::equal("k", k.heads, "heads (= q.heads)", q.heads);
  check::equal("k", k.dim, "dim (= q.dim)", q.dim);
  AttentionShape s;
  s.heads = q.heads;
  s.n_q = q.seq;
  s.n_k = k.seq;
  s.dk = q.dim;
  s.dv = 0;
  if (v) {
    check::heads_layout("v", *v);
    check::equal("v", v->heads, "heads (= q.heads)", q.heads);
    check::equal("v", v->seq, "seq (= k.seq)", k.seq);
    s.dv = v->dim;
  }
  ETK_CHECK(p.scale == 0.0f || (std::isfinite(p.scale) && p.scale > 0.0f),
            "argument 'params.scale' must be 0 (meaning 1/sqrt(dk)) or finite and > 0, got "
                << p.scale);
  s.scale = p.scale == 0.0f ? default_attention_scale(s.dk) : p.scale;
  if (p.key_padding.data) {
    ETK_CHECK(p.key_padding.size == s.n_k || p.key_padding.size == s.heads * s.n_k,
              "argument 'params.key_padding' must have n_k = " << s.n_k << " or heads * n_k = "
                  << s.heads * s.n_k << " entries, got " << p.key_padding.size);
  } else {
    ETK_CHECK(p.key_padding.size == 0, "argument 'params.key_padding' has size "
                                           << p.key_padding.size << " but no data");
  }
  if (p.check_finite) check_finite_and_logit_range(q, k, v, static_cast<double>(s.scale), maxabs);
  return s;
}

}  // namespace detail
ETK_END_NAMESPACE
