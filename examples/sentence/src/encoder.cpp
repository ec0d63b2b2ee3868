// encoder.cpp: see encoder.hpp.
#include "encoder.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "etk/attention/dense.hpp"
#include "etk/config.hpp"
#include "etk/core/gemm_f32.hpp"
#include "etk/pruning/adaptive.hpp"
#include "etk/pruning/compact.hpp"
#include "etk/pruning/ltp.hpp"
#include "etk/pruning/token_importance.hpp"
#include "etk/pruning/token_merging.hpp"

namespace sentence {

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstRows = Eigen::Map<const RowMatrix>;
using Rows = Eigen::Map<RowMatrix>;

// y [n, out] = x [n, in] w + b in float.
void float_linear(const Linear& l, const float* x, std::ptrdiff_t n, float* y) {
  Rows out(y, n, l.out);
  out.noalias() = ConstRows(x, n, l.in) * ConstRows(l.w.data(), l.in, l.out);
  out.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(l.b.data(), l.out);
}

// y = LN(x) row by row, as the graph: mean, mean of squared deviations, rsqrt(var + eps);
// the rsqrt through `rsqrt` when a hook sets it, the output through `output` (site).
void layer_norm(const LayerNorm& ln, const float* x, std::ptrdiff_t n, std::ptrdiff_t width, float* y,
                const EncoderHooks& hooks, int site) {
  const Eigen::Map<const Eigen::ArrayXf> scale(ln.scale.data(), width), bias(ln.bias.data(), width);
  for (std::ptrdiff_t r = 0; r < n; ++r) {
    const Eigen::Map<const Eigen::ArrayXf> xr(x + r * width, width);
    const float mean = xr.sum() / float(width);
    const Eigen::ArrayXf d = xr - mean;
    float inv = d.square().sum() / float(width) + ln.eps;
    if (hooks.layer_norm_rsqrt)
      hooks.layer_norm_rsqrt(&inv, 1);
    else
      inv = 1.0f / std::sqrt(inv);
    Eigen::Map<Eigen::ArrayXf>(y + r * width, width) = scale * inv * d + bias;
  }
  if (hooks.layer_norm_output) hooks.layer_norm_output(site, y, n, width);
}

}  // namespace

// Buffers at EIGEN_MAX_ALIGN_BYTES: Eigen's vectorised reductions over an unaligned Map
// start with a scalar prefix up to the first aligned element, so a sum's rounding would
// depend on where the buffer happens to lie; aligned buffers (and rows a multiple of 16
// floats apart) make every worker's results bit-identical.
using Buffer = std::vector<float, Eigen::aligned_allocator<float>>;

struct Encoder::Workspace {
  Buffer x, h, a, qkv, ctx, ffn, pooled, hidden;
  Buffer scores, probs, carry, moved;  // pruning: importance, one sentence's probabilities, carried sums
  Buffer kept_at_prune;                // PrunedPooling::updated: each sentence's kept rows at the prune point x share
  Buffer weight;                       // pooling weight of each row after the pruning step
  etk::KeepSet keep, local;
  etk::MergeResult<float> merged;
  etk::ScratchArena arena;  // int8_linear's codes and accumulators
  // width: the widest activation of a layer; wide: the widest of qkv and the FFN's hidden.
  void size_for(std::ptrdiff_t rows, std::ptrdiff_t sentences, std::ptrdiff_t width, std::ptrdiff_t wide) {
    auto grow = [](Buffer& v, std::ptrdiff_t n) {
      if (std::ptrdiff_t(v.size()) < n) v.resize(std::size_t(n));
    };
    for (auto* v : {&x, &h, &a, &ctx, &moved}) grow(*v, rows * width);
    for (auto* v : {&qkv, &ffn}) grow(*v, rows * wide);
    for (auto* v : {&pooled, &hidden, &carry, &kept_at_prune}) grow(*v, sentences * width);
    grow(scores, rows);
    grow(weight, rows);
  }
};

Encoder::Encoder(const UseModel& model, int chunk_tokens) : Encoder(model, [&] {
  EncoderOptions o;
  o.chunk_tokens = chunk_tokens;
  return o;
}()) {}

