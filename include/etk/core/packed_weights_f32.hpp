// etk/core/packed_weights_f32.hpp: fp32 weights packed once into the layout etk's fp32
// GEMM micro-kernels stream (etk/core/gemm_f32.hpp), and the packing routine itself.
//
// Layout (one for every dispatch path, so this type is outside the ISA namespace and a
// PackedWeightsF32 made in one translation unit serves a GEMM called from any other):
// B [K, N] is cut into panels of kNR = 32 columns; panel p holds, for k = 0 .. K-1, the 32
// floats B[k][32p .. 32p+31] (128 bytes per depth), the last panel zero-padded. The
// AVX-512 kernel reads a depth's 32 floats as two zmm, the AVX2 kernel as two halves of
// 16, the portable kernel as 32 lanes; all of them read one panel front to back.
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"

namespace etk {
namespace gemm_f32_layout {

constexpr std::ptrdiff_t kNR = 32;  // columns per packed panel

inline std::ptrdiff_t panels(std::ptrdiff_t n) { return (n + kNR - 1) / kNR; }
// Floats of a packed [K, N] operand.
inline std::ptrdiff_t packed_floats(std::ptrdiff_t k, std::ptrdiff_t n) { return panels(n) * k * kNR; }

// dst (packed_floats(k, n) floats) <- panels of B * scale, where B(t, j) = src[t*rs + j*cs]:
// rs = ld, cs = 1 packs a row-major [K, N] matrix; rs = 1, cs = ld packs the transpose of
// a row-major [N, K] one. Padding columns are 0.
inline void pack_panels(const float* src, std::ptrdiff_t rs, std::ptrdiff_t cs, std::ptrdiff_t k,
                        std::ptrdiff_t n, float scale, float* dst) {
  for (std::ptrdiff_t p = 0; p < panels(n); ++p) {
    const std::ptrdiff_t j0 = p * kNR, w = n - j0 < kNR ? n - j0 : kNR;
    float* panel = dst + p * k * kNR;
    if (cs == 1) {  // each depth's columns are contiguous in src
      for (std::ptrdiff_t t = 0; t < k; ++t) {
        const float* s = src + t * rs + j0;
        float* d = panel + t * kNR;
        for (std::ptrdiff_t j = 0; j < w; ++j) d[j] = s[j] * scale;
        for (std::ptrdiff_t j = w; j < kNR; ++j) d[j] = 0.0f;
      }
    } else {  // each column's depths are contiguous in src (when rs == 1): read along them
      for (std::ptrdiff_t j = 0; j < kNR; ++j) {
        if (j < w) {
          const float* s = src + (j0 + j) * cs;
          for (std::ptrdiff_t t = 0; t < k; ++t) panel[t * kNR + j] = s[t * rs] * scale;
        } else {
          for (std::ptrdiff_t t = 0; t < k; ++t) panel[t * kNR + j] = 0.0f;
        }
      }
    }
  }
}

}  // namespace gemm_f32_layout

// B [K, N] for C = A·B, packed once. Pack once, multiply many times.
class PackedWeightsF32 {
 public:
  PackedWeightsF32() = default;
  // w: [N, K] row-major (a linear layer's weights, out x in), i.e. B = w^T.
  explicit PackedWeightsF32(ConstMatrixView<float> w) { pack(w.data(), 1, w.outerStride(), w.cols(), w.rows()); }
  // b: [K, N] row-major, B = b.
  static PackedWeightsF32 from_kn(ConstMatrixView<float> b) {
    PackedWeightsF32 p;
    p.pack(b.data(), b.outerStride(), 1, b.rows(), b.cols());
    return p;
  }

  std::ptrdiff_t k() const { return k_; }
  std::ptrdiff_t n() const { return n_; }
  const float* data() const { return data_.data(); }

 private:
  void pack(const float* src, std::ptrdiff_t rs, std::ptrdiff_t cs, std::ptrdiff_t k, std::ptrdiff_t n) {
    ETK_CHECK(k > 0 && n > 0, "argument 'weights' is empty (K = " << k << ", N = " << n << ")");
    k_ = k;
    n_ = n;
    data_.resize(static_cast<std::size_t>(gemm_f32_layout::packed_floats(k, n)));
    gemm_f32_layout::pack_panels(src, rs, cs, k, n, 1.0f, data_.data());
  }

  std::ptrdiff_t k_ = 0, n_ = 0;
  std::vector<float, Eigen::aligned_allocator<float>> data_;
};

}  // namespace etk
