// encoder.cpp: see encoder.hpp.
#include "encoder.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "etk/attention/dense.hpp"
#include "etk/config.hpp"

namespace sentence {

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRows = Eigen::Map<const RowMatrix>;
using Rows = Eigen::Map<RowMatrix>;

// y [n, out] = x [n, in] w + b.
void linear(const Linear& l, const float* x, std::ptrdiff_t n, float* y) {
  Rows out(y, n, l.out);
  out.noalias() = ConstRows(x, n, l.in) * ConstRows(l.w.data(), l.in, l.out);
  out.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(l.b.data(), l.out);
}

// y = LN(x) row by row, as the graph: mean, mean of squared deviations, rsqrt(var + eps).
void layer_norm(const LayerNorm& ln, const float* x, std::ptrdiff_t n, std::ptrdiff_t width, float* y) {
  const Eigen::Map<const Eigen::ArrayXf> scale(ln.scale.data(), width), bias(ln.bias.data(), width);
  for (std::ptrdiff_t r = 0; r < n; ++r) {
    const Eigen::Map<const Eigen::ArrayXf> xr(x + r * width, width);
    const float mean = xr.sum() / float(width);
    const Eigen::ArrayXf d = xr - mean;
    const float var = d.square().sum() / float(width);
    Eigen::Map<Eigen::ArrayXf>(y + r * width, width) = scale * (1.0f / std::sqrt(var + ln.eps)) * d + bias;
  }
}

}  // namespace

// Buffers at EIGEN_MAX_ALIGN_BYTES: Eigen's vectorised reductions over an unaligned Map
// start with a scalar prefix up to the first aligned element, so a sum's rounding would
// depend on where the buffer happens to lie; aligned buffers (and rows a multiple of 16
// floats apart) make every worker's results bit-identical.
using Buffer = std::vector<float, Eigen::aligned_allocator<float>>;

struct Encoder::Workspace {
  Buffer x, h, a, qkv, ctx, ffn, pooled, hidden;
  // width: the widest activation of a layer; wide: the widest of qkv and the FFN's hidden.
  void size_for(std::ptrdiff_t rows, std::ptrdiff_t sentences, std::ptrdiff_t width, std::ptrdiff_t wide) {
    auto grow = [](Buffer& v, std::ptrdiff_t n) {
      if (std::ptrdiff_t(v.size()) < n) v.resize(std::size_t(n));
    };
    for (auto* v : {&x, &h, &a, &ctx}) grow(*v, rows * width);
    for (auto* v : {&qkv, &ffn}) grow(*v, rows * wide);
    for (auto* v : {&pooled, &hidden}) grow(*v, sentences * width);
  }
};

Encoder::Encoder(const UseModel& model, int chunk_tokens) : model_(model), chunk_tokens_(chunk_tokens) {
  ETK_CHECK(chunk_tokens >= 1, "argument 'chunk_tokens' must be >= 1, got " << chunk_tokens);
  const int d = model.model_dim, half = d / 2;
  timing_.resize(std::size_t(model.max_tokens) * std::size_t(d));
  for (int j = 0; j < model.max_tokens; ++j)
    for (int k = 0; k < half; ++k) {
      const float angle = float(j) * model.inv_timescales[std::size_t(k)];  // float, as the graph's Mul
      timing_[std::size_t(j * d + k)] = std::sin(angle);
      timing_[std::size_t(j * d + half + k)] = std::cos(angle);
    }
}

void Encoder::run_layer(const TransformerLayer& L, const std::vector<std::ptrdiff_t>& offsets, Workspace& ws) const {
  const std::ptrdiff_t n = offsets.back(), win = L.width_in, w = L.width, hd = L.head_dim;
  // ws.x holds the layer input [n, win]; the output [n, w] goes to ws.h.
  layer_norm(L.ln_attention, ws.x.data(), n, win, ws.a.data());
  linear(L.qkv, ws.a.data(), n, ws.qkv.data());
  for (std::ptrdiff_t r = 0; r < n; ++r)  // the graph scales q before q·k
    Eigen::Map<Eigen::ArrayXf>(ws.qkv.data() + r * 3 * win, win) *= L.q_scale;
  etk::AttentionParams params;
  params.scale = 1.0f;            // q is already scaled
  params.check_finite = false;    // the inputs are this runner's own finite activations
  for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
    const std::ptrdiff_t r0 = offsets[s], len = offsets[s + 1] - r0;
    if (len == 0) continue;
    float* base = ws.qkv.data() + r0 * 3 * win;
    const etk::HeadsView<const float> q(base, L.heads, len, hd, 3 * win, hd);
    const etk::HeadsView<const float> k(base + win, L.heads, len, hd, 3 * win, hd);
    const etk::HeadsView<const float> v(base + 2 * win, L.heads, len, hd, 3 * win, hd);
    const etk::HeadsView<float> o(ws.ctx.data() + r0 * win, L.heads, len, hd, win, hd);
    etk::dense_attention(q, k, v, o, params);
  }
  linear(L.out, ws.ctx.data(), n, ws.h.data());
  if (win != w) {
    linear(L.residual, ws.x.data(), n, ws.a.data());
    Rows(ws.h.data(), n, w) += ConstRows(ws.a.data(), n, w);
  } else {
    Rows(ws.h.data(), n, w) += ConstRows(ws.x.data(), n, w);
  }
  layer_norm(L.ln_ffn, ws.h.data(), n, w, ws.a.data());
  linear(L.ffn1, ws.a.data(), n, ws.ffn.data());
  Rows(ws.ffn.data(), n, L.ffn1.out) = Rows(ws.ffn.data(), n, L.ffn1.out).cwiseMax(0.0f);
  linear(L.ffn2, ws.ffn.data(), n, ws.a.data());
  Rows(ws.h.data(), n, w) += ConstRows(ws.a.data(), n, w);
}

