// The ONNX loader rejects a missing, empty, truncated or corrupted file and an unknown
// operator with an error naming the problem (never a crash).
#include <onnx/onnx_pb.h>

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
