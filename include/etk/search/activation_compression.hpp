// etk/search/activation_compression.hpp: a codec for activations moved between layers.
//
// Activation rows [rows, C] are stored in a real byte buffer, so the bytes moved are
// measured, not estimated:
//  1. optional dimension reduction z = (x - mean) E to k coefficients (PCA, or the
//     compression-aware projection that minimises the next layer's output error; see
//     etk/search/projection.hpp), on etk's dispatched fp32 GEMM with E and D packed
//     once at calibration (etk/core/gemm_f32.hpp);
//  2. the k coded channels are ranked by importance from calibration statistics,
//     range_j^2 * w_j with range_j the calibration range of channel j and w_j the squared
//     norm of what one unit of error in it does downstream (its row of D W with the next
//     layer's weight W, of D without W, 1 without projection), and cut into groups of
//     `group_size` channels, most important first (inside a group channels keep their
//     order; with a projection the permutation is folded into E and D, so coefficients
//     come out already grouped and no gather is needed);
//  3. each group gets its own bit-width (2..8): by default the least predicted error
//     sum_j range_j^2 w_j / (12 (2^b - 1)^2) for a target average width, solved exactly
//     with etk/search/allocation.hpp;
//  4. each channel has a static affine grid from its calibration range (etk/quant's
//     QuantParams, unsigned codes), so rows carry no per-row scales; values outside the
//     calibrated range saturate;
//  5. each group's codes are packed at its width (etk/core/bit_packing.hpp), starting
//     on a byte boundary. A row takes row_bytes() = sum_g ceil(group_size * bits_g / 8)
//     bytes and the buffer rows * row_bytes() bytes, exactly.
// Decoding reverses the steps. allocate_compression_ratios() then chooses a codec per
// layer (greedy, by measured damage per byte saved) under a total byte budget.
// Execution on an etk::Context: blocks of 32 rows are the tasks on the caller's pool (no
// thread created, bit-identical output for any thread count), each worker's buffers come
// from the call's scratch (encode_scratch_bytes / decode_scratch_bytes plan it). Per
// group, etk/quant's column kernel quantizes the block into L1 scratch and the packer
// packs it (one stream for a single byte-aligned group);
// decoding unpacks and dequantizes per group the same way. Scattered groups are permuted
// per row into group order before encoding, and unpacked straight into channel order when
// decoding (detail/permute_kernels.hpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/context.hpp"
#include "etk/core/gemm_f32.hpp"
#include "etk/core/packed_weights_f32.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/uniform.hpp"
#include "etk/search/allocation.hpp"
#include "etk/core/bit_packing.hpp"
#include "etk/core/detail/bit_packing_kernels.hpp"
#include "etk/search/detail/permute_kernels.hpp"
#include "etk/search/projection.hpp"

ETK_BEGIN_NAMESPACE
namespace search {

enum class ProjectionKind { none, pca, compression_aware };

struct CodecOptions {
  ProjectionKind projection = ProjectionKind::none;
  std::ptrdiff_t reduced_dim = 0;  // k, with a projection (0: keep all C channels)
  std::ptrdiff_t group_size = 0;   // coded channels per group, must divide k (0: one group)
  double average_bits = 4.0;       // target width over the coded values
  std::vector<int> bit_choices = {8, 7, 6, 5, 4, 3, 2};  // widths a group may take
  std::vector<int> group_bits;     // one width per group: overrides average_bits
};

class ActivationCodec {
 public:
  std::ptrdiff_t channels() const { return channels_; }
  std::ptrdiff_t coded_dim() const { return coded_dim_; }
  std::ptrdiff_t group_size() const { return group_size_; }
  std::ptrdiff_t groups() const { return std::ptrdiff_t(grids_.size()); }
  int group_bits(std::ptrdiff_t g) const { return grids_[std::size_t(g)].bits; }
  bool projected() const { return projected_; }
  const LinearProjection& projection() const { return projection_; }
  // order()[p]: the coded channel stored at position p (groups are consecutive runs).
  const std::vector<std::ptrdiff_t>& order() const { return order_; }
  const QuantParams& grid(std::ptrdiff_t g) const { return grids_[std::size_t(g)]; }

