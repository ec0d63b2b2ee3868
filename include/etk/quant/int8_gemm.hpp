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
#include "etk/core/tensor_view.hpp"
#include "etk/quant/detail/int8_gemm_kernels.hpp"
#include "etk/quant/requantize.hpp"

ETK_BEGIN_NAMESPACE

// s8 weights [N, K] packed for the micro-kernel of the ISA this code is compiled for,
// with their column sums and zero points. Pack once, multiply many times.
class PackedWeightsS8 {
 public:
  PackedWeightsS8() = default;
  // w: [N, K] row-major s8. zero_point: one value or one per output channel (row of w),
  // each in [-128, 127].
  explicit PackedWeightsS8(ConstMatrixView<std::int8_t> w, std::vector<std::int32_t> zero_point = {0})
      : n_(w.rows()), k_(w.cols()), zero_point_(std::move(zero_point)) {
    ETK_CHECK(n_ > 0 && k_ > 0, "argument 'w' is empty ([" << n_ << ", " << k_ << "])");
    ETK_CHECK(zero_point_.size() == 1 || static_cast<std::ptrdiff_t>(zero_point_.size()) == n_,
              "argument 'zero_point' needs 1 or " << n_ << " values, got " << zero_point_.size());
    for (std::int32_t z : zero_point_)
      ETK_CHECK(z >= -128 && z <= 127, "argument 'zero_point' value " << z << " is outside [-128, 127]");
    // No GEMM accepts a deeper K (check_common: K * 128 * 128 <= 2^31 - 1 at the least
    // |a - a_zp| and |w - w_zp| any zero point allows), and rejecting it here keeps the
    // int32 column sums below (|sum| <= K * 128 < 2^24) exact.
    ETK_CHECK(k_ <= kMaxDepth, "argument 'w': depth K = " << k_ << " exceeds " << kMaxDepth
                                  << ", beyond which every int8 GEMM could overflow its int32 "
                                     "accumulator; split the depth");
    using quant_detail::gemm::kNR;
    const std::ptrdiff_t panels = (n_ + kNR - 1) / kNR;
    data_.assign(static_cast<std::size_t>(panels * ksteps() * 4 * kNR), 0);
    col_sum_.assign(static_cast<std::size_t>(n_), 0);
    for (std::ptrdiff_t j = 0; j < n_; ++j) {
      std::int8_t* panel = data_.data() + (j / kNR) * ksteps() * 4 * kNR + (j % kNR) * 4;
      std::int32_t sum = 0;
      for (std::ptrdiff_t t = 0; t < k_; ++t) {
        panel[(t / 4) * 4 * kNR + t % 4] = w(j, t);
        sum += w(j, t);
      }
      col_sum_[static_cast<std::size_t>(j)] = sum;
    }
  }

  // The deepest K any int8 GEMM accepts: floor((2^31 - 1) / (128 * 128)).
  static constexpr std::ptrdiff_t kMaxDepth = 131071;

  std::ptrdiff_t n() const { return n_; }
  std::ptrdiff_t k() const { return k_; }
  std::ptrdiff_t ksteps() const { return (k_ + 3) / 4; }
  std::ptrdiff_t panels() const { return (n_ + quant_detail::gemm::kNR - 1) / quant_detail::gemm::kNR; }
  const std::int8_t* panel(std::ptrdiff_t p) const {
    return data_.data() + p * ksteps() * 4 * quant_detail::gemm::kNR;
  }
  const std::vector<std::int32_t>& col_sum() const { return col_sum_; }
  const std::vector<std::int32_t>& zero_point() const { return zero_point_; }
  std::int32_t zero_point_at(std::ptrdiff_t j) const {
    return zero_point_.size() == 1 ? zero_point_[0] : zero_point_[static_cast<std::size_t>(j)];
  }

 private:
  std::ptrdiff_t n_ = 0, k_ = 0;
  std::vector<std::int8_t, Eigen::aligned_allocator<std::int8_t>> data_;
  std::vector<std::int32_t> col_sum_;
  std::vector<std::int32_t> zero_point_{0};
};

