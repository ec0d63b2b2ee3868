// etk/core/span.hpp: a read-only pointer + size, for the small vectors (scales, biases,
// zero points) kernels take, so a caller passes a std::vector, an Eigen vector, an array
// or a raw pointer without building a std::vector.
//
// C++17 has no std::span; this is the subset etk needs. It never owns memory.
#pragma once

#include <Eigen/Core>
#include <cstddef>
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
  template <int Rows, int Cols, int Options>
  Span(const Eigen::Matrix<T, Rows, Cols, Options>& v)  // NOLINT(google-explicit-constructor)
      : data_(v.data()), size_(v.size()) {}
  Span(std::initializer_list<T> list)  // valid for the full expression that holds it
      : data_(list.begin()), size_(static_cast<std::ptrdiff_t>(list.size())) {}

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
