// onnx_model.hpp: loads an ONNX graph (via Debian's libonnx protobuf classes) into a
// small self-contained form the OCR runner executes: the node list in topological order
// and every constant (PP-OCRv4 stores its weights in Constant nodes) as a float or int64
// tensor. Loading validates the file and the operator set and throws ocr::model_error
// naming the problem (missing, truncated, corrupted file, unknown operator).
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ocr {

class model_error : public std::runtime_error {
 public:
  explicit model_error(const std::string& what) : std::runtime_error(what) {}
};

// The most values one tensor or activation may hold (2^28: 1 GiB of floats, 100x the
// largest tensor of PP-OCRv4). Every dimension and every partial product is at most this,
// so element counts and the int sizes the runner uses cannot overflow.
constexpr int64_t kMaxValues = int64_t(1) << 28;

// The product of `dims`, checked: throws model_error "<where>: ..." if a dimension is
// negative or the product exceeds `limit` (tested before each multiplication, so nothing
// overflows).
int64_t checked_numel(const std::vector<int64_t>& dims, int64_t limit, const std::string& where);

// A dense tensor: float data, or int64 data for shape-like constants. The loader
// guarantees numel() <= kMaxValues and that the data holds numel() values.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> f;
  std::vector<int64_t> i;
  bool is_int = false;
  int64_t numel() const { return checked_numel(shape, kMaxValues, "tensor"); }
};

struct Attribute {
  int64_t i = 0;
  float f = 0.f;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  bool has_tensor = false;
  Tensor t;
};

struct Node {
  std::string name;
  std::string op;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attrs;

  bool has(const std::string& a) const { return attrs.count(a) != 0; }
  int64_t geti(const std::string& a, int64_t def) const;
  float getf(const std::string& a, float def) const;
  std::vector<int64_t> getints(const std::string& a) const;
};

struct Graph {
  std::vector<Node> nodes;                  // non-Constant nodes, topological order
  std::map<std::string, Tensor> constants;  // outputs of Constant nodes and initializers
  std::string input;                        // the image input name
  std::string output;                       // the probabilities output name
  int64_t num_constant_values = 0;          // float values held in constants
  int num_constant_nodes = 0;
};

// The operator types the runner executes.
const std::vector<std::string>& supported_ops();

// Loads and validates `path`. Throws model_error on any problem: beyond the protobuf
// parse, every tensor's size is checked against its bytes before anything is allocated,
// each value is defined once before it is read (so the graph is acyclic), and every
// node has the inputs and outputs its operator needs.
Graph load_onnx(const std::string& path);
// Same, from bytes already in memory (`what` names the source in messages).
Graph parse_onnx(const std::string& bytes, const std::string& what);

}  // namespace ocr
