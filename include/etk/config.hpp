// etk/config.hpp: version, the one error hub, and compile-time ISA selection.
//
// Every etk header includes this first. It decides three things for the whole library:
//  * how a bad argument is reported (ETK_CHECK / ETK_THROW, one policy everywhere);
//  * which SIMD paths the unit's flags enable (never -march); a unit without ISA flags
//    compiles every path and picks one at run time (etk/core/isa.hpp);
//  * the ISA-tagged inline namespace that keeps translation units built with different
//    -m flags from sharing (and mixing up) the same inline symbols.
#pragma once

#include <cstdlib>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>

#define ETK_VERSION_MAJOR 0
#define ETK_VERSION_MINOR 1
#define ETK_VERSION_PATCH 0
#define ETK_VERSION_STRING "0.1.0"

// ---------------------------------------------------------------------------------------
// What the compiler was told to target. A unit with none of these dispatches at run time
// (etk/core/isa.hpp, etk/core/detail/for_each_target.hpp), which defines them per path.
//   ETK_HAS_AVX2        AVX2 + FMA
//   ETK_HAS_AVX512      AVX-512 F + BW + DQ + VL
//   ETK_HAS_AVX512VNNI  the above + AVX-512 VNNI (vpdpbusd)
// Define ETK_FORCE_SCALAR to compile only the scalar paths whatever the flags.
#if !defined(ETK_FORCE_SCALAR)
#if defined(__AVX2__) && defined(__FMA__)
#define ETK_HAS_AVX2 1
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define ETK_HAS_AVX512 1
#endif
#if defined(ETK_HAS_AVX512) && defined(__AVX512VNNI__)
#define ETK_HAS_AVX512VNNI 1
#endif
#endif

// The inline namespace every etk function lives in. Two translation units compiled with
// different ISA flags get different mangled names, so the linker can never substitute an
// AVX-512 body for a call made from code built for a CPU without it.
#if defined(ETK_HAS_AVX512VNNI)
#define ETK_ISA_NAMESPACE isa_avx512vnni
#define ETK_ISA_NAME "avx512vnni"
#elif defined(ETK_HAS_AVX512)
#define ETK_ISA_NAMESPACE isa_avx512
#define ETK_ISA_NAME "avx512"
#elif defined(ETK_HAS_AVX2)
#define ETK_ISA_NAMESPACE isa_avx2
#define ETK_ISA_NAME "avx2"
#else
#define ETK_ISA_NAMESPACE isa_scalar
#define ETK_ISA_NAME "scalar"
#endif

#define ETK_BEGIN_NAMESPACE \
  namespace etk {           \
  inline namespace ETK_ISA_NAMESPACE {
#define ETK_END_NAMESPACE \
  }                       \
  }

// ---------------------------------------------------------------------------------------
// Errors. One policy: a public entry point validates its arguments and reports a bad one
// with etk::invalid_argument, whose message names the argument, what was expected and
// what was given. Built without exceptions (-fno-exceptions), the same message is printed
// to stderr and the program aborts. Kernels behind the checked entry points trust their
// arguments; their internal invariants (block and key ranges) are ETK_DEBUG_ASSERTs,
// checked unless NDEBUG (the sanitizer builds of the tests run them).
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define ETK_EXCEPTIONS 1
#endif

namespace etk {

// Outside the ISA namespace on purpose: one exception type for every translation unit.
class invalid_argument : public std::invalid_argument {
 public:
  explicit invalid_argument(const std::string& what) : std::invalid_argument(what) {}
};

// Not named `detail`: every module has an `etk::<isa>::detail`, and a second `etk::detail`
// outside the inline namespace would make `etk::detail` ambiguous.
namespace error_hub {
[[noreturn]] inline void fail(const char* where, const std::string& message) {
  std::string full = std::string("etk: ") + where + ": " + message;
#if defined(ETK_EXCEPTIONS)
  throw ::etk::invalid_argument(full);
#else
  std::cerr << full << std::endl;
  std::abort();
#endif
}
}  // namespace error_hub
}  // namespace etk

// ETK_THROW("message " << value): report a bad argument from the current function.
#define ETK_THROW(stream_expr)                                 \
  do {                                                         \
    std::ostringstream etk_msg_;                               \
    etk_msg_ << stream_expr;                                   \
    ::etk::error_hub::fail(__func__, etk_msg_.str());             \
  } while (0)

// ETK_CHECK(cond, "message " << value): ETK_THROW unless cond holds.
#define ETK_CHECK(cond, stream_expr) \
  do {                               \
    if (!(cond)) ETK_THROW(stream_expr); \
  } while (0)

#if defined(NDEBUG)
#define ETK_DEBUG_ASSERT(cond) ((void)0)
#else
#define ETK_DEBUG_ASSERT(cond)                                                          \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::cerr << "etk: internal assertion failed: " #cond " at " << __FILE__ << ":" \
                << __LINE__ << std::endl;                                               \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)
#endif

ETK_BEGIN_NAMESPACE
// The ISA this translation unit's etk code was compiled for ("scalar", "avx2", ...).
inline const char* compiled_isa() { return ETK_ISA_NAME; }
ETK_END_NAMESPACE
