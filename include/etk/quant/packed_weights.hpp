// etk/quant/packed_weights.hpp: the packed s8 weights of the int8 GEMM and the blocking
// constants every dispatch path shares.
//
// Outside the ISA namespace on purpose: the layout is the same for every path, so weights
// packed once serve the scalar, AVX2, AVX-512 and VNNI kernels and every translation unit.
// Weights: panels of kNR = 64 output columns; panel p holds, for each k-step s (4 depths),
// the 64 columns' 4 bytes w[j][4s .. 4s+3] (256 bytes per step, zero padding).
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"

namespace etk {
namespace int8_gemm_layout {

constexpr int kNR = 64;               // output columns per weight panel
constexpr std::ptrdiff_t kRowPanelsPerTask = 16;  // activation panels per task

// Column panels per block (one task's columns): a task takes the block's panels one at a
// time and sweeps its chunk of rows over each while the panel (ksteps * 256 bytes) is in
// L2; the block's 512 KiB bound keeps a task's weights in a share of L2 for its next chunk.
constexpr std::ptrdiff_t panels_per_block(std::ptrdiff_t ksteps) {
  return (512 * 1024) / (ksteps * 4 * kNR) > 1 ? (512 * 1024) / (ksteps * 4 * kNR) : 1;
}

}  // namespace int8_gemm_layout

// s8 weights [N, K] packed for the micro-kernels (one layout for every path), with their
// column sums and zero points. Pack once, multiply many times; a PackedWeightsS8 packed in
// one translation unit serves a GEMM called from any other, whatever its ISA flags.
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
    using int8_gemm_layout::kNR;
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
  std::ptrdiff_t panels() const { return (n_ + int8_gemm_layout::kNR - 1) / int8_gemm_layout::kNR; }
  const std::int8_t* panel(std::ptrdiff_t p) const {
    return data_.data() + p * ksteps() * 4 * int8_gemm_layout::kNR;
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

}  // namespace etk