namespace quant_detail {
namespace gemm {

// Largest |a - a_zp| over the code type's range.
template <typename TA>
std::int64_t max_abs_centered(std::int32_t zp) {
  const std::int64_t lo = std::numeric_limits<TA>::min(), hi = std::numeric_limits<TA>::max();
  return std::max<std::int64_t>(zp - lo, hi - zp);
}

// Runs the blocked product; `ep` already holds the output-specific arrays (padded).
template <typename TA, typename TO>
void run(ConstMatrixView<TA> a, std::int32_t a_zp, const PackedWeightsS8& w,
         const std::vector<std::int32_t>& bias, Epilogue ep, MatrixView<TO> out) {
  const std::ptrdiff_t m = a.rows(), k = a.cols(), n = w.n(), ks = w.ksteps();
  const std::ptrdiff_t n_pad = w.panels() * kNR;
  constexpr std::int32_t kShift = std::is_signed<TA>::value ? 128 : 0;  // s8 -> u8
  const std::int64_t za = static_cast<std::int64_t>(a_zp) + kShift;

  // Column offsets (mod 2^32): bias - za * colsum + K * za * zw.
  std::vector<std::int32_t> col_offset(static_cast<std::size_t>(n_pad), 0), w_zp;
  bool any_wzp = false;
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    const std::int64_t zw = w.zero_point_at(j);
    any_wzp |= zw != 0;
    const std::int64_t off = (bias.empty() ? 0 : bias[static_cast<std::size_t>(j)]) -
                             za * w.col_sum()[static_cast<std::size_t>(j)] + k * za * zw;
    col_offset[static_cast<std::size_t>(j)] = static_cast<std::int32_t>(static_cast<std::uint32_t>(off));
  }
  if (any_wzp) {
    w_zp.assign(static_cast<std::size_t>(n_pad), 0);
    for (std::ptrdiff_t j = 0; j < n; ++j) w_zp[static_cast<std::size_t>(j)] = w.zero_point_at(j);
    ep.w_zp = w_zp.data();
  }
  ep.col_offset = col_offset.data();

  // Pack the activations: panels of kMR rows, k-steps of 4 bytes, u8, zero padding.
  const std::ptrdiff_t row_panels = (m + kMR - 1) / kMR;
  thread_local std::vector<std::uint8_t> apack;
  thread_local std::vector<std::int32_t> rowsum;
  apack.assign(static_cast<std::size_t>(row_panels * ks * 4 * kMR), 0);
  rowsum.assign(static_cast<std::size_t>(row_panels * kMR), 0);
  for (std::ptrdiff_t i = 0; i < m; ++i) {
    std::uint8_t* dst = apack.data() + (i / kMR) * ks * 4 * kMR + (i % kMR) * 4;
    const TA* src = a.data() + i * a.outerStride();
    std::int32_t sum = 0;
    for (std::ptrdiff_t t = 0; t < k; ++t) {
      const auto u = static_cast<std::uint8_t>(static_cast<std::int32_t>(src[t]) + kShift);
      dst[(t / 4) * 4 * kMR + t % 4] = u;
      sum += u;
    }
    rowsum[static_cast<std::size_t>(i)] = sum;
  }

  // Column blocks whose packed weights stay in L2 (~512 KiB), rows, then 64-column panels.
  const std::ptrdiff_t panel_bytes = ks * 4 * kNR;
  const std::ptrdiff_t block = std::max<std::ptrdiff_t>(1, (512 * 1024) / panel_bytes);
  alignas(64) std::int32_t tile[kMR * kNR];
  for (std::ptrdiff_t pb = 0; pb < w.panels(); pb += block) {
    const std::ptrdiff_t pe = std::min(w.panels(), pb + block);
    for (std::ptrdiff_t rp = 0; rp < row_panels; ++rp) {
      const std::uint8_t* ap = apack.data() + rp * ks * 4 * kMR;
      const std::ptrdiff_t mr = std::min<std::ptrdiff_t>(kMR, m - rp * kMR);
      for (std::ptrdiff_t p = pb; p < pe; ++p) {
        micro_kernel(ap, w.panel(p), ks, tile);
        const std::ptrdiff_t j0 = p * kNR, nr = std::min<std::ptrdiff_t>(kNR, n - j0);
        for (std::ptrdiff_t r = 0; r < mr; ++r) {
          const std::ptrdiff_t i = rp * kMR + r;
          finish_row(tile + r * kNR, nr, j0, rowsum[static_cast<std::size_t>(i)], ep,
                     out.data() + i * out.outerStride() + j0);
        }
      }
    }
  }
}

// Shapes, zero points and the overflow bound shared by every entry point.
template <typename TA>
void check_common(ConstMatrixView<TA> a, std::int32_t a_zp, const PackedWeightsS8& w,
                  const std::vector<std::int32_t>& bias, std::ptrdiff_t out_rows,
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
  ETK_CHECK(bias.empty() || static_cast<std::ptrdiff_t>(bias.size()) == w.n(),
            "argument 'bias' needs " << w.n() << " values (or none), got " << bias.size());
  std::int64_t wmax = 0, bmax = 0;
  for (std::int32_t z : w.zero_point()) wmax = std::max<std::int64_t>(wmax, std::max(128 + z, 127 - z));
  for (std::int32_t b : bias) bmax = std::max<std::int64_t>(bmax, std::abs(static_cast<std::int64_t>(b)));
  const std::int64_t bound = w.k() * max_abs_centered<TA>(a_zp) * wmax + bmax;
  ETK_CHECK(bound <= std::numeric_limits<std::int32_t>::max(),
            "argument 'a': depth K = " << w.k() << " could overflow the int32 accumulator (bound "
                                       << bound << " > 2^31 - 1); split the depth");
}

inline std::vector<std::int32_t> expand(const std::vector<std::int32_t>& v, std::ptrdiff_t n_pad) {
  std::vector<std::int32_t> out(static_cast<std::size_t>(n_pad), v.back());
  if (v.size() > 1) std::copy(v.begin(), v.end(), out.begin());
  return out;
}

}  // namespace gemm
}  // namespace quant_detail