Encoder::Encoder(const UseModel& model, const EncoderOptions& options) : model_(model), options_(options) {
  ETK_CHECK(options.chunk_tokens >= 1, "argument 'chunk_tokens' must be >= 1, got " << options.chunk_tokens);
  ETK_CHECK(!options.hooks.attention || options.prune == PruneRule::none || options.prune == PruneRule::merge,
            "an attention hook cannot combine with a pruning rule scored by the attention probabilities");
  const double v = options.prune_value;
  switch (options.prune) {
    case PruneRule::none: break;
    case PruneRule::top_k:
    case PruneRule::coverage:
      ETK_CHECK(v > 0 && v <= 1, "argument 'prune_value' (keep rate or coverage) must be in (0, 1], got " << v);
      break;
    case PruneRule::ltp: ETK_CHECK(std::isfinite(v) && v >= 0, "argument 'prune_value' (LTP threshold) must be >= 0, got " << v); break;
    case PruneRule::merge: ETK_CHECK(v >= 0 && v <= 0.5, "argument 'prune_value' (merged fraction) must be in [0, 0.5], got " << v); break;
  }
  const int d = model.model_dim, half = d / 2;
  timing_.resize(std::size_t(model.max_tokens) * std::size_t(d));
  for (int j = 0; j < model.max_tokens; ++j)
    for (int k = 0; k < half; ++k) {
      const float angle = float(j) * model.inv_timescales[std::size_t(k)];  // float, as the graph's Mul
      timing_[std::size_t(j * d + k)] = std::sin(angle);
      timing_[std::size_t(j * d + half + k)] = std::cos(angle);
    }
  if (options.linears != LinearKind::float32)
    for (const auto& L : model.layers)
      for (const Linear* l : {&L.qkv, &L.out, &L.ffn1, &L.ffn2, &L.residual}) {
        if (l->w.empty()) continue;  // layer 1 has no residual projection
        if (options.linears == LinearKind::gemm_f32) {
          packed_.emplace(l, etk::PackedWeightsF32::from_kn(etk::matrix_view(l->w.data(), l->in, l->out, l->out)));
          continue;
        }
        const RowMatrix wt = ConstRows(l->w.data(), l->in, l->out).transpose();  // [out, in]
        int8_.emplace(l, etk::Int8LinearWeights::from_float(etk::matrix_view(wt.data(), wt.rows(), wt.cols(), wt.cols()),
                                                            etk::Span<float>(l->b.data(), l->out),
                                                            etk::WeightGranularity::per_channel));
      }
}

Encoder::~Encoder() = default;

void Encoder::linear(const Linear& l, const float* x, std::ptrdiff_t n, float* y, Workspace& ws) const {
  if (n == 0) return;
  const auto p = packed_.find(&l);
  if (p != packed_.end()) {
    etk::gemm_f32(etk::matrix_view(x, n, l.in, l.in), p->second, etk::matrix_view(y, n, l.out, l.out));
    Rows(y, n, l.out).rowwise() += Eigen::Map<const Eigen::RowVectorXf>(l.b.data(), l.out);
    return;
  }
  const auto q = int8_.find(&l);
  if (q == int8_.end()) return float_linear(l, x, n, y);
  etk::int8_linear(etk::matrix_view(x, n, l.in, l.in), q->second, etk::matrix_view(y, n, l.out, l.out),
                   etk::Context{nullptr, &ws.arena});
}

void Encoder::attention_block(const TransformerLayer& L, const std::vector<std::ptrdiff_t>& offsets, bool scores,
                              Workspace& ws) const {
  const std::ptrdiff_t n = offsets.back(), win = L.width_in, w = L.width, hd = L.head_dim;
  // ws.x holds the layer input [n, win]; the residual stream after attention [n, w] goes to ws.h.
  const int index = &L == &model_.layers[0] ? 0 : 1;
  layer_norm(L.ln_attention, ws.x.data(), n, win, ws.a.data(), options_.hooks, 2 * index);
  linear(L.qkv, ws.a.data(), n, ws.qkv.data(), ws);
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
    if (options_.hooks.attention) {
      options_.hooks.attention(AttentionCall{index, q, k, v, o});
      continue;
    }
    if (!scores) {
      etk::dense_attention(q, k, v, o, params);
      continue;
    }
    if (std::ptrdiff_t(ws.probs.size()) < L.heads * len * len) ws.probs.resize(std::size_t(L.heads * len * len));
    const etk::HeadsView<float> p(ws.probs.data(), L.heads, len, len, len, len * len);
    etk::dense_attention_with_probs(q, k, v, o, p, params);
    etk::token_importance(etk::HeadsView<const float>(ws.probs.data(), L.heads, len, len, len, len * len),
                          ws.scores.data() + r0);
  }
  linear(L.out, ws.ctx.data(), n, ws.h.data(), ws);
  if (win != w) {
    linear(L.residual, ws.x.data(), n, ws.a.data(), ws);
    Rows(ws.h.data(), n, w) += ConstRows(ws.a.data(), n, w);
  } else {
    Rows(ws.h.data(), n, w) += ConstRows(ws.x.data(), n, w);
  }
}

