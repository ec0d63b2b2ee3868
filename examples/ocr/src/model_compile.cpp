// model_compile.cpp: ONNX graph -> Model (pattern recognition and weight folding; see
// model.hpp for the patterns).
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "model.hpp"

namespace ocr {

namespace {

enum class Tag { NCHW, CL, LC, NHWC4 };  // logical meaning of a channels-last buffer

struct Value {
  enum class K { None, Ints, Const, Act } k = K::None;
  std::vector<int64_t> ints;  // Ints
  const Tensor* c = nullptr;  // Const
  int buf = -1;               // Act
  std::vector<int64_t> shape; // Act: logical shape at the probe width
  Tag tag = Tag::NCHW;
};

// Shapes are checked at a probe width; the compiled steps work at any width.
constexpr int kProbeWidth = 320;
// The most values of one activation at the probe width (2^24; PP-OCRv4's largest has
// 2^18), which bounds what the runner allocates per width.
constexpr int64_t kMaxActivation = int64_t(1) << 24;
// The longest shape vector the shape arithmetic builds (Concat could double it per node).
constexpr size_t kMaxShapeLength = 16;
// Kernel sizes and strides the runner accepts (PP-OCRv4 uses kernels up to 5).
constexpr int64_t kMaxKernel = 1024;

class Compiler {
 public:
  explicit Compiler(const Graph& g) : g_(g) {
    for (size_t i = 0; i < g.nodes.size(); ++i)
      for (const auto& in : g.nodes[i].inputs) consumers_[in].push_back(int(i));
    for (const auto& kv : g.constants) {
      Value v;
      if (kv.second.is_int) { v.k = Value::K::Ints; v.ints = kv.second.i; }
      else { v.k = Value::K::Const; v.c = &kv.second; }
      vals_[kv.first] = v;
    }
    done_.assign(g.nodes.size(), false);
  }

  Model run() {
    Value in;
    in.k = Value::K::Act;
    in.buf = new_buf();
    in.shape = {1, 3, 48, kProbeWidth};
    vals_[g_.input] = in;
    Step s{Step::Kind::Input};
    s.out = in.buf;
    s.name = g_.input;
    m_.steps.push_back(s);
    for (size_t i = 0; i < g_.nodes.size(); ++i) {
      if (done_[i]) continue;
      lower(int(i));
    }
    const Value& out = get(g_.output);
    if (m_.steps.back().kind != Step::Kind::Head || out.k != Value::K::Act)
      fail(-1, "the graph does not end in the CTC head (MatMul, Add, Softmax)");
    if (m_.transformer_step < 0) fail(-1, "no transformer blocks recognised");
    if (m_.heads * m_.head_dim != m_.dim) fail(-1, "the attention heads do not split the token width");
    if (!(m_.attn_scale > 0)) fail(-1, "no attention scale");
    for (const auto& l : m_.layers) {
      // Folding can overflow (a huge BatchNorm scale); the runner never sees NaN weights.
      const bool ok = l.w.allFinite() && std::all_of(l.bias.begin(), l.bias.end(), [](float v) { return std::isfinite(v); });
      if (!ok) fail(-1, "layer '" + l.info.name + "' has non-finite weights or bias");
    }
    m_.num_buffers = nbuf_;
    // Buffers produced before the transformer and read from it on: the backbone cache.
    m_.cache_buffers = m_.live_buffers(m_.transformer_step);
    m_.num_graph_nodes = int(g_.nodes.size()) + g_.num_constant_nodes;
    for (auto& l : m_.layers) {
      l.prepare();
      m_.num_parameters += l.w.size() + int64_t(l.bias.size());
    }
    return std::move(m_);
  }

