// End-to-end effect of LTP token pruning on a BERT-base-shaped encoder (12 layers,
// hidden 768, 12 heads, FFN 3072), one thread, seq 128 and 512: the dense encoder and the
// LTP encoder with thresholds calibrated (etk::calibrate_ltp, on a separate calibration
// input) so that on average 50% of the tokens enter each layer. Counters:
//   tokens_kept  tokens entering the layers / (layers * seq) on the timed input;
//   prune_pct    share of the pruned forward spent in pruning work (importance column
//                sums, selection, compaction, scatter back to full length);
//   seq/s        sequences per second (throughput; the ratio LTP / Dense is the speedup).
#include <benchmark/benchmark.h>
#include <etk/pruning/ltp_calibrator.hpp>

#include <cstdio>
#include <map>

#include "pruning/encoder.hpp"

namespace {
using pruning_bench::Encoder;
using pruning_bench::ForwardStats;
using pruning_bench::RowMatrixXf;

Encoder& model() {
  static Encoder enc;
  return enc;
}

RowMatrixXf input(std::ptrdiff_t n, unsigned seed) {
  std::mt19937 rng(seed);
  return pruning_bench::random_matrix(n, model().shape().hidden, 1.0f, rng);
}

// Thresholds for a 50% average keep ratio, calibrated once per length on seed-2 input.
const std::vector<float>& thresholds(std::ptrdiff_t n) {
  static std::map<std::ptrdiff_t, std::vector<float>> cache;
  auto it = cache.find(n);
  if (it != cache.end()) return it->second;
  const RowMatrixXf calib = input(n, 2);
  RowMatrixXf out;
  auto measure = [&](const std::vector<float>& th) {
    ForwardStats st;
    model().forward(calib, out, th, &st);
    return std::vector<etk::TokenCounts>{{st.tokens, n}};
  };
  etk::LtpCalibratorOptions opt;
  opt.reach_final = true;
  opt.theta_max = 4.0 / double(n);
  opt.tolerance = 0.01;
  opt.max_iterations = 16;
  const etk::LtpCalibration c = etk::calibrate_ltp(model().shape().layers, {etk::LtpBudgetKind::keep_ratio, 0.5}, measure, opt);
  std::fprintf(stderr, "seq %td: theta_final %.3g (x seq = %.3f), calibration keep ratio %.3f after %d runs; tokens per layer:",
               n, c.theta_final, c.theta_final * double(n), c.achieved, c.evaluations);
  const std::vector<etk::TokenCounts> counts = measure(c.thresholds);
  for (auto t : counts[0].per_layer) std::fprintf(stderr, " %td", t);
  std::fprintf(stderr, "\n");
  return cache[n] = c.thresholds;
}

void set_counters(benchmark::State& state) {
  state.counters["seq/s"] = benchmark::Counter(double(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Encoder_Dense(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  const RowMatrixXf x = input(n, 1);
  RowMatrixXf out;
  for (auto _ : state) {
    model().forward(x, out, {});
    benchmark::DoNotOptimize(out.data());
  }
  set_counters(state);
  state.counters["tokens_kept"] = 1.0;
}

void BM_Encoder_LTP(benchmark::State& state) {
  const std::ptrdiff_t n = state.range(0);
  const std::vector<float>& th = thresholds(n);
  const RowMatrixXf x = input(n, 1);
  RowMatrixXf out;
  ForwardStats st;
  double prune = 0, total = 0;
  for (auto _ : state) {
    const auto t0 = pruning_bench::Clock::now();
    model().forward(x, out, th, &st);
    total += std::chrono::duration<double>(pruning_bench::Clock::now() - t0).count();
    prune += st.prune_seconds;
    benchmark::DoNotOptimize(out.data());
  }
  double kept = 0;
  for (auto t : st.tokens) kept += double(t);
  set_counters(state);
  state.counters["tokens_kept"] = kept / double(st.tokens.size() * static_cast<std::size_t>(n));
  state.counters["prune_pct"] = 100.0 * prune / total;
}

}  // namespace

BENCHMARK(BM_Encoder_Dense)->Arg(128)->Arg(512)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_Encoder_LTP)->Arg(128)->Arg(512)->Unit(benchmark::kMillisecond)->MinTime(2.0);
