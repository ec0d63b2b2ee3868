// etk/attention/latte.hpp: LATTE, head-wise thresholded low-precision attention (fast path).
//
// Per head: Q and K are quantized to int8 (latte_params.hpp). For every query a cheap
// estimate E_ij = qH.kH (the 4 most significant bits of each code) is formed for every
// visible key with 8-bit dot instructions over pre-packed key nibbles; key j survives iff
// 256 * logit * (max_j E_ij - E_ij) <= theta_h, a cut on the logit margin that never needs
// the softmax denominator. Only survivors get an exact score (reusing the estimate:
// S = 256*E + 16*(qH.kL + qL.kH) + qL.kL, equal to the int8 dot product; the AVX-512
// VNNI path forms the same S as one direct int8 dot per survivor), the softmax and
// the P*V product, which gathers only the kept value rows. Those rows come from a copy
// of the head's value rows (the keys of the set, in set order) at a 64-byte aligned,
// 16-float padded stride: a caller's rows at any other alignment split every vector load
// across two cache lines, which doubles the time of the gather.
//
// Keys the padding mask removes are left out when a head's keys are packed (the kernel
// works on the remaining keys, in order, and maps survivors back to their rows of V), so
// a padded batch folded into the heads costs only its real keys.
//
// Execution (etk/core/context.hpp): one task per head packs its keys, then one task per
// head and block of kTaskQueries queries runs the filter, in tiles of 8 queries, with a
// per-worker tile buffer (one worker: each head packed right before its own tasks, into
// one key buffer shared by the heads). All memory comes from one ScratchLease of
// latte_attention_scratch_bytes: O(heads * Nk * dim) packed keys and values (one head's
// with one worker) plus O(Nk) per worker, never O(Nq * Nk). A query's result depends only on its head's packed keys and its own
// row, so results are bit-identical for every pool.
//
// With theta = +inf for every head and fp32 scores nothing is filtered and every score is
// the float dot product: that is dense attention, and the kernel runs dense_attention
// (bit for bit, same pool); the statistics then count every visible key as kept.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>

#include "etk/attention/dense.hpp"
#include "etk/attention/detail/latte_kernels.hpp"
#include "etk/attention/latte_params.hpp"
#include "etk/attention/softmax.hpp"
#include "etk/core/context.hpp"