void Encoder::ffn_block(const TransformerLayer& L, std::ptrdiff_t n, Workspace& ws) const {
  const std::ptrdiff_t w = L.width;
  layer_norm(L.ln_ffn, ws.h.data(), n, w, ws.a.data(), options_.hooks, &L == &model_.layers[0] ? 1 : 3);
  linear(L.ffn1, ws.a.data(), n, ws.ffn.data(), ws);
  Rows(ws.ffn.data(), n, L.ffn1.out) = Rows(ws.ffn.data(), n, L.ffn1.out).cwiseMax(0.0f);
  linear(L.ffn2, ws.ffn.data(), n, ws.a.data(), ws);
  Rows(ws.h.data(), n, w) += ConstRows(ws.a.data(), n, w);
}

// Selects each sentence's kept tokens by ws.scores, adds the pruned rows of `rows` [n,
// width] to ws.carry (carried pooling), compacts the kept rows in place, updates offsets.
void Encoder::prune(float* rows, std::ptrdiff_t width, std::vector<std::ptrdiff_t>& offsets, Workspace& ws) const {
  ws.keep.clear();
  std::vector<std::ptrdiff_t> next{0};
  if (options_.prune == PruneRule::merge) {  // each sentence's rows merged in place of its own
    for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
      const std::ptrdiff_t r0 = offsets[s], len = offsets[s + 1] - r0, out0 = next.back();
      std::ptrdiff_t rows_out = len;
      if (len >= 2) {
        const auto x = etk::matrix_view(static_cast<const float*>(rows) + r0 * width, len, width, width);
        etk::MergeOptions mo;
        mo.r = std::ptrdiff_t(std::lround(options_.prune_value * double(len)));
        etk::tome_merge(x, x, Eigen::VectorXf(), mo, ws.merged);
        rows_out = ws.merged.x.rows();
        std::copy(ws.merged.x.data(), ws.merged.x.data() + rows_out * width, ws.moved.data() + out0 * width);
        for (std::ptrdiff_t j = 0; j < rows_out; ++j) ws.weight[std::size_t(out0 + j)] = ws.merged.size[j];
      } else {
        std::copy(rows + r0 * width, rows + (r0 + len) * width, ws.moved.data() + out0 * width);
        for (std::ptrdiff_t j = 0; j < len; ++j) ws.weight[std::size_t(out0 + j)] = 1.0f;
      }
      next.push_back(out0 + rows_out);
    }
    std::copy(ws.moved.data(), ws.moved.data() + next.back() * width, rows);
    offsets = std::move(next);
    return;
  }
  for (std::size_t s = 0; s + 1 < offsets.size(); ++s) {
    const std::ptrdiff_t r0 = offsets[s], len = offsets[s + 1] - r0;
    if (len > 0) {
      const Eigen::Map<const Eigen::VectorXf> sc(ws.scores.data() + r0, len);
      switch (options_.prune) {
        case PruneRule::top_k: etk::keep_top_k(sc, options_.prune_value, ws.local); break;
        case PruneRule::ltp: etk::ltp_keep(sc, options_.prune_value, ws.local); break;
        case PruneRule::coverage: etk::keep_coverage(sc, options_.prune_value, ws.local); break;
        case PruneRule::none:
        case PruneRule::merge: ws.local = etk::all_kept(len); break;
      }
    } else {
      ws.local.clear();
    }
    Eigen::Map<Eigen::RowVectorXf> carry(ws.carry.data() + std::ptrdiff_t(s) * width, width);
    Eigen::Map<Eigen::RowVectorXf> kept_sum(ws.kept_at_prune.data() + std::ptrdiff_t(s) * width, width);
    kept_sum.setZero();
    // updated: the pruned rows share the kept rows' updates evenly, (len - kept) / kept each
    const bool updated = options_.pooling == PrunedPooling::updated && !ws.local.empty();
    const float share = updated ? float(len - std::ptrdiff_t(ws.local.size())) / float(ws.local.size()) : 0.0f;
    float* weight = ws.weight.data() + next.back();  // the kept rows' pool weights, 1 + share
    std::size_t next_kept = 0;
    for (std::ptrdiff_t j = 0; j < len; ++j) {
      const Eigen::Map<const Eigen::RowVectorXf> row(rows + (r0 + j) * width, width);
      if (next_kept < ws.local.size() && ws.local[next_kept] == j) {
        ws.keep.push_back(etk::TokenIndex(r0 + j));
        if (updated) kept_sum += share * row;
        weight[next_kept++] = 1.0f + share;
      } else if (options_.pooling != PrunedPooling::dropped) {
        carry += row;
      }
    }
    next.push_back(next.back() + std::ptrdiff_t(ws.local.size()));
  }
  const std::ptrdiff_t n = offsets.back(), kept = next.back();
  etk::compact_rows(etk::matrix_view(static_cast<const float*>(rows), n, width, width), ws.keep,
                    etk::matrix_view(ws.moved.data(), kept, width, width));
  std::copy(ws.moved.data(), ws.moved.data() + kept * width, rows);
  offsets = std::move(next);
}

