// bench/attention/attention_problem.hpp: the multi-head attention problem every attention
// benchmark times (etk's kernels and the peers'): heads x [seq, dim] of N(0, 1) q, k, v,
// and its FLOP count 4 * heads * seq^2 * dim (the two products).
#pragma once

#include <etk/core/tensor_view.hpp>

#include <cstddef>
#include <random>
#include <vector>

namespace bench {

struct AttentionProblem {
  std::ptrdiff_t heads, seq, dim;
  std::vector<float> q, k, v, out;
  AttentionProblem(std::ptrdiff_t h, std::ptrdiff_t n, std::ptrdiff_t d)
      : heads(h), seq(n), dim(d), q(h * n * d), k(q.size()), v(q.size()), out(q.size()) {
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (auto* b : {&q, &k, &v})
      for (auto& x : *b) x = dist(rng);
  }
  etk::HeadsView<const float> view(const std::vector<float>& b) const {
    return etk::HeadsView<const float>(b.data(), heads, seq, dim);
  }
  etk::HeadsView<float> out_view() { return etk::HeadsView<float>(out.data(), heads, seq, dim); }
  double flops() const { return 4.0 * double(heads) * double(seq) * double(seq) * double(dim); }
};

}  // namespace bench
