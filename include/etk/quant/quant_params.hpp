// etk/quant/quant_params.hpp: the one description of a uniform affine quantization grid.
//
// Every quantizer, observer and the int8 GEMM of etk/quant speaks this struct, so a
// calibration result can be handed to a kernel without translation. The grid is
//     real(q) = (q - zero_point) * scale,     q in [qmin, qmax],
// per tensor (one scale) or per channel (one scale per row or per column of a row-major
// [rows, cols] matrix). An N-d tensor is quantized through a matrix view of it: e.g. a
// conv weight [Cout, Cin, kh, kw] as [Cout, Cin*kh*kw] with axis 0, activations
// [tokens, channels] with axis 1.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"

ETK_BEGIN_NAMESPACE

struct QuantParams {
  // Step of the grid, one entry per tensor (axis == -1) or per channel. Finite, normal, > 0.
  std::vector<float> scale{1.0f};
  // Code that represents real 0, same length as `scale`, within [qmin(), qmax()].
  std::vector<std::int32_t> zero_point{0};
  // Bit width: 2..8, or 16.
  int bits = 8;
  // Signed codes [-2^(b-1), 2^(b-1)-1] or unsigned codes [0, 2^b-1].
  bool is_signed = true;
  // Signed only: drop the code -2^(b-1) so that the grid is symmetric about zero.
  bool narrow_range = false;
  // -1: per tensor. 0: one scale per row. 1: one scale per column.
  int axis = -1;

  std::int32_t qmin() const {
    if (!is_signed) return 0;
    return -(std::int32_t(1) << (bits - 1)) + (narrow_range ? 1 : 0);
  }
  std::int32_t qmax() const {
    return is_signed ? (std::int32_t(1) << (bits - 1)) - 1 : (std::int32_t(1) << bits) - 1;
  }
  bool per_channel() const { return axis >= 0; }
  std::ptrdiff_t channels() const { return static_cast<std::ptrdiff_t>(scale.size()); }
  // Number of channels this grid needs for a [rows, cols] tensor.
  static std::ptrdiff_t channels_for(int axis, std::ptrdiff_t rows, std::ptrdiff_t cols) {
    return axis < 0 ? 1 : (axis == 0 ? rows : cols);
  }

  // Grid with given per-tensor scale and zero point.
  static QuantParams per_tensor(float scale, std::int32_t zero_point, int bits, bool is_signed) {
    QuantParams p;
    p.scale = {scale};
    p.zero_point = {zero_point};
    p.bits = bits;
    p.is_signed = is_signed;
    return p;
  }

  // Symmetric grid covering [-max_abs, max_abs]: signed codes with zero point 0 and the
  // narrow range (so +max_abs and -max_abs are both representable), or unsigned codes
  // centred on 2^(b-1). max_abs <= 0 (an all-zero tensor) gives scale 1. Rejected: bits
  // outside the widths the library accepts (2..8, 16) and a NaN or infinite max_abs.
  static QuantParams symmetric(float max_abs, int bits, bool is_signed = true) {
    check_bits(bits);
    ETK_CHECK(std::isfinite(max_abs), "argument 'max_abs' must be finite, got " << max_abs);
    QuantParams p;
    p.bits = bits;
    p.is_signed = is_signed;
    p.narrow_range = is_signed;
    const std::int32_t half = (std::int32_t(1) << (bits - 1)) - 1;
    p.scale = {safe_scale(max_abs / static_cast<float>(half))};
    p.zero_point = {is_signed ? 0 : (std::int32_t(1) << (bits - 1))};
    return p;
  }

