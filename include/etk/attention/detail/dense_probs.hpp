// etk/attention/detail/dense_probs.hpp: attention of one head that materialises the
// probability matrix, for callers that need it (token pruning's importance scores).
//
// Per block of up to kQueryBlock queries: P_b = Qs·K^T straight into the caller's probs
// rows (Qs = Q_b * scale * log2(e)), masks set to -inf, a base-2 softmax per row (the
// shared etk/attention/softmax.hpp), then optionally O_b = P_b·V (Eigen GEMM). Keys beyond the
// causal horizon of the whole block are neither multiplied nor read: their
// probabilities are written as 0. Workspace: Qs and the padding bias row.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>

#include "etk/attention/detail/dense_blocked.hpp"
#include "etk/attention/softmax.hpp"
#include "etk/attention/params.hpp"
#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE
namespace detail {

inline std::ptrdiff_t probs_workspace_floats(const AttentionShape& sh, bool key_padding) {
  return std::min(sh.n_q, kQueryBlock) * sh.dk + (key_padding ? sh.n_k : 0);
}

// Probabilities of query block `block` (queries [block*kQueryBlock, +kQueryBlock)) of
// head h into probs and, unless out is null, the output into *out.
inline void probs_attention_block(const HeadsView<const float>& q,
                                  const HeadsView<const float>& k,
                                  const HeadsView<const float>* v, const HeadsView<float>& probs,
                                  const HeadsView<float>* out, const AttentionShape& sh,
                                  const AttentionParams& p, std::ptrdiff_t h,
                                  std::ptrdiff_t block, float* ws) {
  const std::ptrdiff_t bq = std::min(sh.n_q, kQueryBlock);
  const std::ptrdiff_t i0 = block * bq;
  ETK_DEBUG_ASSERT(block >= 0 && i0 < sh.n_q);
  const std::ptrdiff_t rows = std::min(bq, sh.n_q - i0);
  const std::ptrdiff_t key_end = visible_key_end(p, i0 + rows - 1, sh.n_q, sh.n_k);
  const std::uint8_t* pad = key_padding_row(p, h, sh.n_k);
  float* bias = pad ? ws + bq * sh.dk : nullptr;
  if (pad) padding_bias(pad, key_end, bias);
  auto qs = matrix_view(ws, rows, sh.dk, sh.dk);
  qs.noalias() = q.head(h).middleRows(i0, rows) * (sh.scale * kLog2e);
  auto pb = probs.head(h).middleRows(i0, rows);
  pb.rightCols(sh.n_k - key_end).setZero();
  if (key_end > 0) {
    auto s = pb.leftCols(key_end);
    s.noalias() = qs * k.head(h).topRows(key_end).transpose();
    if (p.causal) causal_mask_block(s.data(), probs.row_stride, rows, key_end, i0, 0, sh);
    for (std::ptrdiff_t r = 0; r < rows; ++r)
      softmax_row_base2(s.data() + r * probs.row_stride, key_end, 1.0f, bias);
  }
  if (out) {
    auto ob = out->head(h).middleRows(i0, rows);
    if (key_end > 0)
      ob.noalias() = pb.leftCols(key_end) * v->head(h).topRows(key_end);
    else
      ob.setZero();
  }
}

}  // namespace detail
ETK_END_NAMESPACE
