// kernels.cpp: see kernels.hpp.
#include "kernels.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <algorithm>

#include "etk/attention/softmax.hpp"
#include "etk/core/gemm_f32.hpp"

namespace ocr {

void nonlinearity_default(Nonlinearity kind, float* x, int64_t n) {
  switch (kind) {
    case Nonlinearity::Swish:
      for (int64_t i = 0; i < n; ++i) x[i] = swish(x[i]);
      break;
    case Nonlinearity::HardSwish:
      for (int64_t i = 0; i < n; ++i) x[i] = hardswish(x[i]);
      break;
    case Nonlinearity::HardSigmoid:
      for (int64_t i = 0; i < n; ++i) x[i] = hardsigmoid(x[i], 1.f / 6.f, 0.5f);
      break;
    case Nonlinearity::SoftmaxExp:
      for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
      break;
    case Nonlinearity::LayerNormRsqrt:
      for (int64_t i = 0; i < n; ++i) x[i] = 1.f / std::sqrt(x[i]);
      break;
    case Nonlinearity::Count:
      break;
  }
}

DepthBlockedWeights pack_depth_blocks(const float* w, int out, int k, int ldw) {
  DepthBlockedWeights p;
  for (int t0 = 0; t0 < k; t0 += kDepthBlock)
    p.blocks.emplace_back(etk::matrix_view(w + t0, out, std::min(kDepthBlock, k - t0), ldw));
  return p;
}

void gemm_prepacked(const GemmArgs& a, const DepthBlockedWeights& w) {
  thread_local std::vector<float> partial;
  partial.resize(size_t(a.n) * a.out);
  for (int r = 0; r < a.n; ++r) {
    float* y = a.y + int64_t(r) * a.ldy;
    if (a.bias) std::copy(a.bias, a.bias + a.out, y);
    else std::fill(y, y + a.out, 0.f);
  }
  for (size_t b = 0; b < w.blocks.size(); ++b) {
    const etk::PackedWeightsF32& block = w.blocks[b];
    etk::gemm_f32(etk::matrix_view(a.x + b * kDepthBlock, a.n, block.k(), a.ldx), block,
                  etk::matrix_view(partial.data(), a.n, a.out, a.out));
    for (int r = 0; r < a.n; ++r) {
      float* y = a.y + int64_t(r) * a.ldy;
      const float* p = partial.data() + int64_t(r) * a.out;
      for (int o = 0; o < a.out; ++o) y[o] += p[o];
    }
  }
}

void gemm_default(const GemmArgs& a) { gemm_prepacked(a, pack_depth_blocks(a.w, a.out, a.k, a.ldw)); }

void depthwise_conv(const float* x, int H, int W, int C, const float* wt, const float* bias,
                    int kh, int kw, int sh, int sw, int ph, int pw, float* y, int Ho, int Wo) {
#if defined(__AVX512F__)
  // Accumulators in registers: P neighbouring output pixels x 16 channels share each
  // weight load; every tap is one FMA per pixel, the output is stored once. Blocks whose
  // taps all fall inside the row take the unrolled path without bounds checks.
  constexpr int P = 4;
  for (int oy = 0; oy < Ho; ++oy) {
    for (int ox0 = 0; ox0 < Wo; ox0 += P) {
      const int np = std::min(P, Wo - ox0);
      const bool interior = np == P && ox0 * sw - pw >= 0 && (ox0 + P - 1) * sw - pw + kw - 1 < W;
      for (int c0 = 0; c0 < C; c0 += 16) {
        const __mmask16 m = C - c0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (C - c0)) - 1);
        const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + c0) : _mm512_setzero_ps();
        float* yo = y + (int64_t(oy) * Wo + ox0) * C + c0;
        if (interior) {
          __m512 a0 = b, a1 = b, a2 = b, a3 = b;
          const int64_t step = int64_t(sw) * C;
          for (int ky = 0; ky < kh; ++ky) {
            const int iy = oy * sh - ph + ky;
            if (iy < 0 || iy >= H) continue;
            const float* xp = x + (int64_t(iy) * W + ox0 * sw - pw) * C + c0;
            const float* wp = wt + int64_t(ky * kw) * C + c0;
            for (int kx = 0; kx < kw; ++kx, xp += C, wp += C) {
              const __m512 w = _mm512_maskz_loadu_ps(m, wp);
              a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xp), w, a0);
              a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xp + step), w, a1);
              a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xp + 2 * step), w, a2);
              a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xp + 3 * step), w, a3);
            }
          }
          _mm512_mask_storeu_ps(yo, m, a0);
          _mm512_mask_storeu_ps(yo + C, m, a1);
          _mm512_mask_storeu_ps(yo + 2 * C, m, a2);
          _mm512_mask_storeu_ps(yo + 3 * C, m, a3);
          continue;
        }
        for (int i = 0; i < np; ++i) {
          __m512 acc = b;
          for (int ky = 0; ky < kh; ++ky) {
            const int iy = oy * sh - ph + ky;
            if (iy < 0 || iy >= H) continue;
            for (int kx = 0; kx < kw; ++kx) {
              const int ix = (ox0 + i) * sw - pw + kx;
              if (ix < 0 || ix >= W) continue;
              acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + (int64_t(iy) * W + ix) * C + c0),
                                    _mm512_maskz_loadu_ps(m, wt + int64_t(ky * kw + kx) * C + c0), acc);
            }
          }
          _mm512_mask_storeu_ps(yo + int64_t(i) * C, m, acc);
        }
      }
    }
  }
