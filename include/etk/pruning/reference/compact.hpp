// etk/pruning/reference/compact.hpp: the plain twin of compact.hpp (element loops, no
// aliasing support). Used by the tests only.
#pragma once

#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/pruning/selection.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

template <typename T>
RowMatrix<T> compact_rows(ConstMatrixView<T> x, const KeepSet& keep) {
  RowMatrix<T> out(static_cast<Eigen::Index>(keep.size()), x.cols());
  for (std::size_t r = 0; r < keep.size(); ++r)
    for (Eigen::Index c = 0; c < x.cols(); ++c) out(static_cast<Eigen::Index>(r), c) = x(keep[r], c);
  return out;
}

template <typename T>
void scatter_rows(ConstMatrixView<T> compact, const KeepSet& keep, MatrixView<T> full) {
  for (std::size_t r = 0; r < keep.size(); ++r)
    for (Eigen::Index c = 0; c < full.cols(); ++c) full(keep[r], c) = compact(static_cast<Eigen::Index>(r), c);
}

}  // namespace reference
ETK_END_NAMESPACE
