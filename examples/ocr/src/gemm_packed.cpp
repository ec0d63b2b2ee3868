// gemm_packed.cpp: see gemm_packed.hpp.
#include "gemm_packed.hpp"

#include <algorithm>

#include "kernels.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace ocr {

std::vector<float> pack_weights(const float* w, int out, int k, int ldw) {
  const int panels = (out + kPanel - 1) / kPanel;
  std::vector<float> p(size_t(panels) * k * kPanel, 0.f);
  for (int o = 0; o < out; ++o) {
    float* dst = p.data() + size_t(o / kPanel) * k * kPanel + (o % kPanel);
    const float* src = w + size_t(o) * ldw;
    for (int j = 0; j < k; ++j) dst[size_t(j) * kPanel] = src[j];
  }
  return p;
}

#if defined(__AVX512F__)
namespace {

// The dot products are summed in blocks of kBlock terms whose partial sums are then
// added: the rounding error of a sum grows with the length of its longest chain, and
// the convs after im2col have k up to 2880 (a single chain gave 1e-4 differences in the
// output probabilities; blocked, as other BLAS do, it stays near 2e-5).
constexpr int kBlock = 128;

// R rows (1..6) of x times one panel: y[r][0..31] = bias + sum_j x[r][j] * panel[j][0..31].
template <int R>
inline void tile(const float* x, int ldx, int k, const float* panel, const float* bias, float* y, int ldy,
                 __mmask16 m0, __mmask16 m1) {
  __m512 s0[R], s1[R], a0[R], a1[R];
  const __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
  for (int r = 0; r < R; ++r) { s0[r] = b0; s1[r] = b1; }
  for (int j0 = 0; j0 < k; j0 += kBlock) {
    const int j1 = std::min(k, j0 + kBlock);
    for (int r = 0; r < R; ++r) { a0[r] = _mm512_setzero_ps(); a1[r] = _mm512_setzero_ps(); }
    for (int j = j0; j < j1; ++j) {
      const __m512 w0 = _mm512_loadu_ps(panel + size_t(j) * kPanel);
      const __m512 w1 = _mm512_loadu_ps(panel + size_t(j) * kPanel + 16);
      for (int r = 0; r < R; ++r) {
        const __m512 xv = _mm512_set1_ps(x[size_t(r) * ldx + j]);
        a0[r] = _mm512_fmadd_ps(xv, w0, a0[r]);
        a1[r] = _mm512_fmadd_ps(xv, w1, a1[r]);
      }
    }
    for (int r = 0; r < R; ++r) { s0[r] = _mm512_add_ps(s0[r], a0[r]); s1[r] = _mm512_add_ps(s1[r], a1[r]); }
  }
  for (int r = 0; r < R; ++r) {
    _mm512_mask_storeu_ps(y + size_t(r) * ldy, m0, s0[r]);
    _mm512_mask_storeu_ps(y + size_t(r) * ldy + 16, m1, s1[r]);
  }
}

}  // namespace

void gemm_packed(const GemmArgs& a, const float* packed) {
  const int panels = (a.out + kPanel - 1) / kPanel;
  for (int p = 0; p < panels; ++p) {
    const int c0 = p * kPanel;
    const int cols = std::min(kPanel, a.out - c0);
    const __mmask16 m0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
    const __mmask16 m1 = cols >= 32 ? __mmask16(0xFFFF) : cols <= 16 ? __mmask16(0) : __mmask16((1u << (cols - 16)) - 1);
    const float* panel = packed + size_t(p) * a.k * kPanel;
    const float* bias = a.bias ? a.bias + c0 : nullptr;
    int r = 0;
    for (; r + 6 <= a.n; r += 6)
      tile<6>(a.x + size_t(r) * a.ldx, a.ldx, a.k, panel, bias, a.y + size_t(r) * a.ldy + c0, a.ldy, m0, m1);
    const float* xr = a.x + size_t(r) * a.ldx;
    float* yr = a.y + size_t(r) * a.ldy + c0;
    switch (a.n - r) {
      case 5: tile<5>(xr, a.ldx, a.k, panel, bias, yr, a.ldy, m0, m1); break;
      case 4: tile<4>(xr, a.ldx, a.k, panel, bias, yr, a.ldy, m0, m1); break;
      case 3: tile<3>(xr, a.ldx, a.k, panel, bias, yr, a.ldy, m0, m1); break;
      case 2: tile<2>(xr, a.ldx, a.k, panel, bias, yr, a.ldy, m0, m1); break;
      case 1: tile<1>(xr, a.ldx, a.k, panel, bias, yr, a.ldy, m0, m1); break;
      default: break;
    }
  }
}
#else
void gemm_packed(const GemmArgs& a, const float*) { gemm_default(a); }
#endif

}  // namespace ocr
