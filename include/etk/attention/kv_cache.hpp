// etk/attention/kv_cache.hpp: a key/value cache for decoding, laid out for LATTE's 4-bit
// estimate and for dense decoding over the same storage (one layer, all its KV heads).
//
// Keys are int8 codes (detail::latte::quantize) with one scale per block of kBlock = 16 tokens per
// head, split into two nibble planes that together hold exactly one byte per element:
//  * the MS4B plane: (code >> 4) + 8 in [0, 15], two nibbles a byte, per block of 16 keys
//    as L = ceil(dim / 8) lines of 64 bytes. Line l holds, for key kk of the block, the
//    dword at byte 4*kk: byte t (t < 4) has dim 8l + t in its low nibble and dim 8l + 4 + t
//    in its high nibble. The estimate streams this plane only: 4 bits per element.
//  * the LS4B plane: code & 15, one row of 4*L bytes per key in the same dword/nibble
//    order, so a surviving key's low bits are one contiguous read.
// Padding dims, and the rows of the open block not yet appended, hold code 0 (MS4B nibble
// 8, LS4B nibble 0; a block's planes are set when it opens).
//
// A block's key scale is the max-abs / 127 of the block's keys (detail::latte::maxabs_scale), the
// scale a quantizer would pick for the complete block. While a block is open (fewer than
// 16 tokens), its float rows are kept; a token that raises the block's max-abs
// re-quantizes the block's earlier tokens (at most 15 rows), any other token is quantized
// alone. So appending one by one gives the same codes as appending all at once, and the
// accuracy is that of per-block max-abs quantization (finer than one scale per head; the
// cost is that estimates of different blocks are compared in logit units, decode.hpp).
//
// Values are fp32, fp16, bf16 (round to nearest even) or int8 with one scale per block per
// head (the same open-block scheme). Storage grows in pages of page_tokens tokens
// (a multiple of 16): a new page is allocated, old ones are never moved or re-packed.
// With a sliding window W, pages whose tokens are all older than W + kMaxQueries - 1
// positions are recycled. Appends are checked (shapes, finiteness, fp16 range) once, on
// what is appended; decoding never rescans the cache.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <new>
#include <vector>

#include "etk/attention/detail/decode_pack.hpp"
#include "etk/attention/latte_params.hpp"
#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"

ETK_BEGIN_NAMESPACE

enum class KVValueType { fp32, fp16, bf16, int8 };

inline std::ptrdiff_t value_type_bytes(KVValueType t) {
  return t == KVValueType::fp32 ? 4 : (t == KVValueType::int8 ? 1 : 2);
}

struct KVCacheConfig {
  std::ptrdiff_t kv_heads = 1;
  std::ptrdiff_t dim = 0;        // key (and query) head dim, in [1, detail::latte::kMaxDim]
  std::ptrdiff_t value_dim = 0;  // 0: same as dim
  KVValueType values = KVValueType::fp16;
  std::ptrdiff_t window = 0;        // 0: keep every token; else a sliding window of W tokens
  std::ptrdiff_t page_tokens = 512; // tokens per page (multiple of 16), the decode chunk
};

class KVCache {
 public:
  static constexpr std::ptrdiff_t kBlock = 16;
  static constexpr std::ptrdiff_t kMaxQueries = 64;  // queries one decode step may take

