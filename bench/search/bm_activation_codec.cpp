// Activation codec throughput: 4-bit bit packing and the full codec (quantize + pack,
// unpack + dequantize) against memcpy of the same bytes, registered side by side so one
// run gives the ratios. GB/s counts the bytes on the unpacked side (code bytes for
// pack/unpack, float bytes for the codec), the bytes memcpy moves in its twin.
#include <benchmark/benchmark.h>
#include <etk/search/activation_compression.hpp>
#include <etk/core/bit_packing.hpp>

#include <cstring>
#include <random>
#include <vector>

namespace es = etk::search;

namespace {

std::vector<std::uint8_t> random_codes(std::size_t n, int bits) {
  std::mt19937 rng(1);
  std::vector<std::uint8_t> c(n);
  for (auto& x : c) x = std::uint8_t(rng() & ((1u << bits) - 1));
  return c;
}

etk::RowMatrixXf random_activations(std::ptrdiff_t rows, std::ptrdiff_t cols) {
  std::mt19937 rng(2);
  std::normal_distribution<float> g(0.0f, 1.0f);
  etk::RowMatrixXf x(rows, cols);
  for (std::ptrdiff_t i = 0; i < x.size(); ++i) x.data()[i] = g(rng) * (1.0f + float(i % cols % 5));
  return x;
}

void rate(benchmark::State& state, double bytes) {
  state.counters["GB/s"] = benchmark::Counter(bytes * double(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
}

void BM_memcpy(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  std::vector<std::uint8_t> a = random_codes(n, 8), b(n);
  for (auto _ : state) {
    std::memcpy(b.data(), a.data(), n);
    benchmark::DoNotOptimize(b.data());
    benchmark::ClobberMemory();
  }
  rate(state, double(n));
}

void BM_pack_bits(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const int bits = int(state.range(1));
  std::vector<std::uint8_t> c = random_codes(n, bits), out(etk::packed_bytes(n, bits));
  for (auto _ : state) {
    etk::pack_bits(c.data(), n, bits, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  rate(state, double(n));
}

void BM_unpack_bits(benchmark::State& state) {
  const std::size_t n = std::size_t(state.range(0));
  const int bits = int(state.range(1));
  std::vector<std::uint8_t> c = random_codes(n, bits), in(etk::packed_bytes(n, bits)), back(n);
  etk::pack_bits(c.data(), n, bits, in.data());
  for (auto _ : state) {
    etk::unpack_bits(in.data(), n, bits, back.data());
    benchmark::DoNotOptimize(back.data());
    benchmark::ClobberMemory();
  }
  rate(state, double(n));
}

// Sizes: 16 KiB (L1), 256 KiB (L2), 32 MiB (memory).
void pack_sizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {16 << 10, 256 << 10, 32 << 20}) b->Args({n, 4});
  b->Args({256 << 10, 2});
  b->Args({256 << 10, 3});
}
BENCHMARK(BM_memcpy)->Arg(16 << 10)->Arg(256 << 10)->Arg(32 << 20);
BENCHMARK(BM_pack_bits)->Apply(pack_sizes);
BENCHMARK(BM_unpack_bits)->Apply(pack_sizes);

// The full codec on [rows, channels] float activations, one group of 4-bit codes
// (range(2) == 0) or 4 importance groups averaging 4 bits (range(2) == 1).
es::ActivationCodec make_codec(const etk::RowMatrixXf& calib, bool grouped) {
  es::CodecOptions o;
  if (grouped) {
    o.group_size = calib.cols() / 4;
    o.average_bits = 4;
  } else {
    o.group_bits = {4};
  }
  return es::calibrate_codec(etk::matrix_view(calib.data(), calib.rows(), calib.cols(), calib.cols()), o);
}

void BM_codec_encode(benchmark::State& state) {
  const etk::RowMatrixXf x = random_activations(state.range(0), state.range(1));
  const auto codec = make_codec(x, state.range(2) != 0);
  std::vector<std::uint8_t> out(codec.encoded_bytes(x.rows()));
  const auto v = etk::matrix_view(x.data(), x.rows(), x.cols(), x.cols());
  for (auto _ : state) {
    codec.encode(v, out.data(), out.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  rate(state, double(x.size()) * sizeof(float));
}

void BM_codec_decode(benchmark::State& state) {
  const etk::RowMatrixXf x = random_activations(state.range(0), state.range(1));
  const auto codec = make_codec(x, state.range(2) != 0);
  const std::vector<std::uint8_t> in = codec.encode(etk::matrix_view(x.data(), x.rows(), x.cols(), x.cols()));
  etk::RowMatrixXf y(x.rows(), x.cols());
  auto v = etk::matrix_view(y.data(), y.rows(), y.cols(), y.cols());
  for (auto _ : state) {
    codec.decode(in.data(), in.size(), v);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  rate(state, double(x.size()) * sizeof(float));
}

void BM_memcpy_floats(benchmark::State& state) {
  const etk::RowMatrixXf x = random_activations(state.range(0), state.range(1));
  etk::RowMatrixXf y(x.rows(), x.cols());
  for (auto _ : state) {
    std::memcpy(y.data(), x.data(), std::size_t(x.size()) * sizeof(float));
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  rate(state, double(x.size()) * sizeof(float));
}

// [40, 120]: one PP-OCRv4 line's transformer activation; [4096, 256]: 4 MiB of floats.
void codec_shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t g : {0, 1}) {
    b->Args({40, 120, g});
    b->Args({4096, 256, g});
  }
}
BENCHMARK(BM_memcpy_floats)->Args({40, 120, 0})->Args({4096, 256, 0});
BENCHMARK(BM_codec_encode)->Apply(codec_shapes);
BENCHMARK(BM_codec_decode)->Apply(codec_shapes);

}  // namespace
