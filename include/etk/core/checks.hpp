// etk/core/checks.hpp: argument checks shared by every public entry point.
//
// Each helper reports through ETK_THROW (etk/config.hpp), naming the argument, the
// expectation and the actual value, so all of etk fails in the same way.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <type_traits>

#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE
namespace check {

// Every element of the [rows, cols] block with row stride `stride` is finite.
template <typename T>
void finite(const char* name, const T* data, std::ptrdiff_t rows, std::ptrdiff_t cols,
            std::ptrdiff_t stride) {
  // Fast vectorised pass: x * 0 is 0 for finite x and NaN for NaN or +-Inf, and a NaN
  // survives the sum. Only when it finds something does the scan below locate it. (Not
  // under -ffast-math, which may fold x * 0 to 0.)
  using Value = std::remove_const_t<T>;
#if !defined(__FAST_MATH__)
  if constexpr (std::is_floating_point<Value>::value) {
    using Vector = Eigen::Map<const Eigen::Array<Value, Eigen::Dynamic, 1>>;
    Value acc = Value(0);
    if (stride == cols) {  // contiguous: one long vector
      acc = (Vector(data, rows * cols) * Value(0)).sum();
    } else {
      for (std::ptrdiff_t r = 0; r < rows; ++r) acc += (Vector(data + r * stride, cols) * Value(0)).sum();
    }
    if (acc == Value(0)) return;
  }
#endif
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const T* p = data + r * stride;
    for (std::ptrdiff_t c = 0; c < cols; ++c) {
      if (!std::isfinite(static_cast<double>(p[c]))) {
        ETK_THROW("argument '" << name << "' holds a non-finite value (" << p[c]
                               << ") at row " << r << ", column " << c);
      }
    }
  }
}

template <typename Derived>
void finite(const char* name, const Eigen::DenseBase<Derived>& x) {
  for (Eigen::Index r = 0; r < x.rows(); ++r)
    for (Eigen::Index c = 0; c < x.cols(); ++c)
      if (!std::isfinite(static_cast<double>(x(r, c))))
        ETK_THROW("argument '" << name << "' holds a non-finite value (" << x(r, c)
                               << ") at (" << r << ", " << c << ")");
}

template <typename T>
void finite(const char* name, const HeadsView<T>& v) {
  for (std::ptrdiff_t h = 0; h < v.heads; ++h)
    finite(name, v.data + h * v.head_stride, v.seq, v.dim, v.row_stride);
}

inline void positive(const char* name, std::ptrdiff_t value) {
  ETK_CHECK(value > 0, "argument '" << name << "' must be > 0, got " << value);
}

inline void equal(const char* name, std::ptrdiff_t actual, const char* what,
                  std::ptrdiff_t expected) {
  ETK_CHECK(actual == expected, "argument '" << name << "': " << what << " must be "
                                             << expected << ", got " << actual);
}

// A finite scalar strictly greater than zero (scales, temperatures, ...).
inline void positive_finite(const char* name, double value) {
  ETK_CHECK(std::isfinite(value) && value > 0,
            "argument '" << name << "' must be finite and > 0, got " << value);
}

// A bit width within [lo, hi].
inline void bits_in_range(const char* name, int bits, int lo, int hi) {
  ETK_CHECK(bits >= lo && bits <= hi, "argument '" << name << "' must be a bit width in ["
                                                   << lo << ", " << hi << "], got " << bits);
}

// A well-formed heads view: positive sizes, strides that do not overlap rows or heads.
template <typename T>
void heads_layout(const char* name, const HeadsView<T>& v) {
  ETK_CHECK(v.data != nullptr || v.heads * v.seq * v.dim == 0,
            "argument '" << name << "' has a null data pointer");
  ETK_CHECK(v.heads > 0, "argument '" << name << "' must have at least one head, got "
                                      << v.heads);
  ETK_CHECK(v.seq > 0, "argument '" << name << "' is an empty sequence (seq = " << v.seq
                                    << ")");
  ETK_CHECK(v.dim > 0, "argument '" << name << "' has dim " << v.dim << ", expected > 0");
  ETK_CHECK(v.row_stride >= v.dim, "argument '" << name << "' row stride " << v.row_stride
                                                << " is smaller than dim " << v.dim);
  // Two layouts keep heads apart: head-major (each head a block of rows) and
  // column-interleaved (heads side by side within each row, e.g. the heads of a
  // [seq, heads * dim] projection output viewed in place).
  const bool head_major = v.head_stride >= v.seq * v.row_stride;
  const bool interleaved =
      v.head_stride >= v.dim && v.row_stride >= (v.heads - 1) * v.head_stride + v.dim;
  ETK_CHECK(v.heads == 1 || head_major || interleaved,
            "argument '" << name << "' head stride " << v.head_stride
                         << " overlaps rows (needs >= seq * row_stride = "
                         << v.seq * v.row_stride << ", or heads side by side in a row: >= dim "
                         << v.dim << " with row stride >= (heads - 1) * head_stride + dim)");
}

}  // namespace check
ETK_END_NAMESPACE
