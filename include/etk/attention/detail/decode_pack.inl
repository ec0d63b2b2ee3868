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
// its LS4B dword, for l < ceil(d/8). copy (null: none) receives x[0..d) as well, so a row
// that must be kept (the open block's staged rows, kv_cache.hpp) is read once.
inline void pack_key_row(const float* x, std::ptrdiff_t d, float inv, std::uint8_t* hi,
                         std::uint8_t* lo, float* copy = nullptr) {
  if (copy) std::memcpy(copy, x, std::size_t(d) * sizeof(float));
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

// The codes of x[0..8) (code 0 past `left`): product, clamp to [-127, 127], round to
// nearest even (the current mode, as std::nearbyint; clamping first changes nothing as
// the bounds are integers). max(y, -127) is -127 for a NaN product (0 * inf), as
// std::max(-127, NaN) in detail::latte::quantize.
inline __m256i quantize8(const float* x, std::ptrdiff_t left, __m256 inv) {
  const __m256 y = _mm256_mul_ps(load8(x, left), inv);
  const __m256i c = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(y, _mm256_set1_ps(-127.0f))));
  return left >= 8 ? c : _mm256_and_si256(c, live8(left));
}

// MS4B nibbles of code bytes v: (c >> 4) + 8 = (c ^ 0x80) >> 4 as unsigned bytes.
inline __m128i high(__m128i v) {
  return _mm_and_si128(_mm_srli_epi16(_mm_xor_si128(v, _mm_set1_epi8(-128)), 4), _mm_set1_epi8(15));
}

