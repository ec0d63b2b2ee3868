// etk/attention/detail/decode_avx512.inl: AVX-512 VNNI decode primitives (contracts and
// layouts of decode_scalar.inl). vpdpbusd multiplies the unsigned nibbles (in [0, 15],
// split from a plane's bytes with one shift and two ands) by the signed arranged query
// bytes and adds groups of 4 into int32 lanes (bounds in decode_scalar.inl).
//  * block_dots: one 64-byte MS4B line = 16 keys x 8 dims; each row's 2 dwords of the
//    line are broadcast, so one pass over the block serves up to 4 rows per register set.
//  * block_scores: the block's 16 LS4B rows transposed to the MS4B line layout (16 x 16
//    dwords), then each line's two nibbles joined into the byte code + 128, so one
//    vpdpbusd per half and row gives the exact score of 16 keys (dense decode).
//  * lo_dots: one survivor per register (its LS4B row loaded), 16 survivors reduced
//    together (detail::latte::avx512::reduce16).
//  * weighted_values: detail::latte::avx512::gather_pv for fp32 values; for fp16 / bf16 / int8
//    one converted load of each value vector serves up to 4 weight rows.
// Compiled once per dispatch path through decode_kernels.inl (no include guard, no includes).
#if defined(ETK_HAS_AVX512VNNI)
namespace detail::decode {
namespace avx512 {

// This path's LATTE AVX-512 primitives (latte_avx512.inl, same target namespace).
namespace latte_avx512 = detail::latte::avx512;
using latte_avx512::tail16;

inline __m512i bcast4(const std::int8_t* p) {
  std::int32_t w;
  std::memcpy(&w, p, 4);
  return _mm512_set1_epi32(w);
}

template <int NR>
void block_dots_rows(const std::uint8_t* hi, std::ptrdiff_t L, const std::int8_t* q,
                     std::ptrdiff_t ldq, std::int32_t* out, std::ptrdiff_t ldo) {
  const __m512i m15 = _mm512_set1_epi8(15);
  __m512i acc[NR];
  for (int r = 0; r < NR; ++r) acc[r] = _mm512_setzero_si512();
  for (std::ptrdiff_t l = 0; l < L; ++l) {
    const __m512i x = _mm512_loadu_si512(hi + l * 64);
    const __m512i a = _mm512_and_si512(x, m15);
    const __m512i b = _mm512_and_si512(_mm512_srli_epi16(x, 4), m15);
    for (int r = 0; r < NR; ++r) {
      acc[r] = _mm512_dpbusd_epi32(acc[r], a, bcast4(q + r * ldq + 4 * l));
      acc[r] = _mm512_dpbusd_epi32(acc[r], b, bcast4(q + r * ldq + 4 * L + 4 * l));
    }
  }
  for (int r = 0; r < NR; ++r) _mm512_storeu_si512(out + r * ldo, acc[r]);
}

inline void block_dots(const std::uint8_t* hi, std::ptrdiff_t L, const std::int8_t* q,
                       std::ptrdiff_t ldq, int nrows, int qmax, std::int32_t* out, std::ptrdiff_t ldo) {
  (void)qmax;  // vpdpbusd adds into int32 directly
  int r = 0;
  for (; r + 4 <= nrows; r += 4) block_dots_rows<4>(hi, L, q + r * ldq, ldq, out + r * ldo, ldo);
  for (; r + 2 <= nrows; r += 2) block_dots_rows<2>(hi, L, q + r * ldq, ldq, out + r * ldo, ldo);
  if (r < nrows) block_dots_rows<1>(hi, L, q + r * ldq, ldq, out + r * ldo, ldo);
}

// t[l] = dword l of rows r[0..16) (a 16 x 16 dword transpose: 64 shuffles).
inline void transpose16(const __m512i* r, __m512i* t) {
  __m512i a[16], b[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // b[4i + m], 128-bit lane k: dword 4k + m of rows 4i..4i+3
    b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
    b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
    b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
    b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512i s0 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0x88), s1 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0xdd);
    const __m512i s2 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0x88), s3 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0xdd);
    t[m] = _mm512_shuffle_i32x4(s0, s2, 0x88);
    t[8 + m] = _mm512_shuffle_i32x4(s0, s2, 0xdd);
    t[4 + m] = _mm512_shuffle_i32x4(s1, s3, 0x88);
    t[12 + m] = _mm512_shuffle_i32x4(s1, s3, 0xdd);
  }
}

