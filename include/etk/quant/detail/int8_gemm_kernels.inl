// etk/quant/detail/int8_gemm_kernels.inl: micro-kernels, epilogues and the blocked driver
// of the int8 GEMM, compiled once per dispatch path by etk/core/detail/for_each_target.hpp
// (no include guard, no includes; the layouts are described in int8_gemm_kernels.hpp).
namespace detail::quant {
namespace gemm {

using ::etk::int8_gemm_layout::kNR;
using ::etk::ETK_ISA_NAMESPACE::detail::quant::gemm::Epilogue;
using ::etk::ETK_ISA_NAMESPACE::detail::quant::gemm::Scratch;
using ::etk::ETK_ISA_NAMESPACE::detail::quant::gemm::load_i32;

// Rows per activation panel: 6 x 64 int32 accumulators fill 24 of the 32 zmm registers
// (VNNI); 2 rows x 4 x 8 columns fill 8 ymm (AVX2, AVX-512 without VNNI); 4 x 64 (scalar).
// Every micro-kernel is a template on its row count MR <= kMR: the last panel of a call
// runs with the rows that are left.
#if defined(ETK_HAS_AVX512VNNI)
constexpr int kMR = 6;
#elif defined(ETK_HAS_AVX2)
constexpr int kMR = 2;
#else
constexpr int kMR = 4;
#endif

// Scalar epilogue of one element; the definition the SIMD epilogues match.
template <typename TO>
inline void finish_scalar(std::int32_t raw, std::ptrdiff_t j, std::int32_t rowsum, const Epilogue& e,
                          TO* out) {
  std::uint32_t acc = static_cast<std::uint32_t>(raw) + static_cast<std::uint32_t>(e.col_offset[j]);
  if (e.w_zp) acc -= static_cast<std::uint32_t>(e.w_zp[j]) * static_cast<std::uint32_t>(rowsum);
  const auto v = static_cast<std::int32_t>(acc);
  if constexpr (std::is_same<TO, std::int32_t>::value)
    *out = v;
  else if constexpr (std::is_same<TO, float>::value)
    *out = static_cast<float>(v) * e.scale[j];
  else
    *out = static_cast<TO>(requantize_value(v, e.multiplier[j], e.shift[j], e.zero_point, e.qmin, e.qmax));
}

#if defined(ETK_HAS_AVX512VNNI)
// ---- AVX-512 VNNI: MR rows x 64 columns, 4 * MR zmm accumulators ----------------------
// One k-step of MR rows into the accumulator set c: 4 weight loads, MR broadcasts.
template <int MR>
inline void vnni_step(__m512i (&c)[MR][4], const std::uint8_t* a, std::ptrdiff_t lda, const std::int8_t* b) {
  const __m512i b0 = _mm512_loadu_si512(b);
  const __m512i b1 = _mm512_loadu_si512(b + 64);
  const __m512i b2 = _mm512_loadu_si512(b + 128);
  const __m512i b3 = _mm512_loadu_si512(b + 192);
#pragma GCC unroll 6
  for (int r = 0; r < MR; ++r) {
    const __m512i av = _mm512_set1_epi32(load_i32(a + r * lda));
    c[r][0] = _mm512_dpbusd_epi32(c[r][0], av, b0);
    c[r][1] = _mm512_dpbusd_epi32(c[r][1], av, b1);
    c[r][2] = _mm512_dpbusd_epi32(c[r][2], av, b2);
    c[r][3] = _mm512_dpbusd_epi32(c[r][3], av, b3);
  }
}

#if ETK_AMX_COMPILED
using ::etk::ETK_ISA_NAMESPACE::detail::quant::gemm::AmxOut;
using ::etk::ETK_ISA_NAMESPACE::detail::quant::gemm::amx_copy_tail;
using ::etk::ETK_ISA_NAMESPACE::detail::quant::gemm::amx_panel;
using ::etk::ETK_ISA_NAMESPACE::detail::quant::gemm::amx_release;
using ::etk::ETK_ISA_NAMESPACE::detail::quant::gemm::kAmxRows;
using ::etk::ETK_ISA_NAMESPACE::detail::quant::gemm::kAmxTailBytes;

// Whether a call of m rows takes the AMX tiles (int8_gemm_amx.hpp): only on the amx path
// (current_path(): pinned or detected, OS permission included), and only from 2 rows on.
// A tile always computes 16 rows; one row (a decode step) runs 1.19x faster on VNNI,
// while 2, 3, 4 and 16 rows ran 1.15x, 1.48x, 1.30x and 3.3x faster on the tiles
// (K = N = 768, one thread, quant_bm_int8_gemm, docs/performance.md).
inline bool use_tiles(std::ptrdiff_t m) {
  return m >= 2 && ::etk::current_path() == ::etk::Isa::amx;
}
#endif

// Weight bytes prefetched ahead into L1: 32 k-steps. A decode step (M = 1) streams its
// weights from L3 or memory, where a shorter distance left it at half oneDNN's rate.
constexpr int kPrefetchBytes = 8192;

// a: MR rows with stride lda bytes, ksteps 4-byte groups each; b: one weight panel.
// With one or two rows, 4 * MR dependent chains cannot hide vpdpbusd's latency: two
// accumulator sets take alternate k-steps and are added at the end (mod 2^32, exact).
template <int MR>
inline void micro_kernel(const std::uint8_t* a, std::ptrdiff_t lda, const std::int8_t* b,
                         std::ptrdiff_t ksteps, std::int32_t* tile) {
  constexpr int kSets = MR <= 2 ? 2 : 1;
  __m512i c[kSets][MR][4];
  for (int q = 0; q < kSets; ++q)
    for (int r = 0; r < MR; ++r)
      for (int v = 0; v < 4; ++v) c[q][r][v] = _mm512_setzero_si512();
  std::ptrdiff_t s = 0;
  for (; s + kSets <= ksteps; s += kSets) {
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBytes), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBytes + 64), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBytes + 128), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBytes + 192), _MM_HINT_T0);
    vnni_step<MR>(c[0], a, lda, b);
    if constexpr (kSets == 2) {
      _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBytes + 256), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBytes + 320), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBytes + 384), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b + kPrefetchBytes + 448), _MM_HINT_T0);
      vnni_step<MR>(c[1], a + 4, lda, b + 4 * kNR);
    }
    a += 4 * kSets;
    b += 4 * kNR * kSets;
  }
  if (s < ksteps) vnni_step<MR>(c[0], a, lda, b);
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < 4; ++v) {
      __m512i x = c[0][r][v];
      if constexpr (kSets == 2) x = _mm512_add_epi32(x, c[kSets - 1][r][v]);
      _mm512_storeu_si512(tile + r * kNR + 16 * v, x);
    }
}