void Encoder::embed_chunk(const std::vector<TokenIds>& ids, std::size_t first, std::size_t last, float* out,
                          Workspace& ws) const {
  const std::ptrdiff_t d = model_.model_dim;
  std::vector<std::ptrdiff_t> offsets{0};
  for (std::size_t s = first; s < last; ++s)
    offsets.push_back(offsets.back() + std::min<std::ptrdiff_t>(std::ptrdiff_t(ids[s].size()), model_.max_tokens));
  const std::ptrdiff_t n = offsets.back(), sentences = std::ptrdiff_t(last - first);
  std::ptrdiff_t width = model_.embedding_dim(), wide = 0;
  for (const auto& L : model_.layers) {
    width = std::max<std::ptrdiff_t>(width, L.width);
    wide = std::max<std::ptrdiff_t>({wide, L.qkv.out, L.ffn1.out});
  }
  ws.size_for(n, sentences, width, wide);
  for (std::ptrdiff_t s = 0; s < sentences; ++s) {
    const TokenIds& t = ids[first + std::size_t(s)];
    for (std::ptrdiff_t j = 0; j < offsets[std::size_t(s) + 1] - offsets[std::size_t(s)]; ++j) {
      const float* e = model_.embedding.data() + std::ptrdiff_t(t[std::size_t(j)]) * d;
      const float* tm = timing_.data() + j * d;
      float* x = ws.x.data() + (offsets[std::size_t(s)] + j) * d;
      for (std::ptrdiff_t c = 0; c < d; ++c) x[c] = e[c] + (e[c] + tm[c]);  // the graph's order of adds
    }
  }
  run_layer(model_.layers[0], offsets, ws);
  std::swap(ws.x, ws.h);
  run_layer(model_.layers[1], offsets, ws);
  const std::ptrdiff_t w = model_.layers[1].width;
  for (std::ptrdiff_t s = 0; s < sentences; ++s) {
    const std::ptrdiff_t r0 = offsets[std::size_t(s)], len = offsets[std::size_t(s) + 1] - r0;
    Eigen::Map<Eigen::RowVectorXf> p(ws.pooled.data() + s * w, w);
    p = len == 0 ? Eigen::RowVectorXf::Zero(w)
                 : Eigen::RowVectorXf(ConstRows(ws.h.data() + r0 * w, len, w).colwise().sum() / float(len));
  }
  linear(model_.tanh_layer, ws.pooled.data(), sentences, ws.hidden.data());
  const std::ptrdiff_t e = model_.embedding_dim();
  for (std::ptrdiff_t s = 0; s < sentences; ++s) {
    Eigen::Map<Eigen::ArrayXf> y(ws.hidden.data() + s * e, e);
    y = y.tanh();
    const float inv = 1.0f / std::sqrt(std::max(y.square().sum(), model_.l2_floor));
    Eigen::Map<Eigen::ArrayXf>(out + (std::ptrdiff_t(first) + s) * e, e) = y * inv;
  }
}

void Encoder::embed(const std::vector<TokenIds>& ids, float* out, const etk::Context& ctx) const {
  ETK_CHECK(out || ids.empty(), "argument 'out' is null");
  for (std::size_t s = 0; s < ids.size(); ++s)
    for (std::int32_t id : ids[s])
      ETK_CHECK(id >= 0 && id < model_.vocab_rows, "argument 'ids': sentence " << s << " holds id " << id
                                                       << ", outside [0, " << model_.vocab_rows << ")");
  // Chunks: consecutive sentences up to chunk_tokens_ tokens (at least one sentence).
  std::vector<std::size_t> bounds{0};
  std::ptrdiff_t tokens = 0;
  for (std::size_t s = 0; s < ids.size(); ++s) {
    const std::ptrdiff_t t = std::min<std::ptrdiff_t>(std::ptrdiff_t(ids[s].size()), model_.max_tokens);
    if (s > bounds.back() && tokens + t > chunk_tokens_) {
      bounds.push_back(s);
      tokens = 0;
    }
    tokens += t;
  }
  if (ids.empty()) return;
  bounds.push_back(ids.size());
  std::vector<Workspace> ws(std::size_t(ctx.concurrency()));
  etk::parallel_for(ctx, std::ptrdiff_t(bounds.size() - 1), [&](std::ptrdiff_t task, int worker) {
    embed_chunk(ids, bounds[std::size_t(task)], bounds[std::size_t(task) + 1], out, ws[std::size_t(worker)]);
  });
}

}  // namespace sentence
