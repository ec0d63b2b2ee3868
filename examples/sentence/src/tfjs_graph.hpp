// tfjs_graph.hpp: a reader for the TensorFlow.js graph-model format: model.json (the
// graph as `modelTopology.node`, a TensorFlow GraphDef in JSON) and its `weightsManifest`
// (groups of weights, each group stored in the binary shard files it names, the weights
// concatenated in manifest order, little-endian). Only float32 and int32 weights without
// quantization are accepted. Every problem is an etk::invalid_argument naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace sentence {

struct TfjsNode {
  std::string name, op;
  std::vector<std::string> inputs;  // producer node names (":k" output and "^" stripped)
};

struct TfjsWeight {
  std::string dtype;                // "float32" or "int32"
  std::vector<std::int64_t> shape;  // [] for a scalar
  std::vector<float> f;             // float32 values (dtype float32)
  std::vector<std::int32_t> i;      // int32 values (dtype int32)
  std::int64_t size() const;
};

struct TfjsGraph {
  std::string path;  // the model.json read
  std::vector<TfjsNode> nodes;
  std::map<std::string, std::size_t> node_index;  // name -> position in nodes
  std::map<std::string, TfjsWeight> weights;
  const TfjsNode* find(const std::string& name) const;
};

// The bytes of one weight shard: `name` is a path of the manifest, already checked to be
// a plain file name (no directory part, see load_tfjs_graph); a shard holding more than
// `max_bytes` (what the manifest still needs) must be refused with an
// etk::invalid_argument before it is read.
using ShardReader = std::function<std::string(const std::string& name, std::size_t max_bytes)>;

// Reads model.json and the shards beside it. Both must be regular files (a symlink to
// one is followed); a shard may not be larger than what the manifest still needs, nor
// name anything outside the model's directory.
TfjsGraph load_tfjs_graph(const std::string& model_json);
// The same from model.json's text (`path` names it in errors), shards from `read_shard`
// (the in-memory entry point of the fuzz harness and of tests).
TfjsGraph parse_tfjs_graph(const std::string& json_text, const std::string& path, const ShardReader& read_shard);

}  // namespace sentence
