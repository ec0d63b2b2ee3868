// etk/attention/detail/latte_avx512.inl: AVX-512 VNNI LATTE primitives (same contracts and
// layouts as latte_scalar.inl). vpdpbusd multiplies unsigned by signed bytes and adds
// groups of 4 into int32 lanes (wrapping, but no bound below comes near 2^31):
//  * estimate: unsigned side = the keys' pre-packed (kH + 8) in [0, 15], signed side = a
//    query's 4 high nibbles broadcast; one instruction gives 16 keys x 4 dims.
//  * exact survivor scores: vpdpbusd(k + 128, q), the key code flipped to unsigned and
//    the offset 128 * sum(q) subtracted once per row.
// Compiled once per dispatch path through latte_kernels.inl (no include guard, no includes).
#if defined(ETK_HAS_AVX512VNNI)
namespace detail::latte {
namespace avx512 {

inline __mmask16 tail16(std::ptrdiff_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
}

// NQ query rows x NB (1 or 2) key blocks of 16 per pass: NQ*NB accumulators. Also folds
// the stored estimates into the running row maxima mx[r], over the visible keys only
// (key index < nvalid[r]; j0 is the first key of the pass).
template <int NQ, int NB>
void estimate_block(const std::int8_t* qh, std::ptrdiff_t ldq, const std::uint8_t* p,
                    std::ptrdiff_t G, std::int32_t* E, std::ptrdiff_t ldE, std::ptrdiff_t j0,
                    const std::ptrdiff_t* nvalid, __m512i* mx) {
  __m512i acc[NQ][NB];
  for (int r = 0; r < NQ; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_setzero_si512();
  for (std::ptrdiff_t g = 0; g < G; ++g) {
    __m512i k[NB];
    for (int b = 0; b < NB; ++b) k[b] = _mm512_loadu_si512(p + (b * G + g) * 64);
    for (int r = 0; r < NQ; ++r) {
      std::int32_t w;
      std::memcpy(&w, qh + r * ldq + 4 * g, 4);
      const __m512i q = _mm512_set1_epi32(w);
      for (int b = 0; b < NB; ++b) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], k[b], q);
    }
  }
  for (int r = 0; r < NQ; ++r)
    for (int b = 0; b < NB; ++b) {
      _mm512_storeu_si512(E + r * ldE + 16 * b, acc[r][b]);
      const std::ptrdiff_t left = nvalid[r] - (j0 + 16 * b);
      if (left > 0) mx[r] = _mm512_mask_max_epi32(mx[r], tail16(left), mx[r], acc[r][b]);
    }
}

// The hot full tile, 8 rows x 2 blocks, with 16 named accumulators pinned to their
// registers by an empty asm: GCC 12 otherwise copies every accumulator around its
// vpdpbusd (and spills some), which doubles the cost of this loop. all_visible: both blocks are visible to every row (the
// maxima then need no masks).
inline void estimate_block_8x2(const std::int8_t* qh, std::ptrdiff_t ldq, const std::uint8_t* p,
                               std::ptrdiff_t G, std::int32_t* E, std::ptrdiff_t ldE,
                               std::ptrdiff_t j0, const std::ptrdiff_t* nvalid, bool all_visible,
                               __m512i* mx) {
  __m512i a00 = _mm512_setzero_si512(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
          a30 = a00, a31 = a00, a40 = a00, a41 = a00, a50 = a00, a51 = a00, a60 = a00,
          a61 = a00, a70 = a00, a71 = a00;
  const std::uint8_t* p1 = p + G * 64;
  for (std::ptrdiff_t g = 0; g < G; ++g) {
    const __m512i k0 = _mm512_loadu_si512(p + g * 64), k1 = _mm512_loadu_si512(p1 + g * 64);
#define ETK_LATTE_ROW(r)                                                  \
  {                                                                       \
    std::int32_t w;                                                       \
    std::memcpy(&w, qh + r * ldq + 4 * g, 4);                             \
    const __m512i q = _mm512_set1_epi32(w);                               \
    a##r##0 = _mm512_dpbusd_epi32(a##r##0, k0, q);                        \
    a##r##1 = _mm512_dpbusd_epi32(a##r##1, k1, q);                        \
    __asm__("" : "+v"(a##r##0), "+v"(a##r##1));                           \
  }
    ETK_LATTE_ROW(0) ETK_LATTE_ROW(1) ETK_LATTE_ROW(2) ETK_LATTE_ROW(3)
    ETK_LATTE_ROW(4) ETK_LATTE_ROW(5) ETK_LATTE_ROW(6) ETK_LATTE_ROW(7)
#undef ETK_LATTE_ROW
  }
  const __m512i acc[8][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31},
                             {a40, a41}, {a50, a51}, {a60, a61}, {a70, a71}};
  if (all_visible) {  // the common case: both blocks visible to every row, no masks
    for (int r = 0; r < 8; ++r) {
      _mm512_storeu_si512(E + r * ldE, acc[r][0]);
      _mm512_storeu_si512(E + r * ldE + 16, acc[r][1]);
      mx[r] = _mm512_max_epi32(mx[r], _mm512_max_epi32(acc[r][0], acc[r][1]));
    }
    return;
  }
  for (int r = 0; r < 8; ++r)
    for (int b = 0; b < 2; ++b) {
      _mm512_storeu_si512(E + r * ldE + 16 * b, acc[r][b]);
      const std::ptrdiff_t left = nvalid[r] - (j0 + 16 * b);
      if (left > 0) mx[r] = _mm512_mask_max_epi32(mx[r], tail16(left), mx[r], acc[r][b]);
    }
}

template <int NQ>
void estimate_rows(const std::int8_t* qh, std::ptrdiff_t ldq, const std::uint8_t* kpack,
                   std::ptrdiff_t G, std::ptrdiff_t nblk, std::int32_t* E, std::ptrdiff_t ldE,
                   const std::ptrdiff_t* nvalid, std::int32_t* rmax) {
  __m512i mx[NQ];
  for (int r = 0; r < NQ; ++r) mx[r] = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::min());
  std::ptrdiff_t min_valid = nvalid[0];
  for (int r = 1; r < NQ; ++r) min_valid = nvalid[r] < min_valid ? nvalid[r] : min_valid;
  std::ptrdiff_t b = 0;
  for (; b + 2 <= nblk; b += 2) {
    if (NQ == 8)
      estimate_block_8x2(qh, ldq, kpack + b * G * 64, G, E + 16 * b, ldE, 16 * b, nvalid,
                         16 * b + 32 <= min_valid, mx);
    else
      estimate_block<NQ, 2>(qh, ldq, kpack + b * G * 64, G, E + 16 * b, ldE, 16 * b, nvalid, mx);
  }
  if (b < nblk)
    estimate_block<NQ, 1>(qh, ldq, kpack + b * G * 64, G, E + 16 * b, ldE, 16 * b, nvalid, mx);
  for (int r = 0; r < NQ; ++r) rmax[r] = _mm512_reduce_max_epi32(mx[r]);
}

// estimate_tile with the row maxima fused in (see latte_scalar.inl for the contract).
inline void estimate_tile_max(const std::int8_t* qh, std::ptrdiff_t ldq, int nq,
                              const std::uint8_t* kpack, std::ptrdiff_t G, std::ptrdiff_t nblk,
                              std::int32_t* E, std::ptrdiff_t ldE, const std::ptrdiff_t* nvalid,
                              std::int32_t* rmax) {
  switch (nq) {
#define ETK_LATTE_ROWS(n) \
  case n: estimate_rows<n>(qh, ldq, kpack, G, nblk, E, ldE, nvalid, rmax); break;
    ETK_LATTE_ROWS(8) ETK_LATTE_ROWS(7) ETK_LATTE_ROWS(6) ETK_LATTE_ROWS(5)
    ETK_LATTE_ROWS(4) ETK_LATTE_ROWS(3) ETK_LATTE_ROWS(2) ETK_LATTE_ROWS(1)
#undef ETK_LATTE_ROWS
    default: break;
  }
}

// The plain estimate (no maxima), for callers that do not need them.
inline void estimate_tile(const std::int8_t* qh, std::ptrdiff_t ldq, int nq,
                          const std::uint8_t* kpack, std::ptrdiff_t G, std::ptrdiff_t nblk,
                          std::int32_t* E, std::ptrdiff_t ldE) {
  std::ptrdiff_t none[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::int32_t unused[8];
  estimate_tile_max(qh, ldq, nq, kpack, G, nblk, E, ldE, none, unused);
}

inline std::int32_t row_max(const std::int32_t* E, std::ptrdiff_t n) {
  const __m512i lowest = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::min());
  __m512i m = lowest;
  for (std::ptrdiff_t j = 0; j < n; j += 16)
    m = _mm512_max_epi32(m, _mm512_mask_loadu_epi32(lowest, tail16(n - j), E + j));
  return _mm512_reduce_max_epi32(m);
}

inline std::ptrdiff_t select(const std::int32_t* E, std::ptrdiff_t n, std::int32_t cut,
                             std::int32_t* idx) {
  const __m512i vcut = _mm512_set1_epi32(cut);
  __m512i j16 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  std::ptrdiff_t m = 0;
  // Compress in registers and store whole vectors (compress-to-memory is slow on some
  // cores); the buffers have 16 entries of slack. Whole blocks first, without masks.
  const auto keep_block = [&](__mmask16 keep) {
    _mm512_storeu_si512(idx + m, _mm512_maskz_compress_epi32(keep, j16));
    m += __builtin_popcount(keep);
    j16 = _mm512_add_epi32(j16, step);
  };
  std::ptrdiff_t j = 0;
  for (; j + 16 <= n; j += 16) keep_block(_mm512_cmpge_epi32_mask(_mm512_loadu_si512(E + j), vcut));
  if (j < n) {
    const __mmask16 live = tail16(n - j);
    keep_block(_mm512_mask_cmpge_epi32_mask(live, _mm512_maskz_loadu_epi32(live, E + j), vcut));
  }
  return m;
}

// The 16-way lane reduction in two stages, so a caller can feed it 4 vectors at a time
// and keep few accumulators live: reduce4 folds a[0..4) into one vector whose 128-bit
// lane l holds partial sums of a[0..4) (element 4l + i: of a[i]); combine4 turns four such
// vectors c[0..4) (of a[0..4), a[4..8), ...) into the 16 sums (lane s = sum of a[s]).
inline __m512i reduce4(__m512i a0, __m512i a1, __m512i a2, __m512i a3) {
  const __m512i b0 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
  const __m512i b1 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
  return _mm512_add_epi32(_mm512_unpacklo_epi64(b0, b1), _mm512_unpackhi_epi64(b0, b1));
}

inline __m512i combine4(const __m512i* c) {
  const __m512i e0 = _mm512_add_epi32(_mm512_shuffle_i32x4(c[0], c[1], 0x88),
                                      _mm512_shuffle_i32x4(c[0], c[1], 0xDD));
  const __m512i e1 = _mm512_add_epi32(_mm512_shuffle_i32x4(c[2], c[3], 0x88),
                                      _mm512_shuffle_i32x4(c[2], c[3], 0xDD));
  return _mm512_add_epi32(_mm512_shuffle_i32x4(e0, e1, 0x88), _mm512_shuffle_i32x4(e0, e1, 0xDD));
}

// Sums of the 16 lanes of each of a[0..16), as one vector (lane s = sum of a[s]):
// 15 adds and 30 shuffles for 16 reductions instead of 16 full reductions.
inline __m512i reduce16(__m512i* a) {
  __m512i c[4];
  for (int i = 0; i < 4; ++i) c[i] = reduce4(a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]);
  return combine4(c);
}

// One survivor's q.(k + 128) as 16 partial sums; OneLine: Dp == 64, the query line in q0.
template <bool OneLine>
inline __m512i survivor_dot(const std::int8_t* k, const std::int8_t* qh16, const std::uint8_t* ql,
                            std::ptrdiff_t Dp, __m512i q0, __m512i flip) {
  if (OneLine) return _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(_mm512_loadu_si512(k), flip), q0);
  __m512i a = _mm512_setzero_si512();
  for (std::ptrdiff_t t = 0; t < Dp; t += 64) {
    const __m512i q = _mm512_add_epi8(_mm512_loadu_si512(qh16 + t), _mm512_loadu_si512(ql + t));
    a = _mm512_dpbusd_epi32(a, _mm512_xor_si512(_mm512_loadu_si512(k + t), flip), q);
  }
  return a;
}

