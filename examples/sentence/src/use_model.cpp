// use_model.cpp: see use_model.hpp.
#include "use_model.hpp"

#include <cmath>
#include <utility>

#include "etk/config.hpp"

namespace sentence {

namespace {

const std::string kK = "module_apply_default/Encoder_en/KonaTransformer/";
const std::string kStack = kK + "Encode/TransformerStack/";
const std::string kHidden = "module_apply_default/Encoder_en/hidden_layers/";

// Bound on the graph's maximum sentence length (128 in the model): the runner keeps a
// timing table of max_tokens x model_dim floats (8 MB at this bound).
constexpr int kMaxTokensLimit = 8192;

std::string stack_layer(int l) { return kStack + "Layer_" + std::to_string(l) + "/TransformerLayer/"; }
std::string encode_layer(int l) { return kK + "Encode/Layer_" + std::to_string(l) + "/TransformerLayer/"; }
std::string kernel_of(int l, const char* what) {
  return "module/Encoder_en/KonaTransformer/Encode/Layer_" + std::to_string(l) +
         "/TransformerLayer/MultiheadAttention/" + what + "/kernel/part_0";
}

// The op types of the graph and how many nodes of each: a different graph fails here.
const std::pair<const char*, int> kOpCounts[] = {
    {"Add", 17}, {"BatchMatMul", 4}, {"BiasAdd", 10}, {"Cast", 6}, {"ConcatV2", 12},
    {"Const", 61}, {"Conv2D", 4}, {"Cos", 1}, {"ExpandDims", 12}, {"GatherNd", 4},
    {"GatherV2", 11}, {"Greater", 1}, {"Less", 2}, {"LogicalNot", 1}, {"MatMul", 6},
    {"Max", 1}, {"Maximum", 3}, {"Mean", 8}, {"Mul", 14}, {"Pack", 12}, {"Placeholder", 2},
    {"Prod", 8}, {"Range", 1}, {"RealDiv", 1}, {"Relu", 2}, {"Reshape", 21}, {"Rsqrt", 5},
    {"ScatterNd", 5}, {"Shape", 21}, {"Sin", 1}, {"Slice", 2}, {"Softmax", 2},
    {"SparseToDense", 1}, {"SplitV", 2}, {"Square", 5}, {"Squeeze", 6}, {"StridedSlice", 24},
    {"Sub", 4}, {"Sum", 3}, {"Tanh", 1}, {"Transpose", 8}, {"Where", 2}};

class Recogniser {
 public:
  explicit Recogniser(const TfjsGraph& g) : g_(g), where_("model file '" + g.path + "'") {}

  void op_counts() const {
    std::map<std::string, int> counts;
    for (const auto& n : g_.nodes) ++counts[n.op];
    std::size_t expected_types = 0;
    for (const auto& oc : kOpCounts) {
      ++expected_types;
      const auto it = counts.find(oc.first);
      const int have = it == counts.end() ? 0 : it->second;
      ETK_CHECK(have == oc.second, where_ << " is not the Universal Sentence Encoder lite graph: "
                                          << have << " " << oc.first << " nodes, expected " << oc.second);
    }
    ETK_CHECK(counts.size() == expected_types,
              where_ << " is not the Universal Sentence Encoder lite graph: it has op types it does not use");
  }

  // Node `name` exists, is an `op` and reads exactly `inputs` first (in order).
  void node(const std::string& name, const char* op, const std::vector<std::string>& inputs) const {
    const TfjsNode* n = g_.find(name);
    ETK_CHECK(n, where_ << " is not the Universal Sentence Encoder lite graph: no node '" << name << "'");
    ETK_CHECK(n->op == op, where_ << ": node '" << name << "' is a " << n->op << ", expected " << op);
    ETK_CHECK(n->inputs.size() >= inputs.size(), where_ << ": node '" << name << "' has "
                                                       << n->inputs.size() << " inputs, expected "
                                                       << inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i)
      ETK_CHECK(n->inputs[i] == inputs[i], where_ << ": node '" << name << "' input " << i << " is '"
                                                  << n->inputs[i] << "', expected '" << inputs[i] << "'");
  }

