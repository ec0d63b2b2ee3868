// etk/attention/detail/softmax_kernels.inl: the softmax pieces of one dispatch path
// (compiled once per path by etk/core/detail/for_each_target.hpp; see softmax_kernels.hpp
// for what each computes). One generic body per piece, over the path's float vector V:
//   AVX-512: __m512 (16 lanes, masked tails);  AVX2: __m256 (8 lanes, maskload tails);
//   portable: one float (the same arithmetic, lane by lane).

namespace detail::softmax {

#if defined(ETK_HAS_AVX512)
struct V {
  using P = __m512;
  static constexpr std::ptrdiff_t W = 16;
  static __mmask16 mask(std::ptrdiff_t n) { return static_cast<__mmask16>((1u << n) - 1u); }
  static P set1(float x) { return _mm512_set1_ps(x); }
  static P load(const float* x) { return _mm512_loadu_ps(x); }
  static void store(float* x, P a) { _mm512_storeu_ps(x, a); }
  static P load_tail(const float* x, std::ptrdiff_t n, float fill) { return _mm512_mask_loadu_ps(set1(fill), mask(n), x); }
  static void store_tail(float* x, std::ptrdiff_t n, P a) { _mm512_mask_storeu_ps(x, mask(n), a); }
  static P add(P a, P b) { return _mm512_add_ps(a, b); }
  static P sub(P a, P b) { return _mm512_sub_ps(a, b); }
  static P mul(P a, P b) { return _mm512_mul_ps(a, b); }
  static P min(P a, P b) { return _mm512_min_ps(a, b); }
  static P max(P a, P b) { return _mm512_max_ps(a, b); }
  static P madd(P a, P b, P c) { return _mm512_fmadd_ps(a, b, c); }
  static P floor(P a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  // p * 2^n for integral n in [-127, 128]: the biased exponent n + 127 clamped to [0, 255].
  static P ldexp(P p, P n) {
    __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    e = _mm512_min_epi32(_mm512_max_epi32(e, _mm512_setzero_si512()), _mm512_set1_epi32(255));
    return _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(e, 23)));
  }
  static float hmax(P a) { return _mm512_reduce_max_ps(a); }
  static float hsum(P a) { return _mm512_reduce_add_ps(a); }
};
#elif defined(ETK_HAS_AVX2)
struct V {
  using P = __m256;
  static constexpr std::ptrdiff_t W = 8;
  static __m256i mask(std::ptrdiff_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static P set1(float x) { return _mm256_set1_ps(x); }
  static P load(const float* x) { return _mm256_loadu_ps(x); }
  static void store(float* x, P a) { _mm256_storeu_ps(x, a); }
  static P load_tail(const float* x, std::ptrdiff_t n, float fill) {
    const __m256i m = mask(n);
    return _mm256_blendv_ps(set1(fill), _mm256_maskload_ps(x, m), _mm256_castsi256_ps(m));
  }
  static void store_tail(float* x, std::ptrdiff_t n, P a) { _mm256_maskstore_ps(x, mask(n), a); }
  static P add(P a, P b) { return _mm256_add_ps(a, b); }
  static P sub(P a, P b) { return _mm256_sub_ps(a, b); }
  static P mul(P a, P b) { return _mm256_mul_ps(a, b); }
  static P min(P a, P b) { return _mm256_min_ps(a, b); }
  static P max(P a, P b) { return _mm256_max_ps(a, b); }
  static P madd(P a, P b, P c) { return _mm256_fmadd_ps(a, b, c); }
  static P floor(P a) { return _mm256_floor_ps(a); }
  static P ldexp(P p, P n) {
    __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    e = _mm256_min_epi32(_mm256_max_epi32(e, _mm256_setzero_si256()), _mm256_set1_epi32(255));
    return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(e, 23)));
  }
  static float hmax(P a) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
  }
  static float hsum(P a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
  }
};
#else
struct V {
  using P = float;
  static constexpr std::ptrdiff_t W = 1;
  static P set1(float x) { return x; }
  static P load(const float* x) { return *x; }
  static void store(float* x, P a) { *x = a; }
  static P load_tail(const float* x, std::ptrdiff_t n, float fill) { return n > 0 ? *x : fill; }
  static void store_tail(float* x, std::ptrdiff_t n, P a) {
    if (n > 0) *x = a;
  }
  static P add(P a, P b) { return a + b; }
  static P sub(P a, P b) { return a - b; }
  static P mul(P a, P b) { return a * b; }
  static P min(P a, P b) { return b < a ? b : a; }
  static P max(P a, P b) { return a < b ? b : a; }
  static P madd(P a, P b, P c) { return a * b + c; }
  static P floor(P a) { return std::floor(a); }
  static P ldexp(P p, P n) {
    int e = static_cast<int>(n) + 127;
    e = e < 0 ? 0 : e > 255 ? 255 : e;
    const std::uint32_t bits = static_cast<std::uint32_t>(e) << 23;
    float f;
    std::memcpy(&f, &bits, 4);
    return p * f;
  }
  static float hmax(P a) { return a; }
  static float hsum(P a) { return a; }
};
#endif