ETK_BEGIN_NAMESPACE
namespace detail::latte {

constexpr int kQueryTile = 8;
constexpr std::ptrdiff_t kTaskQueries = 64;  // queries per task (a multiple of kQueryTile)

inline std::size_t align64(std::size_t bytes) { return (bytes + 63) / 64 * 64; }

// Byte layout of one head's packed keys (and, with dv > 0, its copied value rows, dvp
// floats apart) and of one worker's query tile buffers.
struct Layout {
  std::ptrdiff_t nk = 0, d = 0, G = 0, Dp = 0, nblk = 0, ldE = 0, dv = 0, dvp = 0;
  std::size_t kpack = 0, k8 = 0, kl = 0, index = 0, before = 0, values = 0, keys_bytes = 0;
  std::size_t qh = 0, qh16 = 0, ql = 0, corr = 0, E = 0, idx = 0, scores = 0, w = 0,
              tile_bytes = 0;
};

inline Layout layout(std::ptrdiff_t nk, std::ptrdiff_t d, bool padded, std::ptrdiff_t dv = 0) {
  Layout L;
  L.nk = nk;
  L.d = d;
  L.dv = dv;
  L.dvp = (dv + 15) / 16 * 16;
  L.G = (d + 3) / 4;
  L.Dp = (d + 63) / 64 * 64;
  L.nblk = (nk + 15) / 16;
  L.ldE = L.nblk * 16;
  std::size_t at = 0;
  const auto take = [&at](std::size_t bytes) {
    const std::size_t off = at;
    at += align64(bytes);
    return off;
  };
  L.kpack = take(std::size_t(L.nblk * L.G * 64));
  L.k8 = take(std::size_t(nk * L.Dp));
  L.kl = take(std::size_t(nk * L.Dp));
  L.index = take(padded ? std::size_t(nk) * 4 : 0);
  L.before = take(padded ? std::size_t(nk + 1) * 4 : 0);
  L.values = take(std::size_t(nk * L.dvp) * sizeof(float));
  L.keys_bytes = at;
  at = 0;
  L.qh = take(std::size_t(kQueryTile * 4 * L.G));
  L.qh16 = take(std::size_t(kQueryTile * L.Dp));
  L.ql = take(std::size_t(kQueryTile * L.Dp));
  L.corr = take(kQueryTile * 4);
  L.E = take(std::size_t(kQueryTile * L.ldE) * 4);
  L.idx = take(std::size_t(L.ldE + 16) * 4);
  L.scores = take(std::size_t(L.ldE + 16) * 4);
  L.w = take(std::size_t(L.ldE + 16) * 4);
  L.tile_bytes = at;
  return L;
}

// One head's packed keys (layouts: detail/latte_scalar.hpp), the key set they hold and
// the copied value rows (position c of the set at values + c * dvp; null without dv).
struct HeadKeys {
  KeySet set;
  std::uint8_t* kpack = nullptr;
  std::int8_t* k8 = nullptr;
  std::uint8_t* kl = nullptr;
  float* values = nullptr;
};

// One worker's buffers for a tile of kQueryTile queries.
struct Tile {
  std::int8_t* qh = nullptr;
  std::int8_t* qh16 = nullptr;
  std::uint8_t* ql = nullptr;
  std::int32_t* corr = nullptr;
  std::int32_t* E = nullptr;
  std::int32_t* idx = nullptr;
  std::int32_t* scores = nullptr;
  float* w = nullptr;
};

// The tile buffers at mem (L.tile_bytes, 64-byte aligned), query codes zeroed (their
// padding beyond dim must read as 0).
inline Tile tile_at(const Layout& L, unsigned char* mem) {
  Tile t;
  t.qh = reinterpret_cast<std::int8_t*>(mem + L.qh);
  t.qh16 = reinterpret_cast<std::int8_t*>(mem + L.qh16);
  t.ql = mem + L.ql;
  t.corr = reinterpret_cast<std::int32_t*>(mem + L.corr);
  t.E = reinterpret_cast<std::int32_t*>(mem + L.E);
  t.idx = reinterpret_cast<std::int32_t*>(mem + L.idx);
  t.scores = reinterpret_cast<std::int32_t*>(mem + L.scores);
  t.w = reinterpret_cast<float*>(mem + L.w);
  std::memset(mem + L.qh, 0, L.corr - L.qh);
  return t;
}

// Empty packed-key buffers at mem (L.keys_bytes): every nibble 0 (stored as 8), codes 0,
// except where packing keys [0, written) will store every byte anyway (whole key blocks,
// and the code rows when dim fills them).
inline HeadKeys keys_at(const Layout& L, unsigned char* mem, std::ptrdiff_t written = 0) {
  HeadKeys k;
  k.kpack = mem + L.kpack;
  k.k8 = reinterpret_cast<std::int8_t*>(mem + L.k8);
  k.kl = mem + L.kl;
  if (L.dv > 0) k.values = reinterpret_cast<float*>(mem + L.values);
  const std::ptrdiff_t full_blocks = 4 * L.G == L.d ? written / 16 : 0;
  const std::ptrdiff_t full_rows = L.Dp == L.d ? written : 0;
  std::memset(mem + L.kpack + full_blocks * L.G * 64, 8, std::size_t((L.nblk - full_blocks) * L.G * 64));
  std::memset(k.k8 + full_rows * L.Dp, 0, std::size_t((L.nk - full_rows) * L.Dp));
  std::memset(k.kl + full_rows * L.Dp, 0, std::size_t((L.nk - full_rows) * L.Dp));
  return k;
}

// Quantizes and packs the keys of head h the padding mask leaves into mem (L.keys_bytes).
inline HeadKeys pack_keys(const HeadsView<const float>& K, const LatteParams& params,
                          std::ptrdiff_t h, const HeadScales& sc, const Layout& L,
                          unsigned char* mem) {
  const KeySet set = key_set(params.attention, h, K.seq, reinterpret_cast<std::int32_t*>(mem + L.index),
                             reinterpret_cast<std::int32_t*>(mem + L.before));
  HeadKeys k = keys_at(L, mem, set.count);
  k.set = set;
  for (std::ptrdiff_t c = 0; c < k.set.count; ++c)
    simd::pack_key(K.row(h, k.set.original(c)), K.dim, 1.0f / sc.k, c, L.G, L.Dp, k.kpack,
                   k.k8, k.kl);
  return k;
}

// Copies the value rows of head h's key set into k.values (L.dv > 0), in set order, the
// padding columns up to L.dvp zeroed.
inline void copy_values(const HeadsView<const float>& V, std::ptrdiff_t h, const Layout& L,
                        const HeadKeys& k) {
  for (std::ptrdiff_t c = 0; c < k.set.count; ++c) {
    float* dst = k.values + c * L.dvp;
    std::memcpy(dst, V.row(h, k.set.original(c)), std::size_t(L.dv) * sizeof(float));
    std::fill(dst + L.dv, dst + L.dvp, 0.0f);
  }
}

// The tile of queries [i0, i0 + kQueryTile) of head h: packs their codes into t and forms
// the offset estimates E'_ij = qH.(kH + 8) of every visible key of the set and their row
// maximum, then calls row(i, n, r, E, emax) with n visible keys (positions [0, n) of the
// key set) and the tile row r; rows with no visible key get n = 0, E = nullptr.
template <typename RowFn>
void estimate_tile_rows(const HeadsView<const float>& Q, const LatteParams& params,
                        std::ptrdiff_t h, const HeadScales& sc, std::ptrdiff_t nk,
                        const Layout& L, const HeadKeys& keys, const Tile& t, std::ptrdiff_t i0,
                        RowFn&& row) {
  const std::ptrdiff_t nq = Q.seq, d = Q.dim;
  const int nr = int(std::min<std::ptrdiff_t>(kQueryTile, nq - i0));
  std::ptrdiff_t nmax = 0, nvalid[kQueryTile];
  std::int32_t rmax[kQueryTile];
  for (int r = 0; r < nr; ++r) {
    t.corr[r] = simd::pack_query(Q.row(h, i0 + r), d, 1.0f / sc.q, t.qh + r * 4 * L.G,
                                 t.qh16 + r * L.Dp, t.ql + r * L.Dp);
    nvalid[r] = keys.set.visible(params.attention, i0 + r, nq, nk);
    ETK_DEBUG_ASSERT(nvalid[r] >= 0 && nvalid[r] <= keys.set.count);
    nmax = std::max(nmax, nvalid[r]);
  }
  simd::estimate_tile_max(t.qh, 4 * L.G, nr, keys.kpack, L.G, (nmax + 15) / 16, t.E, L.ldE,
                          nvalid, rmax);
  for (int r = 0; r < nr; ++r)
    row(i0 + r, nvalid[r], r, nvalid[r] ? t.E + r * L.ldE : nullptr, rmax[r]);
}

// Owned buffers for one head at a time (threshold calibration and training, tests).
struct Workspace {
  ScratchArena mem;
  Layout L;
  HeadKeys keys;
  Tile tile;
  // Buffers for nk keys of dim d, no padding, zeroed; keys.set holds all nk keys.
  void resize(std::ptrdiff_t nk, std::ptrdiff_t d, bool padded = false) {
    L = layout(nk, d, padded);
    mem.reserve(L.keys_bytes + L.tile_bytes);
    auto* base = static_cast<unsigned char*>(mem.data());
    keys = keys_at(L, base);
    keys.set = KeySet{};
    keys.set.count = nk;
    tile = tile_at(L, base + L.keys_bytes);
  }
};

// Packs head h's keys into ws, then walks the queries in tiles (estimate_tile_rows),
// calling row(i, n, r, E, emax, keys) with the head's key set (position c of the set is
// key keys.original(c)). Shared by the threshold calibration and training.
template <typename RowFn>
void for_each_estimate_row(const HeadsView<const float>& Q, const HeadsView<const float>& K,
                           const LatteParams& params, std::ptrdiff_t h, const HeadScales& sc,
                           Workspace& ws, RowFn&& row) {
  ws.resize(K.seq, Q.dim, params.attention.key_padding.data != nullptr);
  ws.keys = pack_keys(K, params, h, sc, ws.L, static_cast<unsigned char*>(ws.mem.data()));
  for (std::ptrdiff_t i0 = 0; i0 < Q.seq; i0 += kQueryTile)
    estimate_tile_rows(Q, params, h, sc, K.seq, ws.L, ws.keys, ws.tile, i0,
                       [&](std::ptrdiff_t i, std::ptrdiff_t n, int r, const std::int32_t* E,
                           std::int32_t emax) { row(i, n, r, E, emax, ws.keys.set); });
}

// Softmax weights in place over n logits: w <- exp(w - max); returns their sum. Uses
// the shared vectorised softmax pieces of etk/attention/softmax.hpp (base-2 exponent).
inline float exp_shifted(float* w, std::ptrdiff_t n) {
  return detail::exp2_shift_sum(w, n, detail::row_max(w, nullptr, n), detail::kLog2e);
}

// Query i of head h (tile row r, n visible keys, estimates E, their maximum emax) into O;
// adds the keys considered and kept to the counters.
inline void attend_row(const HeadsView<const float>& Q, const HeadsView<const float>& K,
                       const HeadsView<const float>& V, const HeadsView<float>& O,
                       const LatteParams& params, std::ptrdiff_t h, const HeadScales& sc,
                       const Layout& L, const HeadKeys& keys, const Tile& t, std::ptrdiff_t i,
                       std::ptrdiff_t n, int r, const std::int32_t* E, std::int32_t emax,
                       std::int64_t& considered, std::int64_t& kept) {
  const std::ptrdiff_t d = Q.dim, dv = V.dim;
  float* o = O.row(h, i);
  if (n == 0) {
    for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] = 0.0f;
    return;
  }
  const std::int64_t cut = std::int64_t(emax) - sc.cut;
  const auto cut32 = static_cast<std::int32_t>(
      std::max<std::int64_t>(cut, std::numeric_limits<std::int32_t>::min()));
  std::int32_t* idx = t.idx;
  const std::ptrdiff_t m = simd::select(E, n, cut32, idx);
  float* w = t.w;
  // Unnormalised weights and 1 / their sum, which P*V applies to its registers before
  // the one store of the output row (no read-modify-write of o).
  float inv_sum;
  if (params.scores == LatteScores::int8_reuse) {
    std::int32_t* S = t.scores;
    simd::exact_scores(t.qh16 + r * L.Dp, t.ql + r * L.Dp, keys.k8, keys.kl, L.Dp, E, idx, m,
                       t.corr[r], S);
    inv_sum = simd::score_weights(S, m, sc.logit * detail::kLog2e, w);
  } else {
    const float* q = Q.row(h, i);
    for (std::ptrdiff_t s = 0; s < m; ++s) {
      const float* k = K.row(h, keys.set.original(idx[s]));
      float acc = 0.0f;
      for (std::ptrdiff_t c = 0; c < d; ++c) acc += q[c] * k[c];
      w[s] = acc * sc.softmax_scale;
    }
    inv_sum = 1.0f / exp_shifted(w, m);
  }
  simd::gather_pv(w, idx, m, keys.values, L.dvp, dv, o, inv_sum);
  considered += n;
  kept += m;
}

