// Uniform quantize / dequantize / fake-quantize vs a plain memcpy, in one binary.
// Counter GB/s counts bytes read + bytes written (quantize f32 -> s8: 5 bytes per element;
// dequantize: 5; fake-quantize: 8; memcpy of the f32 buffer: 8), so the ratio to memcpy
// is the fraction of copy bandwidth reached. Sizes: 64 Ki elements (cache) and 8 Mi
// elements (memory).
#include <benchmark/benchmark.h>
#include <etk/quant/uniform.hpp>

#include <cstring>
#include <random>

namespace {

etk::RowMatrixXf data(std::ptrdiff_t n) {
  std::mt19937 gen(1);
  std::normal_distribution<float> d(0.0f, 1.0f);
  etk::RowMatrixXf x(1, n);
  for (std::ptrdiff_t i = 0; i < n; ++i) x(0, i) = d(gen);
  return x;
}

void set_bytes(benchmark::State& state, double per_element) {
  state.counters["GB/s"] = benchmark::Counter(per_element * static_cast<double>(state.range(0)) * 1e-9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

void BM_memcpy_f32(benchmark::State& state) {
  const etk::RowMatrixXf x = data(state.range(0));
  etk::RowMatrixXf y(1, state.range(0));
  for (auto _ : state) {
    std::memcpy(y.data(), x.data(), sizeof(float) * static_cast<std::size_t>(x.size()));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 8);
}

void BM_quantize_s8(benchmark::State& state) {
  const etk::RowMatrixXf x = data(state.range(0));
  const etk::QuantParams p = etk::QuantParams::symmetric(3.0f, 8);
  etk::RowMatrix<std::int8_t> q(1, state.range(0));
  const auto xv = etk::matrix_view(static_cast<const float*>(x.data()), 1, x.cols(), x.cols());
  const auto qv = etk::matrix_view(q.data(), 1, q.cols(), q.cols());
  for (auto _ : state) {
    etk::quantize<std::int8_t>(xv, p, qv);
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 5);
}

void BM_quantize_u8_per_channel(benchmark::State& state) {
  // [n / 768, 768] with one scale and zero point per column (activation channels).
  const std::ptrdiff_t cols = 768, rows = state.range(0) / cols;
  const etk::RowMatrixXf x = data(rows * cols);
  etk::QuantParams p = etk::QuantParams::from_range(-3.0f, 3.0f, 8, false);
  p.axis = 1;
  p.scale.assign(cols, p.scale[0]);
  p.zero_point.assign(cols, p.zero_point[0]);
  etk::RowMatrix<std::uint8_t> q(rows, cols);
  const auto xv = etk::matrix_view(static_cast<const float*>(x.data()), rows, cols, cols);
  const auto qv = etk::matrix_view(q.data(), rows, cols, cols);
  for (auto _ : state) {
    etk::quantize<std::uint8_t>(xv, p, qv);
    benchmark::DoNotOptimize(q.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 5);
}

void BM_dequantize_s8(benchmark::State& state) {
  const etk::RowMatrixXf x = data(state.range(0));
  const etk::QuantParams p = etk::QuantParams::symmetric(3.0f, 8);
  const auto xv = etk::matrix_view(static_cast<const float*>(x.data()), 1, x.cols(), x.cols());
  const etk::RowMatrix<std::int8_t> q = etk::quantize<std::int8_t>(xv, p);
  etk::RowMatrixXf y(1, state.range(0));
  const auto qv = etk::matrix_view(q.data(), 1, q.cols(), q.cols());
  const auto yv = etk::matrix_view(y.data(), 1, y.cols(), y.cols());
  for (auto _ : state) {
    etk::dequantize<std::int8_t>(qv, p, yv);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 5);
}

void BM_fake_quantize(benchmark::State& state) {
  const etk::RowMatrixXf x = data(state.range(0));
  const etk::QuantParams p = etk::QuantParams::symmetric(3.0f, 8);
  etk::RowMatrixXf y(1, state.range(0));
  const auto xv = etk::matrix_view(static_cast<const float*>(x.data()), 1, x.cols(), x.cols());
  const auto yv = etk::matrix_view(y.data(), 1, y.cols(), y.cols());
  for (auto _ : state) {
    etk::fake_quantize(xv, p, yv);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 8);
}

}  // namespace

#define ETK_SIZES ->Arg(768 * 96)->Arg(768 * 11008)
BENCHMARK(BM_memcpy_f32) ETK_SIZES;
BENCHMARK(BM_quantize_s8) ETK_SIZES;
BENCHMARK(BM_quantize_u8_per_channel) ETK_SIZES;
BENCHMARK(BM_dequantize_s8) ETK_SIZES;
BENCHMARK(BM_fake_quantize) ETK_SIZES;
