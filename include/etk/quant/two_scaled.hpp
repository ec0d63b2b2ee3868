// etk/quant/two_scaled.hpp: two-scaled quantizers for vision-transformer activations
// (TSPTQ-ViT), with FQ-ViT's power-of-two factor as the comparison.
//
// V-2SF (post-softmax, post-GELU). Two unsigned grids, small values on the fine step
// s_S = s_L / 2^r, large values on the coarse step s_L: on the fine integer grid, the small
// region keeps the low-order bits and the large region the high-order bits (bits
// r .. r+k-1). The region is chosen per value by the split t (x < t: small), so each value
// is quantized by exactly one scale (a public implementation adds both branches' outputs
// instead, which does worse than plain uint8). Two storage layouts
// (etk/quant/two_scale_params.hpp): shared_code, a b-bit code holding the region bit and
// k = b-1 payload bits (b stored bits), and region_plane, the paper's layout: k = b payload
// bits plus a packed 1-bit region plane (b+1 stored bits; the plane uses
// etk/core/bit_packing.hpp at 1 bit). The post-GELU variant gives the small region a zero
// point so that it also covers GELU's small negative range [-0.17, 0) (the large region
// stays non-negative). The ratio 2^r and the split (and, post-GELU, the large step; post-
// softmax keeps the large grid on softmax's range [0, 1]) are searched to minimise the MSE
// on calibration data (OPT-m: the data-dependent search of the ratio between the two
// scales); for each (s_L, r) the best split over all data points is found exactly from
// prefix sums of the per-region errors. Reference twin:
// reference/two_scaled.hpp (per value, in double).
//
// O-2SF (LayerNorm in/outputs with outlier channels). Channels of a [tokens, channels]
// tensor share one zero point; normal channels share one scale s, outlier channels use
// s * 2^r (one bit per channel says which), r and s searched, each channel taking the
// scale with the lower L2 error. FQ-ViT's power-of-two factor (PTF) instead lets every
// channel pick s * 2^a, a in 0..3. Both produce a per-channel QuantParams (axis 1) for the
// uniform quantizer and integer kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/quant_params.hpp"
#include "etk/quant/reference/two_scaled.hpp"
#include "etk/quant/reference/uniform.hpp"
#include "etk/quant/two_scale_params.hpp"
#include "etk/quant/uniform.hpp"
#include "etk/core/bit_packing.hpp"

ETK_BEGIN_NAMESPACE

// ---- V-2SF ----------------------------------------------------------------------------
// The region_plane layout's storage: payload(r, c) < 2^bits (small zero point included),
// and region bit i = r * cols + c (1 = large) at bit i % 8 of byte i / 8 (the 1-bit stream
// of etk/core/bit_packing.hpp; ceil(rows * cols / 8) bytes, unused high bits 0).
struct TwoScaleCodes {
  RowMatrix<std::uint8_t> payload;
  std::vector<std::uint8_t> region;
};

namespace detail::quant {
inline void check_data(const char* name, ConstMatrixView<float> x) {
  ETK_CHECK(x.rows() > 0 && x.cols() > 0,
            "argument '" << name << "' is empty ([" << x.rows() << ", " << x.cols() << "])");
  check::finite(name, x.data(), x.rows(), x.cols(), x.outerStride());
}

inline void check_layout(const TwoScaleParams& p, TwoScaleLayout want, const char* use) {
  ETK_CHECK(p.layout == want, "argument 'p': layout " << (p.layout == TwoScaleLayout::shared_code ? "shared_code" : "region_plane")
                                                      << " needs " << use);
}

// Region and payload of every value of x (both grids through the fast uniform quantizer,
// bit-identical to the reference's per-value codes), handed to emit(r, c, large, payload).
template <typename Emit>
void two_scale_codes(ConstMatrixView<float> x, const TwoScaleParams& p, Emit emit) {
  check_two_scale(p);
  check_data("x", x);
  const RowMatrix<std::uint8_t> qs = quantize<std::uint8_t>(x, p.small_grid());
  const RowMatrix<std::uint8_t> ql = quantize<std::uint8_t>(x, p.large_grid());
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index c = 0; c < x.cols(); ++c) {
      const bool large = !(x(r, c) < p.split);
      emit(r, c, large, large ? ql(r, c) : qs(r, c));
    }
}

inline float two_scale_value(bool large, std::int32_t payload, const TwoScaleParams& p) {
  return reference::two_scale_dequantize_value({large, payload}, p);
}

inline void check_payload(std::int32_t code, int bits, Eigen::Index r, Eigen::Index c, const char* name) {
  ETK_CHECK(code < (1 << bits), "argument '" << name << "' (" << r << ", " << c << ") = " << code << " has more than "
                                             << bits << " bits");
}
}  // namespace detail::quant

