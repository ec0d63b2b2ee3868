// etk/attention/detail/latte_avx2.inl: AVX2 LATTE primitives (same contracts and layouts as
// latte_scalar.inl), bit for bit equal to the scalar path:
//  * estimate: vpmaddubsw (u8 (kH + 8) <= 15 x s8 |qH| <= 8 -> pairwise int16 sums, |sum|
//    <= 240, no saturation), added in int16 over kEstimateRun steps, then widened to int32
//    by vpmaddwd with ones;
//  * exact survivor scores: the int8 codes widened to int16 and vpmaddwd (exact);
//  * selection by compare + vpermd compress, P*V with the output row in registers, and
//    vector packing (the same codes as detail::latte::quantize).
// Compiled once per dispatch path through latte_kernels.inl (no include guard, no includes).
#if defined(ETK_HAS_AVX2)
namespace detail::latte {
namespace avx2 {

// int16 lanes summed in pairs into int32 lanes.
inline __m256i widen16(__m256i a) { return _mm256_madd_epi16(a, _mm256_set1_epi16(1)); }

inline __m256i dot4_u8s8(__m256i u, __m256i s) { return widen16(_mm256_maddubs_epi16(u, s)); }

// Steps of int16 accumulation before widening (240 * 128 <= 32767).
constexpr std::ptrdiff_t kEstimateRun = 128;

// The int16 pair sums of 4 rows x 16 keys over groups [g0, g1), with 8 named
// accumulators, each row's pair pinned by an empty asm: otherwise GCC hoists all four
// broadcasts and products of a step, runs out of registers and spills an accumulator.
inline void estimate_run_4(const std::int8_t* qh, std::ptrdiff_t ldq, const std::uint8_t* p,
                           std::ptrdiff_t g0, std::ptrdiff_t g1, __m256i* s0, __m256i* s1) {
  __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
          a30 = a00, a31 = a00;
  for (std::ptrdiff_t g = g0; g < g1; ++g) {
    const __m256i k0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * g));
    const __m256i k1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * g + 32));
#define ETK_LATTE_ROW(r)                                          \
  {                                                               \
    std::int32_t w;                                               \
    std::memcpy(&w, qh + r * ldq + 4 * g, 4);                     \
    const __m256i q = _mm256_set1_epi32(w);                       \
    a##r##0 = _mm256_add_epi16(a##r##0, _mm256_maddubs_epi16(k0, q)); \
    a##r##1 = _mm256_add_epi16(a##r##1, _mm256_maddubs_epi16(k1, q)); \
    __asm__("" : "+x"(a##r##0), "+x"(a##r##1));                     \
  }
    ETK_LATTE_ROW(0) ETK_LATTE_ROW(1) ETK_LATTE_ROW(2) ETK_LATTE_ROW(3)
#undef ETK_LATTE_ROW
  }
  s0[0] = a00, s1[0] = a01, s0[1] = a10, s1[1] = a11;
  s0[2] = a20, s1[2] = a21, s0[3] = a30, s1[3] = a31;
}

