// etk/lut/detail/pwl_float.hpp: vectorised float evaluation of a piecewise-linear table.
//
// segment index = sum over breakpoints of (x >= b_k) (a mask add per breakpoint), then the
// segment's slope and intercept come from a register permute and y = fma(slope, x,
// intercept). Up to 16 segments fit the permute tables; larger tables, the scalar build
// and the remainder use the reference loop, which computes the same fma.
#pragma once

#include <cstddef>

#include "etk/config.hpp"
#include "etk/lut/reference/pwl.hpp"

#if defined(ETK_HAS_AVX2) || defined(ETK_HAS_AVX512)
#include <immintrin.h>
#endif

ETK_BEGIN_NAMESPACE
namespace lut {
namespace detail {

// Segments the register-permute paths handle.
constexpr int kMaxSimdSegments = 16;

#if defined(ETK_HAS_AVX512)
inline void pwl_eval_float_avx512(const float* bp, const float* sl, const float* ic,
                                  int segments, const float* x, float* y, std::ptrdiff_t n) {
  alignas(64) float s16[16] = {};
  alignas(64) float b16[16] = {};
  for (int s = 0; s < segments; ++s) {
    s16[s] = sl[s];
    b16[s] = ic[s];
  }
  const __m512 vs = _mm512_load_ps(s16);
  const __m512 vb = _mm512_load_ps(b16);
  __m512 bk[kMaxSimdSegments - 1];
  const int nb = segments - 1;
  for (int k = 0; k < nb; ++k) bk[k] = _mm512_set1_ps(bp[k]);
  const __m512i one = _mm512_set1_epi32(1);
  auto kernel = [&](__m512 v) {
    __m512i idx = _mm512_setzero_si512();
    for (int k = 0; k < nb; ++k)
      idx = _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(v, bk[k], _CMP_GE_OQ), idx, one);
    return _mm512_fmadd_ps(_mm512_permutexvar_ps(idx, vs), v, _mm512_permutexvar_ps(idx, vb));
  };
  std::ptrdiff_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, kernel(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, kernel(_mm512_maskz_loadu_ps(m, x + i)));
  }
}
#endif

#if defined(ETK_HAS_AVX2)
template <bool kWide>  // kWide: 9..16 segments, two permute tables and a blend
inline void pwl_eval_float_avx2(const float* bp, const float* sl, const float* ic,
                                int segments, const float* x, float* y, std::ptrdiff_t n) {
  alignas(32) float s16[16] = {};
  alignas(32) float b16[16] = {};
  for (int s = 0; s < segments; ++s) {
    s16[s] = sl[s];
    b16[s] = ic[s];
  }
  const __m256 vs_lo = _mm256_load_ps(s16), vs_hi = _mm256_load_ps(s16 + 8);
  const __m256 vb_lo = _mm256_load_ps(b16), vb_hi = _mm256_load_ps(b16 + 8);
  __m256 bk[kMaxSimdSegments - 1];
  const int nb = segments - 1;
  for (int k = 0; k < nb; ++k) bk[k] = _mm256_set1_ps(bp[k]);
  const __m256i seven = _mm256_set1_epi32(7);
  std::ptrdiff_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    __m256i idx = _mm256_setzero_si256();
    for (int k = 0; k < nb; ++k)  // a true compare is all ones (-1): subtract it
      idx = _mm256_sub_epi32(idx, _mm256_castps_si256(_mm256_cmp_ps(v, bk[k], _CMP_GE_OQ)));
    __m256 s = _mm256_permutevar8x32_ps(vs_lo, idx);
    __m256 b = _mm256_permutevar8x32_ps(vb_lo, idx);
    if (kWide) {  // permutevar uses the low 3 index bits; pick the high table for idx > 7
      const __m256 high = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, seven));
      s = _mm256_blendv_ps(s, _mm256_permutevar8x32_ps(vs_hi, idx), high);
      b = _mm256_blendv_ps(b, _mm256_permutevar8x32_ps(vb_hi, idx), high);
    }
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(s, v, b));
  }
  reference::pwl_eval(bp, sl, ic, segments, x + i, y + i, n - i);
}
#endif

inline void pwl_eval_float(const float* bp, const float* sl, const float* ic, int segments,
                           const float* x, float* y, std::ptrdiff_t n) {
#if defined(ETK_HAS_AVX512)
  if (segments <= kMaxSimdSegments) return pwl_eval_float_avx512(bp, sl, ic, segments, x, y, n);
#elif defined(ETK_HAS_AVX2)
  if (segments <= 8) return pwl_eval_float_avx2<false>(bp, sl, ic, segments, x, y, n);
  if (segments <= kMaxSimdSegments) return pwl_eval_float_avx2<true>(bp, sl, ic, segments, x, y, n);
#endif
  reference::pwl_eval(bp, sl, ic, segments, x, y, n);
}

}  // namespace detail
}  // namespace lut
ETK_END_NAMESPACE
