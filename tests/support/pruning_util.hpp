// Test helpers of the pruning module: random attention probabilities with the layout
// the kernels take ([heads, n_q, n_k], optional padded row stride).
#pragma once

#include <etk/core/tensor_view.hpp>

#include <cmath>
#include <random>
#include <vector>

namespace pruning_test {

// Softmax rows of random logits (scale sets how peaked they are). Row stride n_k + pad.
struct Probs {
  std::vector<float> data;
  std::ptrdiff_t heads, n_q, n_k, stride;
  etk::HeadsView<const float> view() const {
    return etk::HeadsView<const float>(data.data(), heads, n_q, n_k, stride, n_q * stride);
  }
  float& at(std::ptrdiff_t h, std::ptrdiff_t i, std::ptrdiff_t j) {
    return data[static_cast<std::size_t>((h * n_q + i) * stride + j)];
  }
};

inline Probs random_probs(std::ptrdiff_t heads, std::ptrdiff_t n_q, std::ptrdiff_t n_k, std::mt19937& rng,
                          float scale = 3.0f, std::ptrdiff_t pad = 0) {
  Probs p{std::vector<float>(static_cast<std::size_t>(heads * n_q * (n_k + pad)), -7.0f), heads, n_q, n_k,
          n_k + pad};
  std::normal_distribution<float> nd(0.0f, scale);
  for (std::ptrdiff_t h = 0; h < heads; ++h)
    for (std::ptrdiff_t i = 0; i < n_q; ++i) {
      double sum = 0;
      std::vector<double> e(static_cast<std::size_t>(n_k));
      for (auto& v : e) sum += (v = std::exp(double(nd(rng))));
      for (std::ptrdiff_t j = 0; j < n_k; ++j) p.at(h, i, j) = static_cast<float>(e[j] / sum);
    }
  return p;
}

}  // namespace pruning_test
