// etk/core/detail/gemm_f32_kernels.inl: the fp32 GEMM micro-kernels and block driver of
// one dispatch path (compiled once per path by etk/core/detail/for_each_target.hpp; no
// includes, no namespace of its own).
//
// A micro-kernel computes a tile of MR rows x one packed panel (32 columns) of
//   C = (accumulate ? C : 0) + A·B,   A(i, t) = a[i*rs + t*cs],
// holding the tile in registers over a depth block: per depth, the panel's 32 floats are
// loaded once and every row's A(i, t) is broadcast into an FMA. Accumulators start from
// C when accumulating, so a depth split into blocks continues one FMA chain per element:
// the result is the same for every block size, tile shape and thread count.
//   AVX-512: 12 x 32 (24 zmm accumulators, 2 for the panel, broadcasts from memory).
//   AVX2:     6 x 16, twice per panel (12 ymm accumulators).
//   portable: 4 x 32 in plain arrays (what the compiler vectorises for the baseline).
// Tails: fewer rows take the kernel instantiated for that many; fewer columns are masked
// on load and store (the padding columns of a panel are zero). With col_max not null, a
// kernel also folds its tile's column maxima into col_max[0 .. nr) from the registers
// (max(m, x) = m > x ? m : x, as vmaxps; exact, so the order of rows does not matter).