// Rows [0, NQ) of the estimate tile over every key block, and (nvalid non-null) each
// row's running maximum over its visible keys (key index < nvalid[r]) folded into mx[r].
template <int NQ>
void estimate_rows(const std::int8_t* qh, std::ptrdiff_t ldq, const std::uint8_t* kpack,
                   std::ptrdiff_t G, std::ptrdiff_t nblk, std::int32_t* E, std::ptrdiff_t ldE,
                   const std::ptrdiff_t* nvalid, __m256i* mx) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), eight = _mm256_set1_epi32(8);
  const __m256i lowest = _mm256_set1_epi32(std::numeric_limits<std::int32_t>::min());
  for (std::ptrdiff_t b = 0; b < nblk; ++b) {
    const std::uint8_t* p = kpack + b * G * 64;
    // Runs of kEstimateRun groups summed in int16, widened, added into E (a long dim's
    // later runs add to what the earlier ones stored): few live registers, no spills.
    for (std::ptrdiff_t g0 = 0; g0 < G; g0 += kEstimateRun) {
      const std::ptrdiff_t g1 = G - g0 < kEstimateRun ? G : g0 + kEstimateRun;
      __m256i s0[NQ], s1[NQ];
      if (NQ == 4) {
        estimate_run_4(qh, ldq, p, g0, g1, s0, s1);
      } else {
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
      }
      for (int r = 0; r < NQ; ++r) {
        auto* e = reinterpret_cast<__m256i*>(E + r * ldE + 16 * b);
        __m256i a0 = widen16(s0[r]), a1 = widen16(s1[r]);
        if (g0 > 0) {
          a0 = _mm256_add_epi32(a0, _mm256_loadu_si256(e));
          a1 = _mm256_add_epi32(a1, _mm256_loadu_si256(e + 1));
        }
        _mm256_storeu_si256(e, a0);
        _mm256_storeu_si256(e + 1, a1);
        if (!nvalid || g1 < G) continue;
        const std::ptrdiff_t left = nvalid[r] - 16 * b;
        if (left >= 16) {
          mx[r] = _mm256_max_epi32(mx[r], _mm256_max_epi32(a0, a1));
        } else if (left > 0) {  // lanes at or past nvalid[r] count as the lowest value
          const __m256i vl = _mm256_set1_epi32(int(left));
          const __m256i m0 = _mm256_blendv_epi8(lowest, a0, _mm256_cmpgt_epi32(vl, lane));
          const __m256i m1 = _mm256_blendv_epi8(lowest, a1, _mm256_cmpgt_epi32(vl, _mm256_add_epi32(lane, eight)));
          mx[r] = _mm256_max_epi32(mx[r], _mm256_max_epi32(m0, m1));
        }
      }
    }
  }
}

// Rows [0, nq) in groups of 4 (nvalid, rmax: as estimate_tile_max, or both null).
inline void estimate_groups(const std::int8_t* qh, std::ptrdiff_t ldq, int nq,
                            const std::uint8_t* kpack, std::ptrdiff_t G, std::ptrdiff_t nblk,
                            std::int32_t* E, std::ptrdiff_t ldE, const std::ptrdiff_t* nvalid,
                            std::int32_t* rmax) {
  for (int r0 = 0; r0 < nq; r0 += 4) {
    __m256i mx[4];
    for (auto& v : mx) v = _mm256_set1_epi32(std::numeric_limits<std::int32_t>::min());
    const std::int8_t* q = qh + r0 * ldq;
    std::int32_t* e = E + r0 * ldE;
    const std::ptrdiff_t* nv = nvalid ? nvalid + r0 : nullptr;
    switch (nq - r0 < 4 ? nq - r0 : 4) {
      case 4: estimate_rows<4>(q, ldq, kpack, G, nblk, e, ldE, nv, mx); break;
      case 3: estimate_rows<3>(q, ldq, kpack, G, nblk, e, ldE, nv, mx); break;
      case 2: estimate_rows<2>(q, ldq, kpack, G, nblk, e, ldE, nv, mx); break;
      default: estimate_rows<1>(q, ldq, kpack, G, nblk, e, ldE, nv, mx); break;
    }
    if (!rmax) continue;
    for (int r = 0; r < 4 && r0 + r < nq; ++r) {
      __m128i x = _mm_max_epi32(_mm256_castsi256_si128(mx[r]), _mm256_extracti128_si256(mx[r], 1));
      x = _mm_max_epi32(x, _mm_shuffle_epi32(x, 0x4E));
      x = _mm_max_epi32(x, _mm_shuffle_epi32(x, 0xB1));
      rmax[r0 + r] = _mm_cvtsi128_si32(x);
    }
  }
}