  explicit KVCache(const KVCacheConfig& c) : cfg_(c) {
    check::positive("config.kv_heads", c.kv_heads);
    check::positive("config.dim", c.dim);
    ETK_CHECK(c.dim <= detail::latte::kMaxDim, "argument 'config.dim' must be <= " << detail::latte::kMaxDim
                                                                          << ", got " << c.dim);
    ETK_CHECK(c.value_dim >= 0, "argument 'config.value_dim' must be >= 0, got " << c.value_dim);
    if (cfg_.value_dim == 0) cfg_.value_dim = c.dim;
    ETK_CHECK(c.window >= 0, "argument 'config.window' must be >= 0, got " << c.window);
    ETK_CHECK(c.page_tokens >= kBlock && c.page_tokens % kBlock == 0 && c.page_tokens <= (1 << 20),
              "argument 'config.page_tokens' must be a multiple of " << kBlock
                                                                     << " in [16, 2^20], got "
                                                                     << c.page_tokens);
    lines_ = (c.dim + 7) / 8;
    const auto H = std::size_t(c.kv_heads);
    stage_k_.assign(H * std::size_t(kBlock * c.dim), 0.0f);
    stage_v_.assign(H * std::size_t(kBlock * cfg_.value_dim), 0.0f);
    kmax_.assign(H, 0.0f);
    vmax_.assign(H, 0.0f);
  }

  const KVCacheConfig& config() const { return cfg_; }
  std::ptrdiff_t kv_heads() const { return cfg_.kv_heads; }
  std::ptrdiff_t dim() const { return cfg_.dim; }
  std::ptrdiff_t value_dim() const { return cfg_.value_dim; }
  KVValueType value_type() const { return cfg_.values; }
  std::ptrdiff_t page_tokens() const { return cfg_.page_tokens; }
  // Tokens appended so far (the position of the next token).
  std::ptrdiff_t length() const { return length_; }
  // First token still stored (0 without a window).
  std::ptrdiff_t first_token() const { return first_page_ * cfg_.page_tokens; }

  // Layout sizes (bytes).
  std::ptrdiff_t lines() const { return lines_; }
  std::ptrdiff_t hi_block_bytes() const { return lines_ * 64; }
  std::ptrdiff_t lo_row_bytes() const { return lines_ * 4; }
  std::ptrdiff_t value_row_bytes() const { return cfg_.value_dim * value_type_bytes(cfg_.values); }

  // Pre-allocates pages for `tokens` tokens in total (appends then never allocate).
  void reserve(std::ptrdiff_t tokens) {
    ETK_CHECK(tokens >= 0, "argument 'tokens' must be >= 0, got " << tokens);
    const std::ptrdiff_t need = (tokens + cfg_.page_tokens - 1) / cfg_.page_tokens;
    while (std::ptrdiff_t(pages_.size() + free_.size()) < need) free_.push_back(new_page());
  }

  // Appends n tokens: k [kv_heads, n, dim], v [kv_heads, n, value_dim]. Checks the shapes,
  // that every value is finite and, for fp16 values, within the fp16 range.
  void append(HeadsView<const float> k, HeadsView<const float> v) {
    check::heads_layout("k", k);
    check::heads_layout("v", v);
    check::equal("k", k.heads, "heads (= config.kv_heads)", cfg_.kv_heads);
    check::equal("v", v.heads, "heads (= config.kv_heads)", cfg_.kv_heads);
    check::equal("k", k.dim, "dim (= config.dim)", cfg_.dim);
    check::equal("v", v.dim, "dim (= config.value_dim)", cfg_.value_dim);
    check::equal("v", v.seq, "seq (= k.seq)", k.seq);
    // One read of each appended row gives its max-abs (the input of its block's scale)
    // and its finiteness; nothing is written before every row has passed.
    const std::ptrdiff_t H = cfg_.kv_heads, n = k.seq;
    row_max_.resize(std::size_t(2 * H * n));
    const auto nonfinite = [](const char* name, const HeadsView<const float>& x) {
      check::finite(name, x);  // locates the value and throws
      ETK_THROW("argument '" << name << "' holds a non-finite value");
    };
    for (std::ptrdiff_t h = 0; h < H; ++h)
      for (std::ptrdiff_t i = 0; i < n; ++i) {
        const float mk = detail::decode::simd_pack::maxabs_or_nonfinite(k.row(h, i), k.dim);
        const float mv = detail::decode::simd_pack::maxabs_or_nonfinite(v.row(h, i), v.dim);
        if (!std::isfinite(mk)) nonfinite("k", k);
        if (!std::isfinite(mv)) nonfinite("v", v);
        ETK_CHECK(cfg_.values != KVValueType::fp16 || mv <= 65504.0f,
                  "argument 'v' holds a value of magnitude " << mv << " at head " << h << ", token " << i
                                                             << ", outside the fp16 range of an fp16 cache");
        row_max_[std::size_t(2 * (i * H + h))] = mk;
        row_max_[std::size_t(2 * (i * H + h) + 1)] = mv;
      }
    for (std::ptrdiff_t i = 0; i < n; ++i) {
      const std::ptrdiff_t pos = length_;
      const std::ptrdiff_t slot = pos % cfg_.page_tokens;
      if (slot == 0) open_page();
      for (std::ptrdiff_t h = 0; h < H; ++h)
        put(h, pos, k.row(h, i), v.row(h, i), row_max_.data() + 2 * (i * H + h));
      ++length_;
    }
  }

