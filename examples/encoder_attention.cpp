// An encoder layer's attention, the etk way: project a [seq, model] input to q, k, v in one
// GEMM, view the heads in place (no copies), run dense attention on a thread pool, then
// LATTE with a threshold calibrated to keep 30% of the keys, under the same contract.
#include <etk/attention/dense.hpp>
#include <etk/attention/latte.hpp>
#include <etk/attention/latte_threshold.hpp>

#include <cstdio>
#include <random>

int main() {
  const std::ptrdiff_t seq = 256, heads = 4, head_dim = 32, model = heads * head_dim;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  etk::RowMatrixXf x(seq, model), w_qkv(model, 3 * model);
  for (Eigen::Index i = 0; i < x.size(); ++i) x.data()[i] = normal(rng);
  for (Eigen::Index i = 0; i < w_qkv.size(); ++i) w_qkv.data()[i] = 0.2f * normal(rng);
  const etk::RowMatrixXf qkv = x * w_qkv;  // [seq, q | k | v], heads side by side

  // Head h of q is columns [h * head_dim, (h + 1) * head_dim) of the q block: a view.
  auto heads_of = [&](std::ptrdiff_t block) {
    return etk::HeadsView<const float>(qkv.data() + block * model, heads, seq, head_dim,
                                       3 * model, head_dim);
  };
  const auto q = heads_of(0), k = heads_of(1), v = heads_of(2);
  etk::RowMatrixXf dense(seq, model), latte(seq, model);
  const etk::HeadsView<float> dense_out(dense.data(), heads, seq, head_dim, model, head_dim);
  const etk::HeadsView<float> latte_out(latte.data(), heads, seq, head_dim, model, head_dim);

  etk::SimpleThreadPool pool(2);  // the engine's threads, created once
  const etk::Context ctx{&pool};
  etk::AttentionParams attention;  // scale 1/sqrt(head_dim), no mask
  etk::dense_attention(q, k, v, dense_out, attention, ctx);

  etk::LatteParams params;
  params.attention = attention;  // the same contract, plus LATTE's own knobs
  params.theta = etk::latte_calibrate_keep_ratio({{q, k, v}}, params, 0.3);
  etk::LatteStats stats;
  etk::latte_attention(q, k, v, latte_out, params, &stats, ctx);

  const double rel = (latte - dense).norm() / dense.norm();
  std::printf("dense vs LATTE: %.1f%% of keys filtered, relative error %.3g\n",
              100.0 * stats.filtered_fraction(), rel);
  return stats.filtered_fraction() > 0.5 && rel < 0.5 ? 0 : 1;
}
