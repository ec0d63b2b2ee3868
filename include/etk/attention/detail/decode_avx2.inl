// etk/attention/detail/decode_avx2.inl: AVX2 decode primitives (contracts and layouts of
// decode_scalar.inl); the survivor selection stays scalar on this path.
//  * block_dots: the nibbles of a 64-byte MS4B line (16 keys) times the broadcast query
//    dwords through vpmaddubsw. Unsigned nibbles <= 15 times signed query bytes |q| <=
//    qmax <= 128 give pair sums <= 2 * 15 * qmax (<= 3840: no saturation); the 2 sums of
//    each line are added in int16 over chunks of lines whose total stays <= 32767 (36
//    lines for LS4B query nibbles, 68 for MS4B ones, 4 for codes), then widened by one
//    vpmaddwd per chunk: exact, so the int32 results equal the scalar path's bit for bit.
//  * lo_dots: one key's LS4B row per register (8 dwords a load, masked tail), the same
//    vpmaddubsw / vpmaddwd products (same bound), 8 keys reduced together by a hadd tree;
//    int32 sums in any order are exact, so the results equal the scalar ones.
//  * weighted_values(_rows): one converted load of each value vector (8 lanes; fp16 via
//    F16C, or lane by lane in a unit built with AVX2 but without -mf16c) serves up to 4
//    weight rows; per lane, each row adds its survivors in order into one accumulator,
//    so a row's result does not depend on which rows share a pass.
// Compiled once per dispatch path through decode_kernels.inl (no include guard, no includes).
#if defined(ETK_HAS_AVX2)
namespace detail::decode {
namespace avx2 {

// NR rows over `chunk` lines at a time: within a chunk the vpmaddubsw pair sums are added
// in int16 (one vpmaddwd per chunk), chunk * 2 * (2 * 15 * qmax) <= 32767 (block_dots).
template <int NR>
void block_dots_rows(const std::uint8_t* hi, std::ptrdiff_t L, std::ptrdiff_t chunk, const std::int8_t* q,
                     std::ptrdiff_t ldq, std::int32_t* out, std::ptrdiff_t ldo) {
  const __m256i m15 = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1);
  // The int32 totals of earlier chunks wait in out (few chunks: registers stay free for
  // the int16 sums).
  for (std::ptrdiff_t l0 = 0; l0 < L; l0 += chunk) {
    __m256i s0[NR], s1[NR];
    for (int r = 0; r < NR; ++r) s0[r] = s1[r] = _mm256_setzero_si256();
    for (std::ptrdiff_t l = l0; l < (L - l0 < chunk ? L : l0 + chunk); ++l) {
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi + l * 64));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi + l * 64 + 32));
      const __m256i a0 = _mm256_and_si256(x0, m15), b0 = _mm256_and_si256(_mm256_srli_epi16(x0, 4), m15);
      const __m256i a1 = _mm256_and_si256(x1, m15), b1 = _mm256_and_si256(_mm256_srli_epi16(x1, 4), m15);
      for (int r = 0; r < NR; ++r) {
        std::int32_t wa, wb;
        std::memcpy(&wa, q + r * ldq + 4 * l, 4);
        std::memcpy(&wb, q + r * ldq + 4 * L + 4 * l, 4);
        const __m256i qa = _mm256_set1_epi32(wa), qb = _mm256_set1_epi32(wb);
        s0[r] = _mm256_add_epi16(s0[r], _mm256_add_epi16(_mm256_maddubs_epi16(a0, qa), _mm256_maddubs_epi16(b0, qb)));
        s1[r] = _mm256_add_epi16(s1[r], _mm256_add_epi16(_mm256_maddubs_epi16(a1, qa), _mm256_maddubs_epi16(b1, qb)));
      }
    }
    for (int r = 0; r < NR; ++r) {
      __m256i* o = reinterpret_cast<__m256i*>(out + r * ldo);
      __m256i t0 = _mm256_madd_epi16(s0[r], ones), t1 = _mm256_madd_epi16(s1[r], ones);
      if (l0 > 0) t0 = _mm256_add_epi32(t0, _mm256_loadu_si256(o)), t1 = _mm256_add_epi32(t1, _mm256_loadu_si256(o + 1));
      _mm256_storeu_si256(o, t0);
      _mm256_storeu_si256(o + 1, t1);
    }
  }
}

inline void block_dots(const std::uint8_t* hi, std::ptrdiff_t L, const std::int8_t* q,
                       std::ptrdiff_t ldq, int nrows, int qmax, std::int32_t* out, std::ptrdiff_t ldo) {
  // A line adds two pair sums of |.| <= 2 * 15 * qmax per int16 lane.
  const std::ptrdiff_t chunk = std::max<std::ptrdiff_t>(1, 32767 / (60 * std::max(qmax, 1)));
  int r = 0;
  for (; r + 4 <= nrows; r += 4) block_dots_rows<4>(hi, L, chunk, q + r * ldq, ldq, out + r * ldo, ldo);
  for (; r + 2 <= nrows; r += 2) block_dots_rows<2>(hi, L, chunk, q + r * ldq, ldq, out + r * ldo, ldo);
  if (r < nrows) block_dots_rows<1>(hi, L, chunk, q + r * ldq, ldq, out + r * ldo, ldo);
}