  std::size_t row_bytes() const { return row_bytes_; }
  std::size_t encoded_bytes(std::ptrdiff_t rows) const { return std::size_t(rows) * row_bytes_; }
  // Average stored bits per activation value (per one of the C original channels).
  double bits_per_value() const { return 8.0 * double(row_bytes_) / double(channels_); }

  // Scratch bytes of encode / decode of `rows` rows on ctx: one block's buffers per
  // worker of ctx's pool. A ScratchArena of this size in ctx makes the call allocation-free
  // (plan, then run).
  std::size_t encode_scratch_bytes(std::ptrdiff_t rows, const Context& ctx = Context{}) const {
    return scratch_plan(rows).bytes * static_cast<std::size_t>(ctx.concurrency());
  }
  std::size_t decode_scratch_bytes(std::ptrdiff_t rows, const Context& ctx = Context{}) const {
    return scratch_plan(rows).bytes * static_cast<std::size_t>(ctx.concurrency());
  }

  // out must hold encoded_bytes(x.rows()) bytes. Blocks of kBlock rows are the tasks on
  // ctx's pool; each writes only its own rows of out, so the bytes are the same for any
  // thread count.
  void encode(ConstMatrixView<float> x, std::uint8_t* out, std::size_t out_bytes,
              const Context& ctx = Context{}) const {
    ETK_CHECK(x.rows() > 0 && x.cols() == channels_,
              "argument 'x' must be [rows >= 1, " << channels_ << "], got [" << x.rows() << ", "
                                                  << x.cols() << "]");
    ETK_CHECK(out != nullptr && out_bytes == encoded_bytes(x.rows()),
              "argument 'out' must hold " << encoded_bytes(x.rows()) << " bytes, got "
                                          << out_bytes);
    const ScratchPlan plan = scratch_plan(x.rows());
    ScratchLease lease(ctx, encode_scratch_bytes(x.rows(), ctx));
    std::atomic<bool> nan{false};
    const std::ptrdiff_t blocks = (x.rows() + kBlock - 1) / kBlock;
    parallel_for(ctx, blocks, [&](std::ptrdiff_t task, int worker) {
      const Buffers s = plan.carve(lease.data<unsigned char>() + std::size_t(worker) * plan.bytes);
      const std::ptrdiff_t r0 = task * kBlock, n = std::min(kBlock, x.rows() - r0);
      const ConstMatrixView<float> xb = matrix_view(x.data() + r0 * x.outerStride(), n, channels_, x.outerStride());
      if (projected_) {
        Eigen::Map<RowMatrixXf> centered(s.centered, n, channels_);
        centered = xb.rowwise() - projection_.mean;
        gemm_f32(matrix_view(static_cast<const float*>(s.centered), n, channels_, channels_), encoder_packed_,
                 matrix_view(s.z, n, coded_dim_, coded_dim_));
      }
      const ConstMatrixView<float> z = projected_ ? matrix_view(static_cast<const float*>(s.z), n, coded_dim_, coded_dim_) : xb;
      // Scattered groups: each row's values permuted into group order first (rows read
      // in sequence, which the hardware prefetchers follow).
      const float* v = z.data();
      std::ptrdiff_t vstride = z.outerStride();
      if (!contiguous_) {
        for (std::ptrdiff_t r = 0; r < n; ++r) to_groups_.apply(z.data() + r * z.outerStride(), s.values + r * coded_dim_);
        v = s.values;
        vstride = coded_dim_;
      }
      bool block_nan = false;
      for (std::ptrdiff_t g = 0; g < groups(); ++g) {
        // Quantize the group's block of rows into L1 scratch, then pack it.
        const std::ptrdiff_t c0 = g * group_size_;
        block_nan |= etk::detail::quant::uq::quantize_cols<std::uint8_t>(
            v + c0, n, group_size_, vstride, group_scale_.data() + c0, group_inv_scale_.data() + c0,
            group_zero_point_.data() + c0, 0, grids_[std::size_t(g)].qmax(), s.codes, group_size_);
        if (rows_are_one_stream())
          etk::detail::bit_packing::pack_bits_fast(s.codes, std::size_t(n * group_size_), group_bits(g),
                                             out + std::size_t(r0) * row_bytes_);
        else
          for (std::ptrdiff_t r = 0; r < n; ++r)
            etk::detail::bit_packing::pack_bits_fast(s.codes + r * group_size_, std::size_t(group_size_), group_bits(g),
                                               out + std::size_t(r0 + r) * row_bytes_ + offsets_[std::size_t(g)]);
      }
      if (block_nan) nan.store(true, std::memory_order_relaxed);
    });
    ETK_CHECK(!nan.load(), "argument 'x' holds NaN");
  }

