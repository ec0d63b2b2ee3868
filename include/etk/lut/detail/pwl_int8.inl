// etk/lut/detail/pwl_int8.inl: the bodies of pwl_int8.hpp, compiled once per dispatch path by
// etk/core/detail/for_each_target.hpp (no include guard, no includes).
namespace lut {
namespace detail {

namespace reference = ::etk::ETK_ISA_NAMESPACE::lut::reference;
using ::etk::ETK_ISA_NAMESPACE::lut::detail::DescentTree;

// The 16-bit per-segment operands of the narrow paths: S and B * 2^j + 2^(sh-1).
template <typename Table>
void narrow_coefficients(const Table& t, std::int16_t* s, std::int16_t* b) {
  const int sh = t.shift();
  const std::int32_t half = sh > 0 ? (1 << (sh - 1)) : 0;
  for (int i = 0; i < t.segments(); ++i) {
    s[i] = static_cast<std::int16_t>(t.slopes()[i]);
    b[i] = static_cast<std::int16_t>(t.intercepts()[i] * (1 << t.config().input_frac_bits) + half);
  }
}

#if defined(ETK_HAS_AVX512)
template <typename Table>
void pwl_int8_avx512(const Table& t, const std::int8_t* q, std::int8_t* y, std::ptrdiff_t n) {
  alignas(64) std::int16_t s32[32] = {};
  alignas(64) std::int16_t b32[32] = {};
  narrow_coefficients(t, s32, b32);
  const __m512i vs = _mm512_load_si512(s32), vb = _mm512_load_si512(b32);
  // Thresholds <= -128 hold for every int8 input (a base count), those > 127 for none; the
  // rest, T in (-128, 127], are tested as q > T - 1 (in [-128, 126]; padding 127 never
  // passes) by a binary descent whose thresholds come from in-lane byte shuffles.
  int base = 0, m = 0;
  std::int8_t active[16];
  for (std::int32_t th : t.thresholds()) {
    if (th <= -128) ++base;
    else if (th <= 127) active[m++] = static_cast<std::int8_t>(th - 1);
  }
  const DescentTree<std::int8_t> d(active, m, 127);
  __m512i tree[4], steps[4];
  for (int l = 0; l < d.levels; ++l) {
    tree[l] = _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(d.tree[l])));
    steps[l] = _mm512_set1_epi8(static_cast<char>(d.top >> l));
  }
  const __m512i first = _mm512_set1_epi8(d.tree[0][0]);
  const __m512i base_v = _mm512_set1_epi8(static_cast<char>(base));
  const __m128i count = _mm_cvtsi32_si128(t.shift());
  auto half = [&](__m256i q8, __m256i idx8) {
    const __m512i qq = _mm512_cvtepi8_epi16(q8), ii = _mm512_cvtepu8_epi16(idx8);
    const __m512i acc = _mm512_add_epi16(_mm512_mullo_epi16(_mm512_permutexvar_epi16(ii, vs), qq),
                                         _mm512_permutexvar_epi16(ii, vb));
    return _mm512_cvtsepi16_epi8(_mm512_sra_epi16(acc, count));
  };
  auto index = [&](__m512i v) {
    __m512i idx = base_v;
    if (d.levels > 0) {
      __m512i step_idx = _mm512_maskz_mov_epi8(_mm512_cmpgt_epi8_mask(v, first), steps[0]);
      for (int l = 1; l < d.levels; ++l)
        step_idx = _mm512_mask_add_epi8(step_idx, _mm512_cmpgt_epi8_mask(v, _mm512_shuffle_epi8(tree[l], step_idx)),
                                        step_idx, steps[l]);
      idx = _mm512_add_epi8(idx, step_idx);
    }
    return idx;
  };
  std::ptrdiff_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i v = _mm512_loadu_si512(q + i);
    const __m512i idx = index(v);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        half(_mm512_castsi512_si256(v), _mm512_castsi512_si256(idx)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i + 32),
                        half(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + i + 32)),
                             _mm512_extracti64x4_epi64(idx, 1)));
  }
  if (i < n) {
    const __mmask64 mask = (~__mmask64{0}) >> (64 - (n - i));
    const __m512i v = _mm512_maskz_loadu_epi8(mask, q + i);
    const __m512i idx = index(v);
    const __m256i lo = half(_mm512_castsi512_si256(v), _mm512_castsi512_si256(idx));
    const __m256i hi = half(_mm512_extracti64x4_epi64(v, 1), _mm512_extracti64x4_epi64(idx, 1));
    _mm512_mask_storeu_epi8(y + i, mask, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
  }
}
#endif