  // Asymmetric grid covering [lo, hi] (widened to include 0 so that real 0 is exact).
  // Rejected: bits outside 2..8 and 16, a NaN or infinite bound, lo > hi.
  static QuantParams from_range(float lo, float hi, int bits, bool is_signed) {
    check_bits(bits);
    ETK_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi,
              "argument 'lo'/'hi' must be finite with lo <= hi, got [" << lo << ", " << hi << "]");
    QuantParams p;
    p.bits = bits;
    p.is_signed = is_signed;
    lo = std::min(lo, 0.0f);
    hi = std::max(hi, 0.0f);
    const double levels = static_cast<double>(p.qmax()) - p.qmin();
    const float s = safe_scale(static_cast<float>((static_cast<double>(hi) - lo) / levels));
    double zp = std::nearbyint(p.qmin() - static_cast<double>(lo) / s);
    zp = std::min<double>(std::max<double>(zp, p.qmin()), p.qmax());
    p.scale = {s};
    p.zero_point = {static_cast<std::int32_t>(zp)};
    return p;
  }

  // Per-channel grids from one per-tensor grid per channel (all with the same bits,
  // signedness and range). Each entry must hold exactly one scale and one zero point.
  static QuantParams stack(const std::vector<QuantParams>& per_channel, int axis) {
    ETK_CHECK(!per_channel.empty(), "argument 'per_channel' is empty");
    ETK_CHECK(axis == 0 || axis == 1, "argument 'axis' must be 0 (rows) or 1 (columns), got " << axis);
    QuantParams p = per_channel.front();
    p.axis = axis;
    p.scale.clear();
    p.zero_point.clear();
    for (std::size_t i = 0; i < per_channel.size(); ++i) {
      const QuantParams& c = per_channel[i];
      ETK_CHECK(c.scale.size() == 1 && c.zero_point.size() == 1,
                "argument 'per_channel': entry " << i << " must be a per-tensor grid (one scale and "
                "one zero point), got " << c.scale.size() << " scales and " << c.zero_point.size()
                << " zero points");
      ETK_CHECK(c.bits == p.bits && c.is_signed == p.is_signed && c.narrow_range == p.narrow_range,
                "argument 'per_channel': entry " << i << " differs from entry 0 in bits, "
                "signedness or range");
      p.scale.push_back(c.scale[0]);
      p.zero_point.push_back(c.zero_point[0]);
    }
    return p;
  }

  // The bit widths every etk quantizer accepts: 2..8, or 16.
  static void check_bits(int bits) {
    ETK_CHECK((bits >= 2 && bits <= 8) || bits == 16,
              "argument 'bits' must be in [2, 8] or 16, got " << bits);
  }

  // A scale usable for a degenerate (all-zero) range: scale 1 in place of 0 or denormals.
  static float safe_scale(float s) {
    return (std::isfinite(s) && s >= std::numeric_limits<float>::min()) ? s : 1.0f;
  }
};

namespace check {
// A well-formed QuantParams for a [rows, cols] tensor (pass rows = cols = -1 to skip the
// channel-count check): bits in 2..8 or 16, axis in {-1, 0, 1}, scales finite, normal and
// > 0, zero points within [qmin, qmax], one scale and zero point per channel.
inline void quant_params(const char* name, const QuantParams& p, std::ptrdiff_t rows = -1,
                         std::ptrdiff_t cols = -1) {
  ETK_CHECK((p.bits >= 2 && p.bits <= 8) || p.bits == 16,
            "argument '" << name << "': bits must be in [2, 8] or 16, got " << p.bits);
  ETK_CHECK(p.axis >= -1 && p.axis <= 1,
            "argument '" << name << "': axis must be -1 (per tensor), 0 (rows) or 1 "
                         << "(columns), got " << p.axis);
  ETK_CHECK(!p.narrow_range || p.is_signed,
            "argument '" << name << "': narrow_range needs signed codes");
  ETK_CHECK(!p.scale.empty() && p.scale.size() == p.zero_point.size(),
            "argument '" << name << "': needs as many zero points (" << p.zero_point.size()
                         << ") as scales (" << p.scale.size() << "), at least one");
  ETK_CHECK(p.axis >= 0 || p.scale.size() == 1,
            "argument '" << name << "': per-tensor grid must have one scale, got "
                         << p.scale.size());
  if (rows >= 0 && cols >= 0) {
    const std::ptrdiff_t want = QuantParams::channels_for(p.axis, rows, cols);
    ETK_CHECK(p.channels() == want, "argument '" << name << "': axis " << p.axis
                                                 << " of a [" << rows << ", " << cols
                                                 << "] tensor needs " << want
                                                 << " scales, got " << p.channels());
  }
  for (std::size_t c = 0; c < p.scale.size(); ++c) {
    const float s = p.scale[c];
    ETK_CHECK(std::isfinite(s) && s >= std::numeric_limits<float>::min(),
              "argument '" << name << "': scale[" << c
                           << "] must be finite, normal and > 0, got " << s);
    ETK_CHECK(p.zero_point[c] >= p.qmin() && p.zero_point[c] <= p.qmax(),
              "argument '" << name << "': zero_point[" << c << "] = " << p.zero_point[c]
                           << " is outside [" << p.qmin() << ", " << p.qmax() << "]");
  }
}
}  // namespace check

ETK_END_NAMESPACE
