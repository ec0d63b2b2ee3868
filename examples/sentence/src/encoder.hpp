// encoder.hpp: the float runner of the Universal Sentence Encoder lite (use_model.hpp has
// the computation). Sentences of mixed lengths run as a ragged batch: the tokens of
// consecutive sentences are packed row after row (no padding rows exist, so no work is
// done on padding), the linear layers run on all packed rows of a chunk at once (Eigen
// GEMMs), and attention runs per sentence over its own rows with etk::dense_attention,
// which is what the graph's padding mask (-1e9 on every key past the sentence) computes.
// Chunks of sentences are the tasks of etk::parallel_for on the caller's Context; chunk
// boundaries depend only on the lengths, so results are identical for every thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "etk/core/context.hpp"
#include "use_model.hpp"

namespace sentence {

using TokenIds = std::vector<std::int32_t>;

class Encoder {
 public:
  // Sentences are packed into chunks of at most chunk_tokens tokens (a longer sentence is
  // a chunk of its own). Keeps a reference to `model`.
  explicit Encoder(const UseModel& model, int chunk_tokens = 256);

  int embedding_dim() const { return model_.embedding_dim(); }
  // out [ids.size(), embedding_dim()] row-major. Each sentence's ids must lie in
  // [0, vocabulary rows); ids past the model's maximum (128) are dropped, as the graph's
  // ClipToMaxLength does. An empty sentence embeds as the normalised tanh of the bias.
  void embed(const std::vector<TokenIds>& ids, float* out, const etk::Context& ctx = {}) const;

 private:
  struct Workspace;
  void embed_chunk(const std::vector<TokenIds>& ids, std::size_t first, std::size_t last, float* out,
                   Workspace& ws) const;
  void run_layer(const TransformerLayer& layer, const std::vector<std::ptrdiff_t>& offsets, Workspace& ws) const;

  const UseModel& model_;
  int chunk_tokens_;
  std::vector<float> timing_;  // [max_tokens, model_dim]: sin | cos of position x inv_timescales
};

}  // namespace sentence
