// etk/quant/detail/int8_gemm_amx.hpp: the AMX-INT8 tile kernel of the int8 GEMM (tdpbusd,
// u8 x s8 -> s32), used by the avx512vnni body when the active path is Isa::amx.
//
// Why a separate header and not a fifth dispatch copy: only this product has tile code.
// Its functions carry __attribute__((target("amx-tile,amx-int8"))), so they compile in any
// unit, and they run only after best_isa() saw AMX and the OS granted the tile state.
//
// Layout (etk/quant/packed_weights.hpp): panel p, k-step s holds 64 columns x 4 bytes, so
// the 16 columns 16v .. 16v+15 over 16 k-steps are a B tile of 16 rows x 64 bytes at
// stride 256; 16 activation rows x 64 bytes (16 k-steps) at the rows' stride are an A
// tile. One call computes up to 32 rows x 64 columns: 2 A tiles x 2 B tiles -> 4 C tiles
// per 32-column half. The depth is taken in blocks of 16 k-steps; the last partial block
// reads zero-padded copies (the panel's tail steps and the rows' tail bytes, both once
// per call: amx_copy_tail, amx_panel) so that every tile has one shape and reads only
// memory of the call. The padding multiplies zeros: the sums are those of the VNNI path.
// Accumulators: tdpbusd adds 4 u8 x s8 products to an int32 lane exactly like vpdpbusd
// (no saturation, wraps mod 2^32), so the raw sums are bit-identical to every other path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "etk/config.hpp"
#include "etk/core/isa.hpp"
#include "etk/quant/packed_weights.hpp"

#if defined(ETK_X86) && ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11) || \
                         (defined(__clang__) && __clang_major__ >= 12))
#include <immintrin.h>
#define ETK_AMX_COMPILED 1
#define ETK_AMX_TARGET __attribute__((target("amx-tile,amx-int8")))
#else
#define ETK_AMX_COMPILED 0
#endif

