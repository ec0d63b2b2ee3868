// Decoding over a KVCache: LATTE vs dense decode, beside a streaming-read bandwidth
// baseline, in one binary (one run gives every ratio).
//
// Shapes: 32 query heads over 8 KV heads (GQA groups of 4), dim 128; cache 1k..64k
// tokens; 1 and 8 queries. Data: the synthetic long-context workload of
// tests/support/decode_workload.hpp (sinks, local window, heavy-tailed far keys, query
// heads of a group sharing a direction). LATTE's theta (one for all heads) is found by
// bisection on the measured filtered share (90% / 75%), +inf for "inf".
// Counters: bytes = bytes the step requests from the cache (dense: both key planes and
// the value rows of every visible key per KV head; LATTE: the MS4B plane plus the LS4B and
// value rows of the union of the survivors of a KV head's rows, each fetched once, as the
// step does); GBps = bytes / time; filtered = measured share filtered; union = the union's
// share of the visible keys (from the reference twin's kept sets).
#include <benchmark/benchmark.h>

#include <etk/attention/decode.hpp>
#include <etk/attention/reference/decode.hpp>

#include <Eigen/Core>
#include <cstring>
#include <map>
#include <set>
#include <memory>
#include <tuple>
#include <vector>

#include "../../tests/support/decode_workload.hpp"