// The scores of up to 16 survivors ids[0, cnt) (ids has 16 readable entries) into
// S[0, cnt), reduced 4 survivors at a time so that few accumulators are live; groups of
// 4 past cnt are not computed.
template <bool OneLine>
inline void survivor_scores16(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                              std::ptrdiff_t Dp, __m512i q0, __m512i offset, const std::int32_t* ids,
                              int cnt, std::int32_t* S) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const auto dot = [&](int u) {
    return survivor_dot<OneLine>(k8 + std::ptrdiff_t(ids[u]) * Dp, qh16, ql, Dp, q0, flip);
  };
  __m512i c[4];
  for (int i = 0; i < 4; ++i)
    c[i] = 4 * i < cnt ? reduce4(dot(4 * i), dot(4 * i + 1), dot(4 * i + 2), dot(4 * i + 3))
                       : _mm512_setzero_si512();
  _mm512_mask_storeu_epi32(S, tail16(cnt), _mm512_sub_epi32(combine4(c), offset));
}

template <bool OneLine>
inline void exact_scores_lines(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                               std::ptrdiff_t Dp, const std::int32_t* idx, std::ptrdiff_t m,
                               std::int32_t* S) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  // 128 * sum(q) by vpdpbusd with 128 on the unsigned side.
  __m512i qsum = _mm512_setzero_si512();
  for (std::ptrdiff_t t = 0; t < Dp; t += 64)
    qsum = _mm512_dpbusd_epi32(qsum, flip,
                               _mm512_add_epi8(_mm512_loadu_si512(qh16 + t), _mm512_loadu_si512(ql + t)));
  const __m512i offset = _mm512_set1_epi32(_mm512_reduce_add_epi32(qsum));
  const __m512i q0 = _mm512_add_epi8(_mm512_loadu_si512(qh16), _mm512_loadu_si512(ql));
  std::ptrdiff_t s0 = 0;
  for (; s0 + 16 <= m; s0 += 16) survivor_scores16<OneLine>(qh16, ql, k8, Dp, q0, offset, idx + s0, 16, S + s0);
  if (s0 < m) {  // the last survivors; the missing ones read key 0 and are not stored
    alignas(64) std::int32_t ids[16];
    _mm512_store_si512(ids, _mm512_maskz_loadu_epi32(tail16(m - s0), idx + s0));
    survivor_scores16<OneLine>(qh16, ql, k8, Dp, q0, offset, ids, int(m - s0), S + s0);
  }
}