// shared_code layout. Codes: bit (bits-1) is the region (1 = large), the low bits the
// payload (with the small region's zero point added).
inline RowMatrix<std::uint8_t> two_scale_quantize(ConstMatrixView<float> x, const TwoScaleParams& p) {
  detail::quant::check_layout(p, TwoScaleLayout::shared_code, "two_scale_quantize_planes");
  RowMatrix<std::uint8_t> out(x.rows(), x.cols());
  const int k = p.payload_bits();
  detail::quant::two_scale_codes(x, p, [&](Eigen::Index r, Eigen::Index c, bool large, std::uint8_t payload) {
    out(r, c) = static_cast<std::uint8_t>((large ? 1u << k : 0u) | payload);
  });
  return out;
}

inline RowMatrixXf two_scale_dequantize(ConstMatrixView<std::uint8_t> q, const TwoScaleParams& p) {
  detail::quant::check_two_scale(p);
  detail::quant::check_layout(p, TwoScaleLayout::shared_code, "the TwoScaleCodes overload of two_scale_dequantize");
  ETK_CHECK(q.rows() > 0 && q.cols() > 0, "argument 'q' is empty");
  const int k = p.payload_bits();
  RowMatrixXf out(q.rows(), q.cols());
  for (Eigen::Index r = 0; r < q.rows(); ++r)
    for (Eigen::Index c = 0; c < q.cols(); ++c) {
      const std::int32_t code = q(r, c);
      detail::quant::check_payload(code, p.bits, r, c, "q");
      out(r, c) = detail::quant::two_scale_value((code >> k) != 0, code & ((1 << k) - 1), p);
    }
  return out;
}

// region_plane layout (the paper's): payload codes and the packed region plane.
inline TwoScaleCodes two_scale_quantize_planes(ConstMatrixView<float> x, const TwoScaleParams& p) {
  detail::quant::check_layout(p, TwoScaleLayout::region_plane, "two_scale_quantize");
  TwoScaleCodes out;
  out.payload.resize(x.rows(), x.cols());
  std::vector<std::uint8_t> region(static_cast<std::size_t>(x.rows() * x.cols()));
  detail::quant::two_scale_codes(x, p, [&](Eigen::Index r, Eigen::Index c, bool large, std::uint8_t payload) {
    out.payload(r, c) = payload;
    region[static_cast<std::size_t>(r * x.cols() + c)] = large ? 1 : 0;
  });
  out.region.resize(packed_bytes(region.size(), 1));
  pack_bits(region.data(), region.size(), 1, out.region.data());
  return out;
}

inline RowMatrixXf two_scale_dequantize(const TwoScaleCodes& q, const TwoScaleParams& p) {
  detail::quant::check_two_scale(p);
  detail::quant::check_layout(p, TwoScaleLayout::region_plane, "the uint8-matrix overload of two_scale_dequantize");
  const Eigen::Index rows = q.payload.rows(), cols = q.payload.cols();
  ETK_CHECK(rows > 0 && cols > 0, "argument 'q' is empty");
  const std::size_t n = static_cast<std::size_t>(rows * cols);
  ETK_CHECK(q.region.size() == packed_bytes(n, 1), "argument 'q': the region plane has "
                                                               << q.region.size() << " bytes, " << rows << " x " << cols
                                                               << " payload codes need " << packed_bytes(n, 1));
  std::vector<std::uint8_t> region(n);
  unpack_bits(q.region.data(), n, 1, region.data());
  RowMatrixXf out(rows, cols);
  for (Eigen::Index r = 0; r < rows; ++r)
    for (Eigen::Index c = 0; c < cols; ++c) {
      const std::int32_t code = q.payload(r, c);
      detail::quant::check_payload(code, p.bits, r, c, "q.payload");
      out(r, c) = detail::quant::two_scale_value(region[static_cast<std::size_t>(r * cols + c)] != 0, code, p);
    }
  return out;
}

// dequantize(quantize(x)) for either layout, vectorised: both grids' fake quantization,
// selected per value.
inline RowMatrixXf two_scale_fake_quantize(ConstMatrixView<float> x, const TwoScaleParams& p) {
  detail::quant::check_two_scale(p);
  detail::quant::check_data("x", x);
  const RowMatrixXf fs = fake_quantize(x, p.small_grid());
  const RowMatrixXf fl = fake_quantize(x, p.large_grid());
  return (x.array() < p.split).select(fs, fl);
}

enum class TwoScaleKind { post_softmax, post_gelu };