namespace detail::gemm_f32 {

#if defined(ETK_HAS_AVX512)
constexpr int kMR = 12;

template <int MR, typename RS>
inline void micro(const float* a, RS rs, std::ptrdiff_t cs, std::ptrdiff_t kc, const float* b, std::ptrdiff_t ldb,
                  float* c, std::ptrdiff_t ldc, std::ptrdiff_t nr, bool acc, float* col_max) {
  const __mmask16 m0 = static_cast<__mmask16>(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
  const __mmask16 m1 = static_cast<__mmask16>(nr >= 32 ? 0xFFFFu : nr <= 16 ? 0u : (1u << (nr - 16)) - 1u);
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    c0[i] = acc ? _mm512_maskz_loadu_ps(m0, c + i * ldc) : _mm512_setzero_ps();
    c1[i] = acc ? _mm512_maskz_loadu_ps(m1, c + i * ldc + 16) : _mm512_setzero_ps();
  }
  // Rows in groups of three from four pointers: row i is g[i / 3][(i % 3) * rs], so the
  // loop needs four address registers and rs, not one register per row (which spilled).
  const float* g[4] = {a, a + 3 * rs, a + 6 * rs, a + 9 * rs};
  for (std::ptrdiff_t t = 0; t < kc; ++t) {
    const __m512 b0 = _mm512_loadu_ps(b + t * ldb), b1 = _mm512_loadu_ps(b + t * ldb + 16);
    // The panel's depth t + 16 (two lines) ahead of use: panels stream from L2 (L3 for a
    // task's first tile) past the tile's A values in L1 (gemm_block).
    _mm_prefetch(reinterpret_cast<const char*>(b + (t + 16) * ldb), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + (t + 16) * ldb + 16), _MM_HINT_T0);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(g[i / 3][(i % 3) * rs]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
    for (const float*& gp : g) gp += cs;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(c + i * ldc, m0, c0[i]);
    _mm512_mask_storeu_ps(c + i * ldc + 16, m1, c1[i]);
  }
  if (col_max) {
    __m512 x0 = _mm512_maskz_loadu_ps(m0, col_max), x1 = _mm512_maskz_loadu_ps(m1, col_max + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      x0 = _mm512_max_ps(x0, c0[i]);
      x1 = _mm512_max_ps(x1, c1[i]);
    }
    _mm512_mask_storeu_ps(col_max, m0, x0);
    _mm512_mask_storeu_ps(col_max + 16, m1, x1);
  }
}

#elif defined(ETK_HAS_AVX2)
constexpr int kMR = 6;

// Lanes [0, n) of a ymm as a maskload/maskstore mask.
inline __m256i lane_mask8(std::ptrdiff_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Full: all 16 columns, unmasked loads and stores. A partial half builds its lane masks
// only outside the depth loop's live range: a mask held across the loop takes a 16th ymm
// and GCC then spilled an accumulator to the stack, a store-to-load chain per depth that
// halved the kernel's rate on Zen 3 (40 -> 80 GFLOP/s at 128x768x768 once removed).
template <int MR, bool Full, typename RS>
inline void micro_half(const float* a, RS rs, std::ptrdiff_t cs, std::ptrdiff_t kc, const float* b,
                       std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc, std::ptrdiff_t nr, bool acc, float* col_max) {
  __m256 c0[MR], c1[MR];
  if (Full) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      c0[i] = acc ? _mm256_loadu_ps(c + i * ldc) : _mm256_setzero_ps();
      c1[i] = acc ? _mm256_loadu_ps(c + i * ldc + 8) : _mm256_setzero_ps();
    }
  } else {
    const __m256i m0 = lane_mask8(nr), m1 = lane_mask8(nr - 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      c0[i] = acc ? _mm256_maskload_ps(c + i * ldc, m0) : _mm256_setzero_ps();
      c1[i] = acc ? _mm256_maskload_ps(c + i * ldc + 8, m1) : _mm256_setzero_ps();
    }
  }
  for (std::ptrdiff_t t = 0; t < kc; ++t) {
    const __m256 b0 = _mm256_loadu_ps(b + t * ldb), b1 = _mm256_loadu_ps(b + t * ldb + 8);
    const float* at = a + t * cs;
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(at + i * rs);
      c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
    }
  }
  const __m256i m0 = lane_mask8(Full ? 8 : nr), m1 = lane_mask8(Full ? 8 : nr - 8);
  if (Full) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_ps(c + i * ldc, c0[i]);
      _mm256_storeu_ps(c + i * ldc + 8, c1[i]);
    }
  } else {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_maskstore_ps(c + i * ldc, m0, c0[i]);
      _mm256_maskstore_ps(c + i * ldc + 8, m1, c1[i]);
    }
  }
  if (col_max) {
    __m256 x0 = _mm256_maskload_ps(col_max, m0), x1 = _mm256_maskload_ps(col_max + 8, m1);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      x0 = _mm256_max_ps(x0, c0[i]);
      x1 = _mm256_max_ps(x1, c1[i]);
    }
    _mm256_maskstore_ps(col_max, m0, x0);
    _mm256_maskstore_ps(col_max + 8, m1, x1);
  }
}

template <int MR, typename RS>
inline void micro(const float* a, RS rs, std::ptrdiff_t cs, std::ptrdiff_t kc, const float* b, std::ptrdiff_t ldb,
                  float* c, std::ptrdiff_t ldc, std::ptrdiff_t nr, bool acc, float* col_max) {
  const auto half = [&](std::ptrdiff_t j, std::ptrdiff_t w) {
    float* mx = col_max ? col_max + j : nullptr;
    if (w >= 16)
      micro_half<MR, true>(a, rs, cs, kc, b + j, ldb, c + j, ldc, w, acc, mx);
    else
      micro_half<MR, false>(a, rs, cs, kc, b + j, ldb, c + j, ldc, w, acc, mx);
  };
  half(0, nr);
  if (nr > 16) half(16, nr - 16);
}

#else
constexpr int kMR = 4;

