// Test helpers for attention kernels: random [heads, seq, dim] buffers with optional
// padding between rows and heads (padding holds NaN, so a kernel that reads outside its
// view produces NaN and fails), and the error bound of an fp32 softmax attention against
// an exact (double) reference, derived in docs/numerics.md "Dense attention".
#pragma once

#include <etk/core/tensor_view.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <vector>

namespace etk_test {

// A [heads, seq, dim] buffer whose rows are `dim + row_pad` and heads
// `seq * row_stride + head_pad` floats apart; padding is NaN.
struct HeadsBuffer {
  std::vector<float> data;
  std::ptrdiff_t heads, seq, dim, row_stride, head_stride;

  HeadsBuffer(std::ptrdiff_t h, std::ptrdiff_t s, std::ptrdiff_t d, std::ptrdiff_t row_pad = 0,
              std::ptrdiff_t head_pad = 0)
      : heads(h), seq(s), dim(d), row_stride(d + row_pad), head_stride(s * (d + row_pad) + head_pad) {
    data.assign(static_cast<std::size_t>(std::max<std::ptrdiff_t>(1, h * head_stride)),
                std::numeric_limits<float>::quiet_NaN());
  }
  float& at(std::ptrdiff_t h, std::ptrdiff_t i, std::ptrdiff_t d) {
    return data[static_cast<std::size_t>(h * head_stride + i * row_stride + d)];
  }
  float at(std::ptrdiff_t h, std::ptrdiff_t i, std::ptrdiff_t d) const {
    return data[static_cast<std::size_t>(h * head_stride + i * row_stride + d)];
  }
  void fill_normal(std::mt19937& rng, float sigma) {
    std::normal_distribution<float> dist(0.0f, sigma);
    for (std::ptrdiff_t h = 0; h < heads; ++h)
      for (std::ptrdiff_t i = 0; i < seq; ++i)
        for (std::ptrdiff_t d = 0; d < dim; ++d) at(h, i, d) = dist(rng);
  }
  void fill(float value) {
    for (std::ptrdiff_t h = 0; h < heads; ++h)
      for (std::ptrdiff_t i = 0; i < seq; ++i)
        for (std::ptrdiff_t d = 0; d < dim; ++d) at(h, i, d) = value;
  }
  etk::HeadsView<float> view() {
    return etk::HeadsView<float>(data.data(), heads, seq, dim, row_stride, head_stride);
  }
  etk::HeadsView<const float> cview() const {
    return etk::HeadsView<const float>(data.data(), heads, seq, dim, row_stride, head_stride);
  }
};

// Unit roundoff of float.
constexpr double kUnitRoundoff = 1.0 / (1 << 24);
// Relative error of the vectorised 2^x (polynomial truncation ~2u, 6 FMA roundings, the
// exact power-of-two scaling): at most 9u; std::exp2 is within 1u.
constexpr double kExp2Ulps = 9.0;

// Perturbation bound delta of the logits of query i of head h, in natural units:
// (dk + 5) u * scale * |q_i| * max_j |k_j| (fp32 dot products of length dk, rounding of
// q * scale * log2(e), of that factor, and of the shift by the row max).
inline double logit_error_bound(const HeadsBuffer& q, const HeadsBuffer& k, double scale,
                                std::ptrdiff_t h, std::ptrdiff_t i) {
  auto norm = [](const HeadsBuffer& b, std::ptrdiff_t hh, std::ptrdiff_t r) {
    double s = 0;
    for (std::ptrdiff_t d = 0; d < b.dim; ++d) s += double(b.at(hh, r, d)) * b.at(hh, r, d);
    return std::sqrt(s);
  };
  double kmax = 0;
  for (std::ptrdiff_t j = 0; j < k.seq; ++j) kmax = std::max(kmax, norm(k, h, j));
  return (double(q.dim) + 5.0) * kUnitRoundoff * scale * norm(q, h, i) * kmax;
}

// Bound on |o_fast - o_exact| for one output row: Vmax * (2 expm1(delta) +
// (2 c_e + 2 n_k + 3 n_blocks + 4) u), Vmax = max |v|, n_blocks = key blocks visited.
inline double output_error_bound(double delta, double vmax, std::ptrdiff_t n_k,
                                 std::ptrdiff_t n_blocks) {
  return vmax * (2.0 * std::expm1(delta) +
                 (2.0 * kExp2Ulps + 2.0 * double(n_k) + 3.0 * double(n_blocks) + 4.0) * kUnitRoundoff);
}

// Bound on |p_fast - p_exact| for one probability: p * (2 expm1(delta) + (2 c_e + n_k + 4) u)
// plus 2^-125 for probabilities that underflow to 0 in fp32.
inline double prob_error_bound(double delta, double p, std::ptrdiff_t n_k) {
  return p * (2.0 * std::expm1(delta) + (2.0 * kExp2Ulps + double(n_k) + 4.0) * kUnitRoundoff) +
         std::ldexp(1.0, -125);
}

}  // namespace etk_test