  std::vector<std::uint8_t> encode(ConstMatrixView<float> x, const Context& ctx = Context{}) const {
    std::vector<std::uint8_t> out(encoded_bytes(x.rows()));
    encode(x, out.data(), out.size(), ctx);
    return out;
  }

  // x: [rows, C] with in_bytes == encoded_bytes(rows). Tasks as in encode.
  void decode(const std::uint8_t* in, std::size_t in_bytes, MatrixView<float> x,
              const Context& ctx = Context{}) const {
    ETK_CHECK(x.rows() > 0 && x.cols() == channels_,
              "argument 'x' must be [rows >= 1, " << channels_ << "], got [" << x.rows() << ", "
                                                  << x.cols() << "]");
    ETK_CHECK(in != nullptr && in_bytes == encoded_bytes(x.rows()),
              "argument 'in' must hold " << encoded_bytes(x.rows()) << " bytes for " << x.rows()
                                         << " rows, got " << in_bytes);
    const ScratchPlan plan = scratch_plan(x.rows());
    ScratchLease lease(ctx, decode_scratch_bytes(x.rows(), ctx));
    const std::ptrdiff_t blocks = (x.rows() + kBlock - 1) / kBlock;
    parallel_for(ctx, blocks, [&](std::ptrdiff_t task, int worker) {
      const Buffers s = plan.carve(lease.data<unsigned char>() + std::size_t(worker) * plan.bytes);
      const std::ptrdiff_t r0 = task * kBlock, n = std::min(kBlock, x.rows() - r0);
      float* zdata = projected_ ? s.z : x.data() + r0 * x.outerStride();
      const std::ptrdiff_t zstride = projected_ ? coded_dim_ : x.outerStride();
      if (!contiguous_) {
        // Scattered groups: codes unpacked into their channels, then one dequantization.
        for (std::ptrdiff_t r = 0; r < n; ++r)
          for (std::ptrdiff_t g = 0; g < groups(); ++g)
            detail::unpack_scatter(in + std::size_t(r0 + r) * row_bytes_ + offsets_[std::size_t(g)],
                                   channel_of_.data() + g * group_size_, std::size_t(group_size_),
                                   group_bits(g), s.codes + r * coded_dim_);
        etk::detail::quant::uq::dequantize_cols<std::uint8_t>(s.codes, n, coded_dim_, coded_dim_,
                                                        scale_.data(), zero_point_.data(), zdata, zstride);
      } else {
        for (std::ptrdiff_t g = 0; g < groups(); ++g) {
          // Unpack the group's block of rows into L1 scratch, then dequantize it.
          if (rows_are_one_stream())
            etk::detail::bit_packing::unpack_bits_fast(in + std::size_t(r0) * row_bytes_, std::size_t(n * group_size_),
                                                 group_bits(g), s.codes);
          else
            for (std::ptrdiff_t r = 0; r < n; ++r)
              etk::detail::bit_packing::unpack_bits_fast(in + std::size_t(r0 + r) * row_bytes_ + offsets_[std::size_t(g)],
                                                   std::size_t(group_size_), group_bits(g), s.codes + r * group_size_);
          const std::ptrdiff_t c0 = g * group_size_;
          etk::detail::quant::uq::dequantize_cols<std::uint8_t>(s.codes, n, group_size_, group_size_,
                                                          group_scale_.data() + c0, group_zero_point_.data() + c0,
                                                          zdata + c0, zstride);
        }
      }
      if (projected_) {
        gemm_f32(matrix_view(static_cast<const float*>(s.z), n, coded_dim_, coded_dim_), decoder_packed_,
                 matrix_view(x.data() + r0 * x.outerStride(), n, channels_, x.outerStride()));
        x.middleRows(r0, n).rowwise() += projection_.mean;
      }
    });
  }

