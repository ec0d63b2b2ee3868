// LATTE vs the fast dense attention, one thread, same binary, same inputs.
//
// Shapes: 12 heads, dim 64, seq 256..4096. Inputs are synthetic with attention as
// concentrated as the real model's: K ~ N(0, 1); each query is
// c * (N(0, 0.5^2) noise + 0.45 * (k_a + k_b)) for two random keys a, b of its head, so
// every row has two dominant keys over a Gaussian bulk. The temperature c is found per
// seq by bisection so that the mean largest attention probability (dense softmax, 48
// rows) is 0.5: between the real model's block 1 (~0.3) and block 2 (~0.93)
// (/work/shared/notes/real-model.md). Without it (c = 1) the largest probability falls
// from 0.14 at seq 256 to 0.01 at 4096, far flatter than the real model.
// Per head, theta is calibrated with latte_calibrate_keep_ratio on 128 query rows of the
// same distribution to keep 50/25/15/10/5% of the keys (= filter 50/75/85/90/95%); the
// share actually filtered and the mean largest probability are reported as counters.
// Counters: GFLOPs_eq = dense-equivalent 4*H*N^2*d flops per second; keys_per_s = (query,
// key) pairs per second; filtered = measured share of keys filtered.
#include <benchmark/benchmark.h>

#include <etk/attention/dense.hpp>
#include <etk/attention/latte.hpp>
#include <etk/attention/latte_threshold.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <vector>

namespace {

constexpr std::ptrdiff_t kHeads = 12, kDim = 64;

struct Inputs {
  std::ptrdiff_t n;
  std::vector<float> q, k, v, o;
  etk::HeadsView<const float> Q() const { return {q.data(), kHeads, n, kDim}; }
  etk::HeadsView<const float> K() const { return {k.data(), kHeads, n, kDim}; }
  etk::HeadsView<const float> V() const { return {v.data(), kHeads, n, kDim}; }
  etk::HeadsView<float> O() { return {o.data(), kHeads, n, kDim}; }
  std::map<int, std::vector<float>> theta;  // keep percent -> per-head thresholds
  double temperature = 1, max_prob = 0;
};

// Queries of head h: c * (0.5 * noise + 0.45 * (k_a + k_b)), reproducible per (n, seed).
void make_queries(Inputs& in, double c, unsigned seed, std::ptrdiff_t rows) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::uniform_int_distribution<std::ptrdiff_t> key(0, in.n - 1);
  for (std::ptrdiff_t h = 0; h < kHeads; ++h)
    for (std::ptrdiff_t i = 0; i < rows; ++i) {
      const float* ka = &in.k[std::size_t((h * in.n + key(rng)) * kDim)];
      const float* kb = &in.k[std::size_t((h * in.n + key(rng)) * kDim)];
      float* q = &in.q[std::size_t((h * in.n + i) * kDim)];
      for (std::ptrdiff_t t = 0; t < kDim; ++t)
        q[t] = float(c) * (0.5f * nd(rng) + 0.45f * (ka[t] + kb[t]));
    }
}

// Mean over the first 4 query rows of every head of the largest dense probability.
double mean_max_prob(const Inputs& in) {
  double sum = 0;
  int rows = 0;
  std::vector<double> l(static_cast<std::size_t>(in.n));
  for (std::ptrdiff_t h = 0; h < kHeads; ++h)
    for (std::ptrdiff_t i = 0; i < 4; ++i, ++rows) {
      const float* q = &in.q[std::size_t((h * in.n + i) * kDim)];
      for (std::ptrdiff_t j = 0; j < in.n; ++j) {
        const float* k = &in.k[std::size_t((h * in.n + j) * kDim)];
        double s = 0;
        for (std::ptrdiff_t t = 0; t < kDim; ++t) s += double(q[t]) * k[t];
        l[std::size_t(j)] = s / std::sqrt(double(kDim));
      }
      const double m = *std::max_element(l.begin(), l.end());
      double z = 0;
      for (double x : l) z += std::exp(x - m);
      sum += 1.0 / z;
    }
  return sum / rows;
}

const Inputs& inputs(std::ptrdiff_t n) {
  static std::map<std::ptrdiff_t, std::unique_ptr<Inputs>> cache;
  auto& slot = cache[n];
  if (slot) return *slot;
  slot = std::make_unique<Inputs>();
  Inputs& in = *slot;
  in.n = n;
  const auto size = std::size_t(kHeads * n * kDim);
  in.q.resize(size), in.k.resize(size), in.v.resize(size), in.o.resize(size);
  std::mt19937 rng(1234 + unsigned(n));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& x : in.k) x = nd(rng);
  for (float& x : in.v) x = nd(rng);
  // Temperature by bisection on the mean largest probability (target 0.5).
  double lo = 0.5, hi = 6.0;
  for (int it = 0; it < 16; ++it) {
    const double mid = 0.5 * (lo + hi);
    make_queries(in, mid, 99 + unsigned(n), 4);
    (mean_max_prob(in) < 0.5 ? lo : hi) = mid;
  }
  in.temperature = 0.5 * (lo + hi);
  make_queries(in, in.temperature, 4321 + unsigned(n), n);
  in.max_prob = mean_max_prob(in);
  // Calibrate on 128 query rows (a strided sub-view of Q) against all keys.
  const std::ptrdiff_t rows = std::min<std::ptrdiff_t>(128, n);
  const etk::LatteSample sample{
      etk::HeadsView<const float>(in.q.data(), kHeads, rows, kDim, kDim, n * kDim), in.K(), in.V()};
  etk::LatteParams base;
  for (int keep : {50, 25, 15, 10, 5})
    in.theta[keep] = etk::latte_calibrate_keep_ratio({sample}, base, keep / 100.0);
  return in;
}

void set_counters(benchmark::State& state, std::ptrdiff_t n) {
  const double pairs = double(kHeads) * double(n) * double(n);
  state.counters["GFLOPs_eq"] = benchmark::Counter(4.0 * pairs * kDim * 1e-9 * double(state.iterations()),
                                                   benchmark::Counter::kIsRate);
  state.counters["keys_per_s"] =
      benchmark::Counter(pairs * double(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_latte(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  const int keep = int(state.range(1));
  Inputs& in = const_cast<Inputs&>(inputs(n));
  etk::LatteParams p;
  p.theta = in.theta.at(keep);
  etk::LatteStats st;
  for (auto _ : state) {
    etk::latte_attention(in.Q(), in.K(), in.V(), in.O(), p, &st);
    benchmark::DoNotOptimize(in.o.data());
  }
  set_counters(state, n);
  state.counters["filtered"] = st.filtered_fraction();
  state.counters["max_prob"] = in.max_prob;
}

void BM_dense(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  Inputs& in = const_cast<Inputs&>(inputs(n));
  for (auto _ : state) {
    etk::dense_attention(in.Q(), in.K(), in.V(), in.O());
    benchmark::DoNotOptimize(in.o.data());
  }
  set_counters(state, n);
}

void sweep(benchmark::internal::Benchmark* b, bool latte) {
  for (std::int64_t n : {256, 512, 1024, 2048, 4096}) {
    if (latte)
      for (std::int64_t keep : {50, 25, 15, 10, 5}) b->Args({n, keep});
    else
      b->Args({n});
  }
  b->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_dense)->ArgNames({"seq"})->Apply([](benchmark::internal::Benchmark* b) {
  sweep(b, false);
});
BENCHMARK(BM_latte)->ArgNames({"seq", "keep%"})->Apply([](benchmark::internal::Benchmark* b) {
  sweep(b, true);
});
