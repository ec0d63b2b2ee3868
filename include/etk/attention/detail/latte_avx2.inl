// etk/attention/detail/latte_avx2.inl: AVX2 LATTE primitives (same contracts and layouts as
// latte_scalar.inl). Products use vpmaddubsw (u8 x s8 -> pairwise int16 sums, saturating)
// then vpmaddwd by ones (-> int32). No saturation can occur:
//   estimate: u8 (kH+8) <= 15, |qH| <= 8          -> |pair sum| <= 2*15*8   = 240
//   rest:     u8 kL, qL <= 15, |qh16|, |k8| <= 128 -> |pair sum| <= 2*15*128 = 3840
// both far below 32767, so the results equal the scalar path bit for bit. The int16 pair
// sums are added in int16 over a run of steps before widening (kEstimateRun steps of
// |sum| <= 240, kRestRun 32-dim chunks of two sums <= 3840 each: both <= 32767).
// Compiled once per dispatch path through latte_kernels.inl (no include guard, no includes).
#if defined(ETK_HAS_AVX2)
namespace latte {
namespace avx2 {

inline __m256i dot4_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Steps of int16 accumulation before widening (240 * 128 and 2 * 3840 * 4 <= 32767).
constexpr std::ptrdiff_t kEstimateRun = 128, kRestRun = 4;

inline __m256i widen16(__m256i a) { return _mm256_madd_epi16(a, _mm256_set1_epi16(1)); }

template <int NQ>
void estimate_rows(const std::int8_t* qh, std::ptrdiff_t ldq, const std::uint8_t* kpack,
                   std::ptrdiff_t G, std::ptrdiff_t nblk, std::int32_t* E, std::ptrdiff_t ldE) {
  for (std::ptrdiff_t b = 0; b < nblk; ++b) {
    __m256i a0[NQ], a1[NQ];
    for (int r = 0; r < NQ; ++r) a0[r] = a1[r] = _mm256_setzero_si256();
    const std::uint8_t* p = kpack + b * G * 64;
    for (std::ptrdiff_t g0 = 0; g0 < G; g0 += kEstimateRun) {
      const std::ptrdiff_t g1 = G - g0 < kEstimateRun ? G : g0 + kEstimateRun;
      __m256i s0[NQ], s1[NQ];  // int16 pair sums of this run
      for (int r = 0; r < NQ; ++r) s0[r] = s1[r] = _mm256_setzero_si256();
      for (std::ptrdiff_t g = g0; g < g1; ++g) {
        const __m256i k0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * g));
        const __m256i k1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * g + 32));
        for (int r = 0; r < NQ; ++r) {
          std::int32_t w;
          std::memcpy(&w, qh + r * ldq + 4 * g, 4);
          const __m256i q = _mm256_set1_epi32(w);
          s0[r] = _mm256_add_epi16(s0[r], _mm256_maddubs_epi16(k0, q));
          s1[r] = _mm256_add_epi16(s1[r], _mm256_maddubs_epi16(k1, q));
        }
      }
      for (int r = 0; r < NQ; ++r) {
        a0[r] = _mm256_add_epi32(a0[r], widen16(s0[r]));
        a1[r] = _mm256_add_epi32(a1[r], widen16(s1[r]));
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

// Lane sums of a[0..8) as one vector (lane s = sum of a[s]).
inline __m256i reduce8(const __m256i* a) {
  const __m256i u0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
  const __m256i u1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20),
                          _mm256_permute2x128_si256(u0, u1, 0x31));
}

// The reuse remainders (contract: latte_scalar.inl), 8 survivors at a time (missing ones
// of the last group read row 0 and are not stored), one 8-way reduction per group.
inline void rest_dots(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                      const std::uint8_t* kl, std::ptrdiff_t Dp, const std::int32_t* idx,
                      std::ptrdiff_t n, std::int32_t* out) {
  for (std::ptrdiff_t s0 = 0; s0 < n; s0 += 8) {
    const int cnt = int(n - s0 < 8 ? n - s0 : 8);
    __m256i acc[8];
    for (int u = 0; u < 8; ++u) {
      const std::ptrdiff_t row = std::ptrdiff_t(u < cnt ? idx[s0 + u] : 0) * Dp;
      const std::int8_t* k = k8 + row;
      const std::uint8_t* l = kl + row;
      acc[u] = _mm256_setzero_si256();
      for (std::ptrdiff_t t0 = 0; t0 < Dp; t0 += 32 * kRestRun) {
        const std::ptrdiff_t t1 = Dp - t0 < 32 * kRestRun ? Dp : t0 + 32 * kRestRun;
        __m256i s = _mm256_setzero_si256();  // int16 pair sums of this run
        for (std::ptrdiff_t t = t0; t < t1; t += 32)
          s = _mm256_add_epi16(s, _mm256_add_epi16(_mm256_maddubs_epi16(load256(l + t), load256(qh16 + t)),
                                                   _mm256_maddubs_epi16(load256(ql + t), load256(k + t))));
        acc[u] = _mm256_add_epi32(acc[u], widen16(s));
      }
    }
    const __m256i sums = reduce8(acc);
    if (cnt == 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + s0), sums);
    } else {
      alignas(32) std::int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sums);
      for (int u = 0; u < cnt; ++u) out[s0 + u] = lanes[u];
    }
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

