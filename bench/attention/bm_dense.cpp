// Dense multi-head attention: the fast kernel (1 and 2 threads) beside its reference, a
// straightforward Eigen attention that materialises the scores, an Eigen sgemm with the
// same FLOP count (M = N = seq, K = 2 * heads * dim), and Eigen's 1024^3 sgemm, so one run
// gives every ratio. FLOPs of attention: 4 * heads * n_q * n_k * dim (the two GEMMs).
// Shapes: heads 12, dim 64, seq 128..4096 (reference to 1024); the real model's heads 8,
// dim 15, seq 40 and 160. Single-threaded rates are per CPU second (robust on a shared
// machine); the two-thread runs are per wall-clock second. Names follow scripts/bench:
// `baseline` marks the family each kernel is compared with, `machine_limit` the
// GFLOP/s every row is related to.
#include <benchmark/benchmark.h>
#include <etk/attention/dense.hpp>
#include <etk/attention/reference/dense.hpp>

#include "attention/attention_problem.hpp"

#include <cmath>
#include <random>
#include <vector>

namespace {

using Problem = bench::AttentionProblem;

void set_rate(benchmark::State& state, double flops_per_iteration) {
  state.counters["GFLOP/s"] = benchmark::Counter(flops_per_iteration * double(state.iterations()) / 1e9,
                                                 benchmark::Counter::kIsRate);
}

// args: heads, seq, dim (and threads for the fast kernel).
void BM_dense_fast(benchmark::State& state) {
  Problem p(state.range(0), state.range(1), state.range(2));
  const etk::AttentionParams params;
  etk::SimpleThreadPool pool(static_cast<int>(state.range(3)));
  etk::ScratchArena arena;
  const etk::Context ctx{&pool, &arena};
  arena.reserve(etk::dense_attention_scratch_bytes(p.view(p.q).seq, p.view(p.k).seq,
                                                   p.view(p.q).dim, p.view(p.v).dim, false, ctx));
  for (auto _ : state) {
    etk::dense_attention(p.view(p.q), p.view(p.k), p.view(p.v), p.out_view(), params, ctx);
    benchmark::DoNotOptimize(p.out.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, p.flops());
}

void BM_dense_reference(benchmark::State& state) {
  Problem p(state.range(0), state.range(1), state.range(2));
  for (auto _ : state) {
    etk::reference::dense_attention(p.view(p.q), p.view(p.k), p.view(p.v), p.out_view());
    benchmark::DoNotOptimize(p.out.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, p.flops());
}

// What one writes with Eigen directly: S = scale * Q K^T, row softmax, O = S V, per head.
void BM_dense_eigen_naive(benchmark::State& state) {
  Problem p(state.range(0), state.range(1), state.range(2));
  const float scale = 1.0f / std::sqrt(float(p.dim));
  etk::RowMatrixXf s(p.seq, p.seq);
  for (auto _ : state) {
    for (std::ptrdiff_t h = 0; h < p.heads; ++h) {
      const auto q = p.view(p.q).head(h), k = p.view(p.k).head(h), v = p.view(p.v).head(h);
      s.noalias() = (q * k.transpose()) * scale;
      s = (s.colwise() - s.rowwise().maxCoeff()).array().exp().matrix();
      s = s.array().colwise() / s.array().rowwise().sum();
      p.out_view().head(h).noalias() = s * v;
    }
    benchmark::DoNotOptimize(p.out.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, p.flops());
}

// An Eigen sgemm doing the attention's FLOPs: [seq, 2*heads*dim] x [2*heads*dim, seq].
void BM_baseline_sgemm_same_flops(benchmark::State& state) {
  const std::ptrdiff_t heads = state.range(0), n = state.range(1), d = state.range(2);
  const std::ptrdiff_t depth = 2 * heads * d;
  etk::RowMatrixXf a = etk::RowMatrixXf::Random(n, depth), b = etk::RowMatrixXf::Random(depth, n),
                   c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, 2.0 * double(n) * double(n) * double(depth));
}

// Eigen's sgemm at 1024^3: the machine's practical fp32 limit through Eigen.
void BM_machine_limit_sgemm_1024(benchmark::State& state) {
  const std::ptrdiff_t n = 1024;
  etk::RowMatrixXf a = etk::RowMatrixXf::Random(n, n), b = etk::RowMatrixXf::Random(n, n), c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  set_rate(state, 2.0 * double(n) * double(n) * double(n));
}

void model_shapes(benchmark::internal::Benchmark* b, bool threads, std::ptrdiff_t max_seq) {
  for (std::ptrdiff_t n : {128, 256, 512, 1024, 2048, 4096})
    if (n <= max_seq) threads ? b->Args({12, n, 64, 1}) : b->Args({12, n, 64});
  for (std::ptrdiff_t n : {40, 160}) threads ? b->Args({8, n, 15, 1}) : b->Args({8, n, 15});
}

}  // namespace

BENCHMARK(BM_machine_limit_sgemm_1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_dense_fast)
    ->ArgNames({"heads", "seq", "dim", "threads"})
    ->Apply([](benchmark::internal::Benchmark* b) { model_shapes(b, true, 4096); })
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_dense_fast)
    ->ArgNames({"heads", "seq", "dim", "threads"})
    ->Args({12, 1024, 64, 2})
    ->Args({12, 4096, 64, 2})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(BM_dense_reference)
    ->ArgNames({"heads", "seq", "dim"})
    ->Apply([](benchmark::internal::Benchmark* b) { model_shapes(b, false, 1024); })
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_dense_eigen_naive)
    ->ArgNames({"heads", "seq", "dim"})
    ->Apply([](benchmark::internal::Benchmark* b) { model_shapes(b, false, 4096); })
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_baseline_sgemm_same_flops)
    ->ArgNames({"heads", "seq", "dim"})
    ->Apply([](benchmark::internal::Benchmark* b) { model_shapes(b, false, 4096); })
    ->Unit(benchmark::kMicrosecond);
