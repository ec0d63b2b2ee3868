// etk/pruning/detail/column_sums.hpp: acc[j] += sum_i rows(i, j), the inner loop of the
// token importance score (a column sum over heads and queries).
//
// Four rows are combined per pass ((r0 + r1) + (r2 + r3), then added to acc) so that
// acc is loaded and stored once per four rows; Eigen's packet code vectorises the
// columns for whatever ISA the translation unit is built for (SSE2, AVX2, AVX-512), so
// one source serves every path and ETK_FORCE_SCALAR needs nothing special.
// Rounding: each acc[j] is a sum of non-negative terms; the blocked order is one of the
// orders covered by the recursive-summation bound (see docs/numerics.md, Token pruning).
#pragma once

#include <Eigen/Core>
#include <cstddef>

#include "etk/config.hpp"

ETK_BEGIN_NAMESPACE
namespace detail::pruning {

template <typename T>
void add_column_sums(T* acc, const T* rows, std::ptrdiff_t n_rows, std::ptrdiff_t n_cols,
                     std::ptrdiff_t row_stride) {
  using Arr = Eigen::Array<T, Eigen::Dynamic, 1>;
  Eigen::Map<Arr> a(acc, n_cols);
  std::ptrdiff_t i = 0;
  for (; i + 4 <= n_rows; i += 4) {
    const T* p = rows + i * row_stride;
    Eigen::Map<const Arr> r0(p, n_cols), r1(p + row_stride, n_cols),
        r2(p + 2 * row_stride, n_cols), r3(p + 3 * row_stride, n_cols);
    a += (r0 + r1) + (r2 + r3);
  }
  for (; i < n_rows; ++i) a += Eigen::Map<const Arr>(rows + i * row_stride, n_cols);
}

}  // namespace detail::pruning
ETK_END_NAMESPACE