template <int MR, typename RS>
inline void micro(const float* a, RS rs, std::ptrdiff_t cs, std::ptrdiff_t kc, const float* b, std::ptrdiff_t ldb,
                  float* c, std::ptrdiff_t ldc, std::ptrdiff_t nr, bool acc, float* col_max) {
  float t_acc[MR][32];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < 32; ++j) t_acc[i][j] = acc && j < nr ? c[i * ldc + j] : 0.0f;
  for (std::ptrdiff_t t = 0; t < kc; ++t) {
    const float* bt = b + t * ldb;
    for (int i = 0; i < MR; ++i) {
      const float ai = a[i * rs + t * cs];
      for (int j = 0; j < 32; ++j) t_acc[i][j] += ai * bt[j];
    }
  }
  for (int i = 0; i < MR; ++i)
    for (std::ptrdiff_t j = 0; j < nr; ++j) c[i * ldc + j] = t_acc[i][j];
  if (col_max)
    for (int i = 0; i < MR; ++i)
      for (std::ptrdiff_t j = 0; j < nr; ++j) col_max[j] = col_max[j] > t_acc[i][j] ? col_max[j] : t_acc[i][j];
}
#endif

// dst <- the packed panels (etk/core/packed_weights_f32.hpp) of B [k, n] * scale, where
// B(t, j) = src[j*ld + t]: src's n rows of k floats become B's columns (the queries of
// dense attention as the B operand of S^T = K·Q^T). The same products as
// gemm_f32_layout::pack_panels(src, 1, ld, ...), so the same bits; AVX2 and wider paths
// move 8 rows x 8 depths at a time through an 8x8 register transpose (the element loop
// wrote 128 bytes apart per float: 4% of dense attention at seq 128), the rest element by
// element.
inline void pack_transposed(const float* src, std::ptrdiff_t ld, std::ptrdiff_t k, std::ptrdiff_t n, float scale,
                            float* dst) {
#if defined(ETK_HAS_AVX2)
  constexpr std::ptrdiff_t NR = gemm_f32_layout::kNR;
  const __m256 sc = _mm256_set1_ps(scale);
  for (std::ptrdiff_t p = 0; p < gemm_f32_layout::panels(n); ++p) {
    const std::ptrdiff_t j0 = p * NR, w = n - j0 < NR ? n - j0 : NR;
    float* panel = dst + p * k * NR;
    std::ptrdiff_t j = 0;
    for (; j + 8 <= w; j += 8) {
      const float* s = src + (j0 + j) * ld;
      std::ptrdiff_t t = 0;
      for (; t + 8 <= k; t += 8) {
        __m256 r[8];
        for (int i = 0; i < 8; ++i) r[i] = _mm256_mul_ps(_mm256_loadu_ps(s + i * ld + t), sc);
        __m256 u[8], v[8];
        for (int i = 0; i < 8; i += 2) {
          u[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
          u[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
        }
        for (int i = 0; i < 8; i += 4) {
          v[i] = _mm256_shuffle_ps(u[i], u[i + 2], 0x44);
          v[i + 1] = _mm256_shuffle_ps(u[i], u[i + 2], 0xEE);
          v[i + 2] = _mm256_shuffle_ps(u[i + 1], u[i + 3], 0x44);
          v[i + 3] = _mm256_shuffle_ps(u[i + 1], u[i + 3], 0xEE);
        }
        for (int i = 0; i < 4; ++i) {
          _mm256_storeu_ps(panel + (t + i) * NR + j, _mm256_permute2f128_ps(v[i], v[i + 4], 0x20));
          _mm256_storeu_ps(panel + (t + i + 4) * NR + j, _mm256_permute2f128_ps(v[i], v[i + 4], 0x31));
        }
      }
      for (; t < k; ++t)
        for (int i = 0; i < 8; ++i) panel[t * NR + j + i] = s[i * ld + t] * scale;
    }
    for (; j < NR; ++j)
      for (std::ptrdiff_t t = 0; t < k; ++t) panel[t * NR + j] = j < w ? src[(j0 + j) * ld + t] * scale : 0.0f;
  }
#else
  gemm_f32_layout::pack_panels(src, 1, ld, k, n, scale, dst);
#endif
}

// micro<mr> for a runtime mr in [1, MR].
template <int MR, typename RS>
inline void micro_rows(int mr, const float* a, RS rs, std::ptrdiff_t cs, std::ptrdiff_t kc, const float* b,
                       std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc, std::ptrdiff_t nr, bool acc, float* col_max) {
  if (mr == MR) {
    micro<MR>(a, rs, cs, kc, b, ldb, c, ldc, nr, acc, col_max);
  } else if constexpr (MR > 1) {
    micro_rows<MR - 1>(mr, a, rs, cs, kc, b, ldb, c, ldc, nr, acc, col_max);
  }
}

// Rows [i0, i1) x panels [p0, p1) of C = (acc ? C : 0) + A·B over depth k. B is read as
// 32-column panels: panel p starts at bp + p * panel_stride and its depth t at + t * ldb
// (packed weights, etk/core/packed_weights_f32.hpp: ldb = 32, panel_stride = 32 k; a
// row-major [K, N] matrix with row stride ldb >= its panels x 32, read in place:
// panel_stride = 32, the columns past n read but never stored). Depth in blocks of kc;
// per block, each row tile sweeps the panels: its kc x MR values of A stay in L1 while the
// panels stream from L2 (the other way round, a panel of kc x 32 floats, 48 KiB at kc =
// 384, was meant to stay in L1 for every tile but filled it alone; on the AVX-512 Xeon,
// best of 3 interleaved runs: 142 -> 152 GFLOP/s at 512x768x3072, 154 -> 165 at
// 128x768x768, 148 -> 155 at 1024^3). Row tiles: ceil(rows / MR) of heights differing by at most one
// (64 rows: 11,11,11,11,10,10 rather than 12,12,12,12,12,4, whose last tile would run at a
// third of the rate). col_max, when not null, gets each column's maximum over rows [i0,
// i1) of the final C folded in (col_max[j] = max(col_max[j], max_i C[i][j]), j in the
// panels' columns below n) by the kernels of the last depth block, from their registers:
// the pass over C that dense attention's softmax would otherwise make.
inline void gemm_block(const float* a, std::ptrdiff_t rs, std::ptrdiff_t cs, std::ptrdiff_t k,
                       const float* bp, std::ptrdiff_t ldb, std::ptrdiff_t panel_stride, std::ptrdiff_t n,
                       float* c, std::ptrdiff_t ldc, bool acc, std::ptrdiff_t i0, std::ptrdiff_t i1,
                       std::ptrdiff_t p0, std::ptrdiff_t p1, std::ptrdiff_t kc, float* col_max) {
  const std::ptrdiff_t len = i1 - i0, tiles = (len + kMR - 1) / kMR;
  for (std::ptrdiff_t t0 = 0; t0 < k; t0 += kc) {
    const std::ptrdiff_t kb = k - t0 < kc ? k - t0 : kc;
    const bool acc_b = acc || t0 > 0;
    for (std::ptrdiff_t tile = 0, i = i0; tile < tiles; ++tile) {
      const int mr = static_cast<int>(len / tiles + (tile < len % tiles ? 1 : 0));
      for (std::ptrdiff_t p = p0; p < p1; ++p) {
        const float* panel = bp + p * panel_stride + t0 * ldb;
        const std::ptrdiff_t nr = n - p * 32 < 32 ? n - p * 32 : 32;
        float* mx = col_max && t0 + kb == k ? col_max + p * 32 : nullptr;
        if (rs == 1)  // A column-major: a tile's values of one depth are contiguous
          micro_rows<kMR>(mr, a + i + t0 * cs, std::integral_constant<int, 1>(), cs, kb, panel, ldb,
                          c + i * ldc + p * 32, ldc, nr, acc_b, mx);
        else
          micro_rows<kMR>(mr, a + i * rs + t0 * cs, rs, cs, kb, panel, ldb, c + i * ldc + p * 32, ldc, nr, acc_b,
                          mx);
      }
      i += mr;
    }
  }
}

}  // namespace detail::gemm_f32
