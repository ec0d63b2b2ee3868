// etk/attention/detail/latte_avx512.hpp: AVX-512 VNNI LATTE primitives (same contracts and
// layouts as latte_scalar.hpp). vpdpbusd multiplies unsigned by signed bytes and adds
// groups of 4 into int32 lanes (wrapping, but no bound below comes near 2^31):
//  * estimate: unsigned side = the keys' pre-packed (kH + 8) in [0, 15], signed side = a
//    query's 4 high nibbles broadcast; one instruction gives 16 keys x 4 dims.
//  * reuse remainder: vpdpbusd(kL, 16*qH) + vpdpbusd(qL, k), both sides already in range
//    (16*qH in [-128, 112]), so no offset is needed there.
#pragma once

#include "etk/attention/detail/latte_scalar.hpp"

#if defined(ETK_HAS_AVX512VNNI)
#include <immintrin.h>

#include <cstring>

ETK_BEGIN_NAMESPACE
namespace latte {
namespace avx512 {

inline __mmask16 tail16(std::ptrdiff_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
}

// NQ query rows x NB (1 or 2) key blocks of 16 per pass: 2*NQ accumulators.
template <int NQ, int NB>
void estimate_block(const std::int8_t* qh, std::ptrdiff_t ldq, const std::uint8_t* p,
                    std::ptrdiff_t G, std::int32_t* E, std::ptrdiff_t ldE) {
  __m512i acc[NQ][NB];
  for (int r = 0; r < NQ; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_setzero_si512();
  for (std::ptrdiff_t g = 0; g < G; ++g) {
    __m512i k[NB];
    for (int b = 0; b < NB; ++b) k[b] = _mm512_loadu_si512(p + (b * G + g) * 64);
    for (int r = 0; r < NQ; ++r) {
      std::int32_t w;
      std::memcpy(&w, qh + r * ldq + 4 * g, 4);
      const __m512i q = _mm512_set1_epi32(w);
      for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], k[b], q);
    }
  }
  for (int r = 0; r < NQ; ++r)
    for (int b = 0; b < NB; ++b) _mm512_storeu_si512(E + r * ldE + 16 * b, acc[r][b]);
}

template <int NQ>
void estimate_rows(const std::int8_t* qh, std::ptrdiff_t ldq, const std::uint8_t* kpack,
                   std::ptrdiff_t G, std::ptrdiff_t nblk, std::int32_t* E, std::ptrdiff_t ldE) {
  std::ptrdiff_t b = 0;
  for (; b + 2 <= nblk; b += 2) estimate_block<NQ, 2>(qh, ldq, kpack + b * G * 64, G, E + 16 * b, ldE);
  if (b < nblk) estimate_block<NQ, 1>(qh, ldq, kpack + b * G * 64, G, E + 16 * b, ldE);
}

inline void estimate_tile(const std::int8_t* qh, std::ptrdiff_t ldq, int nq,
                          const std::uint8_t* kpack, std::ptrdiff_t G, std::ptrdiff_t nblk,
                          std::int32_t* E, std::ptrdiff_t ldE) {
  switch (nq) {
    case 8: estimate_rows<8>(qh, ldq, kpack, G, nblk, E, ldE); break;
    case 7: estimate_rows<7>(qh, ldq, kpack, G, nblk, E, ldE); break;
    case 6: estimate_rows<6>(qh, ldq, kpack, G, nblk, E, ldE); break;
    case 5: estimate_rows<5>(qh, ldq, kpack, G, nblk, E, ldE); break;
    case 4: estimate_rows<4>(qh, ldq, kpack, G, nblk, E, ldE); break;
    case 3: estimate_rows<3>(qh, ldq, kpack, G, nblk, E, ldE); break;
    case 2: estimate_rows<2>(qh, ldq, kpack, G, nblk, E, ldE); break;
    case 1: estimate_rows<1>(qh, ldq, kpack, G, nblk, E, ldE); break;
    default: break;
  }
}

inline std::int32_t row_max(const std::int32_t* E, std::ptrdiff_t n) {
  const __m512i lowest = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::min());
  __m512i m = lowest;
  for (std::ptrdiff_t j = 0; j < n; j += 16)
    m = _mm512_max_epi32(m, _mm512_mask_loadu_epi32(lowest, tail16(n - j), E + j));
  return _mm512_reduce_max_epi32(m);
}

inline std::ptrdiff_t select(const std::int32_t* E, std::ptrdiff_t n, std::int32_t cut,
                             std::int32_t* idx) {
  const __m512i vcut = _mm512_set1_epi32(cut);
  __m512i j16 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  std::ptrdiff_t m = 0;
  for (std::ptrdiff_t j = 0; j < n; j += 16) {
    const __mmask16 live = tail16(n - j);
    const __mmask16 keep =
        _mm512_mask_cmpge_epi32_mask(live, _mm512_maskz_loadu_epi32(live, E + j), vcut);
    _mm512_storeu_si512(idx + m, _mm512_maskz_compress_epi32(keep, j16));
    m += __builtin_popcount(keep);
    j16 = _mm512_add_epi32(j16, step);
  }
  return m;
}

inline void rest_dots(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                      const std::uint8_t* kl, std::ptrdiff_t Dp, const std::int32_t* idx,
                      std::ptrdiff_t n, std::int32_t* out) {
  for (std::ptrdiff_t s = 0; s < n; ++s) {
    const std::int8_t* k = k8 + std::ptrdiff_t(idx[s]) * Dp;
    const std::uint8_t* l = kl + std::ptrdiff_t(idx[s]) * Dp;
    __m512i acc = _mm512_setzero_si512();
    for (std::ptrdiff_t t = 0; t < Dp; t += 64) {
      acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(l + t), _mm512_loadu_si512(qh16 + t));
      acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(ql + t), _mm512_loadu_si512(k + t));
    }
    out[s] = _mm512_reduce_add_epi32(acc);
  }
}

// P*V over survivors, 64 output columns (4 registers) at a time.
inline void gather_pv(const float* p, const std::int32_t* idx, std::ptrdiff_t n, const float* V,
                      std::ptrdiff_t stride, std::ptrdiff_t dv, float* o) {
  for (std::ptrdiff_t c0 = 0; c0 < dv; c0 += 64) {
    __mmask16 mk[4];
    __m512 acc[4];
    for (int u = 0; u < 4; ++u) {
      const std::ptrdiff_t left = dv - c0 - 16 * u;
      mk[u] = left <= 0 ? __mmask16(0) : tail16(left);
      acc[u] = _mm512_setzero_ps();
    }
    for (std::ptrdiff_t s = 0; s < n; ++s) {
      const float* v = V + std::ptrdiff_t(idx[s]) * stride + c0;
      const __m512 w = _mm512_set1_ps(p[s]);
      for (int u = 0; u < 4; ++u)
        acc[u] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(mk[u], v + 16 * u), acc[u]);
    }
    for (int u = 0; u < 4; ++u) _mm512_mask_storeu_ps(o + c0 + 16 * u, mk[u], acc[u]);
  }
}

}  // namespace avx512
}  // namespace latte
ETK_END_NAMESPACE
#endif