// 32 dims (4 lines) at a time: packing the 4 code vectors to bytes leaves the first
// halves (dims 8l..8l+3) of the 4 lines in the low 128 bits and the second halves in the
// high 128 bits, in line order; each nibble plane's 4 dwords are then one OR apart.
inline void pack_key_row(const float* x, std::ptrdiff_t d, float inv, std::uint8_t* hi,
                         std::uint8_t* lo, float* copy = nullptr) {
  if (copy) std::memcpy(copy, x, std::size_t(d) * sizeof(float));
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

// This path's LATTE AVX-512 helper (latte_avx512.inl, same target namespace).
using detail::latte::avx512::tail16;

// Lanes [0, left) of 16, for any left (none when left <= 0).
inline __mmask16 live16(std::ptrdiff_t left) { return left <= 0 ? __mmask16(0) : tail16(left); }

// The codes of 16 floats y = x * inv as int32 lanes, before the lower clamp: min(127, y)
// rounded to nearest even (the current mode); a NaN or a y below -2^31 gives INT32_MIN.
// After the saturating packs to bytes, max(., -127) completes detail::latte::quantize:
// every y < -127 and every NaN end at -127, as there (std::max(-127, NaN) is -127).
// Lanes past `live` are code 0 (padding dims), whatever inv is.
inline __m512i codes16_unclamped_below(__m512 xv, __mmask16 live, __m512 inv) {
  return _mm512_maskz_cvtps_epi32(live, _mm512_min_ps(_mm512_set1_ps(127.0f), _mm512_mul_ps(xv, inv)));
}

// 64 dims (8 lines) a step, tails masked. The two saturating packs leave, in 128-bit lane
// i, the codes of dim quads 4u + i (quad = 4 dims) of the step as dword u. Line l pairs
// quads 2l (low nibbles) and 2l + 1 (high nibbles): lane 0 with lane 1 and lane 2 with
// lane 3, dword by dword, so against its lane-pair swap each byte of lanes 0 and 2 takes
// its low nibble from one vector and its high nibble from the other (one ternary logic op
// per plane). Dword u of lane 0 holds line 2u, of lane 2 line 2u + 1; one permute puts
// them in line order for the LS4B row (one store) and the MS4B dwords (one scatter, 64
// bytes apart).
inline void pack_key_row(const float* x, std::ptrdiff_t d, float inv, std::uint8_t* hi,
                         std::uint8_t* lo, float* copy = nullptr) {
  const std::ptrdiff_t L = (d + 7) / 8;
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512i top = _mm512_set1_epi8(-128), low4 = _mm512_set1_epi8(15), lowest = _mm512_set1_epi8(-127);
  const __m512i line_order = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256i line_offset = _mm256_setr_epi32(0, 64, 128, 192, 256, 320, 384, 448);
  for (std::ptrdiff_t t = 0; t < d; t += 64) {
    __m512i q[4];
    for (int u = 0; u < 4; ++u) {
      const __mmask16 live = live16(d - t - 16 * u);
      const __m512 xv = _mm512_maskz_loadu_ps(live, x + t + 16 * u);
      if (copy) _mm512_mask_storeu_ps(copy + t + 16 * u, live, xv);
      q[u] = codes16_unclamped_below(xv, live, vinv);
    }
    const __m512i c = _mm512_max_epi8(_mm512_packs_epi16(_mm512_packs_epi32(q[0], q[1]), _mm512_packs_epi32(q[2], q[3])), lowest);
    const __m512i swap = _mm512_shuffle_i64x2(c, c, _MM_SHUFFLE(2, 3, 0, 1));
    // MS4B nibble (c >> 4) + 8 = (c ^ 0x80) >> 4 as unsigned bytes; 0xE4: m ? a : b bitwise.
    const __m512i h = _mm512_ternarylogic_epi32(_mm512_srli_epi16(_mm512_xor_si512(c, top), 4),
                                                _mm512_xor_si512(swap, top), low4, 0xE4);
    const __m512i l = _mm512_ternarylogic_epi32(c, _mm512_slli_epi16(swap, 4), low4, 0xE4);
    const std::ptrdiff_t nl = L - t / 8 < 8 ? L - t / 8 : 8;
    const __mmask8 lines = __mmask8((1u << nl) - 1u);
    _mm256_mask_storeu_epi32(lo + t / 2, lines, _mm512_castsi512_si256(_mm512_permutexvar_epi32(line_order, l)));
    _mm256_mask_i32scatter_epi32(hi + 8 * t, lines, line_offset,
                                 _mm512_castsi512_si256(_mm512_permutexvar_epi32(line_order, h)), 1);
  }
}

// Two chains over full vectors, then the masked tail.
inline float maxabs_or_nonfinite(const float* x, std::ptrdiff_t n) {
  const __m512i mag = _mm512_set1_epi32(0x7FFFFFFF);
  __m512i m0 = _mm512_setzero_si512(), m1 = m0;
  std::ptrdiff_t c = 0;
  for (; c + 32 <= n; c += 32) {
    m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_loadu_si512(x + c), mag));
    m1 = _mm512_max_epu32(m1, _mm512_and_si512(_mm512_loadu_si512(x + c + 16), mag));
  }
  for (; c < n; c += 16)
    m0 = _mm512_max_epu32(m0, _mm512_and_si512(_mm512_maskz_loadu_epi32(tail16(n - c), x + c), mag));
  const std::uint32_t r = _mm512_reduce_max_epu32(_mm512_max_epu32(m0, m1));
  float f;
  std::memcpy(&f, &r, 4);
  return f;
}

inline void store_fp16(const float* x, std::ptrdiff_t n, std::uint8_t* out) {
  std::ptrdiff_t c = 0;
  for (; c + 16 <= n; c += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * c),
                        _mm512_cvtps_ph(_mm512_loadu_ps(x + c), _MM_FROUND_TO_NEAREST_INT));
  for (; c < n; c += 16) {
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

// The saturating down-conversion and max(., -127) complete codes16_unclamped_below.
inline void store_int8(const float* x, std::ptrdiff_t n, float inv, std::uint8_t* out) {
  const __m512 vinv = _mm512_set1_ps(inv);
  for (std::ptrdiff_t c = 0; c < n; c += 16) {
    const __mmask16 mk = tail16(n - c);
    const __m128i q = _mm512_cvtsepi32_epi8(codes16_unclamped_below(_mm512_maskz_loadu_ps(mk, x + c), mk, vinv));
    _mm_mask_storeu_epi8(out + c, mk, _mm_max_epi8(q, _mm_set1_epi8(-127)));
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
