// Runtime dispatch vs -march=native, and 1 vs 2 threads, in one run.
//
// Each kernel is compiled twice (dispatch_unit.inc): in a plain -O2 unit, where etk picks
// the path at run time (ETK_ISA pins it), and in an -O2 -march=native unit with direct
// calls. Both run on the same inputs; after the benchmarks the program prints, per kernel,
// plain / native throughput (the bar: >= 0.9) and, for the int8 GEMM, dense attention and
// LATTE through a caller's SimpleThreadPool, 2-thread / 1-thread throughput (the bar: >= 1.7
// on 2 cores). Kernels: int8 GEMM 1024^3 (u8 x s8 -> s32), per-tensor quantize of 4M
// floats to int8, int8 LUT GELU (8 segments, 16K codes), LATTE keeping 10% of the keys (12
// heads, dim 64, seq 1024, theta calibrated per head), dense attention (same shape, on
// etk's dispatched fp32 GEMM and softmax), fp32 GEMM 1024^3 (etk::gemm_f32, packed), the
// bit packer (pack + unpack of 1M 4-bit codes) and attention_probs (dense's shape, the
// [12, 1024, 1024] probabilities written).
#include <benchmark/benchmark.h>

#include <etk/attention/latte_threshold.hpp>
#include <etk/quant/packed_weights.hpp>

#include <cstdio>
#include <map>
#include <random>
#include <string>

#include "core/dispatch_unit.hpp"

using namespace dispatch_bench;

