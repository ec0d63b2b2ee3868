// Learned token pruning between two attention layers: layer 1 returns its probabilities,
// LTP scores every token by the attention it receives, tokens under the threshold are
// dropped, and layer 2 runs on the kept rows only; the result is scattered back.
#include <etk/attention/dense.hpp>
#include <etk/pruning/compact.hpp>
#include <etk/pruning/ltp.hpp>
#include <etk/pruning/token_importance.hpp>

#include <cstdio>
#include <random>

int main() {
  const std::ptrdiff_t seq = 64, heads = 2, dim = 16;
  std::mt19937 rng(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  etk::RowMatrixXf hidden(seq, heads * dim);
  for (Eigen::Index i = 0; i < hidden.size(); ++i) hidden.data()[i] = normal(rng);
  hidden.topRows(8) *= 3.0f;  // a few salient tokens that attract attention

  // Layer 1: self-attention (q = k = v = hidden, heads side by side) with probabilities.
  const etk::HeadsView<const float> h1(hidden.data(), heads, seq, dim, heads * dim, dim);
  etk::RowMatrixXf out1(seq, heads * dim), probs(heads * seq, seq);
  etk::dense_attention_with_probs(h1, h1, h1,
                                  etk::HeadsView<float>(out1.data(), heads, seq, dim, heads * dim, dim),
                                  etk::HeadsView<float>(probs.data(), heads, seq, seq));

  // LTP: score = mean attention received; keep tokens scoring at least theta.
  const etk::HeadsView<const float> probs_view(probs.data(), heads, seq, seq);
  const Eigen::VectorXf scores = etk::token_importance(probs_view);
  const etk::KeepSet keep = etk::ltp_keep(scores, 0.5 / double(seq));
  const etk::RowMatrixXf kept = etk::compact_rows(out1, keep);  // any row-major Eigen object

  // Layer 2 on the kept tokens only, scattered back to the full sequence.
  const auto n = static_cast<std::ptrdiff_t>(keep.size());
  const etk::HeadsView<const float> h2(kept.data(), heads, n, dim, heads * dim, dim);
  etk::RowMatrixXf out2(n, heads * dim);
  etk::dense_attention(h2, h2, h2, etk::HeadsView<float>(out2.data(), heads, n, dim, heads * dim, dim));
  etk::RowMatrixXf full = etk::RowMatrixXf::Zero(seq, heads * dim);
  etk::scatter_rows(out2, keep, full);

  std::printf("LTP kept %td of %td tokens for layer 2\n", n, seq);
  return n > 0 && n < seq ? 0 : 1;
}
