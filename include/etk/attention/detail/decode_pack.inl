// etk/attention/detail/decode_pack.inl: writing one token into a KVCache page (layouts in
// kv_cache.hpp) on one dispatch path: a key row quantized into its MS4B dwords (one per
// line, 64 bytes apart) and its LS4B row; a value row converted to fp16 / bf16 / int8.
// Scalar, AVX2 and AVX-512 bodies give identical bytes (same quantizer, round to nearest
// even everywhere); paths without AVX2 take the scalar bodies. Compiled once per path
// by etk/core/detail/for_each_target.hpp (no include guard, no includes).
namespace detail::decode {
namespace scalar {

// The code helpers of latte_params.hpp (outside this path's namespace).
using ::etk::ETK_ISA_NAMESPACE::detail::latte::nibble_hi;
using ::etk::ETK_ISA_NAMESPACE::detail::latte::nibble_lo;
using ::etk::ETK_ISA_NAMESPACE::detail::latte::quantize;

// Key row x[0..d) with scale reciprocal inv: hi + 64*l receives line l's dword, lo + 4*l
// its LS4B dword, for l < ceil(d/8).
inline void pack_key_row(const float* x, std::ptrdiff_t d, float inv, std::uint8_t* hi,
                         std::uint8_t* lo) {
  const std::ptrdiff_t L = (d + 7) / 8;
  for (std::ptrdiff_t l = 0; l < L; ++l)
    for (std::ptrdiff_t t = 0; t < 4; ++t) {
      const std::ptrdiff_t a = 8 * l + t, b = a + 4;
      const std::int8_t ca = a < d ? quantize(x[a], inv) : 0;
      const std::int8_t cb = b < d ? quantize(x[b], inv) : 0;
      hi[l * 64 + t] = std::uint8_t((nibble_hi(ca) + 8) | ((nibble_hi(cb) + 8) << 4));
      lo[l * 4 + t] = std::uint8_t(nibble_lo(ca) | (nibble_lo(cb) << 4));
    }
}

// Magnitude bits (sign cleared) compare as unsigned integers in the order of |x|, with
// +inf above every finite value and NaNs above +inf.
inline float maxabs_or_nonfinite(const float* x, std::ptrdiff_t n) {
  std::uint32_t m = 0;
  for (std::ptrdiff_t c = 0; c < n; ++c) {
    std::uint32_t u;
    std::memcpy(&u, x + c, 4);
    m = std::max(m, u & 0x7FFFFFFFu);
  }
  float r;
  std::memcpy(&r, &m, 4);
  return r;
}

inline void store_fp16(const float* x, std::ptrdiff_t n, std::uint8_t* out) {
  for (std::ptrdiff_t c = 0; c < n; ++c) {
    const Eigen::half y(x[c]);
    std::memcpy(out + 2 * c, &y, 2);
  }
}
inline void store_bf16(const float* x, std::ptrdiff_t n, std::uint8_t* out) {
  for (std::ptrdiff_t c = 0; c < n; ++c) {
    const Eigen::bfloat16 y(x[c]);
    std::memcpy(out + 2 * c, &y, 2);
  }
}
inline void store_int8(const float* x, std::ptrdiff_t n, float inv, std::uint8_t* out) {
  for (std::ptrdiff_t c = 0; c < n; ++c) out[c] = std::uint8_t(quantize(x[c], inv));
}

}  // namespace scalar

#if defined(ETK_HAS_AVX2)
namespace avx2 {

// Float lanes [0, min(n, 8)) of a masked load or store.
inline __m256i live8(std::ptrdiff_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(std::int32_t(n < 8 ? n : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// x[0..8) as floats, zero past `left` (masked loads only for a tail).
inline __m256 load8(const float* x, std::ptrdiff_t left) {
  return left >= 8 ? _mm256_loadu_ps(x) : _mm256_maskload_ps(x, live8(left));
}

// The codes of x[t..t+8) (zero past n): product, clamp to [-127, 127], round to nearest
// even (the current mode, as std::nearbyint; clamping first changes nothing as the bounds
// are integers).
inline __m256i quantize8(const float* x, std::ptrdiff_t left, __m256 inv) {
  const __m256 y = _mm256_mul_ps(load8(x, left), inv);
  return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-127.0f), y)));
}

// MS4B nibbles of code bytes v: (c >> 4) + 8 = (c ^ 0x80) >> 4 as unsigned bytes.
inline __m128i high(__m128i v) {
  return _mm_and_si128(_mm_srli_epi16(_mm_xor_si128(v, _mm_set1_epi8(-128)), 4), _mm_set1_epi8(15));
}

// 32 dims (4 lines) at a time: packing the 4 code vectors to bytes leaves the first
// halves (dims 8l..8l+3) of the 4 lines in the low 128 bits and the second halves in the
// high 128 bits, in line order; each nibble plane's 4 dwords are then one OR apart.
inline void pack_key_row(const float* x, std::ptrdiff_t d, float inv, std::uint8_t* hi,
                         std::uint8_t* lo) {
  const std::ptrdiff_t L = (d + 7) / 8;
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m128i m15 = _mm_set1_epi8(15);
  for (std::ptrdiff_t t = 0; t < d; t += 32) {
    const __m256i p01 = _mm256_packs_epi32(quantize8(x + t, d - t, vinv), quantize8(x + t + 8, d - t - 8, vinv));
    const __m256i p23 = _mm256_packs_epi32(quantize8(x + t + 16, d - t - 16, vinv), quantize8(x + t + 24, d - t - 24, vinv));
    const __m256i c = _mm256_packs_epi16(p01, p23);
    const __m128i a = _mm256_castsi256_si128(c), b = _mm256_extracti128_si256(c, 1);
    const __m128i hr = _mm_or_si128(high(a), _mm_slli_epi16(high(b), 4));
    const __m128i lr = _mm_or_si128(_mm_and_si128(a, m15), _mm_slli_epi16(_mm_and_si128(b, m15), 4));
    alignas(16) std::uint32_t hw[4], lw[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(hw), hr);
    _mm_store_si128(reinterpret_cast<__m128i*>(lw), lr);
    const std::ptrdiff_t l0 = t / 8, nl = L - l0 < 4 ? L - l0 : 4;
    for (std::ptrdiff_t u = 0; u < nl; ++u) std::memcpy(hi + (l0 + u) * 64, &hw[u], 4);
    std::memcpy(lo + l0 * 4, lw, std::size_t(4 * nl));
  }
}

inline float maxabs_or_nonfinite(const float* x, std::ptrdiff_t n) {
  const __m256i mag = _mm256_set1_epi32(0x7FFFFFFF);
  __m256i m = _mm256_setzero_si256();
  for (std::ptrdiff_t c = 0; c < n; c += 8)
    m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_castps_si256(load8(x + c, n - c)), mag));
  __m128i h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
  h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0x4E));
  h = _mm_max_epu32(h, _mm_shuffle_epi32(h, 0xB1));
  const std::uint32_t r = std::uint32_t(_mm_cvtsi128_si32(h));
  float f;
  std::memcpy(&f, &r, 4);
  return f;
}