inline void estimate_tile(const std::int8_t* qh, std::ptrdiff_t ldq, int nq,
                          const std::uint8_t* kpack, std::ptrdiff_t G, std::ptrdiff_t nblk,
                          std::int32_t* E, std::ptrdiff_t ldE) {
  estimate_groups(qh, ldq, nq, kpack, G, nblk, E, ldE, nullptr, nullptr);
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

// (Functions, not lambdas: GCC warns that a lambda returning a vector has no AVX ABI.)
// 16 int8 codes at p widened to int16.
inline __m256i widen8(const std::int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// A query's int16 codes of dims [t, t + 16): q = qh16 + ql = 16*qH + qL.
inline __m256i query_code16(const std::int8_t* qh16, const std::uint8_t* ql, std::ptrdiff_t t) {
  return _mm256_cvtepi8_epi16(_mm_add_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qh16 + t)),
                                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(ql + t))));
}

// estimate_tile with the row maxima fused in (see latte_scalar.inl for the contract).
inline void estimate_tile_max(const std::int8_t* qh, std::ptrdiff_t ldq, int nq,
                              const std::uint8_t* kpack, std::ptrdiff_t G, std::ptrdiff_t nblk,
                              std::int32_t* E, std::ptrdiff_t ldE, const std::ptrdiff_t* nvalid,
                              std::int32_t* rmax) {
  estimate_groups(qh, ldq, nq, kpack, G, nblk, E, ldE, nvalid, rmax);
}

// The int32 partial sums (8 lanes) of q.k for one key row k of 64 codes, the query's
// int16 codes in q0..q3 (dot64), or of Dp codes, the query's formed on the fly (dot_row).
inline __m256i dot64(const std::int8_t* k, __m256i q0, __m256i q1, __m256i q2, __m256i q3) {
  return _mm256_add_epi32(
      _mm256_add_epi32(_mm256_madd_epi16(widen8(k), q0), _mm256_madd_epi16(widen8(k + 16), q1)),
      _mm256_add_epi32(_mm256_madd_epi16(widen8(k + 32), q2), _mm256_madd_epi16(widen8(k + 48), q3)));
}

inline __m256i dot_row(const std::int8_t* k, const std::int8_t* qh16, const std::uint8_t* ql,
                       std::ptrdiff_t Dp) {
  __m256i a = _mm256_setzero_si256();
  for (std::ptrdiff_t t = 0; t < Dp; t += 16)
    a = _mm256_add_epi32(a, _mm256_madd_epi16(widen8(k + t), query_code16(qh16, ql, t)));
  return a;
}

// Exact scores of the survivors (contract: latte_scalar.inl) as one direct int8 dot per
// survivor, 8 survivors at a time (missing ones of the last group read row 0 and are not
// stored): the query code q = qh16 + ql (16*qH + qL, formed in register) and the key code
// widened to int16, vpmaddwd, one 8-way reduction per group. Exact: |q.k| <= 128 * 128 *
// Dp < 2^31 for Dp <= kMaxDim. Only k8 is read (kl, E and corr are the contract's, unused).
inline void exact_scores(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                         const std::uint8_t*, std::ptrdiff_t Dp, const std::int32_t*,
                         const std::int32_t* idx, std::ptrdiff_t m, std::int32_t,
                         std::int32_t* S) {
  const __m256i q0 = query_code16(qh16, ql, 0), q1 = query_code16(qh16, ql, 16),
                q2 = query_code16(qh16, ql, 32), q3 = query_code16(qh16, ql, 48);
  for (std::ptrdiff_t s0 = 0; s0 < m; s0 += 8) {
    const int cnt = int(m - s0 < 8 ? m - s0 : 8);
    if (s0 + 8 < m)  // the next group's rows: random rows defeat the prefetcher
      for (int u = 0; u < 8 && s0 + 8 + u < m; ++u)
        _mm_prefetch(reinterpret_cast<const char*>(k8 + std::ptrdiff_t(idx[s0 + 8 + u]) * Dp), _MM_HINT_T0);
    const std::int32_t* at = idx + s0;
    const auto row = [&](int u) { return k8 + std::ptrdiff_t(u < cnt ? at[u] : 0) * Dp; };
    // Two halves of 4 survivors, each folded at once (few live registers, no spills).
    const auto dot = [&](int u) { return Dp == 64 ? dot64(row(u), q0, q1, q2, q3) : dot_row(row(u), qh16, ql, Dp); };
    const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(dot(0), dot(1)), _mm256_hadd_epi32(dot(2), dot(3)));
    const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(dot(4), dot(5)), _mm256_hadd_epi32(dot(6), dot(7)));
    const __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20),
                                          _mm256_permute2x128_si256(h0, h1, 0x31));
    if (cnt == 8) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(S + s0), sums);
    } else {
      alignas(32) std::int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), sums);
      for (int u = 0; u < cnt; ++u) S[s0 + u] = lanes[u];
    }
  }
}

