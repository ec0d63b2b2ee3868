// etk/attention/detail/dense_probs.hpp: attention of one head that materialises the
// probability matrix, for callers that need it (token pruning's importance scores), on
// etk's dispatched fp32 GEMM (etk/core/gemm_f32.hpp), so a plain -O2 unit runs AVX-512 or
// AVX2 code.
//
// Per block of up to bq queries (DenseBlocks, etk/attention/detail/dense_blocked.hpp):
// P_b = Q_b·Ks^T straight into the caller's probs rows, Q_b read in place and Ks^T = (K *
// scale * log2(e))^T packed into GEMM panels a key block (bk keys) at a time; masks set to
// -inf; a base-2 softmax per row (the shared etk/attention/softmax.hpp); then optionally O_b = P_b·V, P_b read in place and V
// packed one 32-column panel of one key block at a time (the GEMM accumulates over key
// blocks in one FMA chain per element). Keys beyond the causal horizon of the whole block
// are neither multiplied nor read: their probabilities are written as 0. Workspace: one
// packed key block of K^T or of a V panel, and the padding bias row.
#pragma once

#include <algorithm>
#include <cstddef>

#include "etk/attention/detail/dense_blocked.hpp"
#include "etk/attention/softmax.hpp"
#include "etk/attention/params.hpp"
#include "etk/config.hpp"
#include "etk/core/detail/gemm_f32_kernels.hpp"
#include "etk/core/packed_weights_f32.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE
namespace detail {

// Floats of the packed operand buffer: a key block of K^T, or of one 32-column V panel.
// The block sizes change no result here (each element is one FMA chain over dk, each
// row's softmax one pass, P·V one chain over all keys).
inline std::ptrdiff_t probs_pack_floats(const AttentionShape& sh, const DenseBlocks& b) {
  const std::ptrdiff_t bk = std::min(sh.n_k, b.keys);
  return std::max(gemm_f32_layout::packed_floats(sh.dk, bk), bk * gemm_f32_layout::kNR);
}

inline std::ptrdiff_t probs_workspace_floats(const AttentionShape& sh, bool key_padding, const DenseBlocks& b) {
  return probs_pack_floats(sh, b) + (key_padding ? sh.n_k : 0);
}

// Probabilities of query block `block` (queries [block*bq, +bq)) of head h into probs
// and, unless out is null, the output into *out; ws: probs_workspace_floats floats.
inline void probs_attention_block(const HeadsView<const float>& q,
                                  const HeadsView<const float>& k,
                                  const HeadsView<const float>* v, const HeadsView<float>& probs,
                                  const HeadsView<float>* out, const AttentionShape& sh,
                                  const AttentionParams& p, const DenseBlocks& b, std::ptrdiff_t h,
                                  std::ptrdiff_t block, float* ws) {
  const std::ptrdiff_t bq = std::min(sh.n_q, b.queries), bk = std::min(sh.n_k, b.keys);
  const std::ptrdiff_t i0 = block * bq;
  ETK_DEBUG_ASSERT(block >= 0 && i0 < sh.n_q);
  const std::ptrdiff_t rows = std::min(bq, sh.n_q - i0);
  const std::ptrdiff_t key_end = visible_key_end(p, i0 + rows - 1, sh.n_q, sh.n_k);
  const std::uint8_t* pad = key_padding_row(p, h, sh.n_k);
  float* const packed = ws;
  float* const bias = pad ? ws + probs_pack_floats(sh, b) : nullptr;
  if (pad) padding_bias(pad, key_end, bias);
  const float* qh = q.data + h * q.head_stride + i0 * q.row_stride;
  const float* kh = k.data + h * k.head_stride;
  float* pb = probs.data + h * probs.head_stride + i0 * probs.row_stride;
  const std::ptrdiff_t ldp = probs.row_stride;
  for (std::ptrdiff_t r = 0; r < rows; ++r) std::fill(pb + r * ldp + key_end, pb + r * ldp + sh.n_k, 0.0f);
  for (std::ptrdiff_t j0 = 0; j0 < key_end; j0 += bk) {
    const std::ptrdiff_t cols = std::min(bk, key_end - j0);
    // B(t, j) = K[j0 + j][t] * scale * log2(e): K's rows read along the depth.
    gemm_f32_layout::pack_panels(kh + j0 * k.row_stride, 1, k.row_stride, sh.dk, cols, sh.scale * kLog2e, packed);
    detail::gemm_f32::gemm_packed(qh, q.row_stride, 1, rows, sh.dk, packed, cols, pb + j0, ldp, false);
  }
  if (key_end > 0) {
    if (p.causal) causal_mask_block(pb, ldp, rows, key_end, i0, 0, sh);
    for (std::ptrdiff_t r = 0; r < rows; ++r) softmax_row_base2(pb + r * ldp, key_end, 1.0f, bias);
  }
  if (!out) return;
  float* ob = out->data + h * out->head_stride + i0 * out->row_stride;
  if (key_end == 0) {
    for (std::ptrdiff_t r = 0; r < rows; ++r) std::fill(ob + r * out->row_stride, ob + r * out->row_stride + sh.dv, 0.0f);
    return;
  }
  const float* vh = v->data + h * v->head_stride;
  for (std::ptrdiff_t c0 = 0; c0 < sh.dv; c0 += gemm_f32_layout::kNR) {
    const std::ptrdiff_t width = std::min(gemm_f32_layout::kNR, sh.dv - c0);
    for (std::ptrdiff_t j0 = 0; j0 < key_end; j0 += bk) {
      const std::ptrdiff_t depth = std::min(bk, key_end - j0);
      gemm_f32_layout::pack_panels(vh + j0 * v->row_stride + c0, v->row_stride, 1, depth, width, 1.0f, packed);
      detail::gemm_f32::gemm_packed(pb + j0, ldp, 1, rows, depth, packed, width, ob + c0, out->row_stride, j0 > 0);
    }
  }
}

}  // namespace detail
ETK_END_NAMESPACE