// Stores the first `left` (at most 16) bytes of v.
inline void store_head(std::uint8_t* out, __m128i v, std::ptrdiff_t left) {
  if (left >= 16) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v);
    return;
  }
  alignas(16) std::uint8_t tmp[16];
  _mm_store_si128(reinterpret_cast<__m128i*>(tmp), v);
  std::memcpy(out, tmp, std::size_t(left));
}

inline void store_fp16(const float* x, std::ptrdiff_t n, std::uint8_t* out) {
#if ETK_DISPATCH || defined(__F16C__)  // the dispatched AVX2 target includes f16c
  for (std::ptrdiff_t c = 0; c < n; c += 8)
    store_head(out + 2 * c, _mm256_cvtps_ph(load8(x + c, n - c), _MM_FROUND_TO_NEAREST_INT),
               2 * (n - c));
#else
  scalar::store_fp16(x, n, out);
#endif
}

// Round to nearest even on the bits (finite inputs, as appends are checked).
inline void store_bf16(const float* x, std::ptrdiff_t n, std::uint8_t* out) {
  for (std::ptrdiff_t c = 0; c < n; c += 8) {
    const __m256i u = _mm256_castps_si256(load8(x + c, n - c));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
    // r <= 0xFFFF: the unsigned pack keeps it; the two 64-bit halves hold lanes 0-3, 4-7.
    const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    store_head(out + 2 * c, _mm256_castsi256_si128(p), 2 * (n - c));
  }
}

