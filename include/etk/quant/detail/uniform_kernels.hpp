// etk/quant/detail/uniform_kernels.hpp: fast uniform quantize / dequantize over runs of
// elements (one grid, or one grid per element) and over [rows, cols] blocks with one grid
// per column; scalar + AVX2 + AVX-512, compiled per dispatch path (the bodies are in
// uniform_kernels.inl; etk/core/detail/for_each_target.hpp).
//
// Quantizing needs n = round_half_even(x / s) of the exact real quotient. Every path uses
// an estimate checked by a certificate (proof in docs/numerics.md, "Uniform quantizer"):
//   r = rne(x * inv)               inv ~ 1 / s (the caller's RN(1 / s); any value is safe)
//   e = fma(-r, s, x)              RN(x - r s), one rounding
//   |e| < h, h = RN(s / 2)   ==>   |x / s - r| < 1/2 exactly   ==>   n = r.
// The SIMD form gets r from t = RN(x * inv + kMagic + zp) (one FMA; r = t - kMagic - zp)
// and, after clamping t, reads the code from t's bits (no float-to-int conversion).
// Lanes without the certificate (near or exact ties, NaN, +-Inf, quotients beyond 2^22)
// take the exact path: a correctly rounded float division, and when that quotient lands
// exactly on k + 1/2, the sign of the exact residual x - (k + 1/2) s (one FMA: a correctly
// rounded value has the sign of the exact one) picks the side. Both give the reference's
// (reference/uniform.hpp) codes bit for bit; the certified path costs two FMAs and a
// subtraction instead of a division (vdivps), and the exact path is taken on about
// |x / s| 2^-22 of random values.
//
// A run either has one (scale, reciprocal, zero point) for all elements (kPerElement =
// false) or one per element (kPerElement = true). The code type T is int8_t, uint8_t,
// int16_t or uint16_t; T = float stores the dequantized value instead (fake
// quantization). Kernels return true if they met a NaN.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "etk/config.hpp"

#include "etk/core/isa.hpp"
#if defined(ETK_X86)
#include <immintrin.h>
#endif

#define ETK_TARGET_FILE "etk/quant/detail/uniform_kernels.inl"
#include "etk/core/detail/for_each_target.hpp"

// The entry points the modules call: each forwards to the active path.
ETK_BEGIN_NAMESPACE
namespace detail::quant {
namespace uq {

inline void reciprocals(const float* s, std::ptrdiff_t n, float* inv) {
  ETK_DISPATCH_RETURN(detail::quant::uq::reciprocals(s, n, inv));
}

template <typename T, bool kPerElement>
bool quantize_run(const float* x, std::ptrdiff_t n, const float* s, const float* inv,
                  const std::int32_t* zp, std::int32_t qmin, std::int32_t qmax, T* out) {
  ETK_DISPATCH_RETURN(detail::quant::uq::quantize_run<T, kPerElement>(x, n, s, inv, zp, qmin, qmax, out));
}

template <typename T, bool kPerElement>
void dequantize_run(const T* q, std::ptrdiff_t n, const float* s, const std::int32_t* zp, float* out) {
  ETK_DISPATCH_RETURN(detail::quant::uq::dequantize_run<T, kPerElement>(q, n, s, zp, out));
}

template <typename T>
bool quantize_cols(const float* x, std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t xs,
                   const float* s, const float* inv, const std::int32_t* zp, std::int32_t qmin,
                   std::int32_t qmax, T* out, std::ptrdiff_t os) {
  ETK_DISPATCH_RETURN(detail::quant::uq::quantize_cols<T>(x, rows, cols, xs, s, inv, zp, qmin, qmax, out, os));
}

template <typename T>
void dequantize_cols(const T* q, std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t qs,
                     const float* s, const std::int32_t* zp, float* out, std::ptrdiff_t os) {
  ETK_DISPATCH_RETURN(detail::quant::uq::dequantize_cols<T>(q, rows, cols, qs, s, zp, out, os));
}

}  // namespace uq
}  // namespace detail::quant
ETK_END_NAMESPACE
