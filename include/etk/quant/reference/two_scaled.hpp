// etk/quant/reference/two_scaled.hpp: the plain V-2SF quantizer that
// etk/quant/two_scaled.hpp is tested against. One element at a time with the reference
// uniform quantizer (double, round half to even): x < split takes the small grid
// (s_S, small zero point), else the large grid (s_L, zero point 0), k payload bits each.
// Both layouts (etk/quant/two_scale_params.hpp) share these per-value codes; they differ
// only in where the region bit is stored.
#pragma once

#include <cstdint>

#include "etk/config.hpp"
#include "etk/quant/reference/uniform.hpp"
#include "etk/quant/two_scale_params.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

struct TwoScaleCode {
  bool large = false;         // the region bit
  std::int32_t payload = 0;   // k-bit payload, small zero point included
};

inline TwoScaleCode two_scale_quantize_value(float x, const TwoScaleParams& p) {
  const std::int32_t qmax = (1 << p.payload_bits()) - 1;
  if (x < p.split) return {false, quantize_value(x, p.small_scale(), p.small_zero_point, 0, qmax)};
  return {true, quantize_value(x, p.scale, 0, 0, qmax)};
}

inline float two_scale_dequantize_value(TwoScaleCode c, const TwoScaleParams& p) {
  return c.large ? dequantize_value(c.payload, p.scale, 0)
                 : dequantize_value(c.payload, p.small_scale(), p.small_zero_point);
}

}  // namespace reference
ETK_END_NAMESPACE