ETK_BEGIN_NAMESPACE
namespace detail::quant {
namespace gemm {

// Rows of one tile call, k-steps of one depth block, bytes of one padded weight tail.
constexpr int kAmxRows = 32;
constexpr int kAmxBlockSteps = 16;
constexpr std::ptrdiff_t kAmxTailBytes = kAmxBlockSteps * 4 * int8_gemm_layout::kNR;

// The last (ks % 16) k-steps of a panel, zero-padded to 16 steps (dst: kAmxTailBytes).
// Returns false (nothing copied) when the depth has no partial block.
inline bool amx_copy_tail(const std::int8_t* panel, std::ptrdiff_t ks, std::int8_t* dst) {
  const std::ptrdiff_t tail = ks % kAmxBlockSteps, step = 4 * int8_gemm_layout::kNR;
  if (tail == 0) return false;
  std::memcpy(dst, panel + (ks - tail) * step, static_cast<std::size_t>(tail * step));
  std::memset(dst + tail * step, 0, static_cast<std::size_t>((kAmxBlockSteps - tail) * step));
  return true;
}

#if ETK_AMX_COMPILED
// The tile shapes of one call of `mr` rows (1 .. 32): tmm0-3 C (rows 0-15 / 16-31 x 16
// columns), tmm4-5 A, tmm6-7 B; every row is 64 bytes.
struct alignas(64) AmxConfig {
  std::uint8_t palette = 1, start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

// Loads the configuration for `mr` rows unless `configured` already holds it (ldtilecfg
// is per thread; the caller starts each task with configured = 0 and ends it with
// amx_release).
ETK_AMX_TARGET inline void amx_configure(int mr, int& configured) {
  if (configured == mr) return;
  AmxConfig c;
  const std::uint8_t r0 = static_cast<std::uint8_t>(mr < 16 ? mr : 16);
  const std::uint8_t r1 = static_cast<std::uint8_t>(mr > 16 ? mr - 16 : 0);
  const std::uint8_t rows[8] = {r0, r0, r1, r1, r0, r1, 16, 16};
  for (int t = 0; t < 8; ++t) {
    c.rows[t] = rows[t];
    c.colsb[t] = rows[t] ? 64 : 0;
  }
  _tile_loadconfig(&c);
  configured = mr;
}

// Returns the tile state to its initial (unused) state so the OS need not save it.
ETK_AMX_TARGET inline void amx_release(int& configured) {
  if (configured) _tile_release();
  configured = 0;
}

// Where a call's C tiles start and go: c_init null starts them at zero, else every row
// starts at c_init[0, 64) (a stride-0 load: the column offsets, added mod 2^32 exactly as
// the epilogue adds them); the rows are stored at dst with a stride of ldd int32.
struct AmxOut {
  const std::int32_t* c_init;
  std::int32_t* dst;
  std::ptrdiff_t ldd;
};

// One 32-column half h of the call: C tiles over the full depth blocks, then the tail.
template <bool kTwo>
ETK_AMX_TARGET inline void amx_half(int h, const std::uint8_t* a, std::ptrdiff_t lda, const std::int8_t* b,
                                    std::ptrdiff_t blocks, const std::uint8_t* a_tail, const std::int8_t* b_tail,
                                    const AmxOut& o) {
  constexpr std::ptrdiff_t kStep = 4 * int8_gemm_layout::kNR, kBlock = kAmxBlockSteps * kStep;
  if (o.c_init) {
    _tile_loadd(0, o.c_init + 32 * h, 0);
    _tile_loadd(1, o.c_init + 32 * h + 16, 0);
    if constexpr (kTwo) {
      _tile_loadd(2, o.c_init + 32 * h, 0);
      _tile_loadd(3, o.c_init + 32 * h + 16, 0);
    }
  } else {
    _tile_zero(0);
    _tile_zero(1);
    if constexpr (kTwo) {
      _tile_zero(2);
      _tile_zero(3);
    }
  }
  const std::int8_t* bh = b + 128 * h;
  for (std::ptrdiff_t kb = 0; kb < blocks; ++kb) {
    _tile_loadd(4, a + 64 * kb, lda);
    if constexpr (kTwo) _tile_loadd(5, a + 16 * lda + 64 * kb, lda);
    _tile_loadd(6, bh + kBlock * kb, kStep);
    _tile_loadd(7, bh + kBlock * kb + 64, kStep);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    if constexpr (kTwo) {
      _tile_dpbusd(2, 5, 6);
      _tile_dpbusd(3, 5, 7);
    }
  }
  if (a_tail) {
    _tile_loadd(4, a_tail, 64);
    if constexpr (kTwo) _tile_loadd(5, a_tail + 16 * 64, 64);
    _tile_loadd(6, b_tail + 128 * h, kStep);
    _tile_loadd(7, b_tail + 128 * h + 64, kStep);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    if constexpr (kTwo) {
      _tile_dpbusd(2, 5, 6);
      _tile_dpbusd(3, 5, 7);
    }
  }
  const std::ptrdiff_t ldc = o.ldd * 4;
  _tile_stored(0, o.dst + 32 * h, ldc);
  _tile_stored(1, o.dst + 32 * h + 16, ldc);
  if constexpr (kTwo) {
    _tile_stored(2, o.dst + 16 * o.ldd + 32 * h, ldc);
    _tile_stored(3, o.dst + 16 * o.ldd + 32 * h + 16, ldc);
  }
}

// o.dst[r][0, 64) = o.c_init (or 0) + sum over the depth of a[r][t] * w[j][t] for r < mr
// (1 .. 32): a: mr rows of 4 * ks bytes at stride lda; b: one weight panel of ks k-steps;
// b_tail: its padded tail (amx_copy_tail) or null when ks is a multiple of 16.
ETK_AMX_TARGET inline void amx_panel(int mr, const std::uint8_t* a, std::ptrdiff_t lda, const std::int8_t* b,
                                     std::ptrdiff_t ks, const std::int8_t* b_tail, int& configured,
                                     const AmxOut& o) {
  amx_configure(mr, configured);
  const std::ptrdiff_t blocks = ks / kAmxBlockSteps, tail_bytes = 4 * (ks % kAmxBlockSteps);
  alignas(64) std::uint8_t a_tail[kAmxRows * 64];
  if (tail_bytes) {
    std::memset(a_tail, 0, static_cast<std::size_t>(64 * mr));
    for (int r = 0; r < mr; ++r)
      std::memcpy(a_tail + 64 * r, a + r * lda + 64 * blocks, static_cast<std::size_t>(tail_bytes));
  }
  const std::uint8_t* at = tail_bytes ? a_tail : nullptr;
  for (int h = 0; h < 2; ++h) {
    if (mr > 16)
      amx_half<true>(h, a, lda, b, blocks, at, b_tail, o);
    else
      amx_half<false>(h, a, lda, b, blocks, at, b_tail, o);
  }
}
#endif

}  // namespace gemm
}  // namespace detail::quant
ETK_END_NAMESPACE
