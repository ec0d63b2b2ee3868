// etk/attention/decode.hpp: one decode step (1..64 queries) against a KVCache, LATTE or
// dense, grouped-query, split over the cache's pages with a deterministic merge.
//
// Queries Q [q_heads, nq, dim] are the last nq positions of the cache (causal); query head
// hq reads KV head hq / (q_heads / kv_heads). The rows (query head of a group, query) of a
// KV head share every pass over its planes. Work is (KV head, page) tasks:
//  * LATTE: pass A streams the page's MS4B plane once for all rows of the group, storing
//    each row's estimates E = qh . (MS4B + 8), F = ql . (MS4B + 8) (the query code split
//    as 16 qh + ql, so 16 E + F is the MS4B part of the exact score) and its page maximum
//    (in logit units, decode_params.hpp); the row maxima over pages give each row's cut;
//    pass B selects the survivors and reads only their LS4B rows and value rows.
//  * dense: one pass computing every visible key's exact int8 score from both planes.
// Each task leaves a partial softmax (max, sum, weighted value sum) per row; rows are
// merged over pages in page order (flash-decoding). Task boundaries are pages, fixed by
// the cache, so results are bit-identical for every thread count; with theta = +inf LATTE
// keeps every key and its result equals dense_decode's bit for bit (theta = +inf for every
// head skips pass A: the step is then dense decode).
// Scratch (ScratchLease on ctx): O(pages * rows * page_tokens) int32 estimates (E, F) plus
// O(pages * rows * value_dim) partials, rows <= kTileRows per pass.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "etk/attention/decode_params.hpp"
#include "etk/attention/detail/decode_kernels.hpp"
#include "etk/attention/detail/softmax_kernels.hpp"
#include "etk/core/context.hpp"

