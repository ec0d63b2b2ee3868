// etk/attention/detail/latte_avx2.inl: AVX2 LATTE primitives (same contracts and layouts as
// latte_scalar.inl). Products use vpmaddubsw (u8 x s8 -> pairwise int16 sums, saturating)
// then vpmaddwd by ones (-> int32). No saturation can occur:
//   estimate: u8 (kH+8) <= 15, |qH| <= 8          -> |pair sum| <= 2*15*8   = 240
//   rest:     u8 kL, qL <= 15, |qh16|, |k8| <= 128 -> |pair sum| <= 2*15*128 = 3840
// both far below 32767, so the results equal the scalar path bit for bit.
// Compiled once per dispatch path through latte_kernels.inl (no include guard, no includes).
#if defined(ETK_HAS_AVX2)
namespace latte {
namespace avx2 {

inline __m256i dot4_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

template <int NQ>
void estimate_rows(const std::int8_t* qh, std::ptrdiff_t ldq, const std::uint8_t* kpack,
                   std::ptrdiff_t G, std::ptrdiff_t nblk, std::int32_t* E, std::ptrdiff_t ldE) {
  for (std::ptrdiff_t b = 0; b < nblk; ++b) {
    __m256i a0[NQ], a1[NQ];
    for (int r = 0; r < NQ; ++r) a0[r] = a1[r] = _mm256_setzero_si256();
    const std::uint8_t* p = kpack + b * G * 64;
    for (std::ptrdiff_t g = 0; g < G; ++g) {
      const __m256i k0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * g));
      const __m256i k1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * g + 32));
      for (int r = 0; r < NQ; ++r) {
        std::int32_t w;
        std::memcpy(&w, qh + r * ldq + 4 * g, 4);
        const __m256i q = _mm256_set1_epi32(w);
        a0[r] = _mm256_add_epi32(a0[r], dot4_u8s8(k0, q));
        a1[r] = _mm256_add_epi32(a1[r], dot4_u8s8(k1, q));
      }
    }
    for (int r = 0; r < NQ; ++r) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(E + r * ldE + 16 * b), a0[r]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(E + r * ldE + 16 * b + 8), a1[r]);
    }
  }
}

inline void estimate_tile(const std::int8_t* qh, std::ptrdiff_t ldq, int nq,
                          const std::uint8_t* kpack, std::ptrdiff_t G, std::ptrdiff_t nblk,
                          std::int32_t* E, std::ptrdiff_t ldE) {
  while (nq >= 4) {
    estimate_rows<4>(qh, ldq, kpack, G, nblk, E, ldE);
    qh += 4 * ldq, E += 4 * ldE, nq -= 4;
  }
  switch (nq) {
    case 3: estimate_rows<3>(qh, ldq, kpack, G, nblk, E, ldE); break;
    case 2: estimate_rows<2>(qh, ldq, kpack, G, nblk, E, ldE); break;
    case 1: estimate_rows<1>(qh, ldq, kpack, G, nblk, E, ldE); break;
    default: break;
  }
}

inline std::int32_t row_max(const std::int32_t* E, std::ptrdiff_t n) {
  __m256i m = _mm256_set1_epi32(std::numeric_limits<std::int32_t>::min());
  std::ptrdiff_t j = 0;
  for (; j + 8 <= n; j += 8)
    m = _mm256_max_epi32(m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(E + j)));
  alignas(32) std::int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), m);
  std::int32_t r = scalar::row_max(E + j, n - j);
  for (std::int32_t v : lanes) r = v > r ? v : r;
  return r;
}

// (A function, not a lambda: GCC warns that a lambda returning a vector has no AVX ABI.)
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

inline void rest_dots(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                      const std::uint8_t* kl, std::ptrdiff_t Dp, const std::int32_t* idx,
                      std::ptrdiff_t n, std::int32_t* out) {
  for (std::ptrdiff_t s = 0; s < n; ++s) {
    const std::int8_t* k = k8 + std::ptrdiff_t(idx[s]) * Dp;
    const std::uint8_t* l = kl + std::ptrdiff_t(idx[s]) * Dp;
    __m256i acc = _mm256_setzero_si256();
    for (std::ptrdiff_t t = 0; t < Dp; t += 32) {
      acc = _mm256_add_epi32(acc, dot4_u8s8(load256(l + t), load256(qh16 + t)));
      acc = _mm256_add_epi32(acc, dot4_u8s8(load256(ql + t), load256(k + t)));
    }
    __m128i x = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4E));
    x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xB1));
    out[s] = _mm_cvtsi128_si32(x);
  }
}

inline void estimate_tile_max(const std::int8_t* qh, std::ptrdiff_t ldq, int nq,
                              const std::uint8_t* kpack, std::ptrdiff_t G, std::ptrdiff_t nblk,
                              std::int32_t* E, std::ptrdiff_t ldE, const std::ptrdiff_t* nvalid,
                              std::int32_t* rmax) {
  scalar::estimate_tile_max_with([&] { estimate_tile(qh, ldq, nq, kpack, G, nblk, E, ldE); },
                                 row_max, nq, E, ldE, nvalid, rmax);
}

inline void exact_scores(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                         const std::uint8_t* kl, std::ptrdiff_t Dp, const std::int32_t* E,
                         const std::int32_t* idx, std::ptrdiff_t m, std::int32_t corr,
                         std::int32_t* S) {
  scalar::exact_scores_with([&](std::int32_t* out, std::ptrdiff_t n) {
    rest_dots(qh16, ql, k8, kl, Dp, idx, n, out);
  }, E, idx, m, corr, S);
}

}  // namespace avx2
}  // namespace latte
#endif  // ETK_HAS_AVX2
