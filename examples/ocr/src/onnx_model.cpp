// onnx_model.cpp: ONNX file -> ocr::Graph, with validation (see onnx_model.hpp).
#include "onnx_model.hpp"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
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

int64_t checked_numel(const std::vector<int64_t>& dims, int64_t limit, const std::string& where) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) throw model_error(where + ": negative dimension " + std::to_string(d));
    if (d > limit || (d > 0 && n > limit / d))
      throw model_error(where + ": more than " + std::to_string(limit) + " values (dimension " + std::to_string(d) +
                        ")");
    n *= d;
  }
  return n;
}

namespace {

// The inputs each operator takes (ONNX opsets 9 to 13); PP-OCRv4 uses each within these.
struct Arity {
  int min_inputs, max_inputs;
};
Arity arity(const std::string& op) {
  static const std::map<std::string, Arity> a = {
      {"Constant", {0, 0}},   {"Mul", {2, 2}},        {"Add", {2, 2}},      {"Div", {2, 2}},
      {"Sub", {2, 2}},        {"Pow", {2, 2}},        {"MatMul", {2, 2}},   {"Conv", {2, 3}},
      {"Clip", {1, 3}},       {"Cast", {1, 1}},       {"Slice", {1, 5}},    {"ReduceMean", {1, 2}},
      {"Transpose", {1, 1}},  {"Sigmoid", {1, 1}},    {"Concat", {1, 1 << 16}}, {"Squeeze", {1, 2}},
      {"BatchNormalization", {5, 5}},                 {"Reshape", {2, 2}},  {"Sqrt", {1, 1}},
      {"Shape", {1, 1}},      {"Softmax", {1, 1}},    {"GlobalAveragePool", {1, 1}},
      {"Relu", {1, 1}},       {"HardSigmoid", {1, 1}}, {"AveragePool", {1, 1}}};
  return a.at(op);
}

Tensor convert_tensor(const onnx::TensorProto& tp, const std::string& where) {
  Tensor t;
  t.shape.assign(tp.dims().begin(), tp.dims().end());
  const int64_t n = checked_numel(t.shape, kMaxValues, where + ": constant tensor");
  const std::string& raw = tp.raw_data();
  // Sizes are compared with what the file holds before anything is allocated, so a
  // small file cannot make the loader allocate more than its own size.
  auto check_count = [&](int64_t have, int64_t elem_bytes, const char* kind) {
    if (!raw.empty() && int64_t(raw.size()) != n * elem_bytes)
      throw model_error(where + ": " + kind + " constant holds " + std::to_string(raw.size()) +
                        " bytes, its shape needs " + std::to_string(n * elem_bytes));
    if (raw.empty() && have != n)
      throw model_error(where + ": " + kind + " constant has " + std::to_string(have) +
                        " values, its shape needs " + std::to_string(n));
  };
  switch (tp.data_type()) {
    case onnx::TensorProto::FLOAT:
      check_count(tp.float_data_size(), 4, "float");
      t.f.resize(size_t(n));
      if (!raw.empty()) std::memcpy(t.f.data(), raw.data(), raw.size());
      else std::copy(tp.float_data().begin(), tp.float_data().end(), t.f.begin());
      break;
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::INT32: {
      const bool i64 = tp.data_type() == onnx::TensorProto::INT64;
      check_count(i64 ? tp.int64_data_size() : tp.int32_data_size(), i64 ? 8 : 4, i64 ? "int64" : "int32");
      t.is_int = true;
      t.i.resize(size_t(n));
      if (!raw.empty()) {
        for (int64_t k = 0; k < n; ++k) {
          if (i64) {
            std::memcpy(&t.i[size_t(k)], raw.data() + 8 * k, 8);
          } else {
            int32_t v;
            std::memcpy(&v, raw.data() + 4 * k, 4);
            t.i[size_t(k)] = v;
          }
        }
      } else if (i64) {
        std::copy(tp.int64_data().begin(), tp.int64_data().end(), t.i.begin());
      } else {
        std::copy(tp.int32_data().begin(), tp.int32_data().end(), t.i.begin());
      }
      break;
    }
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
  // Each value is defined once (ONNX graphs are in SSA form): with the topological check
  // this makes the graph acyclic, which the compiler's pattern walks rely on.
  auto define = [&](const std::string& name, const std::string& where) {
    if (name.empty()) throw model_error("model " + what + ": " + where + " defines a value with an empty name");
    if (!known.insert(name).second)
      throw model_error("model " + what + ": " + where + " defines '" + name + "' a second time (corrupted graph?)");
  };
  for (const auto& init : g.initializer()) {
    define(init.name(), "initializer");
    out.constants[init.name()] = convert_tensor(init, "model " + what + ": initializer " + init.name());
  }
  if (g.input_size() < 1) throw model_error("model " + what + " declares no input");
  for (const auto& in : g.input())
    if (!out.constants.count(in.name())) {
      if (out.input.empty()) out.input = in.name();
      define(in.name(), "graph input");
    }
  if (g.output_size() != 1) throw model_error("model " + what + " must have exactly one output");
  out.output = g.output(0).name();
  for (int k = 0; k < g.node_size(); ++k) {
    const auto& np = g.node(k);
    const std::string where = "node " + std::to_string(k) + " '" + np.name() + "' (" + np.op_type() + ")";
    if (std::find(ops.begin(), ops.end(), np.op_type()) == ops.end())
      throw model_error("model " + what + ": unknown operator '" + np.op_type() + "' at " + where);
    const Arity ar = arity(np.op_type());
    if (np.input_size() < ar.min_inputs || np.input_size() > ar.max_inputs)
      throw model_error("model " + what + ": " + where + " has " + std::to_string(np.input_size()) +
                        " inputs, the operator takes " + std::to_string(ar.min_inputs) +
                        (ar.max_inputs == ar.min_inputs ? "" : " to " + std::to_string(ar.max_inputs)));
    for (int j = 0; j < ar.min_inputs; ++j)
      if (np.input(j).empty())
        throw model_error("model " + what + ": " + where + " lacks its required input " + std::to_string(j + 1));
    if (np.output_size() < 1) throw model_error("model " + what + ": " + where + " has no output");
    for (const auto& in : np.input())
      if (!in.empty() && !known.count(in))
        throw model_error("model " + what + ": " + where + " reads '" + in +
                          "' which no earlier node produces (corrupted graph?)");
    if (np.op_type() == "Constant") {
      if (np.output_size() != 1 || np.attribute_size() < 1 || !np.attribute(0).has_t())
        throw model_error("model " + what + ": " + where + " has no tensor value");
      define(np.output(0), where);
      Tensor t = convert_tensor(np.attribute(0).t(), "model " + what + ": " + where);
      if (!t.is_int) out.num_constant_values += t.numel();
      out.constants[np.output(0)] = std::move(t);
      ++out.num_constant_nodes;
      continue;
    }
    Node n;
    n.name = np.name();
    n.op = np.op_type();
    for (const auto& in : np.input()) n.inputs.push_back(in);
    for (int j = 0; j < np.output_size(); ++j) {
      // Optional outputs may be unnamed; the first is what the compiler follows.
      if (j == 0 || !np.output(j).empty()) define(np.output(j), where);
      n.outputs.push_back(np.output(j));
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
        at.t = convert_tensor(a.t(), "model " + what + ": " + where + " attribute " + a.name());
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
