// etk/quant/two_scale_params.hpp: the parameters of V-2SF (two-scaled quantization of
// post-softmax / post-GELU values, TSPTQ-ViT) and their two storage layouts, shared by the
// quantizer (etk/quant/two_scaled.hpp) and its reference twin
// (etk/quant/reference/two_scaled.hpp).
//
// Two unsigned grids of k payload bits: the small region (x < split) on the fine step
// s_S = s_L / 2^r with an optional zero point (post-GELU negatives), the large region on
// the coarse step s_L. On the fine integer grid the small region keeps the low-order k
// bits, the large region the high-order k bits (bits r .. r+k-1, rounded to nearest). Per
// value, a region bit says which. The layouts differ in where that bit lives:
//   shared_code:  a b-bit code = region bit (bit b-1) + k = b-1 payload bits; b stored
//                 bits per value (equal stored bits to plain b-bit).
//   region_plane: the paper's layout: a k = b-bit payload code + a separate packed
//                 1-bit region plane; b+1 stored bits per value, the precision of a
//                 (b+r)-bit fine grid.
#pragma once

#include <cmath>
#include <cstdint>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/quant/quant_params.hpp"

ETK_BEGIN_NAMESPACE

enum class TwoScaleLayout { shared_code, region_plane };

struct TwoScaleParams {
  // shared_code: total code bits, 3..8 (1 region bit + bits-1 payload bits).
  // region_plane: payload bits, 2..8 (the region bit is stored beside it).
  int bits = 8;
  TwoScaleLayout layout = TwoScaleLayout::shared_code;
  float scale = 1.0f / 127;   // large-region step s_L
  int ratio_log2 = 4;         // r: s_S = s_L / 2^r, r in [1, 16]
  float split = 0.0f;         // x < split: small region
  std::int32_t small_zero_point = 0;  // post-GELU: small region covers [-zp, 2^k-1-zp] * s_S

  int payload_bits() const { return layout == TwoScaleLayout::shared_code ? bits - 1 : bits; }
  int stored_bits() const { return payload_bits() + 1; }
  float small_scale() const { return std::ldexp(scale, -ratio_log2); }
  QuantParams small_grid() const {
    return QuantParams::per_tensor(small_scale(), small_zero_point, payload_bits(), false);
  }
  QuantParams large_grid() const { return QuantParams::per_tensor(scale, 0, payload_bits(), false); }
};

namespace detail::quant {
// Valid bits for a layout: shared_code 3..8, region_plane 2..8.
inline void check_two_scale_bits(const char* name, int bits, TwoScaleLayout layout) {
  check::bits_in_range(name, bits, layout == TwoScaleLayout::shared_code ? 3 : 2, 8);
}

inline void check_two_scale(const TwoScaleParams& p) {
  ETK_CHECK(p.layout == TwoScaleLayout::shared_code || p.layout == TwoScaleLayout::region_plane,
            "argument 'p': unknown layout " << static_cast<int>(p.layout));
  check_two_scale_bits("p.bits", p.bits, p.layout);
  check::positive_finite("p.scale", p.scale);
  ETK_CHECK(p.ratio_log2 >= 1 && p.ratio_log2 <= 16,
            "argument 'p': ratio_log2 must be in [1, 16], got " << p.ratio_log2);
  ETK_CHECK(std::isfinite(p.split), "argument 'p': split must be finite, got " << p.split);
  check::quant_params("p (small region)", p.small_grid());
}
}  // namespace detail::quant

ETK_END_NAMESPACE