  RowMatrixXf decode(const std::vector<std::uint8_t>& in, std::ptrdiff_t rows, const Context& ctx = Context{}) const {
    RowMatrixXf x(rows, channels_);
    decode(in.data(), in.size(), matrix_view(x.data(), rows, channels_, channels_), ctx);
    return x;
  }

 private:
  friend ActivationCodec calibrate_codec(ConstMatrixView<float>, const CodecOptions&,
                                         ConstMatrixView<float>);
  static constexpr std::ptrdiff_t kBlock = 32;  // rows per task: scratch stays in L1/L2

  // One block's buffers, carved from a worker's share of the call's scratch (uninitialised:
  // every entry read was written): the centred rows and their coefficients (projection),
  // the values in group order (encoding scattered groups), and codes (one group's, or
  // when decoding scattered groups every channel's).
  struct Buffers {
    float* centered = nullptr;
    float* z = nullptr;
    float* values = nullptr;
    std::uint8_t* codes = nullptr;
  };
  struct ScratchPlan {
    std::size_t centered = 0, z = 0, values = 0, codes = 0, bytes = 0;  // byte sizes, 64-aligned
    Buffers carve(unsigned char* p) const {
      Buffers b;
      b.centered = reinterpret_cast<float*>(p);
      b.z = reinterpret_cast<float*>(p + centered);
      b.values = reinterpret_cast<float*>(p + centered + z);
      b.codes = p + centered + z + values;
      return b;
    }
  };
  ScratchPlan scratch_plan(std::ptrdiff_t rows) const {
    ETK_CHECK(rows > 0, "argument 'rows' must be >= 1, got " << rows);
    const auto n = static_cast<std::size_t>(std::min(kBlock, rows));
    const auto round = [](std::size_t b) { return (b + 63) / 64 * 64; };
    ScratchPlan p;
    if (projected_) {
      p.centered = round(n * std::size_t(channels_) * sizeof(float));
      p.z = round(n * std::size_t(coded_dim_) * sizeof(float));
    }
    if (!contiguous_) p.values = round(n * std::size_t(coded_dim_) * sizeof(float));
    p.codes = round(n * std::size_t(contiguous_ ? group_size_ : coded_dim_));
    p.bytes = p.centered + p.z + p.values + p.codes;
    return p;
  }

  // One group whose rows are whole bytes: a block of rows is one continuous bit stream.
  bool rows_are_one_stream() const { return groups() == 1 && (group_size_ * group_bits(0)) % 8 == 0; }