// The int8 codes of 8 floats (codes8, as int32) or 16 (quantize16, as int16 lanes in
// order) from x, lanes past `live` read as 0: clamp to [-127, 127], round to nearest even (the default MXCSR mode), equal
// to detail::latte::quantize lane by lane since the bounds are integers.
inline __m256i codes8(const float* x, std::ptrdiff_t live, __m256 inv) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 v = live >= 8 ? _mm256_loadu_ps(x)
                             : _mm256_maskload_ps(x, _mm256_cmpgt_epi32(_mm256_set1_epi32(int(live > 0 ? live : 0)), lane));
  return _mm256_cvtps_epi32(
      _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-127.0f), _mm256_mul_ps(v, inv))));
}

inline __m256i quantize16(const float* x, std::ptrdiff_t live, __m256 inv) {
  return _mm256_permute4x64_epi64(_mm256_packs_epi32(codes8(x, live, inv), codes8(x + 8, live - 8, inv)), 0xD8);
}

// 16 int16 lanes (values in int8 range) as 16 bytes.
inline __m128i bytes16(__m256i v) {
  return _mm_packs_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

inline void pack_key(const float* x, std::ptrdiff_t d, float inv, std::ptrdiff_t j,
                     std::ptrdiff_t G, std::ptrdiff_t Dp, std::uint8_t* kpack, std::int8_t* k8,
                     std::uint8_t* kl) {
  const __m256 vinv = _mm256_set1_ps(inv);
  std::uint8_t* kp = kpack + ((j / 16) * G * 16 + j % 16) * 4;
  for (std::ptrdiff_t t = 0; t < d; t += 16) {
    const __m256i c = quantize16(x + t, d - t, vinv);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(k8 + j * Dp + t), bytes16(c));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(kl + j * Dp + t), bytes16(_mm256_and_si256(c, _mm256_set1_epi16(15))));
    alignas(16) std::uint32_t hi[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(hi),
                    bytes16(_mm256_add_epi16(_mm256_srai_epi16(c, 4), _mm256_set1_epi16(8))));
    for (std::ptrdiff_t g = t / 4; g < t / 4 + 4 && g < G; ++g) std::memcpy(kp + g * 64, &hi[g - t / 4], 4);
  }
}

inline std::int32_t pack_query(const float* x, std::ptrdiff_t d, float inv, std::int8_t* qh,
                               std::int8_t* qh16, std::uint8_t* ql) {
  const __m256 vinv = _mm256_set1_ps(inv);
  __m256i sum = _mm256_setzero_si256();
  for (std::ptrdiff_t t = 0; t < d; t += 16) {
    const __m256i c = quantize16(x + t, d - t, vinv);
    const __m256i hi = _mm256_srai_epi16(c, 4);
    sum = _mm256_add_epi16(sum, hi);  // |sum| <= 8 * ceil(d / 16) per lane: int16 for any accepted dim
    alignas(16) std::int8_t h[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(h), bytes16(hi));
    // qh is only 4*ceil(d/4) bytes long: store the live bytes only.
    std::memcpy(qh + t, h, std::size_t(d - t < 16 ? d - t : 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qh16 + t), bytes16(_mm256_slli_epi16(hi, 4)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(ql + t), bytes16(_mm256_and_si256(c, _mm256_set1_epi16(15))));
  }
  const __m256i wide = widen16(sum);
  __m128i r = _mm_add_epi32(_mm256_castsi256_si128(wide), _mm256_extracti128_si256(wide, 1));
  r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0x4E));
  r = _mm_add_epi32(r, _mm_shuffle_epi32(r, 0xB1));
  return 8 * _mm_cvtsi128_si32(r);
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