inline __m256i mask8(std::ptrdiff_t n) {  // dword lanes [0, min(n, 8)) set
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(std::int32_t(n < 8 ? n : 8)), lanes);
}

// The 8 int32 sums of the lanes of a[0..8) (sum u of a[u]), in one vector.
inline __m256i reduce8(const __m256i* a) {
  const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
  const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
}

// (Functions, not lambdas: GCC warns that a lambda returning a vector has no AVX ABI.)
inline __m256i ld(const void* p, __m256i mk) { return _mm256_maskload_epi32(static_cast<const int*>(p), mk); }

// Dot of 8 LS4B dwords x (low nibbles with qa, high ones with qb), as 8 int32 lanes.
inline __m256i dot(__m256i x, __m256i qa, __m256i qb) {
  const __m256i m15 = _mm256_set1_epi8(15);
  return _mm256_add_epi32(detail::latte::avx2::dot4_u8s8(_mm256_and_si256(x, m15), qa),
                          detail::latte::avx2::dot4_u8s8(_mm256_and_si256(_mm256_srli_epi16(x, 4), m15), qb));
}

inline void lo_dots(const std::uint8_t* lo, std::ptrdiff_t L, const std::int32_t* idx,
                    std::ptrdiff_t n, const std::int8_t* q, std::int32_t* out) {
  // Head dims up to 128 (L <= 16): the query's two halves stay in 4 registers.
  const __m256i mk0 = mask8(L), mk1 = mask8(L - 8);
  const __m256i qa0 = ld(q, mk0), qa1 = ld(q + 32, mk1), qb0 = ld(q + 4 * L, mk0), qb1 = ld(q + 4 * L + 32, mk1);
  for (std::ptrdiff_t s0 = 0; s0 < n; s0 += 8) {
    const std::ptrdiff_t cnt = n - s0 < 8 ? n - s0 : 8;
    __m256i acc[8];
    for (std::ptrdiff_t u = 0; u < 8; ++u) {
      acc[u] = _mm256_setzero_si256();
      if (u >= cnt) continue;
      const std::uint8_t* row = lo + std::ptrdiff_t(idx[s0 + u]) * L * 4;
      if (L <= 16) {
        acc[u] = dot(ld(row, mk0), qa0, qb0);
        if (L > 8) acc[u] = _mm256_add_epi32(acc[u], dot(ld(row + 32, mk1), qa1, qb1));
        continue;
      }
      for (std::ptrdiff_t l0 = 0; l0 < L; l0 += 8) {
        const __m256i mk = mask8(L - l0);
        acc[u] = _mm256_add_epi32(acc[u], dot(ld(row + 4 * l0, mk), ld(q + 4 * l0, mk), ld(q + 4 * L + 4 * l0, mk)));
      }
    }
    _mm256_maskstore_epi32(out + s0, mask8(cnt), reduce8(acc));
  }
}

