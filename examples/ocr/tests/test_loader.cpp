// The ONNX loader rejects a missing, empty, truncated or corrupted file and an unknown
// operator with an error naming the problem (never a crash).
#include <onnx/onnx_pb.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "ocr_test_util.hpp"

using namespace ocr;

namespace {
std::string model_bytes() {
  std::ifstream f(ocr_test::model_dir() + "/ch_PP-OCRv4_rec_infer.onnx", std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

TEST_CASE("loader: missing and empty files", "[ocr][loader]") {
  CHECK_THROWS_AS(load_onnx("/nonexistent/model.onnx"), model_error);
  CHECK_THROWS_WITH(load_onnx("/nonexistent/model.onnx"), Catch::Contains("cannot open model file"));
  CHECK_THROWS_WITH(parse_onnx("", "empty"), Catch::Contains("is empty"));
}

TEST_CASE("loader: truncated and corrupted files", "[ocr][loader]") {
  const std::string bytes = model_bytes();
  REQUIRE(bytes.size() > 10000000);
  for (size_t cut : {size_t(7), size_t(100), bytes.size() / 2, bytes.size() - 3}) {
    INFO("truncated to " << cut << " bytes");
    CHECK_THROWS_AS(Model::compile(parse_onnx(bytes.substr(0, cut), "truncated")), model_error);
  }
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = char((i * 2654435761u) >> 13);
  CHECK_THROWS_WITH(parse_onnx(garbage, "garbage"), Catch::Contains("garbage"));
  // Flipped bytes in the graph section: the parse or the validation fails cleanly.
  std::string flipped = bytes;
  for (size_t i = 200; i < 4200; ++i) flipped[i] = char(~flipped[i]);
  CHECK_THROWS_AS(Model::compile(parse_onnx(flipped, "flipped")), model_error);
}

TEST_CASE("loader: unknown operator is named", "[ocr][loader]") {
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(model_bytes()));
  m.mutable_graph()->mutable_node(5)->set_op_type("FancyGelu");
  std::string edited;
  REQUIRE(m.SerializeToString(&edited));
  CHECK_THROWS_WITH(parse_onnx(edited, "edited"), Catch::Contains("unknown operator 'FancyGelu'"));
}

TEST_CASE("loader: a valid graph of other operators is not taken for PP-OCRv4", "[ocr][loader]") {
  onnx::ModelProto m;
  REQUIRE(m.ParseFromString(model_bytes()));
  // Drop the CTC head's softmax: the graph still parses but is not the recogniser.
  auto* g = m.mutable_graph();
  g->mutable_node()->RemoveLast();
  g->mutable_output(0)->set_name(g->node(g->node_size() - 1).output(0));
  std::string edited;
  REQUIRE(m.SerializeToString(&edited));
  CHECK_THROWS_WITH(Model::compile(parse_onnx(edited, "edited")), Catch::Contains("not recognised"));
}

TEST_CASE("loader: the real model", "[ocr][loader]") {
  const Graph g = load_onnx(ocr_test::model_dir() + "/ch_PP-OCRv4_rec_infer.onnx");
  CHECK(g.nodes.size() + g.num_constant_nodes == 765);
  CHECK(g.num_constant_values == 2690296);
  const Model& m = ocr_test::model();
  CHECK(m.blocks.size() == 2);
  CHECK(m.heads == 8);
  CHECK(m.head_dim == 15);
  CHECK(m.dim == 120);
  CHECK(m.classes == 6625);
  CHECK(m.attn_scale == Approx(1 / std::sqrt(15.0)));
}

// ---- malformed variants of the real file ---------------------------------------------
// Each is the real PP-OCRv4 graph with one edit (made with the protobuf classes), loaded
// through Model::load from a temporary file: the error names the file and the problem.
namespace {

const onnx::ModelProto& real_proto() {
  static const onnx::ModelProto m = [] {
    onnx::ModelProto p;
    REQUIRE(p.ParseFromString(model_bytes()));
    return p;
  }();
  return m;
}

// The index of the nth node of type `op`.
int nth_node(const onnx::GraphProto& g, const std::string& op, int nth = 0) {
  for (int k = 0; k < g.node_size(); ++k)
    if (g.node(k).op_type() == op && nth-- == 0) return k;
  FAIL("no " << op << " node");
  return -1;
}

// The tensor of the Constant node that defines `name`.
onnx::TensorProto* constant_tensor(onnx::GraphProto* g, const std::string& name) {
  for (auto& n : *g->mutable_node())
    if (n.op_type() == "Constant" && n.output(0) == name) return n.mutable_attribute(0)->mutable_t();
  FAIL("no Constant defines " << name);
  return nullptr;
}

onnx::AttributeProto* attribute(onnx::NodeProto* n, const std::string& name) {
  for (auto& a : *n->mutable_attribute())
    if (a.name() == name) return &a;
  auto* a = n->add_attribute();
  a->set_name(name);
  return a;
}

void set_ints(onnx::NodeProto* n, const std::string& name, std::vector<int64_t> v) {
  auto* a = attribute(n, name);
  a->set_type(onnx::AttributeProto::INTS);
  a->clear_ints();
  for (int64_t x : v) a->add_ints(x);
}

void set_floats(onnx::TensorProto* t, std::vector<int64_t> dims, std::vector<float> v) {
  t->clear_dims();
  for (int64_t d : dims) t->add_dims(d);
  t->set_data_type(onnx::TensorProto::FLOAT);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
}

// Model::load of `m` written to a temporary file: the model_error it throws (checked to
// name the file), or a test failure if it loads.
std::string load_error(const onnx::ModelProto& m) {
  const std::string path = "/tmp/etk_ocr_malformed_" + std::to_string(getpid()) + ".onnx";
  {
    std::ofstream f(path, std::ios::binary);
    REQUIRE(m.SerializeToOstream(&f));
  }
  std::string what;
  try {
    Model::load(path);
  } catch (const model_error& e) {
    what = e.what();
  }
  std::remove(path.c_str());
  INFO(what);
  CHECK(what.find(path) != std::string::npos);
  return what;
}

// A one-node model whose single Constant declares `dims` floats with `values` stored.
onnx::ModelProto tiny_constant(std::vector<int64_t> dims, int values) {
  onnx::ModelProto m;
  auto* g = m.mutable_graph();
  g->add_input()->set_name("x");
  g->add_output()->set_name("c");
  auto* n = g->add_node();
  n->set_op_type("Constant");
  n->add_output("c");
  auto* a = n->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  auto* t = a->mutable_t();
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t->add_dims(d);
  for (int k = 0; k < values; ++k) t->add_float_data(1.f);
  return m;
}

}  // namespace

TEST_CASE("loader: declared sizes are checked before anything is allocated", "[ocr][loader][malformed]") {
  // 2^31 floats declared in a file of a few dozen bytes (8 GiB if allocated first).
  const onnx::ModelProto huge = tiny_constant({int64_t(1) << 31}, 0);
  CHECK(huge.ByteSizeLong() < 64);
  CHECK_THAT(load_error(huge), Catch::Contains("more than 268435456 values"));
  // Under the cap but not in the file: rejected by the count, not after a 512 MiB allocation.
  CHECK_THAT(load_error(tiny_constant({int64_t(1) << 27}, 3)), Catch::Contains("has 3 values, its shape needs"));
  CHECK_THAT(load_error(tiny_constant({-4}, 0)), Catch::Contains("negative dimension -4"));
}

TEST_CASE("loader: element counts that overflow int64 or int are rejected", "[ocr][loader][malformed]") {
  // [2^32, 2^32] wraps to 0 values in int64; [2^32, 0] holds 0 values with a dimension
  // no int holds; [2^62, 4] wraps to 0 as well.
  for (std::vector<int64_t> dims : {std::vector<int64_t>{int64_t(1) << 32, int64_t(1) << 32},
                                    std::vector<int64_t>{int64_t(1) << 32, 0},
                                    std::vector<int64_t>{int64_t(1) << 62, 4}}) {
    CHECK_THAT(load_error(tiny_constant(dims, 0)), Catch::Contains("more than 268435456 values"));
  }
  // A conv weight of the real graph whose kernel height is 2^32 + 3 (an int keeps 3), and
  // one whose element count wraps an int ([1, 65536, 65536, 1]).
  for (std::vector<int64_t> dims : {std::vector<int64_t>{16, 3, (int64_t(1) << 32) + 3, 3},
                                    std::vector<int64_t>{1, 65536, 65536, 1}}) {
    onnx::ModelProto m = real_proto();
    auto* g = m.mutable_graph();
    auto* t = constant_tensor(g, g->node(nth_node(*g, "Conv")).input(1));
    t->clear_dims();
    for (int64_t d : dims) t->add_dims(d);
    CHECK_THAT(load_error(m), Catch::Contains("more than 268435456 values"));
  }
}

TEST_CASE("loader: nodes without their inputs or outputs are rejected", "[ocr][loader][malformed]") {
  for (int keep : {0, 1}) {  // a Conv with no input, with only its data input
    onnx::ModelProto m = real_proto();
    auto* conv = m.mutable_graph()->mutable_node(nth_node(m.graph(), "Conv"));
    while (conv->input_size() > keep) conv->mutable_input()->RemoveLast();
    CHECK_THAT(load_error(m), Catch::Contains("has " + std::to_string(keep) + " inputs, the operator takes 2 to 3"));
  }
  {  // an Add whose second input is unnamed
    onnx::ModelProto m = real_proto();
    m.mutable_graph()->mutable_node(nth_node(m.graph(), "Add"))->set_input(1, "");
    CHECK_THAT(load_error(m), Catch::Contains("lacks its required input 2"));
  }
  {  // a Mul with no output
    onnx::ModelProto m = real_proto();
    m.mutable_graph()->mutable_node(nth_node(m.graph(), "Mul"))->clear_output();
    CHECK_THAT(load_error(m), Catch::Contains("has no output"));
  }
  {  // a value defined twice (the graph would no longer be acyclic)
    onnx::ModelProto m = real_proto();
    auto* g = m.mutable_graph();
    g->mutable_node(nth_node(*g, "Relu"))->set_output(0, g->node(nth_node(*g, "Conv")).output(0));
    CHECK_THAT(load_error(m), Catch::Contains("a second time"));
  }
}

TEST_CASE("loader: BatchNormalization parameters are checked", "[ocr][loader][malformed]") {
  const int bn = nth_node(real_proto().graph(), "BatchNormalization");
  for (int param = 1; param <= 4; ++param) {  // scale, bias, mean, variance one value short
    onnx::ModelProto m = real_proto();
    auto* g = m.mutable_graph();
    set_floats(constant_tensor(g, g->node(bn).input(param)), {1}, {1.f});
    CHECK_THAT(load_error(m), Catch::Contains("has 1 values") && Catch::Contains("expected"));
  }
  {
    onnx::ModelProto m = real_proto();
    auto* a = attribute(m.mutable_graph()->mutable_node(bn), "epsilon");
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(std::nanf(""));
    CHECK_THAT(load_error(m), Catch::Contains("BatchNormalization epsilon is not finite"));
  }
  {  // a negative variance: the folded scale would be NaN
    onnx::ModelProto m = real_proto();
    auto* g = m.mutable_graph();
    auto* var = constant_tensor(g, g->node(bn).input(4));
    std::vector<float> v(var->raw_data().size() / 4, -1.f);
    set_floats(var, {int64_t(v.size())}, v);
    CHECK_THAT(load_error(m), Catch::Contains("variance + epsilon is not positive"));
  }
}

TEST_CASE("loader: conv and pool strides, pads and kernels are checked", "[ocr][loader][malformed]") {
  struct Case {
    const char* op;
    const char* attr;
    std::vector<int64_t> v;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"Conv", "strides", {0, 0}, "stride is 0"},
      {"Conv", "strides", {1}, "strides must have 2 values"},
      {"Conv", "pads", {-1, -1, -1, -1}, "pad is -1"},
      {"Conv", "pads", {int64_t(1) << 31, 0, int64_t(1) << 31, 0}, "pad is 2147483648"},
      {"Conv", "kernel_shape", {7, 7}, "kernel_shape differs"},
      {"AveragePool", "strides", {0, 0}, "stride is 0"},
      {"AveragePool", "kernel_shape", {}, "AveragePool needs a 2-D kernel_shape"},
      {"AveragePool", "kernel_shape", {1000, 2}, "pool height is 1000"},
  };
  for (const auto& c : cases) {
    INFO(c.op << " " << c.attr);
    onnx::ModelProto m = real_proto();
    auto* n = m.mutable_graph()->mutable_node(nth_node(m.graph(), c.op));
    set_ints(n, c.attr, c.v);
    CHECK_THAT(load_error(m), Catch::Contains(c.error));
  }
  {  // no kernel_shape at all
    onnx::ModelProto m = real_proto();
    auto* n = m.mutable_graph()->mutable_node(nth_node(m.graph(), "AveragePool"));
    auto* attrs = n->mutable_attribute();
    for (int k = attrs->size() - 1; k >= 0; --k)
      if (attrs->Get(k).name() == "kernel_shape") attrs->DeleteSubrange(k, 1);
    CHECK_THAT(load_error(m), Catch::Contains("AveragePool needs a 2-D kernel_shape"));
  }
}

TEST_CASE("loader: transformer weights and the attention split are checked", "[ocr][loader][malformed]") {
  const auto& g0 = real_proto().graph();
  // The first MatMul with a constant weight is block 0's qkv.
  const std::string qkv = g0.node(nth_node(g0, "MatMul")).input(1);
  for (std::vector<int64_t> dims : {std::vector<int64_t>{}, std::vector<int64_t>{360}}) {
    onnx::ModelProto m = real_proto();
    std::vector<float> v(dims.empty() ? 1 : 360, 0.5f);
    set_floats(constant_tensor(m.mutable_graph(), qkv), dims, v);
    CHECK_THAT(load_error(m), Catch::Contains("not recognised"));
  }
  {  // a qkv of the wrong width: [120, 240]
    onnx::ModelProto m = real_proto();
    set_floats(constant_tensor(m.mutable_graph(), qkv), {120, 240}, std::vector<float>(120 * 240, 0.5f));
    CHECK_THAT(load_error(m), Catch::Contains("not recognised"));
  }
  // The heads of block 0's split [N, T, 3, heads, head_dim]: -1, 0 and 7 (7 x 15 != 120).
  for (int32_t heads : {-1, 0, 7}) {
    onnx::ModelProto m = real_proto();
    auto* t = constant_tensor(m.mutable_graph(), "fill_constant_5.tmp_0");
    REQUIRE(t->raw_data().size() == 4);
    t->set_raw_data(std::string(reinterpret_cast<const char*>(&heads), 4));
    CHECK_THAT(load_error(m), Catch::Contains("attention split into " + std::to_string(heads) + " heads"));
  }
  {  // a NaN weight
    onnx::ModelProto m = real_proto();
    auto* t = constant_tensor(m.mutable_graph(), qkv);
    std::string raw = t->raw_data();
    const float nan = std::nanf("");
    std::memcpy(&raw[40], &nan, 4);
    t->set_raw_data(raw);
    CHECK_THAT(load_error(m), Catch::Contains("non-finite weights"));
  }
}
