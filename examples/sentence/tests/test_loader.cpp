// The TensorFlow.js graph loader and the recogniser of the Universal Sentence Encoder lite:
// the real model loads with the structure use_model.hpp describes; other graphs and corrupt
// files are rejected with an etk::invalid_argument that names the file and the problem.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
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

// The real model through the in-memory entry point, with the values of some weights
// replaced (`patch`: weight name -> its new bytes, written at the weight's offset).
class PatchedModel {
 public:
  PatchedModel() : json_(nlohmann::json::parse(examples::read_file(model_dir() + "/model.json"))) {
    for (const auto& p : json_["weightsManifest"][0]["paths"])
      bytes_ += examples::read_file(model_dir() + "/" + p.get<std::string>());
    std::size_t offset = 0;
    for (const auto& w : json_["weightsManifest"][0]["weights"]) {
      std::size_t n = 4;
      for (const auto& d : w["shape"]) n *= d.get<std::size_t>();
      offset_[w["name"].get<std::string>()] = offset;
      offset += n;
    }
  }
  template <typename T>
  void set(const std::string& weight, std::size_t element, T value) {
    std::memcpy(&bytes_[offset_.at(weight) + sizeof(T) * element], &value, sizeof(T));
  }
  sentence::TfjsGraph graph() const {
    std::size_t calls = 0;
    return sentence::parse_tfjs_graph(json_.dump(), "patched model.json", [&](const std::string&, std::size_t) {
      return calls++ == 0 ? bytes_ : std::string();  // the group's bytes in its first shard
    });
  }
  sentence::UseModel model() const { return sentence::recognise_use_lite(graph()); }

 private:
  nlohmann::json json_;
  std::string bytes_;
  std::map<std::string, std::size_t> offset_;
};

const std::string kStackLayer = "module_apply_default/Encoder_en/KonaTransformer/Encode/TransformerStack/Layer_";
const std::string kEncodeLayer = "module_apply_default/Encoder_en/KonaTransformer/Encode/Layer_";

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
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("group1-shard7of7") && Contains("more than the"));
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

// Hostile files the earlier checks let through (issue 18, found by tools/fuzz/fuzz_tfjs_loader
// and by hand): each of these loaded, read outside the model, hung or hit undefined
// behaviour on main.
TEST_CASE("sentence loader: shard paths cannot leave the model's directory") {
  ModelCopy c("traversal");
  auto& paths = c.json()["weightsManifest"][0]["paths"];
  const auto original = paths[0];
  for (const char* bad : {"../group1-shard1of7", "/dev/zero", "sub/group1-shard1of7", "..", ".", "", "a\\b",
                          "shard\nname"}) {
    INFO(bad);
    paths[0] = bad;
    CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("not a plain file name"));
  }
  paths[0] = original;
  CHECK_NOTHROW(sentence::load_tfjs_graph(c.write()));
}

TEST_CASE("sentence loader: shards and model.json must be regular files") {
  ModelCopy c("irregular");
  const std::string path = c.write();
  c.remove_shard("group1-shard2of7");
  fs::create_directory(fs::path(path).parent_path() / "group1-shard2of7");
  CHECK_THROWS_WITH(sentence::load_use_lite(path), Contains("group1-shard2of7") && Contains("not a regular file"));
  fs::remove(fs::path(path).parent_path() / "group1-shard2of7");
  // A link to a device (on main /dev/zero was read until memory ran out).
  fs::create_symlink("/dev/null", fs::path(path).parent_path() / "group1-shard2of7");
  CHECK_THROWS_WITH(sentence::load_use_lite(path), Contains("not a regular file"));
  CHECK_THROWS_WITH(sentence::load_use_lite(fs::path(path).parent_path().string()), Contains("not a regular file"));
}

TEST_CASE("sentence loader: a shard larger than the manifest needs is refused before it is read") {
  ModelCopy c("oversize");
  const auto j = c.json();
  std::vector<std::size_t> limits;
  const auto reader = [&](const std::string& name, std::size_t max_bytes) {
    limits.push_back(max_bytes);
    return examples::read_file(model_dir() + "/" + name);
  };
  const sentence::TfjsGraph g = sentence::parse_tfjs_graph(j.dump(), "m.json", reader);
  // The reader is told what the manifest still needs: all of it, then less by each shard.
  REQUIRE(limits.size() == 7);
  CHECK(limits[0] == 27903656);  // the 61 weights of the manifest
  CHECK(limits[6] == 2737832);
  CHECK(g.weights.size() == 61);
  // A reader that ignores the limit is caught at once.
  CHECK_THROWS_WITH(sentence::parse_tfjs_graph(j.dump(), "m.json",
                                               [&](const std::string& name, std::size_t) {
                                                 return examples::read_file(model_dir() + "/" + name) + "x";
                                               }),
                    Contains("more than the 27903656 bytes"));
  // All the weights together may not exceed 1 GiB, whatever the shards hold.
  auto big = j;
  big["weightsManifest"][0]["weights"][0]["shape"] = {16384, 16384};
  big["weightsManifest"][0]["weights"][1]["shape"] = {16384, 16384};
  CHECK_THROWS_WITH(sentence::parse_tfjs_graph(big.dump(), "m.json", reader), Contains("more than 1073741824 bytes"));
}

