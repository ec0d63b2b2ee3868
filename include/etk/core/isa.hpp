// etk/core/isa.hpp: the instruction-set paths etk's kernels are compiled for, what this
// CPU runs, and which path a call takes (runtime dispatch, pinning).
//
// A translation unit built without ISA flags (plain -O2, x86-64 baseline) compiles every
// dispatched kernel once per path (see etk/core/detail/for_each_target.hpp) and each call
// takes the path `active_isa()` names: the best one this CPU and its OS support, unless
// pinned by `set_isa()` or by the environment variable ETK_ISA=scalar|avx2|avx512|avx512vnni
// (read once, at the first dispatched call). Pinning a path this CPU lacks, or an unknown
// name, is an etk::invalid_argument, never an illegal instruction.
//
// A translation unit built with ISA flags (-mavx2, -march=native, ...) keeps direct calls
// to the path of its flags (`ETK_DISPATCH` is 0 there); define ETK_DISPATCH=1 to dispatch
// anyway, ETK_DISPATCH=0 to never dispatch.
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
// F/BW/DQ/VL (x86-64-v4). avx512vnni: the above + AVX-512 VNNI.
enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2, avx512vnni = 3 };

inline const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::avx512vnni: return "avx512vnni";
  }
  return "unknown";
}

// "scalar", "avx2", "avx512", "avx512vnni" -> the path; anything else is rejected.
inline Isa isa_from_name(const std::string& name) {
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::avx512vnni})
    if (name == isa_name(isa)) return isa;
  ETK_THROW("ISA name '" << name << "' is not one of scalar, avx2, avx512, avx512vnni");
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
#endif

// The widest path this CPU and its OS run: CPUID feature bits and, through XCR0, OS
// support for the YMM state (bits 1, 2) and the opmask/ZMM state (bits 5, 6, 7).
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
  return vnni ? Isa::avx512vnni : Isa::avx512;
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
  ETK_CHECK(static_cast<int>(isa) >= 0 && static_cast<int>(isa) <= 3,
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
// dispatched, otherwise the path of the unit's flags.
inline Isa current_path() {
#if ETK_DISPATCH
  return active_isa();
#elif defined(ETK_HAS_AVX512VNNI)
  return Isa::avx512vnni;
#elif defined(ETK_HAS_AVX512)
  return Isa::avx512;
#elif defined(ETK_HAS_AVX2)
  return Isa::avx2;
#else
  return Isa::scalar;
#endif
}
ETK_END_NAMESPACE