  std::ptrdiff_t channels_ = 0;
  std::ptrdiff_t coded_dim_ = 0;
  std::ptrdiff_t group_size_ = 0;
  bool projected_ = false;
  bool contiguous_ = true;  // order_ is the identity
  LinearProjection projection_;
  PackedWeightsF32 encoder_packed_, decoder_packed_;  // projection_'s, for the fp32 GEMM
  std::vector<std::ptrdiff_t> order_;
  std::vector<QuantParams> grids_;     // per group: per-column grid (axis 1), unsigned
  std::vector<std::size_t> offsets_;   // per group: byte offset inside a row
  // For the kernels, per coded channel in group order: the grid's scale, its reciprocal
  // (the quantizer's quotient estimate) and zero point. With scattered groups: the
  // permutation channel order -> group order (encoding), and for decoding the channel of
  // each group position and the scales and zero points in channel order.
  std::vector<float> group_scale_, group_inv_scale_, scale_;
  std::vector<std::int32_t> group_zero_point_, zero_point_, channel_of_;
  detail::FloatPermutation to_groups_;
  std::size_t row_bytes_ = 0;
};

namespace detail {
inline void check_codec_options(const CodecOptions& o, std::ptrdiff_t channels) {
  ETK_CHECK(o.projection == ProjectionKind::none || (o.reduced_dim >= 1 && o.reduced_dim <= channels),
            "argument 'options.reduced_dim' must be in [1, " << channels << "] with a projection, got "
                                                             << o.reduced_dim);
  ETK_CHECK(o.projection != ProjectionKind::none || o.reduced_dim == 0 || o.reduced_dim == channels,
            "argument 'options.reduced_dim' needs a projection (got " << o.reduced_dim << ")");
  const std::ptrdiff_t k = o.projection == ProjectionKind::none ? channels : o.reduced_dim;
  ETK_CHECK(o.group_size >= 0 && (o.group_size == 0 || k % o.group_size == 0),
            "argument 'options.group_size' (" << o.group_size << ") must divide the "
                                              << k << " coded channels");
  ETK_CHECK(!o.bit_choices.empty(), "argument 'options.bit_choices' is an empty candidate list");
  for (int b : o.bit_choices) check::bits_in_range("options.bit_choices", b, 2, 8);
  for (int b : o.group_bits) check::bits_in_range("options.group_bits", b, 2, 8);
}
}  // namespace detail

// Builds a codec from calibration rows [N, C]. next_weight ([C, C_out], y = x W) is the
// layer that consumes the activation: needed by the compression-aware projection, and
// used by every variant to weigh channel importance; pass an empty (0 x 0) view without.
inline ActivationCodec calibrate_codec(ConstMatrixView<float> calib, const CodecOptions& opt,
                                       ConstMatrixView<float> next_weight) {
  ETK_CHECK(calib.rows() > 0 && calib.cols() > 0,
            "argument 'calib' is empty ([" << calib.rows() << ", " << calib.cols() << "])");
  check::finite("calib", calib.data(), calib.rows(), calib.cols(), calib.outerStride());
  const std::ptrdiff_t channels = calib.cols();
  detail::check_codec_options(opt, channels);
  const bool has_w = next_weight.size() > 0;
  ETK_CHECK(!has_w || next_weight.rows() == channels,
            "argument 'next_weight' must have " << channels << " rows, got " << next_weight.rows());
  ETK_CHECK(has_w || opt.projection != ProjectionKind::compression_aware,
            "argument 'next_weight' is needed by the compression-aware projection");
  if (has_w)
    check::finite("next_weight", next_weight.data(), next_weight.rows(), next_weight.cols(),
                  next_weight.outerStride());

  ActivationCodec c;
  c.channels_ = channels;
  c.projected_ = opt.projection != ProjectionKind::none;
  if (opt.projection == ProjectionKind::pca) c.projection_ = pca_projection(calib, opt.reduced_dim);
  if (opt.projection == ProjectionKind::compression_aware)
    c.projection_ = compression_aware_projection(calib, next_weight, opt.reduced_dim);
  c.coded_dim_ = c.projected_ ? opt.reduced_dim : channels;
  const std::ptrdiff_t k = c.coded_dim_;
  c.group_size_ = opt.group_size == 0 ? k : opt.group_size;
  const std::ptrdiff_t groups = k / c.group_size_;
  ETK_CHECK(opt.group_bits.empty() || std::ptrdiff_t(opt.group_bits.size()) == groups,
            "argument 'options.group_bits' has " << opt.group_bits.size() << " entries, expected one per group ("
                                                 << groups << ")");

  // Calibration statistics of the coded channels.
  RowMatrixXf z = calib;
  if (c.projected_) z = (calib.rowwise() - c.projection_.mean) * c.projection_.encoder;
  const Eigen::RowVectorXf lo0 = z.colwise().minCoeff(), hi0 = z.colwise().maxCoeff();
  // Downstream gain of each coded channel: the squared norm of its row of D W (D = I
  // without projection), i.e. diag(D W W^T D^T), computed through the C x C Gram matrix.
  Eigen::VectorXd weight = Eigen::VectorXd::Ones(k);
  const Eigen::MatrixXd gram = has_w ? Eigen::MatrixXd(next_weight.cast<double>() * next_weight.cast<double>().transpose())
                                     : Eigen::MatrixXd::Identity(channels, channels);
  if (c.projected_) {
    const Eigen::MatrixXd d = c.projection_.decoder.cast<double>();
    weight = (d * gram).cwiseProduct(d).rowwise().sum();
  } else if (has_w) {
    weight = gram.diagonal();
  }
  std::vector<double> importance(static_cast<std::size_t>(k));
  for (std::ptrdiff_t j = 0; j < k; ++j) {
    const double range = double(hi0(j)) - double(lo0(j));
    importance[std::size_t(j)] = range * range * weight(j) / 12.0;
  }
  c.order_.resize(std::size_t(k));
  std::iota(c.order_.begin(), c.order_.end(), std::ptrdiff_t(0));
  std::stable_sort(c.order_.begin(), c.order_.end(), [&](std::ptrdiff_t a, std::ptrdiff_t b) {
    return importance[std::size_t(a)] > importance[std::size_t(b)];
  });
  // Inside a group the order does not matter (one width): keep channel order there, so
  // a single group, or groups that happen to be runs, need no gather.
  for (std::ptrdiff_t g = 0; g < groups; ++g)
    std::sort(c.order_.begin() + g * c.group_size_, c.order_.begin() + (g + 1) * c.group_size_);
  // A projection absorbs the permutation: reorder the encoder's columns and the decoder's
  // rows so that coefficients come out in group order.
  Eigen::RowVectorXf lo = lo0, hi = hi0;
  if (c.projected_) {
    LinearProjection p = c.projection_;
    std::vector<double> imp(importance.size());
    for (std::ptrdiff_t j = 0; j < k; ++j) {
      const std::ptrdiff_t from = c.order_[std::size_t(j)];
      p.encoder.col(j) = c.projection_.encoder.col(from);
      p.decoder.row(j) = c.projection_.decoder.row(from);
      lo(j) = lo0(from);
      hi(j) = hi0(from);
      imp[std::size_t(j)] = importance[std::size_t(from)];
      c.order_[std::size_t(j)] = j;
    }
    c.projection_ = std::move(p);
    importance = std::move(imp);
    const LinearProjection& q = c.projection_;
    c.encoder_packed_ = PackedWeightsF32::from_kn(
        matrix_view(q.encoder.data(), q.encoder.rows(), q.encoder.cols(), q.encoder.cols()));
    c.decoder_packed_ = PackedWeightsF32::from_kn(
        matrix_view(q.decoder.data(), q.decoder.rows(), q.decoder.cols(), q.decoder.cols()));
  }
  c.contiguous_ = true;
  for (std::ptrdiff_t j = 0; j < k; ++j) c.contiguous_ = c.contiguous_ && c.order_[std::size_t(j)] == j;

  // Bits per group: given, or the exact least predicted error at the target average.
  std::vector<int> bits = opt.group_bits;
  if (bits.empty()) {
    std::vector<int> choices = opt.bit_choices;
    std::sort(choices.begin(), choices.end(), std::greater<int>());
    choices.erase(std::unique(choices.begin(), choices.end()), choices.end());
    ETK_CHECK(opt.average_bits >= choices.back() - 1e-12 && opt.average_bits <= choices.front() + 1e-12,
              "argument 'options.average_bits' (" << opt.average_bits << ") is outside the bit choices ["
                                                  << choices.back() << ", " << choices.front() << "]");
    OptionTable table(static_cast<std::size_t>(groups));
    for (std::ptrdiff_t g = 0; g < groups; ++g) {
      double imp = 0;
      for (std::ptrdiff_t j = 0; j < c.group_size_; ++j)
        imp += importance[std::size_t(c.order_[std::size_t(g * c.group_size_ + j)])];
      for (int b : choices) {
        const double levels = double((1 << b) - 1);
        table[std::size_t(g)].push_back(Option{double(c.group_size_ * b), imp / (levels * levels)});
      }
    }
    const AllocationResult a = exact_allocate(table, opt.average_bits * double(k));
    for (int j : a.choice) bits.push_back(choices[std::size_t(j)]);
  }

  // Per-group grids over the calibration range of each channel, and the row layout.
  for (std::ptrdiff_t g = 0; g < groups; ++g) {
    std::vector<QuantParams> per_channel;
    for (std::ptrdiff_t j = 0; j < c.group_size_; ++j) {
      const std::ptrdiff_t ch = c.order_[std::size_t(g * c.group_size_ + j)];
      per_channel.push_back(QuantParams::from_range(lo(ch), hi(ch), bits[std::size_t(g)], false));
    }
    c.grids_.push_back(QuantParams::stack(per_channel, 1));
    c.offsets_.push_back(c.row_bytes_);
    c.row_bytes_ += packed_bytes(std::size_t(c.group_size_), bits[std::size_t(g)]);
  }
  for (std::ptrdiff_t p = 0; p < k; ++p) {
    const QuantParams& grid = c.grids_[std::size_t(p / c.group_size_)];
    c.group_scale_.push_back(grid.scale[std::size_t(p % c.group_size_)]);
    c.group_zero_point_.push_back(grid.zero_point[std::size_t(p % c.group_size_)]);
  }
  c.group_inv_scale_.resize(std::size_t(k));
  etk::detail::quant::uq::reciprocals(c.group_scale_.data(), k, c.group_inv_scale_.data());
  if (!c.contiguous_) {
    c.channel_of_.assign(c.order_.begin(), c.order_.end());
    c.to_groups_ = detail::FloatPermutation(c.channel_of_, k);
    c.scale_.resize(std::size_t(k));
    c.zero_point_.resize(std::size_t(k));
    for (std::ptrdiff_t p = 0; p < k; ++p) {
      c.scale_[std::size_t(c.order_[std::size_t(p)])] = c.group_scale_[std::size_t(p)];
      c.zero_point_[std::size_t(c.order_[std::size_t(p)])] = c.group_zero_point_[std::size_t(p)];
    }
  }
  return c;
}

inline ActivationCodec calibrate_codec(ConstMatrixView<float> calib, const CodecOptions& opt) {
  return calibrate_codec(calib, opt, ConstMatrixView<float>(nullptr, 0, 0, Eigen::OuterStride<>(1)));
}

// Layer-wise allocation of compression ratios: candidates[l] lists layer l's options as
// (bytes moved, measured damage) in any order; greedy (MPTQ-ViT style, by damage per byte
// saved) from each layer's largest option down, under a total byte budget. The result's
// choice indexes the caller's lists.
struct CompressionCandidate {
  double bytes = 0;
  double damage = 0;
};

inline AllocationResult allocate_compression_ratios(
    const std::vector<std::vector<CompressionCandidate>>& candidates, double budget_bytes) {
  ETK_CHECK(!candidates.empty(), "argument 'candidates' is empty");
  OptionTable table(candidates.size());
  std::vector<std::vector<int>> index(candidates.size());
  for (std::size_t l = 0; l < candidates.size(); ++l) {
    ETK_CHECK(!candidates[l].empty(), "argument 'candidates': layer " << l << " has an empty candidate list");
    index[l].resize(candidates[l].size());
    std::iota(index[l].begin(), index[l].end(), 0);
    std::stable_sort(index[l].begin(), index[l].end(), [&](int a, int b) {
      return candidates[l][std::size_t(a)].bytes > candidates[l][std::size_t(b)].bytes;
    });
    for (int j : index[l]) table[l].push_back(Option{candidates[l][std::size_t(j)].bytes,
                                                     candidates[l][std::size_t(j)].damage});
  }
  AllocationResult r = greedy_allocate(table, budget_bytes);
  auto remap = [&](std::vector<int>& choice) {
    for (std::size_t l = 0; l < choice.size(); ++l) choice[l] = index[l][std::size_t(choice[l])];
  };
  remap(r.choice);
  for (auto& p : r.path) remap(p.choice);
  return r;
}

}  // namespace search
ETK_END_NAMESPACE