 private:
  [[noreturn]] void fail(int node, const std::string& msg) const {
    if (node < 0) throw model_error("model not recognised as PP-OCRv4: " + msg);
    const Node& n = g_.nodes[node];
    throw model_error("model not recognised as PP-OCRv4 at node '" + n.name + "' (" + n.op + "): " + msg);
  }
  int new_buf() { return nbuf_++; }
  // An integer attribute or weight dimension in [lo, hi], as the int the runner uses.
  int in_range(int node, int64_t v, int64_t lo, int64_t hi, const std::string& what) const {
    if (v < lo || v > hi)
      fail(node, what + " is " + std::to_string(v) + ", outside " + std::to_string(lo) + " .. " + std::to_string(hi));
    return int(v);
  }
  float finite(int node, float v, const std::string& what) const {
    if (!std::isfinite(v)) fail(node, what + " is not finite");
    return v;
  }
  // Input k of node i as an activation with the layout `tag` (whose rank it implies).
  const Value& act(int i, size_t k, Tag tag, const char* what) {
    const Value& v = get(g_.nodes[i].inputs.at(k));
    if (v.k != Value::K::Act || v.tag != tag) fail(i, std::string(what));
    return v;
  }
  // The float constant `name` with `n` values (a per-channel parameter).
  const std::vector<float>& vector_of(int node, const std::string& name, int64_t n, const std::string& what) {
    const Tensor& t = constant(node, name);
    if (int64_t(t.f.size()) != n)
      fail(node, what + " has " + std::to_string(t.f.size()) + " values, " + std::to_string(n) + " expected");
    for (float v : t.f) finite(node, v, what);
    return t.f;
  }
  // The column count of a rank-2 float constant, or -1.
  int64_t cols_of(const std::string& name) const {
    auto it = vals_.find(name);
    if (it == vals_.end() || it->second.k != Value::K::Const || it->second.c->shape.size() != 2) return -1;
    return it->second.c->shape[1];
  }
  Value& get(const std::string& name) {
    auto it = vals_.find(name);
    if (it == vals_.end()) throw model_error("model: value '" + name + "' is used before it is defined");
    return it->second;
  }
  const std::vector<int>& users(const std::string& name) {
    static const std::vector<int> none;
    auto it = consumers_.find(name);
    return it == consumers_.end() ? none : it->second;
  }
  // The only consumer of `name` if it has exactly one (and it is not yet lowered).
  int single_user(const std::string& name, const char* op) {
    const auto& u = users(name);
    if (u.size() != 1 || done_[u[0]] || g_.nodes[u[0]].op != op) return -1;
    return u[0];
  }
  bool scalar(const std::string& name, float* v) {
    auto it = vals_.find(name);
    if (it == vals_.end()) return false;
    if (it->second.k == Value::K::Const && it->second.c->f.size() == 1) {
      *v = it->second.c->f[0];
      return std::isfinite(*v);
    }
    if (it->second.k == Value::K::Ints && it->second.ints.size() == 1) { *v = float(it->second.ints[0]); return true; }
    return false;
  }
  // For a binary node with `x` as one input: the other input as a scalar constant.
  bool other_scalar(const Node& n, const std::string& x, float* v) {
    if (n.inputs.size() != 2) return false;
    const std::string& o = n.inputs[0] == x ? n.inputs[1] : n.inputs[0];
    if (n.inputs[0] != x && n.inputs[1] != x) return false;
    return scalar(o, v);
  }
  bool is_const(const std::string& name) const {
    auto it = vals_.find(name);
    return it != vals_.end() && it->second.k == Value::K::Const;
  }
  const Tensor& constant(int node, const std::string& name) {
    const Value& v = get(name);
    if (v.k != Value::K::Const) fail(node, "input '" + name + "' must be a float constant");
    return *v.c;
  }
  void define_act(const std::string& name, int buf, std::vector<int64_t> shape, Tag tag) {
    // At the probe width; the runner's sizes grow linearly with the width from these.
    for (int64_t d : shape)
      if (d < 1) throw model_error("model not recognised as PP-OCRv4: value '" + name + "' would have an empty " +
                                   "dimension (" + std::to_string(d) + ") at width " + std::to_string(kProbeWidth));
    checked_numel(shape, kMaxActivation, "model not recognised as PP-OCRv4: value '" + name + "' at width " +
                                             std::to_string(kProbeWidth));
    Value v;
    v.k = Value::K::Act;
    v.buf = buf;
    v.shape = std::move(shape);
    v.tag = tag;
    vals_[name] = v;
  }

  void lower(int i) {
    const Node& n = g_.nodes[i];
    if (n.op == "Conv") return lower_conv(i);
    if (is_int_op(n)) return lower_int(i);
    if (n.op == "GlobalAveragePool") return lower_gap(i);
    if (n.op == "Mul") return lower_mul_channel(i);
    if (n.op == "AveragePool") return lower_avgpool(i);
    if (n.op == "Concat") return lower_concat(i);
    if (n.op == "Reshape" || n.op == "Transpose" || n.op == "Squeeze") return lower_view(i);
    if (n.op == "ReduceMean") return lower_transformer(i);
    if (n.op == "MatMul") return lower_head(i);
    fail(i, "no pattern of the runner starts with this node");
  }

  bool is_int_op(const Node& n) {
    if (n.op == "Shape") return true;
    if (n.op != "Cast" && n.op != "Slice" && n.op != "Concat" && n.op != "Squeeze") return false;
    for (const auto& in : n.inputs) {
      auto it = vals_.find(in);
      if (it == vals_.end() || it->second.k != Value::K::Ints) return false;
    }
    return true;
  }

  void lower_int(int i) {
    const Node& n = g_.nodes[i];
    done_[i] = true;
    Value v;
    v.k = Value::K::Ints;
    if (n.op == "Shape") {
      const Value& x = get(n.inputs[0]);
      if (x.k != Value::K::Act) fail(i, "Shape of a non-activation");
      v.ints = x.shape;
    } else if (n.op == "Cast" || n.op == "Squeeze") {
      v.ints = get(n.inputs[0]).ints;
    } else if (n.op == "Slice") {
      const auto& src = get(n.inputs[0]).ints;
      auto axes = n.getints("axes"), starts = n.getints("starts"), ends = n.getints("ends");
      if (n.inputs.size() != 1 || starts.size() != 1 || ends.size() != 1 || (!axes.empty() && axes[0] != 0))
        fail(i, "only opset-9 1-D Slice of shape vectors is supported");
      int64_t sz = int64_t(src.size());
      int64_t b = starts[0] < 0 ? starts[0] + sz : starts[0], e = ends[0] < 0 ? ends[0] + sz : ends[0];
      b = std::clamp<int64_t>(b, 0, sz);
      e = std::clamp<int64_t>(e, 0, sz);
      for (int64_t k = b; k < e; ++k) v.ints.push_back(src[k]);
    } else {  // Concat
      for (const auto& in : n.inputs) {
        const auto& p = get(in).ints;
        if (v.ints.size() + p.size() > kMaxShapeLength) fail(i, "shape vector longer than " + std::to_string(kMaxShapeLength));
        v.ints.insert(v.ints.end(), p.begin(), p.end());
      }
    }
    vals_[n.outputs[0]] = v;
  }

