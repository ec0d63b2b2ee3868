// etk/attention/detail/softmax_kernels.hpp: the vectorised pieces of a softmax, on the
// active dispatch path (bodies in softmax_kernels.inl, compiled once per path by
// etk/core/detail/for_each_target.hpp), so a plain -O2 unit gets AVX-512 or AVX2 code.
//
// Softmax is computed in base 2: a logit row already multiplied by log2(e) needs only
// 2^(x - max), which is cheaper than exp and loses nothing (the factor is folded into
// the scale of Q·K^T by the attention kernels). The pieces are
//   row_max            max of a row (optionally after adding a bias row, e.g. -inf masks);
//   exp2_shift_sum     x <- 2^((x - shift) * mult), returning the sum of the new row;
//   scale_row          x <- x * f;
//   column_max         per column of a [rows, n] block, the max over its rows;
//   exp2_shift_columns per column i of a block, x <- 2^(x - shift_i) and its column sum
//                      (dense attention's key-major score tiles);
// with 2^y computed by a polynomial: round y to n, a degree-6 polynomial for 2^(y-n) and
// an exponent-bit ldexp. Inputs y <= 0 only (softmax subtracts the max); every y below
// -126.5 (including -inf, i.e. a masked logit) yields exactly 0, so masked keys carry
// exactly zero probability. Every path computes the same formula (the portable one lane
// by lane), so they differ only by FMA contraction and summation order.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>

#include "etk/config.hpp"
#include "etk/core/isa.hpp"
#if defined(ETK_X86)
#include <immintrin.h>
#endif

#define ETK_TARGET_FILE "etk/attention/detail/softmax_kernels.inl"
#include "etk/core/detail/for_each_target.hpp"

ETK_BEGIN_NAMESPACE
namespace detail {

constexpr float kLog2e = 1.44269504088896340736f;

// max_j (x_j + bias_j) (bias may be null: max_j x_j). With a bias, x is updated to
// x + bias in the same pass. Returns -inf for a row of -inf.
inline float row_max(float* x, const float* bias, std::ptrdiff_t n) {
  ETK_DISPATCH_RETURN(detail::softmax::row_max(x, bias, n));
}

// x_j <- 2^((x_j - shift) * mult) for j < n, subtracting first; returns the sum of the new
// x. Requires x_j <= shift (shift finite) so every exponent is <= 0; x_j = -inf gives
// exactly 0 and x_j = shift exactly 1, whatever the magnitude of shift. (The fused form
// x_j*mult - RN(shift*mult) would carry the rounding of shift*mult, up to 2^-25 |shift|,
// into every exponent: for logits near 1e34 it turned the row maximum's 2^0 into 0.)
inline float exp2_shift_sum(float* x, std::ptrdiff_t n, float shift, float mult) {
  ETK_DISPATCH_RETURN(detail::softmax::exp2_shift_sum(x, n, shift, mult));
}

// x_j *= f for j < n.
inline void scale_row(float* x, std::ptrdiff_t n, float f) { ETK_DISPATCH_RETURN(detail::softmax::scale_row(x, n, f)); }

// mx[i] = max_r s[r*ld + i] for i < n over rows r < rows (-inf when rows = 0).
inline void column_max(const float* s, std::ptrdiff_t ld, std::ptrdiff_t rows, std::ptrdiff_t n, float* mx) {
  ETK_DISPATCH_RETURN(detail::softmax::column_max(s, ld, rows, n, mx));
}

// s[r*ld + i] <- 2^(s[r*ld + i] - shift[i]) and sum[i] = the sum over r of the new values,
// for i < n, r < rows; requires s <= shift (shift finite), as exp2_shift_sum.
inline void exp2_shift_columns(float* s, std::ptrdiff_t ld, std::ptrdiff_t rows, std::ptrdiff_t n,
                               const float* shift, float* sum) {
  ETK_DISPATCH_RETURN(detail::softmax::exp2_shift_columns(s, ld, rows, n, shift, sum));
}

}  // namespace detail
ETK_END_NAMESPACE
