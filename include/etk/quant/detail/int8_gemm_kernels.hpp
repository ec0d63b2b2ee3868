// etk/quant/detail/int8_gemm_kernels.hpp: the per-call data, the scratch plan and the
// per-path kernels of the int8 GEMM (AVX-512 VNNI, AVX-512 without VNNI, AVX2, scalar),
// compiled once per dispatch path (bodies in int8_gemm_kernels.inl; see
// etk/core/detail/for_each_target.hpp). On Isa::amx the VNNI body runs the AMX-INT8
// tile kernel instead (etk/quant/detail/int8_gemm_amx.hpp) for every call of 2 rows or
// more: same layouts, same scratch, same integers.
//
// Layouts (K4 = K rounded up to 4, ksteps = K4 / 4, zero padding):
//   weights: see etk/quant/packed_weights.hpp (one zmm = 16 columns x 4 depths, the
//            vpdpbusd operand), streamed by the micro-kernels as packed;
//   activations: row-major u8 rows of K4 bytes, read by the micro-kernels as one 4-byte
//            group per row and k-step (a broadcast). u8 activations whose depth is a
//            multiple of 4 are read in place, with the caller's stride; otherwise each
//            row is copied once per call (signed codes stored as a + 128, corrected by the
//            column offsets; the depth padded with zeros) by vector code.
// Micro-kernels accumulate raw sums of u8 * s8 over the whole depth into an int32 tile
// [MR][64], MR = 1 .. kMR rows (the last row panel of a call uses as many rows as are
// left, so a decode step of M = 1 computes one row, not kMR); every accumulator is int32
// and wraps mod 2^32 (vpdpbusd and vpaddd do not saturate; the AVX2 path widens to int16
// first and uses vpmaddwd, whose pair sums |2 * 255 * 128| fit easily, so it never
// saturates either). Only the final accumulator, raw + column offset - zw * row sum, has
// to fit in int32, and the entry points prove it does (see int8_gemm.hpp); mod 2^32
// arithmetic then makes it exact, and every path computes the same integers.
//
// Scratch of one call (int8_gemm_scratch_bytes; the same for every path): the copied
// activations (M * K4 bytes), their row sums (used when some weight zero point is not 0),
// and four per-column arrays (column offsets, weight zero points, and the epilogue's scale
// or multiplier and shift).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "etk/config.hpp"
#include "etk/core/context.hpp"
#include "etk/core/isa.hpp"
#include "etk/quant/detail/int8_gemm_amx.hpp"
#include "etk/quant/detail/uniform_kernels.hpp"
#include "etk/quant/packed_weights.hpp"
#include "etk/quant/requantize.hpp"

#if defined(ETK_X86)
#include <immintrin.h>
#endif

ETK_BEGIN_NAMESPACE
namespace detail::quant {
namespace gemm {

inline std::int32_t load_i32(const void* p) {
  std::int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Per-call epilogue data, expanded to one entry per (padded) column.
struct Epilogue {
  const std::int32_t* col_offset = nullptr;  // bias - a_zp * colsum + K * a_zp * w_zp
  const std::int32_t* w_zp = nullptr;        // null when every weight zero point is 0
  const float* scale = nullptr;              // float output
  const std::int32_t* multiplier = nullptr;  // requantized output
  const std::int32_t* shift = nullptr;
  std::int32_t zero_point = 0, qmin = 0, qmax = 0;
};

// The scratch of one call, carved from one block of scratch_bytes(m, k, n) bytes.
struct Scratch {
  std::uint8_t* apack = nullptr;
  std::int32_t* rowsum = nullptr;
  std::int32_t* col_offset = nullptr;
  std::int32_t* w_zp = nullptr;
  std::int32_t* extra0 = nullptr;  // float scale or int32 multiplier (bit pattern storage)
  std::int32_t* extra1 = nullptr;  // shift
};

inline std::size_t round64(std::size_t b) { return (b + 63) / 64 * 64; }

// Bytes of each part; n_pad = N rounded up to kNR.
inline std::size_t apack_bytes(std::ptrdiff_t m, std::ptrdiff_t k) {
  return round64(static_cast<std::size_t>(m * ((k + 3) / 4) * 4));
}
inline std::size_t rowsum_bytes(std::ptrdiff_t m) {
  return round64(static_cast<std::size_t>(m) * 4);
}
inline std::size_t column_bytes(std::ptrdiff_t n) {
  const std::ptrdiff_t n_pad = (n + int8_gemm_layout::kNR - 1) / int8_gemm_layout::kNR * int8_gemm_layout::kNR;
  return round64(static_cast<std::size_t>(n_pad) * 4);
}
inline std::size_t scratch_bytes(std::ptrdiff_t m, std::ptrdiff_t k, std::ptrdiff_t n) {
  return apack_bytes(m, k) + rowsum_bytes(m) + 4 * column_bytes(n);
}
inline Scratch carve(void* base, std::ptrdiff_t m, std::ptrdiff_t k, std::ptrdiff_t n) {
  auto* p = static_cast<unsigned char*>(base);
  Scratch s;
  s.apack = p;
  p += apack_bytes(m, k);
  s.rowsum = reinterpret_cast<std::int32_t*>(p);
  p += rowsum_bytes(m);
  std::int32_t** cols[4] = {&s.col_offset, &s.w_zp, &s.extra0, &s.extra1};
  for (std::int32_t** c : cols) {
    *c = reinterpret_cast<std::int32_t*>(p);
    p += column_bytes(n);
  }
  return s;
}

}  // namespace gemm
}  // namespace detail::quant
ETK_END_NAMESPACE

#define ETK_TARGET_FILE "etk/quant/detail/int8_gemm_kernels.inl"
#include "etk/core/detail/for_each_target.hpp"

ETK_BEGIN_NAMESPACE
namespace detail::quant {
namespace gemm {

// The blocked product on the active path (see int8_gemm_kernels.inl).
template <typename TA, typename TO>
void run(const TA* a, std::ptrdiff_t m, std::ptrdiff_t k, std::ptrdiff_t lda, std::int32_t a_zp,
         const PackedWeightsS8& w, const std::int32_t* bias, const Epilogue& ep, TO* out,
         std::ptrdiff_t ldo, const Scratch& s, const Context& ctx) {
  ETK_DISPATCH_RETURN(detail::quant::gemm::run<TA, TO>(a, m, k, lda, a_zp, w, bias, ep, out, ldo, s, ctx));
}

}  // namespace gemm
}  // namespace detail::quant
ETK_END_NAMESPACE