// The kept key numbers of 8 keys from j (keep: their kept lanes) packed to the front
// of idx + m with vpermd (all 8 lanes stored: idx has 16 entries of slack); returns m
// plus the number kept.
inline std::ptrdiff_t compress8(unsigned keep, __m256i j8, std::int32_t* idx, std::ptrdiff_t m) {
  const __m256i perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(kCompress.lanes[keep])));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + m), _mm256_permutevar8x32_epi32(j8, perm));
  return m + __builtin_popcount(keep);
}

// Lanes of e below the cut, as a bit mask.
inline unsigned below_cut(__m256i vcut, __m256i e) {
  return unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(vcut, e))));
}

// select (contract: latte_scalar.inl) 8 keys at a time: compare, then compress8; the
// ragged end through a masked load.
inline std::ptrdiff_t select(const std::int32_t* E, std::ptrdiff_t n, std::int32_t cut,
                             std::int32_t* idx) {
  const __m256i vcut = _mm256_set1_epi32(cut), step = _mm256_set1_epi32(8);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i j8 = lane;
  std::ptrdiff_t m = 0, j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(E + j));
    m = compress8(~below_cut(vcut, e) & 0xFFu, j8, idx, m);
    j8 = _mm256_add_epi32(j8, step);
  }
  if (j < n) {  // lanes past n read as 0 and are dropped from the mask
    const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n - j)), lane);
    const __m256i e = _mm256_maskload_epi32(E + j, live);
    m = compress8(~below_cut(vcut, e) & unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(live))), j8, idx, m);
  }
  return m;
}

// P*V over survivors for U registers (8U columns) from c0, the last one masked by
// `last` when MASKED; one accumulator per register, survivors added in order (the FMA
// chain of each register is 8 survivors' latency apart at U = 8).
template <int U, bool MASKED>
void gather_pv_columns(const float* p, const std::int32_t* idx, std::ptrdiff_t n, const float* V,
                       std::ptrdiff_t stride, std::ptrdiff_t c0, __m256i last, float scale, float* o) {
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
  const __m256 f = _mm256_set1_ps(scale);
  for (int u = 0; u < U; ++u) {
    if (MASKED && u == U - 1)
      _mm256_maskstore_ps(o + c0 + 8 * u, last, _mm256_mul_ps(a[u], f));
    else
      _mm256_storeu_ps(o + c0 + 8 * u, _mm256_mul_ps(a[u], f));
  }
}

// P*V over survivors (contract: latte_scalar.inl), 64 output columns at a time, then the
// ragged end in 8-column registers, the last masked.
inline void gather_pv(const float* p, const std::int32_t* idx, std::ptrdiff_t n, const float* V,
                      std::ptrdiff_t stride, std::ptrdiff_t dv, float* o, float scale = 1.0f) {
  const __m256i all = _mm256_set1_epi32(-1);
  std::ptrdiff_t c0 = 0;
  for (; c0 + 64 <= dv; c0 += 64) gather_pv_columns<8, false>(p, idx, n, V, stride, c0, all, scale, o);
  const std::ptrdiff_t left = dv - c0;
  if (left == 0) return;
  const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(int((left - 1) % 8 + 1)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  switch ((left + 7) / 8) {
#define ETK_LATTE_COLUMNS(u) \
  case u: gather_pv_columns<u, true>(p, idx, n, V, stride, c0, last, scale, o); break;
    ETK_LATTE_COLUMNS(1) ETK_LATTE_COLUMNS(2) ETK_LATTE_COLUMNS(3) ETK_LATTE_COLUMNS(4)
    ETK_LATTE_COLUMNS(5) ETK_LATTE_COLUMNS(6) ETK_LATTE_COLUMNS(7) ETK_LATTE_COLUMNS(8)
#undef ETK_LATTE_COLUMNS
    default: break;
  }
}

}  // namespace avx2
}  // namespace detail::latte
#endif  // ETK_HAS_AVX2