namespace {

constexpr std::ptrdiff_t kQHeads = 32, kKVHeads = 8, kDim = 128;

struct Setup {
  std::unique_ptr<etk::KVCache> cache;
  std::vector<float> q;
};

Setup& setup(std::ptrdiff_t n, std::ptrdiff_t nq, etk::KVValueType vt) {
  static std::map<std::tuple<std::ptrdiff_t, std::ptrdiff_t, int>, Setup> all;
  Setup& s = all[{n, nq, int(vt)}];
  if (s.cache) return s;
  const auto w = decode_workload::make(kKVHeads, kQHeads / kKVHeads, n, kDim, nq, 17);
  etk::KVCacheConfig c;
  c.kv_heads = kKVHeads;
  c.dim = kDim;
  c.values = vt;
  s.cache = std::make_unique<etk::KVCache>(c);
  s.cache->reserve(n);
  s.cache->append({w.k.data(), kKVHeads, n, kDim}, {w.v.data(), kKVHeads, n, kDim});
  s.q = w.q;
  return s;
}

etk::HeadsView<const float> queries(const Setup& s, std::ptrdiff_t nq) {
  return {s.q.data(), kQHeads, nq, kDim};
}

// theta giving the target filtered share (bisection on the measured share).
float theta_for(const Setup& s, std::ptrdiff_t nq, double filtered) {
  std::vector<float> o(std::size_t(kQHeads * nq * kDim));
  etk::DecodeParams p;
  double lo = 0, hi = 64;
  for (int it = 0; it < 30; ++it) {
    p.theta = {float(0.5 * (lo + hi))};
    etk::LatteStats st;
    etk::latte_decode(*s.cache, queries(s, nq), {o.data(), kQHeads, nq, kDim}, p, {}, &st);
    (st.filtered_fraction() > filtered ? lo : hi) = p.theta[0];
  }
  return float(hi);
}

// Keys in the union of the kept sets of each KV head's rows (query heads of its group x
// queries: one pass of the step while nq * group <= kTileRows), summed over KV heads.
std::int64_t union_kept(const Setup& s, std::ptrdiff_t nq, const etk::DecodeParams& p) {
  std::vector<float> o(std::size_t(kQHeads * nq * kDim));
  std::vector<std::vector<std::ptrdiff_t>> kept;
  etk::reference::decode_attention(*s.cache, queries(s, nq), {o.data(), kQHeads, nq, kDim}, p, false,
                                   nullptr, &kept);
  const std::ptrdiff_t group = kQHeads / kKVHeads;
  std::int64_t total = 0;
  for (std::ptrdiff_t g = 0; g < kKVHeads; ++g) {
    std::set<std::ptrdiff_t> u;
    for (std::ptrdiff_t row = g * group * nq; row < (g + 1) * group * nq; ++row)
      u.insert(kept[std::size_t(row)].begin(), kept[std::size_t(row)].end());
    total += std::int64_t(u.size());
  }
  return total;
}

// The streaming-read baseline: a 1 GiB buffer (~2x the L3 reported here, far more than any
// share of it this VM gets) summed in 64 chunks by `threads` threads (etk::parallel_for over
// a SimpleThreadPool, as the decode step splits its work). The 2-thread line says what two
// cores can draw from memory together: a bandwidth-bound kernel cannot scale past it.
void stream_read(benchmark::State& state, int threads) {
  const std::size_t n = std::size_t(1) << 28, chunks = 64, per = n / chunks;
  static std::vector<float> buf(n, 1.0f);
  etk::SimpleThreadPool pool(threads);
  etk::Context ctx{threads > 1 ? &pool : nullptr, nullptr};
  std::vector<float> part(chunks);
  for (auto _ : state) {
    etk::parallel_for(ctx, std::ptrdiff_t(chunks), [&](std::ptrdiff_t c, int) {
      part[std::size_t(c)] = Eigen::Map<const Eigen::ArrayXf>(buf.data() + std::size_t(c) * per, Eigen::Index(per)).sum();
    });
    benchmark::DoNotOptimize(part.data());
  }
  state.counters["bytes"] = double(n * 4);
  state.counters["GBps"] = benchmark::Counter(double(n * 4) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
void BM_stream_read(benchmark::State& s) { stream_read(s, 1); }
void BM_stream_read_2threads(benchmark::State& s) { stream_read(s, 2); }

// filtered_pct: -1 dense; 0 LATTE with theta = +inf (every head: the step skips the
// estimate and is dense decode); kKeepAll a finite theta keeping every key through the
// estimate pass; else the target filtered share in percent.
constexpr int kKeepAll = -2;

void run_step(benchmark::State& state, etk::KVValueType vt, int filtered_pct, int threads) {
  const std::ptrdiff_t n = state.range(0), nq = state.range(1);
  Setup& s = setup(n, nq, vt);
  std::vector<float> o(std::size_t(kQHeads * nq * kDim));
  etk::HeadsView<float> O(o.data(), kQHeads, nq, kDim);
  etk::DecodeParams p;
  const bool latte = filtered_pct >= 0 || filtered_pct == kKeepAll;
  if (filtered_pct == kKeepAll)
    p.theta = {1e30f};
  else if (latte)
    p.theta = {filtered_pct == 0 ? std::numeric_limits<float>::infinity()
                                 : theta_for(s, nq, filtered_pct / 100.0)};
  etk::SimpleThreadPool pool(threads);
  etk::ScratchArena arena;
  etk::Context ctx{threads > 1 ? &pool : nullptr, &arena};
  arena.reserve(etk::decode_scratch_bytes(*s.cache, kQHeads, nq, latte, ctx));
  etk::LatteStats st;
  for (auto _ : state) {
    if (latte)
      etk::latte_decode(*s.cache, queries(s, nq), O, p, ctx, &st);
    else
      etk::dense_decode(*s.cache, queries(s, nq), O, p, ctx);
    benchmark::DoNotOptimize(o.data());
  }
  const etk::KVCache& c = *s.cache;
  double bytes = double(kKVHeads * n * c.bytes_per_token());
  if (latte) {  // the MS4B plane (as many bytes as the LS4B rows) plus the union's rows
    const bool keeps_all = filtered_pct == 0 || filtered_pct == kKeepAll;
    const std::int64_t u = keeps_all ? std::int64_t(kKVHeads * n) : union_kept(s, nq, p);
    bytes = double(kKVHeads * n * c.lo_row_bytes()) + double(u) * double(c.lo_row_bytes() + c.value_row_bytes());
    state.counters["filtered"] = st.filtered_fraction();
    state.counters["union"] = double(u) / double(kKVHeads * n);
  }
  state.counters["bytes"] = bytes;
  state.counters["GBps"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_dense_fp16(benchmark::State& s) { run_step(s, etk::KVValueType::fp16, -1, 1); }
void BM_dense_int8(benchmark::State& s) { run_step(s, etk::KVValueType::int8, -1, 1); }
void BM_latte90_fp16(benchmark::State& s) { run_step(s, etk::KVValueType::fp16, 90, 1); }
void BM_latte75_fp16(benchmark::State& s) { run_step(s, etk::KVValueType::fp16, 75, 1); }
void BM_latte_inf_int8(benchmark::State& s) { run_step(s, etk::KVValueType::int8, 0, 1); }
void BM_latte_keepall_int8(benchmark::State& s) { run_step(s, etk::KVValueType::int8, kKeepAll, 1); }
void BM_dense_fp16_2threads(benchmark::State& s) { run_step(s, etk::KVValueType::fp16, -1, 2); }
void BM_latte90_fp16_2threads(benchmark::State& s) { run_step(s, etk::KVValueType::fp16, 90, 2); }

// Appending one token (all 8 KV heads, fp16 values) vs a memcpy of the appended floats:
// the key and value fp32 rows of the token for every KV head (8 KiB, the append's input;
// the cache stores 3 KiB of it, counter "stored"). The memcpy's source and destination
// (64 slots of 8 KiB) stay in L2, as the append's input does.
void BM_append_token(benchmark::State& state) {
  etk::KVCacheConfig c;
  c.kv_heads = kKVHeads;
  c.dim = kDim;
  c.values = etk::KVValueType::fp16;
  c.window = 1024;  // pages recycle: steady state, no allocation
  etk::KVCache cache(c);
  const auto w = decode_workload::make(kKVHeads, 1, 64, kDim, 1, 5);
  std::ptrdiff_t i = 0;
  for (auto _ : state) {
    cache.append({w.k.data() + i * kDim, kKVHeads, 1, kDim, kDim, 64 * kDim},
                 {w.v.data() + i * kDim, kKVHeads, 1, kDim, kDim, 64 * kDim});
    i = (i + 1) % 64;
  }
  state.counters["bytes"] = double(2 * kKVHeads * kDim * 4);
  state.counters["stored"] = double(kKVHeads * cache.bytes_per_token());
  state.counters["GBps"] = benchmark::Counter(double(2 * kKVHeads * kDim * 4) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_memcpy_token(benchmark::State& state) {
  const std::size_t bytes = std::size_t(2 * kKVHeads * kDim * 4);
  std::vector<char> src(bytes * 64, 1), dst(bytes * 64);
  std::size_t i = 0;
  for (auto _ : state) {
    std::memcpy(dst.data() + i * bytes, src.data() + i * bytes, bytes);
    benchmark::DoNotOptimize(dst.data());
    i = (i + 1) % 64;
  }
  state.counters["bytes"] = double(bytes);
  state.counters["GBps"] = benchmark::Counter(double(bytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void shapes(benchmark::internal::Benchmark* b) {
  for (std::int64_t nq : {1, 8})
    for (std::int64_t n : {1024, 4096, 16384, 65536}) b->Args({n, nq});
  b->ArgNames({"n", "nq"})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_stream_read)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_stream_read_2threads)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_dense_fp16)->Apply(shapes);
BENCHMARK(BM_dense_int8)->Apply(shapes);
BENCHMARK(BM_latte90_fp16)->Apply(shapes);
BENCHMARK(BM_latte75_fp16)->Apply(shapes);
BENCHMARK(BM_latte_inf_int8)->Apply(shapes);
BENCHMARK(BM_latte_keepall_int8)->Args({16384, 1})->Args({65536, 1})->ArgNames({"n", "nq"})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_dense_fp16_2threads)->Args({16384, 1})->Args({65536, 1})->ArgNames({"n", "nq"})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_latte90_fp16_2threads)->Args({16384, 1})->Args({65536, 1})->ArgNames({"n", "nq"})->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_append_token)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_memcpy_token)->Unit(benchmark::kNanosecond);
