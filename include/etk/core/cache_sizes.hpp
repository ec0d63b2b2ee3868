// etk/core/cache_sizes.hpp: the L1 data and L2 cache sizes of the CPU running the process,
// read once at run time, from which the fp32 GEMM (etk/core/detail/gemm_f32_kernels.hpp)
// and dense attention (etk/attention/detail/dense_blocked.hpp) size their blocks.
//
// Sources, first that answers: sysconf(_SC_LEVEL1_DCACHE_SIZE / _SC_LEVEL2_CACHE_SIZE)
// (glibc); on x86, CPUID's deterministic cache parameters (leaf 4 on Intel, 0x8000001D on
// AMD: ways x partitions x line x sets of the level-1 data and level-2 cache); else 32 KiB
// and 1 MiB. Values are clamped to [16 KiB, 1 MiB] (L1d) and [128 KiB, 16 MiB] (L2), so a
// hypervisor reporting nonsense cannot yield an empty or an absurd block. Block sizes
// change speed only, never a result beyond the tolerances their users document.
#pragma once

#include <algorithm>
#include <cstddef>

#include "etk/config.hpp"
#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define ETK_CACHE_SIZES_CPUID 1
#endif

ETK_BEGIN_NAMESPACE
namespace detail::cache_sizes {

struct CacheSizes {
  std::ptrdiff_t l1d = 0, l2 = 0;  // bytes
};

constexpr std::ptrdiff_t kFallbackL1d = 32 * 1024, kFallbackL2 = 1024 * 1024;

// CPUID's deterministic cache parameters: the size of the data or unified cache of `level`
// (1: data only, 2: data or unified), 0 when the CPU does not describe it.
inline std::ptrdiff_t cpuid_cache_bytes(int level) {
#if defined(ETK_CACHE_SIZES_CPUID)
  unsigned a = 0, b = 0, c = 0, d = 0;
  __cpuid(0, a, b, c, d);
  const bool amd = b == 0x68747541u;  // "Auth"enticAMD
  const unsigned leaf = amd ? 0x8000001Du : 4u;
  if (amd) {
    __cpuid(0x80000000u, a, b, c, d);
    if (a < leaf) return 0;
  } else if (a < leaf) {
    return 0;
  }
  for (unsigned sub = 0; sub < 16; ++sub) {
    __cpuid_count(leaf, sub, a, b, c, d);
    const unsigned type = a & 0x1Fu, lvl = (a >> 5) & 0x7u;
    if (type == 0) break;  // no more caches
    const bool data = type == 1 || (level == 2 && type == 3);
    if (static_cast<int>(lvl) != level || !data) continue;
    const std::ptrdiff_t ways = ((b >> 22) & 0x3FFu) + 1, parts = ((b >> 12) & 0x3FFu) + 1,
                         line = (b & 0xFFFu) + 1, sets = std::ptrdiff_t(c) + 1;
    return ways * parts * line * sets;
  }
#else
  (void)level;
#endif
  return 0;
}

// What the OS, then the CPU, reports; 0 where neither does.
inline CacheSizes read_reported() {
  CacheSizes s;
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE)
  s.l1d = static_cast<std::ptrdiff_t>(sysconf(_SC_LEVEL1_DCACHE_SIZE));
  s.l2 = static_cast<std::ptrdiff_t>(sysconf(_SC_LEVEL2_CACHE_SIZE));
#endif
  if (s.l1d <= 0) s.l1d = cpuid_cache_bytes(1);
  if (s.l2 <= 0) s.l2 = cpuid_cache_bytes(2);
  return s;
}

// Reported sizes with the fallbacks and clamps above applied.
inline CacheSizes sanitise(CacheSizes s) {
  s.l1d = s.l1d > 0 ? std::clamp<std::ptrdiff_t>(s.l1d, 16 * 1024, 1024 * 1024) : kFallbackL1d;
  s.l2 = s.l2 > 0 ? std::clamp<std::ptrdiff_t>(s.l2, 128 * 1024, 16 * 1024 * 1024) : kFallbackL2;
  return s;
}

// This CPU's sizes, read on first use.
inline const CacheSizes& get() {
  static const CacheSizes s = sanitise(read_reported());
  return s;
}

}  // namespace detail::cache_sizes
ETK_END_NAMESPACE
