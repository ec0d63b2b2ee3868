// etk/core/reference/gemm_f32.hpp: the plain twin of etk::gemm_f32 (etk/core/gemm_f32.hpp):
// C = A·B (+ C) with each element summed in double in order and rounded once to float.
// Also returns, through `magnitude` (optional), sum_t |a_it| |b_tj| per element, the
// quantity the fast paths' error bound is proportional to.
#pragma once

#include <cmath>
#include <cstddef>

#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE
namespace reference {

inline void gemm_f32(ConstMatrixView<float> a, ConstMatrixView<float> b, MatrixView<float> c,
                     bool accumulate = false, MatrixView<double>* magnitude = nullptr) {
  ETK_CHECK(a.cols() == b.rows() && c.rows() == a.rows() && c.cols() == b.cols(),
            "reference::gemm_f32: shapes [" << a.rows() << ", " << a.cols() << "] x [" << b.rows() << ", "
                                            << b.cols() << "] -> [" << c.rows() << ", " << c.cols() << "]");
  for (std::ptrdiff_t i = 0; i < a.rows(); ++i)
    for (std::ptrdiff_t j = 0; j < b.cols(); ++j) {
      double s = accumulate ? double(c(i, j)) : 0.0, mag = accumulate ? std::fabs(double(c(i, j))) : 0.0;
      for (std::ptrdiff_t t = 0; t < a.cols(); ++t) {
        s += double(a(i, t)) * double(b(t, j));
        mag += std::fabs(double(a(i, t)) * double(b(t, j)));
      }
      c(i, j) = static_cast<float>(s);
      if (magnitude) (*magnitude)(i, j) = mag;
    }
}

}  // namespace reference
ETK_END_NAMESPACE
