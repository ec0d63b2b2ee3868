// GQA-LUT throughput: per-element cost of the float and int8 table paths against exact
// GELU/exp (Eigen's vectorised erf/tanh/exp and scalar std::erf/std::exp) in one binary,
// and the search time of an 8-segment GELU table (population 50, 500 generations).
//
//   build/<dir>/bench/lut_bm_lut --benchmark_filter=. (configure with -DETK_TARGET_ISA=avx512)
//
// items_per_second is elements per second; bytes_per_second counts input + output.
#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <cmath>
#include <random>
#include <unsupported/Eigen/SpecialFunctions>
#include <vector>

#include <etk/lut/gqa_search.hpp>
#include <etk/lut/integer_pwl.hpp>
#include <etk/lut/tables.hpp>

namespace {

constexpr int kN = 1 << 14;  // 16K elements: 64 KB of float input, stays in L2

const Eigen::ArrayXf& float_input() {
  static const Eigen::ArrayXf x = [] {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> u(-4.0f, 4.0f);
    Eigen::ArrayXf v(kN);
    for (int i = 0; i < kN; ++i) v[i] = u(rng);
    return v;
  }();
  return x;
}

const std::vector<std::int8_t>& int8_input() {
  static const std::vector<std::int8_t> q = [] {
    std::mt19937 rng(2);
    std::uniform_int_distribution<int> u(-128, 127);
    std::vector<std::int8_t> v(kN);
    for (auto& e : v) e = static_cast<std::int8_t>(u(rng));
    return v;
  }();
  return q;
}

void finish(benchmark::State& state, int bytes_per_element) {
  state.SetItemsProcessed(state.iterations() * kN);
  state.SetBytesProcessed(state.iterations() * kN * bytes_per_element);
}

// ---- exact baselines ----------------------------------------------------------------
void BM_gelu_scalar_std_erf(benchmark::State& state) {
  const Eigen::ArrayXf& x = float_input();
  Eigen::ArrayXf y(kN);
  for (auto _ : state) {
    for (int i = 0; i < kN; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678f));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  finish(state, 8);
}
BENCHMARK(BM_gelu_scalar_std_erf);

void BM_gelu_eigen_erf(benchmark::State& state) {
  const Eigen::ArrayXf& x = float_input();
  Eigen::ArrayXf y(kN);
  for (auto _ : state) {
    y = 0.5f * x * (1.0f + (x * 0.70710678f).erf());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  finish(state, 8);
}
BENCHMARK(BM_gelu_eigen_erf);

void BM_gelu_eigen_tanh(benchmark::State& state) {
  const Eigen::ArrayXf& x = float_input();
  Eigen::ArrayXf y(kN);
  for (auto _ : state) {
    y = 0.5f * x * (1.0f + (0.7978845608f * (x + 0.044715f * x.cube())).tanh());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  finish(state, 8);
}
BENCHMARK(BM_gelu_eigen_tanh);

void BM_exp_scalar_std_exp(benchmark::State& state) {
  const Eigen::ArrayXf x = float_input() - 4.0f;
  Eigen::ArrayXf y(kN);
  for (auto _ : state) {
    for (int i = 0; i < kN; ++i) y[i] = std::exp(x[i]);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  finish(state, 8);
}
BENCHMARK(BM_exp_scalar_std_exp);

void BM_exp_eigen(benchmark::State& state) {
  const Eigen::ArrayXf x = float_input() - 4.0f;
  Eigen::ArrayXf y(kN);
  for (auto _ : state) {
    y = x.exp();
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  finish(state, 8);
}
BENCHMARK(BM_exp_eigen);

// ---- table paths --------------------------------------------------------------------
void BM_lut_float(benchmark::State& state, etk::lut::Function f, int segments) {
  const etk::lut::PwlTable& t = etk::lut::shipped_table(f, segments).dense;
  const Eigen::ArrayXf x = f == etk::lut::Function::exp ? Eigen::ArrayXf(float_input() - 4.0f) : float_input();
  Eigen::ArrayXf y(kN);
  for (auto _ : state) {
    etk::lut::pwl_eval(t, x.data(), y.data(), kN);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  finish(state, 8);
}
BENCHMARK_CAPTURE(BM_lut_float, gelu_8, etk::lut::Function::gelu, 8);
BENCHMARK_CAPTURE(BM_lut_float, gelu_16, etk::lut::Function::gelu, 16);
BENCHMARK_CAPTURE(BM_lut_float, exp_8, etk::lut::Function::exp, 8);

void BM_lut_int8(benchmark::State& state, etk::lut::Function f, int segments) {
  const etk::lut::TableSet& set = etk::lut::shipped_table(f, segments);
  const int j = 5;
  const etk::lut::IntegerPwl t = etk::lut::quantize_pwl(set.for_scale(j), {j, set.coeff, 5, 8});
  if (!t.narrow()) state.SkipWithError("table not on the int16-lane path");
  const std::vector<std::int8_t>& q = int8_input();
  std::vector<std::int8_t> y(kN);
  for (auto _ : state) {
    etk::lut::pwl_eval_int8(t, q.data(), y.data(), kN);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  finish(state, 2);
}
BENCHMARK_CAPTURE(BM_lut_int8, gelu_8, etk::lut::Function::gelu, 8);
BENCHMARK_CAPTURE(BM_lut_int8, gelu_16, etk::lut::Function::gelu, 16);
BENCHMARK_CAPTURE(BM_lut_int8, exp_8, etk::lut::Function::exp, 8);

// ---- search time --------------------------------------------------------------------
// restarts = 1, no polish: the paper's configuration (population 50, 500 generations).
void BM_gqa_search_gelu8(benchmark::State& state) {
  etk::lut::GqaConfig c;
  c.coefficients = state.range(0) ? etk::lut::Coefficients::least_squares : etk::lut::Coefficients::secant;
  c.restarts = static_cast<int>(state.range(1));
  c.polish = state.range(1) > 1;
  double mse = 0;
  for (auto _ : state) mse = etk::lut::gqa_search(c).mse_dense;
  state.counters["mse"] = mse;
}
BENCHMARK(BM_gqa_search_gelu8)
    ->ArgNames({"lsq", "restarts"})
    ->Args({0, 1})
    ->Args({1, 1})
    ->Args({0, 8})
    ->Args({1, 8})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

}  // namespace
