// model.hpp: the PP-OCRv4 recogniser compiled from its ONNX graph into a short list of
// fused steps, and the runner that executes it on one preprocessed line.
//
// Loading recognises the decomposed patterns of the export and replaces them:
//   Conv [+ BatchNormalization] [+ scalar Mul/Add] [+ act] [+ scalar Mul/Add] -> one conv
//     step (BN and the first affine folded into the weights; act = Relu, HardSigmoid,
//     hardswish (Add 3, Clip 0..6, Mul, Div 6) or swish (Mul 1, Sigmoid, Mul));
//   GlobalAveragePool, the SE channel Mul, AveragePool, channel Concat -> small steps;
//   Shape / Cast / Slice / Concat / Reshape / Transpose / Squeeze -> checked to be views
//     of the channels-last layout (no data movement);
//   the LayerNorm chains (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add) and
//     the attention (MatMul, Reshape, Transpose, Slice, Squeeze, Mul, MatMul, Softmax,
//     MatMul, Transpose, Reshape) of the transformer blocks -> TransformerBlock objects
//     (transformer.hpp) with their weights pulled from the graph;
//   the CTC head MatMul + Add + Softmax -> a linear step and a softmax.
// Anything else is rejected with ocr::model_error naming the node.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "etk/core/tensor_view.hpp"
#include "etk/pruning/selection.hpp"
#include "hooks.hpp"
#include "kernels.hpp"
#include "onnx_model.hpp"

namespace ocr {

using RowMatrixXf = etk::RowMatrixXf;

// A conv or linear layer: weights [out, k] row-major and bias [out].
struct Layer {
  LayerInfo info;
  RowMatrixXf w;
  std::vector<float> bias;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, group = 1;
  std::vector<float> w_taps;    // depthwise only: [kh*kw, C], rebuilt by prepare()
  DepthBlockedWeights w_packed;  // others: w packed for etk::gemm_f32, rebuilt by prepare()
  void prepare();
  // Lets fn rewrite the weights and bias (if fn is set), then prepare()s.
  void rewrite(const WeightsFn& fn);
};

struct LayerNormWeights {
  std::vector<float> gamma, beta;
  float eps = 1e-5f;
};

struct BlockWeights {
  LayerNormWeights ln1, ln2;
  int qkv = -1, proj = -1, fc1 = -1, fc2 = -1;  // indices into Model::layers
};

// A channels-last activation [h*w, c].
struct Buffer {
  int h = 0, w = 0, c = 0;
  std::vector<float> d;
  int64_t size() const { return int64_t(h) * w * c; }
  void resize(int H, int W, int C) {
    h = H; w = W; c = C;
    if (d.size() < size_t(size())) d.resize(size());
  }
};

struct Step {
  enum class Kind { Input, Conv, GlobalAvgPool, MulChannel, AvgPool, ConcatChannels, Transformer, Head };
  Kind kind;
  int in = -1, in2 = -1, out = -1;  // buffer ids
  int layer = -1;                   // Conv / Head
  Act act = Act::None;
  float act_alpha = 1.f / 6.f, act_beta = 0.5f;  // HardSigmoid
  bool post_affine = false;
  float post_a = 1.f, post_b = 0.f;
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;  // AvgPool
  std::string name;                                    // the ONNX node it came from
};

class Model {
 public:
  // Loads, validates and compiles the ONNX file. Throws model_error.
  static Model load(const std::string& path);
  static Model compile(const Graph& g);

  // A copy whose conv / linear weights went through `fn` (BatchNorm already folded).
  Model with_weights(const WeightsFn& fn) const;

  std::vector<Layer> layers;
  std::vector<Step> steps;
  std::vector<BlockWeights> blocks;
  LayerNormWeights final_ln;
  int num_buffers = 0;
  int transformer_step = -1;       // index in steps
  std::vector<int> cache_buffers;  // buffers computed before the transformer and read after
  int heads = 8, head_dim = 15, dim = 120, classes = 0;
  float attn_scale = 0.f;
  int input_height = 48;
  int64_t num_parameters = 0;
  int num_graph_nodes = 0;

