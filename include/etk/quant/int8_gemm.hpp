// etk/quant/int8_gemm.hpp: 8-bit integer matrix product with requantization.
//
//     acc[i][j] = sum_k (a[i][k] - a_zp) * (w[j][k] - w_zp[j]) + bias[j]        (exact int32)
// a: [M, K] activations, u8 or s8, row-major view; w: [N, K] s8 weights (one row per output
// channel, as a linear layer stores them), packed once into PackedWeightsS8. Outputs:
//   int8_gemm_s32   the int32 accumulators;
//   int8_gemm_f32   acc * out_scale[j] in float (out_scale = S_a * S_w[j]: dequantized);
//   int8_gemm       requantized u8/s8 codes (Requantization: Q0.31 multiplier + shift,
//                   gemmlowp rounding), per tensor or per output channel.
// The zero-point cross terms (a_zp * colsum(w), w_zp * rowsum(a), K * a_zp * w_zp) and the
// bias are folded into per-column offsets (and one per-row term when some w_zp != 0) before
// the product; the micro-kernel only computes raw u8 x s8 sums (signed activations are
// shifted by +128, which moves their zero point by 128).
//
// Overflow: every accumulation is int32 modulo 2^32 (no saturating instruction is used), so
// the result is exact whenever the true accumulator fits in int32. The entry points check
//     K * max|a - a_zp| * max|w - w_zp| + max|bias| <= 2^31 - 1
// and reject larger depths (e.g. K <= 65793 for u8 x s8 with zero zero points, K <= 131070
// for s8 x s8 with zero zero points and no bias).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <type_traits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/context.hpp"
#include "etk/core/span.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/detail/int8_gemm_kernels.hpp"
#include "etk/quant/packed_weights.hpp"
#include "etk/quant/requantize.hpp"

ETK_BEGIN_NAMESPACE

namespace detail::quant {
namespace gemm {

// Largest |a - a_zp| over the code type's range.
template <typename TA>
std::int64_t max_abs_centered(std::int32_t zp) {
  const std::int64_t lo = std::numeric_limits<TA>::min(), hi = std::numeric_limits<TA>::max();
  return std::max<std::int64_t>(zp - lo, hi - zp);
}

// Shapes, zero points and the overflow bound shared by every entry point.
template <typename TA>
void check_common(ConstMatrixView<TA> a, std::int32_t a_zp, const PackedWeightsS8& w,
                  Span<std::int32_t> bias, std::ptrdiff_t out_rows,
                  std::ptrdiff_t out_cols, std::ptrdiff_t out_stride) {
  static_assert(std::is_same<TA, std::uint8_t>::value || std::is_same<TA, std::int8_t>::value,
                "etk: int8 GEMM activations are uint8_t or int8_t");
  ETK_CHECK(a.rows() > 0 && a.cols() > 0, "argument 'a' is empty ([" << a.rows() << ", " << a.cols() << "])");
  ETK_CHECK(w.n() > 0, "argument 'w' is empty (not packed)");
  check::equal("a", a.cols(), "cols (depth K, = w.k())", w.k());
  check::equal("out", out_rows, "rows", a.rows());
  check::equal("out", out_cols, "cols", w.n());
  check::rows_disjoint("out", out_rows, out_cols, out_stride);
  ETK_CHECK(a_zp >= std::numeric_limits<TA>::min() && a_zp <= std::numeric_limits<TA>::max(),
            "argument 'a_zero_point' " << a_zp << " is outside the activation code range");
  ETK_CHECK(bias.empty() || bias.size() == w.n(),
            "argument 'bias' needs " << w.n() << " values (or none), got " << bias.size());
  std::int64_t wmax = 0, bmax = 0;
  for (std::int32_t z : w.zero_point()) wmax = std::max<std::int64_t>(wmax, std::max(128 + z, 127 - z));
  for (std::int32_t b : bias) bmax = std::max<std::int64_t>(bmax, std::abs(static_cast<std::int64_t>(b)));
  const std::int64_t bound = w.k() * max_abs_centered<TA>(a_zp) * wmax + bmax;
  ETK_CHECK(bound <= std::numeric_limits<std::int32_t>::max(),
            "argument 'a': depth K = " << w.k() << " could overflow the int32 accumulator (bound "
                                       << bound << " > 2^31 - 1); split the depth");
}

// One call: plans and leases the scratch, lets `fill` store the epilogue's per-column
// arrays (n_pad entries each) into it, then runs the active path.
template <typename TA, typename TO, typename Fill>
void execute(ConstMatrixView<TA> a, std::int32_t a_zp, const PackedWeightsS8& w,
             Span<std::int32_t> bias, MatrixView<TO> out, const Context& ctx, Fill fill) {
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = w.n();
  ScratchLease lease(ctx, scratch_bytes(m, k, n));
  const Scratch s = carve(lease.data(), m, k, n);
  Epilogue ep;
  fill(s, ep);
  run<TA, TO>(a.data(), m, k, a.outerStride(), a_zp, w, bias.empty() ? nullptr : bias.data(), ep,
              out.data(), out.outerStride(), s, ctx);
}

// v (1 value or one per column) expanded to n_pad entries at dst.
template <typename T>
void expand(Span<T> v, std::ptrdiff_t n_pad, T* dst) {
  for (std::ptrdiff_t j = 0; j < n_pad; ++j) dst[j] = v.size() > 1 && j < v.size() ? v[j] : v[v.size() - 1];
}

}  // namespace gemm
}  // namespace detail::quant

