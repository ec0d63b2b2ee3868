// etk/attention/detail/latte_kernels.hpp: the LATTE primitives on the active dispatch path
// (AVX-512 VNNI, else AVX2, else scalar; bodies in latte_kernels.inl, compiled once per path
// by etk/core/detail/for_each_target.hpp). Each primitive forwards to its path's body; a
// translation unit built with ISA flags calls its own path directly.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "etk/attention/detail/softmax_kernels.hpp"
#include "etk/attention/latte_params.hpp"
#include "etk/core/isa.hpp"
#if defined(ETK_X86)
#include <immintrin.h>
#endif

#define ETK_TARGET_FILE "etk/attention/detail/latte_kernels.inl"
#include "etk/core/detail/for_each_target.hpp"

ETK_BEGIN_NAMESPACE
namespace detail::latte {

// The portable primitives (and the layouts every path shares), for callers that need the
// scalar path itself (the code-level tests).
#if ETK_DISPATCH
namespace scalar = ::etk::ETK_ISA_NAMESPACE::target_scalar::detail::latte::scalar;
#else
namespace scalar = ::etk::ETK_ISA_NAMESPACE::target_native::detail::latte::scalar;
#endif

namespace simd {

inline void pack_key(const float* x, std::ptrdiff_t d, float inv, std::ptrdiff_t j, std::ptrdiff_t G,
                     std::ptrdiff_t Dp, std::uint8_t* kpack, std::int8_t* k8, std::uint8_t* kl) {
  ETK_DISPATCH_RETURN(detail::latte::simd::pack_key(x, d, inv, j, G, Dp, kpack, k8, kl));
}

inline std::int32_t pack_query(const float* x, std::ptrdiff_t d, float inv, std::int8_t* qh,
                               std::int8_t* qh16, std::uint8_t* ql) {
  ETK_DISPATCH_RETURN(detail::latte::simd::pack_query(x, d, inv, qh, qh16, ql));
}

inline void estimate_tile(const std::int8_t* qh, std::ptrdiff_t ldq, int nq, const std::uint8_t* kpack,
                          std::ptrdiff_t G, std::ptrdiff_t nblk, std::int32_t* E, std::ptrdiff_t ldE) {
  ETK_DISPATCH_RETURN(detail::latte::simd::estimate_tile(qh, ldq, nq, kpack, G, nblk, E, ldE));
}

inline void estimate_tile_max(const std::int8_t* qh, std::ptrdiff_t ldq, int nq, const std::uint8_t* kpack,
                              std::ptrdiff_t G, std::ptrdiff_t nblk, std::int32_t* E, std::ptrdiff_t ldE,
                              const std::ptrdiff_t* nvalid, std::int32_t* rmax) {
  ETK_DISPATCH_RETURN(detail::latte::simd::estimate_tile_max(qh, ldq, nq, kpack, G, nblk, E, ldE, nvalid, rmax));
}

inline std::int32_t row_max(const std::int32_t* E, std::ptrdiff_t n) {
  ETK_DISPATCH_RETURN(detail::latte::simd::row_max(E, n));
}

inline std::ptrdiff_t select(const std::int32_t* E, std::ptrdiff_t n, std::int32_t cut, std::int32_t* idx) {
  ETK_DISPATCH_RETURN(detail::latte::simd::select(E, n, cut, idx));
}

inline void exact_scores(const std::int8_t* qh16, const std::uint8_t* ql, const std::int8_t* k8,
                         const std::uint8_t* kl, std::ptrdiff_t Dp, const std::int32_t* E,
                         const std::int32_t* idx, std::ptrdiff_t m, std::int32_t corr, std::int32_t* S) {
  ETK_DISPATCH_RETURN(detail::latte::simd::exact_scores(qh16, ql, k8, kl, Dp, E, idx, m, corr, S));
}

inline float score_weights(const std::int32_t* S, std::ptrdiff_t m, float mult, float* w) {
  ETK_DISPATCH_RETURN(detail::latte::simd::score_weights(S, m, mult, w));
}

inline void gather_pv(const float* p, const std::int32_t* idx, std::ptrdiff_t n, const float* V,
                      std::ptrdiff_t stride, std::ptrdiff_t dv, float* o, float scale = 1.0f) {
  ETK_DISPATCH_RETURN(detail::latte::simd::gather_pv(p, idx, n, V, stride, dv, o, scale));
}

}  // namespace simd
}  // namespace detail::latte
ETK_END_NAMESPACE
