// fuzz_tfjs_loader.cpp: libFuzzer harness of the TensorFlow.js graph-model loader of
// examples/sentence (tfjs_graph.hpp: model.json + weightsManifest + shards) and of the
// Universal Sentence Encoder lite recogniser (use_model.hpp), through the loader's
// in-memory entry point parse_tfjs_graph.
//
// An input is  MODE model.json SEP part SEP part ...  (SEP = kSeparator). MODE's low bit:
//  0 (raw): part k is the bytes of the k-th shard the loader asks for (missing: empty);
//  1 (tiled): the parts, joined, are a value stream; each weight of the manifest (as the
//     harness reads the JSON itself) takes its next up to 64 bytes and repeats them over
//     its own bytes, so a short input sets every scalar exactly and fills the 28 MB of the
//     real model's matrices (the way past the recogniser's value checks).
// Each input must end in a graph or an etk::invalid_argument; a recognised model must
// then hold what the runner relies on (every float finite, sizes consistent, bounded
// sequence length, positive L2 floor). Any other exception, a broken invariant (abort)
// or a sanitizer report is a finding.
//
// Built and run by tools/fuzz/run. Committed seeds (tools/fuzz/corpus/fuzz_tfjs_loader):
// a tiny synthetic graph, raw and truncated, and the real model.json with its nodes
// reduced to name/op/input, tiled from the first bytes of each real weight. Built with
// -DETK_FUZZ_SEED_MAIN it is the seed generator: `fuzz_tfjs_loader-seeds DIR` writes those
// (from the model in the etk cache, see examples/sentence/src/paths.hpp) and the full real
// model.json, tiled and with truncated raw shards, into DIR.
//
// fuzz-args: -Iexamples/sentence/src -Iexamples/shared/src
// fuzz-args: examples/sentence/src/tfjs_graph.cpp examples/sentence/src/use_model.cpp
// fuzz-run: -max_len=1048576
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "etk/config.hpp"
#include "tfjs_graph.hpp"
#include "use_model.hpp"

namespace {

const std::string kSeparator = "\n--etk-shard--\n";
constexpr std::size_t kTileBytes = 64;
constexpr std::size_t kMaxTiledBytes = std::size_t(64) << 20;

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> parts;
  std::size_t from = 0;
  for (;;) {
    const std::size_t at = s.find(kSeparator, from);
    parts.push_back(s.substr(from, at == std::string::npos ? std::string::npos : at - from));
    if (at == std::string::npos) return parts;
    from = at + kSeparator.size();
  }
}

// Per manifest path, in order: the bytes the tiled mode gives it (a group's bytes go to
// its first path). The harness's own best-effort reading of the manifest; where it
// cannot make sense of it the loader rejects the file anyway.
std::vector<std::string> tiled_shards(const std::string& json_text, const std::string& stream) {
  std::vector<std::string> out;
  std::size_t next = 0, total = 0;
  auto take = [&](std::size_t bytes) {
    std::string t;
    for (std::size_t k = 0; k < std::min(bytes, kTileBytes); ++k)
      t.push_back(stream.empty() ? '\0' : stream[next++ % stream.size()]);
    std::string w(bytes, '\0');
    if (bytes == 0) return w;
    std::memcpy(&w[0], t.data(), t.size());
    for (std::size_t have = t.size(); have < bytes; have *= 2)  // doubling copies
      std::memcpy(&w[have], w.data(), std::min(have, bytes - have));
    return w;
  };
  try {
    const auto root = nlohmann::json::parse(json_text);
    for (const auto& group : root.at("weightsManifest")) {
      std::string bytes;
      for (const auto& w : group.at("weights")) {
        std::uint64_t n = 4;  // bytes; 0 for a shape the harness does not follow
        for (const auto& d : w.at("shape")) {
          const std::uint64_t v = d.is_number_unsigned() ? d.get<std::uint64_t>() : 0;
          n = v > kMaxTiledBytes || n * v > kMaxTiledBytes ? 0 : n * v;
        }
        if (total + n > kMaxTiledBytes) return out;
        total += n;
        bytes += take(std::size_t(n));
      }
      const std::size_t paths = group.at("paths").size();
      for (std::size_t p = 0; p < paths; ++p) out.push_back(p == 0 ? bytes : std::string());
    }
  } catch (const std::exception&) {
  }
  return out;
}