// NR rows over lines [l0, l1) of one block: the line's MS4B nibbles (as stored, MS4B + 8)
// and the transposed LS4B dwords lo_t[l - l0] form each key's unsigned code + 128 bytes
// (one shift and one ternary select per half), one vpdpbusd per half and row.
template <int NR>
void block_scores_rows(const std::uint8_t* hi, const __m512i* lo_t, std::ptrdiff_t l0, std::ptrdiff_t l1,
                       std::ptrdiff_t L, const std::int8_t* q, std::ptrdiff_t ldq, std::int32_t* out,
                       std::ptrdiff_t ldo) {
  const __m512i f0 = _mm512_set1_epi8(std::int8_t(0xF0));
  __m512i acc[NR];
  for (int r = 0; r < NR; ++r)
    acc[r] = l0 == 0 ? _mm512_setzero_si512() : _mm512_loadu_si512(out + r * ldo);
  for (std::ptrdiff_t l = l0; l < l1; ++l) {
    const __m512i x = _mm512_loadu_si512(hi + l * 64), y = lo_t[l - l0];
    // 0xE4: bytes of the third operand's 0xF0 nibble from the first, the rest from the second.
    const __m512i a = _mm512_ternarylogic_epi32(_mm512_slli_epi16(x, 4), y, f0, 0xE4);
    const __m512i b = _mm512_ternarylogic_epi32(x, _mm512_srli_epi16(y, 4), f0, 0xE4);
    for (int r = 0; r < NR; ++r) {
      acc[r] = _mm512_dpbusd_epi32(acc[r], a, bcast4(q + r * ldq + 4 * l));
      acc[r] = _mm512_dpbusd_epi32(acc[r], b, bcast4(q + r * ldq + 4 * L + 4 * l));
    }
  }
  for (int r = 0; r < NR; ++r) _mm512_storeu_si512(out + r * ldo, acc[r]);
}

inline void block_scores(const std::uint8_t* hi, const std::uint8_t* lo, std::ptrdiff_t L,
                         const std::int8_t* q, std::ptrdiff_t ldq, int nrows, std::int32_t* out,
                         std::ptrdiff_t ldo) {
  for (std::ptrdiff_t l0 = 0; l0 < L; l0 += 16) {  // 16 lines (128 dims) per transpose
    const std::ptrdiff_t l1 = L - l0 < 16 ? L : l0 + 16;
    const __mmask16 live = tail16(l1 - l0);
    __m512i rows[16], lo_t[16];
    for (int kk = 0; kk < 16; ++kk) rows[kk] = _mm512_maskz_loadu_epi32(live, lo + (kk * L + l0) * 4);
    transpose16(rows, lo_t);
    int r = 0;
    for (; r + 4 <= nrows; r += 4) block_scores_rows<4>(hi, lo_t, l0, l1, L, q + r * ldq, ldq, out + r * ldo, ldo);
    for (; r + 2 <= nrows; r += 2) block_scores_rows<2>(hi, lo_t, l0, l1, L, q + r * ldq, ldq, out + r * ldo, ldo);
    if (r < nrows) block_scores_rows<1>(hi, lo_t, l0, l1, L, q + r * ldq, ldq, out + r * ldo, ldo);
  }
}

