// etk/search/detail/permute_kernels.inl: the float permutation of permute_kernels.hpp on
// one dispatch path, compiled once per path by etk/core/detail/for_each_target.hpp (no
// include guard, no includes).
namespace detail::permute_kernels {

#if defined(ETK_HAS_AVX512)
inline __mmask16 tail(std::ptrdiff_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}
#endif

// dst[j] = src[t.idx[j]] for every j: exact copies on every path.
inline void apply(const ::etk::ETK_ISA_NAMESPACE::detail::permute_layout::Table& t, const float* src, float* dst) {
#if defined(ETK_HAS_AVX512)
  const std::ptrdiff_t n = std::ptrdiff_t(t.idx.size());
  for (std::ptrdiff_t o = 0, v = 0; o < n; o += 16, ++v) {
    __m512 acc = _mm512_setzero_ps();
    for (std::int32_t s = t.start[std::size_t(v)]; s < t.start[std::size_t(v + 1)]; ++s) {
      const ::etk::ETK_ISA_NAMESPACE::detail::permute_layout::Step& st = t.steps[std::size_t(s)];
      const std::ptrdiff_t base = std::ptrdiff_t(st.window) * 32;
      const __m512 a = _mm512_maskz_loadu_ps(tail(t.src_size - base), src + base);
      const __m512 b = _mm512_maskz_loadu_ps(tail(t.src_size - base - 16), src + base + 16);
      const __m512i index = _mm512_loadu_si512(st.index);
      acc = _mm512_mask_mov_ps(acc, st.mask, _mm512_permutex2var_ps(a, index, b));
    }
    _mm512_mask_storeu_ps(dst + o, tail(n - o), acc);
  }
#else
  for (std::size_t j = 0; j < t.idx.size(); ++j) dst[j] = src[t.idx[j]];
#endif
}

}  // namespace detail::permute_kernels
