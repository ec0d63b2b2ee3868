// techniques_common.cpp: the helpers of techniques.hpp that every row family uses.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "etk/attention/dense.hpp"
#include "techniques.hpp"

namespace sentence {

std::vector<float> embed_all(const UseModel& model, const EncoderOptions& options,
                             const std::vector<TokenIds>& sentences, std::vector<std::ptrdiff_t>* kept) {
  const Encoder enc(model, options);
  std::vector<float> out(sentences.size() * std::size_t(enc.embedding_dim()));
  enc.embed(sentences, out.data(), {}, kept);
  return out;
}

void attention_with(const AttentionCall& c, const InPlaceFn& exp,
                    const std::function<void(int, float*, std::ptrdiff_t, std::ptrdiff_t)>& probs) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const std::ptrdiff_t T = c.q.seq, d = c.q.dim;
  Mat q(T, d), k(T, d), v(T, d), p(T, T);
  for (std::ptrdiff_t h = 0; h < c.q.heads; ++h) {
    for (std::ptrdiff_t i = 0; i < T; ++i)
      for (std::ptrdiff_t j = 0; j < d; ++j) q(i, j) = c.q.row(h, i)[j], k(i, j) = c.k.row(h, i)[j], v(i, j) = c.v.row(h, i)[j];
    p.noalias() = q * k.transpose();
    for (std::ptrdiff_t i = 0; i < T; ++i) {
      float* row = p.data() + i * T;
      const float m = *std::max_element(row, row + T);
      for (std::ptrdiff_t j = 0; j < T; ++j) row[j] -= m;
      if (exp)
        exp(row, T);
      else
        for (std::ptrdiff_t j = 0; j < T; ++j) row[j] = std::exp(row[j]);
      float sum = 0;
      for (std::ptrdiff_t j = 0; j < T; ++j) sum += row[j];
      const float inv = sum > 0 ? 1.0f / sum : 0.0f;
      for (std::ptrdiff_t j = 0; j < T; ++j) row[j] *= inv;
    }
    if (probs) probs(c.layer, p.data(), T, T);
    const Mat o = p * v;
    for (std::ptrdiff_t i = 0; i < T; ++i) std::copy(o.data() + i * d, o.data() + (i + 1) * d, c.o.row(h, i));
  }
}

std::vector<RecordedAttention> record_attention(const Calibration& cal) {
  auto rec = std::make_shared<std::vector<RecordedAttention>>();
  auto m = std::make_shared<std::mutex>();
  EncoderOptions o;
  o.hooks.attention = [rec, m](const AttentionCall& c) {
    RecordedAttention r;
    r.layer = c.layer;
    r.heads = c.q.heads, r.tokens = c.q.seq, r.dim = c.q.dim;
    for (auto* dst : {&r.q, &r.k, &r.v}) dst->resize(std::size_t(r.heads * r.tokens * r.dim));
    for (std::ptrdiff_t h = 0; h < r.heads; ++h)
      for (std::ptrdiff_t i = 0; i < r.tokens; ++i) {
        const std::ptrdiff_t at = (h * r.tokens + i) * r.dim;
        std::copy(c.q.row(h, i), c.q.row(h, i) + r.dim, r.q.data() + at);
        std::copy(c.k.row(h, i), c.k.row(h, i) + r.dim, r.k.data() + at);
        std::copy(c.v.row(h, i), c.v.row(h, i) + r.dim, r.v.data() + at);
      }
    etk::AttentionParams p;
    p.scale = 1.0f;
    etk::dense_attention(c.q, c.k, c.v, c.o, p);
    std::lock_guard<std::mutex> lock(*m);
    rec->push_back(std::move(r));
  };
  embed_all(cal.model, o, cal.sentences);
  return std::move(*rec);
}

std::vector<std::vector<float>> record_layer_norm_outputs(const Calibration& cal, std::ptrdiff_t max_rows) {
  auto rows = std::make_shared<std::vector<std::vector<float>>>(4);
  auto m = std::make_shared<std::mutex>();
  EncoderOptions o;
  o.hooks.layer_norm_output = [rows, m, max_rows](int site, float* x, std::ptrdiff_t n, std::ptrdiff_t cols) {
    std::lock_guard<std::mutex> lock(*m);
    auto& v = (*rows)[std::size_t(site)];
    const std::ptrdiff_t take = std::min(n, max_rows - std::ptrdiff_t(v.size()) / cols);
    if (take > 0) v.insert(v.end(), x, x + take * cols);
  };
  embed_all(cal.model, o, cal.sentences);
  return std::move(*rows);
}

}  // namespace sentence
