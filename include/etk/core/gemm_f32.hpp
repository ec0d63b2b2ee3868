// etk/core/gemm_f32.hpp: etk's own fp32 GEMM, C = A·B (or C += A·B), on runtime-dispatched
// AVX-512 / AVX2 / portable micro-kernels (etk/core/detail/gemm_f32_kernels.inl).
//
//   gemm_f32(a [M, K], PackedWeightsF32 b [K, N], c [M, N])   weights packed once
//   gemm_f32(a [M, K], b [K, N] view, c [M, N])               packs b into ctx scratch
// Each element is one FMA chain over t = 0 .. K-1 in order, in fp32, so the error is
// bounded as for any such sum: |c - exact| <= gamma_K * sum_t |a_it| |b_tj|, gamma_K =
// K u / (1 - K u), u = 2^-24 (the portable path without FMA hardware rounds each product
// too: gamma_{K+1}). Work is split into tasks of up to kTaskRows rows x kTaskPanels panels
// on ctx's pool; results are bit-identical for every pool and thread count. No finiteness
// check: NaN and Inf propagate as IEEE arithmetic says. Rejected: shape mismatch, an empty
// operand, an output whose rows overlap or that overlaps an input.
// Reference twin: etk/core/reference/gemm_f32.hpp.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/context.hpp"
#include "etk/core/detail/gemm_f32_kernels.hpp"
#include "etk/core/packed_weights_f32.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE

enum class GemmOutput { overwrite, accumulate };  // C = A·B or C += A·B

namespace detail::gemm_f32 {

// Task: at most kTaskRows rows, M split evenly (128 rows: one task of 128, not 96 + 32,
// whose second task passed over the same columns of B again for a third of the rows;
// 0.91-0.96 -> 1.00-1.03 of oneDNN's prepacked matmul at 128x768x768 on Zen 3 AVX2, best
// of 10 repetitions, in three runs; then with tasks of 128 columns). On Zen 4, 96 rows had
// beaten 48 and 192 by 10% at 512x768x3072 (fewer passes over B per row); 512 rows now
// make 4 tasks of 128.
// Columns: kTaskPanels panels (256 columns), halved while that leaves fewer than two tasks
// per thread of ctx (one thread: 8 panels; two threads at 128x768x768: 4, so 6 tasks, not
// 3). On the AVX-512 Xeon, one thread, 8 panels with column tasks inner beat 4 panels with
// row tasks inner by ~3% at 512x768x3072 (155 vs 150 GFLOP/s: a scratch harness timing 20
// calls, fastest call, four alternating runs; the peers benchmark then gave 153.5, 1.01x
// oneDNN's prepacked matmul, docs/performance.md) and were even at 128x768x768 and 1024^3.
constexpr std::ptrdiff_t kTaskRows = 132;
constexpr std::ptrdiff_t kTaskPanels = 8;

// c [M, N] shares no element with the matrix m (the shared exact test of check::no_overlap).
inline void check_apart(const char* m_name, const ConstMatrixView<float>& m, const MatrixView<float>& c) {
  check::no_overlap("c", HeadsView<const float>(c.data(), 1, c.rows(), c.cols(), c.outerStride(), 0), m_name,
                    HeadsView<const float>(m.data(), 1, m.rows(), m.cols(), m.outerStride(), 0));
}

inline void check_gemm(const ConstMatrixView<float>& a, std::ptrdiff_t k, std::ptrdiff_t n,
                       const MatrixView<float>& c) {
  ETK_CHECK(a.rows() > 0 && a.cols() > 0, "argument 'a' is empty ([" << a.rows() << ", " << a.cols() << "])");
  ETK_CHECK(a.cols() == k, "argument 'a' has " << a.cols() << " columns, the weights' depth K is " << k);
  ETK_CHECK(c.rows() == a.rows() && c.cols() == n, "argument 'c' is [" << c.rows() << ", " << c.cols()
                                                                      << "], expected [" << a.rows() << ", " << n << "]");
  check::rows_disjoint("c", c.rows(), c.cols(), c.outerStride());
  check_apart("a", a, c);
}

// C = (acc ? C : 0) + A·B for packed B on ctx's pool.
inline void run(const ConstMatrixView<float>& a, const float* bp, std::ptrdiff_t n,
                MatrixView<float> c, bool acc, const Context& ctx) {
  const std::ptrdiff_t m = a.rows(), k = a.cols();
  const std::ptrdiff_t row_tasks = (m + kTaskRows - 1) / kTaskRows, task_rows = (m + row_tasks - 1) / row_tasks;
  const std::ptrdiff_t panels = gemm_f32_layout::panels(n);
  std::ptrdiff_t task_panels = kTaskPanels;
  while (task_panels > 1 && row_tasks * ((panels + task_panels - 1) / task_panels) < 2 * ctx.concurrency())
    task_panels /= 2;
  const std::ptrdiff_t col_tasks = (panels + task_panels - 1) / task_panels;
  float* const cd = c.data();
  const std::ptrdiff_t ldc = c.outerStride();
  // Column tasks inner: consecutive tasks share one row block of A (128 rows x K, 384 KiB
  // at K = 768), which stays in L2 while the column blocks of B stream past it; within a
  // task each row tile's A stays in L1 over the task's panels (gemm_f32_kernels.inl).
  parallel_for(ctx, row_tasks * col_tasks, [&](std::ptrdiff_t task, int) {
    const std::ptrdiff_t i0 = (task / col_tasks) * task_rows, p0 = (task % col_tasks) * task_panels;
    gemm_block(a.data(), a.outerStride(), 1, k, bp, 32, 32 * k, n, cd, ldc, acc, i0,
               std::min(m, i0 + task_rows), p0, std::min(panels, p0 + task_panels));
  });
}

}  // namespace detail::gemm_f32

