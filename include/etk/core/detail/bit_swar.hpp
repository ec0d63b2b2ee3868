// etk/core/detail/bit_swar.hpp: the SWAR word of the bit packer, eight b-bit codes held
// one per byte of a uint64 <-> their 8b-bit stream. Plain integer code, shared by every
// dispatch path of bit_packing_kernels.inl and by the activation codec's scatter
// (etk/search/detail/permute_kernels.hpp).
#pragma once

#include <cstdint>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace detail::bit_swar {

// Eight codes of b bits, one per byte of a little-endian uint64, <-> their 8b-bit stream
// (SWAR, any b in 1..8): three steps merge neighbours in 16-, 32- and 64-bit lanes,
// lane = low | high << (width of low); masks drop what a shift drags across lanes.
struct Swar {
  std::uint64_t code, lo16, hi16, lo32, hi32, lo64, hi64;
  unsigned b;
  explicit Swar(unsigned bits) : b(bits) {
    const std::uint64_t c1 = (std::uint64_t(1) << b) - 1, c2 = (std::uint64_t(1) << (2 * b)) - 1;
    const std::uint64_t c4 = (std::uint64_t(1) << (4 * b)) - 1;
    code = c1 * 0x0101010101010101ull;
    lo16 = c1 * 0x0001000100010001ull;
    hi16 = (c1 << b) * 0x0001000100010001ull;
    lo32 = c2 * 0x0000000100000001ull;
    hi32 = (c2 << (2 * b)) * 0x0000000100000001ull;
    lo64 = c4;
    hi64 = c4 << (4 * b);
  }
  std::uint64_t pack(std::uint64_t v) const {
    v &= code;
    v = (v & lo16) | ((v >> (8 - b)) & hi16);
    v = (v & lo32) | ((v >> (16 - 2 * b)) & hi32);
    return (v & lo64) | ((v >> (32 - 4 * b)) & hi64);
  }
  // The inverse; bits of v above 8b are ignored.
  std::uint64_t unpack(std::uint64_t v) const {
    v = (v & lo64) | ((v << (32 - 4 * b)) & (lo64 << 32));
    v = (v & lo32) | ((v << (16 - 2 * b)) & (lo32 << 16));
    return (v & lo16) | ((v << (8 - b)) & (lo16 << 8));
  }
};

}  // namespace detail::bit_swar
ETK_END_NAMESPACE