// Whether the call filters nothing and scores in fp32: dense attention.
inline bool is_dense(const LatteParams& p) {
  if (p.scores != LatteScores::fp32) return false;
  for (float t : p.theta)
    if (!std::isinf(t)) return false;
  return true;
}

// Keys visible to the queries of head h, summed over the queries (the statistics of a
// call that filters nothing).
inline std::int64_t visible_pairs(const AttentionParams& p, std::ptrdiff_t h, std::ptrdiff_t nq,
                                  std::ptrdiff_t nk) {
  const std::uint8_t* pad = detail::key_padding_row(p, h, nk);
  std::int64_t total = 0, before = 0;
  std::ptrdiff_t j = 0;
  for (std::ptrdiff_t i = 0; i < nq; ++i) {
    const std::ptrdiff_t end = detail::visible_key_end(p, i, nq, nk);
    for (; j < end; ++j) before += !(pad && pad[j]);
    total += before;
  }
  return total;
}

// Scratch of a latte_attention call, by part (bytes, each 64-byte aligned).
// One worker runs each head's tasks right after packing it, so one head's packed keys
// are live at a time and the heads share one key buffer (which stays in cache).
struct ScratchPlan {
  Layout L;
  bool one_worker = false;
  std::ptrdiff_t tasks_per_head = 0, key_buffers = 0;
  std::size_t scales = 0, head_keys = 0, keys = 0, tiles = 0, counters = 0, total = 0;
};

