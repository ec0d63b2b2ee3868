// etk/attention/detail/softmax_kernels.hpp: the vectorised pieces of a softmax row.
//
// Softmax is computed in base 2: a logit row already multiplied by log2(e) needs only
// 2^(x - max), which is cheaper than exp and loses nothing (the factor is folded into
// the scale of Q·K^T by the attention kernels). The kernels here are
//   row_max        max of a row (optionally after adding a bias row, e.g. -inf masks);
//   exp2_shift_sum x <- 2^((x - shift) * mult), returning the sum of the new row;
// with 2^y computed by pexp2_nonpositive: round y to n, a degree-6 polynomial for
// 2^(y-n) and an exponent-bit ldexp. Inputs y <= 0 only (softmax subtracts the max);
// every y below -126.5 (including -inf, i.e. a masked logit) yields exactly 0, so masked
// keys carry exactly zero probability.
//
// One implementation serves every width: Eigen's widest float packet for the flags in
// use (SSE 4, AVX 8, AVX-512 16 lanes). With ETK_FORCE_SCALAR, or when Eigen does not
// vectorise, plain std::exp2 loops are used instead.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "etk/config.hpp"

#if !defined(ETK_FORCE_SCALAR) && defined(EIGEN_VECTORIZE)
#define ETK_SOFTMAX_PACKETS 1
#endif

ETK_BEGIN_NAMESPACE
namespace detail {

constexpr float kLog2e = 1.44269504088896340736f;

#if defined(ETK_SOFTMAX_PACKETS)
using FloatPacket = Eigen::internal::packet_traits<float>::type;
constexpr std::ptrdiff_t kFloatLanes = Eigen::internal::packet_traits<float>::size;

// 2^y for y <= 0 (y = -inf allowed). Relative error: the polynomial is the degree-6
// Taylor series of 2^r on |r| <= 1/2, truncation error (ln2/2)^7/7! < 1.2e-7 (about one
// float ulp), plus about 6 roundings in Horner's scheme and the final product.
template <typename P>
EIGEN_STRONG_INLINE P pexp2_nonpositive(const P& y) {
  using namespace Eigen::internal;
  const P x = pmax(y, pset1<P>(-127.0f));  // max(-inf, -127) = -127 -> result 0
  const P n = pfloor(padd(x, pset1<P>(0.5f)));
  const P r = psub(x, n);  // exact, in [-1/2, 1/2)
  P p = pset1<P>(1.5403530393381606e-4f);
  p = pmadd(p, r, pset1<P>(1.3333558146428443e-3f));
  p = pmadd(p, r, pset1<P>(9.6181291076284772e-3f));
  p = pmadd(p, r, pset1<P>(5.5504108664821580e-2f));
  p = pmadd(p, r, pset1<P>(2.4022650695910071e-1f));
  p = pmadd(p, r, pset1<P>(6.9314718055994531e-1f));
  p = pmadd(p, r, pset1<P>(1.0f));
  // Biased exponent n + 127 clamped to [0, 255]; n = -127 gives the bit pattern 0, i.e.
  // a factor of exactly 0.
  return pldexp_fast_impl<P>::run(p, n);
}
#endif

#if defined(ETK_SOFTMAX_PACKETS)
// x[0..len), len < kFloatLanes, as a packet whose other lanes hold `fill`; and the
// matching store of the first len lanes. AVX-512 uses masked loads and stores; other
// widths go through a padded copy.
inline FloatPacket load_tail(const float* x, std::ptrdiff_t len, float fill) {
#if defined(EIGEN_VECTORIZE_AVX512)
  return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), static_cast<__mmask16>((1u << len) - 1u), x);
#else
  alignas(64) float tmp[kFloatLanes];
  for (std::ptrdiff_t t = 0; t < kFloatLanes; ++t) tmp[t] = t < len ? x[t] : fill;
  return Eigen::internal::pload<FloatPacket>(tmp);
#endif
}
inline void store_tail(float* x, std::ptrdiff_t len, const FloatPacket& a) {
#if defined(EIGEN_VECTORIZE_AVX512)
  _mm512_mask_storeu_ps(x, static_cast<__mmask16>((1u << len) - 1u), a);
#else
  alignas(64) float tmp[kFloatLanes];
  Eigen::internal::pstore(tmp, a);
  for (std::ptrdiff_t t = 0; t < len; ++t) x[t] = tmp[t];
#endif
}
#endif

