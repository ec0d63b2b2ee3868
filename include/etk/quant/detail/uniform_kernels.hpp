// etk/quant/detail/uniform_kernels.hpp: fast uniform quantize / dequantize over one
// contiguous run of elements, scalar + AVX2 + AVX-512 (chosen at compile time).
//
// The fast paths divide in float (vdivps, correctly rounded) and then round half to even.
// That equals round-half-even of the exact real quotient except when the float quotient
// lands exactly on a half-integer k + 1/2 while the real one is slightly off it; in that
// case the sign of the exact residual x - (k + 1/2) * scale (one FMA: the sign of a
// correctly rounded value is the sign of the exact value) says which way to go. So every
// path returns the same codes as reference/uniform.hpp, bit for bit (tested).
//
// A run either has one (scale, zero point) for all elements (kPerElement = false) or one
// per element (kPerElement = true, the per-column case). The code type T is int8_t,
// uint8_t, int16_t or uint16_t; T = float stores the dequantized value instead
// (fake quantization). Kernels return true if they met a NaN.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "etk/config.hpp"

#if defined(ETK_HAS_AVX2) || defined(ETK_HAS_AVX512)
#include <immintrin.h>
#endif

ETK_BEGIN_NAMESPACE
namespace quant_detail {
namespace uq {

// Clamped code minus zero point, as a float holding an integer in [lo, hi].
inline float round_code(float x, float s, float lo, float hi) {
  const float qf = x / s;
  float r = std::nearbyint(qf);
  if (std::fabs(qf - r) == 0.5f) {
    const float residual = std::fma(-qf, s, x);
    if (residual > 0) r = qf + 0.5f;
    if (residual < 0) r = qf - 0.5f;
  }
  return std::min(std::max(r, lo), hi);
}

template <typename T, bool kPerElement>
bool quantize_run_scalar(const float* x, std::ptrdiff_t begin, std::ptrdiff_t n, const float* s,
                         const std::int32_t* zp, std::int32_t qmin, std::int32_t qmax, T* out) {
  bool nan = false;
  for (std::ptrdiff_t i = begin; i < n; ++i) {
    const std::ptrdiff_t c = kPerElement ? i : 0;
    if (std::isnan(x[i])) nan = true;
    const float r = round_code(x[i], s[c], static_cast<float>(qmin - zp[c]),
                               static_cast<float>(qmax - zp[c]));
    if constexpr (std::is_same<T, float>::value)
      out[i] = r * s[c];
    else
      out[i] = static_cast<T>(static_cast<std::int32_t>(r) + zp[c]);
  }
  return nan;
}

template <typename T, bool kPerElement>
void dequantize_run_scalar(const T* q, std::ptrdiff_t begin, std::ptrdiff_t n, const float* s,
                           const std::int32_t* zp, float* out) {
  for (std::ptrdiff_t i = begin; i < n; ++i) {
    const std::ptrdiff_t c = kPerElement ? i : 0;
    out[i] = static_cast<float>(static_cast<std::int32_t>(q[i]) - zp[c]) * s[c];
  }
}

#if defined(ETK_HAS_AVX512)
// ---- AVX-512: 16 lanes, masked tails ---------------------------------------------------
inline __m512 round_code16(__m512 x, __m512 s, __m512 lo, __m512 hi, __mmask16 m) {
  const __m512 qf = _mm512_maskz_div_ps(m, x, s);
  __m512 r = _mm512_roundscale_ps(qf, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 d = _mm512_abs_ps(_mm512_sub_ps(qf, r));
  const __mmask16 tie = _mm512_mask_cmp_ps_mask(m, d, _mm512_set1_ps(0.5f), _CMP_EQ_OQ);
  if (tie) {
    const __m512 residual = _mm512_fnmadd_ps(qf, s, x);
    const __mmask16 up = _mm512_mask_cmp_ps_mask(tie, residual, _mm512_setzero_ps(), _CMP_GT_OQ);
    const __mmask16 dn = _mm512_mask_cmp_ps_mask(tie, residual, _mm512_setzero_ps(), _CMP_LT_OQ);
    r = _mm512_mask_add_ps(r, up, qf, _mm512_set1_ps(0.5f));
    r = _mm512_mask_sub_ps(r, dn, qf, _mm512_set1_ps(0.5f));
  }
  // max(NaN, lo) is lo on x86 (second operand), so NaN lanes convert safely.
  return _mm512_min_ps(_mm512_max_ps(r, lo), hi);
}

// Narrow in registers, then store (the memory form of vpmovdb is slow on some cores).
inline void store_codes16(std::int8_t* p, __m512i v, __mmask16 m) { _mm_mask_storeu_epi8(p, m, _mm512_cvtepi32_epi8(v)); }
inline void store_codes16(std::uint8_t* p, __m512i v, __mmask16 m) { _mm_mask_storeu_epi8(p, m, _mm512_cvtepi32_epi8(v)); }
inline void store_codes16(std::int16_t* p, __m512i v, __mmask16 m) { _mm256_mask_storeu_epi16(p, m, _mm512_cvtepi32_epi16(v)); }
inline void store_codes16(std::uint16_t* p, __m512i v, __mmask16 m) { _mm256_mask_storeu_epi16(p, m, _mm512_cvtepi32_epi16(v)); }

inline __m512i load_codes16(const std::int8_t* p, __mmask16 m) { return _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)); }
inline __m512i load_codes16(const std::uint8_t* p, __mmask16 m) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)); }
inline __m512i load_codes16(const std::int16_t* p, __mmask16 m) { return _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, p)); }
inline __m512i load_codes16(const std::uint16_t* p, __mmask16 m) { return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)); }

