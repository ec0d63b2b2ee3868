// etk/attention/detail/decode_pack.hpp: the KVCache's token writers (key row into its
// nibble planes, value row into fp16 / bf16 / int8) on the active dispatch path (bodies in
// decode_pack.inl, compiled once per path by etk/core/detail/for_each_target.hpp). A
// translation unit built with ISA flags calls its own path directly.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "etk/attention/detail/latte_kernels.hpp"
#include "etk/attention/latte_params.hpp"
#include "etk/core/isa.hpp"

#define ETK_TARGET_FILE "etk/attention/detail/decode_pack.inl"
#include "etk/core/detail/for_each_target.hpp"

ETK_BEGIN_NAMESPACE
namespace detail::decode {

// The portable decode primitives (these writers and the kernels of decode_kernels.hpp),
// for callers that need the scalar path itself (the code-level tests).
#if ETK_DISPATCH
namespace scalar = ::etk::ETK_ISA_NAMESPACE::target_scalar::detail::decode::scalar;
#else
namespace scalar = ::etk::ETK_ISA_NAMESPACE::target_native::detail::decode::scalar;
#endif

namespace simd_pack {

// Key row x[0..d) into its MS4B dwords (hi + 64*l) and LS4B row (lo); copy (null: none)
// also receives x.
inline void pack_key_row(const float* x, std::ptrdiff_t d, float inv, std::uint8_t* hi,
                         std::uint8_t* lo, float* copy = nullptr) {
  ETK_DISPATCH_RETURN(detail::decode::simd_pack::pack_key_row(x, d, inv, hi, lo, copy));
}

// max |x[c]| over c < n, exactly, when every x[c] is finite; otherwise a non-finite
// value (the maximum of the magnitudes' bit patterns, NaN above +inf): one pass gives an
// appended row's scale and its finiteness check.
inline float maxabs_or_nonfinite(const float* x, std::ptrdiff_t n) {
  ETK_DISPATCH_RETURN(detail::decode::simd_pack::maxabs_or_nonfinite(x, n));
}

inline void store_fp16(const float* x, std::ptrdiff_t n, std::uint8_t* out) {
  ETK_DISPATCH_RETURN(detail::decode::simd_pack::store_fp16(x, n, out));
}

inline void store_bf16(const float* x, std::ptrdiff_t n, std::uint8_t* out) {
  ETK_DISPATCH_RETURN(detail::decode::simd_pack::store_bf16(x, n, out));
}

inline void store_int8(const float* x, std::ptrdiff_t n, float inv, std::uint8_t* out) {
  ETK_DISPATCH_RETURN(detail::decode::simd_pack::store_int8(x, n, inv, out));
}

}  // namespace simd_pack
}  // namespace detail::decode
ETK_END_NAMESPACE