// Byte lists of the set lanes of each 8-bit mask, in order (lane numbers, the rest 0):
// the vpermd indices that pack the kept lanes of a vector to its front.
struct CompressTable {
  std::uint64_t lanes[256];
};

constexpr CompressTable compress_table() {
  CompressTable t{};
  for (int m = 0; m < 256; ++m) {
    std::uint64_t v = 0;
    int at = 0;
    for (int lane = 0; lane < 8; ++lane)
      if (m >> lane & 1) v |= std::uint64_t(lane) << (8 * at++);
    t.lanes[m] = v;
  }
  return t;
}

inline constexpr CompressTable kCompress = compress_table();

// select (contract: latte_scalar.inl) 8 keys at a time: compare, then pack the kept key
// numbers to the front with vpermd and store all 8 lanes (idx has 16 entries of slack).
inline std::ptrdiff_t select(const std::int32_t* E, std::ptrdiff_t n, std::int32_t cut,
                             std::int32_t* idx) {
  const __m256i vcut = _mm256_set1_epi32(cut), step = _mm256_set1_epi32(8);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i j8 = lane;
  std::ptrdiff_t m = 0;
  for (std::ptrdiff_t j = 0; j < n; j += 8) {
    // Lanes past n are read as masked loads (0) and dropped from the mask.
    const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n - j < 8 ? n - j : 8)), lane);
    const __m256i e = _mm256_maskload_epi32(E + j, live);
    const unsigned below = unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(vcut, e))));
    const unsigned keep = ~below & unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(live)));
    const __m256i perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(kCompress.lanes[keep])));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + m), _mm256_permutevar8x32_epi32(j8, perm));
    m += __builtin_popcount(keep);
    j8 = _mm256_add_epi32(j8, step);
  }
  return m;
}

// P*V over survivors for U registers (8U columns) from c0, the last one masked by
// `last` when MASKED; one accumulator per register, survivors added in order (the FMA
// chain of each register is 8 survivors' latency apart at U = 8).
template <int U, bool MASKED>
void gather_pv_columns(const float* p, const std::int32_t* idx, std::ptrdiff_t n, const float* V,
                       std::ptrdiff_t stride, std::ptrdiff_t c0, __m256i last, float* o) {
  __m256 a[U];
  for (int u = 0; u < U; ++u) a[u] = _mm256_setzero_ps();
  for (std::ptrdiff_t s = 0; s < n; ++s) {
    if (s + 8 < n) {  // rows a few survivors ahead: random rows defeat the prefetcher
      const float* ahead = V + std::ptrdiff_t(idx[s + 8]) * stride + c0;
      for (int u = 0; u < U; u += 2) _mm_prefetch(reinterpret_cast<const char*>(ahead + 8 * u), _MM_HINT_T0);
    }
    const float* v = V + std::ptrdiff_t(idx[s]) * stride + c0;
    const __m256 w = _mm256_set1_ps(p[s]);
    for (int u = 0; u < U; ++u) {
      const __m256 x = MASKED && u == U - 1 ? _mm256_maskload_ps(v + 8 * u, last) : _mm256_loadu_ps(v + 8 * u);
      a[u] = _mm256_fmadd_ps(w, x, a[u]);
    }
  }
  for (int u = 0; u < U; ++u) {
    if (MASKED && u == U - 1)
      _mm256_maskstore_ps(o + c0 + 8 * u, last, a[u]);
    else
      _mm256_storeu_ps(o + c0 + 8 * u, a[u]);
  }
}

// P*V over survivors (contract: latte_scalar.inl), 64 output columns at a time, then the
// ragged end in 8-column registers, the last masked.
inline void gather_pv(const float* p, const std::int32_t* idx, std::ptrdiff_t n, const float* V,
                      std::ptrdiff_t stride, std::ptrdiff_t dv, float* o) {
  const __m256i all = _mm256_set1_epi32(-1);
  std::ptrdiff_t c0 = 0;
  for (; c0 + 64 <= dv; c0 += 64) gather_pv_columns<8, false>(p, idx, n, V, stride, c0, all, o);
  const std::ptrdiff_t left = dv - c0;
  if (left == 0) return;
  const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(int((left - 1) % 8 + 1)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  switch ((left + 7) / 8) {
#define ETK_LATTE_COLUMNS(u) \
  case u: gather_pv_columns<u, true>(p, idx, n, V, stride, c0, last, o); break;
    ETK_LATTE_COLUMNS(1) ETK_LATTE_COLUMNS(2) ETK_LATTE_COLUMNS(3) ETK_LATTE_COLUMNS(4)
    ETK_LATTE_COLUMNS(5) ETK_LATTE_COLUMNS(6) ETK_LATTE_COLUMNS(7) ETK_LATTE_COLUMNS(8)
#undef ETK_LATTE_COLUMNS
    default: break;
  }
}

}  // namespace avx2
}  // namespace latte
#endif  // ETK_HAS_AVX2