#if defined(ETK_HAS_AVX2)
// 8 16-bit entries in both 128-bit lanes. (A function, not a lambda: a lambda's body does
// not take the target options of the path it is compiled for.)
inline __m256i table8(const std::int16_t* p) {
  return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(p)));
}

template <typename Table>
void pwl_int8_avx2(const Table& t, const std::int8_t* q, std::int8_t* y, std::ptrdiff_t n) {
  alignas(32) std::int16_t s16[16] = {};
  alignas(32) std::int16_t b16[16] = {};
  narrow_coefficients(t, s16, b16);
  const __m256i s_lo = table8(s16), s_hi = table8(s16 + 8);
  const __m256i b_lo = table8(b16), b_hi = table8(b16 + 8);
  const int nt = static_cast<int>(t.thresholds().size());
  __m256i tk[15];  // x >= T  <=>  x > T - 1 (T in [-128, 128] after clamping to int8 reach)
  for (int k = 0; k < nt; ++k) {
    const std::int32_t th = t.thresholds()[k] < -128 ? -128 : (t.thresholds()[k] > 128 ? 128 : t.thresholds()[k]);
    tk[k] = _mm256_set1_epi16(static_cast<std::int16_t>(th - 1));
  }
  const __m256i pair = _mm256_set1_epi16(0x0202), odd = _mm256_set1_epi16(0x0100);
  const __m256i seven = _mm256_set1_epi16(7);
  const __m128i count = _mm_cvtsi32_si128(t.shift());
  std::ptrdiff_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i qq = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i)));
    __m256i idx = _mm256_setzero_si256();
    for (int k = 0; k < nt; ++k) idx = _mm256_sub_epi16(idx, _mm256_cmpgt_epi16(qq, tk[k]));
    // Byte shuffle indices (2 idx, 2 idx + 1) select entry idx's two bytes; pshufb uses
    // the low 4 bits, so idx 8..15 address the high table, chosen by the blend.
    const __m256i bidx = _mm256_add_epi16(_mm256_mullo_epi16(idx, pair), odd);
    const __m256i high = _mm256_cmpgt_epi16(idx, seven);
    const __m256i s = _mm256_blendv_epi8(_mm256_shuffle_epi8(s_lo, bidx), _mm256_shuffle_epi8(s_hi, bidx), high);
    const __m256i b = _mm256_blendv_epi8(_mm256_shuffle_epi8(b_lo, bidx), _mm256_shuffle_epi8(b_hi, bidx), high);
    const __m256i acc = _mm256_sra_epi16(_mm256_add_epi16(_mm256_mullo_epi16(s, qq), b), count);
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi16(acc, acc), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_castsi256_si128(packed));
  }
  reference::pwl_eval_int8(t, q + i, y + i, n - i);
}
#endif

template <typename Table, typename OutT>
void pwl_eval_int8(const Table& t, const std::int8_t* q, OutT* y, std::ptrdiff_t n) {
  if constexpr (std::is_same<OutT, std::int8_t>::value) {
    if (t.narrow()) {
#if defined(ETK_HAS_AVX512)
      return pwl_int8_avx512(t, q, y, n);
#elif defined(ETK_HAS_AVX2)
      return pwl_int8_avx2(t, q, y, n);
#endif
    }
  }
  reference::pwl_eval_int8(t, q, y, n);
}

}  // namespace detail
}  // namespace lut
