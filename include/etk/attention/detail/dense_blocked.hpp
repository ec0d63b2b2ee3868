// etk/attention/detail/dense_blocked.hpp: fast fp32 attention of one head, blocked over
// queries and keys with an online softmax (FlashAttention's recurrence on the CPU).
//
// For a block of up to kQueryBlock queries, keys are visited in blocks of up to
// kKeyBlock. Per key block: S = Qs·K_b^T (Eigen GEMM; Qs = Q_b * scale * log2(e), so the
// logits are in base 2), masks set logits to -inf, then per row: m' = max(m, max S_r),
// P_r = 2^(S_r - m'), l = 2^(m - m')·l + sum P_r, O_r = 2^(m - m')·O_r; finally O += P·V_b
// (Eigen GEMM). After the last key block O_r /= l_r (zero row when l_r = 0: nothing
// visible). Memory is the workspace below, independent of n_q and linear in n_k only
// through the padding bias row: never O(n_q * n_k).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "etk/attention/detail/softmax_kernels.hpp"
#include "etk/attention/params.hpp"
#include "etk/config.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE
namespace detail {

// Block sizes: large enough that the two GEMMs per block run near Eigen's peak, small
// enough that S (kQueryBlock x kKeyBlock floats, 256 KiB) stays in L2. Measured on the
// benchmark machine (seq 1024 and 4096, dim 64): 128 x 512 beat 64 x 512, 128 x 256,
// 64 x 256 and 96 x 384 by 3-10%.
constexpr std::ptrdiff_t kQueryBlock = 128;
constexpr std::ptrdiff_t kKeyBlock = 512;

// Workspace layout of blocked_attention_head, in floats.
struct BlockedWorkspace {
  std::ptrdiff_t bq = 0, bk = 0;  // query and key block sizes actually used
  std::ptrdiff_t qs = 0, s = 0, o = 0, m = 0, l = 0, bias = 0, total = 0;  // offsets
};

inline BlockedWorkspace blocked_workspace(const AttentionShape& sh, bool key_padding) {
  BlockedWorkspace w;
  w.bq = std::min(sh.n_q, kQueryBlock);
  w.bk = std::min(sh.n_k, kKeyBlock);
  w.qs = 0;
  w.s = w.qs + w.bq * sh.dk;
  w.o = w.s + w.bq * w.bk;
  w.m = w.o + w.bq * sh.dv;
  w.l = w.m + w.bq;
  w.bias = w.l + w.bq;
  w.total = w.bias + (key_padding ? sh.n_k : 0);
  return w;
}

// bias[j] = -inf where pad[j] != 0, else 0.
inline void padding_bias(const std::uint8_t* pad, std::ptrdiff_t n, float* bias) {
  for (std::ptrdiff_t j = 0; j < n; ++j)
    bias[j] = pad[j] ? -std::numeric_limits<float>::infinity() : 0.0f;
}

// Sets logits of keys a query cannot see under the causal mask to -inf: row r of the
// [rows, cols] block at stride ld holds query i0 + r against keys j0 .. j0 + cols.
inline void causal_mask_block(float* s, std::ptrdiff_t ld, std::ptrdiff_t rows,
                              std::ptrdiff_t cols, std::ptrdiff_t i0, std::ptrdiff_t j0,
                              const AttentionShape& sh) {
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    const std::ptrdiff_t vis = std::max<std::ptrdiff_t>(0, causal_key_end(i0 + r, sh.n_q, sh.n_k) - j0);
    for (std::ptrdiff_t j = vis; j < cols; ++j) s[r * ld + j] = -std::numeric_limits<float>::infinity();
  }
}

// Attention of query block `block` (queries [block*bq, +bq)) of head h into out.
// ws: blocked_workspace(sh, mask).total floats.
inline void blocked_attention_block(const HeadsView<const float>& q,
                                    const HeadsView<const float>& k,
                                    const HeadsView<const float>& v, const HeadsView<float>& out,
                                    const AttentionShape& sh, const AttentionParams& p,
                                    std::ptrdiff_t h, std::ptrdiff_t block, float* ws) {
  const BlockedWorkspace w = blocked_workspace(sh, p.key_padding.data != nullptr);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const float mult = sh.scale * kLog2e;
  const auto kh = k.head(h);
  const auto vh = v.head(h);
  const std::uint8_t* pad = key_padding_row(p, h, sh.n_k);
  const float* bias = pad ? ws + w.bias : nullptr;
  float* m = ws + w.m;
  float* l = ws + w.l;

  const std::ptrdiff_t i0 = block * w.bq;
  ETK_DEBUG_ASSERT(block >= 0 && i0 < sh.n_q);
  const std::ptrdiff_t rows = std::min(w.bq, sh.n_q - i0);
  // Keys at or beyond key_end are invisible to every query of the block.
  const std::ptrdiff_t key_end = visible_key_end(p, i0 + rows - 1, sh.n_q, sh.n_k);
  if (pad) padding_bias(pad, key_end, ws + w.bias);
  auto qs = matrix_view(ws + w.qs, rows, sh.dk, sh.dk);
  auto o = matrix_view(ws + w.o, rows, sh.dv, sh.dv);
  qs.noalias() = q.head(h).middleRows(i0, rows) * mult;
  o.setZero();
  std::fill(m, m + rows, neg_inf);
  std::fill(l, l + rows, 0.0f);
  for (std::ptrdiff_t j0 = 0; j0 < key_end; j0 += w.bk) {
    const std::ptrdiff_t cols = std::min(w.bk, key_end - j0);
    auto s = matrix_view(ws + w.s, rows, cols, w.bk);
    s.noalias() = qs * kh.middleRows(j0, cols).transpose();
    if (p.causal && causal_key_end(i0, sh.n_q, sh.n_k) < j0 + cols)
      causal_mask_block(s.data(), w.bk, rows, cols, i0, j0, sh);
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      float* sr = s.data() + r * w.bk;
      const float m_new = std::max(m[r], row_max(sr, bias ? bias + j0 : nullptr, cols));
      // Nothing visible so far: shift by 0, every 2^(-inf) is exactly 0.
      const float shift = m_new == neg_inf ? 0.0f : m_new;
      const float sum = exp2_shift_sum(sr, cols, shift, 1.0f);
      if (m[r] == neg_inf) {  // first visible block: O and l are still 0
        l[r] = sum;
      } else {
        const float alpha = std::exp2(m[r] - shift);
        l[r] = alpha * l[r] + sum;
        if (alpha != 1.0f) o.row(r) *= alpha;
      }
      m[r] = m_new;
    }
    o.noalias() += s * vh.middleRows(j0, cols);
  }
  auto out_block = out.head(h).middleRows(i0, rows);
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    if (l[r] > 0.0f)
      out_block.row(r) = o.row(r) * (1.0f / l[r]);
    else
      out_block.row(r).setZero();
  }
}

}  // namespace detail
ETK_END_NAMESPACE
