// encoder.hpp: the runner of the Universal Sentence Encoder lite (use_model.hpp has the
// computation), float by default, with etk's techniques as options.
//
// Sentences of mixed lengths run as a ragged batch: the tokens of consecutive sentences
// are packed row after row (no padding rows exist, so no work is done on padding), the
// linear layers run on all packed rows of a chunk at once (Eigen GEMMs, or etk's int8 GEMM
// with W8A8), and attention runs per sentence over its own rows with etk::dense_attention,
// which is what the graph's padding mask (-1e9 on every key past the sentence) computes.
// Chunks of sentences (about equal token counts, see chunk_tokens) are the tasks of
// etk::parallel_for on the caller's Context; chunk boundaries depend only on the lengths,
// so results are identical for every thread count.
//
// Options (EncoderOptions):
//  * linears = gemm_f32: every linear layer of both transformer layers on etk::gemm_f32
//    with its weights packed once (etk::PackedWeightsF32), bias added after; fp32 as the
//    Eigen default, the same sums in another order.
//  * linears = w8a8: every linear layer of both transformer layers as etk::int8_linear
//    (per-output-channel symmetric s8 weights, dynamic per-row s8 activations, exact int32
//    accumulation); the embedding, layer norms, attention and the final tanh layer stay float.
//  * prune: one token-pruning step at `point`, by the LTP importance (etk::token_importance:
//    attention received, averaged over heads and queries) of the attention just run, with
//    etk's top-k (keep rate), LTP threshold or SaiT coverage rule (etk::keep_*). The kept
//    rows are compacted (etk::compact_rows) and go on; a pruned token's row at the prune
//    point is either carried to the mean pooling unchanged (SaiT's "package" of pruned
//    tokens, weight 1 each, the mean still over all n tokens), carried plus the kept
//    tokens' mean update after the prune point (PrunedPooling::updated), or
//    dropped from it (the mean over the kept tokens only).
//  * prune = merge: ToMe token merging (etk::tome_merge) at `point` instead: round(value *
//    n) of a sentence's rows merge into their most similar partner (metric: the rows
//    themselves); a merged row is pooled with its size as weight, the mean over all n
//    tokens. Attention after the merge is plain (no log-size bias: etk's attention has no
//    per-key additive bias).
//  * hooks (EncoderHooks): the points at which a report row swaps in one of etk's other
//    techniques, the sentence counterpart of examples/ocr's ocr::Hooks: a sentence's
//    attention, the layer norms' outputs, the layer norms' rsqrt and the final tanh.
//    Hooks run on the workers of embed(): they may read shared state, never write it
//    unsynchronised. Weight transforms need no hook: a row runs on a copy of the UseModel.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "etk/core/context.hpp"
#include "etk/core/packed_weights_f32.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/int8_linear.hpp"
#include "use_model.hpp"

namespace sentence {

using TokenIds = std::vector<std::int32_t>;

enum class LinearKind { float32, gemm_f32, w8a8 };
enum class PruneRule { none, top_k, ltp, coverage, merge };
// Where the pruning step sits: after layer 0's attention sub-layer (its FFN and layer 1
// run on the kept tokens), after layer 0 (layer 1 runs on them), or after layer 1's
// attention (only its FFN does).
enum class PrunePoint { layer0_attention, layer0_output, layer1_attention };
// carried: a pruned token's row at the prune point goes to the pool as it is; dropped: the
// pool averages the kept tokens only; updated: the carried row plus the mean change the
// kept tokens of its sentence received after the prune point (final row minus row at the
// prune point), an estimate of what the skipped layers would have added.
enum class PrunedPooling { carried, dropped, updated };

// One sentence's attention in layer `layer` (0 or 1): o = softmax(q k^T) v with q already
// scaled by the graph's 1/sqrt(head dim); views [heads, tokens, head dim].
struct AttentionCall {
  int layer = 0;
  etk::HeadsView<const float> q, k, v;
  etk::HeadsView<float> o;
};
using InPlaceFn = std::function<void(float* x, std::ptrdiff_t n)>;

struct EncoderHooks {
  // Replaces etk::dense_attention. Cannot combine with a pruning rule that scores tokens
  // by the attention probabilities (top_k, ltp, coverage); merging is fine.
  std::function<void(const AttentionCall&)> attention;
  // Layer norm output `site` (2 * layer + 0 before the attention's qkv, + 1 before the
  // FFN), rows [rows, cols] in place, before the linear that consumes it.
  std::function<void(int site, float* rows, std::ptrdiff_t n, std::ptrdiff_t cols)> layer_norm_output;
  InPlaceFn layer_norm_rsqrt;  // on each row's var + eps, in place: 1 / sqrt
  InPlaceFn tanh;              // the final 512 -> 512 layer's tanh, in place
};

struct EncoderOptions {
  LinearKind linears = LinearKind::float32;
  PruneRule prune = PruneRule::none;
  // top_k: keep rate in (0, 1]; ltp: threshold >= 0; coverage: fraction in (0, 1];
  // merge: fraction of each sentence's tokens merged away, in [0, 0.5]
  double prune_value = 1.0;
  PrunePoint point = PrunePoint::layer0_attention;
  PrunedPooling pooling = PrunedPooling::carried;
  int chunk_tokens = 256;  // ceil(tokens / chunk_tokens) chunks of sentences (even), of about equal tokens
  EncoderHooks hooks;
};

class Encoder {
 public:
  // Keeps a reference to `model`.
  explicit Encoder(const UseModel& model, int chunk_tokens = 256);
  Encoder(const UseModel& model, const EncoderOptions& options);
  ~Encoder();

  int embedding_dim() const { return model_.embedding_dim(); }
  const EncoderOptions& options() const { return options_; }
  // out [ids.size(), embedding_dim()] row-major. Each sentence's ids must lie in
  // [0, vocabulary rows); ids past the model's maximum (128) are dropped, as the graph's
  // ClipToMaxLength does. An empty sentence embeds as the normalised tanh of the bias.
  // kept (optional): per sentence, the tokens after the pruning step (its length without).
  void embed(const std::vector<TokenIds>& ids, float* out, const etk::Context& ctx = {},
             std::vector<std::ptrdiff_t>* kept = nullptr) const;

 private:
  struct Workspace;
  void linear(const Linear& l, const float* x, std::ptrdiff_t n, float* y, Workspace& ws) const;
  void embed_chunk(const std::vector<TokenIds>& ids, std::size_t first, std::size_t last, float* out,
                   std::ptrdiff_t* kept, Workspace& ws) const;
  void attention_block(const TransformerLayer& layer, const std::vector<std::ptrdiff_t>& offsets, bool scores,
                       Workspace& ws) const;
  void ffn_block(const TransformerLayer& layer, std::ptrdiff_t n, Workspace& ws) const;
  void prune(float* rows, std::ptrdiff_t width, std::vector<std::ptrdiff_t>& offsets, Workspace& ws) const;

  const UseModel& model_;
  EncoderOptions options_;
  std::vector<float> timing_;  // [max_tokens, model_dim]: sin | cos of position x inv_timescales
  std::unordered_map<const Linear*, etk::Int8LinearWeights> int8_;  // with LinearKind::w8a8
  std::unordered_map<const Linear*, etk::PackedWeightsF32> packed_;  // with LinearKind::gemm_f32
  // Workspaces of finished embed() calls, reused by the next (their buffers stay allocated
  // and touched, so a batch pays no page faults); taken and returned under the mutex.
  mutable std::mutex spare_mutex_;
  mutable std::vector<std::unique_ptr<Workspace>> spare_;
};

}  // namespace sentence