// max_j (x_j + bias_j) (bias may be null: max_j x_j). With a bias, x is updated to
// x + bias in the same pass. Returns -inf for a row of -inf.
inline float row_max(float* x, const float* bias, std::ptrdiff_t n) {
  std::ptrdiff_t j = 0;
  float m = -std::numeric_limits<float>::infinity();
#if defined(ETK_SOFTMAX_PACKETS)
  using namespace Eigen::internal;
  using P = FloatPacket;
  constexpr std::ptrdiff_t W = kFloatLanes;
  P pm0 = pset1<P>(m), pm1 = pm0;
  if (bias) {
    for (; j + 2 * W <= n; j += 2 * W) {
      const P a = padd(ploadu<P>(x + j), ploadu<P>(bias + j));
      const P b = padd(ploadu<P>(x + j + W), ploadu<P>(bias + j + W));
      pstoreu(x + j, a);
      pstoreu(x + j + W, b);
      pm0 = pmax(pm0, a);
      pm1 = pmax(pm1, b);
    }
  } else {
    for (; j + 2 * W <= n; j += 2 * W) {
      pm0 = pmax(pm0, ploadu<P>(x + j));
      pm1 = pmax(pm1, ploadu<P>(x + j + W));
    }
  }
  for (; j + W <= n; j += W) {
    P a = ploadu<P>(x + j);
    if (bias) {
      a = padd(a, ploadu<P>(bias + j));
      pstoreu(x + j, a);
    }
    pm0 = pmax(pm0, a);
  }
  if (j < n) {  // ragged tail: padding lanes are -inf
    P a = load_tail(x + j, n - j, -std::numeric_limits<float>::infinity());
    if (bias) {
      a = padd(a, load_tail(bias + j, n - j, 0.0f));
      store_tail(x + j, n - j, a);
    }
    pm1 = pmax(pm1, a);
  }
  return predux_max(pmax(pm0, pm1));
#else
  for (; j < n; ++j) {
    if (bias) x[j] += bias[j];
    m = std::max(m, x[j]);
  }
  return m;
#endif
}

// x_j <- 2^((x_j - shift) * mult) for j < n, subtracting first; returns the sum of the new
// x. Requires x_j <= shift (shift finite) so every exponent is <= 0; x_j = -inf gives
// exactly 0 and x_j = shift exactly 1, whatever the magnitude of shift. (The fused form
// x_j*mult - RN(shift*mult) would carry the rounding of shift*mult, up to 2^-25 |shift|,
// into every exponent: for logits near 1e34 it turned the row maximum's 2^0 into 0.)
inline float exp2_shift_sum(float* x, std::ptrdiff_t n, float shift, float mult) {
#if defined(ETK_SOFTMAX_PACKETS)
  using namespace Eigen::internal;
  using P = FloatPacket;
  constexpr std::ptrdiff_t W = kFloatLanes;
  const P pmult = pset1<P>(mult), pshift = pset1<P>(shift);
  P s0 = pzero(pmult), s1 = s0;
  std::ptrdiff_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    const P a = pexp2_nonpositive(pmin(pmul(psub(ploadu<P>(x + j), pshift), pmult), pzero(pmult)));
    const P b =
        pexp2_nonpositive(pmin(pmul(psub(ploadu<P>(x + j + W), pshift), pmult), pzero(pmult)));
    pstoreu(x + j, a);
    pstoreu(x + j + W, b);
    s0 = padd(s0, a);
    s1 = padd(s1, b);
  }
  for (; j + W <= n; j += W) {
    const P a = pexp2_nonpositive(pmin(pmul(psub(ploadu<P>(x + j), pshift), pmult), pzero(pmult)));
    pstoreu(x + j, a);
    s0 = padd(s0, a);
  }
  if (j < n) {  // ragged tail, same arithmetic; padding lanes are -inf, so exactly 0
    const P in = load_tail(x + j, n - j, -std::numeric_limits<float>::infinity());
    const P a = pexp2_nonpositive(pmin(pmul(psub(in, pshift), pmult), pzero(pmult)));
    store_tail(x + j, n - j, a);
    s1 = padd(s1, a);
  }
  return predux(padd(s0, s1));
#else
  float s = 0.0f;
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    x[j] = std::exp2(std::min((x[j] - shift) * mult, 0.0f));
    s += x[j];
  }
  return s;
#endif
}

// x_j *= f for j < n (vectorised by Eigen).
inline void scale_row(float* x, std::ptrdiff_t n, float f) {
  Eigen::Map<Eigen::ArrayXf>(x, n) *= f;
}

}  // namespace detail
ETK_END_NAMESPACE
