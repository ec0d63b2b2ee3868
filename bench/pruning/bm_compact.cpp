// Cost of structured pruning's data movement against the layer it shortens: compaction of
// the kept rows of a [seq, 768] activation (50% kept, scattered), in place and into a new
// buffer, the inverse scatter, and the LTP importance column sums over 12 heads' [seq,
// seq] probabilities, each beside one dense attention layer (12 heads x 64, the
// baseline) at the same seq. The bar: compaction under 5% of the attention layer
// at seq 1024. Also the importance sums and top-k selection (nth_element) beside their
// plain references.
#include <benchmark/benchmark.h>

#include <etk/pruning/adaptive.hpp>
#include <etk/pruning/reference/adaptive.hpp>
#include <etk/pruning/reference/token_importance.hpp>

#include "pruning/encoder.hpp"

namespace {
using pruning_bench::RowMatrixXf;
constexpr std::ptrdiff_t kDim = 768, kHeads = 12, kHeadDim = 64;

etk::KeepSet half_kept(std::ptrdiff_t n) {
  std::mt19937 rng(3);
  etk::KeepSet k;
  for (std::ptrdiff_t j = 0; j < n; ++j)
    if (rng() % 2) k.push_back(static_cast<etk::TokenIndex>(j));
  return k;
}

void bytes_counter(benchmark::State& state, double bytes) {
  state.counters["GB/s"] = benchmark::Counter(bytes * double(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
}

void BM_Compact(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  std::mt19937 rng(1);
  const RowMatrixXf x = pruning_bench::random_matrix(n, kDim, 1.0f, rng);
  const etk::KeepSet keep = half_kept(n);
  RowMatrixXf out(static_cast<Eigen::Index>(keep.size()), kDim);
  for (auto _ : state) {
    etk::compact_rows<float>(etk::matrix_view(x.data(), n, kDim, kDim), keep,
                             etk::matrix_view(out.data(), out.rows(), kDim, kDim));
    benchmark::ClobberMemory();
  }
  bytes_counter(state, 2.0 * double(keep.size() * kDim * sizeof(float)));
}

void BM_CompactInPlace(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  std::mt19937 rng(1);
  const RowMatrixXf src = pruning_bench::random_matrix(n, kDim, 1.0f, rng);
  RowMatrixXf x = src;
  const etk::KeepSet keep = half_kept(n);
  const auto m = static_cast<std::ptrdiff_t>(keep.size());
  for (auto _ : state) {
    // Scatter back in place first (restores the kept rows' positions), then compact.
    etk::scatter_rows<float>(etk::matrix_view(static_cast<const float*>(x.data()), m, kDim, kDim), keep,
                             etk::matrix_view(x.data(), n, kDim, kDim));
    etk::compact_rows<float>(etk::matrix_view(static_cast<const float*>(x.data()), n, kDim, kDim), keep,
                             etk::matrix_view(x.data(), m, kDim, kDim));
    benchmark::ClobberMemory();
  }
  state.SetLabel("scatter + compact, in place");
  bytes_counter(state, 4.0 * double(m * kDim * sizeof(float)));
}

void BM_Scatter(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  std::mt19937 rng(1);
  const etk::KeepSet keep = half_kept(n);
  const RowMatrixXf c = pruning_bench::random_matrix(static_cast<Eigen::Index>(keep.size()), kDim, 1.0f, rng);
  RowMatrixXf full(n, kDim);
  for (auto _ : state) {
    etk::scatter_rows<float>(etk::matrix_view(c.data(), c.rows(), kDim, kDim), keep,
                             etk::matrix_view(full.data(), n, kDim, kDim));
    benchmark::ClobberMemory();
  }
  bytes_counter(state, 2.0 * double(keep.size() * kDim * sizeof(float)));
}

// LTP importance: column sums of the probabilities of every head (streamed per head).
void BM_ImportanceColumnSums(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  std::mt19937 rng(1);
  const RowMatrixXf p = pruning_bench::random_matrix(n, n, 1.0f, rng).cwiseAbs();
  etk::ImportanceAccumulator<float> acc;
  Eigen::VectorXf s(n);
  for (auto _ : state) {
    acc.reset(n);
    for (std::ptrdiff_t h = 0; h < kHeads; ++h) acc.add(p.data(), n, n);  // one [n, n] block per head
    acc.finish(float(kHeads * n), s.data());
    benchmark::DoNotOptimize(s.data());
  }
  bytes_counter(state, double(kHeads * n * n * sizeof(float)));
}

// Its plain reference (double loops over a [12, n, n] buffer).
void BM_ImportanceReference(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  std::mt19937 rng(1);
  const RowMatrixXf p = pruning_bench::random_matrix(kHeads * n, n, 1.0f, rng).cwiseAbs();
  for (auto _ : state) {
    const Eigen::VectorXf s = etk::reference::token_importance(etk::HeadsView<const float>(p.data(), kHeads, n, n));
    benchmark::DoNotOptimize(s.data());
  }
  bytes_counter(state, double(kHeads * n * n * sizeof(float)));
}

// Baseline: one dense attention layer (12 heads x 64) at the same length. WithImportance:
// what the LTP encoder runs instead (probabilities per head + their column sums).
template <bool WithImportance>
void BM_DenseAttentionLayer(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  std::mt19937 rng(1);
  const RowMatrixXf q = pruning_bench::random_matrix(kHeads * n, kHeadDim, 1.0f, rng);
  const RowMatrixXf k = pruning_bench::random_matrix(kHeads * n, kHeadDim, 1.0f, rng);
  const RowMatrixXf v = pruning_bench::random_matrix(kHeads * n, kHeadDim, 1.0f, rng);
  RowMatrixXf o(kHeads * n, kHeadDim), probs(n, n);
  etk::ImportanceAccumulator<float> acc;
  for (auto _ : state) {
    acc.reset(n);
    pruning_bench::dense_attention_all_heads(etk::HeadsView<const float>(q.data(), kHeads, n, kHeadDim),
                                             etk::HeadsView<const float>(k.data(), kHeads, n, kHeadDim),
                                             etk::HeadsView<const float>(v.data(), kHeads, n, kHeadDim),
                                             etk::HeadsView<float>(o.data(), kHeads, n, kHeadDim),
                                             WithImportance ? &acc : nullptr, probs.data());
    benchmark::DoNotOptimize(o.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * kHeads * n * n * kHeadDim * double(state.iterations()) * 1e-9,
                                                 benchmark::Counter::kIsRate);
}

template <bool Reference>
void BM_TopK(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  std::mt19937 rng(1);
  Eigen::VectorXf s = pruning_bench::random_matrix(n, 1, 1.0f, rng).col(0).cwiseAbs();
  etk::KeepSet keep;
  for (auto _ : state) {
    if (Reference) keep = etk::reference::keep_top_k(s, 0.5);
    else etk::keep_top_k(s, 0.5, keep);
    benchmark::DoNotOptimize(keep.data());
  }
}

}  // namespace

BENCHMARK_TEMPLATE(BM_DenseAttentionLayer, false)->Arg(512)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_DenseAttentionLayer, true)->Arg(512)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Compact)->Arg(512)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_CompactInPlace)->Arg(512)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Scatter)->Arg(512)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ImportanceColumnSums)->Arg(512)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ImportanceReference)->Arg(512)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_TopK, false)->Arg(1024)->Unit(benchmark::kMicrosecond);
BENCHMARK_TEMPLATE(BM_TopK, true)->Arg(1024)->Unit(benchmark::kMicrosecond);
