// etk/quant/detail/uniform_kernels.inl: the bodies of uniform_kernels.hpp, compiled once
// per dispatch path by etk/core/detail/for_each_target.hpp (no include guard, no includes).
namespace detail::quant {
namespace uq {

// 1.5 * 2^23: RN(y + kMagic + zp) = kMagic + zp + rne(y) for |y + zp| < 2^22 (SIMD form).
constexpr float kMagic = 12582912.0f;

// The quotient estimates' multipliers: inv[i] = RN(1 / s[i]).
inline void reciprocals(const float* s, std::ptrdiff_t n, float* inv) {
  for (std::ptrdiff_t i = 0; i < n; ++i) inv[i] = 1.0f / s[i];
}

// Exact path: rne(x / s) of the real quotient, unclamped (NaN for NaN; +-Inf saturate later).
inline float round_exact(float x, float s) {
  const float qf = x / s;
  float r = std::nearbyint(qf);
  if (std::fabs(qf - r) == 0.5f) {
    const float residual = std::fma(-qf, s, x);
    if (residual > 0) r = qf + 0.5f;
    if (residual < 0) r = qf - 0.5f;
  }
  return r;
}

// rne(x / s), unclamped: the certified estimate, else the exact path.
inline float round_quotient(float x, float s, float inv) {
  const float r = std::nearbyint(x * inv);
  if (std::fabs(std::fma(-r, s, x)) < 0.5f * s) return r;
  return round_exact(x, s);
}

template <typename T, bool kPerElement>
bool quantize_run_scalar(const float* x, std::ptrdiff_t begin, std::ptrdiff_t n, const float* s,
                         const float* inv, const std::int32_t* zp, std::int32_t qmin,
                         std::int32_t qmax, T* out) {
  bool nan = false;
  for (std::ptrdiff_t i = begin; i < n; ++i) {
    const std::ptrdiff_t c = kPerElement ? i : 0;
    const float lo = static_cast<float>(qmin - zp[c]), hi = static_cast<float>(qmax - zp[c]);
    // A NaN is reported and stored as the lowest code; it never reaches the conversion.
    const bool is_nan = std::isnan(x[i]);
    nan |= is_nan;
    const float r = is_nan ? lo : std::min(std::max(round_quotient(x[i], s[c], inv[c]), lo), hi);
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
// Exact path on the lanes of m (unclamped).
inline __m512 round_exact16(__m512 x, __m512 s, __mmask16 m) {
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
  return r;
}

inline __m512i load_codes16(const std::int8_t* p, __mmask16 m) { return _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)); }
inline __m512i load_codes16(const std::uint8_t* p, __mmask16 m) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)); }
inline __m512i load_codes16(const std::int16_t* p, __mmask16 m) { return _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, p)); }
inline __m512i load_codes16(const std::uint16_t* p, __mmask16 m) { return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)); }

// Constants of 16 lanes (see the top): scale, reciprocal, m = kMagic + zp, h = RN(s / 2).
struct Consts16 {
  __m512 s, inv, m, h;
};

// The clamp bounds of t: kMagic + qmin and kMagic + qmax; qmax itself for packed codes.
struct Bounds16 {
  __m512 lo, hi;
  std::int32_t qmax;
  Bounds16(std::int32_t qmin, std::int32_t qmax_)
      : lo(_mm512_set1_ps(kMagic + float(qmin))), hi(_mm512_set1_ps(kMagic + float(qmax_))), qmax(qmax_) {}
};

template <bool kPerElement>
inline Consts16 consts16(const float* s, const float* inv, const std::int32_t* zp, std::ptrdiff_t i, __mmask16 mask) {
  const __m512 vs = kPerElement ? _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), mask, s + i) : _mm512_set1_ps(s[0]);
  const __m512 h = _mm512_mul_ps(vs, _mm512_set1_ps(0.5f));
  if (!kPerElement) return {vs, _mm512_set1_ps(inv[0]), _mm512_set1_ps(kMagic + float(zp[0])), h};
  const __m512 zpf = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(mask, zp + i));
  return {vs, _mm512_maskz_loadu_ps(mask, inv + i), _mm512_add_ps(zpf, _mm512_set1_ps(kMagic)), h};
}

// t = RN(x inv + m), certified (bad = lanes of mask without the certificate).
inline __m512 estimate16(__m512 x, const Consts16& k, __mmask16 mask, __mmask16& bad) {
  const __m512 t = _mm512_fmadd_ps(x, k.inv, k.m);
  // |e| < h on the bit patterns shifted left by one (sign dropped; NaN compares above).
  const __m512i e2 = _mm512_slli_epi32(_mm512_castps_si512(_mm512_fnmadd_ps(_mm512_sub_ps(t, k.m), k.s, x)), 1);
  bad = _kandn_mask16(_mm512_cmplt_epu32_mask(e2, _mm512_slli_epi32(_mm512_castps_si512(k.h), 1)), mask);
  return t;
}

