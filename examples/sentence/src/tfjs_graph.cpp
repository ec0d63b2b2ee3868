// tfjs_graph.cpp: see tfjs_graph.hpp.
#include "tfjs_graph.hpp"

#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "etk/config.hpp"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "TensorFlow.js shards are little-endian");

namespace sentence {

namespace {

using nlohmann::json;

// Bound on one weight's elements: far above this model's largest (8,002 x 256), far
// below an allocation that would hurt; a corrupt shape is rejected before allocating.
constexpr std::int64_t kMaxWeightElements = std::int64_t(1) << 28;
// Bound on all the weights' bytes together (the model's are 27.9 MB), and on model.json
// (247 KB): nothing larger is read.
constexpr std::size_t kMaxModelBytes = std::size_t(1) << 30;
constexpr std::size_t kMaxJsonBytes = std::size_t(64) << 20;

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

const json& array_member(const json& j, const char* key, const std::string& where) {
  const json& a = member(j, key, where);
  ETK_CHECK(a.is_array(), where << ": \"" << key << "\" is not an array");
  return a;
}

// A dimension of a weight's shape: an integer (not 2.5, not 1e30) in [0, kMaxWeightElements].
std::int64_t dimension(const json& d, const std::string& where) {
  ETK_CHECK(d.is_number_integer(), where << ": bad dimension " << d.dump() << " (not an integer)");
  const bool in_range = d.is_number_unsigned() ? d.get<std::uint64_t>() <= std::uint64_t(kMaxWeightElements)
                                               : d.get<std::int64_t>() >= 0 && d.get<std::int64_t>() <= kMaxWeightElements;
  ETK_CHECK(in_range, where << ": bad dimension " << d.dump());
  return d.get<std::int64_t>();
}

// A shard path of the manifest names a file in the model's directory: no directory part,
// not "." or "..", no control characters (a path such as "../../etc/passwd" or
// "/dev/zero" would read outside the model).
void check_shard_name(const std::string& name, const std::string& where) {
  bool plain = !name.empty() && name != "." && name != "..";
  for (unsigned char c : name) plain = plain && c >= 0x20 && c != 0x7f && c != '/' && c != '\\';
  ETK_CHECK(plain, where << ": weight shard path " << json(name).dump()
                         << " is not a plain file name in the model's directory");
}

// A regular file (symlinks followed) of at most `max_bytes`, read whole.
std::string read_regular_file(const std::string& path, std::size_t max_bytes, const std::string& what) {
  struct stat st;
  ETK_CHECK(::stat(path.c_str(), &st) == 0, "cannot read " << what << " '" << path << "'");
  ETK_CHECK(S_ISREG(st.st_mode), what << " '" << path << "' is not a regular file");
  ETK_CHECK(std::uint64_t(st.st_size) <= max_bytes,
            what << " '" << path << "' has " << st.st_size << " bytes, more than the " << max_bytes << " expected");
  std::ifstream f(path, std::ios::binary);
  ETK_CHECK(f, "cannot read " << what << " '" << path << "'");
  std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
  f.read(&bytes[0], std::streamsize(bytes.size()));
  ETK_CHECK(std::size_t(f.gcount()) == bytes.size() && f.peek() == std::char_traits<char>::eof(),
            what << " '" << path << "' changed while it was read");
  return bytes;
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
  const std::string text = read_regular_file(model_json, kMaxJsonBytes, "model file");
  const std::string dir = directory_of(model_json);
  return parse_tfjs_graph(text, model_json, [&](const std::string& name, std::size_t max_bytes) {
    return read_regular_file(dir + "/" + name, max_bytes, "weight shard");
  });
}

TfjsGraph parse_tfjs_graph(const std::string& json_text, const std::string& path, const ShardReader& read_shard) {
  const std::string where = "model file '" + path + "'";
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    ETK_THROW(where << " is not valid JSON: " << e.what());
  }
  TfjsGraph g;
  g.path = path;

  const json& nodes = array_member(member(root, "modelTopology", where), "node", where + " modelTopology");
  ETK_CHECK(!nodes.empty(), where << ": modelTopology.node is empty");
  try {
    for (const auto& n : nodes) {
      TfjsNode node;
      node.name = member(n, "name", where + " node").get<std::string>();
      node.op = member(n, "op", where + " node '" + node.name + "'").get<std::string>();
      if (n.contains("input"))
        for (const auto& in : array_member(n, "input", where + " node '" + node.name + "'"))
          node.inputs.push_back(strip_input(in.get<std::string>()));
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
  std::size_t model_bytes = 0;
  try {
    for (const auto& group : manifest) {
      const std::string gwhere = where + " weightsManifest group";
      // The weights first: their sizes bound what the group's shards may hold.
      std::vector<std::pair<std::string, TfjsWeight>> weights;
      std::size_t group_bytes = 0;
      for (const auto& w : array_member(group, "weights", gwhere)) {
        const std::string name = member(w, "name", where + " weight").get<std::string>();
        const std::string wwhere = where + " weight '" + name + "'";
        ETK_CHECK(!w.contains("quantization"), wwhere << ": quantized weights are not supported");
        TfjsWeight t;
        t.dtype = member(w, "dtype", wwhere).get<std::string>();
        ETK_CHECK(t.dtype == "float32" || t.dtype == "int32",
                  wwhere << ": dtype '" << t.dtype << "' is not supported (float32, int32)");
        for (const auto& d : array_member(w, "shape", wwhere)) {
          t.shape.push_back(dimension(d, wwhere));
          ETK_CHECK(t.size() <= kMaxWeightElements, wwhere << ": more than " << kMaxWeightElements << " elements");
        }
        const std::size_t bytes = 4 * static_cast<std::size_t>(t.size());
        ETK_CHECK(bytes <= kMaxModelBytes - model_bytes - group_bytes,
                  wwhere << ": the weights need more than " << kMaxModelBytes << " bytes");
        group_bytes += bytes;
        weights.emplace_back(name, std::move(t));
      }
      std::string bytes;
      for (const auto& p : array_member(group, "paths", gwhere)) {
        const std::string shard = p.get<std::string>();
        check_shard_name(shard, where);
        bytes += read_shard(shard, group_bytes - bytes.size());
        ETK_CHECK(bytes.size() <= group_bytes, where << ": the shards hold more than the " << group_bytes
                                                     << " bytes the manifest describes (at '" << shard << "')");
      }
      std::size_t offset = 0;
      for (auto& nw : weights) {
        TfjsWeight& t = nw.second;
        const std::size_t n = static_cast<std::size_t>(t.size());
        ETK_CHECK(offset + 4 * n <= bytes.size(),
                  where << " weight '" << nw.first << "': the shards hold " << bytes.size()
                        << " bytes, the manifest needs at least " << offset + 4 * n << " (truncated shard?)");
        if (t.dtype == "float32") {
          t.f.resize(n);
          if (n) std::memcpy(t.f.data(), bytes.data() + offset, 4 * n);
        } else {
          t.i.resize(n);
          if (n) std::memcpy(t.i.data(), bytes.data() + offset, 4 * n);
        }
        offset += 4 * n;
        ETK_CHECK(g.weights.emplace(nw.first, std::move(t)).second,
                  where << " weight '" << nw.first << "': appears twice in the manifest");
      }
      model_bytes += group_bytes;
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
