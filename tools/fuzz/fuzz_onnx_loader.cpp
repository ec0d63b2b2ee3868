// fuzz_onnx_loader.cpp: libFuzzer harness of the examples/ocr ONNX loader and graph
// compiler. Any input must either load or end in ocr::model_error; every other exception,
// signal or sanitizer report is a finding. A model that compiles is also run once on a
// narrow zero image: the runner's own size checks may reject it with model_error, and
// etk's kernels with etk::invalid_argument (finite weights that overflow float give
// non-finite activations, which the attention kernels refuse by contract; a 10-minute
// run of this harness found such a model).
// Built and run by tools/fuzz/run; built with -DETK_FUZZ_SEED_MAIN it is the seed
// generator instead: `fuzz_onnx_loader-seeds DIR` writes the real PP-OCRv4 file (from
// $ETK_MODEL_DIR) and small
// variants of it (truncated, edited) into DIR.
//
// fuzz-args: -Iexamples/ocr/src -DONNX_ML=1 -DONNX_NAMESPACE=onnx
// fuzz-args: examples/ocr/src/onnx_model.cpp examples/ocr/src/model_compile.cpp
// fuzz-args: examples/ocr/src/model_run.cpp examples/ocr/src/model_transformer.cpp
// fuzz-args: examples/ocr/src/attention.cpp examples/ocr/src/kernels.cpp
// fuzz-args: -lonnx_proto -lprotobuf -lpthread
// fuzz-run: -max_len=16777216
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model.hpp"

#ifndef ETK_FUZZ_SEED_MAIN

// Protobuf parses a message of n bytes in time linear in n but with a large constant;
// the real model is 10.7 MB, so the cap admits it and its mutations and nothing larger.
constexpr size_t kMaxInput = size_t(16) << 20;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return 0;
  try {
    const ocr::Graph g = ocr::parse_onnx(std::string(reinterpret_cast<const char*>(data), size), "fuzz input");
    const ocr::Model m = ocr::Model::compile(g);
    const int width = 32;
    std::vector<float> image(size_t(3) * m.input_height * width, 0.f);
    ocr::Runner r(m);
    ocr::Probs p;
    try {
      r.run(image.data(), width, ocr::Hooks{}, p);
    } catch (const etk::invalid_argument&) {
    }
  } catch (const ocr::model_error&) {
  }
  return 0;
}

#else

#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <iostream>

#include "seed_files.hpp"

namespace {
using fuzz_seeds::write;
std::string serialize(const onnx::ModelProto& m) {
  std::string s;
  m.SerializeToString(&s);
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  const std::string dir = fuzz_seeds::corpus_dir(argc, argv);
  const char* model_dir = std::getenv("ETK_MODEL_DIR");
  const std::string real = fuzz_seeds::read(std::string(model_dir ? model_dir : ".") + "/ch_PP-OCRv4_rec_infer.onnx");
  onnx::ModelProto m;
  if (!m.ParseFromString(real)) {
    std::cerr << "cannot parse the real model\n";
    return 1;
  }
  write(dir, "real.onnx", real);
  for (size_t cut : {size_t(64), size_t(4096), size_t(1) << 20}) write(dir, "cut" + std::to_string(cut), real.substr(0, cut));
  // The graph alone: every constant's data dropped (rejected by the loader's size checks,
  // a small start for mutating the graph's structure).
  onnx::ModelProto skeleton = m;
  for (auto& n : *skeleton.mutable_graph()->mutable_node())
    if (n.op_type() == "Constant" && n.attribute_size() > 0) n.mutable_attribute(0)->mutable_t()->clear_raw_data();
  write(dir, "skeleton", serialize(skeleton));
  // The first 40 nodes and the graph's output moved to the last of them.
  onnx::ModelProto head = m;
  auto* g = head.mutable_graph();
  while (g->node_size() > 40) g->mutable_node()->RemoveLast();
  g->mutable_output(0)->set_name(g->node(39).output(0));
  write(dir, "head40", serialize(head));
  // A one-Constant model.
  onnx::ModelProto tiny;
  auto* tg = tiny.mutable_graph();
  tg->add_input()->set_name("x");
  tg->add_output()->set_name("c");
  auto* n = tg->add_node();
  n->set_op_type("Constant");
  n->add_output("c");
  auto* a = n->add_attribute();
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(onnx::TensorProto::FLOAT);
  a->mutable_t()->add_dims(2);
  a->mutable_t()->add_float_data(1.f);
  a->mutable_t()->add_float_data(2.f);
  write(dir, "tiny", serialize(tiny));
  return 0;
}

#endif