  Layer make_layer(int i, const std::string& wname, LayerInfo::Kind kind, const std::string& role) {
    const Tensor& w = constant(i, wname);
    for (int64_t d : w.shape)
      if (d < 1) fail(i, "weight '" + wname + "' has an empty dimension");
    Layer l;
    l.info.name = wname;
    l.info.kind = kind;
    l.info.role = role;
    if (kind == LayerInfo::Kind::Linear) {  // ONNX MatMul weight [in, out] -> [out, in]
      if (w.shape.size() != 2) fail(i, "linear weight must be 2-D, '" + wname + "' has rank " + std::to_string(w.shape.size()));
      l.info.k = int(w.shape[0]);
      l.info.out = int(w.shape[1]);
      l.w = Eigen::Map<const RowMatrixXf>(w.f.data(), l.info.k, l.info.out).transpose();
    } else {
      if (w.shape.size() != 4) fail(i, "conv weight must be 4-D, '" + wname + "' has rank " + std::to_string(w.shape.size()));
      l.info.out = int(w.shape[0]);
      l.info.k = int(w.shape[1] * w.shape[2] * w.shape[3]);
      l.w = Eigen::Map<const RowMatrixXf>(w.f.data(), l.info.out, l.info.k);
    }
    l.bias.assign(l.info.out, 0.f);
    return l;
  }

  void lower_conv(int i) {
    const Node& n = g_.nodes[i];
    done_[i] = true;
    const Value& x = act(i, 0, Tag::NCHW, "conv input must be an NCHW activation");
    const Tensor& wt = constant(i, n.inputs[1]);
    if (wt.shape.size() != 4) fail(i, "conv weight must be 4-D, '" + n.inputs[1] + "' has rank " + std::to_string(wt.shape.size()));
    const int cin = int(x.shape[1]);
    const int group = in_range(i, n.geti("group", 1), 1, cin, "group");
    const bool depthwise = group > 1;
    if (depthwise && !(group == cin && wt.shape[0] == cin && wt.shape[1] == 1))
      fail(i, "grouped convs other than depthwise are not used by PP-OCRv4");
    if (!depthwise && (group != 1 || wt.shape[1] != cin)) fail(i, "conv channels do not match");
    auto dil = n.getints("dilations");
    for (auto d : dil) if (d != 1) fail(i, "dilated convs are not supported");
    Layer l = make_layer(i, n.inputs[1], depthwise ? LayerInfo::Kind::Depthwise : LayerInfo::Kind::Conv,
                         after_pool_ ? "neck" : "backbone");
    auto ks = n.getints("kernel_shape"), st = n.getints("strides"), pads = n.getints("pads");
    l.kh = in_range(i, wt.shape[2], 1, kMaxKernel, "kernel height");
    l.kw = in_range(i, wt.shape[3], 1, kMaxKernel, "kernel width");
    if (!ks.empty() && ks != std::vector<int64_t>{wt.shape[2], wt.shape[3]})
      fail(i, "kernel_shape differs from the weight's kernel");
    if (!st.empty() && st.size() != 2) fail(i, "strides must have 2 values");
    l.sh = st.empty() ? 1 : in_range(i, st[0], 1, kMaxKernel, "stride");
    l.sw = st.empty() ? 1 : in_range(i, st[1], 1, kMaxKernel, "stride");
    if (!pads.empty()) {
      if (pads.size() != 4 || pads[0] != pads[2] || pads[1] != pads[3]) fail(i, "asymmetric padding");
      // A pad of the kernel size or more would only add outputs that see no input.
      l.ph = in_range(i, pads[0], 0, l.kh - 1, "pad");
      l.pw = in_range(i, pads[1], 0, l.kw - 1, "pad");
    }
    l.group = group;
    if (n.inputs.size() > 2) l.bias = vector_of(i, n.inputs[2], l.info.out, "conv bias");
    std::string cur = n.outputs[0];
    // BatchNormalization folded into the weights.
    if (int j = single_user(cur, "BatchNormalization"); j >= 0) {
      const Node& bn = g_.nodes[j];
      const int C = l.info.out;
      const auto& gamma = vector_of(j, bn.inputs[1], C, "BatchNormalization scale");
      const auto& beta = vector_of(j, bn.inputs[2], C, "BatchNormalization bias");
      const auto& mean = vector_of(j, bn.inputs[3], C, "BatchNormalization mean");
      const auto& var = vector_of(j, bn.inputs[4], C, "BatchNormalization variance");
      const float eps = finite(j, bn.getf("epsilon", 1e-5f), "BatchNormalization epsilon");
      for (int o = 0; o < C; ++o) {
        if (!(var[o] + eps > 0)) fail(j, "BatchNormalization variance + epsilon is not positive");
        const float s = gamma[o] / std::sqrt(var[o] + eps);
        l.w.row(o) *= s;
        l.bias[o] = (l.bias[o] - mean[o]) * s + beta[o];
      }
      done_[j] = true;
      cur = bn.outputs[0];
    }
    // A scalar affine before the activation folded into the weights.
    float a = 1.f, b = 0.f;
    if (int j = single_user(cur, "Mul"); j >= 0 && other_scalar(g_.nodes[j], cur, &a)) {
      if (is_swish_start(cur)) a = 1.f;  // swish's Mul(x, 1) is not an affine
      else {
        l.w *= a;
        for (auto& v : l.bias) v *= a;
        done_[j] = true;
        cur = g_.nodes[j].outputs[0];
      }
    }
    if (int j = single_user(cur, "Add"); j >= 0 && other_scalar(g_.nodes[j], cur, &b) && !is_hardswish_add(j, cur)) {
      for (auto& v : l.bias) v += b;
      done_[j] = true;
      cur = g_.nodes[j].outputs[0];
    }
    Step s{Step::Kind::Conv};
    s.in = x.buf;
    s.name = n.name;
    // The activation.
    if (match_hardswish(cur)) s.act = Act::HardSwish;
    else if (match_swish(cur)) s.act = Act::Swish;
    else if (int j = single_user(cur, "Relu"); j >= 0) { s.act = Act::Relu; done_[j] = true; cur = g_.nodes[j].outputs[0]; }
    else if (int j2 = single_user(cur, "HardSigmoid"); j2 >= 0) {
      s.act = Act::HardSigmoid;
      s.act_alpha = finite(j2, g_.nodes[j2].getf("alpha", 0.2f), "HardSigmoid alpha");
      s.act_beta = finite(j2, g_.nodes[j2].getf("beta", 0.5f), "HardSigmoid beta");
      done_[j2] = true;
      cur = g_.nodes[j2].outputs[0];
    }
    // The learnable affine after the activation (PPLCNetV3's "learnable hardswish").
    if (s.act != Act::None) {
      float pa = 1.f, pb = 0.f;
      if (int j = single_user(cur, "Mul"); j >= 0 && other_scalar(g_.nodes[j], cur, &pa) && !is_swish_start(cur)) {
        s.post_affine = true;
        s.post_a = pa;
        done_[j] = true;
        cur = g_.nodes[j].outputs[0];
        if (int k = single_user(cur, "Add"); k >= 0 && other_scalar(g_.nodes[k], cur, &pb)) {
          s.post_b = pb;
          done_[k] = true;
          cur = g_.nodes[k].outputs[0];
        }
      }
    }
    // Output shape at the probe width.
    const int64_t H = x.shape[2], W = x.shape[3];
    if (H + 2 * l.ph < l.kh || W + 2 * l.pw < l.kw) fail(i, "kernel larger than its padded input");
    const int64_t Ho = (H + 2 * l.ph - l.kh) / l.sh + 1, Wo = (W + 2 * l.pw - l.kw) / l.sw + 1;
    s.layer = int(m_.layers.size());
    m_.layers.push_back(std::move(l));
    s.out = new_buf();
    m_.steps.push_back(s);
    define_act(cur, s.out, {1, m_.layers.back().info.out, Ho, Wo}, Tag::NCHW);
  }

