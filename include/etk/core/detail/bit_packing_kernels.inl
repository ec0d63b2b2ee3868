// etk/core/detail/bit_packing_kernels.inl: the bodies of bit_packing_kernels.hpp, compiled
// once per dispatch path by etk/core/detail/for_each_target.hpp (no include guard, no
// includes).
namespace detail::bit_packing {

// Codes [begin, n), begin a multiple of 8 (so the stream is byte aligned there). A word
// of 8 bytes is stored where all 8 lie inside the stream (the next word overwrites the
// 8 - b bytes past this one's b), else byte by byte.
inline void pack_generic(const std::uint8_t* codes, std::size_t begin, std::size_t n, int bits,
                         std::uint8_t* out) {
  const unsigned b = unsigned(bits);
  const ::etk::ETK_ISA_NAMESPACE::detail::bit_swar::Swar w(b);
  std::uint8_t* o = out + begin / 8 * b;
  std::uint8_t* const end = out + (n * b + 7) / 8;
  std::size_t i = begin;
  for (; i + 8 <= n; i += 8, o += b) {
    std::uint64_t v;
    std::memcpy(&v, codes + i, 8);
    v = w.pack(v);
    if (end - o >= 8)
      std::memcpy(o, &v, 8);
    else
      for (unsigned k = 0; k < b; ++k) o[k] = std::uint8_t(v >> (8 * k));
  }
  if (i < n) {
    std::uint64_t v = 0;
    const unsigned m = unsigned(n - i);
    for (unsigned k = 0; k < m; ++k) v |= std::uint64_t(codes[i + k]) << (8 * k);
    v = w.pack(v);
    const unsigned bytes = (m * b + 7) / 8;
    for (unsigned k = 0; k < bytes; ++k) o[k] = std::uint8_t(v >> (8 * k));
  }
}

inline void unpack_generic(const std::uint8_t* in, std::size_t begin, std::size_t n, int bits,
                           std::uint8_t* codes) {
  const unsigned b = unsigned(bits);
  const ::etk::ETK_ISA_NAMESPACE::detail::bit_swar::Swar w(b);
  const std::uint8_t* p = in + begin / 8 * b;
  const std::uint8_t* const end = in + (n * b + 7) / 8;
  std::size_t i = begin;
  for (; i + 8 <= n; i += 8, p += b) {
    std::uint64_t v = 0;
    if (end - p >= 8)
      std::memcpy(&v, p, 8);
    else
      for (unsigned k = 0; k < b; ++k) v |= std::uint64_t(p[k]) << (8 * k);
    v = w.unpack(v);
    std::memcpy(codes + i, &v, 8);
  }
  if (i < n) {
    const unsigned m = unsigned(n - i);
    const unsigned bytes = (m * b + 7) / 8;
    std::uint64_t v = 0;
    for (unsigned k = 0; k < bytes; ++k) v |= std::uint64_t(p[k]) << (8 * k);
    v = w.unpack(v);
    for (unsigned k = 0; k < m; ++k) codes[i + k] = std::uint8_t(v >> (8 * k));
  }
}

// 4-bit codes: the SIMD body; returns how many codes it handled (a multiple of 8).
inline std::size_t pack4_simd(const std::uint8_t* codes, std::size_t n, std::uint8_t* out) {
  std::size_t i = 0;
#if defined(ETK_HAS_AVX512)
  const __m512i lo4 = _mm512_set1_epi8(0x0F);
  for (; i + 64 <= n; i += 64) {
    const __m512i c = _mm512_and_si512(_mm512_loadu_si512(codes + i), lo4);
    const __m512i p = _mm512_or_si512(c, _mm512_srli_epi16(c, 4));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i / 2), _mm512_cvtepi16_epi8(p));
  }
#endif
#if defined(ETK_HAS_AVX2)
  const __m256i lo4_2 = _mm256_set1_epi8(0x0F);
  const __m256i lo8 = _mm256_set1_epi16(0x00FF);
  for (; i + 32 <= n; i += 32) {
    const __m256i c = _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(codes + i)), lo4_2);
    const __m256i p = _mm256_and_si256(_mm256_or_si256(c, _mm256_srli_epi16(c, 4)), lo8);
    // packus works per 128-bit lane: bytes 0-7 hold lane 0, bytes 16-23 lane 1.
    const __m256i q = _mm256_permute4x64_epi64(_mm256_packus_epi16(p, p), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i / 2), _mm256_castsi256_si128(q));
  }
#endif
  (void)codes;
  (void)out;
  (void)n;
  return i;
}

inline std::size_t unpack4_simd(const std::uint8_t* in, std::size_t n, std::uint8_t* codes) {
  std::size_t i = 0;
#if defined(ETK_HAS_AVX512)
  const __m512i lo = _mm512_set1_epi16(0x000F), hi = _mm512_set1_epi16(0x0F00);
  for (; i + 64 <= n; i += 64) {
    const __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + i / 2)));
    const __m512i c = _mm512_or_si512(_mm512_and_si512(w, lo), _mm512_and_si512(_mm512_slli_epi16(w, 4), hi));
    _mm512_storeu_si512(codes + i, c);
  }
#endif
#if defined(ETK_HAS_AVX2)
  const __m256i lo2 = _mm256_set1_epi16(0x000F), hi2 = _mm256_set1_epi16(0x0F00);
  for (; i + 32 <= n; i += 32) {
    const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i / 2)));
    const __m256i c = _mm256_or_si256(_mm256_and_si256(w, lo2), _mm256_and_si256(_mm256_slli_epi16(w, 4), hi2));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + i), c);
  }
#endif
  (void)in;
  (void)codes;
  (void)n;
  return i;
}

inline void pack_bits_fast(const std::uint8_t* codes, std::size_t n, int bits, std::uint8_t* out) {
  if (bits == 8) {
    if (n) std::memcpy(out, codes, n);
    return;
  }
  const std::size_t done = bits == 4 ? pack4_simd(codes, n, out) : 0;
  pack_generic(codes, done, n, bits, out);
}

inline void unpack_bits_fast(const std::uint8_t* in, std::size_t n, int bits, std::uint8_t* codes) {
  if (bits == 8) {
    if (n) std::memcpy(codes, in, n);
    return;
  }
  const std::size_t done = bits == 4 ? unpack4_simd(in, n, codes) : 0;
  unpack_generic(in, done, n, bits, codes);
}

}  // namespace detail::bit_packing
