// etk beside the libraries an engine author would otherwise use, on the same shapes in one
// process, one thread: int8 GEMM (u8 x s8 -> s32, with an activation zero point and an
// int32 bias) against oneDNN's matmul primitive with weights reordered once into its own
// layout; fp32 GEMM (etk::gemm_f32, weights packed once; Eigen's beside it) against
// oneDNN's prepacked matmul, dnnl_sgemm and OpenBLAS; dense attention (12 heads, dim 64) against oneDNN's batched
// matmul + softmax + matmul. Families are named etk_<kernel> and peer_<library>_<kernel>;
// scripts/bench-peers prints each peer's time over etk's (> 1: etk is faster).
// The int8 products are checked bit for bit against etk's before timing. etk's int8 GEMM
// takes the best path (amx where the CPU has it; ETK_ISA=avx512vnni pins it below, beside
// ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI); its label names the path.
#include <benchmark/benchmark.h>
#include <cblas.h>
#include <dnnl.hpp>
#include <etk/attention/dense.hpp>
#include <etk/core/gemm_f32.hpp>
#include <etk/quant/int8_gemm.hpp>

#include "attention/attention_problem.hpp"

#include <Eigen/Core>
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

dnnl::engine& engine() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

void set_rate(benchmark::State& state, const char* name, double ops) {
  state.counters[name] = benchmark::Counter(ops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---------------------------------------------------------------------------------------
// int8 GEMM: a [M, K] u8 with zero point 128, w [N, K] s8, bias [N] s32.
struct Int8Problem {
  std::ptrdiff_t m, k, n;
  etk::RowMatrix<std::uint8_t> a;
  etk::RowMatrix<std::int8_t> w;
  std::vector<std::int32_t> bias;
  static constexpr std::int32_t kZeroPoint = 128;
  explicit Int8Problem(const benchmark::State& s)
      : m(s.range(0)), k(s.range(1)), n(s.range(2)), a(m, k), w(n, k), bias(static_cast<std::size_t>(n)) {
    std::mt19937 gen(1);
    std::uniform_int_distribution<int> ua(0, 255), uw(-127, 127), ub(-1000, 1000);
    for (std::ptrdiff_t i = 0; i < a.size(); ++i) a.data()[i] = static_cast<std::uint8_t>(ua(gen));
    for (std::ptrdiff_t i = 0; i < w.size(); ++i) w.data()[i] = static_cast<std::int8_t>(uw(gen));
    for (auto& b : bias) b = ub(gen);
  }
  void etk_product(const etk::PackedWeightsS8& packed, etk::RowMatrix<std::int32_t>& y) const {
    etk::int8_gemm_s32<std::uint8_t>(etk::matrix_view(static_cast<const std::uint8_t*>(a.data()), m, k, k),
                                     kZeroPoint, packed, bias, etk::matrix_view(y.data(), m, n, n));
  }
};

void BM_etk_int8_gemm(benchmark::State& state) {
  const Int8Problem p(state);
  const etk::PackedWeightsS8 packed(etk::matrix_view(static_cast<const std::int8_t*>(p.w.data()), p.n, p.k, p.k));
  etk::RowMatrix<std::int32_t> y(p.m, p.n);
  for (auto _ : state) {
    p.etk_product(packed, y);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(std::string("path ") + etk::isa_name(etk::current_path()));
  set_rate(state, "GOP/s", 2.0 * double(p.m) * double(p.n) * double(p.k));
}

// oneDNN matmul: src u8 [M, K] with a source zero point, weights s8 [K, N] (w transposed,
// format any: reordered once into oneDNN's blocked layout), bias s32 [1, N], dst s32.
void BM_peer_onednn_int8_gemm(benchmark::State& state) {
  const Int8Problem p(state);
  auto& eng = engine();
  dnnl::stream s(eng);
  const dnnl::memory::dim M = p.m, K = p.k, N = p.n;
  dnnl::memory::desc a_md({M, K}, dt::u8, tag::ab), w_any({K, N}, dt::s8, tag::any),
      w_user_md({K, N}, dt::s8, tag::ba), b_md({1, N}, dt::s32, tag::ab), c_md({M, N}, dt::s32, tag::ab);
  dnnl::primitive_attr attr;
  attr.set_zero_points(DNNL_ARG_SRC, 0, {DNNL_RUNTIME_S32_VAL});
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, w_any, b_md, c_md), attr, eng);
  dnnl::memory a_mem(a_md, eng, const_cast<std::uint8_t*>(p.a.data()));
  dnnl::memory w_user(w_user_md, eng, const_cast<std::int8_t*>(p.w.data()));
  dnnl::memory w_mem(pd.weights_desc(), eng);
  dnnl::reorder(w_user, w_mem).execute(s, w_user, w_mem);
  dnnl::memory b_mem(b_md, eng, const_cast<std::int32_t*>(p.bias.data()));
  std::int32_t zp = Int8Problem::kZeroPoint;
  dnnl::memory zp_mem({{1}, dt::s32, tag::x}, eng, &zp);
  etk::RowMatrix<std::int32_t> y(p.m, p.n), expect(p.m, p.n);
  dnnl::memory c_mem(c_md, eng, y.data());
  dnnl::matmul mm(pd);
  auto run = [&] {
    mm.execute(s, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_BIAS, b_mem},
                   {DNNL_ARG_DST, c_mem}, {DNNL_ARG_ATTR_ZERO_POINTS | DNNL_ARG_SRC, zp_mem}});
    s.wait();
  };
  run();
  p.etk_product(etk::PackedWeightsS8(etk::matrix_view(static_cast<const std::int8_t*>(p.w.data()), p.n, p.k, p.k)),
                expect);
  if (y != expect) {
    state.SkipWithError("oneDNN's int32 result differs from etk's");
    return;
  }
  for (auto _ : state) {
    run();
    benchmark::DoNotOptimize(y.data());
  }
  set_rate(state, "GOP/s", 2.0 * double(p.m) * double(p.n) * double(p.k));
}