  // Add(x, 3) -> Clip(0, 6) -> Mul(x, clip) -> Div(., 6); marks the nodes, advances cur.
  bool is_hardswish_add(int add, const std::string& x) {
    float v;
    if (!other_scalar(g_.nodes[add], x, &v) || v != 3.f) return false;
    return single_user(g_.nodes[add].outputs[0], "Clip") >= 0;
  }
  bool match_hardswish(std::string& cur) {
    const auto& u = users(cur);
    if (u.size() != 2) return false;
    int add = -1, mul = -1;
    for (int j : u) {
      if (g_.nodes[j].op == "Add") add = j;
      if (g_.nodes[j].op == "Mul") mul = j;
    }
    if (add < 0 || mul < 0 || !is_hardswish_add(add, cur)) return false;
    int clip = single_user(g_.nodes[add].outputs[0], "Clip");
    const Node& c = g_.nodes[clip];
    if (c.getf("min", -1.f) != 0.f || c.getf("max", -1.f) != 6.f) return false;
    if (single_user(c.outputs[0], "Mul") != mul) return false;
    int div = single_user(g_.nodes[mul].outputs[0], "Div");
    float six;
    if (div < 0 || !other_scalar(g_.nodes[div], g_.nodes[mul].outputs[0], &six) || six != 6.f) return false;
    for (int j : {add, clip, mul, div}) done_[j] = true;
    cur = g_.nodes[div].outputs[0];
    return true;
  }
  // Mul(x, 1) -> Sigmoid -> Mul(x, sigmoid).
  bool is_swish_start(const std::string& x) {
    const auto& u = users(x);
    if (u.size() != 2) return false;
    for (int j : u) {
      float one;
      if (g_.nodes[j].op == "Mul" && other_scalar(g_.nodes[j], x, &one) && one == 1.f &&
          single_user(g_.nodes[j].outputs[0], "Sigmoid") >= 0)
        return true;
    }
    return false;
  }
  bool match_swish(std::string& cur) {
    if (!is_swish_start(cur)) return false;
    const auto& u = users(cur);
    int m1 = -1, m2 = -1;
    for (int j : u) {
      float one;
      if (other_scalar(g_.nodes[j], cur, &one)) m1 = j;
      else m2 = j;
    }
    if (m1 < 0 || m2 < 0 || g_.nodes[m2].op != "Mul") return false;
    int sig = single_user(g_.nodes[m1].outputs[0], "Sigmoid");
    if (sig < 0 || single_user(g_.nodes[sig].outputs[0], "Mul") != m2) return false;
    for (int j : {m1, sig, m2}) done_[j] = true;
    cur = g_.nodes[m2].outputs[0];
    return true;
  }

