// etk/core/reference/bit_packing.hpp: the plain twin of etk/core/bit_packing.hpp.
//
// Codes of `bits` bits (1..8) laid end to end in a little-endian bit stream: code i
// occupies stream bits [i*bits, (i+1)*bits), least significant bit first; the stream's
// bit t is bit (t % 8) of byte t / 8. One bit at a time: obviously correct, slow.
#pragma once

#include <cstddef>
#include <cstdint>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

// out: ceil(n * bits / 8) bytes, fully written (unused high bits of the last byte are 0).
// Only the low `bits` bits of each code are stored.
inline void pack_bits(const std::uint8_t* codes, std::size_t n, int bits, std::uint8_t* out) {
  const std::size_t bytes = (n * std::size_t(bits) + 7) / 8;
  for (std::size_t k = 0; k < bytes; ++k) out[k] = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (int j = 0; j < bits; ++j) {
      const std::size_t t = i * std::size_t(bits) + std::size_t(j);
      if ((codes[i] >> j) & 1u) out[t / 8] = std::uint8_t(out[t / 8] | (1u << (t % 8)));
    }
}

inline void unpack_bits(const std::uint8_t* in, std::size_t n, int bits, std::uint8_t* codes) {
  for (std::size_t i = 0; i < n; ++i) {
    unsigned v = 0;
    for (int j = 0; j < bits; ++j) {
      const std::size_t t = i * std::size_t(bits) + std::size_t(j);
      v |= ((in[t / 8] >> (t % 8)) & 1u) << j;
    }
    codes[i] = std::uint8_t(v);
  }
}

}  // namespace reference
ETK_END_NAMESPACE