  const TfjsWeight& weight(const std::string& name, const std::vector<std::int64_t>& shape,
                           const char* dtype = "float32") const {
    auto it = g_.weights.find(name);
    ETK_CHECK(it != g_.weights.end(), where_ << " is not the Universal Sentence Encoder lite graph: no weight '"
                                             << name << "'");
    ETK_CHECK(it->second.dtype == dtype, where_ << ": weight '" << name << "' is " << it->second.dtype
                                                << ", expected " << dtype);
    ETK_CHECK(it->second.shape == shape, where_ << ": weight '" << name << "' has shape "
                                                << shape_text(it->second.shape) << ", expected " << shape_text(shape));
    return it->second;
  }

  float scalar(const std::string& name) const { return weight(name, {}).f[0]; }
  std::int32_t int_scalar(const std::string& name, const std::vector<std::int64_t>& shape = {}) const {
    return weight(name, shape, "int32").i[0];
  }

  Linear linear(const std::string& w, const std::string& b, std::vector<std::int64_t> w_shape,
                int in, int out) const {
    Linear l;
    l.in = in;
    l.out = out;
    l.w = weight(w, w_shape).f;
    l.b = weight(b, {out}).f;
    return l;
  }

  LayerNorm layer_norm(const std::string& prefix, int width, float eps) const {
    LayerNorm n;
    n.scale = weight(prefix + "layer_norm_scale/ConcatPartitions/concat", {width}).f;
    n.bias = weight(prefix + "layer_norm_bias/ConcatPartitions/concat", {width}).f;
    n.eps = eps;
    return n;
  }

  void check(bool ok, const std::string& what) const {
    ETK_CHECK(ok, where_ << ": " << what);
  }