inline ScratchPlan scratch_plan(std::ptrdiff_t heads, std::ptrdiff_t nq, std::ptrdiff_t nk,
                                std::ptrdiff_t d, std::ptrdiff_t dv, bool padded,
                                const Context& ctx) {
  ScratchPlan s;
  s.L = layout(nk, d, padded, dv);
  s.tasks_per_head = (nq + kTaskQueries - 1) / kTaskQueries;
  s.one_worker = ctx.concurrency() == 1;
  s.key_buffers = s.one_worker ? 1 : heads;
  s.scales = 0;
  s.head_keys = align64(std::size_t(heads) * sizeof(HeadScales));
  s.keys = s.head_keys + align64(std::size_t(heads) * sizeof(HeadKeys));
  s.tiles = s.keys + std::size_t(s.key_buffers) * s.L.keys_bytes;
  s.counters = s.tiles + std::size_t(ctx.concurrency()) * s.L.tile_bytes;
  s.total = s.counters + align64(std::size_t(heads * s.tasks_per_head) * 2 * sizeof(std::int64_t));
  return s;
}

}  // namespace detail::latte

// Bytes of scratch latte_attention takes from ctx for this problem (reserve an arena to
// this, then call); 0 when params make it dense attention (see dense_attention_scratch_bytes).
inline std::size_t latte_attention_scratch_bytes(std::ptrdiff_t heads, std::ptrdiff_t nq,
                                                 std::ptrdiff_t nk, std::ptrdiff_t d,
                                                 std::ptrdiff_t dv, const LatteParams& params,
                                                 const Context& ctx = {}) {
  if (detail::latte::is_dense(params)) return 0;
  return detail::latte::scratch_plan(heads, nq, nk, d, dv,
                                     params.attention.key_padding.data != nullptr, ctx)
      .total;
}