ETK_BEGIN_NAMESPACE
namespace detail::decode {

// Rows (query heads of a group x queries) sharing one pass over a KV head's planes (a
// whole group at least: check_args bounds the group by kMaxGroup).
constexpr std::ptrdiff_t kTileRows = kMaxGroup;

struct Plan {
  Shape s;
  std::ptrdiff_t L = 0, ldq = 0, P = 0;
  std::ptrdiff_t page0 = 0, pages = 0;   // pages [page0, page0 + pages) hold visible keys
  std::ptrdiff_t tile_queries = 1, rows = 0;  // queries per pass, rows per pass
  std::ptrdiff_t tasks = 0;              // kv_heads * pages
  std::ptrdiff_t workers = 1;
};

inline Plan make_plan(const KVCache& cache, const Shape& s, const Context& ctx) {
  Plan p;
  p.s = s;
  p.L = cache.lines();
  p.ldq = 8 * p.L;
  p.P = cache.page_tokens();
  p.page0 = visible_keys(cache, s, 0).first / p.P;
  p.pages = (s.length - 1) / p.P + 1 - p.page0;
  p.tile_queries = std::max<std::ptrdiff_t>(1, std::min(s.nq, kTileRows / s.group));
  p.rows = p.tile_queries * s.group;
  p.tasks = s.kv_heads * p.pages;
  p.workers = ctx.concurrency();
  return p;
}

// Scratch layout (bytes, each part 64-byte aligned).
struct Scratch {
  std::int8_t* q8 = nullptr;  // arranged int8 codes, [q_heads * nq][ldq]
  std::int8_t* qh = nullptr;  // arranged MS4B nibbles (code >> 4), same shape
  std::int8_t* ql = nullptr;  // arranged LS4B nibbles (code & 15): code = 16 qh + ql
  float* qs = nullptr;        // query scales [q_heads * nq]
  std::int32_t* sum_q = nullptr;   // sum of codes
  std::int32_t* corr = nullptr;    // 8 * sum of MS4B nibbles (the estimate's offset)
  std::int32_t* E = nullptr;       // [tasks][rows][P] offset estimates qh . (MS4B + 8)
  std::int32_t* F = nullptr;       // [tasks][rows][P] ql . (MS4B + 8): 16 E + F = q8 . (MS4B + 8)
  float* pmax = nullptr;           // [tasks][rows] page maxima of the estimate
  float* part = nullptr;           // [tasks][rows][dv + 2]: max, sum, o
  std::int64_t* kept = nullptr;    // [tasks][rows]
  std::int32_t* work = nullptr;    // per worker: work_stride(p) int32 (layout at attend_task)
  std::size_t bytes = 0;
};

// Per worker: sel, hi and w [rows][P + 16], then lo [P + 16].
inline std::ptrdiff_t work_stride(const Plan& p) { return (1 + 3 * p.rows) * (p.P + 16); }

inline Scratch layout_scratch(const Plan& p, bool latte, char* base) {
  Scratch sc;
  std::size_t off = 0;
  const auto take = [&](std::size_t n) {
    char* at = base ? base + off : nullptr;
    off += (n + 63) / 64 * 64;
    return at;
  };
  const auto nrow = std::size_t(p.s.q_heads * p.s.nq);
  const auto tr = std::size_t(p.tasks * p.rows);
  sc.q8 = reinterpret_cast<std::int8_t*>(take(nrow * std::size_t(p.ldq)));
  sc.qh = reinterpret_cast<std::int8_t*>(take(nrow * std::size_t(p.ldq)));
  sc.ql = reinterpret_cast<std::int8_t*>(take(nrow * std::size_t(p.ldq)));
  sc.qs = reinterpret_cast<float*>(take(nrow * 4));
  sc.sum_q = reinterpret_cast<std::int32_t*>(take(nrow * 4));
  sc.corr = reinterpret_cast<std::int32_t*>(take(nrow * 4));
  if (latte) {
    sc.E = reinterpret_cast<std::int32_t*>(take(tr * std::size_t(p.P) * 4));
    sc.F = reinterpret_cast<std::int32_t*>(take(tr * std::size_t(p.P) * 4));
    sc.pmax = reinterpret_cast<float*>(take(tr * 4));
  }
  sc.part = reinterpret_cast<float*>(take(tr * std::size_t(p.s.dv + 2) * 4));
  sc.kept = reinterpret_cast<std::int64_t*>(take(tr * 8));
  sc.work = reinterpret_cast<std::int32_t*>(take(std::size_t(p.workers * work_stride(p)) * 4));
  sc.bytes = off;
  return sc;
}


// Quantizes and arranges every query row.
inline void prepare_queries(const HeadsView<const float>& Q, const Plan& p, const Scratch& sc) {
  std::vector<std::int8_t> c(std::size_t(p.s.dim)), h(std::size_t(p.s.dim)), l(std::size_t(p.s.dim));
  for (std::ptrdiff_t hq = 0; hq < p.s.q_heads; ++hq)
    for (std::ptrdiff_t i = 0; i < p.s.nq; ++i) {
      const std::ptrdiff_t r = ((hq / p.s.group) * p.s.nq + i) * p.s.group + hq % p.s.group;
      const float* q = Q.row(hq, i);
      const float s = query_scale(q, p.s.dim);
      std::int32_t sq = 0, sh = 0;
      for (std::ptrdiff_t t = 0; t < p.s.dim; ++t) {
        c[std::size_t(t)] = detail::latte::quantize(q[t], 1.0f / s);
        h[std::size_t(t)] = std::int8_t(detail::latte::nibble_hi(c[std::size_t(t)]));
        l[std::size_t(t)] = std::int8_t(detail::latte::nibble_lo(c[std::size_t(t)]));
        sq += c[std::size_t(t)];
        sh += h[std::size_t(t)];
      }
      arrange(c.data(), p.s.dim, p.L, sc.q8 + r * p.ldq);
      arrange(h.data(), p.s.dim, p.L, sc.qh + r * p.ldq);
      arrange(l.data(), p.s.dim, p.L, sc.ql + r * p.ldq);
      sc.qs[r] = s;
      sc.sum_q[r] = sq;
      sc.corr[r] = 8 * sh;
    }
}

// The rows of one pass: KV head g, queries [i0, i0 + nqt); row r is query i0 + r / group
// of query head g * group + r % group.
struct Tile {
  std::ptrdiff_t g, i0, nqt, nrows;
  std::ptrdiff_t hq(const Plan& p, std::ptrdiff_t r) const { return g * p.s.group + r % p.s.group; }
  std::ptrdiff_t query(const Plan& p, std::ptrdiff_t r) const { return i0 + r / p.s.group; }
  // Query rows are stored in tile order (KV head, query, head of the group).
  std::ptrdiff_t qrow(const Plan& p, std::ptrdiff_t r) const { return (g * p.s.nq + i0) * p.s.group + r; }
};

// Row r's visible keys inside page `page` (absolute), page-local [a, b) (a >= b: none).
inline KeyRange page_range(const KVCache& cache, const Plan& p, const Tile& t, std::ptrdiff_t r,
                           std::ptrdiff_t page) {
  const KeyRange v = visible_keys(cache, p.s, t.query(p, r));
  const std::ptrdiff_t base = page * p.P;
  return {std::max(v.first, base) - base, std::min(v.end, base + p.P) - base};
}

// Pass A of one task: offset estimates of the tile's rows over the page's visible blocks,
// and each row's page maximum in logit units (-inf where it sees no key of the page).
inline void estimate_task(const KVCache& cache, const Plan& p, const Scratch& sc, const Tile& t,
                          std::ptrdiff_t task, std::ptrdiff_t page) {
  const KVCache::PageView pv = cache.page(page, t.g);
  std::int32_t* E = sc.E + task * p.rows * p.P;
  float* pmax = sc.pmax + task * p.rows;
  std::ptrdiff_t a = p.P, b = 0;
  for (std::ptrdiff_t r = 0; r < t.nrows; ++r) {
    const KeyRange k = page_range(cache, p, t, r, page);
    if (k.first < k.end) a = std::min(a, k.first), b = std::max(b, k.end);
  }
  // The tile's rows are consecutive in sc.qh and sc.ql: one block_dots call serves all of
  // them; the second (on the line just loaded) gives survivors the MS4B part of their exact
  // score, so pass B never re-reads the MS4B plane.
  std::int32_t* F = sc.F + task * p.rows * p.P;
  const std::int8_t* hrows = sc.qh + t.qrow(p, 0) * p.ldq;
  const std::int8_t* lrows = sc.ql + t.qrow(p, 0) * p.ldq;
  for (std::ptrdiff_t blk = a / 16; a < b && blk * 16 < b; ++blk) {
    const std::uint8_t* line = pv.hi + blk * cache.hi_block_bytes();
    simd::block_dots(line, p.L, hrows, p.ldq, int(t.nrows), 8, E + blk * 16, p.P);
    simd::block_dots(line, p.L, lrows, p.ldq, int(t.nrows), 15, F + blk * 16, p.P);
  }
  for (std::ptrdiff_t r = 0; r < t.nrows; ++r) {
    const KeyRange k = page_range(cache, p, t, r, page);
    const std::ptrdiff_t qr = t.qrow(p, r);
    float m = -std::numeric_limits<float>::infinity();
    for (std::ptrdiff_t j = k.first; j < k.end;) {
      const std::ptrdiff_t blk = j / 16, stop = std::min(k.end, blk * 16 + 16);
      std::int32_t e = std::numeric_limits<std::int32_t>::min();
      for (; j < stop; ++j) e = std::max(e, E[r * p.P + j]);
      m = std::max(m, float(e - sc.corr[qr]) * estimate_unit(sc.qs[qr], pv.key_scale[blk], p.s.scale));
    }
    pmax[r] = m;
  }
}

// Softmax partial of one row from G - off, the exact int8 scores of its m keys idx:
// logits into w, part[0] = max, part[1] = sum of weights.
inline void scores_softmax(const KVCache::PageView& pv, const Plan& p, const Scratch& sc,
                           std::ptrdiff_t qr, const std::int32_t* idx, std::ptrdiff_t m,
                           const std::int32_t* G, std::int32_t off, float* w, float* part) {
  for (std::ptrdiff_t s = 0; s < m; ++s)
    w[s] = float(G[s] - off) * logit_unit(sc.qs[qr], pv.key_scale[idx[s] / 16], p.s.scale);
  part[0] = detail::row_max(w, nullptr, m);
  part[1] = detail::exp2_shift_sum(w, m, part[0], detail::kLog2e);
}

// The same from the keys' MS4B dots hi (lo scratch): their LS4B dots complete the scores
// 16 * hi + lo = q . (code + 128).
inline void row_softmax(const KVCache::PageView& pv, const Plan& p, const Scratch& sc,
                        std::ptrdiff_t qr, const std::int32_t* idx, std::ptrdiff_t m,
                        const std::int32_t* hi, std::int32_t* lo, float* w, float* part) {
  simd::lo_dots(pv.lo, p.L, idx, m, sc.q8 + qr * p.ldq, lo);
  for (std::ptrdiff_t s = 0; s < m; ++s) lo[s] += 16 * hi[s];
  scores_softmax(pv, p, sc, qr, idx, m, lo, 128 * sc.sum_q[qr], w, part);
}

// Requests the LS4B and value rows of page keys idx[0..n) into L2.
inline void prefetch_rows(const KVCache::PageView& pv, const KVCache& cache, const std::int32_t* idx,
                          std::ptrdiff_t n) {
#if defined(ETK_X86)
  const std::ptrdiff_t vb = cache.value_row_bytes(), lb = cache.lo_row_bytes();
  for (std::ptrdiff_t s = 0; s < n; ++s) {
    const char* lo = reinterpret_cast<const char*>(pv.lo + std::ptrdiff_t(idx[s]) * lb);
    for (std::ptrdiff_t b = 0; b < lb; b += 64) _mm_prefetch(lo + b, _MM_HINT_T1);
    const char* v = reinterpret_cast<const char*>(pv.values + std::ptrdiff_t(idx[s]) * vb);
    for (std::ptrdiff_t b = 0; b < vb; b += 64) _mm_prefetch(v + b, _MM_HINT_T1);
  }
#else
  (void)pv, (void)cache, (void)idx, (void)n;
#endif
}

// Pass B of one task: survivors (LATTE, given each row's cut) or every visible key
// (dense), their exact scores, softmax partials and weighted value sums. Rows that see and
// keep the same keys share each value row read (weighted_values_rows, same bits per row);
// other rows go one by one. (A value pass over the union of a group's survivors, rows
// weighting keys they did not keep by 0, measured 1.1-1.2x slower on the decode workload:
// there the heads of a group share few survivors (at 90% filtered the union holds 0.34 of
// the keys, 1.2 rows per union key), so it multiplies the value FMAs by ~3.4, while DRAM
// already sees each row once: the rows of a group run back to back over one page, whose
// LS4B and value rows (160 KiB at dim 128, fp16) stay in L2. docs/performance.md.)
inline void attend_task(const KVCache& cache, const Plan& p, const Scratch& sc, const Tile& t,
                        std::ptrdiff_t task, std::ptrdiff_t page, const float* cutoff,
                        int worker) {
  const KVCache::PageView pv = cache.page(page, t.g);
  const std::ptrdiff_t W = p.P + 16, dv = p.s.dv;
  std::int32_t* sel = sc.work + worker * work_stride(p);  // [rows][W]: each row's keys
  std::int32_t* hi = sel + p.rows * W;                     // [rows][W]
  float* w = reinterpret_cast<float*>(hi + p.rows * W);    // [rows][W]
  std::int32_t* lo = reinterpret_cast<std::int32_t*>(w + p.rows * W);
  float* part0 = sc.part + task * p.rows * (dv + 2);
  const auto empty = [&](std::ptrdiff_t r) {
    part0[r * (dv + 2)] = -std::numeric_limits<float>::infinity();
    part0[r * (dv + 2) + 1] = 0.0f;
    sc.kept[task * p.rows + r] = 0;
  };
  // Row r's survivors of page range k into idx.
  const auto select_row = [&](std::ptrdiff_t r, const KeyRange& k, std::int32_t* idx) {
    const std::ptrdiff_t qr = t.qrow(p, r);
    const std::int32_t* E = sc.E + (task * p.rows + r) * p.P;
    std::ptrdiff_t m = 0;
    for (std::ptrdiff_t blk = k.first / 16; blk * 16 < k.end; ++blk) {
      const std::ptrdiff_t b0 = blk * 16;
      m += simd::select_block(E + b0, int(std::max(k.first, b0) - b0), int(std::min(k.end, b0 + 16) - b0),
                              sc.corr[qr], estimate_unit(sc.qs[qr], pv.key_scale[blk], p.s.scale),
                              cutoff[r], std::int32_t(b0), idx + m);
    }
    return m;
  };
  KeyRange range[kTileRows];
  std::ptrdiff_t count[kTileRows];
  bool shared = true;
  for (std::ptrdiff_t r = 0; r < t.nrows; ++r) {
    range[r] = page_range(cache, p, t, r, page);
    const KeyRange& k = range[r];
    count[r] = k.first < k.end ? (cutoff ? select_row(r, k, sel + r * W) : k.end - k.first) : 0;
    shared = shared && k.first == range[0].first && k.end == range[0].end && k.first < k.end &&
             count[r] == k.end - k.first;
  }
  if (shared) {
    // Every row sees and keeps the same keys of this page (dense, or LATTE keeping the
    // whole page): the exact scores of all rows from both planes in one block pass.
    const KeyRange k0 = range[0];
    const std::ptrdiff_t m = k0.end - k0.first;
    std::int32_t* idx = sel;
    for (std::ptrdiff_t s = 0; s < m; ++s) idx[s] = std::int32_t(k0.first + s);
    const std::int8_t* qrows = sc.q8 + t.qrow(p, 0) * p.ldq;
    for (std::ptrdiff_t blk = k0.first / 16; blk * 16 < k0.end; ++blk) {
      const std::uint8_t* line = pv.hi + blk * cache.hi_block_bytes();
      const std::uint8_t* lrows = pv.lo + blk * 16 * cache.lo_row_bytes();
      const std::ptrdiff_t b0 = blk * 16;
      if (b0 >= k0.first) {  // straight into hi (a partial last block ends in the slack)
        simd::block_scores(line, lrows, p.L, qrows, p.ldq, int(t.nrows), hi + (b0 - k0.first), W);
        continue;
      }
      alignas(64) std::int32_t d16[kTileRows * 16];
      simd::block_scores(line, lrows, p.L, qrows, p.ldq, int(t.nrows), d16, 16);
      for (std::ptrdiff_t r = 0; r < t.nrows; ++r)
        for (std::ptrdiff_t j = k0.first; j < std::min(k0.end, b0 + 16); ++j)
          hi[r * W + j - k0.first] = d16[r * 16 + j - b0];
    }
    for (std::ptrdiff_t r = 0; r < t.nrows; ++r) {
      const std::ptrdiff_t qr = t.qrow(p, r);
      scores_softmax(pv, p, sc, qr, idx, m, hi + r * W, 128 * sc.sum_q[qr], w + r * W, part0 + r * (dv + 2));
      sc.kept[task * p.rows + r] = m;
    }
    simd::weighted_values_rows(cache.value_type(), w, W, int(t.nrows), idx, m, pv.values,
                               cache.value_row_bytes(), pv.value_scale, dv, part0 + 2, dv + 2);
    return;
  }
  if (!cutoff) {  // dense rows seeing different ranges (causal queries): row by row
    for (std::ptrdiff_t r = 0; r < t.nrows; ++r) {
      const KeyRange& k = range[r];
      const std::ptrdiff_t m = count[r];
      if (m == 0) {
        empty(r);
        continue;
      }
      const std::ptrdiff_t qr = t.qrow(p, r);
      std::int32_t* idx = sel;
      for (std::ptrdiff_t s = 0; s < m; ++s) idx[s] = std::int32_t(k.first + s);
      for (std::ptrdiff_t blk = k.first / 16; blk * 16 < k.end; ++blk) {
        alignas(64) std::int32_t d16[16];
        simd::block_dots(pv.hi + blk * cache.hi_block_bytes(), p.L, sc.q8 + qr * p.ldq, p.ldq, 1, 128, d16, 16);
        for (std::ptrdiff_t j = std::max(k.first, blk * 16); j < std::min(k.end, blk * 16 + 16); ++j)
          hi[j - k.first] = d16[j - blk * 16];
      }
      sc.kept[task * p.rows + r] = m;
      float* part = part0 + r * (dv + 2);
      row_softmax(pv, p, sc, qr, idx, m, hi, lo, w, part);
      simd::weighted_values(cache.value_type(), w, idx, m, pv.values, cache.value_row_bytes(),
                            pv.value_scale, dv, part + 2);
    }
    return;
  }
  // LATTE: row by row over its own survivors, whose LS4B and value rows are requested
  // first (the fetches overlap the scoring of the rows before).
  for (std::ptrdiff_t r = 0; r < t.nrows; ++r) prefetch_rows(pv, cache, sel + r * W, count[r]);
  for (std::ptrdiff_t r = 0; r < t.nrows; ++r) {
    const std::ptrdiff_t m = count[r];
    if (m == 0) {
      empty(r);
      continue;
    }
    const std::int32_t* idx = sel + r * W;
    const std::int32_t* E = sc.E + (task * p.rows + r) * p.P;
    const std::int32_t* F = sc.F + (task * p.rows + r) * p.P;
    for (std::ptrdiff_t s = 0; s < m; ++s) hi[s] = 16 * E[idx[s]] + F[idx[s]];
    sc.kept[task * p.rows + r] = m;
    float* part = part0 + r * (dv + 2);
    row_softmax(pv, p, sc, t.qrow(p, r), idx, m, hi, lo, w, part);
    simd::weighted_values(cache.value_type(), w, idx, m, pv.values, cache.value_row_bytes(),
                          pv.value_scale, dv, part + 2);
  }
}

// Merges row r's page partials in page order into O.
inline void merge_row(const Plan& p, const Scratch& sc, const Tile& t, std::ptrdiff_t r,
                      const HeadsView<float>& O) {
  const std::ptrdiff_t dv = p.s.dv;
  float M = -std::numeric_limits<float>::infinity();
  for (std::ptrdiff_t pg = 0; pg < p.pages; ++pg)
    M = std::max(M, sc.part[((t.g * p.pages + pg) * p.rows + r) * (dv + 2)]);
  float* o = O.row(t.hq(p, r), t.query(p, r));
  std::fill(o, o + dv, 0.0f);
  float Z = 0.0f;
  for (std::ptrdiff_t pg = 0; pg < p.pages; ++pg) {
    const float* part = sc.part + ((t.g * p.pages + pg) * p.rows + r) * (dv + 2);
    if (part[1] == 0.0f) continue;
    const float f = std::exp(part[0] - M);
    Z += f * part[1];
    for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] += f * part[2 + c];
  }
  const float inv = 1.0f / Z;
  for (std::ptrdiff_t c = 0; c < dv; ++c) o[c] *= inv;
}