#else
  for (int oy = 0; oy < Ho; ++oy) {
    for (int ox = 0; ox < Wo; ++ox) {
      float* __restrict yo = y + (int64_t(oy) * Wo + ox) * C;
      if (bias) std::copy(bias, bias + C, yo);
      else std::fill(yo, yo + C, 0.f);
      for (int ky = 0; ky < kh; ++ky) {
        const int iy = oy * sh - ph + ky;
        if (iy < 0 || iy >= H) continue;
        for (int kx = 0; kx < kw; ++kx) {
          const int ix = ox * sw - pw + kx;
          if (ix < 0 || ix >= W) continue;
          const float* __restrict xi = x + (int64_t(iy) * W + ix) * C;
          const float* __restrict wk = wt + int64_t(ky * kw + kx) * C;
          for (int c = 0; c < C; ++c) yo[c] += xi[c] * wk[c];
        }
      }
    }
  }
#endif
}

void im2col(const float* x, int H, int W, int C, int kh, int kw, int sh, int sw, int ph, int pw,
            int Ho, int Wo, float* col) {
  const int K = C * kh * kw;
  for (int oy = 0; oy < Ho; ++oy)
    for (int ox = 0; ox < Wo; ++ox) {
      float* row = col + (int64_t(oy) * Wo + ox) * K;
      for (int ky = 0; ky < kh; ++ky) {
        const int iy = oy * sh - ph + ky;
        for (int kx = 0; kx < kw; ++kx) {
          const int ix = ox * sw - pw + kx;
          const bool inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
          const float* xi = inside ? x + (int64_t(iy) * W + ix) * C : nullptr;
          for (int c = 0; c < C; ++c) row[(c * kh + ky) * kw + kx] = inside ? xi[c] : 0.f;
        }
      }
    }
}

void layer_norm(const float* x, int rows, int dim, const float* gamma, const float* beta, float eps,
                float* y, const NonlinearityFn* rsqrt_hook, std::vector<float>& scratch) {
  scratch.resize(2 * size_t(rows));
  float* mean = scratch.data();
  float* inv = mean + rows;
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + int64_t(r) * dim;
    float s = 0.f;
    for (int j = 0; j < dim; ++j) s += xr[j];
    const float m = s / dim;
    float v = 0.f;
    for (int j = 0; j < dim; ++j) v += (xr[j] - m) * (xr[j] - m);
    mean[r] = m;
    inv[r] = v / dim + eps;
  }
  if (rsqrt_hook && *rsqrt_hook) (*rsqrt_hook)(inv, rows);
  else for (int r = 0; r < rows; ++r) inv[r] = 1.f / std::sqrt(inv[r]);
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + int64_t(r) * dim;
    float* yr = y + int64_t(r) * dim;
    for (int j = 0; j < dim; ++j) yr[j] = (xr[j] - mean[r]) * inv[r] * gamma[j] + beta[j];
  }
}

void softmax_rows(float* x, int rows, int cols, const NonlinearityFn* exp_hook) {
  const bool hooked = exp_hook && *exp_hook;
  for (int r = 0; r < rows; ++r) {
    float* xr = x + int64_t(r) * cols;
    if (hooked) etk::softmax_row_with_exp(xr, cols, *exp_hook);
    else etk::softmax_row(xr, cols);  // etk's vectorised softmax
  }
}

}  // namespace ocr