// out[s] = sum over the L dwords of key idx[s] (fetch(j, l0, mask) gives 16 of them, from
// line l0 on) of the arranged query dot, 16 keys per batched reduction.
template <typename Fetch>
void key_dots(Fetch&& fetch, std::ptrdiff_t L, const std::int32_t* idx, std::ptrdiff_t n,
              const std::int8_t* q, std::int32_t* out) {
  const __m512i m15 = _mm512_set1_epi8(15);
  // Head dims up to 128 (L <= 16): the query's two halves stay in registers.
  const __mmask16 live0 = tail16(L);
  const __m512i qa0 = _mm512_maskz_loadu_epi32(live0, q), qb0 = _mm512_maskz_loadu_epi32(live0, q + 4 * L);
  for (std::ptrdiff_t s0 = 0; s0 < n; s0 += 16) {
    const int cnt = int(n - s0 < 16 ? n - s0 : 16);
    __m512i acc[16];
    for (int u = 0; u < 16; ++u) {
      __m512i a = _mm512_setzero_si512();
      if (u < cnt && L <= 16) {
        const __m512i x = fetch(std::ptrdiff_t(idx[s0 + u]), 0, live0);
        a = _mm512_dpbusd_epi32(a, _mm512_and_si512(x, m15), qa0);
        a = _mm512_dpbusd_epi32(a, _mm512_and_si512(_mm512_srli_epi16(x, 4), m15), qb0);
      } else if (u < cnt) {
        for (std::ptrdiff_t l0 = 0; l0 < L; l0 += 16) {
          const __mmask16 live = tail16(L - l0);
          const __m512i x = fetch(std::ptrdiff_t(idx[s0 + u]), l0, live);
          const __m512i qa = _mm512_maskz_loadu_epi32(live, q + 4 * l0);
          const __m512i qb = _mm512_maskz_loadu_epi32(live, q + 4 * L + 4 * l0);
          a = _mm512_dpbusd_epi32(a, _mm512_and_si512(x, m15), qa);
          a = _mm512_dpbusd_epi32(a, _mm512_and_si512(_mm512_srli_epi16(x, 4), m15), qb);
        }
      }
      acc[u] = a;
    }
    _mm512_mask_storeu_epi32(out + s0, tail16(cnt), latte_avx512::reduce16(acc));
  }
}

inline void lo_dots(const std::uint8_t* lo, std::ptrdiff_t L, const std::int32_t* idx,
                    std::ptrdiff_t n, const std::int8_t* q, std::int32_t* out) {
  key_dots([&](std::ptrdiff_t j, std::ptrdiff_t l0, __mmask16 live) {
    return _mm512_maskz_loadu_epi32(live, lo + j * L * 4 + l0 * 4);
  }, L, idx, n, q, out);
}

inline std::ptrdiff_t select_block(const std::int32_t* E, int lo, int hi, std::int32_t corr,
                                   float unit, float cut, std::int32_t base, std::int32_t* idx) {
  const __mmask16 live = __mmask16(tail16(hi) & ~tail16(lo));
  const __m512 x = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_maskz_loadu_epi32(live, E), _mm512_set1_epi32(corr)));
  const __mmask16 keep = _mm512_mask_cmp_ps_mask(live, _mm512_mul_ps(x, _mm512_set1_ps(unit)),
                                                 _mm512_set1_ps(cut), _CMP_GE_OQ);
  const __m512i j16 = _mm512_add_epi32(_mm512_set1_epi32(base),
                                       _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  _mm512_storeu_si512(idx, _mm512_maskz_compress_epi32(keep, j16));
  return __builtin_popcount(keep);
}

// 16 values of a row as floats (lanes outside mk are 0).
template <KVValueType T>
__m512 load_values(const std::uint8_t* row, std::ptrdiff_t c, __mmask16 mk) {
  if (T == KVValueType::fp16)
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mk, row + 2 * c));
  if (T == KVValueType::bf16)
    return _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mk, row + 2 * c)), 16));
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mk, row + c)));
}

// NR weight rows (ldw apart) over the same survivors, V vectors of 16 values per pass:
// each value vector is loaded and converted once for all NR rows. Per lane, every row
// adds its survivors in order into one accumulator whatever NR and V, so a row's result
// does not depend on which rows share its pass (GQA equals repeated heads bit for bit).
template <KVValueType T, int NR, int V>
void weighted_pass(const float* w, std::ptrdiff_t ldw, const std::int32_t* idx, std::ptrdiff_t n,
                   const std::uint8_t* values, std::ptrdiff_t row_bytes, const float* vscale,
                   std::ptrdiff_t dv, float* o, std::ptrdiff_t ldo) {
  for (std::ptrdiff_t c0 = 0; c0 < dv; c0 += 16 * V) {
    __mmask16 mk[V];
    __m512 acc[NR][V];
    for (int u = 0; u < V; ++u) {
      const std::ptrdiff_t left = dv - c0 - 16 * u;
      mk[u] = left <= 0 ? __mmask16(0) : tail16(left);
      for (int r = 0; r < NR; ++r) acc[r][u] = _mm512_setzero_ps();
    }
    for (std::ptrdiff_t s = 0; s < n; ++s) {
      if (c0 == 0 && s + 8 < n)  // whole rows a few survivors ahead
        for (std::ptrdiff_t b = 0; b < row_bytes; b += 64)
          _mm_prefetch(reinterpret_cast<const char*>(values + std::ptrdiff_t(idx[s + 8]) * row_bytes + b),
                       _MM_HINT_T0);
      const std::uint8_t* row = values + std::ptrdiff_t(idx[s]) * row_bytes;
      __m512 x[V];
      for (int u = 0; u < V; ++u) x[u] = load_values<T>(row, c0 + 16 * u, mk[u]);
      const float vs = T == KVValueType::int8 ? vscale[idx[s] / 16] : 1.0f;
      for (int r = 0; r < NR; ++r) {
        const __m512 wr = _mm512_set1_ps(T == KVValueType::int8 ? w[r * ldw + s] * vs : w[r * ldw + s]);
        for (int u = 0; u < V; ++u) acc[r][u] = _mm512_fmadd_ps(wr, x[u], acc[r][u]);
      }
    }
    for (int r = 0; r < NR; ++r)
      for (int u = 0; u < V; ++u) _mm512_mask_storeu_ps(o + r * ldo + c0 + 16 * u, mk[u], acc[r][u]);
  }
}

