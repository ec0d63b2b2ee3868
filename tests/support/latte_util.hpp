// Helpers for the LATTE tests: random multi-head data with controllable concentration,
// and dense attention in double precision (the "obviously right" answer theta=+inf must
// reproduce).
#pragma once

#include <etk/core/tensor_view.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace latte_test {

struct Heads {
  std::ptrdiff_t heads, seq, dim;
  std::vector<float> data;
  Heads(std::ptrdiff_t h, std::ptrdiff_t s, std::ptrdiff_t d)
      : heads(h), seq(s), dim(d), data(std::size_t(h * s * d), 0.0f) {}
  etk::HeadsView<const float> view() const { return {data.data(), heads, seq, dim}; }
  etk::HeadsView<float> mview() { return {data.data(), heads, seq, dim}; }
  float* row(std::ptrdiff_t h, std::ptrdiff_t i) { return data.data() + (h * seq + i) * dim; }
  const float* row(std::ptrdiff_t h, std::ptrdiff_t i) const {
    return data.data() + (h * seq + i) * dim;
  }
};

inline Heads random_heads(std::ptrdiff_t h, std::ptrdiff_t s, std::ptrdiff_t d, std::mt19937& rng,
                          float sigma = 1.0f) {
  Heads x(h, s, d);
  std::normal_distribution<float> n(0.0f, sigma);
  for (float& v : x.data) v = n(rng);
  return x;
}

// Dense softmax(scale * Q K^T) V of head h in double, with the same mask geometry as LATTE:
// query i sees keys j < min(key_length, i + 1 + nk - nq) (causal) or j < key_length.
inline std::vector<double> dense_row(const Heads& Q, const Heads& K, const Heads& V,
                                     std::ptrdiff_t h, std::ptrdiff_t i, double scale,
                                     std::ptrdiff_t n) {
  std::vector<double> l(static_cast<std::size_t>(n)), o(static_cast<std::size_t>(V.dim), 0.0);
  double lmax = -INFINITY;
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    double s = 0;
    for (std::ptrdiff_t t = 0; t < Q.dim; ++t) s += double(Q.row(h, i)[t]) * K.row(h, j)[t];
    l[std::size_t(j)] = s * scale;
    lmax = std::max(lmax, l[std::size_t(j)]);
  }
  double z = 0;
  for (std::ptrdiff_t j = 0; j < n; ++j) {
    const double p = std::exp(l[std::size_t(j)] - lmax);
    z += p;
    for (std::ptrdiff_t c = 0; c < V.dim; ++c) o[std::size_t(c)] += p * V.row(h, j)[c];
  }
  for (double& v : o) v /= z;
  return o;
}

inline double max_abs(const std::vector<float>& x) {
  double m = 0;
  for (float v : x) m = std::max(m, double(std::abs(v)));
  return m;
}

inline double max_row_norm(const Heads& x) {
  double m = 0;
  for (std::ptrdiff_t r = 0; r < x.heads * x.seq; ++r) {
    double s = 0;
    for (std::ptrdiff_t t = 0; t < x.dim; ++t) s += double(x.data[std::size_t(r * x.dim + t)]) * x.data[std::size_t(r * x.dim + t)];
    m = std::max(m, std::sqrt(s));
  }
  return m;
}

}  // namespace latte_test