TEST_CASE("sentence loader: weight dimensions must be integers") {
  ModelCopy c("dims");
  auto* w = weight_named(c.json(), "module/Embeddings_en");
  REQUIRE(w);
  (*w)["shape"] = {8002.5, 256};  // on main: truncated to 8002 and loaded
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("not an integer"));
  (*w)["shape"] = {1e30, 256};  // on main: a float-to-int conversion out of range (UB)
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("not an integer"));
  (*w)["shape"] = {std::numeric_limits<std::uint64_t>::max(), 256};
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("bad dimension"));
  (*w)["shape"] = "8002";
  CHECK_THROWS_WITH(sentence::load_use_lite(c.write()), Contains("\"shape\" is not an array"));
  (*w)["shape"] = {8002, 256};
  // A number beyond double's range is not valid JSON (nlohmann's out_of_range, which on
  // main escaped as a non-etk exception).
  std::string text = c.json().dump();
  const std::string dims = "[8002,256]";
  text.replace(text.find(dims), dims.size(), "[8002,1e400]");
  CHECK_THROWS_AS(sentence::load_use_lite(c.write(text)), etk::invalid_argument);
}

TEST_CASE("sentence loader: head count times head size is computed without overflow") {
  PatchedModel p;
  CHECK_NOTHROW(p.model());
  // 4 x (2^30 + 64) wraps to 256 in 32 bits: on main layer 0 was accepted with a head
  // size of 2^30 + 64 (signed overflow, UB).
  p.set(kStackLayer + "0/TransformerLayer/MultiheadAttention/split_heads/split_last_dimension/Reshape/shape/3", 0,
        std::int32_t((1 << 30) + 64));
  CHECK_THROWS_WITH(p.model(), Contains("heads x head size"));
}

TEST_CASE("sentence loader: the maximum sentence length is bounded") {
  PatchedModel p;
  const std::string name = "module_apply_default/Encoder_en/KonaTransformer/ClipToMaxLength/Less/y";
  p.set(name, 0, std::int32_t(8192));
  CHECK(p.model().max_tokens == 8192);
  // On main accepted: the runner then sized a 2^31 x 256 timing table.
  for (std::int32_t bad : {std::numeric_limits<std::int32_t>::max(), std::int32_t(8193), std::int32_t(0),
                           std::int32_t(-5)}) {
    p.set(name, 0, bad);
    CHECK_THROWS_WITH(p.model(), Contains("maximum sentence length"));
  }
}

TEST_CASE("sentence loader: the L2 normalisation floor is positive and finite") {
  PatchedModel p;
  const std::string name = "module_apply_default/Encoder_en/hidden_layers/l2_normalize/Maximum/y";
  p.set(name, 0, std::numeric_limits<float>::denorm_min());
  CHECK(p.model().l2_floor > 0.0f);
  // On main accepted: a zero tanh output then normalised to 0 * inf = NaN.
  for (float bad : {0.0f, -1e-12f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    p.set(name, 0, bad);
    CHECK_THROWS_WITH(p.model(), Contains("L2 normalisation floor"));
  }
}

TEST_CASE("sentence loader: biases and layer norm parameters must be finite") {
  // On main only the weight matrices were checked.
  const std::string names[] = {
      "module/Encoder_en/hidden_layers/tanh_layer_0/bias",
      kEncodeLayer + "0/TransformerLayer/MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat",
      kEncodeLayer + "1/TransformerLayer/FFN/conv2/bias/ConcatPartitions/concat",
      kEncodeLayer + "0/TransformerLayer/dense/bias/ConcatPartitions/concat",
      kEncodeLayer + "1/TransformerLayer/layer_prepostprocess/layer_norm/layer_norm_scale/ConcatPartitions/concat",
      kEncodeLayer + "0/TransformerLayer/FFN/layer_prepostprocess/layer_norm/layer_norm_bias/ConcatPartitions/concat"};
  for (const auto& name : names) {
    INFO(name);
    PatchedModel p;
    p.set(name, 3, std::numeric_limits<float>::quiet_NaN());
    CHECK_THROWS_WITH(p.model(), Contains("not finite"));
    p.set(name, 3, -std::numeric_limits<float>::infinity());
    CHECK_THROWS_WITH(p.model(), Contains("not finite"));
  }
}