using P = V::P;
constexpr std::ptrdiff_t W = V::W;

// 2^y for y <= 0 (y = -inf allowed). Relative error: the polynomial is the degree-6
// Taylor series of 2^r on |r| <= 1/2, truncation error (ln2/2)^7/7! < 1.2e-7 (about one
// float ulp), plus about 6 roundings in Horner's scheme and the final product.
inline P exp2_nonpositive(P y) {
  const P x = V::max(y, V::set1(-127.0f));  // max(-inf, -127) = -127 -> result 0
  const P n = V::floor(V::add(x, V::set1(0.5f)));
  const P r = V::sub(x, n);  // exact, in [-1/2, 1/2)
  P p = V::set1(1.5403530393381606e-4f);
  p = V::madd(p, r, V::set1(1.3333558146428443e-3f));
  p = V::madd(p, r, V::set1(9.6181291076284772e-3f));
  p = V::madd(p, r, V::set1(5.5504108664821580e-2f));
  p = V::madd(p, r, V::set1(2.4022650695910071e-1f));
  p = V::madd(p, r, V::set1(6.9314718055994531e-1f));
  p = V::madd(p, r, V::set1(1.0f));
  // n = -127 gives the biased exponent 0, i.e. a factor of exactly 0.
  return V::ldexp(p, n);
}

// 2^min((x - shift) * mult, 0).
inline P exp2_shifted(P x, P shift, P mult) { return exp2_nonpositive(V::min(V::mul(V::sub(x, shift), mult), V::set1(0.0f))); }

inline float row_max(float* x, const float* bias, std::ptrdiff_t n) {
  const float ninf = -std::numeric_limits<float>::infinity();
  P m0 = V::set1(ninf), m1 = m0;
  std::ptrdiff_t j = 0;
  if (bias) {
    for (; j + 2 * W <= n; j += 2 * W) {
      const P a = V::add(V::load(x + j), V::load(bias + j)), b = V::add(V::load(x + j + W), V::load(bias + j + W));
      V::store(x + j, a);
      V::store(x + j + W, b);
      m0 = V::max(m0, a);
      m1 = V::max(m1, b);
    }
  } else {
    for (; j + 2 * W <= n; j += 2 * W) {
      m0 = V::max(m0, V::load(x + j));
      m1 = V::max(m1, V::load(x + j + W));
    }
  }
  for (; j < n; j += W) {  // at most one full packet, then a ragged tail (padding lanes -inf)
    const std::ptrdiff_t len = n - j < W ? n - j : W;
    P a = V::load_tail(x + j, len, ninf);
    if (bias) {
      a = V::add(a, V::load_tail(bias + j, len, 0.0f));
      V::store_tail(x + j, len, a);
    }
    m0 = V::max(m0, a);
  }
  return V::hmax(V::max(m0, m1));
}

inline float exp2_shift_sum(float* x, std::ptrdiff_t n, float shift, float mult) {
  const P pm = V::set1(mult), ps = V::set1(shift);
  P s0 = V::set1(0.0f), s1 = s0;
  std::ptrdiff_t j = 0;
  for (; j + 2 * W <= n; j += 2 * W) {
    const P a = exp2_shifted(V::load(x + j), ps, pm), b = exp2_shifted(V::load(x + j + W), ps, pm);
    V::store(x + j, a);
    V::store(x + j + W, b);
    s0 = V::add(s0, a);
    s1 = V::add(s1, b);
  }
  for (; j < n; j += W) {  // padding lanes are -inf, so exactly 0
    const std::ptrdiff_t len = n - j < W ? n - j : W;
    const P a = exp2_shifted(V::load_tail(x + j, len, -std::numeric_limits<float>::infinity()), ps, pm);
    V::store_tail(x + j, len, a);
    s0 = V::add(s0, a);
  }
  return V::hsum(V::add(s0, s1));
}