// Exact scores of the survivors, 16 at a time, as one direct int8 dot per survivor and
// 64 dims: with q = qh16 + ql (16*qH + qL, formed in register) and the key's code flipped
// to unsigned (k ^ 0x80 = k + 128, formed in register), vpdpbusd gives q.(k + 128), so
// S = q.(k + 128) - 128 * sum(q), equal to the int8 dot product (|q.(k + 128)| <=
// 127 * 255 * Dp < 2^31 for Dp <= kMaxDim). One vpdpbusd per 64 dims instead of the reuse
// remainder's two, and no estimate is read (E and corr are the contract's, unused here).
inline void exact_scores(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                         const std::uint8_t*, std::ptrdiff_t Dp, const std::int32_t*,
                         const std::int32_t* idx, std::ptrdiff_t m, std::int32_t,
                         std::int32_t* S) {
  if (Dp == 64)
    exact_scores_lines<true>(qh16, ql, k8, Dp, idx, m, S);
  else
    exact_scores_lines<false>(qh16, ql, k8, Dp, idx, m, S);
}

// score_weights of latte_scalar.inl in two vector passes over the scores (extremes,
// weights and their sum), the same formula lane by lane; whole vectors unmasked (the
// buffers have 16 entries of slack), the ragged end masked.
inline float score_weights(const std::int32_t* S, std::ptrdiff_t m, float mult, float* w) {
  const std::ptrdiff_t full = m / 16 * 16;
  const __mmask16 last = tail16(m - full);
  __m512i lo = _mm512_set1_epi32(S[0]), hi = lo;
  for (std::ptrdiff_t s = 0; s < full; s += 16) {
    const __m512i x = _mm512_loadu_si512(S + s);
    lo = _mm512_min_epi32(lo, x);
    hi = _mm512_max_epi32(hi, x);
  }
  const __m512i x = _mm512_mask_loadu_epi32(lo, last, S + full);
  lo = _mm512_min_epi32(lo, x);
  hi = _mm512_max_epi32(hi, x);
  const __m512i top = _mm512_set1_epi32(mult >= 0.0f ? _mm512_reduce_max_epi32(hi)
                                                     : _mm512_reduce_min_epi32(lo));
  const __m512 vmult = _mm512_set1_ps(mult);
  const auto weight = [&](__m512i x) {
    return softmax::exp2_nonpositive(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(x, top)), vmult));
  };
  __m512 sum = _mm512_setzero_ps();
  for (std::ptrdiff_t s = 0; s < full; s += 16) {
    const __m512 e = weight(_mm512_loadu_si512(S + s));
    _mm512_storeu_ps(w + s, e);
    sum = _mm512_add_ps(sum, e);
  }
  const __m512 e = _mm512_maskz_mov_ps(last, weight(_mm512_maskz_loadu_epi32(last, S + full)));
  _mm512_storeu_ps(w + full, e);
  sum = _mm512_add_ps(sum, e);
  return 1.0f / _mm512_reduce_add_ps(sum);
}