// The same for a value dimension equal to the key dimension (dv = d), the usual case and
// this function's signature before dv was a parameter; an arena reserved to it for a wider
// V grows on the call (ScratchLease), it is not overrun.
inline std::size_t latte_attention_scratch_bytes(std::ptrdiff_t heads, std::ptrdiff_t nq,
                                                 std::ptrdiff_t nk, std::ptrdiff_t d,
                                                 const LatteParams& params,
                                                 const Context& ctx = {}) {
  return latte_attention_scratch_bytes(heads, nq, nk, d, d, params, ctx);
}

// LATTE attention over [heads, seq, dim] views: O = softmax over survivors of the
// thresholded estimate, times V. Q [H, Nq, d], K [H, Nk, d], V [H, Nk, dv], O [H, Nq, dv].
// A query with no visible key (fully masked) gets a zero output row. stats (optional)
// receives per head the keys considered (visible after the masks) and kept.
inline void latte_attention(HeadsView<const float> Q, HeadsView<const float> K,
                            HeadsView<const float> V, HeadsView<float> O,
                            const LatteParams& params, LatteStats* stats = nullptr,
                            const Context& ctx = {}) {
  detail::HeadMaxAbs maxabs;  // the check's per-head max |Q|, |K|: the scales need no second scan
  const auto sh = detail::latte::check_args(Q, K, V, O, params, &maxabs);
  detail::latte::reset_stats(stats, sh.heads);
  if (detail::latte::is_dense(params)) {
    dense_attention(Q, K, V, O, params.attention, ctx);
    if (stats)
      for (std::ptrdiff_t h = 0; h < sh.heads; ++h)
        stats->considered[std::size_t(h)] = stats->kept[std::size_t(h)] =
            detail::latte::visible_pairs(params.attention, h, sh.n_q, sh.n_k);
    return;
  }
  const auto plan = detail::latte::scratch_plan(sh.heads, sh.n_q, sh.n_k, sh.dk, sh.dv,
                                                params.attention.key_padding.data != nullptr, ctx);
  const detail::latte::Layout& L = plan.L;
  ScratchLease lease(ctx, plan.total);
  auto* mem = lease.data<unsigned char>();
  auto* scales = reinterpret_cast<detail::latte::HeadScales*>(mem + plan.scales);
  auto* heads_keys = reinterpret_cast<detail::latte::HeadKeys*>(mem + plan.head_keys);
  const auto prepare_head = [&](std::ptrdiff_t h) {
    new (scales + h) detail::latte::HeadScales(detail::latte::head_scales(params, h, Q, K, &maxabs));
    new (heads_keys + h) detail::latte::HeadKeys(
        detail::latte::pack_keys(K, params, h, scales[h], L, mem + plan.keys + std::size_t(h % plan.key_buffers) * L.keys_bytes));
    detail::latte::copy_values(V, h, L, heads_keys[h]);
  };
  auto* counters = reinterpret_cast<std::int64_t*>(mem + plan.counters);
  const std::ptrdiff_t per_head = plan.tasks_per_head;
  const auto run_task = [&](std::ptrdiff_t task, int worker) {
    const std::ptrdiff_t h = task / per_head;
    const std::ptrdiff_t first = (task % per_head) * detail::latte::kTaskQueries;
    const std::ptrdiff_t last = std::min(sh.n_q, first + detail::latte::kTaskQueries);
    const detail::latte::Tile tile =
        detail::latte::tile_at(L, mem + plan.tiles + std::size_t(worker) * L.tile_bytes);
    std::int64_t considered = 0, kept = 0;
    for (std::ptrdiff_t i0 = first; i0 < last; i0 += detail::latte::kQueryTile)
      detail::latte::estimate_tile_rows(Q, params, h, scales[h], sh.n_k, L, heads_keys[h], tile, i0,
                                [&](std::ptrdiff_t i, std::ptrdiff_t n, int r,
                                    const std::int32_t* E, std::int32_t emax) {
                                  detail::latte::attend_row(Q, K, V, O, params, h, scales[h], L,
                                                    heads_keys[h], tile, i, n, r, E, emax,
                                                    considered, kept);
                                });
    counters[2 * task] = considered;
    counters[2 * task + 1] = kept;
  };
  if (plan.one_worker) {
    // Each head's tasks right after its packing, while its packed keys and value rows are
    // still in L2 (packing every head first evicts them to L3).
    for (std::ptrdiff_t h = 0; h < sh.heads; ++h) {
      prepare_head(h);
      for (std::ptrdiff_t b = 0; b < per_head; ++b) run_task(h * per_head + b, 0);
    }
  } else {
    parallel_for(ctx, sh.heads, [&](std::ptrdiff_t h, int) { prepare_head(h); });
    parallel_for(ctx, sh.heads * per_head, run_task);
  }
  if (stats)
    for (std::ptrdiff_t task = 0; task < sh.heads * per_head; ++task) {
      stats->considered[std::size_t(task / per_head)] += counters[2 * task];
      stats->kept[std::size_t(task / per_head)] += counters[2 * task + 1];
    }
}

ETK_END_NAMESPACE
