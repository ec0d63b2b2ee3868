// A synthetic long-context decoding workload (used by tests/attention/test_decode_accuracy
// and bench/attention/bm_decode). Its profile, per KV head of dim d:
//  * a head direction u (random unit vector); the g query heads of the group share it:
//    q = a * u + N(0, 1) per dim (a = sqrt(d) / 2, so heads of a group agree on
//    which keys matter but not exactly);
//  * keys k_j = N(0, 1) per dim + c_j * u with
//      - attention sinks: c_j = 12 for the first 4 positions,
//      - a local window: c_j += 6 * exp(-(n - 1 - j) / 32) for the most recent keys,
//      - heavy-tailed far keys: with probability 1/64 a key gets c_j += 4 * |t_2|
//        (Student t, 2 degrees of freedom: rare, occasionally very large, matches);
//  * values v_j = N(0, 1) per dim.
// With logits q.k / sqrt(d) this gives rows whose mass sits on the sinks, the recent
// window and a few far matches over a Gaussian bulk. It is a stated stand-in, not a model.
#pragma once

#include <cmath>
#include <cstddef>
#include <random>
#include <vector>

namespace decode_workload {

struct Workload {
  std::ptrdiff_t kv_heads, group, n, dim, nq;
  std::vector<float> k, v, q;  // [kv_heads][n][dim], same for v; q [kv_heads*group][nq][dim]
};

inline Workload make(std::ptrdiff_t kv_heads, std::ptrdiff_t group, std::ptrdiff_t n,
                     std::ptrdiff_t dim, std::ptrdiff_t nq, unsigned seed) {
  Workload w{kv_heads, group, n, dim, nq, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_real_distribution<float> ud(0.0f, 1.0f);
  std::student_t_distribution<float> td(2.0f);
  w.k.resize(std::size_t(kv_heads * n * dim));
  w.v.resize(w.k.size());
  w.q.resize(std::size_t(kv_heads * group * nq * dim));
  const float a = 0.5f * std::sqrt(float(dim));
  for (std::ptrdiff_t h = 0; h < kv_heads; ++h) {
    std::vector<float> u(static_cast<std::size_t>(dim));
    float norm = 0.0f;
    for (float& x : u) {
      x = nd(rng);
      norm += x * x;
    }
    for (float& x : u) x /= std::sqrt(norm);
    for (std::ptrdiff_t j = 0; j < n; ++j) {
      float c = j < 4 ? 12.0f : 0.0f;
      c += 6.0f * std::exp(-float(n - 1 - j) / 32.0f);
      if (ud(rng) < 1.0f / 64.0f) c += 4.0f * std::abs(td(rng));
      c = std::min(c, 40.0f);
      float* k = &w.k[std::size_t((h * n + j) * dim)];
      float* v = &w.v[std::size_t((h * n + j) * dim)];
      for (std::ptrdiff_t t = 0; t < dim; ++t) {
        k[t] = nd(rng) + c * u[std::size_t(t)];
        v[t] = nd(rng);
      }
    }
    for (std::ptrdiff_t g = 0; g < group; ++g)
      for (std::ptrdiff_t i = 0; i < nq; ++i) {
        float* q = &w.q[std::size_t((((h * group + g) * nq) + i) * dim)];
        for (std::ptrdiff_t t = 0; t < dim; ++t) q[t] = a * u[std::size_t(t)] + nd(rng);
      }
  }
  return w;
}

}  // namespace decode_workload