  void lower_gap(int i) {
    const Node& n = g_.nodes[i];
    done_[i] = true;
    const Value& x = act(i, 0, Tag::NCHW, "input must be NCHW");
    Step s{Step::Kind::GlobalAvgPool};
    s.in = x.buf;
    s.out = new_buf();
    s.name = n.name;
    m_.steps.push_back(s);
    define_act(n.outputs[0], s.out, {1, x.shape[1], 1, 1}, Tag::NCHW);
  }

  void lower_mul_channel(int i) {
    const Node& n = g_.nodes[i];
    done_[i] = true;
    const Value& a = act(i, 0, Tag::NCHW, "only the SE channel scale of NCHW activations is expected here");
    const Value& b = act(i, 1, Tag::NCHW, "only the SE channel scale of NCHW activations is expected here");
    const Value& x = a.shape[2] * a.shape[3] >= b.shape[2] * b.shape[3] ? a : b;
    const Value& sc = &x == &a ? b : a;
    if (sc.shape[2] != 1 || sc.shape[3] != 1 || sc.shape[1] != x.shape[1]) fail(i, "SE scale must be [1,C,1,1]");
    Step s{Step::Kind::MulChannel};
    s.in = x.buf;
    s.in2 = sc.buf;
    s.out = new_buf();
    s.name = n.name;
    m_.steps.push_back(s);
    define_act(n.outputs[0], s.out, x.shape, Tag::NCHW);
  }

  void lower_avgpool(int i) {
    const Node& n = g_.nodes[i];
    done_[i] = true;
    const Value& x = act(i, 0, Tag::NCHW, "AveragePool input must be NCHW");
    auto ks = n.getints("kernel_shape"), st = n.getints("strides"), pads = n.getints("pads");
    for (auto p : pads) if (p != 0) fail(i, "padded AveragePool is not supported");
    if (ks.size() != 2) fail(i, "AveragePool needs a 2-D kernel_shape");
    if (!st.empty() && st.size() != 2) fail(i, "strides must have 2 values");
    after_pool_ = true;
    Step s{Step::Kind::AvgPool};
    s.kh = in_range(i, ks[0], 1, x.shape[2], "pool height");
    s.kw = in_range(i, ks[1], 1, x.shape[3], "pool width");
    s.sh = st.empty() ? 1 : in_range(i, st[0], 1, kMaxKernel, "stride");
    s.sw = st.empty() ? 1 : in_range(i, st[1], 1, kMaxKernel, "stride");
    s.in = x.buf;
    s.out = new_buf();
    s.name = n.name;
    m_.steps.push_back(s);
    define_act(n.outputs[0], s.out,
               {1, x.shape[1], (x.shape[2] - s.kh) / s.sh + 1, (x.shape[3] - s.kw) / s.sw + 1}, Tag::NCHW);
  }

  void lower_concat(int i) {
    const Node& n = g_.nodes[i];
    done_[i] = true;
    if (n.inputs.size() != 2 || n.geti("axis", 0) != 1) fail(i, "only a 2-way channel Concat is supported");
    const Value& a = get(n.inputs[0]);
    const Value& b = get(n.inputs[1]);
    if (a.k != Value::K::Act || b.k != Value::K::Act || a.tag != Tag::NCHW || b.tag != Tag::NCHW ||
        a.shape[2] != b.shape[2] || a.shape[3] != b.shape[3])
      fail(i, "channel Concat needs two NCHW activations of one size");
    Step s{Step::Kind::ConcatChannels};
    s.in = a.buf;
    s.in2 = b.buf;
    s.out = new_buf();
    s.name = n.name;
    m_.steps.push_back(s);
    define_act(n.outputs[0], s.out, {1, a.shape[1] + b.shape[1], a.shape[2], a.shape[3]}, Tag::NCHW);
  }

