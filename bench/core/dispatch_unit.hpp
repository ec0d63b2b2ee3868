// The kernels of bm_dispatch, compiled twice: dispatch_plain.cpp (plain -O2, runtime
// dispatch) and dispatch_native.cpp (-O2 -march=native, direct calls). Inputs cross the
// units only as raw buffers and the types that are outside etk's ISA namespaces (views,
// packed weights, Context); parameter structs are rebuilt inside each unit.
#pragma once

#include <etk/core/context.hpp>
#include <etk/core/tensor_view.hpp>
#include <etk/core/packed_weights_f32.hpp>
#include <etk/quant/packed_weights.hpp>

#include <cstdint>
#include <vector>

namespace dispatch_bench {

constexpr std::ptrdiff_t kGemm = 1024;                      // M = N = K
constexpr std::ptrdiff_t kQuantize = std::ptrdiff_t(1) << 22;  // 4M floats
constexpr std::ptrdiff_t kGelu = std::ptrdiff_t(1) << 14;      // 16K int8 codes (L2)
constexpr std::ptrdiff_t kHeads = 12, kDim = 64, kSeq = 1024;
constexpr std::ptrdiff_t kPack = std::ptrdiff_t(1) << 20;      // 1M 4-bit codes

struct Inputs {
  std::vector<std::uint8_t> a;        // [kGemm, kGemm]
  std::vector<std::int8_t> w;         // [kGemm, kGemm]
  etk::PackedWeightsS8 packed;
  std::vector<std::int32_t> c;        // [kGemm, kGemm]
  std::vector<float> fa, fc;          // fp32 GEMM [kGemm, kGemm]
  etk::PackedWeightsF32 fw;           // fp32 GEMM weights [kGemm, kGemm]
  std::vector<float> x;               // [kQuantize]
  std::vector<std::int8_t> codes;     // [kQuantize]
  std::vector<std::int8_t> gelu_in, gelu_out;  // [kGelu]
  std::vector<float> q, k, v, o;      // [kHeads, kSeq, kDim]
  std::vector<float> theta;           // per head: keeps 10% of the keys
  std::vector<float> probs;           // [kHeads, kSeq, kSeq]
  std::vector<std::uint8_t> nibbles, packed_nibbles;  // [kPack] codes, [kPack / 2] bytes
  etk::HeadsView<const float> Q() const { return {q.data(), kHeads, kSeq, kDim}; }
  etk::HeadsView<const float> K() const { return {k.data(), kHeads, kSeq, kDim}; }
  etk::HeadsView<const float> V() const { return {v.data(), kHeads, kSeq, kDim}; }
  etk::HeadsView<float> O() { return {o.data(), kHeads, kSeq, kDim}; }
  etk::HeadsView<float> P() { return {probs.data(), kHeads, kSeq, kSeq}; }
};

// One unit's kernels; `path` names the path its calls take.
struct Unit {
  const char* (*path)();
  void (*gemm)(Inputs&, const etk::Context&);
  void (*quantize)(Inputs&);
  void (*gelu)(Inputs&);
  double (*latte)(Inputs&, const etk::Context&);  // returns the share of keys filtered
  void (*dense)(Inputs&, const etk::Context&);
  void (*gemm_f32)(Inputs&);
  void (*pack4)(Inputs&);  // pack then unpack kPack 4-bit codes
  void (*probs)(Inputs&);  // attention_probs, the dense shape
};

Unit plain_unit();
Unit native_unit();

}  // namespace dispatch_bench
