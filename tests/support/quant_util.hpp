// Test helpers of the quant module: seeded random matrices and plain views.
#pragma once

#include <etk/core/tensor_view.hpp>

#include <cstdint>
#include <random>
#include <vector>

namespace quant_test {

// The awkward sizes every fast path is compared on.
inline const std::vector<std::ptrdiff_t>& awkward_sizes() {
  static const std::vector<std::ptrdiff_t> s = {1, 2, 3, 5, 7, 8, 9, 13, 15, 16, 17, 31, 33, 63, 65};
  return s;
}

inline etk::RowMatrixXf gaussian(std::ptrdiff_t rows, std::ptrdiff_t cols, std::uint32_t seed,
                                 float sigma = 1.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  etk::RowMatrixXf m(rows, cols);
  for (std::ptrdiff_t i = 0; i < m.size(); ++i) m.data()[i] = d(gen);
  return m;
}

inline etk::RowMatrixXf laplace(std::ptrdiff_t rows, std::ptrdiff_t cols, std::uint32_t seed,
                                float b = 1.0f) {
  std::mt19937 gen(seed);
  std::exponential_distribution<float> e(1.0f / b);
  std::bernoulli_distribution sign(0.5);
  etk::RowMatrixXf m(rows, cols);
  for (std::ptrdiff_t i = 0; i < m.size(); ++i) m.data()[i] = sign(gen) ? e(gen) : -e(gen);
  return m;
}

template <typename T>
etk::ConstMatrixView<T> cview(const etk::RowMatrix<T>& m) {
  return etk::matrix_view(m.data(), m.rows(), m.cols(), m.cols());
}
template <typename T>
etk::MatrixView<T> view(etk::RowMatrix<T>& m) {
  return etk::matrix_view(m.data(), m.rows(), m.cols(), m.cols());
}

}  // namespace quant_test
