// etk/core/bit_packing.hpp: codes of any width 1..8 packed end to end into bytes.
//
// etk's one bit packer: the activation codec stores each channel group's codes at the
// group's own width, the two-scaled quantizer its 1-bit region map, and PackedInt4
// (etk/quant/packed_int4.hpp) each row's 4-bit codes, all through these functions. Layout: code i occupies bits
// [i*bits, (i+1)*bits) of a little-endian bit stream (bit t is bit t%8 of byte t/8), so
// n codes take exactly packed_bytes(n, bits) = ceil(n*bits/8) bytes and the unused high
// bits of the last byte are 0. Codes wider than `bits` keep only their low bits.
// Reference twin: reference/bit_packing.hpp; fast paths: detail/bit_packing_kernels.hpp.
#pragma once

#include <cstddef>
#include <cstdint>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/detail/bit_packing_kernels.hpp"

ETK_BEGIN_NAMESPACE

inline std::size_t packed_bytes(std::size_t n, int bits) {
  check::bits_in_range("bits", bits, 1, 8);
  return (n * std::size_t(bits) + 7) / 8;
}

// out must hold packed_bytes(n, bits) bytes.
inline void pack_bits(const std::uint8_t* codes, std::size_t n, int bits, std::uint8_t* out) {
  check::bits_in_range("bits", bits, 1, 8);
  ETK_CHECK(n == 0 || (codes != nullptr && out != nullptr), "argument 'codes' or 'out' is null");
  detail::bit_packing::pack_bits_fast(codes, n, bits, out);
}

// codes must hold n bytes; each gets a value in [0, 2^bits).
inline void unpack_bits(const std::uint8_t* in, std::size_t n, int bits, std::uint8_t* codes) {
  check::bits_in_range("bits", bits, 1, 8);
  ETK_CHECK(n == 0 || (codes != nullptr && in != nullptr), "argument 'in' or 'codes' is null");
  detail::bit_packing::unpack_bits_fast(in, n, bits, codes);
}

ETK_END_NAMESPACE