inline void run(const KVCache& cache, const HeadsView<const float>& Q, const HeadsView<float>& O,
                const DecodeParams& params, const Context& ctx, LatteStats* stats, bool latte) {
  const Shape s = check_args(cache, Q, O, params, latte);
  const Plan p = make_plan(cache, s, ctx);
  ScratchLease lease(ctx, layout_scratch(p, latte, nullptr).bytes);
  const Scratch sc = layout_scratch(p, latte, lease.data<char>());
  prepare_queries(Q, p, sc);
  detail::latte::reset_stats(stats, s.q_heads);
  std::vector<float> cutoff(std::size_t(s.kv_heads * p.rows));
  // theta = +inf for every head keeps every key: the estimate pass has nothing to decide,
  // and the step is dense decode (the same bits it would give after estimating).
  const bool estimate = latte && std::any_of(params.theta.begin(), params.theta.end(),
                                             [](float th) { return !std::isinf(th); });
  for (std::ptrdiff_t i0 = 0; i0 < s.nq; i0 += p.tile_queries) {
    const std::ptrdiff_t nqt = std::min(p.tile_queries, s.nq - i0);
    const auto tile = [&](std::ptrdiff_t task) {
      return Tile{task / p.pages, i0, nqt, nqt * s.group};
    };
    if (estimate) {
      parallel_for(ctx, p.tasks, [&](std::ptrdiff_t task, int) {
        estimate_task(cache, p, sc, tile(task), task, p.page0 + task % p.pages);
      });
      for (std::ptrdiff_t g = 0; g < s.kv_heads; ++g) {
        const Tile t = tile(g * p.pages);
        for (std::ptrdiff_t r = 0; r < t.nrows; ++r) {
          float M = -std::numeric_limits<float>::infinity();
          for (std::ptrdiff_t pg = 0; pg < p.pages; ++pg)
            M = std::max(M, sc.pmax[(g * p.pages + pg) * p.rows + r]);
          cutoff[std::size_t(g * p.rows + r)] = M - theta_of(params, t.hq(p, r));
        }
      }
    }
    parallel_for(ctx, p.tasks, [&](std::ptrdiff_t task, int worker) {
      const Tile t = tile(task);
      attend_task(cache, p, sc, t, task, p.page0 + task % p.pages,
                  estimate ? cutoff.data() + t.g * p.rows : nullptr, worker);
    });
    for (std::ptrdiff_t g = 0; g < s.kv_heads; ++g) {
      const Tile t = tile(g * p.pages);
      for (std::ptrdiff_t r = 0; r < t.nrows; ++r) {
        merge_row(p, sc, t, r, O);
        if (!stats) continue;
        for (std::ptrdiff_t pg = 0; pg < p.pages; ++pg) {
          const KeyRange k = page_range(cache, p, t, r, p.page0 + pg);
          const auto hq = std::size_t(t.hq(p, r));
          stats->considered[hq] += std::max<std::ptrdiff_t>(0, k.end - k.first);
          stats->kept[hq] += sc.kept[(g * p.pages + pg) * p.rows + r];
        }
      }
    }
  }
}

}  // namespace detail::decode

