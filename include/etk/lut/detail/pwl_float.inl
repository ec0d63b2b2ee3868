// etk/lut/detail/pwl_float.inl: the bodies of pwl_float.hpp, compiled once per dispatch path by
// etk/core/detail/for_each_target.hpp (no include guard, no includes).
namespace lut {
namespace detail {

namespace reference = ::etk::ETK_ISA_NAMESPACE::lut::reference;
using ::etk::ETK_ISA_NAMESPACE::lut::detail::DescentTree;

// Segments the register-permute paths handle.
constexpr int kMaxSimdSegments = 16;

// Binary descent (etk/lut/detail/descent.hpp) with NaN padding: NaN compares false, so
// idx = #{k : b_k <= x}, the reference's count (also for NaN x: 0).
inline DescentTree<float> float_descent(const float* bp, int segments) {
  return DescentTree<float>(bp, segments - 1, std::numeric_limits<float>::quiet_NaN());
}

#if defined(ETK_HAS_AVX512)
inline void pwl_eval_float_avx512(const float* bp, const float* sl, const float* ic,
                                  int segments, const float* x, float* y, std::ptrdiff_t n) {
  alignas(64) float s16[16] = {};
  alignas(64) float b16[16] = {};
  for (int s = 0; s < segments; ++s) {
    s16[s] = sl[s];
    b16[s] = ic[s];
  }
  const __m512 vs = _mm512_load_ps(s16);
  const __m512 vb = _mm512_load_ps(b16);
  const DescentTree<float> d = float_descent(bp, segments);
  __m512 tree[4];
  __m512i steps[4];
  for (int l = 0; l < d.levels; ++l) {
    tree[l] = _mm512_load_ps(d.tree[l]);
    steps[l] = _mm512_set1_epi32(d.top >> l);
  }
  auto kernel = [&](__m512 v) {
    __m512i idx = _mm512_setzero_si512();
    if (d.levels > 0)  // level 0 reads b[top - 1] for every lane: no permute needed
      idx = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(v, _mm512_set1_ps(d.tree[0][0]), _CMP_GE_OQ), steps[0]);
    for (int l = 1; l < d.levels; ++l) {
      const __m512 t = _mm512_permutexvar_ps(idx, tree[l]);
      idx = _mm512_mask_add_epi32(idx, _mm512_cmp_ps_mask(v, t, _CMP_GE_OQ), idx, steps[l]);
    }
    return _mm512_fmadd_ps(_mm512_permutexvar_ps(idx, vs), v, _mm512_permutexvar_ps(idx, vb));
  };
  std::ptrdiff_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, kernel(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, kernel(_mm512_maskz_loadu_ps(m, x + i)));
  }
}
#endif

#if defined(ETK_HAS_AVX2)
// Up to 8 segments: the binary descent with 8-entry permutes.
inline void pwl_eval_float_avx2_descent(const float* bp, const float* sl, const float* ic,
                                        int segments, const float* x, float* y, std::ptrdiff_t n) {
  alignas(32) float s8[8] = {};
  alignas(32) float b8[8] = {};
  for (int s = 0; s < segments; ++s) {
    s8[s] = sl[s];
    b8[s] = ic[s];
  }
  const __m256 vs = _mm256_load_ps(s8), vb = _mm256_load_ps(b8);
  const DescentTree<float> d = float_descent(bp, segments);
  __m256 tree[3];
  __m256i steps[3];
  for (int l = 0; l < d.levels; ++l) {
    tree[l] = _mm256_load_ps(d.tree[l]);
    steps[l] = _mm256_set1_epi32(d.top >> l);
  }
  const __m256 first = _mm256_set1_ps(d.tree[0][0]);
  std::ptrdiff_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    __m256i idx = _mm256_setzero_si256();
    if (d.levels > 0)
      idx = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(v, first, _CMP_GE_OQ)), steps[0]);
    for (int l = 1; l < d.levels; ++l) {
      const __m256 t = _mm256_permutevar8x32_ps(tree[l], idx);
      idx = _mm256_add_epi32(idx, _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(v, t, _CMP_GE_OQ)), steps[l]));
    }
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_permutevar8x32_ps(vs, idx), v,
                                            _mm256_permutevar8x32_ps(vb, idx)));
  }
  reference::pwl_eval(bp, sl, ic, segments, x + i, y + i, n - i);
}

// 9..16 segments: index by counting compares, two permute tables and a blend.
inline void pwl_eval_float_avx2_wide(const float* bp, const float* sl, const float* ic,
                                     int segments, const float* x, float* y, std::ptrdiff_t n) {
  alignas(32) float s16[16] = {};
  alignas(32) float b16[16] = {};
  for (int s = 0; s < segments; ++s) {
    s16[s] = sl[s];
    b16[s] = ic[s];
  }
  const __m256 vs_lo = _mm256_load_ps(s16), vs_hi = _mm256_load_ps(s16 + 8);
  const __m256 vb_lo = _mm256_load_ps(b16), vb_hi = _mm256_load_ps(b16 + 8);
  __m256 bk[kMaxSimdSegments - 1];
  const int nb = segments - 1;
  for (int k = 0; k < nb; ++k) bk[k] = _mm256_set1_ps(bp[k]);
  const __m256i seven = _mm256_set1_epi32(7);
  std::ptrdiff_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    __m256i idx = _mm256_setzero_si256();
    for (int k = 0; k < nb; ++k)  // a true compare is all ones (-1): subtract it
      idx = _mm256_sub_epi32(idx, _mm256_castps_si256(_mm256_cmp_ps(v, bk[k], _CMP_GE_OQ)));
    // permutevar uses the low 3 index bits; pick the high table for idx > 7
    const __m256 high = _mm256_castsi256_ps(_mm256_cmpgt_epi32(idx, seven));
    const __m256 s = _mm256_blendv_ps(_mm256_permutevar8x32_ps(vs_lo, idx), _mm256_permutevar8x32_ps(vs_hi, idx), high);
    const __m256 b = _mm256_blendv_ps(_mm256_permutevar8x32_ps(vb_lo, idx), _mm256_permutevar8x32_ps(vb_hi, idx), high);
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(s, v, b));
  }
  reference::pwl_eval(bp, sl, ic, segments, x + i, y + i, n - i);
}
#endif

inline void pwl_eval_float(const float* bp, const float* sl, const float* ic, int segments,
                           const float* x, float* y, std::ptrdiff_t n) {
#if defined(ETK_HAS_AVX512)
  if (segments <= kMaxSimdSegments) return pwl_eval_float_avx512(bp, sl, ic, segments, x, y, n);
#elif defined(ETK_HAS_AVX2)
  if (segments <= 8) return pwl_eval_float_avx2_descent(bp, sl, ic, segments, x, y, n);
  if (segments <= kMaxSimdSegments) return pwl_eval_float_avx2_wide(bp, sl, ic, segments, x, y, n);
#endif
  reference::pwl_eval(bp, sl, ic, segments, x, y, n);
}

}  // namespace detail
}  // namespace lut
