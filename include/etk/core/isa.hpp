// etk/core/isa.hpp: the instruction-set paths etk's kernels are compiled for, what this
// CPU runs, and which path a call takes (runtime dispatch, pinning).
//
// A translation unit built without ISA flags (plain -O2, x86-64 baseline) compiles every
// dispatched kernel once per path (see etk/core/detail/for_each_target.hpp) and each call
// takes the path `active_isa()` names: the best one this CPU and its OS support, unless
// pinned by `set_isa()` or by the environment variable ETK_ISA=scalar|avx2|avx512|avx512vnni|amx
// (read once, at the first dispatched call). Pinning a path this CPU lacks, or an unknown
// name, is an etk::invalid_argument, never an illegal instruction.
//
// `amx` is not a compiled copy of every kernel: every kernel runs its avx512vnni body on
// it, and only the int8 GEMM's VNNI body branches to its AMX-INT8 tile code when the
// active path is `amx`. Pinning `avx512vnni` therefore keeps the tiles unused.
//
// A translation unit built with ISA flags (-mavx2, -march=native, ...) keeps direct calls
// to the path of its flags (`ETK_DISPATCH` is 0 there); define ETK_DISPATCH=1 to dispatch
// anyway, ETK_DISPATCH=0 to never dispatch. Such a unit with VNNI flags uses the int8
// GEMM's AMX tiles exactly when active_isa() is `amx` (run-time detection, OS permission
// included, and pinnable below: set_isa / ETK_ISA); its compile flags never enable them,
// so it never executes a tile instruction where the CPU or the OS lacks AMX.
//
// Everything here is outside the ISA namespace: one state for the whole program.
#pragma once

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "etk/config.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define ETK_X86 1
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

#if !defined(ETK_DISPATCH)
#if defined(ETK_X86) && !defined(ETK_FORCE_SCALAR) && !defined(ETK_HAS_AVX2) && \
    !defined(ETK_HAS_AVX512) && (defined(__GNUC__) || defined(__clang__))
#define ETK_DISPATCH 1
#else
#define ETK_DISPATCH 0
#endif
#endif

namespace etk {

// The paths, in increasing order of what they need. avx2: AVX2 + FMA. avx512: AVX-512
// F/BW/DQ/VL (x86-64-v4). avx512vnni: the above + AVX-512 VNNI. amx: avx512vnni plus
// AMX-TILE and AMX-INT8, with the OS granting the tile state (the int8 GEMM's tiles; every
// other kernel runs its avx512vnni body).
enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2, avx512vnni = 3, amx = 4 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::avx512vnni: return "avx512vnni";
    case Isa::amx: return "amx";
  }
  return "unknown";
}

// "scalar", "avx2", "avx512", "avx512vnni", "amx" -> the path; anything else is rejected.
inline Isa isa_from_name(const std::string& name) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512vnni, Isa::amx})
    if (name == isa_name(isa)) return isa;
  ETK_THROW("ISA name '" << name << "' is not one of scalar, avx2, avx512, avx512vnni, amx");
}

namespace isa_detail {

#if defined(ETK_X86)
// XCR0 (the register state the OS saves and restores), read with xgetbv; only valid when
// CPUID.1:ECX.OSXSAVE is set.
inline unsigned long long xcr0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}

// AMX-INT8 usable: CPUID.(7,0):EDX bit 24 (AMX-TILE) and 25 (AMX-INT8), XCR0 bits 17 and
// 18 (XTILECFG, XTILEDATA), and on Linux the kernel's grant of the tile data state to this
// process (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); without it the first tile
// instruction faults). Asked once, by detect(); a refusal means no AMX, never a SIGILL.
inline bool amx_usable(unsigned leaf7_edx, unsigned long long xcr) {
  const bool tile = (leaf7_edx >> 24) & 1, int8 = (leaf7_edx >> 25) & 1;
  if (!(tile && int8 && ((xcr >> 17) & 3) == 3)) return false;
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;  // no known way to ask this OS for the tile state: stay on VNNI
#endif
}
#endif