  // The storage of one page for head h (page index = absolute token / page_tokens).
  template <typename Byte, typename Scale>
  struct PageStorage {
    Byte* hi;            // [blocks][hi_block_bytes]
    Byte* lo;            // [page_tokens][lo_row_bytes]
    Byte* values;        // [page_tokens][value_row_bytes]
    Scale* key_scale;    // [blocks]
    Scale* value_scale;  // [blocks] (int8 values; 1 otherwise)
  };
  using PageView = PageStorage<const std::uint8_t, const float>;
  PageView page(std::ptrdiff_t page_index, std::ptrdiff_t h) const {
    return slice<PageView>(page_index, h);
  }

  // Plain accessors (the reference twin and the tests read the cache through these).
  std::int8_t key_code(std::ptrdiff_t h, std::ptrdiff_t j, std::ptrdiff_t t) const {
    const PageView pv = page(j / cfg_.page_tokens, h);
    const std::ptrdiff_t s = j % cfg_.page_tokens, b = s / kBlock, kk = s % kBlock;
    const int shift = int((t % 8) / 4) * 4;
    const int hi = (pv.hi[b * hi_block_bytes() + (t / 8) * 64 + kk * 4 + t % 4] >> shift) & 15;
    const int lo = (pv.lo[s * lo_row_bytes() + (t / 8) * 4 + t % 4] >> shift) & 15;
    return static_cast<std::int8_t>(16 * (hi - 8) + lo);
  }
  float key_scale(std::ptrdiff_t h, std::ptrdiff_t j) const {
    return page(j / cfg_.page_tokens, h).key_scale[(j % cfg_.page_tokens) / kBlock];
  }
  // The stored value as a float (int8: code * block scale, one float product).
  float value(std::ptrdiff_t h, std::ptrdiff_t j, std::ptrdiff_t c) const {
    const PageView pv = page(j / cfg_.page_tokens, h);
    const std::ptrdiff_t s = j % cfg_.page_tokens;
    const std::uint8_t* row = pv.values + s * value_row_bytes();
    switch (cfg_.values) {
      case KVValueType::fp32: { float x; std::memcpy(&x, row + 4 * c, 4); return x; }
      case KVValueType::fp16: { Eigen::half x; std::memcpy(&x, row + 2 * c, 2); return float(x); }
      case KVValueType::bf16: { Eigen::bfloat16 x; std::memcpy(&x, row + 2 * c, 2); return float(x); }
      case KVValueType::int8:
        return float(static_cast<std::int8_t>(row[c])) * pv.value_scale[s / kBlock];
    }
    return 0.0f;
  }

  // Bytes of stored keys and values per token per head (what a dense pass streams).
  std::ptrdiff_t bytes_per_token() const { return 2 * lines_ * 4 + value_row_bytes(); }

