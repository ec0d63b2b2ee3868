// Test data shared by the tests of etk/search: correlated activations, Gaussian weights,
// and a read-only view of a matrix.
#pragma once

#include <etk/core/tensor_view.hpp>

#include <algorithm>
#include <cstddef>
#include <random>

namespace search_test {

using etk::RowMatrixXf;

// [rows, channels] calibration-like activations: channels correlated through
// channels/4 latent factors, plus noise and an offset of 0.5. With `outlier_channels`,
// channel c is scaled by 8 when c % 7 == 3 and by 1 + 0.1 * (c % 5) otherwise.
inline RowMatrixXf activations(std::ptrdiff_t rows, std::ptrdiff_t channels, unsigned seed,
                               bool outlier_channels) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  const std::ptrdiff_t factors = std::max<std::ptrdiff_t>(1, channels / 4);
  RowMatrixXf mix(factors, channels), f(rows, factors);
  for (std::ptrdiff_t i = 0; i < mix.size(); ++i) mix.data()[i] = g(rng);
  for (std::ptrdiff_t i = 0; i < f.size(); ++i) f.data()[i] = g(rng);
  RowMatrixXf x = f * mix;
  for (std::ptrdiff_t r = 0; r < rows; ++r)
    for (std::ptrdiff_t c = 0; c < channels; ++c) {
      const float scale =
          !outlier_channels ? 1.0f : (c % 7 == 3 ? 8.0f : 1.0f + 0.1f * float(c % 5));
      x(r, c) = (x(r, c) + 0.3f * g(rng)) * scale + 0.5f;
    }
  return x;
}

inline RowMatrixXf random_matrix(std::ptrdiff_t rows, std::ptrdiff_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  RowMatrixXf w(rows, cols);
  for (std::ptrdiff_t i = 0; i < w.size(); ++i) w.data()[i] = g(rng);
  return w;
}

inline etk::ConstMatrixView<float> view(const RowMatrixXf& m) {
  return etk::matrix_view(m.data(), m.rows(), m.cols(), m.cols());
}

}  // namespace search_test
