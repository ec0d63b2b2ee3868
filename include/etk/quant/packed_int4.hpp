// etk/quant/packed_int4.hpp: codes of at most 4 bits stored two per byte, row by row, and
// the quantize / dequantize pair that goes through that storage.
//
// Row r holds its codes in bytes[r * row_bytes() ...]; code c sits in the low nibble of
// byte c / 2 when c is even, in the high nibble when odd (an odd last column leaves the
// high nibble 0); signed codes are two's-complement nibbles. That is the 4-bit stream of
// etk/core/bit_packing.hpp, one stream per row: packing and unpacking go through it (the
// one bit packer of etk), this header only checks ranges and sign-extends.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/bit_packing.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/quant_params.hpp"
#include "etk/quant/uniform.hpp"

ETK_BEGIN_NAMESPACE

struct PackedInt4 {
  std::vector<std::uint8_t> bytes;
  std::ptrdiff_t rows = 0;
  std::ptrdiff_t cols = 0;
  bool is_signed = true;

  std::ptrdiff_t row_bytes() const { return (cols + 1) / 2; }
  std::int32_t code(std::ptrdiff_t r, std::ptrdiff_t c) const {
    const std::uint8_t b = bytes[static_cast<std::size_t>(r * row_bytes() + c / 2)];
    const std::int32_t nib = (c % 2 == 0) ? (b & 0xF) : (b >> 4);
    return (is_signed && nib >= 8) ? nib - 16 : nib;
  }
};

// Pack int8 (signed) or uint8 (unsigned) codes that fit in 4 bits.
template <typename T>
PackedInt4 pack_int4(ConstMatrixView<T> codes) {
  static_assert(std::is_same<T, std::int8_t>::value || std::is_same<T, std::uint8_t>::value,
                "etk: pack_int4 takes int8_t or uint8_t codes");
  detail::quant::check_nonempty("codes", codes.rows(), codes.cols());
  PackedInt4 out;
  out.rows = codes.rows();
  out.cols = codes.cols();
  out.is_signed = std::is_signed<T>::value;
  const int lo = out.is_signed ? -8 : 0, hi = out.is_signed ? 7 : 15;
  for (std::ptrdiff_t r = 0; r < out.rows; ++r)
    for (std::ptrdiff_t c = 0; c < out.cols; ++c) {
      const int v = codes(r, c);
      ETK_CHECK(v >= lo && v <= hi, "argument 'codes' (" << r << ", " << c << ") = " << v
                                                         << " does not fit 4 bits");
    }
  out.bytes.assign(static_cast<std::size_t>(out.rows * out.row_bytes()), 0);
  // The stream keeps each code's low 4 bits: a signed code's two's-complement nibble.
  for (std::ptrdiff_t r = 0; r < out.rows; ++r)
    pack_bits(reinterpret_cast<const std::uint8_t*>(codes.data() + r * codes.outerStride()), static_cast<std::size_t>(out.cols), 4,
              out.bytes.data() + r * out.row_bytes());
  return out;
}

namespace detail::quant {
// A PackedInt4 whose fields were set by hand (or read from a file) is consistent: a
// positive shape and exactly rows * row_bytes() bytes (checked without overflow).
inline void check_packed_int4(const char* name, const PackedInt4& packed) {
  ETK_CHECK(packed.rows > 0 && packed.cols > 0 && packed.cols < std::numeric_limits<std::ptrdiff_t>::max(),
            "argument '" << name << "' has shape [" << packed.rows << ", " << packed.cols
                         << "], expected positive rows and cols");
  const auto row_bytes = static_cast<std::size_t>(packed.row_bytes());
  const auto rows = static_cast<std::size_t>(packed.rows);
  ETK_CHECK(rows <= packed.bytes.size() / row_bytes && packed.bytes.size() == rows * row_bytes,
            "argument '" << name << "' holds " << packed.bytes.size() << " bytes, a [" << packed.rows
                         << ", " << packed.cols << "] packing needs rows * ((cols + 1) / 2) = "
                         << packed.rows << " * " << row_bytes);
}
}  // namespace detail::quant

// Codes of a PackedInt4 as int8_t (also for unsigned codes 0..15).
inline RowMatrix<std::int8_t> unpack_int4(const PackedInt4& packed) {
  detail::quant::check_packed_int4("packed", packed);
  RowMatrix<std::int8_t> out(packed.rows, packed.cols);
  for (std::ptrdiff_t r = 0; r < packed.rows; ++r) {
    auto* row = reinterpret_cast<std::uint8_t*>(out.data() + r * packed.cols);
    unpack_bits(packed.bytes.data() + r * packed.row_bytes(), static_cast<std::size_t>(packed.cols), 4, row);
    if (packed.is_signed)  // sign-extend the nibbles: 8..15 -> -8..-1
      for (std::ptrdiff_t c = 0; c < packed.cols; ++c) row[c] = static_cast<std::uint8_t>(row[c] >= 8 ? row[c] + 0xF0 : row[c]);
  }
  return out;
}

// Quantize to a grid of at most 4 bits and pack.
inline PackedInt4 quantize_int4(ConstMatrixView<float> x, const QuantParams& p) {
  ETK_CHECK(p.bits <= 4, "argument 'p': packed int4 needs bits <= 4, got " << p.bits);
  if (p.is_signed) {
    const RowMatrix<std::int8_t> q = quantize<std::int8_t>(x, p);
    return pack_int4<std::int8_t>(matrix_view(q.data(), q.rows(), q.cols(), q.cols()));
  }
  const RowMatrix<std::uint8_t> q = quantize<std::uint8_t>(x, p);
  return pack_int4<std::uint8_t>(matrix_view(q.data(), q.rows(), q.cols(), q.cols()));
}

inline RowMatrixXf dequantize(const PackedInt4& packed, const QuantParams& p) {
  ETK_CHECK(p.bits <= 4 && p.is_signed == packed.is_signed,
            "argument 'p': needs bits <= 4 and the packing's signedness");
  const RowMatrix<std::int8_t> q = unpack_int4(packed);
  return dequantize<std::int8_t>(matrix_view(q.data(), q.rows(), q.cols(), q.cols()), p);
}

ETK_END_NAMESPACE