// Quantizes 16 floats (lanes beyond `live` read as 0): clamp to [-127, 127] then round to
// nearest even (the default MXCSR mode), equal to detail::latte::quantize lane by lane since the
// bounds are integers.
inline __m512i quantize16(const float* x, __mmask16 live, __m512 inv) {
  const __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(live, x), inv);
  const __m512 c = _mm512_min_ps(_mm512_set1_ps(127.0f), _mm512_max_ps(_mm512_set1_ps(-127.0f), y));
  return _mm512_cvtps_epi32(c);
}

inline void pack_key(const float* x, std::ptrdiff_t d, float inv, std::ptrdiff_t j,
                     std::ptrdiff_t G, std::ptrdiff_t Dp, std::uint8_t* kpack, std::int8_t* k8,
                     std::uint8_t* kl) {
  const __m512 vinv = _mm512_set1_ps(inv);
  std::uint8_t* kp = kpack + ((j / 16) * G * 16 + j % 16) * 4;
  for (std::ptrdiff_t t = 0; t < d; t += 16) {
    const __m512i c = quantize16(x + t, tail16(d - t), vinv);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(k8 + j * Dp + t), _mm512_cvtepi32_epi8(c));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(kl + j * Dp + t),
                     _mm512_cvtepi32_epi8(_mm512_and_si512(c, _mm512_set1_epi32(15))));
    alignas(16) std::uint32_t hi[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(hi),
                    _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_srai_epi32(c, 4), _mm512_set1_epi32(8))));
    for (std::ptrdiff_t g = t / 4; g < t / 4 + 4 && g < G; ++g)
      std::memcpy(kp + g * 64, &hi[g - t / 4], 4);
  }
}