#elif defined(ETK_HAS_AVX2)
// ---- AVX2: MR rows x 16 columns at a time, widened to int16 and vpmaddwd --------------
template <int MR>
inline void micro_kernel(const std::uint8_t* a, std::ptrdiff_t lda, const std::int8_t* b,
                         std::ptrdiff_t ksteps, std::int32_t* tile) {
  for (int v = 0; v < 4; ++v) {
    __m256i c[MR][4];
    for (int r = 0; r < MR; ++r)
      for (int q = 0; q < 4; ++q) c[r][q] = _mm256_setzero_si256();
    const std::int8_t* bp = b + 64 * v;
    for (std::ptrdiff_t s = 0; s < ksteps; ++s) {
      const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp));
      const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bp + 32));
      const __m256i w0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(lo));
      const __m256i w1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(lo, 1));
      const __m256i w2 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(hi));
      const __m256i w3 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(hi, 1));
      for (int r = 0; r < MR; ++r) {
        const __m128i a4 = _mm_cvtepu8_epi16(_mm_cvtsi32_si128(load_i32(a + r * lda + 4 * s)));
        const __m256i av = _mm256_broadcastq_epi64(a4);
        c[r][0] = _mm256_add_epi32(c[r][0], _mm256_madd_epi16(av, w0));
        c[r][1] = _mm256_add_epi32(c[r][1], _mm256_madd_epi16(av, w1));
        c[r][2] = _mm256_add_epi32(c[r][2], _mm256_madd_epi16(av, w2));
        c[r][3] = _mm256_add_epi32(c[r][3], _mm256_madd_epi16(av, w3));
      }
      bp += 4 * kNR;
    }
    // Each accumulator holds two partial sums per column; add the pairs.
    for (int r = 0; r < MR; ++r) {
      const __m256i x = _mm256_permute4x64_epi64(_mm256_hadd_epi32(c[r][0], c[r][1]), 0xD8);
      const __m256i y = _mm256_permute4x64_epi64(_mm256_hadd_epi32(c[r][2], c[r][3]), 0xD8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + r * kNR + 16 * v), x);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + r * kNR + 16 * v + 8), y);
    }
  }
}