// int32 accumulators: out[i][j] = sum_k (a - a_zp)(w - w_zp) + bias[j]. bias: N or empty.
template <typename TA>
void int8_gemm_s32(ConstMatrixView<TA> a, std::int32_t a_zero_point, const PackedWeightsS8& w,
                   const std::vector<std::int32_t>& bias, MatrixView<std::int32_t> out) {
  quant_detail::gemm::check_common(a, a_zero_point, w, bias, out.rows(), out.cols(), out.outerStride());
  quant_detail::gemm::run<TA, std::int32_t>(a, a_zero_point, w, bias, {}, out);
}

// Dequantized float output: out[i][j] = float(acc[i][j]) * out_scale[j] (one scale, or one
// per output column; typically S_a * S_w[j]).
template <typename TA>
void int8_gemm_f32(ConstMatrixView<TA> a, std::int32_t a_zero_point, const PackedWeightsS8& w,
                   const std::vector<std::int32_t>& bias, const std::vector<float>& out_scale,
                   MatrixView<float> out) {
  quant_detail::gemm::check_common(a, a_zero_point, w, bias, out.rows(), out.cols(), out.outerStride());
  ETK_CHECK(out_scale.size() == 1 || static_cast<std::ptrdiff_t>(out_scale.size()) == w.n(),
            "argument 'out_scale' needs 1 or " << w.n() << " values, got " << out_scale.size());
  for (float s : out_scale) check::positive_finite("out_scale", s);
  const std::ptrdiff_t n_pad = w.panels() * quant_detail::gemm::kNR;
  std::vector<float> scale(static_cast<std::size_t>(n_pad), out_scale.back());
  if (out_scale.size() > 1) std::copy(out_scale.begin(), out_scale.end(), scale.begin());
  quant_detail::gemm::Epilogue ep;
  ep.scale = scale.data();
  quant_detail::gemm::run<TA, float>(a, a_zero_point, w, bias, ep, out);
}

// Requantized 8-bit output (TO = uint8_t or int8_t; rq's range must fit TO).
template <typename TA, typename TO>
void int8_gemm(ConstMatrixView<TA> a, std::int32_t a_zero_point, const PackedWeightsS8& w,
               const std::vector<std::int32_t>& bias, const Requantization& rq, MatrixView<TO> out) {
  static_assert(std::is_same<TO, std::uint8_t>::value || std::is_same<TO, std::int8_t>::value,
                "etk: requantized output is uint8_t or int8_t");
  quant_detail::gemm::check_common(a, a_zero_point, w, bias, out.rows(), out.cols(), out.outerStride());
  check::requantization("rq", rq, w.n());
  ETK_CHECK(rq.qmin >= std::numeric_limits<TO>::min() && rq.qmax <= std::numeric_limits<TO>::max(),
            "argument 'rq': output range [" << rq.qmin << ", " << rq.qmax << "] does not fit the output type");
  const std::ptrdiff_t n_pad = w.panels() * quant_detail::gemm::kNR;
  const std::vector<std::int32_t> mult = quant_detail::gemm::expand(rq.multiplier, n_pad);
  const std::vector<std::int32_t> shift = quant_detail::gemm::expand(rq.shift, n_pad);
  quant_detail::gemm::Epilogue ep;
  ep.multiplier = mult.data();
  ep.shift = shift.data();
  ep.zero_point = rq.zero_point;
  ep.qmin = rq.qmin;
  ep.qmax = rq.qmax;
  quant_detail::gemm::run<TA, TO>(a, a_zero_point, w, bias, ep, out);
}

ETK_END_NAMESPACE