// Search r (1 .. k + 4, k payload bits) and the exact best split, minimising the MSE on x,
// and for post-GELU also s_L (clip factors 0.85^i, i = 0..15, of max / (2^k - 1)).
// Post-softmax keeps the large grid on softmax's whole range, s_L = max(1, max x) /
// (2^k - 1), never clipped: a rare large probability absent from the calibration rows
// would otherwise be clamped when it comes (on the OCR model's short set, block 0's
// calibration maximum is 0.58 against 0.92 over all lines; clipping there cost 2.2x in
// MSE at 8 bits, 6.4x with the region plane). `bits` as in TwoScaleParams for the layout
// (shared_code: total code bits; region_plane: payload bits).
inline TwoScaleParams two_scale_calibrate(ConstMatrixView<float> x, int bits, TwoScaleKind kind,
                                          TwoScaleLayout layout = TwoScaleLayout::shared_code) {
  detail::quant::check_data("x", x);
  detail::quant::check_two_scale_bits("bits", bits, layout);
  RowMatrixXf flat(1, x.size());
  for (Eigen::Index r = 0; r < x.rows(); ++r) flat.block(0, r * x.cols(), 1, x.cols()) = x.row(r);
  const auto xv = matrix_view(static_cast<const float*>(flat.data()), 1, flat.cols(), flat.cols());
  const float top = flat.maxCoeff();
  ETK_CHECK(top > 0, "argument 'x' has no positive value to calibrate on");
  const std::ptrdiff_t n = flat.cols();
  std::vector<std::ptrdiff_t> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::ptrdiff_t a, std::ptrdiff_t b) { return flat(0, a) < flat(0, b); });

  TwoScaleParams best;
  best.bits = bits;
  best.layout = layout;
  double best_err = std::numeric_limits<double>::infinity();
  const int k = best.payload_bits();
  std::vector<double> prefix_small(static_cast<std::size_t>(n) + 1), prefix_large(static_cast<std::size_t>(n) + 1);
  const bool softmax = kind == TwoScaleKind::post_softmax;
  const float range = softmax ? std::max(top, 1.0f) : top;
  for (int fi = 0; fi < (softmax ? 1 : 16); ++fi) {
    TwoScaleParams p = best;
    p.scale = QuantParams::safe_scale(range * std::pow(0.85f, static_cast<float>(fi)) / static_cast<float>((1 << k) - 1));
    const RowMatrixXf fl = fake_quantize(xv, p.large_grid());
    for (int r = 1; r <= k + 4; ++r) {
      p.ratio_log2 = r;
      if (!(p.small_scale() >= std::numeric_limits<float>::min())) break;
      if (kind == TwoScaleKind::post_gelu)  // cover the negative range, at most all codes
        p.small_zero_point = static_cast<std::int32_t>(std::min<double>(
            (1 << k) - 1, std::ceil(std::max(0.0f, -flat.minCoeff()) / p.small_scale())));
      const RowMatrixXf fs = fake_quantize(xv, p.small_grid());
      for (std::ptrdiff_t i = 0; i < n; ++i) {
        const std::ptrdiff_t j = order[static_cast<std::size_t>(i)];
        const double es = static_cast<double>(flat(0, j)) - fs(0, j), el = static_cast<double>(flat(0, j)) - fl(0, j);
        prefix_small[static_cast<std::size_t>(i) + 1] = prefix_small[static_cast<std::size_t>(i)] + es * es;
        prefix_large[static_cast<std::size_t>(i) + 1] = prefix_large[static_cast<std::size_t>(i)] + el * el;
      }
      // Split before sorted position i: the first i values small, the rest large. A split
      // must fall between distinct values (ties go to one region together).
      for (std::ptrdiff_t i = 0; i <= n; ++i) {
        if (i > 0 && i < n && flat(0, order[static_cast<std::size_t>(i)]) == flat(0, order[static_cast<std::size_t>(i) - 1])) continue;
        const double err = prefix_small[static_cast<std::size_t>(i)] + (prefix_large[static_cast<std::size_t>(n)] - prefix_large[static_cast<std::size_t>(i)]);
        if (err < best_err) {
          best_err = err;
          best = p;
          best.split = i == n ? std::numeric_limits<float>::max() : flat(0, order[static_cast<std::size_t>(i)]);
          if (i == 0) best.split = -std::numeric_limits<float>::max();
        }
      }
    }
  }
  return best;
}

// ---- O-2SF and FQ-ViT's power-of-two factor -------------------------------------------
// Per-channel scales s * 2^exponent[c] with one shared zero point, for [tokens, channels].
struct ChannelPow2Params {
  int bits = 8;
  float scale = 1.0f;              // base scale s
  std::int32_t zero_point = 0;     // shared, unsigned grid [0, 2^b - 1]
  std::vector<int> exponent;       // per channel

  QuantParams quant_params() const {
    QuantParams p;
    p.bits = bits;
    p.is_signed = false;
    p.axis = 1;
    p.scale.clear();
    p.zero_point.clear();
    for (int e : exponent) {
      p.scale.push_back(std::ldexp(scale, e));
      p.zero_point.push_back(zero_point);
    }
    return p;
  }
};

