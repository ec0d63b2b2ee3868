// etk/quant/uniform.hpp: the uniform affine quantizer (quantize, dequantize,
// fake-quantize) over a QuantParams grid.
//
//     q = clamp(round_half_even(x / scale) + zero_point, qmin, qmax)
//     x' = float(q - zero_point) * scale
// Symmetric or asymmetric, signed or unsigned, 2..8 or 16 bits, per tensor or per channel
// (axis 0: rows, axis 1: columns of a row-major matrix view). Inside the grid's range
// |x - x'| <= scale / 2 (before the final float rounding of x'); outside it x' is the
// clamp. The fast paths (detail/uniform_kernels.hpp) return the reference's codes bit for
// bit. NaN inputs are rejected; +-Inf saturate. Rejected outputs: rows that overlap (row
// stride < cols) and memory shared with the input, unless the output is the input exactly
// (same type, data and stride: fake_quantize in place).
//
// Code types: int8_t (signed, bits <= 8), uint8_t (unsigned, bits <= 8), int16_t / uint16_t
// (any bits up to 16). Codes of at most 4 bits pack two per byte: etk/quant/packed_int4.hpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/context.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/detail/uniform_kernels.hpp"
#include "etk/quant/quant_params.hpp"

ETK_BEGIN_NAMESPACE

namespace detail::quant {
template <typename T>
void check_code_type(const char* name, const QuantParams& p) {
  static_assert(std::is_same<T, std::int8_t>::value || std::is_same<T, std::uint8_t>::value ||
                    std::is_same<T, std::int16_t>::value || std::is_same<T, std::uint16_t>::value,
                "etk: quantization codes are int8_t, uint8_t, int16_t or uint16_t");
  ETK_CHECK(p.qmin() >= std::numeric_limits<T>::min() && p.qmax() <= std::numeric_limits<T>::max(),
            "argument '" << name << "': codes [" << p.qmin() << ", " << p.qmax()
                         << "] do not fit the code type (" << sizeof(T) * 8 << "-bit "
                         << (std::is_signed<T>::value ? "signed" : "unsigned") << ")");
}

inline void check_nonempty(const char* name, std::ptrdiff_t rows, std::ptrdiff_t cols) {
  ETK_CHECK(rows > 0 && cols > 0,
            "argument '" << name << "' is empty ([" << rows << ", " << cols << "])");
}

// Per tensor or per row (axis -1 or 0): the scale and zero point of row r.
inline std::size_t row_channel(const QuantParams& p, std::ptrdiff_t r) {
  return p.axis == 0 ? static_cast<std::size_t>(r) : 0;
}

// f(r0, r1, c0, c1) over tiles of a [rows, cols] block on ctx's pool: whole rows, about
// kTileElements per task, or pieces of one row (multiples of 64 columns) when a row is
// longer. The tiles depend on the shape only, and every element's result on nothing but
// its own input, so the output is the same for any thread count.
template <typename F>
void for_each_tile(const Context& ctx, std::ptrdiff_t rows, std::ptrdiff_t cols, F&& f) {
  constexpr std::ptrdiff_t kTileElements = std::ptrdiff_t(1) << 16;
  const std::ptrdiff_t cols_per = cols > kTileElements ? kTileElements : cols;
  const std::ptrdiff_t rows_per = cols > kTileElements ? 1 : std::max<std::ptrdiff_t>(1, kTileElements / cols);
  const std::ptrdiff_t col_tiles = (cols + cols_per - 1) / cols_per, row_tiles = (rows + rows_per - 1) / rows_per;
  parallel_for(ctx, row_tiles * col_tiles, [&](std::ptrdiff_t t, int) {
    const std::ptrdiff_t r0 = (t / col_tiles) * rows_per, c0 = (t % col_tiles) * cols_per;
    f(r0, std::min(rows, r0 + rows_per), c0, std::min(cols, c0 + cols_per));
  });
}

// Output `out` of a block kernel reading `in`: its rows do not overlap, and it either is
// `in` exactly (same element type, data and row stride: every element is read before it
// is written) or shares no memory with it.
template <typename TO, typename TI>
void check_output_apart(const char* out_name, const TO* out, std::ptrdiff_t rows, std::ptrdiff_t cols,
                        std::ptrdiff_t out_stride, const char* in_name, const TI* in,
                        std::ptrdiff_t in_stride) {
  check::rows_disjoint(out_name, rows, cols, out_stride);
  if (std::is_same<TO, TI>::value && static_cast<const void*>(out) == static_cast<const void*>(in) &&
      out_stride == in_stride)
    return;
  check::no_overlap(out_name, HeadsView<const TO>(out, 1, rows, cols, out_stride, 0), in_name,
                    HeadsView<const TI>(in, 1, rows, cols, in_stride, 0));
}

// Quantize (T = code type) or fake-quantize (T = float) a [rows, cols] block. The
// reciprocals of the scales (the kernels' quotient estimates) are computed once per call.
template <typename T>
void quantize_block(ConstMatrixView<float> x, const QuantParams& p, T* out, std::ptrdiff_t out_stride,
                    const Context& ctx) {
  float inv1 = 0;
  std::vector<float> invs(p.scale.size() > 1 ? p.scale.size() : 0);
  float* inv = invs.empty() ? &inv1 : invs.data();
  uq::reciprocals(p.scale.data(), p.channels(), inv);
  std::atomic<bool> nan{false};
  const std::ptrdiff_t xs = x.outerStride();
  for_each_tile(ctx, x.rows(), x.cols(), [&](std::ptrdiff_t r0, std::ptrdiff_t r1, std::ptrdiff_t c0, std::ptrdiff_t c1) {
    bool tile_nan = false;
    if (p.axis == 1) {
      tile_nan = uq::quantize_cols<T>(x.data() + r0 * xs + c0, r1 - r0, c1 - c0, xs, p.scale.data() + c0, inv + c0,
                                      p.zero_point.data() + c0, p.qmin(), p.qmax(), out + r0 * out_stride + c0,
                                      out_stride);
    } else {
      for (std::ptrdiff_t r = r0; r < r1; ++r) {
        const std::size_t ch = row_channel(p, r);
        tile_nan |= uq::quantize_run<T, false>(x.data() + r * xs + c0, c1 - c0, p.scale.data() + ch, inv + ch,
                                               p.zero_point.data() + ch, p.qmin(), p.qmax(),
                                               out + r * out_stride + c0);
      }
    }
    if (tile_nan) nan.store(true, std::memory_order_relaxed);
  });
  ETK_CHECK(!nan.load(), "argument 'x' holds NaN");
}
}  // namespace detail::quant

