// etk/search/detail/permute_kernels.hpp: the activation codec's moves between channel
// order and group order (importance groups scattered over the channels).
//
// Encoding permutes each row's floats into group order (gather_floats) and quantizes and
// packs each group like a contiguous one. Decoding unpacks each group's stream straight into the channels'
// code bytes (unpack_scatter: eight codes at a time through the SWAR word of
// bit_packing_kernels.hpp, the inverse of pack_bits exactly, tested), then dequantizes
// the whole row in channel order once.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "etk/config.hpp"
#include "etk/search/detail/bit_packing_kernels.hpp"

ETK_BEGIN_NAMESPACE
namespace search {
namespace detail {

// dst[j] = src[idx[j]], j < n (a plain loop: vgatherdps was slower on Zen 4).
inline void gather_floats(const float* src, const std::int32_t* idx, std::ptrdiff_t n, float* dst) {
  for (std::ptrdiff_t j = 0; j < n; ++j) dst[j] = src[idx[j]];
}

// codes[idx[j]] = code j of the stream `in` (packed_bytes(n, bits) bytes), j < n.
inline void unpack_scatter(const std::uint8_t* in, const std::int32_t* idx, std::size_t n, int bits,
                           std::uint8_t* codes) {
  const unsigned b = unsigned(bits);
  const Swar w(b);
  const std::uint8_t* const end = in + (n * b + 7) / 8;
  const std::uint8_t* p = in;
  for (std::size_t i = 0; i < n; i += 8, p += b) {
    const unsigned m = unsigned(std::min<std::size_t>(8, n - i));
    std::uint64_t v = 0;
    if (end - p >= 8) {
      std::memcpy(&v, p, 8);
    } else {
      const unsigned bytes = (m * b + 7) / 8;
      for (unsigned k = 0; k < bytes; ++k) v |= std::uint64_t(p[k]) << (8 * k);
    }
    v = w.unpack(v);
    if (m == 8) {
      for (unsigned k = 0; k < 8; ++k) codes[idx[i + k]] = std::uint8_t(v >> (8 * k));
    } else {
      for (unsigned k = 0; k < m; ++k) codes[idx[i + k]] = std::uint8_t(v >> (8 * k));
    }
  }
}

}  // namespace detail
}  // namespace search
ETK_END_NAMESPACE