 private:
  struct Page {
    std::uint8_t* hi;
    std::uint8_t* lo;
    std::uint8_t* values;
    float* key_scale;
    float* value_scale;
    std::unique_ptr<std::uint8_t[], void (*)(std::uint8_t*)> mem{nullptr, nullptr};
  };

  static void free_aligned(std::uint8_t* p) { ::operator delete(p, std::align_val_t(64)); }

  std::unique_ptr<Page> new_page() const {
    const std::ptrdiff_t H = cfg_.kv_heads, P = cfg_.page_tokens, nb = P / kBlock;
    const auto round64 = [](std::ptrdiff_t b) { return (b + 63) / 64 * 64; };
    const std::ptrdiff_t hi = round64(H * nb * hi_block_bytes()), lo = round64(H * P * lo_row_bytes()),
                         va = round64(H * P * value_row_bytes()), sc = round64(H * nb * 4);
    auto pg = std::make_unique<Page>();
    auto* m = static_cast<std::uint8_t*>(
        ::operator new(std::size_t(hi + lo + va + 2 * sc), std::align_val_t(64)));
    pg->mem = {m, &free_aligned};
    pg->hi = m;
    pg->lo = m + hi;
    pg->values = m + hi + lo;
    pg->key_scale = reinterpret_cast<float*>(m + hi + lo + va);
    pg->value_scale = reinterpret_cast<float*>(m + hi + lo + va + sc);
    return pg;
  }

  // Makes the page for the next token current, recycling pages that left the window.
  void open_page() {
    if (cfg_.window > 0) {
      const std::ptrdiff_t keep_from = length_ - (cfg_.window + kMaxQueries - 1);
      while (!pages_.empty() && (first_page_ + 1) * cfg_.page_tokens <= keep_from) {
        free_.push_back(std::move(pages_.front()));
        pages_.pop_front();
        ++first_page_;
      }
    }
    if (free_.empty()) free_.push_back(new_page());
    pages_.push_back(std::move(free_.back()));
    free_.pop_back();
    Page& p = *pages_.back();
    const std::ptrdiff_t H = cfg_.kv_heads, nb = cfg_.page_tokens / kBlock;
    std::fill(p.key_scale, p.key_scale + H * nb, 1.0f);
    std::fill(p.value_scale, p.value_scale + H * nb, 1.0f);
  }

  // The writers' view of a page: the same slices as page(), writable.
  using MutablePage = PageStorage<std::uint8_t, float>;

  template <typename View>
  View slice(std::ptrdiff_t page_index, std::ptrdiff_t h) const {
    ETK_DEBUG_ASSERT(page_index >= first_page_ && page_index - first_page_ < std::ptrdiff_t(pages_.size()));
    const Page& p = *pages_[std::size_t(page_index - first_page_)];
    const std::ptrdiff_t P = cfg_.page_tokens, nb = P / kBlock;
    return {p.hi + h * nb * hi_block_bytes(), p.lo + h * P * lo_row_bytes(),
            p.values + h * P * value_row_bytes(), p.key_scale + h * nb, p.value_scale + h * nb};
  }

  // Writes key row s of the page; copy (null: none) also receives x.
  void quantize_key(const MutablePage& pg, std::ptrdiff_t s, const float* x, float inv, float* copy) const {
    detail::decode::simd_pack::pack_key_row(x, cfg_.dim, inv, pg.hi + (s / kBlock) * hi_block_bytes() + (s % kBlock) * 4,
                                            pg.lo + s * lo_row_bytes(), copy);
  }

  // Writes value row s of the page (inv: int8 only); copy (null: none) also receives x.
  void store_value(const MutablePage& pg, std::ptrdiff_t s, const float* x, float inv, float* copy) const {
    std::uint8_t* row = pg.values + s * value_row_bytes();
    const std::ptrdiff_t dv = cfg_.value_dim;
    if (copy) std::memcpy(copy, x, std::size_t(dv) * sizeof(float));
    switch (cfg_.values) {
      case KVValueType::fp32: std::memcpy(row, x, std::size_t(4 * dv)); break;
      case KVValueType::fp16: detail::decode::simd_pack::store_fp16(x, dv, row); break;
      case KVValueType::bf16: detail::decode::simd_pack::store_bf16(x, dv, row); break;
      case KVValueType::int8: detail::decode::simd_pack::store_int8(x, dv, inv, row); break;
    }
  }