inline std::int32_t pack_query(const float* x, std::ptrdiff_t d, float inv, std::int8_t* qh,
                               std::int8_t* qh16, std::uint8_t* ql) {
  const __m512 vinv = _mm512_set1_ps(inv);
  __m512i sum = _mm512_setzero_si512();
  for (std::ptrdiff_t t = 0; t < d; t += 16) {
    const __mmask16 live = tail16(d - t);
    const __m512i c = quantize16(x + t, live, vinv);
    const __m512i hi = _mm512_srai_epi32(c, 4);
    sum = _mm512_add_epi32(sum, hi);
    // qh is only 4*ceil(d/4) bytes long: store the live bytes only.
    _mm_mask_storeu_epi8(qh + t, live, _mm512_cvtepi32_epi8(hi));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qh16 + t),
                     _mm512_cvtepi32_epi8(_mm512_slli_epi32(hi, 4)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(ql + t),
                     _mm512_cvtepi32_epi8(_mm512_and_si512(c, _mm512_set1_epi32(15))));
  }
  return 8 * _mm512_reduce_add_epi32(sum);
}

// P*V over survivors: NC output columns (NC/16 registers, FULL: all NC live, so the
// loads fold into the FMAs unmasked) starting at c0, two interleaved sets of
// accumulators so the FMA latency chain does not bound the loop.
template <int NC, bool FULL>
void gather_pv_columns(const float* p, const std::int32_t* idx, std::ptrdiff_t n, const float* V,
                       std::ptrdiff_t stride, std::ptrdiff_t dv, std::ptrdiff_t c0, float scale,
                       float* o) {
  constexpr int U = NC / 16;
  __mmask16 mk[U];
  __m512 a0[U], a1[U];
  for (int u = 0; u < U; ++u) {
    const std::ptrdiff_t left = dv - c0 - 16 * u;
    mk[u] = left <= 0 ? __mmask16(0) : tail16(left);
    a0[u] = a1[u] = _mm512_setzero_ps();
  }
  const auto load = [&](const float* v, int u) {
    return FULL ? _mm512_loadu_ps(v + 16 * u) : _mm512_maskz_loadu_ps(mk[u], v + 16 * u);
  };
  std::ptrdiff_t s = 0;
  for (; s + 2 <= n; s += 2) {
    if (s + 8 < n) {  // the rows a few survivors ahead: random rows defeat the prefetcher
      const float* ahead = V + std::ptrdiff_t(idx[s + 8]) * stride + c0;
      _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
      if (U > 2) _mm_prefetch(reinterpret_cast<const char*>(ahead + 32), _MM_HINT_T0);
    }
    const float* v0 = V + std::ptrdiff_t(idx[s]) * stride + c0;
    const float* v1 = V + std::ptrdiff_t(idx[s + 1]) * stride + c0;
    const __m512 w0 = _mm512_set1_ps(p[s]), w1 = _mm512_set1_ps(p[s + 1]);
    for (int u = 0; u < U; ++u) {
      a0[u] = _mm512_fmadd_ps(w0, load(v0, u), a0[u]);
      a1[u] = _mm512_fmadd_ps(w1, load(v1, u), a1[u]);
    }
  }
  if (s < n) {
    const float* v0 = V + std::ptrdiff_t(idx[s]) * stride + c0;
    const __m512 w0 = _mm512_set1_ps(p[s]);
    for (int u = 0; u < U; ++u) a0[u] = _mm512_fmadd_ps(w0, load(v0, u), a0[u]);
  }
  const __m512 f = _mm512_set1_ps(scale);
  for (int u = 0; u < U; ++u)
    _mm512_mask_storeu_ps(o + c0 + 16 * u, mk[u], _mm512_mul_ps(_mm512_add_ps(a0[u], a1[u]), f));
}

// P*V over survivors, 64 output columns (4 registers) at a time; the ragged end masked.
inline void gather_pv(const float* p, const std::int32_t* idx, std::ptrdiff_t n, const float* V,
                      std::ptrdiff_t stride, std::ptrdiff_t dv, float* o, float scale = 1.0f) {
  std::ptrdiff_t c0 = 0;
  for (; c0 + 64 <= dv; c0 += 64) gather_pv_columns<64, true>(p, idx, n, V, stride, dv, c0, scale, o);
  if (c0 < dv) gather_pv_columns<64, false>(p, idx, n, V, stride, dv, c0, scale, o);
}

}  // namespace avx512
}  // namespace detail::latte
#endif  // ETK_HAS_AVX512VNNI