// Codes of x on grid p, written to q ([rows, cols] like x). Large tensors are split into
// tiles over ctx's pool (the same bits for any thread count).
template <typename T>
void quantize(ConstMatrixView<float> x, const QuantParams& p, MatrixView<T> q, const Context& ctx = Context{}) {
  detail::quant::check_nonempty("x", x.rows(), x.cols());
  check::quant_params("p", p, x.rows(), x.cols());
  detail::quant::check_code_type<T>("p", p);
  check::equal("q", q.rows(), "rows", x.rows());
  check::equal("q", q.cols(), "cols", x.cols());
  detail::quant::check_output_apart("q", q.data(), q.rows(), q.cols(), q.outerStride(), "x", x.data(), x.outerStride());
  detail::quant::quantize_block<T>(x, p, q.data(), q.outerStride(), ctx);
}

template <typename T>
RowMatrix<T> quantize(ConstMatrixView<float> x, const QuantParams& p) {
  RowMatrix<T> q(x.rows(), x.cols());
  quantize<T>(x, p, matrix_view(q.data(), q.rows(), q.cols(), q.cols()));
  return q;
}

// Real values of codes q on grid p (tiles over ctx's pool, like quantize).
template <typename T>
void dequantize(ConstMatrixView<T> q, const QuantParams& p, MatrixView<float> x, const Context& ctx = Context{}) {
  detail::quant::check_nonempty("q", q.rows(), q.cols());
  check::quant_params("p", p, q.rows(), q.cols());
  detail::quant::check_code_type<T>("p", p);
  check::equal("x", x.rows(), "rows", q.rows());
  check::equal("x", x.cols(), "cols", q.cols());
  detail::quant::check_output_apart("x", x.data(), x.rows(), x.cols(), x.outerStride(), "q", q.data(), q.outerStride());
  const std::ptrdiff_t qs = q.outerStride(), xs = x.outerStride();
  detail::quant::for_each_tile(ctx, q.rows(), q.cols(), [&](std::ptrdiff_t r0, std::ptrdiff_t r1, std::ptrdiff_t c0,
                                                          std::ptrdiff_t c1) {
    if (p.axis == 1) {
      detail::quant::uq::dequantize_cols<T>(q.data() + r0 * qs + c0, r1 - r0, c1 - c0, qs, p.scale.data() + c0,
                                           p.zero_point.data() + c0, x.data() + r0 * xs + c0, xs);
      return;
    }
    for (std::ptrdiff_t r = r0; r < r1; ++r) {
      const std::size_t ch = detail::quant::row_channel(p, r);
      detail::quant::uq::dequantize_run<T, false>(q.data() + r * qs + c0, c1 - c0, p.scale.data() + ch,
                                                 p.zero_point.data() + ch, x.data() + r * xs + c0);
    }
  });
}

template <typename T>
RowMatrixXf dequantize(ConstMatrixView<T> q, const QuantParams& p) {
  RowMatrixXf x(q.rows(), q.cols());
  dequantize<T>(q, p, matrix_view(x.data(), x.rows(), x.cols(), x.cols()));
  return x;
}

// dequantize(quantize(x)) in one pass, bit-identical to the two-step version.
inline void fake_quantize(ConstMatrixView<float> x, const QuantParams& p, MatrixView<float> y,
                          const Context& ctx = Context{}) {
  detail::quant::check_nonempty("x", x.rows(), x.cols());
  check::quant_params("p", p, x.rows(), x.cols());
  check::equal("y", y.rows(), "rows", x.rows());
  check::equal("y", y.cols(), "cols", x.cols());
  detail::quant::check_output_apart("y", y.data(), y.rows(), y.cols(), y.outerStride(), "x", x.data(), x.outerStride());
  detail::quant::quantize_block<float>(x, p, y.data(), y.outerStride(), ctx);
}

inline RowMatrixXf fake_quantize(ConstMatrixView<float> x, const QuantParams& p) {
  RowMatrixXf y(x.rows(), x.cols());
  fake_quantize(x, p, matrix_view(y.data(), y.rows(), y.cols(), y.cols()));
  return y;
}

ETK_END_NAMESPACE