inline void store_int8(const float* x, std::ptrdiff_t n, float inv, std::uint8_t* out) {
  const __m256 vinv = _mm256_set1_ps(inv);
  for (std::ptrdiff_t c = 0; c < n; c += 8) {
    const __m256i q = quantize8(x + c, n - c, vinv);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    store_head(out + c, _mm_packs_epi16(w, w), n - c < 8 ? n - c : 8);
  }
}

}  // namespace avx2
#endif

#if defined(ETK_HAS_AVX512VNNI)
namespace avx512 {

// This path's LATTE AVX-512 helpers (latte_avx512.inl, same target namespace).
using detail::latte::avx512::quantize16;
using detail::latte::avx512::tail16;

inline void pack_key_row(const float* x, std::ptrdiff_t d, float inv, std::uint8_t* hi,
                         std::uint8_t* lo) {
  const std::ptrdiff_t L = (d + 7) / 8;
  const __m512 vinv = _mm512_set1_ps(inv);
  // Bytes 0..7 <- the codes of dims 0-3 and 8-11 (the low nibbles of lines 2m, 2m+1),
  // and of dims 4-7 and 12-15 (their high nibbles).
  const __m128i even = _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i odd = _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m128i m15 = _mm_set1_epi8(15);
  std::ptrdiff_t t = 0;
  // 64 dims (8 lines) at a time: the same byte steps on four 16-dim lanes, the lanes'
  // 8-byte results gathered into 32 contiguous bytes (the LS4B dwords are one store).
  const __m512i even4 = _mm512_broadcast_i32x4(even), odd4 = _mm512_broadcast_i32x4(odd);
  const __m512i m15z = _mm512_set1_epi8(15), top = _mm512_set1_epi8(-128);
  const __m512i lanes = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  for (; t + 64 <= d; t += 64) {
    __m512i c = _mm512_castsi128_si512(_mm512_cvtepi32_epi8(quantize16(x + t, 0xFFFF, vinv)));
    c = _mm512_inserti32x4(c, _mm512_cvtepi32_epi8(quantize16(x + t + 16, 0xFFFF, vinv)), 1);
    c = _mm512_inserti32x4(c, _mm512_cvtepi32_epi8(quantize16(x + t + 32, 0xFFFF, vinv)), 2);
    c = _mm512_inserti32x4(c, _mm512_cvtepi32_epi8(quantize16(x + t + 48, 0xFFFF, vinv)), 3);
    const __m512i h = _mm512_and_si512(_mm512_srli_epi16(_mm512_xor_si512(c, top), 4), m15z);
    const __m512i l4 = _mm512_and_si512(c, m15z);
    const __m512i hr = _mm512_or_si512(_mm512_shuffle_epi8(h, even4),
                                       _mm512_slli_epi16(_mm512_shuffle_epi8(h, odd4), 4));
    const __m512i lr = _mm512_or_si512(_mm512_shuffle_epi8(l4, even4),
                                       _mm512_slli_epi16(_mm512_shuffle_epi8(l4, odd4), 4));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + (t / 8) * 4),
                        _mm512_castsi512_si256(_mm512_permutexvar_epi64(lanes, lr)));
    alignas(32) std::uint32_t hw[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(hw), _mm512_castsi512_si256(_mm512_permutexvar_epi64(lanes, hr)));
    for (std::ptrdiff_t u = 0; u < 8; ++u) std::memcpy(hi + (t / 8 + u) * 64, &hw[u], 4);
  }
  for (; t < d; t += 16) {
    const __m128i c = _mm512_cvtepi32_epi8(quantize16(x + t, tail16(d - t), vinv));
    // (c >> 4) + 8 = (c ^ 0x80) >> 4 as unsigned bytes.
    const __m128i h = _mm_and_si128(_mm_srli_epi16(_mm_xor_si128(c, _mm_set1_epi8(-128)), 4), m15);
    const __m128i l4 = _mm_and_si128(c, m15);
    const __m128i hr = _mm_or_si128(_mm_shuffle_epi8(h, even), _mm_slli_epi16(_mm_shuffle_epi8(h, odd), 4));
    const __m128i lr = _mm_or_si128(_mm_shuffle_epi8(l4, even), _mm_slli_epi16(_mm_shuffle_epi8(l4, odd), 4));
    alignas(16) std::uint32_t hw[4], lw[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(hw), hr);
    _mm_store_si128(reinterpret_cast<__m128i*>(lw), lr);
    const std::ptrdiff_t l0 = t / 8;
    for (std::ptrdiff_t u = 0; u < 2 && l0 + u < L; ++u) {
      std::memcpy(hi + (l0 + u) * 64, &hw[u], 4);
      std::memcpy(lo + (l0 + u) * 4, &lw[u], 4);
    }
  }
}