  // Row x (n floats, max-abs m) as row kk of an open block whose float rows are staged in
  // `stage`, whose max-abs so far is `block_max` and whose stored scale is `scale`:
  // store(kk', row, 1 / scale, copy) writes a row's codes (and copies the row to `copy`
  // unless null). When x raises the block's max-abs (or opens the block), the scale
  // becomes that max-abs / 127 (detail::latte::maxabs_scale of the block's rows, the max
  // being exact) and the block's earlier rows are re-quantized; otherwise only x is
  // written. x is staged while a later row of the block may still re-quantize it.
  template <typename Store>
  static void put_block_row(float* stage, float& block_max, float& scale, std::ptrdiff_t kk,
                            std::ptrdiff_t n, const float* x, float m, Store&& store) {
    if (kk == 0 || m > block_max) {
      block_max = m;
      scale = block_max > 0.0f ? block_max / 127.0f : 1.0f;
      for (std::ptrdiff_t r = 0; r < kk; ++r) store(r, stage + r * n, 1.0f / scale, nullptr);
    }
    store(kk, x, 1.0f / scale, kk + 1 < kBlock ? stage + kk * n : nullptr);
  }

  // Stores token `pos` of head h: O(dim + value_dim), plus a re-quantization of the open
  // block (<= 15 earlier rows) when this token raises the block's max-abs. m: the max-abs
  // of k and of v. A block's key planes are set to code 0 when it opens (rows not yet
  // appended read as code 0; the block's rows share its MS4B lines).
  void put(std::ptrdiff_t h, std::ptrdiff_t pos, const float* k, const float* v, const float* m) {
    const std::ptrdiff_t s = pos % cfg_.page_tokens, b = s / kBlock, kk = s % kBlock, s0 = s - kk;
    const MutablePage pg = slice<MutablePage>(pos / cfg_.page_tokens, h);
    if (kk == 0) {
      std::memset(pg.hi + b * hi_block_bytes(), 0x88, std::size_t(hi_block_bytes()));
      std::memset(pg.lo + s0 * lo_row_bytes(), 0, std::size_t(kBlock * lo_row_bytes()));
    }
    put_block_row(stage_k_.data() + h * kBlock * cfg_.dim, kmax_[std::size_t(h)], pg.key_scale[b], kk, cfg_.dim, k,
                  m[0], [&](std::ptrdiff_t r, const float* x, float inv, float* copy) { quantize_key(pg, s0 + r, x, inv, copy); });
    const auto value = [&](std::ptrdiff_t r, const float* x, float inv, float* copy) {
      store_value(pg, s0 + r, x, inv, copy);
    };
    if (cfg_.values != KVValueType::int8) {
      value(kk, v, 1.0f, nullptr);
      return;
    }
    put_block_row(stage_v_.data() + h * kBlock * cfg_.value_dim, vmax_[std::size_t(h)], pg.value_scale[b], kk,
                  cfg_.value_dim, v, m[1], value);
  }

  KVCacheConfig cfg_;
  std::ptrdiff_t lines_ = 0;
  std::ptrdiff_t length_ = 0;
  std::ptrdiff_t first_page_ = 0;
  std::deque<std::unique_ptr<Page>> pages_;
  std::vector<std::unique_ptr<Page>> free_;
  std::vector<float> stage_k_, stage_v_, kmax_, vmax_;
  std::vector<float> row_max_;  // max-abs of the rows of the append in progress
};

ETK_END_NAMESPACE