// The exact path on the `bad` lanes: t = RN(rne(x / s) + m); NaN lanes are added to `nan`.
inline __m512 fix16(__m512 t, __m512 x, const Consts16& k, __mmask16 bad, __mmask16& nan) {
  nan |= _mm512_mask_cmp_ps_mask(bad, x, x, _CMP_UNORD_Q);
  return _mm512_mask_add_ps(t, bad, round_exact16(x, k.s, bad), k.m);
}

// Clamped t: kMagic + the code. max(NaN, lo) is lo on x86 (second operand).
inline __m512 clamp16(__m512 t, const Bounds16& b) { return _mm512_min_ps(_mm512_max_ps(t, b.lo), b.hi); }

// The code of a clamped t, an integer in [2^23, 2^24): its bits minus kMagic's bits.
inline __m512i int_codes16(__m512 t) {
  return _mm512_sub_epi32(_mm512_castps_si512(t), _mm512_castps_si512(_mm512_set1_ps(kMagic)));
}

inline __mmask16 tail_mask(std::ptrdiff_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

// Saturating packs work per 128-bit lane: this dword permutation restores the order of
// the 64 bytes packed from 4 vectors.
inline __m512i bytes_in_order(__m512i packed) {
  return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), packed);
}
// Stores 64 bytes, or with kTail only the first w (< 64).
template <bool kTail>
inline void store_bytes64(void* p, __m512i c, std::ptrdiff_t w) {
  if (kTail) _mm512_mask_storeu_epi8(p, (__mmask64(1) << w) - 1, c);
  else _mm512_storeu_si512(p, c);
}

// 64 codes from 4 vectors of codes >= qmin: saturating packs, the order restored, then the
// upper clamp at qmax on the packed codes (one operation per 64 or 32 codes).
template <bool kTail>
inline void store_codes64(std::int8_t* p, const __m512i* v, std::int32_t qmax, std::ptrdiff_t w) {
  const __m512i b = _mm512_packs_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
  store_bytes64<kTail>(p, _mm512_min_epi8(_mm512_set1_epi8(char(qmax)), bytes_in_order(b)), w);
}
template <bool kTail>
inline void store_codes64(std::uint8_t* p, const __m512i* v, std::int32_t qmax, std::ptrdiff_t w) {
  const __m512i b = _mm512_packus_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
  store_bytes64<kTail>(p, _mm512_min_epu8(_mm512_set1_epi8(char(qmax)), bytes_in_order(b)), w);
}
template <bool kTail, typename T16>
inline void store_codes64_16(T16* p, __m512i lo, __m512i hi, std::ptrdiff_t w) {
  const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  lo = _mm512_permutexvar_epi64(order, lo);
  hi = _mm512_permutexvar_epi64(order, hi);
  if (kTail) {
    _mm512_mask_storeu_epi16(p, w >= 32 ? __mmask32(0xFFFFFFFFu) : __mmask32((1u << w) - 1), lo);
    if (w > 32) _mm512_mask_storeu_epi16(p + 32, __mmask32((std::uint64_t(1) << (w - 32)) - 1), hi);
  } else {
    _mm512_storeu_si512(p, lo);
    _mm512_storeu_si512(p + 32, hi);
  }
}
template <bool kTail>
inline void store_codes64(std::int16_t* p, const __m512i* v, std::int32_t qmax, std::ptrdiff_t w) {
  const __m512i cap = _mm512_set1_epi16(short(qmax));
  store_codes64_16<kTail>(p, _mm512_min_epi16(cap, _mm512_packs_epi32(v[0], v[1])),
                          _mm512_min_epi16(cap, _mm512_packs_epi32(v[2], v[3])), w);
}
template <bool kTail>
inline void store_codes64(std::uint16_t* p, const __m512i* v, std::int32_t qmax, std::ptrdiff_t w) {
  const __m512i cap = _mm512_set1_epi16(short(qmax));
  store_codes64_16<kTail>(p, _mm512_min_epu16(cap, _mm512_packus_epi32(v[0], v[1])),
                          _mm512_min_epu16(cap, _mm512_packus_epi32(v[2], v[3])), w);
}