template <typename T, bool kPerElement>
bool quantize_run(const float* x, std::ptrdiff_t n, const float* s, const std::int32_t* zp,
                  std::int32_t qmin, std::int32_t qmax, T* out) {
  __mmask16 nan = 0;
  const __m512i vqmin = _mm512_set1_epi32(qmin), vqmax = _mm512_set1_epi32(qmax);
  __m512 vs = _mm512_set1_ps(s[0]);
  __m512i vzp = _mm512_set1_epi32(zp[0]);
  __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(vqmin, vzp));
  __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(vqmax, vzp));
  for (std::ptrdiff_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    if (kPerElement) {
      vs = _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, s + i);
      vzp = _mm512_maskz_loadu_epi32(m, zp + i);
      lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(vqmin, vzp));
      hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(vqmax, vzp));
    }
    const __m512 vx = _mm512_maskz_loadu_ps(m, x + i);
    nan |= _mm512_mask_cmp_ps_mask(m, vx, vx, _CMP_UNORD_Q);
    const __m512 r = round_code16(vx, vs, lo, hi, m);
    if constexpr (std::is_same<T, float>::value)
      _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(r, vs));
    else
      store_codes16(out + i, _mm512_add_epi32(_mm512_cvttps_epi32(r), vzp), m);
  }
  return nan != 0;
}

template <typename T, bool kPerElement>
void dequantize_run(const T* q, std::ptrdiff_t n, const float* s, const std::int32_t* zp, float* out) {
  __m512 vs = _mm512_set1_ps(s[0]);
  __m512i vzp = _mm512_set1_epi32(zp[0]);
  for (std::ptrdiff_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - i)) - 1);
    if (kPerElement) {
      vs = _mm512_maskz_loadu_ps(m, s + i);
      vzp = _mm512_maskz_loadu_epi32(m, zp + i);
    }
    const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(load_codes16(q + i, m), vzp));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(v, vs));
  }
}

#elif defined(ETK_HAS_AVX2)
// ---- AVX2: 8 lanes, scalar tails (same algorithm, so the same bits) --------------------
inline __m256 round_code8(__m256 x, __m256 s, __m256 lo, __m256 hi) {
  const __m256 qf = _mm256_div_ps(x, s);
  __m256 r = _mm256_round_ps(qf, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 d = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(qf, r));
  const __m256 tie = _mm256_cmp_ps(d, _mm256_set1_ps(0.5f), _CMP_EQ_OQ);
  if (_mm256_movemask_ps(tie)) {
    const __m256 residual = _mm256_fnmadd_ps(qf, s, x);
    const __m256 zero = _mm256_setzero_ps();
    const __m256 up = _mm256_and_ps(tie, _mm256_cmp_ps(residual, zero, _CMP_GT_OQ));
    const __m256 dn = _mm256_and_ps(tie, _mm256_cmp_ps(residual, zero, _CMP_LT_OQ));
    r = _mm256_blendv_ps(r, _mm256_add_ps(qf, _mm256_set1_ps(0.5f)), up);
    r = _mm256_blendv_ps(r, _mm256_sub_ps(qf, _mm256_set1_ps(0.5f)), dn);
  }
  return _mm256_min_ps(_mm256_max_ps(r, lo), hi);
}