// 8 values of a row from column c as floats; a short tail (left < 8) goes through a
// zeroed copy, so no byte past the row is read.
template <KVValueType T>
__m256 load_values(const std::uint8_t* row, std::ptrdiff_t c, std::ptrdiff_t left) {
  constexpr std::ptrdiff_t B = T == KVValueType::fp32 ? 4 : (T == KVValueType::int8 ? 1 : 2);
  alignas(32) std::uint8_t tmp[32] = {};
  const std::uint8_t* p = row + B * c;
  if (left < 8) {
    if (left > 0) std::memcpy(tmp, p, std::size_t(B * left));
    p = tmp;
  }
  if (T == KVValueType::fp32) return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  if (T == KVValueType::fp16) {
#if ETK_DISPATCH || defined(__F16C__)  // the dispatched AVX2 target includes f16c
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#else
    alignas(32) float f[8];
    for (int t = 0; t < 8; ++t) {
      Eigen::half h;
      std::memcpy(&h, p + 2 * t, 2);
      f[t] = float(h);
    }
    return _mm256_load_ps(f);
#endif
  }
  if (T == KVValueType::bf16)
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// Keys go in chunks of kChunk: a chunk's value rows (kChunk x row_bytes, L1-sized for
// dv <= 128 fp16) are read by every column pass while they are cached, and the next
// chunk's rows are requested first. Accumulators are kept in o between chunks (stored and
// reloaded exactly), so per lane each row still adds its survivors in order into one sum.
constexpr std::ptrdiff_t kChunk = 32;

template <KVValueType T, int NR, int V>
void weighted_pass(const float* w, std::ptrdiff_t ldw, const std::int32_t* idx, std::ptrdiff_t n,
                   const std::uint8_t* values, std::ptrdiff_t row_bytes, const float* vscale,
                   std::ptrdiff_t dv, float* o, std::ptrdiff_t ldo) {
  for (std::ptrdiff_t s0 = 0; s0 < n || s0 == 0; s0 += kChunk) {
    const std::ptrdiff_t s1 = n - s0 < kChunk ? n : s0 + kChunk;
    for (std::ptrdiff_t s = s1; s < (n - s1 < kChunk ? n : s1 + kChunk); ++s)
      for (std::ptrdiff_t b = 0; b < row_bytes; b += 64)
        _mm_prefetch(reinterpret_cast<const char*>(values + std::ptrdiff_t(idx[s]) * row_bytes + b), _MM_HINT_T0);
    for (std::ptrdiff_t c0 = 0; c0 < dv; c0 += 8 * V) {
      __m256 acc[NR][V];
      for (int r = 0; r < NR; ++r)
        for (int u = 0; u < V; ++u) {
          const std::ptrdiff_t left = dv - c0 - 8 * u;
          acc[r][u] = _mm256_setzero_ps();
          if (s0 > 0 && left >= 8) acc[r][u] = _mm256_loadu_ps(o + r * ldo + c0 + 8 * u);
          if (s0 > 0 && left > 0 && left < 8) {
            alignas(32) float tmp[8] = {};
            std::memcpy(tmp, o + r * ldo + c0 + 8 * u, std::size_t(left) * sizeof(float));
            acc[r][u] = _mm256_load_ps(tmp);
          }
        }
      for (std::ptrdiff_t s = s0; s < s1; ++s) {
        const std::uint8_t* row = values + std::ptrdiff_t(idx[s]) * row_bytes;
        __m256 x[V];
        for (int u = 0; u < V; ++u) x[u] = load_values<T>(row, c0 + 8 * u, dv - c0 - 8 * u);
        const float vs = T == KVValueType::int8 ? vscale[idx[s] / 16] : 1.0f;
        for (int r = 0; r < NR; ++r) {
          const __m256 wr = _mm256_set1_ps(T == KVValueType::int8 ? w[r * ldw + s] * vs : w[r * ldw + s]);
          for (int u = 0; u < V; ++u) acc[r][u] = _mm256_fmadd_ps(wr, x[u], acc[r][u]);
        }
      }
      for (int r = 0; r < NR; ++r)
        for (int u = 0; u < V; ++u) {
          const std::ptrdiff_t left = dv - c0 - 8 * u;
          if (left >= 8) {
            _mm256_storeu_ps(o + r * ldo + c0 + 8 * u, acc[r][u]);
          } else if (left > 0) {
            alignas(32) float tmp[8];
            _mm256_store_ps(tmp, acc[r][u]);
            std::memcpy(o + r * ldo + c0 + 8 * u, tmp, std::size_t(left) * sizeof(float));
          }
        }
    }
  }
}

template <KVValueType T>
void weighted_rows(const float* w, std::ptrdiff_t ldw, int nrows, const std::int32_t* idx,
                   std::ptrdiff_t n, const std::uint8_t* values, std::ptrdiff_t row_bytes,
                   const float* vscale, std::ptrdiff_t dv, float* o, std::ptrdiff_t ldo) {
  int r = 0;
  for (; r + 4 <= nrows; r += 4)
    weighted_pass<T, 4, 2>(w + r * ldw, ldw, idx, n, values, row_bytes, vscale, dv, o + r * ldo, ldo);
  for (; r + 2 <= nrows; r += 2)
    weighted_pass<T, 2, 4>(w + r * ldw, ldw, idx, n, values, row_bytes, vscale, dv, o + r * ldo, ldo);
  if (r < nrows) weighted_pass<T, 1, 4>(w + r * ldw, ldw, idx, n, values, row_bytes, vscale, dv, o + r * ldo, ldo);
}

inline void weighted_values_rows(KVValueType type, const float* w, std::ptrdiff_t ldw, int nrows,
                                 const std::int32_t* idx, std::ptrdiff_t n,
                                 const std::uint8_t* values, std::ptrdiff_t row_bytes,
                                 const float* vscale, std::ptrdiff_t dv, float* o, std::ptrdiff_t ldo) {
  switch (type) {
    case KVValueType::fp32: weighted_rows<KVValueType::fp32>(w, ldw, nrows, idx, n, values, row_bytes, vscale, dv, o, ldo); break;
    case KVValueType::fp16: weighted_rows<KVValueType::fp16>(w, ldw, nrows, idx, n, values, row_bytes, vscale, dv, o, ldo); break;
    case KVValueType::bf16: weighted_rows<KVValueType::bf16>(w, ldw, nrows, idx, n, values, row_bytes, vscale, dv, o, ldo); break;
    case KVValueType::int8: weighted_rows<KVValueType::int8>(w, ldw, nrows, idx, n, values, row_bytes, vscale, dv, o, ldo); break;
  }
}

inline void weighted_values(KVValueType type, const float* w, const std::int32_t* idx,
                            std::ptrdiff_t n, const std::uint8_t* values, std::ptrdiff_t row_bytes,
                            const float* vscale, std::ptrdiff_t dv, float* o) {
  weighted_values_rows(type, w, 0, 1, idx, n, values, row_bytes, vscale, dv, o, 0);
}

}  // namespace avx2
}  // namespace detail::decode
#endif  // ETK_HAS_AVX2