// 4 rows per pass (16 accumulators of 4 vectors), then 2 (of 8), then 1 (of 8).
template <KVValueType T>
void weighted_rows(const float* w, std::ptrdiff_t ldw, int nrows, const std::int32_t* idx,
                   std::ptrdiff_t n, const std::uint8_t* values, std::ptrdiff_t row_bytes,
                   const float* vscale, std::ptrdiff_t dv, float* o, std::ptrdiff_t ldo) {
  int r = 0;
  for (; r + 4 <= nrows; r += 4)
    weighted_pass<T, 4, 4>(w + r * ldw, ldw, idx, n, values, row_bytes, vscale, dv, o + r * ldo, ldo);
  for (; r + 2 <= nrows; r += 2)
    weighted_pass<T, 2, 8>(w + r * ldw, ldw, idx, n, values, row_bytes, vscale, dv, o + r * ldo, ldo);
  if (r < nrows) weighted_pass<T, 1, 8>(w + r * ldw, ldw, idx, n, values, row_bytes, vscale, dv, o + r * ldo, ldo);
}

inline void weighted_values(KVValueType type, const float* w, const std::int32_t* idx,
                            std::ptrdiff_t n, const std::uint8_t* values, std::ptrdiff_t row_bytes,
                            const float* vscale, std::ptrdiff_t dv, float* o) {
  switch (type) {
    case KVValueType::fp32:
      latte_avx512::gather_pv(w, idx, n, reinterpret_cast<const float*>(values), row_bytes / 4, dv, o);
      break;
    case KVValueType::fp16: weighted_rows<KVValueType::fp16>(w, 0, 1, idx, n, values, row_bytes, vscale, dv, o, 0); break;
    case KVValueType::bf16: weighted_rows<KVValueType::bf16>(w, 0, 1, idx, n, values, row_bytes, vscale, dv, o, 0); break;
    case KVValueType::int8: weighted_rows<KVValueType::int8>(w, 0, 1, idx, n, values, row_bytes, vscale, dv, o, 0); break;
  }
}

inline void weighted_values_rows(KVValueType type, const float* w, std::ptrdiff_t ldw, int nrows,
                                 const std::int32_t* idx, std::ptrdiff_t n,
                                 const std::uint8_t* values, std::ptrdiff_t row_bytes,
                                 const float* vscale, std::ptrdiff_t dv, float* o, std::ptrdiff_t ldo) {
  switch (type) {
    case KVValueType::fp32:
      for (int r = 0; r < nrows; ++r)
        weighted_values(type, w + r * ldw, idx, n, values, row_bytes, vscale, dv, o + r * ldo);
      break;
    case KVValueType::fp16: weighted_rows<KVValueType::fp16>(w, ldw, nrows, idx, n, values, row_bytes, vscale, dv, o, ldo); break;
    case KVValueType::bf16: weighted_rows<KVValueType::bf16>(w, ldw, nrows, idx, n, values, row_bytes, vscale, dv, o, ldo); break;
    case KVValueType::int8: weighted_rows<KVValueType::int8>(w, ldw, nrows, idx, n, values, row_bytes, vscale, dv, o, ldo); break;
  }
}

}  // namespace avx512
}  // namespace detail::decode
#endif  // ETK_HAS_AVX512VNNI