// Scratch bytes of one int8 GEMM call with activations [m, k] and n output columns, the
// same for every output form and every path: a ScratchArena of this size in the Context
// makes the call allocation-free.
inline std::size_t int8_gemm_scratch_bytes(std::ptrdiff_t m, std::ptrdiff_t k, std::ptrdiff_t n) {
  ETK_CHECK(m > 0 && k > 0 && n > 0, "arguments 'm', 'k', 'n' must be positive, got " << m << ", " << k << ", " << n);
  return detail::quant::gemm::scratch_bytes(m, k, n);
}

// Scales and biases are Spans: a std::vector, std::array, Eigen vector, braced list or
// pointer + size. Every form runs on ctx: its pool threads the (column block x row panels) tiles, its arena
// holds the scratch. The result is the same for any thread count and any path.

// int32 accumulators: out[i][j] = sum_k (a - a_zp)(w - w_zp) + bias[j]. bias: N or empty.
template <typename TA>
void int8_gemm_s32(ConstMatrixView<TA> a, std::int32_t a_zero_point, const PackedWeightsS8& w,
                   Span<std::int32_t> bias, MatrixView<std::int32_t> out,
                   const Context& ctx = Context{}) {
  detail::quant::gemm::check_common(a, a_zero_point, w, bias, out.rows(), out.cols(), out.outerStride());
  detail::quant::gemm::execute<TA, std::int32_t>(a, a_zero_point, w, bias, out, ctx,
                                                [](const detail::quant::gemm::Scratch&, detail::quant::gemm::Epilogue&) {});
}

// Dequantized float output: out[i][j] = float(acc[i][j]) * out_scale[j] (one scale, or one
// per output column; typically S_a * S_w[j]).
template <typename TA>
void int8_gemm_f32(ConstMatrixView<TA> a, std::int32_t a_zero_point, const PackedWeightsS8& w,
                   Span<std::int32_t> bias, Span<float> out_scale,
                   MatrixView<float> out, const Context& ctx = Context{}) {
  detail::quant::gemm::check_common(a, a_zero_point, w, bias, out.rows(), out.cols(), out.outerStride());
  ETK_CHECK(out_scale.size() == 1 || out_scale.size() == w.n(),
            "argument 'out_scale' needs 1 or " << w.n() << " values, got " << out_scale.size());
  for (float s : out_scale) check::positive_finite("out_scale", s);
  const std::ptrdiff_t n_pad = w.panels() * int8_gemm_layout::kNR;
  detail::quant::gemm::execute<TA, float>(
      a, a_zero_point, w, bias, out, ctx, [&](const detail::quant::gemm::Scratch& s, detail::quant::gemm::Epilogue& ep) {
        auto* scale = reinterpret_cast<float*>(s.extra0);
        detail::quant::gemm::expand(out_scale, n_pad, scale);
        ep.scale = scale;
      });
}

// Requantized 8-bit output (TO = uint8_t or int8_t; rq's range must fit TO).
template <typename TA, typename TO>
void int8_gemm(ConstMatrixView<TA> a, std::int32_t a_zero_point, const PackedWeightsS8& w,
               Span<std::int32_t> bias, const Requantization& rq, MatrixView<TO> out,
               const Context& ctx = Context{}) {
  static_assert(std::is_same<TO, std::uint8_t>::value || std::is_same<TO, std::int8_t>::value,
                "etk: requantized output is uint8_t or int8_t");
  detail::quant::gemm::check_common(a, a_zero_point, w, bias, out.rows(), out.cols(), out.outerStride());
  check::requantization("rq", rq, w.n());
  ETK_CHECK(rq.qmin >= std::numeric_limits<TO>::min() && rq.qmax <= std::numeric_limits<TO>::max(),
            "argument 'rq': output range [" << rq.qmin << ", " << rq.qmax << "] does not fit the output type");
  const std::ptrdiff_t n_pad = w.panels() * int8_gemm_layout::kNR;
  detail::quant::gemm::execute<TA, TO>(
      a, a_zero_point, w, bias, out, ctx, [&](const detail::quant::gemm::Scratch& s, detail::quant::gemm::Epilogue& ep) {
        detail::quant::gemm::expand(Span<std::int32_t>(rq.multiplier), n_pad, s.extra0);
        detail::quant::gemm::expand(Span<std::int32_t>(rq.shift), n_pad, s.extra1);
        ep.multiplier = s.extra0;
        ep.shift = s.extra1;
        ep.zero_point = rq.zero_point;
        ep.qmin = rq.qmin;
        ep.qmax = rq.qmax;
      });
}

ETK_END_NAMESPACE