#else
// ---- scalar ---------------------------------------------------------------------------
template <int MR>
inline void micro_kernel(const std::uint8_t* a, std::ptrdiff_t lda, const std::int8_t* b,
                         std::ptrdiff_t ksteps, std::int32_t* tile) {
  std::uint32_t c[MR][kNR] = {};
  for (std::ptrdiff_t s = 0; s < ksteps; ++s) {
    for (int r = 0; r < MR; ++r)
      for (int j = 0; j < kNR; ++j) {
        std::int32_t d = 0;
        for (int t = 0; t < 4; ++t) d += a[r * lda + 4 * s + t] * b[4 * j + t];
        c[r][j] += static_cast<std::uint32_t>(d);
      }
    b += 4 * kNR;
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < kNR; ++j) tile[r * kNR + j] = static_cast<std::int32_t>(c[r][j]);
}
#endif

// The micro-kernel for mr = 1 .. MR rows.
template <int MR = kMR>
inline void micro_kernel_rows(int mr, const std::uint8_t* a, std::ptrdiff_t lda, const std::int8_t* b,
                              std::ptrdiff_t ksteps, std::int32_t* tile) {
  if constexpr (MR > 1) {
    if (mr < MR) return micro_kernel_rows<MR - 1>(mr, a, lda, b, ksteps, tile);
  }
  micro_kernel<MR>(a, lda, b, ksteps, tile);
}

// One activation row as the micro-kernels read it: dst[0, k4) = src + shift (mod 256:
// shift is 128 for signed codes, 0 for unsigned), zeros in [k, k4). Returns the row sum
// of the stored bytes when `sum` is set (needed when some weight zero point is not 0).
template <typename TA>
inline std::int32_t copy_row(const TA* src, std::ptrdiff_t k, std::ptrdiff_t k4, std::uint8_t* dst, bool sum) {
  constexpr std::uint8_t kFlip = std::is_signed<TA>::value ? 0x80 : 0;  // + 128 mod 256
  const auto* in = reinterpret_cast<const std::uint8_t*>(src);
  std::ptrdiff_t t = 0;
  std::int32_t total = 0;
#if defined(ETK_HAS_AVX512)
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(kFlip));
  __m512i acc = _mm512_setzero_si512();
  for (; t < k4; t += 64) {
    const __mmask64 live = k - t >= 64 ? ~__mmask64(0) : (k > t ? (~__mmask64(0) >> (64 - (k - t))) : 0);
    const __mmask64 room = k4 - t >= 64 ? ~__mmask64(0) : (~__mmask64(0) >> (64 - (k4 - t)));
    const __m512i v = _mm512_xor_si512(_mm512_maskz_loadu_epi8(live, in + t), _mm512_maskz_mov_epi8(live, flip));
    _mm512_mask_storeu_epi8(dst + t, room, v);
    if (sum) acc = _mm512_add_epi64(acc, _mm512_sad_epu8(v, _mm512_setzero_si512()));
  }
  if (sum) total = static_cast<std::int32_t>(_mm512_reduce_add_epi64(acc));
