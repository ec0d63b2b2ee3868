// etk/quant/int8_linear.hpp: a float linear layer y = x W^T + b run as an int8 GEMM, in one
// call, from float weights.
//
//  * Int8LinearWeights::from_float(w [N, K], bias, granularity): symmetric s8 weight codes
//    (narrow range [-127, 127], zero point 0), one scale per tensor or per output channel
//    (row of w), packed once (PackedWeightsS8). The float bias is kept.
//  * quantize_rows_s8: dynamic activation quantization, one symmetric scale per row (per
//    token): s_i = max_k |x_ik| / 127 (1 for an all-zero row), codes round-half-even(x / s_i).
//  * int8_linear(x, weights, y): y_ij = s_i * S_w[j] * acc_ij + b_j, with
//    acc_ij = sum_k qx_ik * qw_jk the exact int32 product of int8_gemm_s32.
//  * int8_linear_static(x, act, weights, y): the same layer with a calibrated (static)
//    per-tensor activation grid `act` (u8 asymmetric, from an observer): x is quantized on
//    it, the float bias enters the accumulators as round(b_j / (S_a * S_w[j])) where that
//    fits the GEMM's int32 budget next to the depth's product bound, and is added in float
//    after the GEMM for a channel where it does not (a tiny S_w: a near-dead channel), and
//    y_ij = S_a * S_w[j] * acc_ij (+ float bias).
//  * Int8StaticEpilogue / Int8StaticLayer: what int8_linear_static derives from the grid
//    and the weights (bias codes, output scales), prepared once per layer.
//  * quantize_bias_s32: for a static activation scale S_a, the int32 bias
//    round(b_j / (S_a * S_w[j])) that int8_gemm / int8_gemm_f32 add to the accumulators,
//    rejected when it could overflow them (int8_accumulator_bound below).
//
// Accumulator width: |acc| <= K * 127 * 127 with these codes (narrow range on both sides);
// the GEMM's own check (K * 128 * 128 + |bias| <= 2^31 - 1 for s8 x s8, zero points 0) is
// the one enforced, here and in the GEMM: K <= 131071 without bias.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/context.hpp"
#include "etk/core/span.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/int8_gemm.hpp"
#include "etk/quant/quant_params.hpp"
#include "etk/quant/uniform.hpp"

ETK_BEGIN_NAMESPACE

enum class WeightGranularity { per_tensor, per_channel };

// The GEMM's accumulator bound for s8 x s8 codes with zero points 0: k * 128 * 128 + |b|.
inline std::int64_t int8_accumulator_bound(std::ptrdiff_t k, std::int64_t bias_abs_max) {
  return std::int64_t(k) * 128 * 128 + bias_abs_max;
}

// Symmetric grid of one row (or of the whole matrix): narrow-range s8, zero point 0.
inline QuantParams symmetric_s8(float max_abs) { return QuantParams::symmetric(max_abs, 8, true); }

struct Int8LinearWeights {
  PackedWeightsS8 packed;     // [N, K] codes
  std::vector<float> scale;   // 1 (per tensor) or N (per output channel)
  std::vector<float> bias;    // N or empty

  std::ptrdiff_t n() const { return packed.n(); }
  std::ptrdiff_t k() const { return packed.k(); }
  float scale_at(std::ptrdiff_t j) const {
    return scale.size() == 1 ? scale[0] : scale[static_cast<std::size_t>(j)];
  }

  // The symmetric s8 grid of w [N, K]: one scale, or one per row (output channel).
  static QuantParams weight_grid(ConstMatrixView<float> w, WeightGranularity granularity) {
    ETK_CHECK(w.rows() > 0 && w.cols() > 0,
              "argument 'w' is empty ([" << w.rows() << ", " << w.cols() << "])");
    if (granularity == WeightGranularity::per_tensor) return symmetric_s8(w.cwiseAbs().maxCoeff());
    std::vector<QuantParams> rows;
    for (std::ptrdiff_t j = 0; j < w.rows(); ++j) rows.push_back(symmetric_s8(w.row(j).cwiseAbs().maxCoeff()));
    return QuantParams::stack(rows, 0);
  }

  // w: [N, K] float weights (one row per output channel); bias: N values or empty.
  static Int8LinearWeights from_float(ConstMatrixView<float> w, Span<float> bias,
                                      WeightGranularity granularity) {
    ETK_CHECK(w.rows() > 0 && w.cols() > 0,
              "argument 'w' is empty ([" << w.rows() << ", " << w.cols() << "])");
    ETK_CHECK(bias.empty() || bias.size() == w.rows(),
              "argument 'bias' needs " << w.rows() << " values (or none), got " << bias.size());
    for (std::ptrdiff_t j = 0; j < bias.size(); ++j)
      ETK_CHECK(std::isfinite(bias[j]), "argument 'bias' holds a non-finite value at " << j);
    const QuantParams grid = weight_grid(w, granularity);
    const RowMatrix<std::int8_t> codes = quantize<std::int8_t>(w, grid);  // rejects NaN
    Int8LinearWeights out;
    out.packed = PackedWeightsS8(matrix_view(codes.data(), codes.rows(), codes.cols(), codes.cols()));
    out.scale = grid.scale;
    out.bias.assign(bias.begin(), bias.end());
    return out;
  }
};