  // Buffers produced before step `step` and read by it or later: what resuming a run
  // there needs (cache_buffers is live_buffers(transformer_step)).
  std::vector<int> live_buffers(int step) const;
  // The first step that reads the weights of layers[layer] (its conv, the transformer
  // step for the blocks' linears, or the head).
  int first_step_of(int layer) const;
};

// The backbone's output for one line: what the steps after the transformer read, so that
// transformer-only techniques skip the backbone.
struct BackboneCache {
  std::vector<Buffer> buffers;  // parallel to Model::cache_buffers
};

// The state of a run at the start of step `step` (1 .. steps.size()-1): the buffers a
// Runner needs to resume there, so a model that differs only from that step on skips
// the steps before it (Runner::run_from).
struct Checkpoint {
  int step = -1;
  std::vector<Buffer> buffers;  // parallel to Model::live_buffers(step)
  size_t bytes() const;
};

// Output probabilities of one line: [T, classes] row-major.
struct Probs {
  int T = 0, classes = 0;
  std::vector<float> p;
  const float* row(int t) const { return p.data() + int64_t(t) * classes; }
};

// CPU time of the calling thread, in seconds (what a shared machine distorts least).
double thread_cpu_seconds();

// Executes a Model. Not thread-safe (it owns scratch buffers); use one per thread.
class Runner {
 public:
  explicit Runner(const Model& m);
  // image: [3, 48, W] normalised as PaddleOCR does (see render.hpp).
  void run(const float* image, int width, const Hooks& hooks, Probs& out, BackboneCache* save = nullptr);
  // Everything after the backbone, from a cache saved by run().
  void run_cached(const BackboneCache& cache, const Hooks& hooks, Probs& out);
  // run() that also saves a checkpoint at the start of each of `steps` (ascending).
  void run(const float* image, int width, const Hooks& hooks, Probs& out, const std::vector<int>& steps,
           std::vector<Checkpoint>& save);
  // The steps from a checkpoint on, as run() would execute them after it. The checkpoint
  // may come from another model with the same steps (e.g. the float model).
  void run_from(const Checkpoint& cp, const Hooks& hooks, Probs& out);
  const Model& model() const { return *m_; }
  // Thread CPU time of the backbone part of the last run() (everything before the blocks).
  double last_backbone_seconds() const { return backbone_s_; }
  // When set, exec adds each step's thread CPU time to (*profile)[step index].
  std::vector<double>* profile = nullptr;
  const Buffer& buffer(int id) const { return bufs_.at(size_t(id)); }

 private:
  void exec(size_t first, size_t last, const Hooks& hooks);
  void start(const float* image, int width, Probs& out);
  void snapshot(const std::vector<int>& ids, std::vector<Buffer>& to) const;
  void restore(const std::vector<int>& ids, const std::vector<Buffer>& from);
  void exec_step(const Step& s, const Hooks& hooks);
  void conv(const Step& s, const Hooks& hooks);
  void linear(const Layer& l, const float* x, int n, int ldx, float* y, int ldy, const Hooks& hooks);
  void layer_norm_hooked(const LayerNormWeights& w, const float* x, int rows, float* y, int block, int index,
                         const Hooks& hooks);
  void block(int b, int& T, const Hooks& hooks, etk::MatrixView<float> canvas);
  void prune(const PruneFn& fn, int b, const float* probs, int& T, etk::MatrixView<float> canvas);
  void transformer(const Step& s, const Hooks& hooks);
  void head(const Step& s, const Hooks& hooks, Probs& out);
  const Model* m_;
  std::vector<Buffer> bufs_;
  std::vector<float> col_, tmp_, tmp2_, ln_scratch_;
  std::vector<float> xa_, h_, qkv_, o_, probs_, f_, d_;  // transformer scratch
  etk::KeepSet active_;  // original positions of the current tokens
  const float* image_ = nullptr;
  int width_ = 0;
  double backbone_s_ = 0;
  Probs* out_ = nullptr;
};

}  // namespace ocr