namespace detail::quant {
// Sum of squared errors of channel c under a per-tensor grid.
inline double channel_sse(ConstMatrixView<float> x, Eigen::Index c, float scale, std::int32_t zp, int bits) {
  const std::int32_t qmax = (1 << bits) - 1;
  double e = 0;
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const float v = x(r, c);
    const float d = reference::dequantize_value(reference::quantize_value(v, scale, zp, 0, qmax), scale, zp);
    e += (static_cast<double>(v) - d) * (static_cast<double>(v) - d);
  }
  return e;
}

// Best exponent per channel from `choices` for base scale s; returns the total error.
inline double assign_exponents(ConstMatrixView<float> x, float s, std::int32_t zp, int bits,
                               const std::vector<int>& choices, std::vector<int>& exponent) {
  exponent.assign(static_cast<std::size_t>(x.cols()), choices.front());
  double total = 0;
  for (Eigen::Index c = 0; c < x.cols(); ++c) {
    double best = std::numeric_limits<double>::infinity();
    for (int e : choices) {
      const double err = channel_sse(x, c, std::ldexp(s, e), zp, bits);
      if (err < best) {
        best = err;
        exponent[static_cast<std::size_t>(c)] = e;
      }
    }
    total += best;
  }
  return total;
}

// Shared zero point from the global range, as FQ-ViT does.
inline std::int32_t shared_zero_point(ConstMatrixView<float> x, int bits) {
  const float lo = std::min(x.minCoeff(), 0.0f), hi = std::max(x.maxCoeff(), 0.0f);
  const double qmax = (1 << bits) - 1;
  if (!(hi - lo > 0)) return 0;
  return static_cast<std::int32_t>(std::min(std::max(std::nearbyint(-lo / (hi - lo) * qmax), 0.0), qmax));
}
}  // namespace detail::quant

// FQ-ViT PTF: s = global-range scale / 2^max_exponent, every channel picks a in 0..max.
inline ChannelPow2Params fqvit_ptf_calibrate(ConstMatrixView<float> x, int bits, int max_exponent = 3) {
  detail::quant::check_data("x", x);
  check::bits_in_range("bits", bits, 2, 8);
  ETK_CHECK(max_exponent >= 0 && max_exponent <= 8, "argument 'max_exponent' must be in [0, 8], got " << max_exponent);
  ChannelPow2Params p;
  p.bits = bits;
  p.zero_point = detail::quant::shared_zero_point(x, bits);
  const float lo = std::min(x.minCoeff(), 0.0f), hi = std::max(x.maxCoeff(), 0.0f);
  p.scale = QuantParams::safe_scale(std::ldexp((hi - lo) / static_cast<float>((1 << bits) - 1), -max_exponent));
  std::vector<int> choices(static_cast<std::size_t>(max_exponent) + 1);
  std::iota(choices.begin(), choices.end(), 0);
  detail::quant::assign_exponents(x, p.scale, p.zero_point, bits, choices, p.exponent);
  return p;
}

// O-2SF: two scales, s for normal channels and s * 2^r for outliers; s (as a fraction of
// the global-range scale) and r in 1..max_ratio_log2 searched (OPT-m), each channel taking
// the better of the two.
inline ChannelPow2Params o2sf_calibrate(ConstMatrixView<float> x, int bits, int max_ratio_log2 = 8) {
  detail::quant::check_data("x", x);
  check::bits_in_range("bits", bits, 2, 8);
  ETK_CHECK(max_ratio_log2 >= 1 && max_ratio_log2 <= 12, "argument 'max_ratio_log2' must be in [1, 12], got " << max_ratio_log2);
  ChannelPow2Params best;
  best.bits = bits;
  best.zero_point = detail::quant::shared_zero_point(x, bits);
  const float lo = std::min(x.minCoeff(), 0.0f), hi = std::max(x.maxCoeff(), 0.0f);
  const float top = QuantParams::safe_scale((hi - lo) / static_cast<float>((1 << bits) - 1));
  double best_err = std::numeric_limits<double>::infinity();
  std::vector<int> exponent;
  for (int r = 1; r <= max_ratio_log2; ++r)
    for (int f = 0; f < 8; ++f) {
      // Outlier scale s * 2^r spans between the full range and a bit less.
      const float s = QuantParams::safe_scale(std::ldexp(top * (1.0f - 0.06f * static_cast<float>(f)), -r));
      const double err = detail::quant::assign_exponents(x, s, best.zero_point, bits, {0, r}, exponent);
      if (err < best_err) {
        best_err = err;
        best.scale = s;
        best.exponent = exponent;
      }
    }
  return best;
}

ETK_END_NAMESPACE