// Scratch bytes a decode step of nq queries and q_heads query heads uses on ctx (reserve
// ctx.scratch to this to make the step allocation-free).
inline std::size_t decode_scratch_bytes(const KVCache& cache, std::ptrdiff_t q_heads,
                                        std::ptrdiff_t nq, bool latte, const Context& ctx = {}) {
  if (cache.length() == 0) return 0;
  detail::decode::Shape s;
  s.q_heads = q_heads;
  s.kv_heads = cache.kv_heads();
  s.group = std::max<std::ptrdiff_t>(1, q_heads / cache.kv_heads());
  s.nq = nq;
  s.dim = cache.dim();
  s.dv = cache.value_dim();
  s.length = cache.length();
  return detail::decode::layout_scratch(detail::decode::make_plan(cache, s, ctx), latte, nullptr).bytes;
}

// LATTE decode: O [q_heads, nq, value_dim] for queries Q [q_heads, nq, dim] (the last nq
// positions of the cache). stats (optional): per query head, keys considered and kept,
// summed over the queries.
inline void latte_decode(const KVCache& cache, HeadsView<const float> Q, HeadsView<float> O,
                         const DecodeParams& params, const Context& ctx = {},
                         LatteStats* stats = nullptr) {
  detail::decode::run(cache, Q, O, params, ctx, stats, true);
}

// Dense decode over the same cache (exact int8 scores, every visible key).
inline void dense_decode(const KVCache& cache, HeadsView<const float> Q, HeadsView<float> O,
                         const DecodeParams& params, const Context& ctx = {}) {
  detail::decode::run(cache, Q, O, params, ctx, nullptr, false);
}

ETK_END_NAMESPACE