// Per-row symmetric s8 codes of x [M, K] into q [M, K], the row scales into scale [M]:
// one grid per row, built in place (the scale symmetric_s8 gives, zero point 0).
inline void quantize_rows_s8(ConstMatrixView<float> x, MatrixView<std::int8_t> q, float* scale) {
  ETK_CHECK(x.rows() > 0 && x.cols() > 0, "argument 'x' is empty ([" << x.rows() << ", " << x.cols() << "])");
  check::equal("q", q.rows(), "rows (= x.rows)", x.rows());
  check::equal("q", q.cols(), "cols (= x.cols)", x.cols());
  ETK_CHECK(scale != nullptr, "argument 'scale' is a null pointer");
  QuantParams grid = symmetric_s8(1.0f);
  grid.axis = 0;
  grid.scale.resize(static_cast<std::size_t>(x.rows()));
  grid.zero_point.assign(static_cast<std::size_t>(x.rows()), 0);
  for (std::ptrdiff_t i = 0; i < x.rows(); ++i) {
    const float max_abs = x.row(i).cwiseAbs().maxCoeff();
    ETK_CHECK(std::isfinite(max_abs), "argument 'x' holds a non-finite value in row " << i);
    grid.scale[static_cast<std::size_t>(i)] = QuantParams::safe_scale(max_abs / 127.0f);
  }
  quantize<std::int8_t>(x, grid, q);
  std::copy(grid.scale.begin(), grid.scale.end(), scale);
}

// The int32 bias of a layer whose activations have the static scale a_scale:
// round(b_j / (a_scale * S_w[j])), checked against the GEMM's accumulator bound for depth k.
inline std::vector<std::int32_t> quantize_bias_s32(Span<float> bias, double a_scale,
                                                   const Int8LinearWeights& w) {
  check::positive_finite("a_scale", a_scale);
  ETK_CHECK(bias.size() == w.n(), "argument 'bias' needs " << w.n() << " values, got " << bias.size());
  std::vector<std::int32_t> q(static_cast<std::size_t>(bias.size()));
  const double limit = double(std::numeric_limits<std::int32_t>::max());
  for (std::ptrdiff_t j = 0; j < bias.size(); ++j) {
    const double v = std::nearbyint(double(bias[j]) / (a_scale * double(w.scale_at(j))));
    ETK_CHECK(std::isfinite(v) && int8_accumulator_bound(w.k(), 0) + std::fabs(v) <= limit,
              "argument 'bias': value " << bias[j] << " at " << j << " is " << v
                                        << " accumulator units, beyond the int32 bound for depth "
                                        << w.k());
    q[static_cast<std::size_t>(j)] = static_cast<std::int32_t>(v);
  }
  return q;
}

// What int8_linear_static needs besides the codes, fixed by the activation grid and the
// weights, so computed once per layer: the int32 bias codes, the output scales
// S_a * S_w[j], and the channels whose bias stays float. Accumulator: |acc - bias| <=
// K * max|q_a - zp| * 128 (the GEMM's own bound), so a bias code enters as int32 only where
// K * max|q_a - zp| * 128 + |code| <= 2^31 - 1.
struct Int8StaticEpilogue {
  QuantParams act;                       // per-tensor u8
  std::vector<std::int32_t> bias;        // N codes (0 where the bias stays float)
  std::vector<float> out_scale;          // N
  std::vector<std::ptrdiff_t> float_bias;  // channels whose bias is added in float

  static Int8StaticEpilogue prepare(const QuantParams& act, const Int8LinearWeights& w) {
    ETK_CHECK(w.n() > 0, "argument 'w' is empty (not built)");
    ETK_CHECK(act.scale.size() == 1 && act.zero_point.size() == 1 && act.bits == 8 && !act.is_signed,
              "argument 'act' must be a per-tensor unsigned 8-bit grid");
    check::positive_finite("act.scale", double(act.scale[0]));
    const std::ptrdiff_t k = w.k(), n = w.n();
    const double sa = act.scale[0];
    const double budget = double(std::numeric_limits<std::int32_t>::max()) -
                          double(k) * double(detail::quant::gemm::max_abs_centered<std::uint8_t>(act.zero_point[0])) * 128.0;
    Int8StaticEpilogue e;
    e.act = act;
    e.bias.assign(static_cast<std::size_t>(n), 0);
    e.out_scale.resize(static_cast<std::size_t>(n));
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      const double s = sa * double(w.scale_at(j));
      e.out_scale[static_cast<std::size_t>(j)] = static_cast<float>(s);
      if (w.bias.empty()) continue;
      const double code = std::nearbyint(double(w.bias[static_cast<std::size_t>(j)]) / s);
      if (std::fabs(code) <= budget) e.bias[static_cast<std::size_t>(j)] = static_cast<std::int32_t>(code);
      else e.float_bias.push_back(j);
    }
    return e;
  }
};

