// onnx_model.cpp: ONNX file -> ocr::Graph, with validation (see onnx_model.hpp).
#include "onnx_model.hpp"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace ocr {

int64_t Node::geti(const std::string& a, int64_t def) const {
  auto it = attrs.find(a);
  return it == attrs.end() ? def : it->second.i;
}
float Node::getf(const std::string& a, float def) const {
  auto it = attrs.find(a);
  return it == attrs.end() ? def : it->second.f;
}
std::vector<int64_t> Node::getints(const std::string& a) const {
  auto it = attrs.find(a);
  return it == attrs.end() ? std::vector<int64_t>{} : it->second.ints;
}

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = {
      "Constant", "Mul",     "Add",       "Conv",       "Div",       "Clip",
      "Cast",     "MatMul",  "Slice",     "ReduceMean", "Transpose", "Sigmoid",
      "Concat",   "Squeeze", "BatchNormalization",      "Reshape",   "Sub",
      "Pow",      "Sqrt",    "Shape",     "Softmax",    "GlobalAveragePool",
      "Relu",     "HardSigmoid",          "AveragePool"};
  return ops;
}

namespace {

Tensor convert_tensor(const onnx::TensorProto& tp, const std::string& where) {
  Tensor t;
  for (auto d : tp.dims()) {
    if (d < 0) throw model_error(where + ": negative dimension in constant tensor");
    t.shape.push_back(d);
  }
  const int64_t n = t.numel();
  if (n > (int64_t(1) << 31)) throw model_error(where + ": constant tensor too large");
  const std::string& raw = tp.raw_data();
  switch (tp.data_type()) {
    case onnx::TensorProto::FLOAT:
      t.f.resize(n);
      if (!raw.empty()) {
        if (int64_t(raw.size()) != n * 4)
          throw model_error(where + ": float constant holds " + std::to_string(raw.size()) +
                            " bytes, its shape needs " + std::to_string(n * 4));
        std::memcpy(t.f.data(), raw.data(), raw.size());
      } else {
        if (tp.float_data_size() != n)
          throw model_error(where + ": float constant has " + std::to_string(tp.float_data_size()) +
                            " values, its shape needs " + std::to_string(n));
        std::copy(tp.float_data().begin(), tp.float_data().end(), t.f.begin());
      }
      break;
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::INT32:
      t.is_int = true;
      t.i.resize(n);
      if (!raw.empty()) {
        const size_t es = tp.data_type() == onnx::TensorProto::INT64 ? 8 : 4;
        if (int64_t(raw.size()) != n * int64_t(es))
          throw model_error(where + ": integer constant holds " + std::to_string(raw.size()) +
                            " bytes, its shape needs " + std::to_string(n * es));
        for (int64_t k = 0; k < n; ++k) {
          if (es == 8) {
            std::memcpy(&t.i[k], raw.data() + 8 * k, 8);
          } else {
            int32_t v;
            std::memcpy(&v, raw.data() + 4 * k, 4);
            t.i[k] = v;
          }
        }
      } else if (tp.data_type() == onnx::TensorProto::INT64) {
        if (tp.int64_data_size() != n) throw model_error(where + ": int64 constant size mismatch");
        std::copy(tp.int64_data().begin(), tp.int64_data().end(), t.i.begin());
      } else {
        if (tp.int32_data_size() != n) throw model_error(where + ": int32 constant size mismatch");
        std::copy(tp.int32_data().begin(), tp.int32_data().end(), t.i.begin());
      }
      break;
    default:
      throw model_error(where + ": unsupported constant data type " + std::to_string(tp.data_type()));
  }
  return t;
}

}  // namespace

Graph parse_onnx(const std::string& bytes, const std::string& what) {
  onnx::ModelProto model;
  if (bytes.empty()) throw model_error("model file " + what + " is empty");
  if (!model.ParseFromString(bytes))
    throw model_error("model file " + what +
                      " is not a valid ONNX protobuf (truncated or corrupted?)");
  if (!model.has_graph() || model.graph().node_size() == 0)
    throw model_error("model file " + what + " holds no graph nodes (truncated or corrupted?)");
  const auto& g = model.graph();
  Graph out;
  const auto& ops = supported_ops();
  std::set<std::string> known;  // every value name defined so far (for topological check)
  for (const auto& init : g.initializer()) {
    out.constants[init.name()] = convert_tensor(init, "initializer " + init.name());
    known.insert(init.name());
  }
  if (g.input_size() < 1) throw model_error("model " + what + " declares no input");
  for (const auto& in : g.input())
    if (!out.constants.count(in.name())) {
      if (out.input.empty()) out.input = in.name();
      known.insert(in.name());
    }
  if (g.output_size() != 1) throw model_error("model " + what + " must have exactly one output");
  out.output = g.output(0).name();
  for (int k = 0; k < g.node_size(); ++k) {
    const auto& np = g.node(k);
    const std::string where = "node " + std::to_string(k) + " '" + np.name() + "' (" + np.op_type() + ")";
    if (std::find(ops.begin(), ops.end(), np.op_type()) == ops.end())
      throw model_error("model " + what + ": unknown operator '" + np.op_type() + "' at " + where);
    for (const auto& in : np.input())
      if (!in.empty() && !known.count(in))
        throw model_error("model " + what + ": " + where + " reads '" + in +
                          "' which no earlier node produces (corrupted graph?)");
    if (np.op_type() == "Constant") {
      if (np.output_size() != 1 || np.attribute_size() < 1 || !np.attribute(0).has_t())
        throw model_error("model " + what + ": " + where + " has no tensor value");
      Tensor t = convert_tensor(np.attribute(0).t(), where);
      if (!t.is_int) out.num_constant_values += t.numel();
      out.constants[np.output(0)] = std::move(t);
      ++out.num_constant_nodes;
      known.insert(np.output(0));
      continue;
    }
    Node n;
    n.name = np.name();
    n.op = np.op_type();
    for (const auto& in : np.input()) n.inputs.push_back(in);
    for (const auto& o : np.output()) {
      n.outputs.push_back(o);
      known.insert(o);
    }
    for (const auto& a : np.attribute()) {
      Attribute at;
      at.i = a.i();
      at.f = a.f();
      at.s = a.s();
      for (auto v : a.ints()) at.ints.push_back(v);
      for (auto v : a.floats()) at.floats.push_back(v);
      if (a.has_t()) {
        at.has_tensor = true;
        at.t = convert_tensor(a.t(), where + " attribute " + a.name());
      }
      n.attrs[a.name()] = std::move(at);
    }
    out.nodes.push_back(std::move(n));
  }
  if (!known.count(out.output))
    throw model_error("model " + what + ": output '" + out.output + "' is never produced");
  if (out.input.empty()) throw model_error("model " + what + ": no non-constant input");
  return out;
}

Graph load_onnx(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw model_error("cannot open model file '" + path + "' (missing? set ETK_MODEL_DIR)");
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_onnx(ss.str(), "'" + path + "'");
}

}  // namespace ocr