inline float maxabs_or_nonfinite(const float* x, std::ptrdiff_t n) {
  const __m512i mag = _mm512_set1_epi32(0x7FFFFFFF);
  __m512i m = _mm512_setzero_si512();
  for (std::ptrdiff_t c = 0; c < n; c += 16)
    m = _mm512_max_epu32(m, _mm512_and_si512(_mm512_maskz_loadu_epi32(tail16(n - c), x + c), mag));
  const std::uint32_t r = _mm512_reduce_max_epu32(m);
  float f;
  std::memcpy(&f, &r, 4);
  return f;
}

inline void store_fp16(const float* x, std::ptrdiff_t n, std::uint8_t* out) {
  for (std::ptrdiff_t c = 0; c < n; c += 16) {
    const __mmask16 mk = tail16(n - c);
    _mm256_mask_storeu_epi16(out + 2 * c, mk,
                             _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mk, x + c), _MM_FROUND_TO_NEAREST_INT));
  }
}

// Round to nearest even on the bits (finite inputs, as appends are checked).
inline void store_bf16(const float* x, std::ptrdiff_t n, std::uint8_t* out) {
  for (std::ptrdiff_t c = 0; c < n; c += 16) {
    const __mmask16 mk = tail16(n - c);
    const __m512i u = _mm512_castps_si512(_mm512_maskz_loadu_ps(mk, x + c));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    _mm256_mask_storeu_epi16(out + 2 * c, mk, _mm512_cvtepi32_epi16(r));
  }
}

inline void store_int8(const float* x, std::ptrdiff_t n, float inv, std::uint8_t* out) {
  const __m512 vinv = _mm512_set1_ps(inv);
  for (std::ptrdiff_t c = 0; c < n; c += 16) {
    const __mmask16 mk = tail16(n - c);
    _mm_mask_storeu_epi8(out + c, mk, _mm512_cvtepi32_epi8(quantize16(x + c, mk, vinv)));
  }
}

}  // namespace avx512
#endif

namespace simd_pack {
#if defined(ETK_HAS_AVX512VNNI)
using avx512::maxabs_or_nonfinite;
using avx512::pack_key_row;
using avx512::store_bf16;
using avx512::store_fp16;
using avx512::store_int8;
#elif defined(ETK_HAS_AVX2)
using avx2::maxabs_or_nonfinite;
using avx2::pack_key_row;
using avx2::store_bf16;
using avx2::store_fp16;
using avx2::store_int8;
#else
using scalar::maxabs_or_nonfinite;
using scalar::pack_key_row;
using scalar::store_bf16;
using scalar::store_fp16;
using scalar::store_int8;
#endif
}  // namespace simd_pack
}  // namespace detail::decode