#else
  for (; t < k; ++t) {
    dst[t] = static_cast<std::uint8_t>(in[t] ^ kFlip);
    total += dst[t];
  }
  for (; t < k4; ++t) dst[t] = 0;
  if (!sum) total = 0;
#endif
  return total;
}

// Row sum of u8 codes read in place.
inline std::int32_t row_sum(const std::uint8_t* src, std::ptrdiff_t k) {
  std::int32_t total = 0;
  std::ptrdiff_t t = 0;
#if defined(ETK_HAS_AVX512)
  __m512i acc = _mm512_setzero_si512();
  for (; t + 64 <= k; t += 64)
    acc = _mm512_add_epi64(acc, _mm512_sad_epu8(_mm512_loadu_si512(src + t), _mm512_setzero_si512()));
  total = static_cast<std::int32_t>(_mm512_reduce_add_epi64(acc));
#endif
  for (; t < k; ++t) total += src[t];
  return total;
}

#if defined(ETK_HAS_AVX512)
// round(x * m / 2^31) ties upward == gemmlowp's SRDHM for m > 0: (x*m + 2^30) >> 31.
// Both halves shift the 64-bit product left by one so that the result is its high dword.
inline __m512i srdhm16(__m512i x, __m512i m) {
  const __m512i nudge = _mm512_set1_epi64(std::int64_t(1) << 30);
  const __m512i pe = _mm512_slli_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, m), nudge), 1);
  const __m512i po = _mm512_slli_epi64(
      _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32)), nudge), 1);
  return _mm512_mask_blend_epi32(__mmask16(0xAAAA), _mm512_srli_epi64(pe, 32), po);
}
inline __m512i rdbpot16(__m512i x, __m512i n) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, n), one);
  const __m512i rem = _mm512_and_si512(x, mask);
  const __m512i thr = _mm512_sub_epi32(_mm512_srli_epi32(mask, 1), _mm512_srai_epi32(x, 31));
  const __mmask16 up = _mm512_cmpgt_epi32_mask(rem, thr);
  return _mm512_mask_add_epi32(_mm512_srav_epi32(x, n), up, _mm512_srav_epi32(x, n), one);
}

// clamp(x * 2^n) to int32, n in [0, 31] (see requantize.hpp for why this equals it).
inline __m512i saturating_shl16(__m512i x, __m512i n) {
  const __m512i max = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::max());
  const __m512i min = _mm512_set1_epi32(std::numeric_limits<std::int32_t>::min());
  const __mmask16 above = _mm512_cmpgt_epi32_mask(x, _mm512_srav_epi32(max, n));
  const __mmask16 below = _mm512_cmplt_epi32_mask(x, _mm512_srav_epi32(min, n));
  return _mm512_mask_mov_epi32(_mm512_mask_mov_epi32(_mm512_sllv_epi32(x, n), above, max), below, min);
}
// requantize_value on 16 lanes: signed shift split into left and right parts, the clamp
// around the zero point before it is added.
inline __m512i requantize16(__m512i v, __m512i multiplier, __m512i shift, const Epilogue& e) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i left = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
  const __m512i right = _mm512_max_epi32(shift, zero);
  v = rdbpot16(srdhm16(saturating_shl16(v, left), multiplier), right);
  v = _mm512_min_epi32(_mm512_max_epi32(v, _mm512_set1_epi32(e.qmin - e.zero_point)),
                       _mm512_set1_epi32(e.qmax - e.zero_point));
  return _mm512_add_epi32(v, _mm512_set1_epi32(e.zero_point));
}