namespace {

Inputs& inputs() {
  static Inputs in = [] {
    Inputs r;
    std::mt19937 rng(1);
    std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
    r.a.resize(kGemm * kGemm);
    r.w.resize(kGemm * kGemm);
    for (auto& v : r.a) v = static_cast<std::uint8_t>(u8(rng));
    for (auto& v : r.w) v = static_cast<std::int8_t>(s8(rng));
    r.packed = etk::PackedWeightsS8(etk::matrix_view(static_cast<const std::int8_t*>(r.w.data()), kGemm, kGemm, kGemm));
    r.c.resize(kGemm * kGemm);
    std::normal_distribution<float> fd(0.0f, 1.0f);
    r.fa.resize(kGemm * kGemm);
    r.fc.resize(kGemm * kGemm);
    for (auto& v : r.fa) v = fd(rng);
    std::vector<float> fw(kGemm * kGemm);
    for (auto& v : fw) v = fd(rng);
    r.fw = etk::PackedWeightsF32(etk::matrix_view(static_cast<const float*>(fw.data()), kGemm, kGemm, kGemm));
    std::normal_distribution<float> nd(0.0f, 1.0f);
    r.x.resize(kQuantize);
    for (auto& v : r.x) v = nd(rng);
    r.codes.resize(kQuantize);
    r.gelu_in.resize(kGelu);
    r.gelu_out.resize(kGelu);
    for (auto& v : r.gelu_in) v = static_cast<std::int8_t>(s8(rng));
    const std::size_t hv = kHeads * kSeq * kDim;
    r.q.resize(hv);
    r.k.resize(hv);
    r.v.resize(hv);
    r.o.resize(hv);
    for (auto& v : r.k) v = nd(rng);
    for (auto& v : r.v) v = nd(rng);
    // Queries near a mix of two keys (peaked rows, as in bench/attention/bm_latte.cpp).
    std::uniform_int_distribution<std::ptrdiff_t> key(0, kSeq - 1);
    for (std::ptrdiff_t h = 0; h < kHeads; ++h)
      for (std::ptrdiff_t i = 0; i < kSeq; ++i) {
        const float* ka = r.k.data() + (h * kSeq + key(rng)) * kDim;
        const float* kb = r.k.data() + (h * kSeq + key(rng)) * kDim;
        float* q = r.q.data() + (h * kSeq + i) * kDim;
        for (std::ptrdiff_t t = 0; t < kDim; ++t) q[t] = 1.5f * (0.5f * nd(rng) + 0.45f * (ka[t] + kb[t]));
      }
    const etk::LatteSample sample{etk::HeadsView<const float>(r.q.data(), kHeads, 128, kDim, kDim, kSeq * kDim),
                                  r.K(), r.V()};
    r.theta = etk::latte_calibrate_keep_ratio({sample}, etk::LatteParams{}, 0.10);
    r.probs.resize(std::size_t(kHeads * kSeq * kSeq));
    r.nibbles.resize(kPack);
    r.packed_nibbles.resize(kPack / 2);
    for (auto& v : r.nibbles) v = static_cast<std::uint8_t>(u8(rng) & 15);
    return r;
  }();
  return in;
}

Unit unit(int which) { return which == 0 ? plain_unit() : native_unit(); }
const char* unit_name(int which) { return which == 0 ? "plain" : "native"; }

void label(benchmark::State& state, int which) {
  state.SetLabel(std::string(unit_name(which)) + " unit, path " + unit(which).path());
}

void BM_int8_gemm(benchmark::State& state) {
  const int which = int(state.range(0));
  Inputs& in = inputs();
  const etk::Context ctx;  // the caller's thread, scratch per call (as a plain call)
  for (auto _ : state) {
    unit(which).gemm(in, ctx);
    benchmark::DoNotOptimize(in.c.data());
  }
  state.counters["GOPs"] = benchmark::Counter(2.0 * kGemm * kGemm * kGemm * 1e-9 * double(state.iterations()),
                                              benchmark::Counter::kIsRate);
  label(state, which);
}

// Runs call(in, ctx) of the plain unit on `state.range(0)` threads of a SimpleThreadPool
// passed in the caller's Context (with an arena), labelled with the thread count.
template <typename Call>
void run_threaded(benchmark::State& state, Call&& call) {
  const int threads = int(state.range(0));
  Inputs& in = inputs();
  etk::SimpleThreadPool pool(threads);
  etk::ScratchArena arena;
  const etk::Context ctx{&pool, &arena};
  for (auto _ : state) {
    call(in, ctx);
    benchmark::DoNotOptimize(in.o.data());
    benchmark::DoNotOptimize(in.c.data());
  }
  state.SetLabel(std::to_string(threads) + " thread(s), plain unit, path " + unit(0).path());
}

void BM_int8_gemm_threads(benchmark::State& state) {
  run_threaded(state, [](Inputs& in, const etk::Context& ctx) { unit(0).gemm(in, ctx); });
  state.counters["GOPs"] = benchmark::Counter(2.0 * kGemm * kGemm * kGemm * 1e-9 * double(state.iterations()),
                                              benchmark::Counter::kIsRate);
}

void BM_quantize(benchmark::State& state) {
  const int which = int(state.range(0));
  Inputs& in = inputs();
  for (auto _ : state) {
    unit(which).quantize(in);
    benchmark::DoNotOptimize(in.codes.data());
  }
  state.SetBytesProcessed(state.iterations() * kQuantize * 5);
  label(state, which);
}

void BM_gelu_int8(benchmark::State& state) {
  const int which = int(state.range(0));
  Inputs& in = inputs();
  for (auto _ : state) {
    unit(which).gelu(in);
    benchmark::DoNotOptimize(in.gelu_out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kGelu * 2);
  label(state, which);
}

void BM_latte_keep10(benchmark::State& state) {
  const int which = int(state.range(0));
  Inputs& in = inputs();
  double filtered = 0;
  for (auto _ : state) {
    filtered = unit(which).latte(in, {});
    benchmark::DoNotOptimize(in.o.data());
  }
  state.counters["filtered"] = filtered;
  state.counters["keys_per_s"] = benchmark::Counter(double(kHeads) * kSeq * kSeq * double(state.iterations()),
                                                    benchmark::Counter::kIsRate);
  label(state, which);
}

void dense_rate(benchmark::State& state) {
  state.counters["GFLOPs"] = benchmark::Counter(4.0 * kHeads * kSeq * kSeq * kDim * 1e-9 * double(state.iterations()),
                                                benchmark::Counter::kIsRate);
}

void BM_dense_attention(benchmark::State& state) {
  const int which = int(state.range(0));
  Inputs& in = inputs();
  for (auto _ : state) {
    unit(which).dense(in, {});
    benchmark::DoNotOptimize(in.o.data());
  }
  dense_rate(state);
  label(state, which);
}

// fp32 GEMM 1024^3 (etk::gemm_f32, packed weights).
void BM_gemm_f32(benchmark::State& state) {
  const int which = int(state.range(0));
  Inputs& in = inputs();
  for (auto _ : state) {
    unit(which).gemm_f32(in);
    benchmark::DoNotOptimize(in.fc.data());
  }
  state.counters["GFLOPs"] = benchmark::Counter(2.0 * double(kGemm) * kGemm * kGemm * 1e-9 * double(state.iterations()),
                                                benchmark::Counter::kIsRate);
  label(state, which);
}

// Pack and unpack 1M 4-bit codes (bytes counted: 1M codes + 512K packed, each way).
void BM_pack4(benchmark::State& state) {
  const int which = int(state.range(0));
  Inputs& in = inputs();
  for (auto _ : state) {
    unit(which).pack4(in);
    benchmark::DoNotOptimize(in.nibbles.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * kPack * 3);
  label(state, which);
}

// attention_probs: two GEMM flops per score (the probabilities, no output product).
void BM_attention_probs(benchmark::State& state) {
  const int which = int(state.range(0));
  Inputs& in = inputs();
  for (auto _ : state) {
    unit(which).probs(in);
    benchmark::DoNotOptimize(in.probs.data());
  }
  state.counters["GFLOPs"] = benchmark::Counter(2.0 * kHeads * kSeq * kSeq * kDim * 1e-9 * double(state.iterations()),
                                                benchmark::Counter::kIsRate);
  label(state, which);
}

// Dense attention and LATTE (seq 1024) from the plain unit on 1 or 2 threads.
void BM_dense_attention_threads(benchmark::State& state) {
  run_threaded(state, [](Inputs& in, const etk::Context& ctx) { unit(0).dense(in, ctx); });
  dense_rate(state);
}

void BM_latte_keep10_threads(benchmark::State& state) {
  double filtered = 0;
  run_threaded(state, [&](Inputs& in, const etk::Context& ctx) { filtered = unit(0).latte(in, ctx); });
  state.counters["filtered"] = filtered;
}

BENCHMARK(BM_int8_gemm)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_quantize)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_gelu_int8)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_latte_keep10)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_dense_attention)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_gemm_f32)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_pack4)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_attention_probs)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_int8_gemm_threads)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_dense_attention_threads)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_latte_keep10_threads)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The console output, then the ratios of the pairs (by wall time per iteration).
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs)
      if (r.run_type == Run::RT_Iteration && r.error_occurred == false) time_[r.benchmark_name()] = r.GetAdjustedRealTime();
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    std::printf("\nratios in this run (bars: plain/native >= 0.9, 2 threads/1 thread >= 1.7):\n");
    for (const char* k : {"BM_int8_gemm", "BM_quantize", "BM_gelu_int8", "BM_latte_keep10", "BM_dense_attention", "BM_gemm_f32",
                          "BM_pack4", "BM_attention_probs"})
      pair(std::string(k) + "/0/real_time", std::string(k) + "/1/real_time", std::string(k) + " plain/native", 0.9);
    for (const char* k : {"BM_int8_gemm_threads", "BM_dense_attention_threads", "BM_latte_keep10_threads"})
      pair(std::string(k) + "/2/real_time", std::string(k) + "/1/real_time", std::string(k) + " 2 threads/1 thread", 1.7);
  }

 private:
  // Throughput ratio a/b = time(b) / time(a).
  void pair(const std::string& a, const std::string& b, const std::string& what, double bar) {
    if (!time_.count(a) || !time_.count(b)) return;
    const double ratio = time_[b] / time_[a];
    std::printf("  %-40s %.3f  %s\n", what.c_str(), ratio, ratio >= bar ? "meets the bar" : "MISSES the bar");
  }
  std::map<std::string, double> time_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