  // Reshape / Transpose / Squeeze that leave the channels-last data as it is.
  void lower_view(int i) {
    const Node& n = g_.nodes[i];
    done_[i] = true;
    const Value& x = get(n.inputs[0]);
    if (x.k != Value::K::Act) fail(i, "view of a non-activation");
    std::vector<int64_t> s = x.shape;
    Tag tag = x.tag;
    bool ok = false;
    if (n.op == "Reshape") {
      const Value& t = get(n.inputs.at(1));
      if (t.k != Value::K::Ints) fail(i, "Reshape target must be a shape vector");
      std::vector<int64_t> ns = t.ints;
      if (ns.empty() || ns.size() > kMaxShapeLength) fail(i, "Reshape target of " + std::to_string(ns.size()) + " dimensions");
      const int64_t total = checked_numel(s, kMaxActivation, "Reshape input");
      int inferred = -1;
      for (size_t k = 0; k < ns.size(); ++k) {
        if (ns[k] == 0) {
          if (k >= s.size()) fail(i, "Reshape copies a dimension its input does not have");
          ns[k] = s[k];
        }
        if (ns[k] == -1) {
          if (inferred >= 0) fail(i, "Reshape infers more than one dimension");
          inferred = int(k);
        } else if (ns[k] < 1) {
          fail(i, "Reshape to dimension " + std::to_string(ns[k]));
        }
      }
      if (inferred >= 0) {
        ns[size_t(inferred)] = 1;
        const int64_t known = checked_numel(ns, kMaxActivation, "Reshape target");
        if (total % known != 0) fail(i, "Reshape cannot infer a dimension");
        ns[size_t(inferred)] = total / known;
      }
      if (checked_numel(ns, kMaxActivation, "Reshape target") != total) fail(i, "Reshape changes the number of values");
      if (x.tag == Tag::NCHW && s[2] == 1 && ns.size() == 3 && ns[1] == s[1] && ns[2] == s[3]) { tag = Tag::CL; ok = true; }
      if (x.tag == Tag::LC && ns.size() == 4 && ns[1] == 1 && ns[2] == s[1] && ns[3] == s[2]) { tag = Tag::NHWC4; ok = true; }
      s = ns;
    } else if (n.op == "Transpose") {
      auto perm = n.getints("perm");
      if (x.tag == Tag::CL && perm == std::vector<int64_t>{0, 2, 1}) { tag = Tag::LC; s = {s[0], s[2], s[1]}; ok = true; }
      if (x.tag == Tag::NHWC4 && perm == std::vector<int64_t>{0, 3, 1, 2}) { tag = Tag::NCHW; s = {s[0], s[3], s[1], s[2]}; ok = true; }
    } else if (n.op == "Squeeze") {
      auto axes = n.getints("axes");
      if (x.tag == Tag::NCHW && axes == std::vector<int64_t>{2} && s[2] == 1) { tag = Tag::CL; s = {s[0], s[1], s[3]}; ok = true; }
    }
    if (!ok) fail(i, "this reshape/transpose is not a view of the channels-last layout");
    define_act(n.outputs[0], x.buf, s, tag);
  }

  // ---- the transformer blocks ------------------------------------------------------
  struct LnMatch {
    LayerNormWeights w;
    std::string out;
    int last = -1;  // index of its last node
  };
  // ReduceMean(x) -> Sub(x, m) -> Pow(., 2) -> ReduceMean -> Add eps -> Sqrt -> Div(sub, sqrt)
  // -> Mul gamma -> Add beta.
  LnMatch match_ln(const std::string& x) {
    LnMatch r;
    int rm = -1, sub = -1;
    for (int j : users(x)) {
      if (g_.nodes[j].op == "ReduceMean") rm = j;
      if (g_.nodes[j].op == "Sub") sub = j;
    }
    auto bad = [&](const char* what) -> LnMatch { fail(rm < 0 ? -1 : rm, std::string("LayerNorm pattern: ") + what); };
    if (rm < 0 || sub < 0) return bad("no ReduceMean/Sub");
    auto axes = g_.nodes[rm].getints("axes");
    if (axes != std::vector<int64_t>{-1} && axes != std::vector<int64_t>{2}) return bad("mean must be over the last axis");
    const std::string& so = g_.nodes[sub].outputs[0];
    int pw = -1, dv = -1;
    for (int j : users(so)) {
      if (g_.nodes[j].op == "Pow") pw = j;
      if (g_.nodes[j].op == "Div") dv = j;
    }
    float two;
    if (pw < 0 || dv < 0 || !other_scalar(g_.nodes[pw], so, &two) || two != 2.f) return bad("no Pow 2 / Div");
    int rm2 = single_user(g_.nodes[pw].outputs[0], "ReduceMean");
    int ad = rm2 < 0 ? -1 : single_user(g_.nodes[rm2].outputs[0], "Add");
    if (ad < 0 || !other_scalar(g_.nodes[ad], g_.nodes[rm2].outputs[0], &r.w.eps)) return bad("no variance + eps");
    int sq = single_user(g_.nodes[ad].outputs[0], "Sqrt");
    if (sq < 0 || single_user(g_.nodes[sq].outputs[0], "Div") != dv) return bad("no Sqrt feeding the Div");
    int mg = single_user(g_.nodes[dv].outputs[0], "Mul");
    int ab = mg < 0 ? -1 : single_user(g_.nodes[mg].outputs[0], "Add");
    if (ab < 0) return bad("no gamma / beta");
    const Node& M = g_.nodes[mg];
    const Node& A = g_.nodes[ab];
    if (!(r.w.eps > 0)) fail(ad, "LayerNorm epsilon must be positive");
    r.w.gamma = vector_of(mg, M.inputs[0] == g_.nodes[dv].outputs[0] ? M.inputs[1] : M.inputs[0], m_.dim, "LayerNorm scale");
    r.w.beta = vector_of(ab, A.inputs[0] == M.outputs[0] ? A.inputs[1] : A.inputs[0], m_.dim, "LayerNorm bias");
    for (int j : {rm, sub, pw, rm2, ad, sq, dv, mg, ab}) { region_.insert(j); r.last = std::max(r.last, j); }
    r.out = A.outputs[0];
    return r;
  }
  // MatMul(x, W const) -> Add(bias const): a linear layer; returns its output name.
  // The layer must map `in` features to `out` (out < 0: any).
  std::string match_linear(const std::string& x, int block, const char* role, int* index, int min_node, int in,
                           int out) {
    int mm = -1;
    for (int j : users(x))
      if (g_.nodes[j].op == "MatMul" && is_const(g_.nodes[j].inputs[1]) && j >= min_node) mm = j;
    if (mm < 0) fail(-1, std::string("no ") + role + " linear in block " + std::to_string(block));
    const Node& M = g_.nodes[mm];
    Layer l = make_layer(mm, M.inputs[1], LayerInfo::Kind::Linear, role);
    l.info.block = block;
    if (l.info.k != in || (out >= 0 && l.info.out != out))
      fail(mm, std::string(role) + " weight is [" + std::to_string(l.info.k) + ", " + std::to_string(l.info.out) +
                   "], expected " + std::to_string(in) + " inputs" + (out >= 0 ? " and " + std::to_string(out) + " outputs" : ""));
    int ad = single_user(M.outputs[0], "Add");
    if (ad < 0) fail(mm, "linear without bias");
    const Node& A = g_.nodes[ad];
    l.bias = constant(ad, A.inputs[0] == M.outputs[0] ? A.inputs[1] : A.inputs[0]).f;
    for (float v : l.bias) finite(ad, v, "bias");
    if (int(l.bias.size()) != l.info.out) fail(ad, "bias size");
    region_.insert(mm);
    region_.insert(ad);
    *index = int(m_.layers.size());
    m_.layers.push_back(std::move(l));
    return A.outputs[0];
  }
  // Add(a, b) of two given names.
  int find_add(const std::string& a, const std::string& b) {
    for (int j : users(a)) {
      const Node& n = g_.nodes[j];
      if (n.op == "Add" && n.inputs.size() == 2 &&
          ((n.inputs[0] == a && n.inputs[1] == b) || (n.inputs[0] == b && n.inputs[1] == a)))
        return j;
    }
    return -1;
  }

