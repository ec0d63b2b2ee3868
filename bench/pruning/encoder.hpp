// bench/pruning/encoder.hpp: a BERT-base-shaped encoder (post-LN, GELU FFN) built from
// Eigen GEMMs and etk's dense attention, runnable dense or with LTP token pruning, for
// the end-to-end pruning benchmarks. Synthetic weights (fixed seed): timing only.
//
// Pruned forward of layer l on n tokens:
//   QKV GEMM on n rows; per head dense_attention_with_probs into a reused [n, n] buffer
//   whose column sums feed the LTP importance (ImportanceAccumulator, while the block is
//   hot in cache); keep = ltp_keep(scores, theta_l); the context and residual rows are
//   compacted in place, so the output projection, LayerNorm and FFN of layer l and all of
//   layer l+1 run on the kept rows only. Kept tokens' values are exactly those of the
//   LTP hard mask (their attention saw every token of layer l; the rest is row-wise).
//   Pruned tokens are frozen: their layer-l input is scattered into the full-length output
//   (as a CTC head needs), and the last layer's rows are scattered at the end.
// The dense forward uses dense_attention (no probabilities).
#pragma once

#include <etk/attention/dense.hpp>
#include <etk/pruning/compact.hpp>
#include <etk/pruning/ltp.hpp>
#include <etk/pruning/token_importance.hpp>

#include <chrono>
#include <cmath>
#include <random>
#include <vector>

namespace pruning_bench {

using etk::RowMatrixXf;
using Clock = std::chrono::steady_clock;

struct EncoderShape {
  int layers = 12;
  std::ptrdiff_t hidden = 768, heads = 12, ffn = 3072;
  std::ptrdiff_t head_dim() const { return hidden / heads; }
};

struct LayerWeights {
  RowMatrixXf wqkv, wo, w1, w2;
  Eigen::RowVectorXf bqkv, bo, b1, b2, g1, be1, g2, be2;
};

struct ForwardStats {
  std::vector<std::ptrdiff_t> tokens;  // entering each layer
  double prune_seconds = 0;            // importance + selection + compaction + scatter
};

inline RowMatrixXf random_matrix(std::ptrdiff_t r, std::ptrdiff_t c, float sd, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, sd);
  RowMatrixXf m(r, c);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = nd(rng);
  return m;
}


// Multi-head attention of q, k, v (any head and row strides, e.g. interleaved heads of a
// QKV GEMM output), head by head. With `acc`: probabilities of each head into `probs`
// [n_q, n_k] and their column sums into acc (what the LTP encoder needs), the time spent
// in the sums added to *acc_seconds.
inline void dense_attention_all_heads(etk::HeadsView<const float> q, etk::HeadsView<const float> k,
                                      etk::HeadsView<const float> v, etk::HeadsView<float> o,
                                      etk::ImportanceAccumulator<float>* acc = nullptr,
                                      float* probs = nullptr, double* acc_seconds = nullptr) {
  auto one = [](const auto& view, std::ptrdiff_t h) { return etk::heads_slice(view, h); };
  for (std::ptrdiff_t h = 0; h < q.heads; ++h) {
    etk::AttentionParams p;
    p.check_finite = false;
    if (!acc) {
      etk::dense_attention(one(q, h), one(k, h), one(v, h), one(o, h), p);
      continue;
    }
    etk::dense_attention_with_probs(one(q, h), one(k, h), one(v, h), one(o, h),
                                    etk::HeadsView<float>(probs, 1, q.seq, k.seq), p);
    const auto t0 = Clock::now();
    acc->add(probs, q.seq, k.seq);
    if (acc_seconds) *acc_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }
}

class Encoder {
 public:
  explicit Encoder(EncoderShape s = {}, unsigned seed = 1) : s_(s) {
    std::mt19937 rng(seed);
    const auto h = s.hidden;
    // Q/K scaled so attention logits have a standard deviation of about 2 (peaked rows,
    // as in trained models); the rest Xavier-like.
    const float qk_sd = std::sqrt(2.0f / float(h)) * 1.2f;
    for (int l = 0; l < s.layers; ++l) {
      LayerWeights w;
      w.wqkv = random_matrix(h, 3 * h, 1.0f / std::sqrt(float(h)), rng);
      w.wqkv.leftCols(2 * h) = random_matrix(h, 2 * h, qk_sd, rng);
      w.wo = random_matrix(h, h, 1.0f / std::sqrt(float(h)), rng);
      w.w1 = random_matrix(h, s.ffn, 1.0f / std::sqrt(float(h)), rng);
      w.w2 = random_matrix(s.ffn, h, 1.0f / std::sqrt(float(s.ffn)), rng);
      w.bqkv = random_matrix(1, 3 * h, 0.02f, rng);
      w.bo = random_matrix(1, h, 0.02f, rng);
      w.b1 = random_matrix(1, s.ffn, 0.02f, rng);
      w.b2 = random_matrix(1, h, 0.02f, rng);
      w.g1 = w.g2 = Eigen::RowVectorXf::Ones(h);
      w.be1 = w.be2 = Eigen::RowVectorXf::Zero(h);
      layers_.push_back(std::move(w));
    }
  }

  const EncoderShape& shape() const { return s_; }

