// etk/core/detail/for_each_target.hpp: compiles one kernel file once per dispatch path.
//
// Include it (no include guard, on purpose) after defining ETK_TARGET_FILE to the quoted
// path of a kernel body file (*.inl: no includes, no namespace of its own, SIMD code under
// `#if defined(ETK_HAS_...)`). In a dispatched translation unit (ETK_DISPATCH, see
// etk/core/isa.hpp) the body is compiled four times, each in its own namespace and with
// the target options of its path (GCC: #pragma GCC target; clang: #pragma clang attribute):
//   target_scalar       baseline (no ETK_HAS_*)
//   target_avx2         avx2,fma                          ETK_HAS_AVX2
//   target_avx512       + avx512f,bw,dq,vl (x86-64-v4)    + ETK_HAS_AVX512
//   target_avx512vnni   + avx512vnni                      + ETK_HAS_AVX512VNNI
// Isa::amx has no copy of its own: it runs target_avx512vnni (the int8 GEMM's VNNI body
// branches to its tile code at run time, etk/quant/detail/int8_gemm_amx.hpp).
// Otherwise it is compiled once, as `target_native`, for the unit's own flags. Every
// target namespace is inside the unit's ISA-tagged inline namespace, so a body compiled in
// a unit built with -mavx512f can never be linked in place of the same path's body from a
// plain unit (the pragmas add to the unit's flags, they do not remove any).
// ETK_DISPATCH_RETURN(f(args)) then returns f(args) from the active path's namespace.
#include "etk/core/isa.hpp"

#if !defined(ETK_TARGET_FILE)
#error "define ETK_TARGET_FILE before including etk/core/detail/for_each_target.hpp"
#endif

#if ETK_DISPATCH
#pragma push_macro("ETK_HAS_AVX2")
#pragma push_macro("ETK_HAS_AVX512")
#pragma push_macro("ETK_HAS_AVX512VNNI")
// GCC 12 reports the _mm512_undefined_*() operands of some AVX-512 intrinsics (shuffles,
// extracts, reductions) as uninitialized when they are inlined into functions built under
// a target pragma (GCC PR 105593); the values are never read. Silenced for the kernel
// bodies only, so a user's -Wall -Werror build of a plain unit stays clean.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#undef ETK_HAS_AVX2
#undef ETK_HAS_AVX512
#undef ETK_HAS_AVX512VNNI

ETK_BEGIN_NAMESPACE
namespace target_scalar {
#include ETK_TARGET_FILE
}  // namespace target_scalar
ETK_END_NAMESPACE

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#define ETK_HAS_AVX2 1
ETK_BEGIN_NAMESPACE
namespace target_avx2 {
#include ETK_TARGET_FILE
}  // namespace target_avx2
ETK_END_NAMESPACE

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl")
#endif
#define ETK_HAS_AVX512 1
ETK_BEGIN_NAMESPACE
namespace target_avx512 {
#include ETK_TARGET_FILE
}  // namespace target_avx512
ETK_END_NAMESPACE

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")
#endif
#define ETK_HAS_AVX512VNNI 1
ETK_BEGIN_NAMESPACE
namespace target_avx512vnni {
#include ETK_TARGET_FILE
}  // namespace target_avx512vnni
ETK_END_NAMESPACE
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#undef ETK_HAS_AVX2
#undef ETK_HAS_AVX512
#undef ETK_HAS_AVX512VNNI
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#pragma pop_macro("ETK_HAS_AVX512VNNI")
#pragma pop_macro("ETK_HAS_AVX512")
#pragma pop_macro("ETK_HAS_AVX2")

#if !defined(ETK_DISPATCH_RETURN)
#define ETK_DISPATCH_RETURN(...)                                               \
  do {                                                                         \
    switch (::etk::active_isa()) {                                             \
      case ::etk::Isa::amx:                                                    \
      case ::etk::Isa::avx512vnni: return target_avx512vnni::__VA_ARGS__;      \
      case ::etk::Isa::avx512: return target_avx512::__VA_ARGS__;              \
      case ::etk::Isa::avx2: return target_avx2::__VA_ARGS__;                  \
      case ::etk::Isa::scalar: break;                                          \
    }                                                                          \
    return target_scalar::__VA_ARGS__;                                         \
  } while (0)
#endif

#else  // !ETK_DISPATCH

ETK_BEGIN_NAMESPACE
namespace target_native {
#include ETK_TARGET_FILE
}  // namespace target_native
ETK_END_NAMESPACE

#if !defined(ETK_DISPATCH_RETURN)
#define ETK_DISPATCH_RETURN(...) return target_native::__VA_ARGS__
#endif

#endif  // ETK_DISPATCH

#undef ETK_TARGET_FILE