template <typename TO>
inline void finish_row(const std::int32_t* raw, std::ptrdiff_t nr, std::ptrdiff_t j0,
                       std::int32_t rowsum, const Epilogue& e, TO* out) {
  for (std::ptrdiff_t j = 0; j < nr; j += 16) {
    const __mmask16 m = nr - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (nr - j)) - 1);
    __m512i v = _mm512_add_epi32(_mm512_loadu_si512(raw + j), _mm512_loadu_si512(e.col_offset + j0 + j));
    if (e.w_zp)
      v = _mm512_sub_epi32(v, _mm512_mullo_epi32(_mm512_loadu_si512(e.w_zp + j0 + j), _mm512_set1_epi32(rowsum)));
    if constexpr (std::is_same<TO, std::int32_t>::value) {
      _mm512_mask_storeu_epi32(out + j, m, v);
    } else if constexpr (std::is_same<TO, float>::value) {
      _mm512_mask_storeu_ps(out + j, m, _mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_loadu_ps(e.scale + j0 + j)));
    } else {
      v = requantize16(v, _mm512_loadu_si512(e.multiplier + j0 + j), _mm512_loadu_si512(e.shift + j0 + j), e);
      _mm_mask_storeu_epi8(out + j, m, _mm512_cvtepi32_epi8(v));  // register vpmovdb: fast
    }
  }
}

#elif defined(ETK_HAS_AVX2)
inline __m256i srdhm8(__m256i x, __m256i m) {
  const __m256i nudge = _mm256_set1_epi64x(std::int64_t(1) << 30);
  const __m256i pe = _mm256_slli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, m), nudge), 1);
  const __m256i po = _mm256_slli_epi64(
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)), nudge), 1);
  return _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}
inline __m256i rdbpot8(__m256i x, __m256i n) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, n), one);
  const __m256i rem = _mm256_and_si256(x, mask);
  const __m256i thr = _mm256_sub_epi32(_mm256_srli_epi32(mask, 1), _mm256_srai_epi32(x, 31));
  // cmpgt gives -1 where the remainder passes the threshold: subtracting it adds 1.
  return _mm256_sub_epi32(_mm256_srav_epi32(x, n), _mm256_cmpgt_epi32(rem, thr));
}

inline __m256i saturating_shl8(__m256i x, __m256i n) {
  const __m256i max = _mm256_set1_epi32(std::numeric_limits<std::int32_t>::max());
  const __m256i min = _mm256_set1_epi32(std::numeric_limits<std::int32_t>::min());
  const __m256i above = _mm256_cmpgt_epi32(x, _mm256_srav_epi32(max, n));
  const __m256i below = _mm256_cmpgt_epi32(_mm256_srav_epi32(min, n), x);
  return _mm256_blendv_epi8(_mm256_blendv_epi8(_mm256_sllv_epi32(x, n), max, above), min, below);
}
inline __m256i requantize8(__m256i v, __m256i multiplier, __m256i shift, const Epilogue& e) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i left = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
  const __m256i right = _mm256_max_epi32(shift, zero);
  v = rdbpot8(srdhm8(saturating_shl8(v, left), multiplier), right);
  v = _mm256_min_epi32(_mm256_max_epi32(v, _mm256_set1_epi32(e.qmin - e.zero_point)),
                       _mm256_set1_epi32(e.qmax - e.zero_point));
  return _mm256_add_epi32(v, _mm256_set1_epi32(e.zero_point));
}

template <typename TO>
inline void finish_row(const std::int32_t* raw, std::ptrdiff_t nr, std::ptrdiff_t j0,
                       std::int32_t rowsum, const Epilogue& e, TO* out) {
  std::ptrdiff_t j = 0;
  for (; j + 8 <= nr; j += 8) {
    __m256i v = _mm256_add_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(raw + j)),
                                 _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.col_offset + j0 + j)));
    if (e.w_zp)
      v = _mm256_sub_epi32(v, _mm256_mullo_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.w_zp + j0 + j)),
                                                 _mm256_set1_epi32(rowsum)));
    if constexpr (std::is_same<TO, std::int32_t>::value) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), v);
    } else if constexpr (std::is_same<TO, float>::value) {
      _mm256_storeu_ps(out + j, _mm256_mul_ps(_mm256_cvtepi32_ps(v), _mm256_loadu_ps(e.scale + j0 + j)));
    } else {
      v = requantize8(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.multiplier + j0 + j)),
                      _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.shift + j0 + j)), e);
      uq::store_codes8(out + j, v);
    }
  }
  for (; j < nr; ++j) finish_scalar(raw[j], j0 + j, rowsum, e, out + j);
}

