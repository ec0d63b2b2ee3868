// tfjs_graph.cpp: see tfjs_graph.hpp.
#include "tfjs_graph.hpp"

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "etk/config.hpp"
#include "reuters.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "TensorFlow.js shards are little-endian");

namespace sentence {

namespace {

using nlohmann::json;

// Bound on one weight's elements: far above this model's largest (8,002 x 256), far
// below an allocation that would hurt; a corrupt shape is rejected before allocating.
constexpr std::int64_t kMaxWeightElements = std::int64_t(1) << 28;

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::string strip_input(std::string s) {
  if (!s.empty() && s[0] == '^') s.erase(0, 1);
  const auto colon = s.find(':');
  if (colon != std::string::npos) s.erase(colon);
  return s;
}

const json& member(const json& j, const char* key, const std::string& where) {
  ETK_CHECK(j.is_object() && j.contains(key), where << ": missing \"" << key << "\"");
  return j.at(key);
}

}  // namespace

std::int64_t TfjsWeight::size() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

const TfjsNode* TfjsGraph::find(const std::string& name) const {
  auto it = node_index.find(name);
  return it == node_index.end() ? nullptr : &nodes[it->second];
}

TfjsGraph load_tfjs_graph(const std::string& model_json) {
  std::string text;
  try {
    text = examples::read_file(model_json);
  } catch (const std::exception& e) {
    ETK_THROW("model file '" << model_json << "': " << e.what());
  }
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error& e) {
    ETK_THROW("model file '" << model_json << "' is not valid JSON: " << e.what());
  }
  TfjsGraph g;
  g.path = model_json;
  const std::string where = "model file '" + model_json + "'";

  const json& nodes = member(member(root, "modelTopology", where), "node", where + " modelTopology");
  ETK_CHECK(nodes.is_array() && !nodes.empty(), where << ": modelTopology.node is not a non-empty array");
  try {
    for (const auto& n : nodes) {
      TfjsNode node;
      node.name = member(n, "name", where + " node").get<std::string>();
      node.op = member(n, "op", where + " node '" + node.name + "'").get<std::string>();
      if (n.contains("input"))
        for (const auto& in : n.at("input")) node.inputs.push_back(strip_input(in.get<std::string>()));
      ETK_CHECK(g.node_index.emplace(node.name, g.nodes.size()).second,
                where << ": node '" << node.name << "' appears twice");
      g.nodes.push_back(std::move(node));
    }
  } catch (const json::exception& e) {
    ETK_THROW(where << ": malformed node: " << e.what());
  }
  for (const auto& n : g.nodes)
    for (const auto& in : n.inputs)
      ETK_CHECK(g.node_index.count(in), where << ": node '" << n.name << "' reads '" << in
                                              << "', which no node produces");

  const json& manifest = member(root, "weightsManifest", where);
  ETK_CHECK(manifest.is_array(), where << ": weightsManifest is not an array");
  const std::string dir = directory_of(model_json);
  try {
    for (const auto& group : manifest) {
      std::string bytes;
      for (const auto& p : member(group, "paths", where + " weightsManifest group")) {
        const std::string shard = dir + "/" + p.get<std::string>();
        try {
          bytes += examples::read_file(shard);
        } catch (const std::exception&) {
          ETK_THROW(where << ": cannot read weight shard '" << shard << "'");
        }
      }
      std::size_t offset = 0;
      for (const auto& w : member(group, "weights", where + " weightsManifest group")) {
        const std::string name = member(w, "name", where + " weight").get<std::string>();
        const std::string wwhere = where + " weight '" + name + "'";
        ETK_CHECK(!w.contains("quantization"), wwhere << ": quantized weights are not supported");
        TfjsWeight t;
        t.dtype = member(w, "dtype", wwhere).get<std::string>();
        ETK_CHECK(t.dtype == "float32" || t.dtype == "int32",
                  wwhere << ": dtype '" << t.dtype << "' is not supported (float32, int32)");
        for (const auto& d : member(w, "shape", wwhere)) {
          const std::int64_t v = d.get<std::int64_t>();
          ETK_CHECK(v >= 0 && v <= kMaxWeightElements, wwhere << ": bad dimension " << v);
          t.shape.push_back(v);
          ETK_CHECK(t.size() <= kMaxWeightElements, wwhere << ": more than " << kMaxWeightElements << " elements");
        }
        const std::size_t n = static_cast<std::size_t>(t.size());
        ETK_CHECK(offset + 4 * n <= bytes.size(),
                  wwhere << ": the shards hold " << bytes.size() << " bytes, the manifest needs at least "
                         << offset + 4 * n << " (truncated shard?)");
        if (t.dtype == "float32") {
          t.f.resize(n);
          if (n) std::memcpy(t.f.data(), bytes.data() + offset, 4 * n);
        } else {
          t.i.resize(n);
          if (n) std::memcpy(t.i.data(), bytes.data() + offset, 4 * n);
        }
        offset += 4 * n;
        ETK_CHECK(g.weights.emplace(name, std::move(t)).second, wwhere << ": appears twice in the manifest");
      }
      ETK_CHECK(offset == bytes.size(), where << ": the shards hold " << bytes.size()
                                              << " bytes but the manifest describes " << offset);
    }
  } catch (const json::exception& e) {
    ETK_THROW(where << ": malformed weightsManifest: " << e.what());
  }
  for (const auto& n : g.nodes)
    if (n.op == "Const")
      ETK_CHECK(g.weights.count(n.name), where << ": Const node '" << n.name << "' has no weight in the manifest");
  return g;
}

}  // namespace sentence