void int8_shapes(benchmark::internal::Benchmark* b) {
  b->Args({128, 768, 768})->Args({1024, 1024, 1024})->Args({512, 768, 3072});
  for (std::ptrdiff_t m : {1, 4, 16}) b->Args({m, 768, 768});
  for (std::ptrdiff_t m : {1, 4, 16}) b->Args({m, 4096, 4096});
  b->ArgNames({"M", "K", "N"})->Unit(benchmark::kMicrosecond);
}

// ---------------------------------------------------------------------------------------
// fp32 GEMM y[M, N] = x[M, K] * W^T with W stored [N, K], as a linear layer holds it.
struct F32Problem {
  std::ptrdiff_t m, k, n;
  etk::RowMatrixXf x, w, y;
  explicit F32Problem(const benchmark::State& s)
      : m(s.range(0)), k(s.range(1)), n(s.range(2)), x(etk::RowMatrixXf::Random(m, k)),
        w(etk::RowMatrixXf::Random(n, k)), y(m, n) {}
  double flops() const { return 2.0 * double(m) * double(n) * double(k); }
};

// etk's own fp32 GEMM (etk/core/gemm_f32.hpp), weights packed once like oneDNN's.
void BM_etk_sgemm(benchmark::State& state) {
  F32Problem p(state);
  const etk::PackedWeightsF32 w(etk::const_view(p.w));
  for (auto _ : state) {
    etk::gemm_f32(etk::const_view(p.x), w, etk::mutable_view(p.y));
    benchmark::DoNotOptimize(p.y.data());
  }
  set_rate(state, "GFLOP/s", p.flops());
}

// Eigen's GEMM (what etk's float paths used before gemm_f32), listed as a peer.
void BM_peer_eigen_sgemm(benchmark::State& state) {
  F32Problem p(state);
  for (auto _ : state) {
    p.y.noalias() = p.x * p.w.transpose();
    benchmark::DoNotOptimize(p.y.data());
  }
  set_rate(state, "GFLOP/s", p.flops());
}

void BM_peer_onednn_sgemm_prepacked(benchmark::State& state) {
  F32Problem p(state);
  auto& eng = engine();
  dnnl::stream s(eng);
  const dnnl::memory::dim M = p.m, K = p.k, N = p.n;
  dnnl::memory::desc a_md({M, K}, dt::f32, tag::ab), w_any({K, N}, dt::f32, tag::any),
      w_user_md({K, N}, dt::f32, tag::ba), c_md({M, N}, dt::f32, tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, w_any, c_md), eng);
  dnnl::memory a_mem(a_md, eng, p.x.data()), w_user(w_user_md, eng, p.w.data()),
      w_mem(pd.weights_desc(), eng), c_mem(c_md, eng, p.y.data());
  dnnl::reorder(w_user, w_mem).execute(s, w_user, w_mem);
  dnnl::matmul mm(pd);
  for (auto _ : state) {
    mm.execute(s, {{DNNL_ARG_SRC, a_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, c_mem}});
    s.wait();
    benchmark::DoNotOptimize(p.y.data());
  }
  set_rate(state, "GFLOP/s", p.flops());
}

void BM_peer_onednn_sgemm(benchmark::State& state) {
  F32Problem p(state);
  for (auto _ : state) {
    dnnl_sgemm('N', 'T', p.m, p.n, p.k, 1.0f, p.x.data(), p.k, p.w.data(), p.k, 0.0f, p.y.data(), p.n);
    benchmark::DoNotOptimize(p.y.data());
  }
  set_rate(state, "GFLOP/s", p.flops());
}