#else
template <typename TO>
inline void finish_row(const std::int32_t* raw, std::ptrdiff_t nr, std::ptrdiff_t j0,
                       std::int32_t rowsum, const Epilogue& e, TO* out) {
  for (std::ptrdiff_t j = 0; j < nr; ++j) finish_scalar(raw[j], j0 + j, rowsum, e, out + j);
}
#endif


// The blocked product of one call: `s` is the planned scratch (see int8_gemm_kernels.hpp)
// with the epilogue's own arrays already filled; `ep` points at them.
//   1. column offsets (bias - za * colsum + K * za * zw, mod 2^32) and weight zero points;
//   2. activations copied to u8 rows of K4 bytes unless they can be read in place (u8 with
//      K a multiple of 4), row sums when some weight zero point is not 0;
//   3. tasks = (column block whose packed weights stay in L2) x (chunk of row panels); each
//      task writes its own output tile, so the result does not depend on the thread count.
template <typename TA, typename TO>
void run(const TA* a, std::ptrdiff_t m, std::ptrdiff_t k, std::ptrdiff_t lda, std::int32_t a_zp,
         const ::etk::PackedWeightsS8& w, const std::int32_t* bias, Epilogue ep, TO* out,
         std::ptrdiff_t ldo, const Scratch& s, const ::etk::Context& ctx) {
  const std::ptrdiff_t n = w.n(), ks = w.ksteps();
  constexpr std::int32_t kShift = std::is_signed<TA>::value ? 128 : 0;  // s8 -> u8
  const std::int64_t za = static_cast<std::int64_t>(a_zp) + kShift;

  bool any_wzp = false;
  const std::ptrdiff_t n_pad = w.panels() * kNR;
  for (std::ptrdiff_t j = n; j < n_pad; ++j) s.col_offset[j] = s.w_zp[j] = 0;
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    const std::int64_t zw = w.zero_point_at(j);
    any_wzp |= zw != 0;
    const std::int64_t off = (bias ? bias[j] : 0) - za * w.col_sum()[static_cast<std::size_t>(j)] + k * za * zw;
    s.col_offset[j] = static_cast<std::int32_t>(static_cast<std::uint32_t>(off));
    s.w_zp[j] = static_cast<std::int32_t>(zw);
  }
  ep.col_offset = s.col_offset;
  ep.w_zp = any_wzp ? s.w_zp : nullptr;

  const std::ptrdiff_t row_panels = (m + kMR - 1) / kMR;
  const std::ptrdiff_t chunk = ::etk::int8_gemm_layout::kRowPanelsPerTask;
  const std::ptrdiff_t chunks = (row_panels + chunk - 1) / chunk;
  const bool in_place = kShift == 0 && k % 4 == 0;
  const std::uint8_t* const rows = in_place ? reinterpret_cast<const std::uint8_t*>(a) : s.apack;
  const std::ptrdiff_t row_stride = in_place ? lda : ks * 4;
  std::int32_t* const rowsum = s.rowsum;
  if (!in_place || any_wzp)
    ::etk::parallel_for(ctx, chunks, [&](std::ptrdiff_t task, int) {
      const std::ptrdiff_t i1 = std::min(m, (task + 1) * chunk * kMR);
      for (std::ptrdiff_t i = task * chunk * kMR; i < i1; ++i)
        rowsum[i] = in_place ? row_sum(rows + i * row_stride, k)
                             : copy_row(a + i * lda, k, ks * 4, s.apack + i * row_stride, any_wzp);
    });

  const std::ptrdiff_t block = ::etk::int8_gemm_layout::panels_per_block(ks);
  const std::ptrdiff_t col_blocks = (w.panels() + block - 1) / block;
