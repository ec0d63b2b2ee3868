// etk/core/tensor_view.hpp: the two shapes of data every etk kernel takes.
//
//  * a single head: a row-major [rows, cols] matrix, viewed as an unaligned Eigen::Map
//    with an outer (row) stride >= cols, so slices of larger buffers work without copies;
//  * multi-head data: one contiguous row-major [heads, seq, dim] buffer, where head h is
//    rows [h*seq, (h+1)*seq) of a [heads*seq, dim] matrix (optionally with a row stride).
// Views never own memory and never require alignment. They are outside the ISA namespace:
// a view made in a translation unit built without ISA flags is the same type in one built
// with -mavx512f (their member functions only compute addresses).
#pragma once

#include <Eigen/Core>
#include <cstddef>

#include "etk/config.hpp"

namespace etk {

template <typename T>
using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMatrixXf = RowMatrix<float>;

template <typename T>
using MatrixView = Eigen::Map<RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;
template <typename T>
using ConstMatrixView = Eigen::Map<const RowMatrix<T>, Eigen::Unaligned, Eigen::OuterStride<>>;

// A [rows, cols] row-major view of `data` whose consecutive rows are `row_stride`
// elements apart (row_stride == cols for a dense matrix).
template <typename T>
MatrixView<T> matrix_view(T* data, std::ptrdiff_t rows, std::ptrdiff_t cols,
                          std::ptrdiff_t row_stride) {
  return MatrixView<T>(data, rows, cols, Eigen::OuterStride<>(row_stride));
}
template <typename T>
ConstMatrixView<T> matrix_view(const T* data, std::ptrdiff_t rows, std::ptrdiff_t cols,
                               std::ptrdiff_t row_stride) {
  return ConstMatrixView<T>(data, rows, cols, Eigen::OuterStride<>(row_stride));
}

}  // namespace etk

// The view functions (templates, not types) are in the ISA namespace like every other
// etk function, so their helper can be an internal of etk::detail.
ETK_BEGIN_NAMESPACE

// Views of any Eigen dense object with direct access, row-major storage and an inner
// stride of 1 (Matrix<..., RowMajor>, Map, Ref, a Block of those, a MatrixView): the
// kernels' ConstMatrixView / MatrixView of the same memory, no copy. A column-major or
// inner-strided argument does not compile (it would need a copy).
namespace detail::view {
template <typename View, typename Derived>
View of(Derived& x) {
  static_assert(bool(Eigen::internal::traits<Derived>::Flags & Eigen::DirectAccessBit),
                "etk views need an expression with direct memory access");
  static_assert(Derived::IsRowMajor || Derived::RowsAtCompileTime == 1,
                "etk views need row-major storage");
  static_assert(Derived::InnerStrideAtCompileTime == 1, "etk views need an inner stride of 1");
  return View(x.data(), x.rows(), x.cols(),
              Eigen::OuterStride<>(x.rows() > 1 ? x.outerStride() : x.cols()));
}
}  // namespace detail::view

template <typename Derived>
ConstMatrixView<typename Derived::Scalar> const_view(const Eigen::DenseBase<Derived>& x) {
  return detail::view::of<ConstMatrixView<typename Derived::Scalar>>(x.derived());
}
template <typename Derived>
MatrixView<typename Derived::Scalar> mutable_view(Eigen::DenseBase<Derived>& x) {
  return detail::view::of<MatrixView<typename Derived::Scalar>>(x.derived());
}
// A temporary view (e.g. mutable_view(x.block(...)) or matrix_view(...)) as an output.
template <typename T>
MatrixView<T> mutable_view(MatrixView<T>&& x) {
  return x;
}

ETK_END_NAMESPACE

namespace etk {

// Multi-head [heads, seq, dim] data. `row_stride` is the distance between consecutive
// rows (>= dim); `head_stride` the distance between heads (>= seq * row_stride).
template <typename T>
struct HeadsView {
  T* data = nullptr;
  std::ptrdiff_t heads = 0;
  std::ptrdiff_t seq = 0;
  std::ptrdiff_t dim = 0;
  std::ptrdiff_t row_stride = 0;
  std::ptrdiff_t head_stride = 0;

  HeadsView() = default;
  // Dense, contiguous [heads, seq, dim]. The head stride seq * dim is computed with an
  // overflow check (an invalid_argument), so a huge size never wraps before
  // check::heads_layout sees the view.
  HeadsView(T* d, std::ptrdiff_t h, std::ptrdiff_t s, std::ptrdiff_t k)
      : data(d), heads(h), seq(s), dim(k), row_stride(k), head_stride(dense_head_stride(s, k)) {}
  HeadsView(T* d, std::ptrdiff_t h, std::ptrdiff_t s, std::ptrdiff_t k, std::ptrdiff_t rs,
            std::ptrdiff_t hs)
      : data(d), heads(h), seq(s), dim(k), row_stride(rs), head_stride(hs) {}
  // A mutable view converts to a read-only one.
  template <typename U, typename = std::enable_if_t<std::is_same<const U, T>::value &&
                                                    !std::is_same<U, T>::value>>
  HeadsView(const HeadsView<U>& o)  // NOLINT(google-explicit-constructor)
      : data(o.data), heads(o.heads), seq(o.seq), dim(o.dim), row_stride(o.row_stride),
        head_stride(o.head_stride) {}

  auto head(std::ptrdiff_t h) const {
    return matrix_view(data + h * head_stride, seq, dim, row_stride);
  }
  T* row(std::ptrdiff_t h, std::ptrdiff_t i) const { return data + h * head_stride + i * row_stride; }

 private:
  static std::ptrdiff_t dense_head_stride(std::ptrdiff_t s, std::ptrdiff_t k) {
    std::ptrdiff_t hs = 0;
    ETK_CHECK(!__builtin_mul_overflow(s, k, &hs),
              "heads view: seq " << s << " x dim " << k << " overflows an index");
    return hs;
  }
};

template <typename T>
HeadsView<T> heads_view(T* data, std::ptrdiff_t heads, std::ptrdiff_t seq, std::ptrdiff_t dim) {
  return HeadsView<T>(data, heads, seq, dim);
}

// Heads [first, first + count) of a view, as a view with the same strides (e.g. one head
// for a kernel that takes HeadsView).
template <typename T>
HeadsView<T> heads_slice(const HeadsView<T>& v, std::ptrdiff_t first, std::ptrdiff_t count = 1) {
  return HeadsView<T>(v.data + first * v.head_stride, count, v.seq, v.dim, v.row_stride,
                      v.head_stride);
}

}  // namespace etk