void require(bool ok, const char* what) {
  if (!ok) {
    std::cerr << "fuzz_tfjs_loader: a recognised model breaks: " << what << std::endl;
    std::abort();
  }
}

void require_finite(const std::vector<float>& v, const char* what) {
  for (float x : v) require(std::isfinite(x), what);
}

void require_linear(const sentence::Linear& l) {
  require(l.in > 0 && l.out > 0, "a linear layer's size");
  require(l.w.size() == std::size_t(l.in) * std::size_t(l.out) && l.b.size() == std::size_t(l.out),
          "a linear layer's weights match its size");
  require_finite(l.w, "linear weights finite");
  require_finite(l.b, "linear biases finite");
}

void require_norm(const sentence::LayerNorm& n, int width) {
  require(n.scale.size() == std::size_t(width) && n.bias.size() == std::size_t(width), "layer norm size");
  require_finite(n.scale, "layer norm scale finite");
  require_finite(n.bias, "layer norm bias finite");
  require(std::isfinite(n.eps) && n.eps > 0, "layer norm epsilon positive");
}

// What encoder.cpp relies on when it runs a model.
void check_model(const sentence::UseModel& m) {
  require(m.vocab_rows > 0 && m.model_dim > 0 && m.model_dim % 2 == 0, "model sizes");
  require(m.embedding.size() == std::size_t(m.vocab_rows) * std::size_t(m.model_dim), "embedding size");
  require(m.inv_timescales.size() == std::size_t(m.model_dim / 2), "timing signal size");
  require(m.max_tokens >= 1 && m.max_tokens <= 8192, "maximum sentence length bounded");
  require(std::isfinite(m.l2_floor) && m.l2_floor > 0, "L2 floor positive and finite");
  require_finite(m.embedding, "embedding finite");
  require_finite(m.inv_timescales, "timing signal finite");
  int width = m.model_dim;
  for (const auto& l : m.layers) {
    require(l.width_in == width && l.heads > 0 && l.head_dim > 0 &&
                std::int64_t(l.heads) * l.head_dim == l.width_in,
            "heads x head size = layer width");
    require(std::isfinite(l.q_scale), "q scale finite");
    require_norm(l.ln_attention, l.width_in);
    require_norm(l.ln_ffn, l.width);
    for (const auto* lin : {&l.qkv, &l.out, &l.ffn1, &l.ffn2}) require_linear(*lin);
    require(l.qkv.in == l.width_in && l.qkv.out == 3 * l.width_in && l.out.out == l.width, "attention shapes");
    if (l.width_in != l.width) require_linear(l.residual);
    width = l.width;
  }
  require_linear(m.tanh_layer);
  require(m.tanh_layer.in == width, "tanh layer input");
}

}  // namespace

#ifndef ETK_FUZZ_SEED_MAIN

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool tiled = data[0] & 1;
  std::vector<std::string> parts = split(std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  const std::string json_text = parts[0];
  std::vector<std::string> shards(parts.begin() + 1, parts.end());
  if (tiled) {
    std::string stream;
    for (const auto& p : shards) stream += p;
    shards = tiled_shards(json_text, stream);
  }
  std::size_t calls = 0;
  try {
    const sentence::TfjsGraph g =
        sentence::parse_tfjs_graph(json_text, "fuzz input", [&](const std::string&, std::size_t max_bytes) {
          const std::size_t k = calls++;
          std::string s = k < shards.size() ? std::move(shards[k]) : std::string();
          // Refuse what the manifest does not need, as the file reader does.
          ETK_CHECK(s.size() <= max_bytes, "shard of " << s.size() << " bytes, more than " << max_bytes);
          return s;
        });
    check_model(sentence::recognise_use_lite(g));
  } catch (const etk::invalid_argument&) {
  }
  return 0;
}