// The widest path this CPU and its OS run: CPUID feature bits and, through XCR0, OS
// support for the YMM state (bits 1, 2), the opmask/ZMM state (bits 5, 6, 7) and the
// tile state (bits 17, 18, plus the Linux permission, see amx_usable).
inline Isa detect() {
#if defined(ETK_X86)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_max(0, nullptr) < 7) return Isa::scalar;
  __cpuid_count(1, 0, a, b, c, d);
  const bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, avx = (c >> 28) & 1;
  if (!osxsave || !avx) return Isa::scalar;
  const unsigned long long xcr = xcr0();
  const bool ymm_state = (xcr & 0x6) == 0x6, zmm_state = (xcr & 0xE6) == 0xE6;
  __cpuid_count(7, 0, a, b, c, d);
  const bool avx2 = (b >> 5) & 1, f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1,
             vl = (b >> 31) & 1, vnni = (c >> 11) & 1;
  if (!(ymm_state && avx2 && fma)) return Isa::scalar;
  if (!(zmm_state && f && dq && bw && vl)) return Isa::avx2;
  if (!vnni) return Isa::avx512;
  return amx_usable(d, xcr) ? Isa::amx : Isa::avx512vnni;
#else
  return Isa::scalar;
#endif
}

// -1: not chosen yet (the first active_isa() reads ETK_ISA or takes the best path).
inline std::atomic<int>& active_slot() {
  static std::atomic<int> slot{-1};
  return slot;
}

}  // namespace isa_detail

// The widest path this CPU runs (detected once).
inline Isa best_isa() {
  static const Isa best = isa_detail::detect();
  return best;
}

// Whether this CPU runs `isa`.
inline bool isa_supported(Isa isa) { return static_cast<int>(isa) <= static_cast<int>(best_isa()); }

// Pins the path of every later dispatched call (all threads). Rejects a path this CPU
// lacks.
inline void set_isa(Isa isa) {
  ETK_CHECK(static_cast<int>(isa) >= 0 && static_cast<int>(isa) <= static_cast<int>(Isa::amx),
            "argument 'isa' " << static_cast<int>(isa) << " is not an etk::Isa");
  ETK_CHECK(isa_supported(isa), "argument 'isa' " << isa_name(isa) << ": this CPU only runs paths up to "
                                                  << isa_name(best_isa()));
  isa_detail::active_slot().store(static_cast<int>(isa), std::memory_order_relaxed);
}

// Back to the default: ETK_ISA when set, else the best path.
inline void reset_isa() { isa_detail::active_slot().store(-1, std::memory_order_relaxed); }

// The path the environment asks for: ETK_ISA when set and not empty, else best_isa().
// An unknown value or a path this CPU lacks is rejected.
inline Isa isa_from_environment() {
  const char* env = std::getenv("ETK_ISA");
  if (!env || !*env) return best_isa();
  const Isa isa = isa_from_name(env);
  ETK_CHECK(isa_supported(isa), "environment variable ETK_ISA=" << env << ": this CPU only runs paths up to "
                                                                << isa_name(best_isa()));
  return isa;
}

// The path dispatched calls take now.
inline Isa active_isa() {
  int v = isa_detail::active_slot().load(std::memory_order_relaxed);
  if (v < 0) {
    v = static_cast<int>(isa_from_environment());
    int expected = -1;
    if (!isa_detail::active_slot().compare_exchange_strong(expected, v, std::memory_order_relaxed)) v = expected;
  }
  return static_cast<Isa>(v);
}

}  // namespace etk

ETK_BEGIN_NAMESPACE
// Whether this translation unit's etk kernels dispatch at run time (1) or call the path of
// its compile flags directly (0).
constexpr bool dispatched() { return ETK_DISPATCH != 0; }

// The path a kernel call made from this translation unit takes now: active_isa() when
// dispatched, otherwise the path of the unit's flags (with VNNI flags: amx when the
// active path is amx, see the top of this file).
inline Isa current_path() {
#if ETK_DISPATCH
  return active_isa();
#elif defined(ETK_HAS_AVX512VNNI)
  return active_isa() == Isa::amx ? Isa::amx : Isa::avx512vnni;
#elif defined(ETK_HAS_AVX512)
  return Isa::avx512;
#elif defined(ETK_HAS_AVX2)
  return Isa::avx2;
#else
  return Isa::scalar;
#endif
}
ETK_END_NAMESPACE
