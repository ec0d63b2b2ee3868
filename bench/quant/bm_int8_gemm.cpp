// int8 GEMM (u8 x s8 -> requantized u8 / int32) vs Eigen fp32 sgemm on the same shapes, in
// one binary, on the AMX-INT8 tiles and on the VNNI path (pinned with set_isa; a path the
// CPU lacks is skipped with the reason). Counters: GOP/s (2*M*N*K per product) for all.
#include <benchmark/benchmark.h>
#include <etk/quant/int8_gemm.hpp>

#include <Eigen/Core>
#include <random>
#include <string>

namespace {

struct Shape {
  std::ptrdiff_t m, k, n;
};

Shape shape_of(const benchmark::State& s) { return {s.range(0), s.range(1), s.range(2)}; }

void set_rate(benchmark::State& state, const Shape& sh) {
  state.counters["GOP/s"] = benchmark::Counter(2.0 * sh.m * sh.n * sh.k * 1e-9,
                                               benchmark::Counter::kIsIterationInvariantRate);
}

void BM_eigen_sgemm(benchmark::State& state) {
  const Shape sh = shape_of(state);
  // y[M, N] = x[M, K] * W^T, W stored [N, K] like the int8 weights.
  const etk::RowMatrixXf x = etk::RowMatrixXf::Random(sh.m, sh.k);
  const etk::RowMatrixXf w = etk::RowMatrixXf::Random(sh.n, sh.k);
  etk::RowMatrixXf y(sh.m, sh.n);
  for (auto _ : state) {
    y.noalias() = x * w.transpose();
    benchmark::DoNotOptimize(y.data());
  }
  set_rate(state, sh);
}

template <typename TO, etk::Isa kPath>
void BM_int8_gemm(benchmark::State& state) {
  const Shape sh = shape_of(state);
  if (!etk::isa_supported(kPath)) {
    state.SkipWithError((std::string("path ") + etk::isa_name(kPath) + " skipped: this CPU runs paths up to " +
                         etk::isa_name(etk::best_isa())).c_str());
    return;
  }
  etk::set_isa(kPath);
  std::mt19937 gen(1);
  std::uniform_int_distribution<int> ua(0, 255), uw(-127, 127);
  etk::RowMatrix<std::uint8_t> a(sh.m, sh.k);
  etk::RowMatrix<std::int8_t> w(sh.n, sh.k);
  for (std::ptrdiff_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<std::uint8_t>(ua(gen));
  for (std::ptrdiff_t i = 0; i < w.size(); ++i) w.data()[i] = static_cast<std::int8_t>(uw(gen));
  const etk::PackedWeightsS8 packed(etk::matrix_view(static_cast<const std::int8_t*>(w.data()), sh.n, sh.k, sh.k));
  std::vector<std::int32_t> bias(static_cast<std::size_t>(sh.n), 17);
  const auto av = etk::matrix_view(static_cast<const std::uint8_t*>(a.data()), sh.m, sh.k, sh.k);
  etk::RowMatrix<TO> y(sh.m, sh.n);
  const auto yv = etk::matrix_view(y.data(), sh.m, sh.n, sh.n);
  etk::Requantization rq;
  etk::Requantization::quantize_multiplier(1.0 / 4096.0, rq.multiplier[0], rq.shift[0]);
  rq.qmin = 0;
  rq.qmax = 255;
  rq.zero_point = 128;
  for (auto _ : state) {
    if constexpr (std::is_same<TO, std::int32_t>::value)
      etk::int8_gemm_s32<std::uint8_t>(av, 128, packed, bias, yv);
    else
      etk::int8_gemm<std::uint8_t, TO>(av, 128, packed, bias, rq, yv);
    benchmark::DoNotOptimize(y.data());
  }
  etk::reset_isa();
  set_rate(state, sh);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (std::ptrdiff_t s : {256, 512, 1024, 2048}) b->Args({s, s, s});
  b->Args({128, 768, 768});
  b->Args({512, 768, 3072});
  for (std::ptrdiff_t m : {1, 2, 3, 4, 16, 32}) b->Args({m, 768, 768});
  b->ArgNames({"M", "K", "N"})->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(BM_eigen_sgemm)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_int8_gemm, std::uint8_t, etk::Isa::avx512vnni)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_int8_gemm, std::uint8_t, etk::Isa::amx)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_int8_gemm, std::int32_t, etk::Isa::avx512vnni)->Apply(shapes);
BENCHMARK_TEMPLATE(BM_int8_gemm, std::int32_t, etk::Isa::amx)->Apply(shapes);