#else

#include "paths.hpp"
#include "seed_files.hpp"

namespace {

using fuzz_seeds::read;
using fuzz_seeds::write;

// MODE json SEP part SEP part ...
std::string input(char mode, const std::string& json_text, const std::vector<std::string>& parts) {
  std::string s(1, mode);
  s += json_text;
  for (const auto& p : parts) s += kSeparator + p;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string dir = fuzz_seeds::corpus_dir(argc, argv);
  // A tiny graph: a placeholder and two constants, float32 [2,3] and int32 [], in two shards.
  const std::string tiny = R"({"modelTopology":{"node":[{"name":"x","op":"Placeholder"},)"
                           R"({"name":"w","op":"Const"},{"name":"n","op":"Const"},)"
                           R"({"name":"y","op":"MatMul","input":["x","w:0","^n"]}]},)"
                           R"("weightsManifest":[{"paths":["group1-shard1of2","group1-shard2of2"],)"
                           R"("weights":[{"name":"w","shape":[2,3],"dtype":"float32"},)"
                           R"({"name":"n","shape":[],"dtype":"int32"}]}]})";
  std::string values;
  for (int k = 0; k < 6; ++k) {
    const float f = 0.5f * float(k) - 1.0f;
    values.append(reinterpret_cast<const char*>(&f), 4);
  }
  const std::int32_t n = 7;
  values.append(reinterpret_cast<const char*>(&n), 4);
  write(dir, "tiny_raw", input('\0', tiny, {values.substr(0, 16), values.substr(16)}));
  write(dir, "tiny_truncated", input('\0', tiny, {values.substr(0, 16), values.substr(16, 5)}));
  write(dir, "tiny_tiled", input('\1', tiny, {values}));

  std::string model_dir;
  try {
    model_dir = sentence::model_dir_from_env();
  } catch (const etk::invalid_argument& e) {  // the committed seeds still serve
    std::cerr << "fuzz_tfjs_loader-seeds: real-model seeds skipped: " << e.what() << "\n";
    return 0;
  }
  const std::string real = read(model_dir + "/model.json");
  auto root = nlohmann::json::parse(real);
  // The value stream of the tiled mode: each weight's first (up to) 64 bytes.
  std::string stream, shard_bytes;
  for (const auto& p : root["weightsManifest"][0]["paths"]) shard_bytes += read(model_dir + "/" + p.get<std::string>());
  std::size_t offset = 0;
  for (const auto& w : root["weightsManifest"][0]["weights"]) {
    std::size_t bytes = 4;
    for (const auto& d : w["shape"]) bytes *= d.get<std::size_t>();
    stream += shard_bytes.substr(offset, std::min(bytes, kTileBytes));
    offset += bytes;
  }
  // The recogniser reads only the nodes' name, op and input.
  auto reduced = root;
  for (auto& node : reduced["modelTopology"]["node"]) {
    nlohmann::json r = {{"name", node["name"]}, {"op", node["op"]}};
    if (node.contains("input") && !node["input"].empty()) r["input"] = node["input"];
    node = r;
  }
  write(dir, "real_reduced_tiled", input('\1', reduced.dump(), {stream}));
  if (std::getenv("ETK_FUZZ_COMMITTED_ONLY")) return 0;  // the seeds committed under tools/fuzz/corpus
  write(dir, "real_tiled", input('\1', real, {stream}));
  write(dir, "real_raw_cut", input('\0', real, {shard_bytes.substr(0, 4096)}));
  return 0;
}

#endif
