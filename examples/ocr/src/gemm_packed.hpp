// gemm_packed.hpp: the runner's float GEMM, y[n, out] = x[n, k] * w[out, k]^T + bias,
// with the weights packed once at load into panels of 32 output channels ([k][32] per
// panel, zero-padded) so the AVX-512 micro-kernel (6 rows x 32 columns of accumulators)
// streams them contiguously. Without AVX-512 it falls back to Eigen (gemm_default).
#pragma once

#include <vector>

#include "hooks.hpp"

namespace ocr {

constexpr int kPanel = 32;

// Packs w [out, k] (row-major, leading dimension ldw) into panels.
std::vector<float> pack_weights(const float* w, int out, int k, int ldw);

// y = x * w^T + bias using the packed weights (a.w is not read).
void gemm_packed(const GemmArgs& a, const float* packed);

}  // namespace ocr
