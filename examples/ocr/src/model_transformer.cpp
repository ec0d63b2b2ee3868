// model_transformer.cpp: the two pre-LayerNorm transformer blocks of PP-OCRv4's SVTR
// neck, run from weights pulled out of the graph, with every technique hook:
//   x1 = x + proj(attention(qkv(LN1(x))));   [optional token pruning here]
//   x2 = x1 + fc2(swish(fc1(LN2(x1))));      then the final LayerNorm over all tokens.
// Pruned tokens keep their last representation in the full-length "canvas", which the
// CTC head reads.
#include <algorithm>
#include <numeric>
#include <string>

#include "etk/pruning/compact.hpp"

#include "attention.hpp"
#include "model.hpp"

namespace ocr {

void Runner::layer_norm_hooked(const LayerNormWeights& w, const float* x, int rows, float* y, int block,
                               int index, const Hooks& hooks) {
  const int D = m_->dim;
  if (hooks.activation) {
    if (x != y) std::copy(x, x + int64_t(rows) * D, y);
    hooks.activation(ActivationSite{Point::LayerNormInput, nullptr, block, index, rows, D}, y);
    x = y;
  }
  layer_norm(x, rows, D, w.gamma.data(), w.beta.data(), w.eps, y, &hooks.get(Nonlinearity::LayerNormRsqrt),
             ln_scratch_);
  if (hooks.activation) hooks.activation(ActivationSite{Point::LayerNormOutput, nullptr, block, index, rows, D}, y);
}

void Runner::block(int b, int& T, const Hooks& hooks, etk::MatrixView<float> canvas) {
  const BlockWeights& bw = m_->blocks[b];
  const int D = m_->dim, H = m_->heads, Dh = m_->head_dim;
  const Layer& qkv = m_->layers[bw.qkv];
  const Layer& proj = m_->layers[bw.proj];
  const Layer& fc1 = m_->layers[bw.fc1];
  const Layer& fc2 = m_->layers[bw.fc2];
  float* xa = xa_.data();
  // Attention half.
  h_.resize(size_t(T) * D);
  layer_norm_hooked(bw.ln1, xa, T, h_.data(), b, 2 * b, hooks);
  qkv_.resize(size_t(T) * 3 * D);
  linear(qkv, h_.data(), T, D, qkv_.data(), 3 * D, hooks);
  o_.resize(size_t(T) * D);
  // qkv rows are [3][heads][head_dim]: head h of Q starts at column h*Dh, of K at D + h*Dh.
  AttentionCall call{b,
                     etk::HeadsView<const float>(qkv_.data(), H, T, Dh, 3 * D, Dh),
                     etk::HeadsView<const float>(qkv_.data() + D, H, T, Dh, 3 * D, Dh),
                     etk::HeadsView<const float>(qkv_.data() + 2 * D, H, T, Dh, 3 * D, Dh),
                     etk::HeadsView<float>(o_.data(), H, T, Dh, D, Dh),
                     m_->attn_scale};
  const float* probs = nullptr;
  if (hooks.attention) {
    hooks.attention(call);
  } else {
    probs_.resize(size_t(H) * T * T);
    attention_with_probs(call, probs_.data(), &hooks.get(Nonlinearity::SoftmaxExp));
    if (hooks.activation) {
      // Post-softmax activation point: the probabilities are transformed, then O is
      // recomputed from them so the transform takes effect.
      hooks.activation(ActivationSite{Point::PostSoftmax, nullptr, b, 0, H * T, T}, probs_.data());
      for (int h = 0; h < H; ++h) {
        auto P = etk::matrix_view(static_cast<const float*>(probs_.data()) + int64_t(h) * T * T, T, T, T);
        call.o.head(h).noalias() = P * call.v.head(h);
      }
    }
    probs = probs_.data();
    if (hooks.on_probs) hooks.on_probs(b, probs, H, T);
  }
  d_.resize(size_t(T) * D);
  linear(proj, o_.data(), T, D, d_.data(), D, hooks);
  for (int64_t i = 0; i < int64_t(T) * D; ++i) xa[i] += d_[i];
  // Token pruning between the attention and the MLP.
  const int T_attention = T;
  if (hooks.prune) prune(hooks.prune, b, probs, T, canvas);
  // MLP half.
  h_.resize(size_t(T) * D);
  layer_norm_hooked(bw.ln2, xa, T, h_.data(), b, 2 * b + 1, hooks);
  const int F = fc1.info.out;
  f_.resize(size_t(T) * F);
  linear(fc1, h_.data(), T, D, f_.data(), F, hooks);
  if (const auto& sw = hooks.get(Nonlinearity::Swish); sw) sw(f_.data(), int64_t(T) * F);
  else for (int64_t i = 0; i < int64_t(T) * F; ++i) f_[i] = swish(f_[i]);
  if (hooks.activation) hooks.activation(ActivationSite{Point::PostSwish, nullptr, b, 0, T, F}, f_.data());
  d_.resize(size_t(T) * D);
  linear(fc2, f_.data(), T, F, d_.data(), D, hooks);
  for (int64_t i = 0; i < int64_t(T) * D; ++i) xa[i] += d_[i];
  // Token pruning between this block and the next (probs: this block's attention, or
  // nullptr when the sequence already shrank inside the block).
  if (hooks.prune_after_block) prune(hooks.prune_after_block, b, T == T_attention ? probs : nullptr, T, canvas);
}

void Runner::prune(const PruneFn& fn, int b, const float* probs, int& T, etk::MatrixView<float> canvas) {
  const int D = m_->dim, H = m_->heads;
  const etk::KeepSet local = fn(b, probs, H, T, xa_.data(), D);
  etk::MatrixView<float> x = etk::matrix_view(xa_.data(), T, D, D);
  etk::KeepSet next;
  try {
    etk::scatter_rows(x, active_, canvas);  // the current representations, back in place
    etk::compose_keep(active_, local, next);
    etk::compact_rows(x, local, etk::matrix_view(xa_.data(), int64_t(local.size()), D, D));
  } catch (const etk::invalid_argument& e) {
    throw model_error(std::string("prune hook of block ") + std::to_string(b) + ": " + e.what());
  }
  active_ = std::move(next);
  T = int(active_.size());
}

void Runner::transformer(const Step& s, const Hooks& hooks) {
  const Buffer& x = bufs_[s.in];
  Buffer& y = bufs_[s.out];
  const int D = m_->dim;
  if (x.c != D || x.h != 1) throw model_error("transformer input must be [1, T, dim]");
  const int T0 = x.w;
  y.resize(1, T0, D);
  etk::MatrixView<float> canvas = etk::matrix_view(y.d.data(), T0, D, D);
  xa_.assign(x.d.begin(), x.d.begin() + x.size());
  active_.resize(T0);
  std::iota(active_.begin(), active_.end(), 0);
  int T = T0;
  for (size_t b = 0; b < m_->blocks.size(); ++b) block(int(b), T, hooks, canvas);
  etk::scatter_rows(etk::matrix_view(xa_.data(), T, D, D), active_, canvas);
  layer_norm_hooked(m_->final_ln, canvas.data(), T0, canvas.data(), -1, 2 * int(m_->blocks.size()), hooks);
}

}  // namespace ocr