#if defined(ETK_HAS_AVX512VNNI) && ETK_AMX_COMPILED
  if (use_tiles(m)) {
    // The same tasks, each sweeping its rows in calls of up to 32 (kMR * chunk is 96):
    // rows outside, panels inside, so the 32 rows' tiles stay in L1 while the block's
    // panels stream from L2. int32 output without weight zero points needs no epilogue
    // but the column offsets: the C tiles start from them and are stored in place.
    const bool direct = std::is_same<TO, std::int32_t>::value && !any_wzp;
    ::etk::parallel_for(ctx, col_blocks * chunks, [&](std::ptrdiff_t task, int) {
      const std::ptrdiff_t pb = (task / chunks) * block, pe = std::min(w.panels(), pb + block);
      const std::ptrdiff_t i_begin = (task % chunks) * chunk * kMR, i_end = std::min(m, i_begin + chunk * kMR);
      alignas(64) std::int32_t tile[kAmxRows * kNR];
      alignas(64) std::int8_t b_tail[kAmxTailBytes];
      int configured = 0;
      for (std::ptrdiff_t i0 = i_begin; i0 < i_end; i0 += kAmxRows) {
        const int mr = static_cast<int>(std::min<std::ptrdiff_t>(kAmxRows, i_end - i0));
        for (std::ptrdiff_t p = pb; p < pe; ++p) {
          const std::ptrdiff_t j0 = p * kNR, nr = std::min<std::ptrdiff_t>(kNR, n - j0);
          const std::int8_t* tail = amx_copy_tail(w.panel(p), ks, b_tail) ? b_tail : nullptr;
          const std::uint8_t* ar = rows + i0 * row_stride;
          if (direct && nr == kNR) {  // int32 out, a full panel: the tiles are the result
            amx_panel(mr, ar, row_stride, w.panel(p), ks, tail, configured,
                      AmxOut{ep.col_offset + j0, reinterpret_cast<std::int32_t*>(out + i0 * ldo + j0), ldo});
            continue;
          }
          amx_panel(mr, ar, row_stride, w.panel(p), ks, tail, configured, AmxOut{nullptr, tile, kNR});
          for (int r = 0; r < mr; ++r)
            finish_row(tile + r * kNR, nr, j0, any_wzp ? rowsum[i0 + r] : 0, ep, out + (i0 + r) * ldo + j0);
        }
      }
      amx_release(configured);
    });
    return;
  }
#endif
  ::etk::parallel_for(ctx, col_blocks * chunks, [&](std::ptrdiff_t task, int) {
    const std::ptrdiff_t pb = (task / chunks) * block, pe = std::min(w.panels(), pb + block);
    const std::ptrdiff_t r0 = (task % chunks) * chunk, r1 = std::min(row_panels, r0 + chunk);
    alignas(64) std::int32_t tile[kMR * kNR];
    for (std::ptrdiff_t p = pb; p < pe; ++p) {
      const std::ptrdiff_t j0 = p * kNR, nr = std::min<std::ptrdiff_t>(kNR, n - j0);
      for (std::ptrdiff_t rp = r0; rp < r1; ++rp) {
        const std::ptrdiff_t i0 = rp * kMR;
        const int mr = static_cast<int>(std::min<std::ptrdiff_t>(kMR, m - i0));
        micro_kernel_rows(mr, rows + i0 * row_stride, row_stride, w.panel(p), ks, tile);
        for (int r = 0; r < mr; ++r)
          finish_row(tile + r * kNR, nr, j0, any_wzp ? rowsum[i0 + r] : 0, ep, out + (i0 + r) * ldo + j0);
      }
    }
  });
}

}  // namespace gemm
}  // namespace detail::quant
