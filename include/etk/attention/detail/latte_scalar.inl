// etk/attention/detail/latte_scalar.inl: portable LATTE primitives (and the layouts every
// ISA path shares). The AVX2 and AVX-512 VNNI files implement the same functions on the
// same layouts; detail/latte_kernels.inl picks, per path, the best one per primitive.
//
// Layouts (built by latte.hpp once per head):
//  * kpack: the keys' high nibbles offset to unsigned, (k >> 4) + 8 in [0, 15], as
//    [key block of 16][dim group of 4][16 keys][4 dims] bytes (G = ceil(dim/4) groups,
//    padding = 8, i.e. a zero nibble). One 64-byte line is what one vpdpbusd consumes.
//  * qh: a query's high nibbles (signed, [-8, 7]) as 4*G bytes, padding 0. The offset on
//    the key side adds 8*sum_t qH_t to every key of the row: a per-row constant, so the
//    max and the threshold test work on the offset values unchanged; exact scores
//    subtract it (latte.hpp).
//  * k8 / kl: each key's int8 code and its low nibble, rows of Dp = ceil(dim/64)*64
//    bytes, zero padded; qh16 = 16*qH (in [-128, 112], fits int8) and ql = qL rows alike.
// Compiled once per dispatch path through latte_kernels.inl (no include guard, no includes).
namespace detail::latte {
namespace scalar {

// The code helpers of latte_params.hpp (outside this path's namespace).
using ::etk::ETK_ISA_NAMESPACE::detail::latte::nibble_hi;
using ::etk::ETK_ISA_NAMESPACE::detail::latte::nibble_lo;
using ::etk::ETK_ISA_NAMESPACE::detail::latte::quantize;

// Writes key j's int8 codes c[0..d) into kpack / k8 / kl.
inline void pack_key_codes(const std::int8_t* c, std::ptrdiff_t d, std::ptrdiff_t j,
                           std::ptrdiff_t G, std::ptrdiff_t Dp, std::uint8_t* kpack,
                           std::int8_t* k8, std::uint8_t* kl) {
  for (std::ptrdiff_t t = 0; t < d; ++t) {
    k8[j * Dp + t] = c[t];
    kl[j * Dp + t] = static_cast<std::uint8_t>(nibble_lo(c[t]));
    kpack[(((j / 16) * G + t / 4) * 16 + j % 16) * 4 + t % 4] =
        static_cast<std::uint8_t>(nibble_hi(c[t]) + 8);
  }
}

// Writes a query's codes into its qh (4*G bytes), qh16 and ql rows; returns 8 * sum qH,
// the share of the key-side offset (+8) in each of the row's estimates.
inline std::int32_t pack_query_codes(const std::int8_t* c, std::ptrdiff_t d, std::int8_t* qh,
                                     std::int8_t* qh16, std::uint8_t* ql) {
  std::int32_t sum_hi = 0;
  for (std::ptrdiff_t t = 0; t < d; ++t) {
    const int hi = nibble_hi(c[t]);
    sum_hi += hi;
    qh[t] = static_cast<std::int8_t>(hi);
    qh16[t] = static_cast<std::int8_t>(16 * hi);
    ql[t] = static_cast<std::uint8_t>(nibble_lo(c[t]));
  }
  return 8 * sum_hi;
}

// Quantizes and packs key j (float row x, inv = 1 / scale).
inline void pack_key(const float* x, std::ptrdiff_t d, float inv, std::ptrdiff_t j,
                     std::ptrdiff_t G, std::ptrdiff_t Dp, std::uint8_t* kpack, std::int8_t* k8,
                     std::uint8_t* kl) {
  for (std::ptrdiff_t t0 = 0; t0 < d; t0 += 64) {
    std::int8_t c[64];
    const std::ptrdiff_t len = d - t0 < 64 ? d - t0 : 64;
    for (std::ptrdiff_t t = 0; t < len; ++t) c[t] = quantize(x[t0 + t], inv);
    // Offsetting every pointer by t0 columns keeps the layout (t0 is a multiple of 4).
    pack_key_codes(c, len, j, G, Dp, kpack + (t0 / 4) * 64, k8 + t0, kl + t0);
  }
}

inline std::int32_t pack_query(const float* x, std::ptrdiff_t d, float inv, std::int8_t* qh,
                               std::int8_t* qh16, std::uint8_t* ql) {
  std::int32_t corr = 0;
  for (std::ptrdiff_t t0 = 0; t0 < d; t0 += 64) {
    std::int8_t c[64];
    const std::ptrdiff_t len = d - t0 < 64 ? d - t0 : 64;
    for (std::ptrdiff_t t = 0; t < len; ++t) c[t] = quantize(x[t0 + t], inv);
    corr += pack_query_codes(c, len, qh + t0, qh16 + t0, ql + t0);
  }
  return corr;
}

// The reuse identity: from a row's offset estimate E' = qH.(kH + 8), its correction
// corr = 8 * sum qH and the remainder rest = 16*qH.kL + qL.k, the exact int8 dot product
// 256*(qH.kH) + 16*(qH.kL + qL.kH) + qL.kL.
inline std::int32_t exact_score(std::int32_t est_offset, std::int32_t corr, std::int32_t rest) {
  return 256 * (est_offset - corr) + rest;
}

// E[r*ldE + j] = sum_t qh[r][t] * ((k_j >> 4) + 8) for r < nq and the 16*nblk keys of
// blocks [0, nblk). Magnitude <= 8*15*4*G: int32 for any accepted dim.
inline void estimate_tile(const std::int8_t* qh, std::ptrdiff_t ldq, int nq,
                          const std::uint8_t* kpack, std::ptrdiff_t G, std::ptrdiff_t nblk,
                          std::int32_t* E, std::ptrdiff_t ldE) {
  for (int r = 0; r < nq; ++r)
    for (std::ptrdiff_t b = 0; b < nblk; ++b)
      for (int kk = 0; kk < 16; ++kk) {
        std::int32_t acc = 0;
        for (std::ptrdiff_t g = 0; g < G; ++g)
          for (int t = 0; t < 4; ++t)
            acc += std::int32_t(qh[r * ldq + 4 * g + t]) * kpack[((b * G + g) * 16 + kk) * 4 + t];
        E[r * ldE + b * 16 + kk] = acc;
      }
}

inline std::int32_t row_max(const std::int32_t* E, std::ptrdiff_t n) {
  std::int32_t m = std::numeric_limits<std::int32_t>::min();
  for (std::ptrdiff_t j = 0; j < n; ++j) m = E[j] > m ? E[j] : m;
  return m;
}

// estimate_tile, then each row's maximum over its nvalid[r] visible keys (INT32_MIN when
// none), from the ISA's estimate_tile and row_max.
template <typename EstFn, typename MaxFn>
void estimate_tile_max_with(EstFn&& est, MaxFn&& mx, int nq, std::int32_t* E, std::ptrdiff_t ldE,
                            const std::ptrdiff_t* nvalid, std::int32_t* rmax) {
  est();
  for (int r = 0; r < nq; ++r)
    rmax[r] = nvalid[r] > 0 ? mx(E + r * ldE, nvalid[r]) : std::numeric_limits<std::int32_t>::min();
}

inline void estimate_tile_max(const std::int8_t* qh, std::ptrdiff_t ldq, int nq,
                              const std::uint8_t* kpack, std::ptrdiff_t G, std::ptrdiff_t nblk,
                              std::int32_t* E, std::ptrdiff_t ldE, const std::ptrdiff_t* nvalid,
                              std::int32_t* rmax) {
  estimate_tile_max_with([&] { estimate_tile(qh, ldq, nq, kpack, G, nblk, E, ldE); }, row_max, nq,
                         E, ldE, nvalid, rmax);
}

// Writes the indices j < n with E[j] >= cut to idx (room for n + 16), returns how many.
inline std::ptrdiff_t select(const std::int32_t* E, std::ptrdiff_t n, std::int32_t cut,
                             std::int32_t* idx) {
  std::ptrdiff_t m = 0;
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    idx[m] = static_cast<std::int32_t>(j);
    m += E[j] >= cut;
  }
  return m;
}

// The reuse remainder of each survivor: 16*(qH.kL) + qL.k = 16*(qH.kL + qL.kH) + qL.kL.
inline void rest_dots(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                      const std::uint8_t* kl, std::ptrdiff_t Dp, const std::int32_t* idx,
                      std::ptrdiff_t n, std::int32_t* out) {
  for (std::ptrdiff_t s = 0; s < n; ++s) {
    const std::int8_t* k = k8 + std::ptrdiff_t(idx[s]) * Dp;
    const std::uint8_t* l = kl + std::ptrdiff_t(idx[s]) * Dp;
    std::int32_t acc = 0;
    for (std::ptrdiff_t t = 0; t < Dp; ++t)
      acc += std::int32_t(qh16[t]) * l[t] + std::int32_t(ql[t]) * k[t];
    out[s] = acc;
  }
}

// Exact int8 scores S[s] of the m survivors idx[s], reusing their offset estimates
// E[idx[s]], given the ISA's remainder function rest(out, m).
template <typename RestFn>
void exact_scores_with(RestFn&& rest, const std::int32_t* E, const std::int32_t* idx,
                       std::ptrdiff_t m, std::int32_t corr, std::int32_t* S) {
  rest(S, m);
  for (std::ptrdiff_t s = 0; s < m; ++s) S[s] = exact_score(E[idx[s]], corr, S[s]);
}

inline void exact_scores(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                         const std::uint8_t* kl, std::ptrdiff_t Dp, const std::int32_t* E,
                         const std::int32_t* idx, std::ptrdiff_t m, std::int32_t corr,
                         std::int32_t* S) {
  exact_scores_with([&](std::int32_t* out, std::ptrdiff_t n) {
    rest_dots(qh16, ql, k8, kl, Dp, idx, n, out);
  }, E, idx, m, corr, S);
}

// The score of m >= 1 int8 scores that gives the largest logit S * mult (mult = the
// logit factor times log2(e)): the largest score for mult >= 0, the smallest otherwise.
inline std::int32_t top_score(const std::int32_t* S, std::ptrdiff_t m, float mult) {
  std::int32_t lo = S[0], hi = S[0];
  for (std::ptrdiff_t s = 1; s < m; ++s) lo = S[s] < lo ? S[s] : lo, hi = S[s] > hi ? S[s] : hi;
  return mult >= 0.0f ? hi : lo;
}

// Unnormalised softmax weights of m >= 1 int8 scores, w[s] = 2^((S[s] - top) * mult),
// top = top_score; returns 1 / their sum (P*V applies it to its outputs). The differences are exact in float (|S| < 2^24), so the exponent carries the
// rounding of one product only; the pieces are the path's softmax ones, given the
// differences with the sign that makes their factor |mult| > 0 (exp2_shift_sum's own
// padding lanes, -inf, need a factor > 0); mult = 0 makes every weight 1 / m.
inline float score_weights(const std::int32_t* S, std::ptrdiff_t m, float mult, float* w) {
  if (mult == 0.0f) {
    std::fill(w, w + m, 1.0f);
    return 1.0f / static_cast<float>(m);
  }
  const std::int32_t top = top_score(S, m, mult);
  const bool up = mult >= 0.0f;
  for (std::ptrdiff_t s = 0; s < m; ++s) w[s] = static_cast<float>(up ? S[s] - top : top - S[s]);
  return 1.0f / softmax::exp2_shift_sum(w, m, 0.0f, up ? mult : -mult);
}

// o[c] = scale * sum_s p[s] * V[idx[s]][c] over the survivors only.
inline void gather_pv(const float* p, const std::int32_t* idx, std::ptrdiff_t n, const float* V,
                      std::ptrdiff_t stride, std::ptrdiff_t dv, float* o, float scale = 1.0f) {
  for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] = 0.0f;
  for (std::ptrdiff_t s = 0; s < n; ++s) {
    const float* v = V + std::ptrdiff_t(idx[s]) * stride;
    const float w = p[s];
    for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] += w * v[c];
  }
  for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] *= scale;
}

}  // namespace scalar
}  // namespace detail::latte