// A prepared static W8A8 layer: weights and the epilogue of one activation grid.
struct Int8StaticLayer {
  Int8LinearWeights weights;
  Int8StaticEpilogue epilogue;
  Int8StaticLayer() = default;
  Int8StaticLayer(Int8LinearWeights w, const QuantParams& act)
      : weights(std::move(w)), epilogue(Int8StaticEpilogue::prepare(act, weights)) {}
};

// y [M, N] = x [M, K] W^T + b with a prepared epilogue e (from Int8StaticEpilogue::prepare
// for these weights w): x quantized on e.act, the GEMM, S_a * S_w[j] * acc (+ float bias).
inline void int8_linear_static(ConstMatrixView<float> x, const Int8StaticEpilogue& e, const Int8LinearWeights& w,
                               MatrixView<float> y, const Context& ctx = {}) {
  ETK_CHECK(w.n() > 0, "argument 'w' is empty (not built)");
  check::equal("epilogue", static_cast<std::ptrdiff_t>(e.out_scale.size()), "channels (= w.n())", w.n());
  check::equal("x", x.cols(), "cols (depth K, = w.k())", w.k());
  check::equal("y", y.rows(), "rows (= x.rows)", x.rows());
  check::equal("y", y.cols(), "cols (= w.n())", w.n());
  const std::ptrdiff_t m = x.rows(), k = w.k();
  // ctx's arena holds the activation codes; the GEMM runs on ctx's pool with scratch of its own.
  ScratchLease lease(ctx, std::size_t(m) * std::size_t(k));
  auto* codes = lease.data<std::uint8_t>();
  quantize<std::uint8_t>(x, e.act, matrix_view(codes, m, k, k));
  int8_gemm_f32<std::uint8_t>(matrix_view(static_cast<const std::uint8_t*>(codes), m, k, k), e.act.zero_point[0],
                              w.packed, e.bias, e.out_scale, y, Context{ctx.pool, nullptr});
  for (std::ptrdiff_t j : e.float_bias)
    for (std::ptrdiff_t i = 0; i < m; ++i) y(i, j) += w.bias[static_cast<std::size_t>(j)];
}

inline void int8_linear_static(ConstMatrixView<float> x, const Int8StaticLayer& layer, MatrixView<float> y,
                               const Context& ctx = {}) {
  int8_linear_static(x, layer.epilogue, layer.weights, y, ctx);
}

// The same with the activation grid act given per call (the epilogue built each call).
inline void int8_linear_static(ConstMatrixView<float> x, const QuantParams& act,
                               const Int8LinearWeights& w, MatrixView<float> y, const Context& ctx = {}) {
  int8_linear_static(x, Int8StaticEpilogue::prepare(act, w), w, y, ctx);
}

// Bytes of scratch int8_linear takes from ctx for m rows.
inline std::size_t int8_linear_scratch_bytes(std::ptrdiff_t m, const Int8LinearWeights& w) {
  return std::size_t(m) * std::size_t(w.k() + 4 * w.n() + 4);
}

// y [M, N] = x [M, K] W^T + b, activations quantized per row on the fly.
inline void int8_linear(ConstMatrixView<float> x, const Int8LinearWeights& w, MatrixView<float> y,
                        const Context& ctx = {}) {
  ETK_CHECK(w.n() > 0, "argument 'w' is empty (not built)");
  check::equal("x", x.cols(), "cols (depth K, = w.k())", w.k());
  check::equal("y", y.rows(), "rows (= x.rows)", x.rows());
  check::equal("y", y.cols(), "cols (= w.n())", w.n());
  const std::ptrdiff_t m = x.rows(), k = w.k(), n = w.n();
  ScratchLease lease(ctx, int8_linear_scratch_bytes(m, w));
  auto* acc = lease.data<std::int32_t>();
  auto* row_scale = reinterpret_cast<float*>(acc + m * n);
  auto* codes = reinterpret_cast<std::int8_t*>(row_scale + m);
  quantize_rows_s8(x, matrix_view(codes, m, k, k), row_scale);
  int8_gemm_s32<std::int8_t>(matrix_view(static_cast<const std::int8_t*>(codes), m, k, k), 0, w.packed, {},
                             matrix_view(acc, m, n, n));
  // y_ij = float(acc_ij) * (s_i * S_w[j]) (+ b_j), one contiguous pass per row.
  const bool per_tensor = w.scale.size() == 1;
  const float* sw = w.scale.data();
  const float* b = w.bias.empty() ? nullptr : w.bias.data();
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    const std::int32_t* a = acc + i * n;
    float* out = &y(i, 0);
    const float si = row_scale[i];
    if (per_tensor) {
      const float s = si * sw[0];
      for (std::ptrdiff_t j = 0; j < n; ++j) out[j] = static_cast<float>(a[j]) * s;
    } else {
      for (std::ptrdiff_t j = 0; j < n; ++j) out[j] = static_cast<float>(a[j]) * (si * sw[j]);
    }
    if (b)
      for (std::ptrdiff_t j = 0; j < n; ++j) out[j] += b[j];
  }
}

ETK_END_NAMESPACE