// C [M, N] = A [M, K] · B (or += with GemmOutput::accumulate), B packed once.
inline void gemm_f32(ConstMatrixView<float> a, const PackedWeightsF32& b, MatrixView<float> c,
                     const Context& ctx = {}, GemmOutput out = GemmOutput::overwrite) {
  ETK_CHECK(b.k() > 0, "argument 'b' holds no packed weights");
  detail::gemm_f32::check_gemm(a, b.k(), b.n(), c);
  detail::gemm_f32::run(a, b.data(), b.n(), c, out == GemmOutput::accumulate, ctx);
}

// Bytes of scratch gemm_f32 with an unpacked B [K, N] takes from ctx (B's packed copy).
inline std::size_t gemm_f32_scratch_bytes(std::ptrdiff_t k, std::ptrdiff_t n) {
  return static_cast<std::size_t>(gemm_f32_layout::packed_floats(k, n)) * sizeof(float);
}

// C [M, N] = A [M, K] · B [K, N] (or +=), B packed into ctx's scratch for this call.
inline void gemm_f32(ConstMatrixView<float> a, ConstMatrixView<float> b, MatrixView<float> c,
                     const Context& ctx = {}, GemmOutput out = GemmOutput::overwrite) {
  ETK_CHECK(b.rows() > 0 && b.cols() > 0, "argument 'b' is empty ([" << b.rows() << ", " << b.cols() << "])");
  detail::gemm_f32::check_gemm(a, b.rows(), b.cols(), c);
  ETK_CHECK(b.rows() <= 1 || b.outerStride() >= b.cols(),
            "argument 'b' has row stride " << b.outerStride() << " smaller than its " << b.cols() << " columns");
  detail::gemm_f32::check_apart("b", b, c);
  ScratchLease lease(ctx, gemm_f32_scratch_bytes(b.rows(), b.cols()));
  float* bp = lease.data<float>();
  gemm_f32_layout::pack_panels(b.data(), b.outerStride(), 1, b.rows(), b.cols(), 1.0f, bp);
  detail::gemm_f32::run(a, bp, b.cols(), c, out == GemmOutput::accumulate, ctx);
}

ETK_END_NAMESPACE