  // x [n, hidden] -> out [n, hidden]. thresholds empty: dense (dense_attention).
  // Otherwise LTP with one threshold per layer; attention with probabilities throughout
  // (so thresholds of 0 give exactly the dense-with-probabilities result).
  void forward(const RowMatrixXf& x_in, RowMatrixXf& out, const std::vector<float>& thresholds,
               ForwardStats* stats = nullptr) {
    const std::ptrdiff_t N = x_in.rows(), H = s_.hidden;
    const bool prune = !thresholds.empty();
    reserve(N);
    x_.topRows(N) = x_in;
    out.resize(N, H);
    etk::KeepSet map = etk::all_kept(N), local, composed;
    std::ptrdiff_t n = N;
    if (stats) stats->tokens.clear(), stats->prune_seconds = 0;
    for (int l = 0; l < s_.layers; ++l) {
      const LayerWeights& w = layers_[static_cast<std::size_t>(l)];
      if (stats) stats->tokens.push_back(n);
      qkv_.topRows(n).noalias() = x_.topRows(n) * w.wqkv;
      qkv_.topRows(n).rowwise() += w.bqkv;
      if (prune) acc_.reset(n);
      attention(n, prune, stats);
      if (prune) {
        const auto t0 = Clock::now();
        scores_.resize(n);
        acc_.finish(float(s_.heads * n), scores_.data());
        etk::ltp_keep(scores_, thresholds[static_cast<std::size_t>(l)], local, cls_);
        if (static_cast<std::ptrdiff_t>(local.size()) < n) {
          // Freeze: every current row's layer input goes to the full output (kept rows are
          // overwritten later), then compact context and residual in place.
          etk::scatter_rows<float>(view(x_, n), map, etk::matrix_view(out.data(), N, H, H));
          const auto m = static_cast<std::ptrdiff_t>(local.size());
          etk::compact_rows<float>(view(ctx_, n), local, etk::matrix_view(ctx_.data(), m, H, H));
          etk::compact_rows<float>(view(x_, n), local, etk::matrix_view(x_.data(), m, H, H));
          etk::compose_keep(map, local, composed);
          map.swap(composed);
          n = m;
        }
        if (stats) stats->prune_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      }
      // Output projection + residual + LayerNorm, FFN + residual + LayerNorm.
      a_.topRows(n).noalias() = ctx_.topRows(n) * w.wo;
      a_.topRows(n) += x_.topRows(n);
      a_.topRows(n).rowwise() += w.bo;
      layer_norm(a_, n, w.g1, w.be1);
      f_.topRows(n).noalias() = a_.topRows(n) * w.w1;
      f_.topRows(n).rowwise() += w.b1;
      gelu(f_, n);
      x_.topRows(n).noalias() = f_.topRows(n) * w.w2;
      x_.topRows(n) += a_.topRows(n);
      x_.topRows(n).rowwise() += w.b2;
      layer_norm(x_, n, w.g2, w.be2);
    }
    const auto t0 = Clock::now();
    etk::scatter_rows<float>(view(x_, n), map, etk::matrix_view(out.data(), N, H, H));
    if (stats) stats->prune_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  }

 private:
  static etk::ConstMatrixView<float> view(const RowMatrixXf& m, std::ptrdiff_t rows) {
    return etk::matrix_view(m.data(), rows, m.cols(), m.cols());
  }

  void reserve(std::ptrdiff_t N) {
    if (x_.rows() >= N) return;
    x_.resize(N, s_.hidden);
    qkv_.resize(N, 3 * s_.hidden);
    ctx_.resize(N, s_.hidden);
    a_.resize(N, s_.hidden);
    f_.resize(N, s_.ffn);
    probs_.resize(N, N);
  }

  // ctx [n, hidden] = multi-head attention of qkv; with probabilities into acc_ if prune.
  void attention(std::ptrdiff_t n, bool prune, ForwardStats* stats) {
    const std::ptrdiff_t H = s_.hidden, dh = s_.head_dim(), ld = 3 * H;
    double ignored = 0;
    dense_attention_all_heads(etk::HeadsView<const float>(qkv_.data(), s_.heads, n, dh, ld, dh),
                              etk::HeadsView<const float>(qkv_.data() + H, s_.heads, n, dh, ld, dh),
                              etk::HeadsView<const float>(qkv_.data() + 2 * H, s_.heads, n, dh, ld, dh),
                              etk::HeadsView<float>(ctx_.data(), s_.heads, n, dh, H, dh),
                              prune ? &acc_ : nullptr, probs_.data(), stats ? &stats->prune_seconds : &ignored);
  }

  static void layer_norm(RowMatrixXf& m, std::ptrdiff_t n, const Eigen::RowVectorXf& g,
                         const Eigen::RowVectorXf& b) {
    const float inv = 1.0f / float(m.cols());
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      auto r = m.row(i).array();
      const float mean = r.sum() * inv;
      r -= mean;
      const float var = r.square().sum() * inv;
      r = r * (1.0f / std::sqrt(var + 1e-12f)) * g.array() + b.array();
    }
  }

  static void gelu(RowMatrixXf& m, std::ptrdiff_t n) {
    auto a = m.topRows(n).array();
    a = 0.5f * a * (1.0f + (0.7978845608f * (a + 0.044715f * a.cube())).tanh());
  }

  EncoderShape s_;
  std::vector<LayerWeights> layers_;
  RowMatrixXf x_, qkv_, ctx_, a_, f_, probs_;
  Eigen::VectorXf scores_;
  etk::ImportanceAccumulator<float> acc_;
  // Token 0 plays BERT's [CLS]: protected, so it stays at row 0 of every compacted layer.
  etk::LtpHardOptions cls_ = [] {
    etk::LtpHardOptions o;
    o.selection.protected_indices = {0};
    return o;
  }();
};

}  // namespace pruning_bench
