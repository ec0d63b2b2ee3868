// etk/quant/reference/uniform.hpp: the plain uniform quantizer the fast paths are tested
// against. One element at a time, in double precision:
//     q = clamp(round_half_even(x / scale) + zero_point, qmin, qmax)
//     dequantize(q) = float(q - zero_point) * scale          (one float rounding)
// The double quotient of two floats is never close enough to a half-integer to round onto
// it by mistake (for |x / scale| <= 2^17, beyond which codes clamp; see docs/numerics.md),
// so this is round half to even of the exact real quotient.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "etk/config.hpp"
#include "etk/quant/quant_params.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

// Code of x on the grid (scale, zero_point, [qmin, qmax]). NaN is not accepted here.
inline std::int32_t quantize_value(float x, float scale, std::int32_t zero_point,
                                   std::int32_t qmin, std::int32_t qmax) {
  const double q = static_cast<double>(x) / static_cast<double>(scale);
  const double lo = static_cast<double>(qmin) - zero_point;
  const double hi = static_cast<double>(qmax) - zero_point;
  const double r = std::nearbyint(std::min(std::max(q, lo), hi));  // FE_TONEAREST: ties to even
  return static_cast<std::int32_t>(r) + zero_point;
}

inline float dequantize_value(std::int32_t q, float scale, std::int32_t zero_point) {
  return static_cast<float>(q - zero_point) * scale;
}

// [rows, cols] row-major with row strides; T is the code type.
template <typename T>
void quantize(const float* x, std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t x_stride,
              const QuantParams& p, T* q, std::ptrdiff_t q_stride) {
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    for (std::ptrdiff_t c = 0; c < cols; ++c) {
      const std::size_t ch = p.axis < 0 ? 0 : static_cast<std::size_t>(p.axis == 0 ? r : c);
      q[r * q_stride + c] = static_cast<T>(quantize_value(x[r * x_stride + c], p.scale[ch],
                                                          p.zero_point[ch], p.qmin(), p.qmax()));
    }
}

template <typename T>
void dequantize(const T* q, std::ptrdiff_t rows, std::ptrdiff_t cols, std::ptrdiff_t q_stride,
                const QuantParams& p, float* x, std::ptrdiff_t x_stride) {
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    for (std::ptrdiff_t c = 0; c < cols; ++c) {
      const std::size_t ch = p.axis < 0 ? 0 : static_cast<std::size_t>(p.axis == 0 ? r : c);
      x[r * x_stride + c] = dequantize_value(q[r * q_stride + c], p.scale[ch], p.zero_point[ch]);
    }
}

inline void fake_quantize(const float* x, std::ptrdiff_t rows, std::ptrdiff_t cols,
                          std::ptrdiff_t x_stride, const QuantParams& p, float* y,
                          std::ptrdiff_t y_stride) {
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    for (std::ptrdiff_t c = 0; c < cols; ++c) {
      const std::size_t ch = p.axis < 0 ? 0 : static_cast<std::size_t>(p.axis == 0 ? r : c);
      const std::int32_t q =
          quantize_value(x[r * x_stride + c], p.scale[ch], p.zero_point[ch], p.qmin(), p.qmax());
      y[r * y_stride + c] = dequantize_value(q, p.scale[ch], p.zero_point[ch]);
    }
}

}  // namespace reference
ETK_END_NAMESPACE
