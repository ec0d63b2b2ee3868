// etk/attention/detail/dense_blocked.hpp: fast fp32 attention of one head, blocked over
// queries and keys with an online softmax (FlashAttention's recurrence on the CPU), on
// etk's own dispatched fp32 GEMM (etk/core/gemm_f32.hpp) and softmax pieces, so a plain
// -O2 unit runs AVX-512 or AVX2 code.
//
// For a block of up to bq queries (DenseBlocks below), Qs^T = (Q_b * scale * log2(e))^T is packed once
// into GEMM panels (the logits are then in base 2). Keys are visited in blocks of up to
// bk; per key block the scores are computed key-major, S^T = K_b·Qs^T ([keys,
// queries]; K_b's rows are the GEMM's A operand in place); masks set logits to -inf; per
// query column i (max S_i folded in by the GEMM's kernels when no mask applies to the
// block, else a pass over the masked tile): m' = max(m, max S_i), P_i = 2^(S_i - m'),
// l = 2^(m - m')·l + sum P_i, O_i = 2^(m - m')·O_i (column kernels of softmax_kernels.hpp); then O += P·V_b, where P
// is S^T read column-major in place as the A operand and the B operand is V_b's rows
// copied at a padded stride (see BlockedWorkspace). O is accumulated in the output rows themselves, which are scaled by 1 / l_i
// at the end (a zero row when l_i = 0: nothing visible): no transposed copy of O. Memory
// is the workspace below, independent of n_q and linear in n_k only through the padding
// bias row: never O(n_q * n_k).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "etk/attention/detail/softmax_kernels.hpp"
#include "etk/attention/params.hpp"
#include "etk/config.hpp"
#include "etk/core/cache_sizes.hpp"
#include "etk/core/detail/gemm_f32_kernels.hpp"
#include "etk/core/packed_weights_f32.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE
namespace detail {

// Block sizes, from the cache sizes of the running CPU (etk/core/cache_sizes.hpp):
//  * queries bq: Qs^T (dk x bq floats) stays in L1d for the whole key loop while K's rows
//    stream past it: bq = the largest multiple of 32 (one GEMM panel) with dk * bq * 4 B
//    <= L1d, in [32, 256] (128 at dk = 64 on a 32 KiB L1d, 192 on a 48 KiB one);
//  * keys bk: S^T (bk x ld floats) and the V_b copy (bk x ldv) stay in L2 while the two
//    GEMMs and the softmax pass sweep them: the largest multiple of 64 with bk * (ld +
//    ldv) * 4 B <= L2 / 2, in [64, 2048] (bq = 128, dv = 64: 576 on 1 MiB, 1152 on 2 MiB).
// Never more than the problem has. A result does not depend on bq at all (every element's
// arithmetic is the same); bk changes where the online softmax rescales, within the
// tolerance tests/attention/test_dense.cpp derives per key block.
struct DenseBlocks {
  std::ptrdiff_t queries = 0, keys = 0;
};

// The row stride of a blocked tile of `cols` floats: whole GEMM panels plus one cache line
// (see BlockedWorkspace).
inline std::ptrdiff_t padded_stride(std::ptrdiff_t cols) {
  return gemm_f32_layout::panels(cols) * gemm_f32_layout::kNR + 16;
}

inline DenseBlocks dense_blocks_for(const AttentionShape& sh, const cache_sizes::CacheSizes& cs) {
  const std::ptrdiff_t f = std::ptrdiff_t(sizeof(float));
  const std::ptrdiff_t bq = std::clamp<std::ptrdiff_t>(cs.l1d / (sh.dk * f) / 32 * 32, 32, 256);
  const std::ptrdiff_t q = std::min(sh.n_q, bq);
  const std::ptrdiff_t per_key = (padded_stride(q) + padded_stride(sh.dv)) * f;
  const std::ptrdiff_t bk = std::clamp<std::ptrdiff_t>(cs.l2 / 2 / per_key / 64 * 64, 64, 2048);
  DenseBlocks b;
  b.queries = q;
  b.keys = std::min(sh.n_k, bk);
  return b;
}

inline DenseBlocks dense_blocks(const AttentionShape& sh) { return dense_blocks_for(sh, cache_sizes::get()); }

// Workspace layout of blocked_attention_block, in floats (each part 16-float aligned).
// ld: the row stride of the key-major tile S^T, bq rounded up to a GEMM panel plus one
// cache line; ldv: the same for the copy of V_b's rows (dv). The extra line staggers the
// rows over the L1 sets: at a stride of 128 floats (512 B) a GEMM panel's depths map to 16
// of a 32 KiB 8-way L1's 64 sets (at 64 floats, V's own stride when dv = 64, to 16 too), so
// a 32 KiB panel competed for 8 KiB and was refetched from L2 by every tile. The copy also
// zero-pads V_b to whole panels, so any dv takes the same GEMM.
struct BlockedWorkspace {
  std::ptrdiff_t bq = 0, bk = 0, ld = 0, ldv = 0;  // query and key block sizes actually used
  std::ptrdiff_t qs = 0, s = 0, vt = 0, m = 0, l = 0, shift = 0, sum = 0, alpha = 0, bias = 0, total = 0;
};

inline BlockedWorkspace blocked_workspace(const AttentionShape& sh, bool key_padding, const DenseBlocks& b) {
  const auto up16 = [](std::ptrdiff_t n) { return (n + 15) / 16 * 16; };
  BlockedWorkspace w;
  w.bq = std::min(sh.n_q, b.queries);
  w.bk = std::min(sh.n_k, b.keys);
  w.ld = padded_stride(w.bq);
  w.ldv = padded_stride(sh.dv);
  w.qs = 0;
  w.s = w.qs + up16(gemm_f32_layout::packed_floats(sh.dk, w.bq));
  w.vt = w.s + w.bk * w.ld;
  w.m = w.vt + w.bk * w.ldv;
  w.l = w.m + w.ld;
  w.shift = w.l + w.ld;
  w.sum = w.shift + w.ld;
  w.alpha = w.sum + w.ld;
  w.bias = w.alpha + w.ld;
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

// The same mask on a key-major [cols, rows] tile at stride ld: row t holds key j0 + t
// against queries i0 .. i0 + rows; key j is visible to query i iff i >= j - (n_k - n_q).
inline void causal_mask_keys(float* st, std::ptrdiff_t ld, std::ptrdiff_t cols, std::ptrdiff_t rows,
                             std::ptrdiff_t i0, std::ptrdiff_t j0, const AttentionShape& sh) {
  for (std::ptrdiff_t t = 0; t < cols; ++t) {
    const std::ptrdiff_t first = std::min(rows, std::max<std::ptrdiff_t>(0, j0 + t - (sh.n_k - sh.n_q) - i0));
    std::fill(st + t * ld, st + t * ld + first, -std::numeric_limits<float>::infinity());
  }
}

// Attention of query block `block` (queries [block*bq, +bq)) of head h into out, blocks b.
// ws: blocked_workspace(sh, mask, b).total floats, 64-byte aligned.
inline void blocked_attention_block(const HeadsView<const float>& q,
                                    const HeadsView<const float>& k,
                                    const HeadsView<const float>& v, const HeadsView<float>& out,
                                    const AttentionShape& sh, const AttentionParams& p,
                                    const DenseBlocks& b, std::ptrdiff_t h, std::ptrdiff_t block, float* ws) {
  const BlockedWorkspace w = blocked_workspace(sh, p.key_padding.data != nullptr, b);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  const std::uint8_t* pad = key_padding_row(p, h, sh.n_k);
  const std::ptrdiff_t ld = w.ld;
  float *qs = ws + w.qs, *st = ws + w.s, *vt = ws + w.vt, *m = ws + w.m, *l = ws + w.l;
  float *shift = ws + w.shift, *sum = ws + w.sum, *alpha = ws + w.alpha, *bias = ws + w.bias;

  const std::ptrdiff_t i0 = block * w.bq;
  ETK_DEBUG_ASSERT(block >= 0 && i0 < sh.n_q);
  const std::ptrdiff_t rows = std::min(w.bq, sh.n_q - i0);
  // Keys at or beyond key_end are invisible to every query of the block.
  const std::ptrdiff_t key_end = visible_key_end(p, i0 + rows - 1, sh.n_q, sh.n_k);
  if (pad) padding_bias(pad, key_end, bias);
  const float* qh = q.data + h * q.head_stride + i0 * q.row_stride;
  const float* kh = k.data + h * k.head_stride;
  const float* vh = v.data + h * v.head_stride;
  // B operand of S^T = K_b·Qs^T: B(t, i) = Qs[i][t], i.e. Q's rows read along the depth.
  detail::gemm_f32::pack_transposed(qh, q.row_stride, sh.dk, rows, sh.scale * kLog2e, qs);
  // Columns [rows, 32 panels) of S^T are read (never stored) as P^T's panel padding: keep
  // them 0.
  if (rows % gemm_f32_layout::kNR != 0) std::fill(st, st + w.bk * ld, 0.0f);
  float* ob = out.data + h * out.head_stride + i0 * out.row_stride;
  const std::ptrdiff_t ldo = out.row_stride, ldv = w.ldv;
  // Columns [dv, 32 panels) of the V_b copy are read (never stored) as panel padding.
  if (sh.dv % gemm_f32_layout::kNR != 0) std::fill(vt, vt + w.bk * ldv, 0.0f);
  std::fill(m, m + rows, neg_inf);
  std::fill(l, l + rows, 0.0f);
  for (std::ptrdiff_t j0 = 0; j0 < key_end; j0 += w.bk) {
    const std::ptrdiff_t cols = std::min(w.bk, key_end - j0);
    const float* kb = kh + j0 * k.row_stride;
    const bool causal_cut = p.causal && causal_key_end(i0, sh.n_q, sh.n_k) < j0 + cols;
    if (pad || causal_cut) {  // masks change the maxima: a pass of their own after masking
      detail::gemm_f32::gemm_packed(kb, k.row_stride, 1, cols, sh.dk, qs, rows, st, ld, false);
      if (pad)
        for (std::ptrdiff_t t = 0; t < cols; ++t)
          if (bias[j0 + t] != 0.0f) std::fill(st + t * ld, st + t * ld + rows, neg_inf);
      if (causal_cut) causal_mask_keys(st, ld, cols, rows, i0, j0, sh);
      column_max(st, ld, cols, rows, sum);
    } else {  // the GEMM folds the column maxima in as it stores S^T: no pass of its own
      std::fill(sum, sum + rows, neg_inf);
      detail::gemm_f32::gemm_packed_column_max(kb, k.row_stride, 1, cols, sh.dk, qs, rows, st, ld, sum);
    }
    bool rescale = false;
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      const float m_new = std::max(m[r], sum[r]);
      // Nothing visible so far: shift by 0, every 2^(-inf) is exactly 0.
      shift[r] = m_new == neg_inf ? 0.0f : m_new;
      // What earlier key blocks summed is rescaled (O and l are still 0 before the first).
      alpha[r] = m[r] == neg_inf ? 1.0f : std::exp2(m[r] - shift[r]);
      l[r] *= alpha[r];
      rescale = rescale || alpha[r] != 1.0f;
      m[r] = m_new;
    }
    if (rescale)
      for (std::ptrdiff_t r = 0; r < rows; ++r)
        for (std::ptrdiff_t d = 0; d < sh.dv; ++d) ob[r * ldo + d] *= alpha[r];
    exp2_shift_columns(st, ld, cols, rows, shift, sum);
    for (std::ptrdiff_t r = 0; r < rows; ++r) l[r] += sum[r];
    // O [rows, dv] (+)= P [rows, cols] · V_b [cols, dv]; the first key block overwrites.
    for (std::ptrdiff_t t = 0; t < cols; ++t)
      std::copy(vh + (j0 + t) * v.row_stride, vh + (j0 + t) * v.row_stride + sh.dv, vt + t * ldv);
    detail::gemm_f32::gemm_rowmajor_b(st, 1, ld, rows, cols, vt, ldv, sh.dv, ob, ldo, j0 > 0);
  }
  for (std::ptrdiff_t r = 0; r < rows; ++r) {
    float* orow = ob + r * ldo;
    if (l[r] > 0.0f) {
      const float inv = 1.0f / l[r];
      for (std::ptrdiff_t d = 0; d < sh.dv; ++d) orow[d] *= inv;
    } else {  // nothing visible (or no key block ran: the row was never written)
      std::fill(orow, orow + sh.dv, 0.0f);
    }
  }
}

}  // namespace detail
ETK_END_NAMESPACE
