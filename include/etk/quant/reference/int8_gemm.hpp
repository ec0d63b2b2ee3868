// etk/quant/reference/int8_gemm.hpp: the plain integer matrix product the fast int8 GEMM
// is tested against. Exact, in int64:
//     acc[i][j] = sum_k (a[i][k] - a_zp) * (w[j][k] - w_zp[j]) + bias[j]
// a: [M, K] u8 or s8 activations, w: [N, K] s8 weights (one row per output channel),
// w_zp: one zero point or one per output channel, bias: N int32 values or null.
#pragma once

#include <cstdint>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/span.hpp"
#include "etk/quant/requantize.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

template <typename TA>
std::int64_t int8_gemm_acc(const TA* a, std::ptrdiff_t lda, std::int32_t a_zp, const std::int8_t* w,
                           std::ptrdiff_t ldw, Span<std::int32_t> w_zp,
                           const std::int32_t* bias, std::ptrdiff_t k, std::ptrdiff_t i,
                           std::ptrdiff_t j) {
  const std::int64_t zw = w_zp.size() == 1 ? w_zp[0] : w_zp[j];
  std::int64_t acc = bias ? bias[j] : 0;
  for (std::ptrdiff_t t = 0; t < k; ++t)
    acc += (static_cast<std::int64_t>(a[i * lda + t]) - a_zp) * (w[j * ldw + t] - zw);
  return acc;
}

// int32 accumulators (the caller guarantees they fit, as the fast entry point checks).
template <typename TA>
void int8_gemm_s32(const TA* a, std::ptrdiff_t m, std::ptrdiff_t k, std::ptrdiff_t lda,
                   std::int32_t a_zp, const std::int8_t* w, std::ptrdiff_t n, std::ptrdiff_t ldw,
                   Span<std::int32_t> w_zp, const std::int32_t* bias,
                   std::int32_t* out, std::ptrdiff_t ldo) {
  for (std::ptrdiff_t i = 0; i < m; ++i)
    for (std::ptrdiff_t j = 0; j < n; ++j)
      out[i * ldo + j] =
          static_cast<std::int32_t>(int8_gemm_acc(a, lda, a_zp, w, ldw, w_zp, bias, k, i, j));
}

// Requantized 8-bit output.
template <typename TA, typename TO>
void int8_gemm_requantized(const TA* a, std::ptrdiff_t m, std::ptrdiff_t k, std::ptrdiff_t lda,
                           std::int32_t a_zp, const std::int8_t* w, std::ptrdiff_t n,
                           std::ptrdiff_t ldw, Span<std::int32_t> w_zp,
                           const std::int32_t* bias, const Requantization& rq, TO* out,
                           std::ptrdiff_t ldo) {
  for (std::ptrdiff_t i = 0; i < m; ++i)
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      const auto acc =
          static_cast<std::int32_t>(int8_gemm_acc(a, lda, a_zp, w, ldw, w_zp, bias, k, i, j));
      out[i * ldo + j] = static_cast<TO>(rq.apply(acc, static_cast<std::size_t>(j)));
    }
}

// Dequantized float output: acc * out_scale[j] (one scale or one per column).
template <typename TA>
void int8_gemm_f32(const TA* a, std::ptrdiff_t m, std::ptrdiff_t k, std::ptrdiff_t lda,
                   std::int32_t a_zp, const std::int8_t* w, std::ptrdiff_t n, std::ptrdiff_t ldw,
                   Span<std::int32_t> w_zp, const std::int32_t* bias,
                   Span<float> out_scale, float* out, std::ptrdiff_t ldo) {
  for (std::ptrdiff_t i = 0; i < m; ++i)
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      const auto acc =
          static_cast<std::int32_t>(int8_gemm_acc(a, lda, a_zp, w, ldw, w_zp, bias, k, i, j));
      const float s = out_scale.size() == 1 ? out_scale[0] : out_scale[j];
      out[i * ldo + j] = static_cast<float>(acc) * s;
    }
}

}  // namespace reference
ETK_END_NAMESPACE