// Up to 64 consecutive values x[0..w) (w = 64 unless kTail) with the constants of their
// four vectors: one test for the exact path, one packed store of codes. Codes get the
// lower bound on t (which also maps t < 2^23 and NaN into range) and the upper one after
// packing. Lanes past w are neither read nor written.
template <bool kTail, typename T>
inline void block64(const float* x, std::ptrdiff_t w, const Consts16* k, const Bounds16& bounds,
                    __mmask16& nan, T* out) {
  __m512 vx[4], t[4];
  __mmask16 bad[4], m[4];
  for (int v = 0; v < 4; ++v) {
    m[v] = kTail ? tail_mask(w - 16 * v) : __mmask16(0xFFFF);
    vx[v] = kTail ? _mm512_maskz_loadu_ps(m[v], x + 16 * v) : _mm512_loadu_ps(x + 16 * v);
    t[v] = estimate16(vx[v], k[v], m[v], bad[v]);
  }
  if (__builtin_expect((bad[0] | bad[1] | bad[2] | bad[3]) != 0, 0))
    for (int v = 0; v < 4; ++v) t[v] = fix16(t[v], vx[v], k[v], bad[v], nan);
  if constexpr (std::is_same<T, float>::value) {
    for (int v = 0; v < 4; ++v)
      _mm512_mask_storeu_ps(out + 16 * v, m[v], _mm512_mul_ps(_mm512_sub_ps(clamp16(t[v], bounds), k[v].m), k[v].s));
  } else {
    for (int v = 0; v < 4; ++v) t[v] = _mm512_max_ps(t[v], bounds.lo);
    const __m512i q[4] = {int_codes16(t[0]), int_codes16(t[1]), int_codes16(t[2]), int_codes16(t[3])};
    store_codes64<kTail>(out, q, bounds.qmax, w);
  }
}

template <typename T, bool kPerElement>
bool quantize_run(const float* x, std::ptrdiff_t n, const float* s, const float* inv,
                  const std::int32_t* zp, std::int32_t qmin, std::int32_t qmax, T* out) {
  __mmask16 nan = 0;
  const Bounds16 bounds(qmin, qmax);
  Consts16 k[4];
  for (int v = 0; v < 4; ++v) k[v] = consts16<false>(s, inv, zp, 0, 0xFFFF);
  std::ptrdiff_t i = 0;
  for (; i + 64 <= n; i += 64) {
    if (kPerElement)
      for (int v = 0; v < 4; ++v) k[v] = consts16<true>(s, inv, zp, i + 16 * v, 0xFFFF);
    block64<false>(x + i, 64, k, bounds, nan, out + i);
  }
  if (i < n) {
    if (kPerElement)
      for (int v = 0; v < 4; ++v) k[v] = consts16<true>(s, inv, zp, i + 16 * v, tail_mask(n - i - 16 * v));
    block64<true>(x + i, n - i, k, bounds, nan, out + i);
  }
  return nan != 0;
}

// Per-column grids (s, inv, zp indexed by column) over a [rows, cols] block with row
// strides xs and os: the constants of a 64-column strip stay in registers over a block
// of rows.
template <typename T>
bool quantize_cols(const float* x, std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t xs,
                   const float* s, const float* inv, const std::int32_t* zp, std::int32_t qmin,
                   std::int32_t qmax, T* out, std::ptrdiff_t os) {
  constexpr std::ptrdiff_t kRows = 16;  // rows per block: a 16 x 256 B strip of x
  // Beyond cache sizes (1 MiB of floats) the strips defeat the prefetchers: stream the
  // rows instead, loading the constants with the values.
  if (rows * cols > (std::ptrdiff_t(1) << 18)) {
    bool nan_rows = false;
    for (std::ptrdiff_t r = 0; r < rows; ++r)
      nan_rows |= quantize_run<T, true>(x + r * xs, cols, s, inv, zp, qmin, qmax, out + r * os);
    return nan_rows;
  }
  __mmask16 nan = 0;
  const Bounds16 bounds(qmin, qmax);
  for (std::ptrdiff_t r0 = 0; r0 < rows; r0 += kRows) {
    const std::ptrdiff_t r1 = std::min(rows, r0 + kRows);
    std::ptrdiff_t c = 0;
    for (; c + 64 <= cols; c += 64) {
      Consts16 k[4];
      for (int v = 0; v < 4; ++v) k[v] = consts16<true>(s, inv, zp, c + 16 * v, 0xFFFF);
      for (std::ptrdiff_t r = r0; r < r1; ++r) block64<false>(x + r * xs + c, 64, k, bounds, nan, out + r * os + c);
    }
    if (c < cols) {
      Consts16 k[4];
      for (int v = 0; v < 4; ++v) k[v] = consts16<true>(s, inv, zp, c + 16 * v, tail_mask(cols - c - 16 * v));
      for (std::ptrdiff_t r = r0; r < r1; ++r)
        block64<true>(x + r * xs + c, cols - c, k, bounds, nan, out + r * os + c);
    }
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

// Per-column grids over a [rows, cols] block of codes (row strides qs, os): the
// constants of a 16-column strip stay in registers over all rows.
template <typename T>
void dequantize_cols(const T* q, std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t qs,
                     const float* s, const std::int32_t* zp, float* out, std::ptrdiff_t os) {
  for (std::ptrdiff_t c = 0; c < cols; c += 16) {
    const __mmask16 m = tail_mask(cols - c);
    const __m512 vs = _mm512_maskz_loadu_ps(m, s + c);
    const __m512i vzp = _mm512_maskz_loadu_epi32(m, zp + c);
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(load_codes16(q + r * qs + c, m), vzp));
      _mm512_mask_storeu_ps(out + r * os + c, m, _mm512_mul_ps(v, vs));
    }
  }
}