 private:
  static std::string shape_text(const std::vector<std::int64_t>& s) {
    std::string t = "[";
    for (std::size_t i = 0; i < s.size(); ++i) t += (i ? "," : "") + std::to_string(s[i]);
    return t + "]";
  }
  const TfjsGraph& g_;
  std::string where_;
};

// The dataflow of one layer, read from its nodes (see use_model.hpp).
void check_layer_graph(const Recogniser& r, int l) {
  const std::string s = stack_layer(l), m = s + "MultiheadAttention/";
  const std::string ln = s + "layer_prepostprocess/layer_norm/", fln = s + "FFN/layer_prepostprocess/layer_norm/";
  const std::string eps = stack_layer(1) + "FFN/layer_prepostprocess/layer_norm/Cast/x";
  const std::string input = l == 0 ? kStack + "Layer_0/add" : stack_layer(0) + "FFN/layer_postprocess/add";
  r.node(ln + "Mean", "Mean", {input});
  r.node(ln + "add", "Add", {ln + "Mean_1", eps});
  r.node(fln + "add", "Add", {fln + "Mean_1", eps});
  r.node(ln + "add_1", "Add", {ln + "mul_1", encode_layer(l) + "layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat"});
  r.node(m + "qkv_transform_single/Conv2D", "Conv2D", {m + "ExpandDims", kernel_of(l, "qkv_transform_single")});
  r.node(m + "mul", "Mul", {m + "split_heads/transpose", m + "mul/y"});
  const std::string dpa = m + "DotProductAttention/BaseDotProductAttention/";
  r.node(dpa + "MatMul", "BatchMatMul", {m + "mul", m + "split_heads_1/transpose"});
  r.node(dpa + "add", "Add", {dpa + "MatMul", stack_layer(1) + "MultiheadAttention/DotProductAttention/attention_bias_ignore_padding/ExpandDims_1"});
  r.node(dpa + "MatMul_1", "BatchMatMul", {dpa + "attention_weights", m + "split_heads_2/transpose"});
  r.node(m + "output_transform_single/Conv2D", "Conv2D", {m + "ExpandDims_1", kernel_of(l, "output_transform_single")});
  const std::string residual = l == 0 ? s + "AdjustResidualInput/Scatter/ScatterNd" : input;
  r.node(s + "layer_postprocess/add", "Add", {m + "Squeeze_1", residual});
  r.node(fln + "Mean", "Mean", {s + "layer_postprocess/add"});
  r.node(s + "FFN/conv1/Relu", "Relu", {s + "FFN/conv1/BiasAdd"});
  r.node(s + "FFN/conv2/Tensordot/Reshape", "Reshape", {s + "FFN/conv1/Relu"});
  r.node(s + "FFN/layer_postprocess/add", "Add", {s + "FFN/Scatter/ScatterNd", s + "layer_postprocess/add"});
  if (l == 0) {
    r.node(s + "AdjustResidualInput/Gather/GatherNd", "GatherNd", {input});
    r.node(s + "AdjustResidualInput/dense/MatMul", "MatMul", {s + "AdjustResidualInput/Gather/GatherNd",
                                                             encode_layer(0) + "dense/kernel/ConcatPartitions/concat"});
  }
}

TransformerLayer read_layer(const Recogniser& r, int l, int width_in, float eps) {
  const std::string s = stack_layer(l), e = encode_layer(l);
  TransformerLayer t;
  t.width_in = width_in;
  t.width = 512;
  const std::int32_t* split = r.weight(s + "MultiheadAttention/Const", {3}, "int32").i.data();
  r.check(split[0] == width_in && split[1] == width_in && split[2] == width_in,
          "layer " + std::to_string(l) + " splits q, k, v unevenly");
  t.heads = r.int_scalar(stack_layer(1) + "MultiheadAttention/split_heads/split_last_dimension/Reshape/shape/2");
  t.head_dim = r.int_scalar(s + "MultiheadAttention/split_heads/split_last_dimension/Reshape/shape/3");
  // In 64 bits: two int32 scalars of the file, whose product may not fit an int.
  r.check(t.heads > 0 && t.head_dim > 0 && std::int64_t(t.heads) * t.head_dim == width_in,
          "layer " + std::to_string(l) + ": heads x head size != attention width");
  t.q_scale = r.scalar(s + "MultiheadAttention/mul/y");
  r.check(std::fabs(t.q_scale * std::sqrt(float(t.head_dim)) - 1.0f) < 1e-5f,
          "layer " + std::to_string(l) + ": q scale is not 1/sqrt(head size)");
  t.ln_attention = r.layer_norm(e + "layer_prepostprocess/layer_norm/", width_in, eps);
  t.ln_ffn = r.layer_norm(e + "FFN/layer_prepostprocess/layer_norm/", t.width, eps);
  const std::string m = e + "MultiheadAttention/";
  t.qkv = r.linear(kernel_of(l, "qkv_transform_single"), m + "qkv_transform_single/bias/ConcatPartitions/concat",
                   {1, 1, width_in, 3 * width_in}, width_in, 3 * width_in);
  t.out = r.linear(kernel_of(l, "output_transform_single"), m + "output_transform_single/bias/ConcatPartitions/concat",
                   {1, 1, width_in, t.width}, width_in, t.width);
  t.ffn1 = r.linear(s + "FFN/conv1/Tensordot/Reshape_1", e + "FFN/conv1/bias/ConcatPartitions/concat",
                    {t.width, 1536}, t.width, 1536);
  t.ffn2 = r.linear(s + "FFN/conv2/Tensordot/Reshape_1", e + "FFN/conv2/bias/ConcatPartitions/concat",
                    {1536, t.width}, 1536, t.width);
  if (width_in != t.width)
    t.residual = r.linear(e + "dense/kernel/ConcatPartitions/concat", e + "dense/bias/ConcatPartitions/concat",
                          {width_in, t.width}, width_in, t.width);
  return t;
}

}  // namespace

UseModel recognise_use_lite(const TfjsGraph& g) {
  const Recogniser r(g);
  r.op_counts();
  r.node("indices", "Placeholder", {});
  r.node("values", "Placeholder", {});
  // Input: the embedding gathered by id, added to itself plus the timing signal.
  r.node(kK + "Encode/embedding_lookup", "GatherV2", {"module/Embeddings_en", kK + "ClipToMaxLength/GatherV2_1"});
  r.node(kK + "Encode/Scatter/ScatterNd", "ScatterNd", {stack_layer(1) + "FFN/StoreMask/ToInt32", kK + "Encode/embedding_lookup"});
  const std::string ts = kStack + "Layer_0/AddTimingSignal/";
  r.node(ts + "Gather/GatherNd", "GatherNd", {kK + "Encode/Scatter/ScatterNd"});
  r.node(ts + "TimingSignal/mul_2", "Mul", {ts + "TimingSignal/ExpandDims", ts + "TimingSignal/ExpandDims_1"});
  r.node(ts + "TimingSignal/concat", "ConcatV2", {ts + "TimingSignal/Sin", ts + "TimingSignal/Cos"});
  r.node(ts + "add", "Add", {ts + "Gather/GatherNd", ts + "TimingSignal/concat"});
  r.node(kStack + "Layer_0/add", "Add", {kK + "Encode/Scatter/ScatterNd", ts + "Scatter/ScatterNd"});
  r.node(kK + "Encode/SparseToDense", "SparseToDense", {kK + "ClipToMaxLength/GatherV2", kK + "ClipToMaxLength/Maximum",
                                                         kK + "ClipToMaxLength/GatherV2_1", kK + "Encode/SparseToDense/default_value"});
  r.node(kK + "Encode/Greater", "Greater", {kK + "Encode/SparseToDense", kK + "Encode/SparseToDense/default_value"});
  for (int l = 0; l < 2; ++l) check_layer_graph(r, l);
  // Pooling over the sentence's tokens, the tanh layer, the L2 normalisation.
  r.node(kK + "mul", "Mul", {stack_layer(1) + "FFN/layer_postprocess/add", kK + "ExpandDims"});
  r.node(kK + "div", "RealDiv", {kK + "Sum", kK + "ExpandDims_1"});
  r.node(kHidden + "tanh_layer_0/MatMul", "MatMul", {kK + "div", "module/Encoder_en/hidden_layers/tanh_layer_0/weights"});
  r.node(kHidden + "tanh_layer_0/Tanh", "Tanh", {kHidden + "tanh_layer_0/BiasAdd"});
  r.node(kHidden + "l2_normalize/Maximum", "Maximum", {kHidden + "l2_normalize/Sum", kHidden + "l2_normalize/Maximum/y"});
  r.node(kHidden + "l2_normalize", "Mul", {kHidden + "tanh_layer_0/Tanh", kHidden + "l2_normalize/Rsqrt"});

  UseModel m;
  r.check(r.int_scalar(kK + "Encode/SparseToDense/default_value") == -1, "padding id is not -1");
  r.check(r.scalar(stack_layer(1) + "MultiheadAttention/DotProductAttention/attention_bias_ignore_padding/mul/y") < -1e4f,
          "the padding bias does not mask (exp of it must underflow to 0)");
  m.max_tokens = r.int_scalar(kK + "ClipToMaxLength/Less/y");
  r.check(m.max_tokens > 0 && m.max_tokens <= kMaxTokensLimit,
          "maximum sentence length " + std::to_string(m.max_tokens) + " is not in [1, " +
              std::to_string(kMaxTokensLimit) + "]");
  const auto& emb = r.weight("module/Embeddings_en", {8002, 256});
  m.vocab_rows = 8002;
  m.model_dim = 256;
  m.embedding = emb.f;
  m.inv_timescales = r.weight(ts + "TimingSignal/ExpandDims_1", {1, 128}).f;
  const float eps = r.scalar(stack_layer(1) + "FFN/layer_prepostprocess/layer_norm/Cast/x");
  r.check(eps > 0.0f && eps < 1e-2f, "layer norm epsilon out of range");
  m.layers[0] = read_layer(r, 0, 256, eps);
  m.layers[1] = read_layer(r, 1, 512, eps);
  m.tanh_layer = r.linear("module/Encoder_en/hidden_layers/tanh_layer_0/weights",
                          "module/Encoder_en/hidden_layers/tanh_layer_0/bias", {512, 512}, 512, 512);
  m.l2_floor = r.scalar(kHidden + "l2_normalize/Maximum/y");
  // out = y * rsqrt(max(sum y^2, floor)): a floor <= 0 or NaN gives 0 * inf = NaN for a
  // zero y; any positive finite floor keeps every output finite (|y| <= 1).
  r.check(std::isfinite(m.l2_floor) && m.l2_floor > 0.0f, "the L2 normalisation floor is not positive and finite");
  // Every float the runner reads, biases and layer norm parameters included.
  std::vector<const std::vector<float>*> all = {&m.embedding, &m.inv_timescales, &m.tanh_layer.w, &m.tanh_layer.b};
  for (const auto& l : m.layers)
    for (const auto* v : {&l.qkv.w, &l.qkv.b, &l.out.w, &l.out.b, &l.ffn1.w, &l.ffn1.b, &l.ffn2.w, &l.ffn2.b,
                          &l.residual.w, &l.residual.b, &l.ln_attention.scale, &l.ln_attention.bias,
                          &l.ln_ffn.scale, &l.ln_ffn.bias})
      all.push_back(v);
  bool finite = true;
  for (const auto* v : all)
    for (float x : *v) finite = finite && std::isfinite(x);
  r.check(finite, "a weight is not finite");
  return m;
}

UseModel load_use_lite(const std::string& model_json) { return recognise_use_lite(load_tfjs_graph(model_json)); }

}  // namespace sentence