  void lower_transformer(int i) {
    const Node& n = g_.nodes[i];
    const std::string x0 = n.inputs[0];
    const Value& xv = act(i, 0, Tag::LC, "a ReduceMean outside a LayerNorm on tokens");
    if (m_.transformer_step >= 0) fail(i, "a second transformer");
    m_.dim = int(xv.shape[2]);
    std::string x = x0;
    LnMatch ln = match_ln(x);
    std::vector<std::string> ln_outs;
    while (true) {
      // Is this LayerNorm the start of a block (its output feeds a [dim, 3*dim] MatMul)?
      bool block = false;
      for (int j : users(ln.out))
        if (g_.nodes[j].op == "MatMul" && cols_of(g_.nodes[j].inputs[1]) == 3 * int64_t(m_.dim))
          block = true;
      ln_outs.push_back(ln.out);
      if (!block) break;
      const int b = int(m_.blocks.size());
      BlockWeights bw;
      bw.ln1 = ln.w;
      std::string qkv = match_linear(ln.out, b, "qkv", &bw.qkv, 0, m_.dim, 3 * m_.dim);
      const int qkv_node = *std::max_element(region_.begin(), region_.end());
      // The attention between qkv and proj: find proj as the next [dim, dim] MatMul.
      int proj_mm = -1;
      for (size_t j = qkv_node + 1; j < g_.nodes.size() && proj_mm < 0; ++j) {
        const Node& q = g_.nodes[j];
        if (q.op == "MatMul" && is_const(q.inputs[1])) proj_mm = int(j);
      }
      if (proj_mm < 0) fail(-1, "no attention output projection");
      bool softmax = false, scale = false;
      for (int j = qkv_node + 1; j < proj_mm; ++j) {
        const Node& q = g_.nodes[j];
        if (q.op == "Softmax") softmax = true;
        float sv;
        if (q.op == "Mul" && q.inputs.size() == 2 && (scalar(q.inputs[0], &sv) || scalar(q.inputs[1], &sv))) {
          if (!(sv > 0)) fail(int(j), "attention scale must be positive");
          m_.attn_scale = sv;
          scale = true;
        }
        region_.insert(j);
      }
      if (!softmax || !scale) fail(-1, "attention of block " + std::to_string(b) + " not recognised");
      std::string proj = match_linear(g_.nodes[proj_mm].inputs[0], b, "proj", &bw.proj, proj_mm, m_.dim, m_.dim);
      int r1 = find_add(x, proj);
      if (r1 < 0) fail(proj_mm, "no attention residual");
      region_.insert(r1);
      std::string x1 = g_.nodes[r1].outputs[0];
      LnMatch ln2 = match_ln(x1);
      bw.ln2 = ln2.w;
      ln_outs.push_back(ln2.out);
      std::string h = match_linear(ln2.out, b, "fc1", &bw.fc1, 0, m_.dim, -1);
      const int before = int(region_.size());
      std::string hs = h;
      if (!match_swish(hs)) fail(-1, "MLP activation of block " + std::to_string(b) + " is not swish");
      (void)before;
      std::string f = match_linear(hs, b, "fc2", &bw.fc2, 0, m_.layers[size_t(bw.fc1)].info.out, m_.dim);
      int r2 = find_add(x1, f);
      if (r2 < 0) fail(-1, "no MLP residual");
      region_.insert(r2);
      x = g_.nodes[r2].outputs[0];
      m_.blocks.push_back(bw);
      ln = match_ln(x);
    }
    if (m_.blocks.empty()) fail(i, "LayerNorm not followed by a transformer block");
    m_.final_ln = ln.w;
    int last = 0;
    for (int j : region_) last = std::max(last, j);
    // Lower the region: shape arithmetic is evaluated, the float nodes are replaced.
    for (int j = i; j <= last; ++j) {
      if (done_[j]) continue;
      const Node& q = g_.nodes[j];
      if (q.op == "Shape" && std::find(ln_outs.begin(), ln_outs.end(), q.inputs[0]) != ln_outs.end()) {
        Value v;
        v.k = Value::K::Ints;
        v.ints = xv.shape;
        vals_[q.outputs[0]] = v;
        done_[j] = true;
      } else if (is_int_op(q)) {
        lower_int(j);
      } else {
        if (q.op == "Reshape") {  // the qkv split [N, T, 3, heads, head_dim]
          const auto& t = get(q.inputs.at(1));
          if (t.k == Value::K::Ints && t.ints.size() == 5) {
            if (t.ints[3] < 1 || t.ints[4] < 1 || t.ints[3] > m_.dim || t.ints[4] > m_.dim ||
                t.ints[3] * t.ints[4] != m_.dim)
              fail(j, "attention split into " + std::to_string(t.ints[3]) + " heads of " + std::to_string(t.ints[4]) +
                          " features for a width of " + std::to_string(m_.dim));
            m_.heads = int(t.ints[3]);
            m_.head_dim = int(t.ints[4]);
          }
        }
        done_[j] = true;
        for (const auto& o : q.outputs)
          if (o != ln.out)
            for (int u : users(o))
              if (u > last) fail(j, "a transformer-internal value is used after the blocks");
      }
    }
    Step s{Step::Kind::Transformer};
    s.in = xv.buf;
    s.out = new_buf();
    s.name = "transformer";
    m_.transformer_step = int(m_.steps.size());
    m_.steps.push_back(s);
    define_act(ln.out, s.out, xv.shape, Tag::LC);
  }

