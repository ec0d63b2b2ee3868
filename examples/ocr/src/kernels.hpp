// kernels.hpp: the float building blocks of the PP-OCRv4 runner, channels-last.
// Activations are row-major [positions, channels] (NHWC with N = 1); the convs are a
// GEMM (1x1 and, via im2col, the others) or a direct depthwise loop vectorised over
// channels. The element-wise non-linearities have one scalar definition each here so the
// fused epilogues and the technique replacements agree on what "float" means.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "etk/core/packed_weights_f32.hpp"
#include "hooks.hpp"

namespace ocr {

enum class Act { None, Relu, HardSwish, Swish, HardSigmoid };

inline float hardswish(float x) {
  float r = x + 3.f;
  r = r < 0.f ? 0.f : (r > 6.f ? 6.f : r);
  return x * r / 6.f;
}
inline float hardsigmoid(float x, float alpha, float beta) {
  float r = alpha * x + beta;
  return r < 0.f ? 0.f : (r > 1.f ? 1.f : r);
}
inline float swish(float x) { return x / (1.f + std::exp(-x)); }

// Float default of every Nonlinearity kind, in place over n values.
void nonlinearity_default(Nonlinearity kind, float* x, int64_t n);

// A layer's weights w [out, k] for etk::gemm_f32, packed once per block of kDepthBlock
// input channels. Each output is the bias plus the blocks' partial sums, each summed in
// one FMA chain of at most kDepthBlock terms: the im2col convs have k up to 2880, and a
// single chain over it gave 1.1e-4 against onnxruntime's probabilities (blocked: 3e-5).
constexpr int kDepthBlock = 128;
struct DepthBlockedWeights {
  std::vector<etk::PackedWeightsF32> blocks;  // block b: input channels [b*128, b*128+128)
};
DepthBlockedWeights pack_depth_blocks(const float* w, int out, int k, int ldw);

// y[n, out] = x[n, k] * w^T + bias (a.w is not read), blocked as above.
void gemm_prepacked(const GemmArgs& a, const DepthBlockedWeights& w);

// The same with a.w packed for this call (the hooks' float default).
void gemm_default(const GemmArgs& a);

// Depthwise conv, channels-last. x [H, W, C], wt [kh*kw, C] (tap-major), y [Ho, Wo, C].
void depthwise_conv(const float* x, int H, int W, int C, const float* wt, const float* bias,
                    int kh, int kw, int sh, int sw, int ph, int pw, float* y, int Ho, int Wo);

// im2col for a group-1 conv, channels-last input x [H, W, C]; col [Ho*Wo, C*kh*kw] in
// the weight order [c][ky][kx] (zero padding).
void im2col(const float* x, int H, int W, int C, int kh, int kw, int sh, int sw, int ph, int pw,
            int Ho, int Wo, float* col);

// LayerNorm of each row of x [rows, dim] into y (may alias x), with the rsqrt step
// optionally replaced.
void layer_norm(const float* x, int rows, int dim, const float* gamma, const float* beta, float eps,
                float* y, const NonlinearityFn* rsqrt_hook, std::vector<float>& scratch);

// Row softmax in place over [rows, cols], the exp optionally replaced.
void softmax_rows(float* x, int rows, int cols, const NonlinearityFn* exp_hook);

}  // namespace ocr