void Encoder::embed_chunk(const std::vector<TokenIds>& ids, std::size_t first, std::size_t last, float* out,
                          std::ptrdiff_t* kept, Workspace& ws) const {
  const std::ptrdiff_t d = model_.model_dim;
  std::vector<std::ptrdiff_t> offsets{0};
  for (std::size_t s = first; s < last; ++s)
    offsets.push_back(offsets.back() + std::min<std::ptrdiff_t>(std::ptrdiff_t(ids[s].size()), model_.max_tokens));
  const std::vector<std::ptrdiff_t> full = offsets;
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
  const bool pruning = options_.prune != PruneRule::none;
  const std::ptrdiff_t w = model_.layers[1].width;
  ETK_CHECK(model_.layers[0].width == w, "the runner expects both layers' outputs of one width");
  std::fill(ws.carry.begin(), ws.carry.begin() + sentences * w, 0.0f);
  const PrunePoint at = options_.point;
  attention_block(model_.layers[0], offsets, pruning && at != PrunePoint::layer1_attention, ws);
  if (pruning && at == PrunePoint::layer0_attention) prune(ws.h.data(), w, offsets, ws);
  ffn_block(model_.layers[0], offsets.back(), ws);
  if (pruning && at == PrunePoint::layer0_output) prune(ws.h.data(), w, offsets, ws);
  std::swap(ws.x, ws.h);
  attention_block(model_.layers[1], offsets, pruning && at == PrunePoint::layer1_attention, ws);
  if (pruning && at == PrunePoint::layer1_attention) prune(ws.h.data(), w, offsets, ws);
  ffn_block(model_.layers[1], offsets.back(), ws);
  for (std::ptrdiff_t s = 0; s < sentences; ++s) {
    const std::ptrdiff_t r0 = offsets[std::size_t(s)], len = offsets[std::size_t(s) + 1] - r0;
    const std::ptrdiff_t all = full[std::size_t(s) + 1] - full[std::size_t(s)];
    if (kept) kept[s] = len;
    Eigen::Map<Eigen::RowVectorXf> p(ws.pooled.data() + s * w, w);
    if (!pruning) {  // the float model exactly
      p = len == 0 ? Eigen::RowVectorXf::Zero(w)
                   : Eigen::RowVectorXf(ConstRows(ws.h.data() + r0 * w, len, w).colwise().sum() / float(len));
      continue;
    }
    const bool whole = options_.pooling != PrunedPooling::dropped || options_.prune == PruneRule::merge;
    const std::ptrdiff_t count = whole ? all : len;
    // updated: the pruned rows (in carry) get the kept rows' mean update, final - at prune
    // point: the kept rows' final rows are in the weights, their rows at the prune point in
    // kept_at_prune
    p = Eigen::Map<const Eigen::RowVectorXf>(ws.weight.data() + r0, len) * ConstRows(ws.h.data() + r0 * w, len, w) +
        Eigen::Map<const Eigen::RowVectorXf>(ws.carry.data() + s * w, w);
    if (options_.pooling == PrunedPooling::updated && options_.prune != PruneRule::merge)
      p -= Eigen::Map<const Eigen::RowVectorXf>(ws.kept_at_prune.data() + s * w, w);
    p /= float(std::max<std::ptrdiff_t>(count, 1));
  }
  float_linear(model_.tanh_layer, ws.pooled.data(), sentences, ws.hidden.data());
  const std::ptrdiff_t e = model_.embedding_dim();
  for (std::ptrdiff_t s = 0; s < sentences; ++s) {
    Eigen::Map<Eigen::ArrayXf> y(ws.hidden.data() + s * e, e);
    if (options_.hooks.tanh)
      options_.hooks.tanh(y.data(), e);
    else
      y = y.tanh();
    const float inv = 1.0f / std::sqrt(std::max(y.square().sum(), model_.l2_floor));
    Eigen::Map<Eigen::ArrayXf>(out + (std::ptrdiff_t(first) + s) * e, e) = y * inv;
  }
}

