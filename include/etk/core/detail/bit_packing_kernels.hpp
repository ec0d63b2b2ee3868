// etk/core/detail/bit_packing_kernels.hpp: fast paths of etk/core/bit_packing.hpp,
// compiled per dispatch path (bodies in bit_packing_kernels.inl; see
// etk/core/detail/for_each_target.hpp), so a plain -O2 unit packs 4-bit codes with the
// AVX-512BW or AVX2 body the CPU runs.
//
// Same stream as reference/bit_packing.hpp, byte for byte (tested on every path). Eight
// codes of b bits fill exactly b bytes, so the generic body (every width) merges 8 codes
// held in a 64-bit word with shifts and masks (SWAR) and writes its low b bytes. 4-bit
// codes (two per byte, the even code in the low nibble) also have AVX2 / AVX-512BW bodies:
// in a 16-bit lane holding codes c0 | c1 << 8, the low byte of (lane | lane >> 4) is
// c0 | c1 << 4. 8-bit codes are copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "etk/config.hpp"
#include "etk/core/detail/bit_swar.hpp"
#include "etk/core/isa.hpp"
#if defined(ETK_X86)
#include <immintrin.h>
#endif

#define ETK_TARGET_FILE "etk/core/detail/bit_packing_kernels.inl"
#include "etk/core/detail/for_each_target.hpp"

// The entry points etk/core/bit_packing.hpp calls: each forwards to the active path.
ETK_BEGIN_NAMESPACE
namespace detail::bit_packing {

inline void pack_bits_fast(const std::uint8_t* codes, std::size_t n, int bits, std::uint8_t* out) {
  ETK_DISPATCH_RETURN(detail::bit_packing::pack_bits_fast(codes, n, bits, out));
}

inline void unpack_bits_fast(const std::uint8_t* in, std::size_t n, int bits, std::uint8_t* codes) {
  ETK_DISPATCH_RETURN(detail::bit_packing::unpack_bits_fast(in, n, bits, codes));
}

}  // namespace detail::bit_packing
ETK_END_NAMESPACE
