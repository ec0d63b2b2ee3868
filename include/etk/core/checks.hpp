// etk/core/checks.hpp: argument checks shared by every public entry point.
//
// Each helper reports through ETK_THROW (etk/config.hpp), naming the argument, the
// expectation and the actual value, so all of etk fails in the same way.
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <utility>
#include <type_traits>
#include <vector>

#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE
namespace check {

// Every element of the [rows, cols] block with row stride `stride` is finite (a non-empty
// block with a null data pointer is rejected first, rather than read).
template <typename T>
void finite(const char* name, const T* data, std::ptrdiff_t rows, std::ptrdiff_t cols,
            std::ptrdiff_t stride) {
  ETK_CHECK(data != nullptr || rows <= 0 || cols <= 0, "argument '" << name << "' has a null data pointer");
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

// a * b + c into `out` if no step overflows std::ptrdiff_t (GCC/Clang builtins).
inline bool mul_add_fits(std::ptrdiff_t a, std::ptrdiff_t b, std::ptrdiff_t c, std::ptrdiff_t& out) {
  std::ptrdiff_t m = 0;
  return !__builtin_mul_overflow(a, b, &m) && !__builtin_add_overflow(m, c, &out);
}

// A well-formed heads view: positive sizes, strides that do not overlap rows or heads,
// and an extent (last element + 1, in elements and in bytes) that is representable, so
// that no index or address offset computed inside the view overflows.
template <typename T>
void heads_layout(const char* name, const HeadsView<T>& v) {
  ETK_CHECK(v.heads > 0, "argument '" << name << "' must have at least one head, got "
                                      << v.heads);
  ETK_CHECK(v.seq > 0, "argument '" << name << "' is an empty sequence (seq = " << v.seq
                                    << ")");
  ETK_CHECK(v.dim > 0, "argument '" << name << "' has dim " << v.dim << ", expected > 0");
  ETK_CHECK(v.data != nullptr, "argument '" << name << "' has a null data pointer");
  ETK_CHECK(v.row_stride >= v.dim, "argument '" << name << "' row stride " << v.row_stride
                                                << " is smaller than dim " << v.dim);
  std::ptrdiff_t head_rows = 0, row_end = 0, extent = 0, bytes = 0;
  ETK_CHECK(mul_add_fits(v.seq, v.row_stride, 0, head_rows) &&
                mul_add_fits(v.seq - 1, v.row_stride, v.dim, row_end) &&
                mul_add_fits(v.heads - 1, v.head_stride, row_end, extent) &&
                mul_add_fits(extent, static_cast<std::ptrdiff_t>(sizeof(T)), 0, bytes),
            "argument '" << name << "' spans more elements than an index can hold (heads "
                         << v.heads << ", seq " << v.seq << ", dim " << v.dim << ", row stride "
                         << v.row_stride << ", head stride " << v.head_stride << ")");
  // Two layouts keep heads apart: head-major (each head a block of rows) and
  // column-interleaved (heads side by side within each row, e.g. the heads of a
  // [seq, heads * dim] projection output viewed in place).
  std::ptrdiff_t row_width = 0;
  const bool head_major = v.head_stride >= head_rows;
  const bool interleaved = v.head_stride >= v.dim &&
                           mul_add_fits(v.heads - 1, v.head_stride, v.dim, row_width) &&
                           v.row_stride >= row_width;
  ETK_CHECK(v.heads == 1 || head_major || interleaved,
            "argument '" << name << "' head stride " << v.head_stride
                         << " overlaps rows (needs >= seq * row_stride = " << head_rows
                         << ", or heads side by side in a row: >= dim " << v.dim
                         << " with row stride >= (heads - 1) * head_stride + dim)");
}

// Rows of a [rows, cols] output with row stride `stride` do not overlap each other
// (stride >= cols; a single row may have any stride), so no element is written twice.
inline void rows_disjoint(const char* name, std::ptrdiff_t rows, std::ptrdiff_t cols,
                          std::ptrdiff_t stride) {
  ETK_CHECK(rows <= 1 || stride >= cols,
            "argument '" << name << "' has row stride " << stride << " smaller than its " << cols
                         << " columns: its rows overlap");
}

namespace detail::overlap {
// The element intervals [begin, end) of a heads view (addresses as integers, in bytes).
struct Interval {
  std::uintptr_t begin, end;
  int owner;
};
template <typename T>
void append_rows(const HeadsView<T>& v, int owner, std::vector<Interval>& out) {
  const auto base = reinterpret_cast<std::uintptr_t>(v.data);
  const auto bytes = static_cast<std::uintptr_t>(sizeof(T));
  for (std::ptrdiff_t h = 0; h < v.heads; ++h)
    for (std::ptrdiff_t i = 0; i < v.seq; ++i) {
      const auto first = base + static_cast<std::uintptr_t>(h * v.head_stride + i * v.row_stride) * bytes;
      out.push_back({first, first + static_cast<std::uintptr_t>(v.dim) * bytes, owner});
    }
}
// Byte range [lo, hi) spanned by a (well-formed, see heads_layout) view.
template <typename T>
std::pair<std::uintptr_t, std::uintptr_t> span(const HeadsView<T>& v) {
  const auto base = reinterpret_cast<std::uintptr_t>(v.data);
  const std::ptrdiff_t last = (v.heads - 1) * v.head_stride + (v.seq - 1) * v.row_stride + v.dim;
  return {base, base + static_cast<std::uintptr_t>(last) * sizeof(T)};
}
}  // namespace detail::overlap

// Views a and b (both passed heads_layout) share no element. O(1) when their address
// ranges are apart; otherwise (e.g. q, k, v and out interleaved in one buffer) an exact
// sweep over their rows, O(R log R) for R rows in both. Kernels that write `a` while
// reading `b` call this: an output must never alias an input.
template <typename T, typename U>
void no_overlap(const char* name_a, const HeadsView<T>& a, const char* name_b,
                const HeadsView<U>& b) {
  const auto sa = detail::overlap::span(a), sb = detail::overlap::span(b);
  if (sa.second <= sb.first || sb.second <= sa.first) return;
  std::vector<detail::overlap::Interval> rows;
  rows.reserve(static_cast<std::size_t>(a.heads * a.seq + b.heads * b.seq));
  detail::overlap::append_rows(a, 0, rows);
  detail::overlap::append_rows(b, 1, rows);
  std::sort(rows.begin(), rows.end(),
            [](const detail::overlap::Interval& x, const detail::overlap::Interval& y) { return x.begin < y.begin; });
  // Sweep in order of start: a row overlaps an earlier row of the other view iff it starts
  // before the furthest end seen so far in that view.
  std::uintptr_t reach[2] = {0, 0};
  for (const detail::overlap::Interval& r : rows) {
    ETK_CHECK(r.begin >= reach[1 - r.owner],
              "argument '" << name_a << "' overlaps argument '" << name_b
                           << "' in memory; the output must not alias an input");
    reach[r.owner] = std::max(reach[r.owner], r.end);
  }
}

}  // namespace check
ETK_END_NAMESPACE
