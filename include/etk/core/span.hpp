// etk/core/span.hpp: a read-only pointer + size, for the small vectors (scales, biases,
// zero points, thresholds) kernels take, so a caller passes a std::vector, a std::array,
// an Eigen vector (Matrix, Map, Ref or a contiguous Block), a braced list or a raw
// pointer + size without building a std::vector.
//
// C++17 has no std::span; this is the subset etk needs. It never owns memory.
#pragma once

#include <Eigen/Core>
#include <array>
#include <cstddef>
#include <initializer_list>
#include <type_traits>
#include <vector>

#include "etk/config.hpp"

namespace etk {

template <typename T>
class Span {
 public:
  Span() = default;
  Span(const T* data, std::ptrdiff_t size) : data_(data), size_(size) {}
  template <typename A>
  Span(const std::vector<T, A>& v)  // NOLINT(google-explicit-constructor)
      : data_(v.data()), size_(static_cast<std::ptrdiff_t>(v.size())) {}
  template <std::size_t N>
  Span(const std::array<T, N>& a)  // NOLINT(google-explicit-constructor)
      : data_(a.data()), size_(static_cast<std::ptrdiff_t>(N)) {}
  // Any Eigen vector with direct access to contiguous coefficients of type T.
  template <typename Derived,
            typename = std::enable_if_t<std::is_same<typename Derived::Scalar, T>::value &&
                                        Derived::IsVectorAtCompileTime &&
                                        (int(Derived::Flags) & int(Eigen::DirectAccessBit)) != 0>>
  Span(const Eigen::DenseBase<Derived>& v)  // NOLINT(google-explicit-constructor)
      : data_(v.derived().data()), size_(v.size()) {
    ETK_CHECK(v.size() <= 1 || v.derived().innerStride() == 1,
              "a span needs contiguous values, got an Eigen vector with inner stride " << v.derived().innerStride());
  }
  // A braced list as an argument, f({1.0f, 2.0f}): the span is valid for the full
  // expression that holds the call, which is all a kernel argument needs (GCC warns that
  // the list's lifetime is not extended, which is true and intended here).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winit-list-lifetime"
#endif
  Span(std::initializer_list<T> list)  // NOLINT(google-explicit-constructor)
      : data_(list.begin()), size_(static_cast<std::ptrdiff_t>(list.size())) {}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  const T* data() const { return data_; }
  std::ptrdiff_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const T& operator[](std::ptrdiff_t i) const { return data_[i]; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

 private:
  const T* data_ = nullptr;
  std::ptrdiff_t size_ = 0;
};

}  // namespace etk