inline void scale_row(float* x, std::ptrdiff_t n, float f) {
  const P pf = V::set1(f);
  std::ptrdiff_t j = 0;
  for (; j + W <= n; j += W) V::store(x + j, V::mul(V::load(x + j), pf));
  if (j < n) V::store_tail(x + j, n - j, V::mul(V::load_tail(x + j, n - j, 0.0f), pf));
}

// A column chunk of `len` lanes: full chunks (Full, len == W) load and store unmasked;
// AVX2's masked store is microcoded on AMD cores and made the column passes of dense
// attention several times slower than the arithmetic needs.
template <bool Full>
inline P load_cols(const float* x, std::ptrdiff_t len, float fill) {
  return Full ? V::load(x) : V::load_tail(x, len, fill);
}
template <bool Full>
inline void store_cols(float* x, std::ptrdiff_t len, P a) {
  if (Full)
    V::store(x, a);
  else
    V::store_tail(x, len, a);
}

template <bool Full>
inline void column_max_chunk(const float* s, std::ptrdiff_t ld, std::ptrdiff_t rows, std::ptrdiff_t len, float* mx) {
  const float ninf = -std::numeric_limits<float>::infinity();
  P m0 = V::set1(ninf), m1 = m0;
  std::ptrdiff_t r = 0;
  for (; r + 2 <= rows; r += 2) {
    m0 = V::max(m0, load_cols<Full>(s + r * ld, len, ninf));
    m1 = V::max(m1, load_cols<Full>(s + (r + 1) * ld, len, ninf));
  }
  if (r < rows) m0 = V::max(m0, load_cols<Full>(s + r * ld, len, ninf));
  store_cols<Full>(mx, len, V::max(m0, m1));
}

inline void column_max(const float* s, std::ptrdiff_t ld, std::ptrdiff_t rows, std::ptrdiff_t n, float* mx) {
  std::ptrdiff_t i = 0;
  for (; i + W <= n; i += W) column_max_chunk<true>(s + i, ld, rows, W, mx + i);
  if (i < n) column_max_chunk<false>(s + i, ld, rows, n - i, mx + i);
}

template <bool Full>
inline void exp2_shift_chunk(float* s, std::ptrdiff_t ld, std::ptrdiff_t rows, std::ptrdiff_t len,
                             const float* shift, float* sum) {
  const P one = V::set1(1.0f);
  const P sh = load_cols<Full>(shift, len, 0.0f);
  P s0 = V::set1(0.0f), s1 = s0;
  std::ptrdiff_t r = 0;
  for (; r + 2 <= rows; r += 2) {
    const P a = exp2_shifted(load_cols<Full>(s + r * ld, len, 0.0f), sh, one);
    const P b = exp2_shifted(load_cols<Full>(s + (r + 1) * ld, len, 0.0f), sh, one);
    store_cols<Full>(s + r * ld, len, a);
    store_cols<Full>(s + (r + 1) * ld, len, b);
    s0 = V::add(s0, a);
    s1 = V::add(s1, b);
  }
  if (r < rows) {
    const P a = exp2_shifted(load_cols<Full>(s + r * ld, len, 0.0f), sh, one);
    store_cols<Full>(s + r * ld, len, a);
    s0 = V::add(s0, a);
  }
  store_cols<Full>(sum, len, V::add(s0, s1));
}

inline void exp2_shift_columns(float* s, std::ptrdiff_t ld, std::ptrdiff_t rows, std::ptrdiff_t n,
                               const float* shift, float* sum) {
  std::ptrdiff_t i = 0;
  for (; i + W <= n; i += W) exp2_shift_chunk<true>(s + i, ld, rows, W, shift + i, sum + i);
  if (i < n) exp2_shift_chunk<false>(s + i, ld, rows, n - i, shift + i, sum + i);
}

}  // namespace detail::softmax
