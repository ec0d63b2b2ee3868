// hooks.hpp: the points where a technique plugs into the PP-OCRv4 runner.
//
// Every member is optional (an empty std::function means "the float default", and the
// default paths never pay for an unset hook). A technique fills a Hooks and hands it to
// Study::row (see study.hpp and TECHNIQUES.md). What each hook sees:
//   attention     replaces softmax(Q K^T * scale) V of one block ([heads, T, 15] views);
//   on_probs      reads the attention probabilities the float attention computes;
//   prune         shrinks the token sequence after the attention of a block
//                 (prune_after_block: after the whole block);
//   weights       rewrites the (BatchNorm-folded) weights of any conv / linear at load;
//   activation    rewrites activations at named points (inputs of convs and linears,
//                 post-softmax, post-swish, LayerNorm input/output);
//   gemm          computes every conv / linear product (e.g. in int8);
//   nonlinearity  replaces swish, hardswish, hardsigmoid, the exp of the softmaxes and
//                 the rsqrt of the LayerNorms.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "etk/core/tensor_view.hpp"

namespace ocr {

// One conv or linear layer of the model, as the hooks see it.
struct LayerInfo {
  enum class Kind { Conv, Depthwise, Linear };
  std::string name;   // the ONNX weight name, e.g. "conv2d_164.w_0", "linear_77.w_0"
  Kind kind = Kind::Conv;
  int out = 0;        // output channels = rows of the weight matrix (the out-channel axis is 0)
  int k = 0;          // inputs per output: in_channels/groups * kh * kw (linear: in features)
  int block = -1;     // transformer block 0/1 for its linears, -1 elsewhere
  std::string role;   // "backbone", "neck", "qkv", "proj", "fc1", "fc2", "head"
  bool transformer() const { return block >= 0; }
};

// Weights as the runner stores them: row-major [out, k] (conv: [out][cin/g][kh][kw]),
// BatchNorm and the scalar affine after each conv already folded in. Edit in place.
// Applied once when the model of a row is built (Study, or Model::with_weights); a
// Runner itself ignores Hooks::weights.
using WeightsFn = std::function<void(const LayerInfo&, etk::MatrixView<float> w, float* bias)>;

// Y[n, out] = X[n, k] * W[out, k]^T + bias, all row-major with the given strides.
// The float default is an Eigen GEMM. Depthwise convs do not go through it.
struct GemmArgs {
  const LayerInfo* layer;
  const float* x; int n; int k; int ldx;
  const float* w; int ldw;           // [out, k]
  const float* bias;                 // [out] or nullptr
  float* y; int out; int ldy;
};
using GemmFn = std::function<void(const GemmArgs&)>;

// Named activation points. `layer` is set for ConvInput / LinearInput.
enum class Point { ConvInput, LinearInput, PostSoftmax, PostSwish, LayerNormInput, LayerNormOutput };
struct ActivationSite {
  Point point;
  const LayerInfo* layer = nullptr;  // ConvInput / LinearInput
  int block = -1;                    // transformer block, -1 outside
  int index = 0;                     // LayerNorm 0..4 (block b: 2b, 2b+1; final: 4)
  int rows = 0, cols = 0;            // the data is row-major [rows, cols] (channels last)
};
using ActivationFn = std::function<void(const ActivationSite&, float* data)>;

// Elementwise non-linearities by kind; each maps x[i] -> f(x[i]) in place over n values.
//  Swish: x*sigmoid(x); HardSwish: x*relu6(x+3)/6; HardSigmoid: clip(x/6+0.5, 0, 1);
//  SoftmaxExp: exp(x) for x <= 0 (inputs already shifted by the row max);
//  LayerNormRsqrt: 1/sqrt(x) for x = variance + eps > 0.
enum class Nonlinearity { Swish, HardSwish, HardSigmoid, SoftmaxExp, LayerNormRsqrt, Count };
using NonlinearityFn = std::function<void(float* x, int64_t n)>;

// Attention of one block. Q, K, V, O are [heads=8, T, 15]; O = softmax(Q K^T*scale) V.
struct AttentionCall {
  int block;
  etk::HeadsView<const float> q, k, v;
  etk::HeadsView<float> o;
  float scale;
};
using AttentionFn = std::function<void(const AttentionCall&)>;

// Attention probabilities of block `block`, [heads, T, T] row-major (float attention only).
using ProbsFn = std::function<void(int block, const float* probs, int heads, int T)>;

// Token pruning after the attention (and its residual) of block `block`. Gets the
// probabilities of that attention ([heads, T, T]; nullptr when a custom `attention`
// hook ran) and the current tokens x [T, 120]; returns the indices (ascending, into the
// current sequence) of the tokens that continue. Pruned tokens keep their current
// representation, which is scattered back into the full sequence for the CTC head.
using PruneFn = std::function<std::vector<int>(int block, const float* probs, int heads, int T,
                                               const float* x, int dim)>;

struct Hooks {
  AttentionFn attention;
  ProbsFn on_probs;
  PruneFn prune;             // within block b: after its attention, before its MLP
  PruneFn prune_after_block; // between blocks: after block b's MLP (same arguments; probs
                             // is nullptr if `prune` already shrank the sequence in block b)
  WeightsFn weights;
  ActivationFn activation;
  GemmFn gemm;
  NonlinearityFn nonlinearity[int(Nonlinearity::Count)];
  // Set true to promise the hooks leave the backbone (everything before the transformer
  // blocks) unchanged, so the cached backbone output per line is reused. The runner also
  // infers it: only attention / on_probs / prune / transformer-only nonlinearities
  // (SoftmaxExp, LayerNormRsqrt) set means transformer-only.
  bool transformer_only = false;

  void set(Nonlinearity k, NonlinearityFn f) { nonlinearity[int(k)] = std::move(f); }
  const NonlinearityFn& get(Nonlinearity k) const { return nonlinearity[int(k)]; }
  bool uses_backbone() const;
};

}  // namespace ocr