// 8 int32 lanes (already within the type's range) to 8 codes.
inline void store_codes8(std::int8_t* p, __m256i v) {
  const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(v, v), v);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p),
                   _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)));
}
inline void store_codes8(std::uint8_t* p, __m256i v) {
  const __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(v, v), v);
  _mm_storel_epi64(reinterpret_cast<__m128i*>(p),
                   _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1)));
}
inline void store_codes8(std::int16_t* p, __m256i v) {
  const __m256i w = _mm256_packs_epi32(v, v);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm_unpacklo_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
}
inline void store_codes8(std::uint16_t* p, __m256i v) {
  const __m256i w = _mm256_packus_epi32(v, v);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm_unpacklo_epi64(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1)));
}
inline __m256i load_codes8(const std::int8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline __m256i load_codes8(const std::uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline __m256i load_codes8(const std::int16_t* p) { return _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256i load_codes8(const std::uint16_t* p) { return _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

template <typename T, bool kPerElement>
bool quantize_run(const float* x, std::ptrdiff_t n, const float* s, const std::int32_t* zp,
                  std::int32_t qmin, std::int32_t qmax, T* out) {
  __m256 nan = _mm256_setzero_ps();
  const __m256i vqmin = _mm256_set1_epi32(qmin), vqmax = _mm256_set1_epi32(qmax);
  __m256 vs = _mm256_set1_ps(s[0]);
  __m256i vzp = _mm256_set1_epi32(zp[0]);
  __m256 lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(vqmin, vzp));
  __m256 hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(vqmax, vzp));
  std::ptrdiff_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (kPerElement) {
      vs = _mm256_loadu_ps(s + i);
      vzp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp + i));
      lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(vqmin, vzp));
      hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(vqmax, vzp));
    }
    const __m256 vx = _mm256_loadu_ps(x + i);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(vx, vx, _CMP_UNORD_Q));
    const __m256 r = round_code8(vx, vs, lo, hi);
    if constexpr (std::is_same<T, float>::value)
      _mm256_storeu_ps(out + i, _mm256_mul_ps(r, vs));
    else
      store_codes8(out + i, _mm256_add_epi32(_mm256_cvttps_epi32(r), vzp));
  }
  const bool tail_nan = quantize_run_scalar<T, kPerElement>(x, i, n, s, zp, qmin, qmax, out);
  return tail_nan || _mm256_movemask_ps(nan) != 0;
}

template <typename T, bool kPerElement>
void dequantize_run(const T* q, std::ptrdiff_t n, const float* s, const std::int32_t* zp, float* out) {
  __m256 vs = _mm256_set1_ps(s[0]);
  __m256i vzp = _mm256_set1_epi32(zp[0]);
  std::ptrdiff_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (kPerElement) {
      vs = _mm256_loadu_ps(s + i);
      vzp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp + i));
    }
    const __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(load_codes8(q + i), vzp));
    _mm256_storeu_ps(out + i, _mm256_mul_ps(v, vs));
  }
  dequantize_run_scalar<T, kPerElement>(q, i, n, s, zp, out);
}

#else
// ---- scalar ----------------------------------------------------------------------------
template <typename T, bool kPerElement>
bool quantize_run(const float* x, std::ptrdiff_t n, const float* s, const std::int32_t* zp,
                  std::int32_t qmin, std::int32_t qmax, T* out) {
  return quantize_run_scalar<T, kPerElement>(x, 0, n, s, zp, qmin, qmax, out);
}
template <typename T, bool kPerElement>
void dequantize_run(const T* q, std::ptrdiff_t n, const float* s, const std::int32_t* zp, float* out) {
  dequantize_run_scalar<T, kPerElement>(q, 0, n, s, zp, out);
}
#endif

}  // namespace uq
}  // namespace quant_detail
ETK_END_NAMESPACE