  void lower_head(int i) {
    const Node& n = g_.nodes[i];
    const Value& x = act(i, 0, Tag::LC, "head input must be tokens");
    if (m_.transformer_step < 0) fail(i, "the head comes before the transformer");
    if (!is_const(n.inputs[1])) fail(i, "head weight must be a float constant");
    int idx = -1;
    std::string o = match_linear(n.inputs[0], -1, "head", &idx, i, m_.dim, -1);
    done_[i] = true;
    int ad = single_user(n.outputs[0], "Add");
    if (ad < 0) fail(i, "head without bias");
    done_[ad] = true;
    int sm = single_user(o, "Softmax");
    if (sm < 0) fail(i, "head without softmax");
    done_[sm] = true;
    m_.classes = m_.layers[idx].info.out;
    Step s{Step::Kind::Head};
    s.in = x.buf;
    s.layer = idx;
    s.out = new_buf();
    s.name = n.name;
    m_.steps.push_back(s);
    define_act(g_.nodes[sm].outputs[0], s.out, {1, x.shape[1], m_.classes}, Tag::LC);
  }

  const Graph& g_;
  Model m_;
  std::map<std::string, Value> vals_;
  std::map<std::string, std::vector<int>> consumers_;
  std::vector<bool> done_;
  std::set<int> region_;
  int nbuf_ = 0;
  bool after_pool_ = false;  // the neck starts after the backbone's AveragePool
};

}  // namespace

void Layer::prepare() {
  if (info.kind != LayerInfo::Kind::Depthwise) {
    w_packed = pack_depth_blocks(w.data(), info.out, info.k, info.k);
    return;
  }
  const int taps = kh * kw, C = info.out;
  w_taps.assign(size_t(taps) * C, 0.f);
  for (int c = 0; c < C; ++c)
    for (int t = 0; t < taps; ++t) w_taps[size_t(t) * C + c] = w(c, t);
}

Model Model::compile(const Graph& g) { return Compiler(g).run(); }

Model Model::load(const std::string& path) {
  const Graph g = load_onnx(path);
  try {
    return compile(g);
  } catch (const model_error& e) {
    throw model_error("model file '" + path + "': " + e.what());
  }
}

void Layer::rewrite(const WeightsFn& fn) {
  if (fn) fn(info, etk::matrix_view(w.data(), w.rows(), w.cols(), w.cols()), bias.data());
  prepare();
}

Model Model::with_weights(const WeightsFn& fn) const {
  Model m = *this;
  if (!fn) return m;
  for (auto& l : m.layers) l.rewrite(fn);
  return m;
}

}  // namespace ocr