#elif defined(ETK_HAS_AVX2)
// ---- AVX2: 8 lanes, scalar tails (same algorithm, so the same bits) --------------------
inline __m256 round_exact8(__m256 x, __m256 s) {
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
  return r;
}

// Clamped t = kMagic + code of 8 values (the SIMD form of the AVX-512 path, 8 lanes);
// NaN lanes are or-ed into `nan`.
inline __m256 codes8(__m256 x, __m256 s, __m256 inv, __m256 m, __m256 lo, __m256 hi, __m256& nan) {
  __m256 t = _mm256_fmadd_ps(x, inv, m);
  const __m256 e = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_fnmadd_ps(_mm256_sub_ps(t, m), s, x));
  const __m256 ok = _mm256_cmp_ps(e, _mm256_mul_ps(s, _mm256_set1_ps(0.5f)), _CMP_LT_OQ);
  if (_mm256_movemask_ps(ok) != 0xFF) {
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    t = _mm256_blendv_ps(_mm256_add_ps(round_exact8(x, s), m), t, ok);
  }
  // max(NaN, lo) is lo on x86 (second operand).
  return _mm256_min_ps(_mm256_max_ps(t, lo), hi);
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
bool quantize_run(const float* x, std::ptrdiff_t n, const float* s, const float* inv,
                  const std::int32_t* zp, std::int32_t qmin, std::int32_t qmax, T* out) {
  __m256 nan = _mm256_setzero_ps();
  const __m256 lo = _mm256_set1_ps(kMagic + float(qmin)), hi = _mm256_set1_ps(kMagic + float(qmax));
  const __m256i magic_bits = _mm256_castps_si256(_mm256_set1_ps(kMagic));
  __m256 vs = _mm256_set1_ps(s[0]), vinv = _mm256_set1_ps(inv[0]);
  __m256 m = _mm256_set1_ps(kMagic + float(zp[0]));
  std::ptrdiff_t i = 0;
  for (; i + 8 <= n; i += 8) {
    if (kPerElement) {
      vs = _mm256_loadu_ps(s + i);
      vinv = _mm256_loadu_ps(inv + i);
      m = _mm256_add_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(zp + i))),
                        _mm256_set1_ps(kMagic));
    }
    const __m256 t = codes8(_mm256_loadu_ps(x + i), vs, vinv, m, lo, hi, nan);
    if constexpr (std::is_same<T, float>::value)
      _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_sub_ps(t, m), vs));
    else
      store_codes8(out + i, _mm256_sub_epi32(_mm256_castps_si256(t), magic_bits));
  }
  const bool tail_nan = quantize_run_scalar<T, kPerElement>(x, i, n, s, inv, zp, qmin, qmax, out);
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
bool quantize_run(const float* x, std::ptrdiff_t n, const float* s, const float* inv,
                  const std::int32_t* zp, std::int32_t qmin, std::int32_t qmax, T* out) {
  return quantize_run_scalar<T, kPerElement>(x, 0, n, s, inv, zp, qmin, qmax, out);
}
template <typename T, bool kPerElement>
void dequantize_run(const T* q, std::ptrdiff_t n, const float* s, const std::int32_t* zp, float* out) {
  dequantize_run_scalar<T, kPerElement>(q, 0, n, s, zp, out);
}
#endif

#if !defined(ETK_HAS_AVX512)
// Per-column grids over a [rows, cols] block (row strides xs, os): one run per row.
template <typename T>
bool quantize_cols(const float* x, std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t xs,
                   const float* s, const float* inv, const std::int32_t* zp, std::int32_t qmin,
                   std::int32_t qmax, T* out, std::ptrdiff_t os) {
  bool nan = false;
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    nan |= quantize_run<T, true>(x + r * xs, cols, s, inv, zp, qmin, qmax, out + r * os);
  return nan;
}

template <typename T>
void dequantize_cols(const T* q, std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t qs,
                     const float* s, const std::int32_t* zp, float* out, std::ptrdiff_t os) {
  for (std::ptrdiff_t r = 0; r < rows; ++r) dequantize_run<T, true>(q + r * qs, cols, s, zp, out + r * os);
}
#endif

}  // namespace uq
}  // namespace detail::quant
