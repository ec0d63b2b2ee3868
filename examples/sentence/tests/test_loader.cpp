// The TensorFlow.js graph loader and the recogniser of the Universal Sentence Encoder lite:
// the real model loads with the structure use_model.hpp describes; other graphs and corrupt
// files are rejected with an etk::invalid_argument that names the file and the problem.
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "sentence_test_util.hpp"

using namespace sentence_test;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A scratch copy of the model: model.json as given, the shards linked (or written).
class ModelCopy {
 public:
  explicit ModelCopy(const std::string& tag)
      : dir_(fs::temp_directory_path() / ("etk_sentence_" + tag + "_" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    json_ = nlohmann::json::parse(examples::read_file(model_dir() + "/model.json"));
    for (const auto& p : json_["weightsManifest"][0]["paths"])
      fs::create_symlink(fs::path(model_dir()) / p.get<std::string>(), dir_ / p.get<std::string>());
  }
  ~ModelCopy() { fs::remove_all(dir_); }
  nlohmann::json& json() { return json_; }
  // Replaces shard `name` with its first `bytes` bytes (plus `extra` zero bytes).
  void cut_shard(const std::string& name, std::size_t bytes, std::size_t extra = 0) {
    std::string data = examples::read_file(model_dir() + "/" + name).substr(0, bytes);
    data.append(extra, '\0');
    fs::remove(dir_ / name);
    std::ofstream(dir_ / name, std::ios::binary) << data;
  }
  void remove_shard(const std::string& name) { fs::remove(dir_ / name); }
  std::string write(const std::string& text = "") {
    const auto path = (dir_ / "model.json").string();
    std::ofstream(path) << (text.empty() ? json_.dump() : text);
    return path;
  }

 private:
  fs::path dir_;
  nlohmann::json json_;
};

nlohmann::json* node_named(nlohmann::json& j, const std::string& suffix) {
  for (auto& n : j["modelTopology"]["node"])
    if (n["name"].get<std::string>().size() >= suffix.size() &&
        n["name"].get<std::string>().compare(n["name"].get<std::string>().size() - suffix.size(), suffix.size(),
                                             suffix) == 0)
      return &n;
  return nullptr;
}

nlohmann::json* weight_named(nlohmann::json& j, const std::string& name) {
  for (auto& w : j["weightsManifest"][0]["weights"])
    if (w["name"] == name) return &w;
  return nullptr;
}

}  // namespace

TEST_CASE("sentence loader: the real model's structure") {
  const auto& m = model();
  CHECK(m.vocab_rows == 8002);
  CHECK(m.model_dim == 256);
  CHECK(m.max_tokens == 128);
  CHECK(m.embedding_dim() == 512);
  CHECK(m.inv_timescales.size() == 128);
  CHECK(m.inv_timescales.front() == 1.0f);
  CHECK(m.layers[0].heads == 4);
  CHECK(m.layers[0].head_dim == 64);
  CHECK(m.layers[0].residual.out == 512);
  CHECK(m.layers[1].heads == 4);
  CHECK(m.layers[1].head_dim == 128);
  CHECK(m.layers[1].residual.w.empty());
  CHECK(m.layers[1].ffn1.out == 1536);
  CHECK(m.layers[0].ln_attention.eps == Approx(1e-6f));
  CHECK(m.l2_floor == Approx(1e-12f));
  CHECK(tokenizer().vocab_size() == 8000);
}

TEST_CASE("sentence loader: missing and malformed files are rejected naming the file") {
  CHECK_THROWS_WITH(sentence::load_use_lite("/nonexistent/model.json"), Contains("/nonexistent/model.json"));
  ModelCopy c("json");
  const std::string text = c.json().dump();
  const std::string path = c.write(text.substr(0, text.size() / 2));
  CHECK_THROWS_AS(sentence::load_use_lite(path), etk::invalid_argument);
  CHECK_THROWS_WITH(sentence::load_use_lite(path), Contains(path) && Contains("not valid JSON"));
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write("{\"weightsManifest\": []}")), Contains("modelTopology"));
  CHECK_THROWS_WITH(sentence::Tokenizer::from_file(c.write("[[\"a\", 1]]")), Contains("[piece, score]"));
}

TEST_CASE("sentence loader: truncated, missing and oversized shards are rejected") {
  ModelCopy c("shards");
  c.cut_shard("group1-shard7of7", 1000);
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("truncated shard"));
  c.cut_shard("group1-shard7of7", std::size_t(1) << 30, 4);  // the whole shard plus 4 bytes
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("bytes but the manifest describes"));
  c.remove_shard("group1-shard3of7");
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("group1-shard3of7"));
}

TEST_CASE("sentence loader: unsupported weights are rejected") {
  ModelCopy c("weights");
  auto* w = weight_named(c.json(), "module/Embeddings_en");
  REQUIRE(w);
  (*w)["dtype"] = "float16";
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("float16") && Contains("module/Embeddings_en"));
  (*w)["dtype"] = "float32";
  (*w)["quantization"] = {{"dtype", "uint8"}, {"scale", 0.1}, {"min", 0}};
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("quantized"));
  w->erase("quantization");
  (*w)["shape"] = {-8002, 256};
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("bad dimension"));
  (*w)["shape"] = {int64_t(1) << 40, 256};
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("bad dimension"));
}

TEST_CASE("sentence loader: other graphs are not taken for this model") {
  ModelCopy c("graph");
  auto* tanh = node_named(c.json(), "tanh_layer_0/Tanh");
  REQUIRE(tanh);
  (*tanh)["op"] = "Sigmoid";
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("not the Universal Sentence Encoder lite"));
  (*tanh)["op"] = "Tanh";
  // Same op counts, different wiring: the pooling reads layer 0's output.
  auto* mul = node_named(c.json(), "KonaTransformer/mul");
  REQUIRE(mul);
  const auto original = (*mul)["input"][0];
  (*mul)["input"][0] = "module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_0/"
                       "TransformerLayer/FFN/layer_postprocess/add";
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("KonaTransformer/mul") && Contains("input 0"));
  (*mul)["input"][0] = original;
  (*mul)["input"][1] = "no_such_node";
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("no_such_node") && Contains("no node produces"));
  (*mul)["input"][1] = "module_apply_default/Encoder_en/KonaTransformer/ExpandDims";
  // Same bytes, different shape: the recogniser checks every weight's shape.
  auto* w = weight_named(c.json(), "module/Encoder_en/hidden_layers/tanh_layer_0/weights");
  REQUIRE(w);
  (*w)["shape"] = {256, 1024};
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("tanh_layer_0/weights") && Contains("[512,512]"));
  (*w)["shape"] = {512, 512};
  CHECK_NOTHROW(sentence::load_use_lite(c.write()));
}
