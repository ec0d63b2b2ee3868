// A user's program, built with plain -O2 (no ISA flags): includes the umbrella header,
// checks that etk's kernels dispatch and take the widest path this CPU runs, runs an int8
// GEMM on that path and on the scalar path (same bits), runs dense attention against the
// reference, and catches etk's error type from a bad call.
#include <etk/attention/reference/dense.hpp>
#include <etk/etk.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  std::printf("etk %s, compiled for %s, dispatched %d, CPU runs %s, calls take %s\n", ETK_VERSION_STRING,
              etk::compiled_isa(), int(etk::dispatched()), etk::isa_name(etk::best_isa()),
              etk::isa_name(etk::current_path()));
  if (!etk::dispatched() || etk::current_path() != etk::best_isa()) return 1;
  {
    const int m = 7, kk = 37, nn = 70;
    std::vector<std::uint8_t> a(m * kk);
    std::vector<std::int8_t> w(nn * kk);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::uint8_t>(i * 37 + 11);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = static_cast<std::int8_t>(i * 53 + 5);
    const etk::PackedWeightsS8 packed(etk::matrix_view(static_cast<const std::int8_t*>(w.data()), nn, kk, kk));
    std::vector<std::int32_t> best(m * nn), scalar(m * nn);
    const auto av = etk::matrix_view(static_cast<const std::uint8_t*>(a.data()), m, kk, kk);
    etk::int8_gemm_s32<std::uint8_t>(av, 3, packed, {}, etk::MatrixView<std::int32_t>(best.data(), m, nn, Eigen::OuterStride<>(nn)));
    etk::set_isa(etk::Isa::scalar);
    etk::int8_gemm_s32<std::uint8_t>(av, 3, packed, {}, etk::MatrixView<std::int32_t>(scalar.data(), m, nn, Eigen::OuterStride<>(nn)));
    etk::reset_isa();
    std::printf("int8 GEMM on %s and on scalar: %s\n", etk::isa_name(etk::best_isa()), best == scalar ? "same bits" : "DIFFERENT");
    if (best != scalar) return 1;
  }
  const int heads = 2, n = 9, d = 15;
  std::vector<float> q(heads * n * d), k(q.size()), v(q.size()), out(q.size()), ref(q.size());
  for (std::size_t i = 0; i < q.size(); ++i) {
    q[i] = std::sin(0.37f * float(i));
    k[i] = std::cos(0.23f * float(i));
    v[i] = std::sin(0.11f * float(i) + 1.0f);
  }
  etk::HeadsView<const float> qv(q.data(), heads, n, d), kv(k.data(), heads, n, d),
      vv(v.data(), heads, n, d);
  etk::AttentionParams p;
  p.causal = true;
  etk::dense_attention(qv, kv, vv, etk::HeadsView<float>(out.data(), heads, n, d), p);
  etk::reference::dense_attention(qv, kv, vv, etk::HeadsView<float>(ref.data(), heads, n, d), p);
  float err = 0;
  for (std::size_t i = 0; i < out.size(); ++i) err = std::fmax(err, std::fabs(out[i] - ref[i]));
  std::printf("dense attention vs reference: max error %g\n", err);
  if (!(err < 1e-5f)) return 1;
  try {
    etk::dense_attention(qv, etk::HeadsView<const float>(k.data(), 1, n, d), vv,
                         etk::HeadsView<float>(out.data(), heads, n, d));
  } catch (const etk::invalid_argument& e) {
    std::printf("caught: %s\n", e.what());
    return 0;
  }
  return 1;
}