void Encoder::embed(const std::vector<TokenIds>& ids, float* out, const etk::Context& ctx,
                    std::vector<std::ptrdiff_t>* kept) const {
  ETK_CHECK(out || ids.empty(), "argument 'out' is null");
  for (std::size_t s = 0; s < ids.size(); ++s)
    for (std::int32_t id : ids[s])
      ETK_CHECK(id >= 0 && id < model_.vocab_rows, "argument 'ids': sentence " << s << " holds id " << id
                                                       << ", outside [0, " << model_.vocab_rows << ")");
  if (kept) kept->assign(ids.size(), 0);
  // Chunks of consecutive sentences, as many as chunk_tokens needs (ceil(tokens /
  // chunk_tokens)) rounded up to an even count, and of about equal token counts, so the
  // tasks on a pool are balanced: a sentence goes to the chunk its middle token falls in.
  // The even count is for two threads: five chunks of a batch on two workers leave one
  // idle for a fifth of the batch (at most 5/3 = 1.67x), six split 3 + 3. Boundaries depend
  // on the lengths only (not on the thread count), so results are identical for every pool.
  if (ids.empty()) return;
  std::ptrdiff_t total = 0;
  for (const auto& t : ids) total += std::min<std::ptrdiff_t>(std::ptrdiff_t(t.size()), model_.max_tokens);
  std::ptrdiff_t chunks = (total + options_.chunk_tokens - 1) / options_.chunk_tokens;
  chunks = std::max<std::ptrdiff_t>(1, ids.size() >= 2 ? chunks + chunks % 2 : chunks);
  std::vector<std::size_t> bounds{0};
  std::ptrdiff_t before = 0, current = 0;
  for (std::size_t s = 0; s < ids.size(); ++s) {
    const std::ptrdiff_t t = std::min<std::ptrdiff_t>(std::ptrdiff_t(ids[s].size()), model_.max_tokens);
    const std::ptrdiff_t chunk = std::min(chunks - 1, (2 * before + t) * chunks / std::max<std::ptrdiff_t>(2 * total, 1));
    if (chunk > current && s > bounds.back()) {  // no empty chunk
      bounds.push_back(s);
      current = chunk;
    }
    before += t;
  }
  bounds.push_back(ids.size());
  std::vector<std::unique_ptr<Workspace>> ws(std::size_t(ctx.concurrency()));
  {
    std::lock_guard<std::mutex> lock(spare_mutex_);
    for (auto& w : ws) {
      if (spare_.empty()) {
        w.reset(new Workspace);
      } else {
        w = std::move(spare_.back());
        spare_.pop_back();
      }
    }
  }
  etk::parallel_for(ctx, std::ptrdiff_t(bounds.size() - 1), [&](std::ptrdiff_t task, int worker) {
    const std::size_t b = bounds[std::size_t(task)];
    embed_chunk(ids, b, bounds[std::size_t(task) + 1], out, kept ? kept->data() + b : nullptr, *ws[std::size_t(worker)]);
  });
  std::lock_guard<std::mutex> lock(spare_mutex_);
  for (auto& w : ws) spare_.push_back(std::move(w));
}

}  // namespace sentence