void BM_peer_openblas_sgemm(benchmark::State& state) {
  F32Problem p(state);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(p.m), int(p.n), int(p.k), 1.0f, p.x.data(),
                int(p.k), p.w.data(), int(p.k), 0.0f, p.y.data(), int(p.n));
    benchmark::DoNotOptimize(p.y.data());
  }
  set_rate(state, "GFLOP/s", p.flops());
}

void f32_shapes(benchmark::internal::Benchmark* b) {
  b->Args({128, 768, 768})->Args({512, 768, 3072})->Args({1024, 1024, 1024});
  b->ArgNames({"M", "K", "N"})->Unit(benchmark::kMicrosecond);
}

// ---------------------------------------------------------------------------------------
// Dense attention, heads x [seq, dim] (bench/attention/attention_problem.hpp).
struct AttentionProblem : bench::AttentionProblem {
  explicit AttentionProblem(const benchmark::State& s) : bench::AttentionProblem(s.range(0), s.range(1), s.range(2)) {}
};

void BM_etk_attention(benchmark::State& state) {
  AttentionProblem p(state);
  etk::HeadsView<float> out(p.out.data(), p.heads, p.seq, p.dim);
  for (auto _ : state) {
    etk::dense_attention(p.view(p.q), p.view(p.k), p.view(p.v), out);
    benchmark::DoNotOptimize(p.out.data());
  }
  set_rate(state, "GFLOP/s", p.flops());
}

// oneDNN: S = scale * Q K^T (batched matmul with the scale as an output scale), softmax
// over the last axis in place, O = S V; the score tensor is materialised.
void BM_peer_onednn_attention(benchmark::State& state) {
  AttentionProblem p(state);
  auto& eng = engine();
  dnnl::stream s(eng);
  const dnnl::memory::dim H = p.heads, S = p.seq, D = p.dim;
  std::vector<float> scores(static_cast<std::size_t>(H * S * S));
  dnnl::memory::desc q_md({H, S, D}, dt::f32, tag::abc), kt_md({H, D, S}, dt::f32, tag::acb),
      s_md({H, S, S}, dt::f32, tag::abc), v_md({H, S, D}, dt::f32, tag::abc), o_md({H, S, D}, dt::f32, tag::abc);
  dnnl::primitive_attr scale_attr;
  scale_attr.set_output_scales(0, {1.0f / std::sqrt(float(p.dim))});
  dnnl::matmul::primitive_desc qk_pd(dnnl::matmul::desc(q_md, kt_md, s_md), scale_attr, eng);
  dnnl::softmax_forward::primitive_desc sm_pd(
      dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, s_md, 2), eng);
  dnnl::matmul::primitive_desc pv_pd(dnnl::matmul::desc(s_md, v_md, o_md), eng);
  dnnl::memory q_mem(q_md, eng, p.q.data()), kt_mem(kt_md, eng, p.k.data()), s_mem(s_md, eng, scores.data()),
      v_mem(v_md, eng, p.v.data()), o_mem(o_md, eng, p.out.data());
  dnnl::matmul qk(qk_pd), pv(pv_pd);
  dnnl::softmax_forward sm(sm_pd);
  for (auto _ : state) {
    qk.execute(s, {{DNNL_ARG_SRC, q_mem}, {DNNL_ARG_WEIGHTS, kt_mem}, {DNNL_ARG_DST, s_mem}});
    sm.execute(s, {{DNNL_ARG_SRC, s_mem}, {DNNL_ARG_DST, s_mem}});
    pv.execute(s, {{DNNL_ARG_SRC, s_mem}, {DNNL_ARG_WEIGHTS, v_mem}, {DNNL_ARG_DST, o_mem}});
    s.wait();
    benchmark::DoNotOptimize(p.out.data());
  }
  set_rate(state, "GFLOP/s", p.flops());
}

void attention_shapes(benchmark::internal::Benchmark* b) {
  for (std::ptrdiff_t n : {128, 512, 1024, 2048}) b->Args({12, n, 64});
  b->ArgNames({"heads", "seq", "dim"})->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_etk_int8_gemm)->Apply(int8_shapes);
BENCHMARK(BM_peer_onednn_int8_gemm)->Apply(int8_shapes);
BENCHMARK(BM_etk_sgemm)->Apply(f32_shapes);
BENCHMARK(BM_peer_eigen_sgemm)->Apply(f32_shapes);
BENCHMARK(BM_peer_onednn_sgemm_prepacked)->Apply(f32_shapes);
BENCHMARK(BM_peer_onednn_sgemm)->Apply(f32_shapes);
BENCHMARK(BM_peer_openblas_sgemm)->Apply(f32_shapes);
BENCHMARK(BM_etk_attention)->Apply(attention_shapes);
BENCHMARK(BM_peer_onednn_attention)->Apply(attention_shapes);

// One thread for every library: oneDNN (OpenMP) and OpenBLAS would otherwise use them all.
int main(int argc, char** argv) {
#if defined(_OPENMP)
  omp_set_num_threads(1);
#endif
  openblas_set_num_threads(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
